"""Deterministic generator of realistic RFC 5322 messages for the benchmarks.

Used by tests/bench/corpus (the command) and tests/bench/preload. Standard
library only; run with /usr/bin/python3.

Every message is a function of (seed, index, size mix, fixed size) alone:
each one draws from its own random.Random seeded with a string (seeding with
a str hashes it with SHA-512, which is stable across Python versions), so
messages can be generated in any order, by several processes, and the same
seed always gives byte-identical files.

What a message looks like (see README.md, "The corpus"):
  * sizes drawn from a size mix (default: most 2-20 KiB, some 100 KiB-1 MiB,
    a few 2-5 MiB), or one fixed size; each message is padded to exactly its
    drawn size whenever its skeleton fits (the index has the real size);
  * text/plain (us-ascii 7bit, or UTF-8 / ISO-8859-1 quoted-printable),
    multipart/alternative (text + HTML), multipart/mixed with base64
    attachments of pseudo-random bytes (PDF, JPEG, ZIP, DOCX headers);
  * RFC 2047 encoded-words in Subject and From display names (UTF-8 B and Q,
    ISO-8859-1 Q), RFC 2231 file names;
  * Received chains, DKIM-Signature, Message-ID, Date with time zones,
    threads with In-Reply-To and References;
  * known search words in a known fraction of subjects and bodies (KNOWN_WORDS);
    the exact counts are written to .corpus.json and per message to .index.tsv.
LF line ends throughout.
"""

import base64
import binascii
import datetime
import functools
import json
import multiprocessing
import os
import random
import sys
import time

GENERATOR_VERSION = 1

# Messages are dated from BASE_EPOCH over SPAN_DAYS, in index order, so a
# mailbox sorted by name or date is sorted by index too. Fixed (not "now") so
# the output does not depend on the day it was made.
BASE_EPOCH = 1704067200          # 2024-01-01 00:00:00 UTC
SPAN_DAYS = 730

# word: (fraction of subjects, fraction of bodies). Both are decided
# independently per message; corpus.json has the exact counts.
KNOWN_WORDS = {
    "invoice": (0.05, 0.10),
    "zeppelin": (0.002, 0.004),
}

# name: list of (weight, min_bytes, max_bytes); sizes are log-uniform in the
# band.
SIZE_MIXES = {
    "default": [
        (4.0, 300, 2048),
        (80.0, 2048, 20480),
        (13.8, 20480, 102400),
        (2.0, 102400, 1048576),
        (0.2, 2097152, 5242880),
    ],
    "small": [
        (10.0, 300, 2048),
        (90.0, 2048, 20480),
    ],
    "large": [
        (40.0, 2048, 20480),
        (30.0, 20480, 102400),
        (25.0, 102400, 1048576),
        (5.0, 2097152, 5242880),
    ],
}

LOCAL_DOMAIN = "example.org"
DOMAINS = ["example.com", "example.net", "mail.example.com", "lists.example.net",
           "corp.example.com", "example.org", "shop.example.net",
           "billing.example.com", "news.example.net", "dept.example.org"]
# Documentation address ranges only (RFC 5737).
NETS = ["192.0.2.", "198.51.100.", "203.0.113."]
MTAS = ["Postfix", "Exim 4.96", "Microsoft SMTP Server (version=TLS1_2, "
        "cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)", "Sendmail 8.17.1",
        "OpenSMTPD"]
MAILERS = [("X-Mailer", "Microsoft Outlook 16.0"),
           ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) "
                          "Gecko/20100101 Thunderbird/115.6.0"),
           ("X-Mailer", "Apple Mail (2.3774.300.61.1.2)"),
           ("User-Agent", "Mutt/2.2.12 (2023-09-09)"),
           ("User-Agent", "Roundcube Webmail/1.6.5"),
           ("X-Mailer", "PHPMailer 6.8.1 (https://github.com/PHPMailer/PHPMailer)")]
TIMEZONES = [0, 0, 60, 60, 120, -300, -300, -480, 330, 540, 600]

