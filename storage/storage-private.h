/*
 * storage-private.h — internals shared by the files of storage/.
 */
#ifndef TERN_STORAGE_PRIVATE_H
#define TERN_STORAGE_PRIVATE_H

#include "storage/storage.h"

#include <dirent.h>
#include <sqlite3.h>

#define STORE_INDEX_FILE "index.sqlite"
/* Taken while a missing index is created (index.c, open_db). */
#define STORE_INDEX_LOCK_FILE "index-create.lock"
#define STORE_UIDSTATE_FILE "tern-uidstate"
#define STORE_KEYWORDS_FILE "dovecot-keywords"
/* The folder's MAILBOXID (objectid.c). */
#define STORE_MAILBOXID_FILE "tern-mailboxid"
/* Keywords beyond this many per folder live only in the index (Maildir
 * file names have the letters a-z). */
#define STORE_KEYWORDS_MAX 26
/* How far ahead UIDs and modseqs are reserved in tern-uidstate: a rebuild
 * starts above the reservation, so nothing handed out is ever reused. */
#define STORE_UID_RESERVE 1000
#define STORE_MODSEQ_RESERVE 10000
/* A directory whose mtime is this recent may change again within the same
 * timestamp tick: it is not trusted, and rescanned next time. The fine
 * window is for file systems with sub-second times (kernel ticks are at
 * most 10 ms); the other for those that keep whole seconds. */
#define STORE_MTIME_SETTLE_NS (2LL * 1000000000LL)
#define STORE_MTIME_SETTLE_FINE_NS (50LL * 1000000LL)
/* Folders with fewer messages are scanned in full whenever opened; larger
 * ones at least this often (which also heals an index that lost a row). */
#define STORE_RESCAN_AT_OPEN_MAX 1000
#define STORE_RESCAN_INTERVAL_S 3600
/* Files left in tmp/ longer than this are removed (Maildir's rule). */
#define STORE_TMP_MAX_AGE_S (36 * 3600)
/* A sync that finds more unknown files than this in one folder adopts
 * them with their index rows only, leaving their structure and text to be
 * parsed on first use (sync.c). */
#define STORE_ADOPT_EAGER_MAX 256
/* Texts a search keeps of the pending messages it reads from their files
 * (search.c): the first search after a bulk adoption reads every one, so
 * its result is exact, but stores only this many; later searches store
 * the rest. Each search thus costs little more than reading the files. */
#define STORE_SEARCH_KEEP_MAX 2000

/* Statements prepared once per index connection (store__stmt): those run
 * once per message on hot paths (FETCH, RETR, STORE) or by every command. */
enum store_stmt_id {
	STORE_STMT_MSG_ROW,     /* view.c: a message's row by UID */
	STORE_STMT_META_ROW,    /* message-meta.c: ENVELOPE ... by UID */
	STORE_STMT_GUID,        /* objectid.c: a message's GUID by UID */
	STORE_STMT_MBOX_ROW,    /* index.c: a mailbox row by name (every sync) */
	/* Run by every write transaction or mailbox open: parsing them was
	 * 10% of tern-imapd's CPU in the mixed benchmark. */
	STORE_STMT_SYNC_FULL,   /* index.c: store__begin, durable */
	STORE_STMT_SYNC_NORMAL, /* index.c: store__begin, not durable */
	STORE_STMT_BEGIN,       /* index.c: store__begin */
	STORE_STMT_BEGIN_READ,  /* index.c: store__begin_read */
	STORE_STMT_COMMIT,      /* index.c: store__commit */
	STORE_STMT_SAVEPOINT,   /* save.c: one save of a group commit */
	STORE_STMT_RELEASE,     /* save.c: the same, done */
	STORE_STMT_MBOX_DIGESTS, /* index.c: a mailbox row's digests */
	STORE_STMT_MBOX_CEILINGS, /* index.c: a mailbox row's ceilings */
	STORE_STMT_MBOX_TIMES,  /* index.c: a mailbox row's directory times */
	STORE_STMT_VIEW_EXPUNGED, /* view.c: expunges since a modseq */
	STORE_STMT_VIEW_ALL,    /* view.c: every row of a mailbox */
	STORE_STMT_VIEW_CHANGED, /* view.c: rows changed since a modseq */
	STORE_STMT_MBOX_BUMP,   /* view.c: a mailbox's highestmodseq */
	STORE_STMT_FLAGS,       /* view.c: a message's flags */
	STORE_STMT_COUNT,       /* view.c: a mailbox's messages */
	STORE_STMT_COUNT_UPTO,  /* view.c: the same, up to a limit */
	STORE_STMT_SAVE_ROW,    /* save.c: a new message's row */
	STORE_STMT_SAVE_MBOX,   /* save.c: the mailbox row after saves */
	STORE_STMT_META_INSERT, /* message-meta.c: a message's structure */
	STORE_STMT_META_KEEP,   /* message-meta.c: the same, if still there */
	/* Run once a message or file: compiled once, not each time (the
	 * triggers on message make compiling them cost ~125,000 instructions
	 * each). */
	STORE_STMT_EXPUNGE_ROW, /* view.c: store__expunge_row */
	STORE_STMT_EXPUNGE_NOTE,
	STORE_STMT_SYNC_ADD,    /* sync.c: a file adopted */
	STORE_STMT_SYNC_RENAME, /* sync.c: a file renamed, flags the same */
	STORE_STMT_SYNC_REFLAG, /* sync.c: a file renamed with other flags */
	STORE_STMT_SYNC_MBOX,   /* sync.c: the mailbox row after a sync */
	STORE_STMT_COPY_ROW,    /* copy.c: a copy's row */
	STORE_STMT_COPY_GUID,   /* copy.c: the GUID in the destination? */
	STORE_STMT_META_COPY,   /* message-meta.c: a copy's structure */
	/* fts.c: store__fts_insert, run by every save that keeps its text */
	STORE_STMT_FTS_GUID_USED,
	STORE_STMT_FTS_REPLACED,
	STORE_STMT_FTS_TEXT,
	STORE_STMT_FTS_DOC,
	STORE_STMT_FTS_UNPEND,
	STORE_STMT_N
};

