"""tern-imapd mailbox commands: CREATE (CREATE-SPECIAL-USE), DELETE,
RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST (LIST-EXTENDED, SPECIAL-USE,
LIST-STATUS) and LSUB, STATUS (STATUS=SIZE, DELETED, APPENDLIMIT),
NAMESPACE and QUOTA (RFC 9051 §6.3, RFC 5258, RFC 6154, RFC 5819,
RFC 8438, RFC 2342, RFC 9208), with raw lines and with Python's imaplib."""
import os
import re

import pytest

USER, PASSWORD = "alice@example.org", "secret-pw"

MSG = b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nbody\r\n"

# A new user's folders (storage creates them on first login).
DEFAULT_LIST = [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
]


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


def ok(c, line):
    """Run a command that must succeed; its untagged lines."""
    lines = c.cmd(line)
    tag = line.split(" ", 1)[0]
    assert lines[-1].startswith(f"{tag} OK"), lines
    return lines[:-1]


def created(lines, tag):
    """CREATE's reply: the tagged OK with the new MAILBOXID (RFC 8474)."""
    return len(lines) == 1 and re.fullmatch(
        rf"{tag} OK \[MAILBOXID \(F[0-9a-f]{{32}}\)\] CREATE completed", lines[0]) is not None


def utf8(line):
    """A line the raw client read (latin-1) as the UTF-8 it was."""
    return line.encode("latin-1").decode("utf-8")


def maildir(server):
    return os.path.join(server.user_dir(USER), "Maildir")


def set_maildir_flags(server, folder, flags):
    """Give every message of a folder ("" for INBOX, ".Name") the Maildir
    flags (e.g. "ST"), as another program would."""
    base = os.path.join(maildir(server), folder)
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(base, sub)):
            stem = name.split(":2,", 1)[0]
            os.rename(os.path.join(base, sub, name),
                      os.path.join(base, "cur", stem + ":2," + flags))


# ------------------------------------------------------------ NAMESPACE

