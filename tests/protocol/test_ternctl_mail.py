"""
ternctl's mail commands end to end: mailbox list|create|delete|rename|status,
index rebuild|check, quota recalc, deliver, import and export, with the
built binary against a temp tern.conf, users database and mail_root.

Run as root (the conftest's mail_user fixture skips otherwise), so ternctl
drops to the mail user `tern` as it does in production; every path it must
read or write belongs to that user. What the tests look at is what an
administrator or an MTA sees: exit codes (sysexits.h), --json output, the
bytes of exported messages, and, to prove that UIDs survive a rebuild, the
index itself (read-only, with Python's sqlite3).

The sample mbox is tests/data/mbox/sample.mbox (see its README.md).
"""

import json
import os
from os import (EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_NOPERM, EX_NOUSER, EX_OK, EX_TEMPFAIL,
                EX_USAGE)
import re
import shutil
import sqlite3
import subprocess
import time

import pytest

from conftest import SANITIZER_MARKERS, chown_tree, run_ternctl, source_dir, ternctl_binary

RUN_TIMEOUT = 120

FLAG_SEEN, FLAG_ANSWERED, FLAG_FLAGGED, FLAG_DELETED, FLAG_DRAFT = 1, 2, 4, 8, 16


def sample_mbox():
    return os.path.join(source_dir(), "tests", "data", "mbox", "sample.mbox")


class Ctl:
    """A config, users database and mail_root in the test's directory."""

    def __init__(self, workdir, uid, gid, mail_root=None):
        self.dir = workdir
        self.uid, self.gid = uid, gid
        self.mail_root = mail_root or os.path.join(workdir, "mail")
        os.makedirs(self.mail_root, exist_ok=True)
        os.chown(self.mail_root, uid, gid)
        self.conf = os.path.join(workdir, "tern.conf")
        with open(self.conf, "w") as f:
            f.write(f"[global]\nmail_user = tern\nmail_root = {self.mail_root}\n"
                    f"[auth]\nusers = virtual\n"
                    f"users_db = {os.path.join(workdir, 'db', 'users.sqlite')}\n")
        os.chmod(self.conf, 0o644)

    def run(self, *args, input=b"", expect=EX_OK, json_out=False):
        p = run_ternctl(self.conf, *(["--json"] if json_out else []), *args, input=input,
                        timeout=RUN_TIMEOUT)
        if expect is not None:
            assert p.returncode == expect, \
                f"ternctl {' '.join(args)}: exit {p.returncode}, wanted {expect}\n" \
                f"stdout: {p.stdout[:2000]!r}\nstderr: {p.stderr.decode('utf-8', 'replace')}"
        return p

    def json(self, *args, expect=EX_OK, input=b""):
        p = self.run(*args, expect=expect, input=input, json_out=True)
        return json.loads(p.stdout)

    def add_user(self, name):
        self.run("user", "add", name, "--password-stdin", input=b"Secret-pass-1\n")

    def user_dir(self, name):
        return os.path.join(self.mail_root, name)

    def maildir(self, name, folder=""):
        return os.path.join(self.user_dir(name), "Maildir", folder)

    def path(self, *parts):
        """A path in the test's directory (which the mail user may write)."""
        return os.path.join(self.dir, *parts)

    def sample_copy(self):
        """tests/data/mbox/sample.mbox copied where the mail user reads it."""
        src = self.path("sample.mbox")
        shutil.copy(sample_mbox(), src)
        self.give(src)
        return src

    def give(self, path):
        """Hand a file or tree to the mail user, which ternctl runs as."""
        if os.path.isdir(path):
            chown_tree(path, self.uid, self.gid)
        else:
            os.chown(path, self.uid, self.gid)


@pytest.fixture
def ctl(workdir, mail_user):
    _, uid, gid = mail_user
    return Ctl(workdir, uid, gid)


# ------------------------------------------------------------- helpers


def split_lines(data):
    """Lines with their line ends (only LF ends a line, as in mbox)."""
    return re.findall(rb"[^\n]*\n|[^\n]+$", data)


def parse_mboxrd(data):
    """[(from_line, message)] as an mboxrd reader sees them: split at
    "From " lines, the empty line before the next one dropped, one '>'
    taken off ">*From " lines."""
    msgs = []
    for line in split_lines(data):
        if line.startswith(b"From "):
            msgs.append([line, []])
            continue
        assert msgs, f"text before the first From_ line: {line!r}"
        msgs[-1][1].append(re.sub(rb"^>(>*From )", rb"\1", line))
    out = []
    for from_line, lines in msgs:
        if lines and lines[-1] in (b"\n", b"\r\n"):
            lines = lines[:-1]
        out.append((from_line, b"".join(lines)))
    return out