enum store_sync_level { STORE_SYNC_UNKNOWN, STORE_SYNC_NORMAL, STORE_SYNC_FULL };

struct store_user {
	char *dir;              /* user directory */
	char *maildir;          /* <dir>/Maildir */
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_STMT_N];
	uint64_t digest_key[2]; /* the index's SipHash key (sync.c) */
	bool digests;           /* the index keeps listing digests */
	bool meta;              /* the index has the message_meta table */
	dev_t index_dev;        /* the index file opened, to notice a new one */
	ino_t index_ino;
	struct store_quota quota;
	bool has_quota;
	int64_t busy_since;     /* when the current wait for a lock began */
	int sync_level;         /* the connection's PRAGMA synchronous (index.c) */
	bool busy_nowait;       /* do not wait for the write lock (sync.c) */
};

/* One folder's on-disk state (tern-uidstate). */
struct store_uidstate {
	uint32_t uidvalidity;
	uint32_t uid_ceiling;       /* UIDs below this may have been used */
	uint64_t modseq_ceiling;    /* modseqs up to this may have been used */
};

/* An order-independent digest of a set of file names, kept per folder for
 * new/ and cur/ (see sync.c): the sum, lane by lane modulo 2^64, of the
 * keyed 128-bit SipHash of each "new/<name>" or "cur/<name>". known is
 * false when the index holds none (NULL): a full reconcile is then due. */
struct store_digest {
	uint64_t a, b;
	bool known;
};

enum { STORE_DIGEST_NEW, STORE_DIGEST_CUR, STORE_DIGEST_DIRS };

/* A row of the mailbox table. */
struct store_mbox_row {
	int64_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t special_use;
	int64_t new_mtime;
	int64_t cur_mtime;
	uint32_t uid_ceiling;       /* as in tern-uidstate */
	uint64_t modseq_ceiling;
	uint64_t history_modseq;    /* expunges known from here on */
	int64_t scanned_at;         /* last full listing, seconds */
	/* What the index expects in new/ and cur/: every writer that adds,
	 * renames or removes a message file updates it in its transaction. */
	struct store_digest digest[STORE_DIGEST_DIRS];
};

struct store_mailbox {
	struct store_user *user;
	char *name;
	char *folder;           /* absolute folder directory */
	int64_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	struct store_msg *msgs; /* sorted by UID */
	uint32_t count;
	uint32_t cap;
	char **keywords;        /* the folder's keyword list */
	unsigned keyword_count;
	uint64_t history_start;  /* expunge history complete from this modseq */
	uint64_t cache_modseq;  /* modseq of the view cache loaded, 0: none */
	uint32_t changes_since_cache;
	bool cache_ok;          /* the view is complete and current */
	char mailboxid[STORE_OBJECTID_SIZE];    /* "" until asked for */
};

