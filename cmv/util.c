/* SPDX-License-Identifier: MIT */
/* Small shared helpers: UTF-8 validation and the clock. */
#include <errno.h>
#include <time.h>
#include "common.h"

bool cmv__utf8_valid(const void *s, size_t len, size_t *bad_offset)
{
	const unsigned char *p = s, *end = p + len;

	while (p < end) {
		unsigned char c = *p;
		size_t n;
		uint32_t cp;

		/* ASCII runs, the common case in transcripts: eight bytes at a time. */
		if (c < 0x80) {
			uint64_t w;
			p++;
			while ((size_t)(end - p) >= 8) {
				memcpy(&w, p, 8);
				if (w & UINT64_C(0x8080808080808080))
					break;
				p += 8;
			}
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			goto bad;
		}
		if ((size_t)(end - p) <= n)
			goto bad;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		p += n + 1;
	}
	return true;
bad:
	if (bad_offset)
		*bad_offset = (size_t)(p - (const unsigned char *)s);
	return false;
}

int64_t cmv__now(void)
{
	const char *env = getenv("CMV_NOW");

	if (env && *env) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(env, &end, 10);
		if (!errno && *end == '\0')
			return (int64_t)v;
	}
	return (int64_t)time(NULL);
}

int cmv_utf8_valid(const void *s, size_t len, size_t *bad_offset)
{
	return cmv__utf8_valid(s, len, bad_offset) ? 1 : 0;
}