def test_namespace(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("n NAMESPACE") == ['* NAMESPACE (("" "/")) NIL NIL', "n OK NAMESPACE completed"]
    assert c.cmd("b NAMESPACE x")[-1].startswith("b BAD")


# ------------------------------------------------------------------ LIST

def test_list_new_user_special_use(server):
    """A new user gets INBOX and the special-use folders; their attributes
    come with a plain LIST (as Dovecot sends them) and with RETURN
    (SPECIAL-USE); the SPECIAL-USE selection option lists only them."""
    c = server.login(USER, PASSWORD)
    assert ok(c, 'a LIST "" "*"') == DEFAULT_LIST
    assert ok(c, 'b LIST "" "*" RETURN (SPECIAL-USE)') == DEFAULT_LIST
    assert ok(c, 'c LIST (SPECIAL-USE) "" "*"') == DEFAULT_LIST[1:]
    assert ok(c, 'd LIST (SPECIAL-USE) "" "S*" RETURN (SPECIAL-USE)') == [
        '* LIST (\\HasNoChildren \\Sent) "/" "Sent"']


def test_list_root_and_reference(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd('a LIST "" ""') == ['* LIST (\\Noselect) "/" ""', "a OK LIST completed"]
    assert ok(c, 'b LIST "Archive" ""') == ['* LIST (\\Noselect) "/" ""']
    ok(c, "c CREATE Archive/2024")
    ok(c, "d CREATE Archive/2023/Q1")
    # The reference is joined to the pattern.
    assert ok(c, 'e LIST "Archive/" "%"') == [
        '* LIST (\\Noselect \\HasChildren) "/" "Archive/2023"',
        '* LIST (\\HasNoChildren) "/" "Archive/2024"']
    assert ok(c, 'f LIST "Archive" "/*"') == [
        '* LIST (\\Noselect \\HasChildren) "/" "Archive/2023"',
        '* LIST (\\HasNoChildren) "/" "Archive/2023/Q1"',
        '* LIST (\\HasNoChildren) "/" "Archive/2024"']
    assert ok(c, 'g LIST "Arch" "ive"') == ['* LIST (\\HasChildren \\Archive) "/" "Archive"']


def test_list_wildcards(server):
    c = server.login(USER, PASSWORD)
    for name in ("Archive/2024", "Archive/2024/Jan", "Work", "Work/Reports", "W%x"):
        ok(c, f'c CREATE "{name}"')
    names = lambda lines: [l.rsplit('"/" ', 1)[1] for l in lines]
    assert names(ok(c, 'a LIST "" "%"')) == [
        '"INBOX"', '"Archive"', '"Drafts"', '"Junk"', '"Sent"', '"Trash"', '"W%x"', '"Work"']
    assert names(ok(c, 'a LIST "" "*/%"')) == [
        '"Archive/2024"', '"Archive/2024/Jan"', '"Work/Reports"']
    assert names(ok(c, 'a LIST "" "%/%"')) == ['"Archive/2024"', '"Work/Reports"']
    assert names(ok(c, 'a LIST "" "Archive*"')) == [
        '"Archive"', '"Archive/2024"', '"Archive/2024/Jan"']
    assert names(ok(c, 'a LIST "" "Archive%"')) == ['"Archive"']
    assert names(ok(c, 'a LIST "" "*an"')) == ['"Archive/2024/Jan"']
    assert names(ok(c, 'a LIST "" "W*s"')) == ['"Work/Reports"']
    assert names(ok(c, 'a LIST "" "%*%%*"')) == names(ok(c, 'a LIST "" "*"'))
    assert names(ok(c, 'a LIST "" "nothing*"')) == []
    # INBOX matches in any case; other names are case-sensitive.
    assert ok(c, 'a LIST "" "inbox"') == ['* LIST (\\HasNoChildren) "/" "INBOX"']
    assert ok(c, 'a LIST "" "work"') == []
    # A pattern as a literal.
    c.sendline('l LIST "" {4}')
    assert c.readline().startswith("+ ")
    c.sendline("Wor%")
    assert c.response() == ['* LIST (\\HasChildren) "/" "Work"', "l OK LIST completed"]


def test_list_multiple_patterns(server):
    """RFC 5258 §5 example 7."""
    c = server.login(USER, PASSWORD)
    for name in ("Sent/March2004", "Sent/December2003", "Unlisted/Foo"):
        ok(c, f"c CREATE {name}")
    assert ok(c, 'a LIST "" ("INBOX" Drafts "Sent/%")') == [
        '* LIST (\\HasNoChildren) "/" "INBOX"',
        '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        '* LIST (\\HasNoChildren) "/" "Sent/December2003"',
        '* LIST (\\HasNoChildren) "/" "Sent/March2004"']
    # A name matched by two patterns comes once.
    assert ok(c, 'b LIST "" (Drafts "D*")') == [
        '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"']


def rfc5258_mailboxes(c):
    """The mailboxes of RFC 5258 §5's examples."""
    for line in ("CREATE Fruit", "CREATE Fruit/Apple", "CREATE Fruit/Banana",
                 "CREATE Fruit/Peach", "SUBSCRIBE Fruit/Banana", "SUBSCRIBE Fruit/Peach",
                 "DELETE Fruit/Peach", "CREATE Tofu", "CREATE Vegetable",
                 "CREATE Vegetable/Broccoli", "CREATE Vegetable/Corn",
                 "SUBSCRIBE INBOX", "SUBSCRIBE Vegetable", "SUBSCRIBE Vegetable/Broccoli"):
        ok(c, "s " + line)


def test_list_extended_subscribed(server):
    c = server.login(USER, PASSWORD)
    rfc5258_mailboxes(c)
    assert ok(c, 'a LIST (SUBSCRIBED) "" "*"') == [
        '* LIST (\\Subscribed) "/" "INBOX"',
        '* LIST (\\Subscribed) "/" "Fruit/Banana"',
        '* LIST (\\NonExistent \\Subscribed) "/" "Fruit/Peach"',
        '* LIST (\\Subscribed) "/" "Vegetable"',
        '* LIST (\\Subscribed) "/" "Vegetable/Broccoli"']
    assert ok(c, 'b LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)') == [
        '* LIST (\\Subscribed \\HasNoChildren) "/" "INBOX"',
        '* LIST (\\Subscribed \\HasNoChildren) "/" "Fruit/Banana"',
        '* LIST (\\NonExistent \\Subscribed \\HasNoChildren) "/" "Fruit/Peach"',
        '* LIST (\\Subscribed \\HasChildren) "/" "Vegetable"',
        '* LIST (\\Subscribed \\HasNoChildren) "/" "Vegetable/Broccoli"']
    assert ok(c, 'c LIST "" "%" RETURN (SUBSCRIBED)') == [
        '* LIST (\\Subscribed \\HasNoChildren) "/" "INBOX"',
        '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
        '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        '* LIST (\\HasChildren) "/" "Fruit"',
        '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
        '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        '* LIST (\\HasNoChildren) "/" "Tofu"',
        '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
        '* LIST (\\Subscribed \\HasChildren) "/" "Vegetable"']
    # RECURSIVEMATCH: parents of subscribed names get CHILDINFO (RFC 5258
    # §5 example 9).
    assert ok(c, 'd LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"') == [
        '* LIST (\\Subscribed) "/" "INBOX"',
        '* LIST () "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\Subscribed) "/" "Vegetable" ("CHILDINFO" ("SUBSCRIBED"))']
    assert ok(c, 'e LIST (SUBSCRIBED REMOTE) "" "F*"') == [
        '* LIST (\\Subscribed) "/" "Fruit/Banana"',
        '* LIST (\\NonExistent \\Subscribed) "/" "Fruit/Peach"']
    # A LIST-EXTENDED client sees a missing parent as \NonExistent.
    ok(c, "f CREATE Missing/Child")
    assert ok(c, 'g LIST () "" "M%"') == ['* LIST (\\NonExistent \\HasChildren) "/" "Missing"']
    assert ok(c, 'h LIST "" "M%"') == ['* LIST (\\Noselect \\HasChildren) "/" "Missing"']


def test_list_extended_errors(server):
    c = server.login(USER, PASSWORD)
    for line in ('LIST (RECURSIVEMATCH) "" "*"', 'LIST (REMOTE RECURSIVEMATCH) "" "*"',
                 'LIST (BOGUS) "" "*"', 'LIST "" "*" RETURN (BOGUS)', 'LIST "" "*" RETURN',
                 'LIST "" "*" RETURN CHILDREN', 'LIST "" "*" FOO (CHILDREN)',
                 'LIST "" "*" RETURN (STATUS)', 'LIST "" "*" RETURN (STATUS ())',
                 'LIST "" "*" RETURN (STATUS (BOGUS))', 'LIST "" ()', 'LIST ""', "LIST",
                 'LIST ((SUBSCRIBED)) "" "*"', 'LSUB () "" "*"', 'LSUB "" ("*")',
                 'LSUB "" "*" RETURN (CHILDREN)', 'LIST "" "&Jjo"', 'LIST "" "&-"'):
        lines = c.cmd("x " + line)
        if line.endswith('"&-"'):
            assert lines == ["x OK LIST completed"], line
        else:
            assert len(lines) == 1 and lines[0].startswith("x BAD"), (line, lines)


def test_list_status(server):
    """LIST-STATUS (RFC 5819): a STATUS after each selectable mailbox."""
    server.deliver(USER, MSG)
    server.deliver(USER, MSG)
    c = server.login(USER, PASSWORD)
    ok(c, "c CREATE Parentless/Child")
    lines = ok(c, 'a LIST "" ("INBOX" "P*") RETURN (STATUS (MESSAGES UNSEEN SIZE))')
    size = 2 * len(MSG)
    assert lines == [
        '* LIST (\\HasNoChildren) "/" "INBOX"',
        f'* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 SIZE {size})',
        '* LIST (\\NonExistent \\HasChildren) "/" "Parentless"',
        '* LIST (\\HasNoChildren) "/" "Parentless/Child"',
        '* STATUS "Parentless/Child" (MESSAGES 0 UNSEEN 0 SIZE 0)']
    # With the SUBSCRIBED selection: only existing mailboxes get STATUS.
    ok(c, "s SUBSCRIBE Gone")
    ok(c, "s SUBSCRIBE Sent")
    assert ok(c, 'b LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))') == [
        '* LIST (\\NonExistent \\Subscribed) "/" "Gone"',
        '* LIST (\\Subscribed \\Sent) "/" "Sent"',
        '* STATUS "Sent" (MESSAGES 0)']


def test_list_many_mailboxes_chunked(server):
    """A LIST larger than one output chunk (256 KiB) comes whole and in
    order. The folders are made on disk, as another program would."""
    c = server.login(USER, PASSWORD)
    md = maildir(server)
    uid, gid = os.stat(md).st_uid, os.stat(md).st_gid
    names = [f"{i:04d}-" + "x" * 200 for i in range(700)]
    for n in names:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, "." + n, sub))
        for path in (os.path.join(md, "." + n), *(os.path.join(md, "." + n, s)
                                                  for s in ("cur", "new", "tmp"))):
            os.chown(path, uid, gid)
    lines = ok(c, 'a LIST "" "0*" RETURN (STATUS (MESSAGES UIDNEXT UNSEEN SIZE))')
    assert sum(len(l) + 2 for l in lines) > 256 * 1024
    assert lines[0::2] == [f'* LIST (\\HasNoChildren) "/" "{n}"' for n in names]
    assert lines[1::2] == [f'* STATUS "{n}" (MESSAGES 0 UIDNEXT 1 UNSEEN 0 SIZE 0)'
                           for n in names]
    # The session goes on normally.
    assert ok(c, 'b LIST "" "INBOX"') == ['* LIST (\\HasNoChildren) "/" "INBOX"']


