/*
 * search.c — SEARCH and UID SEARCH: the search-key grammar (RFC 9051
 * §6.4.4, RFC 3501 §6.4.4 with NEW OLD RECENT, RFC 5032 OLDER/YOUNGER,
 * RFC 8514 SAVED*, RFC 7162 MODSEQ, RFC 8474 EMAILID/THREADID) parsed into
 * the store's criteria tree, and the result as SEARCH or ESEARCH (RFC
 * 4731, and the IMAP4rev2 default), with SEARCHRES (RFC 5182) saving it
 * for "$".
 *
 * Order of work. The criteria are parsed first, against the client's view
 * as it was when the client sent the command: message numbers in the
 * criteria become UIDs then. Only after that does imap__sync bring the
 * view up to date (UID SEARCH may announce expunges, which shift numbers;
 * SEARCH only adds new messages), and the store is searched. The result's
 * UIDs are then numbered in the view the client has after the untagged
 * updates that precede the result, so every number we send means what the
 * client thinks it means. Tern has no \Recent (nothing is ever recent):
 * RECENT and NEW match nothing, OLD matches everything. String keys
 * match with i;unicode-casemap (RFC 5051), as I18NLEVEL=1 (RFC 5255)
 * promises: the store casemaps the strings parsed here (storage/casemap.h).
 *
 * Large results go out in chunks of IMAP_CHUNK (cmd->more), with the
 * numbers kept in the command's arena between chunks.
 */
#include "imapd-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Nesting of NOT, OR and lists while parsing (the stack), and of AND, OR
 * and NOT in the tree the store evaluates (each AND or OR level costs the
 * store a byte per message). */
#define PARSE_DEPTH_MAX 1000
#define TREE_DEPTH_MAX 64

/* --------------------------------------------------------------- parse */

struct parse_ctx {
	struct imap_cmd *cmd;
	bool condstore;
	unsigned depth;
	const char *error;
};

/* The arguments still to read at one level. */
struct cursor {
	const struct imap_arg *arg;
	unsigned left;
};

static const struct imap_arg *cursor_next(struct cursor *c)
{
	const struct imap_arg *a;

	if (c->left == 0 || c->arg == NULL)
		return NULL;
	a = c->arg;
	c->arg = a->next;
	c->left--;
	return a;
}

static struct store_search *node_new(struct parse_ctx *p, enum store_search_kind kind)
{
	struct store_search *n = arena_alloc(p->cmd->a, sizeof(*n));

	n->kind = kind;
	return n;
}

static int fail(struct parse_ctx *p, const char *error)
{
	p->error = error;
	return -1;
}

static bool valid_utf8(const char *s, size_t len)
{
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		int n = utf8_decode(s + i, len - i, &cp);

		if (n < 0)
			return false;
		i += (size_t)n;
	}
	return true;
}

/* astring: an atom (NIL is the string "NIL" here), quoted string or
 * literal, UTF-8 without NUL. */
static const char *arg_string(struct parse_ctx *p, const struct imap_arg *a)
{
	const char *s;

	if (a == NULL) {
		p->error = "BAD Missing search string";
		return NULL;
	}
	s = a->type == IMAP_ARG_NIL ? a->str : imap__arg_astring(a);
	if (s == NULL || (a->flags & (IMAP_ARG_HAS_NUL | IMAP_ARG_LITERAL8))) {
		p->error = "BAD Invalid search string";
		return NULL;
	}
	if (!valid_utf8(s, strlen(s))) {
		p->error = "BAD Search string is not valid UTF-8";
		return NULL;
	}
	return s;
}

static const char *arg_atom(const struct imap_arg *a)
{
	return a != NULL && a->type == IMAP_ARG_ATOM ? a->str : NULL;
}

/* UIDs of the view (ascending) as ranges: consecutive positions in the
 * view make one range, since after a sync every UID the store has between
 * two view neighbours is in the view too. */
static void uids_to_node(struct parse_ctx *p, const uint32_t *uids, size_t n,
			 struct store_search *node)
{
	const struct imap_selected *sel = p->cmd->s->mail.sel;
	struct store_seq_range *r = arena_alloc(p->cmd->a, (n + 1) * sizeof(*r));
	size_t k = 0, v = 0, prev_v = 0;

