/* SPDX-License-Identifier: MIT */
/* The bounded growable buffer; invariants in include/cmv/buf.h. */
#include <stdio.h>
#include "base.h"

char cmv_buf__empty[1];

void cmv_buf_init(cmv_buf *buf, size_t max_bytes)
{
	buf->ptr = cmv_buf__empty;
	buf->size = 0;
	buf->asize = 0;
	buf->max = max_bytes;
}

void cmv_buf_dispose(cmv_buf *buf)
{
	if (!buf)
		return;
	if (buf->asize)
		free(buf->ptr);
	cmv_buf_init(buf, buf->max);
}

void cmv_buf_clear(cmv_buf *buf)
{
	buf->size = 0;
	if (buf->asize)
		buf->ptr[0] = '\0';
}

int cmv_buf_grow(cmv_buf *buf, size_t need)
{
	size_t want;
	char *p;

	assert(buf->max > 0);
	if (need > buf->max)
		return cmv_error__set(CMV_ETOOBIG, "buffer limit of %zu bytes exceeded", buf->max);
	if (need < buf->asize)
		return 0;
	/* Grow by half again so a long run of appends costs amortised O(1). */
	want = buf->asize + buf->asize / 2;
	if (want < need + 1)
		want = need + 1;
	if (want < 64)
		want = 64;
	if (want > buf->max + 1)
		want = buf->max + 1;
	p = cmv__realloc(buf->asize ? buf->ptr : NULL, want);
	if (!p)
		return cmv_error__oom();
	if (!buf->asize)
		p[0] = '\0';
	buf->ptr = p;
	buf->asize = want;
	return 0;
}

int cmv_buf_put(cmv_buf *buf, const void *data, size_t len)
{
	/* The data may live in this very buffer, which growing can move. */
	bool inside = buf->asize && (const char *)data >= buf->ptr &&
		      (const char *)data < buf->ptr + buf->asize;
	size_t off = inside ? (size_t)((const char *)data - buf->ptr) : 0;
	int error;

	if (len > buf->max || buf->size > buf->max - len)
		return cmv_error__set(CMV_ETOOBIG, "buffer limit of %zu bytes exceeded", buf->max);
	if ((error = cmv_buf_grow(buf, buf->size + len)) < 0)
		return error;
	if (inside)
		data = buf->ptr + off;
	if (len)
		memmove(buf->ptr + buf->size, data, len);
	buf->size += len;
	buf->ptr[buf->size] = '\0';
	return 0;
}

int cmv_buf_puts(cmv_buf *buf, const char *str)
{
	return cmv_buf_put(buf, str, strlen(str));
}

int cmv_buf_putc(cmv_buf *buf, char c)
{
	return cmv_buf_put(buf, &c, 1);
}

int cmv_buf_set(cmv_buf *buf, const void *data, size_t len)
{
	/* data may point into the buffer itself: memmove in put handles it. */
	if (buf->asize && data >= (const void *)buf->ptr &&
	    data < (const void *)(buf->ptr + buf->asize)) {
		memmove(buf->ptr, data, len);
		buf->size = len;
		buf->ptr[len] = '\0';
		return 0;
	}
	cmv_buf_clear(buf);
	return cmv_buf_put(buf, data, len);
}

int cmv_buf_vprintf(cmv_buf *buf, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, error;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return cmv_error__set(CMV_ERROR, "bad format string");
	if ((size_t)n > buf->max || buf->size > buf->max - (size_t)n)
		return cmv_error__set(CMV_ETOOBIG, "buffer limit of %zu bytes exceeded", buf->max);
	if ((error = cmv_buf_grow(buf, buf->size + (size_t)n)) < 0)
		return error;
	vsnprintf(buf->ptr + buf->size, (size_t)n + 1, fmt, ap);
	buf->size += (size_t)n;
	return 0;
}

int cmv_buf_printf(cmv_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int error;

	va_start(ap, fmt);
	error = cmv_buf_vprintf(buf, fmt, ap);
	va_end(ap);
	return error;
}

char *cmv_buf_detach(cmv_buf *buf)
{
	char *p;

	if (buf->asize) {
		p = buf->ptr;
	} else {
		p = cmv__malloc(1);
		if (p)
			p[0] = '\0';
	}
	cmv_buf_init(buf, buf->max);
	return p;
}
