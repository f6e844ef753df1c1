"""Tern's side of tests/bench/compare and the ternctl hook of preload.

The LMTP workload runs against tern-lmtpd: Tern (below) writes a private
tern.conf in compare's temporary directory (mail_user ternbench, the same
user that owns Dovecot's mail, so both write to the same file system as the
same user; mail_root and the users database inside that directory; [lmtp]
on a free 127.0.0.1 port), creates the recipients as virtual users with
`ternctl user add NAME --password-stdin`, starts tern-lmtpd in the
foreground and stops it by its pid. Everything else is Tern's defaults:
log_level info and full durability (a 250 only after the message and its
directory entry are on disk; docs/storage.md).

The recipients are named by their full address (lmtp1@example.org ...),
which tern-lmtpd matches before anything else, so no local-domain setting
is involved.

The POP3 workload runs against tern-pop3d from the same tern.conf ([pop3]
on another free 127.0.0.1 port, plain TCP like Dovecot's POP3 listener the
benchmark uses; no TLS keys, so no STLS): its users pop1 ... are virtual
users made the same way, and compare's preload fills their Maildirs with
hard links from the corpus cache (lib/maildir.py), as it does Dovecot's,
then Tern.index() builds each user's index with `ternctl mailbox status`
before the runs, as Dovecot builds its own in the warm-up.

The IMAP, big-mailbox IMAP and idle workloads run against tern-imapd from
the same tern.conf ([imap] on a third free 127.0.0.1 port, plain TCP like
Dovecot's IMAP listener the benchmark uses; no TLS keys, so no STARTTLS;
max_connections and max_connections_per_ip raised to the connection count
compare gives Dovecot, since every client comes from 127.0.0.1). Its users
imap1 ..., idle1 ... and big1 are virtual users made the same way and
preloaded like POP3's, except the big mailbox: its old index is dropped
but no new one is built (Tern.index(user, build=False)), so that the first
LOGIN builds it inside tern-imapd as Dovecot's first SELECT builds its
own, and compare's "first LOGIN + SELECT (cold)" row compares the same
work. The
idle workload measures the memory of tern-imapd's process tree (Tern.pid:
the daemon and its auth worker).
"""

import os
import re
import signal
import socket
import subprocess
import time

import maildir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__)))))
BUILD = os.environ.get("BUILD", os.path.join(REPO, "build"))

BINARIES = {
    "imapd": os.path.join(BUILD, "imapd", "tern-imapd"),
    "pop3d": os.path.join(BUILD, "pop3d", "tern-pop3d"),
    "lmtpd": os.path.join(BUILD, "lmtp", "tern-lmtpd"),
    "ternctl": os.path.join(BUILD, "ctl", "ternctl"),
}
TERNCTL = BINARIES["ternctl"]
# The PAM module that checks virtual users' passwords, used from the build
# tree through a private PAM directory (etc/pam.d/tern-virtual).
PAM_TERN = os.path.join(BUILD, "auth", "pam_tern.so")

# Which daemon serves each workload.
WORKLOAD_DAEMON = {"lmtp": "lmtpd", "imap": "imapd", "imap-bigbox": "imapd",
                   "pop3": "pop3d", "idle": "imapd"}
# Workloads this module can run Tern for.
SUPPORTED = {"lmtp", "pop3", "imap", "imap-bigbox", "idle"}


def missing():
    """Binaries that do not exist (yet)."""
    return [name for name, path in BINARIES.items()
            if not os.access(path, os.X_OK)]


def status(workload):
    """None if Tern can be benchmarked on this workload, else the reason
    shown in the table."""
    gone = [n for n in (WORKLOAD_DAEMON[workload], "ternctl") if n in missing()]
    if gone:
        return "not built yet (%s)" % ", ".join(gone)
    if workload not in SUPPORTED:
        return "not wired in lib/tern.py yet"
    return None


def version():
    try:
        with open(os.path.join(REPO, "meson.build")) as f:
            for line in f:
                line = line.strip()
                if line.startswith("version"):
                    v = line.split(":", 1)[1].strip(" ',")
                    break
            else:
                v = "?"
    except OSError:
        v = "?"
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rev = ""
    return "Tern %s%s" % (v, " (git %s)" % rev if rev else "")


def import_maildir(ternctl, config, user, maildir_path):
    """Import a Maildir++ tree into a Tern user's mailboxes with
    `ternctl import USER maildir PATH` (docs/ternctl.8). Returns the exit
    status."""
    cmd = [ternctl, "-c", config, "import", user, "maildir", maildir_path]
    r = subprocess.run(cmd)
    if r.returncode != 0:
        print("preload: %s failed with status %d" % (" ".join(cmd), r.returncode))
    return r.returncode


