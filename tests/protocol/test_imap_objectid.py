"""tern-imapd OBJECTID (RFC 8474): MAILBOXID on CREATE, SELECT/EXAMINE,
STATUS and LIST-STATUS, kept by RENAME and by an index rebuild (it lives in
the folder), new after DELETE and CREATE; EMAILID and THREADID in FETCH
and SEARCH, EMAILID kept by MOVE, shared by COPY, kept by a rebuild."""
import os
import re

import pytest

from conftest import chown_tree

USER, PASSWORD = "olga@example.org", "secret-pw"
MAILBOXID = re.compile(r"^F[0-9a-f]{32}$")
EMAILID = re.compile(r"^M[0-9a-f]{32}$")
OBJECTID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def msg(n):
    return (f"From: a@example.org\r\nTo: {USER}\r\nSubject: message {n}\r\n"
            f"Message-ID: <oid{n}@example.org>\r\n\r\nbody {n}\r\n").encode()


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


def ok(c, line, tag):
    lines = c.cmd(f"{tag} {line}")
    assert lines[-1].startswith(f"{tag} OK"), lines
    return lines


def create(c, name, tag="c"):
    """CREATE: the MAILBOXID of its OK [MAILBOXID (...)]."""
    lines = c.cmd(f'{tag} CREATE "{name}"')
    m = re.fullmatch(rf"{tag} OK \[MAILBOXID \(([^)]*)\)\] CREATE completed", lines[-1])
    assert m, lines
    assert MAILBOXID.match(m.group(1)), m.group(1)
    return m.group(1)


def status_id(c, name, tag="s"):
    lines = c.cmd(f'{tag} STATUS "{name}" (MAILBOXID)')
    assert lines[-1] == f"{tag} OK STATUS completed", lines
    m = re.fullmatch(rf'\* STATUS "?{re.escape(name)}"? \(MAILBOXID \(([^)]*)\)\)', lines[0])
    assert m, lines
    return m.group(1)


def select_id(c, name, cmd="SELECT", tag="s"):
    lines = c.cmd(f'{tag} {cmd} "{name}"')
    assert lines[-1].startswith(f"{tag} OK ["), lines
    ids = [m.group(1) for m in (re.fullmatch(r"\* OK \[MAILBOXID \(([^)]*)\)\] Ok", l)
                                for l in lines) if m]
    assert len(ids) == 1, lines
    return ids[0]


def fetch_ids(c, seqset="1:*", tag="f", uid=False):
    """{uid: (emailid, threadid)} of a (UID) FETCH (UID EMAILID THREADID)."""
    lines = c.cmd(f"{tag} {'UID ' if uid else ''}FETCH {seqset} (UID EMAILID THREADID)")
    assert lines[-1] == f"{tag} OK {'UID ' if uid else ''}FETCH completed", lines
    r = {}
    for l in lines[:-1]:
        m = re.fullmatch(r"\* \d+ FETCH \(UID (\d+) EMAILID \(([^)]*)\) THREADID NIL\)", l)
        assert m, l
        r[int(m.group(1))] = m.group(2)
    return r


def search(c, criteria, tag="x", cmd="SEARCH"):
    lines = c.cmd(f"{tag} {cmd} {criteria}")
    assert lines[-1] == f"{tag} OK {cmd.split()[-1]} completed", lines
    found = [l for l in lines if l.startswith("* SEARCH")]
    assert len(found) == 1, lines
    return [int(n) for n in found[0].split()[2:]]


