/* SPDX-License-Identifier: MIT */
/* The byte-range JSON scanner (see jscan.h). */
#include "jscan.h"

const char *cmv_formats__jscan_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *scan_string(const char *p, const char *end)
{
	if (p >= end || *p != '"')
		return NULL;
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (++p >= end)
				return NULL;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (p + i >= end || !((p[i] >= '0' && p[i] <= '9') || ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')))
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
	}
	return NULL;
}

static const char *scan_number(const char *p, const char *end)
{
	const char *s = p;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < end && *p == '.') {
		const char *d = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == d)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		const char *d = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == d)
			return NULL;
	}
	return p > s ? p : NULL;
}

static const char *scan(const char *p, const char *end, int depth)
{
	if (p >= end || depth > JSCAN_MAX_DEPTH)
		return NULL;
	switch (*p) {
	case '"':
		return scan_string(p, end);
	case '{':
	case '[': {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';
		p = cmv_formats__jscan_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if (!(p = scan_string(p, end)))
					return NULL;
				p = cmv_formats__jscan_ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p = cmv_formats__jscan_ws(p + 1, end);
			}
			if (!(p = scan(p, end, depth + 1)))
				return NULL;
			p = cmv_formats__jscan_ws(p, end);
			if (p < end && *p == ',') {
				p = cmv_formats__jscan_ws(p + 1, end);
				continue;
			}
			if (p < end && *p == close)
				return p + 1;
			return NULL;
		}
	}
	case 't':
		return end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
	case 'f':
		return end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
	case 'n':
		return end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
	default:
		return scan_number(p, end);
	}
}

const char *cmv_formats__jscan_value(const char *p, const char *end)
{
	return scan(p, end, 0);
}

int cmv_formats__jscan_member(jspan *value, jspan obj, const char *key)
{
	const char *p = obj.p, *end = obj.end;
	size_t klen = strlen(key);

	if (p >= end || *p != '{')
		return -1;
	p = cmv_formats__jscan_ws(p + 1, end);
	if (p < end && *p == '}')
		return 0;
	for (;;) {
		const char *ks = p, *ke = scan_string(p, end), *ve;
		if (!ke)
			return -1;
		p = cmv_formats__jscan_ws(ke, end);
		if (p >= end || *p != ':')
			return -1;
		p = cmv_formats__jscan_ws(p + 1, end);
		if (!(ve = cmv_formats__jscan_value(p, end)))
			return -1;
		if ((size_t)(ke - ks) == klen + 2 && !memcmp(ks + 1, key, klen)) {
			value->p = p;
			value->end = ve;
			return 1;
		}
		p = cmv_formats__jscan_ws(ve, end);
		if (p < end && *p == ',') {
			p = cmv_formats__jscan_ws(p + 1, end);
			continue;
		}
		return p < end && *p == '}' ? 0 : -1;
	}
}

int cmv_formats__jscan_next_element(jspan *elem, jspan array, const char **cursor)
{
	const char *p = *cursor ? *cursor : array.p, *end = array.end, *ve;

	if (!*cursor) {
		if (p >= end || *p != '[')
			return -1;
		p = cmv_formats__jscan_ws(p + 1, end);
		if (p < end && *p == ']')
			return 0;
	} else {
		p = cmv_formats__jscan_ws(p, end);
		if (p < end && *p == ']')
			return 0;
		if (p >= end || *p != ',')
			return -1;
		p = cmv_formats__jscan_ws(p + 1, end);
	}
	if (!(ve = cmv_formats__jscan_value(p, end)))
		return -1;
	elem->p = p;
	elem->end = ve;
	*cursor = ve;
	return 1;
}

static int hexv(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static int put_utf8(cmv_buf *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return cmv_buf_put(out, b, n);
}

int cmv_formats__jscan_unescape(cmv_buf *out, jspan lit)
{
	const char *p = lit.p + 1, *end = lit.end - 1;
	int error = 0;

	cmv_buf_clear(out);
	while (p < end && !error) {
		const char *q = p;
		while (q < end && *q != '\\')
			q++;
		if (q > p && (error = cmv_buf_put(out, p, (size_t)(q - p))) < 0)
			break;
		if (q >= end)
			break;
		p = q + 1;
		switch (*p) {
		case 'b': error = cmv_buf_putc(out, '\b'); break;
		case 'f': error = cmv_buf_putc(out, '\f'); break;
		case 'n': error = cmv_buf_putc(out, '\n'); break;
		case 'r': error = cmv_buf_putc(out, '\r'); break;
		case 't': error = cmv_buf_putc(out, '\t'); break;
		case 'u': {
			uint32_t cp = (uint32_t)(hexv(p[1]) << 12 | hexv(p[2]) << 8 | hexv(p[3]) << 4 | hexv(p[4]));
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && p + 6 < end && p[1] == '\\' && p[2] == 'u') {
				uint32_t lo = (uint32_t)(hexv(p[3]) << 12 | hexv(p[4]) << 8 | hexv(p[5]) << 4 | hexv(p[6]));
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd; /* a lone surrogate has no UTF-8 form */
			error = put_utf8(out, cp);
			break;
		}
		default: error = cmv_buf_putc(out, *p); break; /* \" \\ \/ */
		}
		p++;
	}
	return error;
}

int cmv_formats__jscan_escape(cmv_buf *out, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = data, *end = p + len, *run = p;
	int error;

	if ((error = cmv_buf_putc(out, '"')) < 0)
		return error;
	for (; p < end; p++) {
		unsigned char c = *p;
		const char *esc = NULL;
		char u[7];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if ((error = cmv_buf_put(out, run, (size_t)(p - run))) < 0)
			return error;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = 0;
			esc = u;
		}
		if ((error = cmv_buf_puts(out, esc)) < 0)
			return error;
		run = p + 1;
	}
	if ((error = cmv_buf_put(out, run, (size_t)(p - run))) < 0)
		return error;
	return cmv_buf_putc(out, '"');
}

cJSON *cmv_formats__jscan_parse(const char *s, size_t len, int *error)
{
	cJSON *j = cJSON_ParseWithLength(s, len);
	const char *p, *end = s + len;

	*error = 0;
	if (j)
		return j;
	/* cJSON says NULL for bad text and for a failed allocation alike: the scanner, which allocates nothing, tells them apart */
	p = cmv_formats__jscan_ws(s, end);
	if (p < end && (p = cmv_formats__jscan_value(p, end)) != NULL && cmv_formats__jscan_ws(p, end) == end)
		*error = cmv_error__oom();
	return NULL;
}