/* errors.c */
int store__fail(struct store_error *err, enum store_errcode code, const char *fmt, ...)
	ATTR_PRINTF(3, 4);
/* Map errno: ENOSPC → NOSPACE, EDQUOT → QUOTA, ENOENT → NOTFOUND,
 * EACCES/EPERM → PERM, others → TEMP. */
int store__fail_errno(struct store_error *err, int errnum, const char *fmt, ...)
	ATTR_PRINTF(3, 4);
int store__fail_db(struct store_error *err, sqlite3 *db, const char *what);

/* index.c */
int store__index_open(struct store_user *u, struct store_error *err);
void store__index_close(struct store_user *u);
/* The cached statement id of the index connection, prepared from sql the
 * first time, reset and with its bindings cleared: bind, step, then
 * sqlite3_reset when done. NULL with *err on failure. */
sqlite3_stmt *store__stmt(struct store_user *u, enum store_stmt_id id, const char *sql,
			  struct store_error *err);
/* BEGIN IMMEDIATE (waits for other writers up to the busy timeout).
 * durable: the commit is synced to disk (synchronous=FULL) — for
 * transactions that hand out UIDs or record expunges; otherwise NORMAL. */
int store__begin(struct store_user *u, bool durable, struct store_error *err);
/* A read transaction: what the reads in it see is one moment's. */
int store__begin_read(struct store_user *u, struct store_error *err);
/* Run st, a cached statement with its values bound that returns no rows,
 * and reset it; what names it in an error. */
int store__step_cached(struct store_user *u, sqlite3_stmt *st, const char *what,
		       struct store_error *err);
/* Run the cached statement id (sql), which returns no rows. */
int store__exec_cached(struct store_user *u, enum store_stmt_id id, const char *sql,
		       struct store_error *err);
int store__commit(struct store_user *u, struct store_error *err);
void store__rollback(struct store_user *u);
int store__exec(struct store_user *u, const char *sql, struct store_error *err);
int store__mbox_get(struct store_user *u, const char *name, struct store_mbox_row *row_r,
		    struct store_error *err);
bool store__index_needs_rebuild(struct store_user *u);
/* Reopen the index if another process replaced the file (one stat). */
int store__follow_replaced_index(struct store_user *u, struct store_error *err);

/* user.c: may adding bytes/messages exceed the quota? (in a write txn) */
int store__quota_check(struct store_user *u, uint64_t bytes, uint64_t messages,
		       struct store_error *err);

/* uidstate.c */
/* Read a small file of folder (at most size - 1 bytes, NUL-terminated)
 * into text: 1, 0 when it does not exist, -1 on an error. */
int store__small_file_read(const char *folder, const char *name, char *text, size_t size,
			   struct store_error *err);
int store__uidstate_read(const char *folder, struct store_uidstate *st_r,
			 struct store_error *err);
int store__uidstate_write(const char *folder, const struct store_uidstate *st,
			  struct store_error *err);
/* Make sure uid and modseq are covered by the folder's reservation. The
 * row's mirror answers without I/O; otherwise the file is extended (one
 * durable write) and the row updated: the caller stores the row's ceilings
 * in the same transaction. Returns 1 when the row changed. uid 0: no UID
 * is being handed out. */
int store__uidstate_reserve(const char *folder, struct store_mbox_row *row, uint32_t uid,
			    uint64_t modseq, struct store_error *err);
/* Store row->uid_ceiling and modseq_ceiling in the index. */
int store__mbox_save_ceilings(struct store_user *u, const struct store_mbox_row *row,
			      struct store_error *err);
uint32_t store__new_uidvalidity(void);

/* keywords.c */
int store__keywords_load(const char *folder, char ***list_r, unsigned *count_r,
			 struct store_error *err);
/* Index of keyword name, adding it to the folder's list if add is set:
 * >= 0, or -1 when absent (not added) or the list is full. */
int store__keyword_index(const char *folder, char ***list, unsigned *count,
			 const char *name, bool add, struct store_error *err);
void store__keywords_free(char **list, unsigned count);

/* folder.c */
/* Absolute folder directory of a validated name (malloc'd). */
char *store__folder_path(struct store_user *u, const char *name, struct store_error *err);
int store__folder_create_dirs(const char *folder, bool is_inbox, struct store_error *err);
int store__fsync_dir(const char *path, struct store_error *err);
int store__fsync_path(const char *path, struct store_error *err);
/* Compute the CRLF size of a file with LF line ends. */
int store__file_vsize(const char *path, uint64_t *size_r, uint64_t *vsize_r,
		      struct store_error *err);
