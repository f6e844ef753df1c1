/*
 * tls.c — OpenSSL server contexts and the BIO that connects an SSL object
 * to the connection's buffers. The event loop never blocks on TLS: the SSL
 * object reads ciphertext that the connection already received and writes
 * ciphertext into the connection's output queue, and the connection moves
 * bytes between those buffers and libuv.
 *
 * Memory per idle connection matters (thousands of IDLE clients), so
 * SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record buffers between records,
 * the server keeps no session cache (TLS 1.3 tickets are stateless) and the
 * BIO has no buffers of its own.
 */
#include "common-private.h"

#include <openssl/err.h>
#include <string.h>

static BIO_METHOD *tern_bio_method;

static int bio_write_cb(BIO *bio, const char *data, int len)
{
	struct tls_io *io = BIO_get_data(bio);

	BIO_clear_retry_flags(bio);
	if (len <= 0)
		return 0;
	if (buf_append(io->out, data, (size_t)len) < 0)
		return -1; /* output cap reached: the connection is closed */
	return len;
}

static int bio_read_cb(BIO *bio, char *data, int len)
{
	struct tls_io *io = BIO_get_data(bio);
	size_t avail = io->in->len - *io->in_off;

	BIO_clear_retry_flags(bio);
	if (avail == 0) {
		BIO_set_retry_read(bio);
		return -1;
	}
	size_t n = (size_t)len < avail ? (size_t)len : avail;

	memcpy(data, io->in->data + *io->in_off, n);
	*io->in_off += n;
	return (int)n;
}

static long bio_ctrl_cb(BIO *bio, int cmd, long num, void *ptr)
{
	struct tls_io *io = BIO_get_data(bio);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return io == NULL ? 0 : (long)(io->in->len - *io->in_off);
	case BIO_CTRL_WPENDING:
		return 0;
	default:
		return 0;
	}
}

static int bio_create_cb(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

void tls_library_init(void)
{
	if (tern_bio_method != NULL)
		return;
	tern_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				       "tern-conn");
	BIO_meth_set_write(tern_bio_method, bio_write_cb);
	BIO_meth_set_read(tern_bio_method, bio_read_cb);
	BIO_meth_set_ctrl(tern_bio_method, bio_ctrl_cb);
	BIO_meth_set_create(tern_bio_method, bio_create_cb);
}

const char *tls_error_string(void)
{
	static char text[512];
	size_t off = 0;
	unsigned long e;

	text[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		if (off < sizeof(text) - 2) {
			if (off > 0)
				text[off++] = ';', text[off++] = ' ';
			ERR_error_string_n(e, text + off, sizeof(text) - off);
			off = strlen(text);
		}
	}
	if (text[0] == '\0')
		snprintf(text, sizeof(text), "unknown TLS error");
	return text;
}

/*
 * ALPN is strict (the ALPACA attack): a client that offers ALPN at all
 * must offer our protocol; a client that offers none is accepted.
 */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			  const unsigned char *in, unsigned int inlen, void *arg)
{
	const char *want = arg;
	size_t want_len = strlen(want);

	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];

		if (i + 1 + n > inlen)
			break;
		if (n == want_len && memcmp(in + i + 1, want, n) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static char *error_dup(const char *what, const char *path)
{
	const char *ssl = tls_error_string();
	size_t n = strlen(what) + strlen(path) + strlen(ssl) + 8;
	char *e = xcalloc(1, n);

	snprintf(e, n, "%s %s: %s", what, path, ssl);
	return e;
}

SSL_CTX *tls_ctx_new(const struct cfg *cfg, const char *alpn, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	tls_library_init();
	if (ctx == NULL) {
		*error_r = error_dup("cannot create TLS context", "");
		return NULL;
	}
	int floor = strcmp(cfg->tls_min_protocol, "TLSv1.3") == 0 ?
		TLS1_3_VERSION : TLS1_2_VERSION;

	SSL_CTX_set_min_proto_version(ctx, floor);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
			    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		*error_r = error_dup("bad [tls] ciphers", cfg->tls_ciphers);
		goto fail;
	}
	if (SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
		*error_r = error_dup("bad [tls] ciphersuites", cfg->tls_ciphersuites);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		*error_r = error_dup("cannot load certificate", cfg->tls_cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
		*error_r = error_dup("cannot load key", cfg->tls_key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = error_dup("key does not match certificate", cfg->tls_cert);
		goto fail;
	}
	if (alpn != NULL)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, (void *)alpn);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *tls_new(SSL_CTX *ctx, struct tls_io *io)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	BIO *bio = BIO_new(tern_bio_method);

	if (bio == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	BIO_set_data(bio, io);
	SSL_set_bio(ssl, bio, bio);
	SSL_set_accept_state(ssl);
	return ssl;
}