	for (size_t i = 0; i < n; i++) {
		while (v < sel->count && sel->uids[v] < uids[i])
			v++;
		if (k > 0 && v == prev_v + 1) {
			r[k - 1].hi = uids[i];
		} else {
			r[k].lo = r[k].hi = uids[i];
			k++;
		}
		prev_v = v;
	}
	node->kind = STORE_SEARCH_UID;
	node->set = r;
	node->set_count = k;
}

/* sequence-set of message numbers, or of UIDs after the UID key. */
static int parse_set(struct parse_ctx *p, const char *text, bool by_uid, struct store_search **r)
{
	struct store_search *node = node_new(p, STORE_SEARCH_UID);
	uint32_t *uids;
	size_t n;

	if (by_uid && strcmp(text, "$") != 0) {
		/* UIDs go to the store as they are: "*" is the highest UID,
		 * no view needed, and "1:*" costs one range. */
		struct imap_seqset *set;
		struct store_seq_range *rg;

		if (imap_seqset_parse(text, strlen(text), imap__set.max_sequence_ranges, false,
				      p->cmd->a, &set, &p->error) < 0)
			return -1;
		rg = arena_alloc(p->cmd->a, (set->count + 1) * sizeof(*rg));
		for (unsigned i = 0; i < set->count; i++) {
			rg[i].lo = set->ranges[i].lo == IMAP_SEQ_STAR ? STORE_SEQ_STAR :
				set->ranges[i].lo;
			rg[i].hi = set->ranges[i].hi == IMAP_SEQ_STAR ? STORE_SEQ_STAR :
				set->ranges[i].hi;
		}
		node->set = rg;
		node->set_count = set->count;
		*r = node;
		return 0;
	}
	if (imap__seqset_uids(p->cmd, text, by_uid, &uids, &n, &p->error) < 0)
		return -1;
	uids_to_node(p, uids, n, node);
	*r = node;
	return 0;
}

static bool is_set_atom(const char *s)
{
	return (*s >= '0' && *s <= '9') || *s == '*' || *s == '$';
}

struct key_def {
	const char *name;
	enum { K_FLAG, K_UNFLAG, K_ALL, K_NONE, K_STRING, K_DATE, K_NUMBER, K_NZNUMBER,
	       K_KEYWORD, K_HEADER, K_NOT, K_OR, K_UID, K_MODSEQ, K_OBJECTID } arg;
	enum store_search_kind kind;
	uint32_t flags;
};

