"""
The connection framework (common/), seen through tern-echod: plain and TLS
listeners, STARTTLS, TLS policy, ALPN, line limits, timeouts, connection
limits, SIGHUP reload, PROXY protocol, back-pressure, the thread pool,
graceful shutdown, privilege drop and memory per connection.

Each test asserts what a client sees. No timing assertions: waits are
generous deadlines, and "before" means the order in which replies arrive.
"""

import os
import random
import re
import select
import signal
import socket
import ssl
import struct
import time

import pytest

from conftest import (Client, client_context,
                      control_handshake, free_ports, install_file, proc_status,
                      render_config, vmrss_kib)

GREETING = "* OK tern-echod ready"
LIMIT_BYE = "* BYE [LIMIT] too many connections"

CBC_ONLY = ":".join([
    "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA",
    "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA384",
    "DHE-RSA-AES128-SHA", "DHE-RSA-AES256-SHA",
    "AES128-SHA", "AES256-SHA", "AES128-SHA256", "AES256-SHA256",
]) + ":@SECLEVEL=0"


# ------------------------------------------------------------- helpers


def ctx_for(d, **kw):
    """A client context trusting the daemon's current and replacement certs."""
    return client_context(d.tls_trust, **kw)


def open_plain(d, clients, source="127.0.0.1", greet=True):
    c = Client.connect(d.port, source=source)
    clients.append(c)
    if greet:
        c.greeting()
    return c


def open_tls(d, clients, ctx=None, server_hostname="127.0.0.1", greet=True):
    c = Client.connect(d.tls_port, tls_ctx=ctx or ctx_for(d),
                       server_hostname=server_hostname)
    clients.append(c)
    if greet:
        c.greeting()
    return c


def open_starttls(d, clients, ctx=None):
    c = open_plain(d, clients)
    c.starttls(ctx or ctx_for(d))
    return c


def assert_echo(c, text="ping"):
    assert c.cmd(text) == [f"ECHO {text}"]


def expect_refused_handshake(connect):
    """connect() must fail in the TLS handshake (alert, reset or close),
    neither succeed nor hang. Returns the exception."""
    try:
        c = connect()
    except socket.timeout:
        pytest.fail("TLS handshake hung instead of being refused")
    except (ssl.SSLError, ConnectionError) as e:
        return e
    try:
        desc = f"{c.sock.version()} {c.sock.cipher()}"
    finally:
        c.close()
    pytest.fail(f"TLS handshake succeeded: {desc}")


