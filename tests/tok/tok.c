/* SPDX-License-Identifier: MIT */
/*
 * The tiktoken family, exact: the published test vectors, the UTF-8 policy,
 * hostile pieces, round trips, and malformed vocabulary files. The ids are
 * also compared with the official tiktoken core over real transcripts and a
 * generated corpus in tests/tok/tok_reference.sh.
 */
#include <stdbool.h>
#include <unistd.h>
#include "test.h"

static cmv_tok *cl100k, *o200k, *llama3;

static int load_both(void **state)
{
	(void)state;
	if (cmv_tok_load(&cl100k, "cl100k_base", NULL) < 0 || cmv_tok_load(&o200k, "o200k_base", NULL) < 0 ||
	    cmv_tok_load(&llama3, "llama3", NULL) < 0) {
		/* A missing vocabulary is a failure, never a skip: scripts/setup installs it. */
		fprintf(stderr, "cannot load tokenizers: %s\n", cmv_error_last()->message);
		return -1;
	}
	return 0;
}

static int free_both(void **state)
{
	(void)state;
	cmv_tok_free(cl100k);
	cmv_tok_free(o200k);
	cmv_tok_free(llama3);
	return 0;
}

static void test_pager_tok__published_vectors(void **state)
{
	(void)state;
	EXPECT_IDS(cl100k, "Hello, World! How are you today? \xf0\x9f\x8c\x8d", 9906, 11, 4435, 0, 2650, 527,
	       499, 3432, 30, 11410, 234, 235);
	EXPECT_IDS(cl100k, "    def foo(x):\n        return x**2  # 12345678\n\n\n", 262, 711, 15586, 2120, 997,
	       286, 471, 865, 334, 17, 220, 674, 220, 4513, 10961, 2495, 1432);
	EXPECT_IDS(cl100k, "I'm SHOUTING it's DON'T they've", 40, 2846, 6570, 3740, 1753, 433, 596, 45373,
	       17773, 814, 3077);
	EXPECT_IDS(o200k, "Hello, World! How are you today? \xf0\x9f\x8c\x8d", 13225, 11, 5922, 0, 3253, 553,
	       481, 4044, 30, 130321, 235);
	EXPECT_IDS(o200k, "\xd0\x97\xd0\xb4\xd1\x80\xd0\xb0\xd0\xb2\xd1\x81\xd1\x82\xd0\xb2\xd1\x83\xd0\xb9"
		      "\xd1\x82\xd0\xb5", 182298);
	/* llama3-tokenizer-js's own test vectors, without BOS and EOS */
	EXPECT_IDS(llama3, "This is a test sentence.", 2028, 374, 264, 1296, 11914, 13);
	EXPECT_IDS(llama3, "I", 40);
	assert_int_equal(cmv_tok_vocab_size(llama3), 128000);
	size_t n = 99;
	assert_cmv_ok(cmv_tok_count(&n, cl100k, "", 0));
	assert_int_equal(n, 0);
	assert_int_equal(cmv_tok_vocab_size(cl100k), 100256);
	assert_int_equal(cmv_tok_vocab_size(o200k), 199998);
}

/* gpt-tokenizer's TestPlans.txt (installed by setup): every cl100k and o200k record. */
static void test_pager_tok__test_plans(void **state)
{
	cmv_buf dir = CMV_BUF_INIT(4096), path = CMV_BUF_INIT(4096);
	char *line = NULL, *sample = NULL;
	size_t cap = 0, checked = 0;
	ssize_t len;
	cmv_tok *cur = NULL;
	FILE *fp;

	(void)state;
	assert_cmv_ok(cmv_tok_data_dir(&dir));
	assert_cmv_ok(cmv_buf_printf(&path, "%s/tokenizers/TestPlans.txt", dir.ptr));
	fp = fopen(path.ptr, "r");
	if (!fp)
		fail_msg("%s is missing: run scripts/setup", path.ptr);
	while ((len = getline(&line, &cap, fp)) > 0) {
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!strncmp(line, "EncodingName: ", 14)) {
			cur = !strcmp(line + 14, "cl100k_base") ? cl100k : !strcmp(line + 14, "o200k_base") ? o200k : NULL;
		} else if (!strncmp(line, "Sample: ", 8) || !strcmp(line, "Sample:")) {
			free(sample);
			sample = strdup(line[7] ? line + 8 : "");
		} else if (!strncmp(line, "Encoded: [", 10) && cur) {
			uint32_t want[4096];
			size_t n = 0;
			char *p = line + 10;
			while (*p && *p != ']') {
				want[n++] = (uint32_t)strtoul(p, &p, 10);
				while (*p == ',' || *p == ' ')
					p++;
			}
			/* Special tokens appear in a few samples; encode_ordinary treats them as text. */
			if (!strstr(sample, "<|")) {
				test_expect_ids(cur, sample, strlen(sample), want, n);
				checked++;
			}
		}
	}
	fclose(fp);
	free(line);
	free(sample);
	/* 64 cl100k + 57 o200k records in gpt-tokenizer 4.0.0 */
	assert_true(checked >= 110);
	cmv_buf_dispose(&dir);
	cmv_buf_dispose(&path);
}