# (display name, charset it fits in): non-ASCII names are sent as RFC 2047
# encoded-words; ISO-8859-1 ones sometimes in that charset.
PEOPLE = [
    ("Alice Johnson", "us-ascii"), ("Bob Smith", "us-ascii"),
    ("Carol Williams", "us-ascii"), ("David Brown", "us-ascii"),
    ("Eve Davis", "us-ascii"), ("Frank Miller", "us-ascii"),
    ("Grace Wilson", "us-ascii"), ("Henry Moore", "us-ascii"),
    ("Irene Taylor", "us-ascii"), ("Jack Anderson", "us-ascii"),
    ("Karen Thomas", "us-ascii"), ("Leo Martin", "us-ascii"),
    ("José García", "iso-8859-1"), ("Jürgen Müller", "iso-8859-1"),
    ("Zoë Ångström", "iso-8859-1"), ("François Lefèvre", "iso-8859-1"),
    ("Søren Kierkegård", "iso-8859-1"), ("Inês Conceição", "iso-8859-1"),
    ("Łukasz Żółkiewski", "utf-8"), ("Dvořák Antonín", "utf-8"),
    ("田中 太郎", "utf-8"), ("Иван Петров", "utf-8"),
    ("Γιώργος Παπαδόπουλος", "utf-8"), ("Nguyễn Văn An", "utf-8"),
]
LOGINS = ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "henry",
          "irene", "jack", "karen", "leo", "jose", "juergen", "zoe", "francois",
          "soren", "ines", "lukasz", "antonin", "taro", "ivan", "giorgos", "an",
          "billing", "noreply", "support", "newsletter", "team", "admin"]

WORDS = """the of and to in is you that it he was for on are as with his they at be
this have from or one had by word but not what all were we when your can said
there use an each which she do how their if will up other about out many then
them these so some her would make like him into time has look two more write go
see number no way could people my than first water been call who oil its now
find long down day did get come made may part project report meeting schedule
budget review team client customer order shipment delivery account payment
contract proposal draft version release server backup network update status
quarter sales figures forecast agenda minutes action items deadline office
travel expenses approval request support ticket issue resolved pending weekly
monthly annual summary analysis results data spreadsheet presentation slides
document attached please thanks regards best morning afternoon tomorrow friday
monday next week last year plan strategy product launch marketing campaign
feedback questions answer call conference room lunch dinner event registration
password security policy training onboarding hiring interview candidate offer
vendor supplier quote estimate price discount total amount balance due paid
receipt statement order confirmation tracking package warehouse inventory stock
""".split()

# Non-ASCII sentences for the UTF-8 and ISO-8859-1 bodies.
LATIN1_SENTENCES = [
    "Die Überweisung für das Projekt ist noch nicht eingegangen.",
    "Bitte prüfen Sie die Unterlagen bis nächste Woche.",
    "La réunion de l'équipe est reportée à jeudi après-midi.",
    "Merci de confirmer la réception du colis déjà expédié.",
    "El presupuesto del año próximo está en revisión.",
    "Não se esqueça da reunião de amanhã às três horas.",
    "Vi ses på mötet i Göteborg nästa måndag.",
    "Grüße aus München und schöne Feiertage!",
]
UTF8_SENTENCES = LATIN1_SENTENCES + [
    "Proszę o potwierdzenie zamówienia do środy.",
    "Спасибо за быстрый ответ, документы во вложении.",
    "会議の資料を添付しましたのでご確認ください。",
    "Το έγγραφο είναι έτοιμο για έλεγχο.",
    "Cảm ơn bạn đã gửi báo cáo hàng tuần.",
    "Děkuji za zprávu, odpovím zítra ráno. \u2014 \u201cOK\u201d \u2026",
]

SUBJECT_TEMPLATES = [
    "{w1} {w2} for {month}", "Meeting notes: {w1} {w2}", "{W1} {w2} update",
    "Question about the {w1} {w2}", "Weekly {w1} report ({date})",
    "[{list}] {W1} {w2} {w3}", "Action required: {w1} {w2}",
    "FYI: {w1} {w2} {w3}", "{W1} {w2} - {month} {year}",
    "Your {w1} {w2} has been updated", "Draft {w1} for review",
]
# (template, unused): the charset is the smallest one that fits.
NON_ASCII_SUBJECTS = [
    ("Überweisung für {W1} – {month}", "utf-8"),
    ("Réunion de l'équipe: {w1} {w2}", "iso-8859-1"),
    ("Grüße und {w1} {w2}", "iso-8859-1"),
    ("Año nuevo: {w1} {w2}", "iso-8859-1"),
    ("Zamówienie {num}: {w1} {w2}", "utf-8"),
    ("Ответ: {w1} {w2}", "utf-8"),
    ("会議の件 ({w1} {w2})", "utf-8"),
    ("Résumé \u2014 {W1} {w2} \u2713", "utf-8"),
]
KNOWN_SUBJECTS = {
    "invoice": ["Invoice {num} for {month}", "Your invoice from {company}",
                "Re: invoice {num}", "Rechnung / Invoice Nr. {num} – {month}",
                "Overdue invoice {num}: {w1} {w2}"],
    "zeppelin": ["Zeppelin tour on {month} {day}", "Photos from the zeppelin"],
}
KNOWN_SENTENCES = {
    "invoice": ["Please find the invoice for {month} attached.",
                "The invoice {num} is due on {month} {day}.",
                "Could you resend the Invoice with the new address?"],
    "zeppelin": ["We watched the zeppelin fly over the lake.",
                 "The Zeppelin museum opens at ten."],
}
MONTHS = ["January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Stark Supplies",
             "Wayne Logistics", "Hooli", "Vandelay Industries"]