def append(c, n, mailbox="INBOX", tag="a"):
    data = msg(n)
    c.send(f"{tag} APPEND {mailbox} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    lines = c.response()
    assert lines[-1].startswith(f"{tag} OK"), lines


def folder(server, name):
    d = os.path.join(server.user_dir(USER), "Maildir")
    return d if name == "INBOX" else os.path.join(d, "." + name.replace("/", "."))


def restart_without_index(server, imapd):
    """Stop the daemon, remove the index, start another: everything comes
    from the Maildir again."""
    server.stop(server.shutdown_s)
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(server.user_dir(USER), "index.sqlite" + suffix)
        if os.path.exists(p):
            os.unlink(p)
    return imapd()


# ------------------------------------------------------------ MAILBOXID


def test_capability(server):
    c = server.login(USER, PASSWORD)
    lines = c.cmd("c CAPABILITY")
    assert "OBJECTID" in lines[0].split(), lines
    c2 = server.client()
    assert "OBJECTID" not in c2.cmd("c CAPABILITY")[0].split()


def test_create_select_examine_status(server):
    c = server.login(USER, PASSWORD)
    proj = create(c, "Proj")
    assert select_id(c, "Proj") == proj
    assert select_id(c, "Proj", cmd="EXAMINE") == proj
    assert status_id(c, "Proj") == proj
    # With other items, in the client's order.
    lines = c.cmd('s STATUS "Proj" (MESSAGES MAILBOXID UIDNEXT)')
    assert lines == [f'* STATUS "Proj" (MESSAGES 0 MAILBOXID ({proj}) UIDNEXT 1)',
                     "s OK STATUS completed"]
    # The folder holds it: the Maildir is the source of truth.
    with open(os.path.join(folder(server, "Proj"), "tern-mailboxid")) as f:
        assert f.read() == proj + "\n"
    # Another session, the same id.
    c2 = server.login(USER, PASSWORD)
    assert status_id(c2, "Proj") == proj
    assert select_id(c2, "INBOX") == status_id(c2, "INBOX")


def test_unique_and_list_status(server):
    c = server.login(USER, PASSWORD)
    made = {name: create(c, name) for name in ("A", "A/B", "B", "Entw&APw-rfe")}
    lines = c.cmd('l LIST "" "*" RETURN (STATUS (MAILBOXID MESSAGES))')
    assert lines[-1] == "l OK LIST completed", lines
    ids = {}
    for l in lines:
        m = re.fullmatch(r'\* STATUS "([^"]*)" \(MAILBOXID \(([^)]*)\) MESSAGES 0\)', l)
        if m:
            ids[m.group(1)] = m.group(2)
    for name, i in made.items():
        assert ids[name] == i, (name, lines)
    # INBOX and the special-use folders made for a new user have ids too.
    assert {"INBOX", "Sent", "Drafts", "Trash"} <= set(ids), ids
    assert all(MAILBOXID.match(i) for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids), ids


def test_rename_keeps_delete_create_changes(server):
    c = server.login(USER, PASSWORD)
    old = create(c, "Old")
    child = create(c, "Old/Kid")
    ok(c, 'RENAME "Old" "New"', "r")
    assert status_id(c, "New") == old
    assert status_id(c, "New/Kid") == child
    # Renamed back and forth, still the same.
    ok(c, 'RENAME "New/Kid" "Kid"', "r")
    assert status_id(c, "Kid") == child
    # Deleted and made again: a new mailbox, a new id.
    ok(c, 'DELETE "New"', "d")
    again = create(c, "New")
    assert again != old
    assert status_id(c, "New") == again
    # A name that was used before by another mailbox gets a new id too.
    ok(c, 'DELETE "Kid"', "d")
    assert create(c, "Old/Kid") not in (child, old, again)


def test_rename_inbox_makes_a_new_mailbox(server):
    c = server.login(USER, PASSWORD)
    inbox = status_id(c, "INBOX")
    append(c, 1)
    ok(c, 'RENAME "INBOX" "Saved"', "r")
    saved = status_id(c, "Saved")
    assert saved != inbox
    assert status_id(c, "INBOX") == inbox


def test_survives_index_rebuild(server, imapd):
    c = server.login(USER, PASSWORD)
    before = {n: create(c, n) for n in ("X", "Y/Z")}
    before["INBOX"] = status_id(c, "INBOX")
    # ternctl index rebuild while the daemon runs.
    server.auth.ternctl("index", "rebuild", USER)
    c2 = server.login(USER, PASSWORD)
    assert {n: status_id(c2, n) for n in before} == before
    assert {n: status_id(c, n) for n in before} == before
    # No index at all.
    server2 = restart_without_index(server, imapd)
    c3 = server2.login(USER, PASSWORD)
    assert {n: status_id(c3, n) for n in before} == before
    assert select_id(c3, "Y/Z") == before["Y/Z"]


def test_folder_without_id_gets_one(server):
    """Folders made by other programs, or before ids existed, get an id on
    first need; a file that holds no id is replaced."""
    c = server.login(USER, PASSWORD)
    ext = folder(server, "Ext")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(ext, d))
    chown_tree(ext, server.auth.uid, server.auth.gid)
    # A STATUS that does not ask for it makes none (a synced write per
    # folder would slow down clients that poll every folder).
    assert c.cmd('s STATUS "Ext" (MESSAGES)') == ['* STATUS "Ext" (MESSAGES 0)',
                                                   "s OK STATUS completed"]
    assert not os.path.exists(os.path.join(ext, "tern-mailboxid"))
    first = select_id(c, "Ext")
    assert MAILBOXID.match(first)
    assert status_id(c, "Ext") == first
    with open(os.path.join(ext, "tern-mailboxid")) as f:
        assert f.read() == first + "\n"
    # An older folder: its file removed.
    os.unlink(os.path.join(ext, "tern-mailboxid"))
    c.cmd("u UNSELECT")
    second = status_id(c, "Ext")
    assert second != first and MAILBOXID.match(second)
    assert status_id(c, "Ext") == second
    # Garbage in the file.
    path = os.path.join(ext, "tern-mailboxid")
    with open(path, "w") as f:
        f.write("not an id!\n")
    third = status_id(c, "Ext")
    assert MAILBOXID.match(third) and third not in (first, second)
    with open(path) as f:
        assert f.read() == third + "\n"
    # No temporary files left behind.
    assert os.listdir(os.path.join(ext, "tmp")) == []


