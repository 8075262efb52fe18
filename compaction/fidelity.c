/* SPDX-License-Identifier: MIT */
/*
 * The fidelity check: of the entities a source names (paths, file names,
 * numbers, identifiers, hex ids, names), how many a summary still names as
 * whole tokens. And its source for a handoff: the transcript less what is
 * not content, so that a document is not marked down for ids and stubs it
 * has no reason to repeat.
 *
 * The check must run on any text: invalid UTF-8 in a source is stepped
 * over, not an error, and at most FIDELITY_MAX_ENTITIES are looked for.
 * The compiled patterns are made once per process and kept.
 */
#define _GNU_SOURCE /* memmem */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <pcre2.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/compaction.h>
#include "handoff.h"

/* ---- the fidelity check ----------------------------------------------------------------- */

static bool word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

/* `needle` occurs in hay as a whole token (not inside a longer word or number). */
static bool contains_token(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	const char *end = hay + hlen;
	for (const char *p = hay; p + nlen <= end; p++) {
		p = memmem(p, (size_t)(end - p), needle, nlen);
		if (!p)
			return false;
		bool left = p == hay || !word_char((unsigned char)p[-1]) || !word_char((unsigned char)needle[0]);
		bool right = p + nlen == end || !word_char((unsigned char)p[nlen]) || !word_char((unsigned char)needle[nlen - 1]);
		if (left && right)
			return true;
	}
	return false;
}

#define FIDELITY_MAX_ENTITIES 20000

int cmv_fidelity(double *coverage, size_t *total, size_t *found, cmv_buf *missing, const char *source,
		 size_t source_len, const char *summary, size_t summary_len)
{
	/*
	 * Paths (a slash inside, or a file name with an extension), numbers of
	 * two digits or more, identifiers (snake_case, camelCase, hex ids), and
	 * capitalized names in mid-sentence.
	 */
	static const char pattern[] =
		"(?:[\\w.~-]+/)+[\\w.-]+"
		"|\\b[\\w-]+\\.(?:c|h|cc|cpp|py|js|ts|tsx|go|rs|java|rb|md|json|jsonl|ya?ml|toml|txt|sh|sql|html|css)\\b"
		"|\\b\\d{2,}(?:[.:]\\d+)*\\b"
		"|\\b[A-Za-z][a-z0-9]*_[A-Za-z0-9_]+\\b"
		"|\\b[a-z]+[A-Z][A-Za-z0-9]+\\b"
		"|\\b[0-9a-f]{7,40}\\b"
		"|(?<=[a-z,] )[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})*";
	static pcre2_code *re;
	pcre2_match_data *md = NULL;
	cmv__strmap seen = { 0 };
	size_t n_total = 0, n_found = 0, n_missing_listed = 0;
	int error = 0;

	if (!re) {
		int ec;
		PCRE2_SIZE eo;
		re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &ec,
				   &eo, NULL);
		if (!re)
			return cmv_error__set(CMV_ERROR, "the fidelity pattern does not compile (at %zu)", (size_t)eo);
		pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	}
	if (!(md = pcre2_match_data_create_from_pattern(re, NULL)))
		return cmv_error__oom();
	if (missing)
		cmv_buf_clear(missing);
	/* invalid UTF-8 in a source must not stop the check: PCRE2 is told to skip it */
	size_t off = 0;
	while (off < source_len && n_total < FIDELITY_MAX_ENTITIES) {
		int rc = pcre2_match(re, (PCRE2_SPTR)source, source_len, off, 0, md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			/* a bad byte: step over it */
			off++;
			continue;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t s = ov[0], e = ov[1];
		off = e > s ? e : s + 1;
		if (e - s < 3 || e - s > 200)
			continue;
		char key[201];
		memcpy(key, source + s, e - s);
		key[e - s] = '\0';
		if (cmv__strmap_get(&seen, key, NULL, NULL))
			continue;
		if ((error = cmv__strmap_put(&seen, key, 1, NULL)) < 0)
			break;
		n_total++;
		if (contains_token(summary, summary_len, key, e - s)) {
			n_found++;
		} else if (missing && n_missing_listed < 40) {
			cmv_buf_printf(missing, "%s\n", key);
			n_missing_listed++;
		}
	}
	pcre2_match_data_free(md);
	cmv__strmap_dispose(&seen);
	if (error < 0)
		return error;
	if (total)
		*total = n_total;
	if (found)
		*found = n_found;
	if (coverage)
		*coverage = n_total ? (double)n_found / (double)n_total : 1.0;
	return 0;
}

/* ---- what the check reads of a conversation ---------------------------------------------- */

int cmv_compaction__ho_fidelity_source(cmv_buf *out, const cJSON *msgs, size_t from, size_t to)
{
	static pcre2_code *re;
	int error;

	if ((error = cmv_compaction__ho_transcript(out, msgs, from, to)) < 0)
		return error;
	if (!re) {
		int ec;
		PCRE2_SIZE eo;
		/* "[calls Read, id toolu_01..]", "[result of call_x]", and "[2204 chars, 48 lines; recall ecd9902]" */
		static const char pat[] = "(?:, id [^\\]\\s]+\\])|(?:\\[result of [^\\]\\s,]+)|(?:\\[\\d+ chars(?:, \\d+ lines)?; recall [0-9a-f]{7,}\\])";
		re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_NO_UTF_CHECK, &ec, &eo, NULL);
		if (!re)
			return cmv_error__set(CMV_ERROR, "the fidelity source pattern does not compile (at %zu)", (size_t)eo);
	}
	if (!out->size)
		return 0;
	PCRE2_SIZE len = out->size;
	char *dst = cmv__malloc(out->size + 1);
	if (!dst)
		return cmv_error__oom();
	int rc = pcre2_substitute(re, (PCRE2_SPTR)out->ptr, out->size, 0, PCRE2_SUBSTITUTE_GLOBAL | PCRE2_NO_UTF_CHECK,
				  NULL, NULL, (PCRE2_SPTR) "]", 1, (PCRE2_UCHAR *)dst, &len);
	if (rc >= 0)
		error = cmv_buf_set(out, dst, len);
	free(dst);
	return error;
}
