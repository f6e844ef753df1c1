"""
tern-lmtpd over real sockets (the unix socket and TCP), driven by
smtplib.LMTP and by raw lines: LHLO, pipelined transactions, recipients
with mixed outcomes, the stored bytes with their trace headers, shared
copies (hard links), BDAT, limits, bad commands, dot-stuffing and line
ends, +detail, local domains, quota, SMTPUTF8 and STARTTLS.

Messages are read back from the Maildir files (LF line ends, as stored)
and, where it matters that IMAP and POP3 will see them, through the index
with `ternctl mailbox status`.
"""

import json
import os
import re
import smtplib
import ssl

import pytest

from conftest import client_context

MSG = (b"From: Alice <alice@example.net>\n"
       b"To: Bob <bob@example.org>\n"
       b"Subject: test\n"
       b"Message-ID: <1@example.net>\n"
       b"\n"
       b"Hello.\n"
       b".leading dot\n"
       b"..two dots\n"
       b"The end.\n")


def wire(lf_bytes):
    """A message with LF line ends as DATA sends it: CRLF, dot-stuffed,
    with the terminating dot line."""
    lines = lf_bytes.split(b"\n")
    assert lines[-1] == b""
    out = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines[:-1])
    return out + b".\r\n"


def reply(c):
    """One reply, possibly multi-line: the list of its lines."""
    lines = []
    for _ in range(100):
        line = c.readline()
        lines.append(line)
        assert re.match(r"^\d{3}[ -]", line), f"not a reply line: {line!r}"
        if line[3] == " ":
            return lines
    raise AssertionError(f"endless reply: {lines}")


def one(c):
    r = reply(c)
    assert len(r) == 1, r
    return r[0]


def lhlo(c):
    c.sendline("LHLO mta.test.invalid")
    return reply(c)


def transaction(c, sender, rcpts, message_lf, params=""):
    """MAIL, RCPT..., DATA, message; returns (rcpt replies, data replies):
    one data reply per accepted recipient."""
    c.sendline(f"MAIL FROM:<{sender}>{params}")
    r = one(c)
    assert r.startswith("250 2.1.0"), r
    rcpt_replies = []
    for a in rcpts:
        c.sendline(f"RCPT TO:<{a}>")
        rcpt_replies.append(one(c))
    accepted = sum(1 for r in rcpt_replies if r.startswith("250"))
    c.sendline("DATA")
    r = one(c)
    if accepted == 0:
        return rcpt_replies, [r]
    assert r.startswith("354 "), r
    c.send(wire(message_lf))
    return rcpt_replies, [one(c) for _ in range(accepted)]


def split_trace(stored, sent):
    """(names of the prepended trace headers, their text) with the rest
    checked to be the sent message exactly."""
    assert stored.endswith(sent), f"stored message does not end with what was sent:\n{stored!r}"
    head = stored[:len(stored) - len(sent)]
    names = [ln.split(b":")[0].decode() for ln in head.split(b"\n") if ln and ln[:1] not in b" \t"]
    return names, head.decode()


def add_users(d, *names, **quota):
    for n in names:
        args = ["user", "add", n, "--password-stdin"]
        if "storage" in quota:
            args += ["--quota-storage", str(quota["storage"])]
        if "messages" in quota:
            args += ["--quota-messages", str(quota["messages"])]
        d.auth.ternctl(*args, password="secret-pw")


def status(d, user, mailbox="INBOX"):
    p = d.auth.ternctl("--json", "mailbox", "status", user, mailbox)
    return json.loads(p.stdout)


@pytest.fixture
def server(lmtpd):
    d = lmtpd()
    add_users(d, "alice", "bob@example.org")
    return d


# ----------------------------------------------------------- the basics


def test_greeting_and_lhlo_capabilities(server):
    c = server.client()
    try:
        assert lhlo(c) == ["250-lmtp.test.invalid", "250-PIPELINING", "250-ENHANCEDSTATUSCODES",
                           "250-8BITMIME", "250-SIZE 67108864", "250-CHUNKING",
                           "250-BINARYMIME", "250 SMTPUTF8"]
        c.sendline("QUIT")
        assert one(c) == "221 2.0.0 lmtp.test.invalid Bye"
        c.expect_eof()
    finally:
        c.close()