def wait_for(pred, timeout=15.0, step=0.1, what="condition"):
    """Poll pred() until it returns a true value (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def is_aead(cipher_name):
    return any(x in cipher_name for x in ("GCM", "CHACHA20", "CCM"))


# ------------------------------------------------------ plain and TLS


def test_greeting_and_echo_plain(echod, clients):
    d = echod()
    c = open_plain(d, clients)
    assert c.cmd("hello world") == ["ECHO hello world"]
    # LF alone also ends a line.
    c.send(b"lf only\n")
    assert c.response() == ["ECHO lf only"]
    # Several lines in one segment: answered in order.
    c.send(b"one\r\ntwo\r\nthree\r\n")
    assert [c.readline() for _ in range(3)] == ["ECHO one", "ECHO two", "ECHO three"]
    # A line split over several segments.
    c.send(b"spl")
    time.sleep(0.1)
    c.send(b"it\r\n")
    assert c.response() == ["ECHO split"]
    c.sendline("QUIT")
    assert c.readline() == "BYE"
    assert c.expect_eof() == b""


def test_capa_and_info_plain(echod, clients):
    d = echod()
    c = open_plain(d, clients)
    assert c.cmd("CAPA") == ["* CAPABILITY ECHO STARTTLS", "OK"]
    info = c.info()
    assert info["remote"] == "127.0.0.1"
    assert info["port"] == str(c.local_port)
    assert info["tls"] == "no"
    assert info["secure"] == "yes"          # loopback counts as secure
    assert info["session"]
    c2 = open_plain(d, clients)
    assert c2.info()["session"] != info["session"]


def test_ipv6_and_unix_listeners(echod, clients, workdir):
    (p4,) = free_ports(1)
    (p6,) = free_ports(1, "::1")
    sock_path = os.path.join(workdir, "echo.sock")
    d = echod({"imap": {"listen": f"127.0.0.1:{p4} [::1]:{p6} unix:{sock_path}"}})
    assert d.running()
    c4 = Client.connect(p4)
    clients.append(c4)
    c4.greeting()
    assert c4.info()["remote"] == "127.0.0.1"
    c6 = Client.connect(p6, host="::1")
    clients.append(c6)
    c6.greeting()
    info = c6.info()
    assert (info["remote"], info["port"], info["secure"]) == ("::1", str(c6.local_port), "yes"), info
    assert_echo(c6)
    cu = Client.connect_unix(sock_path)
    clients.append(cu)
    cu.greeting()
    info = cu.info()
    assert (info["remote"], info["secure"]) == ("unix", "yes"), info
    assert_echo(cu)


@pytest.mark.parametrize("server_hostname", ["127.0.0.1", "localhost"])
def test_implicit_tls(echod, clients, certs, server_hostname):
    d = echod()
    c = open_tls(d, clients, server_hostname=server_hostname)
    assert c.peer_cert() == certs[0].der
    assert_echo(c, "over tls")
    info = c.info()
    assert (info["tls"], info["secure"], info["remote"]) == ("yes", "yes", "127.0.0.1")
    assert info["port"] == str(c.local_port)
    # No STARTTLS inside TLS.
    assert c.cmd("CAPA") == ["* CAPABILITY ECHO", "OK"]
    assert c.cmd("STARTTLS") == ["NO STARTTLS not available"]
    assert_echo(c)
    c.sendline("QUIT")
    assert c.readline() == "BYE"
    c.expect_eof()


def test_starttls_then_info(echod, clients):
    d = echod()
    c = open_plain(d, clients)
    assert c.info()["tls"] == "no"
    c.starttls(ctx_for(d))
    # No second greeting after STARTTLS: the next thing is INFO's reply.
    info = c.info()
    assert info["tls"] == "yes"
    assert info["secure"] == "yes"
    assert info["remote"] == "127.0.0.1"
    assert_echo(c, "inside tls")


@pytest.mark.parametrize("payload", [
    b"STARTTLS\r\nX NOOP\r\n",
    b"STARTTLS\nX NOOP\n",
    b"STARTTLS\r\nX NOOP\r\nINFO\r\nX2 NOOP\r\n",
], ids=["crlf", "lf", "several"])
def test_starttls_pipelined_injection_discarded(echod, clients, payload):
    """ROBUSTNESS #1: commands pipelined after STARTTLS in the same segment
    never run inside TLS (nor in plaintext)."""
    d = echod()
    c = open_plain(d, clients)
    c.send(payload)                          # one send, one segment
    assert c.readline() == "OK begin TLS"
    c.handshake(ctx_for(d))                  # asserts no plaintext followed
    seen = []
    c.sendline("INFO")
    for _ in range(20):
        line = c.readline()
        seen.append(line)
        if line == "OK":
            break
    assert not any("X NOOP" in l or "X2 NOOP" in l for l in seen), seen
    assert len(seen) == 2 and seen[0].startswith("* INFO ") and "tls=yes" in seen[0], seen
    # Nothing queued behind it either.
    assert c.cmd("after") == ["ECHO after"]


def test_second_starttls_refused(echod, clients):
    d = echod()
    c = open_starttls(d, clients)
    assert c.cmd("CAPA") == ["* CAPABILITY ECHO", "OK"]
    assert c.cmd("STARTTLS") == ["NO STARTTLS not available"]
    assert_echo(c)
    assert c.info()["tls"] == "yes"


def test_starttls_unavailable_without_cert(echod, clients, workdir):
    # No listen_tls, and the certificate files do not exist: no TLS at all
    # (explicit paths so the host's /etc/tern does not matter).
    d = echod({"tls": {"cert": os.path.join(workdir, "no-cert.pem"),
                       "key": os.path.join(workdir, "no-key.pem")}}, tls=False)
    c = open_plain(d, clients)
    assert c.cmd("CAPA") == ["* CAPABILITY ECHO", "OK"]
    assert c.cmd("STARTTLS") == ["NO STARTTLS not available"]
    assert_echo(c)


# ----------------------------------------------------------- TLS policy


def _connect_implicit(d, ctx):
    return lambda: Client.connect(d.tls_port, tls_ctx=ctx)


def _connect_starttls(d, ctx):
    def f():
        c = Client.connect(d.port)
        try:
            c.greeting()
            c.sendline("STARTTLS")
            assert c.readline() == "OK begin TLS"
            c.handshake(ctx)
        except BaseException:
            c.close()
            raise
        return c
    return f


CONNECTORS = {"implicit": _connect_implicit, "starttls": _connect_starttls}


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_refused(echod, clients, mode, version):
    d = echod()
    v = getattr(ssl.TLSVersion, version)
    ctx = ctx_for(d, min_version=v, max_version=v, ciphers="ALL:@SECLEVEL=0")
    # Control: this client context really speaks that version.
    got = control_handshake(ctx)
    assert got[0] == {"TLSv1": "TLSv1", "TLSv1_1": "TLSv1.1"}[version], got
    expect_refused_handshake(CONNECTORS[mode](d, ctx))
    # The server is fine afterwards.
    assert_echo(open_tls(d, clients))


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_tls12_cbc_only_refused(echod, clients, mode):
    d = echod()
    ctx = ctx_for(d, min_version=ssl.TLSVersion.TLSv1_2,
                  max_version=ssl.TLSVersion.TLSv1_2, ciphers=CBC_ONLY)
    got = control_handshake(ctx)
    assert got[0] == "TLSv1.2" and not is_aead(got[1]), got
    expect_refused_handshake(CONNECTORS[mode](d, ctx))
    assert_echo(open_tls(d, clients))


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_tls12_aead_accepted(echod, clients, mode):
    d = echod()
    ctx = ctx_for(d, min_version=ssl.TLSVersion.TLSv1_2,
                  max_version=ssl.TLSVersion.TLSv1_2)
    c = CONNECTORS[mode](d, ctx)()
    clients.append(c)
    assert c.sock.version() == "TLSv1.2"
    assert is_aead(c.sock.cipher()[0]), c.sock.cipher()
    if mode == "implicit":
        c.greeting()
    assert c.info()["tls"] == "yes"


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_tls13_accepted(echod, clients, mode):
    d = echod()
    ctx = ctx_for(d, min_version=ssl.TLSVersion.TLSv1_3,
                  max_version=ssl.TLSVersion.TLSv1_3)
    c = CONNECTORS[mode](d, ctx)()
    clients.append(c)
    assert c.sock.version() == "TLSv1.3"
    if mode == "implicit":
        c.greeting()
    assert c.info()["tls"] == "yes"


# ------------------------------------------------------------------ ALPN


ALPN_CASES = [
    # (service, offer, accepted, expected selection)
    ("imap", ["http/1.1"], False, None),
    ("imap", ["imap"], True, "imap"),
    ("imap", None, True, None),
    ("imap", ["http/1.1", "imap"], True, "imap"),
    ("imap", ["pop3"], False, None),
    ("pop3", ["http/1.1"], False, None),
    ("pop3", ["imap"], False, None),
    ("pop3", ["pop3"], True, "pop3"),
    ("pop3", None, True, None),
    ("lmtp", ["http/1.1"], True, None),
    ("lmtp", None, True, None),
]


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
@pytest.mark.parametrize("service,offer,accepted,selected", ALPN_CASES,
                         ids=[f"{s}-{'+'.join(o) if o else 'none'}"
                              for s, o, _, _ in ALPN_CASES])
def test_alpn(echod, clients, mode, service, offer, accepted, selected):
    """ROBUSTNESS #7 (ALPACA)."""
    d = echod(service=service)
    ctx = ctx_for(d, alpn=offer)
    connect = CONNECTORS[mode](d, ctx)
    if not accepted:
        e = expect_refused_handshake(connect)
        assert re.search(r"no.application.protocol", str(e), re.I), \
            f"expected a no_application_protocol alert, got {e!r}"
        assert_echo(open_plain(d, clients))
        return
    c = connect()
    clients.append(c)
    if mode == "implicit":
        c.greeting()
    assert c.sock.selected_alpn_protocol() == selected
    assert c.info()["tls"] == "yes"