def test_status_errors(server):
    c = server.login(USER, PASSWORD)
    lines = c.cmd('s STATUS "Nope" (MAILBOXID)')
    assert lines[-1].startswith("s NO [NONEXISTENT]"), lines
    assert c.cmd('s STATUS "INBOX" (MAILBOXID BOGUS)')[-1] == "s BAD Unknown STATUS item"
    assert c.cmd('s STATUS "INBOX" MAILBOXID')[-1].startswith("s BAD ")
    # CREATE of an existing mailbox: NO, no id.
    lines = c.cmd('c CREATE "INBOX"')
    assert lines[-1].startswith("c NO [ALREADYEXISTS]"), lines
    assert "MAILBOXID" not in lines[-1]


# -------------------------------------------------------------- EMAILID


def test_emailid_fetch_move_copy(server):
    for n in range(3):
        server.deliver(USER, msg(n))
    c = server.login(USER, PASSWORD)
    create(c, "Dest")
    create(c, "Other")
    select_id(c, "INBOX")
    ids = fetch_ids(c)
    assert sorted(ids) == [1, 2, 3]
    assert all(EMAILID.match(i) and OBJECTID.match(i) for i in ids.values()), ids
    assert len(set(ids.values())) == 3
    # The same in another session, and by UID FETCH.
    c2 = server.login(USER, PASSWORD)
    select_id(c2, "INBOX", cmd="EXAMINE")
    assert fetch_ids(c2) == ids
    assert fetch_ids(c2, "2", uid=True) == {2: ids[2]}
    # THREADID alone, and EMAILID among other items.
    lines = c.cmd("f FETCH 1 (THREADID)")
    assert lines == ["* 1 FETCH (THREADID NIL)", "f OK FETCH completed"]
    lines = c.cmd("f FETCH 1 (FLAGS EMAILID RFC822.SIZE)")
    assert re.fullmatch(rf"\* 1 FETCH \(FLAGS \([^)]*\) EMAILID \({ids[1]}\) "
                        rf"RFC822.SIZE \d+\)", lines[0]), lines
    # COPY to another mailbox shares the id; MOVE keeps it.
    ok(c, "UID COPY 1 Other", "k")
    ok(c, "UID MOVE 2 Dest", "m")
    select_id(c, "Other")
    assert list(fetch_ids(c).values()) == [ids[1]]
    select_id(c, "Dest")
    assert list(fetch_ids(c).values()) == [ids[2]]
    # Moved on again, still the same.
    ok(c, "MOVE 1 Other", "m")
    select_id(c, "Other")
    assert sorted(fetch_ids(c).values()) == sorted([ids[1], ids[2]])
    # A copy into the mailbox that holds the message is a message of its
    # own (a GUID, so an EMAILID, of its own).
    ok(c, "UID COPY 1 Other", "k")
    other = fetch_ids(c)
    assert len(other) == 3 and len(set(other.values())) == 3
    # The original in INBOX still has its id.
    select_id(c, "INBOX")
    assert fetch_ids(c) == {1: ids[1], 3: ids[3]}