/* Invalid UTF-8 becomes U+FFFD per maximal invalid subsequence, as node decodes it. */
static void test_pager_tok__invalid_utf8_policy(void **state)
{
	const char bad[] = "\x61\xC3\x28\x62\xE2\x82\x63\xF0\x9F\x98\x64\xA9\xFF\x65";
	const char good[] = "a\xEF\xBF\xBD(b\xEF\xBF\xBD" "c\xEF\xBF\xBD" "d\xEF\xBF\xBD\xEF\xBF\xBD" "e";
	uint32_t *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;

	(void)state;
	for (int k = 0; k < 2; k++) {
		cmv_tok *t = k ? o200k : cl100k;
		na = nb = 0;
		assert_cmv_ok(cmv_tok_encode(&a, &na, t, bad, sizeof(bad) - 1));
		assert_cmv_ok(cmv_tok_encode(&b, &nb, t, good, sizeof(good) - 1));
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na * sizeof(uint32_t));
	}
	free(a);
	free(b);
}

/* U+180E is not White_Space for tiktoken (it is for PCRE2's \s under UCP). */
static void test_pager_tok__mongolian_vowel_separator(void **state)
{
	(void)state;
	/* ids from the official core (tiktoken@1.0.22) */
	EXPECT_IDS(cl100k, "a\xe1\xa0\x8e\xe1\xa0\x8e" "b  \xe1\xa0\x8e x", 64, 157, 254, 236, 157, 254, 236,
	       65, 220, 87189, 254, 236, 865);
}

/* Long runs take the heap path; decode(encode(x)) == x whatever the path. */
static void test_pager_tok__long_pieces_round_trip(void **state)
{
	size_t sizes[] = { 1, 63, 64, 65, 200, 5000, (size_t)1 << 20 };
	char *text = malloc((size_t)1 << 20);
	unsigned seed = 11;

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		for (int variant = 0; variant < 3; variant++) {
			size_t n = sizes[k];
			for (size_t i = 0; i < n; i++)
				text[i] = variant == 0 ? 'a' : variant == 1 ? '_' : (char)('a' + rand_r(&seed) % 26);
			for (int e = 0; e < 2; e++) {
				cmv_tok *t = e ? o200k : cl100k;
				uint32_t *ids = NULL;
				size_t nid = 0;
				cmv_buf back = CMV_BUF_INIT((size_t)2 << 20);
				assert_cmv_ok(cmv_tok_encode(&ids, &nid, t, text, n));
				assert_true(nid >= 1 && nid <= n);
				for (size_t i = 0; i < nid; i++)
					assert_cmv_ok(cmv_tok_decode(&back, t, ids[i]));
				assert_int_equal(back.size, n);
				assert_memory_equal(back.ptr, text, n);
				free(ids);
				cmv_buf_dispose(&back);
			}
		}
	}
	free(text);
	cmv_buf out = CMV_BUF_INIT(16);
	assert_cmv_fails_with(CMV_EINVALID, cmv_tok_decode(&out, cl100k, 100256));
}

void cmv_tok__set_fast_path(cmv_tok *t, bool on);

/*
 * The hand-written ASCII pre-tokenizers against the PCRE2 path, on random
 * strings made mostly of the characters where the patterns' alternatives
 * compete, with non-ASCII neighbours mixed in.
 */