def take_status(msg):
    """(message without Status:/X-Status: header lines, flags they gave)."""
    flags = 0
    out = []
    in_header = True
    for line in split_lines(msg):
        if in_header and line in (b"\n", b"\r\n"):
            in_header = False
        elif in_header and re.match(rb"(?i)status:", line):
            flags |= FLAG_SEEN if b"R" in line[7:] else 0
            continue
        elif in_header and re.match(rb"(?i)x-status:", line):
            v = line[9:]
            for letter, f in ((b"A", FLAG_ANSWERED), (b"F", FLAG_FLAGGED),
                              (b"T", FLAG_DRAFT), (b"D", FLAG_DELETED)):
                if letter in v:
                    flags |= f
            continue
        out.append(line)
    return b"".join(out), flags


def stored_form(msg):
    """What storage keeps of a message: CRLF as LF."""
    return msg.replace(b"\r\n", b"\n")


def from_date(from_line):
    """The asctime date at the end of a From_ line."""
    m = re.search(rb"(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\s*$", from_line)
    assert m, f"no date in {from_line!r}"
    return m.group(1)


def info_flags(name):
    """Flags of a Maildir file name's ":2," suffix, as letters."""
    return "".join(sorted(set(name.split(":2,", 1)[1]))) if ":2," in name else ""


def maildir_messages(folder):
    """Sorted [(bytes, flag letters, subdir, mtime)] of a Maildir folder."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(folder, sub)
        for name in os.listdir(d):
            if name.startswith("."):
                continue
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out.append((f.read(), info_flags(name), sub, int(os.stat(p).st_mtime)))
    return sorted(out)


def index_rows(user_dir):
    """{(mailbox, guid): (uid, flags, keywords)} and {mailbox: uidvalidity}
    read straight from the index."""
    db = sqlite3.connect(f"file:{os.path.join(user_dir, 'index.sqlite')}?mode=ro",
                         uri=True)
    try:
        rows = {(mb, guid): (uid, flags, kw) for mb, guid, uid, flags, kw in db.execute(
            "SELECT m.name, g.guid, g.uid, g.flags, g.keywords FROM message g"
            " JOIN mailbox m ON m.id = g.mailbox_id")}
        validity = dict(db.execute("SELECT name, uidvalidity FROM mailbox"))
    finally:
        db.close()
    return rows, validity


def tree_files(root):
    """Every file below root (relative paths), for before/after comparisons."""
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def message(subject, body="Hello.\n", extra=""):
    return (f"From: Sender <sender@example.org>\nTo: rcpt@example.net\n"
            f"Subject: {subject}\nMessage-ID: <{subject.replace(' ', '-')}@example.org>\n"
            f"{extra}\n{body}").encode()


def export_inbox_files(ctl, user, folder=""):
    """Export the user's mail as a Maildir and return the files of folder."""
    dest = ctl.path(f"export-{user}-{time.monotonic_ns()}")
    ctl.run("export", user, "maildir", dest)
    return maildir_messages(os.path.join(dest, folder))


# ------------------------------------------------------------ mailbox


