/*
 * recipient.c — RCPT TO: which user an address is, and can they take mail.
 *
 * The names tried, in order, until the user directory knows one:
 *   1. the whole address, "alice+lists@example.org"
 *   2. without its extension, "alice@example.org" (detail "lists")
 *   3. when the domain is one of local_domains: the local part, "alice+lists"
 *   4. and that without its extension, "alice" (detail "lists")
 * A bare <alice> (no domain) tries only "alice+lists" and "alice". The
 * directory compares names in lower case. The extension is what follows
 * the first of the recipient_delimiter characters (none when it is empty),
 * as Postfix splits it; an exact user name always wins over a split one,
 * so a user may be called "a+b". With save_to_detail_mailbox the message
 * goes to the mailbox named exactly like the detail when it exists (checked
 * at delivery), else INBOX: Dovecot's lmtp_save_to_detail_mailbox.
 *
 * Then, on the same thread-pool job (lookups and the index are disk work):
 * the user's store is taken from the cache of open stores (storage/store-cache.c) or
 * opened (created on the first delivery), and kept for the delivery; a
 * user whose quota is already full, or would be by
 * the SIZE= the client announced, is refused now rather than after DATA.
 * Disabled users still receive mail: disabling refuses logins only.
 */
#include "lmtp-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CANDIDATES 4

struct lmtp_rcpt_job {
	/* in */
	char *names[MAX_CANDIDATES];
	char *details[MAX_CANDIDATES]; /* NULL: no extension split off */
	unsigned count;
	bool detail_mailbox;
	uint64_t size_hint;
	/* out */
	enum lmtp_rcpt_result result;
	struct auth_user user;
	const char *detail;
	struct store_quota quota;
	struct store_user *store;
	struct store_error err;
};

static void add_candidate(struct lmtp_rcpt_job *job, char *name, const char *detail)
{
	job->names[job->count] = name;
	job->details[job->count] = detail != NULL ? xstrdup(detail) : NULL;
	job->count++;
}

static char *join(const char *local, size_t local_len, const char *domain)
{
	size_t n = local_len + (domain != NULL ? strlen(domain) + 1 : 0) + 1;
	char *s = xcalloc(1, n);

	if (domain != NULL)
		snprintf(s, n, "%.*s@%s", (int)local_len, local, domain);
	else
		snprintf(s, n, "%.*s", (int)local_len, local);
	return s;
}

static bool is_local_domain(const char *domain)
{
	for (size_t i = 0; i < lmtp__set.local_domains.count; i++) {
		if (strcasecmp(lmtp__set.local_domains.items[i], domain) == 0)
			return true;
	}
	return false;
}

struct lmtp_rcpt_job *lmtp__rcpt_job_new(const struct lmtp_address *addr, uint64_t size_hint)
{
	struct lmtp_rcpt_job *job = xcalloc(1, sizeof(*job));
	const char *local = addr->local, *domain = addr->domain;
	size_t len = strlen(local);
	const char *delims = lmtp__set.recipient_delimiter;
	size_t base_len = delims[0] != '\0' ? strcspn(local, delims) : len;
	/* An extension needs a user before it: "+x" is not one. */
	bool split = base_len < len && base_len > 0;
	const char *detail = split ? local + base_len + 1 : NULL;

	job->size_hint = size_hint;
	job->detail_mailbox = lmtp__set.save_to_detail_mailbox;
	if (domain != NULL) {
		add_candidate(job, join(local, len, domain), NULL);
		if (split)
			add_candidate(job, join(local, base_len, domain), detail);
	}
	if (domain == NULL || is_local_domain(domain)) {
		add_candidate(job, join(local, len, NULL), NULL);
		if (split)
			add_candidate(job, join(local, base_len, NULL), detail);
	}
	return job;
}

