/*
 * sort.c — SORT (RFC 5256, with DISPLAYFROM/DISPLAYTO of RFC 5957) and
 * THREAD (RFC 5256: ORDEREDSUBJECT and REFERENCES), and their UID forms.
 *
 * Both run the search of search.c (parsed before imap__sync, for the same
 * reason as SEARCH: numbers in the criteria are the client's), then order
 * the matches with the store's sort data. THREAD=REFERENCES follows RFC
 * 5256 §3 step by step; every walk over the thread tree is iterative, so a
 * mailbox of one endless reply chain cannot exhaust the thread's stack.
 * Base subjects are grouped and ordered by their i;unicode-casemap forms
 * (RFC 5051, storage/casemap.h), made once per message; the store's SORT
 * does the same for every string key. The result goes out in chunks like
 * SEARCH's.
 */
#include "imapd-private.h"
#include "storage/casemap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------- common */

/* Output tokens: a number, or one of these. */
#define TOK_OPEN (-1)
#define TOK_CLOSE (-2)

struct sort_out {
	const int64_t *tok;
	size_t n, pos;
	bool after_number;      /* the next number or "(" needs a space */
	const char *tail;
};

static bool emit(struct imap_cmd *cmd, struct sort_out *o)
{
	struct buf *out = &cmd->out;

	for (; o->pos < o->n; o->pos++) {
		int64_t t = o->tok[o->pos];

		if (out->len >= IMAP_CHUNK)
			return false;
		if (t == TOK_CLOSE) {
			buf_append(out, ")", 1);
			o->after_number = false;
			continue;
		}
		if (o->after_number)
			buf_append(out, " ", 1);
		if (t == TOK_OPEN) {
			buf_append(out, "(", 1);
			o->after_number = false;
		} else {
			buf_printf(out, "%llu", (unsigned long long)t);
			o->after_number = true;
		}
	}
	return true;
}

static void sort_finish(struct imap_cmd *cmd)
{
	struct sort_out *o = cmd->priv;

	if (!emit(cmd, o)) {
		cmd->more = true;
		return;
	}
	buf_append_str(&cmd->out, o->tail);
	buf_append_str(&cmd->out, "\r\n");
	imap__tagged(cmd, "OK", "%s completed", cmd->name);
}

/*
 * charset SP search-key...: parse (before the sync), sync, search. The
 * matching UIDs that the client's view has, ascending. 0, or -1 after the
 * tagged reply.
 */