def test_emailid_appended_differs(server):
    c = server.login(USER, PASSWORD)
    select_id(c, "INBOX")
    for n in range(20):
        append(c, 7)            # the same bytes every time
    ids = fetch_ids(c)
    assert len(ids) == 20 and len(set(ids.values())) == 20


def test_emailid_survives_rebuild(server, imapd):
    for n in range(3):
        server.deliver(USER, msg(n))
    c = server.login(USER, PASSWORD)
    create(c, "Keep")
    select_id(c, "INBOX")
    ok(c, "UID MOVE 3 Keep", "m")
    ids = fetch_ids(c)
    select_id(c, "Keep")
    kept = fetch_ids(c)
    server.auth.ternctl("index", "rebuild", USER)
    c2 = server.login(USER, PASSWORD)
    select_id(c2, "INBOX")
    assert fetch_ids(c2) == ids
    select_id(c2, "Keep")
    assert fetch_ids(c2) == kept
    server2 = restart_without_index(server, imapd)
    c3 = server2.login(USER, PASSWORD)
    select_id(c3, "INBOX")
    assert fetch_ids(c3) == ids
    assert search(c3, f"EMAILID {ids[2]}", cmd="UID SEARCH") == [2]


def test_fetch_bad(server):
    server.deliver(USER, msg(1))
    c = server.login(USER, PASSWORD)
    select_id(c, "INBOX")
    for items in ("EMAILID.PEEK", "(EMAILID THREADIDS)", "EMAILID[]", "(OBJECTID)"):
        lines = c.cmd(f"f FETCH 1 {items}")
        assert lines[-1].startswith("f BAD "), (items, lines)


# --------------------------------------------------------------- SEARCH


def test_search(server):
    for n in range(4):
        server.deliver(USER, msg(n))
    c = server.login(USER, PASSWORD)
    select_id(c, "INBOX")
    ids = fetch_ids(c)
    assert search(c, f"EMAILID {ids[3]}") == [3]
    assert search(c, f'EMAILID "{ids[2]}"') == [2]
    assert search(c, f"UID 1:2 EMAILID {ids[2]}", cmd="UID SEARCH") == [2]
    assert search(c, f"UID 3:4 EMAILID {ids[2]}", cmd="UID SEARCH") == []
    assert search(c, f"NOT EMAILID {ids[1]}") == [2, 3, 4]
    assert search(c, f"OR EMAILID {ids[1]} EMAILID {ids[4]}") == [1, 4]
    # Case matters (RFC 8474: ids are case-sensitive).
    assert search(c, f"EMAILID {ids[1].upper()}") == []
    assert search(c, "EMAILID M0123456789abcdef0123456789abcdef") == []
    assert search(c, "EMAILID " + "a" * 255) == []
    # No THREADID exists: it matches nothing, NOT THREADID everything.
    assert search(c, "THREADID T1234") == []
    assert search(c, "NOT THREADID T1234") == [1, 2, 3, 4]
    # ESEARCH.
    lines = c.cmd(f"e SEARCH RETURN (ALL COUNT) EMAILID {ids[4]}")
    assert lines == ['* ESEARCH (TAG "e") COUNT 1 ALL 4', "e OK SEARCH completed"], lines
    # After an expunge the numbers follow.
    ok(c, "STORE 1 +FLAGS.SILENT (\\Deleted)", "t")
    ok(c, "EXPUNGE", "e")
    assert search(c, f"EMAILID {ids[4]}") == [3]
    assert search(c, f"EMAILID {ids[1]}") == []


def test_search_bad(server):
    server.deliver(USER, msg(1))
    c = server.login(USER, PASSWORD)
    select_id(c, "INBOX")
    for crit in ("EMAILID", "THREADID", 'EMAILID ""', "EMAILID abc.def",
                 "EMAILID abc+def", "EMAILID " + "a" * 256, "THREADID (x)",
                 'THREADID "a b"', "EMAILID NIL-", "EMAILID {3+}\r\na/b"):
        if "{3+}" in crit:
            c.send(f"b SEARCH {crit}\r\n".encode())
            lines = c.response()
        else:
            lines = c.cmd(f"b SEARCH {crit}")
        if crit == "EMAILID NIL-":
            # A valid objectid that no message has.
            assert lines[-1] == "b OK SEARCH completed", lines
            continue
        assert lines[-1].startswith("b BAD "), (crit, lines)
    # The session still works.
    assert search(c, "ALL") == [1]
