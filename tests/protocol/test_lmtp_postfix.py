"""
A real Postfix delivering to tern-lmtpd (issue 7; shared/CLIENTS.md §13).

Postfix from Debian's package runs as a private instance (postfix.py): its
own configuration and queue in a temp directory, SMTP on a free loopback
port, and the virtual domain example.org handed over LMTP through
tern-lmtpd's Unix socket. The test sends through it with smtplib and with
swaks to two virtual users made with ternctl, waits (bounded) for Postfix
to log each delivery as sent, and compares what Tern stored with what was
sent: byte for byte after the trace headers that Postfix (Received) and
Tern (Return-Path, Delivered-To, Received) prepend (CLIENTS.md §2).

The messages are compared in the users' Maildir files, where Tern keeps
them with LF line ends, and then read back over IMAP from tern-imapd
(BODY.PEEK[] of every message): the same bytes, with CRLF line ends.

An unknown recipient is accepted by Postfix over SMTP (it does not know
Tern's users), refused by tern-lmtpd at RCPT with 550 5.1.1, and bounced:
the bounce goes back to the envelope sender, one of the users, through the
same LMTP path.

Postfix is stopped by its master's pid at the end, also when the test fails.
"""

import os
import re
import shutil
import smtplib
import subprocess

import pytest

import postfix
from conftest import free_port, install_file
from test_lmtp_durability import Lmtpd

PASSWORD = "postfix-pw-1"
DOMAIN = "example.org"
SENDER = f"alice@{DOMAIN}"

# The three test messages of CLIENTS.md §2 (LF line ends), each beginning
# with its own Message-ID line so that it can be found after the trace
# headers.
MESSAGES = {
    "plain": (
        b"Message-ID: <pf-plain@test.invalid>\n"
        b"From: Alice <alice@example.org>\n"
        b"To: Bob <bob@example.org>\n"
        b"Subject: plain US-ASCII\n"
        b"Date: Tue, 24 Nov 2026 10:00:00 +0000\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=us-ascii\n"
        b"\n"
        b"Hello Bob,\n"
        b"\n"
        b"a plain message.\n"),
    "8bit": (
        b"Message-ID: <pf-8bit@test.invalid>\n"
        b"From: Alice <alice@example.org>\n"
        b"To: Bob <bob@example.org>\n"
        b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n"
        b"Date: Tue, 24 Nov 2026 10:01:00 +0000\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n"
        + "Grüße aus Köln, 日本語も.\n".encode() +
        b".leading dot\n"
        b"..two dots\n"
        b".\n"
        b"From the beginning of a line\n"
        b">From already quoted\n"
        b"trailing spaces   \n"
        b"\n"),
    "multipart": (
        b"Message-ID: <pf-multipart@test.invalid>\n"
        b"From: Alice <alice@example.org>\n"
        b"To: Bob <bob@example.org>, Alice <alice@example.org>\n"
        b"Subject: an attachment\n"
        b"Date: Tue, 24 Nov 2026 10:02:00 +0000\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=\"b1\"\n"
        b"\n"
        b"This is a multi-part message in MIME format.\n"
        b"\n"
        b"--b1\n"
        b"Content-Type: text/plain; charset=us-ascii\n"
        b"\n"
        b"See the attachment.\n"
        b"\n"
        b"--b1\n"
        b"Content-Type: application/octet-stream; name=\"data.bin\"\n"
        b"Content-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename=\"data.bin\"\n"
        b"\n"
        b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n"
        b"MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n"
        b"--b1--\n"),
}


def msgid_line(msg):
    return msg.split(b"\n", 1)[0]


