/*
 * storage.h — one user's mail: a Maildir++ tree (the source of truth) and a
 * per-user SQLite index (a cache that can always be rebuilt from it). Used
 * by tern-imapd, tern-pop3d, tern-lmtpd and ternctl, which may all open the
 * same user at once.
 *
 *   <user_dir>/Maildir/              INBOX: cur/ new/ tmp/
 *   <user_dir>/Maildir/.Parent.Child folders (names in modified UTF-7)
 *   <user_dir>/index.sqlite          the index (WAL mode)
 *
 * Every call here may block on disk: daemons run them on the libuv thread
 * pool (conn_queue_work), never on the loop thread. A struct store_user and
 * everything opened from it belong to one thread at a time.
 *
 * Errors: functions return 0 on success and -1 on failure with *err filled:
 * a class that protocols map to their replies (IMAP NO [code], POP3 -ERR,
 * LMTP 4xx/5xx) and a message for the log. Clients get generic text.
 */
#ifndef TERN_STORAGE_H
#define TERN_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

enum store_errcode {
	STORE_ERR_NONE = 0,
	STORE_ERR_TEMP,        /* try again later: I/O error, busy index */
	STORE_ERR_NOSPACE,     /* disk full (a temporary error to LMTP) */
	STORE_ERR_QUOTA,       /* the user's quota would be exceeded */
	STORE_ERR_NOTFOUND,    /* no such mailbox or message */
	STORE_ERR_EXISTS,      /* the mailbox exists already */
	STORE_ERR_BADNAME,     /* a mailbox name that is refused */
	STORE_ERR_PERM,        /* not allowed (e.g. deleting INBOX) */
	STORE_ERR_CORRUPT,     /* the index is damaged (rebuilt on next open) */
	STORE_ERR_LIMIT,       /* a size or count limit */
};

struct store_error {
	enum store_errcode code;
	char msg[256];
};

/* Mailbox name separator in the API (IMAP); '.' on disk. */
#define STORE_SEP '/'
/* Longest mailbox name in UTF-8 bytes, and deepest hierarchy. */
#define STORE_NAME_MAX 255
#define STORE_DEPTH_MAX 16

/* System flags, as stored in Maildir info (DFPRST) and the index. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
	/* Maildir 'P' (passed: resent/bounced, set by mutt and others). No
	 * IMAP flag shows it; it is kept so that rewriting a file name after
	 * a flag change does not drop it. */
	STORE_FLAG_PASSED = 1 << 5,
};

/* SPECIAL-USE attributes (RFC 6154). */
enum store_special_use {
	STORE_USE_NONE = 0,
	STORE_USE_SENT = 1 << 0,
	STORE_USE_DRAFTS = 1 << 1,
	STORE_USE_TRASH = 1 << 2,
	STORE_USE_JUNK = 1 << 3,
	STORE_USE_ARCHIVE = 1 << 4,
	STORE_USE_ALL = 1 << 5,
	STORE_USE_FLAGGED = 1 << 6,
};

/* Limits of a user, from the user directory (0: unlimited). */
struct store_quota {
	uint64_t max_bytes;
	uint64_t max_messages;
};

/* ------------------------------------------------------------- names */

/*
 * Mailbox names: the API speaks UTF-8 with '/' as separator ("INBOX",
 * "Archive/2024", "Entwürfe"). Validated here before any path is built:
 * refused are empty names and components, "." and "..", a leading or
 * trailing '/', '.' inside a component (it is the on-disk separator, as in
 * Dovecot's Maildir++ layout), control characters, invalid UTF-8, names
 * over STORE_NAME_MAX bytes or STORE_DEPTH_MAX levels (or whose directory
 * name would exceed NAME_MAX), the Maildir directory names cur, new and tmp
 * as a first component or as a child of INBOX, and a leading '~'. "INBOX"
 * is matched case-insensitively and returned as "INBOX", also as the first
 * level of a longer name ("inbox/x" is "INBOX/x", directory ".INBOX.x").
 *
 * store_name_to_dir: the folder directory name under Maildir/ ("" for
 * INBOX, ".Archive.2024", ".Entw&APw-rfe") into dir (dir_size bytes).
 * Returns 0, or -1 with *why_r.
 */
int store_name_to_dir(const char *name, char *dir, size_t dir_size, const char **why_r);
/* The reverse: a directory name found on disk back to a UTF-8 name. -1 if
 * it is not a valid folder directory (it is then ignored). */
