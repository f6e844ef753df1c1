"""
Real IMAP clients from Debian's packages against tern-imapd (issue 8).

curl, fetchmail, mbsync (isync) and offlineimap3 work with the mail of a
virtual user (made with `ternctl user add`, mail put in with `ternctl
deliver`) over implicit TLS and STARTTLS, trusting only the test
certificate; the recipes are those of shared/CLIENTS.md §3, §4, §5, §7.

Downloads must be byte for byte what was stored, apart from the header a
client is known to add (X-TUID for mbsync, a Received line for
fetchmail). mbsync and offlineimap also sync back: a flag set in their
local Maildir, a message they add and (mbsync) a folder they create must
appear on the server, which is checked over IMAP with imaplib.

The messages are those of the POP3 client tests: LF on disk against CRLF
on the wire, 8-bit UTF-8, lines starting with "." and "From ", a long
line, and a multipart message with a 150 KB base64 attachment that takes
several output chunks.
"""

import imaplib
import os
import re
import shutil
import tempfile

import pytest

from conftest import client_context
from test_pop3_clients import (MESSAGES, PASSWORD, assert_same, describe, drop_fields,
                               maildir_messages, message_id, run_client)

CLIENTS = {"curl": "curl", "fetchmail": "fetchmail", "mbsync": "isync",
           "offlineimap": "offlineimap3"}
USER = "dave"


@pytest.fixture(autouse=True)
def clients_installed():
    missing = [pkg for prog, pkg in CLIENTS.items() if shutil.which(prog) is None]
    if missing:
        pytest.fail(f"missing Debian packages {missing}: scripts/test installs them "
                    f"(scripts/lib.sh); or apt-get install {' '.join(missing)}")


@pytest.fixture
def clientdir():
    d = tempfile.mkdtemp(prefix="tern-imapc-")
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("TERN_KEEP_TMP"):
        print(f"kept client dir {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(imapd, auth_env, certs):
    """tern-imapd with IMAP (STARTTLS) and IMAPS listeners, and a user whose
    INBOX holds MESSAGES (stored with LF, as on disk)."""
    auth_env.add_user(USER, PASSWORD)
    d = imapd()
    for m in MESSAGES:
        d.deliver(USER, m)
    d.cert = certs[0].cert
    return d


def imap_session(server):
    """imaplib over implicit TLS, logged in."""
    m = imaplib.IMAP4_SSL("127.0.0.1", server.tls_port, timeout=30,
                          ssl_context=client_context([server.cert]))
    m.login(USER, PASSWORD)
    return m


def server_messages(server, mailbox="INBOX"):
    """{uid: (flags, bytes)} of a mailbox, read with BODY.PEEK[]."""
    m = imap_session(server)
    typ, _ = m.select(f'"{mailbox}"', readonly=True)
    assert typ == "OK"
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0].decode()
        uid = int(re.search(r"UID (\d+)", head).group(1))
        flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()
        out[uid] = (sorted(flags), item[1])
    m.logout()
    return out


def server_mailboxes(server):
    m = imap_session(server)
    typ, data = m.list()
    m.logout()
    assert typ == "OK"
    return [re.search(rb'"/" "?([^"]*)"?$', ln).group(1).decode() for ln in data]


# ----------------------------------------------------------------- curl


def curl(server, *args):
    return run_client(["curl", "-q", "-sS", "--cacert", server.cert,
                       "-u", f"{USER}:{PASSWORD}", *args])


