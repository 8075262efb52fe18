/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench locomo FILE [--budget N,...] [--json]: evidence recall within a
 * token budget on a LoCoMo-format file (../shared/reference/locomo.md §4).
 *
 * Each conversation becomes a branch, one message per dialog turn (speaker
 * A as the user, speaker B as the assistant), text "Speaker: text" plus
 * " [shares caption]" for an image turn. For each question the pager
 * materializes the branch within the budget with the question as its
 * query (cmv_materialize, the path of `cmv materialize --query`), and the
 * share of the question's evidence turns present verbatim in the request
 * is its recall (the evidence normalized as locomo.md §6.1 says; a question
 * with none left counts for answers, not for recall). In the same run, the baseline of locomo.md §6 fills the
 * same budget with BM25 top-ranked turns (SQLite FTS5, porter unicode61,
 * stopwords dropped, words OR-ed). Tokens are cl100k_base (gpt-4's).
 * Averages follow the reference: per category, summed recall over all
 * questions of the category.
 *
 * With --answer-with MODEL (and --llm-url URL, or the profile's endpoint)
 * each question is also answered from the materialized working set by that
 * model through the LLM client, posed as locomo.md §3.5 says (the category
 * 2 suffix, category 5 as two options in a fixed order per question, 32
 * tokens, temperature 0), and scored with the reference's token F1
 * (locomo_score.c).
 *
 * The data is CC BY-NC 4.0: read it from where it is, never copy it.
 */
#include <ctype.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "bench.h"
#include "locomo_score.h"

#define MAX_BUDGETS 16
#define MAX_CAT 6

typedef struct {
	char *dia;   /* "D1:3" */
	char *text;  /* what the message says */
	uint64_t tokens;
} turn;

typedef struct {
	double recall[MAX_CAT], base[MAX_CAT];
	size_t n[MAX_CAT], n_rec[MAX_CAT]; /* questions; those with evidence, which recall counts */
	double *ms;
	size_t n_ms;
	double tokens;
	double f1[MAX_CAT];
	size_t answered, answer_errors;
	uint64_t pages; /* FNV-1a over every question's materialized window, in order: equal in two builds that page alike */
} tally;

/* The working set as the answerer reads it: each text of the request, in order. */
static void context_text(cmv_buf *out, const cJSON *v)
{
	if (cJSON_IsString(v) && v->string && !strcmp(v->string, "content")) {
		cmv_buf_printf(out, "%s\n", v->valuestring);
		return;
	}
	if (cJSON_IsString(v) && v->string && !strcmp(v->string, "text")) {
		cmv_buf_printf(out, "%s\n", v->valuestring);
		return;
	}
	for (const cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c; c = c->next)
		if (!c->string || (strcmp(c->string, "model") && strcmp(c->string, "role")))
			context_text(out, c);
}

/*
 * Answer one question from the request body with the answerer; the score
 * by the reference's rules. Category 5 is two options, in an order fixed
 * by the question's number; a reply of a, b, (a) or (b) means its option.
 */
static double answer(tally *ty, cmv_llm *llm, const char *body, size_t len, const cJSON *q, int cat, size_t qno)
{
	static const char prompt[] = "Based on the above context, write an answer in the form of a short phrase for the "
				     "following question. Answer with exact words from the context whenever possible.";
	const char *question = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(q, "question"));
	const cJSON *ans = cJSON_GetObjectItemCaseSensitive(q, "answer");
	const char *adv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(q, "adversarial_answer"));
	cmv_buf user = CMV_BUF_INIT(CMV_BUF_CONTENT), reply = CMV_BUF_INIT(CMV_BUF_SMALL);
	char gold[4096] = "", opt[2][1024];
	double score = 0;

	if (cJSON_IsString(ans))
		snprintf(gold, sizeof(gold), "%s", ans->valuestring);
	else if (cJSON_IsNumber(ans))
		snprintf(gold, sizeof(gold), "%lld", (long long)ans->valuedouble);
	cJSON *req = cJSON_ParseWithLength(body, len);
	context_text(&user, req);
	cJSON_Delete(req);
	cmv_buf_printf(&user, "\n%s\n\nQuestion: %s", prompt, question);
	if (cat == 2)
		cmv_buf_puts(&user, " Use DATE of CONVERSATION to answer with an approximate date.");
	if (cat == 5) {
		int first = (int)(qno & 1);
		snprintf(opt[first], sizeof(opt[0]), "%s", "Not mentioned in the conversation");
		snprintf(opt[!first], sizeof(opt[0]), "%s", adv ? adv : gold);
		cmv_buf_printf(&user, " Select the correct answer: (a) %s (b) %s. ", opt[0], opt[1]);
	}
	cmv_buf_puts(&user, "\nShort answer:");
	if (cmv_llm_complete(&reply, NULL, llm, NULL, user.ptr) < 0) {
		fprintf(stderr, "cmv-bench locomo: answering: %s\n", cmv_error_last() ? cmv_error_last()->message : "failed");
		cmv_error_clear();
		ty->answer_errors++;
	} else {
		const char *pred = reply.ptr;
		if (cat == 5) {
			const char *r = reply.ptr;
			while (*r == ' ' || *r == '(')
				r++;
			if ((r[0] == 'a' || r[0] == 'b') && (!r[1] || r[1] == ')' || r[1] == '.' || r[1] == ' ' || r[1] == '\n'))
				pred = opt[r[0] == 'b'];
		}
		score = locomo_score(pred, gold, cat);
		ty->answered++;
	}
	ty->f1[cat] += score;
	cmv_buf_dispose(&user);
	cmv_buf_dispose(&reply);
	return score;
}