def test_mailbox_commands(ctl):
    ctl.add_user("ann")
    listing = ctl.json("mailbox", "list", "ann")
    names = [m["name"] for m in listing["mailboxes"]]
    assert names == ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    sent = next(m for m in listing["mailboxes"] if m["name"] == "Sent")
    assert sent["special_use"] == ["\\Sent"] and sent["messages"] == 0

    ctl.run("mailbox", "create", "ann", "Projects")
    r = ctl.json("mailbox", "create", "ann", "Projects/2024", "--special-use", "\\Archive",
                 "--subscribe")
    assert r["created"] is True and r["special_use"] == ["\\Archive"]
    ctl.run("mailbox", "create", "ann", "Projects/2024", expect=EX_CANTCREAT)
    ctl.run("mailbox", "create", "ann", "bad.name", expect=EX_DATAERR)
    ctl.run("mailbox", "create", "ann", "X", "--special-use", "\\Nonsense", expect=EX_USAGE)
    p = ctl.run("mailbox", "create", "ann", expect=EX_USAGE)
    assert b"missing argument" in p.stderr and b"usage: ternctl mailbox create" in p.stderr
    p = ctl.run("mailbox", "create", "ann", "X", "--subscribe=yes", expect=EX_USAGE)
    assert b"option '--subscribe=yes' takes no value" in p.stderr

    for i in range(2):
        ctl.run("deliver", "ann", "-m", "Projects/2024", input=message(f"p{i}"))
    st = ctl.json("mailbox", "status", "ann", "Projects/2024")
    assert st["messages"] == 2 and st["unseen"] == 2 and st["uidnext"] == 3
    assert st["uidvalidity"] > 0 and st["highestmodseq"] >= 2
    # Sizes are IMAP's: CRLF line ends.
    expected_size = sum(len(message(f"p{i}")) + message(f"p{i}").count(b"\n")
                        for i in range(2))
    assert st["size"] == expected_size
    human = ctl.run("mailbox", "status", "ann", "Projects/2024").stdout.decode()
    assert re.search(r"^messages:\s+2$", human, re.M)
    assert re.search(rf"^uidvalidity:\s+{st['uidvalidity']}$", human, re.M)

    listing = ctl.json("mailbox", "list", "ann")
    proj = {m["name"]: m for m in listing["mailboxes"]}
    assert proj["Projects/2024"]["subscribed"] is True
    assert proj["Projects/2024"]["messages"] == 2
    assert proj["Projects/2024"]["size"] == expected_size
    human = ctl.run("mailbox", "list", "ann").stdout.decode()
    assert re.search(r"^Projects/2024\s+\\Archive\s+yes\s+2\s+2\s+%d$" % expected_size,
                     human, re.M), human

    # Rename carries children, counters and subscriptions.
    r = ctl.json("mailbox", "rename", "ann", "Projects", "Work")
    assert r["renamed"] is True and r["to"] == "Work"
    st2 = ctl.json("mailbox", "status", "ann", "Work/2024")
    assert st2["uidvalidity"] == st["uidvalidity"] and st2["messages"] == 2
    ctl.run("mailbox", "status", "ann", "Projects/2024", expect=EX_NOINPUT)
    proj = {m["name"]: m for m in ctl.json("mailbox", "list", "ann")["mailboxes"]}
    assert "Projects/2024" not in proj and proj["Work/2024"]["subscribed"] is True

    # Delete: with messages, not without --yes (stdin is not a terminal).
    p = ctl.run("mailbox", "delete", "ann", "Work/2024", expect=EX_USAGE)
    assert b"--yes" in p.stderr
    assert ctl.json("mailbox", "status", "ann", "Work/2024")["messages"] == 2
    r = ctl.json("mailbox", "delete", "ann", "Work/2024", "--yes")
    assert r["deleted"] is True and r["messages"] == 2
    names = [m["name"] for m in ctl.json("mailbox", "list", "ann")["mailboxes"]]
    assert "Work/2024" not in names
    assert not os.path.exists(ctl.maildir("ann", ".Work.2024"))
    # An empty mailbox goes without asking; INBOX never.
    ctl.run("mailbox", "create", "ann", "Empty")
    ctl.run("mailbox", "delete", "ann", "Empty")
    ctl.run("mailbox", "delete", "ann", "INBOX", expect=EX_NOPERM)
    ctl.run("mailbox", "list", "nobody", expect=EX_NOUSER)


# -------------------------------------------------------------- index