# ------------------------------------------------- garbage on TLS port


GARBAGE = {
    "random": b"\xff" + random.Random(1234).randbytes(4095),
    "plaintext": b"CAPA\r\n" * 10,
    "http": b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
    "bad-clienthello": b"\x16\x03\x01\x00\x20" + b"\x01\x00\x00\x1c" + b"\xee" * 28,
}


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_tls_garbage_closes_only_that_connection(echod, clients, kind):
    d = echod()
    before = open_tls(d, clients)
    g = Client.connect(d.tls_port)
    clients.append(g)
    g.send(GARBAGE[kind])
    got = g.expect_eof()
    assert b"tern-echod" not in got and b"ECHO" not in got, got[:200]
    assert d.running()
    assert_echo(before)
    assert_echo(open_tls(d, clients))


# ------------------------------------------------------------ line limit


def test_line_limit(echod, clients):
    d = echod({"imap": {"max_line_length": "1K", "max_line_length_auth": "4K"}})
    c = open_plain(d, clients)
    ok = "a" * 1000
    assert c.cmd(ok) == [f"ECHO {ok}"]
    assert c.cmd("b" * 2000) == ["BAD line too long"]
    assert_echo(c)
    # Too long and the next command in the same segment.
    c.send(b"c" * 3000 + b"\r\nnext\r\n")
    assert c.readline() == "BAD line too long"
    assert c.readline() == "ECHO next"
    # LOGIN raises the limit.
    assert c.cmd("LOGIN") == ["OK logged in"]
    longer = "d" * 3000
    assert c.cmd(longer) == [f"ECHO {longer}"]
    assert c.cmd("e" * 10000) == ["BAD line too long"]
    assert_echo(c)


