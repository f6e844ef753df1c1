"""tern-imapd SEARCH, SORT and THREAD (RFC 9051 §6.4.4, RFC 4731 ESEARCH,
RFC 5182 SEARCHRES, RFC 7162 MODSEQ, RFC 5032 WITHIN, RFC 8514 SAVEDATE,
RFC 5256 SORT/THREAD, RFC 5957 SORT=DISPLAY), and the i;unicode-casemap
comparator of RFC 5255 I18NLEVEL=1 (RFC 5051) for all three."""
import base64
import datetime
import os
import re

import pytest
from conftest import index_exec_as

USER, PASSWORD = "alice@example.org", "secret-pw"


def msg(headers, body):
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode() + b"\r\n" + body


# Five messages with known contents (UIDs 1..5 in INBOX).
M1 = msg([("From", "Alice Smith <alice@example.org>"), ("To", "bob@example.org"),
          ("Cc", "carol@example.org"), ("Subject", "Meeting tomorrow"),
          ("Date", "Mon, 1 Jan 2024 10:00:00 +0000"), ("Message-ID", "<m1@x>")],
         b"Let us meet at noon.\r\n")
M2 = msg([("From", "Bob Jones <bob@example.org>"), ("To", "alice@example.org"),
          ("Bcc", "dave@example.org"), ("Subject", "Re: Meeting tomorrow"),
          ("Date", "Tue, 2 Jan 2024 10:00:00 +0000"), ("Message-ID", "<m2@x>"),
          ("In-Reply-To", "<m1@x>"), ("References", "<m1@x>")],
         b"Sounds good.\r\n")
M3 = msg([("From", "Carol <carol@example.org>"), ("To", "zed@example.org"),
          ("Subject", "=?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?="),
          ("Date", "Wed, 3 Jan 2024 10:00:00 +0000"), ("Message-ID", "<m3@x>"),
          ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
          ("Content-Transfer-Encoding", "quoted-printable")],
         b"soft=\r\nbreak word na=C3=AFve\r\n")
M4 = msg([("From", "dave@example.org"), ("To", "alice@example.org"),
          ("Subject", "Report"), ("X-Custom", "hello-world"),
          ("Date", "Thu, 4 Jan 2024 10:00:00 +0000"), ("Message-ID", "<m4@x>"),
          ("MIME-Version", "1.0"), ("Content-Type", "text/plain"),
          ("Content-Transfer-Encoding", "base64")],
         base64.encodebytes(b"the secret password is swordfish\r\n").replace(b"\n", b"\r\n"))
M5 = msg([("From", "Erin <erin@example.org>"), ("To", "alice@example.org"),
          ("Subject", "Large"), ("Date", "Fri, 5 Jan 2024 10:00:00 +0000"),
          ("Message-ID", "<m5@x>")],
         b"x" * 5000 + b"\r\n")


