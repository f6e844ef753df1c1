/*
 * auth.h — the public interface of auth/: login names, password hashes,
 * the users database, the user directory (lookup without password), PAM
 * checks, the auth worker process with its client on the daemon's loop, the
 * per-address failure penalty, and the SASL mechanisms PLAIN and LOGIN.
 *
 * auth/ depends only on common/. The protocols (imapd, pop3d, lmtp) and
 * ternctl use it; pam_tern.so is built from part of it.
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include "common/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct uv_loop_s;

/* ----------------------------------------------------------- login names */

/* Longest login name, as stored (user@domain included). */
#define AUTH_NAME_MAX 128

/*
 * Check a login name before anything else sees it (PAM, a path, a log
 * line): 1..AUTH_NAME_MAX bytes of ASCII letters, digits and . _ - + @,
 * not starting with '.', '-' or '@', no "..", at most one '@' with a local
 * part and a domain around it. The stored form is lower-case: out gets it
 * (out_size at least AUTH_NAME_MAX + 1). Returns 0, or -1 with *why_r set
 * to a short reason for the protocol error (never echoing the name).
 */
int auth_name_normalize(const char *name, char *out, size_t out_size, const char **why_r);

/* -------------------------------------------------------- password hashes */

/* Longest hash string crypt_r can produce, plus NUL. */
#define AUTH_HASH_MAX 256

/* Hash password with yescrypt (libcrypt, "$y$" with a fresh salt). 0, or
 * -1 with errno set. */
int auth_password_hash(const char *password, char *out, size_t out_size);
/* Verify password against a crypt(3) hash (yescrypt, or any scheme libcrypt
 * knows: hashes from mkpasswd work). The comparison is constant-time. */
bool auth_password_verify(const char *password, const char *hash);
/* Constant-time equality of two byte strings of the same length. */
bool auth_secret_equal(const void *a, const void *b, size_t len);

/* ------------------------------------------------- users and their lookup */

/* A user as the daemons and ternctl see it: never the password. */
struct auth_user {
	char name[AUTH_NAME_MAX + 1]; /* canonical (normalized) name */
	char mail_dir[4096];          /* absolute: override, or mail_root/name */
	bool enabled;
	uint64_t quota_bytes;         /* 0: unlimited */
	uint64_t quota_messages;      /* 0: unlimited */
	int64_t created, updated;     /* Unix seconds; 0 for system users */
};

enum auth_lookup_result {
	AUTH_LOOKUP_FOUND,
	AUTH_LOOKUP_NOT_FOUND,
	AUTH_LOOKUP_TEMPFAIL, /* database unreadable or locked: try later */
};

/* The users database of virtual users (SQLite, [auth] users_db). */
struct userdb;

/* Open the database; create (0600, with its schema) when create is true
 * and it does not exist. 0, or -1 with *error_r malloc'd. */
int userdb_open(const char *path, bool create, struct userdb **db_r, char **error_r);
void userdb_close(struct userdb **db);

enum userdb_result {
	USERDB_OK,
	USERDB_NOT_FOUND,
	USERDB_EXISTS,
	USERDB_ERROR, /* *error_r set (malloc'd) */
};

/* name must be normalized. mail_dir: NULL for the default. */
enum userdb_result userdb_add(struct userdb *db, const char *name, const char *hash,
			      uint64_t quota_bytes, uint64_t quota_messages,
			      const char *mail_dir, char **error_r);
enum userdb_result userdb_delete(struct userdb *db, const char *name, char **error_r);
enum userdb_result userdb_set_hash(struct userdb *db, const char *name, const char *hash,
				   char **error_r);
enum userdb_result userdb_set_enabled(struct userdb *db, const char *name, bool enabled,
				      char **error_r);
enum userdb_result userdb_set_quota(struct userdb *db, const char *name, uint64_t quota_bytes,
				    uint64_t quota_messages, char **error_r);
/* One user. mail_root completes the default mail directory. hash_r, when
 * not NULL, gets the password hash (malloc'd): only pam_tern asks. */
enum userdb_result userdb_get(struct userdb *db, const char *name, const char *mail_root,
			      struct auth_user *user_r, char **hash_r, char **error_r);
/* Every user in name order. Stops early when cb returns non-zero. */
typedef int userdb_list_cb(const struct auth_user *user, void *data);
enum userdb_result userdb_list(struct userdb *db, const char *mail_root, userdb_list_cb *cb,
			       void *data, char **error_r);

