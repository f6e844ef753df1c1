"""tern-imapd STORE, COPY, MOVE, EXPUNGE and their UID forms (RFC 9051
§6.4.3, §6.4.6-6.4.9), CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3),
UIDPLUS's COPYUID and UID EXPUNGE (RFC 4315), MOVE (RFC 6851): exact
untagged responses, errors, two sessions on one mailbox, and the flags in
the Maildir file names."""
import os
import re

import pytest

USER, PASSWORD = "alice@example.org", "secret-pw"


def msg(i):
    return (f"From: a@example.org\r\nTo: alice@example.org\r\nSubject: m{i}\r\n"
            f"\r\nbody {i}\r\n").encode()


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


def deliver(server, n, mailbox=None):
    for i in range(1, n + 1):
        server.deliver(USER, msg(i), mailbox)


def select(c, box="INBOX", tag="s", cmd="SELECT"):
    lines = c.cmd(f"{tag} {cmd} {box}")
    assert lines[-1].startswith(f"{tag} OK"), lines
    return lines


def code_value(lines, code):
    for line in lines:
        m = re.match(rf"\* OK \[{code} (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {code} in {lines}")


def uidvalidity(c, box):
    """UIDVALIDITY of box, by selecting it (the caller selects back)."""
    return code_value(select(c, box, tag="v"), "UIDVALIDITY")


def maildir(server, box="INBOX"):
    root = os.path.join(server.user_dir(USER), "Maildir")
    return root if box == "INBOX" else os.path.join(root, "." + box)


def file_info(server, uid, box="INBOX"):
    """The info part (after ":2,") of the file of uid in box, or None."""
    for sub in ("cur", "new"):
        d = os.path.join(maildir(server, box), sub)
        for name in os.listdir(d):
            m = re.search(r",U=(\d+)(?::2,([A-Za-z]*))?$", name)
            if m and int(m.group(1)) == uid:
                return m.group(2) or ""
    return None


def uids_on_disk(server, box="INBOX"):
    found = []
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(maildir(server, box), sub)):
            m = re.search(r",U=(\d+)", name)
            if m:
                found.append(int(m.group(1)))
    return sorted(found)


def noop_quiet(c, tag="n"):
    assert c.cmd(f"{tag} NOOP") == [f"{tag} OK NOOP completed"]


# ---------------------------------------------------------------- STORE


def test_store_forms(server):
    deliver(server, 3)
    c = server.login(USER, PASSWORD)
    select(c)
    assert c.cmd(r"a STORE 1 FLAGS (\Seen)") == [r"* 1 FETCH (FLAGS (\Seen))",
                                                 "a OK Store completed"]
    assert c.cmd(r"b STORE 1:2 +FLAGS (\Flagged $Work)") == [
        r"* 1 FETCH (FLAGS (\Flagged \Seen $Work))",
        r"* 2 FETCH (FLAGS (\Flagged $Work))",
        "b OK Store completed"]
    # A single flag without parentheses; message 3 is not changed.
    assert c.cmd(r"c STORE 1:3 -FLAGS \Flagged") == [
        r"* 1 FETCH (FLAGS (\Seen $Work))",
        r"* 2 FETCH (FLAGS ($Work))",
        "c OK Store completed"]
    # Several flag atoms; a keyword matched without case.
    assert c.cmd(r"d STORE 3 +FLAGS \Answered \Draft $WORK") == [
        r"* 3 FETCH (FLAGS (\Answered \Draft $Work))",
        "d OK Store completed"]
    # Nothing changes: nothing to report.
    assert c.cmd("e STORE 2 +FLAGS ($Work)") == ["e OK Store completed"]
    assert c.cmd("f STORE * FLAGS ()") == [r"* 3 FETCH (FLAGS ())", "f OK Store completed"]
    assert c.cmd("g store 2 -flags ($work)") == [r"* 2 FETCH (FLAGS ())",
                                                 "g OK Store completed"]
    # The session's own changes are not told again.
    noop_quiet(c)
    assert c.cmd(r"h UID STORE 1 +FLAGS (\Deleted)") == [
        r"* 1 FETCH (FLAGS (\Deleted \Seen $Work) UID 1)", "h OK Store completed"]
    assert c.cmd(r"i UID STORE 2:* FLAGS (\Seen)") == [
        r"* 2 FETCH (FLAGS (\Seen) UID 2)", r"* 3 FETCH (FLAGS (\Seen) UID 3)",
        "i OK Store completed"]
    noop_quiet(c)