static const struct key_def keys[] = {
	{ "ALL", K_ALL, STORE_SEARCH_ALL, 0 },
	{ "ANSWERED", K_FLAG, STORE_SEARCH_FLAGS, STORE_FLAG_ANSWERED },
	{ "BCC", K_STRING, STORE_SEARCH_BCC, 0 },
	{ "BEFORE", K_DATE, STORE_SEARCH_BEFORE, 0 },
	{ "BODY", K_STRING, STORE_SEARCH_BODY, 0 },
	{ "CC", K_STRING, STORE_SEARCH_CC, 0 },
	{ "DELETED", K_FLAG, STORE_SEARCH_FLAGS, STORE_FLAG_DELETED },
	{ "DRAFT", K_FLAG, STORE_SEARCH_FLAGS, STORE_FLAG_DRAFT },
	{ "EMAILID", K_OBJECTID, STORE_SEARCH_EMAILID, 0 },
	{ "FLAGGED", K_FLAG, STORE_SEARCH_FLAGS, STORE_FLAG_FLAGGED },
	{ "FROM", K_STRING, STORE_SEARCH_FROM, 0 },
	{ "HEADER", K_HEADER, STORE_SEARCH_HEADER, 0 },
	{ "KEYWORD", K_KEYWORD, STORE_SEARCH_KEYWORD, 0 },
	{ "LARGER", K_NUMBER, STORE_SEARCH_LARGER, 0 },
	{ "MODSEQ", K_MODSEQ, STORE_SEARCH_MODSEQ, 0 },
	{ "NEW", K_NONE, STORE_SEARCH_ALL, 0 },
	{ "NOT", K_NOT, STORE_SEARCH_NOT, 0 },
	{ "OLD", K_ALL, STORE_SEARCH_ALL, 0 },
	{ "OLDER", K_NZNUMBER, STORE_SEARCH_OLDER, 0 },
	{ "ON", K_DATE, STORE_SEARCH_ON, 0 },
	{ "OR", K_OR, STORE_SEARCH_OR, 0 },
	{ "RECENT", K_NONE, STORE_SEARCH_ALL, 0 },
	{ "SAVEDATESUPPORTED", K_ALL, STORE_SEARCH_ALL, 0 },
	{ "SAVEDBEFORE", K_DATE, STORE_SEARCH_SAVEDBEFORE, 0 },
	{ "SAVEDON", K_DATE, STORE_SEARCH_SAVEDON, 0 },
	{ "SAVEDSINCE", K_DATE, STORE_SEARCH_SAVEDSINCE, 0 },
	{ "SEEN", K_FLAG, STORE_SEARCH_FLAGS, STORE_FLAG_SEEN },
	{ "SENTBEFORE", K_DATE, STORE_SEARCH_SENTBEFORE, 0 },
	{ "SENTON", K_DATE, STORE_SEARCH_SENTON, 0 },
	{ "SENTSINCE", K_DATE, STORE_SEARCH_SENTSINCE, 0 },
	{ "SINCE", K_DATE, STORE_SEARCH_SINCE, 0 },
	{ "SMALLER", K_NUMBER, STORE_SEARCH_SMALLER, 0 },
	{ "SUBJECT", K_STRING, STORE_SEARCH_SUBJECT, 0 },
	{ "TEXT", K_STRING, STORE_SEARCH_TEXT, 0 },
	{ "THREADID", K_OBJECTID, STORE_SEARCH_THREADID, 0 },
	{ "TO", K_STRING, STORE_SEARCH_TO, 0 },
	{ "UID", K_UID, STORE_SEARCH_UID, 0 },
	{ "UNANSWERED", K_UNFLAG, STORE_SEARCH_UNFLAGS, STORE_FLAG_ANSWERED },
	{ "UNDELETED", K_UNFLAG, STORE_SEARCH_UNFLAGS, STORE_FLAG_DELETED },
	{ "UNDRAFT", K_UNFLAG, STORE_SEARCH_UNFLAGS, STORE_FLAG_DRAFT },
	{ "UNFLAGGED", K_UNFLAG, STORE_SEARCH_UNFLAGS, STORE_FLAG_FLAGGED },
	{ "UNKEYWORD", K_KEYWORD, STORE_SEARCH_UNKEYWORD, 0 },
	{ "UNSEEN", K_UNFLAG, STORE_SEARCH_UNFLAGS, STORE_FLAG_SEEN },
	{ "YOUNGER", K_NZNUMBER, STORE_SEARCH_YOUNGER, 0 },
};