/*
 * The user directory: who exists, where their mail is, their quota. Virtual
 * users come from the users database, system users from getpwnam (mail under
 * mail_root, no quota). LMTP asks it at RCPT, ternctl for every user
 * command, the auth worker after PAM said yes.
 */
struct auth_directory;

int auth_directory_open(const struct cfg *cfg, struct auth_directory **dir_r, char **error_r);
void auth_directory_close(struct auth_directory **dir);
/* name is normalized first; a name that is not valid is NOT_FOUND. */
enum auth_lookup_result auth_directory_lookup(struct auth_directory *dir, const char *name,
					      struct auth_user *user_r);

/* ------------------------------------------------------------------- PAM */

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,   /* wrong name or password */
	AUTH_DISABLED, /* the password was right but the account is refused
			* (pam_acct_mgmt: disabled, expired) */
	AUTH_TEMPFAIL, /* PAM or the directory could not answer: try later */
	AUTH_LIMITED,  /* too many attempts from this address in flight */
};

/* "ok", "failed", ... for logs and ternctl. */
const char *auth_result_name(enum auth_result r);

/*
 * One PAM transaction as the daemons run it: pam_start_confdir with the
 * configured service and directory, PAM_RHOST set, PAM_FAIL_DELAY replaced
 * by a no-op (the daemon delays instead), the users database path passed to
 * pam_tern in the PAM environment (TERN_USERS_DB), pam_authenticate then
 * pam_acct_mgmt. The conversation answers only the password prompt. Runs in
 * the auth worker and in `ternctl auth test`; blocking. detail gets PAM's
 * message for the log (never the password).
 */
enum auth_result auth_pam_check(const struct cfg *cfg, const char *user, const char *password,
				const char *remote_ip, char *detail, size_t detail_size);

/* ------------------------------------------------- auth worker and client */

/* What a protocol asks. All strings are copied; password is wiped. */
struct auth_request_info {
	const char *mech;      /* "PLAIN", "LOGIN", "USER" (POP3), "LOGIN-CMD" (IMAP) */
	const char *authzid;   /* who to log in as; NULL or "" for authcid */
	const char *authcid;   /* whose password it is (may be "user*master") */
	const char *password;
	const char *remote_ip; /* conn_remote_ip */
};

/* The answer, valid during the callback only. */
struct auth_reply {
	enum auth_result result;
	const struct auth_user *user; /* AUTH_OK: the user logged in as */
	const char *master;           /* AUTH_OK as master: the master's name */
	const char *message;          /* for the client: "Authentication failed." */
};

typedef void auth_done_cb(const struct auth_reply *reply, void *data);

struct auth_client;
struct auth_request;

/*
 * Start the auth worker: fork a process (as root, before the daemon drops
 * privileges) that keeps only what PAM needs (mail_user, plus the shadow
 * group for system users), is not dumpable, and runs up to worker_threads
 * PAM checks at once. The daemon talks to it over a socketpair.
 */
int auth_client_start(const struct cfg *cfg, struct auth_client **client_r);
/* Attach to the daemon's loop (after the fork, before serving). */
int auth_client_attach(struct auth_client *client, struct uv_loop_s *loop);
/* New limits and delays after SIGHUP. */
void auth_client_reload(struct auth_client *client, const struct cfg *cfg);
/* Stop the worker and free everything; pending callbacks are not called. */
void auth_client_stop(struct auth_client **client);
/* The process's client (set by auth_client_start), for the protocols. */
struct auth_client *auth_client_get(void);

/*
 * Ready-made service_def hooks (common.h) for a daemon that authenticates:
 * prepare starts the worker (auth_client_start), start attaches it to the
 * loop, reload applies new limits, stop stops it (auth_client_stop). Set
 * them as .prepare_cb, .start_cb, .reload_cb and .stop_cb.
 */
int auth_service_prepare(const struct cfg *cfg);
int auth_service_start(struct uv_loop_s *loop);
void auth_service_reload(const struct cfg *cfg);
void auth_service_stop(void);

/*
 * Check credentials. done_cb runs on the loop, exactly once unless the
 * request is cancelled: at once with AUTH_LIMITED when the address has
 * max_concurrent_per_ip checks in flight; after the failure delay of the
 * address for AUTH_FAILED and AUTH_DISABLED; without delay for AUTH_OK
 * (which clears the address's penalty) and AUTH_TEMPFAIL. Returns the
 * request, for auth_request_cancel.
 */
struct auth_request *auth_begin(struct auth_client *client, const struct auth_request_info *info,
				auth_done_cb *done_cb, void *data);
