/* SPDX-License-Identifier: MIT */
/* Line reading with a length cap, base64, and naming branches after files. */
#include <ctype.h>
#include <errno.h>
#include "util.h"

#define READ_BLOCK 65536

int cmv_linereader_open(cmv_linereader *r, const char *path, size_t max_line_bytes)
{
	memset(r, 0, sizeof(*r));
	r->path = path;
	r->max = max_line_bytes ? max_line_bytes : CMV_IMPORT_MAX_LINE_DEFAULT;
	cmv_buf_init(&r->line, r->max);
	if (!(r->block = cmv__malloc(READ_BLOCK)))
		return cmv_error__oom();
	if (!(r->fp = fopen(path, "rb")))
		return cmv_error__set(errno == ENOENT ? CMV_ENOTFOUND : CMV_EIO, "cannot open '%s': %s",
				      path, strerror(errno));
	return 0;
}

int cmv_linereader_next(cmv_linereader *r)
{
	int error;

	cmv_buf_clear(&r->line);
	if (r->at_eof)
		return CMV_ITEROVER;
	r->lineno++;
	for (;;) {
		if (r->block_pos == r->block_len) {
			r->block_len = fread(r->block, 1, READ_BLOCK, r->fp);
			r->block_pos = 0;
			if (r->block_len == 0) {
				if (ferror(r->fp))
					return cmv_error__set(CMV_EIO, "%s:%zu: read error: %s", r->path,
							      r->lineno, strerror(errno));
				r->at_eof = true;
				if (r->line.size == 0) {
					r->lineno--;
					return CMV_ITEROVER;
				}
				r->last_unterminated = true;
				return 0;
			}
		}
		const char *start = r->block + r->block_pos;
		size_t avail = r->block_len - r->block_pos;
		const char *nl = memchr(start, '\n', avail);
		size_t take = nl ? (size_t)(nl - start) : avail;
		if ((error = cmv_buf_put(&r->line, start, take)) < 0) {
			if (error == CMV_ETOOBIG)
				return cmv_error__set(CMV_ETOOBIG,
						      "%s:%zu: line longer than the %zu-byte limit",
						      r->path, r->lineno, r->max);
			return error;
		}
		r->block_pos += take + (nl ? 1 : 0);
		if (nl) {
			if (r->line.size && r->line.ptr[r->line.size - 1] == '\r')
				r->line.ptr[--r->line.size] = '\0';
			r->last_unterminated = false;
			return 0;
		}
	}
}

void cmv_linereader_close(cmv_linereader *r)
{
	if (r->fp)
		fclose(r->fp);
	r->fp = NULL;
	free(r->block);
	r->block = NULL;
	cmv_buf_dispose(&r->line);
}

int cmv_formats__branch_name_from_path(cmv_buf *out, const char *path)
{
	const char *base = strrchr(path, '/'), *dot;
	size_t len;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	cmv_buf_clear(out);
	for (size_t i = 0; i < len && out->size < CMV_REF_NAME_MAX; i++) {
		unsigned char c = (unsigned char)base[i];
		cmv_buf_putc(out, (char)(isalnum(c) || c == '_' || c == '-' || c == '.' ? c : '-'));
	}
	while (out->size && (out->ptr[0] == '-' || out->ptr[0] == '.'))
		cmv_buf_set(out, out->ptr + 1, out->size - 1);
	while (out->size && out->ptr[out->size - 1] == '.')
		out->ptr[--out->size] = '\0';
	if (!out->size || !cmv_ref_name_is_valid(out->ptr)) {
		/* A name such as "deadbeef1" reads as an id: make it a name. */
		cmv_buf tmp = CMV_BUF_INIT(CMV_BUF_SMALL);
		cmv_buf_printf(&tmp, "import-%s", out->size ? out->ptr : "session");
		cmv_buf_set(out, tmp.ptr, tmp.size);
		cmv_buf_dispose(&tmp);
	}
	if (!cmv_ref_name_is_valid(out->ptr))
		return cmv_error__set(CMV_EINVALID, "cannot name a branch after '%s'; use --branch",
				      path);
	return 0;
}
