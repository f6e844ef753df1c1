"""
tern-pop3d against real sockets: every command and response code of RFC
1939, CAPA (RFC 2449), STLS (RFC 2595) with its injection case, implicit
TLS, AUTH PLAIN/LOGIN (RFC 5034), UTF8 (RFC 6856), the limits, the
exclusive maildrop lock, DELE+QUIT against a dropped connection, delivery
and expunge by others during a session, streaming of a 20 MB message with
bounded memory, and UIDL stability across sessions and index rebuilds.

Users are made with `ternctl user add`, mail is put in with `ternctl
deliver`, and messages are checked against the bytes on disk. Python's
poplib is the well-behaved client; raw sockets (conftest.Client) send
what poplib cannot (pipelining, malformed lines, injection).
"""

import base64
import json
import os
import poplib
import re
import socket
import ssl
import time

import pytest

from conftest import (READ_TIMEOUT, Client, ConnClosed, client_context, run_ternctl,
                      vmrss_kib)

USER, PASSWORD = "alice", "correct horse"

# Non-loopback clients arrive through a trusted PROXY-protocol sender, so a
# "network" client can be tested on loopback; probes come from elsewhere.
PROXY_CONF = {"pop3": {"trusted_proxies": "127.0.0.1/32"}}
PROXY_PROBE = "127.0.0.2"
PROXY_HEADER = b"PROXY TCP4 192.0.2.7 192.0.2.1 51234 110\r\n"


def msg(n, body=None):
    body = body if body is not None else f"Body of message {n}.\n"
    return (f"From: sender@example.org\nTo: {USER}@example.org\n"
            f"Subject: message {n}\nMessage-ID: <m{n}@example.org>\n\n{body}").encode()