/* auth_begin for a session on conn: the daemon's client (auth_client_get),
 * the connection's remote address, and its input paused (done_cb
 * resumes it when it wants more). */
struct auth_request *auth_begin_conn(struct conn *conn, const char *mech, const char *authzid,
				     const char *authcid, const char *password,
				     auth_done_cb *done_cb, void *data);
/* The session is gone: done_cb will not run. The address's slot stays taken
 * until the check and its failure delay are over, so disconnecting does not
 * get around the limit. */
void auth_request_cancel(struct auth_request *req);

/* ---------------------------------------------------- per-address penalty */

/*
 * The failure penalty and in-flight count per address (IPv4 by address,
 * IPv6 by /48). Used by the auth client; separate so it can be tested
 * alone. Entries without failures for an hour are forgotten; the table is
 * bounded (oldest entries go first).
 */
struct auth_penalty;

struct auth_penalty *auth_penalty_new(uint64_t delay_ms, uint64_t delay_max_ms,
				      uint32_t max_concurrent);
void auth_penalty_free(struct auth_penalty **p);
void auth_penalty_configure(struct auth_penalty *p, uint64_t delay_ms, uint64_t delay_max_ms,
			    uint32_t max_concurrent);
/* Take an in-flight slot for ip at now_ms: false when the limit is reached. */
bool auth_penalty_enter(struct auth_penalty *p, const char *ip, uint64_t now_ms);
/* Give the slot back. */
void auth_penalty_leave(struct auth_penalty *p, const char *ip);
/* A failure: returns the delay to apply to its answer (delay_ms for the
 * first, doubling, at most delay_max_ms; 0 when delay_ms is 0). */
uint64_t auth_penalty_failed(struct auth_penalty *p, const char *ip, uint64_t now_ms);
/* A success clears the address's failures. */
void auth_penalty_succeeded(struct auth_penalty *p, const char *ip);

/* --------------------------------------------------- master user logins */

/*
 * Resolve who logs in as whom. login is the authentication identity
 * ("user" or "user*master" with the configured separator), authzid the
 * SASL authorization identity (NULL or "" when none). On success 0, with
 * *pam_user_r the name whose password PAM checks (the master for a master
 * login), *target_r the user to log in as, master_r the master or "" (empty).
 * -1 when the combination is not allowed (authzid differs without master
 * users configured, or the master is not one of them).
 */
int auth_identity_resolve(const struct cfg *cfg, const char *login, const char *authzid,
			  char *pam_user_r, char *target_r, char *master_r, size_t size);

/* ------------------------------------------------------------------ SASL */

enum sasl_mech {
	SASL_PLAIN, /* RFC 4616 */
	SASL_LOGIN, /* draft-murchison-sasl-login */
};

/* Case-insensitive mechanism name to mech. 0, or -1 when unknown. */
int sasl_mech_parse(const char *name, enum sasl_mech *mech_r);
const char *sasl_mech_name(enum sasl_mech mech);

enum sasl_step {
	SASL_CHALLENGE, /* send *challenge_r (base64, may be empty) and wait */
	SASL_DONE,      /* credentials are ready: sasl_credentials */
	SASL_CANCELLED, /* the client sent "*" */
	SASL_BAD,       /* malformed: *why_r says why (never echoing input) */
};

/* Longest base64 line a SASL exchange accepts (decoded credentials). */
#define SASL_MAX_INPUT 8192

struct sasl;

/* Start an exchange. */
struct sasl *sasl_begin(enum sasl_mech mech);
/* Feed the SASL-IR initial response (base64, "=" for empty) or a client line
 * answering a challenge; line NULL starts an exchange without an initial
 * response. */
enum sasl_step sasl_step(struct sasl *s, const char *line, size_t len, const char **challenge_r,
			 const char **why_r);
/* After SASL_DONE: the identities and password (valid until sasl_free). */
void sasl_credentials(const struct sasl *s, const char **authzid_r, const char **authcid_r,
		      const char **password_r);
/* Free, wiping the password from memory. */
void sasl_free(struct sasl **s);

/* Strict base64 (RFC 4648, padding required, no whitespace): decoded length
 * or -1. out must hold (len / 4) * 3 bytes. */
ssize_t sasl_base64_decode(const char *in, size_t len, unsigned char *out);
/* Encode: out must hold ((len + 2) / 3) * 4 + 1 bytes; returns the length. */
size_t sasl_base64_encode(const void *in, size_t len, char *out);

#endif