def test_endless_line_memory_flat(echod, clients):
    """ROBUSTNESS #14: 100 MB without a line end; the server answers BAD
    and does not buffer it."""
    d = echod(measure_rss=True)
    c = open_plain(d, clients)
    assert_echo(c)
    base = vmrss_kib(d.pid)
    peak = base
    chunk = b"z" * 65536
    total = 100 * 1024 * 1024
    sent = 0
    for i in range(total // len(chunk)):       # bounded: 1600 sends
        try:
            c.send(chunk)
        except socket.timeout:
            pytest.fail(f"server stopped reading after {sent} bytes")
        sent += len(chunk)
        if i % 32 == 0:
            peak = max(peak, vmrss_kib(d.pid))
    peak = max(peak, vmrss_kib(d.pid))
    c.send(b"\r\nping\r\n")
    assert c.readline() == "BAD line too long"
    assert c.readline() == "ECHO ping"
    grew = peak - base
    print(f"endless line: VmRSS {base} KiB -> peak {peak} KiB")
    assert grew < 20 * 1024, f"VmRSS grew by {grew} KiB while receiving {sent} bytes"


# -------------------------------------------------------------- timeouts


def test_idle_timeout_before_login(echod, clients):
    d = echod({"imap": {"login_timeout": "1s", "idle_timeout": "3600s"}})
    c = open_plain(d, clients)
    assert c.readline(timeout=15) == "* BYE idle timeout"
    assert c.expect_eof() == b""


def test_idle_timeout_after_login(echod, clients):
    d = echod({"imap": {"login_timeout": "3600s", "idle_timeout": "1s"}})
    c = open_plain(d, clients)
    assert c.cmd("LOGIN") == ["OK logged in"]
    assert c.readline(timeout=15) == "* BYE idle timeout"
    assert c.expect_eof() == b""


def test_login_switches_to_idle_timeout(echod, clients):
    """After LOGIN, login_timeout no longer applies (waits 4x its value)."""
    d = echod({"imap": {"login_timeout": "1s", "idle_timeout": "3600s"}})
    c = open_plain(d, clients)
    assert c.cmd("LOGIN") == ["OK logged in"]
    time.sleep(4)
    assert_echo(c)


def test_output_timeout_closes_stalled_reader(echod, clients):
    """A client that stops reading a large response is dropped after
    output_timeout (it cannot pin the session forever); others are served."""
    d = echod({"imap": {"output_timeout": "1s", "idle_timeout": "3600s",
                        "login_timeout": "3600s"}})
    c = open_plain(d, clients)
    n = 50_000_000
    c.sendline(f"BIG {n}")
    time.sleep(6)                            # 6x output_timeout, not reading
    got = 0
    whole = n + len(b"\r\nOK\r\n")
    deadline = time.monotonic() + 30
    while got < whole:                       # bounded by the deadline too
        try:
            data = c._recv(deadline, 1 << 20)
        except TimeoutError:
            pytest.fail(f"neither EOF nor the whole response after {got} bytes")
        if not data:
            break
        got += len(data)
    assert got < n, (f"all {got} bytes arrived after a 6 s stall with "
                     f"output_timeout=1s: the stalled reader was not dropped")
    assert_echo(open_plain(d, clients))


SILENT = ["tls-handshake", "after-starttls", "trusted-proxy-no-header"]


@pytest.mark.parametrize("case", SILENT)
def test_silent_client_closed_by_login_timeout(echod, clients, case):
    """A connection that never completes its TLS handshake or PROXY header
    is closed by login_timeout, not held forever."""
    conf = {"imap": {"login_timeout": "1s"}}
    probe = "127.0.0.1"
    if case == "trusted-proxy-no-header":
        conf["imap"]["trusted_proxies"] = "127.0.0.1/32"
        probe = "127.0.0.2"
    d = echod(conf, probe_source=probe)
    if case == "tls-handshake":
        c = Client.connect(d.tls_port)
    elif case == "after-starttls":
        c = open_plain(d, clients)
        c.sendline("STARTTLS")
        assert c.readline() == "OK begin TLS"
    else:
        c = Client.connect(d.port)
    clients.append(c)
    got = c.expect_eof(timeout=15)
    assert b"ECHO" not in got, got


def test_limit_on_tls_port(echod, clients):
    """A refused connection on the implicit-TLS port gets its BYE inside TLS
    (a TLS client could not read it otherwise)."""
    d = echod({"imap": {"max_connections_per_ip": "1", "max_connections": "100"}})
    c1 = open_plain(d, clients)
    c2 = open_tls(d, clients, greet=False)
    expect_limit_refusal(c2)
    assert_echo(c1)


# ----------------------------------------------------- connection limits


def expect_limit_refusal(c):
    assert c.readline() == LIMIT_BYE
    assert c.expect_eof() == b""


def test_max_connections_per_ip(echod, clients):
    d = echod({"imap": {"max_connections_per_ip": "2", "max_connections": "100"}})
    c1 = open_plain(d, clients)
    c2 = open_plain(d, clients)
    c3 = open_plain(d, clients, greet=False)
    expect_limit_refusal(c3)
    assert_echo(c1, "one")
    assert_echo(c2, "two")
    # Another address is not affected.
    other = open_plain(d, clients, source="127.0.0.2")
    assert_echo(other, "other")
    # A slot freed by QUIT can be used again.
    c1.sendline("QUIT")
    assert c1.readline() == "BYE"
    c1.expect_eof()
    c1.close()
    d.wait_released([c1])
    c4 = open_plain(d, clients)
    assert_echo(c4, "four")
    assert_echo(c2, "two")


def test_max_connections(echod, clients):
    d = echod({"imap": {"max_connections": "2", "max_connections_per_ip": "100"}})
    c1 = open_plain(d, clients, source="127.0.0.1")
    c2 = open_plain(d, clients, source="127.0.0.2")
    c3 = open_plain(d, clients, source="127.0.0.3", greet=False)
    expect_limit_refusal(c3)
    assert_echo(c1, "one")
    assert_echo(c2, "two")


def test_sighup_reloads_limits(echod, clients):
    d = echod({"imap": {"max_connections_per_ip": "1", "max_connections": "100"}})
    c1 = open_plain(d, clients)
    expect_limit_refusal(open_plain(d, clients, greet=False))
    d.sections["imap"]["max_connections_per_ip"] = "3"
    install_file(render_config(d.sections).encode(), d.config_path,
                 os.stat(d.config_path).st_uid, os.stat(d.config_path).st_gid, 0o644)
    d.signal(signal.SIGHUP)

    def second():
        c = open_plain(d, clients, greet=False)
        line = c.readline()
        if line == LIMIT_BYE:
            c.expect_eof()
            return None
        assert line == GREETING, line
        return c
    c2 = wait_for(second, what="the raised limit after SIGHUP")
    assert_echo(c2)
    assert_echo(c1)


def test_sighup_reloads_log_level(echod, clients):
    """At log_level error a session leaves no trace; after switching the
    config to debug and SIGHUP, a new session's id appears in the log."""
    d = echod({"global": {"log_level": "error"}})
    c = open_plain(d, clients)
    quiet_id = c.info()["session"]
    c.sendline("QUIT")
    assert c.readline() == "BYE"
    c.expect_eof()
    d.sections["global"]["log_level"] = "debug"
    install_file(render_config(d.sections).encode(), d.config_path,
                 os.stat(d.config_path).st_uid, os.stat(d.config_path).st_gid, 0o644)
    d.signal(signal.SIGHUP)

    def logged_session():
        c2 = open_plain(d, clients)
        sid = c2.info()["session"]
        c2.sendline("QUIT")
        assert c2.readline() == "BYE"
        c2.expect_eof()
        return sid in d.log()
    wait_for(logged_session, what="a debug-level session in the log after SIGHUP")
    assert quiet_id not in d.log(), "a session was logged at log_level=error"


# ----------------------------------------------------- certificate reload


def test_sighup_certificate_reload(echod, clients, certs):
    """ROBUSTNESS #8."""
    a, b = certs
    d = echod()
    uid = os.stat(d.key_path).st_uid
    gid = os.stat(d.key_path).st_gid
    old = open_tls(d, clients)
    assert old.peer_cert() == a.der

    def install(pair_cert, key_bytes):
        with open(pair_cert, "rb") as f:
            install_file(f.read(), d.cert_path, uid, gid, 0o644)
        install_file(key_bytes, d.key_path, uid, gid, 0o600)

    def new_conn_cert():
        c = open_tls(d, clients)
        der = c.peer_cert()
        c.sendline("QUIT")
        assert c.readline() == "BYE"
        c.close()
        return der

    # 1. Swap to B.
    with open(b.key, "rb") as f:
        install(b.cert, f.read())
    d.signal(signal.SIGHUP)
    wait_for(lambda: new_conn_cert() == b.der, what="the new certificate in service")
    mid = open_tls(d, clients)
    assert mid.peer_cert() == b.der
    assert_echo(old, "old session")          # opened before the reload

    # 2. A broken replacement: cert A with a key that is not a key.
    mark = len(d.log())
    install(a.cert, b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    d.signal(signal.SIGHUP)
    err_re = re.compile(r"error|fail|invalid|cannot|can't|unable|bad", re.I)

    def logged_why():
        new = d.log()[mark:]
        for line in new.splitlines():
            if (d.key_path in line or "key" in line.lower()) and err_re.search(line):
                return line
        return None
    why = wait_for(logged_why, what="a log line about the broken key")
    print("logged:", why)
    for _ in range(3):
        assert new_conn_cert() == b.der, "a broken replacement took B out of service"
    assert_echo(old, "old")
    assert_echo(mid, "mid")

    # 3. A good replacement again (A) is picked up.
    with open(a.key, "rb") as f:
        install(a.cert, f.read())
    d.signal(signal.SIGHUP)
    wait_for(lambda: new_conn_cert() == a.der, what="certificate A back in service")
    assert_echo(old)
    assert_echo(mid)


# ---------------------------------------------------------- PROXY protocol


PROXY_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst, sport, dport, tlvs=b"", command=0x1):
    if ":" in src:
        fam = 0x21
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    else:
        fam = 0x11
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport) + tlvs
    return PROXY_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(body)) + body