def test_store_silent(server):
    deliver(server, 3)
    c = server.login(USER, PASSWORD)
    select(c)
    assert c.cmd(r"a STORE 1:3 +FLAGS.SILENT (\Seen $Todo)") == ["a OK Store completed"]
    assert c.cmd(r"b STORE 2 -FLAGS.SILENT ($Todo)") == ["b OK Store completed"]
    assert c.cmd(r"c UID STORE 3 FLAGS.SILENT (\Flagged)") == ["c OK Store completed"]
    noop_quiet(c)
    assert [file_info(server, u) for u in (1, 2, 3)] == ["Sa", "S", "F"]


def test_store_maildir_names(server):
    deliver(server, 2)
    c = server.login(USER, PASSWORD)
    select(c)
    assert file_info(server, 1) == ""
    c.cmd(r"a STORE 1 FLAGS (\Seen \Flagged \Answered \Draft \Deleted)")
    assert file_info(server, 1) == "DFRST"
    c.cmd(r"b STORE 1 FLAGS (\Seen $One $Two)")
    assert file_info(server, 1) == "Sab"
    c.cmd(r"c STORE 2 +FLAGS ($Two)")
    assert file_info(server, 2) == "b"
    c.cmd(r"d STORE 1:2 -FLAGS ($One $Two \Seen)")
    assert file_info(server, 1) == "" and file_info(server, 2) == ""
    # The keyword list Dovecot's way.
    with open(os.path.join(maildir(server), "dovecot-keywords")) as f:
        assert f.read().split("\n")[:2] == ["0 $One", "1 $Two"]


def test_store_bad_syntax(server):
    deliver(server, 3)
    c = server.login(USER, PASSWORD)
    assert c.cmd(r"a STORE 1 FLAGS (\Seen)")[-1] == "a BAD No mailbox selected"
    select(c)
    for tag, args in [
            ("b", r"1 FLAGS"),
            ("c", r"1 FOO (\Seen)"),
            ("d", r"1 FLAGS (\Recent)"),
            ("e", r"1 FLAGS (\Bogus)"),
            ("f", r"1 (FOO 1) FLAGS (\Seen)"),
            ("g", r"1 (UNCHANGEDSINCE x) FLAGS (\Seen)"),
            ("h", r"1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS (\Seen)"),
            ("i", r"x:y FLAGS (\Seen)"),
            ("j", r'1 FLAGS "\\Seen"'),
            ("k", r"1 FLAGS ((\Seen))"),
            ("l", r"1 FLAGS (\Seen) (\Flagged)"),
            ("m", r"1 +FLAGS.LOUD (\Seen)"),
            ("o", r"(\Seen) FLAGS (\Seen)"),
            ("p", r"1 FLAGS (bad]kw)"),
    ]:
        lines = c.cmd(f"{tag} STORE {args}")
        assert len(lines) == 1 and lines[0].startswith(f"{tag} BAD "), (args, lines)
    assert c.cmd(r"q STORE 4 FLAGS (\Seen)") == ["q BAD Invalid message sequence number"]
    assert c.cmd(r"r STORE 0 FLAGS (\Seen)")[0].startswith("r BAD")
    # UIDs that do not exist are no error.
    assert c.cmd(r"t UID STORE 99:100 FLAGS (\Seen)") == ["t OK Store completed"]
    # Nothing was changed by any of these.
    assert [file_info(server, u) for u in (1, 2, 3)] == ["", "", ""]


