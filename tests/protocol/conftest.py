"""
Fixtures and helpers for the protocol tests.

Every test gets its own temp directory (readable by the unprivileged mail
user the daemons drop to), its own config, ports asked from the kernel, and
its own daemons, which are stopped at the end even when the test fails. A
daemon that leaves AddressSanitizer/LeakSanitizer/UBSan reports in its log or
that died by a signal fails the test that ran it.

Clients never hang: every socket has a timeout, every read has a deadline and
every loop is bounded.

Environment (set by tests/protocol/meson.build):
  TERN_BUILD_DIR   the meson build directory (daemons are found there)
  TERN_SOURCE_DIR  the source tree
Optional:
  TERN_KEEP_TMP=1  keep each test's temp directory (path printed on teardown)
"""

import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import pytest

READ_TIMEOUT = 10.0          # seconds for any single expected reply
START_TIMEOUT = 30.0         # seconds for a daemon to accept on its ports
MAIL_USER = "tern"

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")

# ----------------------------------------------------------------- basics


def build_dir():
    d = os.environ.get("TERN_BUILD_DIR")
    if not d:
        pytest.fail("TERN_BUILD_DIR is not set (run through meson test, or set it)")
    return d


def source_dir():
    return os.environ.get("TERN_SOURCE_DIR", "")


def echod_binary():
    path = os.path.join(build_dir(), "tests", "protocol", "tern-echod")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build tests/protocol/tern-echod first")
    return path


_handed_out_ports = set()
_port_picker = random.Random()


def _ports_outside_ephemeral():
    """Candidate listening ports below the kernel's ephemeral range. A port
    bind(0) gives back is an ephemeral one, which any outgoing connection
    (of this or another test running in parallel) may take before the
    daemon binds it: the daemon then fails with "address already in use".
    Below that range only a listener can take it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (10000, low - 1) if low > 11000 else None


def free_ports(n, host="127.0.0.1"):
    """n distinct ports free right now (each bound once, all held at once
    so they differ, then closed), below the ephemeral range where there is
    room, and never handed out before in this run."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    span = _ports_outside_ephemeral()
    held, ports = [], []
    try:
        for _ in range(n + 200):         # bounded
            if len(ports) == n:
                break
            s = socket.socket(fam, socket.SOCK_STREAM)
            held.append(s)
            try:
                s.bind((host, _port_picker.randint(*span) if span else 0))
            except OSError:
                continue                 # in use: draw another
            p = s.getsockname()[1]
            if p not in _handed_out_ports:
                ports.append(p)
        assert len(ports) == n, "could not find free ports"
    finally:
        for s in held:
            s.close()
    _handed_out_ports.update(ports)
    return ports


def is_asan_binary(path):
    """True when the executable is built with AddressSanitizer."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def free_port(host="127.0.0.1"):
    return free_ports(1, host)[0]


def vmrss_kib(pid):
    """VmRSS of a process in KiB, from /proc/<pid>/status."""
    return proc_status(pid)["VmRSS"][0]


def server_holds_connection(server_ports, client_ports):
    """True while some process still holds a socket (inode != 0 in
    /proc/net/tcp*) for a connection from one of client_ports to one of
    server_ports. Sockets only in TIME_WAIT or orphaned have inode 0."""
    server_ports, client_ports = set(server_ports), set(client_ports)
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            lport = int(parts[1].rsplit(":", 1)[1], 16)
            rport = int(parts[2].rsplit(":", 1)[1], 16)
            if lport in server_ports and rport in client_ports and parts[9] != "0":
                return True
    return False


def proc_status(pid):
    """/proc/<pid>/status as {key: [int or str, ...]} (sizes in kB as int)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            fields = val.split()
            conv = []
            for v in fields:
                try:
                    conv.append(int(v))
                except ValueError:
                    conv.append(v)
            out[key] = conv
    return out


@pytest.fixture(scope="session")
def mail_user():
    """The unprivileged user the daemons drop to: (name, uid, gid)."""
    if os.geteuid() != 0:
        pytest.skip("the protocol tests run as root (the daemons drop privileges)")
    try:
        pw = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", MAIL_USER],
                       check=True, timeout=60)
        pw = pwd.getpwnam(MAIL_USER)
    return (MAIL_USER, pw.pw_uid, pw.pw_gid)


def index_exec_as(mail_user, user_dir, sql):
    """Run sql on the index of the user at user_dir as the mail user (so
    the index's -wal and -shm stay its own), as another program would."""
    _, uid, gid = mail_user
    script = ("import sqlite3, sys\n"
              "db = sqlite3.connect(sys.argv[1], timeout=10)\n"
              "db.executescript(sys.argv[2])\n"
              "db.close()\n")
    p = subprocess.run([sys.executable, "-c", script, os.path.join(user_dir, "index.sqlite"),
                        sql], user=uid, group=gid, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid, follow_symlinks=False)


# ---------------------------------------------------------------- certs


class CertPair:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key
        with open(cert, "rb") as f:
            pem = f.read().decode()
        self.pem = pem
        self.der = ssl.PEM_cert_to_DER_cert(pem)

    def __repr__(self):
        return f"CertPair({self.cert})"


