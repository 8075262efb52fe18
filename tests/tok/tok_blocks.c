/* SPDX-License-Identifier: MIT */
/*
 * The SentencePiece models (published vectors, bad model files) and what the
 * pager relies on for every tokenizer: block counts add up to the whole
 * text's count, and cmv_tok_fit finds the longest prefix that fits. The ids
 * are compared with spm_encode and the JS packages in tok_reference.sh.
 */
#include <stdbool.h>
#include <unistd.h>
#include "test.h"

static const char *const names[] = { "cl100k_base", "o200k_base", "llama3",
				      "llama2", "mistral-7b-v0.1", "gemma3" };
#define N_TOK (sizeof(names) / sizeof(names[0]))
static cmv_tok *toks[N_TOK];

static int load_all(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_TOK; i++)
		if (cmv_tok_load(&toks[i], names[i], NULL) < 0) {
			/* A missing vocabulary is a failure, never a skip: scripts/setup installs it. */
			fprintf(stderr, "cannot load %s: %s\n", names[i], cmv_error_last()->message);
			return -1;
		}
	return 0;
}

static int free_all(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_TOK; i++)
		cmv_tok_free(toks[i]);
	return 0;
}

static cmv_tok *tok(const char *name)
{
	for (size_t i = 0; i < N_TOK; i++)
		if (!strcmp(names[i], name))
			return toks[i];
	fail_msg("no tokenizer %s", name);
	return NULL;
}

/* The packages' own test vectors (without BOS) and the reference's Gemma 3 vector. */
static void test_pager_tok_blocks__sentencepiece_vectors(void **state)
{
	cmv_buf out = CMV_BUF_INIT(64);

	(void)state;
	EXPECT_IDS(tok("llama2"), "grabbed", 2646, 1327, 287);
	EXPECT_IDS(tok("llama2"), " grabbed", 29871, 2646, 1327, 287);
	EXPECT_IDS(tok("llama2"), "           grabbed", 9651, 2646, 1327, 287);
	EXPECT_IDS(tok("llama2"), "\ttabs\t\t\t\tout here", 29871, 12, 21175, 12, 12, 12, 12, 449, 1244);
	EXPECT_IDS(tok("llama2"), "ax\n####\nboo", 4853, 13, 4136, 13, 833, 29877);
	EXPECT_IDS(tok("llama2"), "\xe9\x95\x87", 29871, 30411);
	EXPECT_IDS(tok("mistral-7b-v0.1"), "grabbed", 13300);
	EXPECT_IDS(tok("mistral-7b-v0.1"), "           grabbed", 17422, 13300);
	EXPECT_IDS(tok("mistral-7b-v0.1"), "\xf0\x9f\xa6\x99\xea\x99\x8a", 28705, 243, 162, 169, 156, 237,
	       156, 141);
	EXPECT_IDS(tok("gemma3"), "Hello, World! How are you today? \xf0\x9f\x8c\x8d", 9259, 236764, 4109,
	       236888, 2088, 659, 611, 3124, 236881, 236743, 244906);
	assert_int_equal(cmv_tok_vocab_size(tok("llama2")), 32000);
	assert_int_equal(cmv_tok_vocab_size(tok("mistral-7b-v0.1")), 32000);
	assert_int_equal(cmv_tok_vocab_size(tok("gemma3")), 262145);
	/* decoding: "▁" is a space, byte pieces are bytes */
	assert_cmv_ok(cmv_tok_decode(&out, tok("llama2"), 9651));
	assert_cmv_ok(cmv_tok_decode(&out, tok("llama2"), 13));
	assert_int_equal(out.size, 12);
	assert_memory_equal(out.ptr, "           \n", 12);
	assert_cmv_fails_with(CMV_EINVALID, cmv_tok_decode(&out, tok("llama2"), 32000));
	cmv_buf_dispose(&out);
}

