"""tern-imapd FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2): attributes,
ENVELOPE and BODYSTRUCTURE, sections and partials, BINARY (RFC 3516),
\\Seen, CONDSTORE/QRESYNC CHANGEDSINCE and VANISHED (RFC 7162),
EXPUNGEISSUED (RFC 5530), chunked output of large literals with bounded
memory, and syntax errors."""
import glob
import os
import re
import time

import pytest

from conftest import READ_TIMEOUT, vmrss_kib

USER, PASSWORD = "alice@example.org", "secret-pw"
MIME = os.path.join(os.path.dirname(__file__), "..", "data", "mime")

SIMPLE_MSG = (b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: hi\r\n"
              b"X-Long: one\r\n two\r\n\r\nbody line\r\nsecond\r\n")


def mime(name, ext):
    with open(os.path.join(MIME, f"{name}.{ext}"), "rb") as f:
        return f.read()


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


def crlf(data):
    """The CRLF view of stored bytes (LF -> CRLF, CR LF kept)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def stored(server, uid):
    """The bytes the store holds for uid in INBOX, as IMAP sends them."""
    for path in glob.glob(os.path.join(server.user_dir(USER), "Maildir", "*", "*")):
        if re.search(rf",U={uid}(:|,|$)", os.path.basename(path)):
            with open(path, "rb") as f:
                return crlf(f.read())
    raise AssertionError(f"no file for UID {uid}")


def message_file(server, uid):
    for path in glob.glob(os.path.join(server.user_dir(USER), "Maildir", "*", "*")):
        if re.search(rf",U={uid}(:|,|$)", os.path.basename(path)):
            return path
    raise AssertionError(f"no file for UID {uid}")


def read_exact(c, n, timeout=READ_TIMEOUT):
    deadline = time.monotonic() + timeout
    while len(c.buf) < n:
        data = c._recv(deadline)
        assert data, "EOF inside a literal"
        c.buf += data
    out = bytes(c.buf[:n])
    del c.buf[:n]
    return out


def read_response(c, tag, timeout=READ_TIMEOUT):
    """Responses up to the tagged one, each as bytes with its literals
    inline (exactly as sent, CRLF of each line removed at its end)."""
    out = []
    cur = b""
    while True:
        line = c.readline(timeout=timeout).encode("latin-1")
        cur += line
        m = re.search(rb"~?\{(\d+)\}$", line)
        if m:
            cur += b"\r\n" + read_exact(c, int(m.group(1)), timeout)
            continue
        out.append(cur)
        if cur.startswith(tag.encode() + b" "):
            return out
        cur = b""


def cmd(c, tag, line, timeout=READ_TIMEOUT):
    c.sendline(f"{tag} {line}")
    return read_response(c, tag, timeout)


def session(server, mailbox="INBOX", examine=False):
    c = server.login(USER, PASSWORD)
    r = cmd(c, "s", f"{'EXAMINE' if examine else 'SELECT'} {mailbox}")
    assert r[-1].startswith(b"s OK"), r
    return c


def lit(data):
    return b"{%d}\r\n" % len(data) + data


# ------------------------------------------------------------- attributes


def test_simple_attributes(server):
    server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    size = len(stored(server, 1))
    r = cmd(c, "a", "FETCH 1 (FLAGS UID RFC822.SIZE)")
    assert r == [b"* 1 FETCH (FLAGS () UID 1 RFC822.SIZE %d)" % size,
                 b"a OK FETCH completed"]
    r = cmd(c, "b", "FETCH 1 INTERNALDATE")
    assert re.fullmatch(rb'\* 1 FETCH \(INTERNALDATE "\d\d-[A-Z][a-z]{2}-\d{4} '
                        rb'\d\d:\d\d:\d\d \+0000"\)', r[0]), r
    r = cmd(c, "c", "FETCH 1 SAVEDATE")
    assert re.fullmatch(rb'\* 1 FETCH \(SAVEDATE "[^"]+"\)', r[0]), r
    # UID FETCH always carries the UID, first.
    r = cmd(c, "d", "UID FETCH 1 FLAGS")
    assert r == [b"* 1 FETCH (UID 1 FLAGS ())", b"d OK UID FETCH completed"]
    # Case does not matter.
    r = cmd(c, "e", "fetch 1 (uid flags)")
    assert r[0] == b"* 1 FETCH (UID 1 FLAGS ())"


def test_macros(server):
    server.deliver(USER, mime("simple", "eml"))
    c = session(server)
    env = mime("simple", "envelope").strip()
    body = mime("simple", "body").strip()
    size = len(stored(server, 1))
    fast = cmd(c, "a", "FETCH 1 FAST")[0]
    m = re.fullmatch(rb'\* 1 FETCH \(FLAGS \(\) INTERNALDATE ("[^"]+") RFC822.SIZE (\d+)\)',
                     fast)
    assert m and int(m.group(2)) == size, fast
    date = m.group(1)
    assert cmd(c, "b", "FETCH 1 ALL")[0] == \
        b"* 1 FETCH (FLAGS () INTERNALDATE %s RFC822.SIZE %d ENVELOPE %s)" % (date, size, env)
    assert cmd(c, "c", "FETCH 1 FULL")[0] == \
        b"* 1 FETCH (FLAGS () INTERNALDATE %s RFC822.SIZE %d ENVELOPE %s BODY %s)" % (
            date, size, env, body)


@pytest.mark.parametrize("name", ["simple", "mixed-attach"])
def test_envelope_bodystructure(server, name):
    server.deliver(USER, mime(name, "eml"))
    c = session(server)
    env = mime(name, "envelope").strip()
    bs = mime(name, "bodystructure").strip()
    body = mime(name, "body").strip()
    r = cmd(c, "a", "FETCH 1 (ENVELOPE BODYSTRUCTURE BODY)")
    assert r == [b"* 1 FETCH (ENVELOPE %s BODYSTRUCTURE %s BODY %s)" % (env, bs, body),
                 b"a OK FETCH completed"]


def test_modseq_enables_condstore(server):
    server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    r = cmd(c, "a", "FETCH 1 (MODSEQ)")
    m = re.fullmatch(rb"\* 1 FETCH \(MODSEQ \((\d+)\)\)", r[0])
    assert m and int(m.group(1)) > 0, r
    # CONDSTORE is on now: FLAGS come with MODSEQ.
    r = cmd(c, "b", "FETCH 1 FLAGS")
    assert r[0] == b"* 1 FETCH (FLAGS () MODSEQ (%s))" % m.group(1)


# ---------------------------------------------------------------- sections


def test_sections_exact_bytes(server):
    server.deliver(USER, mime("mixed-attach", "eml"))
    c = session(server)
    full = stored(server, 1)
    hdr_end = full.index(b"\r\n\r\n") + 4
    header, text = full[:hdr_end], full[hdr_end:]
    checks = [
        ("BODY.PEEK[]", b"BODY[]", full),
        ("BODY.PEEK[HEADER]", b"BODY[HEADER]", header),
        ("BODY.PEEK[TEXT]", b"BODY[TEXT]", text),
        ("RFC822.HEADER", b"RFC822.HEADER", header),
        ("BODY.PEEK[1]", b"BODY[1]", b"caf\xe9 au lait\r\nsecond line\r\n"),
        ("BODY.PEEK[1.MIME]", b"BODY[1.MIME]",
         b"Content-Type: text/plain; charset=ISO-8859-1\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n\r\n"),
        ("BODY.PEEK[2]", b"BODY[2]", b"JVBERi0x\r\nLjQK"),
        ("BODY.PEEK[]<0.10>", b"BODY[]<0>", full[:10]),
        ("BODY.PEEK[]<5.7>", b"BODY[]<5>", full[5:12]),
        ("BODY.PEEK[TEXT]<3.100000>", b"BODY[TEXT]<3>", text[3:]),
    ]
    for i, (item, name, want) in enumerate(checks):
        r = cmd(c, f"t{i}", f"FETCH 1 {item}")
        assert r == [b"* 1 FETCH (" + name + b" " + lit(want) + b")",
                     f"t{i} OK FETCH completed".encode()], item
    # Partial past the end, and parts that do not exist: empty strings.
    for i, (item, name) in enumerate([("BODY.PEEK[]<100000.5>", b"BODY[]<100000>"),
                                      ("BODY.PEEK[3]", b"BODY[3]"),
                                      ("BODY.PEEK[1.2.3]", b"BODY[1.2.3]"),
                                      ("BODY.PEEK[1.HEADER]", b"BODY[1.HEADER]")]):
        r = cmd(c, f"e{i}", f"FETCH 1 {item}")
        assert r == [b"* 1 FETCH (" + name + b' "")', f"e{i} OK FETCH completed".encode()]
    # Still unseen: every fetch above was a peek.
    assert cmd(c, "f", "FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())"


def test_nested_message_sections(server):
    server.deliver(USER, mime("nested-rfc822", "eml"))
    c = session(server)
    bs = cmd(c, "a", "FETCH 1 BODYSTRUCTURE")[0]
    assert bs == b"* 1 FETCH (BODYSTRUCTURE %s)" % mime("nested-rfc822", "bodystructure").strip()
    full = stored(server, 1)
    # The attached message's header: part 2 is message/rfc822.
    r = cmd(c, "b", "FETCH 1 BODY.PEEK[2.HEADER]")
    m = re.fullmatch(rb"\* 1 FETCH \(BODY\[2.HEADER\] \{(\d+)\}\r\n(.*)\)", r[0], re.S)
    assert m and len(m.group(2)) == int(m.group(1)), r
    assert m.group(2).endswith(b"\r\n\r\n") and m.group(2) in full


def test_header_fields(server):
    server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    r = cmd(c, "a", "FETCH 1 BODY.PEEK[HEADER.FIELDS (subject x-long Nope)]")
    want = b"Subject: hi\r\nX-Long: one\r\n two\r\n\r\n"
    assert r[0] == b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT X-LONG NOPE)] " + lit(want) + b")"
    r = cmd(c, "b", 'FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT ("Subject" X-Long)]')
    want = b"From: a@example.org\r\nTo: alice@example.org\r\n\r\n"
    assert r[0] == b"* 1 FETCH (BODY[HEADER.FIELDS.NOT (SUBJECT X-LONG)] " + lit(want) + b")"
    r = cmd(c, "c", "FETCH 1 BODY.PEEK[HEADER.FIELDS (From)]<2.5>")
    assert r[0] == b"* 1 FETCH (BODY[HEADER.FIELDS (FROM)]<2> " + lit(b"om: a") + b")"
    r = cmd(c, "d", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (Nope)])")
    assert r[0] == b"* 1 FETCH (BODY[HEADER.FIELDS (NOPE)] " + lit(b"\r\n") + b")"


def test_rfc822_items_and_seen(server):
    server.deliver(USER, SIMPLE_MSG)
    server.deliver(USER, SIMPLE_MSG)
    server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    full = stored(server, 1)
    text = full[full.index(b"\r\n\r\n") + 4:]
    # BODY.PEEK and RFC822.HEADER leave \Seen alone.
    cmd(c, "a", "FETCH 1 (BODY.PEEK[] RFC822.HEADER)")
    assert cmd(c, "b", "FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())"
    # BODY[] sets it and says so with FLAGS.
    r = cmd(c, "c", "FETCH 1 BODY[]")
    assert r == [b"* 1 FETCH (BODY[] " + lit(full) + b" FLAGS (\\Seen))", b"c OK FETCH completed"]
    # Asked for FLAGS: the new ones, given once.
    r = cmd(c, "d", "FETCH 2 (FLAGS RFC822.TEXT)")
    assert r == [b"* 2 FETCH (FLAGS (\\Seen) RFC822.TEXT " + lit(text) + b")",
                 b"d OK FETCH completed"]
    # Already seen: no FLAGS added.
    r = cmd(c, "e", "FETCH 1 RFC822")
    assert r == [b"* 1 FETCH (RFC822 " + lit(full) + b")", b"e OK FETCH completed"]
    r = cmd(c, "f", "FETCH 1:3 FLAGS")
    assert r[:3] == [b"* 1 FETCH (FLAGS (\\Seen))", b"* 2 FETCH (FLAGS (\\Seen))",
                     b"* 3 FETCH (FLAGS ())"]
    # EXAMINE is read-only: BODY[] does not set \Seen.
    c2 = session(server, examine=True)
    r = cmd(c2, "g", "FETCH 3 BODY[]")
    assert r == [b"* 3 FETCH (BODY[] " + lit(full) + b")", b"g OK FETCH completed"]
    assert cmd(c2, "h", "FETCH 3 FLAGS")[0] == b"* 3 FETCH (FLAGS ())"


def test_nul_bytes_in_body(server):
    server.deliver(USER, b"Subject: n\r\n\r\na\0b\r\n")
    c = session(server)
    # BODY[] cannot carry NUL: 0x80 instead, as Dovecot; BINARY[] can.
    r = cmd(c, "a", "FETCH 1 (BODY.PEEK[TEXT] BINARY.PEEK[1] BINARY.SIZE[1])")
    assert r[0] == (b"* 1 FETCH (BODY[TEXT] {5}\r\na\x80b\r\n BINARY[1] ~{5}\r\na\0b\r\n"
                    b" BINARY.SIZE[1] 5)")


# ------------------------------------------------------------------ BINARY


def test_binary(server):
    server.deliver(USER, mime("mixed-attach", "eml"))
    qp = (b"Subject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
          b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
          b"caf=C3=A9 soft=\r\nbreak  \r\nx=3Dy=\r\n")
    server.deliver(USER, qp)
    server.deliver(USER, b"Subject: u\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n")
    c = session(server)
    r = cmd(c, "a", "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1] BINARY.PEEK[2]<1.3>)")
    assert r == [b"* 1 FETCH (BINARY[2] {9}\r\n%PDF-1.4\n BINARY.SIZE[2] 9"
                 b" BINARY[1] {27}\r\ncaf\xe9 au lait\r\nsecond line\r\n"
                 b" BINARY[2] {3}\r\nPDF)", b"a OK FETCH completed"]
    full = stored(server, 2)
    header = full[:full.index(b"\r\n\r\n") + 4]
    decoded = "café soft".encode() + b"break\r\nx=y"
    r = cmd(c, "b", "FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[])")
    assert r[0] == (b"* 2 FETCH (BINARY[1] " + lit(decoded) + b" BINARY.SIZE[1] %d" % len(decoded)
                    + b" BINARY[] " + lit(header + decoded) + b")")
    assert cmd(c, "c", "FETCH 2 FLAGS")[0] == b"* 2 FETCH (FLAGS ())"
    # BINARY (not PEEK) sets \Seen.
    r = cmd(c, "d", "FETCH 2 BINARY[1]")
    assert r[0] == b"* 2 FETCH (BINARY[1] " + lit(decoded) + b" FLAGS (\\Seen))"
    # An encoding it cannot undo.
    r = cmd(c, "e", "FETCH 3 BINARY.PEEK[1]")
    assert r == [b"e NO [UNKNOWN-CTE] Cannot decode the part's Content-Transfer-Encoding"]
    r = cmd(c, "f", "FETCH 3 BINARY.SIZE[1]")
    assert r[-1].startswith(b"f NO [UNKNOWN-CTE]")
    # A part that does not exist.
    r = cmd(c, "g", "FETCH 1 (BINARY.PEEK[7] BINARY.SIZE[7])")
    assert r[0] == b'* 1 FETCH (BINARY[7] "" BINARY.SIZE[7] 0)'


# ------------------------------------------------------------- CONDSTORE


def test_changedsince(server):
    for _ in range(3):
        server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    r = cmd(c, "a", "FETCH 1:* (MODSEQ)")
    mods = [int(re.search(rb"MODSEQ \((\d+)\)", x).group(1)) for x in r[:3]]
    high = max(mods)
    # Reading message 2 sets \Seen: a new modseq for it alone.
    cmd(c, "b", "FETCH 2 BODY[TEXT]")
    r = cmd(c, "c", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {high})")
    m = re.fullmatch(rb"\* 2 FETCH \(FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)", r[0])
    assert m and int(m.group(1)) > high and len(r) == 2, r
    assert r[-1] == b"c OK FETCH completed"
    r = cmd(c, "d", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {int(m.group(1))})")
    assert r == [b"d OK UID FETCH completed"]
    r = cmd(c, "e", "UID FETCH 1:* (UID) (CHANGEDSINCE 0)")
    assert len(r) == 4 and all(b"MODSEQ (" in x for x in r[:3]), r


def test_vanished_earlier(server):
    for _ in range(4):
        server.deliver(USER, SIMPLE_MSG)
    c = server.login(USER, PASSWORD)
    assert cmd(c, "q", "ENABLE QRESYNC")[-1].startswith(b"q OK")
    r = cmd(c, "s", "SELECT INBOX")
    high = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(r)).group(1))
    os.unlink(message_file(server, 2))
    os.unlink(message_file(server, 3))
    r = cmd(c, "n", "NOOP")
    assert b"* VANISHED 2:3" in r, r
    r = cmd(c, "a", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {high} VANISHED)")
    assert r == [b"* VANISHED (EARLIER) 2:3", b"a OK UID FETCH completed"]
    r = cmd(c, "b", f"UID FETCH 3:4 (FLAGS) (CHANGEDSINCE {high} VANISHED)")
    assert r == [b"* VANISHED (EARLIER) 3", b"b OK UID FETCH completed"]
    # VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE.
    assert cmd(c, "c", f"FETCH 1 (FLAGS) (CHANGEDSINCE {high} VANISHED)") == \
        [b"c BAD VANISHED only with UID FETCH"]
    assert cmd(c, "d", "UID FETCH 1 (FLAGS) (VANISHED)") == \
        [b"d BAD VANISHED needs CHANGEDSINCE"]
    c2 = session(server)
    assert cmd(c2, "e", "UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)") == \
        [b"e BAD VANISHED needs ENABLE QRESYNC first"]


# ------------------------------------------------------------- expunges


def test_expunged_elsewhere(server):
    server.deliver(USER, SIMPLE_MSG)
    server.deliver(USER, SIMPLE_MSG)
    server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    os.unlink(message_file(server, 2))
    # FETCH must not send EXPUNGE: message 2 stays, its data does not come.
    r = cmd(c, "a", "FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (Subject)])")
    hdr = lit(b"Subject: hi\r\n\r\n")
    assert r == [b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] " + hdr + b")",
                 b"* 3 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] " + hdr + b")",
                 b"a NO [EXPUNGEISSUED] Some messages were expunged"]
    r = cmd(c, "b", "FETCH 2 FLAGS")
    assert r == [b"b NO [EXPUNGEISSUED] Some messages were expunged"]
    # UID FETCH may tell the expunge.
    r = cmd(c, "c", "UID FETCH 2:3 UID")
    assert r == [b"* 3 FETCH (UID 3)", b"* 2 EXPUNGE",
                 b"c NO [EXPUNGEISSUED] Some messages were expunged"]
    r = cmd(c, "d", "FETCH 1:2 UID")
    assert r == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)", b"d OK FETCH completed"]


# -------------------------------------------------------- large and chunked


def big_message(size, seed=b"x"):
    line = (seed * 75)[:75] + b"\r\n"
    body = line * (size // len(line))
    return b"Subject: big\r\nFrom: b@example.org\r\n\r\n" + body


def test_large_message_whole(server):
    msg = big_message(5 * 1024 * 1024)
    server.deliver(USER, msg)
    c = session(server)
    full = stored(server, 1)
    assert full == msg
    r = cmd(c, "a", "FETCH 1 (UID BODY.PEEK[] RFC822.SIZE)", timeout=60)
    assert r == [b"* 1 FETCH (UID 1 BODY[] " + lit(full) + b" RFC822.SIZE %d)" % len(full),
                 b"a OK FETCH completed"]
    # A partial from the middle of it, spanning chunks.
    r = cmd(c, "b", "FETCH 1 BODY.PEEK[]<1000000.3000000>", timeout=60)
    assert r[0] == b"* 1 FETCH (BODY[]<1000000> " + lit(full[1000000:4000000]) + b")"


def test_slow_reader_bounded_memory(server, imapd, auth_env):
    d = imapd(measure_rss=True)
    n, size = 24, 1024 * 1024
    for i in range(n):
        d.deliver(USER, big_message(size, seed=b"%c" % (65 + i % 26)))
    c = d.login(USER, PASSWORD)
    cmd(c, "s", "SELECT INBOX")
    cmd(c, "w", "FETCH 1 BODY.PEEK[]")
    base = vmrss_kib(d.pid)
    c.sendline("a FETCH 1:* BODY.PEEK[]")
    peak = base
    got = 0
    deadline = time.monotonic() + 120
    # Read slowly, a little at a time, while the server must wait.
    while True:
        data = c._recv(deadline, 16384)
        assert data, "EOF"
        c.buf += data
        got += len(data)
        if got % (512 * 1024) < 16384:
            peak = max(peak, vmrss_kib(d.pid))
            time.sleep(0.01)
        if c.buf.endswith(b"a OK FETCH completed\r\n"):
            break
    total = n * (size + 40)
    assert got > total * 0.95
    # Parse and check every literal.
    for i in range(n):
        r = read_response_from(c, i + 1)
        assert r == big_message(size, seed=b"%c" % (65 + i % 26))
    assert peak - base < 12 * 1024, (base, peak)


def test_file_truncated_mid_literal(server):
    """A message file that shrinks while its literal is being sent: the
    announced size is still sent (padded), the command ends with NO."""
    msg = big_message(16 * 1024 * 1024)
    server.deliver(USER, msg)
    c = session(server)
    full = stored(server, 1)
    c.sendline("a FETCH 1 BODY.PEEK[]")
    line = c.readline().encode("latin-1")
    assert line == b"* 1 FETCH (BODY[] {%d}" % len(full)
    head = read_exact(c, 65536)
    with open(message_file(server, 1), "r+b") as f:
        f.truncate(1000)
    rest = read_exact(c, len(full) - len(head), timeout=60)
    data = head + rest
    assert data[:65536] == full[:65536]
    sent = len(data.rstrip(b" "))
    assert sent < len(full) and data[:sent] == full[:sent]
    r = read_response(c, "a")
    assert r[0] == b")" and len(r) == 2, r
    assert r[1].startswith(b"a NO [SERVERBUG] Some messages could not be read"), r
    assert "UID 1 became unreadable" in server.log()
    # The session is still in step.
    assert cmd(c, "b", "FETCH 1 UID")[-1] == b"b OK FETCH completed"


def read_response_from(c, seq):
    line_end = c.buf.index(b"\r\n")
    line = bytes(c.buf[:line_end])
    m = re.fullmatch(rb"\* %d FETCH \(BODY\[\] \{(\d+)\}" % seq, line)
    assert m, line[:200]
    size = int(m.group(1))
    start = line_end + 2
    data = bytes(c.buf[start:start + size])
    assert c.buf[start + size:start + size + 3] == b")\r\n"
    del c.buf[:start + size + 3]
    return data


def test_many_messages_chunked(server):
    for i in range(60):
        server.deliver(USER, b"Subject: m%d\r\n\r\n" % i + b"y" * 20000 + b"\r\n")
    c = session(server)
    r = cmd(c, "a", "FETCH 1:* (UID BODY.PEEK[TEXT])", timeout=60)
    assert len(r) == 61 and r[-1] == b"a OK FETCH completed"
    for i, x in enumerate(r[:60]):
        assert x == b"* %d FETCH (UID %d BODY[TEXT] " % (i + 1, i + 1) + \
            lit(b"y" * 20000 + b"\r\n") + b")"


# ------------------------------------------------------------- bad syntax


BAD_CASES = [
    ("FETCH 1 (FLAGS BOGUS)", "BAD Unknown fetch item"),
    ("FETCH 1 BODY[HEADER.FIELDS]", "BAD Invalid section"),
    ("FETCH 1 BODY[HEADER.FIELDS ()]", "BAD Invalid header field name"),
    ("FETCH 1 BODY[HEADER.FIELDS (a:b)]", "BAD Invalid header field name"),
    ("FETCH 1 BODY[0]", "BAD Invalid section part number"),
    ("FETCH 1 BODY[1.]", "BAD Invalid section"),
    ("FETCH 1 BODY[MIME]", "BAD Invalid section"),
    ("FETCH 1 BODY[TEXTX]", "BAD Invalid section"),
    ("FETCH 1 BODY[]<1>", "BAD Invalid partial"),
    ("FETCH 1 BODY[]<1.0>", "BAD Invalid partial"),
    ("FETCH 1 BODY[]<a.5>", "BAD Invalid partial"),
    ("FETCH 1 BODY[]<0.5>x", "BAD Invalid characters after section"),
    ("FETCH 1 BINARY[HEADER]", "BAD Invalid BINARY section"),
    ("FETCH 1 BINARY.SIZE[1]<0.5>", "BAD Invalid partial"),
    ("FETCH 1 (ALL)", "BAD Unknown fetch item"),
    ("FETCH 1 ()", "BAD Fetch items expected"),
    ("FETCH 1", "BAD FETCH takes a sequence set, items and modifiers"),
    ("FETCH 1 FLAGS (CHANGEDSINCE)", "BAD Invalid CHANGEDSINCE value"),
    ("FETCH 1 FLAGS (CHANGEDSINCE x)", "BAD Invalid CHANGEDSINCE value"),
    ("FETCH 1 FLAGS (BOGUS 1)", "BAD Unknown fetch modifier"),
    ("FETCH 1 FLAGS FLAGS", "BAD Invalid fetch modifiers"),
    ("FETCH 0 FLAGS", "BAD Invalid sequence set"),
    ("FETCH 5 FLAGS", "BAD Invalid message sequence number"),
    ("FETCH (1) FLAGS", "BAD Invalid sequence set"),
]


def test_bad_syntax(server):
    server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    # Fewer than 20 in one session: more BADs end it.
    for i, (line, reply) in enumerate(BAD_CASES):
        if i % 12 == 11:
            c = session(server)
        r = cmd(c, "x", line)
        assert r == [f"x {reply}".encode()], (line, r)
        # The session goes on.
        assert cmd(c, "y", "FETCH 1 UID") == [b"* 1 FETCH (UID 1)", b"y OK FETCH completed"]


def test_fetch_needs_selected(server):
    c = server.login(USER, PASSWORD)
    r = cmd(c, "a", "FETCH 1 FLAGS")
    assert r[-1].startswith(b"a BAD") or r[-1].startswith(b"a NO"), r


def test_uid_fetch_absent_uids(server):
    server.deliver(USER, SIMPLE_MSG)
    c = session(server)
    assert cmd(c, "a", "UID FETCH 5:9 FLAGS") == [b"a OK UID FETCH completed"]
    assert cmd(c, "b", "UID FETCH * UID") == [b"* 1 FETCH (UID 1)", b"b OK UID FETCH completed"]