def make_cert(directory, name, cn="localhost"):
    cert = os.path.join(directory, f"{name}-cert.pem")
    key = os.path.join(directory, f"{name}-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-days", "3650", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return CertPair(cert, key)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """Two distinct self-signed certificates with SAN DNS:localhost, IP:127.0.0.1.

    certs[0] is the one every daemon starts with; certs[1] is the replacement
    for the reload test. Tests copy them into their own directory."""
    d = str(tmp_path_factory.mktemp("certs"))
    a = make_cert(d, "a", "localhost")
    b = make_cert(d, "b", "localhost")
    assert a.der != b.der
    return (a, b)


# ------------------------------------------------------------- workdir


@pytest.fixture
def workdir(mail_user, request):
    """A temp directory for this test, owned by the mail user."""
    _, uid, gid = mail_user
    d = tempfile.mkdtemp(prefix="tern-proto-")
    os.chmod(d, 0o750)
    os.chown(d, uid, gid)
    yield d
    if os.environ.get("TERN_KEEP_TMP"):
        print(f"kept temp dir {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


def install_file(src_data, dest, uid, gid, mode=0o600):
    """Atomically place data at dest (write a temp file, then rename)."""
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(src_data)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)


# -------------------------------------------------------------- config


def render_config(sections):
    out = []
    for name, keys in sections.items():
        if keys is None:
            continue
        out.append(f"[{name}]")
        for k, v in keys.items():
            if v is None:
                continue
            out.append(f"{k} = {v}")
        out.append("")
    return "\n".join(out)


def merge_config(base, overrides):
    """overrides: {section: {key: value}}; a value of None deletes the key,
    a section of None deletes the section."""
    merged = {s: dict(k) for s, k in base.items() if k is not None}
    for sec, keys in (overrides or {}).items():
        if keys is None:
            merged.pop(sec, None)
            continue
        merged.setdefault(sec, {})
        for k, v in keys.items():
            if v is None:
                merged[sec].pop(k, None)
            else:
                merged[sec][k] = v
    return merged


def parse_hostport(s):
    s = s.strip()
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
        return host, int(port)
    host, _, port = s.rpartition(":")
    return host, int(port)


# ----------------------------------------------------------- the daemon


class Daemon:
    """A tern daemon process started from a config file, logging to a file."""

    def __init__(self, argv, workdir, config_path, sections, service):
        self.argv = argv
        self.workdir = workdir
        self.config_path = config_path
        self.sections = sections
        self.service = service
        self.log_path = os.path.join(workdir, f"{os.path.basename(argv[0])}-{service}.log")
        self.proc = None
        self.returncode = None
        self.killed = False

    # --- addresses
    def _addrs(self, key):
        """(host, port) of the TCP listeners under key (unix: ones skipped)."""
        v = self.sections.get(self.service, {}).get(key)
        if not v:
            return []
        return [parse_hostport(x) for x in re.split(r"[,\s]+", v)
                if x and not x.startswith("unix:")]

    def _ports(self, key):
        return [p for _, p in self._addrs(key)]

    @property
    def port(self):
        return self._ports("listen")[0]

    @property
    def tls_port(self):
        return self._ports("listen_tls")[0]

    @property
    def pid(self):
        return self.proc.pid

    # --- life cycle
    def start(self, measure_rss=False):
        self.logf = open(self.log_path, "ab")
        env = dict(os.environ)
        if measure_rss and is_asan_binary(self.argv[0]):
            # ASan's quarantine keeps freed memory resident on purpose, which
            # would be counted as the daemon's memory: off for tests that
            # measure VmRSS (every other ASan check stays on).
            opts = [o for o in env.get("ASAN_OPTIONS", "").split(":") if o]
            opts += ["quarantine_size_mb=0", "thread_local_quarantine_size_kb=0"]
            env["ASAN_OPTIONS"] = ":".join(opts)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env=env)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=200):
        return "\n".join(self.log().splitlines()[-n:])

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        assert self.running(), f"daemon not running; log:\n{self.log_tail()}"
        os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, grace):
        """SIGTERM, wait, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.returncode = self.proc.returncode
        self.logf.close()
        return self.returncode

    def wait_ready(self, probe_source="127.0.0.1", timeout=START_TIMEOUT):
        """Wait until every listener accepts; then do one full plain round
        trip (greeting, QUIT, BYE, EOF) so the daemon's loop is serving and
        the probes are closed before the test starts counting connections."""
        deadline = time.monotonic() + timeout
        probe_ports = []
        ports = [(h, p, False) for h, p in self._addrs("listen")] + \
                [(h, p, True) for h, p in self._addrs("listen_tls")]
        for host, port, is_tls in ports:
            source = "::1" if ":" in host else probe_source
            while True:
                if self.proc.poll() is not None:
                    pytest.fail(f"daemon exited with {self.proc.returncode} before "
                                f"accepting on port {port}; log:\n{self.log_tail()}")
                try:
                    s = socket.create_connection((host, port), timeout=2,
                                                 source_address=(source, 0))
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"daemon not accepting on {port} after {timeout}s; "
                                    f"log:\n{self.log_tail()}")
                    time.sleep(0.05)
                    continue
                probe_ports.append(s.getsockname()[1])
                if is_tls:
                    # Complete a handshake if TLS works; the TLS tests judge it.
                    t = None
                    try:
                        ctx = client_context(self.tls_trust)
                        s.settimeout(READ_TIMEOUT)
                        t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
                        c = Client(t)
                        c.readline()
                        c.sendline("QUIT")
                        c.expect_eof()
                    except (OSError, ssl.SSLError, AssertionError, EOFError):
                        pass
                    finally:
                        if t is not None:
                            t.close()
                        s.close()
                else:
                    c = Client(s)
                    try:
                        g = c.readline()
                        assert g.startswith("* OK"), f"unexpected greeting {g!r}"
                        c.sendline("QUIT")
                        c.expect_eof()
                    except (AssertionError, EOFError, OSError) as e:
                        pytest.fail(f"readiness probe on port {port} failed: {e}; "
                                    f"log:\n{self.log_tail()}")
                    finally:
                        c.close()
                break
        # The probes must not count against connection limits in the test.
        self.wait_released(probe_ports)

    def all_ports(self):
        return self._ports("listen") + self._ports("listen_tls")

    def wait_released(self, clients_or_ports, timeout=READ_TIMEOUT):
        """Wait until the daemon has closed its side of these (already
        closed) connections: a connection slot is only free again once the
        daemon has let go of the socket, which can be a moment after the
        client saw EOF."""
        ports = [c if isinstance(c, int) else c.local_port for c in clients_or_ports]
        deadline = time.monotonic() + timeout
        while server_holds_connection(self.all_ports(), ports):
            if time.monotonic() > deadline:
                pytest.fail(f"daemon still holds connections from ports {ports} "
                            f"{timeout}s after they closed; log:\n{self.log_tail()}")
            time.sleep(0.02)

    def check_clean(self):
        """Problems a daemon left behind: sanitizer reports, death by signal."""
        problems = []
        log = self.log()
        for m in SANITIZER_MARKERS:
            if m in log:
                problems.append(f"log contains {m!r}")
        if self.returncode is not None and self.returncode < 0:
            problems.append(f"exited by signal {-self.returncode}"
                            + (" (SIGKILL after SIGTERM did not stop it)" if self.killed else ""))
        return problems


def stop_daemons(started):
    """Fixture teardown: stop each daemon, print its log, and fail the test
    if one died by a signal or left sanitizer reports."""
    problems = []
    for d in started:
        d.stop(grace=d.shutdown_s + 10)
        for p in d.check_clean():
            problems.append(f"{' '.join(d.argv)}: {p}")
        print(f"----- log of {' '.join(d.argv)} (exit {d.returncode}) -----")
        print(d.log_tail(300))
    if problems:
        pytest.fail("daemon problems:\n  " + "\n  ".join(problems), pytrace=False)


def duration_seconds(v, default=10.0):
    if v is None:
        return default
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h)?\s*", str(v))
    if not m:
        return default
    n = int(m.group(1))
    unit = m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


@pytest.fixture
def echod(workdir, certs, mail_user, request):
    """Factory: echod(conf={section: {key: value}}, service="imap", tls=True,
    probe_source="127.0.0.1", extra_args=[], measure_rss=False) starts
    tern-echod with a fresh config in this test's directory and waits until
    it serves. All daemons started are stopped at teardown and checked for
    sanitizer reports and death by signal."""
    _, uid, gid = mail_user
    started = []

    # The test's own copies of the certificate (the reload test swaps them).
    cert_path = os.path.join(workdir, "cert.pem")
    key_path = os.path.join(workdir, "key.pem")
    with open(certs[0].cert, "rb") as f:
        install_file(f.read(), cert_path, uid, gid, 0o644)
    with open(certs[0].key, "rb") as f:
        install_file(f.read(), key_path, uid, gid, 0o600)
    mail_root = os.path.join(workdir, "mail")
    os.makedirs(mail_root, exist_ok=True)
    os.chown(mail_root, uid, gid)

    def start(conf=None, service="imap", tls=True, probe_source="127.0.0.1",
              extra_args=(), wait=True, measure_rss=False):
        plain_port, tls_port = free_ports(2)
        svc = {
            "listen": f"127.0.0.1:{plain_port}",
            "shutdown_timeout": "5s",
        }
        # Without TLS, listen_tls is set empty: its default is 0.0.0.0:993.
        svc["listen_tls"] = f"127.0.0.1:{tls_port}" if tls else ""
        base = {
            "global": {"mail_user": MAIL_USER, "mail_root": mail_root,
                       "log_level": "debug"},
            "tls": {"cert": cert_path, "key": key_path} if tls else None,
            service: svc,
        }
        sections = merge_config(base, conf)
        n = len(started)
        cfg_path = os.path.join(workdir, f"tern-{n}.conf")
        install_file(render_config(sections).encode(), cfg_path, uid, gid, 0o644)
        argv = [echod_binary(), "-c", cfg_path]
        if service != "imap":
            argv += ["-s", service]
        argv += list(extra_args)
        d = Daemon(argv, workdir, cfg_path, sections, service)
        d.tls_trust = [certs[0].cert, certs[1].cert]
        d.cert_path = cert_path
        d.key_path = key_path
        d.shutdown_s = duration_seconds(sections[service].get("shutdown_timeout"), 10.0)
        started.append(d)
        d.start(measure_rss=measure_rss)
        if wait:
            d.wait_ready(probe_source=probe_source)
        return d

    yield start

    stop_daemons(started)


# -------------------------------------------------------------- clients


def client_context(cafiles, alpn=None, min_version=None, max_version=None,
                   ciphers=None):
    """A TLS client context trusting only the given certificate(s)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if isinstance(cafiles, str):
        cafiles = [cafiles]
    for ca in cafiles:
        ctx.load_verify_locations(ca)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if ciphers is not None:
            ctx.set_ciphers(ciphers)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


