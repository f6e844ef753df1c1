"""Independent measurements with Python's own clients (smtplib.LMTP,
imaplib, poplib), to cross-check tern-bench's numbers on the same server and
workload. One connection at a time, every loop bounded in time and count.

Each function returns {"count", "errors", "elapsed_s", "per_s", "p50_ms",
"p99_ms"}; the counted unit is said in the function's docstring.
"""

import imaplib
import os
import poplib
import random
import smtplib
import time


def _result(lat, errors, elapsed):
    lat = sorted(lat)
    n = len(lat)
    return dict(count=n, errors=errors, elapsed_s=round(elapsed, 3),
                per_s=n / elapsed if elapsed > 0 else 0.0,
                p50_ms=1000 * lat[n // 2] if n else None,
                p99_ms=1000 * lat[min(n - 1, int(n * 0.99))] if n else None)


def lmtp_deliveries(host, port, messages, rcpts, duration, max_count=100000):
    """Messages delivered per second over one LMTP connection (a message
    counts once when accepted). messages: list of bytes with CRLF line ends,
    used in turn. One recipient only: smtplib.LMTP reads a single reply
    after DATA, where LMTP sends one per recipient."""
    if len(rcpts) != 1:
        raise ValueError("smtplib.LMTP handles one recipient per message")
    lat, errors = [], 0
    conn = smtplib.LMTP(host, port, timeout=30)
    try:
        conn.ehlo("bench.example.org")
        t0 = time.monotonic()
        end = t0 + duration
        i = 0
        while time.monotonic() < end and i < max_count:
            msg = messages[i % len(messages)]
            t = time.monotonic()
            try:
                refused = conn.sendmail("sender@example.com", rcpts, msg)
                if refused:
                    errors += 1
                else:
                    lat.append(time.monotonic() - t)
            except smtplib.SMTPException:
                errors += 1
                conn.rset()
            i += 1
        elapsed = time.monotonic() - t0
        conn.quit()
    finally:
        conn.close()
    return _result(lat, errors, elapsed)


def pop3_sessions(host, port, users, password, duration, max_count=100000):
    """POP3 sessions per second on one connection at a time: USER/PASS,
    STAT, RETR of every message, QUIT; also the bytes retrieved ("mb_per_s")."""
    lat, errors, nbytes = [], 0, 0
    t0 = time.monotonic()
    end = t0 + duration
    i = 0
    while time.monotonic() < end and i < max_count:
        user = users[i % len(users)]
        t = time.monotonic()
        try:
            p = poplib.POP3(host, port, timeout=30)
            try:
                p.user(user)
                p.pass_(password)
                count, _ = p.stat()
                for k in range(1, count + 1):
                    _, lines, octets = p.retr(k)
                    nbytes += octets
                p.quit()
            finally:
                p.close()
            lat.append(time.monotonic() - t)
        except (poplib.error_proto, OSError):
            errors += 1
        i += 1
    elapsed = time.monotonic() - t0
    r = _result(lat, errors, elapsed)
    r["mb_per_s"] = nbytes / 1048576 / elapsed if elapsed > 0 else 0.0
    return r


def imap_fetch_bodies(host, port, user, password, duration, seed=1,
                      max_count=1000000):
    """UID FETCH BODY.PEEK[] of a random message per second, one logged-in
    connection with INBOX selected."""
    rng = random.Random(seed)
    lat, errors = [], 0
    c = imaplib.IMAP4(host, port, timeout=30)
    try:
        c.login(user, password)
        typ, data = c.select("INBOX", readonly=True)
        typ, data = c.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        if not uids:
            raise RuntimeError("%s has no messages" % user)
        t0 = time.monotonic()
        end = t0 + duration
        i = 0
        while time.monotonic() < end and i < max_count:
            uid = uids[rng.randrange(len(uids))]
            t = time.monotonic()
            typ, data = c.uid("FETCH", uid, "(BODY.PEEK[])")
            if typ == "OK" and data and data[0]:
                lat.append(time.monotonic() - t)
            else:
                errors += 1
            i += 1
        elapsed = time.monotonic() - t0
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass
    return _result(lat, errors, elapsed)


def imap_sessions(host, port, users, password, duration, max_count=100000):
    """IMAP sessions per second, one at a time: LOGIN, SELECT INBOX,
    FETCH 1:* (FLAGS), LOGOUT."""
    lat, errors = [], 0
    t0 = time.monotonic()
    end = t0 + duration
    i = 0
    while time.monotonic() < end and i < max_count:
        user = users[i % len(users)]
        t = time.monotonic()
        try:
            c = imaplib.IMAP4(host, port, timeout=30)
            try:
                c.login(user, password)
                c.select("INBOX")
                c.fetch("1:*", "(FLAGS)")
                c.logout()
            finally:
                try:
                    c.shutdown()
                except OSError:
                    pass
            lat.append(time.monotonic() - t)
        except (imaplib.IMAP4.error, OSError):
            errors += 1
        i += 1
    elapsed = time.monotonic() - t0
    return _result(lat, errors, elapsed)


def load_messages(directory, limit=200):
    """The first `limit` messages of a corpus directory, with CRLF line ends
    (smtplib sends bytes as they are)."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".eml"))[:limit]
    out = []
    for n in names:
        with open(os.path.join(directory, n), "rb") as f:
            out.append(f.read().replace(b"\n", b"\r\n"))
    return out