static const struct key_def *key_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(keys); i++)
		if (strcasecmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Append child to an AND or OR node, splicing in a child of the same
 * kind: "OR OR a b c" is one OR of three, which keeps the tree shallow. */
static void node_add(struct store_search *parent, struct store_search *child)
{
	struct store_search **tail = &parent->children;

	while (*tail != NULL)
		tail = &(*tail)->next;
	if (child->kind == parent->kind && child->kind != STORE_SEARCH_NOT)
		*tail = child->children;
	else
		*tail = child;
}

static int parse_key(struct parse_ctx *p, struct cursor *c, struct store_search **r);

/* search-key *(SP search-key) until the cursor is used up: one key, or
 * an AND of them. */
static int parse_keys(struct parse_ctx *p, struct cursor *c, struct store_search **r)
{
	struct store_search *and = NULL, *k;

	if (c->left == 0)
		return fail(p, "BAD Missing search criteria");
	if (parse_key(p, c, &k) < 0)
		return -1;
	if (c->left == 0) {
		*r = k;
		return 0;
	}
	and = node_new(p, STORE_SEARCH_AND);
	node_add(and, k);
	while (c->left > 0) {
		if (parse_key(p, c, &k) < 0)
			return -1;
		node_add(and, k);
	}
	*r = and;
	return 0;
}

/* mod-sequence-valzer, after an optional entry-name entry-type-req
 * (RFC 7162 §3.1.5: only "/flags/..." names; the value counts for all). */
static int parse_modseq(struct parse_ctx *p, struct cursor *c, struct store_search *n)
{
	const struct imap_arg *a = cursor_next(c);

	if (a != NULL && a->type != IMAP_ARG_ATOM) {
		const char *name = imap__arg_astring(a), *type = arg_atom(cursor_next(c));

		if (name == NULL || strncasecmp(name, "/flags/", 7) != 0 || name[7] == '\0' ||
		    type == NULL || (strcasecmp(type, "priv") != 0 &&
				     strcasecmp(type, "shared") != 0 &&
				     strcasecmp(type, "all") != 0))
			return fail(p, "BAD Invalid MODSEQ entry");
		a = cursor_next(c);
	}
	if (arg_atom(a) == NULL || !imap__parse_u64(a->str, true, &n->number) ||
	    n->number > INT64_MAX)
		return fail(p, "BAD Invalid MODSEQ value");
	p->condstore = true;
	return 0;
}

static int parse_key(struct parse_ctx *p, struct cursor *c, struct store_search **r)
{
	const struct imap_arg *a = cursor_next(c), *v;
	const struct key_def *def;
	struct store_search *n;
	const char *s;
	int ret;

	if (a == NULL)
		return fail(p, "BAD Missing search key");
	if (a->type == IMAP_ARG_LIST) {
		struct cursor sub = { a->child, a->count };

		if (a->count == 0)
			return fail(p, "BAD Empty search key list");
		if (++p->depth > PARSE_DEPTH_MAX)
			return fail(p, "BAD [LIMIT] Search keys nested too deeply");
		ret = parse_keys(p, &sub, r);
		p->depth--;
		return ret;
	}
	if (a->type != IMAP_ARG_ATOM)
		return fail(p, "BAD Invalid search key");
	if (is_set_atom(a->str))
		return parse_set(p, a->str, false, r);
	if ((def = key_find(a->str)) == NULL)
		return fail(p, "BAD Unknown search key");
	n = node_new(p, def->kind);
	n->flags = def->flags;
	*r = n;
	switch (def->arg) {
	case K_ALL:
	case K_FLAG:
	case K_UNFLAG:
		return 0;
	case K_NONE:
		/* Nothing is recent: NOT ALL. */
		n->kind = STORE_SEARCH_NOT;
		n->children = node_new(p, STORE_SEARCH_ALL);
		return 0;
	case K_STRING:
		n->str = arg_string(p, cursor_next(c));
		return n->str != NULL ? 0 : -1;
	case K_HEADER:
		v = cursor_next(c);
		n->header = arg_string(p, v);
		if (n->header == NULL)
			return -1;
		if (n->header[0] == '\0' || strpbrk(n->header, ": \t\r\n") != NULL)
			return fail(p, "BAD Invalid header field name");
		n->str = arg_string(p, cursor_next(c));
		return n->str != NULL ? 0 : -1;
	case K_DATE:
		v = cursor_next(c);
		s = v != NULL && v->type != IMAP_ARG_LIST ? imap__arg_astring(v) : NULL;
		if (s == NULL || (n->day = imap__parse_date(s)) == INT64_MIN)
			return fail(p, "BAD Invalid date");
		return 0;
	case K_NUMBER:
	case K_NZNUMBER:
		s = arg_atom(cursor_next(c));
		if (s == NULL || !imap__parse_u64(s, def->arg == K_NUMBER, &n->number) ||
		    n->number > INT64_MAX)
			return fail(p, "BAD Invalid number");
		return 0;
	case K_KEYWORD:
		s = arg_atom(cursor_next(c));
		if (s == NULL || s[0] == '\\' || strpbrk(s, "(){%*\"]") != NULL)
			return fail(p, "BAD Invalid keyword");
		n->str = s;
		return 0;
	case K_UID:
		s = arg_atom(cursor_next(c));
		if (s == NULL)
			return fail(p, "BAD Sequence set expected after UID");
		return parse_set(p, s, true, r);
	case K_MODSEQ:
		return parse_modseq(p, c, n);
	case K_OBJECTID:
		/* RFC 8474 §5.3: an objectid. Quoted is taken too: the
		 * characters are what matters. */
		v = cursor_next(c);
		s = v != NULL && v->type != IMAP_ARG_LIST ? imap__arg_astring(v) : NULL;
		if (s == NULL || !store_objectid_valid(s))
			return fail(p, "BAD Invalid object id");
		n->str = s;
		return 0;
	case K_NOT:
		if (++p->depth > PARSE_DEPTH_MAX)
			return fail(p, "BAD [LIMIT] Search keys nested too deeply");
		ret = parse_key(p, c, &n->children);
		p->depth--;
		if (ret == 0 && n->children->kind == STORE_SEARCH_NOT)
			*r = n->children->children;     /* NOT NOT x is x */
		return ret;
	case K_OR:
		if (++p->depth > PARSE_DEPTH_MAX)
			return fail(p, "BAD [LIMIT] Search keys nested too deeply");
		for (int i = 0; i < 2; i++) {
			struct store_search *k;

			if (parse_key(p, c, &k) < 0)
				return -1;
			node_add(n, k);
		}
		p->depth--;
		return 0;
	}
	return fail(p, "BAD Unknown search key");
}

/* Levels of AND, OR and NOT nodes (store evaluation depth). */
static unsigned tree_depth(const struct store_search *n)
{
	unsigned max = 0;

	if (n->kind != STORE_SEARCH_AND && n->kind != STORE_SEARCH_OR &&
	    n->kind != STORE_SEARCH_NOT)
		return 0;
	for (const struct store_search *k = n->children; k != NULL; k = k->next) {
		unsigned d = tree_depth(k);

		if (d > max)
			max = d;
		if (max > TREE_DEPTH_MAX)
			break;
	}
	return max + 1;
}

/* CHARSET values we take: strings are UTF-8 (US-ASCII is a subset). */
static bool charset_ok(const char *cs)
{
	return cs != NULL && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "US-ASCII") == 0 ||
			      strcasecmp(cs, "UTF8") == 0);
}