static void test_pager_tok_blocks__bad_model_files_are_rejected(void **state)
{
	char *dir = test_tmpdir(), path[4096], src[9000];
	cmv_buf d = CMV_BUF_INIT(4096);
	cmv_tok *t = NULL;
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/llama2.model", dir);
	fp = fopen(path, "w");
	fputs("this is not a protobuf", fp);
	fclose(fp);
	assert_cmv_fails_with(CMV_EINVALID, cmv_tok_load(&t, path, NULL));
	assert_null(t);
	assert_error_mentions(path);
	assert_error_mentions("not a valid SentencePiece model");
	/* a good model without its continuation variant: named, not guessed */
	assert_cmv_ok(cmv_tok_data_dir(&d));
	snprintf(src, sizeof(src), "cp '%s/tokenizers/llama2.model' '%s'", d.ptr, path);
	assert_int_equal(system(src), 0);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_tok_load(&t, path, NULL));
	assert_error_mentions("llama2.noprefix.model");
	assert_error_mentions("scripts/setup");
	cmv_buf_dispose(&d);
	test_rmdir(dir);
	free(dir);
}

static char *read_whole(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *p;
	long n;

	if (!fp)
		fail_msg("cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return p;
}

/* Files of the transcripts (the curated set ships each of them; the set's own notice is
 * MANIFEST.md in the full corpus, NOTICE.md in the curated set) and of this project. */
static const char *const transcript_files[] = {
	"claude-code/vsla/2cba43de-c8d2-4a69-add8-9fae3ad93900.jsonl",
	"swe-agent/gpt4_default__pydicom-1458.traj",
	"openhands/cmv-count-lines.json",
	"gemini-cli/entireio-cli/ab-2b9748b105-0__session.json",
	NULL,
};
static const char *const source_files[] = { CMV_TEST_SOURCE "/tok/models.c", CMV_TEST_SOURCE "/docs/tokenizers.md" };
#define N_CORPUS (sizeof(transcript_files) / sizeof(*transcript_files) + sizeof(source_files) / sizeof(*source_files))
static char corpus[N_CORPUS][4096];

static void corpus_paths(void)
{
	const char *dir = test_transcripts_dir(CMV_TEST_TRANSCRIPTS);
	size_t n = 0;
	for (size_t i = 0; i < sizeof(transcript_files) / sizeof(*transcript_files); i++)
		snprintf(corpus[n++], sizeof(*corpus), "%s/%s", dir,
			 transcript_files[i] ? transcript_files[i] : test_transcripts_full(dir) ? "MANIFEST.md" : "NOTICE.md");
	for (size_t i = 0; i < sizeof(source_files) / sizeof(*source_files); i++)
		snprintf(corpus[n++], sizeof(*corpus), "%s", source_files[i]);
}

/* What the pager's per-block count cache relies on (docs/tokenizers.md). */
static void test_pager_tok_blocks__block_counts_add_up(void **state)
{
	(void)state;
	corpus_paths();
	for (size_t f = 0; f < N_CORPUS; f++) {
		size_t len, blocks = 0;
		char *text = read_whole(corpus[f], &len);
		for (size_t i = 0; i < N_TOK; i++) {
			size_t whole, sum = 0, n;
			assert_cmv_ok(cmv_tok_count(&whole, toks[i], text, len));
			blocks = 0;
			for (size_t off = 0; off < len;) {
				size_t end = cmv_tok_next_boundary(text, len, off);
				assert_true(end > off && end <= len);
				assert_cmv_ok(cmv_tok_count_block(&n, toks[i], text + off, end - off, off == 0));
				sum += n;
				off = end;
				blocks++;
			}
			if (sum != whole)
				fail_msg("%s on %s: %zu blocks sum to %zu, the whole text is %zu", names[i],
					 corpus[f], blocks, sum, whole);
		}
		assert_true(blocks > 1);
		free(text);
	}
}

bool cmv_tok__native(const cmv_tok *t);
void cmv_tok__set_fast_path(cmv_tok *t, bool on);

/*
 * The native SentencePiece encoder is on for every installed model, and
 * gives libsentencepiece's ids on the corpus, as a whole and block by block
 * (with and without the dummy prefix).
 */
static void test_pager_tok_blocks__native_sentencepiece_equals_library(void **state)
{
	(void)state;
	corpus_paths();
	for (size_t i = 3; i < N_TOK; i++) {
		cmv_tok *t = toks[i];
		assert_true(cmv_tok__native(t));
		for (size_t f = 0; f < N_CORPUS; f++) {
			size_t len;
			char *text = read_whole(corpus[f], &len);
			for (int first = 0; first < 2; first++) {
				uint32_t *a = NULL, *b = NULL;
				size_t na = 0, nb = 0, cut = len > 200000 ? 200000 : len;
				size_t n1 = 0, n2 = 0;
				assert_cmv_ok(cmv_tok_encode(&a, &na, t, text, cut));
				cmv_tok__set_fast_path(t, false);
				assert_cmv_ok(cmv_tok_encode(&b, &nb, t, text, cut));
				assert_cmv_ok(cmv_tok_count_block(&n2, t, text, cut, first));
				cmv_tok__set_fast_path(t, true);
				assert_cmv_ok(cmv_tok_count_block(&n1, t, text, cut, first));
				if (na != nb || memcmp(a, b, na * sizeof(uint32_t)))
					fail_msg("%s on %s: native and library ids differ", names[i], corpus[f]);
				assert_int_equal(n1, n2);
				free(a);
				free(b);
			}
			free(text);
		}
	}
}

/* The longest prefix within N tokens: exact, within the limit, and maximal per block. */
static void test_pager_tok_blocks__fit_prefix(void **state)
{
	size_t len;
	char path[4096];
	snprintf(path, sizeof(path), "%s/claude-code/vsla/f6108699-47cc-4b21-8ca6-3223992990b3.jsonl",
		 test_transcripts_dir(CMV_TEST_TRANSCRIPTS));
	char *text = read_whole(path, &len);
	static const size_t limits[] = { 0, 1, 7, 100, 1000, 5000, 1000000 };

	(void)state;
	len = len > 40000 ? 40000 : len;
	for (size_t i = 0; i < N_TOK; i++) {
		size_t whole;
		assert_cmv_ok(cmv_tok_count(&whole, toks[i], text, len));
		for (size_t k = 0; k < (sizeof(limits) / sizeof(limits[0])); k++) {
			size_t bytes, tokens, check, next;
			assert_cmv_ok(cmv_tok_fit(&bytes, &tokens, toks[i], text, len, limits[k]));
			assert_true(bytes <= len);
			assert_true(tokens <= limits[k]);
			assert_cmv_ok(cmv_tok_count(&check, toks[i], text, bytes));
			assert_int_equal(check, tokens);
			if (limits[k] >= whole) {
				assert_int_equal(bytes, len);
				continue;
			}
			/* the next block boundary after the cut would not have fit */
			next = cmv_tok_next_boundary(text, len, bytes);
			assert_cmv_ok(cmv_tok_count(&check, toks[i], text, next));
			assert_true(check > limits[k]);
			/* in-block cuts land on a character boundary */
			assert_true(bytes == 0 || bytes == len || (text[bytes] & 0xc0) != 0x80);
		}
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pager_tok_blocks__sentencepiece_vectors),
		cmocka_unit_test(test_pager_tok_blocks__bad_model_files_are_rejected),
		cmocka_unit_test(test_pager_tok_blocks__block_counts_add_up),
		cmocka_unit_test(test_pager_tok_blocks__native_sentencepiece_equals_library),
		cmocka_unit_test(test_pager_tok_blocks__fit_prefix),
	};
	return cmocka_run_group_tests_name("tokenizers: SentencePiece, blocks, fitting", tests, load_all,
					   free_all);
}