def test_index_rebuild_keeps_uids_uidvalidity_and_flags(ctl):
    ctl.add_user("ben")
    src = ctl.sample_copy()
    ctl.run("import", "ben", "mbox", src)
    ctl.run("import", "ben", "mbox", src, "-m", "Archive/Old")
    for i in range(3):
        ctl.run("deliver", "ben", input=message(f"d{i}"))
    # A message removed by another program leaves a gap in the UIDs that a
    # rebuild must not close.
    inbox_new = ctl.maildir("ben", "new")
    victim = sorted(os.listdir(inbox_new))[0]
    os.unlink(os.path.join(inbox_new, victim))
    # A keyword set by another program (mutt, Dovecot): a letter in the
    # file name, its name in dovecot-keywords.
    cur = ctl.maildir("ben", "cur")
    tagged = sorted(n for n in os.listdir(cur) if n.endswith(":2,S"))[0]
    os.rename(os.path.join(cur, tagged), os.path.join(cur, tagged + "a"))
    with open(os.path.join(ctl.maildir("ben"), "dovecot-keywords"), "w") as f:
        f.write("0 $Important\n")
    chown_tree(ctl.user_dir("ben"), ctl.uid, ctl.gid)
    ctl.run("mailbox", "status", "ben", "INBOX")   # syncs both changes

    before_rows, before_validity = index_rows(ctl.user_dir("ben"))
    assert len(before_rows) == 6 + 6 + 3 - 1
    assert any(flags & FLAG_FLAGGED for _, flags, _ in before_rows.values())
    assert [kw for _, _, kw in before_rows.values() if kw] == [1]
    r = ctl.json("index", "rebuild", "ben")
    by_name = {m["name"]: m for m in r["mailboxes"]}
    for name in ("INBOX", "Archive/Old"):
        m = by_name[name]
        assert m["before"]["messages"] == m["after"]["messages"]
        assert m["before"]["uidvalidity"] == m["after"]["uidvalidity"]
        assert m["after"]["uidnext"] >= m["before"]["uidnext"]
    assert by_name["INBOX"]["after"]["messages"] == 8
    after_rows, after_validity = index_rows(ctl.user_dir("ben"))
    assert after_rows == before_rows
    assert after_validity == before_validity
    ctl.run("index", "check", "ben")

    # Without any index at all, the same.
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(ctl.user_dir("ben"), "index.sqlite" + suffix)
        if os.path.exists(p):
            os.unlink(p)
    p = ctl.run("index", "check", "ben", expect=EX_DATAERR)
    assert b"no-index" in p.stdout
    human = ctl.run("index", "rebuild", "ben").stdout.decode()
    # (opening the mail rebuilt the missing index already: 8 before too)
    assert re.search(r"^INBOX\s+8\s+-> 8\s", human, re.M), human
    assert index_rows(ctl.user_dir("ben")) == (before_rows, before_validity)
    # A new delivery continues above every UID handed out before.
    r = ctl.json("deliver", "ben", input=message("after"))
    assert r["uid"] > max(uid for (mb, _), (uid, _, _) in before_rows.items()
                          if mb == "INBOX")
    ctl.run("index", "rebuild", "nobody", expect=EX_NOUSER)


def test_index_check_reports_tampering(ctl):
    ctl.add_user("cat")
    src = ctl.sample_copy()
    ctl.run("import", "cat", "mbox", src)
    r = ctl.json("index", "check", "cat")
    assert r["consistent"] is True and r["problems"] == []
    assert r["messages"] == 6 and r["files"] == 6
    out = ctl.run("index", "check", "cat").stdout.decode()
    assert "consistent" in out

    # A file removed behind the index's back, a stray file dropped in cur/,
    # and a second file claiming an existing UID.
    cur = ctl.maildir("cat", "cur")
    files = sorted(os.listdir(cur))
    gone = files[0]
    os.unlink(os.path.join(cur, gone))
    with open(os.path.join(cur, "stray.message:2,S"), "wb") as f:
        f.write(message("stray"))
    dup_uid = re.search(r",U=(\d+)", files[1]).group(1)
    with open(os.path.join(cur, f"1700000000.dup.host,U={dup_uid}:2,S"), "wb") as f:
        f.write(message("dup"))
    chown_tree(ctl.user_dir("cat"), ctl.uid, ctl.gid)

    p = ctl.run("index", "check", "cat", expect=EX_DATAERR)
    out = p.stdout.decode()
    assert re.search(r"^INBOX: file-missing: .*" + re.escape(gone), out, re.M), out
    assert re.search(r"^INBOX: file-not-indexed: .*stray\.message", out, re.M), out
    assert re.search(rf"^INBOX: duplicate-uid: U={dup_uid}\b", out, re.M), out
    assert "3 problems" in out or "4 problems" in out, out
    r = ctl.json("index", "check", "cat", expect=EX_DATAERR)
    kinds = sorted(p["kind"] for p in r["problems"])
    assert "file-missing" in kinds and "file-not-indexed" in kinds
    assert "duplicate-uid" in kinds and r["consistent"] is False
    assert all(p["mailbox"] == "INBOX" for p in r["problems"])
    # The check changed nothing: the same report again.
    assert ctl.json("index", "check", "cat", expect=EX_DATAERR)["problems"] == r["problems"]

    # A rebuild repairs it: the stray and duplicate files become messages.
    ctl.run("index", "rebuild", "cat")
    r = ctl.json("index", "check", "cat")
    assert r["consistent"] is True and r["messages"] == 7
    ctl.run("index", "check", "nobody", expect=EX_NOUSER)