/* Is the quota full already, or too full for the announced size? */
static bool over_quota(struct lmtp_rcpt_job *job)
{
	uint64_t bytes, messages;
	uint64_t need = job->size_hint > 0 ? job->size_hint : 1;

	if (job->user.quota_bytes == 0 && job->user.quota_messages == 0)
		return false;
	if (store_user_usage(job->store, &bytes, &messages, &job->err) < 0)
		return false; /* the commit checks again */
	return (job->user.quota_bytes != 0 && bytes + need > job->user.quota_bytes) ||
	       (job->user.quota_messages != 0 && messages >= job->user.quota_messages);
}

void lmtp__rcpt_job_run(void *data)
{
	struct lmtp_rcpt_job *job = data;
	unsigned i;

	job->result = LMTP_RCPT_UNKNOWN;
	for (i = 0; i < job->count; i++) {
		enum auth_lookup_result r = auth_directory_lookup(lmtp__directory, job->names[i],
								   &job->user);

		if (r == AUTH_LOOKUP_TEMPFAIL) {
			job->result = LMTP_RCPT_LOOKUP_FAIL;
			return;
		}
		if (r == AUTH_LOOKUP_FOUND)
			break;
	}
	if (i == job->count)
		return;
	job->detail = job->details[i];

	job->quota.max_bytes = job->user.quota_bytes;
	job->quota.max_messages = job->user.quota_messages;
	job->store = store_cache_take(job->user.mail_dir, &job->quota);

	struct store_user_options opt = { .create = true, .quota = &job->quota };

	if (job->store == NULL &&
	    store_user_open(job->user.mail_dir, &opt, &job->store, &job->err) < 0) {
		job->result = job->err.code == STORE_ERR_NOSPACE ? LMTP_RCPT_NOSPACE :
			LMTP_RCPT_STORE_FAIL;
		return;
	}
	if (over_quota(job)) {
		store_cache_put(job->user.mail_dir, &job->quota, &job->store);
		job->result = LMTP_RCPT_OVER_QUOTA;
		return;
	}
	job->result = LMTP_RCPT_OK;
}

static void job_free(struct lmtp_rcpt_job *job)
{
	for (unsigned i = 0; i < job->count; i++) {
		free(job->names[i]);
		free(job->details[i]);
	}
	free(job);
}

enum lmtp_rcpt_result lmtp__rcpt_job_finish(struct lmtp_rcpt_job *job, struct lmtp_txn *t,
					    const char *address, struct lmtp_rcpt **rcpt_r)
{
	enum lmtp_rcpt_result result = job->result;

	switch (result) {
	case LMTP_RCPT_OK: {
		struct lmtp_rcpt *r = arena_alloc(t->arena, sizeof(*r));
		bool to_detail = job->detail_mailbox && job->detail != NULL && job->detail[0] != '\0';

		r->address = arena_strdup(t->arena, address);
		r->user = arena_strdup(t->arena, job->user.name);
		r->mail_dir = arena_strdup(t->arena, job->user.mail_dir);
		r->mailbox = arena_strdup(t->arena, to_detail ? job->detail : "INBOX");
		r->store = job->store;
		r->quota = job->quota;
		r->status = LMTP_ST_PENDING;
		job->store = NULL;
		*rcpt_r = r;
		log_debug("rcpt=<%s> user=%s mailbox=%s", address, r->user, r->mailbox);
		break;
	}
	case LMTP_RCPT_UNKNOWN:
		log_info("rcpt=<%s> unknown user", address);
		break;
	case LMTP_RCPT_LOOKUP_FAIL:
		log_warn("rcpt=<%s> user lookup failed", address);
		break;
	case LMTP_RCPT_OVER_QUOTA:
		log_info("rcpt=<%s> user=%s over quota", address, job->user.name);
		break;
	case LMTP_RCPT_NOSPACE:
	case LMTP_RCPT_STORE_FAIL:
		log_error("rcpt=<%s> user=%s cannot open the mail store: %s", address,
			  job->user.name, job->err.msg);
		break;
	}
	job_free(job);
	return result;
}

void lmtp__rcpt_job_cancel(void *data)
{
	struct lmtp_rcpt_job *job = data;

	/* On the loop, at disconnect: rare enough to close here. */
	store_user_close(&job->store);
	job_free(job);
}