int store_dir_to_name(const char *dir, char *name, size_t name_size);
/* Modified UTF-7 (RFC 3501 §5.1.3) from and to UTF-8; -1 on invalid input
 * or when out is too small. */
int store_mutf7_encode(const char *utf8, char *out, size_t out_size);
int store_mutf7_decode(const char *mutf7, char *out, size_t out_size);

/* --------------------------------------------------------- file names */

/*
 * A Maildir file name: "<base>,S=<size>,W=<vsize>,U=<uid>:2,<info>" where
 * base is the message's GUID (unique, stable across moves and hosts), size
 * the bytes on disk (LF line ends), vsize the size with CRLF line ends, uid
 * the IMAP UID in its folder, info the flags in ASCII order (D F P R S T for
 * Draft, Flagged, Passed, Replied, Seen, Trashed) followed by keyword
 * letters a-z (indexes into the folder's dovecot-keywords list).
 */
struct store_filename {
	char base[128];
	uint64_t size;      /* 0 when absent */
	uint64_t vsize;     /* 0 when absent */
	uint32_t uid;       /* 0 when absent */
	uint32_t flags;     /* enum store_flag */
	uint32_t keywords;  /* bit n = letter 'a' + n */
	bool has_size, has_vsize, has_info;
};

/* Parse a name found in cur/ or new/: 0, or -1 for a name that is not a
 * message (dot files, garbage). Never reads outside name. */
int store_filename_parse(const char *name, struct store_filename *fn_r);
/* Build the name; -1 if out is too small or fn->base is not a base that
 * store_filename_parse accepts. Info (":2,") is written when has_info is
 * set or any flag or keyword is. */
int store_filename_build(const struct store_filename *fn, char *out, size_t out_size);
/* A new unique base: "<sec>.M<usec>P<pid>Q<seq>R<random>.<host>". */
void store_new_base(char *out, size_t out_size);

/* -------------------------------------------------------------- users */

struct store_user;

struct store_user_options {
	/* Create the Maildir with INBOX and the special-use folders (Sent,
	 * Drafts, Trash, Junk, Archive) when it does not exist. */
	bool create;
	/* Limits checked on save, copy and move (NULL: unlimited). */
	const struct store_quota *quota;
};

/*
 * Open the user whose mail lives in user_dir (an absolute path built from a
 * validated login name). A missing or corrupt index.sqlite is rebuilt from
 * the Maildir before this returns.
 */
int store_user_open(const char *user_dir, const struct store_user_options *opt,
		    struct store_user **u_r, struct store_error *err);
void store_user_close(struct store_user **u);
/* Fit to be kept open for another owner (store-cache.h): its index is
 * open and no transaction was left behind. */
bool store_user_reusable(struct store_user *u);
/* Whether indexes opened from now on are read through a mapping of the
 * file (the default; index.c says when not to). Call before any open. */
void store_set_index_mapping(bool on);
/* Give back the index's cached pages (a session going idle: its next
 * command reads them again from the file system's cache). */
void store_user_shrink(struct store_user *u);
/* Messages adopted in bulk (a migrated Maildir) have their index rows only;
 * their structure and text for SEARCH are read from their files on demand.
 * And the text of expunged messages is deleted from the full-text index
 * later, many documents at a time (storage/fts.c). store_user_pending: 1
 * if some message waits for its text or a batch of such documents waits,
 * 0 if neither, -1 on an index error. store_user_catch_up does the work:
 * a batch of those documents, then up to max of those messages (each in
 * one short write transaction; the files are read before it); *more_r:
 * call again. For a daemon's background job (catchup.c). */
int store_user_pending(struct store_user *u);
int store_user_catch_up(struct store_user *u, unsigned max, bool *more_r,
			struct store_error *err);
/* Rebuild the index from the Maildir alone: UIDVALIDITY, UIDs, flags and
 * keywords come from the folders' files; UIDs never go back. */
int store_user_rebuild(const char *user_dir, struct store_error *err);
/* Bytes (CRLF sizes) and messages stored, over all folders. */
int store_user_usage(struct store_user *u, uint64_t *bytes_r, uint64_t *messages_r,
		     struct store_error *err);
/* Sync every folder in full with its files, then recount the usage from
 * the messages: the stored values before (*old_*) and after. */