def test_quota_recalc(ctl):
    ctl.add_user("dan")
    for i in range(3):
        ctl.run("deliver", "dan", input=message(f"q{i}", body="x" * (100 * (i + 1)) + "\n"))
    rows_db = os.path.join(ctl.user_dir("dan"), "index.sqlite")

    def real_usage():
        db = sqlite3.connect(f"file:{rows_db}?mode=ro", uri=True)
        try:
            return db.execute("SELECT sum(vsize), count(*) FROM message").fetchone()
        finally:
            db.close()

    good_bytes, good_count = real_usage()
    # The stored totals damaged, and a message dropped into new/ by
    # another program.
    db = sqlite3.connect(rows_db)
    db.execute("UPDATE usage SET bytes = 5, messages = 1")
    db.commit()
    db.close()
    p = ctl.run("index", "check", "dan", expect=EX_DATAERR)
    assert b": usage: usage says 5 bytes in 1 messages" in p.stdout, p.stdout
    dropped = message("dropped")
    path = os.path.join(ctl.maildir("dan", "new"), "1700000000.M1P1.otherhost")
    with open(path, "wb") as f:
        f.write(dropped)
    os.chown(path, ctl.uid, ctl.gid)

    r = ctl.json("quota", "recalc", "dan")
    assert r["old"] == {"bytes": 5, "messages": 1}
    assert r["new"] == {"bytes": good_bytes + len(dropped) + dropped.count(b"\n"),
                        "messages": good_count + 1}
    ctl.run("index", "check", "dan")
    out = ctl.run("quota", "recalc", "dan").stdout.decode()
    assert re.search(r"^messages: 4 -> 4$", out, re.M), out
    ctl.run("quota", "recalc", "nobody", expect=EX_NOUSER)
    ctl.run("quota", "recalc", expect=EX_USAGE)


# ------------------------------------------------------------ deliver


def test_deliver(ctl):
    ctl.add_user("eve")
    ctl.run("mailbox", "create", "eve", "Lists")
    plain = message("plain", body="Line one.\n\nLine three.\n")
    p = ctl.run("deliver", "eve", input=plain)
    assert p.stdout == b""  # silent, as MDAs are
    # An mbox From_ line in front (procmail, fetchmail) is dropped.
    r = ctl.json("deliver", "eve", input=b"From someone@example.org Mon Jan  1 00:00:00 2024\n"
                 + message("with from line"))
    assert r["mailbox"] == "INBOX" and r["uid"] == 2
    assert r["uidvalidity"] == ctl.json("mailbox", "status", "eve", "INBOX")["uidvalidity"]
    # Large: streamed, stored whole.
    big = message("big", body="".join(f"line {i:07d} " + "x" * 90 + "\n"
                                      for i in range(40000)))
    assert len(big) > 4_000_000
    ctl.run("deliver", "eve", input=big)
    # CRLF input is stored with LF.
    ctl.run("deliver", "eve", input=message("crlf").replace(b"\n", b"\r\n"))

    files = export_inbox_files(ctl, "eve")
    contents = sorted(f[0] for f in files)
    assert contents == sorted([plain, message("with from line"), big, message("crlf")])
    assert all(f[2] == "new" and f[1] == "" for f in files)

    # -m into a folder; a folder that does not exist falls back to INBOX.
    r = ctl.json("deliver", "eve", "-m", "Lists", input=message("to lists"))
    assert r["mailbox"] == "Lists"
    p = ctl.run("deliver", "eve", "--mailbox", "No/Such", input=message("fallback"))
    assert b"does not exist" in p.stderr and b"INBOX" in p.stderr
    p = ctl.run("deliver", "eve", "-m", "bad..name", input=message("fallback 2"))
    assert b"INBOX" in p.stderr
    assert ctl.json("mailbox", "status", "eve", "Lists")["messages"] == 1
    assert ctl.json("mailbox", "status", "eve", "INBOX")["messages"] == 6
    assert [f[0] for f in export_inbox_files(ctl, "eve", ".Lists")] == [message("to lists")]

    # Failures an MTA must tell apart.
    p = ctl.run("deliver", "nobody", input=message("x"), expect=EX_NOUSER)
    ctl.run("deliver", "eve", input=b"", expect=EX_DATAERR)
    ctl.run("deliver", "eve", input=b"From x Mon Jan  1 00:00:00 2024\n", expect=EX_DATAERR)
    p = ctl.run("deliver", input=message("x"), expect=EX_USAGE)
    assert b"missing argument" in p.stderr and b"usage: ternctl deliver" in p.stderr
    p = ctl.run("deliver", "eve", "extra", input=message("x"), expect=EX_USAGE)
    assert b"too many arguments" in p.stderr
    p = ctl.run("deliver", "eve", "-x", input=message("x"), expect=EX_USAGE)
    assert b"unknown option '-x'" in p.stderr
    p = ctl.run("deliver", "eve", "-m", input=message("x"), expect=EX_USAGE)
    assert b"option '-m' needs a value" in p.stderr
    assert ctl.json("mailbox", "status", "eve", "INBOX")["messages"] == 6
    ctl.run("index", "check", "eve")