LISTS = ["dev", "ops", "announce", "users", "board", "sales"]
ATTACHMENTS = [
    ("application/pdf", "pdf", b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n",
     ["report", "statement", "contract", "slides", "Präsentation", "résumé"]),
    ("image/jpeg", "jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00",
     ["IMG_2041", "photo", "scan", "screenshot", "Grüße"]),
    ("application/zip", "zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
     ["archive", "logs", "backup", "export"]),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     "docx", b"PK\x03\x04\x14\x00\x06\x00\x08\x00",
     ["draft", "minutes", "proposal", "Übersicht"]),
    ("application/octet-stream", "bin", b"\x7fELF\x02\x01\x01\x00",
     ["firmware", "data"]),
]


# ------------------------------------------------------------------ encoding

def _q_encode(data):
    out = []
    for b in data:
        c = chr(b)
        if c == " ":
            out.append("_")
        elif c.isalnum() and b < 128 or c in "!*+-/":
            out.append(c)
        else:
            out.append("=%02X" % b)
    return "".join(out)


def encoded_words(text, charset, method):
    """RFC 2047 encoded-words for text, each at most 75 characters, never
    splitting a character; returned as a list (to be folded by the caller)."""
    prefix = "=?%s?%s?" % (charset.upper(), method)
    words, chunk = [], ""
    for ch in text:
        trial = chunk + ch
        raw = trial.encode(charset)
        enc = (base64.b64encode(raw).decode() if method == "B"
               else _q_encode(raw))
        if len(prefix) + len(enc) + 2 > 75 and chunk:
            words.append(chunk)
            chunk = ch
        else:
            chunk = trial
    if chunk:
        words.append(chunk)
    result = []
    for w in words:
        raw = w.encode(charset)
        enc = base64.b64encode(raw).decode() if method == "B" else _q_encode(raw)
        result.append(prefix + enc + "?=")
    return result


def fold(name, tokens):
    """A header line "Name: tok tok ..." folded before 78 columns at the
    spaces between tokens; ends with LF."""
    lines, cur = [], name + ":"
    for tok in tokens:
        if len(cur) + 1 + len(tok) > 76 and cur != name + ":":
            lines.append(cur)
            cur = " " + tok
        else:
            cur += " " + tok
    lines.append(cur)
    return "\n".join(lines) + "\n"


def smallest_charset(text):
    for cs in ("us-ascii", "iso-8859-1"):
        try:
            text.encode(cs)
            return cs
        except UnicodeEncodeError:
            pass
    return "utf-8"


def header_text(rng, name, text, charset):
    """Header with a possibly non-ASCII unstructured value, encoded the way
    mail programs do (a reply's "Re: " stays outside the encoded-words)."""
    if charset == "us-ascii":
        return fold(name, text.split(" "))
    prefix = []
    if text.startswith("Re: "):
        prefix, text = ["Re:"], text[4:]
    if charset == "iso-8859-1" and rng.random() < 0.5:
        return fold(name, prefix + encoded_words(text, "iso-8859-1", "Q"))
    return fold(name, prefix + encoded_words(text, "utf-8", rng.choice("BBQ")))


def address(rng, person, login, domain):
    name, charset = person
    addr = "<%s@%s>" % (login, domain)
    if charset == "us-ascii":
        return [name, addr] if rng.random() < 0.8 else [addr[1:-1]]
    if charset == "iso-8859-1" and rng.random() < 0.5:
        return encoded_words(name, "iso-8859-1", "Q") + [addr]
    return encoded_words(name, "utf-8", rng.choice("BQ")) + [addr]


def rfc2231_name(param, value):
    try:
        value.encode("ascii")
        return '%s="%s"' % (param, value)
    except UnicodeEncodeError:
        quoted = "".join(c if c.isascii() and (c.isalnum() or c in "-._")
                         else "".join("%%%02X" % b for b in c.encode("utf-8"))
                         for c in value)
        return "%s*=UTF-8''%s" % (param, quoted)