int store_user_usage_recalc(struct store_user *u, uint64_t *old_bytes_r,
			    uint64_t *old_messages_r, uint64_t *bytes_r, uint64_t *messages_r,
			    struct store_error *err);

/* ------------------------------------------------------------ checking */

enum store_check_kind {
	STORE_CHECK_NO_INDEX,           /* no index, or a rebuild never finished */
	STORE_CHECK_FOLDER_UNINDEXED,   /* a folder on disk the index does not know */
	STORE_CHECK_FOLDER_MISSING,     /* a mailbox of the index whose folder is gone */
	STORE_CHECK_FILE_UNINDEXED,     /* a message file the index does not know */
	STORE_CHECK_FILE_MISSING,       /* an index row whose file is gone */
	STORE_CHECK_FILE_RENAMED,       /* a row's file has another name now */
	STORE_CHECK_DUPLICATE_UID,      /* two files carry the same U= */
	STORE_CHECK_UID,                /* a row's UID disagrees with U= or UIDNEXT */
	STORE_CHECK_FLAGS,              /* flags of a row and its file name differ */
	STORE_CHECK_SIZE,               /* a row's size is not the file's */
	STORE_CHECK_UIDSTATE,           /* tern-uidstate missing or disagreeing */
	STORE_CHECK_USAGE,              /* usage totals are not the messages' sum */
};

struct store_check_problem {
	const char *mailbox;            /* NULL for the whole user */
	enum store_check_kind kind;
	const char *detail;             /* one line, for people */
};

struct store_check_summary {
	uint32_t mailboxes;             /* mailboxes compared with their folder */
	uint64_t messages;              /* index rows seen */
	uint64_t files;                 /* message files seen */
	uint64_t problems;
};

/* Called for each problem; p and its strings are valid during the call. */
typedef void store_check_cb(const struct store_check_problem *p, void *data);

/*
 * Compare the index of the user in user_dir with the Maildir, changing
 * nothing (no sync, no rebuild, no index created): mailboxes and folders,
 * rows and files, UIDs, flags, sizes, tern-uidstate and the usage totals.
 * Holds the index write lock while it compares each folder (so a delivery
 * in progress is not a problem), which delays writers as long as a folder
 * listing takes. Returns 0 with *sum_r filled (consistent when
 * sum_r->problems is 0), or -1: NOTFOUND when there is no Maildir.
 */
int store_user_check(const char *user_dir, store_check_cb *cb, void *data,
		     struct store_check_summary *sum_r, struct store_error *err);

/* ---------------------------------------------------------- mailboxes */

struct store_mailbox_info {
	const char *name;
	uint32_t special_use;   /* enum store_special_use */
	bool subscribed;
	bool exists;            /* false: a subscription without a mailbox */
	bool has_children;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;
	uint64_t vsize;         /* sum of message sizes with CRLF */
	/* MAILBOXID (RFC 8474): set by store_mailbox_status when the folder
	 * has one (it only reads it; store_mailbox_id_of makes one), NULL
	 * otherwise and in store_mailbox_list. */
	const char *mailboxid;
};

int store_mailbox_create(struct store_user *u, const char *name, uint32_t special_use,
			 struct store_error *err);
/* Deletes the folder and its messages; children stay (RFC 9051 §6.3.4).
 * INBOX cannot be deleted. */
int store_mailbox_delete(struct store_user *u, const char *name, struct store_error *err);
/* Renames the folder and its children. Renaming INBOX moves its messages
 * into the new folder and leaves INBOX empty (RFC 9051 §6.3.6); its
 * children stay. */
int store_mailbox_rename(struct store_user *u, const char *from, const char *to,
			 struct store_error *err);
int store_mailbox_subscribe(struct store_user *u, const char *name, bool subscribe,
			    struct store_error *err);
/* Every mailbox and every subscription, sorted by name, allocated in a. */
int store_mailbox_list(struct store_user *u, struct arena *a,
		       struct store_mailbox_info **list_r, size_t *count_r,
		       struct store_error *err);
/* One mailbox's counters (after picking up changes on disk). */
int store_mailbox_status(struct store_user *u, const char *name, struct arena *a,
			 struct store_mailbox_info *info_r, struct store_error *err);

/* --------------------------------------------------------- object ids */