def test_deliver_index_locked_is_temporary(ctl):
    ctl.add_user("fay")
    ctl.run("deliver", "fay", input=message("first"))
    before = tree_files(ctl.maildir("fay"))
    db = sqlite3.connect(os.path.join(ctl.user_dir("fay"), "index.sqlite"),
                         isolation_level=None, timeout=1)
    try:
        db.execute("BEGIN EXCLUSIVE")
        p = ctl.run("deliver", "fay", input=message("while locked"), expect=EX_TEMPFAIL)
        assert b"fay" in p.stderr
    finally:
        db.execute("ROLLBACK")
        db.close()
    # Nothing of the failed delivery is visible, not even in tmp/.
    assert tree_files(ctl.maildir("fay")) == before
    ctl.run("deliver", "fay", input=message("after"))
    assert ctl.json("mailbox", "status", "fay", "INBOX")["messages"] == 2
    ctl.run("index", "check", "fay")


def test_deliver_disk_full_is_temporary(workdir, mail_user):
    _, uid, gid = mail_user
    mnt = os.path.join(workdir, "small")
    os.makedirs(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", mnt],
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()}")
    try:
        ctl = Ctl(workdir, uid, gid, mail_root=os.path.join(mnt, "mail"))
        ctl.add_user("gil")
        ctl.run("deliver", "gil", input=message("fits"))
        before = tree_files(ctl.maildir("gil"))
        # Fill the file system (as root: nothing is reserved on tmpfs).
        with open(os.path.join(mnt, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        body = "".join("y" * 99 + "\n" for _ in range(3000))
        p = ctl.run("deliver", "gil", input=message("too big for the disk", body=body),
                    expect=EX_TEMPFAIL)
        assert b"gil" in p.stderr
        assert tree_files(ctl.maildir("gil")) == before
        r = ctl.json("index", "check", "gil")
        assert r["consistent"] is True and r["messages"] == 1
        os.unlink(os.path.join(mnt, "filler"))
        ctl.run("deliver", "gil", input=message("too big for the disk", body=body))
        assert ctl.json("mailbox", "status", "gil", "INBOX")["messages"] == 2
    finally:
        subprocess.run(["umount", "-l", mnt], timeout=60)


# ----------------------------------------------------- import / export


def test_mbox_import_export_round_trip(ctl):
    ctl.add_user("hal")
    with open(sample_mbox(), "rb") as f:
        original = f.read()
    src = ctl.sample_copy()
    orig_msgs = parse_mboxrd(original)
    assert len(orig_msgs) == 6

    r = ctl.json("import", "hal", "mbox", src, "-m", "Old/2024")
    assert r["messages"] == 6
    assert r["mailboxes"] == [{"name": "Old/2024", "messages": 6, "created": True}]
    st = ctl.json("mailbox", "status", "hal", "Old/2024")
    assert st["messages"] == 6 and st["unseen"] == 4

    # What is stored, byte for byte (a Maildir export writes it as is):
    # the message without Status:/X-Status:, CRLF as LF, flags from them,
    # the From_ line's date as the internal date.
    expected = []
    for from_line, msg in orig_msgs:
        body, flags = take_status(msg)
        expected.append((stored_form(body), flags, from_date(from_line)))
    files = export_inbox_files(ctl, "hal", ".Old.2024")
    letters = {FLAG_SEEN: "S", FLAG_ANSWERED: "R", FLAG_FLAGGED: "F",
               FLAG_DRAFT: "D", FLAG_DELETED: "T"}

    def as_letters(flags):
        return "".join(sorted(v for k, v in letters.items() if flags & k))

    def asctime_utc(t):
        return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t)).encode()

    assert sorted((f[0], f[1], asctime_utc(f[3])) for f in files) == \
        sorted((e[0], as_letters(e[1]), e[2]) for e in expected)
    # The message without a final line end is stored without one.
    assert any(f[0].endswith(b"has no line end.") for f in files)

    # Export as mbox and compare every message after mboxrd unquoting.
    out = ctl.path("out.mbox")
    r = ctl.json("export", "hal", "mbox", out, "-m", "Old/2024")
    assert r["messages"] == 6
    with open(out, "rb") as f:
        exported = f.read()
    # Quoting on disk is mboxrd's, line for line as in the original.
    for line in (b">From here on, we ship on Fridays.\n", b">>From the notes, three points:\n",
                 b">>From quoted already, in the original.\n", b">From the finance team.\n",
                 b">>>From deeply quoted.\n", b" From with a leading space"):
        assert line in exported
    exp_msgs = parse_mboxrd(exported)
    assert len(exp_msgs) == 6
    for i, ((ofrom, omsg), (efrom, emsg)) in enumerate(zip(orig_msgs, exp_msgs)):
        assert efrom == b"From MAILER-DAEMON " + from_date(ofrom) + b"\n"
        obody, oflags = take_status(omsg)
        ebody, eflags = take_status(emsg)
        want = stored_form(obody)
        if i == 5:
            want += b"\n"  # mbox cannot keep a message without a line end
        assert ebody == want, f"message {i + 1} differs"
        assert eflags == oflags, f"message {i + 1}: flags"

    # The export imported again gives the same messages once more.
    r = ctl.json("import", "hal", "mbox", out, "-m", "Again")
    assert r["messages"] == 6
    again = export_inbox_files(ctl, "hal", ".Again")
    files_nonl = [(f[0] if f[0].endswith(b"\n") else f[0] + b"\n", f[1], f[3]) for f in files]
    assert sorted((f[0], f[1], f[3]) for f in again) == sorted(files_nonl)

    # From stdin, and to stdout.
    r = ctl.json("import", "hal", "mbox", "-", input=original)
    assert r["messages"] == 6 and r["mailboxes"][0]["name"] == "INBOX"
    p = ctl.run("export", "hal", "mbox", "-")
    assert [m for _, m in parse_mboxrd(p.stdout)] == \
        [m for _, m in parse_mboxrd(exported)]

    # Errors: not an mbox, a missing file, an existing target.
    junk = ctl.path("junk.txt")
    with open(junk, "wb") as f:
        f.write(b"Subject: not an mbox\n\nhello\n")
    ctl.give(junk)
    ctl.run("import", "hal", "mbox", junk, expect=EX_DATAERR)
    ctl.run("import", "hal", "mbox", ctl.path("missing.mbox"), expect=EX_NOINPUT)
    p = ctl.run("export", "hal", "mbox", out, expect=EX_CANTCREAT)
    with open(out, "rb") as f:
        assert f.read() == exported
    ctl.run("export", "hal", "mbox", ctl.path("x.mbox"), "-m", "No/Such", expect=EX_NOINPUT)
    p = ctl.run("import", "hal", "tarball", src, expect=EX_USAGE)
    assert b"unknown format 'tarball'" in p.stderr
    ctl.run("import", "nobody", "mbox", src, expect=EX_NOUSER)
    ctl.run("index", "check", "hal")