class ConnClosed(EOFError):
    pass


class Client:
    """A line-oriented client over a plain or TLS socket. Every read has a
    deadline; lines are returned as str (latin-1) without their line end."""

    MAX_LINE = 1 << 20

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.sock.settimeout(READ_TIMEOUT)
        name = sock.getsockname()
        self._local_port = name[1] if isinstance(name, tuple) else None

    @classmethod
    def connect(cls, port, tls_ctx=None, server_hostname="127.0.0.1",
                source=None, host="127.0.0.1", timeout=READ_TIMEOUT):
        if source is None:
            source = "::1" if ":" in host else "127.0.0.1"
        s = socket.create_connection((host, port), timeout=timeout,
                                     source_address=(source, 0))
        try:
            if tls_ctx is not None:
                s = tls_ctx.wrap_socket(s, server_hostname=server_hostname)
        except BaseException:
            s.close()
            raise
        return cls(s)

    @classmethod
    def connect_unix(cls, path, timeout=READ_TIMEOUT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except BaseException:
            s.close()
            raise
        c = cls.__new__(cls)
        c.sock = s
        c.buf = bytearray()
        c._local_port = None
        return c

    # --- info
    @property
    def local_port(self):
        return self._local_port

    @property
    def is_tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    # --- writing
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.settimeout(READ_TIMEOUT)
        self.sock.sendall(data)

    def sendline(self, line):
        if isinstance(line, str):
            line = line.encode("latin-1")
        self.send(line + b"\r\n")

    # --- reading
    def _recv(self, deadline, n=65536):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(n)
        except socket.timeout:
            raise TimeoutError
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError,
                BrokenPipeError):
            data = b""
        return data

    def readline(self, timeout=READ_TIMEOUT, max_len=None):
        """One line (without CRLF/LF). Raises ConnClosed on EOF and
        AssertionError on timeout or an overlong line."""
        max_len = max_len or self.MAX_LINE
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                return line.decode("latin-1")
            if len(self.buf) > max_len:
                raise AssertionError(f"line longer than {max_len} bytes: "
                                     f"{bytes(self.buf[:200])!r}...")
            try:
                data = self._recv(deadline)
            except TimeoutError:
                raise AssertionError(f"no complete line within {timeout}s; "
                                     f"buffered {bytes(self.buf[:200])!r}") from None
            if not data:
                raise ConnClosed(f"EOF; buffered {bytes(self.buf[:200])!r}")
            self.buf += data

    def response(self, timeout=READ_TIMEOUT, max_lines=10000):
        """Lines up to and including the first that does not start with
        "* " (OK, NO, BAD, ECHO, BYE ...)."""
        lines = []
        deadline = time.monotonic() + timeout
        for _ in range(max_lines):
            line = self.readline(timeout=max(0.001, deadline - time.monotonic()))
            lines.append(line)
            if not line.startswith("* "):
                return lines
        raise AssertionError(f"no final line after {max_lines} lines: {lines[-5:]}")

    def cmd(self, line, timeout=READ_TIMEOUT):
        self.sendline(line)
        return self.response(timeout=timeout)

    def expect_eof(self, timeout=READ_TIMEOUT, max_bytes=1 << 20):
        """Read until the peer closes. Returns everything received (including
        what was buffered). AssertionError if it stays open."""
        deadline = time.monotonic() + timeout
        got = bytearray(self.buf)
        self.buf.clear()
        while True:
            try:
                data = self._recv(deadline)
            except TimeoutError:
                raise AssertionError(f"connection still open after {timeout}s; "
                                     f"received {bytes(got[:300])!r}") from None
            except ssl.SSLError:
                # A TLS alert or broken record on the way out counts as closed.
                return bytes(got)
            if not data:
                return bytes(got)
            got += data
            if len(got) > max_bytes:
                raise AssertionError(f"more than {max_bytes} bytes before EOF")

    def greeting(self):
        g = self.readline()
        assert g == "* OK tern-echod ready", f"greeting: {g!r}"
        return g

    def starttls(self, ctx, server_hostname="127.0.0.1"):
        """Send STARTTLS, expect "OK begin TLS" and do the handshake."""
        self.sendline("STARTTLS")
        r = self.readline()
        assert r == "OK begin TLS", f"STARTTLS reply: {r!r}"
        self.handshake(ctx, server_hostname)

    def handshake(self, ctx, server_hostname="127.0.0.1"):
        assert not self.buf, f"plaintext after the STARTTLS reply: {bytes(self.buf)!r}"
        self.sock.settimeout(READ_TIMEOUT)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.sock.settimeout(READ_TIMEOUT)

    def info(self):
        """Send INFO; return the key=value fields of its * INFO line."""
        lines = self.cmd("INFO")
        assert len(lines) == 2 and lines[0].startswith("* INFO ") and lines[1] == "OK", \
            f"INFO reply: {lines!r}"
        fields = {}
        for kv in lines[0][len("* INFO "):].split():
            k, _, v = kv.partition("=")
            fields[k] = v
        return fields

    def peer_cert(self):
        return self.sock.getpeercert(binary_form=True)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def clients():
    """A list the test appends its Clients to; all are closed at teardown."""
    lst = []
    yield lst
    for c in lst:
        c.close()