def b64_len(n):
    """Length of base64.encodebytes(n bytes): 76-column lines, each + LF."""
    full, rest = divmod(n, 57)
    return full * 77 + ((4 * ((rest + 2) // 3) + 1) if rest else 0)


def b64_bytes_for(limit):
    """Most input bytes whose base64 (encodebytes) is at most limit bytes."""
    if limit <= 0:
        return 0
    full, rest = divmod(limit, 77)
    n = full * 57
    if rest >= 5:
        n += ((rest - 1) // 4) * 3
    return n


# -------------------------------------------------------------- the messages

def fmt_fill(rng, d):
    return dict(
        w1=rng.choice(WORDS), w2=rng.choice(WORDS), w3=rng.choice(WORDS),
        W1=rng.choice(WORDS).capitalize(), month=rng.choice(MONTHS),
        day=rng.randint(1, 28), year=rng.choice([2024, 2025]),
        num="%d-%05d" % (rng.choice([2024, 2025]), rng.randrange(100000)),
        company=rng.choice(COMPANIES), list=rng.choice(LISTS),
        date=d.strftime("%Y-%m-%d"))


class Corpus:
    """The corpus for one seed, size mix and count."""

    def __init__(self, seed, count, size_mix="default", size=None):
        if size_mix not in SIZE_MIXES:
            raise ValueError("unknown size mix %r" % size_mix)
        self.seed = seed
        self.count = count
        self.size_mix = size_mix
        self.size = size
        self.tag = "corpus:%d:%s:%s" % (seed, size_mix, size or "")
        pool_rng = random.Random("%s:pool" % self.tag)
        self.sentences = [self._sentence(pool_rng) for _ in range(4000)]
        self.step = SPAN_DAYS * 86400 / max(count, 1)

    @staticmethod
    def _sentence(rng):
        n = rng.randint(6, 18)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.15:
            words.insert(rng.randrange(n), str(rng.randrange(10, 99999)))
        s = " ".join(words)
        return s[0].upper() + s[1:] + rng.choice(".....?!")

    # Metadata that replies of later messages need (subject, Message-ID,
    # thread): a pure function of the index.
    @functools.lru_cache(maxsize=4096)
    def meta(self, i):
        rng = random.Random("%s:meta:%d" % (self.tag, i))
        epoch = BASE_EPOCH + int(i * self.step) + rng.randrange(max(int(self.step), 1))
        tz = rng.choice(TIMEZONES)
        date = datetime.datetime.fromtimestamp(
            epoch, datetime.timezone(datetime.timedelta(minutes=tz)))
        known_subject = [w for w, (fs, _) in KNOWN_WORDS.items()
                         if rng.random() < fs]
        known_body = [w for w, (_, fb) in KNOWN_WORDS.items()
                      if rng.random() < fb]
        sender = rng.randrange(len(PEOPLE))
        sender_domain = rng.choice(DOMAINS)
        msgid = "<%x.%s@%s>" % (epoch, "%012x" % rng.getrandbits(48), sender_domain)
        parent = None
        if i > 0 and rng.random() < 0.3:
            parent = i - 1 - rng.randrange(min(i, 40))
        fill = fmt_fill(rng, date)
        if known_subject:
            subject = rng.choice(KNOWN_SUBJECTS[known_subject[0]]).format(**fill)
        elif rng.random() < 0.2:
            subject = rng.choice(NON_ASCII_SUBJECTS)[0].format(**fill)
        else:
            subject = rng.choice(SUBJECT_TEMPLATES).format(**fill)
        charset = smallest_charset(subject)
        return dict(epoch=epoch, date=date, known_subject=known_subject,
                    known_body=known_body, sender=sender,
                    sender_domain=sender_domain, msgid=msgid, parent=parent,
                    subject=subject, subject_charset=charset)

    def thread(self, i):
        """(root subject and charset, list of ancestor Message-IDs, oldest
        first, at most 10)."""
        chain, j = [], self.meta(i)["parent"]
        while j is not None and len(chain) < 50:
            chain.append(j)
            j = self.meta(j)["parent"]
        if not chain:
            m = self.meta(i)
            return m["subject"], m["subject_charset"], []
        root = self.meta(chain[-1])
        ids = [self.meta(k)["msgid"] for k in reversed(chain)][-10:]
        return root["subject"], root["subject_charset"], ids

    def target_size(self, rng):
        if self.size:
            return self.size
        bands = SIZE_MIXES[self.size_mix]
        x = rng.random() * sum(b[0] for b in bands)
        for weight, lo, hi in bands:
            if x < weight:
                break
            x -= weight
        return int(round(lo * (hi / lo) ** rng.random()))

    def text(self, rng, nbytes, known, charset):
        """Paragraphs of about nbytes; each known word once somewhere."""
        out, total = [], 0
        extra = []
        for w in known:
            extra.append(rng.choice(KNOWN_SENTENCES[w]).format(
                **fmt_fill(rng, datetime.date(2024, 1, 1))))
        pool = None
        if charset == "utf-8":
            pool = UTF8_SENTENCES
        elif charset == "iso-8859-1":
            pool = LATIN1_SENTENCES
        para = []
        while total < nbytes or extra:
            if extra and (total >= nbytes or rng.random() < 0.1):
                s = extra.pop()
            elif pool and rng.random() < 0.3:
                s = rng.choice(pool)
            else:
                s = rng.choice(self.sentences)
            para.append(s)
            total += len(s) + 1
            if len(para) >= rng.randint(2, 6):
                out.append(para)
                para = []
        if para:
            out.append(para)
        return out

    @staticmethod
    def wrap(paragraphs, width=72):
        lines = []
        for para in paragraphs:
            cur = ""
            for word in " ".join(para).split(" "):
                if cur and len(cur) + 1 + len(word) > width:
                    lines.append(cur)
                    cur = word
                else:
                    cur = cur + " " + word if cur else word
            if cur:
                lines.append(cur)
            lines.append("")
        return "\n".join(lines)

    def filler(self, rng, n):
        """Exactly n bytes of ASCII text lines (each ends with LF, at most 72
        columns, no trailing blanks, no '='), safe in a 7bit or QP body."""
        if n <= 0:
            return b""
        paragraphs, total = [], 0
        while total < n + 200:
            para = [rng.choice(self.sentences) for _ in range(rng.randint(2, 6))]
            total += sum(len(s) + 1 for s in para) + 2
            paragraphs.append(para)
        data = self.wrap(paragraphs).encode("ascii")[:n - 1]
        if data.endswith(b" "):
            data = data[:-1] + b"."
        return data + b"\n"

    def body_text_part(self, rng, paragraphs, charset, signature):
        """(Content-Type, Content-Transfer-Encoding, text, signature): the
        caller puts the padding between the text and the signature."""
        text = self.wrap(paragraphs)
        if charset == "us-ascii":
            return ("text/plain; charset=us-ascii", "7bit",
                    text.encode("ascii"), signature.encode("ascii"))
        pieces = []
        for t in (text, signature):
            qp = binascii.b2a_qp(t.encode(charset), quotetabs=False, istext=True)
            if not qp.endswith(b"\n"):
                qp += b"=\n"
            pieces.append(qp)
        ct = "text/plain; charset=%s" % ("UTF-8" if charset == "utf-8"
                                        else "ISO-8859-1")
        if rng.random() < 0.3:
            ct += "; format=flowed"
        return ct, "quoted-printable", pieces[0], pieces[1]

    def body_html_part(self, rng, paragraphs, charset):
        cs = "us-ascii" if charset == "us-ascii" else charset
        html = ['<html><head><meta http-equiv="Content-Type" content="text/html; '
                'charset=%s"></head>' % cs, '<body style="font-family: Arial">']
        for para in paragraphs:
            s = " ".join(para)
            s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            if rng.random() < 0.2:
                k = s.find(" ")
                if k > 0:
                    s = "<b>" + s[:k] + "</b>" + s[k:]
            html.append("<p>" + s + "</p>")
        html.append("</body></html>\n")
        data = "\n".join(html).encode("utf-8" if cs == "us-ascii" else cs)
        ct = "text/html; charset=%s" % ("UTF-8" if charset == "utf-8" else
                                        "ISO-8859-1" if charset == "iso-8859-1"
                                        else "us-ascii")
        if rng.random() < 0.1:
            return ct, "base64", base64.encodebytes(data)
        qp = binascii.b2a_qp(data, quotetabs=False, istext=True)
        if not qp.endswith(b"\n"):
            qp += b"=\n"
        return ct, "quoted-printable", qp

    def headers(self, rng, i, m, minimal):
        date = m["date"]
        login = LOGINS[m["sender"] % len(LOGINS)]
        rcpt_login = rng.choice(LOGINS)
        h = []
        h.append("Return-Path: <%s@%s>\n" % (login, m["sender_domain"]))
        h.append("Delivered-To: %s@%s\n" % (rcpt_login, LOCAL_DOMAIN))
        hops = 1 if minimal else rng.randint(2, 4)
        t = m["epoch"] + hops * 2
        for k in range(hops):
            ts = datetime.datetime.fromtimestamp(
                t - k * 2, datetime.timezone.utc).strftime(
                    "%a, %d %b %Y %H:%M:%S +0000")
            ip = rng.choice(NETS) + str(rng.randint(1, 254))
            src = "mx%d.%s" % (rng.randint(1, 4), m["sender_domain"])
            by = "mail.%s" % LOCAL_DOMAIN if k == 0 else "relay%d.%s" % (k, m["sender_domain"])
            qid = "%010X" % rng.getrandbits(40)
            mta = MTAS[0] if k == 0 else rng.choice(MTAS)
            tokens = ["from", src, "(%s" % src, "[%s])" % ip, "by", by,
                      "(%s)" % mta if " " not in mta else "(%s)" % mta.split(" ")[0],
                      "with", rng.choice(["ESMTPS", "ESMTP", "LMTPS"]), "id", qid]
            if k == 0:
                tokens += ["for", "<%s@%s>;" % (rcpt_login, LOCAL_DOMAIN)]
            else:
                tokens[-1] += ";"
            tokens += ts.split(" ")
            h.append(fold("Received", tokens))
        if not minimal and rng.random() < 0.4:
            sig = base64.b64encode(rng.randbytes(256)).decode()
            bh = base64.b64encode(rng.randbytes(32)).decode()
            tokens = ["v=1;", "a=rsa-sha256;", "c=relaxed/relaxed;",
                      "d=%s;" % m["sender_domain"], "s=selector%d;" % rng.randint(1, 2),
                      "t=%d;" % m["epoch"], "bh=%s;" % bh,
                      "h=From:To:Subject:Date:Message-ID;", "b="]
            tokens += [sig[k:k + 64] for k in range(0, len(sig), 64)]
            h.append(fold("DKIM-Signature", tokens))
        h.append("Date: %s\n" % date.strftime("%a, %d %b %Y %H:%M:%S %z"))
        h.append(fold("From", address(rng, PEOPLE[m["sender"]], login,
                                      m["sender_domain"])))
        to_people = [rng.randrange(len(PEOPLE)) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        to = []
        for n, p in enumerate(to_people):
            toks = address(rng, PEOPLE[p], rng.choice(LOGINS), LOCAL_DOMAIN)
            if n < len(to_people) - 1:
                toks[-1] += ","
            to += toks
        h.append(fold("To", to))
        if not minimal and rng.random() < 0.2:
            h.append(fold("Cc", address(rng, PEOPLE[rng.randrange(len(PEOPLE))],
                                        rng.choice(LOGINS), rng.choice(DOMAINS))))
        subject, charset, refs = self.thread(i)
        if m["known_subject"]:
            subject, charset = m["subject"], m["subject_charset"]
        if refs and not subject.lower().startswith("re:"):
            subject = "Re: " + subject
        h.append(header_text(rng, "Subject", subject, charset))
        h.append("Message-ID: %s\n" % m["msgid"])
        if refs:
            h.append("In-Reply-To: %s\n" % refs[-1])
            h.append(fold("References", refs))
        if not minimal:
            name, value = rng.choice(MAILERS)
            h.append("%s: %s\n" % (name, value))
        h.append("MIME-Version: 1.0\n")
        return "".join(h).encode("ascii"), subject

    def message(self, i):
        """(bytes, info dict) of message i."""
        m = self.meta(i)
        rng = random.Random("%s:body:%d" % (self.tag, i))
        target = self.target_size(rng)
        minimal = target < 1500
        head, subject = self.headers(rng, i, m, minimal)
        x = rng.random()
        charset = "us-ascii" if x < 0.7 else "utf-8" if x < 0.92 else "iso-8859-1"
        sig_name = PEOPLE[m["sender"]][0]
        if smallest_charset(sig_name) not in ("us-ascii", charset) and charset != "utf-8":
            sig_name = LOGINS[m["sender"] % len(LOGINS)].capitalize()
        signature = "-- \n%s\n%s\n" % (sig_name, rng.choice(COMPANIES))
        room = target - len(head)
        if minimal or room <= 1200:
            kind = "plain"
        elif self.size and self.size < 40960:
            kind = rng.choice(["plain", "plain", "alternative", "mixed"])
        elif room >= 40960 and (room >= 102400 or rng.random() < 0.85):
            kind = "mixed"
        else:
            kind = rng.choice(["plain", "plain", "alternative", "mixed"])
        with_html = kind == "alternative" or (kind == "mixed" and rng.random() < 0.5)
        boundary = "----=_Part_%d_%d.%d" % (rng.getrandbits(24), i, m["epoch"])
        alt_boundary = "----=_Alt_%d_%d" % (rng.getrandbits(24), i)
        attach_heads = []
        if kind == "mixed":
            for _ in range(1 if target < 102400 else rng.choice([1, 1, 2, 3])):
                ctype, ext, magic, names = rng.choice(ATTACHMENTS)
                fname = "%s-%d.%s" % (rng.choice(names), rng.randint(1, 999), ext)
                ah = ("\n--%s\nContent-Type: %s;\n %s\nContent-Disposition: "
                      "attachment;\n %s\nContent-Transfer-Encoding: base64\n\n"
                      % (boundary, ctype, rfc2231_name("name", fname),
                         rfc2231_name("filename", fname))).encode()
                attach_heads.append((ah, magic))
        tail = ("\n--%s--\n" % boundary).encode() if kind == "mixed" else b""
        # How much text: plain text fills the message, text + HTML share it,
        # and beside attachments the text is a short note. Capped so that
        # big messages stay cheap to make; the padding makes up the rest.
        if kind == "plain":
            text_bytes = room - 250
        elif kind == "alternative":
            text_bytes = (room - 700) * 2 // 5
        else:
            text_bytes = min(room // 20, 6000)
        text_bytes = max(min(text_bytes, 60000), 60)
        PAD = b"\x00PAD\x00"
        body_rng_state = rng.getstate()
        for _attempt in range(8):
            rng.setstate(body_rng_state)
            paragraphs = self.text(rng, text_bytes, m["known_body"], charset)
            ct, cte, tdata, tsig = self.body_text_part(rng, paragraphs, charset,
                                                       signature)
            text_part = [("Content-Type: %s\nContent-Transfer-Encoding: %s\n\n"
                          % (ct, cte)).encode(), tdata, PAD, tsig]
            if kind == "plain":
                mhead = head + b"".join(text_part[:1])
                parts = text_part[1:]
            else:
                if with_html:
                    hct, hcte, hdata = self.body_html_part(rng, paragraphs, charset)
                    inner = [('Content-Type: multipart/alternative;\n boundary="%s"\n\n'
                              "--%s\n" % (alt_boundary, alt_boundary)).encode()]
                    inner += text_part + [
                        ("\n--%s\nContent-Type: %s\nContent-Transfer-Encoding: %s\n\n"
                         % (alt_boundary, hct, hcte)).encode(), hdata,
                        ("\n--%s--\n" % alt_boundary).encode()]
                else:
                    inner = text_part
                preamble = b"This is a multi-part message in MIME format.\n\n"
                if kind == "alternative":
                    # inner[0] is the multipart/alternative header + boundary
                    k = inner[0].index(b"\n\n") + 2
                    mhead = head + inner[0][:k]
                    parts = [preamble, inner[0][k:]] + inner[1:]
                else:
                    mhead = head + ('Content-Type: multipart/mixed;\n boundary="%s"\n\n'
                                    % boundary).encode()
                    parts = [preamble, ("--%s\n" % boundary).encode()] + inner
            fixed = (len(mhead) + sum(len(p) for p in parts if p is not PAD)
                     + sum(len(ah) + b64_len(len(mg) + 16) for ah, mg in attach_heads)
                     + len(tail))
            if fixed <= target or text_bytes <= 60:
                break
            text_bytes = max(int(text_bytes * 0.9 * (target - (fixed - len(tdata)))
                                 / max(len(tdata), 1)), 60)
        if attach_heads:
            fixed -= sum(b64_len(len(mg) + 16) for _, mg in attach_heads)
            room_b64 = target - fixed
            shares = [rng.random() + 0.2 for _ in attach_heads]
            for (ah, magic), share in zip(attach_heads, shares):
                limit = int(room_b64 * share / sum(shares))
                n = max(b64_bytes_for(limit), len(magic) + 16)
                blob = base64.encodebytes(magic + rng.randbytes(n - len(magic)))
                parts += [ah, blob]
                fixed += len(blob)
            parts.append(tail)
        pad = self.filler(rng, target - fixed)
        data = mhead + b"".join(pad if p is PAD else p for p in parts)
        return data, dict(size=len(data), vsize=len(data) + data.count(b"\n"),
                          epoch=m["epoch"], kind=kind, charset=charset,
                          subject_words=[w for w in KNOWN_WORDS
                                         if w in subject.lower()],
                          body_words=m["known_body"], msgid=m["msgid"])


# ------------------------------------------------------------ writing a corpus

class CorpusError(Exception):
    pass


# Dot files, so that the directory can be given as is to tern-bench
# --corpus, which reads every other regular file as a message.
INDEX_FILE = ".index.tsv"
SUMMARY_FILE = ".corpus.json"
INDEX_COLUMNS = ["file", "size", "vsize", "epoch", "kind", "charset",
                 "subject_words", "body_words", "message_id"]

_worker = {}


def _init_worker(seed, count, size_mix, size, out):
    _worker["corpus"] = Corpus(seed, count, size_mix, size)
    _worker["out"] = out


def file_name(i):
    return "%07d.eml" % i


def _write_range(bounds):
    corpus, out = _worker["corpus"], _worker["out"]
    rows = []
    for i in range(*bounds):
        data, info = corpus.message(i)
        path = os.path.join(out, file_name(i))
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (info["epoch"], info["epoch"]))
        rows.append("\t".join([file_name(i), str(info["size"]), str(info["vsize"]),
                               str(info["epoch"]), info["kind"], info["charset"],
                               ",".join(info["subject_words"]) or "-",
                               ",".join(info["body_words"]) or "-",
                               info["msgid"]]))
    return bounds[0], rows


def write_corpus(out, seed, count, size_mix="default", size=None, jobs=1,
                 progress=False):
    """Write the corpus into out (created if missing; an earlier corpus there
    is replaced). Returns the summary also written to .corpus.json."""
    if size_mix not in SIZE_MIXES:
        raise CorpusError("unknown size mix %r" % size_mix)
    os.makedirs(out, exist_ok=True)
    names = os.listdir(out)
    if names and SUMMARY_FILE not in names:
        raise CorpusError("%s is not empty and holds no .corpus.json: refusing "
                          "to write into it" % out)
    for name in names:
        if name.endswith(".eml") or name in (INDEX_FILE, SUMMARY_FILE):
            os.unlink(os.path.join(out, name))
    chunk = 500
    ranges = [(a, min(a + chunk, count)) for a in range(0, count, chunk)]
    results = {}
    t0 = time.monotonic()
    init = (seed, count, size_mix, size, out)
    if jobs > 1 and len(ranges) > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, _init_worker, init) as pool:
            for start, rows in pool.imap_unordered(_write_range, ranges):
                results[start] = rows
                if progress:
                    _progress(len(results), len(ranges), t0)
    else:
        _init_worker(*init)
        for r in ranges:
            start, rows = _write_range(r)
            results[start] = rows
            if progress:
                _progress(len(results), len(ranges), t0)
    if progress and ranges:
        sys.stderr.write("\n")
    rows = [row for start in sorted(results) for row in results[start]]
    with open(os.path.join(out, INDEX_FILE), "w") as f:
        f.write("\t".join(INDEX_COLUMNS) + "\n")
        for row in rows:
            f.write(row + "\n")
    summary = summarize(rows)
    summary.update(generator="tests/bench/corpus", version=GENERATOR_VERSION,
                   seed=seed, count=count, size_mix=size_mix, size=size)
    with open(os.path.join(out, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")
    return summary


def _progress(done, total, t0):
    sys.stderr.write("\rcorpus: %d/%d chunks, %.0f s" % (done, total,
                                                         time.monotonic() - t0))
    sys.stderr.flush()


def summarize(rows):
    words = {w: {"subject": 0, "body": 0, "either": 0,
                 "target_subject_fraction": fs, "target_body_fraction": fb}
             for w, (fs, fb) in KNOWN_WORDS.items()}
    kinds, charsets = {}, {}
    total = 0
    sizes = []
    for row in rows:
        f = row.split("\t")
        size = int(f[1])
        total += size
        sizes.append(size)
        kinds[f[4]] = kinds.get(f[4], 0) + 1
        charsets[f[5]] = charsets.get(f[5], 0) + 1
        subj = f[6].split(",") if f[6] != "-" else []
        body = f[7].split(",") if f[7] != "-" else []
        for w in words:
            words[w]["subject"] += w in subj
            words[w]["body"] += w in body
            words[w]["either"] += w in subj or w in body
    sizes.sort()
    bands = {"<2KiB": 0, "2-20KiB": 0, "20-100KiB": 0, "100KiB-1MiB": 0,
             "1-2MiB": 0, ">=2MiB": 0}
    for s in sizes:
        k = ("<2KiB" if s < 2048 else "2-20KiB" if s < 20480 else
             "20-100KiB" if s < 102400 else "100KiB-1MiB" if s < 1048576 else
             "1-2MiB" if s < 2097152 else ">=2MiB")
        bands[k] += 1
    return dict(bytes=total, known_words=words, kinds=kinds, charsets=charsets,
                size_bands=bands,
                median_size=sizes[len(sizes) // 2] if sizes else 0,
                max_size=sizes[-1] if sizes else 0)


def read_index(directory):
    """The rows of directory/.index.tsv as dicts (sizes and dates as ints)."""
    rows = []
    with open(os.path.join(directory, INDEX_FILE)) as f:
        cols = f.readline().rstrip("\n").split("\t")
        for line in f:
            r = dict(zip(cols, line.rstrip("\n").split("\t")))
            for k in ("size", "vsize", "epoch"):
                r[k] = int(r[k])
            rows.append(r)
    return rows