def test_store_read_only(server):
    deliver(server, 2)
    c = server.login(USER, PASSWORD)
    select(c, cmd="EXAMINE")
    assert c.cmd(r"a STORE 1 +FLAGS (\Seen)") == ["a NO [READ-ONLY] Mailbox is read-only"]
    assert c.cmd(r"b UID STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\Seen)") == [
        "b NO [READ-ONLY] Mailbox is read-only"]
    assert c.cmd("c EXPUNGE") == ["c NO [READ-ONLY] Mailbox is read-only"]
    assert c.cmd("d UID EXPUNGE 1") == ["d NO [READ-ONLY] Mailbox is read-only"]
    assert c.cmd("e MOVE 1 Archive") == ["e NO [READ-ONLY] Mailbox is read-only"]
    assert file_info(server, 1) == ""
    # Copying out of a read-only mailbox is fine.
    lines = c.cmd("f COPY 1 Archive")
    assert re.fullmatch(r"f OK \[COPYUID \d+ 1 1\] Copy completed", lines[-1]), lines


def test_store_keyword_limit(server):
    deliver(server, 1)
    c = server.login(USER, PASSWORD)
    select(c)
    kws = " ".join(f"k{i}" for i in range(27))
    lines = c.cmd(f"a STORE 1 +FLAGS ({kws})")
    assert len(lines) == 1 and lines[0].startswith("a NO [LIMIT] "), lines
    assert file_info(server, 1) == ""
    noop_quiet(c)
    kws = " ".join(f"k{i}" for i in range(26))
    lines = c.cmd(f"b STORE 1 +FLAGS.SILENT ({kws})")
    assert lines == ["b OK Store completed"]
    assert file_info(server, 1) == "abcdefghijklmnopqrstuvwxyz"
    lines = c.cmd("c STORE 1 +FLAGS (another)")
    assert len(lines) == 1 and lines[0].startswith("c NO [LIMIT] "), lines


def test_store_unchangedsince(server):
    deliver(server, 3)
    c = server.login(USER, PASSWORD)
    h = code_value(select(c), "HIGHESTMODSEQ")
    # Without CONDSTORE: no MODSEQ.
    assert c.cmd(r"a STORE 1 +FLAGS (\Seen)") == [r"* 1 FETCH (FLAGS (\Seen))",
                                                  "a OK Store completed"]
    # Message 1 changed after h: it fails, the others change (h + 2).
    assert c.cmd(rf"b STORE 1:3 (UNCHANGEDSINCE {h}) +FLAGS (\Flagged)") == [
        rf"* 2 FETCH (FLAGS (\Flagged) MODSEQ ({h + 2}))",
        rf"* 3 FETCH (FLAGS (\Flagged) MODSEQ ({h + 2}))",
        "b OK [MODIFIED 1] Conditional store failed"]
    assert file_info(server, 1) == "S"
    # UNCHANGEDSINCE 0 fails for every message; UID STORE lists UIDs.
    assert c.cmd(r"c UID STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\Draft)") == [
        "c OK [MODIFIED 1:3] Conditional store failed"]
    # .SILENT with CONDSTORE still tells the new modseq (RFC 7162 §3.1.3).
    assert c.cmd(rf"d STORE 2 (UNCHANGEDSINCE {h + 2}) -FLAGS.SILENT (\Flagged)") == [
        rf"* 2 FETCH (MODSEQ ({h + 3}))", "d OK Store completed"]
    assert c.cmd(r"e UID STORE 3 +FLAGS.SILENT (\Seen)") == [
        rf"* 3 FETCH (UID 3 MODSEQ ({h + 4}))", "e OK Store completed"]
    # Messages left alone do not count as failed.
    assert c.cmd(rf"f STORE 1:3 (UNCHANGEDSINCE {h + 4}) +FLAGS (\Seen)") == [
        rf"* 2 FETCH (FLAGS (\Seen) MODSEQ ({h + 5}))", "f OK Store completed"]
    assert c.cmd(rf"g STORE 1,3 (UNCHANGEDSINCE {h + 1}) FLAGS ()") == [
        rf"* 1 FETCH (FLAGS () MODSEQ ({h + 6}))",
        "g OK [MODIFIED 3] Conditional store failed"]
    noop_quiet(c)
    assert [file_info(server, u) for u in (1, 2, 3)] == ["", "S", "FS"]