/*
 * Object identifiers (RFC 8474 OBJECTID): 1 to STORE_OBJECTID_MAX of
 * A-Z a-z 0-9 '_' '-', case-sensitive.
 *
 * MAILBOXID: "F" and 32 hex digits, random, kept in the folder (file
 * tern-mailboxid), so the Maildir holds it and an index rebuild keeps it;
 * unique among the user's mailboxes, unchanged by a rename, new for a
 * folder deleted and created again. A folder without one (made by another
 * program or before ids existed) gets one the first time it is asked for
 * (a durable write). Renaming INBOX makes a new mailbox, with a new id;
 * INBOX keeps its own.
 *
 * EMAILID: "M" and 32 hex digits, a fixed-key hash of the message's GUID
 * (its Maildir base name): the same in every mailbox the message is moved
 * or copied to (a copy into the folder that holds it already gets a GUID,
 * and so an EMAILID, of its own), unchanged by a rebuild. THREADID: Tern
 * keeps no thread ids (RFC 8474 lets a server answer NIL).
 */
#define STORE_OBJECTID_MAX 255
#define STORE_OBJECTID_SIZE (STORE_OBJECTID_MAX + 1)

/* Is s a valid objectid? */
bool store_objectid_valid(const char *s);
/* The MAILBOXID of the mailbox name (made if it has none), in a. NOTFOUND
 * when there is no such mailbox. */
int store_mailbox_id_of(struct store_user *u, const char *name, struct arena *a,
			const char **id_r, struct store_error *err);

/* ----------------------------------------------------- opened mailbox */

struct store_msg {
	uint32_t uid;
	uint32_t flags;         /* enum store_flag */
	uint64_t keywords;      /* bit n: keyword n of the folder */
	uint64_t modseq;
	int64_t internal_date;  /* seconds since the epoch */
	int64_t save_date;
	uint64_t size;          /* bytes on disk (LF line ends) */
	uint64_t vsize;         /* bytes with CRLF line ends: RFC822.SIZE */
};

struct store_mailbox;

/* Open (select) a mailbox: its messages as they are on disk now; but an
 * open does not wait while another session writes to the mailbox: it then
 * shows the index as that session last committed it, and the changes of
 * other programs (mutt, another MDA) made meanwhile come with the next
 * store_mailbox_sync. */
int store_mailbox_open(struct store_user *u, const char *name, struct store_mailbox **mb_r,
		       struct store_error *err);
void store_mailbox_close(struct store_mailbox **mb);
/* Pick up changes made by other sessions and other programs (cheap when
 * nothing changed: the index's change counter and the folder's directory
 * times are compared first). Sequence numbers may change. */
int store_mailbox_sync(struct store_mailbox *mb, struct store_error *err);
/* What store_mailbox_open does, for a view that is open already (SELECT of
 * the mailbox selected): brought up to date without reading it anew. */
int store_mailbox_reopen(struct store_mailbox *mb, struct store_error *err);
uint32_t store_mailbox_count(const struct store_mailbox *mb);
/* Message by sequence number 1..count; NULL outside. */
const struct store_msg *store_mailbox_msg(const struct store_mailbox *mb, uint32_t seq);
/* Sequence number of a UID, 0 when not present. */
uint32_t store_mailbox_seq(const struct store_mailbox *mb, uint32_t uid);
uint32_t store_mailbox_uidvalidity(const struct store_mailbox *mb);
uint32_t store_mailbox_uidnext(const struct store_mailbox *mb);
uint64_t store_mailbox_highestmodseq(const struct store_mailbox *mb);
/* Keyword n of the folder's keyword list, NULL past the end. */
const char *store_mailbox_keyword(const struct store_mailbox *mb, unsigned n);
/* The mailbox's MAILBOXID (valid while mb is open), read from its folder
 * (or made) on the first call; NULL with *err on an I/O error. */
const char *store_mailbox_id(struct store_mailbox *mb, struct store_error *err);
/* The EMAILID of a UID into id; NOTFOUND when the UID is not in the
 * mailbox. Reads the index (one cached statement: cheap per message). */
int store_msg_email_id(struct store_mailbox *mb, uint32_t uid, char id[STORE_OBJECTID_SIZE],
		       struct store_error *err);

