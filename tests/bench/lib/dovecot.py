"""A private Dovecot 2.3 for tests/bench/compare.

Installs Debian's dovecot-imapd, dovecot-pop3d and dovecot-lmtpd if missing
without letting the packages start the system service, and runs a Dovecot of
its own from a temporary directory: its own dovecot.conf (nothing from
/etc/dovecot), base_dir, state_dir and log inside that directory, listeners
on 127.0.0.1 ports the kernel says are free, started with
`dovecot -c dovecot.conf` and stopped by its master pid. The system-wide
Dovecot and Postfix configuration is never read or written.

Settings: Dovecot's defaults (fsync included: mail_fsync stays "optimized",
the default) plus what a private, loopback instance needs and the limits
raised for the connection counts of the benchmark; settings_text() lists
them, and compare prints `doveconf -n`.
"""

import ctypes
import grp
import os
import pwd
import resource
import signal
import socket
import subprocess
import sys
import time

PACKAGES = ["dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd"]
POLICY_RC_D = "/usr/sbin/policy-rc.d"
SYSTEM_MASTER_PID = "/run/dovecot/master.pid"
MAIL_USER = "ternbench"
DOMAIN = "example.org"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def installed():
    return all(os.access(p, os.X_OK) for p in (
        "/usr/sbin/dovecot", "/usr/bin/doveconf", "/usr/bin/doveadm",
        "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3", "/usr/lib/dovecot/lmtp"))


def _pid_is_dovecot(pid):
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False
    return os.path.basename(exe).startswith("dovecot")


def stop_system_dovecot():
    """If a system Dovecot got started anyway, stop it by the pid in its
    master.pid (never by name). Returns True if one was stopped."""
    try:
        with open(SYSTEM_MASTER_PID) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    if not _pid_is_dovecot(pid):
        return False
    log("dovecot: a system Dovecot is running (pid %d from %s): stopping it"
        % (pid, SYSTEM_MASTER_PID))
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.1)
    return True


def install():
    """apt-get install the packages if missing, with a policy-rc.d that
    forbids starting services (created only if there is none, and removed
    afterwards only if created here)."""
    if installed():
        return
    created = False
    if not os.path.exists(POLICY_RC_D):
        with open(POLICY_RC_D, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(POLICY_RC_D, 0o755)
        created = True
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log("dovecot: installing %s from Debian's packages" % " ".join(PACKAGES))
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False,
                       timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"]
                       + PACKAGES, env=env, check=True, timeout=900)
    finally:
        if created:
            os.unlink(POLICY_RC_D)
        stop_system_dovecot()
    if not installed():
        raise RuntimeError("Dovecot is still missing after apt-get install")


def ensure_user():
    try:
        return pwd.getpwnam(MAIL_USER)
    except KeyError:
        pass
    log("dovecot: creating system user %s" % MAIL_USER)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", MAIL_USER], check=True)
    return pwd.getpwnam(MAIL_USER)