def test_store_output_in_chunks(imapd, auth_env, mail_user):
    """Output above the job's chunk (256 KiB) comes in several pieces, all
    of it, in order, then the tagged reply. (A larger output buffer: with
    the default 64K, a whole chunk is above the connection's cap.)"""
    auth_env.add_user(USER, PASSWORD)
    server = imapd(conf={"imap": {"output_buffer_size": "1M"}})
    _, uid, gid = mail_user
    c = server.login(USER, PASSWORD)
    select(c)
    new = os.path.join(maildir(server), "new")
    n = 400
    for i in range(n):
        path = os.path.join(new, f"1700000000.M{i}P1Q{i}.test")
        with open(path, "wb") as f:
            f.write(msg(i).replace(b"\r\n", b"\n"))
        os.chown(path, uid, gid)
    assert c.cmd("n NOOP") == [f"* {n} EXISTS", "n OK NOOP completed"]
    kws = [f"$Keyword{i:02d}" + "x" * 24 for i in range(26)]
    lines = c.cmd(f"a STORE 1:* +FLAGS (\\Seen {' '.join(kws)})")
    flags = "\\Seen " + " ".join(kws)
    assert sum(len(l) + 2 for l in lines) > 256 * 1024
    assert lines == [f"* {i} FETCH (FLAGS ({flags}))" for i in range(1, n + 1)] + \
        ["a OK Store completed"]
    noop_quiet(c)
    assert c.cmd(r"b STORE 1:* -FLAGS.SILENT (\Seen)") == ["b OK Store completed"]


# ---------------------------------------------------------- two sessions


def test_two_sessions_flags(server):
    deliver(server, 3)
    a = server.login(USER, PASSWORD)
    b = server.login(USER, PASSWORD)
    select(a)
    select(b)
    assert a.cmd(r"a1 STORE 2 +FLAGS (\Seen)") == [r"* 2 FETCH (FLAGS (\Seen))",
                                                   "a1 OK Store completed"]
    assert b.cmd("b1 NOOP") == [r"* 2 FETCH (FLAGS (\Seen))", "b1 OK NOOP completed"]
    noop_quiet(b)
    # B's own STORE first tells A's change, then answers for its own.
    assert a.cmd(r"a2 STORE 1 +FLAGS.SILENT (\Flagged)") == ["a2 OK Store completed"]
    assert b.cmd(r"b2 STORE 1 +FLAGS.SILENT (\Answered)") == [
        r"* 1 FETCH (FLAGS (\Flagged))", "b2 OK Store completed"]
    assert a.cmd("a3 NOOP") == [r"* 1 FETCH (FLAGS (\Answered \Flagged))",
                                "a3 OK NOOP completed"]
    noop_quiet(a)
    noop_quiet(b)
    assert file_info(server, 1) == "FR"