int imap__search_parse(struct imap_cmd *cmd, const struct imap_arg *args, unsigned count,
		       struct store_search **tree_r, bool *condstore_r, const char **error_r)
{
	struct parse_ctx p = { .cmd = cmd };
	struct cursor c = { args, count };
	const char *first = arg_atom(args);

	*condstore_r = false;
	if (count > 0 && first != NULL && strcasecmp(first, "CHARSET") == 0) {
		const struct imap_arg *cs;

		cursor_next(&c);
		cs = cursor_next(&c);
		if (cs == NULL || cs->type == IMAP_ARG_LIST || imap__arg_astring(cs) == NULL) {
			*error_r = "BAD Missing charset";
			return -1;
		}
		if (!charset_ok(imap__arg_astring(cs))) {
			*error_r = "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset";
			return -1;
		}
	}
	if (parse_keys(&p, &c, tree_r) < 0) {
		*error_r = p.error;
		return -1;
	}
	if (tree_depth(*tree_r) > TREE_DEPTH_MAX) {
		*error_r = "BAD [LIMIT] Search keys nested too deeply";
		return -1;
	}
	*condstore_r = p.condstore;
	/* A MODSEQ criterion enables CONDSTORE (RFC 7162 §3.1). */
	if (p.condstore)
		cmd->s->enabled.condstore = true;
	return 0;
}

/* ------------------------------------------------------------- results */

#define RET_MIN 0x01
#define RET_MAX 0x02
#define RET_COUNT 0x04
#define RET_ALL 0x08
#define RET_SAVE 0x10

