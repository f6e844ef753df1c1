"""
ternctl end to end: the built binary against a temp tern.conf, users
database, mail_root and private PAM directory (pam_tern.so from the build
tree, as scripts/demo sets it up).

Covered: help on every command (the list is read from `ternctl --help`),
unknown commands and options, config check (valid, invalid, $TERN_CONFIG),
every `user` subcommand with and without --json (parsed with json.loads),
login names that must be refused, duplicates, passwords from stdin and from
a terminal (a pty), `user del` asking, refusing and keeping mail, quotas,
`auth test` through PAM with the old and new password and for a disabled
user, system mode, and the exit codes of sysexits.h.

Run as root (as the test command does), ternctl drops to the mail user
`tern`: the tests check that what it creates belongs to that user. Not as
root, everything runs as the caller and the ownership checks are skipped
with a reason.
"""

import json
import os
from os import (EX_CANTCREAT, EX_CONFIG, EX_DATAERR, EX_IOERR, EX_NOINPUT, EX_NOPERM, EX_NOUSER,
                EX_OK, EX_USAGE)
import pty
import pwd
import re
import select
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import SANITIZER_MARKERS, run_ternctl, shipped_pam_service, ternctl_binary

MAIL_USER = "tern"

IS_ROOT = os.geteuid() == 0

# Every command the issue asks for (helpers of other groups included).
EXPECTED_COMMANDS = [
    "user add", "user del", "user passwd", "user list", "user show",
    "user enable", "user disable", "user quota", "auth test", "config check",
    "mailbox list", "mailbox create", "mailbox delete", "mailbox rename",
    "mailbox status", "index rebuild", "index check", "quota recalc",
    "deliver", "import", "export",
]


def check_stderr(stderr):
    for m in SANITIZER_MARKERS:
        assert m not in stderr, f"sanitizer report from ternctl:\n{stderr}"


class Ctl:
    """One test's world: a config, a users database path, mail_root and a
    PAM directory in a temp directory."""

    def __init__(self, root, users="virtual"):
        self.root = root
        self.mail_root = os.path.join(root, "mail")
        # Not created: `user add` creates it (owned by the mail user).
        self.users_db = os.path.join(root, "db", "users.sqlite")
        self.pam_dir = os.path.join(root, "pam.d")
        self.conf = os.path.join(root, "tern.conf")
        os.makedirs(self.mail_root)
        os.makedirs(self.pam_dir)
        os.chmod(self.pam_dir, 0o755)
        self.uid = self.gid = None
        if IS_ROOT:
            pw = pwd.getpwnam(MAIL_USER)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            os.chown(self.mail_root, self.uid, self.gid)
        self.write_pam()
        self.write_config(users)

    def write_pam(self):
        """etc/pam.d/tern-virtual with pam_tern.so by absolute path."""
        path = os.path.join(self.pam_dir, "tern")
        with open(path, "w") as f:
            f.write(shipped_pam_service("tern-virtual"))
        os.chmod(path, 0o644)

    def write_config(self, users="virtual", extra=""):
        with open(self.conf, "w") as f:
            f.write(f"""[global]
mail_user = {MAIL_USER}
mail_root = {self.mail_root}
log_target = stderr

[auth]
users = {users}
users_db = {self.users_db}
pam_service = tern
pam_confdir = {self.pam_dir}
failure_delay = 0
{extra}
""")
        os.chmod(self.conf, 0o644)

    def run(self, *args, input="", config=True, env=None, timeout=60):
        return run_ternctl(self.conf if config else None, *args, input=input, env=env,
                           cwd=self.root, timeout=timeout)

    def json(self, *args, input=""):
        p = self.run("--json", *args, input=input)
        assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stderr}"
        return json.loads(p.stdout)

    def add(self, name, password="secret-1", *opts):
        p = self.run("user", "add", name, "--password-stdin", *opts, input=password + "\n")
        assert p.returncode == 0, f"user add {name}: exit {p.returncode}\n{p.stderr}"
        return p

    def auth(self, name, password, *opts):
        return self.run("auth", "test", name, "--password-stdin", *opts,
                        input=password + "\n")

    def assert_owned(self, path):
        if not IS_ROOT:
            return
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (self.uid, self.gid), \
            f"{path} is owned by {st.st_uid}:{st.st_gid}, not by {MAIL_USER}"