def test_two_sessions_expunge(server):
    deliver(server, 3)
    a = server.login(USER, PASSWORD)
    b = server.login(USER, PASSWORD)
    select(a)
    select(b)
    assert a.cmd(r"a1 STORE 2 +FLAGS.SILENT (\Deleted)") == ["a1 OK Store completed"]
    assert a.cmd("a2 EXPUNGE") == ["* 2 EXPUNGE", "a2 OK Expunge completed"]
    # B's non-UID STORE may not shift numbers: message 2 stays, refused.
    assert b.cmd(r"b1 STORE 2:3 +FLAGS (\Seen)") == [
        r"* 3 FETCH (FLAGS (\Seen))",
        "b1 NO [EXPUNGEISSUED] Some of the requested messages no longer exist"]
    lines = b.cmd("b2 FETCH 3 (UID)")
    assert lines[0] == "* 3 FETCH (UID 3)" and lines[1].startswith("b2 OK "), lines
    assert b.cmd("b3 NOOP") == ["* 2 EXPUNGE", "b3 OK NOOP completed"]
    noop_quiet(b)
    assert a.cmd("a3 NOOP") == [r"* 2 FETCH (FLAGS (\Seen))", "a3 OK NOOP completed"]


def test_two_sessions_uid_store_sees_expunge_once(server):
    deliver(server, 3)
    a = server.login(USER, PASSWORD)
    b = server.login(USER, PASSWORD)
    select(a)
    select(b)
    a.cmd(r"a1 STORE 2 +FLAGS.SILENT (\Deleted)")
    a.cmd("a2 EXPUNGE")
    # UID STORE may tell the expunge, and does so first.
    assert b.cmd(r"b1 UID STORE 1:* +FLAGS (\Flagged)") == [
        "* 2 EXPUNGE",
        r"* 1 FETCH (FLAGS (\Flagged) UID 1)",
        r"* 2 FETCH (FLAGS (\Flagged) UID 3)",
        "b1 OK Store completed"]
    noop_quiet(b)
    # COPY tells expunges after it is done (numbers were the client's).
    assert a.cmd(r"a3 STORE 1 +FLAGS.SILENT (\Deleted)") == [
        r"* 1 FETCH (FLAGS (\Flagged))", r"* 2 FETCH (FLAGS (\Flagged))",
        "a3 OK Store completed"]
    assert a.cmd("a4 EXPUNGE") == ["* 1 EXPUNGE", "a4 OK Expunge completed"]
    lines = b.cmd("b2 COPY 2 Archive")
    assert lines[0] == "* 1 EXPUNGE", lines
    assert re.fullmatch(r"b2 OK \[COPYUID \d+ 3 1\] Copy completed", lines[-1]), lines
    assert len(lines) == 2
    noop_quiet(b)


def test_copy_refuses_expunged(server):
    deliver(server, 3)
    a = server.login(USER, PASSWORD)
    b = server.login(USER, PASSWORD)
    select(a)
    select(b)
    a.cmd(r"a1 STORE 2 +FLAGS.SILENT (\Deleted)")
    a.cmd("a2 EXPUNGE")
    assert b.cmd("b1 COPY 1:2 Archive") == [
        "* 2 EXPUNGE",
        "b1 NO [EXPUNGEISSUED] Some of the requested messages no longer exist"]
    assert uids_on_disk(server, "Archive") == []
    assert b.cmd("b2 MOVE 2 Archive")[-1] == "b2 OK Move completed"


# ----------------------------------------------------------- COPY, MOVE


def test_copy_copyuid(server):
    deliver(server, 5)
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c, "Archive")
    select(c)
    c.cmd(r"f STORE 2 +FLAGS.SILENT (\Seen $Work)")
    assert c.cmd("a COPY 2,4:5 Archive") == [f"a OK [COPYUID {v} 2,4:5 1:3] Copy completed"]
    assert c.cmd("b UID COPY 3,1 Archive") == [f"b OK [COPYUID {v} 1,3 4:5] Copy completed"]
    # The source is untouched; flags and keywords went along.
    assert uids_on_disk(server) == [1, 2, 3, 4, 5]
    assert uids_on_disk(server, "Archive") == [1, 2, 3, 4, 5]
    assert file_info(server, 1, "Archive") == "Sa"
    assert file_info(server, 2, "Archive") == ""
    noop_quiet(c)
    lines = select(c, "Archive")
    assert "* 5 EXISTS" in lines, lines
    assert code_value(lines, "UIDVALIDITY") == v
    assert code_value(lines, "UIDNEXT") == 6