# ---------------------------------------------- local TLS control server


def control_handshake(client_ctx, timeout=READ_TIMEOUT):
    """Handshake the client context against a permissive local Python TLS
    server (TLS 1.0-1.3, every cipher, security level 0) and return
    (version, cipher name). Proves that a client context really offers what
    a refusal test means it to offer (not a client-side failure)."""
    cert_dir = tempfile.mkdtemp(prefix="tern-ctl-")
    try:
        pair = make_cert(cert_dir, "ctl")
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(pair.cert, pair.key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sctx.set_ciphers("ALL:@SECLEVEL=0")
            sctx.minimum_version = ssl.TLSVersion.TLSv1
            sctx.maximum_version = ssl.TLSVersion.TLSv1_3
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(timeout)
        errors = []

        def serve():
            try:
                c, _ = lsock.accept()
                c.settimeout(timeout)
                t = sctx.wrap_socket(c, server_side=True)
                t.recv(1)
                t.close()
            except Exception as e:  # reported through the client side
                errors.append(e)

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        # The control server has its own certificate: check nothing here,
        # only that the protocol and cipher negotiation works.
        cctx = client_ctx
        s = socket.create_connection(lsock.getsockname(), timeout=timeout)
        try:
            saved = (cctx.check_hostname, cctx.verify_mode)
            cctx.check_hostname = False
            cctx.verify_mode = ssl.CERT_NONE
            try:
                t = cctx.wrap_socket(s, server_hostname="127.0.0.1")
            finally:
                cctx.verify_mode = saved[1]
                cctx.check_hostname = saved[0]
            res = (t.version(), t.cipher()[0])
            t.close()
        finally:
            s.close()
        th.join(timeout)
        lsock.close()
        return res
    finally:
        shutil.rmtree(cert_dir, ignore_errors=True)


# ------------------------------------------------------------------ auth
#
# Authentication end to end: a private PAM directory per test (PAM service
# files written by the test, never /etc/pam.d), virtual users created with
# the real `ternctl user add`, and the auth worker processes of a daemon.


def ternctl_binary():
    path = os.path.join(build_dir(), "ctl", "ternctl")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build ctl/ternctl first")
    return path


def run_ternctl(config, *args, input=b"", env=None, cwd=None, timeout=60):
    """Run the built `ternctl -c CONFIG ARGS...` (config None: no -c) and
    return the CompletedProcess. stdin is input: bytes, or str to get str
    output too. $TERN_CONFIG is not inherited (env may set it). A sanitizer
    report on stderr fails the test."""
    argv = [ternctl_binary()] + (["-c", config] if config is not None else []) + list(args)
    e = dict(os.environ)
    e.pop("TERN_CONFIG", None)
    e.update(env or {})
    text = isinstance(input, str)
    p = subprocess.run(argv, input=input, capture_output=True, text=text, env=e, cwd=cwd,
                       timeout=timeout)
    err = p.stderr if text else p.stderr.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, f"sanitizer report from ternctl {' '.join(args)}:\n{err}"
    return p


def pam_tern_module():
    path = os.path.join(build_dir(), "auth", "pam_tern.so")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build auth/pam_tern.so first")
    return path


def shipped_pam_service(name):
    """etc/pam.d/<name> of the source tree, with pam_tern.so replaced by
    the built module's absolute path."""
    with open(os.path.join(source_dir(), "etc", "pam.d", name)) as f:
        text = f.read()
    return re.sub(r"(?m)^(\s*\w+\s+\S+\s+)pam_tern\.so", r"\g<1>" + pam_tern_module(), text)


def children(pid):
    """Pids whose parent is pid (from /proc/*/stat)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def auth_worker_pids(daemon, timeout=READ_TIMEOUT):
    """(supervisor, checker) of a daemon's auth worker: the daemon's child
    and its child. Waits for a checker (it is restarted after a crash)."""
    deadline = time.monotonic() + timeout
    while True:
        sup = children(daemon.pid)
        assert len(sup) == 1, f"daemon {daemon.pid} has children {sup}, expected the auth worker"
        chk = children(sup[0])
        if len(chk) == 1:
            return sup[0], chk[0]
        assert time.monotonic() < deadline, f"auth worker {sup[0]} has children {chk}"
        time.sleep(0.02)


class AuthEnv:
    """One test's authentication setup: a PAM directory, a users database,
    and the [auth] section to give the daemon (conf()). The same settings
    go into a config file for ternctl."""

    def __init__(self, workdir, uid, gid):
        self.workdir = workdir
        self.uid, self.gid = uid, gid
        self.pam_dir = os.path.join(workdir, "pam.d")
        os.makedirs(self.pam_dir, exist_ok=True)
        os.chmod(self.pam_dir, 0o755)
        self.users_db = os.path.join(workdir, "users.sqlite")
        self.mail_root = os.path.join(workdir, "mail")
        self.service = "tern"
        self.auth = {
            "users": "virtual",
            "users_db": self.users_db,
            "pam_service": self.service,
            "pam_confdir": self.pam_dir,
            # Tests about delays set them; the others should not wait.
            "failure_delay": "0",
        }
        self.set_pam(shipped_pam_service("tern-virtual"))

    def conf(self, auth=None, extra=None):
        """Config overrides for the echod fixture: {"auth": {...}, ...}."""
        a = dict(self.auth)
        a.update(auth or {})
        out = {"auth": a}
        for sec, keys in (extra or {}).items():
            out.setdefault(sec, {}).update(keys)
        return out

    def set_pam(self, text):
        """The PAM service file the daemon reads."""
        path = os.path.join(self.pam_dir, self.service)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)

    def pam_with_script(self, script_body):
        """pam_exec running a shell script (with $PAM_USER, $PAM_RHOST)
        before the shipped tern-virtual stack: a slow or observed PAM."""
        script = os.path.join(self.workdir, "pam-hook.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n" + script_body + "\nexit 0\n")
        os.chmod(script, 0o755)
        os.chown(script, self.uid, self.gid)
        self.set_pam(f"auth required pam_exec.so quiet {script}\n"
                     + shipped_pam_service("tern-virtual"))

    def ctl_config(self):
        path = os.path.join(self.workdir, "ternctl.conf")
        text = render_config({
            "global": {"mail_user": MAIL_USER, "mail_root": self.mail_root},
            "auth": self.auth,
        })
        install_file(text.encode(), path, self.uid, self.gid, 0o644)
        return path

    def ternctl(self, *args, password=None, check=True):
        """Run ternctl with this setup's config; password goes to stdin."""
        p = run_ternctl(self.ctl_config(), *args,
                        input=(password + "\n").encode() if password is not None else b"")
        if check:
            assert p.returncode == 0, \
                f"{' '.join(args)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}"
        return p

    def add_user(self, name, password):
        self.ternctl("user", "add", name, "--password-stdin", password=password)


@pytest.fixture
def auth_env(workdir, mail_user):
    """An AuthEnv for this test: PAM through the built pam_tern.so with the
    shipped tern-virtual service file, an empty users database."""
    _, uid, gid = mail_user
    return AuthEnv(workdir, uid, gid)


def prepare_mail_daemon(workdir, auth_env, certs, mail_user, name):
    """What a daemon serving auth_env's users needs before it starts: the
    mail root, and the test certificate and key copied for the mail user
    as <workdir>/<name>-cert.pem and -key.pem (returned)."""
    _, uid, gid = mail_user
    os.makedirs(auth_env.mail_root, exist_ok=True)
    os.chown(auth_env.mail_root, uid, gid)
    cert_path = os.path.join(workdir, f"{name}-cert.pem")
    key_path = os.path.join(workdir, f"{name}-key.pem")
    with open(certs[0].cert, "rb") as f:
        install_file(f.read(), cert_path, uid, gid, 0o644)
    with open(certs[0].key, "rb") as f:
        install_file(f.read(), key_path, uid, gid, 0o600)
    return cert_path, key_path


# ------------------------------------------------------------------ LMTP
#
# tern-lmtpd with virtual users made by ternctl (an AuthEnv's users
# database and mail_root), listening on a unix socket and on a TCP port.


def lmtpd_binary():
    path = os.path.join(build_dir(), "lmtp", "tern-lmtpd")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build lmtp/tern-lmtpd first")
    return path


class LmtpDaemon(Daemon):
    """A running tern-lmtpd. .port is its TCP port, .socket_path its unix
    socket, .auth the AuthEnv whose users it delivers to."""

    def wait_ready(self, probe_source="127.0.0.1", timeout=START_TIMEOUT):
        """Every listener greets with 220 and answers QUIT with 221."""
        deadline = time.monotonic() + timeout
        targets = [("tcp", p) for p in self._ports("listen")] + [("unix", self.socket_path)]
        for kind, where in targets:
            while True:
                if self.proc.poll() is not None:
                    pytest.fail(f"tern-lmtpd exited with {self.proc.returncode}; "
                                f"log:\n{self.log_tail()}")
                try:
                    c = (Client.connect(where) if kind == "tcp"
                         else Client.connect_unix(where))
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"tern-lmtpd not accepting on {where} after {timeout}s; "
                                    f"log:\n{self.log_tail()}")
                    time.sleep(0.05)
                    continue
                try:
                    g = c.readline()
                    assert g.startswith("220 "), f"unexpected greeting {g!r}"
                    c.sendline("QUIT")
                    assert c.readline().startswith("221 ")
                    c.expect_eof()
                finally:
                    c.close()
                break

    def client(self, unix=False):
        """A raw Client, greeting read."""
        c = Client.connect_unix(self.socket_path) if unix else Client.connect(self.port)
        g = c.readline()
        assert g.startswith("220 "), f"greeting {g!r}"
        return c

    def smtplib(self, unix=False):
        """A connected smtplib.LMTP (before LHLO). Reads only the first
        per-recipient reply after DATA: use one recipient per message or
        the raw client (CLIENTS.md §9)."""
        import smtplib
        if unix:
            return smtplib.LMTP(self.socket_path, timeout=READ_TIMEOUT)
        return smtplib.LMTP("127.0.0.1", self.port, timeout=READ_TIMEOUT)

    def user_dir(self, user):
        return os.path.join(self.auth.mail_root, user)

    def message_files(self, user, mailbox="INBOX"):
        """Paths of the message files of a mailbox (new/ and cur/), sorted
        by UID."""
        folder = os.path.join(self.user_dir(user), "Maildir")
        if mailbox != "INBOX":
            folder = os.path.join(folder, "." + mailbox.replace("/", "."))
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(folder, sub)
            if os.path.isdir(d):
                out += [os.path.join(d, n) for n in os.listdir(d) if not n.startswith(".")]

        def uid(path):
            m = re.search(r",U=(\d+)", os.path.basename(path))
            return int(m.group(1)) if m else 0
        return sorted(out, key=uid)

    def messages(self, user, mailbox="INBOX"):
        """The stored bytes (LF line ends) of each message, by UID."""
        out = []
        for p in self.message_files(user, mailbox):
            with open(p, "rb") as f:
                out.append(f.read())
        return out


