/*
 * base64.c — the 64 digits of base64 (RFC 4648 §4), shared by the codecs
 * that differ in everything else: SASL's strict base64 (auth/sasl.c), the
 * lenient streaming decoder of MIME bodies (storage/decode.c) and the
 * modified base64 of IMAP's modified UTF-7 (storage/names.c), which uses
 * ',' where base64 uses '/' (RFC 3501 §5.1.3). Padding, whitespace and
 * strictness stay with each codec.
 */
#include "common.h"

int base64_value(unsigned char c, char c63)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == (unsigned char)c63)
		return 63;
	return -1;
}

char base64_digit(unsigned int v, char c63)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+";

	v &= 0x3f;
	return v == 63 ? c63 : digits[v];
}