def test_copy_same_message_twice(server):
    deliver(server, 2)
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c, "Archive")
    vi = uidvalidity(c, "INBOX")
    select(c)
    assert c.cmd("a COPY 1 Archive") == [f"a OK [COPYUID {v} 1 1] Copy completed"]
    assert c.cmd("b COPY 1 Archive") == [f"b OK [COPYUID {v} 1 2] Copy completed"]
    assert c.cmd("c COPY 2 INBOX") == ["* 3 EXISTS", f"c OK [COPYUID {vi} 2 3] Copy completed"]
    noop_quiet(c)
    assert "* 2 EXISTS" in select(c, "Archive")
    assert "* 3 EXISTS" in select(c, "INBOX")


def test_copy_errors(server):
    deliver(server, 2)
    c = server.login(USER, PASSWORD)
    assert c.cmd("a COPY 1 Archive") == ["a BAD No mailbox selected"]
    select(c)
    assert c.cmd("b COPY 1 Nope") == ["b NO [TRYCREATE] Mailbox does not exist"]
    assert c.cmd("c MOVE 1 Nope") == ["c NO [TRYCREATE] Mailbox does not exist"]
    assert c.cmd("d UID COPY 1 Nope/Deeper") == ["d NO [TRYCREATE] Mailbox does not exist"]
    assert c.cmd("e COPY 1")[0].startswith("e BAD ")
    assert c.cmd("f COPY 1 Archive extra")[0].startswith("f BAD ")
    assert c.cmd("g COPY 3 Archive") == ["g BAD Invalid message sequence number"]
    assert c.cmd("h COPY (1) Archive")[0].startswith("h BAD ")
    assert c.cmd("i COPY 1 (Archive)")[0].startswith("i BAD ")
    # An empty UID set copies nothing: OK without COPYUID.
    assert c.cmd("j UID COPY 50:60 Archive") == ["j OK No messages found"]
    assert c.cmd("k UID MOVE 50 Archive") == ["k OK No messages found"]
    assert uids_on_disk(server, "Archive") == []
    assert uids_on_disk(server) == [1, 2]


def test_copy_over_quota(server, auth_env):
    auth_env.ternctl("user", "quota", USER, "--messages", "3")
    deliver(server, 2)
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c, "Trash")
    select(c)
    assert c.cmd("a COPY 1:2 Trash") == ["a NO [OVERQUOTA] Quota exceeded"]
    assert uids_on_disk(server, "Trash") == []
    # A move adds nothing to the usage.
    assert c.cmd("b MOVE 1:2 Trash") == [f"* OK [COPYUID {v} 1:2 1:2] Moved UIDs",
                                         "* 1 EXPUNGE", "* 1 EXPUNGE",
                                         "b OK Move completed"]
    assert uids_on_disk(server, "Trash") == [1, 2]


