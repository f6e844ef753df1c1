"""
Real POP3 clients from Debian's packages against tern-pop3d (issue 9).

fetchmail, getmail6 and curl download the mail of a virtual user (made
with `ternctl user add`, mail put in with `ternctl deliver`) over implicit
TLS (POP3S) and over STLS where the client has it (getmail6 has no STLS),
trusting only the test certificate. Every message must come back byte for
byte as it was stored, apart from the trace header a client is known to
add (shared/CLIENTS.md §2), and a run with "delete after download" must
leave INBOX empty (`ternctl mailbox status USER INBOX --json`). The
recipes are those of CLIENTS.md §3, §6 and §7.

The messages cover what a POP3 server can get wrong on the way out:
dot-stuffing (lines starting with "." and a line that is only "."), LF on
disk against CRLF on the wire, 8-bit UTF-8, a body line starting with
"From " (mbox quoting in getmail's Mboxrd), a long line, and a multipart
message with a 200 KB base64 attachment that takes many output chunks.

getmail's state files (read_all = false) and fetchmail's `uidl` show that
the UIDLs stay the same across sessions: a second run downloads nothing,
and after one more delivery exactly the new message.

Every client runs with a timeout; its files live in a private directory
(getmail delivers as `nobody`, which cannot enter the daemon's workdir).
"""

import base64
import json
import os
import random
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import run_ternctl

PASSWORD = "pop3-client-pw-1"
CLIENT_TIMEOUT = 60          # seconds for any one client run
# Debian's packages, installed by scripts/lib.sh (tern_install_deps).
CLIENTS = {"curl": "curl", "fetchmail": "fetchmail", "getmail": "getmail6"}


def _attachment_message():
    """multipart/mixed with a text part and a 150 KB binary attachment in
    base64 (76-character lines), deterministic."""
    rng = random.Random(9)
    blob = bytes(rng.randrange(256) for _ in range(150 * 1024))
    b64 = base64.encodebytes(blob)          # 76-char lines, LF
    return (
        b"From: Alice <alice@example.org>\n"
        b"To: Bob <bob@example.org>\n"
        b"Subject: multipart with an attachment\n"
        b"Date: Tue, 24 Nov 2026 10:02:00 +0000\n"
        b"Message-ID: <pop3c-multipart@test.invalid>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=\"=-b-1\"\n"
        b"\n"
        b"This is a multi-part message in MIME format.\n"
        b"\n"
        b"--=-b-1\n"
        b"Content-Type: text/plain; charset=us-ascii\n"
        b"\n"
        b"See the attachment.\n"
        b".\n"
        b"--=-b-1\n"
        b"Content-Type: application/octet-stream; name=\"data.bin\"\n"
        b"Content-Disposition: attachment; filename=\"data.bin\"\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n" + b64 +
        b"--=-b-1--\n")


# Stored with LF line ends, as on disk; each is found again after download
# by its Message-ID.
MESSAGES = [
    (b"From: Alice <alice@example.org>\n"
     b"To: Bob <bob@example.org>\n"
     b"Subject: plain US-ASCII\n"
     b"Date: Tue, 24 Nov 2026 10:00:00 +0000\n"
     b"Message-ID: <pop3c-plain@test.invalid>\n"
     b"MIME-Version: 1.0\n"
     b"Content-Type: text/plain; charset=us-ascii\n"
     b"\n"
     b"Hello Bob,\n"
     b"\n"
     b"a plain message, with a long line:\n"
     + b"x" * 990 + b"\n"
     b"-- \n"
     b"Alice\n"),
    ("From: Alice <alice@example.org>\n"
     "To: Bob <bob@example.org>\n"
     "Subject: =?UTF-8?Q?8-bit_=C3=BCber_dots?=\n"
     "Date: Tue, 24 Nov 2026 10:01:00 +0000\n"
     "Message-ID: <pop3c-8bit@test.invalid>\n"
     "MIME-Version: 1.0\n"
     "Content-Type: text/plain; charset=utf-8\n"
     "Content-Transfer-Encoding: 8bit\n"
     "\n"
     "Grüße aus Köln, 日本語のテキスト.\n"
     ".leading dot\n"
     "..two dots\n"
     ".\n"
     "..\n"
     "From the beginning of a line\n"
     ">From already quoted\n"
     "trailing spaces   \n"
     "\n"
     "the end\n").encode("utf-8"),
    _attachment_message(),
]

