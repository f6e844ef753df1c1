"""
A private Postfix instance for the protocol tests (shared/CLIENTS.md §13).

Postfix from Debian's package, started by a test with its own main.cf,
master.cf, queue and data directories in a temp directory, accepting SMTP
on one loopback port and handing mail for its virtual domains to an LMTP
server (tern-lmtpd) over a Unix socket. Nothing in /etc/postfix is read or
written, and nothing listens on port 25: the stock master.cf is copied and
its smtp/inet listener removed.

Why the directories are where they are: Postfix's daemons run as the user
postfix and chdir into queue_directory, and its lmtp client connects to the
socket as that user, so the queue and every directory above the LMTP socket
must be searchable by postfix. The instance therefore lives in its own
directory (mode 0755) outside the test's workdir (0750, the mail user's),
and the caller makes the socket's directory reachable.

The instance is always stopped by its master's pid (SIGTERM; the children
exit with the master), never by name.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
STOCK_MASTER_CF = "/etc/postfix/master.cf"
STOCK_MASTER_CF_DIST = "/usr/share/postfix/master.cf.dist"
HOSTNAME = "mta.test.invalid"


def available():
    """None when Postfix can run here, else the reason (for pytest.skip)."""
    if os.geteuid() != 0:
        return "Postfix must be started as root"
    for p in (POSTFIX, POSTCONF, POSTQUEUE):
        if not os.access(p, os.X_OK):
            return f"{p} is missing: install Debian's postfix package (scripts/lib.sh)"
    if not (os.path.exists(STOCK_MASTER_CF) or os.path.exists(STOCK_MASTER_CF_DIST)):
        return "no stock master.cf from the postfix package"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or postdrop group is missing (package not set up)"
    return None


def _run(argv, timeout=60):
    return subprocess.run(argv, capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(pid):
    parent = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p:
                found.append(c)
                todo.append(c)
    return found


def _is_postfix_process(pid):
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return exe.startswith("/usr/lib/postfix/")


class Postfix:
    """One private instance. transport is the Postfix transport for the
    virtual domains, e.g. "lmtp:unix:/abs/path/lmtp.sock"."""

    def __init__(self, transport, domains=("example.org",), host="127.0.0.1"):
        self.transport = transport
        self.domains = list(domains)
        self.host = host
        self.dir = tempfile.mkdtemp(prefix="tern-pf-")
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.maillog_path = os.path.join(self.dir, "maillog")
        self.smtp_port = None
        self.master_pid = None

    # ------------------------------------------------------ configuration

    def postconf(self, *args):
        r = _run([POSTCONF, "-c", self.etc] + list(args))
        assert r.returncode == 0, \
            f"postconf {' '.join(args)}: {r.stderr.decode(errors='replace')}"
        return r.stdout.decode(errors="replace")

    def configure(self, smtp_port):
        self.smtp_port = smtp_port
        for d in (self.etc, self.queue, self.data):
            os.makedirs(d, exist_ok=True)
        src = STOCK_MASTER_CF if os.path.exists(STOCK_MASTER_CF) else STOCK_MASTER_CF_DIST
        shutil.copyfile(src, os.path.join(self.etc, "master.cf"))
        open(os.path.join(self.etc, "main.cf"), "w").close()
        h = self.host
        self.postconf(
            "-e",
            "compatibility_level = 3.6",
            f"queue_directory = {self.queue}", f"data_directory = {self.data}",
            "mail_owner = postfix", "setgid_group = postdrop",
            f"myhostname = {HOSTNAME}", "mydomain = test.invalid",
            "myorigin = $myhostname",
            f"inet_interfaces = {h}", "inet_protocols = ipv4",
            "mydestination =", "mynetworks = 127.0.0.0/8",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            "alias_maps =", "alias_database =",
            "virtual_mailbox_domains = " + ", ".join(self.domains),
            "virtual_mailbox_maps =",
            "smtpd_reject_unlisted_recipient = no",
            f"virtual_transport = {self.transport}",
            f"maillog_file = {self.maillog_path}",
            f"maillog_file_prefixes = /var, /dev/stdout, {self.dir}",
            "biff = no", "smtputf8_enable = no", "delay_warning_time = 0",
            "maximal_queue_lifetime = 1h", "bounce_queue_lifetime = 1h",
            "queue_run_delay = 10s", "minimal_backoff_time = 10s",
            "maximal_backoff_time = 60s")
        # No chroot anywhere: the LMTP socket path is absolute, and a
        # private instance does not populate a chroot.
        self.postconf("-F", "*/*/chroot = n")
        self.postconf("-MX", "smtp/inet")
        self.postconf("-M", f"{h}:{smtp_port}/inet = {h}:{smtp_port} inet n - n - - smtpd")
        # postfix start fails on master.lock unless postfix owns this.
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, -1)

    # ------------------------------------------------------------ running

    def start(self, smtp_port, timeout=60):
        self.configure(smtp_port)
        r = _run([POSTFIX, "-c", self.etc, "check"], timeout=timeout)
        assert r.returncode == 0, f"postfix check: exit {r.returncode}: " \
            f"{r.stderr.decode(errors='replace')}{self.maillog()}"
        r = _run([POSTFIX, "-c", self.etc, "start"], timeout=timeout)
        # Whatever happened, a master that wrote its pid is ours to stop.
        self._read_pid()
        assert r.returncode == 0, f"postfix start: exit {r.returncode}: " \
            f"{r.stderr.decode(errors='replace')}{self.maillog()}"
        deadline = time.monotonic() + timeout
        while True:
            self._read_pid()
            try:
                socket.create_connection((self.host, smtp_port), timeout=2).close()
                if self.master_pid:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Postfix does not accept on {self.host}:{smtp_port} "
                            f"after {timeout}s; maillog:\n{self.maillog()}")
            time.sleep(0.05)

    def _read_pid(self):
        # The master writes its pid space-padded.
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return
        if _is_postfix_process(pid):
            self.master_pid = pid

    def stop(self, timeout=30):
        """SIGTERM to the master (its children exit with it), wait; SIGKILL
        to it and to any child of this instance that outlived it. Idempotent."""
        self._read_pid()
        pid = self.master_pid
        if not pid:
            return
        kids = _descendants(pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        for k in kids:
            deadline = time.monotonic() + 5
            while _pid_alive(k) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_alive(k) and _is_postfix_process(k):
                os.kill(k, signal.SIGKILL)
        self.master_pid = None

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------ observation

    def maillog(self):
        try:
            with open(self.maillog_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=60, flush_every=5.0):
        """Wait (bounded) until the maillog has a line matching pattern (a
        regex); returns the match. Flushes the queue now and then so that a
        deferred message is retried without waiting for queue_run_delay."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        next_flush = time.monotonic() + flush_every
        while True:
            m = rx.search(self.maillog())
            if m:
                return m
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"no maillog line matching {pattern!r} within "
                                     f"{timeout}s; maillog:\n{self.maillog()}\n"
                                     f"queue:\n{self.queue_listing()}")
            if now > next_flush:
                self.flush()
                next_flush = now + flush_every
            time.sleep(0.1)

    def queue_listing(self):
        r = _run([POSTQUEUE, "-c", self.etc, "-p"])
        return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")

    def flush(self):
        _run([POSTQUEUE, "-c", self.etc, "-f"])
