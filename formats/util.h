/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by the importers and exporters of formats/. */
#ifndef CMV_FORMATS_UTIL_H
#define CMV_FORMATS_UTIL_H

#include <stdio.h>
#include "base/base.h"
#include <cmv/formats.h>

/*
 * A line reader with a hard cap on line length: a 100 MB line fails with
 * CMV_ETOOBIG after reading at most the cap, instead of eating memory.
 */
typedef struct cmv_linereader {
	FILE *fp;
	const char *path;
	size_t lineno;   /* 1-based number of the line last returned */
	size_t max;
	cmv_buf line;    /* the line, without its '\n' (or "\r\n") */
	bool at_eof;
	bool last_unterminated; /* the line returned last had no '\n' */
	char *block;     /* read-ahead buffer */
	size_t block_pos, block_len;
} cmv_linereader;

int cmv_linereader_open(cmv_linereader *r, const char *path, size_t max_line_bytes);
/* @return 0 with r->line set, CMV_ITEROVER at the end, CMV_ETOOBIG, CMV_EIO */
int cmv_linereader_next(cmv_linereader *r);
void cmv_linereader_close(cmv_linereader *r);

/* The base name of a path without its extension, made into a valid ref name. */
int cmv_formats__branch_name_from_path(cmv_buf *out, const char *path);

#endif
