/*
 * fts-private.h — the full-text index (fts.c), private to storage/: the
 * searchable text of a message and its rows in message_fts.
 */
#ifndef TERN_FTS_PRIVATE_H
#define TERN_FTS_PRIVATE_H

#include "storage-private.h"

/* Kept per message: decoded body text and decoded header text. */
#define FTS_BODY_MAX (8 * 1024 * 1024)
#define FTS_HDR_MAX (2 * 1024 * 1024)

struct mime_part;

/* A message's searchable text, in its i;unicode-casemap form (casemap.h):
 * hdr "Name: value" lines of the top-level header, body the text/ parts.
 * Reference counted (a shared save hands it to each recipient). */
struct store__fts_doc {
	int refs;
	struct buf hdr, body;
};

struct store__fts_doc *store__fts_doc_new(void);
struct store__fts_doc *store__fts_doc_ref(struct store__fts_doc *d);
void store__fts_doc_unref(struct store__fts_doc **d);
/* The text of the message in fd (stored form, read with pread) whose part
 * tree root the parser made of it. NULL with *err on a read error. */
struct store__fts_doc *store__fts_doc_build(int fd, const struct mime_part *root,
					    struct store_error *err);
/* The same from a file, parsing it first. */
struct store__fts_doc *store__fts_doc_from_file(const char *path, struct store_error *err);

/* Does the GUID have a document? (1/0) */
int store__fts_has(struct store_user *u, const char *guid);
/* Store the document of guid (replacing one it had), in the caller's
 * write transaction; its messages stop being pending. */
int store__fts_insert(struct store_user *u, const char *guid, const struct store__fts_doc *doc,
		      struct store_error *err);
/*
 * Documents of GUIDs that lost their last message wait in fts_gone (fts.c).
 * FTS_PURGE_BATCH: the most store__fts_purge deletes in one transaction
 * (0.2-0.8 ms each as measured, so a transaction of at most ~50 ms).
 * FTS_GONE_MAX: more than this waiting after a delete of messages, and
 * the process that deleted them purges them all at once (tern-pop3d and
 * ternctl run no background job; tern-imapd's rarely lets that many
 * gather). Together they bound the space unreachable documents take.
 */
#define FTS_PURGE_BATCH 64
#define FTS_GONE_MAX 256
/* How many documents wait, counting up to max; -1 on an index error. */
int store__fts_gone_count(struct store_user *u, int max);
/* Delete up to max waiting documents in one write transaction of its own
 * (not in the caller's): how many, -1 on an error. */
int store__fts_purge(struct store_user *u, unsigned max, struct store_error *err);
/* After a committed delete of messages: purge every waiting document,
 * a batch a transaction, if more than FTS_GONE_MAX wait. Failure is only
 * logged (the documents wait for the next try). Blocks on the index. */
void store__fts_gone_bound(struct store_user *u);
/* A sync adopted the file at path: index it unless its GUID has a
 * document. A file that cannot be read stays pending (not an error). */
int store__fts_adopt(struct store_user *u, const char *path, const char *guid,
		     struct store_error *err);

/* search.c: parse the file of a message without a message_meta row and
 * store its row, as FETCH would, but without a sync (the view must not
 * change under a search or sort). A file gone meanwhile, or a row not
 * stored, is no error: the message then has no fields. -1 only on an
 * index error. */
int store__meta_fill(struct store_mailbox *mb, uint32_t uid, struct store_error *err);

#endif