/* search-return-opts: "RETURN" SP "(" [opt *(SP opt)] ")". *used_r is
 * the count of arguments it took (0 without RETURN). */
static int parse_return(struct imap_cmd *cmd, unsigned *opts_r, unsigned *used_r,
			const char **error_r)
{
	const struct imap_arg *a = cmd->args;

	*opts_r = 0;
	*used_r = 0;
	if (cmd->argc == 0 || arg_atom(a) == NULL || strcasecmp(a->str, "RETURN") != 0)
		return 0;
	a = a->next;
	if (a == NULL || a->type != IMAP_ARG_LIST) {
		*error_r = "BAD RETURN needs a list of options";
		return -1;
	}
	for (const struct imap_arg *o = a->child; o != NULL; o = o->next) {
		const char *s = arg_atom(o);

		if (s == NULL) {
			*error_r = "BAD Invalid RETURN option";
			return -1;
		}
		if (strcasecmp(s, "MIN") == 0)
			*opts_r |= RET_MIN;
		else if (strcasecmp(s, "MAX") == 0)
			*opts_r |= RET_MAX;
		else if (strcasecmp(s, "COUNT") == 0)
			*opts_r |= RET_COUNT;
		else if (strcasecmp(s, "ALL") == 0)
			*opts_r |= RET_ALL;
		else if (strcasecmp(s, "SAVE") == 0)
			*opts_r |= RET_SAVE;
		else {
			*error_r = "BAD Unknown RETURN option";
			return -1;
		}
	}
	/* RFC 4731 §3.1: RETURN () is RETURN (ALL). */
	if (*opts_r == 0)
		*opts_r = RET_ALL;
	*used_r = 2;
	return 0;
}

/* What is left to send between chunks. */
struct search_out {
	const uint32_t *nums;   /* seqs or UIDs, ascending */
	size_t n, pos;
	bool as_set;            /* ESEARCH ALL: "1:3,7"; else "1 2 3 7" */
	const char *tail;       /* after the numbers, before CRLF */
};

/* Numbers from pos on, until the chunk is full: false if more is left. */
static bool emit(struct imap_cmd *cmd, struct search_out *o)
{
	struct buf *out = &cmd->out;

	while (o->pos < o->n) {
		if (out->len >= IMAP_CHUNK)
			return false;
		if (!o->as_set) {
			buf_printf(out, " %u", o->nums[o->pos++]);
			continue;
		}
		size_t j = o->pos;

		while (j + 1 < o->n && o->nums[j + 1] == o->nums[j] + 1)
			j++;
		if (o->pos > 0)
			buf_append(out, ",", 1);
		if (j > o->pos)
			buf_printf(out, "%u:%u", o->nums[o->pos], o->nums[j]);
		else
			buf_printf(out, "%u", o->nums[o->pos]);
		o->pos = j + 1;
	}
	return true;
}

static void search_finish(struct imap_cmd *cmd)
{
	struct search_out *o = cmd->priv;

	if (o != NULL) {
		if (!emit(cmd, o)) {
			cmd->more = true;
			return;
		}
		buf_append_str(&cmd->out, o->tail);
		buf_append_str(&cmd->out, "\r\n");
	}
	imap__tagged(cmd, "OK", "%s completed", cmd->name);
}

/* RFC 5182 §2.4: SAVE keeps all results, or only the MIN and/or MAX one
 * when those are asked for without ALL or COUNT. */
static void save_result(struct imap_selected *sel, unsigned opts, const uint32_t *uids,
			size_t n)
{
	bool only_ends = (opts & (RET_MIN | RET_MAX)) && !(opts & (RET_ALL | RET_COUNT));
	size_t k = 0;

	free(sel->saved);
	sel->saved = xcalloc(n + 1, sizeof(*sel->saved));
	for (size_t i = 0; i < n; i++) {
		if (only_ends && !((i == 0 && (opts & RET_MIN)) ||
				   (i == n - 1 && (opts & RET_MAX))))
			continue;
		sel->saved[k++] = uids[i];
	}
	sel->saved_count = k;
	sel->saved_valid = true;
}