ADDED = (b"From: Alice <alice@example.org>\n"
         b"To: Bob <bob@example.org>\n"
         b"Subject: delivered between two runs\n"
         b"Date: Tue, 24 Nov 2026 10:03:00 +0000\n"
         b"Message-ID: <pop3c-added@test.invalid>\n"
         b"\n"
         b"From now on\n"
         b".\n")


# ------------------------------------------------------------- helpers


def message_id(data):
    m = re.search(rb"(?mi)^Message-ID: (<[^>]+>)", data)
    assert m, f"no Message-ID in {data[:200]!r}"
    return m.group(1)


def split_header_fields(head):
    """The header fields of a header block (LF, no final blank line), each
    with its continuation lines."""
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    return fields


def drop_fields(data, drop):
    """data (LF) without the header fields for which drop(field) is true;
    returns (rest, dropped fields)."""
    head, sep, body = data.partition(b"\n\n")
    kept, dropped = [], []
    for f in split_header_fields(head):
        (dropped if drop(f) else kept).append(f)
    return b"\n".join(kept) + sep + body, dropped


def mboxrd_messages(data):
    """The messages of an mboxrd file: split at "From " lines, drop the
    separator and the blank line before the next one, undo the quoting."""
    out = []
    for part in re.split(rb"(?m)^From [^\n]*\n", data)[1:]:
        assert part.endswith(b"\n\n"), f"mbox message without its blank line: {part[-40:]!r}"
        part = part[:-1]
        out.append(re.sub(rb"(?m)^>(>*From )", rb"\1", part))
    return out