@pytest.mark.parametrize("unix", [True, False], ids=["unix", "tcp"])
def test_smtplib_delivery_is_stored_with_trace_headers(server, unix):
    s = server.smtplib(unix=unix)
    try:
        code, _ = s.ehlo("mta.test.invalid")     # LMTP's ehlo sends LHLO
        assert code == 250
        refused = s.sendmail("sender@example.net", ["alice@example.org"], MSG.replace(b"\n", b"\r\n"))
        assert refused == {}
        s.quit()
    finally:
        s.close()
    [stored] = server.messages("alice")
    names, head = split_trace(stored, MSG)
    assert names == ["Return-Path", "Delivered-To", "Received"]
    assert head.startswith("Return-Path: <sender@example.net>\nDelivered-To: alice@example.org\n")
    where = "local" if unix else "[127.0.0.1]"
    assert re.fullmatch(
        r"Received: from mta\.test\.invalid \(" + re.escape(where) + r"\)\n"
        r"\tby lmtp\.test\.invalid \(Tern\) with LMTP id \S+\n"
        r"\t\(envelope-from <sender@example\.net>\)\n"
        r"\tfor <alice@example\.org>; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n",
        head.split("\n", 2)[2]), head
    # The index knows it: IMAP and POP3 see it.
    st = status(server, "alice")
    assert st["messages"] == 1 and st["uidnext"] == 2


def test_rset_noop_vrfy_help_quit(server):
    c = server.client(unix=True)
    try:
        lhlo(c)
        c.sendline("NOOP")
        assert one(c) == "250 2.0.0 OK"
        c.sendline("VRFY alice")
        assert one(c).startswith("252 2.5.0 ")
        c.sendline("HELP")
        assert one(c).startswith("214 2.0.0 ")
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<alice@example.org>")
        assert one(c).startswith("250 ")
        c.sendline("RSET")
        assert one(c) == "250 2.0.0 OK"
        # The transaction is gone.
        c.sendline("DATA")
        assert one(c).startswith("503 5.5.1 ")
        c.sendline("RCPT TO:<alice@example.org>")
        assert one(c).startswith("503 5.5.1 ")
        c.sendline("QUIT")
        assert one(c).startswith("221 2.0.0 ")
        c.expect_eof()
    finally:
        c.close()
    assert server.messages("alice") == []


# ------------------------------------------------ several recipients


def test_recipients_with_mixed_outcomes_share_one_copy(lmtpd):
    d = lmtpd()
    add_users(d, "alice", "bob@example.org", "carol@example.org")
    add_users(d, "full@example.org", messages=1)
    c = d.client()
    try:
        lhlo(c)
        # Fill full@'s quota first.
        _, r = transaction(c, "s@example.net", ["full@example.org"], MSG)
        assert r[0].startswith("250 2.0.0 <full@example.org> ")
        rcpt, data = transaction(c, "s@example.net",
                                 ["alice@example.org", "nobody@example.org", "bob@example.org",
                                  "full@example.org", "carol@example.org"], MSG)
        assert rcpt[0] == "250 2.1.5 <alice@example.org> OK"
        assert rcpt[1] == "550 5.1.1 <nobody@example.org> User doesn't exist"
        assert rcpt[2] == "250 2.1.5 <bob@example.org> OK"
        assert rcpt[3] == "552 5.2.2 <full@example.org> Mailbox is full"
        assert rcpt[4] == "250 2.1.5 <carol@example.org> OK"
        assert [x.split()[:3] for x in data] == [
            ["250", "2.0.0", "<alice@example.org>"], ["250", "2.0.0", "<bob@example.org>"],
            ["250", "2.0.0", "<carol@example.org>"]]
    finally:
        c.close()
    files = [d.message_files(u)[0] for u in ("alice", "bob@example.org", "carol@example.org")]
    stats = [os.stat(f) for f in files]
    assert len({(s.st_dev, s.st_ino) for s in stats}) == 1, "recipients do not share one file"
    assert stats[0].st_nlink == 3
    stored = d.messages("alice")[0]
    names, head = split_trace(stored, MSG)
    # Shared bytes name no single recipient.
    assert names == ["Return-Path", "Received"]
    assert "for <" not in head and "Delivered-To" not in head
    assert len(d.messages("full@example.org")) == 1
    for u in ("alice", "bob@example.org", "carol@example.org"):
        assert status(d, u)["messages"] == 1