@pytest.fixture
def lmtpd(workdir, auth_env, certs, mail_user):
    """Factory: lmtpd(conf={section: {key: value}}, tls=False, wait=True)
    starts tern-lmtpd delivering to auth_env's users (add them with
    auth_env.add_user or auth_env.ternctl("user", "add", ...)), with
    local_domains = example.org and hostname lmtp.test.invalid, listening on
    unix:<workdir>/lmtp-N.sock and 127.0.0.1:<free port> (plus a TLS port
    with tls=True). Stopped at teardown and checked like echod's. The
    workdir is mode 0750, owned by the mail user: a client running as
    another user (Postfix's lmtp) needs it opened up (the socket itself is
    0666)."""
    _, uid, gid = mail_user
    started = []
    cert_path, key_path = prepare_mail_daemon(workdir, auth_env, certs, mail_user, "lmtp")

    def start(conf=None, tls=False, wait=True):
        n = len(started)
        plain_port, tls_port = free_ports(2)
        sock = os.path.join(workdir, f"lmtp-{n}.sock")
        base = {
            "global": {"mail_user": MAIL_USER, "mail_root": auth_env.mail_root,
                       "log_level": "debug"},
            # Without a [tls] cert the daemon offers no STARTTLS.
            "tls": {"cert": cert_path, "key": key_path} if tls else
                   {"cert": os.path.join(workdir, "no-cert.pem"),
                    "key": os.path.join(workdir, "no-key.pem")},
            "lmtp": {"listen": f"unix:{sock} 127.0.0.1:{plain_port}",
                     "listen_tls": f"127.0.0.1:{tls_port}" if tls else "",
                     "shutdown_timeout": "5s",
                     "hostname": "lmtp.test.invalid",
                     "local_domains": "example.org"},
            "auth": dict(auth_env.auth),
        }
        sections = merge_config(base, conf)
        cfg_path = os.path.join(workdir, f"tern-lmtp-{n}.conf")
        install_file(render_config(sections).encode(), cfg_path, uid, gid, 0o644)
        d = LmtpDaemon([lmtpd_binary(), "-c", cfg_path], workdir, cfg_path, sections, "lmtp")
        d.socket_path = sock
        d.auth = auth_env
        d.tls_trust = [certs[0].cert]
        d.shutdown_s = duration_seconds(sections["lmtp"].get("shutdown_timeout"), 10.0)
        started.append(d)
        d.start()
        if wait:
            d.wait_ready()
        return d

    yield start

    stop_daemons(started)