# ------------------------------------------------------------------ LSUB

def test_lsub(server):
    c = server.login(USER, PASSWORD)
    rfc5258_mailboxes(c)
    assert ok(c, 'a LSUB "" "*"') == [
        '* LSUB () "/" "INBOX"',
        '* LSUB () "/" "Fruit/Banana"',
        '* LSUB () "/" "Fruit/Peach"',
        '* LSUB () "/" "Vegetable"',
        '* LSUB () "/" "Vegetable/Broccoli"']
    # RFC 3501 §6.3.9: "%" shows an unsubscribed parent as \Noselect.
    assert ok(c, 'b LSUB "" "%"') == [
        '* LSUB () "/" "INBOX"',
        '* LSUB (\\Noselect) "/" "Fruit"',
        '* LSUB () "/" "Vegetable"']
    assert ok(c, 'c LSUB "Fruit/" "%"') == [
        '* LSUB () "/" "Fruit/Banana"', '* LSUB () "/" "Fruit/Peach"']
    assert c.cmd('d LSUB "" ""') == ['* LSUB (\\Noselect) "/" ""', "d OK LSUB completed"]
    ok(c, "e UNSUBSCRIBE Fruit/Banana")
    ok(c, "f UNSUBSCRIBE Fruit/Peach")
    # Unsubscribing what is not subscribed is fine.
    ok(c, "g UNSUBSCRIBE Fruit/Peach")
    assert ok(c, 'h LSUB "" "%"') == ['* LSUB () "/" "INBOX"', '* LSUB () "/" "Vegetable"']