enum store_flag_op { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/*
 * Change flags and keywords of the given UIDs (absent ones are skipped).
 * unchanged_since (CONDSTORE) 0 means unconditional; otherwise messages
 * whose modseq is above it are not changed and are counted in
 * *failed_r (may be NULL). Every changed message gets a new modseq.
 * Many UIDs are changed in batches of a few hundred, each its own
 * transaction (other writers wait for one batch, not all): after a
 * failure, earlier batches stay changed.
 */
int store_mailbox_set_flags(struct store_mailbox *mb, const uint32_t *uids, size_t count,
			    enum store_flag_op op, uint32_t flags,
			    const char *const *keywords, size_t keyword_count,
			    uint64_t unchanged_since, size_t *failed_r, struct store_error *err);
/* Expunge the given UIDs; their UIDs and modseq are kept for QRESYNC. */
int store_mailbox_expunge(struct store_mailbox *mb, const uint32_t *uids, size_t count,
			  struct store_error *err);

/*
 * COPY (move false) or MOVE (move true) the given UIDs to the mailbox dest
 * of the same user, in one transaction: on success dest_uids_r[i] is the new
 * UID of uids[i] (0 for a UID that was not there) and *dest_uidvalidity_r
 * the destination's UIDVALIDITY (for COPYUID). Files are hard-linked where
 * possible. A copy counts against the quota; a move does not.
 */
int store_mailbox_copy(struct store_mailbox *mb, const uint32_t *uids, size_t count,
		       const char *dest, bool move, uint32_t *dest_uidvalidity_r,
		       uint32_t *dest_uids_r, struct store_error *err);

/*
 * UIDs expunged after modseq (QRESYNC VANISHED (EARLIER)), ascending, in a.
 * *complete_r is false when the history may be incomplete before that
 * modseq (after a rebuild): a client must then be told about every UID it
 * knows that is not in the mailbox.
 */
int store_mailbox_expunged_since(struct store_mailbox *mb, uint64_t modseq, struct arena *a,
				 uint32_t **uids_r, size_t *count_r, bool *complete_r,
				 struct store_error *err);

/* ------------------------------------------------------------- reading */

struct store_reader;

/* Read a message with CRLF line ends (the IMAP view), from its start. */
int store_reader_open(struct store_mailbox *mb, uint32_t uid, struct store_reader **r_r,
		      struct store_error *err);
/* Up to max bytes: the count, 0 at the end, -1 on an I/O error. */
ssize_t store_reader_read(struct store_reader *r, void *buf, size_t max);
/* Skip to an offset in the CRLF view (for partial FETCH). */
int store_reader_skip(struct store_reader *r, uint64_t crlf_offset);
void store_reader_close(struct store_reader **r);

/* -------------------------------------------------- message structure */

/*
 * What IMAP FETCH needs of a message's MIME structure, parsed when it was
 * saved and kept in the index (a message without it, e.g. from an older
 * index, is parsed from its file on first use and its row filled).
 * Limits: MIME nesting 100, 10,000 parts, header fields cut at 64 KiB;
 * beyond them a message still has a valid ENVELOPE and BODYSTRUCTURE.
 */
struct store_msg_structure {
	/* IMAP syntax ready to send: may contain literals ({n} CRLF ...). */
	const char *envelope;
	size_t envelope_len;
	const char *body;               /* BODY (no extension data) */
	size_t body_len;
	const char *bodystructure;      /* BODYSTRUCTURE */
	size_t bodystructure_len;
};

/* ENVELOPE, BODY and BODYSTRUCTURE of a UID, allocated in a. NOTFOUND when
 * the UID is not in the mailbox. May write the index (on-demand parse). */
int store_msg_structure(struct store_mailbox *mb, uint32_t uid, struct arena *a,
			struct store_msg_structure *r, struct store_error *err);

/* The section-spec of BODY[...] (RFC 9051 §6.4.5) after any part path. */
enum store_section_kind {
	STORE_SECTION_BODY,             /* [] (whole message) or [1.2] (part body) */
	STORE_SECTION_HEADER,           /* [HEADER], [1.2.HEADER] */
	STORE_SECTION_HEADER_FIELDS,    /* [HEADER.FIELDS (...)] */
	STORE_SECTION_HEADER_FIELDS_NOT,/* [HEADER.FIELDS.NOT (...)] */
	STORE_SECTION_TEXT,             /* [TEXT], [1.2.TEXT] */
	STORE_SECTION_MIME,             /* [1.2.MIME]: the part's own header */
};

/* A byte range of the CRLF view (store_reader_skip, then read size
 * bytes). filter: it is a header to pass through store_header_filter. */
struct store_section {
	uint64_t offset, size;
	bool filter;
};

/*
 * Locate a section: path is the part numbers (depth 0: the message
 * itself). HEADER, TEXT and HEADER.FIELDS with a path need the part to be
 * a message/rfc822; MIME needs a path. NOTFOUND when the part does not
 * exist (the caller answers with an empty string, as RFC 9051 allows).
 * Parts beyond the parser's limits do not exist.
 */
int store_section_locate(struct store_mailbox *mb, uint32_t uid, const uint32_t *path,
			 size_t depth, enum store_section_kind kind, struct arena *a,
			 struct store_section *r, struct store_error *err);

/*
 * HEADER.FIELDS (not false) or HEADER.FIELDS.NOT (not true): the lines of
 * the fields of header (len bytes, CRLF) named in fields (case-insensitive),
 * with their continuation lines, then the empty line, appended to out.
 * 0, or BUF_ETOOBIG when out's maximum is reached.
 */
int store_header_filter(const void *header, size_t len, const char *const *fields,
			size_t nfields, bool not, struct buf *out);

/* ------------------------------------------------- transfer encodings */

/*
 * Streaming content-transfer-encoding decoders (RFC 2045 §6.7
 * quoted-printable, §6.8 base64), for FETCH BINARY and for indexing text
 * parts. Input comes in pieces of any size: a base64 quantum, a QP escape
 * or a run of QP whitespace split between pieces is carried over. Broken
 * input is never fatal (mail in the wild often is): a QP "=" that starts
 * no escape is passed through, a byte outside the base64 alphabet is
 * skipped, and either sets errors. QP line ends come out as CRLF, without
 * the whitespace before them (§6.7 rule 3). Pure computation: never
 * blocks.
 */
enum store_cte { STORE_CTE_IDENTITY, STORE_CTE_BASE64, STORE_CTE_QP };

/* A run of QP whitespace held until it is known not to end a line; a
 * longer one is passed through as it comes. */
#define STORE_DECODER_WS_MAX 128
/* Bytes a decoder may hold between calls, so a call may write them on
 * top of the output of its own input. */
#define STORE_DECODER_SLACK (STORE_DECODER_WS_MAX + 8)

struct store_decoder {
	enum store_cte cte;
	bool errors;                    /* invalid input was passed through or skipped */
	/* The rest is the decoder's. */
	unsigned char q[4];             /* base64 quantum so far */
	unsigned nq;
	int qs;                         /* QP state */
	unsigned char hex1;             /* QP "=X": the X */
	unsigned char ws[STORE_DECODER_WS_MAX];
	size_t nws;
};

void store_decoder_init(struct store_decoder *d, enum store_cte cte);
/*
 * Decode len more bytes, appending at most 2 * len + STORE_DECODER_SLACK
 * bytes to out (a QP bare LF becomes CRLF). 0, or BUF_ETOOBIG when out's
 * maximum was reached: out then holds part of the output, and the rest of
 * the input is lost.
 */
int store_decoder_feed(struct store_decoder *d, struct buf *out, const void *data, size_t len);
/* The end of the input: append what is still held (at most
 * STORE_DECODER_SLACK bytes). 0, or BUF_ETOOBIG. The decoder is then
 * ready for new input (errors stays as it is). */
int store_decoder_finish(struct store_decoder *d, struct buf *out);

/* ------------------------------------------------------------- search */

/*
 * SEARCH (RFC 9051 §6.4.4, RFC 3501, RFC 5032 OLDER/YOUNGER, RFC 8514
 * SAVED*, RFC 7162 MODSEQ) as a tree of criteria: the IMAP syntax is
 * parsed by imapd, which builds the tree (in its command arena).
 *
 * String keys match as the RFC says: a substring, not a word, compared
 * with the i;unicode-casemap comparator of RFC 5051 (storage/casemap.h:
 * titlecase and full decomposition, so case, composed or decomposed
 * accents and compatibility forms like ligatures do not matter).
 * SUBJECT, FROM, TO, CC, BCC match the header decoded to UTF-8 (RFC 2047,
 * charsets). HEADER matches any field of the message's top-level header,
 * unfolded and decoded; an empty value matches every message that has the
 * field. BODY matches the decoded text/ parts (base64 and quoted-printable
 * undone, charsets converted; text/html as its source, text attachments
 * included, other attachments and the headers of attached messages not);
 * TEXT matches the header or the body. Per message, the first 8 MiB of
 * decoded text and 2 MiB of header are searched.
 *
 * Dates (BEFORE, ON, SINCE on the internal date, SENT* on the Date header,
 * SAVED* on the save date) are days since 1970-01-01 compared with the
 * message's day in UTC; a message without a usable Date header has the
 * internal date as its sent date.
 */
enum store_search_kind {
	STORE_SEARCH_ALL,
	STORE_SEARCH_AND,               /* children: all match (empty: all) */
	STORE_SEARCH_OR,                /* children: any matches */
	STORE_SEARCH_NOT,               /* children: the one child does not match */
	STORE_SEARCH_FLAGS,             /* all of flags set (enum store_flag) */
	STORE_SEARCH_UNFLAGS,           /* none of flags set */
	STORE_SEARCH_KEYWORD,           /* str: keyword set */
	STORE_SEARCH_UNKEYWORD,         /* str: keyword not set */
	STORE_SEARCH_BEFORE,            /* day: internal date */
	STORE_SEARCH_ON,
	STORE_SEARCH_SINCE,
	STORE_SEARCH_SENTBEFORE,        /* day: Date header */
	STORE_SEARCH_SENTON,
	STORE_SEARCH_SENTSINCE,
	STORE_SEARCH_SAVEDBEFORE,       /* day: save date (RFC 8514) */
	STORE_SEARCH_SAVEDON,
	STORE_SEARCH_SAVEDSINCE,
	STORE_SEARCH_OLDER,             /* number: internal date more than n s ago */
	STORE_SEARCH_YOUNGER,           /* number: internal date at most n s ago */
	STORE_SEARCH_LARGER,            /* number: RFC822.SIZE > n */
	STORE_SEARCH_SMALLER,           /* number: RFC822.SIZE < n */
	STORE_SEARCH_MODSEQ,            /* number: modseq >= n */
	STORE_SEARCH_SUBJECT,           /* str */
	STORE_SEARCH_FROM,
	STORE_SEARCH_TO,
	STORE_SEARCH_CC,
	STORE_SEARCH_BCC,
	STORE_SEARCH_HEADER,            /* header: field name, str: value */
	STORE_SEARCH_BODY,              /* str */
	STORE_SEARCH_TEXT,              /* str */
	STORE_SEARCH_UID,               /* set: UIDs */
	STORE_SEARCH_SEQ,               /* set: sequence numbers */
	STORE_SEARCH_EMAILID,           /* str: EMAILID (RFC 8474) */
	STORE_SEARCH_THREADID,          /* str: THREADID (matches nothing) */
};

/* "*" in a sequence set: the largest UID or sequence number in use. */
#define STORE_SEQ_STAR UINT32_MAX

/* A sequence set: ranges lo:hi (either order, STORE_SEQ_STAR allowed). */
struct store_seq_range {
	uint32_t lo, hi;
};

struct store_search {
	enum store_search_kind kind;
	struct store_search *children;  /* AND, OR, NOT: a list through next */
	struct store_search *next;
	uint32_t flags;
	int64_t day;
	uint64_t number;
	const char *header;
	const char *str;                /* UTF-8 */
	const struct store_seq_range *set;
	size_t set_count;
};

/*
 * The UIDs of the opened mailbox's messages (as store_mailbox_count and
 * store_mailbox_msg show them) that match c, ascending, allocated in a.
 * Reads the index: header fields from message_meta, BODY and TEXT through
 * the full-text index, each message's text checked against the criteria
 * (so the result is exact), a row at a time: memory stays bounded however
 * large the mailbox. Blocks on disk.
 */
int store_mailbox_search(struct store_mailbox *mb, const struct store_search *c,
			 struct arena *a, uint32_t **uids_r, size_t *count_r,
			 struct store_error *err);

/* The substring test of string keys: does needle occur in hay (len
 * bytes of UTF-8), both casemapped as described above? */
bool store_search_match(const char *hay, size_t len, const char *needle);

/* --------------------------------------------------------------- sort */

/* SORT keys (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO). */
enum store_sort_key {
	STORE_SORT_ARRIVAL,
	STORE_SORT_CC,
	STORE_SORT_DATE,
	STORE_SORT_FROM,
	STORE_SORT_SIZE,
	STORE_SORT_SUBJECT,
	STORE_SORT_TO,
	STORE_SORT_DISPLAYFROM,
	STORE_SORT_DISPLAYTO,
};

struct store_sort_spec {
	enum store_sort_key key;
	bool reverse;
};

/* What SORT and THREAD need of one message. Strings are UTF-8, "" when
 * the field is absent. */
struct store_sort_data {
	uint32_t uid;
	uint32_t seq;
	int64_t arrival;                /* internal date */
	int64_t date;                   /* Date header, else the internal date */
	uint64_t size;                  /* RFC822.SIZE */
	const char *base_subject;       /* RFC 5256 §2.1 */
	const char *from, *to, *cc;     /* addr-mailbox of the first address */
	const char *display_from;       /* RFC 5957: display name, else addr-spec */
	const char *display_to;
	/* Threading (RFC 5256 REFERENCES): as in the header, decoded. */
	const char *message_id, *in_reply_to, *references;
};

/* RFC 5256 §2.1: the base subject of a decoded subject, in a. */
char *store_base_subject(struct arena *a, const char *subject);

/* Sort and threading data of count UIDs (absent UIDs are left out), in a;
 * reads message_meta a row at a time. */
int store_mailbox_sort_data(struct store_mailbox *mb, const uint32_t *uids, size_t count,
			    struct arena *a, struct store_sort_data **data_r, size_t *count_r,
			    struct store_error *err);

/* Sort uids in place (absent ones dropped; *count_r the rest) by the keys
 * in order; ties go by sequence number (RFC 5256). String keys compare
 * with i;unicode-casemap (RFC 5051, as I18NLEVEL=1 asks). */
int store_mailbox_sort(struct store_mailbox *mb, uint32_t *uids, size_t count,
		       const struct store_sort_spec *keys, size_t nkeys, size_t *count_r,
		       struct store_error *err);

/* -------------------------------------------------------------- saving */

struct store_save;

/*
 * Save a message (APPEND, LMTP): begin, write the body in pieces (any line
 * ends; stored with LF), commit. Nothing is visible before the commit, and
 * a commit that returns 0 is durable (DESIGN invariant 1): the file and
 * its directory entry are on disk and the index knows the UID. Concurrent
 * commits of one user in one process share their flushes (group commit).
 */
int store_save_begin(struct store_user *u, const char *mailbox, struct store_save **s_r,
		     struct store_error *err);
void store_save_set_flags(struct store_save *s, uint32_t flags);
void store_save_set_internal_date(struct store_save *s, int64_t when);
/* Leave the message's text out of the search index for now: it is then
 * pending, as a bulk-adopted message is, until store_user_catch_up (or a
 * search reading its file) adds it. Halves the cost of a delivery; call
 * before the first write. The saves that share this one share it. */
void store_save_defer_text(struct store_save *s);
int store_save_write(struct store_save *s, const void *data, size_t len,
		     struct store_error *err);
int store_save_commit(struct store_save **s, uint32_t *uidvalidity_r, uint32_t *uid_r,
		      struct store_error *err);
void store_save_abort(struct store_save **s);

/*
 * The same message once more, for another user or mailbox (LMTP with
 * several recipients): flushes src to disk (no more writes to it after
 * this) and returns a new save of its bytes in mailbox of u, which is
 * committed or aborted on its own, in any order with src. On one file
 * system both are names of one file (a hard link: one inode, stored once);
 * across file systems the bytes are copied. Call before src is committed
 * or aborted. Flags and the internal date are src's. NOTFOUND when the
 * mailbox does not exist. Blocks on disk (fsync of src's file).
 */
int store_save_share(struct store_save *src, struct store_user *u, const char *mailbox,
		     struct store_save **s_r, struct store_error *err);

/* -------------------------------------------------------- notification */

/*
 * Change notification for IDLE: cb runs on the loop soon after anything
 * changes in the folder's new/ or cur/ (a delivery, a flag change, an
 * expunge, by any process or program); the session then calls
 * store_mailbox_sync. One inotify watch per folder serves every watcher in
 * the process. When the kernel's inotify limits are reached
 * (fs.inotify.max_user_watches, max_user_instances) this is logged and the
 * folder is polled every STORE_WATCH_POLL_MS instead.
 */
#define STORE_WATCH_POLL_MS 2000

struct uv_loop_s;
struct store_watch;
typedef void store_watch_cb(void *data);

int store_watch_start(struct uv_loop_s *loop, struct store_user *u, const char *mailbox,
		      store_watch_cb *cb, void *data, struct store_watch **w_r,
		      struct store_error *err);
void store_watch_stop(struct store_watch **w);

#endif