# What compare prints as Tern's settings.
SETTINGS = [
    ("mail_user", "ternbench", "the user that owns Dovecot's benchmark mail too"),
    ("mail_root, users_db", "in the temporary directory", "private instance"),
    ("[lmtp] listen", "127.0.0.1, a free high port; listen_tls empty",
     "private instance, plain TCP like Dovecot's LMTP listener"),
    ("[pop3] listen", "127.0.0.1, a free high port; listen_tls empty",
     "private instance, plain TCP like the POP3 port the benchmark uses on Dovecot"),
    ("[imap] listen", "127.0.0.1, a free high port; listen_tls empty",
     "private instance, plain TCP like the IMAP port the benchmark uses on Dovecot"),
    ("[imap] max_connections, max_connections_per_ip", "the connection count "
     "Dovecot's imap process_limit gets (11,000 by default)", "10,000 idle "
     "connections, all from 127.0.0.1 (defaults 1,000 and 50)"),
    ("[auth] pam_service, pam_confdir", "tern in the temporary directory: "
     "etc/pam.d/tern-virtual with the built pam_tern.so", "private instance"),
    ("[auth] max_concurrent_per_ip", "1000", "every benchmark client logs in "
     "from 127.0.0.1 (default 5 logins in progress per address)"),
    ("users", "virtual, made with `ternctl user add` (yescrypt, as Dovecot's "
     "passwd-file; full addresses for LMTP, pop1 ... for POP3, imap1 ..., "
     "idle1 ... and big1 for IMAP)", "the LMTP recipients, POP3 and IMAP logins"),
    ("big mailbox", "no index before the first session", "tern-imapd builds "
     "it at LOGIN, as Dovecot does at SELECT"),
    ("everything else", "Tern's defaults (log_level info, full durability)", ""),
]