static void test_pager_tok__ascii_fast_path_equals_regex(void **state)
{
	static const char *const atoms[] = {
		"'", "s", "S", "t", "T", "r", "R", "e", "E", "v", "V", "l", "L", "m", "M", "d", "D",
		" ", " ", "  ", "\t", "\r", "\n", "\r\n", "\v", "\f", "/", "//", "*/", "0", "7", "123",
		"a", "Z", "HTTP", "Server", "x_y", ".", ",", "!", "-", "_", "(", ")", "\"", "#", "\x7f",
		"\x01", "\xc3\xa9", "\xc2\xa0", "\xc5\xbf", "\xd9\xa1", "\xef\xac\x81", "\xe2\x80\xa8",
		"\xcc\x81", "\xe4\xb8\xad",
	};
	unsigned seed = 2026;
	char text[512];
	uint32_t *a = NULL, *b = NULL;
	size_t na, nb, checked = 0;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len = 0, n_atoms = 1 + (size_t)rand_r(&seed) % 40;
		for (size_t k = 0; k < n_atoms; k++) {
			const char *at = atoms[(size_t)rand_r(&seed) % (sizeof(atoms) / sizeof(atoms[0]))];
			size_t l = strlen(at);
			if (len + l >= sizeof(text))
				break;
			memcpy(text + len, at, l);
			len += l;
		}
		for (int e = 0; e < 2; e++) {
			cmv_tok *t = e ? o200k : cl100k;
			na = nb = 0;
			cmv_tok__set_fast_path(t, true);
			assert_cmv_ok(cmv_tok_encode(&a, &na, t, text, len));
			cmv_tok__set_fast_path(t, false);
			assert_cmv_ok(cmv_tok_encode(&b, &nb, t, text, len));
			cmv_tok__set_fast_path(t, true);
			if (na != nb || memcmp(a, b, na * sizeof(uint32_t)))
				fail_msg("%s: the ASCII path and PCRE2 disagree on %zu bytes: '%.*s'",
					 cmv_tok_name(t), len, (int)len, text);
			checked++;
		}
	}
	free(a);
	free(b);
	assert_int_equal(checked, 40000);
}

static void expect_bad_vocab(const char *dir, const char *content, const char *why)
{
	char path[4096];
	FILE *fp;
	cmv_tok *t = NULL;

	snprintf(path, sizeof(path), "%s/cl100k_base.tiktoken", dir);
	fp = fopen(path, "w");
	fputs(content, fp);
	fclose(fp);
	assert_cmv_fails_with(CMV_EINVALID, cmv_tok_load(&t, path, NULL));
	assert_null(t);
	assert_error_mentions(path);
	assert_error_mentions(why);
}

static void test_pager_tok__bad_vocabulary_files_are_rejected(void **state)
{
	char *dir = test_tmpdir();
	cmv_buf full = CMV_BUF_INIT(1 << 20);
	cmv_tok *t = NULL;

	(void)state;
	expect_bad_vocab(dir, "IQ== 0\nIg==\n", ":2: expected 'BASE64 RANK'");
	expect_bad_vocab(dir, "IQ== 0\nIg== x\n", ":2: bad rank");
	expect_bad_vocab(dir, "IQ== 0\nIQ== 0\n", ":2: rank 0 appears twice");
	expect_bad_vocab(dir, "IQ== 0\n!!!! 1\n", ":2: bad base64");
	expect_bad_vocab(dir, "IQ== 0\nIg== 5\n", "not a byte-level vocabulary");
	/* 256 single bytes but rank 3 given twice the same bytes */
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (int c = 0; c < 256; c++)
		cmv_buf_printf(&full, "%c%c== %d\n", b64[c >> 2], b64[(c & 3) << 4], c == 3 ? 2 : c);
	expect_bad_vocab(dir, full.ptr, "twice");
	cmv_buf_clear(&full);
	for (int c = 0; c < 256; c++)
		cmv_buf_printf(&full, "%c%c== %d\n", b64[c >> 2], b64[(c & 3) << 4], c == 7 ? 300 : c);
	expect_bad_vocab(dir, full.ptr, "rank 7 is missing");
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_tok_load(&t, "gpt2_base", NULL));
	assert_error_mentions("unknown tokenizer");
	/* a missing vocabulary says how to get it */
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_tok_load(&t, "o200k_base", dir));
	assert_error_mentions("scripts/setup");
	cmv_buf_dispose(&full);
	test_rmdir(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pager_tok__published_vectors),
		cmocka_unit_test(test_pager_tok__test_plans),
		cmocka_unit_test(test_pager_tok__invalid_utf8_policy),
		cmocka_unit_test(test_pager_tok__mongolian_vowel_separator),
		cmocka_unit_test(test_pager_tok__long_pieces_round_trip),
		cmocka_unit_test(test_pager_tok__ascii_fast_path_equals_regex),
		cmocka_unit_test(test_pager_tok__bad_vocabulary_files_are_rejected),
	};
	return cmocka_run_group_tests_name("tokenizers: tiktoken family", tests, load_both, free_both);
}