static void save_clear(struct imap_selected *sel)
{
	free(sel->saved);
	sel->saved = NULL;
	sel->saved_count = 0;
	sel->saved_valid = true;
}

void imap__cmd_search(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_selected *sel = s->mail.sel;
	struct store_error err = { 0 };
	struct store_search *tree;
	const char *error;
	unsigned opts, used;
	bool condstore;
	uint32_t *uids;
	size_t n;

	if (cmd->priv != NULL) {
		search_finish(cmd);
		return;
	}
	if (parse_return(cmd, &opts, &used, &error) < 0) {
		imap__tagged_error(cmd, error);
		return;
	}
	bool esearch = used > 0 || s->enabled.rev2;

	if (esearch && opts == 0)
		opts = RET_ALL;
	/* Before the sync: numbers in the criteria are the client's. */
	if (imap__search_parse(cmd, imap__cmd_arg(cmd, used), cmd->argc - used, &tree,
			       &condstore, &error) < 0) {
		if (opts & RET_SAVE)
			save_clear(sel);
		imap__tagged_error(cmd, error);
		return;
	}
	imap__sync(cmd, cmd->uid);
	if (store_mailbox_search(sel->mb, tree, cmd->a, &uids, &n, &err) < 0) {
		if (opts & RET_SAVE)
			save_clear(sel);
		imap__tagged_store_error(cmd, &err, false);
		return;
	}
	/* Into the client's view (the store may lack pending expunges, never
	 * the reverse after the sync). */
	uint32_t *nums = arena_alloc(cmd->a, (n + 1) * sizeof(*nums));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t seq = imap__view_seq(sel, uids[i]);

		if (seq == 0)
			continue;
		uids[k] = uids[i];
		nums[k++] = cmd->uid ? uids[i] : seq;
	}
	n = k;
	if (opts & RET_SAVE)
		save_result(sel, opts, uids, n);

	/* RFC 7162 §3.1.5: the highest modseq of what is returned. */
	uint64_t modseq = 0;

	for (size_t i = 0; condstore && i < n; i++) {
		bool returned = !esearch || (opts & (RET_ALL | RET_COUNT)) ||
			(i == 0 && (opts & RET_MIN)) || (i == n - 1 && (opts & RET_MAX));
		uint32_t seq = store_mailbox_seq(sel->mb, uids[i]);
		const struct store_msg *m = seq != 0 ? store_mailbox_msg(sel->mb, seq) : NULL;

		if (returned && m != NULL && m->modseq > modseq)
			modseq = m->modseq;
	}

	struct search_out *o = arena_alloc(cmd->a, sizeof(*o));
	struct buf *out = &cmd->out;

	o->nums = nums;
	if (!esearch) {
		buf_append_str(out, "* SEARCH");
		o->n = n;
		o->tail = modseq != 0 ? arena_printf(cmd->a, " (MODSEQ %llu)",
						     (unsigned long long)modseq) : "";
	} else {
		if (opts == RET_SAVE) {
			/* RFC 5182 §2.1: SAVE alone answers nothing. */
			imap__tagged(cmd, "OK", "%s completed", cmd->name);
			return;
		}
		buf_append_str(out, "* ESEARCH (TAG ");
		imap__buf_string(out, cmd->tag, strlen(cmd->tag), false);
		buf_append_str(out, ")");
		if (cmd->uid)
			buf_append_str(out, " UID");
		if ((opts & RET_MIN) && n > 0)
			buf_printf(out, " MIN %u", nums[0]);
		if ((opts & RET_MAX) && n > 0)
			buf_printf(out, " MAX %u", nums[n - 1]);
		if (opts & RET_COUNT)
			buf_printf(out, " COUNT %zu", n);
		if ((opts & RET_ALL) && n > 0) {
			buf_append_str(out, " ALL ");
			o->n = n;
			o->as_set = true;
		}
		o->tail = modseq != 0 ? arena_printf(cmd->a, " MODSEQ %llu",
						     (unsigned long long)modseq) : "";
	}
	cmd->priv = o;
	search_finish(cmd);
}