/* locomo.md §6.1, word for word. */
static const char *const stopwords[] = {
	"a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as",
	"is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "done", "has", "have", "had",
	"having", "i", "me", "my", "we", "our", "you", "your", "he", "him", "his", "she", "her", "it", "its",
	"they", "them", "their", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "that",
	"this", "these", "those", "there", "here", "not", "no", "yes", "would", "could", "should", "will", "can",
	"may", "might", "shall", "than", "then", "so", "such", "about", "into", "over", "after", "before", "during",
	"up", "down", "out", "off", "again", "once", "all", "any", "both", "each", "few", "more", "most", "other",
	"some", "own", "same", "too", "very", "just", "also", "ever", "s", "t", "d", "ll", "m", "re", "ve", NULL };

static bool is_stop(const char *w)
{
	for (const char *const *s = stopwords; *s; s++)
		if (!strcmp(*s, w))
			return true;
	return false;
}

/* locomo.md §6.1: lowercase [a-z0-9]+ runs, stopwords out, deduplicated, OR-ed as FTS5 strings. */
static void baseline_query(cmv_buf *out, const char *q)
{
	char word[128], first[128] = "";
	size_t n = 0;
	cmv_buf seen = CMV_BUF_INIT(1 << 16);
	cmv_buf_clear(out);
	cmv_buf_puts(&seen, " ");
	for (const char *p = q;; p++) {
		if (*p && isalnum((unsigned char)*p) && !((unsigned char)*p & 0x80)) {
			if (n + 1 < sizeof(word))
				word[n++] = (char)tolower((unsigned char)*p);
			continue;
		}
		if (n) {
			word[n] = '\0';
			char key[132];
			snprintf(key, sizeof(key), " %s ", word);
			if (!first[0])
				snprintf(first, sizeof(first), "%s", word);
			if (!is_stop(word) && !strstr(seen.ptr, key)) {
				cmv_buf_printf(out, "%s\"%s\"", out->size ? " OR " : "", word);
				cmv_buf_printf(&seen, "%s ", word);
			}
			n = 0;
		}
		if (!*p)
			break;
	}
	if (!out->size && first[0])
		cmv_buf_printf(out, "\"%s\"", first);
	cmv_buf_dispose(&seen);
}

static int cmp_session(const void *a, const void *b)
{
	long x = strtol(*(char *const *)a + 8, NULL, 10), y = strtol(*(char *const *)b + 8, NULL, 10);
	return (x > y) - (x < y);
}

static void die(const char *what)
{
	fprintf(stderr, "cmv-bench locomo: %s: %s\n", what, cmv_error_last() ? cmv_error_last()->message : "failed");
	exit(1);
}