int64_t store__now_ns(void);
/* Replace dir/name with data: written to dir/tmp/, synced, renamed over,
 * and the directory synced (for the small state files of a folder). */
int store__write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
			     struct store_error *err);
/* rm -r, best effort (for folders already unlinked from the index). */
void store__remove_tree(const char *path);
int64_t store__mtime_ns(const char *path);

/* sync.c */
/* SipHash-2-4 with 128-bit output. */
void store__siphash128(const uint64_t key[2], const void *data, size_t len, uint64_t out[2]);
/* Reconcile one folder's files with the index (inside its own write
 * transaction). force skips the directory-time shortcut; trust_uids (for a
 * rebuild) keeps the U= of files when unique. */
int store__sync_folder(struct store_user *u, const char *name, bool force,
		       struct store_error *err);
int store__sync_folder_opts(struct store_user *u, const char *name, bool force,
			    bool trust_uids, struct store_error *err);
/* The sync of an open (SELECT): as store__sync_folder without force, but
 * when a check needs the write lock and another session of ours holds it,
 * the folder is left as the index has it (that writer records its own
 * changes; anything else is seen by the next sync). */
int store__sync_folder_nowait(struct store_user *u, const char *name, struct store_error *err);
/* The entries a sync considers in new/ and cur/ (the others are ignored by
 * the sync and left out of the digests): regular files, not hidden, with a
 * name that parses (into *fn_r when not NULL). d is the entry's directory. */
bool store__listed_entry(DIR *d, const struct dirent *e, struct store_filename *fn_r);
/* Add (or take away) one index file name, "new/..." or "cur/...", to the
 * row's digests. Unknown digests stay unknown. */
void store__digest_name(struct store_user *u, struct store_mbox_row *row, const char *relname,
			bool add);
/* Store the row's digests (NULL where unknown), in the writer's
 * transaction. */
int store__mbox_save_digests(struct store_user *u, const struct store_mbox_row *row,
			     struct store_error *err);
/* Store the row's directory times (new_mtime, cur_mtime), in the writer's
 * transaction. */
int store__mbox_save_times(struct store_user *u, const struct store_mbox_row *row,
			   struct store_error *err);
/* For tests: a folder's digests as stored in its mailbox row, as computed
 * from scratch from its message rows, and from a listing of new/ and cur/. */
int store__folder_digests(struct store_user *u, const char *name,
			  struct store_digest stored_r[STORE_DIGEST_DIRS],
			  struct store_digest index_r[STORE_DIGEST_DIRS],
			  struct store_digest listed_r[STORE_DIGEST_DIRS], struct store_error *err);
/* witness.c: a writer's watch over new/ and cur/ from before its first
 * change to its commit, under the write lock, so that it can record the
 * directory times its changes leave as trusted (see witness.c). */
struct store_witness {
	int fd;                                  /* the thread's inotify, -1: none */
	int wd[STORE_DIGEST_DIRS];
	bool trusted[STORE_DIGEST_DIRS];         /* the index's time was the directory's */
	unsigned expected[STORE_DIGEST_DIRS];    /* events our own changes make */
};
/* Start watching, with row as read under the write lock. Never fails: without
 * a watch the times are left untrusted, as for another program's change. */
void store__witness_begin(struct store_witness *w, const char *folder,
			  const struct store_mbox_row *row);
/* One file moved (from, to: "new/...", "cur/...", "tmp/..." relative to the
 * folder; NULL for a file created or removed). */
void store__witness_change(struct store_witness *w, const char *from, const char *to);
/* Before the commit: set the row's directory times to those witnessed (or 0
 * where the directory changed otherwise too) and store them. Stops watching. */
int store__witness_end(struct store_witness *w, struct store_user *u, const char *folder,
		       struct store_mbox_row *row, struct store_error *err);
/* Stop watching without recording anything (a failed transaction). */
void store__witness_cancel(struct store_witness *w);
/* For tests: writers behave as if they could not watch (no inotify). */
void store__witness_disable(bool off);
/* For tests: how many full reconciles (listing, parsing and matching every
 * file) this process has done. */
uint64_t store__full_reconciles(void);
/* For tests: how many directory listings quick checks have made. */
uint64_t store__quick_listings(void);