def crlf(data):
    """The CRLF view of stored (LF) bytes: what POP3 sizes count."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def server(pop3d, auth_env):
    """A tern-pop3d with alice, who has three messages."""
    auth_env.add_user(USER, PASSWORD)
    d = pop3d()
    for i in range(1, 4):
        d.deliver(USER, msg(i))
    return d


def login(d, tls=False):
    p = d.poplib(tls=tls)
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def raw_login(d, **kw):
    c = d.client(**kw)
    assert c.cmd_pop("USER " + USER) == "+OK"
    r = c.cmd_pop("PASS " + PASSWORD)
    assert r.startswith("+OK Logged in"), r
    return c


def _cmd_pop(self, line):
    self.sendline(line)
    return self.readline()


def _multiline(self):
    """The lines of a multi-line response after its +OK line, unstuffed."""
    out = []
    for _ in range(1000000):
        line = self.readline()
        if line == ".":
            return out
        out.append(line[1:] if line.startswith(".") else line)
    raise AssertionError("no end of a multi-line response")


Client.cmd_pop = _cmd_pop
Client.multiline = _multiline


def capa(c):
    assert c.cmd_pop("CAPA") == "+OK Capability list follows"
    return c.multiline()


def message_files(d, user=USER):
    out = []
    for sub in ("new", "cur"):
        folder = os.path.join(d.user_dir(user), "Maildir", sub)
        if os.path.isdir(folder):
            out += [os.path.join(folder, n) for n in os.listdir(folder)
                    if not n.startswith(".")]

    def uid(path):
        return int(re.search(r",U=(\d+)", path).group(1))
    return sorted(out, key=uid)


def uidvalidity(d, user=USER):
    p = run_ternctl(d.auth.ctl_config(), "--json", "mailbox", "status", user, "INBOX")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    return int(info["uidvalidity"])


def pam_log_path(auth_env):
    return os.path.join(auth_env.workdir, "pam-calls.log")


def observe_pam(auth_env):
    """Record each PAM call (user) in a file, to prove when there is none."""
    path = pam_log_path(auth_env)
    auth_env.pam_with_script(f'echo "$PAM_USER" >> {path}')
    return path


# ----------------------------------------------------------- greeting, CAPA


def test_capa_before_login_on_loopback(server):
    c = server.client()
    caps = capa(c)
    for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER",
                "SASL PLAIN LOGIN", "STLS", "UTF8", "EXPIRE NEVER", "IMPLEMENTATION Tern"):
        assert cap in caps, caps
    assert not any(x.startswith("LOGIN-DELAY") for x in caps), caps
    c.close()


def test_capa_after_login_has_no_login_mechanisms(server):
    c = raw_login(server)
    caps = capa(c)
    assert "TOP" in caps and "UIDL" in caps and "PIPELINING" in caps
    assert "USER" not in caps and not any(x.startswith("SASL") for x in caps)
    assert "STLS" not in caps
    assert c.cmd_pop("QUIT").startswith("+OK")
    c.expect_eof()


def test_poplib_capa_and_stls(server):
    p = server.poplib()
    assert "STLS" in p.capa()
    p.stls(context=client_context(server.tls_trust))
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN"]
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 3
    p.quit()


# ------------------------------------------------- plaintext on the network


def proxied_client(d):
    c = Client.connect(d.port)
    c.send(PROXY_HEADER)
    g = c.readline()
    assert g.startswith("+OK "), g
    return c


def test_network_client_gets_no_login_before_stls(pop3d, auth_env):
    """ROBUSTNESS 4: on a plain connection that is not loopback, USER,
    PASS and AUTH are refused and PAM never runs; CAPA offers STLS and no
    login mechanism. After STLS the same client logs in."""
    auth_env.add_user(USER, PASSWORD)
    calls = observe_pam(auth_env)
    d = pop3d(PROXY_CONF, probe_source=PROXY_PROBE)
    c = proxied_client(d)
    caps = capa(c)
    assert "STLS" in caps and "USER" not in caps
    assert not any(x.startswith("SASL") for x in caps), caps
    assert c.cmd_pop("AUTH") == "+OK" and c.multiline() == []
    assert c.cmd_pop("USER " + USER).startswith("-ERR ")
    assert c.cmd_pop("PASS " + PASSWORD).startswith("-ERR ")
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert c.cmd_pop("AUTH PLAIN " + plain).startswith("-ERR ")
    assert c.cmd_pop("AUTH LOGIN").startswith("-ERR ")
    assert not os.path.exists(calls), "PAM ran for a refused plaintext login"

    assert c.cmd_pop("STLS") == "+OK Begin TLS negotiation"
    c.handshake(client_context(d.tls_trust))
    caps = capa(c)
    assert "USER" in caps and "SASL PLAIN LOGIN" in caps and "STLS" not in caps
    assert c.cmd_pop("USER " + USER) == "+OK"
    assert c.cmd_pop("PASS " + PASSWORD).startswith("+OK Logged in")
    with open(calls) as f:
        assert f.read().split() == [USER]
    c.close()


# --------------------------------------------------------------------- STLS


def test_stls_discards_pipelined_commands(server):
    """ROBUSTNESS 2: STLS and CAPA in one segment: no CAPA answer, neither
    in plaintext nor inside TLS."""
    c = server.client()
    c.send(b"STLS\r\nCAPA\r\n")
    assert c.readline() == "+OK Begin TLS negotiation"
    c.handshake(client_context(server.tls_trust))
    c.sock.settimeout(0.5)
    with pytest.raises((socket.timeout, ssl.SSLWantReadError, TimeoutError)):
        data = c.sock.recv(100)
        raise AssertionError(f"data arrived inside TLS unasked: {data!r}")
    c.sock.settimeout(READ_TIMEOUT)
    assert capa(c)[0] == "TOP"
    c.close()


def test_stls_injected_login_is_not_honoured(server):
    c = server.client()
    c.send(f"STLS\r\nUSER {USER}\r\nPASS {PASSWORD}\r\n".encode())
    assert c.readline() == "+OK Begin TLS negotiation"
    c.handshake(client_context(server.tls_trust))
    assert c.cmd_pop("STAT") == "-ERR Not logged in"
    c.close()


def test_second_stls_refused(server):
    c = server.client()
    assert c.cmd_pop("STLS").startswith("+OK")
    c.handshake(client_context(server.tls_trust))
    assert c.cmd_pop("STLS") == "-ERR TLS is already active"
    assert c.cmd_pop("USER " + USER) == "+OK"
    assert c.cmd_pop("PASS " + PASSWORD).startswith("+OK")
    c.close()


def test_implicit_tls(server):
    p = login(server, tls=True)
    assert p.stat()[0] == 3
    assert "STLS" not in p.capa()
    assert p.quit().startswith(b"+OK")


def test_alpn_other_protocol_refused(server):
    ctx = client_context(server.tls_trust, alpn=["http/1.1"])
    with pytest.raises((ssl.SSLError, ConnectionResetError, ConnClosed)):
        c = Client.connect(server.tls_port, tls_ctx=ctx)
        c.readline()
    ctx = client_context(server.tls_trust, alpn=["pop3"])
    c = Client.connect(server.tls_port, tls_ctx=ctx)
    assert c.readline().startswith("+OK")
    assert c.sock.selected_alpn_protocol() == "pop3"
    c.close()


# --------------------------------------------------------------------- auth


def test_user_pass_wrong_then_right(pop3d, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = pop3d({"auth": {"max_failures": "3"}})
    c = d.client()
    assert c.cmd_pop("PASS x") == "-ERR USER first"
    assert c.cmd_pop("USER " + USER) == "+OK"
    assert c.cmd_pop("PASS wrong").startswith("-ERR [AUTH] ")
    # USER is needed again after a PASS.
    assert c.cmd_pop("PASS " + PASSWORD) == "-ERR USER first"
    assert c.cmd_pop("USER " + USER) == "+OK"
    assert c.cmd_pop("PASS " + PASSWORD).startswith("+OK Logged in, 0 messages")
    c.close()


def test_password_with_spaces_and_unknown_user(pop3d, auth_env):
    auth_env.add_user("bob", "  two  spaces ")
    d = pop3d()
    c = d.client()
    assert c.cmd_pop("USER bob") == "+OK"
    assert c.cmd_pop("PASS   two  spaces ").startswith("+OK Logged in")
    c.close()
    c = d.client()
    assert c.cmd_pop("USER nobody") == "+OK"
    assert c.cmd_pop("PASS whatever").startswith("-ERR [AUTH] ")
    c.close()


def test_too_many_failures_disconnects(pop3d, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = pop3d({"auth": {"max_failures": "2"}})
    c = d.client()
    for _ in range(2):
        assert c.cmd_pop("USER " + USER) == "+OK"
        assert c.cmd_pop("PASS nope").startswith("-ERR [AUTH] ")
    assert c.readline() == "-ERR Too many authentication failures"
    c.expect_eof()


def test_password_never_logged(server):
    c = raw_login(server)
    c.close()
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    c = server.client()
    assert c.cmd_pop("AUTH PLAIN " + plain).startswith("+OK")
    c.close()
    time.sleep(0.2)
    log = server.log()
    assert PASSWORD not in log and plain not in log


def test_auth_plain_with_initial_response(server):
    c = server.client()
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert c.cmd_pop("AUTH PLAIN " + plain).startswith("+OK Logged in, 3 messages")
    assert c.cmd_pop("STAT").startswith("+OK 3 ")
    c.close()


def test_auth_plain_without_initial_response(server):
    c = server.client()
    assert c.cmd_pop("auth plain") == "+ "
    plain = base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()).decode()
    assert c.cmd_pop(plain).startswith("+OK Logged in")
    c.close()


def test_auth_login(server):
    c = server.client()
    assert c.cmd_pop("AUTH LOGIN") == "+ " + base64.b64encode(b"Username:").decode()
    assert c.cmd_pop(base64.b64encode(USER.encode()).decode()) == \
        "+ " + base64.b64encode(b"Password:").decode()
    assert c.cmd_pop(base64.b64encode(PASSWORD.encode()).decode()).startswith("+OK Logged in")
    c.close()


def test_auth_login_with_initial_response(server):
    c = server.client()
    r = c.cmd_pop("AUTH LOGIN " + base64.b64encode(USER.encode()).decode())
    assert r == "+ " + base64.b64encode(b"Password:").decode()
    assert c.cmd_pop(base64.b64encode(PASSWORD.encode()).decode()).startswith("+OK")
    c.close()


def test_auth_bad_input(server):
    """ROBUSTNESS 22: bad base64, base64 without NULs, "*" cancel, an
    unknown mechanism: -ERR each time, and a login still works after."""
    c = server.client()
    assert c.cmd_pop("AUTH PLAIN ====").startswith("-ERR ")
    assert c.cmd_pop("AUTH PLAIN " + base64.b64encode(b"no nuls here").decode()) \
        .startswith("-ERR ")
    assert c.cmd_pop("AUTH PLAIN") == "+ "
    assert c.cmd_pop("*") == "-ERR Authentication cancelled"
    assert c.cmd_pop("AUTH PLAIN") == "+ "
    assert c.cmd_pop("!!!not base64!!!").startswith("-ERR ")
    assert c.cmd_pop("AUTH CRAM-MD5") == "-ERR Unsupported authentication mechanism"
    assert c.cmd_pop("AUTH") == "+OK"
    assert c.multiline() == ["PLAIN", "LOGIN"]
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert c.cmd_pop("AUTH PLAIN " + plain).startswith("+OK Logged in")
    c.close()


def test_auth_wrong_password_code(server):
    c = server.client()
    plain = base64.b64encode(f"\0{USER}\0wrong".encode()).decode()
    assert c.cmd_pop("AUTH PLAIN " + plain).startswith("-ERR [AUTH] ")
    c.close()


def test_apop_not_offered(server):
    # No APOP timestamp in the greeting, and the command is refused.
    c = Client.connect(server.port)
    assert c.readline() == "+OK Tern POP3 ready"
    assert c.cmd_pop("APOP alice 0123456789abcdef0123456789abcdef") == \
        "-ERR APOP is not supported"
    c.close()


def test_utf8(server):
    c = server.client()
    assert c.cmd_pop("UTF8") == "+OK UTF8 enabled"
    c2 = raw_login(server)
    assert c2.cmd_pop("UTF8") == "-ERR Not allowed after login"
    c.close()
    c2.close()


# ------------------------------------------------------ TRANSACTION commands


def test_stat_list_sizes_are_crlf_sizes(server):
    stored = [open(f, "rb").read() for f in message_files(server)]
    p = login(server)
    count, total = p.stat()
    assert count == 3 and total == sum(len(crlf(m)) for m in stored)
    resp, lines, _ = p.list()
    assert resp.startswith(b"+OK")
    assert lines == [f"{i + 1} {len(crlf(m))}".encode() for i, m in enumerate(stored)]
    assert p.list(2) == f"+OK 2 {len(crlf(stored[1]))}".encode()
    for i, m in enumerate(stored):
        resp, body, octets = p.retr(i + 1)
        assert resp == f"+OK {len(crlf(m))} octets".encode()
        assert b"\r\n".join(body) + b"\r\n" == crlf(m)
    p.quit()


def test_every_command_and_reply(server):
    c = raw_login(server)
    assert c.cmd_pop("NOOP") == "+OK"
    assert c.cmd_pop("STAT").startswith("+OK 3 ")
    assert c.cmd_pop("LIST 4") == "-ERR There is no such message"
    assert c.cmd_pop("LIST 0") == "-ERR Invalid message number"
    assert c.cmd_pop("LIST x") == "-ERR Invalid message number"
    assert c.cmd_pop("LIST 1 2") == "-ERR Too many arguments"
    assert c.cmd_pop("RETR") == "-ERR Missing argument"
    assert c.cmd_pop("TOP 1") == "-ERR Missing argument"
    assert c.cmd_pop("TOP 1 x") == "-ERR Invalid number of lines"
    assert c.cmd_pop("DELE 2") == "+OK Message 2 deleted"
    assert c.cmd_pop("DELE 2") == "-ERR Message is deleted"
    assert c.cmd_pop("RETR 2") == "-ERR Message is deleted"
    assert c.cmd_pop("LIST 2") == "-ERR Message is deleted"
    assert c.cmd_pop("UIDL 2") == "-ERR Message is deleted"
    assert c.cmd_pop("STAT").startswith("+OK 2 ")
    assert c.cmd_pop("LIST") == "+OK Scan listing follows"
    assert [x.split()[0] for x in c.multiline()] == ["1", "3"]
    assert c.cmd_pop("UIDL") == "+OK Unique-ID listing follows"
    assert [x.split()[0] for x in c.multiline()] == ["1", "3"]
    assert c.cmd_pop("RSET") == "+OK 3 messages ({} octets)".format(
        sum(len(crlf(open(f, "rb").read())) for f in message_files(server)))
    assert c.cmd_pop("STAT").startswith("+OK 3 ")
    assert c.cmd_pop("list 2").startswith("+OK 2 ")
    assert c.cmd_pop("USER bob") == "-ERR Not allowed after login"
    assert c.cmd_pop("STLS") == "-ERR Not allowed after login"
    assert c.cmd_pop("XYZZY") == "-ERR Unknown command"
    assert c.cmd_pop("QUIT") == "+OK Logging out"
    c.expect_eof()
    assert len(message_files(server)) == 3


def test_commands_before_login(server):
    c = server.client()
    assert c.cmd_pop("STAT") == "-ERR Not logged in"
    assert c.cmd_pop("RETR 1") == "-ERR Not logged in"
    assert c.cmd_pop("QUIT") == "+OK Logging out"
    c.expect_eof()


def test_bad_commands_before_login_disconnect(server):
    c = server.client()
    assert c.cmd_pop("FOO") == "-ERR Unknown command"
    assert c.cmd_pop("") == "-ERR Empty command"
    assert c.cmd_pop("NOOP\0x") == "-ERR Invalid characters in the command"
    assert c.readline() == "-ERR Too many bad commands, closing connection"
    c.expect_eof()


def test_bad_commands_after_login_disconnect(server):
    c = raw_login(server)
    for i in range(19):
        assert c.cmd_pop("BOGUS") == "-ERR Unknown command"
    assert c.cmd_pop("STAT").startswith("+OK")
    assert c.cmd_pop("BOGUS") == "-ERR Unknown command"
    assert c.readline() == "-ERR Too many bad commands, closing connection"
    c.expect_eof()
    # A dropped session deletes nothing and holds no lock.
    assert login(server).stat()[0] == 3


def test_long_line_refused(pop3d, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = pop3d({"pop3": {"max_line_length": "512"}})
    c = d.client()
    assert c.cmd_pop("USER " + "a" * 100000) == "-ERR Line too long"
    assert c.cmd_pop("USER " + "a" * 400) == "-ERR User name too long"
    assert c.cmd_pop("USER " + USER) == "+OK"
    assert c.cmd_pop("PASS " + PASSWORD).startswith("+OK")
    c.close()


def test_pipelining(server):
    c = server.client()
    c.send(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST 1\r\nUIDL 3\r\n"
           "RETR 2\r\nDELE 1\r\nNOOP\r\nTOP 3 0\r\nQUIT\r\n".encode())
    assert c.readline() == "+OK"
    assert c.readline().startswith("+OK Logged in, 3 messages")
    assert c.readline().startswith("+OK 3 ")
    assert c.readline().startswith("+OK 1 ")
    assert c.readline().startswith("+OK 3 ")
    assert c.readline().endswith(" octets")
    assert c.multiline()[-1] == "Body of message 2."
    assert c.readline() == "+OK Message 1 deleted"
    assert c.readline() == "+OK"
    assert c.readline() == "+OK Top of message follows"
    assert c.multiline()[-1] == ""
    assert c.readline() == "+OK Logging out, 1 messages deleted"
    c.expect_eof()


# ---------------------------------------------------------------- RETR, TOP


def test_dot_stuffing_and_line_ends(pop3d, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = pop3d()
    body = b".\n..two\n.three\nend . \n.\n"
    d.deliver(USER, b"Subject: dots\n\n" + body)
    d.deliver(USER, b"Subject: no final newline\n\nlast line")
    c = raw_login(d)
    c.sendline("RETR 1")
    assert c.readline().startswith("+OK")
    raw = bytearray(c.buf)
    c.buf.clear()
    while not raw.endswith(b"\r\n.\r\n"):
        raw += c.sock.recv(65536)
    assert bytes(raw) == b"Subject: dots\r\n\r\n..\r\n...two\r\n..three\r\nend . \r\n..\r\n.\r\n"
    c.sendline("RETR 2")
    assert c.readline() == "+OK {} octets".format(len(b"Subject: no final newline\r\n\r\nlast line"))
    assert c.multiline() == ["Subject: no final newline", "", "last line"]
    c.close()


def test_top(pop3d, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = pop3d()
    d.deliver(USER, b"Subject: top\nX-A: 1\n\nl1\n.l2\nl3\n")
    d.deliver(USER, b"Subject: header only\n")
    p = login(d)
    assert p.top(1, 0)[1] == [b"Subject: top", b"X-A: 1", b""]
    assert p.top(1, 2)[1] == [b"Subject: top", b"X-A: 1", b"", b"l1", b".l2"]
    assert p.top(1, 99)[1] == [b"Subject: top", b"X-A: 1", b"", b"l1", b".l2", b"l3"]
    assert p.top(2, 5)[1] == [b"Subject: header only"]
    assert p.top(1, 18446744073709551615)[1][-1] == b"l3"
    with pytest.raises(poplib.error_proto):
        p.top(1, 18446744073709551616)
    # TOP does not count as retrieving: no \Seen at QUIT.
    p.quit()
    assert all(":2,S" not in f for f in message_files(d))


def test_retrieved_messages_are_seen_after_quit(server):
    p = login(server)
    p.retr(2)
    p.top(3, 1)
    p.quit()
    files = message_files(server)
    seen = [re.search(r":2,[A-Z]*S", os.path.basename(f)) is not None for f in files]
    assert seen == [False, True, False]


def test_retr_20mb_streams_with_bounded_memory(pop3d, auth_env):
    """A 20 MB message with dot lines: the daemon's RSS stays far below
    the message size while a slow client reads it, and the un-stuffed
    bytes equal the stored ones."""
    auth_env.add_user(USER, PASSWORD)
    d = pop3d(measure_rss=True)
    line = b".starts with a dot and is long enough to fill the message quickly " * 2 + b"\n"
    body = line * (20 * 1024 * 1024 // len(line))
    d.deliver(USER, b"Subject: big\n\n" + body)
    stored = open(message_files(d)[0], "rb").read()
    c = raw_login(d)
    base = vmrss_kib(d.pid)
    c.sendline("RETR 1")
    assert c.readline() == f"+OK {len(crlf(stored))} octets"
    got = bytearray(c.buf)
    c.buf.clear()
    peak = 0
    slow_until = time.monotonic() + 1.0
    deadline = time.monotonic() + 120
    while not got.endswith(b"\r\n.\r\n"):
        assert time.monotonic() < deadline, "RETR did not finish"
        if time.monotonic() < slow_until:
            time.sleep(0.05)          # a slow reader: the server must wait
            got += c.sock.recv(4096)
        else:
            got += c.sock.recv(1 << 20)
        peak = max(peak, vmrss_kib(d.pid))
    assert peak - base < 16 * 1024, f"RSS grew by {peak - base} KiB during RETR"
    lines = bytes(got[:-3]).split(b"\r\n")
    unstuffed = b"\r\n".join(x[1:] if x.startswith(b".") else x for x in lines)
    assert unstuffed == crlf(stored)
    assert c.cmd_pop("STAT").startswith("+OK 1 ")
    c.close()


def test_listing_with_back_pressure(pop3d, auth_env):
    """LIST and UIDL of 3000 messages with a 4K output buffer: produced as
    the socket drains, all lines there, in order."""
    auth_env.add_user(USER, PASSWORD)
    d = pop3d({"pop3": {"output_buffer_size": "4K"}})
    d.deliver(USER, msg(0))
    new = os.path.join(d.user_dir(USER), "Maildir", "new")
    st = os.stat(new)
    for i in range(1, 3000):
        path = os.path.join(new, f"1700000000.M{i}P1.test")
        with open(path, "wb") as f:
            f.write(msg(i))
        os.chown(path, st.st_uid, st.st_gid)
    c = raw_login(d)
    c.sendline("UIDL")
    assert c.readline().startswith("+OK")
    time.sleep(0.5)
    uidls = c.multiline()
    assert [int(x.split()[0]) for x in uidls] == list(range(1, 3001))
    assert len(set(x.split()[1] for x in uidls)) == 3000
    c.sendline("LIST")
    assert c.readline().startswith("+OK")
    assert len(c.multiline()) == 3000
    assert c.cmd_pop("NOOP") == "+OK"
    c.close()


# -------------------------------------------------------- lock and UPDATE


def test_exclusive_lock(server):
    c1 = raw_login(server)
    c2 = server.client()
    assert c2.cmd_pop("USER " + USER) == "+OK"
    assert c2.cmd_pop("PASS " + PASSWORD) == \
        "-ERR [IN-USE] Mailbox is locked by another POP3 session"
    # Still in AUTHORIZATION: the client may try again.
    assert c2.cmd_pop("STAT") == "-ERR Not logged in"
    assert c1.cmd_pop("QUIT").startswith("+OK")
    c1.expect_eof()
    assert c2.cmd_pop("USER " + USER) == "+OK"
    assert c2.cmd_pop("PASS " + PASSWORD).startswith("+OK Logged in")
    c2.close()


def test_lock_released_when_connection_drops(server):
    c = raw_login(server)
    c.sendline("RETR 1")
    c.close()
    time.sleep(0.3)
    p = login(server)
    assert p.stat()[0] == 3
    p.quit()


def test_dele_then_drop_keeps_dele_then_quit_removes(server):
    """ROBUSTNESS 36, with UIDLs checked across an index rebuild."""
    p = login(server)
    before = p.uidl()[1]
    p.dele(1)
    p.close()                          # dropped, no QUIT
    time.sleep(0.3)
    p = login(server)
    assert p.uidl()[1] == before
    p.dele(1)
    assert p.quit() == b"+OK Logging out, 1 messages deleted"
    assert len(message_files(server)) == 2
    p = login(server)
    after = [x.split()[1] for x in p.uidl()[1]]
    assert after == [x.split()[1] for x in before[1:]]
    p.quit()
    server.auth.ternctl("index", "rebuild", USER)
    p = login(server)
    assert [x.split()[1] for x in p.uidl()[1]] == after
    p.quit()


def test_delete_all_leaves_mailbox_empty(server):
    p = login(server)
    for i in range(1, 4):
        p.dele(i)
    p.quit()
    assert message_files(server) == []
    p = login(server)
    assert p.stat() == (0, 0)
    p.quit()


def test_delivery_during_session_shows_next_session(server):
    c = raw_login(server)
    server.deliver(USER, msg(4))
    assert c.cmd_pop("STAT").startswith("+OK 3 ")
    assert c.cmd_pop("LIST 4") == "-ERR There is no such message"
    assert c.cmd_pop("DELE 1").startswith("+OK")
    assert c.cmd_pop("QUIT") == "+OK Logging out, 1 messages deleted"
    c.expect_eof()
    p = login(server)
    assert p.stat()[0] == 3
    assert p.retr(3)[1][-1] == b"Body of message 4."
    p.quit()


def test_expunge_by_another_program_during_session(server):
    c = raw_login(server)
    files = message_files(server)
    os.unlink(files[1])
    assert c.cmd_pop("RETR 2") == "-ERR Message 2 was deleted by another session"
    assert c.cmd_pop("RETR 1").endswith(" octets")
    assert c.multiline()[-1] == "Body of message 1."
    assert c.cmd_pop("DELE 2") == "+OK Message 2 deleted"
    assert c.cmd_pop("DELE 3") == "+OK Message 3 deleted"
    assert c.cmd_pop("QUIT") == "+OK Logging out, 2 messages deleted"
    c.expect_eof()
    # Message 1 is left, renamed only by its \Seen flag.
    left = [os.path.basename(f).split(":")[0] for f in message_files(server)]
    assert left == [os.path.basename(files[0]).split(":")[0]]


def test_imap_expunge_during_session(server, imapd):
    """An IMAP client of the same user expunges a message while a POP3
    session has it listed: POP3 keeps its numbering, RETR of that message
    fails, the others work; POP3's own deletions reach the IMAP session as
    EXPUNGE responses."""
    c = raw_login(server)
    im = imapd().login(USER, PASSWORD)
    assert im.cmd("s SELECT INBOX")[-1].startswith("s OK [READ-WRITE]")
    assert im.cmd("t STORE 2 +FLAGS.SILENT (\\Deleted)")[-1] == "t OK Store completed"
    lines = im.cmd("e EXPUNGE")
    assert lines == ["* 2 EXPUNGE", "e OK Expunge completed"], lines
    assert c.cmd_pop("STAT").startswith("+OK 3 ")
    assert c.cmd_pop("RETR 2") == "-ERR Message 2 was deleted by another session"
    assert c.cmd_pop("RETR 1").endswith(" octets")
    assert c.multiline()[-1] == "Body of message 1."
    assert c.cmd_pop("DELE 3") == "+OK Message 3 deleted"
    assert c.cmd_pop("QUIT") == "+OK Logging out, 1 messages deleted"
    c.expect_eof()
    # IMAP had messages 1 and 3; POP3 deleted 3 and marked 1 \Seen.
    lines = im.cmd("n NOOP")
    assert "* 2 EXPUNGE" in lines and lines[-1] == "n OK NOOP completed", lines
    assert any(l.startswith("* 1 FETCH (FLAGS (\\Seen))") for l in lines), lines
    lines = im.cmd("u UID SEARCH ALL")
    assert lines[0] == "* SEARCH 1" and lines[-1].startswith("u OK"), lines
    im.close()


def test_uidl_stable_and_derived_from_uid(server):
    uv = uidvalidity(server)
    p = login(server)
    first = p.uidl()[1]
    p.quit()
    assert first == [f"{i} {i:08x}{uv:08x}".encode() for i in (1, 2, 3)]
    p = login(server)
    assert p.uidl()[1] == first
    assert p.uidl(2) == f"+OK 2 {2:08x}{uv:08x}".encode()
    p.quit()


@pytest.mark.parametrize("fmt", ["courier", "cyrus", "dovecot"])
def test_uidl_formats(pop3d, auth_env, fmt):
    auth_env.add_user(USER, PASSWORD)
    d = pop3d({"pop3": {"uidl_format": fmt}})
    d.deliver(USER, msg(1))
    d.deliver(USER, msg(2))
    uv = uidvalidity(d)
    want = {"courier": lambda u: f"UID{u}-{uv}",
            "cyrus": lambda u: f"{uv}.{u}",
            "dovecot": lambda u: f"{u:08x}{uv:08x}"}[fmt]
    p = login(d)
    assert p.uidl()[1] == [f"{u} {want(u)}".encode() for u in (1, 2)]
    p.quit()


def test_login_delay(pop3d, auth_env):
    auth_env.add_user(USER, PASSWORD)
    d = pop3d({"pop3": {"login_delay": "1h"}})
    c = d.client()
    assert "LOGIN-DELAY 3600" in capa(c)
    c.close()
    p = login(d)
    p.quit()
    c = d.client()
    assert c.cmd_pop("USER " + USER) == "+OK"
    assert c.cmd_pop("PASS " + PASSWORD) == "-ERR [LOGIN-DELAY] Too soon after the last login"
    c.close()


def test_maildrop_unavailable_is_temporary(pop3d, auth_env):
    """A user directory that cannot be opened: -ERR [SYS/TEMP], nothing
    else changes, the session goes on."""
    auth_env.add_user(USER, PASSWORD)
    d = pop3d()
    # The mail user cannot enter the user's directory.
    os.makedirs(d.user_dir(USER), exist_ok=True)
    os.chmod(d.user_dir(USER), 0)
    c = d.client()
    assert c.cmd_pop("USER " + USER) == "+OK"
    assert c.cmd_pop("PASS " + PASSWORD).startswith("-ERR [SYS/TEMP] ")
    assert c.cmd_pop("QUIT").startswith("+OK")
    c.expect_eof()


def test_migration_keeps_old_uidls(pop3d, auth_env, mail_user):
    """docs/pop3.md's migration recipe: a Maildir copied from another
    server, its UIDs put into the file names and its UIDVALIDITY into
    tern-uidstate, then an index rebuild: the old Courier UIDLs come out."""
    _, uid, gid = mail_user
    auth_env.add_user(USER, PASSWORD)
    maildir = os.path.join(auth_env.mail_root, USER, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    for n, old_uid in ((1, 7), (2, 19)):
        with open(os.path.join(maildir, "cur", f"1600000000.M{n}P1.old,U={old_uid}:2,S"),
                  "wb") as f:
            f.write(msg(n))
    with open(os.path.join(maildir, "tern-uidstate"), "w") as f:
        f.write("uidvalidity 1234567890\n")
    for root, dirs, files in os.walk(os.path.join(auth_env.mail_root, USER)):
        for name in dirs + files + [""]:
            os.chown(os.path.join(root, name), uid, gid)
    auth_env.ternctl("index", "rebuild", USER)
    d = pop3d({"pop3": {"uidl_format": "courier"}})
    p = login(d)
    assert p.uidl()[1] == [b"1 UID7-1234567890", b"2 UID19-1234567890"]
    p.quit()
