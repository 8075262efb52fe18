/* SPDX-License-Identifier: MIT */
/* xxh3-128 ids: hashing, hex formatting and parsing. */
#include <xxhash.h>
#include "base.h"

void cmv_id_hash(cmv_id *out, const void *data, size_t len)
{
	XXH128_hash_t h = XXH3_128bits(data, len);
	XXH128_canonical_t c;

	/* Canonical (big-endian) order, so ids match `xxhsum -H2`. */
	XXH128_canonicalFromHash(&c, h);
	out->type = CMV_ID_XXH3_128;
	memcpy(out->raw, c.digest, CMV_ID_RAWSZ);
}

char *cmv_id_tostr(char *out, size_t n, const cmv_id *id)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	if (n > CMV_ID_HEXSZ)
		n = CMV_ID_HEXSZ;
	for (i = 0; i < n; i++) {
		unsigned char b = id->type == CMV_ID_NONE ? 0 : id->raw[i / 2];
		out[i] = hex[(i % 2) ? (b & 0xf) : (b >> 4)];
	}
	out[n] = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cmv_id_fromstr(cmv_id *out, const char *hex)
{
	size_t i;

	for (i = 0; i < CMV_ID_HEXSZ; i++) {
		int v = hexval(hex[i]);
		if (v < 0)
			return cmv_error__set(CMV_EINVALID, "invalid id '%.40s'", hex);
		if (i % 2)
			out->raw[i / 2] = (unsigned char)((out->raw[i / 2] & 0xf0) | v);
		else
			out->raw[i / 2] = (unsigned char)(v << 4);
	}
	if (hex[CMV_ID_HEXSZ] != '\0')
		return cmv_error__set(CMV_EINVALID, "invalid id '%.40s'", hex);
	out->type = CMV_ID_XXH3_128;
	return 0;
}

int cmv_id_cmp(const cmv_id *a, const cmv_id *b)
{
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->type == CMV_ID_NONE)
		return 0;
	return memcmp(a->raw, b->raw, CMV_ID_RAWSZ);
}

int cmv_id_equal(const cmv_id *a, const cmv_id *b)
{
	return cmv_id_cmp(a, b) == 0;
}

int cmv_id_is_none(const cmv_id *id)
{
	return id->type == CMV_ID_NONE;
}

void cmv_id_clear(cmv_id *id)
{
	memset(id, 0, sizeof(*id));
}

int cmv_id_is_prefix(const char *str)
{
	size_t n = 0;

	while (str[n] && hexval(str[n]) >= 0)
		n++;
	return str[n] == '\0' && n >= CMV_ID_MINPREFIX && n <= CMV_ID_HEXSZ;
}
