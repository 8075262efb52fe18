/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the JSON a Claude Code hook gets on stdin, as cmv auto-trim
 * reads it (cli/hook_input.c). The first byte picks the size of the reads
 * the input arrives in (a pipe hands it over in pieces of any size); the
 * rest is the input.
 *
 * Properties: the answer does not depend on how the input was cut into
 * reads; an input accepted is one cJSON accepts too, with the same strings
 * for every member kept; a member kept never holds a NUL; a refused input
 * has a reason.
 */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "fuzz.h"
#include "cli/hook_input.h"

typedef struct {
	const uint8_t *data;
	size_t size, pos, piece;
} source;

static long source_read(void *payload, char *buf, size_t n, const char **err)
{
	source *s = payload;
	size_t k = s->size - s->pos;
	(void)err;
	if (k > n)
		k = n;
	if (k > s->piece)
		k = s->piece;
	memcpy(buf, s->data + s->pos, k);
	s->pos += k;
	return (long)k;
}

static const struct {
	const char *key;
	unsigned int bit;
	size_t off;
} fields[] = {
	{ "session_id", HOOK_IN_SESSION_ID, offsetof(hook_input, session_id) },
	{ "transcript_path", HOOK_IN_TRANSCRIPT, offsetof(hook_input, transcript_path) },
	{ "hook_event_name", HOOK_IN_EVENT, offsetof(hook_input, event) },
	{ "trigger", HOOK_IN_TRIGGER, offsetof(hook_input, trigger) },
	{ "cwd", HOOK_IN_CWD, offsetof(hook_input, cwd) },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static hook_input whole, pieces;
	source a, b;
	const char *ea, *eb;

	if (size < 1)
		return 0;
	a = (source){ data + 1, size - 1, 0, (size_t)-1 };
	b = (source){ data + 1, size - 1, 0, (size_t)data[0] % 17 + 1 };
	ea = hook_input_parse(&whole, source_read, &a, (size_t)1 << 20);
	eb = hook_input_parse(&pieces, source_read, &b, (size_t)1 << 20);
	if (!ea != !eb || (ea && strcmp(ea, eb)))
		fuzz_fail("read whole: %s; read in pieces of %zu: %s", ea ? ea : "accepted", b.piece, eb ? eb : "accepted");
	if (ea) {
		if (!*ea)
			fuzz_fail("refused with an empty reason");
		return 0;
	}
	if (memcmp(&whole, &pieces, sizeof(whole)))
		fuzz_fail("the members kept depend on how the input was read");
	if (whole.bytes != size - 1)
		fuzz_fail("accepted having read %zu of %zu bytes", whole.bytes, size - 1);
	cJSON *j = cJSON_ParseWithLength((const char *)data + 1, size - 1);
	if (!cJSON_IsObject(j))
		fuzz_fail("accepted, but cJSON reads no object");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *mine = (const char *)&whole + fields[i].off;
		const char *theirs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, fields[i].key));
		if (!(whole.seen & fields[i].bit)) {
			if (theirs)
				fuzz_fail("%s: cJSON reads \"%s\", the hook input parser nothing", fields[i].key, theirs);
			continue;
		}
		if (!theirs || strcmp(mine, theirs))
			fuzz_fail("%s: \"%s\" here, \"%s\" for cJSON", fields[i].key, mine, theirs ? theirs : "(none)");
	}
	cJSON_Delete(j);
	return 0;
}