@pytest.fixture
def server(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    return imapd()


@pytest.fixture
def box(server):
    """Five messages, selected; 2 is \\Seen \\Answered, 3 \\Flagged \\Deleted
    $Work, 4 \\Draft."""
    for m in (M1, M2, M3, M4, M5):
        server.deliver(USER, m)
    c = server.login(USER, PASSWORD)
    assert c.cmd("s SELECT INBOX")[-1].startswith("s OK")
    assert c.cmd("f1 STORE 2 +FLAGS.SILENT (\\Seen \\Answered)")[-1].startswith("f1 OK")
    assert c.cmd("f2 STORE 3 +FLAGS.SILENT (\\Flagged \\Deleted $Work)")[-1].startswith("f2 OK")
    assert c.cmd("f3 STORE 4 +FLAGS.SILENT (\\Draft)")[-1].startswith("f3 OK")
    return c


def search(c, criteria, tag="x", cmd="SEARCH"):
    """The numbers of the untagged SEARCH line, asserting OK."""
    lines = c.cmd(f"{tag} {cmd} {criteria}")
    assert lines[-1] == f"{tag} OK {cmd.split()[-1]} completed", lines
    found = [l for l in lines if l.startswith("* SEARCH")]
    assert len(found) == 1, lines
    return [int(x) for x in found[0].split()[2:]]


def untagged(lines, word):
    found = [l for l in lines if l.startswith(f"* {word}")]
    assert len(found) == 1, lines
    return found[0]


# ------------------------------------------------------------------ keys


KEY_CASES = [
    ("ALL", [1, 2, 3, 4, 5]),
    ("ANSWERED", [2]), ("UNANSWERED", [1, 3, 4, 5]),
    ("SEEN", [2]), ("UNSEEN", [1, 3, 4, 5]),
    ("FLAGGED", [3]), ("UNFLAGGED", [1, 2, 4, 5]),
    ("DELETED", [3]), ("UNDELETED", [1, 2, 4, 5]),
    ("DRAFT", [4]), ("UNDRAFT", [1, 2, 3, 5]),
    ("KEYWORD $Work", [3]), ("UNKEYWORD $work", [1, 2, 4, 5]),
    ("KEYWORD $Nothing", []), ("UNKEYWORD $Nothing", [1, 2, 3, 4, 5]),
    ("RECENT", []), ("NEW", []), ("OLD", [1, 2, 3, 4, 5]),
    ("FROM alice", [1]), ("FROM \"Bob Jones\"", [2]), ("FROM EXAMPLE.ORG", [1, 2, 3, 4, 5]),
    ("TO zed", [3]), ("CC carol", [1]), ("BCC dave", [2]),
    ("SUBJECT meeting", [1, 2]), ("SUBJECT \"re: meeting\"", [2]),
    ("SUBJECT caf", [3]),
    ("HEADER X-Custom hello", [4]), ("HEADER x-custom \"\"", [4]),
    ("HEADER Message-ID <m2@x>", [2]),
    ("BODY noon", [1]), ("BODY softbreak", [3]), ("BODY swordfish", [4]),
    ("BODY meeting", []), ("TEXT meeting", [1, 2]), ("TEXT swordfish", [4]),
    ("TEXT nosuchthing", []),
    ("LARGER 4000", [5]), ("SMALLER 4000", [1, 2, 3, 4]), ("LARGER 100000", []),
    ("SENTBEFORE 3-Jan-2024", [1, 2]), ("SENTON 3-Jan-2024", [3]),
    ("SENTSINCE 3-Jan-2024", [3, 4, 5]), ("SENTON \"4-Jan-2024\"", [4]),
    ("SENTSINCE 01-jan-2024 SENTBEFORE 02-JAN-2024", [1]),
    ("NOT SEEN", [1, 3, 4, 5]), ("NOT NOT SEEN", [2]),
    ("OR SEEN FLAGGED", [2, 3]), ("OR OR SEEN FLAGGED DRAFT", [2, 3, 4]),
    ("OR SEEN OR FLAGGED DRAFT", [2, 3, 4]),
    ("(SEEN ANSWERED)", [2]), ("NOT (OR SEEN (FLAGGED DELETED))", [1, 4, 5]),
    ("SUBJECT meeting NOT FROM bob", [1]),
    ("OR (FROM alice SUBJECT meeting) (LARGER 4000)", [1, 5]),
    ("2:4", [2, 3, 4]), ("1,3,5", [1, 3, 5]), ("*", [5]), ("4:*", [4, 5]),
    ("5:3", [3, 4, 5]), ("NOT 1:3", [4, 5]),
    ("UID 2:3", [2, 3]), ("UID 4:*", [4, 5]), ("UID 100:*", [5]), ("UID 50:60", []),
    ("SAVEDATESUPPORTED", [1, 2, 3, 4, 5]),
    ("OLDER 3600", []), ("YOUNGER 3600", [1, 2, 3, 4, 5]),
    ("MODSEQ 1 UID 1", [1]),
]


def test_search_keys(box):
    """Every key, once each, against one mailbox."""
    for criteria, expected in KEY_CASES:
        lines = box.cmd(f"x SEARCH {criteria}")
        assert lines[-1] == "x OK SEARCH completed", (criteria, lines)
        line = untagged(lines, "SEARCH")
        got = [int(x) for x in re.sub(r" \(MODSEQ \d+\)$", "", line).split()[2:]]
        assert got == expected, criteria


def test_internal_dates(box):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    d = lambda day: f"{day.day}-{day.strftime('%b')}-{day.year}"
    tomorrow = today + datetime.timedelta(days=1)
    assert search(box, f"ON {d(today)}") == [1, 2, 3, 4, 5]
    assert search(box, f"SINCE {d(today)}") == [1, 2, 3, 4, 5]
    assert search(box, f"BEFORE {d(today)}") == []
    assert search(box, f"BEFORE {d(tomorrow)}") == [1, 2, 3, 4, 5]
    assert search(box, f"SINCE {d(tomorrow)}") == []
    assert search(box, f"SAVEDON {d(today)}") == [1, 2, 3, 4, 5]
    assert search(box, f"SAVEDSINCE {d(tomorrow)}") == []
    assert search(box, f"SAVEDBEFORE {d(tomorrow)}") == [1, 2, 3, 4, 5]


def test_uid_search_and_charset(box):
    assert search(box, "1:2", cmd="UID SEARCH") == [1, 2]
    assert search(box, "CHARSET UTF-8 SUBJECT meeting") == [1, 2]
    assert search(box, "CHARSET us-ascii FROM erin") == [5]
    lines = box.cmd("x SEARCH CHARSET ISO-8859-1 ALL")
    assert lines == ["x NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"]


def test_utf8_literal(box):
    word = "crème".encode()
    box.send(b"x SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(word) + word + b"\r\n")
    lines = box.response()
    assert lines == ["* SEARCH 3", "x OK SEARCH completed"]
    # Case folding of Latin-1 letters, in the body too.
    word = "NAÏVE".encode()
    box.send(b"y SEARCH CHARSET UTF-8 BODY {%d+}\r\n" % len(word) + word + b"\r\n")
    assert box.response() == ["* SEARCH 3", "y OK SEARCH completed"]
    bad = b"\xff\xfe"
    box.send(b"z SEARCH SUBJECT {2+}\r\n" + bad + b"\r\n")
    assert box.response()[-1].startswith("z BAD")


def test_sequence_numbers_after_expunge(box, server):
    """Numbers follow the client's view: SEARCH keeps expunged messages'
    numbers until an EXPUNGE may be sent; UID SEARCH reports it first."""
    other = server.login(USER, PASSWORD)
    other.cmd("s SELECT INBOX")
    assert other.cmd("e UID EXPUNGE 3")[-1].startswith("e OK")
    # Message 3 is gone for the store but still in our view: 4 stays 4.
    lines = box.cmd("x SEARCH FROM dave")
    assert lines[-2:] == ["* SEARCH 4", "x OK SEARCH completed"]
    assert "* 3 EXPUNGE" not in lines
    assert search(box, "4:5") == [4, 5]
    lines = box.cmd("y UID SEARCH FROM dave")
    assert "* 3 EXPUNGE" in lines
    assert lines[-2:] == ["* SEARCH 4", "y OK SEARCH completed"]
    assert search(box, "FROM dave") == [3]


def test_new_messages_reported_before_result(box, server):
    server.deliver(USER, M1)
    lines = box.cmd("x SEARCH FROM alice")
    assert lines == ["* 6 EXISTS", "* SEARCH 1 6", "x OK SEARCH completed"]


# -------------------------------------------------------------- ESEARCH


def test_esearch_return(box):
    lines = box.cmd("a SEARCH RETURN (MIN MAX COUNT) UNSEEN")
    assert lines == ['* ESEARCH (TAG "a") MIN 1 MAX 5 COUNT 4', "a OK SEARCH completed"]
    lines = box.cmd("b UID SEARCH RETURN (ALL) NOT 2")
    assert lines == ['* ESEARCH (TAG "b") UID ALL 1,3:5', "b OK SEARCH completed"]
    lines = box.cmd("c SEARCH RETURN () 1:3")
    assert lines == ['* ESEARCH (TAG "c") ALL 1:3', "c OK SEARCH completed"]
    lines = box.cmd("d SEARCH RETURN (MIN MAX ALL COUNT) KEYWORD $Nothing")
    assert lines == ['* ESEARCH (TAG "d") COUNT 0', "d OK SEARCH completed"]
    lines = box.cmd("e SEARCH RETURN (count) SEEN")
    assert lines == ['* ESEARCH (TAG "e") COUNT 1', "e OK SEARCH completed"]
    assert box.cmd("f SEARCH RETURN (BOGUS) ALL")[-1].startswith("f BAD")
    assert box.cmd("g SEARCH RETURN ALL")[-1].startswith("g BAD")


def test_rev2_esearch_default(box):
    assert box.cmd("e ENABLE IMAP4rev2")[-1].startswith("e OK")
    lines = box.cmd("a SEARCH UNSEEN")
    assert lines == ['* ESEARCH (TAG "a") ALL 1,3:5', "a OK SEARCH completed"]
    lines = box.cmd("b UID SEARCH SEEN")
    assert lines == ['* ESEARCH (TAG "b") UID ALL 2', "b OK SEARCH completed"]
    lines = box.cmd("c SEARCH KEYWORD $Nothing")
    assert lines == ['* ESEARCH (TAG "c")', "c OK SEARCH completed"]


def test_searchres_save(box):
    assert box.cmd("a SEARCH RETURN (SAVE) OR SEEN FLAGGED") == ["a OK SEARCH completed"]
    assert search(box, "$") == [2, 3]
    assert search(box, "UID $", cmd="UID SEARCH") == [2, 3]
    assert search(box, "NOT $") == [1, 4, 5]
    lines = box.cmd("f FETCH $ (FLAGS)")
    assert lines[-1].startswith("f OK"), lines
    assert [l.split()[1] for l in lines[:-1]] == ["2", "3"]
    # SAVE with MIN keeps only the minimum; with COUNT everything.
    lines = box.cmd("b SEARCH RETURN (SAVE MIN) UNSEEN")
    assert lines == ['* ESEARCH (TAG "b") MIN 1', "b OK SEARCH completed"]
    assert search(box, "$") == [1]
    lines = box.cmd("c SEARCH RETURN (SAVE MIN MAX) UNSEEN")
    assert search(box, "$") == [1, 5]
    box.cmd("d SEARCH RETURN (SAVE COUNT MIN) UNSEEN")
    assert search(box, "$") == [1, 3, 4, 5]
    # A failed SAVE search empties $.
    assert box.cmd("e SEARCH RETURN (SAVE) BEFORE 99-Foo-2024")[-1].startswith("e BAD")
    assert search(box, "$") == []


def test_dollar_without_save(box):
    assert search(box, "$") == []


# --------------------------------------------------------------- MODSEQ


def test_modseq(box):
    lines = box.cmd("f FETCH 1:5 (MODSEQ)")
    modseqs = {int(m.group(1)): int(m.group(2))
               for m in (re.match(r"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", l) for l in lines)
               if m}
    assert len(modseqs) == 5, lines
    top = max(modseqs.values())
    lines = box.cmd("x SEARCH MODSEQ 1")
    assert lines[-2:] == [f"* SEARCH 1 2 3 4 5 (MODSEQ {top})", "x OK SEARCH completed"]
    lines = box.cmd(f"y SEARCH MODSEQ {modseqs[3]}")
    expected = sorted(n for n, v in modseqs.items() if v >= modseqs[3])
    best = max(modseqs[n] for n in expected)
    assert lines[-2] == "* SEARCH " + " ".join(map(str, expected)) + f" (MODSEQ {best})"
    lines = box.cmd(f'z SEARCH MODSEQ "/flags/\\\\Seen" all {modseqs[2]} 2')
    assert lines[-2:] == [f"* SEARCH 2 (MODSEQ {modseqs[2]})", "z OK SEARCH completed"]
    lines = box.cmd(f"w SEARCH MODSEQ {top + 1}")
    assert lines[-2:] == ["* SEARCH", "w OK SEARCH completed"]
    lines = box.cmd("v SEARCH RETURN (MAX) MODSEQ 1")
    assert lines[-2:] == [f'* ESEARCH (TAG "v") MAX 5 MODSEQ {modseqs[5]}',
                          "v OK SEARCH completed"]
    assert box.cmd('u SEARCH MODSEQ "/flags/x" bogus 1')[-1].startswith("u BAD")
    assert box.cmd("t SEARCH MODSEQ abc")[-1].startswith("t BAD")


# --------------------------------------------------------------- errors


BAD_CASES = [
    "", "BOGUS", "FROM", "SUBJECT (a)", "BEFORE 32-Jan-2024", "BEFORE 1-Foo-2024",
    "BEFORE 1/1/2024", "LARGER", "LARGER -1", "LARGER x", "OLDER 0", "UID", "UID x",
    "NOT", "OR SEEN", "()", "1:x", "0", "6", "1:6", "KEYWORD \\Seen", "KEYWORD (a)",
    "HEADER", "HEADER X", "HEADER \"\" x", "CHARSET", "MODSEQ", "SEEN (FLAGGED", "NIL",
    "\"ALL\"",
]


def test_bad_syntax(box, server):
    c = box
    for i, criteria in enumerate(BAD_CASES):
        if i > 0 and i % 15 == 0:
            # A fresh session before any limit on BAD replies is near.
            c = server.login(USER, PASSWORD)
            c.cmd("s SELECT INBOX")
        lines = c.cmd(f"x SEARCH {criteria}")
        assert len(lines) == 1 and lines[0].startswith("x BAD "), (criteria, lines)
    assert search(c, "DRAFT") == [4]


def test_nesting_limit(box):
    deep = "NOT " * 2000 + "ALL"
    assert box.cmd(f"x SEARCH {deep}")[-1].startswith("x BAD [LIMIT]")
    # A long OR chain is flattened: fine.
    chain = "OR " * 300 + " ".join(["SEEN"] * 301)
    assert search(box, chain) == [2]
    # NOT NOT collapses, so a long even chain still works.
    assert search(box, "NOT " * 100 + "SEEN") == [2]


def test_search_not_selected(server):
    c = server.login(USER, PASSWORD)
    assert c.cmd("x SEARCH ALL")[-1].startswith("x BAD")


def test_large_result_chunked(imapd, auth_env, mail_user):
    """Result lines longer than a chunk (256 KiB) go out in pieces and
    arrive whole: 46,000 messages placed in the Maildir directly. (The
    output buffer is raised: a chunk must fit in the connection's cap.)"""
    _, uid, gid = mail_user
    auth_env.add_user(USER, PASSWORD)
    server = imapd(conf={"imap": {"output_buffer_size": "256K"}})
    server.deliver(USER, M1)
    new = os.path.join(server.user_dir(USER), "Maildir", "new")
    total = 46000
    for i in range(total - 1):
        path = os.path.join(new, f"1700000000.M{i}P1.test")
        with open(path, "wb") as f:
            f.write(b"Subject: s\n\nb\n")
        os.chown(path, uid, gid)
        os.utime(path, (1700000000, 1700000000))   # one arrival time for all
    c = server.login(USER, PASSWORD)
    assert c.cmd("s SELECT INBOX", timeout=60)[-1].startswith("s OK")
    numbers = " ".join(str(n) for n in range(1, total + 1))
    assert len(numbers) > 256 * 1024
    c.sendline("x SEARCH ALL")
    assert c.readline(timeout=60, max_len=1 << 20) == "* SEARCH " + numbers
    assert c.readline() == "x OK SEARCH completed"
    c.sendline("y SEARCH RETURN (ALL COUNT) NOT 2:45999")
    assert c.response(timeout=60) == ['* ESEARCH (TAG "y") COUNT 2 ALL 1,46000',
                                      "y OK SEARCH completed"]
    c.sendline("z SORT (SIZE) UTF-8 ALL")
    line = c.readline(timeout=60, max_len=1 << 20)
    assert line.split()[:2] == ["*", "SORT"] and len(line.split()) == total + 2
    assert sorted(map(int, line.split()[2:])) == list(range(1, total + 1))
    assert c.readline() == "z OK SORT completed"
    # 2..46000 share the subject "s" and are no replies: one dummy.
    c.sendline("t THREAD REFERENCES UTF-8 2:*")
    assert c.readline(timeout=60, max_len=1 << 20) == \
        "* THREAD (" + "".join(f"({n})" for n in range(2, total + 1)) + ")"
    assert c.readline() == "t OK THREAD completed"


# ------------------------------------------------------------------ SORT


def sort(c, args, cmd="SORT"):
    lines = c.cmd(f"x {cmd} {args}")
    assert lines[-1] == f"x OK {cmd.split()[-1]} completed", lines
    return [int(x) for x in untagged(lines, "SORT").split()[2:]]


SORT_CASES = [
    ("(ARRIVAL)", [1, 2, 3, 4, 5]),
    ("(DATE)", [1, 2, 3, 4, 5]),
    ("(REVERSE DATE)", [5, 4, 3, 2, 1]),
    ("(FROM)", [1, 2, 3, 4, 5]),          # alice bob carol dave erin
    ("(REVERSE FROM)", [5, 4, 3, 2, 1]),
    ("(TO)", [2, 4, 5, 1, 3]),            # alice x3 (by seq), bob, zed
    ("(CC)", [2, 3, 4, 5, 1]),            # empty first, then carol
    ("(SUBJECT)", [3, 5, 1, 2, 4]),       # café, large, meeting x2, report
    ("(SUBJECT REVERSE DATE)", [3, 5, 2, 1, 4]),
    ("(DISPLAYFROM)", [1, 2, 3, 4, 5]),   # Alice Smith, Bob Jones, Carol, dave@, Erin
    ("(DISPLAYTO)", [2, 4, 5, 1, 3]),
    ("(REVERSE DISPLAYFROM)", [5, 4, 3, 2, 1]),
]


def test_sort_keys(box):
    for keys, expected in SORT_CASES:
        assert sort(box, f"{keys} UTF-8 ALL") == expected, keys
    # SIZE: from the sizes FETCH reports; REVERSE reverses the key only
    # (ties stay in message order, RFC 5256), so compare with a model.
    lines = box.cmd("f FETCH 1:5 (RFC822.SIZE INTERNALDATE)")
    size, arrival = {}, {}
    for l in lines[:-1]:
        m = re.match(r'\* (\d+) FETCH \(RFC822\.SIZE (\d+) INTERNALDATE "([^"]+)"\)', l)
        assert m, l
        size[int(m.group(1))] = int(m.group(2))
        arrival[int(m.group(1))] = datetime.datetime.strptime(m.group(3), "%d-%b-%Y %H:%M:%S %z")
    assert sort(box, "(SIZE) UTF-8 ALL") == sorted(size, key=lambda n: (size[n], n))
    assert sort(box, "(REVERSE SIZE) UTF-8 ALL") == sorted(size, key=lambda n: (-size[n], n))
    assert sort(box, "(REVERSE ARRIVAL) UTF-8 ALL") == \
        sorted(arrival, key=lambda n: (-arrival[n].timestamp(), n))


def test_sort_uid_and_criteria(box):
    assert sort(box, "(REVERSE DATE) UTF-8 UNSEEN", cmd="UID SORT") == [5, 4, 3, 1]
    assert sort(box, "(SUBJECT) US-ASCII TEXT \"not in mailbox\"") == []
    lines = box.cmd("x SORT (DATE) UTF-8 MODSEQ 1 1")
    assert re.fullmatch(r"\* SORT 1 \(MODSEQ \d+\)", lines[-2]), lines


SORT_BAD = [
    "", "(DATE)", "DATE UTF-8 ALL", "() UTF-8 ALL", "(REVERSE) UTF-8 ALL",
    "(BOGUS) UTF-8 ALL", "(DATE) UTF-8", "(DATE) UTF-8 BOGUS", "(REVERSE REVERSE DATE) UTF-8 ALL",
]


def test_sort_bad(box):
    for args in SORT_BAD:
        lines = box.cmd(f"x SORT {args}")
        assert len(lines) == 1 and lines[0].startswith("x BAD"), (args, lines)


def test_sort_badcharset(box):
    assert box.cmd("x SORT (DATE) KOI8-R ALL") == [
        "x NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"]


# ---------------------------------------------------------------- THREAD


def thread_msg(n, subject, day, refs=None, irt=None, mid=True):
    h = [("From", "t@example.org"), ("Subject", subject),
         ("Date", f"{day} Feb 2024 10:00:00 +0000")]
    if mid:
        h.append(("Message-ID", f"<t{n}@x>"))
    if refs:
        h.append(("References", " ".join(f"<t{r}@x>" for r in refs)))
    if irt:
        h.append(("In-Reply-To", f"<t{irt}@x>"))
    return msg(h, b"body\r\n")


@pytest.fixture
def threads(server):
    """A small forest (message numbers equal the t<n> IDs):
    1 "Lunch"                         root
    2 "Re: Lunch"      refs 1         child of 1
    3 "Re: Lunch"      refs 1 2       child of 2
    4 "Re: Lunch"      irt 1          child of 1 (In-Reply-To only)
    5 "Other"                         root
    6 "Re: Orphan"     refs 99 98     parent 98 is missing: a dummy
    7 "Re: Orphan"     refs 99        sibling of 98 under dummy 99
    8 "Other"          (no refs, later) same subject as 5: merged
    9 "Re: Other"      refs 100       reply to a missing message
    """
    specs = [
        (1, "Lunch", 1, None, None), (2, "Re: Lunch", 2, [1], None),
        (3, "Re: Lunch", 4, [1, 2], None), (4, "Re: Lunch", 3, None, 1),
        (5, "Other", 5, None, None), (6, "Re: Orphan", 6, [99, 98], None),
        (7, "Re: Orphan", 7, [99], None), (8, "Other", 8, None, None),
        (9, "Re: Other", 9, [100], None),
    ]
    for n, subj, day, refs, irt in specs:
        server.deliver(USER, thread_msg(n, subj, day, refs, irt))
    c = server.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    return c


def thread(c, args, cmd="THREAD"):
    lines = c.cmd(f"x {cmd} {args}")
    assert lines[-1] == f"x OK {cmd.split()[-1]} completed", lines
    return untagged(lines, "THREAD")


def test_thread_orderedsubject(threads):
    # By base subject then date: Lunch {1, 2, 4(day 3), 3(day 4)}, Orphan
    # {6, 7}, Other {5, 8, 9}; threads by the first message's date.
    assert thread(threads, "ORDEREDSUBJECT UTF-8 ALL") == \
        "* THREAD (1 (2)(4)(3))(5 (8)(9))(6 7)"
    assert thread(threads, "ORDEREDSUBJECT UTF-8 5:9") == "* THREAD (5 (8)(9))(6 7)"
    assert thread(threads, "ORDEREDSUBJECT UTF-8 FROM nobody") == "* THREAD"


def test_thread_references(threads):
    # 1 -> (2 -> 3), 4; 5 and 8 share "Other" and neither is a reply: a
    # dummy holds both; 9 ("Re: Other", parent missing) joins that dummy;
    # 6 and 7 hang under the dummy for <t99@x> (6 via the dummy <t98@x>,
    # pruned): two siblings under a top dummy.
    assert thread(threads, "REFERENCES UTF-8 ALL") == \
        "* THREAD (1 (2 3)(4))((5)(8)(9))((6)(7))"
    # Without 1, a dummy for <t1@x> holds 2 and 4 (RFC 5256 "((3)(5))").
    assert thread(threads, "REFERENCES UTF-8 2:4") == "* THREAD ((2 3)(4))"
    assert thread(threads, "REFERENCES UTF-8 1,3") == "* THREAD (1 3)"
    assert thread(threads, "REFERENCES UTF-8 1,3", cmd="UID THREAD") == "* THREAD (1 3)"


def test_thread_reply_joins_original(server):
    """A reply (by subject) without references goes under the original."""
    server.deliver(USER, thread_msg(1, "Plan", 1))
    server.deliver(USER, thread_msg(2, "Re: Plan", 2, mid=False))
    server.deliver(USER, thread_msg(3, "Fwd: Plan", 3))
    c = server.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    assert thread(c, "REFERENCES UTF-8 ALL") == "* THREAD (1 (2)(3))"


def test_thread_loops_and_duplicates(server):
    """References that would make a loop are ignored; a duplicate
    Message-ID gets a unique one."""
    server.deliver(USER, thread_msg(1, "A", 1, refs=[2]))
    server.deliver(USER, thread_msg(2, "B", 2, refs=[1]))
    server.deliver(USER, thread_msg(1, "C", 3))          # duplicate <t1@x>
    c = server.login(USER, PASSWORD)
    c.cmd("s SELECT INBOX")
    # 1's parent would be 2 (a dummy at first, then message 2); 2's parent
    # 1 would be a loop: so 2 is the root, 1 its child; 3 alone.
    assert thread(c, "REFERENCES UTF-8 ALL") == "* THREAD (2 1)(3)"


def test_thread_bad(threads):
    for args in ["", "REFERENCES", "REFERENCES UTF-8", "BOGUS UTF-8 ALL",
                 "(REFERENCES) UTF-8 ALL", "REFERENCES UTF-8 BOGUS"]:
        lines = threads.cmd(f"x THREAD {args}")
        assert len(lines) == 1 and lines[0].startswith("x BAD"), (args, lines)
    assert threads.cmd("x THREAD REFERENCES BIG5 ALL") == [
        "x NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"]


# ------------------------------------------------------ I18NLEVEL=1


def b64_word(text):
    """An RFC 2047 encoded-word of text."""
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def utf8_msg(headers, body, cte="8bit"):
    return msg(headers + [("MIME-Version", "1.0"),
                          ("Content-Type", "text/plain; charset=utf-8"),
                          ("Content-Transfer-Encoding", cte)], body)


# Text in other scripts and forms: é composed (1) and decomposed (3), a
# ligature and full-width letters (1), Greek, Cyrillic, Hangul (2), ß and
# the word kelvin (3).
I1 = utf8_msg([("From", f"{b64_word('Ömer')} <oemer@example.org>"),
               ("Subject", b64_word("Café au lait"))],
              "Le café est prêt. Ｆｕｌｌ ｗｉｄｔｈ. Une ﬁle d'attente.\r\n".encode())
I2 = utf8_msg([("From", "Zoe <zoe@example.org>"), ("Subject", b64_word("ΣΟΦΙΑ"))],
              "Οδυσσεύς in МОСКВА, 한국어.\r\n".encode())
I3 = utf8_msg([("From", "zed@example.org"), ("Subject", b64_word("σοφια"))],
              b"cafe=CC=81 noir, Stra=C3=9Fe 5, 300 kelvin\r\n", cte="quoted-printable")


@pytest.fixture
def intl(server):
    for m in (I1, I2, I3):
        server.deliver(USER, m)
    c = server.login(USER, PASSWORD)
    assert c.cmd("s SELECT INBOX")[-1].startswith("s OK")
    return c


def usearch(c, key, word, tag="u", charset=True):
    """SEARCH [CHARSET UTF-8] <key> <word as a literal>: the numbers."""
    data = word.encode()
    prefix = b"SEARCH CHARSET UTF-8 " if charset else b"SEARCH "
    c.send(tag.encode() + b" " + prefix + key.encode() +
           b" {%d+}\r\n" % len(data) + data + b"\r\n")
    lines = c.response()
    assert lines[-1] == f"{tag} OK SEARCH completed", (key, word, lines)
    return [int(x) for x in untagged(lines, "SEARCH").split()[2:]]


def test_i18nlevel_capability(server):
    c = server.login(USER, PASSWORD)
    lines = c.cmd("c CAPABILITY")
    assert lines[-1] == "c OK Capability completed"
    assert "I18NLEVEL=1" in untagged(lines, "CAPABILITY").split()


# Needles that differ from the text only in case (beyond ASCII), in
# composed or decomposed form, or by compatibility characters.
UNICODE_CASES = [
    ("BODY", "CAFÉ", [1, 3]),
    ("BODY", "cafe\u0301", [1, 3]),
    ("BODY", "Café Est", [1]),
    ("BODY", "file d'", [1]),                # ﬁle
    ("BODY", "FULL WIDTH", [1]),             # Ｆｕｌｌ ｗｉｄｔｈ
    ("BODY", "ΟΔΥΣΣΕΎΣ", [2]),
    ("BODY", "москва", [2]),
    ("BODY", "한국", [2]),
    ("BODY", "\u1112\u1161\u11ab", [2]),       # 한 as its jamo
    ("BODY", "\u212aELVIN", [3]),             # the Kelvin sign
    ("BODY", "STRAßE", [3]),
    ("BODY", "STRASSE", []),                 # ß has no one-letter capital
    ("BODY", "é", [1, 3]),                   # too short for the index
    ("SUBJECT", "σοφια", [2, 3]),
    ("SUBJECT", "ΣΟΦΙΑ", [2, 3]),
    ("SUBJECT", "CAFE\u0301 AU", [1]),
    ("FROM", "ÖMER", [1]),
    ("HEADER Subject", "café", [1]),
    ("TEXT", "öMeR", [1]),
    ("TEXT", "Σοφια", [2, 3]),
]


def test_search_unicode_casemap(intl):
    for key, word, expected in UNICODE_CASES:
        assert usearch(intl, key, word) == expected, (key, word)
    # Without CHARSET (UTF-8 is the default) and as UID SEARCH.
    assert usearch(intl, "BODY", "CAFÉ", charset=False) == [1, 3]
    word = "МОСКВА".encode()
    intl.send(b"v UID SEARCH CHARSET UTF-8 BODY {%d+}\r\n" % len(word) + word + b"\r\n")
    assert intl.response() == ["* SEARCH 2", "v OK SEARCH completed"]


def test_search_after_index_upgrade(intl, server, mail_user):
    """An index whose text is from before the casemapped form (no
    fts_format, text as decoded): the next session's index open empties
    it, and searches read the files: nothing is missed."""
    index_exec_as(mail_user, server.user_dir(USER),
                  "UPDATE message_fts SET body = 'Le café est prêt';"
                  " DELETE FROM meta WHERE key = 'fts_format';")
    c = server.login(USER, PASSWORD)
    assert c.cmd("s SELECT INBOX")[-1].startswith("s OK")
    for key, word, expected in UNICODE_CASES:
        assert usearch(c, key, word) == expected, (key, word)


def sort_msg(subject, sender, day):
    return msg([("From", sender), ("Subject", subject),
                ("Date", f"{day} Mar 2024 10:00:00 +0000")], b"x\r\n")


@pytest.fixture
def intl_sort(server):
    """Subjects and names that differ only in the case of non-ASCII
    letters or in composed or decomposed form:
    1 "σοφια"       from "ärger"
    2 "ΣΟΦΙΑ"       from Zed
    3 "Apple"       from "ÄRGER"
    4 "Re: Σοφια"   from "A\u0308rger"
    """
    for m in (sort_msg(b64_word("σοφια"), f"{b64_word('ärger')} <d@example.org>", 1),
              sort_msg(b64_word("ΣΟΦΙΑ"), "Zed <z@example.org>", 2),
              sort_msg("Apple", f"{b64_word('ÄRGER')} <b@example.org>", 3),
              sort_msg(b64_word("Re: Σοφια"), f"{b64_word('Ärger')} <c@example.org>", 4)):
        server.deliver(USER, m)
    c = server.login(USER, PASSWORD)
    assert c.cmd("s SELECT INBOX")[-1].startswith("s OK")
    return c


def test_sort_unicode_casemap(intl_sort):
    """Equal keys keep message order (RFC 5256), REVERSE or not; with
    i;ascii-casemap "ΣΟΦΙΑ" would sort before "σοφια", and Zed before
    the ärgers."""
    assert sort(intl_sort, "(SUBJECT) UTF-8 ALL") == [3, 1, 2, 4]
    assert sort(intl_sort, "(REVERSE SUBJECT) UTF-8 ALL") == [1, 2, 4, 3]
    assert sort(intl_sort, "(DISPLAYFROM) UTF-8 ALL") == [1, 3, 4, 2]
    assert sort(intl_sort, "(DISPLAYFROM REVERSE DATE) UTF-8 ALL") == [4, 3, 1, 2]
    assert sort(intl_sort, "(SUBJECT) UTF-8 ALL", cmd="UID SORT") == [3, 1, 2, 4]


def test_thread_unicode_casemap(intl_sort):
    """One base subject for σοφια, ΣΟΦΙΑ and Re: Σοφια."""
    assert thread(intl_sort, "ORDEREDSUBJECT UTF-8 ALL") == "* THREAD (1 (2)(4))(3)"
    assert thread(intl_sort, "REFERENCES UTF-8 ALL") == "* THREAD ((1)(2)(4))(3)"