@pytest.fixture
def ctl():
    if IS_ROOT:
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", MAIL_USER],
                           check=True, timeout=60)
    d = tempfile.mkdtemp(prefix="tern-ctl-")
    os.chmod(d, 0o755)  # the mail user reaches the data through it
    try:
        yield Ctl(d)
    finally:
        if os.environ.get("TERN_KEEP_TMP"):
            print(f"kept temp dir {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ pty


def run_on_terminal(argv, answers, timeout=30):
    """Run argv with stdin/stdout/stderr on a pty. answers: list of
    (prompt regex, text to type). Returns (exit status, everything shown)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    pending = list(answers)
    try:
        while True:
            if pending and re.search(pending[0][0].encode(), out):
                os.write(fd, pending[0][1].encode())
                pending.pop(0)
                out += b"<typed>"  # later prompts must come after this
                continue
            left = deadline - time.monotonic()
            assert left > 0, f"timeout; terminal shows {out!r}"
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    check_stderr(text)
    return os.waitstatus_to_exitcode(status), text


# ----------------------------------------------------------------- help


def listed_commands(help_text):
    """The command names from `ternctl --help` (two-column list)."""
    names = []
    in_list = False
    for line in help_text.splitlines():
        if line == "Commands:":
            in_list = True
            continue
        if in_list:
            if not line.startswith("  "):
                break
            names.append(line[2:20].strip())
    return names


def test_help_on_every_command(ctl):
    p = ctl.run("--help", config=False)
    assert p.returncode == EX_OK
    assert p.stdout.startswith("usage: ternctl ")
    names = listed_commands(p.stdout)
    for want in EXPECTED_COMMANDS:
        assert want in names, f"{want!r} missing from ternctl --help:\n{p.stdout}"
    for name in names:
        words = name.split()
        for args in (words + ["--help"], ["help"] + words, words + ["-h"]):
            # No config needed for help: a missing file does not matter.
            q = ctl.run(*args, config=False,
                        env={"TERN_CONFIG": "/nonexistent/tern.conf"})
            assert q.returncode == EX_OK, f"{args}: {q.returncode} {q.stderr}"
            assert q.stdout.startswith(f"usage: ternctl {name}"), f"{args}: {q.stdout!r}"
            assert len(q.stdout.splitlines()) >= 3, f"{args}: help too short: {q.stdout!r}"
    # Groups list their subcommands.
    for group in sorted({n.split()[0] for n in names if " " in n}):
        q = ctl.run(group, "--help", config=False)
        assert q.returncode == EX_OK
        subs = [n for n in names if n.startswith(group + " ")]
        for s in subs:
            assert f"  {s} " in q.stdout, f"{s} missing from {group} --help"
    # `help` alone and -h are the main help.
    assert ctl.run("help", config=False).stdout == p.stdout
    assert ctl.run("-h", config=False).stdout == p.stdout


def test_usage_errors(ctl):
    p = ctl.run(config=False)
    assert p.returncode == EX_USAGE and "usage: ternctl" in p.stderr
    p = ctl.run("frobnicate")
    assert p.returncode == EX_USAGE
    assert "unknown command 'frobnicate'" in p.stderr and "ternctl --help" in p.stderr
    p = ctl.run("user", "frob")
    assert p.returncode == EX_USAGE and "unknown command 'user frob'" in p.stderr
    assert "user add" in p.stderr  # the group's commands as a hint
    p = ctl.run("user")
    assert p.returncode == EX_USAGE and "needs a subcommand" in p.stderr
    p = ctl.run("--frob", "user", "list")
    assert p.returncode == EX_USAGE
    p = ctl.run("user", "add", "bob", "--frob")
    assert p.returncode == EX_USAGE and "unknown option '--frob'" in p.stderr
    assert "usage: ternctl user add NAME" in p.stderr
    p = ctl.run("user", "add")
    assert p.returncode == EX_USAGE and "missing argument" in p.stderr
    p = ctl.run("user", "show", "a", "b")
    assert p.returncode == EX_USAGE and "too many arguments" in p.stderr
    p = ctl.run("user", "quota", "bob", "--storage")
    assert p.returncode == EX_USAGE and "needs a value" in p.stderr
    p = ctl.run("-c", config=False)
    assert p.returncode == EX_USAGE
    p = ctl.run("--version", config=False)
    assert p.returncode == EX_OK and re.match(r"ternctl \d+\.\d+\.\d+\n$", p.stdout)
    # Nothing was created by any of these.
    assert not os.path.exists(ctl.users_db)


# --------------------------------------------------------------- config


def test_config_check(ctl):
    p = ctl.run("config", "check")
    assert p.returncode == EX_OK, p.stderr
    assert "[auth]" in p.stdout and "[global]" in p.stdout
    assert re.search(rf"^users_db = {re.escape(ctl.users_db)}$", p.stdout, re.M)
    assert re.search(rf"^mail_root = {re.escape(ctl.mail_root)}$", p.stdout, re.M)
    # Defaults are printed too.
    assert re.search(r"^max_failures = 3$", p.stdout, re.M)

    # $TERN_CONFIG when there is no -c; -c wins over it.
    q = ctl.run("config", "check", config=False, env={"TERN_CONFIG": ctl.conf})
    assert q.returncode == EX_OK and q.stdout == p.stdout
    q = ctl.run("config", "check", env={"TERN_CONFIG": "/nonexistent/x.conf"})
    assert q.returncode == EX_OK and q.stdout == p.stdout

    # The printed configuration is itself a valid configuration, with the
    # same settings (comments name the file it came from).
    def settings(text):
        return [line for line in text.splitlines() if not line.startswith("#")]

    printed = os.path.join(ctl.root, "printed.conf")
    with open(printed, "w") as f:
        f.write(p.stdout)
    q = ctl.run("-c", printed, "config", "check", config=False)
    assert q.returncode == EX_OK and settings(q.stdout) == settings(p.stdout)

    # Errors: file:line: message, EX_CONFIG; for every command.
    ctl.write_config(extra="no_such_key = 1")
    bad_line = open(ctl.conf).read().splitlines().index("no_such_key = 1") + 1
    for args in (("config", "check"), ("user", "list")):
        q = ctl.run(*args)
        assert q.returncode == EX_CONFIG, q
        assert f"{ctl.conf}:{bad_line}:" in q.stderr, q.stderr
        assert q.stdout == ""
    ctl.write_config(extra="max_failures = lots")
    q = ctl.run("config", "check")
    assert q.returncode == EX_CONFIG and "max_failures" in q.stderr
    q = ctl.run("-c", os.path.join(ctl.root, "missing.conf"), "config", "check",
                config=False)
    assert q.returncode == EX_CONFIG and "missing.conf" in q.stderr


# ---------------------------------------------------------------- users


def test_user_add_list_show(ctl):
    p = ctl.add("Alice@Example.org", "pw-alice", "--quota-storage", "512M",
                "--quota-messages", "1000")
    assert "added user alice@example.org" in p.stdout

    # The database: created with its directory, private, the mail user's.
    assert stat.S_IMODE(os.stat(ctl.users_db).st_mode) == 0o600
    ctl.assert_owned(ctl.users_db)
    ctl.assert_owned(os.path.dirname(ctl.users_db))
    # The mail directory with INBOX and the special-use folders.
    home = os.path.join(ctl.mail_root, "alice@example.org")
    for sub in ("Maildir/cur", "Maildir/new", "Maildir/tmp", "Maildir/.Sent/cur",
                "Maildir/.Trash/cur", "index.sqlite"):
        assert os.path.exists(os.path.join(home, sub)), sub
    ctl.assert_owned(home)
    ctl.assert_owned(os.path.join(home, "index.sqlite"))

    ctl.add("bob", "pw-bob", "--disabled")

    users = ctl.json("user", "list")
    assert users["kind"] == "virtual"
    assert [u["name"] for u in users["users"]] == ["alice@example.org", "bob"]
    a, b = users["users"]
    assert a["enabled"] is True and b["enabled"] is False
    assert a["quota_bytes"] == 512 << 20 and a["quota_messages"] == 1000
    assert b["quota_bytes"] == 0 and b["quota_messages"] == 0
    assert a["usage_bytes"] == 0 and a["usage_messages"] == 0
    assert a["mail_dir"] == home

    p = ctl.run("user", "list")
    assert p.returncode == EX_OK
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ENABLED", "STORAGE", "MESSAGES"]
    assert lines[1].split() == ["alice@example.org", "yes", "0", "/", "512M",
                                "0", "/", "1000"]
    assert lines[2].split() == ["bob", "no", "0", "/", "unlimited", "0", "/", "unlimited"]

    s = ctl.json("user", "show", "ALICE@example.org")
    assert s["name"] == "alice@example.org" and s["kind"] == "virtual"
    assert s["mail_dir"] == home and s["quota_bytes"] == 512 << 20
    now = time.time()
    assert abs(s["created"] - now) < 600 and abs(s["updated"] - now) < 600
    p = ctl.run("user", "show", "bob")
    assert p.returncode == EX_OK
    assert re.search(r"^enabled: +no$", p.stdout, re.M)
    assert re.search(r"^quota_storage: +unlimited$", p.stdout, re.M)
    assert re.search(r"^usage_messages: +0$", p.stdout, re.M)
    assert re.search(r"^created: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", p.stdout, re.M)
    # The password hash is never shown.
    assert "$y$" not in p.stdout and "hash" not in p.stdout.lower()

    p = ctl.run("user", "show", "nobody")
    assert p.returncode == EX_NOUSER and "no such user: nobody" in p.stderr


def test_user_list_empty_and_missing_db(ctl):
    p = ctl.run("user", "list")
    assert p.returncode == EX_OK and p.stdout == "no users\n"
    assert ctl.json("user", "list") == {"kind": "virtual", "users": []}
    p = ctl.run("user", "show", "bob")
    assert p.returncode == EX_NOUSER and "does not exist yet" in p.stderr
    for args in (("passwd", "bob", "--password-stdin"), ("enable", "bob"),
                 ("disable", "bob"), ("quota", "bob"), ("del", "bob")):
        p = ctl.run("user", *args, input="x\n")
        assert p.returncode == EX_NOUSER, (args, p.stderr)
    # Looking did not create the database.
    assert not os.path.exists(ctl.users_db)


@pytest.mark.parametrize("name", ["../../etc", "a/b", "a@../../x", "a%u", "a\tb",
                                  "x" * 300, "", ".hidden", "-rf", "a@b@c", "a b"])
def test_bad_names_refused(ctl, name):
    # "--" ends the options, so "-rf" is a name too.
    p = ctl.run("user", "add", "--password-stdin", "--", name, input="pw\n")
    assert p.returncode == EX_DATAERR, (name, p.stdout, p.stderr)
    assert "invalid user name" in p.stderr
    for args in (("show", "--", name), ("quota", "--", name), ("enable", "--", name)):
        q = ctl.run("user", *args)
        assert q.returncode in (EX_DATAERR, EX_NOUSER), (args, q.stderr)
    # Nothing was created anywhere.
    assert os.listdir(ctl.mail_root) == []
    assert not os.path.exists(os.path.join(ctl.root, "etc"))
    assert not os.path.exists(os.path.join(ctl.mail_root, "a"))


def test_duplicate_add(ctl):
    ctl.add("carol", "first")
    p = ctl.run("user", "add", "CAROL", "--password-stdin", input="second\n")
    assert p.returncode == EX_CANTCREAT and "carol already exists" in p.stderr
    # The first password still holds.
    assert ctl.auth("carol", "first").returncode == EX_OK
    assert ctl.auth("carol", "second").returncode == EX_NOPERM


def test_passwords_from_stdin(ctl):
    # Empty password, nothing on stdin, no terminal without --password-stdin.
    p = ctl.run("user", "add", "dave", "--password-stdin", input="\n")
    assert p.returncode == EX_DATAERR and "empty passwords" in p.stderr
    p = ctl.run("user", "add", "dave", "--password-stdin", input="")
    assert p.returncode == EX_NOINPUT
    p = ctl.run("user", "add", "dave", input="pw\n")
    assert p.returncode == EX_USAGE and "--password-stdin" in p.stderr
    p = ctl.run("user", "add", "dave", "--password-stdin", input="x" * 600 + "\n")
    assert p.returncode == EX_DATAERR and "longer than" in p.stderr
    # A stdin that cannot be read (a directory) is an I/O error.
    fd = os.open(ctl.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        p = subprocess.run([ternctl_binary(), "-c", ctl.conf, "user", "add", "dave",
                            "--password-stdin"], stdin=fd, capture_output=True, text=True,
                           timeout=60)
    finally:
        os.close(fd)
    check_stderr(p.stderr)
    assert p.returncode == EX_IOERR and "cannot read the password" in p.stderr
    assert ctl.json("user", "list")["users"] == []
    # CRLF line end and spaces inside: the password is the line without it.
    ctl.add("dave", "with spaces\r")
    assert ctl.auth("dave", "with spaces").returncode == EX_OK
    # The password never appears in any output.
    p = ctl.run("user", "passwd", "dave", "--password-stdin", input="S3cret-xyz\n")
    assert p.returncode == EX_OK and "changed the password of dave" in p.stdout
    assert "S3cret-xyz" not in p.stdout + p.stderr
    p = ctl.auth("dave", "S3cret-xyz")
    assert "S3cret-xyz" not in p.stdout + p.stderr


def test_passwd_then_auth_test(ctl):
    ctl.add("erin", "old-pass")
    p = ctl.auth("erin", "old-pass")
    assert p.returncode == EX_OK, p.stderr
    assert re.search(r"^result: +ok$", p.stdout, re.M)
    assert re.search(rf"^mail_dir: +{re.escape(ctl.mail_root)}/erin$", p.stdout, re.M)

    p = ctl.run("user", "passwd", "erin", "--password-stdin", input="new-pass\n")
    assert p.returncode == EX_OK, p.stderr

    p = ctl.auth("erin", "old-pass")
    assert p.returncode == EX_NOPERM
    assert re.search(r"^result: +failed$", p.stdout, re.M)
    assert "Authentication failed." in p.stdout
    # The client's log line says what PAM said, never the password.
    assert "result=failed" in p.stderr
    assert "old-pass" not in p.stderr + p.stdout

    r = json.loads(ctl.run("--json", "auth", "test", "erin", "--password-stdin",
                           input="new-pass\n").stdout)
    assert r["result"] == "ok" and r["login"] == "erin"
    assert r["user"]["name"] == "erin"
    assert r["user"]["mail_dir"] == os.path.join(ctl.mail_root, "erin")
    assert r["user"]["enabled"] is True

    # Unknown users fail like wrong passwords.
    p = ctl.auth("nobody", "x")
    assert p.returncode == EX_NOPERM
    r = json.loads(ctl.run("--json", "auth", "test", "nobody", "--password-stdin",
                           input="x\n").stdout)
    assert r["result"] == "failed" and r["user"] is None
    # A name that is not valid is refused before PAM.
    p = ctl.auth("../../etc", "x")
    assert p.returncode == EX_NOPERM
    p = ctl.auth("erin", "new-pass", "--remote", "not-an-ip")
    assert p.returncode == EX_USAGE


def test_enable_disable(ctl):
    ctl.add("frank", "pw-frank")
    p = ctl.run("user", "disable", "frank")
    assert p.returncode == EX_OK and p.stdout == "disabled user frank\n"
    assert ctl.json("user", "show", "frank")["enabled"] is False
    p = ctl.auth("frank", "pw-frank")
    assert p.returncode == EX_NOPERM
    assert re.search(r"^result: +disabled$", p.stdout, re.M)
    # A wrong password for a disabled user is just a failure.
    p = ctl.auth("frank", "wrong")
    assert p.returncode == EX_NOPERM
    assert re.search(r"^result: +failed$", p.stdout, re.M)

    assert ctl.json("user", "enable", "frank") == {"name": "frank", "enabled": True}
    assert ctl.auth("frank", "pw-frank").returncode == EX_OK
    p = ctl.run("user", "enable", "ghost")
    assert p.returncode == EX_NOUSER and "no such user: ghost" in p.stderr


def test_quota(ctl):
    ctl.add("gina", "pw", "--quota-storage", "1G", "--quota-messages", "50")
    p = ctl.run("user", "quota", "gina")
    assert p.returncode == EX_OK
    assert p.stdout == "gina: storage 0 of 1G, messages 0 of 50\n"

    q = ctl.json("user", "quota", "gina", "--storage", "2G")
    assert q["quota_bytes"] == 2 << 30 and q["quota_messages"] == 50
    q = ctl.json("user", "quota", "gina", "--messages", "unlimited")
    assert q["quota_bytes"] == 2 << 30 and q["quota_messages"] == 0
    q = ctl.json("user", "quota", "gina", "--storage", "0", "--messages", "7")
    assert q["quota_bytes"] == 0 and q["quota_messages"] == 7
    for size, want in (("512K", 512 << 10), ("3MB", 3 << 20), ("1TiB", 1 << 40),
                       ("2g", 2 << 30), ("12345", 12345), ("unlimited", 0)):
        q = ctl.json("user", "quota", "gina", "--storage", size)
        assert q["quota_bytes"] == want, size
    # "1 " once read as 1 PiB (a space upper-cased to NUL, found by strchr).
    for bad in ("2X", "-1", "G", "1.5G", "99999999999999999999", "20000000T", "1 ", "1 G"):
        p = ctl.run("user", "quota", "gina", "--storage", bad)
        assert p.returncode == EX_USAGE and "bad size" in p.stderr, bad
    for bad in ("many", "5K", "7 "):
        p = ctl.run("user", "quota", "gina", "--messages", bad)
        assert p.returncode == EX_USAGE and "bad message count" in p.stderr, bad
    # Nothing changed by the refused ones.
    assert ctl.json("user", "show", "gina")["quota_messages"] == 7
    p = ctl.run("user", "add", "hank", "--password-stdin", "--quota-storage", "lots",
                input="pw\n")
    assert p.returncode == EX_USAGE
    assert "hank" not in [u["name"] for u in ctl.json("user", "list")["users"]]


def test_del_refuses_without_terminal_and_keeps_mail(ctl):
    ctl.add("ivan", "pw")
    home = os.path.join(ctl.mail_root, "ivan")
    marker = os.path.join(home, "Maildir", "cur", "1.x,S=3:2,")
    with open(marker, "w") as f:
        f.write("hi\n")
    if IS_ROOT:
        os.chown(marker, ctl.uid, ctl.gid)

    p = ctl.run("user", "del", "ivan")
    assert p.returncode == EX_USAGE
    assert "--keep-mail" in p.stderr and "--yes" in p.stderr
    assert "nothing was changed" in p.stderr
    assert ctl.json("user", "show", "ivan")["name"] == "ivan"

    p = ctl.run("user", "del", "ivan", "--keep-mail")
    assert p.returncode == EX_OK and f"kept the mail in {home}" in p.stdout
    assert os.path.exists(marker)
    assert ctl.run("user", "show", "ivan").returncode == EX_NOUSER
    assert ctl.auth("ivan", "pw").returncode == EX_NOPERM

    # Adding the user again gives the mail back.
    p = ctl.add("ivan", "pw2")
    assert "existing mail kept" in p.stdout
    assert os.path.exists(marker)

    # --yes (before or after the command) removes the mail.
    r = json.loads(ctl.run("user", "del", "ivan", "--yes", "--json").stdout)
    assert r == {"name": "ivan", "deleted": True, "mail_dir": home, "mail_removed": True}
    assert not os.path.exists(home)
    assert os.path.isdir(ctl.mail_root)

    p = ctl.run("--yes", "user", "del", "ivan")
    assert p.returncode == EX_NOUSER


def test_del_asks_on_terminal(ctl):
    ctl.add("judy", "pw")
    ctl.add("kim", "pw")
    base = [ternctl_binary(), "-c", ctl.conf]
    home = os.path.join(ctl.mail_root, "judy")
    status, shown = run_on_terminal(base + ["user", "del", "judy"],
                                    [(r"\[y/N\] ", "n\n")])
    assert status == EX_OK, shown
    assert f"Remove judy's mail in {home}? [y/N]" in shown
    assert os.path.isdir(home)
    assert "kept the mail" in shown

    home = os.path.join(ctl.mail_root, "kim")
    status, shown = run_on_terminal(base + ["user", "del", "kim"],
                                    [(r"\[y/N\] ", "y\n")])
    assert status == EX_OK, shown
    assert not os.path.exists(home)
    assert ctl.json("user", "list")["users"] == []


def test_password_prompt_on_terminal(ctl):
    base = [ternctl_binary(), "-c", ctl.conf]
    # Asked twice, no echo.
    status, shown = run_on_terminal(base + ["user", "add", "lena"],
                                    [(r"Password for lena: ", "tty-pass\n"),
                                     (r"Retype the password: ", "tty-pass\n")])
    assert status == EX_OK, shown
    assert "tty-pass" not in shown
    assert ctl.auth("lena", "tty-pass").returncode == EX_OK

    # Different twice: nothing changed.
    status, shown = run_on_terminal(base + ["user", "passwd", "lena"],
                                    [(r"Password for lena: ", "one\n"),
                                     (r"Retype the password: ", "two\n")])
    assert status == EX_DATAERR and "do not match" in shown
    assert ctl.auth("lena", "tty-pass").returncode == EX_OK

    # auth test asks once.
    status, shown = run_on_terminal(base + ["auth", "test", "lena"],
                                    [(r"Password for lena: ", "tty-pass\n")])
    assert status == EX_OK, shown
    assert "Retype" not in shown and "tty-pass" not in shown


def test_json_escaping(ctl):
    odd = os.path.join(ctl.mail_root, 'odd "dir" \\ ü\u00e9\u4e2d')
    ctl.add("mia", "pw", "--mail-dir", odd)
    s = ctl.json("user", "show", "mia")
    assert s["mail_dir"] == odd
    raw = ctl.run("--json", "user", "list").stdout
    assert raw.endswith("\n") and raw.count("\n") == 1
    assert json.loads(raw)["users"][0]["mail_dir"] == odd
    assert os.path.isdir(os.path.join(odd, "Maildir", "cur"))
    for bad in ("relative/dir", "/a/../b", "/a/./b", odd + "\t", odd + "\x01"):
        p = ctl.run("user", "add", "nick", "--password-stdin", "--mail-dir", bad,
                    input="pw\n")
        assert p.returncode == EX_USAGE, bad


def test_system_mode(ctl):
    ctl.write_config(users="system")
    for args in (("add", "root", "--password-stdin"), ("del", "root"),
                 ("passwd", "root", "--password-stdin"), ("enable", "root"),
                 ("disable", "root"), ("quota", "root", "--storage", "1G")):
        p = ctl.run("user", *args, input="pw\n")
        assert p.returncode == EX_CONFIG, (args, p.stderr)
        assert "managed by the system" in p.stderr
    name = MAIL_USER if IS_ROOT else pwd.getpwuid(os.getuid()).pw_name
    s = ctl.json("user", "show", name)
    assert s["kind"] == "system" and s["name"] == name
    assert s["mail_dir"] == os.path.join(ctl.mail_root, name)
    assert s["created"] is None
    p = ctl.run("user", "show", "no-such-account-xyz")
    assert p.returncode == EX_NOUSER
    # list: the accounts with a mail directory under mail_root.
    assert ctl.json("user", "list") == {"kind": "system", "users": []}
    os.mkdir(os.path.join(ctl.mail_root, name))
    os.mkdir(os.path.join(ctl.mail_root, "no-such-account-xyz"))
    users = ctl.json("user", "list")["users"]
    assert [u["name"] for u in users] == [name]


def test_runs_as_mail_user(ctl):
    if not IS_ROOT:
        pytest.skip("not root: ternctl runs as the caller and drops nothing")
    ctl.add("olga", "pw")
    # Everything ternctl made under the user's directory is the mail user's.
    home = os.path.join(ctl.mail_root, "olga")
    for root, dirs, files in os.walk(home):
        for n in dirs + files:
            ctl.assert_owned(os.path.join(root, n))
    # A users database the mail user cannot write stays unchanged: ternctl
    # is not root when it opens it.
    os.chown(ctl.users_db, 0, 0)
    p = ctl.run("user", "disable", "olga")
    assert p.returncode != EX_OK
    os.chown(ctl.users_db, ctl.uid, ctl.gid)
    assert ctl.json("user", "show", "olga")["enabled"] is True