def maildir_messages(path):
    """The files of a Maildir (new/ and cur/)."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
    return out


def by_message_id(msgs):
    d = {}
    for m in msgs:
        mid = message_id(m)
        assert mid not in d, f"{mid!r} downloaded twice"
        d[mid] = m
    return d


def assert_same(sent_list, got_list, drop=None, expect_dropped=None):
    """Each sent message came back exactly once and byte for byte, after
    CRLF -> LF and without the header fields a client adds: those for which
    drop(field) is true, and expect_dropped(those fields) must hold."""
    got = by_message_id([g.replace(b"\r\n", b"\n") for g in got_list])
    assert sorted(got) == sorted(message_id(s) for s in sent_list), \
        f"downloaded {sorted(got)}, stored {[message_id(s) for s in sent_list]}"
    for s in sent_list:
        g = got[message_id(s)]
        if drop is not None:
            g, dropped = drop_fields(g, drop)
            assert expect_dropped(dropped), f"unexpected added fields {dropped!r}"
        assert g == s, (f"{message_id(s)!r} differs: first difference at byte "
                        f"{next((i for i, (a, b) in enumerate(zip(g, s)) if a != b), min(len(g), len(s)))}"
                        f" (got {len(g)} bytes, stored {len(s)})")


def run_client(argv, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(argv, capture_output=True, env=e, cwd=cwd, timeout=CLIENT_TIMEOUT)
    return p


def describe(p):
    return (f"{p.args[0]} exit {p.returncode}\nstdout:\n"
            f"{p.stdout.decode(errors='replace')[-3000:]}\nstderr:\n"
            f"{p.stderr.decode(errors='replace')[-3000:]}")


# ------------------------------------------------------------- fixtures


class Mailbox:
    """A virtual user with the test messages in INBOX, and the daemon."""

    def __init__(self, auth_env, daemon, user):
        self.auth = auth_env
        self.daemon = daemon
        self.user = user
        self.password = PASSWORD
        self.stored = []

    def deliver(self, msg):
        self.daemon.deliver(self.user, msg)
        self.stored.append(msg)

    def status(self):
        p = run_ternctl(self.auth.ctl_config(), "mailbox", "status", self.user,
                        "INBOX", "--json", input="")
        assert p.returncode == 0, f"ternctl mailbox status: {p.returncode} {p.stderr!r}"
        return json.loads(p.stdout)

    def files(self):
        return maildir_messages(os.path.join(self.auth.mail_root, self.user, "Maildir"))


@pytest.fixture(autouse=True)
def clients_installed():
    missing = [pkg for prog, pkg in CLIENTS.items() if shutil.which(prog) is None]
    if missing:
        pytest.fail(f"missing Debian packages {missing}: scripts/test installs them "
                    f"(scripts/lib.sh); or apt-get install {' '.join(missing)}")


@pytest.fixture
def clientdir():
    """Where the clients write: world-searchable, since getmail delivers
    as nobody."""
    d = tempfile.mkdtemp(prefix="tern-pop3c-")
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("TERN_KEEP_TMP"):
        print(f"kept client dir {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def mailbox(pop3d, auth_env, certs):
    """tern-pop3d with POP3 (STLS) and POP3S listeners, and a user "carol"
    whose INBOX holds MESSAGES."""
    auth_env.add_user("carol", PASSWORD)
    d = pop3d()
    mb = Mailbox(auth_env, d, "carol")
    for m in MESSAGES:
        mb.deliver(m)
    # What the server keeps is what was delivered (LF on disk).
    assert sorted(mb.files()) == sorted(MESSAGES)
    assert mb.status()["messages"] == len(MESSAGES)
    mb.cert = certs[0].cert
    return mb


def assert_stls_sessions(mb, n):
    """The daemon's debug log shows n sessions that switched to TLS with
    STLS: evidence that the client used it, beyond its settings that
    demand it."""
    got = mb.daemon.log().count(" command STLS")
    assert got == n, f"{got} STLS commands in the log, expected {n}"


def assert_emptied(mb):
    st = mb.status()
    assert st["messages"] == 0, f"INBOX after delete: {st}"
    assert st["size"] == 0, f"INBOX after delete: {st}"
    assert mb.files() == [], "message files left in the Maildir"


# ----------------------------------------------------------------- curl


def curl(mb, *args):
    # -q: no ~/.curlrc. The test certificate is the only trust anchor.
    return run_client(["curl", "-q", "-sS", "--cacert", mb.cert,
                       "-u", f"{mb.user}:{mb.password}", *args])


def curl_fetch_all(mb, base, outdir, extra=()):
    """LIST, then RETR of every message; returns the downloaded bytes."""
    p = curl(mb, *extra, base + "/")
    assert p.returncode == 0, describe(p)
    listing = [ln.split() for ln in p.stdout.decode().splitlines() if ln.strip()]
    assert [int(n) for n, _ in listing] == list(range(1, len(mb.stored) + 1)), listing
    got = []
    for n, size in listing:
        out = os.path.join(outdir, f"{n}.eml")
        p = curl(mb, *extra, f"{base}/{n}", "-o", out)
        assert p.returncode == 0, describe(p)
        with open(out, "rb") as f:
            data = f.read()
        # LIST gives the size on the wire: CRLF line ends, unstuffed.
        assert len(data) == int(size), f"message {n}: LIST {size}, RETR {len(data)} bytes"
        got.append(data)
    return got


def test_curl_pop3s_and_stls(mailbox, clientdir):
    mb = mailbox
    port, tls_port = mb.daemon.port, mb.daemon.tls_port
    for name, base, extra in (("pop3s", f"pop3s://127.0.0.1:{tls_port}", ()),
                              ("stls", f"pop3://127.0.0.1:{port}", ("--ssl-reqd",))):
        out = os.path.join(clientdir, name)
        os.mkdir(out)
        got = curl_fetch_all(mb, base, out, extra)
        # curl writes what came over the wire, CRLF and unstuffed: exactly
        # the stored message with CRLF line ends.
        assert got == [s.replace(b"\n", b"\r\n") for s in mb.stored]
    # The STLS pass: one LIST session and one per message.
    assert_stls_sessions(mb, 1 + len(mb.stored))

    # UIDL is stable between sessions and unique.
    uidls = []
    for _ in range(2):
        p = curl(mb, "-X", "UIDL", f"pop3s://127.0.0.1:{tls_port}/")
        assert p.returncode == 0, describe(p)
        uidls.append(p.stdout)
    assert uidls[0] == uidls[1]
    ids = [ln.split()[1] for ln in uidls[0].decode().splitlines() if ln.strip()]
    assert len(ids) == len(mb.stored) and len(set(ids)) == len(ids), uidls[0]

    # A wrong password: curl's "login denied".
    p = run_client(["curl", "-q", "-sS", "--cacert", mb.cert, "-u", f"{mb.user}:wrong",
                    f"pop3s://127.0.0.1:{tls_port}/"])
    assert p.returncode == 67, describe(p)

    # Delete after download: DELE 1 and QUIT, once per message, each in its
    # own session (message numbers start at 1 again after each expunge).
    for _ in mb.stored:
        p = curl(mb, "-X", "DELE", "-I", f"pop3s://127.0.0.1:{tls_port}/1")
        assert p.returncode == 0, describe(p)
    assert_emptied(mb)
    p = curl(mb, f"pop3s://127.0.0.1:{tls_port}/")
    # An empty LIST: curl prints only the line end before the ".".
    assert p.returncode == 0 and p.stdout.strip() == b"", describe(p)


# ------------------------------------------------------------ fetchmail


MDA = ("/usr/bin/python3 -c 'import sys,mailbox; "
       "mailbox.Maildir(sys.argv[1]).add(sys.stdin.buffer.read())' %s")


def fetchmail(mb, clientdir, port, tls, keep, uidl=False):
    """One fetchmail run into clientdir/Maildir; returns the process."""
    rc = os.path.join(clientdir, "fetchmailrc")
    maildir = os.path.join(clientdir, "Maildir")
    with open(rc, "w") as f:
        f.write("set no syslog\n"
                f"poll 127.0.0.1 service {port} protocol POP3 auth password"
                f"{' uidl' if uidl else ''}\n"
                f"  user \"{mb.user}\" there with password \"{mb.password}\" is \"root\" here\n"
                f"  {'ssl' if tls == 'implicit' else 'sslproto tls1.2+'} sslcertck "
                f"sslcommonname \"localhost\" sslcertfile \"{mb.cert}\"\n"
                # fetchall would fetch again what uidl knows as seen.
                f"  {'keep' if keep else 'fetchall'} no rewrite\n"
                f"  mda \"{MDA % maildir}\"\n")
    os.chmod(rc, 0o600)
    return run_client(["fetchmail", "-f", rc, "--nodetach"],
                      env={"FETCHMAILHOME": clientdir})


def fetchmail_received(fields):
    """fetchmail adds exactly one Received: header naming itself."""
    return (len(fields) == 1 and fields[0].lower().startswith(b"received:")
            and b"fetchmail" in fields[0] and b"POP3" in fields[0])


def is_received(f):
    return f.lower().startswith(b"received:")


def test_fetchmail_pop3s_keep(mailbox, clientdir):
    mb = mailbox
    p = fetchmail(mb, clientdir, mb.daemon.tls_port, "implicit", keep=True, uidl=True)
    assert p.returncode == 0, describe(p)
    got = maildir_messages(os.path.join(clientdir, "Maildir"))
    assert_same(mb.stored, got, is_received, fetchmail_received)
    assert mb.status()["messages"] == len(mb.stored)

    # With uidl, a second run knows every UIDL: "no new mail" (exit 1).
    p = fetchmail(mb, clientdir, mb.daemon.tls_port, "implicit", keep=True, uidl=True)
    assert p.returncode == 1, describe(p)
    assert len(maildir_messages(os.path.join(clientdir, "Maildir"))) == len(mb.stored)

    # One more delivery: the next run fetches exactly that one.
    mb.deliver(ADDED)
    p = fetchmail(mb, clientdir, mb.daemon.tls_port, "implicit", keep=True, uidl=True)
    assert p.returncode == 0, describe(p)
    got = maildir_messages(os.path.join(clientdir, "Maildir"))
    assert_same(mb.stored, got, is_received, fetchmail_received)


def test_fetchmail_stls_delete(mailbox, clientdir):
    mb = mailbox
    p = fetchmail(mb, clientdir, mb.daemon.port, "stls", keep=False)
    assert p.returncode == 0, describe(p)
    assert_stls_sessions(mb, 1)
    assert_same(mb.stored, maildir_messages(os.path.join(clientdir, "Maildir")),
                is_received, fetchmail_received)
    assert_emptied(mb)
    # Nothing left: "no mail" (exit 1).
    p = fetchmail(mb, clientdir, mb.daemon.port, "stls", keep=False)
    assert p.returncode == 1, describe(p)
    assert_stls_sessions(mb, 2)


# ------------------------------------------------------------- getmail6


def getmail(mb, clientdir, dest, delete, read_all):
    """One getmail run over POP3S (getmail6 has no STLS)."""
    rc = os.path.join(clientdir, "getmailrc")
    with open(rc, "w") as f:
        f.write("[retriever]\n"
                "type = SimplePOP3SSLRetriever\n"
                "server = 127.0.0.1\n"
                f"port = {mb.daemon.tls_port}\n"
                f"username = {mb.user}\n"
                f"password = {mb.password}\n"
                # Without ca_certs getmail checks no certificate at all.
                f"ca_certs = {mb.cert}\n"
                "\n[destination]\n" + dest +
                # As root getmail refuses to deliver unless told whom as.
                "user = nobody\n"
                "\n[options]\n"
                f"read_all = {'true' if read_all else 'false'}\n"
                f"delete = {'true' if delete else 'false'}\n"
                "delivered_to = false\n"
                "received = false\n"
                "verbose = 0\n")
    os.chmod(rc, 0o600)
    return run_client(["getmail", "--rcfile", rc, "--getmaildir", clientdir])


def getmail_return_path(f):
    return f.lower().startswith(b"return-path:")


def getmail_added(fields):
    """getmail writes the envelope sender as Return-Path; POP3 has none, so
    it is "<unknown>" (Delivered-To and Received are turned off)."""
    return fields == [b"Return-Path: <unknown>"]


def test_getmail_pop3s_keep_maildir(mailbox, clientdir):
    mb = mailbox
    md = os.path.join(clientdir, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub))
    subprocess.run(["chown", "-R", "nobody", md], check=True, timeout=30)
    dest = f"type = Maildir\npath = {md}/\n"
    p = getmail(mb, clientdir, dest, delete=False, read_all=False)
    assert p.returncode == 0, describe(p)
    assert_same(mb.stored, maildir_messages(md), getmail_return_path, getmail_added)
    assert mb.status()["messages"] == len(mb.stored)

    # getmail remembers the UIDLs it has seen: the same UIDLs in the next
    # session mean nothing new.
    p = getmail(mb, clientdir, dest, delete=False, read_all=False)
    assert p.returncode == 0, describe(p)
    assert len(maildir_messages(md)) == len(mb.stored)

    mb.deliver(ADDED)
    p = getmail(mb, clientdir, dest, delete=False, read_all=False)
    assert p.returncode == 0, describe(p)
    assert_same(mb.stored, maildir_messages(md), getmail_return_path, getmail_added)

    # A wrong password: getmail's exit 127, and nothing is delivered.
    saved = mb.password
    mb.password = "wrong"
    p = getmail(mb, clientdir, dest, delete=False, read_all=True)
    mb.password = saved
    assert p.returncode == 127, describe(p)
    assert len(maildir_messages(md)) == len(mb.stored)


def test_getmail_pop3s_delete_mboxrd(mailbox, clientdir):
    mb = mailbox
    mbox = os.path.join(clientdir, "inbox.mbox")
    open(mbox, "wb").close()
    subprocess.run(["chown", "nobody", mbox], check=True, timeout=30)
    p = getmail(mb, clientdir, f"type = Mboxrd\npath = {mbox}\n",
                delete=True, read_all=True)
    assert p.returncode == 0, describe(p)
    with open(mbox, "rb") as f:
        data = f.read()
    # The body's "From " line is quoted in the file, and unquoted again.
    assert b"\n>From the beginning" in data and b"\n>>From already quoted" in data
    assert_same(mb.stored, mboxrd_messages(data), getmail_return_path, getmail_added)
    assert_emptied(mb)