def test_move_expunges(server):
    deliver(server, 6)
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c, "Archive")
    select(c)
    assert c.cmd("a MOVE 2,3,5 Archive") == [
        f"* OK [COPYUID {v} 2:3,5 1:3] Moved UIDs",
        "* 2 EXPUNGE", "* 2 EXPUNGE", "* 3 EXPUNGE",
        "a OK Move completed"]
    noop_quiet(c)
    assert uids_on_disk(server) == [1, 4, 6]
    assert uids_on_disk(server, "Archive") == [1, 2, 3]
    # Now 1, 4, 6 are messages 1..3.
    assert c.cmd("b UID MOVE 6,1 Archive") == [
        f"* OK [COPYUID {v} 1,6 4:5] Moved UIDs", "* 1 EXPUNGE", "* 2 EXPUNGE",
        "b OK Move completed"]
    assert c.cmd("c MOVE 1 Archive") == [f"* OK [COPYUID {v} 4 6] Moved UIDs",
                                         "* 1 EXPUNGE", "c OK Move completed"]
    assert uids_on_disk(server) == []
    lines = select(c, "Archive")
    assert "* 6 EXISTS" in lines
    # Into the mailbox itself: a new UID at the end.
    assert c.cmd("d MOVE 2 Archive") == [f"* OK [COPYUID {v} 2 7] Moved UIDs",
                                         "* 2 EXPUNGE", "* 6 EXISTS", "d OK Move completed"]
    noop_quiet(c)
    assert uids_on_disk(server, "Archive") == [1, 3, 4, 5, 6, 7]
    assert "* 6 EXISTS" in select(c, "Archive")


def test_move_qresync(server):
    deliver(server, 4)
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c, "Archive")
    assert c.cmd("e ENABLE QRESYNC") == ["* ENABLED QRESYNC", "e OK Enabled"]
    select(c)
    assert c.cmd("a MOVE 1,3:4 Archive") == [
        f"* OK [COPYUID {v} 1,3:4 1:3] Moved UIDs",
        "* VANISHED 1,3:4",
        "a OK Move completed"]
    noop_quiet(c)
    h = code_value(select(c), "HIGHESTMODSEQ")
    # With QRESYNC every FETCH carries UID and MODSEQ.
    assert c.cmd(r"b STORE 1 +FLAGS (\Seen)") == [
        rf"* 1 FETCH (FLAGS (\Seen) UID 2 MODSEQ ({h + 1}))", "b OK Store completed"]
    assert c.cmd(r"c STORE 1 +FLAGS.SILENT (\Deleted)") == [
        rf"* 1 FETCH (UID 2 MODSEQ ({h + 2}))", "c OK Store completed"]
    assert c.cmd("d EXPUNGE") == ["* VANISHED 2", "d OK Expunge completed"]


# -------------------------------------------------------------- EXPUNGE


def test_expunge_numbering(server):
    deliver(server, 6)
    c = server.login(USER, PASSWORD)
    select(c)
    assert c.cmd(r"a STORE 2,3,5 +FLAGS.SILENT (\Deleted)") == ["a OK Store completed"]
    assert c.cmd("b EXPUNGE") == ["* 2 EXPUNGE", "* 2 EXPUNGE", "* 3 EXPUNGE",
                                  "b OK Expunge completed"]
    assert c.cmd("c EXPUNGE") == ["c OK Expunge completed"]
    noop_quiet(c)
    assert uids_on_disk(server) == [1, 4, 6]
    assert c.cmd("d EXPUNGE 1")[0].startswith("d BAD ")


def test_uid_expunge(server):
    deliver(server, 5)
    c = server.login(USER, PASSWORD)
    select(c)
    c.cmd(r"a STORE 1:4 +FLAGS.SILENT (\Deleted)")
    # Only \Deleted messages inside the set: 2 and 3, not 5.
    assert c.cmd("b UID EXPUNGE 2:3,5") == ["* 2 EXPUNGE", "* 2 EXPUNGE",
                                            "b OK Expunge completed"]
    assert uids_on_disk(server) == [1, 4, 5]
    assert c.cmd("c UID EXPUNGE 99") == ["c OK Expunge completed"]
    assert c.cmd("d UID EXPUNGE")[0].startswith("d BAD ")
    assert c.cmd("e UID EXPUNGE 1 2")[0].startswith("e BAD ")
    assert c.cmd("f UID EXPUNGE x")[0].startswith("f BAD ")
    assert c.cmd("g EXPUNGE") == ["* 1 EXPUNGE", "* 1 EXPUNGE", "g OK Expunge completed"]
    assert uids_on_disk(server) == [5]


