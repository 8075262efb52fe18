/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench carry DIR [--json]: every Claude Code session under DIR
 * carried into Codex, and every Codex rollout into Claude Code
 * (cmv_carry, docs/formats.md "Continuing in the other agent"). Per
 * session: records read, messages and lines carried, tool calls mapped to
 * the target's shell and carried as text, thinking and system prompts left
 * behind, the tokens of the source and of the carried session in the
 * target's count (each rendered for the target model's API: gpt-5 for
 * Codex, claude-opus-5-5 for Claude Code, counted with cmv_count_sent),
 * and the time cmv_carry took (the import before it is not timed).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/base.h"
#include "bench.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void die(const char *what)
{
	fprintf(stderr, "cmv-bench carry: %s: %s\n", what, cmv_error_last() ? cmv_error_last()->message : "failed");
	exit(1);
}

int bench_carry(int argc, char **argv)
{
	const char *dir = NULL;
	bool json = false;
	bench_files l = { 0 };
	char machine[256];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else {
			fprintf(stderr, "usage: cmv-bench carry DIR [--json]\n");
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: cmv-bench carry DIR [--json]\n");
		return 2;
	}
	bench_collect(&l, dir, "claude-code");
	size_t n_cc = l.n;
	bench_collect(&l, dir, "codex");
	if (!l.n) {
		fprintf(stderr, "cmv-bench carry: no Claude Code or Codex sessions under %s\n", dir);
		return 1;
	}
	qsort(l.paths, n_cc, sizeof(*l.paths), cmp_str);
	qsort(l.paths + n_cc, l.n - n_cc, sizeof(*l.paths), cmp_str);

	cmv_models *models = NULL;
	const cmv_model *m_codex = NULL, *m_claude = NULL;
	cmv_tok *t_codex = NULL, *t_claude = NULL;
	if (cmv_models_load(&models, NULL) < 0 || cmv_models_find(&m_codex, models, "gpt-5") < 0 ||
	    cmv_models_find(&m_claude, models, "claude-opus-5-5") < 0 || cmv_tok_load(&t_codex, m_codex->tokenizer, NULL) < 0 ||
	    cmv_tok_load(&t_claude, m_claude->tokenizer, NULL) < 0)
		die("cannot load the models");
	bench_machine(machine, sizeof(machine));
	char *tmp = bench_tmpdir();
	cJSON *doc = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(doc, "sessions");
	uint64_t sum_before = 0, sum_after = 0;
	size_t sum_msgs = 0, sum_stub = 0, sum_map = 0, sum_think = 0;
	double sum_time = 0;
	if (!json)
		printf("%-46s %-6s %7s %6s %6s %6s %6s %6s %4s %9s %9s %8s\n", "session", "into", "records", "msgs", "lines",
		       "shell", "astext", "think", "sys", "tok.src", "tok.out", "ms");
	for (size_t i = 0; i < l.n; i++) {
		bool into_codex = i < n_cc;
		const cmv_model *m = into_codex ? m_codex : m_claude;
		cmv_tok *tok = into_codex ? t_codex : t_claude;
		cmv_repo *repo = NULL;
		cmv_import_result res, back;
		cmv_carry_options o = CMV_CARRY_OPTIONS_INIT;
		cmv_carry_result cr;
		cmv_buf out = CMV_BUF_INIT((size_t)1 << 31);
		cmv_token_stats st;
		char path[4200];

		if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0 ||
		    cmv_import_file(&res, repo, l.paths[i], into_codex ? "claude-code" : "codex", NULL) < 0)
			die(l.paths[i]);
		o.agent = into_codex ? "codex" : "claude-code";
		o.cwd = "/work/carried";
		o.flags = CMV_CARRY_HEADER;
		double t0 = bench_now();
		if (cmv_carry(&out, &cr, repo, &res.head, &o) < 0)
			die(l.paths[i]);
		double dt = bench_now() - t0;
		uint64_t before = 0, after = 0;
		/* a session with nothing to send (only events) renders nothing: 0 tokens */
		if (cmv_count_sent(&st, repo, &res.head, m, tok) == 0)
			before = st.total;
		cmv_error_clear();
		if (cr.messages) {
			snprintf(path, sizeof(path), "%s/carried-%zu.jsonl", tmp, i);
			if (cmv__file_write_atomic(path, out.ptr, out.size, 0600) < 0 ||
			    cmv_import_file(&back, repo, path, o.agent, NULL) < 0 ||
			    cmv_count_sent(&st, repo, &back.head, m, tok) < 0)
				die(path);
			after = st.total;
			unlink(path);
		}
		const char *name = strrchr(l.paths[i], '/') ? strrchr(l.paths[i], '/') + 1 : l.paths[i];
		if (json) {
			cJSON *r = cJSON_CreateObject();
			cJSON_AddStringToObject(r, "session", name);
			cJSON_AddStringToObject(r, "from", into_codex ? "claude-code" : "codex");
			cJSON_AddStringToObject(r, "into", o.agent);
			cJSON_AddStringToObject(r, "model", m->id);
			cJSON_AddNumberToObject(r, "bytes", (double)bench_file_bytes(l.paths[i]));
			cJSON_AddNumberToObject(r, "records", (double)cr.records);
			cJSON_AddNumberToObject(r, "messages", (double)cr.messages);
			cJSON_AddNumberToObject(r, "lines", (double)cr.lines);
			cJSON_AddNumberToObject(r, "tool_calls", (double)cr.calls);
			cJSON_AddNumberToObject(r, "mapped_calls", (double)cr.mapped_calls);
			cJSON_AddNumberToObject(r, "stubbed_calls", (double)cr.stubbed_calls);
			cJSON_AddNumberToObject(r, "thinking_left", (double)cr.stubbed_thinking);
			cJSON_AddNumberToObject(r, "system_prompts_left", (double)cr.dropped_system);
			cJSON_AddNumberToObject(r, "tokens_source", (double)before);
			cJSON_AddNumberToObject(r, "tokens_carried", (double)after);
			cJSON_AddNumberToObject(r, "seconds", dt);
			cJSON_AddItemToArray(rows, r);
		} else {
			printf("%-46.46s %-6s %7zu %6zu %6zu %6zu %6zu %6zu %4zu %9llu %9llu %8.2f\n", name,
			       into_codex ? "codex" : "claude", cr.records, cr.messages, cr.lines, cr.mapped_calls,
			       cr.stubbed_calls, cr.stubbed_thinking, cr.dropped_system, (unsigned long long)before,
			       (unsigned long long)after, dt * 1000);
		}
		sum_before += before;
		sum_after += after;
		sum_msgs += cr.messages;
		sum_stub += cr.stubbed_calls;
		sum_map += cr.mapped_calls;
		sum_think += cr.stubbed_thinking;
		sum_time += dt;
		cmv_carry_result_dispose(&cr);
		cmv_buf_dispose(&out);
		cmv_repo_free(repo);
	}
	if (json) {
		cJSON *t = cJSON_AddObjectToObject(doc, "total");
		cJSON_AddStringToObject(doc, "machine", machine);
		cJSON_AddNumberToObject(t, "sessions", (double)l.n);
		cJSON_AddNumberToObject(t, "messages", (double)sum_msgs);
		cJSON_AddNumberToObject(t, "mapped_calls", (double)sum_map);
		cJSON_AddNumberToObject(t, "stubbed_calls", (double)sum_stub);
		cJSON_AddNumberToObject(t, "thinking_left", (double)sum_think);
		cJSON_AddNumberToObject(t, "tokens_source", (double)sum_before);
		cJSON_AddNumberToObject(t, "tokens_carried", (double)sum_after);
		cJSON_AddNumberToObject(t, "seconds", sum_time);
		char *s = cJSON_Print(doc);
		puts(s);
		free(s);
	} else {
		printf("total: %zu sessions, %zu messages carried, %zu calls to the shell, %zu as text, %zu thinking blocks left; "
		       "%llu tokens of source, %llu carried (each in its target's count); %.1f ms carrying\n%s\n",
		       l.n, sum_msgs, sum_map, sum_stub, sum_think, (unsigned long long)sum_before, (unsigned long long)sum_after,
		       sum_time * 1000, machine);
	}
	cJSON_Delete(doc);
	bench_rmdir(tmp);
	free(tmp);
	cmv_tok_free(t_codex);
	cmv_tok_free(t_claude);
	cmv_models_free(models);
	bench_files_free(&l);
	return 0;
}
