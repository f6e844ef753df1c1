/*
 * casemap.h — the i;unicode-casemap comparator (RFC 5051), with which
 * SEARCH matches strings and SORT and THREAD compare them (RFC 5255
 * I18NLEVEL=1). Part of storage/ (search.c, sort.c, fts.c); imapd's
 * THREAD uses it for base subjects.
 *
 * Two strings are equal, one contains the other, or one sorts before the
 * other exactly when their casemapped forms are, or do, octet by octet.
 */
#ifndef TERN_CASEMAP_H
#define TERN_CASEMAP_H

#include <stddef.h>

#include "common/common.h"

/*
 * Append the casemapped form of the len bytes at s (UTF-8) to out: each
 * character replaced by its simple titlecase mapping, which is then fully
 * decomposed (compatibility decompositions included, Hangul syllables
 * into their jamo), each character of a decomposition mapped the same way
 * again; then combining marks are put in canonical order (runs of more
 * than 32 in a row are ordered 32 at a time). So "é", "E" + U+0301 and
 * "É" are one form, as are "ﬁ" and "FI", "ǆ" and "DŽ", "K" (Kelvin) and
 * "k", "ς" and "Σ"; "ß" stays "ß" (it has no one-character titlecase).
 * Each byte that is not part of valid UTF-8 becomes U+FFFD; NUL stays.
 * The form is valid UTF-8 and casemapping it again changes nothing.
 *
 * 0, or BUF_ETOOBIG when out's maximum stopped it: out then ends with the
 * form of a prefix of s, cut between two characters. Never blocks.
 */
int store_casemap(struct buf *out, const void *s, size_t len);

/* The casemapped form of the string s, NUL-terminated, in a. */
char *store_casemap_str(struct arena *a, const char *s);

/*
 * What SORT (SUBJECT) and THREAD compare for a base subject as
 * store_base_subject returns it: its casemapped form, with the base
 * subject taken once more from that (so a "Re:" that only shows after
 * casemapping, like one followed by a no-break space, goes too). In a.
 */
char *store_casemap_subject(struct arena *a, const char *base_subject);

#endif
