/* SPDX-License-Identifier: MIT */
/*
 * The JSON object Claude Code writes on a hook's stdin, read as a stream
 * (hook_input.c). A PostToolUse input carries tool_input and tool_response,
 * and for a Write or an Edit those hold whole files: only the few members
 * auto-trim needs are kept, every other value is checked and passed over
 * without being stored, so memory stays constant whatever the input's size.
 *
 * It depends on nothing but libc, so the fuzz target (tests/fuzz/hook.c)
 * builds it as it is.
 */
#ifndef CMV_CLI_HOOK_INPUT_H
#define CMV_CLI_HOOK_INPUT_H
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define HOOK_INPUT_DEPTH_MAX 256 /* nesting passed over; what Claude Code sends is far shallower */

/* The members kept, a bit each in hook_input.seen. */
enum hook_input_field {
	HOOK_IN_SESSION_ID = 1u << 0,
	HOOK_IN_TRANSCRIPT = 1u << 1,
	HOOK_IN_EVENT = 1u << 2,   /* hook_event_name */
	HOOK_IN_TRIGGER = 1u << 3, /* PreCompact's "manual" or "auto" */
	HOOK_IN_CWD = 1u << 4,
};

typedef struct {
	unsigned int seen;          /* hook_input_field bits: the members that were there */
	size_t bytes;               /* the input's size, as read */
	char session_id[128];
	char transcript_path[PATH_MAX];
	char event[64];
	char trigger[64];
	char cwd[PATH_MAX];
} hook_input;

/*
 * Where the bytes come from: fills buf with up to n bytes and returns how
 * many, 0 at the end, or -1 with *err saying why (a static string).
 */
typedef long (*hook_read_fn)(void *payload, char *buf, size_t n, const char **err);

/*
 * Read one JSON object to the end of the input (nothing but white space may
 * follow it). A kept member must be a string with no NUL (\u0000) that fits
 * its field, and appear once. Returns NULL, or why the input was refused (a
 * static string); `out` is then partly filled. At most max_bytes are read.
 */
const char *hook_input_parse(hook_input *out, hook_read_fn rd, void *payload, size_t max_bytes);

#endif
