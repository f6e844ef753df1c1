/*
 * worker-private.h — what auth/worker.c (the auth worker process) and
 * auth/client.c (its client on the daemon's loop) share: the wire format
 * of their socketpair and the function that forks the worker. Only auth/
 * (and its tests) include this.
 *
 * A message is a frame: a 4-byte big-endian length of what follows, then a
 * 1-byte type, a 4-byte request id and the fields. Strings are a 2-byte
 * length and that many bytes (no NUL inside); integers are big-endian.
 * Every length is checked against the limits below before it is used.
 *
 *   request: mech, authzid, authcid, password, remote_ip
 *   reply:   result (1 byte), master, detail, user name, mail_dir,
 *            enabled (1 byte), quota_bytes, quota_messages, created,
 *            updated (8 bytes each)
 */
#ifndef TERN_AUTH_WORKER_PRIVATE_H
#define TERN_AUTH_WORKER_PRIVATE_H

#include "auth.h"

#include <sys/types.h>

enum auth_wire_type {
	AUTH_WIRE_REQUEST = 1,
	AUTH_WIRE_REPLY = 2,
};

/* Field limits (bytes, without NUL). A login may be "user*master". */
#define AUTH_WIRE_MECH_MAX 32
#define AUTH_WIRE_LOGIN_MAX (2 * AUTH_NAME_MAX + 1)
#define AUTH_WIRE_PASSWORD_MAX SASL_MAX_INPUT
#define AUTH_WIRE_IP_MAX 63
#define AUTH_WIRE_DETAIL_MAX 255
#define AUTH_WIRE_PATH_MAX 4095

/* Frame header: length, type, id. */
#define AUTH_WIRE_HEADER 9
/* Largest value of the length field (the biggest reply fits). */
#define AUTH_WIRE_BODY_MAX (16 * 1024)

struct auth_wire_request {
	uint32_t id;
	char mech[AUTH_WIRE_MECH_MAX + 1];
	char authzid[AUTH_WIRE_LOGIN_MAX + 1];
	char authcid[AUTH_WIRE_LOGIN_MAX + 1];
	char password[AUTH_WIRE_PASSWORD_MAX + 1];
	char remote_ip[AUTH_WIRE_IP_MAX + 1];
};

struct auth_wire_reply {
	uint32_t id;
	enum auth_result result;
	char master[AUTH_NAME_MAX + 1];
	char detail[AUTH_WIRE_DETAIL_MAX + 1];
	struct auth_user user;
};

/* Append the frame of req or reply to out: 0, or -1 when a field is over
 * its limit (nothing appended). */
int auth__request_encode(const struct auth_wire_request *req, struct buf *out);
int auth__reply_encode(const struct auth_wire_reply *reply, struct buf *out);

/*
 * Look at the start of a byte stream: the length of the first frame (> 0)
 * when it is complete, 0 when more bytes are needed, -1 when the length
 * field is out of bounds (the stream is corrupt).
 */
ssize_t auth__frame_length(const unsigned char *data, size_t len);

/* Decode one complete frame (as measured by auth__frame_length): 0, or -1
 * when it is not a well-formed message of that type. */
int auth__request_decode(const unsigned char *frame, size_t len, struct auth_wire_request *req_r);
int auth__reply_decode(const unsigned char *frame, size_t len, struct auth_wire_reply *reply_r);

/*
 * Fork the auth worker (as root, before the privilege drop). *fd_r is the
 * daemon's end of the socketpair (close-on-exec, blocking), *pid_r the
 * worker. 0, or -1 with an error logged.
 */
int auth__worker_spawn(const struct cfg *cfg, int *fd_r, pid_t *pid_r);

#endif
