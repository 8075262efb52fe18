/* SPDX-License-Identifier: MIT */
/*
 * LoCoMo's QA scorer: the worked examples of ../shared/reference/locomo.md
 * §3.6, stemmer vectors, and normalization edge cases. The expected stems
 * and tokens were produced by NLTK 3.8's PorterStemmer() (Debian
 * python3-nltk) and the normalization of §3.1; over the 3,030 distinct
 * words and 1,403 answers, questions and turns of the LoCoMo dev file the
 * C scorer and that reference agreed on every one.
 */
#include <math.h>
#include <stdlib.h>
#include "test.h"
#include "bench/locomo_score.h"

static void test_worked_examples(void **state)
{
	(void)state;
	static const struct {
		const char *pred, *gold;
		int cat;
		double score;
	} v[] = {
		{ "She painted a sunset with a pink sky.", "A painting inspired by sunsets with a pink sky.", 4, 0.7692 },
		{ "Charlotte's Web, Nothing is Impossible", "\"Nothing is Impossible\", \"Charlotte's Web\"", 1, 1.0 },
		{ "Charlotte's Web and Nothing is Impossible", "\"Nothing is Impossible\", \"Charlotte's Web\"", 1, 0.6607 },
		{ "May 7th, 2023", "7 May 2023", 2, 0.6667 },
		{ "The sunday before 25 May 2023", "The Saturday before 25 May 2023", 2, 0.8 },
		{ "Likely yes", "Likely no; she relies on support", 3, 0.5 },
		{ "2022", "2022", 2, 1.0 },
		{ "Not mentioned in the conversation", "", 5, 1.0 },
		{ "researching adoption agencies", "", 5, 0.0 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		double s = locomo_score(v[i].pred, v[i].gold, v[i].cat);
		if (fabs(s - v[i].score) > 0.00005)
			fail_msg("'%s' vs '%s' (category %d): %.4f, expected %.4f", v[i].pred, v[i].gold, v[i].cat, s,
				 v[i].score);
	}
	char *t = locomo_tokens("She painted a sunset with a pink sky.");
	assert_string_equal(t, "she paint sunset with pink sky");
	free(t);
	t = locomo_tokens("Charlotte's Web and Nothing is Impossible");
	assert_string_equal(t, "charlott web noth is imposs");
	free(t);
}

static void test_stemmer(void **state)
{
	(void)state;
	static const char *const v[][2] = {
#include "stems.inc"
	};
	char out[256];
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		locomo_stem(out, sizeof(out), v[i][0]);
		if (strcmp(out, v[i][1]))
			fail_msg("stem('%s') = '%s', NLTK says '%s'", v[i][0], out, v[i][1]);
	}
}

static void test_normalization(void **state)
{
	(void)state;
	static const char *const v[][2] = {
		/* non-ASCII punctuation stays; "the" inside "the’s" is a whole word; Unicode lowercase */
		{ "the\xe2\x80\x99s an \xe2\x80\x9c\xc3\x89" "clair\xe2\x80\x9d \xe2\x80\x94 \xc3\x80\xc3\x89\xc3\x8e \xce\x91\xce\x92\xce\x93 "
		  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 and THE end",
		  "\xe2\x80\x99s \xe2\x80\x9c\xc3\xa9" "clair\xe2\x80\x9d \xe2\x80\x94 \xc3\xa0\xc3\xa9\xc3\xae \xce\xb1\xce\xb2\xce\xb3 "
		  "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 end" },
		/* ASCII punctuation goes before the articles are looked for */
		{ "a-b the_c and/or ANd x", "ab thec andor x" },
		/* a no-break space splits; the stemmer counts code points */
		{ "na\xc3\xafve caf\xc3\xa9\xe2\x80\x99s  the\xc2\xa0" "end", "na\xc3\xafv caf\xc3\xa9\xe2\x80\x99 end" },
		{ "", "" },
		{ ",,, ... !!!", "" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		char *t = locomo_tokens(v[i][0]);
		assert_non_null(t);
		if (strcmp(t, v[i][1]))
			fail_msg("tokens('%s') = '%s', expected '%s'", v[i][0], t, v[i][1]);
		free(t);
	}
	/* empty sides score 0, no division by zero; counts are a multiset */
	assert_true(locomo_f1("", "x") == 0);
	assert_true(locomo_f1("x", "") == 0);
	assert_true(fabs(locomo_f1("cat cat dog", "cat dog dog") - 2.0 / 3.0) < 1e-9);
}

/* Evidence strings as the dataset writes them (locomo.md §6.1): lists in one string, "D:" forms, leading zeros. */
static void test_evidence(void **state)
{
	(void)state;
	char ids[8][32];
	assert_int_equal(locomo_evidence(ids, 8, "D1:3"), 1);
	assert_string_equal(ids[0], "D1:3");
	assert_int_equal(locomo_evidence(ids, 8, "D8:6; D9:17"), 2);
	assert_string_equal(ids[0], "D8:6");
	assert_string_equal(ids[1], "D9:17");
	assert_int_equal(locomo_evidence(ids, 8, "D:11:26"), 1);
	assert_string_equal(ids[0], "D11:26");
	assert_int_equal(locomo_evidence(ids, 8, "D10:05,D2:1 D3:0"), 3);
	assert_string_equal(ids[0], "D10:5");
	assert_string_equal(ids[1], "D2:1");
	assert_string_equal(ids[2], "D3:0");
	/* not an id: skipped, the rest kept */
	assert_int_equal(locomo_evidence(ids, 8, "D4 D:5: X1:2 D1:2x D6:7"), 1);
	assert_string_equal(ids[0], "D6:7");
	assert_int_equal(locomo_evidence(ids, 8, ""), 0);
	assert_int_equal(locomo_evidence(ids, 8, NULL), 0);
	assert_int_equal(locomo_evidence(ids, 1, "D1:1;D1:2"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worked_examples),
		cmocka_unit_test(test_stemmer),
		cmocka_unit_test(test_normalization),
		cmocka_unit_test(test_evidence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
