/* SPDX-License-Identifier: MIT */
/*
 * LoCoMo's QA scorer (../shared/reference/locomo.md §3), in C: the
 * normalization, NLTK's Porter stemmer in its default NLTK_EXTENSIONS mode,
 * token F1, and the per-category rules. Written from the description, no
 * code copied. Lowercasing covers ASCII, Latin-1, Latin Extended-A, Greek
 * and Cyrillic (Python's str.lower covers all of Unicode; answers in the
 * dataset stay inside these).
 */
#ifndef CMV_BENCH_LOCOMO_SCORE_H
#define CMV_BENCH_LOCOMO_SCORE_H

#include <stddef.h>

/* NLTK PorterStemmer().stem(word) of a lowercase UTF-8 word, into out (cap bytes). */
void locomo_stem(char *out, size_t cap, const char *word);
/* The normalized, stemmed tokens of s, space-separated, into out (malloc'd). */
char *locomo_tokens(const char *s);
/* f1_score(pred, gold) of §3.3. */
double locomo_f1(const char *pred, const char *gold);
/* The score of one question of category cat (1-5) as §3.4 says. */
double locomo_score(const char *pred, const char *answer, int cat);

/*
 * The dialog ids one evidence string names, normalized as §6.1 says: split
 * on ';', ',' and whitespace; "D<s>:<t>" and "D:<s>:<t>" accepted; leading
 * zeros of either number dropped. Each id ("D8:6") goes to out[k], up to
 * max; anything else is skipped. @return how many were written
 */
size_t locomo_evidence(char (*out)[32], size_t max, const char *evidence);

#endif