@pytest.mark.parametrize("mode", ["imaps", "starttls"])
def test_curl(server, clientdir, mode):
    base = (f"imaps://127.0.0.1:{server.tls_port}" if mode == "imaps" else
            f"imap://127.0.0.1:{server.port}")
    extra = () if mode == "imaps" else ("--ssl-reqd",)
    p = curl(server, *extra, base + "/")
    assert p.returncode == 0, describe(p)
    assert "INBOX" in p.stdout.decode()
    p = curl(server, *extra, base + "/INBOX", "-X", "UID SEARCH ALL")
    assert p.returncode == 0, describe(p)
    assert p.stdout.decode().split() == ["*", "SEARCH", "1", "2", "3"]
    got = []
    for uid in (1, 2, 3):
        out = os.path.join(clientdir, f"{mode}-{uid}.eml")
        p = curl(server, *extra, f"{base}/INBOX;UID={uid}", "-o", out)
        assert p.returncode == 0, describe(p)
        with open(out, "rb") as f:
            data = f.read()
        assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
        got.append(data)
    assert_same(MESSAGES, got)
    # curl's fetch is BODY[]: the messages are \Seen now (CLIENTS.md §2).
    assert all(flags == ["\\Seen"] for flags, _ in server_messages(server).values())
    p = curl(server, *extra, base + "/INBOX", "-X", "UID STORE 2 +FLAGS (\\Flagged)")
    assert p.returncode == 0, describe(p)
    assert server_messages(server)[2][0] == ["\\Flagged", "\\Seen"]
    # APPEND a CRLF file into a new folder.
    p = curl(server, *extra, base + "/", "-X", "CREATE Uploads")
    assert p.returncode == 0, describe(p)
    upload = os.path.join(clientdir, f"{mode}-up.eml")
    with open(upload, "wb") as f:
        f.write(MESSAGES[1].replace(b"\n", b"\r\n"))
    p = curl(server, *extra, base + "/Uploads", "-T", upload)
    assert p.returncode == 0, describe(p)
    archived = server_messages(server, "Uploads")
    assert [v[1].replace(b"\r\n", b"\n") for v in archived.values()] == [MESSAGES[1]]
    # A UID that does not exist: curl's exit 78.
    p = curl(server, *extra, f"{base}/INBOX;UID=99", "-o", os.devnull)
    assert p.returncode == 78, describe(p)


# ------------------------------------------------------------ fetchmail


@pytest.mark.parametrize("mode", ["imaps", "starttls"])
def test_fetchmail(server, clientdir, mode):
    maildir = os.path.join(clientdir, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub))
    rc = os.path.join(clientdir, "fetchmailrc")
    tls = ("ssl sslcertck" if mode == "imaps" else "sslproto tls1.2+ sslcertck")
    port = server.tls_port if mode == "imaps" else server.port
    with open(rc, "w") as f:
        f.write(f"""set no syslog
poll 127.0.0.1 service {port} protocol IMAP auth password
  user "{USER}" there with password "{PASSWORD}" is "root" here
  {tls} sslcommonname "localhost" sslcertfile "{server.cert}"
  keep fetchall no rewrite
  mda "/usr/bin/python3 -c 'import sys,mailbox; mailbox.Maildir(sys.argv[1]).add(sys.stdin.buffer.read())' {maildir}"
""")
    os.chmod(rc, 0o600)
    p = run_client(["fetchmail", "-f", rc, "--nodetach"], env={"FETCHMAILHOME": clientdir})
    assert p.returncode == 0, describe(p)
    assert_same(MESSAGES, maildir_messages(maildir),
                drop=lambda f: f.startswith(b"Received: from 127.0.0.1") and
                b"fetchmail" in f,
                expect_dropped=lambda d: len(d) == 1)
    # fetchmail marks what it fetched \Seen (CLIENTS.md §2) and keeps it.
    msgs = server_messages(server)
    assert len(msgs) == 3 and all(flags == ["\\Seen"] for flags, _ in msgs.values())
    if mode == "starttls":
        assert server.log().count(" command STARTTLS") >= 1


# --------------------------------------------------------------- mbsync


def mbsync_run(server, clientdir):
    p = run_client(["mbsync", "-c", os.path.join(clientdir, "mbsyncrc"), "-a"])
    assert p.returncode == 0, describe(p)


