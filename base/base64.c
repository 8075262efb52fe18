/* SPDX-License-Identifier: MIT */
/*
 * Standard base64 (RFC 4648, with padding): the one codec of the project,
 * for images in sessions, bundle metadata and tiktoken vocabularies.
 * Decoding refuses anything that would not encode back to the same text.
 */
#include <string.h>
#include "base.h"

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long cmv__base64_decode_into(unsigned char *out, const char *in, size_t len)
{
	size_t o = 0;

	if (len == 0 || len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = in[i + k] == '=' && i + 4 == len && k >= 2 ? -2 : b64_value((unsigned char)in[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] == -1 || v[3] == -1 || (v[2] == -2 && v[3] != -2))
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (v[2] >= 0)
			out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] >= 0)
			out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return (long)o;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int cmv_base64_encode(cmv_buf *out, const void *in, size_t len)
{
	const unsigned char *p = in;
	size_t i;
	int error;

	cmv_buf_clear(out);
	if ((error = cmv_buf_grow(out, (len + 2) / 3 * 4)) < 0)
		return error;
	for (i = 0; i + 2 < len; i += 3) {
		char q[4] = { b64[p[i] >> 2], b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			      b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)], b64[p[i + 2] & 63] };
		cmv_buf_put(out, q, 4);
	}
	if (len - i == 1) {
		char q[4] = { b64[p[i] >> 2], b64[(p[i] & 3) << 4], '=', '=' };
		cmv_buf_put(out, q, 4);
	} else if (len - i == 2) {
		char q[4] = { b64[p[i] >> 2], b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			      b64[(p[i + 1] & 15) << 2], '=' };
		cmv_buf_put(out, q, 4);
	}
	return 0;
}

int cmv_base64_decode(cmv_buf *out, const char *in, size_t len)
{
	cmv_buf check = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;

	cmv_buf_clear(out);
	if (len % 4)
		return cmv_error__set(CMV_EINVALID, "base64 data length is not a multiple of 4");
	if ((error = cmv_buf_grow(out, len / 4 * 3)) < 0)
		return error;
	long n = len ? cmv__base64_decode_into((unsigned char *)out->ptr, in, len) : 0;
	if (n < 0) {
		/* say which byte: the first that is neither an alphabet character nor final padding */
		for (size_t i = 0; i < len; i++)
			if (b64_value((unsigned char)in[i]) < 0 && !(in[i] == '=' && i + 2 >= len))
				return cmv_error__set(CMV_EINVALID, "invalid base64 character at offset %zu", i);
		return cmv_error__set(CMV_EINVALID, "invalid base64 padding");
	}
	out->size = (size_t)n;
	out->ptr[n] = '\0';
	/* Non-canonical input (stray bits in the padding) would not export back as it came. */
	if ((error = cmv_base64_encode(&check, out->ptr, out->size)) == 0 &&
	    (check.size != len || memcmp(check.ptr, in, len)))
		error = cmv_error__set(CMV_EINVALID, "non-canonical base64 data");
	cmv_buf_dispose(&check);
	return error;
}