def test_many_recipients_and_the_limit(lmtpd):
    d = lmtpd(conf={"lmtp": {"max_recipients": "3"}})
    add_users(d, "alice", "bob@example.org")
    c = d.client()
    try:
        lhlo(c)
        # Pipelined: every RCPT at once, unknown ones mixed in.
        c.sendline("MAIL FROM:<s@example.net>")
        rcpts = ["alice@example.org", "x1@example.org", "bob@example.org", "alice",
                 "x2@example.org", "bob@example.org"]
        c.send("".join(f"RCPT TO:<{a}>\r\n" for a in rcpts) + "DATA\r\n")
        assert one(c).startswith("250 2.1.0")
        got = [one(c) for _ in rcpts]
        assert got[0].startswith("250 ") and got[1].startswith("550 5.1.1")
        assert got[2].startswith("250 ") and got[3].startswith("250 ")
        # The limit counts accepted recipients; past it, nothing is looked up.
        assert got[4] == got[5] == "452 4.5.3 Too many recipients"
        assert one(c).startswith("354 ")
        c.send(wire(MSG))
        data = [one(c) for _ in range(3)]
        assert [x.split()[2] for x in data] == ["<alice@example.org>", "<bob@example.org>",
                                               "<alice>"]
        assert all(x.startswith("250 2.0.0 ") for x in data)
        c.sendline("NOOP")
        assert one(c) == "250 2.0.0 OK"
    finally:
        c.close()
    # alice@example.org and <alice> are one user and mailbox: one copy.
    assert len(d.messages("alice")) == 1
    assert len(d.messages("bob@example.org")) == 1


def test_pipelined_transactions_in_one_write(server):
    c = server.client()
    try:
        lhlo(c)
        m2 = MSG.replace(b"Subject: test", b"Subject: second")
        c.send(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
               + wire(MSG)
               + b"MAIL FROM:<b@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
               b"RCPT TO:<alice@example.org>\r\nDATA\r\n"
               + wire(m2) + b"QUIT\r\n")
        got = [one(c) for _ in range(10)]
        assert [g[:3] for g in got] == ["250", "250", "354", "250",
                                        "250", "250", "250", "354", "250", "250"]
        assert one(c).startswith("221 ")
        c.expect_eof()
    finally:
        c.close()
    assert [m.endswith(x) for m, x in zip(server.messages("alice"), (MSG, m2))] == [True, True]
    assert server.messages("bob@example.org")[0].endswith(m2)


# ------------------------------------------------------------- quota


@pytest.mark.parametrize("tempfail", [False, True], ids=["permanent", "tempfail"])
def test_quota_exceeded_by_the_message(lmtpd, tempfail):
    d = lmtpd(conf={"lmtp": {"quota_full_tempfail": "yes" if tempfail else "no"}})
    add_users(d, "alice")
    add_users(d, "small@example.org", storage="2K")
    big = MSG + b"x" * 3000 + b"\n"
    c = d.client()
    try:
        lhlo(c)
        rcpt, data = transaction(c, "s@example.net", ["small@example.org", "alice@example.org"],
                                 big)
        assert rcpt[0].startswith("250 ") and rcpt[1].startswith("250 ")
        want = "452 4.2.2" if tempfail else "552 5.2.2"
        assert data[0] == f"{want} <small@example.org> Mailbox is full"
        assert data[1].startswith("250 2.0.0 <alice@example.org> ")
        # A SIZE= that cannot fit is refused at RCPT.
        c.sendline("MAIL FROM:<s@example.net> SIZE=5000")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<small@example.org>")
        assert one(c) == f"{want} <small@example.org> Mailbox is full"
        c.sendline("RSET")
        assert one(c).startswith("250 ")
        # A small message still fits.
        _, data = transaction(c, "s@example.net", ["small@example.org"], MSG)
        assert data[0].startswith("250 2.0.0 ")
    finally:
        c.close()
    assert d.messages("small@example.org") == [d.messages("small@example.org")[0]]
    assert len(d.messages("alice")) == 1


