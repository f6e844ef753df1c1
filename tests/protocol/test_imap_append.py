"""tern-imapd APPEND and MULTIAPPEND: synchronising and LITERAL+ literals,
flags and internal date, APPENDUID (RFC 4315), MULTIAPPEND (RFC 3502),
literal8 (BINARY, RFC 3516), APPENDLIMIT/TOOBIG (RFC 7889), TRYCREATE,
streaming of large messages, and what a broken APPEND leaves behind
(RFC 9051 §6.3.12)."""
import calendar
import hashlib
import os
import re
import socket
import time

import pytest

from conftest import vmrss_kib

USER, PASSWORD = "alice@example.org", "secret-pw"

MSG = b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


def maildir(server, folder=""):
    return os.path.join(server.user_dir(USER), "Maildir", folder)


def messages(server, folder=""):
    """{uid: (path, file name)} of the messages in new/ and cur/."""
    out = {}
    for sub in ("new", "cur"):
        d = os.path.join(maildir(server, folder), sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            m = re.search(r",U=(\d+)", name)
            assert m, name
            out[int(m.group(1))] = (os.path.join(d, name), name)
    return out


def tmp_files(server, folder=""):
    return os.listdir(os.path.join(maildir(server, folder), "tmp"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def lf(data):
    return data.replace(b"\r\n", b"\n")


def uidvalidity(c, mailbox="INBOX"):
    lines = c.cmd(f"v EXAMINE {mailbox}")
    assert lines[-1].startswith("v OK"), lines
    (v,) = [int(l.split()[3].rstrip("]")) for l in lines
            if l.startswith("* OK [UIDVALIDITY ")]
    assert c.cmd("u UNSELECT")[-1].startswith("u OK")
    return v


def append_sync(c, tag, head, msg):
    """APPEND with a synchronising literal: the header, "+", the bytes."""
    c.send(f"{tag} APPEND {head} {{{len(msg)}}}\r\n".encode())
    assert c.readline() == "+ Ready for literal data"
    c.send(msg + b"\r\n")
    return c.response()


def append_plus(c, tag, head, msg, prefix=""):
    c.send(f"{tag} APPEND {head} {prefix}{{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
    return c.response()


def test_append_sync_literal(server):
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c)
    lines = append_sync(c, "a", "INBOX", MSG)
    assert lines == [f"a OK [APPENDUID {v} 1] Append completed"]
    (path, name), = messages(server).values()
    assert "/new/" in path and ":2," not in name
    assert read(path) == lf(MSG)
    assert f",S={len(lf(MSG))},W={len(MSG)}," in name
    assert tmp_files(server) == []


def test_append_literal_plus_and_uids(server):
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c, "Sent")
    assert append_plus(c, "a", "Sent", MSG) == [f"a OK [APPENDUID {v} 1] Append completed"]
    assert append_plus(c, "b", "sent", MSG + b"x")[-1].startswith("b NO [TRYCREATE]")
    assert append_plus(c, "c", "Sent", MSG + b"2") == \
        [f"c OK [APPENDUID {v} 2] Append completed"]
    got = messages(server, ".Sent")
    assert sorted(got) == [1, 2]
    assert read(got[2][0]) == lf(MSG + b"2")
    assert messages(server) == {}


def test_append_flags_keywords_and_date(server):
    c = server.login(USER, PASSWORD)
    lines = append_plus(c, "a", 'INBOX (\\Seen \\Flagged $Junk) "05-Mar-2021 10:11:12 +0200"',
                        MSG)
    assert lines[-1].startswith("a OK [APPENDUID "), lines
    (path, name), = messages(server).values()
    assert "/cur/" in path
    assert name.endswith(":2,FSa"), name
    kw = read(os.path.join(maildir(server), "dovecot-keywords"))
    assert b"0 $Junk" in kw
    # The internal date is the file's mtime (and the index's).
    assert os.stat(path).st_mtime == calendar.timegm((2021, 3, 5, 8, 11, 12))
    # A day of one digit with a leading space; \Draft alone.
    lines = append_plus(c, "b", 'INBOX (\\Draft) " 5-Mar-2021 10:11:12 -0000"', MSG)
    assert lines[-1].startswith("b OK [APPENDUID "), lines
    path, name = messages(server)[2]
    assert name.endswith(":2,D")
    assert os.stat(path).st_mtime == calendar.timegm((2021, 3, 5, 10, 11, 12))


def test_multiappend(server):
    c = server.login(USER, PASSWORD)
    v = uidvalidity(c)
    msgs = [MSG + b"one\r\n", MSG + b"two\r\n", MSG + b"three\r\n"]
    data = (f"m APPEND INBOX (\\Seen) {{{len(msgs[0])}+}}\r\n".encode() + msgs[0] +
            f' "01-Jan-2020 00:00:00 +0000" {{{len(msgs[1])}}}\r\n'.encode())
    c.send(data)
    assert c.readline() == "+ Ready for literal data"
    c.send(msgs[1] + f" ~{{{len(msgs[2])}+}}\r\n".encode() + msgs[2] + b"\r\n")
    assert c.response() == [f"m OK [APPENDUID {v} 1:3] Append completed"]
    got = messages(server)
    assert [read(got[u][0]) for u in (1, 2, 3)] == [lf(m) for m in msgs]
    assert got[1][1].endswith(":2,S") and "/new/" in got[2][0]
    assert os.stat(got[2][0]).st_mtime == calendar.timegm((2020, 1, 1, 0, 0, 0))


def test_multiappend_across_spool_flushes(server):
    """Three messages of 300 KB and more in one write: each spans the
    spool's boundaries, each stored byte for byte."""
    c = server.login(USER, PASSWORD)
    msgs = []
    for i in range(3):
        body = b"".join(b"line %d of message %d xxxxxxxxxxxxxxxxxxxxxxx\r\n" % (n, i)
                        for n in range(6000 + 1000 * i))
        msgs.append(MSG + body)
    data = b"m APPEND INBOX"
    for m in msgs:
        data += f" {{{len(m)}+}}\r\n".encode() + m
    c.send(data + b"\r\n")
    lines = c.response()
    assert re.fullmatch(r"m OK \[APPENDUID \d+ 1:3\] Append completed", lines[-1]), lines
    got = messages(server)
    assert [read(got[u][0]) for u in (1, 2, 3)] == [lf(m) for m in msgs]


def test_large_message_is_streamed(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    server = imapd(measure_rss=True)
    c = server.login(USER, PASSWORD)
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n"
    size = 20 * 1024 * 1024
    chunk = line * (256 * 1024 // len(line))
    n = size // len(chunk)
    total = len(MSG) + n * len(chunk)
    base = vmrss_kib(server.pid)
    c.send(f"a APPEND INBOX {{{total}}}\r\n".encode())
    assert c.readline() == "+ Ready for literal data"
    c.send(MSG)
    peak = 0
    h = hashlib.sha256(lf(MSG))
    for i in range(n):
        c.send(chunk)
        h.update(lf(chunk))
        if i % 8 == 0:
            peak = max(peak, vmrss_kib(server.pid))
    peak = max(peak, vmrss_kib(server.pid))
    c.send(b"\r\n")
    lines = c.response(timeout=60)
    assert re.fullmatch(r"a OK \[APPENDUID \d+ 1\] Append completed", lines[-1]), lines
    # The message is 20 MB; while it streams, the session holds a spool of
    # 256 KB. (The commit then extracts up to 8 MB of text for the search
    # index: storage's bound, not measured here.)
    assert peak - base < 6 * 1024, (base, peak)
    (path, name), = messages(server).values()
    assert os.path.getsize(path) == total - n * len(chunk) // len(line) - MSG.count(b"\r\n")
    assert hashlib.sha256(read(path)).digest() == h.digest()
    assert f",W={total}," in name


def test_trycreate_and_bad_names(server):
    c = server.login(USER, PASSWORD)
    lines = append_plus(c, "a", "Nope", MSG)
    assert lines == ["a NO [TRYCREATE] Mailbox does not exist"]
    # A big message to a missing mailbox is read and dropped, not run.
    evil = b"x LOGOUT\r\n" * 40000
    lines = append_plus(c, "b", "Nope/deeper", evil)
    assert lines == ["b NO [TRYCREATE] Mailbox does not exist"]
    lines = append_plus(c, "c", '"a..b"', MSG)
    assert lines[-1].startswith("c NO [CANNOT] Invalid mailbox name"), lines
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]
    assert messages(server) == {} and tmp_files(server) == []


def test_bad_arguments(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("a APPEND") == ["a BAD APPEND needs a mailbox and a message"]
    assert c.cmd("b APPEND INBOX") == ["b BAD APPEND needs a message literal"]
    assert c.cmd('c APPEND INBOX "text"')[-1].startswith("c BAD Invalid arguments")
    assert append_plus(c, "d", 'INBOX (\\Seen) "31-Feb-2021 00:00:00 +0000"', MSG) == \
        ["d BAD Invalid internal date"]
    assert append_plus(c, "e", 'INBOX "5-Mar-2021 10:11:12 +0200"', MSG) == \
        ["e BAD Invalid internal date"]
    assert append_plus(c, "f", "INBOX (\\Recent)", MSG) == ["f BAD \\Recent cannot be set"]
    assert append_plus(c, "g", "INBOX (\\Bogus)", MSG) == ["g BAD Invalid system flag"]
    assert append_plus(c, "h", "INBOX (\\Seen) (\\Seen)", MSG)[-1].startswith(
        "h BAD Invalid arguments")
    assert append_plus(c, "i", "INBOX NIL", MSG)[-1].startswith("i BAD Invalid arguments")
    assert append_plus(c, "j", "INBOX", b"") == ["j NO Can't save a zero byte message"]
    # Multiappend with one empty message: none of them is saved.
    c.send(b"k APPEND INBOX {3+}\r\nabc {0+}\r\n\r\n")
    assert c.response() == ["k NO Can't save a zero byte message"]
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]
    assert messages(server) == {} and tmp_files(server) == []


def test_append_needs_login(server):
    c = server.client()
    c.send(b"a APPEND INBOX {3+}\r\nabc\r\n")
    assert c.response() == ["a BAD Log in first"]
    assert not os.path.exists(os.path.join(maildir(server), "new")) or messages(server) == {}


def test_toobig(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    server = imapd(conf={"imap": {"append_limit": "1K"}})
    c = server.login(USER, PASSWORD)
    caps = c.cmd("c CAPABILITY")[0].split()
    assert "APPENDLIMIT=1024" in caps
    # Synchronising: refused before "+", nothing of it is sent.
    c.send(b"a APPEND INBOX {1025}\r\n")
    assert c.readline() == "a NO [TOOBIG] Literal too big"
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]
    # The second message of a MULTIAPPEND over the limit: the first, already
    # written, goes too.
    c.send(b"d APPEND INBOX {3+}\r\nabc (\\Seen) {5000}\r\n")
    assert c.readline() == "d NO [TOOBIG] Literal too big"
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]
    assert messages(server) == {} and tmp_files(server) == []
    # Non-synchronising: the client sends the bytes anyway; rather than
    # read them all the server ends the session (RFC 7888 §4).
    body = (b"x LOGOUT\r\n" * 200)[:2000]
    c.send(b"b APPEND INBOX {3+}\r\nabc {2000+}\r\n" + body + b"\r\n")
    assert c.readline() == "b NO [TOOBIG] Literal too big"
    assert c.readline() == "* BYE [TOOBIG] Literal too big"
    c.expect_eof()
    assert messages(server) == {} and tmp_files(server) == []
    c = server.login(USER, PASSWORD)
    # At the limit it is fine.
    assert append_sync(c, "e", "INBOX", b"z" * 1024)[-1].startswith("e OK [APPENDUID ")
    assert sorted(messages(server)) == [1]


def test_quota(server, auth_env):
    auth_env.ternctl("user", "quota", USER, "--messages", "2")
    c = server.login(USER, PASSWORD)
    c.send(b"m APPEND INBOX {3+}\r\nabc {3+}\r\ndef {3+}\r\nghi\r\n")
    assert c.response() == ["m NO [OVERQUOTA] Quota exceeded"]
    assert messages(server) == {} and tmp_files(server) == []
    c.send(b"n APPEND INBOX {3+}\r\nabc {3+}\r\ndef\r\n")
    assert c.response()[-1].startswith("n OK [APPENDUID ")
    assert append_plus(c, "o", "INBOX", MSG) == ["o NO [OVERQUOTA] Quota exceeded"]
    assert sorted(messages(server)) == [1, 2]


def test_literal8_nul(server):
    c = server.login(USER, PASSWORD)
    binary = MSG + b"\x00\x01\x02\xff\r\nend\x00\r\n"
    lines = append_plus(c, "a", "INBOX", binary, prefix="~")
    assert lines[-1].startswith("a OK [APPENDUID "), lines
    (path, _), = messages(server).values()
    assert read(path) == lf(binary)
    # NUL in an ordinary literal is refused.
    assert append_plus(c, "b", "INBOX", binary) == \
        ["b BAD NUL in a message literal (send it as literal8)"]
    c.send(f"c APPEND INBOX ~{{{len(binary)}}}\r\n".encode())
    assert c.readline() == "+ Ready for literal data"
    c.send(binary + b"\r\n")
    assert c.response()[-1].startswith("c OK [APPENDUID ")
    assert sorted(messages(server)) == [1, 2]


def test_exists_for_selected_mailbox(server):
    server.deliver(USER, MSG)
    c = server.login(USER, PASSWORD)
    assert "* 1 EXISTS" in c.cmd("s SELECT INBOX")
    lines = append_plus(c, "a", "INBOX", MSG)
    assert lines[0] == "* 2 EXISTS"
    assert re.fullmatch(r"a OK \[APPENDUID \d+ 2\] Append completed", lines[-1]), lines
    # Another mailbox: no EXISTS.
    lines = append_plus(c, "b", "Drafts (\\Draft)", MSG)
    assert len(lines) == 1 and lines[0].startswith("b OK [APPENDUID ")
    c.send(b"m APPEND INBOX {3+}\r\nabc {3+}\r\ndef\r\n")
    lines = c.response()
    assert lines[0] == "* 4 EXISTS" and lines[-1].endswith(" 3:4] Append completed")


def test_imaplib_append(server):
    import imaplib
    m = server.imaplib()
    m.login(USER, PASSWORD)
    date = imaplib.Time2Internaldate(calendar.timegm((2022, 6, 1, 12, 0, 0)))
    typ, data = m.append("INBOX", r"(\Seen \Answered)", date, MSG)
    assert typ == "OK"
    assert re.fullmatch(rb"\[APPENDUID \d+ 1\] Append completed", data[0]), data
    typ, data = m.append("Sent", None, None, MSG.replace(b"\r\n", b"\n"))
    assert typ == "OK", data
    m.logout()
    (path, name), = messages(server).values()
    assert name.endswith(":2,RS")
    assert os.stat(path).st_mtime == calendar.timegm((2022, 6, 1, 12, 0, 0))
    (path, _), = messages(server, ".Sent").values()
    assert read(path) == lf(MSG)


def test_disconnect_mid_literal(server):
    c = server.login(USER, PASSWORD)
    c.send(b"a APPEND INBOX {2000000+}\r\n" + b"x" * 1000000)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.sock.close()
    # The session goes away; nothing of the message stays, visible or not.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "disconnect" in server.log() and tmp_files(server) == []:
            break
        time.sleep(0.05)
    assert messages(server) == {} and tmp_files(server) == []
    c = server.login(USER, PASSWORD)
    lines = append_plus(c, "b", "INBOX", MSG)
    assert re.fullmatch(r"b OK \[APPENDUID \d+ 1\] Append completed", lines[-1]), lines
    assert sorted(messages(server)) == [1]