def test_maildir_import_export_round_trip(ctl):
    ctl.add_user("ivy")
    src = ctl.path("src-maildir")
    # A Maildir++ tree as mutt/Dovecot/Courier leave it.
    layout = {
        "": [("cur", "1700000000.1.host,S=30:2,S", b"Subject: a\n\nseen\n"),
             ("cur", "1700000100.2.host:2,FRS", b"Subject: b\n\nflagged, answered\n"),
             ("new", "1700000200.3.host", b"Subject: c\n\nnew\n")],
        ".Lists.Debian": [("cur", "1700000300.4.host:2,T", b"Subject: d\n\ndeleted\n"),
                          ("cur", "1700000350.7.host:2,", b"Subject: g\n\nno flags\n")],
        ".Entw&APw-rfe": [("new", "1700000400.5.host", b"Subject: e\n\n\xc3\xa4\n"),
                          ("cur", "1700000500.6.host:2,DS", b"Subject: f\n\ndraft\n")],
    }
    for folder, files in layout.items():
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(src, folder, sub), exist_ok=True)
        if folder:
            open(os.path.join(src, folder, "maildirfolder"), "wb").close()
        for i, (sub, name, data) in enumerate(files):
            p = os.path.join(src, folder, sub, name)
            with open(p, "wb") as f:
                f.write(data)
            t = int(name.split(".")[0])
            os.utime(p, (t, t))
    # Things an importer must skip.
    with open(os.path.join(src, "cur", ".hidden"), "wb") as f:
        f.write(b"not a message")
    with open(os.path.join(src, "tmp", "1700000999.9.host"), "wb") as f:
        f.write(b"half written")
    with open(os.path.join(src, "dovecot-uidlist"), "wb") as f:
        f.write(b"3 V1 N4\n")
    chown_tree(src, ctl.uid, ctl.gid)

    r = ctl.json("import", "ivy", "maildir", src)
    assert r["messages"] == 7
    got = {m["name"]: m for m in r["mailboxes"]}
    assert got["INBOX"] == {"name": "INBOX", "messages": 3, "created": False}
    assert got["Lists/Debian"]["messages"] == 2 and got["Lists/Debian"]["created"] is True
    assert got["Entwürfe"]["messages"] == 2 and got["Entwürfe"]["created"] is True
    listing = {m["name"]: m for m in ctl.json("mailbox", "list", "ivy")["mailboxes"]}
    assert listing["INBOX"]["unseen"] == 1 and listing["Entwürfe"]["unseen"] == 1
    assert listing["Lists/Debian"]["unseen"] == 2

    dest = ctl.path("dest-maildir")
    r = ctl.json("export", "ivy", "maildir", dest)
    assert r["messages"] == 7
    for folder in layout:
        assert os.path.isdir(os.path.join(dest, folder, "tmp"))
        if folder:
            assert os.path.exists(os.path.join(dest, folder, "maildirfolder"))
        want = sorted((data, "".join(sorted(info_flags(name))), int(name.split(".")[0]))
                      for _, name, data in layout[folder])
        have = sorted((d, fl, mt) for d, fl, _, mt in maildir_messages(os.path.join(dest, folder)))
        assert have == want, f"folder {folder!r}"
    # Messages without flags are in new/, the others in cur/.
    for d, fl, sub, _ in maildir_messages(dest):
        assert (sub == "new") == (fl == "")
    # The default folders are there too, empty.
    for folder in (".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"):
        assert maildir_messages(os.path.join(dest, folder)) == []

    # The export is itself importable, by another user, with the same result.
    ctl.add_user("jon")
    chown_tree(dest, ctl.uid, ctl.gid)
    assert ctl.json("import", "jon", "maildir", dest)["messages"] == 7
    dest2 = ctl.path("dest2")
    ctl.run("export", "jon", "maildir", dest2)
    for folder in layout:
        a = [(d, fl, mt) for d, fl, _, mt in maildir_messages(os.path.join(dest, folder))]
        b = [(d, fl, mt) for d, fl, _, mt in maildir_messages(os.path.join(dest2, folder))]
        assert a == b

    # A target that is not empty is refused; a source that is no Maildir too.
    ctl.run("export", "ivy", "maildir", dest, expect=EX_CANTCREAT)
    ctl.run("import", "ivy", "maildir", ctl.path("missing"), expect=EX_NOINPUT)
    ctl.run("import", "ivy", "maildir", src, "-m", "X", expect=EX_USAGE)
    ctl.run("index", "check", "ivy")
    ctl.run("index", "check", "jon")