def test_expunge_tells_other_changes(server):
    deliver(server, 4)
    a = server.login(USER, PASSWORD)
    b = server.login(USER, PASSWORD)
    select(a)
    select(b)
    b.cmd(r"b1 STORE 4 +FLAGS.SILENT (\Deleted)")
    b.cmd("b2 EXPUNGE")
    a.cmd(r"a1 STORE 1 +FLAGS.SILENT (\Deleted)")
    # A's EXPUNGE tells B's expunge and its own, each message once.
    assert a.cmd("a2 EXPUNGE") == ["* 4 EXPUNGE", "* 1 EXPUNGE", "a2 OK Expunge completed"]
    noop_quiet(a)
    assert b.cmd("b3 NOOP") == ["* 1 EXPUNGE", "b3 OK NOOP completed"]
    server.deliver(USER, msg(9))
    assert a.cmd("a3 NOOP") == ["* 3 EXISTS", "a3 OK NOOP completed"]
    assert b.cmd(r"b4 STORE 3 +FLAGS (\Seen)") == ["* 3 EXISTS",
                                                   r"* 3 FETCH (FLAGS (\Seen))",
                                                   "b4 OK Store completed"]


# -------------------------------------------------------------- imaplib


def test_imaplib(server):
    deliver(server, 4)
    m = server.imaplib()
    m.login(USER, PASSWORD)
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"4"])
    typ, data = m.store("1:2", "+FLAGS", r"(\Seen)")
    assert typ == "OK" and data == [rb"1 (FLAGS (\Seen))", rb"2 (FLAGS (\Seen))"]
    typ, data = m.uid("STORE", "3", "+FLAGS.SILENT", r"(\Deleted)")
    assert typ == "OK"
    typ, data = m.copy("1", "Archive")
    assert typ == "OK" and re.fullmatch(rb"\[COPYUID \d+ 1 1\] Copy completed", data[0])
    typ, data = m.uid("MOVE", "2", "Archive")
    assert typ == "OK"
    assert re.fullmatch(rb"\[COPYUID \d+ 2 2\] Moved UIDs", m.untagged_responses["OK"][-1])
    assert m.untagged_responses.pop("EXPUNGE") == [b"2"]
    typ, data = m.expunge()
    # Message 3 (UID 3) became 2 after the move.
    assert typ == "OK" and data == [b"2"]
    typ, data = m.select("Archive", readonly=True)
    assert data == [b"2"]
    m.logout()


def test_reselect_shows_other_sessions_changes(server):
    """SELECT of the mailbox already selected keeps the session's view of
    it but must show it as it is now: another session's expunge, flag
    change and delivery all appear, and no untagged update for the old
    view leaks out."""
    deliver(server, 4)
    a = server.login(USER, PASSWORD)
    b = server.login(USER, PASSWORD)
    select(a)
    select(b)
    assert b.cmd(r"b1 STORE 2 +FLAGS.SILENT (\Deleted)") == ["b1 OK Store completed"]
    assert b.cmd("b2 EXPUNGE") == ["* 2 EXPUNGE", "b2 OK Expunge completed"]
    assert b.cmd(r"b3 STORE 3 +FLAGS.SILENT (\Flagged)") == ["b3 OK Store completed"]
    deliver(server, 1)
    lines = a.cmd("s2 SELECT INBOX")
    assert "* 4 EXISTS" in lines, lines
    assert not any("EXPUNGE" in l or "FETCH" in l for l in lines), lines
    assert lines[-1] == "s2 OK [READ-WRITE] SELECT completed", lines
    lines = a.cmd("f FETCH 1:* (UID FLAGS)")
    assert lines[:-1] == ["* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 3 FLAGS ())",
                          r"* 3 FETCH (UID 4 FLAGS (\Flagged))",
                          "* 4 FETCH (UID 5 FLAGS ())"], lines
    noop_quiet(a)
