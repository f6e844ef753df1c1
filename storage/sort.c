/*
 * sort.c — what SORT (RFC 5256, RFC 5957) and THREAD need of messages:
 * sort keys taken from the view and from message_meta's decoded header
 * fields (base subject, first addresses, display names, sent date) and
 * the threading fields, and sorting a set of UIDs by a list of keys.
 * String keys compare with i;unicode-casemap (RFC 5051, as RFC 5256 and
 * RFC 5255's I18NLEVEL=1 ask): each message's key is casemapped once per
 * sort, and the forms compare octet by octet.
 *
 * The From, To and Cc values in message_meta are decoded already
 * (RFC 2047), so their addresses are parsed from the decoded text: a
 * display name whose decoded form holds a comma or angle brackets outside
 * quotes can make the first address come out wrong (rare; Dovecot parses
 * before decoding).
 */
#include "storage-private.h"
#include "mime-private.h"
#include "fts-private.h"
#include "storage/casemap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------ base subject */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP: its length at s, or 0. */
static size_t blob_len(const char *s)
{
	if (*s != '[')
		return 0;
	size_t n = 1;

	while (s[n] != '\0' && s[n] != '[' && s[n] != ']')
		n++;
	if (s[n] != ']')
		return 0;
	n++;
	while (is_wsp(s[n]))
		n++;
	return n;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t refwd_len(const char *s)
{
	size_t n;

	if (strncasecmp(s, "re", 2) == 0)
		n = 2;
	else if (strncasecmp(s, "fwd", 3) == 0)
		n = 3;
	else if (strncasecmp(s, "fw", 2) == 0)
		n = 2;
	else
		return 0;
	while (is_wsp(s[n]))
		n++;
	n += blob_len(s + n);
	return s[n] == ':' ? n + 1 : 0;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP */
static size_t leader_len(const char *s)
{
	if (is_wsp(*s))
		return 1;
	size_t n = 0, b;

	while ((b = blob_len(s + n)) > 0)
		n += b;
	size_t r = refwd_len(s + n);

	return r > 0 ? n + r : 0;
}

char *store_base_subject(struct arena *a, const char *subject)
{
	size_t len = subject != NULL ? strlen(subject) : 0;
	char *buf = arena_alloc(a, len + 1);
	size_t n = 0;

	/* (1) White space runs (tabs, unfolded line ends) become one space. */
	for (size_t i = 0; i < len; i++) {
		char c = subject[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && n > 0 && buf[n - 1] == ' ')
			continue;
		buf[n++] = c;
	}
	buf[n] = '\0';
	char *s = buf;

	for (;;) {
		/* (2) subj-trailer = "(fwd)" / WSP, from the end. */
		for (;;) {
			size_t l = strlen(s);

			if (l > 0 && is_wsp(s[l - 1]))
				s[l - 1] = '\0';
			else if (l >= 5 && strcasecmp(s + l - 5, "(fwd)") == 0)
				s[l - 5] = '\0';
			else
				break;
		}
		/* (3)-(5) subj-leader, and a subj-blob that leaves some text. */
		for (;;) {
			bool changed = false;
			size_t l;

			while ((l = leader_len(s)) > 0) {
				s += l;
				changed = true;
			}
			l = blob_len(s);
			if (l > 0 && s[l] != '\0') {
				s += l;
				changed = true;
			}
			if (!changed)
				break;
		}
		/* (6) subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]" */
		size_t l = strlen(s);

		if (l >= 6 && strncasecmp(s, "[fwd:", 5) == 0 && s[l - 1] == ']') {
			s[l - 1] = '\0';
			s += 5;
			continue;
		}
		return s;
	}
}

/* ---------------------------------------------------------- the data */

/* The first address of a decoded address list: its mailbox (local part)
 * and its RFC 5957 display form. Groups are looked into. */
static void first_address(struct arena *a, const char *value, const char **mailbox_r,
			  const char **display_r)
{
	*mailbox_r = "";
	*display_r = "";
	if (value == NULL)
		return;
	for (const struct mime_address *ad = mime_address_parse(a, value, 64); ad != NULL;
	     ad = ad->next) {
		if (ad->host == NULL)
			continue;       /* group start or end */
		*mailbox_r = ad->mailbox != NULL ? ad->mailbox : "";
		if (ad->name != NULL && ad->name[0] != '\0')
			*display_r = ad->name;
		else
			*display_r = arena_printf(a, "%s@%s", *mailbox_r, ad->host);
		return;
	}
}

static const char *col_str(struct arena *a, sqlite3_stmt *st, int col)
{
	const char *v = (const char *)sqlite3_column_text(st, col);

	return v != NULL ? arena_strdup(a, v) : "";
}

int store_mailbox_sort_data(struct store_mailbox *mb, const uint32_t *uids, size_t count,
			    struct arena *a, struct store_sort_data **data_r, size_t *count_r,
			    struct store_error *err)
{
	struct store_user *u = mb->user;
	struct store_sort_data *d = arena_alloc(a, (count + 1) * sizeof(*d));
	sqlite3_stmt *st;
	size_t n = 0;

	memset(err, 0, sizeof(*err));
	*data_r = d;
	*count_r = 0;
	if (!u->meta)
		return store__fail(err, STORE_ERR_TEMP, "no message_meta table");
	if (sqlite3_prepare_v2(u->db, "SELECT date, subject, addr_from, addr_to, addr_cc,"
			       " message_id, in_reply_to, refs FROM message_meta"
			       " WHERE mailbox_id = ? AND uid = ?", -1, &st, NULL) != SQLITE_OK)
		return store__fail_db(err, u->db, "sort");
	for (size_t i = 0; i < count; i++) {
		uint32_t seq = store_mailbox_seq(mb, uids[i]);

		if (seq == 0)
			continue;
		const struct store_msg *m = store_mailbox_msg(mb, seq);
		struct store_sort_data *s = &d[n++];
		int rc = SQLITE_DONE;

		memset(s, 0, sizeof(*s));
		s->uid = m->uid;
		s->seq = seq;
		s->arrival = m->internal_date;
		s->date = m->internal_date;
		s->size = m->vsize;
		for (int attempt = 0; attempt < 2; attempt++) {
			sqlite3_bind_int64(st, 1, mb->id);
			sqlite3_bind_int64(st, 2, m->uid);
			rc = sqlite3_step(st);
			if (rc != SQLITE_DONE || attempt > 0)
				break;
			/* No row yet: parse the file now. */
			sqlite3_reset(st);
			if (store__meta_fill(mb, m->uid, err) < 0)
				break;
		}
		if (err->code != STORE_ERR_NONE || (rc != SQLITE_ROW && rc != SQLITE_DONE)) {
			sqlite3_finalize(st);
			return err->code != STORE_ERR_NONE ? -1 : store__fail_db(err, u->db, "sort");
		}
		if (rc == SQLITE_ROW) {
			const char *dummy;

			if (sqlite3_column_type(st, 0) != SQLITE_NULL)
				s->date = sqlite3_column_int64(st, 0);
			s->base_subject = store_base_subject(a, col_str(a, st, 1));
			first_address(a, col_str(a, st, 2), &s->from, &s->display_from);
			first_address(a, col_str(a, st, 3), &s->to, &s->display_to);
			first_address(a, col_str(a, st, 4), &s->cc, &dummy);
			s->message_id = col_str(a, st, 5);
			s->in_reply_to = col_str(a, st, 6);
			s->references = col_str(a, st, 7);
		} else {
			s->base_subject = s->from = s->to = s->cc = "";
			s->display_from = s->display_to = "";
			s->message_id = s->in_reply_to = s->references = "";
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	*count_r = n;
	return 0;
}

/* ---------------------------------------------------------- sorting */

/* Casemapped strings: octet by octet. */
static int casemap_cmp(const char *a, const char *b)
{
	int r = strcmp(a, b);

	return (r > 0) - (r < 0);
}

static int num_cmp(int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

struct sort_keys {
	const struct store_sort_spec *keys;
	size_t n;
};

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
	const struct store_sort_data *a = pa, *b = pb;
	const struct sort_keys *k = arg;

	for (size_t i = 0; i < k->n; i++) {
		int r = 0;

		switch (k->keys[i].key) {
		case STORE_SORT_ARRIVAL:
			r = num_cmp(a->arrival, b->arrival);
			break;
		case STORE_SORT_DATE:
			r = num_cmp(a->date, b->date);
			break;
		case STORE_SORT_SIZE:
			r = a->size > b->size ? 1 : a->size < b->size ? -1 : 0;
			break;
		case STORE_SORT_SUBJECT:
			r = casemap_cmp(a->base_subject, b->base_subject);
			break;
		case STORE_SORT_FROM:
			r = casemap_cmp(a->from, b->from);
			break;
		case STORE_SORT_TO:
			r = casemap_cmp(a->to, b->to);
			break;
		case STORE_SORT_CC:
			r = casemap_cmp(a->cc, b->cc);
			break;
		case STORE_SORT_DISPLAYFROM:
			r = casemap_cmp(a->display_from, b->display_from);
			break;
		case STORE_SORT_DISPLAYTO:
			r = casemap_cmp(a->display_to, b->display_to);
			break;
		}
		if (r != 0)
			return k->keys[i].reverse ? -r : r;
	}
	return num_cmp(a->seq, b->seq);
}

/* The casemapped form of s, in a (tmp: room to make it). */
static const char *key_form(struct arena *a, struct buf *tmp, const char *s)
{
	buf_clear(tmp);
	store_casemap(tmp, s, strlen(s));
	return tmp->data != NULL ? arena_strndup(a, (const char *)tmp->data, tmp->len) : "";
}

/* The string keys the sort compares, each replaced by its form. */
static void casemap_keys(struct arena *a, struct store_sort_data *d, size_t n,
			 const struct store_sort_spec *keys, size_t nkeys)
{
	unsigned done = 0;
	struct buf tmp;

	buf_init(&tmp, SIZE_MAX);
	for (size_t k = 0; k < nkeys; k++) {
		enum store_sort_key key = keys[k].key;

		if (key == STORE_SORT_ARRIVAL || key == STORE_SORT_DATE ||
		    key == STORE_SORT_SIZE || (done & (1u << key)) != 0)
			continue;
		done |= 1u << key;
		for (size_t i = 0; i < n; i++) {
			struct store_sort_data *s = &d[i];

			switch (key) {
			case STORE_SORT_SUBJECT:
				s->base_subject = store_casemap_subject(a, s->base_subject);
				break;
			case STORE_SORT_FROM:
				s->from = key_form(a, &tmp, s->from);
				break;
			case STORE_SORT_TO:
				s->to = key_form(a, &tmp, s->to);
				break;
			case STORE_SORT_CC:
				s->cc = key_form(a, &tmp, s->cc);
				break;
			case STORE_SORT_DISPLAYFROM:
				s->display_from = key_form(a, &tmp, s->display_from);
				break;
			case STORE_SORT_DISPLAYTO:
				s->display_to = key_form(a, &tmp, s->display_to);
				break;
			default:
				break;
			}
		}
	}
	buf_release(&tmp);
}

int store_mailbox_sort(struct store_mailbox *mb, uint32_t *uids, size_t count,
		       const struct store_sort_spec *keys, size_t nkeys, size_t *count_r,
		       struct store_error *err)
{
	struct arena *a = arena_new(0);
	struct store_sort_data *d;
	size_t n;
	struct sort_keys k = { keys, nkeys };

	*count_r = 0;
	if (store_mailbox_sort_data(mb, uids, count, a, &d, &n, err) < 0) {
		arena_free(&a);
		return -1;
	}
	casemap_keys(a, d, n, keys, nkeys);
	qsort_r(d, n, sizeof(*d), sort_cmp, &k);
	for (size_t i = 0; i < n; i++)
		uids[i] = d[i].uid;
	*count_r = n;
	arena_free(&a);
	return 0;
}