def run_on_terminal(ctl, args, answer):
    """Run ternctl with a pseudo-terminal as stdin and type answer once it
    asks. Returns (exit code, what it wrote to the terminal and stderr)."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen([ternctl_binary(), "-c", ctl.conf] + list(args), stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        slave = -1
        os.write(master, answer)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    for m in SANITIZER_MARKERS:
        assert m.encode() not in err, err.decode("utf-8", "replace")
    return p.returncode, out, err


def test_mailbox_delete_asks_on_a_terminal(ctl):
    ctl.add_user("kim")
    ctl.run("mailbox", "create", "kim", "Old")
    ctl.run("deliver", "kim", "-m", "Old", input=message("keep me"))
    rc, out, err = run_on_terminal(ctl, ["mailbox", "delete", "kim", "Old"], b"n\n")
    assert rc == EX_OK and b"[y/N]" in err and b"1 messages" in err
    assert b"kept mailbox Old" in out
    assert ctl.json("mailbox", "status", "kim", "Old")["messages"] == 1
    rc, out, err = run_on_terminal(ctl, ["mailbox", "delete", "kim", "Old"], b"yes\n")
    assert rc == EX_OK and b"deleted mailbox Old" in out
    ctl.run("mailbox", "status", "kim", "Old", expect=EX_NOINPUT)
