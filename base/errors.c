/* SPDX-License-Identifier: MIT */
/* The thread-local last error and the code-to-text table. */
#include <stdio.h>
#include "base.h"

#define CMV_ERROR_MSG_MAX 4096

/*
 * A fixed per-thread buffer rather than an allocated message: setting an
 * error can then never fail, which matters most when the error being set
 * is "out of memory".
 */
static _Thread_local char error_msg[CMV_ERROR_MSG_MAX];
static _Thread_local cmv_error error_last;
static _Thread_local bool error_is_set;

const char *cmv_version(void)
{
	return CMV_VERSION;
}

const cmv_error *cmv_error_last(void)
{
	return error_is_set ? &error_last : NULL;
}

void cmv_error_clear(void)
{
	error_is_set = false;
	error_msg[0] = '\0';
}

int cmv_error__set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(error_msg, sizeof(error_msg), fmt, ap);
	va_end(ap);
	error_last.code = code;
	error_last.message = error_msg;
	error_is_set = true;
	return code;
}

int cmv_error__oom(void)
{
	return cmv_error__set(CMV_ENOMEM, "out of memory");
}

void cmv_error__prefix(const char *fmt, ...)
{
	char prefix[CMV_ERROR_MSG_MAX];
	size_t plen, mlen;
	va_list ap;

	if (!error_is_set)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Keep as much of both as fits; the tail of a long message goes first. */
	plen = strlen(prefix);
	mlen = strlen(error_msg);
	if (plen >= sizeof(error_msg))
		plen = sizeof(error_msg) - 1;
	if (plen + mlen >= sizeof(error_msg))
		mlen = sizeof(error_msg) - 1 - plen;
	memmove(error_msg + plen, error_msg, mlen);
	memcpy(error_msg, prefix, plen);
	error_msg[plen + mlen] = '\0';
}

const char *cmv_strerror(int code)
{
	switch (code) {
	case CMV_OK: return "success";
	case CMV_ERROR: return "error";
	case CMV_ENOTFOUND: return "not found";
	case CMV_EEXISTS: return "already exists";
	case CMV_EAMBIGUOUS: return "ambiguous id prefix";
	case CMV_EBUDGET: return "does not fit the token budget";
	case CMV_EMODIFIED: return "modified concurrently";
	case CMV_ELOCKED: return "store is locked";
	case CMV_EMISMATCH: return "content does not match its id";
	case CMV_ETRANSPORT: return "transport failure";
	case CMV_EINVALID: return "invalid input";
	case CMV_ENOMEM: return "out of memory";
	case CMV_EIO: return "input/output error";
	case CMV_ECORRUPT: return "store is corrupt";
	case CMV_EUNSUPPORTED: return "not supported";
	case CMV_ETOOBIG: return "too big";
	case CMV_EUSER: return "stopped by callback";
	case CMV_ITEROVER: return "no more items";
	case CMV_EVERSION: return "store written by a newer version";
	default: return "unknown error";
	}
}

/*
 * Failure on demand, for tests only: while on, every allocation of the
 * library (these wrappers, and whatever a test routes through
 * cmv__alloc_fails: cJSON's hooks, SQLite's allocator) is counted, and the
 * n-th fails. Off, the cost is one read of a flag nobody writes; turning it
 * on or off while other threads allocate is not supported.
 */
static bool inject;
static size_t inject_countdown, inject_count;

void cmv__alloc_inject(bool on, size_t fail_at)
{
	inject = on;
	inject_count = 0;
	inject_countdown = fail_at;
}

size_t cmv__alloc_injected_calls(void)
{
	return inject_count;
}

bool cmv__alloc_fails(void)
{
	if (!inject)
		return false;
	inject_count++;
	return inject_countdown && --inject_countdown == 0;
}

void *cmv__malloc(size_t n)
{
	void *p = cmv__alloc_fails() ? NULL : malloc(n ? n : 1);

	if (!p)
		cmv_error__oom();
	return p;
}

void *cmv__calloc(size_t n, size_t size)
{
	void *p = cmv__alloc_fails() ? NULL : calloc(n ? n : 1, size ? size : 1);

	if (!p)
		cmv_error__oom();
	return p;
}

void *cmv__realloc(void *p, size_t n)
{
	void *q = cmv__alloc_fails() ? NULL : realloc(p, n ? n : 1);

	if (!q)
		cmv_error__oom();
	return q;
}

char *cmv__strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = cmv__malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}