# ------------------------------------------------------------------ BDAT


def test_bdat_chunks_binarymime_and_last(server):
    body = (b"From: a@example.net\r\nSubject: binary\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n")
    binary = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n.\r\n..\r\nend\r\n"
    c = server.client(unix=True)
    try:
        lhlo(c)
        c.sendline("MAIL FROM:<s@example.net> BODY=BINARYMIME")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<alice@example.org>")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<bob@example.org>")
        assert one(c).startswith("250 ")
        # DATA is not for BINARYMIME.
        c.sendline("DATA")
        assert one(c).startswith("503 5.5.1 ")
        c.send(b"BDAT %d\r\n" % len(body) + body)
        assert one(c) == f"250 2.0.0 {len(body)} octets received"
        # A chunk and the next command in one write.
        c.send(b"BDAT %d\r\n" % len(binary) + binary + b"BDAT 0 LAST\r\n")
        assert one(c) == f"250 2.0.0 {len(body) + len(binary)} octets received"
        assert one(c).startswith("250 2.0.0 <alice@example.org> ")
        assert one(c).startswith("250 2.0.0 <bob@example.org> ")
        c.sendline("NOOP")
        assert one(c) == "250 2.0.0 OK"
    finally:
        c.close()
    stored = server.messages("alice")[0]
    # No dot-unstuffing in BDAT; CRLF stored as LF.
    assert split_trace(stored, (body + binary).replace(b"\r\n", b"\n"))[0] == \
        ["Return-Path", "Received"]


def test_bdat_refused_chunks_are_read_and_skipped(server):
    c = server.client()
    try:
        lhlo(c)
        # Without MAIL: 503, and the chunk's bytes are not commands.
        c.send(b"BDAT 6\r\nQUIT\r\nNOOP\r\n")
        assert one(c).startswith("503 5.5.1 ")
        assert one(c) == "250 2.0.0 OK"
        # No valid recipient.
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<nobody@example.org>")
        assert one(c).startswith("550 ")
        c.send(b"BDAT 4 LAST\r\nabcd")
        assert one(c).startswith("554 5.5.1 ")
        c.sendline("RSET")
        assert one(c).startswith("250 ")
        # A one-chunk message in one go.
        c.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\n"
               b"BDAT 12 LAST\r\nSubject: x\r\n")
        assert [one(c)[:3] for _ in range(3)] == ["250", "250", "250"]
    finally:
        c.close()
    assert server.messages("alice")[0].endswith(b"\nSubject: x\n")


# ---------------------------------------------------------------- limits


def test_size_limit_at_mail_and_during_data(lmtpd):
    d = lmtpd(conf={"lmtp": {"max_message_size": "4K"}})
    add_users(d, "alice", "bob@example.org")
    big = MSG + (b"y" * 70 + b"\n") * 100
    c = d.client()
    try:
        assert "250-SIZE 4096" in lhlo(c)
        c.sendline("MAIL FROM:<s@example.net> SIZE=4097")
        assert one(c) == "552 5.3.4 Message size exceeds fixed maximum message size"
        # Exceeded during DATA: the rest is read, every recipient refused.
        rcpt, data = transaction(c, "s@example.net", ["alice@example.org", "bob@example.org"],
                                 big + b"MAIL FROM:<evil@example.net>\n")
        assert data == ["552 5.3.4 <alice@example.org> Message too big for system",
                        "552 5.3.4 <bob@example.org> Message too big for system"]
        # And in BDAT.
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<alice@example.org>")
        assert one(c).startswith("250 ")
        c.send(b"BDAT 5000\r\n" + b"z" * 5000)
        assert one(c) == "552 5.3.4 Message too big for system"
        c.sendline("RSET")
        assert one(c).startswith("250 ")
        # The connection is still good.
        _, data = transaction(c, "s@example.net", ["alice@example.org"], MSG)
        assert data[0].startswith("250 2.0.0 ")
    finally:
        c.close()
    assert [m.endswith(MSG) for m in d.messages("alice")] == [True]
    assert d.messages("bob@example.org") == []


