#!/usr/bin/python3
"""gen-casemap.py: write storage/casemap-tables.h, the tables of
storage/casemap.c (i;unicode-casemap, RFC 5051), from UnicodeData.txt.

    /usr/bin/python3 scripts/gen-casemap.py \
        [/usr/share/unicode/UnicodeData.txt] > storage/casemap-tables.h

UnicodeData.txt comes with Debian's unicode-data package (Unicode 15.0
in Debian 12: `apt-get install unicode-data`). Only this script needs it:
the generated file is committed, so a build does not. Tables made from
a newer Unicode change the form of some text, and the full-text index
keeps text in that form: raise FTS_FORMAT in storage/index.c with them,
so that existing indexes are filled again.

For every code point c the mapping is
    f(c) = f(d1) f(d2) ...   for the decomposition d1 d2 ... of t(c),
    f(c) = t(c)              when t(c) has no decomposition,
where t is the simple titlecase mapping (field 14) and a decomposition is
field 5, canonical or compatibility (its <tag> dropped); Hangul syllables
decompose algorithmically. So each piece of a decomposition is titlecased
and decomposed again, and every code point f yields maps to itself.

The tables are a two-level lookup: stage1[c >> SHIFT] picks a block of
1 << SHIFT entries of stage2 (blocks shared where equal), and the entry is
  0                  c maps to itself and is a starter (combining class 0)
  0x8000 | ccc       c maps to itself and has that combining class
  n (1..0x7fff)      c maps to the sequence at bytes[n]: a head byte, its
                     length | 0x80 when every code point of it is a
                     starter, then that many bytes of UTF-8
Equal sequences are stored once. Code points from LIMIT on map to
themselves and are starters (checked here).
"""

import sys

LIMIT = 0x30000
S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
N_COUNT = V_COUNT * T_COUNT
S_COUNT = L_COUNT * N_COUNT


def load(path):
    title, decomp, ccc = {}, {}, {}
    with open(path, encoding="ascii") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            cp = int(fields[0], 16)
            if fields[3] != "0":
                ccc[cp] = int(fields[3])
            if fields[5]:
                parts = fields[5].split()
                if parts[0].startswith("<"):
                    parts = parts[1:]
                decomp[cp] = [int(p, 16) for p in parts]
            if fields[14] and int(fields[14], 16) != cp:
                title[cp] = int(fields[14], 16)
    return title, decomp, ccc


def hangul(s):
    i = s - S_BASE
    out = [L_BASE + i // N_COUNT, V_BASE + (i % N_COUNT) // T_COUNT]
    if i % T_COUNT:
        out.append(T_BASE + i % T_COUNT)
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode/UnicodeData.txt"
    title, decomp, ccc = load(path)
    memo = {}

    def f(c, depth=0):
        assert depth < 32, hex(c)
        if c in memo:
            return memo[c]
        t = title.get(c, c)
        if S_BASE <= t < S_BASE + S_COUNT:
            r = [x for p in hangul(t) for x in f(p, depth + 1)]
        elif t in decomp:
            r = [x for p in decomp[t] for x in f(p, depth + 1)]
        else:
            r = [t]
        memo[c] = r
        return r

    entries = {}
    bytes_out = bytearray(b"\0")   # offset 0: no sequence
    seen = {}
    mapped = 0
    for c in sorted(set(title) | set(decomp) | set(ccc)):
        if S_BASE <= c < S_BASE + S_COUNT:
            continue                # algorithmic, in casemap.c
        m = f(c)
        if m == [c]:
            if c in ccc:
                entries[c] = 0x8000 | ccc[c]
            continue
        for x in m:
            assert f(x) == [x], hex(c)
        u = "".join(chr(x) for x in m).encode("utf-8")
        starters = all(x not in ccc for x in m)
        assert len(u) < 0x80
        key = (u, starters)
        if key not in seen:
            seen[key] = len(bytes_out)
            bytes_out.append(len(u) | (0x80 if starters else 0))
            bytes_out += u
        entries[c] = seen[key]
        mapped += 1
    assert len(bytes_out) < 0x8000
    assert max(entries) < LIMIT
    for c in range(S_BASE, S_BASE + S_COUNT):
        assert c not in entries

    # The block size that makes the two stages smallest.
    best = None
    for shift in range(4, 10):
        size = 1 << shift
        blocks, index = [tuple([0] * size)], {}
        index[blocks[0]] = 0
        stage1 = []
        for b in range(LIMIT >> shift):
            blk = tuple(entries.get((b << shift) + i, 0) for i in range(size))
            if blk not in index:
                index[blk] = len(blocks)
                blocks.append(blk)
            stage1.append(index[blk])
        s1 = 1 if len(blocks) <= 256 else 2
        total = len(stage1) * s1 + len(blocks) * size * 2
        if best is None or total < best[0]:
            best = (total, shift, stage1, blocks, s1)
    total, shift, stage1, blocks, s1 = best

    out = sys.stdout
    out.write("/*\n * casemap-tables.h — generated by scripts/gen-casemap.py from\n"
              " * UnicodeData.txt (Debian's unicode-data); do not edit. Included by\n"
              " * casemap.c only; what the tables hold is in the script.\n"
              " *\n")
    out.write(" * %d code points map to something else (%d distinct sequences,\n"
              " * %d bytes), %d more are combining marks; %d blocks of %d entries.\n"
              " * Tables: %d bytes.\n */\n"
              % (mapped, len(seen), len(bytes_out),
                 sum(1 for v in entries.values() if v & 0x8000),
                 len(blocks), 1 << shift, total + len(bytes_out)))
    out.write("#define CASEMAP_SHIFT %d\n#define CASEMAP_LIMIT 0x%x\n\n" % (shift, LIMIT))

    def table(ctype, name, values, per_line, fmt):
        out.write("static const %s %s[%d] = {\n" % (ctype, name, len(values)))
        for i in range(0, len(values), per_line):
            out.write("\t" + ", ".join(fmt % v for v in values[i:i + per_line]) + ",\n")
        out.write("};\n\n")

    table("uint8_t" if s1 == 1 else "uint16_t", "casemap_stage1", stage1, 16, "%d")
    table("uint16_t", "casemap_stage2", [v for b in blocks for v in b], 8, "0x%04x")
    # The sequences, as octal escapes in string literals.
    out.write("static const char casemap_bytes[%d] =\n" % (len(bytes_out) + 1))
    for i in range(0, len(bytes_out), 16):
        out.write("\t\"" + "".join("\\%03o" % b for b in bytes_out[i:i + 16]) + "\"\n")
    out.write(";\n")


if __name__ == "__main__":
    main()