def test_subscribe_errors(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("a SUBSCRIBE")[-1].startswith("a BAD")
    assert c.cmd("b SUBSCRIBE a b")[-1].startswith("b BAD")
    assert c.cmd('c SUBSCRIBE "a/../b"')[-1].startswith("c NO [CANNOT]")
    assert c.cmd('d UNSUBSCRIBE "&Jjo"')[-1].startswith("d BAD")
    # A name that does not exist may be subscribed (RFC 9051 §6.3.7).
    ok(c, "e SUBSCRIBE Later")
    assert ok(c, 'f LSUB "" "L*"') == ['* LSUB () "/" "Later"']


# ---------------------------------------------------------------- CREATE

def test_create_hierarchy(server):
    c = server.login(USER, PASSWORD)
    assert created(c.cmd("a CREATE Archive/2024"), "a")
    # A trailing separator is dropped (RFC 9051 §6.3.4).
    assert created(c.cmd('b CREATE "Projects/Alpha/"'), "b")
    assert ok(c, 'c LIST "" "*"') == [
        '* LIST (\\HasNoChildren) "/" "INBOX"',
        '* LIST (\\HasChildren \\Archive) "/" "Archive"',
        '* LIST (\\HasNoChildren) "/" "Archive/2024"',
        '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
        '* LIST (\\Noselect \\HasChildren) "/" "Projects"',
        '* LIST (\\HasNoChildren) "/" "Projects/Alpha"',
        '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        '* LIST (\\HasNoChildren \\Trash) "/" "Trash"']
    assert ok(c, "d SELECT Archive/2024")[0] == "* 0 EXISTS"
    # The parent that only exists through its child can be created.
    assert created(c.cmd("e CREATE Projects"), "e")
    assert ok(c, 'f LIST "" "Projects"') == ['* LIST (\\HasChildren) "/" "Projects"']


def test_create_errors(server):
    c = server.login(USER, PASSWORD)
    ok(c, "a CREATE Work")
    assert c.cmd("b CREATE Work") == ["b NO [ALREADYEXISTS] Mailbox already exists"]
    assert c.cmd("c CREATE INBOX") == ["c NO [ALREADYEXISTS] Mailbox already exists"]
    assert c.cmd("d CREATE inbox") == ["d NO [ALREADYEXISTS] Mailbox already exists"]
    assert c.cmd('e CREATE "Work/"') == ["e NO [ALREADYEXISTS] Mailbox already exists"]
    for name in ('".."', '"a/../b"', '"a.b"', '"/abs"', '"a//b"', '"Work//"', '"cur"',
                 '"~home"', '""', '"' + "x" * 300 + '"'):
        lines = c.cmd(f"f CREATE {name}")
        assert len(lines) == 1 and lines[0].startswith("f NO [CANNOT]"), (name, lines)
    # A control character (in a literal: quoted strings cannot hold it).
    c.sendline("g CREATE {3+}")
    c.send(b"a\x01b\r\n")
    assert re.match(r"g (NO|BAD) \[CANNOT\] ", c.response()[-1])
    # Invalid modified UTF-7, and 8-bit without UTF8=ACCEPT.
    for name in ('"a&b"', '"&Jjo"', '"&AGE-"', '"a&"'):
        lines = c.cmd(f"h CREATE {name}")
        assert len(lines) == 1 and lines[0].startswith("h BAD"), (name, lines)
    c.send(b'i CREATE "Entw\xc3\xbcrfe"\r\n')
    assert c.response()[-1].startswith("i BAD")
    assert c.cmd("j CREATE")[-1].startswith("j BAD")
    assert c.cmd("k CREATE a (USE (\\Sent)) b")[-1].startswith("k BAD")
    # Nothing of that was created.
    assert [l for l in ok(c, 'l LIST "" "*"') if l not in DEFAULT_LIST] == [
        '* LIST (\\HasNoChildren) "/" "Work"']


def test_create_special_use(server):
    """CREATE-SPECIAL-USE (RFC 6154 §3)."""
    c = server.login(USER, PASSWORD)
    assert created(c.cmd("a CREATE Everything (USE (\\All))"), "a")
    assert created(c.cmd("b CREATE Starred (USE (\\Flagged \\Archive))"), "b")
    assert created(c.cmd("c CREATE Plain (USE ())"), "c")
    assert ok(c, 'd LIST (SPECIAL-USE) "" "*"') == [
        '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
        '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        '* LIST (\\HasNoChildren \\All) "/" "Everything"',
        '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
        '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        '* LIST (\\HasNoChildren \\Archive \\Flagged) "/" "Starred"',
        '* LIST (\\HasNoChildren \\Trash) "/" "Trash"']
    assert ok(c, 'e LIST "" "Plain"') == ['* LIST (\\HasNoChildren) "/" "Plain"']
    assert c.cmd("f CREATE Odd (USE (\\Important))") == [
        "f NO [USEATTR] Unsupported special-use attribute"]
    for params in ("(FOO (\\Sent))", "(USE)", "(USE \\Sent)", "USE", "(USE (\"x\"))"):
        lines = c.cmd(f"g CREATE Odd {params}")
        assert len(lines) == 1 and lines[0].startswith("g BAD"), (params, lines)
    assert ok(c, 'h LIST "" "Odd"') == []


# ------------------------------------------------------------- names

def mutf7(s):
    """Modified UTF-7 (RFC 3501 §5.1.3) of s."""
    import base64
    out, run = [], []

    def flush():
        if run:
            b = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def test_mutf7_and_utf8_names(server):
    c = server.login(USER, PASSWORD)
    assert mutf7("Entwürfe") == "Entw&APw-rfe"
    ok(c, 'a CREATE "Entw&APw-rfe"')
    ok(c, 'b CREATE "Tom &- Jerry"')
    ok(c, f'c CREATE "{mutf7("日本語/Ünter")}"')
    assert ok(c, 'd LIST "" "*"') == DEFAULT_LIST[:3] + [
        '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"',
        DEFAULT_LIST[3], DEFAULT_LIST[4],
        '* LIST (\\HasNoChildren) "/" "Tom &- Jerry"',
        DEFAULT_LIST[5],
        f'* LIST (\\Noselect \\HasChildren) "/" "{mutf7("日本語")}"',
        f'* LIST (\\HasNoChildren) "/" "{mutf7("日本語/Ünter")}"']
    assert ok(c, 'e LIST "" "Entw&APw-*"') == ['* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"']
    assert ok(c, 'f STATUS "Entw&APw-rfe" (MESSAGES)') == ['* STATUS "Entw&APw-rfe" (MESSAGES 0)']
    # The folder on disk is Dovecot's: Maildir++ in modified UTF-7.
    assert os.path.isdir(os.path.join(maildir(server), ".Entw&APw-rfe", "cur"))

    # The same names in UTF-8 once UTF8=ACCEPT is on (RFC 6855 §3).
    u = server.login(USER, PASSWORD)
    assert ok(u, "g ENABLE UTF8=ACCEPT") == ["* ENABLED UTF8=ACCEPT"]
    lines = [utf8(l) for l in ok(u, 'h LIST "" "*"')]
    assert '* LIST (\\HasNoChildren) "/" "Entwürfe"' in lines
    assert '* LIST (\\HasNoChildren) "/" "日本語/Ünter"' in lines
    u.send('i CREATE "Größe"\r\n'.encode())
    assert created(u.response(), "i")
    u.send('j LIST "" "Gr*"\r\n'.encode())
    assert [utf8(l) for l in u.response()] == [
        '* LIST (\\HasNoChildren) "/" "Größe"', "j OK LIST completed"]
    u.send('k STATUS "Größe" (UIDNEXT)\r\n'.encode())
    assert [utf8(l) for l in u.response()] == [
        '* STATUS "Größe" (UIDNEXT 1)', "k OK STATUS completed"]
    # "&" is a plain character now.
    ok(u, 'l CREATE "R&D"')
    # The first session sees them in modified UTF-7.
    assert ok(c, 'm LIST "" "Gr*"') == [f'* LIST (\\HasNoChildren) "/" "{mutf7("Größe")}"']
    assert ok(c, 'n LIST "" "R*"') == ['* LIST (\\HasNoChildren) "/" "R&-D"']


def test_rev2_list(server):
    """IMAP4rev2: names in UTF-8, \\NonExistent for a missing parent."""
    c = server.login(USER, PASSWORD)
    ok(c, "a ENABLE IMAP4rev2")
    c.send('b CREATE "Ablage/Übrig"\r\n'.encode())
    assert created(c.response(), "b")
    c.send('c LIST "" "Abl*"\r\n'.encode())
    assert [utf8(l) for l in c.response()] == [
        '* LIST (\\NonExistent \\HasChildren) "/" "Ablage"',
        '* LIST (\\HasNoChildren) "/" "Ablage/Übrig"', "c OK LIST completed"]


# ---------------------------------------------------------------- DELETE

def test_delete(server):
    c = server.login(USER, PASSWORD)
    ok(c, "a CREATE Old")
    ok(c, "b CREATE Old/Child")
    assert c.cmd("c DELETE Old") == ["c OK DELETE completed"]
    # Its children stay (RFC 9051 §6.3.5); the parent is now only implied.
    assert ok(c, 'd LIST "" "Old*"') == [
        '* LIST (\\Noselect \\HasChildren) "/" "Old"',
        '* LIST (\\HasNoChildren) "/" "Old/Child"']
    assert c.cmd("e DELETE Old") == ["e NO [NONEXISTENT] Mailbox does not exist"]
    assert c.cmd("f DELETE Nope") == ["f NO [NONEXISTENT] Mailbox does not exist"]
    assert c.cmd("g DELETE INBOX") == ["g NO [CANNOT] INBOX cannot be deleted"]
    assert c.cmd("h DELETE inbox") == ["h NO [CANNOT] INBOX cannot be deleted"]
    assert c.cmd("i DELETE")[-1].startswith("i BAD")
    assert c.cmd('j DELETE ".."')[-1].startswith("j NO [CANNOT]")
    ok(c, "k DELETE Old/Child")
    assert ok(c, 'l LIST "" "Old*"') == []
    assert not os.path.exists(os.path.join(maildir(server), ".Old.Child"))


def test_delete_selected_mailbox(server):
    """As Dovecot: deleting the selected mailbox closes it."""
    server.deliver(USER, MSG)
    c = server.login(USER, PASSWORD)
    ok(c, "a CREATE Doomed")
    ok(c, "b SELECT Doomed")
    assert c.cmd("c DELETE Doomed") == ["c OK DELETE completed"]
    assert c.cmd("d CHECK") == ["d BAD No mailbox selected"]
    assert ok(c, "e SELECT INBOX")[0] == "* 1 EXISTS"


# ---------------------------------------------------------------- RENAME

def test_rename(server):
    c = server.login(USER, PASSWORD)
    ok(c, "a CREATE Proj/2024")
    ok(c, "b CREATE Proj")
    server.deliver(USER, MSG, mailbox="Proj/2024")
    assert c.cmd("c RENAME Proj Done") == ["c OK RENAME completed"]
    # Its children move with it, messages and UIDVALIDITY too.
    assert ok(c, 'd LIST "" "Done*"') == [
        '* LIST (\\HasChildren) "/" "Done"', '* LIST (\\HasNoChildren) "/" "Done/2024"']
    assert ok(c, 'e LIST "" "Proj*"') == []
    assert ok(c, "f STATUS Done/2024 (MESSAGES)") == ['* STATUS "Done/2024" (MESSAGES 1)']
    assert c.cmd("g RENAME Nope Other") == ["g NO [NONEXISTENT] Mailbox does not exist"]
    assert c.cmd("h RENAME Done Sent") == ["h NO [ALREADYEXISTS] Mailbox already exists"]
    assert c.cmd("i RENAME Done INBOX") == ["i NO [ALREADYEXISTS] Mailbox already exists"]
    assert c.cmd("j RENAME Done Done/Inside")[-1].startswith("j NO [CANNOT]")
    assert c.cmd('k RENAME Done ".."')[-1].startswith("k NO [CANNOT]")
    assert c.cmd("l RENAME Done")[-1].startswith("l BAD")
    assert c.cmd('m RENAME Done "&Jjo"')[-1].startswith("m BAD")
    assert c.cmd('n RENAME Done "Entw&APw-rfe/2"') == ["n OK RENAME completed"]
    assert ok(c, 'o LIST "" "Entw&APw-rfe/*"') == [
        '* LIST (\\HasChildren) "/" "Entw&APw-rfe/2"',
        '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe/2/2024"']


def test_rename_inbox(server):
    """RFC 9051 §6.3.6: INBOX's messages move to the new name; INBOX stays,
    empty."""
    server.deliver(USER, MSG)
    server.deliver(USER, MSG)
    c = server.login(USER, PASSWORD)
    assert c.cmd("a RENAME INBOX Saved") == ["a OK RENAME completed"]
    assert ok(c, "b STATUS INBOX (MESSAGES)") == ['* STATUS "INBOX" (MESSAGES 0)']
    assert ok(c, "c STATUS Saved (MESSAGES)") == ['* STATUS "Saved" (MESSAGES 2)']


def test_rename_selected_mailbox(server):
    """The selected mailbox (or its parent) renamed stays selected."""
    c = server.login(USER, PASSWORD)
    ok(c, "a CREATE Top")
    ok(c, "a CREATE Top/Box")
    server.deliver(USER, MSG, mailbox="Top/Box")
    ok(c, "b SELECT Top/Box")
    assert c.cmd("c RENAME Top Moved") == ["c OK RENAME completed"]
    assert c.cmd("d CHECK") == ["d OK CHECK completed"]
    server.deliver(USER, MSG, mailbox="Moved/Box")
    assert c.cmd("e CHECK") == ["* 2 EXISTS", "e OK CHECK completed"]
    assert c.cmd("f RENAME Moved/Box Box") == ["f OK RENAME completed"]
    assert c.cmd("g CHECK") == ["g OK CHECK completed"]
    assert ok(c, "h STATUS Box (MESSAGES)") == ['* STATUS "Box" (MESSAGES 2)']


# ---------------------------------------------------------------- STATUS

def test_status(server):
    server.deliver(USER, MSG)
    server.deliver(USER, MSG + b"more\r\n")
    server.deliver(USER, MSG)
    c = server.login(USER, PASSWORD)
    lines = ok(c, "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE "
                  "HIGHESTMODSEQ DELETED APPENDLIMIT)")
    assert len(lines) == 1
    m = re.fullmatch(r'\* STATUS "INBOX" \(MESSAGES 3 UIDNEXT 4 UIDVALIDITY (\d+) UNSEEN 3 '
                     r'RECENT 0 SIZE (\d+) HIGHESTMODSEQ (\d+) DELETED 0 APPENDLIMIT (\d+)\)',
                     lines[0])
    assert m, lines
    assert int(m.group(2)) == 3 * len(MSG) + 6
    uidvalidity = m.group(1)
    # Items in the client's order, each once.
    assert ok(c, "b STATUS inbox (uidvalidity MESSAGES uidvalidity)") == [
        f'* STATUS "INBOX" (UIDVALIDITY {uidvalidity} MESSAGES 3)']
    # Seen and deleted by another program (Maildir flags S and T).
    set_maildir_flags(server, "", "ST")
    assert ok(c, "c STATUS INBOX (UNSEEN DELETED MESSAGES)") == [
        '* STATUS "INBOX" (UNSEEN 0 DELETED 3 MESSAGES 3)']
    assert ok(c, "d STATUS Sent (MESSAGES SIZE DELETED UIDNEXT)") == [
        '* STATUS "Sent" (MESSAGES 0 SIZE 0 DELETED 0 UIDNEXT 1)']
    # STATUS of the selected mailbox is allowed.
    ok(c, "e SELECT INBOX")
    assert ok(c, "f STATUS INBOX (MESSAGES)") == ['* STATUS "INBOX" (MESSAGES 3)']


def test_status_errors(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("a STATUS Nope (MESSAGES)") == ["a NO [NONEXISTENT] Mailbox does not exist"]
    ok(c, "b CREATE Only/Child")
    assert c.cmd("c STATUS Only (MESSAGES)") == ["c NO [NONEXISTENT] Mailbox does not exist"]
    for line in ("STATUS INBOX", "STATUS INBOX MESSAGES", "STATUS INBOX ()",
                 "STATUS INBOX (BOGUS)", "STATUS INBOX (MESSAGES) x", "STATUS",
                 'STATUS "&Jjo" (MESSAGES)', "STATUS INBOX ((MESSAGES))"):
        lines = c.cmd("d " + line)
        assert len(lines) == 1 and lines[0].startswith("d BAD"), (line, lines)
    assert c.cmd('e STATUS ".." (MESSAGES)')[-1].startswith("e NO [CANNOT]")


# ----------------------------------------------------------------- QUOTA

def test_quota_unlimited(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("a GETQUOTAROOT INBOX") == [
        '* QUOTAROOT "INBOX" ""', '* QUOTA "" ()', "a OK GETQUOTAROOT completed"]
    assert c.cmd('b GETQUOTA ""') == ['* QUOTA "" ()', "b OK GETQUOTA completed"]


def test_quota_limits(server, auth_env):
    auth_env.ternctl("user", "quota", USER, "--storage", "1M", "--messages", "50")
    big = MSG + b"x" * 3000 + b"\r\n"
    server.deliver(USER, MSG)
    server.deliver(USER, big, mailbox="Sent")
    c = server.login(USER, PASSWORD)
    kib = (len(MSG) + len(big) + 1023) // 1024
    quota = f'* QUOTA "" (STORAGE {kib} 1024 MESSAGE 2 50)'
    assert c.cmd("a GETQUOTAROOT Sent") == [
        '* QUOTAROOT "Sent" ""', quota, "a OK GETQUOTAROOT completed"]
    assert c.cmd('b GETQUOTA ""') == [quota, "b OK GETQUOTA completed"]
    assert c.cmd('c GETQUOTA "user.alice"') == ["c NO [NONEXISTENT] No such quota root"]
    assert c.cmd("d GETQUOTAROOT Nope") == ["d NO [NONEXISTENT] Mailbox does not exist"]
    assert c.cmd("e GETQUOTA")[-1].startswith("e BAD")
    assert c.cmd("f GETQUOTAROOT")[-1].startswith("f BAD")
    assert c.cmd('g SETQUOTA "" (STORAGE 4096)') == [
        "g NO [NOPERM] Quota limits are set by the administrator"]
    assert c.cmd('h SETQUOTA ""')[-1].startswith("h BAD")

    # Only the resources with a limit are shown.
    auth_env.ternctl("user", "quota", USER, "--storage", "unlimited")
    c = server.login(USER, PASSWORD)
    assert ok(c, 'i GETQUOTA ""') == ['* QUOTA "" (MESSAGE 2 50)']
    auth_env.ternctl("user", "quota", USER, "--messages", "0", "--storage", "2G")
    c = server.login(USER, PASSWORD)
    assert ok(c, 'j GETQUOTA ""') == [f'* QUOTA "" (STORAGE {kib} {2 * 1024 * 1024})']


# ------------------------------------------------ as a real client would

def test_imaplib(server):
    server.deliver(USER, MSG)
    m = server.imaplib()
    m.login(USER, PASSWORD)
    typ, data = m.list()
    assert typ == "OK"
    assert data == [l[len("* LIST "):].encode() for l in DEFAULT_LIST]
    assert m.create("Reports/2024")[0] == "OK"
    assert m.create("Entw&APw-rfe")[0] == "OK"
    typ, data = m.list("Reports", "/*")
    assert typ == "OK" and data == [b'(\\HasNoChildren) "/" "Reports/2024"']
    typ, data = m.list(pattern="%")
    assert b'(\\Noselect \\HasChildren) "/" "Reports"' in data
    assert b'(\\HasNoChildren) "/" "Entw&APw-rfe"' in data
    typ, data = m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")
    assert typ == "OK" and data == [b'"INBOX" (MESSAGES 1 UNSEEN 1 UIDNEXT 2)']
    assert m.rename("Reports/2024", "Reports/2025")[0] == "OK"
    assert m.subscribe("Reports/2025")[0] == "OK"
    typ, data = m.lsub()
    assert typ == "OK" and data == [b'() "/" "Reports/2025"']
    assert m.unsubscribe("Reports/2025")[0] == "OK"
    assert m.delete("Reports/2025")[0] == "OK"
    typ, data = m.delete("Reports/2025")
    assert typ == "NO" and data == [b"[NONEXISTENT] Mailbox does not exist"]
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK" and data == [[b'"INBOX" ""'], [b'"" ()']]
    assert m.select("Entw&APw-rfe")[0] == "OK"
    m.logout()