def test_long_lines(lmtpd):
    d = lmtpd(conf={"lmtp": {"max_line_length": "1K"}})
    add_users(d, "alice")
    long_data_line = b"d" * 200000
    c = d.client()
    try:
        lhlo(c)
        c.send(b"NOOP " + b"n" * 5000 + b"\r\n")
        assert one(c) == "500 5.5.2 Line too long"
        c.sendline("NOOP")
        assert one(c) == "250 2.0.0 OK"
        # Data lines have no such limit.
        msg = b"Subject: long\n\n" + long_data_line + b"\nend\n"
        _, data = transaction(c, "s@example.net", ["alice@example.org"], msg)
        assert data[0].startswith("250 2.0.0 ")
    finally:
        c.close()
    assert d.messages("alice")[0].endswith(msg)


def test_bad_commands_and_sequence_errors(server):
    c = server.client()
    try:
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c) == "503 5.5.1 Send LHLO first"
        c.sendline("HELO mta")
        assert one(c) == "500 5.5.1 This is LMTP: use LHLO"
        c.sendline("EHLO mta")
        assert one(c).startswith("500 5.5.1 ")
        c.sendline("LHLO")
        assert one(c).startswith("501 5.5.4 ")
        lhlo(c)
        cases = [
            ("XYZZY", "500 5.5.1 Unknown command"),
            ("RCPT TO:<alice@example.org>", "503 5.5.1 Send MAIL first"),
            ("DATA", "503 5.5.1 Send MAIL first"),
            ("MAIL FROM:s@example.net", "501 5.1.7 Bad sender address syntax"),
            ("MAIL FROM:<s@example.net", "501 5.1.7 Bad sender address syntax"),
            ("MAIL TO:<s@example.net>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("MAIL FROM:<s@example.net> FOO=BAR", "555 5.5.4 Unsupported parameter"),
            ("MAIL FROM:<s@example.net> SIZE=abc", "501 5.5.4 Bad SIZE parameter"),
            ("MAIL FROM:<s@example.net> BODY=9BIT", "501 5.5.4 Unknown BODY type"),
            ("MAIL FROM:<s@example.net> SIZE=1 SIZE=2", "501 5.5.4 Duplicate parameter"),
            ("RSET now", "501 5.5.4 No parameters allowed"),
            ("BDAT x", "501 5.5.4 Syntax: BDAT size [LAST]"),
            ("BDAT 99999999999999999999999", "501 5.5.4 Chunk size out of range"),
            ("STARTTLS", "502 5.5.1 STARTTLS not available"),
        ]
        for line, want in cases:
            c.sendline(line)
            assert one(c) == want, line
        c.send(b"NO\x00OP\r\n")
        assert one(c) == "500 5.5.2 NUL byte in command"
    finally:
        c.close()
    c = server.client()
    try:
        lhlo(c)
        c.sendline("MAIL FROM:<>")
        assert one(c) == "250 2.1.0 OK"
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c) == "503 5.5.1 Nested MAIL command"
        c.sendline("DATA")
        assert one(c) == "503 5.5.1 Send RCPT first"
        c.sendline("RCPT TO:<nobody@example.org>")
        assert one(c).startswith("550 ")
        c.sendline("DATA")
        assert one(c) == "554 5.5.1 No valid recipients"
        c.sendline("RCPT TO:alice@example.org")
        assert one(c) == "501 5.1.3 Bad recipient address syntax"
        c.sendline("RCPT TO:<alice@example.org> NOTIFY=NEVER")
        assert one(c) == "555 5.5.4 Unsupported parameter"
        c.sendline("NOOP")
        assert one(c) == "250 2.0.0 OK"
    finally:
        c.close()
    # Twenty errors end the session.
    c = server.client()
    try:
        c.send(b"XYZZY\r\n" * 25)
        for _ in range(20):
            assert one(c) == "500 5.5.1 Unknown command"
        assert one(c) == "421 4.7.0 lmtp.test.invalid Too many errors, closing connection"
        c.expect_eof()
    finally:
        c.close()