@pytest.mark.parametrize("mode", ["imaps", "starttls"])
def test_mbsync_both_ways(server, clientdir, mode):
    mail = os.path.join(clientdir, "Mail")
    os.makedirs(mail)
    with open(os.path.join(clientdir, "mbsyncrc"), "w") as f:
        f.write(f"""IMAPAccount acct
Host localhost
Port {server.tls_port if mode == "imaps" else server.port}
User {USER}
Pass {PASSWORD}
SSLType {"IMAPS" if mode == "imaps" else "STARTTLS"}
CertificateFile {server.cert}
AuthMechs LOGIN

IMAPStore remote
Account acct

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
""")
    mbsync_run(server, clientdir)
    inbox = os.path.join(mail, "INBOX")
    tuid = lambda f: f.startswith(b"X-TUID: ")
    assert_same(MESSAGES, maildir_messages(inbox), drop=tuid,
                expect_dropped=lambda d: len(d) == 1)
    # Flags untouched by the download (BODY.PEEK).
    assert all(flags == [] for flags, _ in server_messages(server).values())

    # Push: a flag change, a new message, a new folder.
    first = next(n for n in os.listdir(os.path.join(inbox, "new"))
                 if message_id(open(os.path.join(inbox, "new", n), "rb").read()) ==
                 message_id(MESSAGES[0]))
    os.rename(os.path.join(inbox, "new", first),
              os.path.join(inbox, "cur", first.split(":")[0] + ":2,FS"))
    added = (b"From: Dave <dave@example.org>\nTo: Eve <eve@example.org>\n"
             b"Subject: written offline\nMessage-ID: <mbsync-added@test.invalid>\n\n"
             b"pushed by mbsync\n.\nFrom here\n")
    with open(os.path.join(inbox, "new", "1700000000.1_1.host"), "wb") as f:
        f.write(added)
    proj = os.path.join(mail, "Projects")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(proj, sub))
    with open(os.path.join(proj, "new", "1700000000.2_1.host"), "wb") as f:
        f.write(MESSAGES[0].replace(b"pop3c-plain", b"mbsync-project"))
    mbsync_run(server, clientdir)

    msgs = server_messages(server)
    assert msgs[1][0] == ["\\Flagged", "\\Seen"]
    assert len(msgs) == 4
    new_uid = max(msgs)
    body, dropped = drop_fields(msgs[new_uid][1].replace(b"\r\n", b"\n"), tuid)
    assert body == added and len(dropped) == 1
    assert "Projects" in server_mailboxes(server)
    assert len(server_messages(server, "Projects")) == 1
    # A third run finds nothing to do and changes nothing.
    mbsync_run(server, clientdir)
    assert server_messages(server) == msgs


# ---------------------------------------------------------- offlineimap


def offlineimap_run(clientdir):
    # Its own timeout below the harness's, so a hang still shows its IMAP
    # trace (-d imap) in the failure message.
    p = run_client(["timeout", "-k", "5", "45", "offlineimap", "-c",
                    os.path.join(clientdir, "offlineimaprc"), "-o", "-u", "basic",
                    "-d", "imap"])
    assert p.returncode == 0, describe(p)


@pytest.mark.parametrize("mode", ["imaps", "starttls"])
def test_offlineimap_both_ways(server, clientdir, mode):
    mail = os.path.join(clientdir, "Mail")
    os.makedirs(mail)
    tls = ("ssl = yes" if mode == "imaps" else "ssl = no\nstarttls = yes")
    with open(os.path.join(clientdir, "offlineimaprc"), "w") as f:
        f.write(f"""[general]
accounts = acct
metadata = {clientdir}/meta
maxsyncaccounts = 1

[Account acct]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {mail}
sep = /

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {server.tls_port if mode == "imaps" else server.port}
remoteuser = {USER}
remotepass = {PASSWORD}
{tls}
sslcacertfile = {server.cert}
""")
    offlineimap_run(clientdir)
    inbox = os.path.join(mail, "INBOX")
    assert_same(MESSAGES, maildir_messages(inbox))
    assert all(flags == [] for flags, _ in server_messages(server).values())

    name = next(n for n in os.listdir(os.path.join(inbox, "new"))
                if message_id(open(os.path.join(inbox, "new", n), "rb").read()) ==
                message_id(MESSAGES[2]))
    os.rename(os.path.join(inbox, "new", name),
              os.path.join(inbox, "cur", name.split(":")[0] + ":2,FS"))
    added = (b"From: Dave <dave@example.org>\nTo: Eve <eve@example.org>\n"
             b"Subject: written offline\nMessage-ID: <offlineimap-added@test.invalid>\n\n"
             b"pushed by offlineimap\n")
    with open(os.path.join(inbox, "new", "1700000000.3_1.host"), "wb") as f:
        f.write(added)
    offlineimap_run(clientdir)
    msgs = server_messages(server)
    assert msgs[3][0] == ["\\Flagged", "\\Seen"]
    assert len(msgs) == 4
    assert msgs[max(msgs)][1].replace(b"\r\n", b"\n") == added