/*
 * The strings of every text in a request body, as a set. OpenAI Chat has
 * one string per assistant message, so the renderer joins an assistant's
 * text blocks (two dialog turns in a row by one speaker, as when a session
 * opens with the speaker who closed the last) with a blank line: each part
 * between blank lines is a text of the set too.
 */
static void collect_texts(cmv__strmap *set, const cJSON *v)
{
	if (cJSON_IsString(v)) {
		const char *s = v->valuestring, *sep;
		cmv__strmap_put(set, s, 0, NULL);
		while ((sep = strstr(s, "\n\n")) != NULL) {
			char *part = cmv__strdup(s);
			if (part) {
				part[sep - s] = '\0';
				cmv__strmap_put(set, part, 0, NULL);
			}
			free(part);
			s = sep + 2;
			if (!strstr(s, "\n\n"))
				cmv__strmap_put(set, s, 0, NULL);
		}
	}
	for (const cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c; c = c->next)
		collect_texts(set, c);
}

static int category(const cJSON *q)
{
	int c = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(q, "category"));
	return c >= 1 && c <= 5 ? c : 0;
}

int bench_locomo(int argc, char **argv)
{
	const char *file = NULL;
	uint64_t budgets[MAX_BUDGETS] = { 512, 1294, 2048, 4096 };
	size_t n_budgets = 4;
	bool json = false;
	const char *answer_with = NULL, *llm_url = NULL, *only = NULL;
	cmv_llm *llm = NULL;
	const cmv_model *am = NULL;
	size_t qno = 0;
	cmv_buf data = CMV_BUF_INIT((size_t)1 << 30);
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	cmv_tok *tok = NULL;
	char machine[256];
	tally t[MAX_BUDGETS];
	const char *store_url = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--budget") && i + 1 < argc) {
			char *s = argv[++i], *end;
			n_budgets = 0;
			while (*s && n_budgets < MAX_BUDGETS) {
				budgets[n_budgets] = strtoull(s, &end, 10);
				if (end == s || !budgets[n_budgets]) {
					fprintf(stderr, "cmv-bench locomo: --budget takes positive numbers, comma-separated\n");
					return 2;
				}
				n_budgets++;
				s = *end == ',' ? end + 1 : end;
			}
		} else if (!strcmp(argv[i], "--answer-with") && i + 1 < argc) {
			answer_with = argv[++i];
		} else if (!strcmp(argv[i], "--conversation") && i + 1 < argc) {
			only = argv[++i]; /* one conversation (its sample_id): tune on one, measure on another */
		} else if (!strcmp(argv[i], "--llm-url") && i + 1 < argc) {
			llm_url = argv[++i];
		} else if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			store_url = argv[++i]; /* cmv's search on a PostgreSQL store instead of SQLite's FTS5 */
		} else if (argv[i][0] != '-' && !file) {
			file = argv[i];
		} else {
			fprintf(stderr, "usage: cmv-bench locomo FILE [--budget N,...] [--conversation ID] [--answer-with MODEL [--llm-url URL]] [--store postgresql://URL] [--json]\n");
			return 2;
		}
	}
	if (!file) {
		fprintf(stderr, "usage: cmv-bench locomo FILE [--budget N,...] [--json]\n");
		return 2;
	}
	if (cmv__read_file(&data, file) < 0)
		die(file);
	cJSON *doc = cJSON_ParseWithLength(data.ptr, data.size);
	if (!cJSON_IsArray(doc)) {
		fprintf(stderr, "cmv-bench locomo: %s: not a LoCoMo file (a JSON array of conversations)\n", file);
		return 1;
	}
	if (cmv_models_load(&models, NULL) < 0 || cmv_models_find(&m, models, "gpt-4") < 0 ||
	    cmv_tok_load(&tok, m->tokenizer, NULL) < 0)
		die("the model");
	if (answer_with) {
		cmv_llm_options lo = CMV_LLM_OPTIONS_INIT;
		lo.base_url = llm_url;
		lo.max_tokens = 32;
		if (cmv_models_find(&am, models, answer_with) < 0 || cmv_llm_new(&llm, am, &lo) < 0)
			die("the answering model");
	}
	bench_machine(machine, sizeof(machine));
	memset(t, 0, sizeof(t));
	size_t n_questions = 0, n_conv = 0;
	for (const cJSON *conv = doc->child; conv; conv = conv->next) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(conv, "conversation");
		const cJSON *qa = cJSON_GetObjectItemCaseSensitive(conv, "qa");
		const char *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "speaker_a"));
		const char *sample = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "sample_id"));
		if (!cJSON_IsObject(c) || !cJSON_IsArray(qa) || !a || (only && (!sample || strcmp(sample, only))))
			continue;
		n_conv++;
		/* the sessions, numerically */
		char *keys[1024];
		size_t n_keys = 0;
		for (const cJSON *k = c->child; k && n_keys < 1024; k = k->next)
			if (!strncmp(k->string, "session_", 8) && !strstr(k->string, "date") && cJSON_IsArray(k))
				keys[n_keys++] = k->string;
		qsort(keys, n_keys, sizeof(*keys), cmp_session);
		cmv_repo *repo = NULL;
		char *loc = store_url ? bench_pg_fresh(store_url) : NULL;
		if (cmv_repo_open(&repo, loc ? loc : ":memory:", CMV_REPO_OPEN_CREATE) < 0)
			die("a store");
		free(loc);
		turn *turns = NULL;
		size_t n_turns = 0;
		sqlite3 *db = NULL;
		if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
		    sqlite3_exec(db, "CREATE VIRTUAL TABLE u USING fts5(ref UNINDEXED, body, tokenize='porter unicode61')",
				 NULL, NULL, NULL) != SQLITE_OK)
			die("the baseline's index");
		sqlite3_stmt *ins = NULL, *sel = NULL;
		sqlite3_prepare_v2(db, "INSERT INTO u(ref, body) VALUES (?1, ?2)", -1, &ins, NULL);
		sqlite3_prepare_v2(db, "SELECT ref FROM u WHERE u MATCH ?1 ORDER BY bm25(u) LIMIT 200", -1, &sel, NULL);
		for (size_t s = 0; s < n_keys; s++) {
			const cJSON *sess = cJSON_GetObjectItemCaseSensitive(c, keys[s]);
			for (const cJSON *tu = sess->child; tu; tu = tu->next) {
				const char *spk = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tu, "speaker"));
				const char *txt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tu, "text"));
				const char *dia = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tu, "dia_id"));
				const char *cap = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tu, "blip_caption"));
				if (!spk || !txt || !dia)
					continue;
				cmv_buf body = CMV_BUF_INIT(1 << 20);
				cmv_buf_printf(&body, "%s: %s", spk, txt);
				if (cap)
					cmv_buf_printf(&body, " [shares %s]", cap);
				cmv_block_content b = { .type = "text", .data = body.ptr, .len = body.size };
				cmv_message msg = { .role = strcmp(spk, a) ? CMV_ROLE_ASSISTANT : CMV_ROLE_USER,
						    .kind = CMV_KIND_MESSAGE, .blocks = &b, .n_blocks = 1 };
				if (cmv_append(NULL, repo, "conv", &msg, 1, CMV_APPEND_CREATE) < 0)
					die("appending a turn");
				turns = realloc(turns, (n_turns + 1) * sizeof(*turns));
				size_t nt = 0;
				cmv_model_count(&nt, NULL, m, tok, body.ptr, body.size);
				turns[n_turns] = (turn){ strdup(dia), cmv_buf_detach(&body), nt + m->per_message + m->per_block };
				sqlite3_bind_text(ins, 1, dia, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins, 2, turns[n_turns].text, -1, SQLITE_STATIC);
				if (sqlite3_step(ins) != SQLITE_DONE)
					die("the baseline's index");
				sqlite3_reset(ins);
				n_turns++;
			}
		}
		cmv_id head;
		if (cmv_resolve(&head, repo, "conv") < 0)
			die("the branch");
		cmv__strmap by_dia = { 0 };
		for (size_t i = 0; i < n_turns; i++)
			cmv__strmap_put(&by_dia, turns[i].dia, i, NULL);
		for (const cJSON *q = qa->child; q; q = q->next) {
			const char *question = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(q, "question"));
			const cJSON *ev = cJSON_GetObjectItemCaseSensitive(q, "evidence");
			int cat = category(q);
			if (!question)
				continue;
			n_questions++;
			qno++;
			/* the evidence as turns, normalized as locomo.md §6.1 says: ids that exist, each once */
			size_t ev_turn[64], n_ev = 0;
			for (const cJSON *e = ev ? ev->child : NULL; e; e = e->next) {
				char ids[64][32];
				size_t n_ids = locomo_evidence(ids, 64, cJSON_GetStringValue(e));
				for (size_t k = 0; k < n_ids && n_ev < 64; k++) {
					size_t i, j = 0;
					if (!cmv__strmap_get(&by_dia, ids[k], &i, NULL))
						continue;
					while (j < n_ev && ev_turn[j] != i)
						j++;
					if (j == n_ev)
						ev_turn[n_ev++] = i;
				}
			}
			cmv_buf fts = CMV_BUF_INIT(1 << 16);
			baseline_query(&fts, question);
			for (size_t b = 0; b < n_budgets; b++) {
				tally *ty = &t[b];
				/* the pager, through its query path */
				cmv_pager_options o = CMV_PAGER_OPTIONS_INIT;
				cmv_materialize_report rep = { 0 };
				cmv_buf out = CMV_BUF_INIT((size_t)1 << 28);
				o.budget = budgets[b];
				o.keep_turns = 1;
				o.query = question;
				o.query_allowance = budgets[b];
				double t0 = bench_now();
				int rc = cmv_materialize(&out, &rep, repo, &head, m, tok, &o);
				double ms = (bench_now() - t0) * 1e3;
				if (!ty->pages)
					ty->pages = 14695981039346656037ULL;
				for (size_t k = 0; k < (rc == 0 ? out.size : 0); k++)
					ty->pages = (ty->pages ^ (unsigned char)out.ptr[k]) * 1099511628211ULL;
				ty->ms = realloc(ty->ms, (ty->n_ms + 1) * sizeof(double));
				ty->ms[ty->n_ms++] = ms;
				double got = 0, base = 0;
				if (rc == 0) {
					cmv__strmap set = { 0 };
					cJSON *body = cJSON_ParseWithLength(out.ptr, out.size);
					collect_texts(&set, body);
					cJSON_Delete(body);
					for (size_t k = 0; k < n_ev; k++)
						if (cmv__strmap_get(&set, turns[ev_turn[k]].text, NULL, NULL))
							got += 1;
					cmv__strmap_dispose(&set);
					if (llm)
						answer(ty, llm, out.ptr, out.size, q, cat, qno);
					ty->tokens += (double)rep.tokens;
					cmv_materialize_report_dispose(&rep);
				} else {
					cmv_error_clear();
				}
				cmv_buf_dispose(&out);
				/* the baseline: BM25 top turns while they fit */
				cmv__strmap in = { 0 };
				uint64_t used = m->per_request;
				if (fts.size) {
					sqlite3_bind_text(sel, 1, fts.ptr, -1, SQLITE_STATIC);
					while (sqlite3_step(sel) == SQLITE_ROW) {
						size_t i;
						const char *ref = (const char *)sqlite3_column_text(sel, 0);
						if (!cmv__strmap_get(&by_dia, ref, &i, NULL))
							continue;
						if (used + turns[i].tokens > budgets[b])
							break;
						used += turns[i].tokens;
						cmv__strmap_put(&in, ref, 0, NULL);
					}
					sqlite3_reset(sel);
				}
				for (size_t k = 0; k < n_ev; k++)
					if (cmv__strmap_get(&in, turns[ev_turn[k]].dia, NULL, NULL))
						base += 1;
				cmv__strmap_dispose(&in);
				if (n_ev) {
					ty->recall[cat] += got / (double)n_ev;
					ty->base[cat] += base / (double)n_ev;
					ty->n_rec[cat]++;
				}
				ty->n[cat]++;
			}
			cmv_buf_dispose(&fts);
		}
		cmv__strmap_dispose(&by_dia);
		for (size_t i = 0; i < n_turns; i++) {
			free(turns[i].dia);
			free(turns[i].text);
		}
		free(turns);
		sqlite3_finalize(ins);
		sqlite3_finalize(sel);
		sqlite3_close(db);
		cmv_repo_free(repo);
	}

	static const char *const cat_names[MAX_CAT] = { "other", "multi-hop", "temporal", "open-domain", "single-hop",
							"adversarial" };
	cJSON *arr = cJSON_CreateArray();
	if (!json)
		printf("%s: %zu conversations, %zu questions; tokens cl100k_base; %s\n%8s %8s %9s %8s %9s %8s %8s\n", file,
		       n_conv, n_questions, machine, "budget", "recall", "baseline", "gain", "tokens/q", "p50 ms", "p95 ms");
	for (size_t b = 0; b < n_budgets; b++) {
		tally *ty = &t[b];
		double r = 0, base = 0;
		size_t n = 0, nr = 0;
		cJSON *o = cJSON_CreateObject(), *bycat = cJSON_CreateObject(), *basecat = cJSON_CreateObject();
		for (int c = 0; c < MAX_CAT; c++) {
			r += ty->recall[c];
			base += ty->base[c];
			n += ty->n[c];
			nr += ty->n_rec[c];
			if (ty->n_rec[c]) {
				cJSON_AddNumberToObject(bycat, cat_names[c], ty->recall[c] / (double)ty->n_rec[c]);
				cJSON_AddNumberToObject(basecat, cat_names[c], ty->base[c] / (double)ty->n_rec[c]);
			}
		}
		double recall = nr ? r / (double)nr : 0, brecall = nr ? base / (double)nr : 0;
		double p50 = bench_percentile(ty->ms, ty->n_ms, 0.50), p95 = bench_percentile(ty->ms, ty->n_ms, 0.95);
		cJSON_AddNumberToObject(o, "budget", (double)budgets[b]);
		cJSON_AddNumberToObject(o, "recall", recall);
		cJSON_AddItemToObject(o, "recall_by_category", bycat);
		cJSON_AddNumberToObject(o, "baseline_recall", brecall);
		cJSON_AddItemToObject(o, "baseline_recall_by_category", basecat);
		cJSON_AddNumberToObject(o, "tokens_per_query", n ? ty->tokens / (double)n : 0);
		cJSON_AddNumberToObject(o, "p50_ms", p50);
		cJSON_AddNumberToObject(o, "p95_ms", p95);
		cJSON_AddNumberToObject(o, "questions", (double)n);
		char hex[17];
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)ty->pages);
		cJSON_AddStringToObject(o, "pages", hex);
		cJSON_AddNumberToObject(o, "recall_questions", (double)nr);
		if (llm) {
			double f = 0;
			cJSON *fcat = cJSON_CreateObject();
			for (int c = 0; c < MAX_CAT; c++) {
				f += ty->f1[c];
				if (ty->n[c])
					cJSON_AddNumberToObject(fcat, cat_names[c], ty->f1[c] / (double)ty->n[c]);
			}
			cJSON_AddStringToObject(o, "answer_model", am->id);
			cJSON_AddNumberToObject(o, "answer_f1", n ? f / (double)n : 0);
			cJSON_AddItemToObject(o, "answer_f1_by_category", fcat);
			cJSON_AddNumberToObject(o, "answered", (double)ty->answered);
			cJSON_AddNumberToObject(o, "answer_errors", (double)ty->answer_errors);
		}
		cJSON_AddItemToArray(arr, o);
		if (!json)
			printf("%8llu %7.1f%% %8.1f%% %+7.1f %9.0f %8.2f %8.2f\n", (unsigned long long)budgets[b], 100 * recall,
			       100 * brecall, 100 * (recall - brecall), n ? ty->tokens / (double)n : 0, p50, p95);
		if (!json)
			printf("%8s pages %s\n", "", hex);
		if (!json && llm)
			printf("%8s answer F1 %.1f%% (%s; %zu answered, %zu errors)\n", "",
			       100 * cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "answer_f1")), am->id, ty->answered,
			       ty->answer_errors);
		free(ty->ms);
	}
	if (json) {
		char *s = cJSON_Print(arr);
		puts(s);
		cJSON_free(s);
	}
	cJSON_Delete(arr);
	cJSON_Delete(doc);
	cmv_llm_free(llm);
	cmv_buf_dispose(&data);
	cmv_tok_free(tok);
	cmv_models_free(models);
	return 0;
}