def version():
    try:
        return "Dovecot " + subprocess.run(
            ["/usr/sbin/dovecot", "--version"], capture_output=True, text=True,
            timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "Dovecot ?"


def package_version():
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "dovecot-core"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_cert(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


def yescrypt(password):
    """A yescrypt hash of password with libcrypt's default cost, as
    `ternctl user add` makes them (crypt_gensalt "$y$", then crypt)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$y$", 0, None, 0)
    hashed = lib.crypt(password.encode(), salt) if salt else None
    if not hashed or hashed.startswith(b"*"):
        raise RuntimeError("libcrypt cannot make a yescrypt hash")
    return hashed.decode()


# What we change from Dovecot's defaults, and why (printed by compare).
CHANGED = [
    ("mail_location", "maildir:~/Maildir", "Maildir, as for Tern"),
    ("passdb", "passwd-file, {CRYPT} yescrypt hashes", "test users, hashed as "
     "Tern hashes them, so both servers do the same work per login"),
    ("userdb", "static: uid/gid %s, home <dir>/home/%%n" % MAIL_USER,
     "one mail user, like Tern's mail_user"),
    ("auth_username_format", "%Ln", "LMTP's user@example.org and IMAP's "
     "user are the same mailbox"),
    ("disable_plaintext_auth", "no", "plain LOGIN on loopback without TLS"),
    ("listen / ports", "127.0.0.1, free high ports", "private instance"),
    ("base_dir, state_dir, log_path", "in the temporary directory",
     "private instance"),
    ("ssl", "yes, self-signed RSA-2048 (SAN localhost, 127.0.0.1)",
     "IMAPS/POP3S/STARTTLS"),
    ("mail_max_userip_connections", "100000 (imap, pop3)",
     "many benchmark connections per user from 127.0.0.1 (default 10)"),
    ("process/client limits", "imap and pop3 process_limit, login process_limit,"
     " anvil/auth client_limit raised to the connection count",
     "defaults (100-1024 processes) are below 1,000 clients / 10,000 idle "
     "connections"),
]


def changed(login_mode):
    """CHANGED, plus the login mode when it is not Dovecot's default."""
    rows = list(CHANGED)
    if login_mode == "performance":
        rows.append(("imap-login, pop3-login", "service_count = 0, process_min_avail "
                     "= %d" % (os.cpu_count() or 1), "Dovecot's documented "
                     "high-performance login mode (--dovecot-login performance)"))
    else:
        rows.append(("imap-login, pop3-login", "service_count = 1 (default)",
                     "Dovecot's default high-security login mode: a new login "
                     "process for every connection"))
    return rows


class Dovecot:
    name = "Dovecot"

    def __init__(self, workdir, users, password, max_connections=11000,
                 login_mode="security"):
        self.dir = os.path.join(workdir, "dovecot")
        # "security": Dovecot's default (and Debian's), one login process
        # per connection (service_count = 1). "performance": the documented
        # high-performance mode, service_count = 0 and process_min_avail =
        # the number of cores, login processes serving many connections.
        self.login_mode = login_mode
        self.users = users
        self.password = password
        self.max_connections = max_connections
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.home_root = os.path.join(self.dir, "home")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.ports = {}
        self.pid = None
        self.pw = None

    # ------------------------------------------------------------ set-up

    def setup(self):
        self.pw = ensure_user()
        os.makedirs(self.dir, exist_ok=True)
        # Dovecot's unprivileged processes (dovecot, dovenull, the mail user)
        # must reach base_dir and the homes.
        d = self.dir
        while d != "/":
            st = os.stat(d)
            if st.st_mode & 0o005 != 0o005:
                os.chmod(d, st.st_mode | 0o005)
            d = os.path.dirname(d)
        for sub in (self.base_dir, self.state_dir):
            os.makedirs(sub, exist_ok=True)
        os.makedirs(self.home_root, exist_ok=True)
        os.chown(self.home_root, self.pw.pw_uid, self.pw.pw_gid)
        self.cert, self.key = make_cert(self.dir)
        hashed = yescrypt(self.password)
        with open(os.path.join(self.dir, "users"), "w") as f:
            for u in self.users:
                f.write("%s:{CRYPT}%s::::::\n" % (u, hashed))
        # Read by the auth process, which runs as default_internal_user.
        os.chown(os.path.join(self.dir, "users"), 0, grp.getgrnam("dovecot").gr_gid)
        os.chmod(os.path.join(self.dir, "users"), 0o640)
        for name in ("imap", "imaps", "pop3", "pop3s", "lmtp"):
            self.ports[name] = free_port()
        self.write_config()
        r = subprocess.run(["doveconf", "-c", self.conf, "-n"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("doveconf -n failed:\n" + r.stderr)
        self.doveconf_n = r.stdout
        self.doveconf_warnings = r.stderr.strip()

    def write_config(self):
        n = self.max_connections
        uid = self.pw.pw_uid
        login_extra = ""
        if self.login_mode == "performance":
            login_extra = ("  service_count = 0\n  process_min_avail = %d\n"
                           % (os.cpu_count() or 1))
        conf = f"""# Private Dovecot for tests/bench/compare. Generated; not a system config.
protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = tern-bench-{os.getpid()}
log_path = {self.log_path}
default_internal_user = dovecot
default_login_user = dovenull

ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}

mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
}}
first_valid_uid = {uid}
last_valid_uid = {uid}

disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%n {self.dir}/users
}}
userdb {{
  driver = static
  args = uid={MAIL_USER} gid={MAIL_USER} home={self.home_root}/%n
}}

default_process_limit = 1000
default_client_limit = {n + 1000}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.ports['imap']}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ports['imaps']}
    ssl = yes
  }}
  process_limit = 1000
{login_extra}}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.ports['pop3']}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.ports['pop3s']}
    ssl = yes
  }}
  process_limit = 1000
{login_extra}}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.ports['lmtp']}
  }}
}}
service imap {{
  process_limit = {n}
}}
service pop3 {{
  process_limit = 1000
}}
service anvil {{
  client_limit = {n + 2000}
}}
service auth {{
  client_limit = {n + 2000}
}}
protocol imap {{
  mail_max_userip_connections = 100000
}}
protocol pop3 {{
  mail_max_userip_connections = 100000
}}
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    # ---------------------------------------------------------- running

    def start(self, timeout=60):
        """Start the master (it daemonizes); wait for its pid file and for
        every listener. Raises RuntimeError with the log's tail on failure."""
        pidfile = os.path.join(self.base_dir, "master.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)    # a previous start's
        self.pid = None
        # The master daemonizes; its output goes to a file, not a pipe that
        # the daemon's children would hold open.
        with open(os.path.join(self.dir, "dovecot.stderr"), "w") as err:
            r = subprocess.run(["/usr/sbin/dovecot", "-c", self.conf],
                               stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                               timeout=timeout, preexec_fn=raise_nofile)
        if r.returncode != 0:
            with open(os.path.join(self.dir, "dovecot.stderr")) as f:
                raise RuntimeError("dovecot -c %s failed (%d): %s %s"
                                   % (self.conf, r.returncode, f.read().strip(),
                                      self.log_tail()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    self.pid = int(f.read().split()[0])
                break
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        if not self.pid:
            raise RuntimeError("dovecot wrote no %s: %s" % (pidfile, self.log_tail()))
        for name, port in self.ports.items():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("dovecot does not listen on %s port %d: %s"
                                           % (name, port, self.log_tail()))
                    time.sleep(0.05)

    def alive(self):
        return bool(self.pid) and os.path.exists("/proc/%d" % self.pid)

    def stop(self, timeout=60):
        """doveadm stop, then SIGTERM and SIGKILL to the master pid; any
        process left from this instance (children of the master) is killed
        by its pid."""
        if not self.pid:
            return
        kids = descendants(self.pid)
        try:
            subprocess.run(["doveadm", "-c", self.conf, "stop"], capture_output=True,
                           timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        deadline = time.monotonic() + timeout
        sent_term = False
        while self.alive():
            if time.monotonic() > deadline:
                _kill(self.pid, signal.SIGKILL)
                break
            if not sent_term and time.monotonic() > deadline - timeout / 2:
                _kill(self.pid, signal.SIGTERM)
                sent_term = True
            time.sleep(0.1)
        # Children of this master that outlived it (they are ours).
        for pid in kids:
            if os.path.exists("/proc/%d" % pid) and _pid_is_dovecot_child(pid):
                _kill(pid, signal.SIGKILL)
        self.pid = None

    def log_tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def maildir(self, user):
        return os.path.join(self.home_root, user, "Maildir")

    def prepare_home(self, user):
        home = os.path.join(self.home_root, user)
        os.makedirs(home, exist_ok=True)
        os.chown(home, self.pw.pw_uid, self.pw.pw_gid)
        return home


NOFILE = 65536


def raise_nofile():
    """preexec_fn: soft open-file limit up to the hard one (as root, try to
    raise the hard one to NOFILE first; a container may not allow it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NOFILE:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
            return
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def nofile_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _pid_is_dovecot_child(pid):
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False
    return "/dovecot" in exe or os.path.basename(exe).startswith("dovecot")


def descendants(pid):
    """pid's descendants, from the ppid field of /proc/*/stat."""
    parent = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        parent[int(name)] = int(fields[1])
    children = {}
    for child, ppid in parent.items():
        children.setdefault(ppid, []).append(child)
    found, to_visit = [], [pid]
    while to_visit:
        p = to_visit.pop()
        for c in children.get(p, []):
            found.append(c)
            to_visit.append(c)
    return found