# ------------------------------------------------------ POP3 and IMAP
#
# tern-pop3d and tern-imapd with virtual users made by ternctl (an
# AuthEnv's users database and mail_root), a plain port (STLS/STARTTLS)
# and an implicit-TLS port. Both are a MailDaemon: they differ in their
# binary, greeting and goodbye.


def daemon_binary(subdir, name):
    path = os.path.join(build_dir(), subdir, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build {subdir}/{name} first")
    return path


class MailDaemon(Daemon):
    """A running tern-pop3d or tern-imapd. .port is its plain port,
    .tls_port its implicit-TLS port (with tls=True), .auth the AuthEnv of
    its users. Subclasses say how the protocol greets and says goodbye."""

    program = None          # "tern-pop3d"
    greeting = None         # what the greeting starts with
    goodbye = None          # (command, [reply prefixes]) ending a session

    def wait_ready(self, probe_source="127.0.0.1", timeout=START_TIMEOUT):
        """Every listener greets and answers the goodbye command."""
        deadline = time.monotonic() + timeout
        targets = [(p, False) for p in self._ports("listen")] + \
                  [(p, True) for p in self._ports("listen_tls")]
        probe_ports = []
        for port, is_tls in targets:
            while True:
                if self.proc.poll() is not None:
                    pytest.fail(f"{self.program} exited with {self.proc.returncode}; "
                                f"log:\n{self.log_tail()}")
                try:
                    c = Client.connect(port, source=probe_source,
                                       tls_ctx=client_context(self.tls_trust) if is_tls else None)
                except (OSError, ssl.SSLError):
                    if time.monotonic() > deadline:
                        pytest.fail(f"{self.program} not accepting on {port} after {timeout}s; "
                                    f"log:\n{self.log_tail()}")
                    time.sleep(0.05)
                    continue
                try:
                    probe_ports.append(c.local_port)
                    try:
                        g = c.readline()
                    except AssertionError as e:
                        pytest.fail(f"{self.program} on {port}: {e}; log:\n{self.log_tail()}")
                    assert g.startswith(self.greeting), f"unexpected greeting {g!r}"
                    command, replies = self.goodbye
                    c.sendline(command)
                    for r in replies:
                        assert c.readline().startswith(r)
                    c.expect_eof()
                finally:
                    c.close()
                break
        self.wait_released(probe_ports)

    def client(self, tls=False, source=None):
        """A raw Client on the plain port (tls=True: the TLS port), greeting
        read."""
        c = Client.connect(self.tls_port if tls else self.port, source=source,
                           tls_ctx=client_context(self.tls_trust) if tls else None)
        g = c.readline()
        assert g.startswith(self.greeting + " "), f"greeting {g!r}"
        return c

    def deliver(self, user, message, mailbox=None):
        """Store a message (bytes) for user with `ternctl deliver`."""
        args = ["deliver", user] + (["-m", mailbox] if mailbox else [])
        p = run_ternctl(self.auth.ctl_config(), *args, input=message)
        assert p.returncode == 0, f"ternctl deliver: {p.stderr.decode(errors='replace')}"

    def user_dir(self, user):
        return os.path.join(self.auth.mail_root, user)


class Pop3Daemon(MailDaemon):
    program = "tern-pop3d"
    greeting = "+OK"
    goodbye = ("QUIT", ["+OK"])

    def poplib(self, tls=False):
        """A connected poplib.POP3 (poplib.POP3_SSL with tls=True)."""
        import poplib
        if tls:
            return poplib.POP3_SSL("127.0.0.1", self.tls_port, timeout=READ_TIMEOUT,
                                   context=client_context(self.tls_trust))
        return poplib.POP3("127.0.0.1", self.port, timeout=READ_TIMEOUT)


class ImapDaemon(MailDaemon):
    program = "tern-imapd"
    greeting = "* OK"
    goodbye = ("z LOGOUT", ["* BYE", "z OK"])

    def login(self, user, password, tls=False):
        """A raw Client, logged in (tag "l")."""
        c = self.client(tls=tls)
        q = lambda v: '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        c.sendline(f"l LOGIN {q(user)} {q(password)}")
        lines = c.response()
        assert lines[-1].startswith("l OK"), lines
        return c

    def imaplib(self, tls=False):
        """A connected imaplib.IMAP4 (IMAP4_SSL with tls=True)."""
        import imaplib
        if tls:
            return imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, timeout=READ_TIMEOUT,
                                     ssl_context=client_context(self.tls_trust))
        return imaplib.IMAP4("127.0.0.1", self.port, timeout=READ_TIMEOUT)


