"""tern-imapd sessions: greeting, CAPABILITY, LOGIN and AUTHENTICATE,
STARTTLS and LOGINDISABLED, ENABLE, ID, NOOP, LOGOUT, SELECT/EXAMINE with
CONDSTORE and QRESYNC, IDLE, and the hostile input of shared/ROBUSTNESS.md
§1-16 (RFC 9051 §6.1-6.3, RFC 2177, RFC 5161, RFC 2971, RFC 7162, RFC
7888)."""
import base64
import os
import socket
import ssl
import threading
import time

import pytest

from conftest import (READ_TIMEOUT, Client, ConnClosed, client_context, index_exec_as,
                      vmrss_kib)

USER, PASSWORD = "alice@example.org", "secret-pw"
PROXY_CONF = {"imap": {"trusted_proxies": "127.0.0.1/32"}}
PROXY_PROBE = "127.0.0.2"
PROXY_HEADER = b"PROXY TCP4 192.0.2.7 192.0.2.1 51234 143\r\n"


def msg(n):
    return (f"From: a@example.org\r\nTo: {USER}\r\nSubject: message {n}\r\n"
            f"Message-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n").encode()


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


@pytest.fixture
def rss_server(imapd, auth_env):
    """For tests that measure the daemon's memory (ASan's quarantine off)."""
    auth_env.add_user(USER, PASSWORD)
    return imapd(measure_rss=True)


def caps_of(line):
    """The capability names of a "* CAPABILITY ..." line or an
    "[CAPABILITY ...]" response code."""
    if "[CAPABILITY " in line:
        return line.split("[CAPABILITY ", 1)[1].split("]", 1)[0].split()
    return line.split()[2:]


def capability(c, tag="c"):
    lines = c.cmd(f"{tag} CAPABILITY")
    assert lines[-1] == f"{tag} OK Capability completed", lines
    return caps_of(lines[0])


# ------------------------------------------------------------ greeting


def test_greeting_and_capability(server):
    c = server.client()
    caps = capability(c)
    for cap in ("IMAP4rev1", "IMAP4rev2", "STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR",
                "LITERAL+", "ID", "ENABLE", "IDLE"):
        assert cap in caps, caps
    assert "LOGINDISABLED" not in caps       # loopback: plaintext allowed
    c.sendline("x CAPABILITY extra")
    assert c.readline().startswith("x BAD ")


def test_capabilities_after_login(server):
    c = server.client()
    c.sendline(f"l LOGIN {USER} {PASSWORD}")
    ok = c.response()[-1]
    assert ok.startswith("l OK [CAPABILITY ") and ok.endswith("] Logged in"), ok
    caps = caps_of(ok)
    for cap in ("UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC", "ESEARCH", "SPECIAL-USE",
                "LIST-EXTENDED", "NAMESPACE", "UNSELECT", "APPENDLIMIT=67108864"):
        assert cap in caps, caps
    assert "STARTTLS" not in caps and "AUTH=PLAIN" not in caps
    assert capability(c) == caps


def test_login_select_logout(server):
    server.deliver(USER, msg(1))
    c = server.login(USER, PASSWORD)
    lines = c.cmd("s SELECT INBOX")
    assert lines[0] == "* 1 EXISTS"
    assert "* 0 RECENT" in lines
    assert "* OK [UNSEEN 1] First unseen" in lines
    assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in lines
    assert "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] " \
        "Flags permitted" in lines
    assert any(l.startswith("* OK [UIDVALIDITY ") for l in lines)
    assert "* OK [UIDNEXT 2] Predicted next UID" in lines
    assert any(l.startswith("* OK [HIGHESTMODSEQ ") for l in lines)
    assert lines[-1] == "s OK [READ-WRITE] SELECT completed"
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]
    lines = c.cmd("e EXAMINE inbox")
    assert lines[-1] == "e OK [READ-ONLY] EXAMINE completed"
    assert "* OK [PERMANENTFLAGS ()] Flags permitted" in lines
    assert c.cmd("u UNSELECT") == ["u OK UNSELECT completed"]
    assert c.cmd("u2 UNSELECT")[-1] == "u2 BAD No mailbox selected"
    c.sendline("o LOGOUT")
    assert c.readline() == "* BYE Logging out"
    assert c.readline() == "o OK Logout completed"
    c.expect_eof()