static int run_search(struct imap_cmd *cmd, unsigned first, uint32_t **uids_r, size_t *n_r,
		      bool *condstore_r)
{
	struct imap_selected *sel = cmd->s->mail.sel;
	const struct imap_arg *cs = imap__cmd_arg(cmd, first);
	const char *charset = cs != NULL && cs->type != IMAP_ARG_LIST ?
		imap__arg_astring(cs) : NULL;
	struct store_search *tree;
	struct store_error err = { 0 };
	const char *error;

	if (charset == NULL || cmd->argc < first + 2) {
		imap__tagged(cmd, "BAD", "%s needs a charset and search criteria", cmd->name);
		return -1;
	}
	if (strcasecmp(charset, "UTF-8") != 0 && strcasecmp(charset, "US-ASCII") != 0 &&
	    strcasecmp(charset, "UTF8") != 0) {
		imap__tagged(cmd, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return -1;
	}
	if (imap__search_parse(cmd, cs->next, cmd->argc - first - 1, &tree, condstore_r,
			       &error) < 0) {
		imap__tagged_error(cmd, error);
		return -1;
	}
	imap__sync(cmd, cmd->uid);
	if (store_mailbox_search(sel->mb, tree, cmd->a, uids_r, n_r, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return -1;
	}
	size_t k = 0;

	for (size_t i = 0; i < *n_r; i++)
		if (imap__view_seq(sel, (*uids_r)[i]) != 0)
			(*uids_r)[k++] = (*uids_r)[i];
	*n_r = k;
	return 0;
}

static int64_t out_number(struct imap_cmd *cmd, uint32_t uid)
{
	return cmd->uid ? uid : imap__view_seq(cmd->s->mail.sel, uid);
}

/* RFC 7162 §3.1.5: with MODSEQ in the criteria, the highest of them. */
static const char *modseq_tail(struct imap_cmd *cmd, const uint32_t *uids, size_t n)
{
	struct store_mailbox *mb = cmd->s->mail.sel->mb;
	uint64_t max = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t seq = store_mailbox_seq(mb, uids[i]);

		if (seq != 0 && store_mailbox_msg(mb, seq)->modseq > max)
			max = store_mailbox_msg(mb, seq)->modseq;
	}
	return max == 0 ? "" : arena_printf(cmd->a, " (MODSEQ %llu)", (unsigned long long)max);
}

/* ------------------------------------------------------------- SORT */

static const struct {
	const char *name;
	enum store_sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", STORE_SORT_ARRIVAL },
	{ "CC", STORE_SORT_CC },
	{ "DATE", STORE_SORT_DATE },
	{ "FROM", STORE_SORT_FROM },
	{ "SIZE", STORE_SORT_SIZE },
	{ "SUBJECT", STORE_SORT_SUBJECT },
	{ "TO", STORE_SORT_TO },
	{ "DISPLAYFROM", STORE_SORT_DISPLAYFROM },
	{ "DISPLAYTO", STORE_SORT_DISPLAYTO },
};

/* sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
 * sort-criterion = ["REVERSE" SP] sort-key */
static int parse_sort_keys(struct imap_cmd *cmd, const struct imap_arg *list,
			   struct store_sort_spec **keys_r, size_t *n_r)
{
	struct store_sort_spec *keys;
	size_t n = 0;
	bool reverse = false;

	if (list == NULL || list->type != IMAP_ARG_LIST || list->count == 0)
		return -1;
	keys = arena_alloc(cmd->a, list->count * sizeof(*keys));
	for (const struct imap_arg *a = list->child; a != NULL; a = a->next) {
		size_t i;

		if (a->type != IMAP_ARG_ATOM)
			return -1;
		if (strcasecmp(a->str, "REVERSE") == 0) {
			if (reverse)
				return -1;
			reverse = true;
			continue;
		}
		for (i = 0; i < N_ELEMENTS(sort_keys); i++)
			if (strcasecmp(a->str, sort_keys[i].name) == 0)
				break;
		if (i == N_ELEMENTS(sort_keys))
			return -1;
		keys[n].key = sort_keys[i].key;
		keys[n++].reverse = reverse;
		reverse = false;
	}
	if (reverse)
		return -1;
	*keys_r = keys;
	*n_r = n;
	return 0;
}

void imap__cmd_sort(struct imap_cmd *cmd)
{
	struct store_sort_spec *keys;
	struct store_error err = { 0 };
	size_t nkeys, n;
	uint32_t *uids;
	bool condstore;

	if (cmd->priv != NULL) {
		sort_finish(cmd);
		return;
	}
	if (parse_sort_keys(cmd, cmd->args, &keys, &nkeys) < 0) {
		imap__tagged(cmd, "BAD", "Invalid sort criteria");
		return;
	}
	if (run_search(cmd, 1, &uids, &n, &condstore) < 0)
		return;
	if (store_mailbox_sort(cmd->s->mail.sel->mb, uids, n, keys, nkeys, &n, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	struct sort_out *o = arena_alloc(cmd->a, sizeof(*o));
	int64_t *tok = arena_alloc(cmd->a, (n + 1) * sizeof(*tok));

	for (size_t i = 0; i < n; i++)
		tok[i] = out_number(cmd, uids[i]);
	o->tok = tok;
	o->n = n;
	o->after_number = true;         /* "* SORT" then " 3 1 2" */
	o->tail = condstore ? modseq_tail(cmd, uids, n) : "";
	buf_append_str(&cmd->out, "* SORT");
	cmd->priv = o;
	sort_finish(cmd);
}

/* ----------------------------------------------------------- THREAD */

/* A container of RFC 5256 §3 REFERENCES: a message, or a dummy (msg
 * NULL) standing for a Message ID no searched message has. */
struct tnode {
	const struct store_sort_data *msg;
	struct tnode *parent, *child, *next;    /* children: a list via next */
	signed char reply;                      /* -1: not known yet */
	size_t pos;                             /* index among the roots (step 5) */
};

struct threader {
	struct imap_cmd *cmd;
	struct arena *a;
	/* Every container, for the walks that must see them all. */
	struct tnode **all;
	size_t count, cap;
	/* Message ID -> container (open addressing). */
	const char **ids;
	struct tnode **id_nodes;
	size_t id_cap, id_count;
};

static struct tnode *tnode_new(struct threader *t, const struct store_sort_data *msg)
{
	struct tnode *n = arena_alloc(t->a, sizeof(*n));

	n->msg = msg;
	n->reply = -1;
	if (t->count == t->cap) {
		size_t cap = t->cap < 64 ? 64 : t->cap * 2;
		struct tnode **all = arena_alloc(t->a, cap * sizeof(*all));

		if (t->count > 0)
			memcpy(all, t->all, t->count * sizeof(*all));
		t->all = all;
		t->cap = cap;
	}
	t->all[t->count++] = n;
	return n;
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The slot of id in the table (empty or holding it). */
static size_t id_slot(const struct threader *t, const char *id)
{
	size_t mask = t->id_cap - 1, i = (size_t)str_hash(id) & mask;

	while (t->ids[i] != NULL && strcmp(t->ids[i], id) != 0)
		i = (i + 1) & mask;
	return i;
}

static struct tnode *id_lookup(const struct threader *t, const char *id)
{
	if (t->id_cap == 0)
		return NULL;
	size_t i = id_slot(t, id);

	return t->ids[i] != NULL ? t->id_nodes[i] : NULL;
}

static void id_insert(struct threader *t, const char *id, struct tnode *n)
{
	if ((t->id_count + 1) * 2 > t->id_cap) {
		const char **old_ids = t->ids;
		struct tnode **old_nodes = t->id_nodes;
		size_t old_cap = t->id_cap;

		t->id_cap = old_cap < 64 ? 64 : old_cap * 2;
		t->ids = arena_alloc(t->a, t->id_cap * sizeof(*t->ids));
		t->id_nodes = arena_alloc(t->a, t->id_cap * sizeof(*t->id_nodes));
		for (size_t i = 0; i < old_cap; i++) {
			if (old_ids[i] != NULL) {
				size_t j = id_slot(t, old_ids[i]);

				t->ids[j] = old_ids[i];
				t->id_nodes[j] = old_nodes[i];
			}
		}
	}
	size_t i = id_slot(t, id);

	t->ids[i] = id;
	t->id_nodes[i] = n;
	t->id_count++;
}

/*
 * The next msg-id in a header value from *p: "<...>" normalised (quotes,
 * backslashes and white space dropped, so <"a b"@x> and <ab@x> are one
 * ID), in a; NULL at the end.
 */
static const char *next_msgid(struct arena *a, const char **p)
{
	const char *s = *p;

	for (;;) {
		const char *lt = strchr(s, '<'), *gt;

		if (lt == NULL || (gt = strchr(lt + 1, '>')) == NULL) {
			*p = s + strlen(s);
			return NULL;
		}
		char *id = arena_alloc(a, (size_t)(gt - lt) + 2);
		size_t n = 0;

		id[n++] = '<';
		for (const char *c = lt + 1; c < gt; c++) {
			if (*c == '\\' && c + 1 < gt)
				c++;
			else if (*c == '"' || *c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
				continue;
			id[n++] = *c;
		}
		id[n++] = '>';
		s = gt + 1;
		if (n > 2) {
			*p = s;
			return id;
		}
	}
}

/* The container for a referenced ID: found, or a new dummy. */
static struct tnode *ref_node(struct threader *t, const char *id)
{
	struct tnode *n = id_lookup(t, id);

	if (n == NULL) {
		n = tnode_new(t, NULL);
		id_insert(t, id, n);
	}
	return n;
}

/* Is a the same as b or one of b's descendants? */
static bool is_under(const struct tnode *a, const struct tnode *b)
{
	for (; a != NULL; a = a->parent)
		if (a == b)
			return true;
	return false;
}

static void unlink_node(struct tnode *n)
{
	struct tnode **pp;

	if (n->parent == NULL)
		return;
	for (pp = &n->parent->child; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	n->parent = NULL;
	n->next = NULL;
}

/* Children are prepended: their order is made by sorting, later. */
static void add_child(struct tnode *parent, struct tnode *n)
{
	n->next = parent->child;
	parent->child = n;
	n->parent = parent;
}

/* Link parent -> child unless it would make a loop. */
static void link_nodes(struct tnode *parent, struct tnode *child)
{
	if (is_under(parent, child))
		return;
	add_child(parent, child);
}

/* RFC 5256 §3 REFERENCES step 1. */
static void thread_link(struct threader *t, const struct store_sort_data *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = d[i].message_id, *id = next_msgid(t->a, &p);
		struct tnode *m = id != NULL ? id_lookup(t, id) : NULL;

		/* No ID, or one a lower-numbered message took: unique. */
		if (m != NULL && m->msg == NULL) {
			m->msg = &d[i];
		} else {
			m = tnode_new(t, &d[i]);
			if (id != NULL && id_lookup(t, id) == NULL)
				id_insert(t, id, m);
		}
		/* References, else the first ID of In-Reply-To. */
		struct tnode *prev = NULL;
		const char *ref;

		p = d[i].references;
		while ((ref = next_msgid(t->a, &p)) != NULL) {
			struct tnode *r = ref_node(t, ref);

			/* (1A) keep existing links. */
			if (prev != NULL && r->parent == NULL && r != prev)
				link_nodes(prev, r);
			prev = r;
		}
		if (prev == NULL) {
			p = d[i].in_reply_to;
			if ((ref = next_msgid(t->a, &p)) != NULL)
				prev = ref_node(t, ref);
		}
		/* (1B) the last reference is the parent, replacing any. */
		unlink_node(m);
		if (prev != NULL && prev != m)
			link_nodes(prev, m);
	}
}

/* Step 3: dummies go, their children take their place; at the top only
 * a lone child is promoted. Iterative: a stack of containers whose
 * children are still to be pruned. */
static size_t thread_prune(struct threader *t, struct tnode **roots, size_t nroots)
{
	struct tnode **stack = arena_alloc(t->a, (t->count + 1) * sizeof(*stack));
	size_t sp = 0, k = 0;

	for (size_t i = 0; i < nroots; i++) {
		struct tnode *r = roots[i];

		/* A dummy at the top with one child: the child is the root. */
		while (r->msg == NULL && r->child != NULL && r->child->next == NULL) {
			struct tnode *c = r->child;

			c->parent = NULL;
			r->child = NULL;
			r = c;
		}
		if (r->msg == NULL && r->child == NULL)
			continue;
		roots[k++] = r;
		stack[sp++] = r;
	}
	while (sp > 0) {
		struct tnode *parent = stack[--sp];
		struct tnode **pp = &parent->child;

		while (*pp != NULL) {
			struct tnode *c = *pp;

			if (c->msg != NULL) {
				if (c->child != NULL)
					stack[sp++] = c;
				pp = &c->next;
				continue;
			}
			/* Splice the dummy's children in its place (and look
			 * at them next: they may be dummies too). */
			struct tnode *first = c->child, *last = NULL;

			for (struct tnode *g = first; g != NULL; g = g->next) {
				g->parent = parent;
				last = g;
			}
			if (first == NULL) {
				*pp = c->next;
			} else {
				last->next = c->next;
				*pp = first;
			}
			c->child = NULL;
		}
	}
	/* Splicing may have left a top dummy with one child or none. */
	size_t w = 0;

	for (size_t i = 0; i < k; i++) {
		struct tnode *r = roots[i];

		if (r->msg == NULL && r->child != NULL && r->child->next == NULL) {
			r = r->child;
			r->parent = NULL;
		}
		if (r->msg != NULL || r->child != NULL)
			roots[w++] = r;
	}
	return w;
}

/* Sent date and number of a container (a dummy's: its first child's). */
static const struct store_sort_data *sort_msg(const struct tnode *n)
{
	while (n != NULL && n->msg == NULL)
		n = n->child;
	return n != NULL ? n->msg : NULL;
}

static int date_cmp(const void *pa, const void *pb)
{
	const struct store_sort_data *a = sort_msg(*(struct tnode *const *)pa);
	const struct store_sort_data *b = sort_msg(*(struct tnode *const *)pb);

	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sort the children of n by sent date (tmp holds t->count pointers). */
static void sort_children(struct tnode *n, struct tnode **tmp)
{
	size_t k = 0;

	for (struct tnode *c = n->child; c != NULL; c = c->next)
		tmp[k++] = c;
	if (k < 2)
		return;
	qsort(tmp, k, sizeof(*tmp), date_cmp);
	n->child = tmp[0];
	for (size_t i = 0; i + 1 < k; i++)
		tmp[i]->next = tmp[i + 1];
	tmp[k - 1]->next = NULL;
}

/* Equality of casemapped base subjects, for the subject table. */
static bool subject_eq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* The raw Subject of a message from its ENVELOPE (date, then subject). */
static const char *raw_subject(struct threader *t, const struct store_sort_data *d)
{
	struct store_msg_structure st;
	struct store_error err = { 0 };
	const char *p;

	if (store_msg_structure(t->cmd->s->mail.sel->mb, d->uid, t->a, &st, &err) < 0)
		return "";
	p = st.envelope;
	if (*p++ != '(')
		return "";
	/* Skip the date: NIL, a quoted string or a literal. */
	for (int field = 0; field < 2; field++) {
		const char *start;
		char *s;
		size_t n = 0;

		while (*p == ' ')
			p++;
		if (strncasecmp(p, "NIL", 3) == 0) {
			p += 3;
			if (field == 1)
				return "";
			continue;
		}
		if (*p == '{') {
			char *end;
			unsigned long long len = strtoull(p + 1, &end, 10);

			if (*end != '}' || end[1] != '\r' || end[2] != '\n')
				return "";
			start = end + 3;
			if (field == 1)
				return arena_strndup(t->a, start, (size_t)len);
			p = start + len;
			continue;
		}
		if (*p != '"')
			return "";
		s = arena_alloc(t->a, strlen(p) + 1);
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			s[n++] = *p;
		}
		if (*p == '"')
			p++;
		if (field == 1)
			return s;
	}
	return "";
}

/* RFC 5256 §3: a reply or forward if base subject extraction would
 * remove a subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper. */
static bool subject_is_reply(const char *s)
{
	size_t len = strlen(s);

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 5 && strncasecmp(s + len - 5, "(fwd)", 5) == 0)
		return true;
	while (*s == ' ' || *s == '\t')
		s++;
	if (strncasecmp(s, "[fwd:", 5) == 0 && len > 0)
		return true;
	/* *subj-blob subj-refwd */
	for (;;) {
		const char *q = s;

		if (strncasecmp(q, "re", 2) == 0)
			q += 2;
		else if (strncasecmp(q, "fwd", 3) == 0)
			q += 3;
		else if (strncasecmp(q, "fw", 2) == 0)
			q += 2;
		if (q != s) {
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '[') {
				const char *e = strpbrk(q + 1, "[]");

				if (e != NULL && *e == ']')
					q = e + 1;
				while (*q == ' ' || *q == '\t')
					q++;
			}
			if (*q == ':')
				return true;
		}
		if (*s != '[')
			return false;
		const char *e = strpbrk(s + 1, "[]");

		if (e == NULL || *e != ']')
			return false;
		s = e + 1;
		while (*s == ' ' || *s == '\t')
			s++;
	}
}

static bool is_reply(struct threader *t, struct tnode *n)
{
	if (n->msg == NULL)
		return false;
	if (n->reply < 0)
		n->reply = subject_is_reply(raw_subject(t, n->msg));
	return n->reply > 0;
}

/* Step 5: threads whose roots share a base subject are merged. */
static size_t thread_group(struct threader *t, struct tnode **roots, size_t nroots)
{
	size_t cap = 64;

	while (cap < nroots * 2)
		cap *= 2;
	struct tnode **table = arena_alloc(t->a, cap * sizeof(*table));
	const char **subj = arena_alloc(t->a, cap * sizeof(*subj));
	size_t mask = cap - 1;

	/* (B) one container per subject. */
	for (size_t i = 0; i < nroots; i++) {
		const struct store_sort_data *m = sort_msg(roots[i]);
		const char *s = m != NULL ? m->base_subject : "";

		if (*s == '\0')
			continue;
		size_t j = (size_t)str_hash(s) & mask;

		while (table[j] != NULL && !subject_eq(subj[j], s))
			j = (j + 1) & mask;
		if (table[j] == NULL) {
			table[j] = roots[i];
			subj[j] = s;
		} else if (table[j]->msg != NULL &&
			   (roots[i]->msg == NULL ||
			    (is_reply(t, table[j]) && !is_reply(t, roots[i])))) {
			table[j] = roots[i];
		}
	}
	/* (C) merge into the table's container. */
	size_t k = 0;

	for (size_t i = 0; i < nroots; i++)
		roots[i]->pos = i;

	for (size_t i = 0; i < nroots; i++) {
		struct tnode *cur = roots[i];
		const struct store_sort_data *m = sort_msg(cur);
		const char *s = m != NULL ? m->base_subject : "";

		if (*s == '\0') {
			cur->pos = k;
			roots[k++] = cur;
			continue;
		}
		size_t j = (size_t)str_hash(s) & mask;

		while (subj[j] != NULL && !subject_eq(subj[j], s))
			j = (j + 1) & mask;
		struct tnode *tab = table[j];

		if (tab == NULL || tab == cur) {
			cur->pos = k;
			roots[k++] = cur;
			continue;
		}
		if (tab->msg == NULL && cur->msg == NULL) {
			while (cur->child != NULL) {
				struct tnode *c = cur->child;

				cur->child = c->next;
				add_child(tab, c);
			}
		} else if (tab->msg == NULL) {
			add_child(tab, cur);
		} else if (is_reply(t, cur) && !is_reply(t, tab)) {
			add_child(tab, cur);
		} else {
			/* A new dummy takes the table entry's place among the
			 * roots, before or after this one (the order does not
			 * matter: step 6 sorts). */
			struct tnode *d = tnode_new(t, NULL);

			d->pos = tab->pos;
			roots[tab->pos] = d;
			add_child(d, tab);
			add_child(d, cur);
			table[j] = d;
		}
	}
	return k;
}

/* Tokens of the thread list: "(" members ")" per root, where members of
 * a message are its number and then its only child's members, or each
 * child's members in parentheses (RFC 5256 §4 thread-list). */
static int64_t *thread_tokens(struct threader *t, struct tnode **roots, size_t nroots,
			      size_t *n_r)
{
	/* Each container: at most a number, "(" and ")"; plus the roots'. */
	size_t cap = 3 * (t->count + nroots) + 1, n = 0;
	int64_t *tok = arena_alloc(t->a, cap * sizeof(*tok));
	/* Work stack: a container to expand, or a pending token (tagged). */
	struct item {
		const struct tnode *node;
		int64_t tok;
	} *stack = arena_alloc(t->a, cap * sizeof(*stack));
	size_t sp = 0;

	for (size_t i = nroots; i-- > 0;) {
		stack[sp++] = (struct item){ NULL, TOK_CLOSE };
		stack[sp++] = (struct item){ roots[i], 0 };
		stack[sp++] = (struct item){ NULL, TOK_OPEN };
	}
	while (sp > 0) {
		struct item it = stack[--sp];
		const struct tnode *x = it.node;

		if (x == NULL) {
			tok[n++] = it.tok;
			continue;
		}
		if (x->msg != NULL)
			tok[n++] = out_number(t->cmd, x->msg->uid);
		if (x->child == NULL)
			continue;
		if (x->child->next == NULL && x->msg != NULL) {
			stack[sp++] = (struct item){ x->child, 0 };
			continue;
		}
		size_t k = 0;

		for (const struct tnode *c = x->child; c != NULL; c = c->next)
			k++;
		sp += 3 * k;
		size_t w = sp;

		for (const struct tnode *c = x->child; c != NULL; c = c->next) {
			stack[--w] = (struct item){ NULL, TOK_OPEN };
			stack[--w] = (struct item){ c, 0 };
			stack[--w] = (struct item){ NULL, TOK_CLOSE };
		}
	}
	*n_r = n;
	return tok;
}

static struct tnode **thread_references(struct threader *t, const struct store_sort_data *d,
					size_t n, size_t *nroots_r)
{
	thread_link(t, d, n);
	/* (2) the roots. */
	struct tnode **roots = arena_alloc(t->a, (t->count + 1) * sizeof(*roots));
	struct tnode **tmp;
	size_t nroots = 0;

	for (size_t i = 0; i < t->count; i++)
		if (t->all[i]->parent == NULL)
			roots[nroots++] = t->all[i];
	nroots = thread_prune(t, roots, nroots);
	/* (4) roots by date, a dummy by its first child's. */
	tmp = arena_alloc(t->a, (t->count + 1) * sizeof(*tmp));
	for (size_t i = 0; i < nroots; i++)
		if (roots[i]->msg == NULL)
			sort_children(roots[i], tmp);
	qsort(roots, nroots, sizeof(*roots), date_cmp);
	nroots = thread_group(t, roots, nroots);
	/* (6) every set of siblings; the dummies (only at the top) use
	 * their first child, so the top level goes last. */
	tmp = arena_alloc(t->a, (t->count + 1) * sizeof(*tmp));
	for (size_t i = 0; i < t->count; i++)
		sort_children(t->all[i], tmp);
	qsort(roots, nroots, sizeof(*roots), date_cmp);
	*nroots_r = nroots;
	return roots;
}

static int subject_date_cmp(const void *pa, const void *pb)
{
	const struct store_sort_data *a = pa, *b = pb;
	int r = strcmp(a->base_subject, b->base_subject);

	if (r != 0)
		return r;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* ORDEREDSUBJECT: by base subject then date; the first of each subject
 * is the root, the rest its children; threads by their root's date. */
static struct tnode **thread_orderedsubject(struct threader *t, struct store_sort_data *d,
					    size_t n, size_t *nroots_r)
{
	struct tnode **roots = arena_alloc(t->a, (n + 1) * sizeof(*roots));
	size_t nroots = 0;

	qsort(d, n, sizeof(*d), subject_date_cmp);
	for (size_t i = 0; i < n; i++) {
		struct tnode *x = tnode_new(t, &d[i]);

		if (i > 0 && strcmp(d[i].base_subject, d[i - 1].base_subject) == 0)
			add_child(roots[nroots - 1], x);
		else
			roots[nroots++] = x;
	}
	struct tnode **tmp = arena_alloc(t->a, (n + 1) * sizeof(*tmp));

	for (size_t i = 0; i < nroots; i++)
		sort_children(roots[i], tmp);
	qsort(roots, nroots, sizeof(*roots), date_cmp);
	*nroots_r = nroots;
	return roots;
}

void imap__cmd_thread(struct imap_cmd *cmd)
{
	struct store_error err = { 0 };
	struct store_sort_data *d;
	struct threader t = { .cmd = cmd, .a = cmd->a };
	struct tnode **roots;
	const char *alg;
	size_t n, nd, nroots, ntok;
	uint32_t *uids;
	bool condstore, refs;

	if (cmd->priv != NULL) {
		sort_finish(cmd);
		return;
	}
	alg = cmd->argc > 0 && cmd->args->type == IMAP_ARG_ATOM ? cmd->args->str : NULL;
	if (alg == NULL || (strcasecmp(alg, "REFERENCES") != 0 &&
			    strcasecmp(alg, "ORDEREDSUBJECT") != 0)) {
		imap__tagged(cmd, "BAD", "Unknown threading algorithm");
		return;
	}
	refs = strcasecmp(alg, "REFERENCES") == 0;
	if (run_search(cmd, 1, &uids, &n, &condstore) < 0)
		return;
	if (store_mailbox_sort_data(cmd->s->mail.sel->mb, uids, n, cmd->a, &d, &nd, &err) < 0) {
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	/* Only compared from here on: their forms. */
	for (size_t i = 0; i < nd; i++)
		d[i].base_subject = store_casemap_subject(cmd->a, d[i].base_subject);
	roots = refs ? thread_references(&t, d, nd, &nroots) :
		thread_orderedsubject(&t, d, nd, &nroots);

	struct sort_out *o = arena_alloc(cmd->a, sizeof(*o));

	o->tok = thread_tokens(&t, roots, nroots, &ntok);
	o->n = ntok;
	o->after_number = true;         /* "* THREAD" then " (1)(2 3)" */
	o->tail = "";
	buf_append_str(&cmd->out, "* THREAD");
	cmd->priv = o;
	sort_finish(cmd);
}