def test_hostile_recipient_addresses(server):
    """ROBUSTNESS 27: refused with 550 or 501, nothing created anywhere."""
    before = sorted(os.listdir(server.auth.mail_root))
    c = server.client()
    try:
        lhlo(c)
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        for a in ['""@example.org', '"../../x"@example.org', "a/b@example.org", "$(id)@x",
                  "../alice@example.org", "alice/../bob@example.org", "x" * 1000 + "@example.org",
                  "@example.org", "alice@", "alice@@example.org", "alice@example..org",
                  '"al\\"ice"@example.org', "<alice@example.org"]:
            c.sendline(f"RCPT TO:<{a}>")
            r = one(c)
            assert r[:3] in ("550", "501"), (a, r)
        c.sendline("NOOP")
        assert one(c) == "250 2.0.0 OK"
    finally:
        c.close()
    assert sorted(os.listdir(server.auth.mail_root)) == before


# --------------------------------------------------- dots and line ends


def test_dot_stuffing_and_bare_line_ends(server):
    c = server.client()
    try:
        lhlo(c)
        c.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        assert [one(c)[:3] for _ in range(3)] == ["250", "250", "354"]
        # Only CRLF.CRLF ends the data: "\n.\n", "\r\n.\n" and "\n.\r\n"
        # are data, and so is the "MAIL FROM" after them.
        data = (b"Subject: smuggle\r\n\r\n"
                b"a\n.\nMAIL FROM:<x@evil>\r\n"
                b"b\r\n.\nRCPT TO:<bob@example.org>\r\n"
                b"c\n.\r\nDATA\r\n"
                b"..stuffed\r\n"
                b".unstuffed\r\n"
                b"bare\rcr\r\n"
                b"...\r\n"
                b".\r\n")
        c.send(data)
        assert one(c).startswith("250 2.0.0 ")
        c.sendline("NOOP")
        assert one(c) == "250 2.0.0 OK"
    finally:
        c.close()
    [stored] = server.messages("alice")
    assert stored.endswith(b"Subject: smuggle\n\n"
                           b"a\n.\nMAIL FROM:<x@evil>\n"
                           b"b\n\nRCPT TO:<bob@example.org>\n"
                           b"c\n.\nDATA\n"
                           b".stuffed\n"
                           b"unstuffed\n"
                           b"bare\rcr\n"
                           b"..\n")
    assert server.messages("bob@example.org") == []


def test_empty_message(server):
    c = server.client()
    try:
        lhlo(c)
        c.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        assert [one(c)[:3] for _ in range(3)] == ["250", "250", "354"]
        c.send(b".\r\n")
        assert one(c).startswith("250 2.0.0 ")
    finally:
        c.close()
    names, _ = split_trace(server.messages("alice")[0], b"")
    assert names == ["Return-Path", "Delivered-To", "Received"]
    assert server.messages("alice")[0].startswith(b"Return-Path: <>\n")


# ------------------------------------------------------- who gets what


def test_detail_mailbox_and_local_domains(lmtpd):
    d = lmtpd()
    add_users(d, "alice", "bob@example.org", "dave+x@example.org")
    d.auth.ternctl("mailbox", "create", "alice", "work")
    c = d.client()
    try:
        lhlo(c)
        for rcpt, want in [
                ("alice+work@example.org", 250),   # local domain, detail folder
                ("alice+nope@example.org", 250),   # no such folder: INBOX
                ("ALICE+Work@Example.ORG", 250),   # folder names are exact: INBOX
                ("alice", 250),                    # bare name
                ("alice+work", 250),
                ("alice@other.example", 550),      # not a local domain
                ("bob@example.org", 250),          # full name
                ("bob+lists@example.org", 250),
                ("bob", 550),                      # bob has a domain
                ("dave+x@example.org", 250),       # the exact name wins
                ("dave@example.org", 550)]:
            rcpt_r, data = transaction(c, "s@example.net", [rcpt], MSG)
            assert rcpt_r[0].startswith(str(want)), (rcpt, rcpt_r)
            if want == 250:
                assert data[0].startswith("250 2.0.0 "), (rcpt, data)
            else:
                c.sendline("RSET")
                assert one(c).startswith("250 ")
    finally:
        c.close()
    assert len(d.messages("alice", "work")) == 2
    assert len(d.messages("alice")) == 3
    assert len(d.messages("bob@example.org")) == 2
    assert len(d.messages("dave+x@example.org")) == 1
    # The detail is in the headers as addressed.
    assert b"Delivered-To: alice+work@example.org\n" in d.messages("alice", "work")[0]