def stored_messages(maildir):
    """[bytes] of every message in INBOX (new/ and cur/)."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                out.append(f.read())
    return out


def inode_of(maildir, msg):
    first = msgid_line(msg) + b"\n"
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                if first in f.read():
                    return os.stat(os.path.join(d, name)).st_ino
    raise AssertionError(f"{first!r} not in {maildir}")


def find_stored(maildir, msg):
    """The stored copy of msg: (names of the prepended headers, the
    prepended block, the rest). Exactly one copy must exist."""
    first = msgid_line(msg) + b"\n"
    hits = [m for m in stored_messages(maildir) if first in m]
    assert len(hits) == 1, f"{first!r} stored {len(hits)} times in {maildir}"
    data = hits[0]
    i = data.find(first)
    block = data[:i]
    names = [ln.split(b":")[0].lower() for ln in block.split(b"\n")
             if ln and ln[:1] not in b" \t"]
    return names, block, data[i:]


def check_delivered(maildir, msg, queue_id, rcpt):
    """Byte-identical after the trace headers; the trace headers are
    Postfix's Received and Tern's Return-Path, Delivered-To (optional: a
    copy shared by several recipients may not name one) and Received."""
    names, block, rest = find_stored(maildir, msg)
    assert rest == msg, f"{msgid_line(msg)!r} changed on the way:\n{rest!r}\n!=\n{msg!r}"
    assert names.count(b"received") == 2 and names.count(b"return-path") == 1 \
        and names.count(b"delivered-to") <= 1 and len(names) <= 4, \
        f"prepended headers: {names}"
    assert re.search(rb"(?m)^Return-Path: <" + SENDER.encode() + b">$", block), block
    # Postfix's own Received names its queue id; Tern's comes before it.
    assert re.search(rb"by " + postfix.HOSTNAME.encode() + rb" \(Postfix\) with E?SMTP id "
                     + queue_id.encode(), block), block
    assert names[-1] == b"received" and names.index(b"received") < len(names) - 1
    dt = re.search(rb"(?m)^Delivered-To: (.*)$", block)
    if dt:
        assert dt.group(1).strip(b"<>") == rcpt.encode(), block


def smtp_send(port, rcpts, msg, sender=SENDER):
    """Send over SMTP; returns Postfix's queue id."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        s.ehlo("client.test.invalid")
        code, _ = s.mail(sender, ["BODY=8BITMIME"])
        assert code == 250
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, resp
        # smtplib dot-stuffs, but sends bytes with the line ends it gets.
        code, resp = s.data(msg.replace(b"\n", b"\r\n"))
        assert code == 250, resp
        s.quit()
    finally:
        s.close()
    m = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
    assert m, resp
    return m.group(1).decode()


@pytest.fixture
def pf():
    why = postfix.available()
    if why:
        pytest.skip(why)
    inst = postfix.Postfix("lmtp:unix:PLACEHOLDER")
    yield inst
    inst.stop()
    if os.environ.get("TERN_KEEP_TMP"):
        print(f"kept Postfix dir {inst.dir}")
    else:
        inst.cleanup()


def imap_readback(imapd, auth_env, users):
    """Every stored message of each user, read over IMAP, is the stored
    file with CRLF line ends."""
    d = imapd()
    for u in users:
        stored = sorted(stored_messages(os.path.join(auth_env.mail_root, u, "Maildir")))
        m = d.imaplib()
        m.login(u, PASSWORD)
        typ, _ = m.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        wire = [item[1] for item in data if isinstance(item, tuple)]
        assert all(b"\n" not in w.replace(b"\r\n", b"") for w in wire), "bare LF over IMAP"
        assert sorted(w.replace(b"\r\n", b"\n") for w in wire) == stored, u
        m.logout()