def test_select_missing_mailbox_leaves_selected_state(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("s SELECT INBOX")[-1].startswith("s OK")
    assert c.cmd("s2 SELECT Nope") == ["s2 NO [NONEXISTENT] Mailbox does not exist"]
    # The failed SELECT closed INBOX (RFC 9051 §6.3.2).
    assert c.cmd("n CHECK") == ["n BAD No mailbox selected"]


def test_rev2_select(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("e ENABLE IMAP4rev2") == ["* ENABLED IMAP4rev2", "e OK Enabled"]
    lines = c.cmd("s SELECT INBOX")
    assert "* 0 RECENT" not in lines and '* LIST () "/" "INBOX"' in lines
    lines = c.cmd("s2 SELECT INBOX")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"


def test_commands_in_wrong_state(server):
    c = server.client()
    assert c.cmd("a SELECT INBOX") == ["a BAD Log in first"]
    assert c.cmd("b ENABLE CONDSTORE") == ["b BAD Log in first"]
    c = server.login(USER, PASSWORD)
    assert c.cmd("c FETCH 1 FLAGS") == ["c BAD No mailbox selected"]
    assert c.cmd("d LOGIN a b") == ["d BAD Command not valid in this state"]
    assert c.cmd("e FOO") == ["e BAD Unknown command"]
    assert c.cmd("f UID FOO 1") == ["f BAD Unknown UID command"]
    assert c.cmd("g UID LIST") == ["g BAD Unknown UID command"]


# ---------------------------------------------------------------- auth


def test_bad_password_and_disabled_user(server, auth_env):
    c = server.client()
    lines = c.cmd(f"a LOGIN {USER} wrong")
    assert lines == ["a NO [AUTHENTICATIONFAILED] Authentication failed"] or \
        lines[-1].startswith("a NO [AUTHENTICATIONFAILED] "), lines
    auth_env.add_user("bob", "pw-bob")
    auth_env.ternctl("user", "disable", "bob")
    assert c.cmd("b LOGIN bob pw-bob")[-1].startswith("b NO [CONTACTADMIN] ")


def test_login_with_quoted_and_literal_password(server, auth_env):
    auth_env.add_user("carol", 'pa ss"word')
    c = server.client()
    assert c.cmd('a LOGIN "carol" "pa ss\\"word"')[-1].startswith("a OK ")
    c = server.client()
    c.sendline("b LOGIN carol {10}")
    assert c.readline() == "+ Ready for literal data"
    c.sendline('pa ss"word')
    assert c.response()[-1].startswith("b OK ")
    c = server.client()
    c.sendline("c LOGIN carol {10+}")
    c.sendline('pa ss"word')
    assert c.response()[-1].startswith("c OK ")


def test_sessions_per_user_and_address(imapd, auth_env):
    """ROBUSTNESS 23: one session more than [imap]
    max_user_connections_per_ip of one user from one address is refused
    with [LIMIT], and only that one; another user, or a slot freed by a
    logout, logs in."""
    auth_env.add_user(USER, PASSWORD)
    auth_env.add_user("bob", "pw-bob")
    d = imapd({"imap": {"max_user_connections_per_ip": "2"}})
    a, b = d.login(USER, PASSWORD), d.login(USER, PASSWORD)
    c = d.client()
    assert c.cmd(f'l LOGIN "{USER}" "{PASSWORD}"') == \
        ["l NO [LIMIT] Too many sessions of this user from your address (2)"]
    c.expect_eof()
    assert d.login("bob", "pw-bob").cmd("n NOOP") == ["n OK NOOP completed"]
    assert a.cmd("n NOOP") == ["n OK NOOP completed"]
    b.sendline("o LOGOUT")
    assert b.readline() == "* BYE Logging out"
    b.expect_eof()
    deadline = time.monotonic() + 5
    while True:
        c = d.client()
        r = c.cmd(f'l LOGIN "{USER}" "{PASSWORD}"')
        if r[-1].startswith("l OK") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r[-1].startswith("l OK"), r


def test_too_many_failures_disconnects(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = imapd({"auth": {"max_failures": "2"}})
    c = d.client()
    assert c.cmd(f"a LOGIN {USER} x")[-1].startswith("a NO [AUTHENTICATIONFAILED]")
    assert c.cmd(f"b LOGIN {USER} y")[0] == "* BYE Too many authentication failures" or \
        c.readline() == "* BYE Too many authentication failures"
    c.expect_eof()


def test_authenticate_plain_ir_and_continuation(server):
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    c = server.client()
    assert c.cmd(f"a AUTHENTICATE PLAIN {plain}")[-1].startswith("a OK [CAPABILITY ")
    c = server.client()
    c.sendline("b AUTHENTICATE PLAIN")
    assert c.readline() == "+ "
    c.sendline(plain)
    assert c.response()[-1].startswith("b OK [CAPABILITY ")


def test_authenticate_login_cancel_and_garbage(server):
    c = server.client()
    c.sendline("a AUTHENTICATE LOGIN")
    assert c.readline().startswith("+ ")
    c.sendline(base64.b64encode(USER.encode()).decode())
    assert c.readline().startswith("+ ")
    c.sendline(base64.b64encode(PASSWORD.encode()).decode())
    assert c.response()[-1].startswith("a OK ")
    c = server.client()
    c.sendline("b AUTHENTICATE PLAIN")
    assert c.readline() == "+ "
    c.sendline("*")
    assert c.readline() == "b BAD Authentication cancelled"
    # ROBUSTNESS 22: garbage of every kind, then a real login.
    for i, bad in enumerate(["====", "A" * 10000, base64.b64encode(b"no nuls").decode()]):
        c.sendline(f"g{i} AUTHENTICATE PLAIN {bad}")
        r = c.readline()
        assert r.startswith(f"g{i} BAD ") or r.startswith(f"g{i} NO "), r
        if i == 1:
            break   # the third BAD before login ends the session
    assert c.cmd("x AUTHENTICATE FOO") == ["x NO Unsupported authentication mechanism"]
    assert server.login(USER, PASSWORD)


def test_password_never_logged(server):
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    server.login(USER, PASSWORD).close()
    c = server.client()
    assert c.cmd(f"a AUTHENTICATE PLAIN {plain}")[-1].startswith("a OK")
    c.close()
    time.sleep(0.2)
    log = server.log()
    assert PASSWORD not in log and plain not in log


# ------------------------------------------------------- STARTTLS, TLS


def proxied_client(d):
    c = Client.connect(d.port)
    c.send(PROXY_HEADER)
    g = c.readline()
    assert g.startswith("* OK "), g
    return c


def test_network_client_gets_logindisabled(imapd, auth_env):
    """ROBUSTNESS 3: before TLS on a network connection, LOGINDISABLED and
    no AUTH=; LOGIN and AUTHENTICATE refused. After STARTTLS: AUTH=, no
    STARTTLS, and the login works."""
    auth_env.add_user(USER, PASSWORD)
    d = imapd(PROXY_CONF, probe_source=PROXY_PROBE)
    c = proxied_client(d)
    caps = capability(c)
    assert "LOGINDISABLED" in caps and "STARTTLS" in caps
    assert not any(x.startswith("AUTH=") for x in caps), caps
    assert c.cmd(f"a LOGIN {USER} {PASSWORD}")[-1].startswith("a NO [PRIVACYREQUIRED] ")
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert c.cmd(f"b AUTHENTICATE PLAIN {plain}")[-1].startswith("b NO [PRIVACYREQUIRED] ")
    assert c.cmd("t STARTTLS") == ["t OK Begin TLS negotiation now"]
    c.handshake(client_context(d.tls_trust))
    caps = capability(c)
    assert "AUTH=PLAIN" in caps and "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    assert c.cmd("t2 STARTTLS") == ["t2 BAD TLS is already active"]
    assert c.cmd(f"l LOGIN {USER} {PASSWORD}")[-1].startswith("l OK ")


def test_starttls_discards_pipelined_commands(server):
    """ROBUSTNESS 1: STARTTLS and a command in one segment: nothing tagged
    X inside TLS, and a pipelined LOGIN is not honoured."""
    c = server.client()
    c.send(f"a STARTTLS\r\nX NOOP\r\ny LOGIN {USER} {PASSWORD}\r\n".encode())
    assert c.readline() == "a OK Begin TLS negotiation now"
    c.handshake(client_context(server.tls_trust))
    c.sock.settimeout(0.5)
    with pytest.raises((socket.timeout, ssl.SSLWantReadError, TimeoutError)):
        data = c.sock.recv(100)
        raise AssertionError(f"data arrived inside TLS unasked: {data!r}")
    c.sock.settimeout(READ_TIMEOUT)
    assert c.cmd("s SELECT INBOX") == ["s BAD Log in first"]


def test_implicit_tls_and_alpn(server):
    c = server.client(tls=True)
    assert "STARTTLS" not in capability(c)
    ctx = client_context(server.tls_trust, alpn=["http/1.1"])
    with pytest.raises((ssl.SSLError, ConnectionResetError, ConnClosed)):
        c = Client.connect(server.tls_port, tls_ctx=ctx)
        c.readline()
    m = server.imaplib(tls=True)
    m.login(USER, PASSWORD)
    assert m.select("INBOX")[0] == "OK"
    m.logout()


# ------------------------------------------------------------- ENABLE, ID


def test_enable(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("a ENABLE CONDSTORE X-UNKNOWN") == ["* ENABLED CONDSTORE", "a OK Enabled"]
    assert c.cmd("b ENABLE CONDSTORE") == ["* ENABLED", "b OK Enabled"]
    assert c.cmd("c ENABLE QRESYNC UTF8=ACCEPT") == ["* ENABLED QRESYNC UTF8=ACCEPT",
                                                      "c OK Enabled"]
    assert c.cmd("d ENABLE") == ["d BAD ENABLE needs at least one capability"]


def test_id(server):
    c = server.client()
    lines = c.cmd('a ID ("name" "test\\"client" "version" "1.0" "os" NIL)')
    assert lines[0] == f'* ID ("name" "Tern" "version" "{lines[0].split()[-1][1:-2]}")'
    assert lines[-1] == "a OK ID completed"
    assert c.cmd("b ID NIL")[-1] == "b OK ID completed"
    assert c.cmd('c ID ("odd")') == ["c BAD ID takes NIL or a list of field-value pairs"]
    assert 'client id name="test"client"' in server.log() or "client id" in server.log()


# ------------------------------------------------------ CONDSTORE, QRESYNC


def modseq_of(lines):
    for l in lines:
        if l.startswith("* OK [HIGHESTMODSEQ "):
            return int(l.split()[3].rstrip("]"))
    raise AssertionError(lines)


def uidvalidity_of(lines):
    for l in lines:
        if l.startswith("* OK [UIDVALIDITY "):
            return int(l.split()[3].rstrip("]"))
    raise AssertionError(lines)


def test_qresync_select(server):
    for i in range(1, 6):
        server.deliver(USER, msg(i))
    c = server.login(USER, PASSWORD)
    lines = c.cmd("s SELECT INBOX (QRESYNC (1 1))")
    assert lines[-1].startswith("s BAD"), lines     # not enabled
    lines = c.cmd("s SELECT INBOX (CONDSTORE)")
    uv, ms = uidvalidity_of(lines), modseq_of(lines)
    # Another program deletes message 2 and flags message 4.
    folder = os.path.join(server.user_dir(USER), "Maildir")
    files = sorted((os.path.join(folder, d, n) for d in ("new", "cur")
                    for n in os.listdir(os.path.join(folder, d))),
                   key=lambda p: int(p.split(",U=")[1].split(":")[0].split(",")[0]))
    os.unlink(files[1])
    base = os.path.basename(files[3])
    os.rename(files[3], os.path.join(folder, "cur", base.split(":")[0] + ":2,F"))
    d = server.login(USER, PASSWORD)
    assert d.cmd("e ENABLE QRESYNC")[-1] == "e OK Enabled"
    lines = d.cmd(f"s SELECT INBOX (QRESYNC ({uv} {ms} 1:5))")
    assert "* VANISHED (EARLIER) 2" in lines, lines
    assert "* 3 FETCH (FLAGS (\\Flagged) UID 4 MODSEQ (" in " ".join(lines), lines
    assert lines[-1] == "s OK [READ-WRITE] SELECT completed"
    # The first session learns it on NOOP, with MODSEQ (CONDSTORE on).
    lines = c.cmd("n NOOP")
    assert lines[0] == "* 2 EXPUNGE", lines
    assert lines[1].startswith("* 3 FETCH (FLAGS (\\Flagged) MODSEQ ("), lines
    # A wrong UIDVALIDITY: a plain SELECT, nothing about changes.
    lines = d.cmd(f"s2 SELECT INBOX (QRESYNC ({uv + 1} {ms}))")
    assert not any("VANISHED" in l or "FETCH" in l for l in lines), lines


def test_qresync_select_vanished_only_what_it_does_not_count(server, mail_user):
    """SELECT reads the expunged UIDs after its view of the mailbox, so an
    expunge by another session in between is in both: VANISHED (EARLIER)
    must leave out what the response still counts (EXISTS); the next sync
    reports it. The index is given that in-between state directly: a
    live message with an expunged row."""
    for i in range(1, 4):
        server.deliver(USER, msg(i))
    c = server.login(USER, PASSWORD)
    assert c.cmd("e ENABLE QRESYNC")[-1] == "e OK Enabled"
    lines = c.cmd("s SELECT INBOX")
    uv, ms = uidvalidity_of(lines), modseq_of(lines)
    c.cmd("l LOGOUT")
    index_exec_as(mail_user, server.user_dir(USER),
                  "INSERT INTO expunged SELECT mailbox_id, 2, highestmodseq + 1"
                  " FROM mailbox m JOIN message g ON g.mailbox_id = m.id AND g.uid = 2")
    d = server.login(USER, PASSWORD)
    assert d.cmd("e ENABLE QRESYNC")[-1] == "e OK Enabled"
    lines = d.cmd(f"s SELECT INBOX (QRESYNC ({uv} {ms} 1:3))")
    assert lines[-1] == "s OK [READ-WRITE] SELECT completed", lines
    assert "* 3 EXISTS" in lines, lines
    assert not any("VANISHED" in l for l in lines), lines
    lines = d.cmd(f"s2 SELECT INBOX (QRESYNC ({uv} {ms}))")
    assert not any("VANISHED" in l for l in lines), lines


# ------------------------------------------------------------------ IDLE


def test_idle_push_within_100ms(server, lmtpd):
    """A delivery by tern-lmtpd (another process) reaches an IDLE client
    as EXISTS; the time is printed, the bound is generous for CI."""
    c = server.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    c.sendline("i IDLE")
    assert c.readline() == "+ idling"
    l = lmtpd()
    s = l.smtplib()
    s.ehlo("t")
    start = time.monotonic()
    s.sendmail("x@example.org", [USER], msg(1))
    assert c.readline(timeout=5) == "* 1 EXISTS"
    print(f"IDLE push after the LMTP 250: {(time.monotonic() - start) * 1000:.1f} ms")
    s.quit()
    c.sendline("DONE")
    assert c.readline() == "i OK Idle completed"


def test_idle_sees_flags_and_expunge_from_another_program(server):
    for i in (1, 2):
        server.deliver(USER, msg(i))
    c = server.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    c.sendline("i IDLE")
    assert c.readline() == "+ idling"
    folder = os.path.join(server.user_dir(USER), "Maildir")
    name = next(n for n in os.listdir(os.path.join(folder, "new")) if ",U=1:" in n or
                n.endswith(",U=1"))
    os.rename(os.path.join(folder, "new", name),
              os.path.join(folder, "cur", name.split(":")[0] + ":2,S"))
    assert c.readline(timeout=5) == "* 1 FETCH (FLAGS (\\Seen))"
    os.unlink(os.path.join(folder, "cur", name.split(":")[0] + ":2,S"))
    assert c.readline(timeout=5) == "* 1 EXPUNGE"
    c.sendline("done")
    assert c.readline() == "i OK Idle completed"
    c.sendline("j IDLE")
    assert c.readline() == "+ idling"
    c.sendline("NOPE")
    assert c.readline() == "j BAD Expected DONE"
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]


def test_idle_without_mailbox_and_close_while_idling(server):
    c = server.login(USER, PASSWORD)
    c.sendline("i IDLE")
    assert c.readline() == "+ idling"
    c.sendline("DONE")
    assert c.readline() == "i OK Idle completed"
    c.cmd("s SELECT INBOX")
    c.sendline("j IDLE")
    assert c.readline() == "+ idling"
    c.close()
    server.deliver(USER, msg(1))
    assert server.login(USER, PASSWORD).cmd("n NOOP") == ["n OK NOOP completed"]


# ------------------------------------------------------- hostile input


def test_huge_literal_sizes(server):
    """ROBUSTNESS 9, 10, 16."""
    c = server.login(USER, PASSWORD)
    c.sendline("a APPEND INBOX {18446744073709551616}")
    r = c.readline()
    assert r.startswith("a BAD ") or r.startswith("a NO [TOOBIG]"), r
    assert c.cmd("b NOOP") == ["b OK NOOP completed"]
    for bad in ("{-1}", "{1a}", "{ 5}"):
        c.sendline(f"x LOGIN {bad}")
        assert c.readline().startswith("x BAD "), bad
    c = server.login(USER, PASSWORD)
    c.sendline("a APPEND INBOX {1000000000+}")
    assert c.readline().startswith("a NO [TOOBIG]")
    assert c.readline() == "* BYE [TOOBIG] Literal too big"
    c.expect_eof()


def test_eof_inside_literal_and_many_literals(rss_server):
    """ROBUSTNESS 11, 16: EOF mid-literal frees the session; 10,000
    literals in one command hit the argument cap with bounded memory."""
    server = rss_server
    c = server.login(USER, PASSWORD)
    c.send(b"a SEARCH BODY {100}\r\n")
    assert c.readline() == "+ Ready for literal data"
    c.send(b"only a little")
    c.close()
    rss0 = vmrss_kib(server.pid)
    c = server.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    c.send(b"b SEARCH" + b" OR BODY {1+}\r\nx" * 10000 + b" ALL\r\n")
    r = c.readline()
    assert r.startswith("b BAD "), r
    assert vmrss_kib(server.pid) - rss0 < 10 * 1024


def test_deep_nesting(rss_server):
    """ROBUSTNESS 12, 13: 100,000 "(" before and after login."""
    server = rss_server
    c = server.client()
    rss0 = vmrss_kib(server.pid)
    c.send(b"a ID " + b"(" * 100000 + b"\r\n")
    r = c.readline()
    assert r.startswith("a BAD "), r
    c = server.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    c.send(b"b SEARCH " + b"(" * 100000 + b"ALL" + b")" * 100000 + b"\r\n")
    r = c.readline()
    assert r.startswith("b BAD "), r
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]
    assert vmrss_kib(server.pid) - rss0 < 10 * 1024


def test_endless_line(rss_server):
    """ROBUSTNESS 14: closed after 8 KiB before login (bad commands), BAD
    after login (64 KiB), memory flat."""
    server = rss_server
    rss0 = vmrss_kib(server.pid)
    c = server.login(USER, PASSWORD)
    chunk = b"x" * 65536
    for _ in range(16):
        c.send(chunk)
    c.send(b"\r\n")
    r = c.readline()
    assert r.startswith("* BAD ") or " BAD " in r, r
    assert c.cmd("n NOOP") == ["n OK NOOP completed"]
    c = server.client()
    try:
        for _ in range(1600):          # 100 MB at most; the server gives up long before
            c.send(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert vmrss_kib(server.pid) - rss0 < 10 * 1024


def test_nul_and_bad_syntax(server):
    """ROBUSTNESS 15 and syntax errors: BAD, session goes on; 20 bad
    commands end it."""
    c = server.client()
    c.send(b'a LOGIN "us\x00er" "p"\r\n')
    assert c.readline().startswith("a BAD ")
    c = server.login(USER, PASSWORD)
    c.send(b'b SELECT "IN\x00BOX"\r\n')
    assert c.readline().startswith("b BAD ")
    assert c.cmd("c SELECT (INBOX")[-1].startswith("c BAD ")
    assert c.cmd("d SELECT INBOX)")[-1].startswith("d BAD ")
    for i in range(16):
        c.sendline(f"z{i} FOO")
        c.readline()
    c.sendline("y FOO")
    assert c.readline() == "y BAD Unknown command"
    assert c.readline() == "* BYE Too many invalid commands"
    c.expect_eof()


def test_huge_sequence_sets(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = imapd({"imap": {"max_sequence_ranges": "100"}})
    d.deliver(USER, msg(1))
    c = d.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    sets = ",".join(str(i) for i in range(1, 202, 2))
    r = c.cmd(f"a UID FETCH {sets} FLAGS")
    assert r[-1].startswith("a BAD [LIMIT]"), r
    r = c.cmd("b UID FETCH 1:4294967295 FLAGS")
    assert r[-1].startswith("b OK"), r
    r = c.cmd("c FETCH 1:4294967295 FLAGS")
    assert r == ["c BAD Invalid message sequence number"], r
    r = c.cmd("d FETCH 0 FLAGS")
    assert r[-1].startswith("d BAD"), r


def test_many_idle_sessions_memory(imapd, auth_env):
    """Sessions idling on INBOX cost little: 200 of them grow the daemon by
    well under 200 x 64 KiB (the number per session goes to the bench)."""
    auth_env.add_user(USER, PASSWORD)
    server = imapd({"imap": {"max_connections_per_ip": "0",
                             "max_user_connections_per_ip": "0"}}, measure_rss=True)
    server.deliver(USER, msg(1))
    base = vmrss_kib(server.pid)
    clients = []
    for _ in range(200):
        c = server.login(USER, PASSWORD)
        c.cmd("s SELECT INBOX")
        c.sendline("i IDLE")
        assert c.readline() == "+ idling"
        clients.append(c)
    grown = vmrss_kib(server.pid) - base
    print(f"200 IDLE sessions: +{grown} KiB, {grown / 200:.1f} KiB each")
    assert grown < 200 * 64
    for c in clients:
        c.close()