def mail_daemon_factory(cls, subdir, service, workdir, auth_env, certs, mail_user):
    """The start() of the pop3d and imapd fixtures, and the list of what it
    started (stop them with stop_daemons)."""
    _, uid, gid = mail_user
    started = []
    cert_path, key_path = prepare_mail_daemon(workdir, auth_env, certs, mail_user, service)

    def start(conf=None, tls=True, wait=True, probe_source="127.0.0.1", measure_rss=False):
        n = len(started)
        plain_port, tls_port = free_ports(2)
        base = {
            "global": {"mail_user": MAIL_USER, "mail_root": auth_env.mail_root,
                       "log_level": "debug"},
            "tls": {"cert": cert_path, "key": key_path} if tls else
                   {"cert": os.path.join(workdir, "no-cert.pem"),
                    "key": os.path.join(workdir, "no-key.pem")},
            service: {"listen": f"127.0.0.1:{plain_port}",
                      "listen_tls": f"127.0.0.1:{tls_port}" if tls else "",
                      "shutdown_timeout": "5s"},
            "auth": dict(auth_env.auth),
        }
        sections = merge_config(base, conf)
        cfg_path = os.path.join(workdir, f"tern-{service}-{n}.conf")
        install_file(render_config(sections).encode(), cfg_path, uid, gid, 0o644)
        d = cls([daemon_binary(subdir, cls.program), "-c", cfg_path], workdir, cfg_path,
                sections, service)
        d.auth = auth_env
        d.tls_trust = [certs[0].cert]
        d.shutdown_s = duration_seconds(sections[service].get("shutdown_timeout"), 10.0)
        started.append(d)
        d.start(measure_rss=measure_rss)
        if wait:
            d.wait_ready(probe_source=probe_source)
        return d

    return start, started


@pytest.fixture
def pop3d(workdir, auth_env, certs, mail_user):
    """Factory: pop3d(conf={section: {key: value}}, tls=True, wait=True,
    probe_source="127.0.0.1", measure_rss=False) starts tern-pop3d for
    auth_env's users (add them with auth_env.add_user), listening on
    127.0.0.1:<free port> (STLS) and, with tls=True, a TLS port. Stopped at
    teardown and checked like echod's."""
    start, started = mail_daemon_factory(Pop3Daemon, "pop3d", "pop3", workdir, auth_env,
                                         certs, mail_user)
    yield start
    stop_daemons(started)


@pytest.fixture
def imapd(workdir, auth_env, certs, mail_user):
    """Factory: imapd(...) as pop3d(...), for tern-imapd (STARTTLS on the
    plain port)."""
    start, started = mail_daemon_factory(ImapDaemon, "imapd", "imap", workdir, auth_env,
                                         certs, mail_user)
    yield start
    stop_daemons(started)