def test_detail_turned_off(lmtpd):
    d = lmtpd(conf={"lmtp": {"recipient_delimiter": "", "local_domains": ""}})
    add_users(d, "alice", "bob@example.org")
    d.auth.ternctl("mailbox", "create", "bob@example.org", "work")
    c = d.client()
    try:
        lhlo(c)
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        for rcpt, want in [("bob+work@example.org", "550"), ("alice@example.org", "550"),
                           ("alice", "250"), ("bob@example.org", "250")]:
            c.sendline(f"RCPT TO:<{rcpt}>")
            assert one(c).startswith(want), rcpt
    finally:
        c.close()


def test_save_to_detail_mailbox_off(lmtpd):
    d = lmtpd(conf={"lmtp": {"save_to_detail_mailbox": "no"}})
    add_users(d, "alice")
    d.auth.ternctl("mailbox", "create", "alice", "work")
    c = d.client()
    try:
        lhlo(c)
        _, data = transaction(c, "s@example.net", ["alice+work@example.org"], MSG)
        assert data[0].startswith("250 ")
    finally:
        c.close()
    assert len(d.messages("alice")) == 1 and d.messages("alice", "work") == []


def test_smtputf8(server):
    msg = "Subject: Grüße\n\nÜmläute ✓\n".encode()
    c = server.client()
    try:
        lhlo(c)
        c.sendline("MAIL FROM:<jörg@exämple.net>".encode())
        assert one(c) == "553 5.6.7 Non-ASCII address needs SMTPUTF8"
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<bjørn@example.org>".encode())
        assert one(c) == "553 5.6.7 Non-ASCII address needs SMTPUTF8"
        c.sendline("RSET")
        assert one(c).startswith("250 ")
        c.sendline("MAIL FROM:<jörg@exämple.net> SMTPUTF8 BODY=8BITMIME".encode())
        assert one(c) == "250 2.1.0 OK"
        c.sendline("RCPT TO:<bjørn@example.org>".encode())
        assert one(c).startswith("550 5.1.1 ")       # not a valid login name
        c.sendline("RCPT TO:<alice@example.org>")
        assert one(c).startswith("250 ")
        c.sendline("DATA")
        assert one(c).startswith("354 ")
        c.send(wire(msg))
        assert one(c).startswith("250 2.0.0 ")
    finally:
        c.close()
    stored = server.messages("alice")[0]
    assert stored.endswith(msg)
    assert "Return-Path: <jörg@exämple.net>\n".encode() in stored
    assert b" with UTF8LMTP id " in stored


def test_starttls(lmtpd):
    d = lmtpd(tls=True)
    add_users(d, "alice")
    c = d.client()
    try:
        assert "250-STARTTLS" in lhlo(c)
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        # Pipelined after STARTTLS: discarded.
        c.send(b"STARTTLS\r\nNOOP\r\n")
        assert one(c) == "220 2.0.0 Ready to start TLS"
        c.handshake(client_context(d.tls_trust))
        # A new session: LHLO again, no STARTTLS offered.
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c) == "503 5.5.1 Send LHLO first"
        assert "250-STARTTLS" not in lhlo(c)
        _, data = transaction(c, "s@example.net", ["alice@example.org"], MSG)
        assert data[0].startswith("250 2.0.0 ")
    finally:
        c.close()
    assert b" with LMTPS id " in d.messages("alice")[0]


def test_user_added_while_running_and_store_created(server):
    """The users database is read at each RCPT; a new user's Maildir is
    created by the first delivery if it is missing."""
    c = server.client()
    try:
        lhlo(c)
        c.sendline("MAIL FROM:<s@example.net>")
        assert one(c).startswith("250 ")
        c.sendline("RCPT TO:<erin@example.org>")
        assert one(c).startswith("550 ")
        add_users(server, "erin@example.org")
        import shutil
        shutil.rmtree(server.user_dir("erin@example.org"))
        c.sendline("RCPT TO:<erin@example.org>")
        assert one(c).startswith("250 ")
        c.sendline("DATA")
        assert one(c).startswith("354 ")
        c.send(wire(MSG))
        assert one(c).startswith("250 2.0.0 ")
    finally:
        c.close()
    assert len(server.messages("erin@example.org")) == 1