def _free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Tern:
    """A private Tern for compare: tern-lmtpd for the LMTP workload,
    tern-pop3d for POP3 and tern-imapd for the IMAP and idle workloads, each
    where it is built, with one tern.conf. Has
    what compare uses of a server: ports, pid, pw, start(), stop(), alive(),
    log_tail(), reset_lmtp() to empty the recipients' mail between runs,
    and for the preload prepare_home(), maildir() and index()."""

    name = "Tern"

    # Each daemon's executable key, its [section], the greeting that says
    # it serves and what ends the probe's session.
    DAEMONS = [("lmtpd", "lmtp", b"220", b"QUIT\r\n"),
               ("pop3d", "pop3", b"+OK", b"QUIT\r\n"),
               ("imapd", "imap", b"* OK", b"a LOGOUT\r\n")]

    def __init__(self, workdir, pw, users, password, domain, pop3_users=(),
                 imap_users=(), max_connections=1000):
        self.dir = os.path.join(workdir, "tern")
        self.pw = pw
        self.users = ["%s@%s" % (u, domain) for u in users]
        # POP3 logins are plain names, as tern-bench sends them (pop1 ...).
        self.pop3_users = list(pop3_users)
        # IMAP logins too (imap1 ..., idle1 ..., big1).
        self.imap_users = list(imap_users)
        # [imap] max_connections and max_connections_per_ip.
        self.max_connections = max_connections
        self.password = password
        self.conf = os.path.join(self.dir, "tern.conf")
        self.mail_root = os.path.join(self.dir, "mail")
        # Mail taken out of the way between runs, removed with workdir.
        self.graveyard = os.path.join(workdir, "set-aside")
        self.users_db = os.path.join(self.dir, "users.sqlite")
        self.pam_dir = os.path.join(self.dir, "pam.d")
        self.daemons = [d for d in self.DAEMONS if d[0] not in missing()]
        self.ports = {}
        self.procs = {}
        self.logfs = {}

    @property
    def pid(self):
        """The process whose tree the idle workload measures: tern-imapd
        (its auth worker is its child); tern-lmtpd without it."""
        p = self.procs.get("imapd") or self.procs.get("lmtpd")
        return p.pid if p else None

    @property
    def pids(self):
        return {"tern-" + k: p.pid for k, p in self.procs.items()}

    def log_path(self, daemon):
        return os.path.join(self.dir, "tern-%s.log" % daemon)

    def setup(self):
        os.makedirs(self.mail_root, exist_ok=True)
        for d in (self.dir, self.mail_root):
            os.chown(d, self.pw.pw_uid, self.pw.pw_gid)
        text = ("# Private Tern for tests/bench/compare. Generated.\n"
                "[global]\nmail_user = %s\nmail_root = %s\n\n"
                % (self.pw.pw_name, self.mail_root))
        for _key, section, _greeting, _bye in self.DAEMONS:
            self.ports[section] = _free_port()
            text += "[%s]\nlisten = 127.0.0.1:%d\nlisten_tls =\n" % (
                section, self.ports[section])
            if section == "imap":
                # 10,000 idle connections, every one from 127.0.0.1.
                text += ("max_connections = %d\nmax_connections_per_ip = %d\n"
                         % (self.max_connections, self.max_connections))
            text += "\n"
        # Every benchmark client logs in from 127.0.0.1: the cap on logins
        # in progress from one address (default 5) would refuse some.
        text += ("[auth]\nusers = virtual\nusers_db = %s\nmax_concurrent_per_ip = 1000\n"
                 "pam_service = tern\npam_confdir = %s\n"
                 % (self.users_db, self.pam_dir))
        self._write_pam_service()
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o644)
        for u in self.users + self.pop3_users + self.imap_users:
            r = subprocess.run([TERNCTL, "-c", self.conf, "user", "add", u,
                                "--password-stdin"], input=self.password + "\n",
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("ternctl user add %s: exit %d: %s"
                                   % (u, r.returncode, r.stderr.strip()))

    def _write_pam_service(self):
        """pam.d/tern: the shipped tern-virtual with the built module's
        absolute path (as the protocol tests do)."""
        with open(os.path.join(REPO, "etc", "pam.d", "tern-virtual")) as f:
            text = f.read()
        text = re.sub(r"(?m)^(\s*\w+\s+\S+\s+)pam_tern\.so", r"\g<1>" + PAM_TERN, text)
        os.makedirs(self.pam_dir, exist_ok=True)
        os.chmod(self.pam_dir, 0o755)
        with open(os.path.join(self.pam_dir, "tern"), "w") as f:
            f.write(text)
        os.chmod(os.path.join(self.pam_dir, "tern"), 0o644)

    def start(self, timeout=60):
        for key, section, greeting, bye in self.daemons:
            self.logfs[key] = open(self.log_path(key), "ab")
            self.procs[key] = subprocess.Popen(
                [BINARIES[key], "-c", self.conf], stdin=subprocess.DEVNULL,
                stdout=self.logfs[key], stderr=subprocess.STDOUT)
            self._wait_greeting(key, section, greeting, bye, timeout)

    def _wait_greeting(self, key, section, greeting, bye, timeout):
        port = self.ports[section]
        deadline = time.monotonic() + timeout
        while True:
            if self.procs[key].poll() is not None:
                rc = self.procs[key].returncode
                self.stop()
                raise RuntimeError("tern-%s exited with %d: %s"
                                   % (key, rc, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    if s.recv(512).startswith(greeting):
                        s.sendall(bye)
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("tern-%s does not answer on port %d: %s"
                                   % (key, port, self.log_tail()))
            time.sleep(0.05)

    def alive(self):
        return bool(self.procs) and all(p.poll() is None for p in self.procs.values())

    def stop(self, timeout=30):
        """SIGTERM by pid, then SIGKILL; idempotent."""
        for key, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            self.logfs[key].close()
        self.procs = {}
        self.logfs = {}

    def reset_lmtp(self):
        """Empty the recipients' mail: stop, move their mail directories
        aside (maildir.set_aside: removed with the work directory), create
        them again with `ternctl mailbox status` (as the users'
        first delivery would; done here because concurrent first
        deliveries race in creating the index, see README.md), start."""
        self.stop()
        for u in self.users:
            maildir.set_aside(os.path.join(self.mail_root, u), self.graveyard)
            r = subprocess.run([TERNCTL, "-c", self.conf, "mailbox", "status", u,
                                "INBOX"], capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise RuntimeError("ternctl mailbox status %s INBOX: exit %d: %s"
                                   % (u, r.returncode, r.stderr.strip()))
        self.start()

    def prepare_home(self, user):
        """The user's mail directory (mail_root/USER), made if missing."""
        home = os.path.join(self.mail_root, user)
        os.makedirs(home, exist_ok=True)
        os.chown(home, self.pw.pw_uid, self.pw.pw_gid)
        return home

    def maildir(self, user):
        return os.path.join(self.mail_root, user, "Maildir")

    def index(self, user, build=True):
        """After a preload replaced the user's Maildir: drop the old index
        and build one from the files with `ternctl mailbox status` (which
        syncs the folder first), so that no timed session pays for it.
        build=False only drops it: the big mailbox's first SELECT builds
        it, as Dovecot's does."""
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(os.path.join(self.mail_root, user, "index.sqlite" + suffix))
            except FileNotFoundError:
                pass
        if not build:
            return
        r = subprocess.run([TERNCTL, "-c", self.conf, "mailbox", "status", user,
                            "INBOX"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("ternctl mailbox status %s INBOX: exit %d: %s"
                               % (user, r.returncode, r.stderr.strip()))

    def pending(self, user):
        """Messages of the user that tern-imapd has still to parse and index
        in the background (adopted in bulk: storage/catchup.c)."""
        import sqlite3
        path = os.path.join(self.mail_root, user, "index.sqlite")
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
        try:
            return db.execute("SELECT count(*) FROM fts_pending").fetchone()[0]
        finally:
            db.close()

    def log_tail(self, n=15):
        out = []
        for key, _section, _greeting, _bye in self.daemons:
            try:
                with open(self.log_path(key), errors="replace") as f:
                    out.append("tern-%s: %s" % (key, "".join(f.readlines()[-n:])))
            except OSError:
                out.append("tern-%s: (no log)" % key)
        return "\n".join(out)
