/* SPDX-License-Identifier: MIT */
/* Small shared helpers: UTF-8, varints, the clock, a string map and a growing array. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "base.h"

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

int cmv__varint_put(cmv_buf *out, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		unsigned char c = v & 0x7f;
		v >>= 7;
		tmp[n++] = (unsigned char)(c | (v ? 0x80 : 0));
	} while (v);
	return cmv_buf_put(out, tmp, n);
}

bool cmv__varint_get(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* ---- string map ------------------------------------------------------------ */

uint64_t cmv__str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const char *p = s; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

static size_t strmap_slot(const cmv__strmap *m, const char *k)
{
	size_t i = (size_t)cmv__str_hash(k) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], k))
		i = (i + 1) & (m->cap - 1);
	return i;
}

int cmv__strmap_put(cmv__strmap *m, const char *key, size_t num, const char *str)
{
	if ((m->n + 1) * 2 > m->cap) {
		cmv__strmap old = *m;
		m->cap = old.cap ? old.cap * 2 : 256;
		m->n = 0;
		if (!(m->keys = cmv__calloc(m->cap, sizeof(char *))) || !(m->strs = cmv__calloc(m->cap, sizeof(char *))) ||
		    !(m->nums = cmv__calloc(m->cap, sizeof(size_t)))) {
			free(m->keys);
			free(m->strs);
			*m = old;
			return cmv_error__oom();
		}
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i]) {
				size_t s = strmap_slot(m, old.keys[i]);
				m->keys[s] = old.keys[i];
				m->strs[s] = old.strs[i];
				m->nums[s] = old.nums[i];
				m->n++;
			}
		free(old.keys);
		free(old.strs);
		free(old.nums);
	}
	size_t s = strmap_slot(m, key);
	char *copy = str ? cmv__strdup(str) : NULL;
	if (str && !copy)
		return cmv_error__oom();
	if (!m->keys[s]) {
		if (!(m->keys[s] = cmv__strdup(key))) {
			free(copy);
			return cmv_error__oom();
		}
		m->n++;
	}
	free(m->strs[s]);
	m->strs[s] = copy;
	m->nums[s] = num;
	return 0;
}

int cmv__strmap_get(const cmv__strmap *m, const char *key, size_t *num, const char **str)
{
	if (!m->cap || !key)
		return 0;
	size_t s = strmap_slot(m, key);
	if (!m->keys[s])
		return 0;
	if (num)
		*num = m->nums[s];
	if (str)
		*str = m->strs[s];
	return 1;
}

void cmv__strmap_dispose(cmv__strmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->keys[i]);
		free(m->strs[i]);
	}
	free(m->keys);
	free(m->strs);
	free(m->nums);
	memset(m, 0, sizeof(*m));
}

size_t cmv__utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

size_t cmv__count_lines(const char *s, size_t len)
{
	size_t n = len ? 1 : 0;
	for (size_t i = 0; i + 1 < len; i++)
		n += s[i] == '\n';
	return n;
}

int cmv__array_grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	while (ncap <= n)
		ncap *= 2;
	if (ncap > SIZE_MAX / size)
		return cmv_error__oom();
	void *q = cmv__realloc(*p, ncap * size);
	if (!q)
		return cmv_error__oom();
	*p = q;
	*cap = ncap;
	return 0;
}
