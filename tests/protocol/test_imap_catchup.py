"""tern-imapd's background catch-up (imapd/catchup.c): a Maildir migrated
in bulk is adopted with its index rows only, and the daemon then reads the
messages' structure and text in the background, so that SEARCH soon uses
the text index instead of reading every file."""
import os
import sqlite3
import time

USER, PASSWORD = "migrated@example.org", "secret-pw"
BULK = 400          # above the eager adoption limit of a sync (256)
CATCH_UP_TIMEOUT = 60


def pending(index_path):
    db = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM fts_pending").fetchone()[0]
    finally:
        db.close()


def test_migrated_maildir_is_indexed_in_the_background(imapd, auth_env, mail_user):
    _, uid, gid = mail_user
    auth_env.add_user(USER, PASSWORD)
    server = imapd()
    c = server.login(USER, PASSWORD)        # creates the user's Maildir
    c.cmd("z LOGOUT")
    maildir = os.path.join(server.user_dir(USER), "Maildir")
    quokka = []
    for i in range(BULK):
        name = f"{1700000000 + i}.M{i}P1.oldhost:2,S"
        body = "the quokka smiles" if i % 50 == 0 else "plain words only"
        path = os.path.join(maildir, "cur", name)
        with open(path, "w") as f:
            f.write(f"Subject: note {i}\n\n{body}\n")
        os.chown(path, uid, gid)
        if i % 50 == 0:
            quokka.append(path)

    c = server.login(USER, PASSWORD)
    lines = c.cmd("s SELECT INBOX")
    assert f"* {BULK} EXISTS" in lines, lines
    index = os.path.join(server.user_dir(USER), "index.sqlite")
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while pending(index) > 0:
        assert time.monotonic() < deadline, f"{pending(index)} messages still pending"
        time.sleep(0.2)
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=10)
    assert db.execute("SELECT count(*) FROM message_meta").fetchone()[0] == BULK
    db.close()

    # The text is the index's now: found even with the files emptied
    # behind the server's back (their names carry the flags and stay).
    for path in os.listdir(os.path.join(maildir, "cur")):
        full = os.path.join(maildir, "cur", path)
        with open(full) as f:
            text = f.read()
        if "quokka" in text:
            with open(full, "w") as f:
                f.write("Subject: emptied\n\n\n")
    lines = c.cmd('s UID SEARCH BODY "QUOKKA"')
    hits = lines[0].split()[2:]
    assert len(hits) == len(quokka), lines
    assert lines[-1].startswith("s OK"), lines
    c.cmd("z LOGOUT")
    assert "warning: catch-up" not in server.log_tail(), server.log_tail()


def test_lmtp_delivery_is_indexed_by_the_next_session(imapd, lmtpd, auth_env):
    """tern-lmtpd stores a message's structure but leaves its text for
    SEARCH pending; the next session has tern-imapd index it in the
    background (a search meanwhile reads the files: storage's unit
    tests)."""
    auth_env.add_user(USER, PASSWORD)
    server = imapd()
    c = server.login(USER, PASSWORD)        # creates the user's Maildir
    c.cmd("z LOGOUT")
    l = lmtpd()
    s = l.smtplib()
    s.ehlo("t")
    for i in range(3):
        body = "a wombat burrows" if i == 1 else "nothing to see"
        s.sendmail("x@example.org", [USER],
                   f"Subject: delivered {i}\r\n\r\n{body}\r\n".encode())
    s.quit()
    index = os.path.join(server.user_dir(USER), "index.sqlite")
    assert pending(index) == 3
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=10)
    assert db.execute("SELECT count(*) FROM message_meta").fetchone()[0] == 3
    db.close()

    c = server.login(USER, PASSWORD)
    lines = c.cmd("s SELECT INBOX")
    assert "* 3 EXISTS" in lines, lines
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while pending(index) > 0:
        assert time.monotonic() < deadline, f"{pending(index)} messages still pending"
        time.sleep(0.1)
    lines = c.cmd('s UID SEARCH BODY "WOMBAT"')
    assert lines[0] == "* SEARCH 2", lines
    c.cmd("z LOGOUT")