def test_postfix_delivers_over_lmtp_socket(workdir, auth_env, mail_user, pf, imapd):
    _, uid, gid = mail_user
    swaks = shutil.which("swaks")
    if not swaks:
        pytest.skip("swaks is missing: install Debian's swaks package (scripts/lib.sh)")
    os.makedirs(auth_env.mail_root, exist_ok=True)
    os.chown(auth_env.mail_root, uid, gid)
    users = ["alice", "bob"]
    for u in users:
        auth_env.add_user(u, PASSWORD)

    # The socket's directory must be reachable by Postfix's lmtp client
    # (user postfix): it lives in the instance's directory (0755), not in
    # the workdir (0750, the mail user's).
    sockdir = os.path.join(pf.dir, "lmtp")
    os.mkdir(sockdir, 0o755)
    os.chown(sockdir, uid, gid)
    sock = os.path.join(sockdir, "lmtp.sock")
    pf.transport = f"lmtp:unix:{sock}"
    lmtpd = Lmtpd(workdir, auth_env, auth_env.mail_root, uid, gid,
                  listen=f"unix:{sock}", lmtp={"local_domains": DOMAIN})
    lmtpd.start()
    try:
        smtp_port = free_port()
        pf.start(smtp_port)

        # smtplib: one message to alice, one to both (one LMTP
        # transaction with two recipients).
        q_plain = smtp_send(smtp_port, [f"alice@{DOMAIN}"], MESSAGES["plain"])
        q_8bit = smtp_send(smtp_port, [f"alice@{DOMAIN}", f"bob@{DOMAIN}"], MESSAGES["8bit"])
        # swaks: its --data file must not end in a newline, or it adds an
        # empty line (CLIENTS.md §11).
        nonl = os.path.join(pf.dir, "multipart.nonl")
        install_file(MESSAGES["multipart"][:-1], nonl, 0, 0, 0o644)
        r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(smtp_port),
                            "--from", SENDER, "--to", f"bob@{DOMAIN}",
                            "--helo", "client.test.invalid",
                            "--data", "@" + nonl],
                           capture_output=True, timeout=60)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        assert r.returncode == 0, f"swaks exit {r.returncode}:\n{out}"
        m = re.search(r"queued as ([0-9A-Za-z]+)", out)
        assert m, out
        q_multi = m.group(1)
        # An unknown user: accepted by Postfix, refused by Tern, bounced.
        q_bad = smtp_send(smtp_port, [f"nobody@{DOMAIN}"], MESSAGES["plain"].replace(
            b"<pf-plain@", b"<pf-unknown@"))

        for qid, rcpt in ((q_plain, "alice"), (q_8bit, "alice"), (q_8bit, "bob"),
                          (q_multi, "bob")):
            pf.wait_log(rf"{qid}: to=<{rcpt}@{DOMAIN}>, relay=\S+\[{re.escape(sock)}\].*"
                        r"dsn=2\.0\.0, status=sent \(250 ")
        m = pf.wait_log(rf"{q_bad}: to=<nobody@{DOMAIN}>, .*dsn=5\.1\.1, status=bounced "
                        r"\(.* said: (550 5\.1\.1 [^\n]*)\)")
        assert "RCPT TO" in m.group(1)
        # The bounce (from MAILER-DAEMON, envelope sender <>) reaches alice
        # through Tern as well.
        m = pf.wait_log(rf"{q_bad}: sender non-delivery notification: ([0-9A-Za-z]+)")
        q_dsn = m.group(1)
        pf.wait_log(rf"{q_dsn}: to=<alice@{DOMAIN}>, .*status=sent \(250 ")

        alice = os.path.join(auth_env.mail_root, "alice", "Maildir")
        bob = os.path.join(auth_env.mail_root, "bob", "Maildir")
        check_delivered(alice, MESSAGES["plain"], q_plain, f"alice@{DOMAIN}")
        check_delivered(alice, MESSAGES["8bit"], q_8bit, f"alice@{DOMAIN}")
        check_delivered(bob, MESSAGES["8bit"], q_8bit, f"bob@{DOMAIN}")
        check_delivered(bob, MESSAGES["multipart"], q_multi, f"bob@{DOMAIN}")
        # One LMTP transaction for both: one stored copy, hard-linked.
        assert inode_of(alice, MESSAGES["8bit"]) == inode_of(bob, MESSAGES["8bit"])
        bounces = [m for m in stored_messages(alice) if b"Subject: Undelivered Mail" in m]
        assert len(bounces) == 1, "no bounce for the unknown recipient in alice's INBOX"
        assert re.search(rb"(?m)^Return-Path: <>$", bounces[0])
        assert b"<nobody@example.org>" in bounces[0] and b"Status: 5.1.1" in bounces[0]
        assert len(stored_messages(alice)) == 3 and len(stored_messages(bob)) == 2
        assert "Mail queue is empty" in pf.queue_listing()
        imap_readback(imapd, auth_env, users)
    finally:
        pf.stop()
        lmtpd.stop()
    assert not lmtpd.sanitizer_reports(), lmtpd.sanitizer_reports()
    for u in users:
        p = auth_env.ternctl("index", "check", u, check=False)
        assert p.returncode == 0, p.stdout.decode(errors="replace")