PROXY_CONF = {"imap": {"trusted_proxies": "127.0.0.1/32"}}
# Readiness probes come from an untrusted address, so they need no header.
PROXY_PROBE = "127.0.0.2"

PROXY_OK = {
    "v1-tcp4": (b"PROXY TCP4 192.0.2.7 192.0.2.1 51234 143\r\n", "192.0.2.7", "51234"),
    "v1-tcp6": (b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 143\r\n", "2001:db8::7", "51234"),
    "v2-ipv4": (proxy_v2("192.0.2.7", "192.0.2.1", 51234, 143), "192.0.2.7", "51234"),
    "v2-ipv6": (proxy_v2("2001:db8::7", "2001:db8::1", 40000, 993), "2001:db8::7", "40000"),
    # PP2_TYPE_ALPN and PP2_TYPE_AUTHORITY TLVs, as HAProxy sends them.
    "v2-ipv4-tlv": (proxy_v2("198.51.100.9", "192.0.2.1", 1025, 143,
                             tlvs=b"\x01\x00\x04imap" + b"\x02\x00\x09localhost"),
                    "198.51.100.9", "1025"),
}


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
@pytest.mark.parametrize("name", list(PROXY_OK))
def test_proxy_header_trusted(echod, clients, name, split):
    d = echod(PROXY_CONF, probe_source=PROXY_PROBE)
    header, ip, port = PROXY_OK[name]
    c = Client.connect(d.port)
    clients.append(c)
    if split:
        c.send(header[:7])
        time.sleep(0.2)
        c.send(header[7:])
    else:
        c.send(header)
    c.greeting()
    info = c.info()
    assert (info["remote"], info["port"]) == (ip, port), info
    assert info["tls"] == "no"
    # A proxied, non-loopback client over plaintext is not "secure".
    assert info["secure"] == "no", info
    assert_echo(c)


def test_proxy_header_with_pipelined_command(echod, clients):
    d = echod(PROXY_CONF, probe_source=PROXY_PROBE)
    c = Client.connect(d.port)
    clients.append(c)
    c.send(b"PROXY TCP4 192.0.2.7 192.0.2.1 51234 143\r\nearly bird\r\n")
    c.greeting()
    assert c.readline() == "ECHO early bird"
    assert c.info()["remote"] == "192.0.2.7"


@pytest.mark.parametrize("header", [
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n",
    PROXY_SIG + b"\x20\x00\x00\x00",          # v2 LOCAL (health check)
], ids=["v1-unknown", "v1-unknown-addrs", "v2-local"])
def test_proxy_header_without_address_uses_real_one(echod, clients, header):
    d = echod(PROXY_CONF, probe_source=PROXY_PROBE)
    c = Client.connect(d.port)
    clients.append(c)
    c.send(header)
    c.greeting()
    info = c.info()
    assert (info["remote"], info["port"]) == ("127.0.0.1", str(c.local_port)), info


def test_proxy_header_on_tls_port(echod, clients):
    d = echod(PROXY_CONF, probe_source=PROXY_PROBE)
    c = Client.connect(d.tls_port)
    clients.append(c)
    c.send(b"PROXY TCP4 192.0.2.7 192.0.2.1 51234 993\r\n")
    c.handshake(ctx_for(d))
    c.greeting()
    info = c.info()
    assert (info["remote"], info["port"], info["tls"], info["secure"]) == \
        ("192.0.2.7", "51234", "yes", "yes"), info


BAD_PROXY = {
    "not-proxy": b"HELLO WORLD\r\n",
    "command-instead": b"CAPA\r\n",
    "v1-truncated": b"PROXY TCP4 192.0.2.7\r\n",
    "v1-bad-ip": b"PROXY TCP4 999.0.2.7 192.0.2.1 51234 143\r\n",
    "v1-bad-port": b"PROXY TCP4 192.0.2.7 192.0.2.1 99999 143\r\n",
    "v1-family-mismatch": b"PROXY TCP4 2001:db8::7 2001:db8::1 51234 143\r\n",
    "v1-too-long": b"PROXY TCP4 " + b"1" * 200 + b"\r\n",
    "v2-bad-version": PROXY_SIG + b"\x11\x11\x00\x0c" + b"\x00" * 12,
    "v2-short-ipv4": PROXY_SIG + b"\x21\x11\x00\x04" + b"\xc0\x00\x02\x07",
    "v2-bad-command": PROXY_SIG + b"\x2f\x11\x00\x0c" + b"\x00" * 12,
}


@pytest.mark.parametrize("kind", list(BAD_PROXY))
def test_proxy_bad_header_from_trusted_closes(echod, clients, kind):
    d = echod(PROXY_CONF, probe_source=PROXY_PROBE)
    c = Client.connect(d.port)
    clients.append(c)
    c.send(BAD_PROXY[kind])
    got = c.expect_eof()
    assert b"tern-echod ready" not in got and b"ECHO" not in got and b"INFO" not in got, got
    # Others are served.
    good = Client.connect(d.port)
    clients.append(good)
    good.send(PROXY_OK["v1-tcp4"][0])
    good.greeting()
    assert_echo(good)


def test_proxy_from_untrusted_is_just_a_line(echod, clients):
    d = echod(PROXY_CONF, probe_source=PROXY_PROBE)
    c = open_plain(d, clients, source="127.0.0.2")
    line = "PROXY TCP4 192.0.2.7 192.0.2.1 51234 143"
    assert c.cmd(line) == [f"ECHO {line}"]
    info = c.info()
    assert (info["remote"], info["port"]) == ("127.0.0.2", str(c.local_port)), info


# -------------------------------------------------------- back-pressure


def read_big(c, n, timeout=180):
    """Read exactly n 'x' bytes, then CRLF and OK."""
    deadline = time.monotonic() + timeout
    left = n
    tail = bytearray(c.buf)
    c.buf.clear()
    if tail:
        take = min(len(tail), left)
        assert tail[:take].count(b"x") == take
        left -= take
        del tail[:take]
    while left > 0:
        try:
            data = c._recv(deadline, 1 << 20)
        except TimeoutError:
            pytest.fail(f"stalled with {n - left} of {n} bytes received")
        if not data:
            pytest.fail(f"EOF after {n - left} of {n} bytes")
        take = min(len(data), left)
        part = data[:take]
        if part.count(b"x") != take:
            bad = next(i for i, ch in enumerate(part) if ch != 0x78)
            pytest.fail(f"unexpected byte {part[bad:bad + 20]!r} at offset {n - left + bad}")
        left -= take
        tail += data[take:]
    c.buf = tail
    assert c.readline() == "", "no CRLF right after the n bytes"
    assert c.readline() == "OK"


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_back_pressure_big_response(echod, clients, tls):
    d = echod({"imap": {"output_timeout": "120s", "idle_timeout": "3600s",
                        "login_timeout": "3600s"}}, measure_rss=True)
    c = open_tls(d, clients) if tls else open_plain(d, clients)
    assert_echo(c)
    base = vmrss_kib(d.pid)
    n = 50_000_000
    c.sendline(f"BIG {n}")
    peak = base
    for _ in range(16):                      # about 4 s without reading
        time.sleep(0.25)
        peak = max(peak, vmrss_kib(d.pid))
    grew = peak - base
    print(f"BIG, client not reading: VmRSS {base} KiB -> peak {peak} KiB")
    assert grew < 8 * 1024, f"VmRSS grew by {grew} KiB while the client did not read"
    read_big(c, n)
    assert_echo(c, "after big")


# ------------------------------------------------------------ thread pool


def test_sleep_does_not_block_other_connections(echod, clients):
    d = echod()
    c1 = open_plain(d, clients)
    c2 = open_plain(d, clients)
    c1.sendline("SLEEP 1500")
    c2.sendline("hello")
    order = []
    bufs = {c1.sock: bytearray(), c2.sock: bytearray()}
    names = {c1.sock: "c1", c2.sock: "c2"}
    deadline = time.monotonic() + 20
    while len(order) < 2:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"replies so far: {order}"
        r, _, _ = select.select(list(bufs), [], [], remaining)
        if len(r) > 1 and not order:
            pytest.fail("both replies arrived together; the ECHO waited for SLEEP")
        for s in r:
            data = s.recv(4096)
            assert data, f"{names[s]} closed; replies so far {order}"
            bufs[s] += data
            while b"\n" in bufs[s]:
                line, _, rest = bytes(bufs[s]).partition(b"\n")
                bufs[s] = bytearray(rest)
                order.append((names[s], line.rstrip(b"\r").decode()))
    assert order == [("c2", "ECHO hello"), ("c1", "OK slept")], order


def test_sleep_keeps_pipelined_order(echod, clients):
    d = echod()
    c = open_plain(d, clients)
    c.send(b"SLEEP 300\r\nafter\r\nSLEEP 10\r\nlast\r\n")
    assert [c.readline() for _ in range(4)] == ["OK slept", "ECHO after", "OK slept", "ECHO last"]


# -------------------------------------------------------------- shutdown


def test_sigterm_says_bye_and_exits_zero(echod, clients):
    d = echod({"imap": {"shutdown_timeout": "5s"}})
    plain = open_plain(d, clients)
    tls = open_tls(d, clients)
    logged_in = open_plain(d, clients)
    assert logged_in.cmd("LOGIN") == ["OK logged in"]
    d.signal(signal.SIGTERM)
    for c in (plain, tls, logged_in):
        assert c.readline() == "* BYE server shutting down"
        c.expect_eof()
    rc = d.wait(timeout=d.shutdown_s + 20)
    assert rc == 0, f"exit status {rc}"


def test_sigterm_with_client_not_reading(echod, clients):
    """A client that never reads cannot hold up shutdown past shutdown_timeout."""
    d = echod({"imap": {"shutdown_timeout": "2s", "output_timeout": "3600s"}})
    stuck = open_plain(d, clients)
    stuck.sendline("BIG 50000000")
    other = open_plain(d, clients)
    time.sleep(0.5)
    d.signal(signal.SIGTERM)
    assert other.readline() == "* BYE server shutting down"
    other.expect_eof()
    rc = d.wait(timeout=d.shutdown_s + 20)
    assert rc is not None, "still running well after shutdown_timeout"
    assert rc == 0, f"exit status {rc}"


# ------------------------------------------------------------ privileges


def test_privilege_drop(echod, clients, mail_user):
    _, uid, gid = mail_user
    d = echod()
    assert_echo(open_plain(d, clients))
    st = proc_status(d.pid)
    assert st["Uid"] == [uid] * 4, st["Uid"]
    assert st["Gid"] == [gid] * 4, st["Gid"]
    assert 0 not in st.get("Groups", []), st.get("Groups")
    assert int(str(st["CapEff"][0]), 16) == 0, st["CapEff"]


# ---------------------------------------------------------------- memory


def test_memory_per_idle_tls_connection(echod, clients):
    n = 500
    d = echod({"imap": {"max_connections": "2000", "max_connections_per_ip": "2000"}},
              measure_rss=True)
    ctx = ctx_for(d)
    # Warm up (lazy initialisation, allocator arenas), then close them.
    warm = [open_tls(d, clients, ctx) for _ in range(20)]
    for c in warm:
        c.sendline("QUIT")
        assert c.readline() == "BYE"
        c.expect_eof()
        c.close()
    d.wait_released(warm)
    base = vmrss_kib(d.pid)
    conns = [open_tls(d, clients, ctx) for _ in range(n)]
    after = vmrss_kib(d.pid)
    per = (after - base) * 1024 / n
    # Still all served.
    assert_echo(conns[0], "first")
    assert_echo(conns[-1], "last")
    assert per < 64 * 1024, f"{per:.0f} bytes per idle TLS connection ({base} -> {after} KiB)"
    print(f"idle TLS connection: {per:.0f} bytes ({base} -> {after} KiB for {n})")