/* mailbox.c */
int store__mbox_register(struct store_user *u, const char *name, const char *folder,
			 uint32_t special_use, struct store_mbox_row *row_r,
			 struct store_error *err);
/* Look up a mailbox, registering its folder if it exists on disk only:
 * 1 found, 0 no such mailbox, -1 error. */
int store__mbox_find(struct store_user *u, const char *name, struct store_mbox_row *row_r,
		     struct store_error *err);
uint32_t store__default_special_use(const char *name);
/* Subscriptions are kept in the index and, for a rebuild, in the Maildir's
 * "subscriptions" file (one UTF-8 name per line). */
int store__subscriptions_load(struct store_user *u, struct store_error *err);

/* view.c: one message's index row. */
struct store_msg_row {
	char filename[600];     /* "new/..." or "cur/...", relative to the folder */
	uint32_t flags;
	uint64_t keywords;
	uint64_t modseq;
	int64_t internal_date;
	uint64_t size, vsize;
};

/* 1 with *row_r filled, 0 when the UID is not in the mailbox, -1 error. */
int store__msg_row(struct store_mailbox *mb, uint32_t uid, struct store_msg_row *row_r,
		   struct store_error *err);
/* The same, and the path of its file into path. resync: the file the
 * index named was not there (renamed meanwhile by another session's flag
 * change or another program): the folder is synced first. */
int store__msg_path(struct store_mailbox *mb, uint32_t uid, bool resync,
		    struct store_msg_row *row_r, char *path, size_t size, struct store_error *err);

/* view.c: remove message uid of mailbox_id from the index and record it
 * as expunged at modseq (for QRESYNC), in the caller's write transaction. */
int store__expunge_row(struct store_user *u, int64_t mailbox_id, uint32_t uid, uint64_t modseq,
		       struct store_error *err);
/* view.c: bring an opened mailbox up to the index. */
int store__view_refresh(struct store_mailbox *mb, struct store_error *err);

/* message-meta.c: a message's parse results (ENVELOPE, BODYSTRUCTURE,
 * part tree, decoded fields) and its message_meta row. */
struct mime_part;
struct store__meta;
extern const char store__meta_schema[];
struct store__meta *store__meta_from_parts(const struct mime_part *root);
/* Parse a message file; NULL with *err on an I/O error. */
struct store__meta *store__meta_parse_file(const char *path, struct store_error *err);
struct store__meta *store__meta_ref(struct store__meta *m);
void store__meta_unref(struct store__meta **m);
/* Insert or replace the row of (mailbox_id, uid), in the caller's write
 * transaction (nothing when the index has no message_meta table), for a
 * message that transaction has just recorded (a save, an adoption). */
int store__meta_insert(struct store_user *u, int64_t mailbox_id, uint32_t uid, const char *guid,
		       const struct store__meta *m, struct store_error *err);
/* The same for a structure parsed from the file before the write lock (a
 * catch-up, a search, a FETCH): stored only while the message with that
 * GUID is still there, or the row would outlive it. */
int store__meta_keep(struct store_user *u, int64_t mailbox_id, uint32_t uid, const char *guid,
		     const struct store__meta *m, struct store_error *err);
/* COPY/MOVE: the row of a source message, if it has one that matches
 * it, for its copy (in the caller's write transaction, before a move
 * deletes the source row). */
int store__meta_copy(struct store_user *u, int64_t src_mailbox_id, uint32_t src_uid,
		     int64_t dst_mailbox_id, uint32_t dst_uid, const char *dst_guid,
		     struct store_error *err);

/* objectid.c */
/* The folder's MAILBOXID if it has one: 1; 0 when there is no file, 2
 * when the file holds no valid id; -1 on an I/O error. Only reads. */
int store__mailboxid_read(const char *folder, char id[STORE_OBJECTID_SIZE],
			  struct store_error *err);
/* The folder's MAILBOXID, made and stored (durably) if it has none. */
int store__mailboxid_get(const char *folder, char id[STORE_OBJECTID_SIZE],
			 struct store_error *err);
/* The EMAILID of a message with this GUID. */
void store__email_id(const char *guid, char id[STORE_OBJECTID_SIZE]);

/* rebuild.c */
int store__rebuild(struct store_user *u, struct store_error *err);
/* The rebuild of an index found new or unfinished, under an exclusive lock
 * on the user directory, so that concurrent openers do not rebuild it twice
 * (user.c). create: also make the default folders that are missing. */
int store__rebuild_locked(struct store_user *u, bool create, struct store_error *err);

#endif
