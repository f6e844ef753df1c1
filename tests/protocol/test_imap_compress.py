"""tern-imapd COMPRESS=DEFLATE (RFC 4978): the command and its errors,
traffic through raw deflate over plain (loopback) and TLS connections,
large responses through the compressor and back-pressure, invalid
compressed input, an input "zip bomb", pipelining after COMPRESS, and the
memory a compressed connection costs."""
import time
import zlib

import pytest

from conftest import ConnClosed, vmrss_kib  # noqa: F401

USER, PASSWORD = "alice@example.org", "secret-pw"

MSG = b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


class ZClient:
    """The compressed side of a Client after "OK DEFLATE active": writes
    are deflated with a sync flush per send, reads inflated."""

    def __init__(self, c):
        self.c = c
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        self.buf = bytearray(self.decomp.decompress(bytes(c.buf)))
        c.buf.clear()
        self.wire_in = 0

    def send_raw(self, data):
        self.c.send(data)

    def send(self, data):
        self.c.send(self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH))

    def sendline(self, line):
        self.send(line.encode("latin-1") + b"\r\n")

    def _fill(self, deadline):
        data = self.c._recv(deadline)
        if not data:
            raise ConnClosed(f"EOF; buffered {bytes(self.buf[:200])!r}")
        self.wire_in += len(data)
        self.buf += self.decomp.decompress(data)

    def readline(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line.rstrip(b"\r").decode("latin-1")
            try:
                self._fill(deadline)
            except TimeoutError:
                raise AssertionError(f"no line within {timeout}s; "
                                     f"buffered {bytes(self.buf[:200])!r}") from None

    def read_exact(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def response(self, timeout=10):
        lines = []
        while True:
            line = self.readline(timeout)
            lines.append(line)
            if not line.startswith("* "):
                return lines

    def cmd(self, line, timeout=10):
        self.sendline(line)
        return self.response(timeout)

    def expect_eof(self, timeout=10):
        """Read (and inflate) until the server closes; return the text."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except ConnClosed:
            return bytes(self.buf)
        except TimeoutError:
            raise AssertionError(f"still open after {timeout}s; "
                                 f"buffered {bytes(self.buf[:200])!r}") from None


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


def start_compress(server, tls=False, tag="z"):
    c = server.login(USER, PASSWORD, tls=tls)
    c.sendline(f"{tag} COMPRESS DEFLATE")
    assert c.readline() == f"{tag} OK DEFLATE active"
    return ZClient(c)


def check_session(server, z):
    lines = z.cmd("n NOOP")
    assert lines[-1] == "n OK NOOP completed"
    lines = z.cmd("s SELECT INBOX")
    assert "* 1 EXISTS" in lines
    assert lines[-1] == "s OK [READ-WRITE] SELECT completed"
    lines = z.cmd("c CAPABILITY")
    assert "COMPRESS=DEFLATE" in lines[0].split()
    assert lines[-1] == "c OK Capability completed"
    lines = z.cmd("c2 COMPRESS DEFLATE")
    assert lines[-1].startswith("c2 NO [COMPRESSIONACTIVE]")
    z.sendline("o LOGOUT")
    assert z.readline() == "* BYE Logging out"
    assert z.readline() == "o OK Logout completed"
    z.expect_eof()


def test_capability_after_login_only(server):
    c = server.client()
    caps = c.cmd("a CAPABILITY")[0].split()
    assert "COMPRESS=DEFLATE" not in caps
    c = server.login(USER, PASSWORD)
    caps = c.cmd("a CAPABILITY")[0].split()
    assert "COMPRESS=DEFLATE" in caps


def test_compress_plain(server):
    server.deliver(USER, MSG)
    z = start_compress(server)
    check_session(server, z)


def test_compress_tls(server):
    server.deliver(USER, MSG)
    z = start_compress(server, tls=True)
    assert z.c.is_tls
    check_session(server, z)


def test_compress_before_login(server):
    c = server.client()
    lines = c.cmd("a COMPRESS DEFLATE")
    assert lines[-1].startswith("a BAD")
    # Still plain text.
    assert c.cmd("b NOOP")[-1] == "b OK NOOP completed"


def test_compress_bad_arguments(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("a COMPRESS")[-1].startswith("a BAD")
    assert c.cmd("b COMPRESS GZIP")[-1].startswith("b BAD")
    assert c.cmd('c COMPRESS "DEFLATE"')[-1].startswith("c BAD")
    assert c.cmd("d COMPRESS DEFLATE DEFLATE")[-1].startswith("d BAD")
    # None of these turned it on.
    assert c.cmd("e NOOP")[-1] == "e OK NOOP completed"
    z = start_compress_on(c, "f")
    assert z.cmd("g NOOP")[-1] == "g OK NOOP completed"


def start_compress_on(c, tag):
    c.sendline(f"{tag} COMPRESS deflate")
    assert c.readline() == f"{tag} OK DEFLATE active"
    return ZClient(c)


def test_pipelined_after_compress(server):
    c = server.login(USER, PASSWORD)
    c.send(b"p COMPRESS DEFLATE\r\nn NOOP\r\n")
    data = c.expect_eof()
    assert b"* BYE" in data and b"p BAD" in data
    assert b"OK DEFLATE" not in data
    # The daemon serves others.
    assert start_compress(server).cmd("n NOOP")[-1] == "n OK NOOP completed"


@pytest.mark.parametrize("tls", [False, True])
def test_garbage_input_closes(server, tls):
    z = start_compress(server, tls=tls)
    # A reserved block type (BTYPE=11) is invalid deflate at once.
    z.send_raw(b"\xff\xff\xff\xff garbage \x00\x01\x02")
    z.expect_eof()
    assert "invalid compressed input" in server.log()
    # The daemon keeps serving.
    z2 = start_compress(server, tls=tls)
    assert z2.cmd("n NOOP")[-1] == "n OK NOOP completed"
    plain = server.login(USER, PASSWORD)
    assert plain.cmd("n NOOP")[-1] == "n OK NOOP completed"


def test_client_ends_stream(server):
    """A final deflate block: no input can follow, the session ends."""
    z = start_compress(server)
    z.send_raw(z.comp.compress(b"n NOOP\r\n") + z.comp.flush(zlib.Z_FINISH))
    text = z.expect_eof()
    assert b"n OK NOOP completed" in text


@pytest.mark.parametrize("tls", [False, True])
def test_zip_bomb_bounded(imapd, auth_env, tls):
    auth_env.add_user(USER, PASSWORD)
    server = imapd(measure_rss=True)
    # Warm up: a compressed session, so zlib and buffers exist once.
    start_compress(server, tls=tls).cmd("n NOOP")
    before = vmrss_kib(server.pid)
    z = start_compress(server, tls=tls)
    bomb = z.comp.compress(b"A" * (10 << 20)) + z.comp.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 64 * 1024
    z.send_raw(bomb)
    # A line of 10 MiB: refused as too long, skipped as it is inflated,
    # and the session goes on with the next line.
    z.sendline("")
    z.sendline("n NOOP")
    assert z.readline(timeout=30) == "* BAD [TOOBIG] Command line too long"
    assert z.readline(timeout=30) == "n OK NOOP completed"
    grown = vmrss_kib(server.pid) - before
    assert grown < 4096, f"daemon grew by {grown} KiB"


def test_large_output_through_compression(server):
    """Output well beyond output_buffer_size (64K) goes through the
    deflater and back-pressure intact, over TLS: 4000 pipelined commands
    with long tags, sent before reading any reply."""
    z = start_compress(server, tls=True)
    n = 4000
    tags = [f"t{i:05d}" + "x" * 1000 for i in range(n)]
    z.send(b"".join(f"{t} NOOP\r\n".encode() for t in tags))
    for t in tags:
        assert z.readline(timeout=30) == f"{t} OK NOOP completed"
    assert z.cmd("e NOOP")[-1] == "e OK NOOP completed"
    # About 4 MB of replies; highly compressible.
    assert z.wire_in < 400 * 1024


def test_memory_per_compressed_connection(imapd, auth_env, clients):
    """Measure what COMPRESS adds to a logged-in session (printed; the
    bound is loose: zlib's state is ~200 KiB)."""
    auth_env.add_user(USER, PASSWORD)
    server = imapd(measure_rss=True)
    server.deliver(USER, MSG)
    n = 40
    plain = []
    for _ in range(n):
        c = server.login(USER, PASSWORD)
        c.cmd("s SELECT INBOX")
        plain.append(c)
    clients.extend(plain)
    time.sleep(0.2)
    base = vmrss_kib(server.pid)
    for i, c in enumerate(plain):
        z = start_compress_on(c, f"z{i}")
        assert z.cmd("n NOOP")[-1].startswith("n OK")
        assert z.cmd("c CAPABILITY")[-1].startswith("c OK")
    time.sleep(0.2)
    per = (vmrss_kib(server.pid) - base) / n
    print(f"COMPRESS adds {per:.0f} KiB per connection")
    assert per < 400
