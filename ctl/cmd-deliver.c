/*
 * cmd-deliver.c — `ternctl deliver USER [-m MAILBOX]`: local delivery of
 * one message read from stdin, for setups where an MTA (sendmail, Postfix's
 * local(8) with mailbox_command), procmail or fetchmail hands mail to a
 * program instead of speaking LMTP.
 *
 * The guarantees are LMTP's (DESIGN invariant 1): the message streams into
 * an anonymous file through store_save_*, and ternctl exits 0 only after
 * the commit returned, i.e. the file, its directory entry and its index row
 * are on disk. Any failure leaves nothing visible. Memory stays bounded
 * whatever the message size.
 *
 * Choices (documented in ternctl --help and ternctl(8)):
 * - A first line starting with "From " is an mbox separator that procmail
 *   and fetchmail may pass along: it is dropped, as dovecot-lda does.
 * - -m names a mailbox that does not exist (or a name that is refused):
 *   the message goes to INBOX and a note says so on stderr, as dovecot-lda
 *   does without -e. The mail is not lost, and not bounced either.
 * - Exit codes (sysexits.h), so that the MTA retries what may succeed
 *   later and bounces the rest: 0 delivered; 67 EX_NOUSER unknown user;
 *   75 EX_TEMPFAIL disk full, index busy, any temporary storage error, and
 *   a full quota (temporary like Dovecot's quota_full_tempfail=yes: the user
 *   may make room, and a bounce would lose the mail); 65 EX_DATAERR an
 *   empty message or one over DELIVER_MAX_SIZE; 64 EX_USAGE bad arguments.
 */
#include "ctl/ctl.h"

#include <string.h>

#define DELIVER_CHUNK (64 * 1024)
/* IMAP clients count sizes in 32 bits at best; an MTA limits far below. */
#define DELIVER_MAX_SIZE ((uint64_t)1 << 30)

/* The exit code for a failed save: temporary unless the message itself is
 * at fault. */
static int save_exit(const struct store_error *err)
{
	return err->code == STORE_ERR_LIMIT ? EX_DATAERR : EX_TEMPFAIL;
}

/* Open a save into mailbox, falling back to INBOX when it is missing. */
static int begin_save(struct store_user *u, const char *user, const char **mailbox,
		      struct store_save **s, struct store_error *err)
{
	if (store_save_begin(u, *mailbox, s, err) == 0)
		return 0;
	if ((err->code != STORE_ERR_NOTFOUND && err->code != STORE_ERR_BADNAME) ||
	    strcmp(*mailbox, "INBOX") == 0)
		return -1;
	ctl_error("%s: mailbox %s does not exist (%s): delivering to INBOX", user, *mailbox,
		  err->msg);
	*mailbox = "INBOX";
	return store_save_begin(u, *mailbox, s, err);
}

/*
 * Stream stdin into the save. Returns EX_OK with *size_r, or an exit code
 * after printing why.
 */
static int copy_stdin(struct store_save *s, const char *user, uint64_t *size_r,
		      struct store_error *err)
{
	static unsigned char buf[DELIVER_CHUNK];
	bool first = true, in_from_line = false;
	uint64_t size = 0;
	size_t n;

	/* fread fills the buffer (or reaches the end), so the first chunk
	 * holds the whole "From " prefix if there is one. */
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		const unsigned char *p = buf;

		if (first) {
			first = false;
			in_from_line = n >= 5 && memcmp(buf, "From ", 5) == 0;
		}
		if (in_from_line) {
			const unsigned char *nl = memchr(p, '\n', n);

			if (nl == NULL)
				continue;
			in_from_line = false;
			n -= (size_t)(nl + 1 - p);
			p = nl + 1;
		}
		size += n;
		if (size > DELIVER_MAX_SIZE) {
			ctl_error("%s: the message is larger than %llu bytes", user,
				  (unsigned long long)DELIVER_MAX_SIZE);
			return EX_DATAERR;
		}
		if (n > 0 && store_save_write(s, p, n, err) < 0) {
			ctl_error("%s: cannot store the message: %s", user, err->msg);
			return save_exit(err);
		}
	}
	if (ferror(stdin)) {
		ctl_error("%s: reading the message from stdin failed", user);
		return EX_TEMPFAIL;
	}
	if (size == 0) {
		ctl_error("%s: the message is empty", user);
		return EX_DATAERR;
	}
	*size_r = size;
	return EX_OK;
}

static int deliver(struct ctl *ctl, int argc, char **argv)
{
	const char *mailbox = "INBOX";
	struct auth_user user;
	struct store_user *u;
	struct store_save *s;
	struct store_error err = { 0 };
	uint32_t uidvalidity, uid;
	uint64_t size = 0;
	int first = ctl_parse_mailbox_option(&ctl_deliver_commands[0], argc, argv, 1, &mailbox);
	int rc;

	if (first < 0)
		return EX_USAGE;
	rc = ctl_open_store(ctl, argv[first], &user, &u);
	if (rc != EX_OK)
		/* Only an unknown user is final: the MTA retries the rest. */
		return rc == EX_NOUSER ? EX_NOUSER : EX_TEMPFAIL;
	if (begin_save(u, user.name, &mailbox, &s, &err) < 0) {
		ctl_error("%s: cannot deliver to %s: %s", user.name, mailbox, err.msg);
		store_user_close(&u);
		return save_exit(&err);
	}
	rc = copy_stdin(s, user.name, &size, &err);
	if (rc != EX_OK) {
		store_save_abort(&s);
		store_user_close(&u);
		return rc;
	}
	if (store_save_commit(&s, &uidvalidity, &uid, &err) < 0) {
		ctl_error("%s: cannot deliver to %s: %s", user.name, mailbox, err.msg);
		store_user_close(&u);
		return save_exit(&err);
	}
	store_user_close(&u);
	/* Silent on success, as MDAs are, unless a script asks. */
	if (ctl->json) {
		ctl_json_begin_object(NULL);
		ctl_json_string("user", user.name);
		ctl_json_string("mailbox", mailbox);
		ctl_json_uint("uidvalidity", uidvalidity);
		ctl_json_uint("uid", uid);
		ctl_json_uint("size", size);
		ctl_json_end_object();
		ctl_json_finish();
	}
	return EX_OK;
}

const struct ctl_command ctl_deliver_commands[] = {
	{
		.name = "deliver",
		.usage = "USER [-m MAILBOX]",
		.summary = "deliver a message from stdin",
		.help = "Stores the message on stdin in INBOX of USER, or in MAILBOX\n"
			"(-m, --mailbox); a MAILBOX that does not exist gets the message in\n"
			"INBOX, with a note on stderr. A first line \"From ...\" (an mbox\n"
			"separator) is dropped. Exit 0 means the message is on disk.\n"
			"Exit codes: 67 unknown user; 75 temporary failure (disk full, index\n"
			"busy, quota full: the MTA retries); 65 empty message or larger than\n"
			"1 GiB; 64 usage.",
		.run = deliver,
	},
	{ .name = NULL },
};
