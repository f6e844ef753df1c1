"""Tern's side of tests/bench/compare and the ternctl hook of preload.

Today (the bench harness's first version) none of Tern's daemons exist:
imapd/, pop3d/, lmtp/ and ctl/ hold only a placeholder meson.build. So
status() says "not built yet" and compare prints that in Tern's column for
every workload; nothing here pretends otherwise.

When the daemons land, this is what has to be finished (the parts that
depend on interfaces that do not exist yet are marked HOOK):
  * start(): a tern.conf with the keys documented in etc/tern.conf (global
    mail_user and mail_root, [tls] cert and key, [imap]/[pop3]/[lmtp] listen
    and listen_tls on 127.0.0.1 with free ports, max_connections and
    max_connections_per_ip raised for the connection counts the workloads
    use), then tern-imapd, tern-pop3d and tern-lmtpd with -c tern.conf.
  * HOOK users: Tern's own users via `ternctl user add` (DESIGN.md "Auth");
    the exact command line must be taken from ternctl's documentation.
  * HOOK preload: `ternctl import` of a Maildir filled by lib/maildir.py,
    or the files put straight into <mail_root>/<domain>/<user>/Maildir
    (Tern indexes what it finds there; DESIGN.md "Storage").
"""

import os
import subprocess

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

# Which daemon serves each workload.
WORKLOAD_DAEMON = {"lmtp": "lmtpd", "imap": "imapd", "imap-bigbox": "imapd",
                   "pop3": "pop3d", "idle": "imapd"}


def missing():
    """Binaries that do not exist (yet)."""
    return [name for name, path in BINARIES.items()
            if not os.access(path, os.X_OK)]


def status():
    """None if Tern can be benchmarked, else the reason shown in the table."""
    gone = missing()
    if gone == list(BINARIES):
        return "not built yet"
    if gone:
        return "not built yet (%s)" % ", ".join(gone)
    return ("built, but lib/tern.py cannot start it yet: users and import "
            "(HOOK) to be wired when ternctl documents them")


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
    """HOOK: import a Maildir into a Tern user's mailbox with ternctl.
    The command line below is the intended one; check it against ternctl's
    documentation when ternctl exists. Returns the exit status."""
    cmd = [ternctl, "-c", config, "import", "--user", user, maildir_path]
    r = subprocess.run(cmd)
    if r.returncode != 0:
        print("preload: %s failed with status %d" % (" ".join(cmd), r.returncode))
    return r.returncode
