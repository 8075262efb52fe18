/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench resume DIR [--threshold N] [--runs N] [--cmv PATH] [--json]:
 * what a real Claude Code resume sends for each session under DIR, untrimmed
 * and after `cmv trim`, and what the hook costs per tool call.
 *
 *  - tokens: the model of Claude Code 2.1.328's resume is the session
 *    rendered as an Anthropic request (cmv_render), with thinking kept only
 *    in assistant messages that call a tool (the client drops the others),
 *    counted as the o200k tokens of its message content: each block's text,
 *    a tool call as its name and input JSON, a result as its text, images
 *    not counted. tests/clients/resume_test.py holds this model to what the
 *    real client sends for the same sessions (message count equal, tokens
 *    within 2% on the curated set; 12% on the corpus, whose two outliers it
 *    names), and to these figures (CMV_BENCH).
 *  - hook: the median wall time of `cmv auto-trim --check-size` exec'd with
 *    a PostToolUse input on stdin, as Claude Code runs it after each tool
 *    call: "idle" with the session under --size (nothing to do), "trim"
 *    with it over (a fresh copy each run: a backup, import and trim), and
 *    "again" right after a trim with nothing appended and the file still
 *    over --size (the common case once a big session has crossed it: an
 *    incremental hook has nothing to do, so it should cost what idle does).
 *    The same-run baseline is an exec of `cmv version`: what any hook
 *    command costs before it reads a byte.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/base.h"
#include "bench.h"

static void die(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench resume: %s: %s\n", what, e ? e->message : strerror(errno));
	exit(1);
}

static bool jis(const cJSON *o, const char *k, const char *v)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(x) && !strcmp(x->valuestring, v);
}

static const char *jstr(const cJSON *o, const char *k)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
	return v ? v : "";
}

static void block_text(cmv_buf *t, const cJSON *b)
{
	const cJSON *c;

	if (cJSON_IsString(b)) {
		cmv_buf_puts(t, b->valuestring);
	} else if (jis(b, "type", "text")) {
		cmv_buf_puts(t, jstr(b, "text"));
	} else if (jis(b, "type", "thinking")) {
		cmv_buf_puts(t, jstr(b, "thinking"));
	} else if (jis(b, "type", "tool_use")) {
		char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
		cmv_buf_printf(t, "%s %s", jstr(b, "name"),
			       in ? in : "{}");
		cJSON_free(in);
	} else if (jis(b, "type", "tool_result")) {
		c = cJSON_GetObjectItemCaseSensitive(b, "content");
		if (cJSON_IsString(c)) {
			cmv_buf_puts(t, c->valuestring);
		} else if (cJSON_IsArray(c)) {
			for (const cJSON *x = c->child; x; x = x->next) {
				block_text(t, x);
				if (x->next)
					cmv_buf_putc(t, '\n');
			}
		}
	}
}

/* The message content a resuming Claude Code sends, as text; *messages gets their number. */
static void resume_text(cmv_buf *t, size_t *messages, const char *request, size_t len)
{
	cJSON *doc = cJSON_ParseWithLength(request, len);
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(doc, "messages");

	*messages = 0;
	cmv_buf_clear(t);
	for (const cJSON *m = cJSON_IsArray(ms) ? ms->child : NULL; m; m = m->next) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
		bool calls = false;
		if (*messages)
			cmv_buf_putc(t, '\n');
		(*messages)++;
		if (cJSON_IsString(c)) {
			cmv_buf_puts(t, c->valuestring);
			continue;
		}
		for (const cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next)
			calls |= jis(b, "type", "tool_use");
		bool first = true;
		for (const cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next) {
			if (!calls && (jis(b, "type", "thinking") || jis(b, "type", "redacted_thinking")))
				continue;
			if (!first)
				cmv_buf_putc(t, '\n');
			first = false;
			block_text(t, b);
		}
	}
	cJSON_Delete(doc);
}

static size_t resume_tokens(size_t *messages, cmv_repo *repo, const cmv_id *tip, cmv_tok *tok)
{
	cmv_buf req = CMV_BUF_INIT((size_t)1 << 31), text = CMV_BUF_INIT((size_t)1 << 31);
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	size_t n = 0;

	if (cmv_render(&req, NULL, repo, tip, CMV_RENDER_ANTHROPIC, &ro) < 0)
		die("rendering");
	resume_text(&text, messages, req.ptr, req.size);
	if (cmv_tok_count(&n, tok, text.ptr, text.size) < 0)
		die("counting");
	cmv_buf_dispose(&req);
	cmv_buf_dispose(&text);
	return n;
}

/* ---- the hook's cost ------------------------------------------------------ */

static void copy_file(const char *to, const char *data, size_t len)
{
	FILE *f = fopen(to, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(to);
}

/* One exec of `cmv --store S auto-trim --check-size --size N` with `input` on stdin: seconds. */
static double hook_once(const char *cmv, const char *store, size_t size, const char *input, const char *env_claude)
{
	char sz[32];
	int in[2];
	snprintf(sz, sizeof(sz), "%zu", size);
	if (pipe(in) != 0)
		die("pipe");
	fflush(stdout); /* or the child's freopen writes our buffer out again */
	double t0 = bench_now();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(in[0], 0);
		close(in[0]);
		close(in[1]);
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		setenv("CLAUDE_CONFIG_DIR", env_claude, 1);
		execl(cmv, cmv, "--store", store, "auto-trim", "--check-size", "--size", sz, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	size_t len = strlen(input);
	if (write(in[1], input, len) != (ssize_t)len)
		die("writing the hook input");
	close(in[1]);
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = 0;
		die("cmv auto-trim did not exit 0 (the hook must always)");
	}
	return bench_now() - t0;
}

/* The same-run baseline: one exec of `cmv version` (process start, linking, no store). */
static double exec_once(const char *cmv)
{
	fflush(stdout);
	double t0 = bench_now();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(cmv, cmv, "version", (char *)NULL);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	return bench_now() - t0;
}

static double median(double *v, size_t n)
{
	return n ? bench_percentile(v, n, 0.5) : 0;
}

static char *session_id(const char *data, size_t len)
{
	const char *k = "\"sessionId\":\"";
	const char *p = memmem(data, len, k, strlen(k));
	if (!p || (size_t)(data + len - p) < strlen(k) + 36)
		return NULL;
	return strndup(p + strlen(k), 36);
}

int bench_resume(int argc, char **argv)
{
	const char *dir = NULL, *cmv = NULL;
	size_t threshold = 0, runs = 11;
	bool json = false;
	bench_files l = { 0 };
	cmv_tok *tok = NULL;
	char machine[256], self_cmv[PATH_MAX];
	const char *use = "usage: cmv-bench resume DIR [--threshold N] [--runs N] [--cmv PATH] [--json]\n";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--threshold") && i + 1 < argc)
			threshold = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--cmv") && i + 1 < argc)
			cmv = argv[++i];
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else {
			fputs(use, stderr);
			return 2;
		}
	}
	if (!dir || runs < 1 || runs > 1000) {
		fputs(use, stderr);
		return 2;
	}
	if (!cmv) {
		/* the cmv built beside this cmv-bench */
		ssize_t n = readlink("/proc/self/exe", self_cmv, sizeof(self_cmv) - 8);
		char *slash = n > 0 ? memrchr(self_cmv, '/', (size_t)n) : NULL;
		if (!slash) {
			fputs("cmv-bench resume: cannot find cmv beside this program; name it with --cmv\n", stderr);
			return 1;
		}
		memcpy(slash + 1, "cmv", 4);
		cmv = self_cmv;
	}
	if (access(cmv, X_OK) != 0) {
		fprintf(stderr, "cmv-bench resume: %s: %s (name the cmv binary with --cmv)\n", cmv, strerror(errno));
		return 1;
	}
	bench_collect(&l, dir, "claude-code");
	if (!l.n) {
		fprintf(stderr, "cmv-bench resume: no Claude Code sessions under %s\n", dir);
		return 1;
	}
	if (cmv_tok_load(&tok, "o200k_base", NULL) < 0)
		die("the o200k_base tokenizer");
	bench_machine(machine, sizeof(machine));

	cJSON *doc = cJSON_CreateObject(), *sessions = cJSON_AddArrayToObject(doc, "sessions");
	cmv_buf file = CMV_BUF_INIT((size_t)1 << 31), path = CMV_BUF_INIT(4096), input = CMV_BUF_INIT(8192);
	double *idle = calloc(runs * l.n, sizeof(double)), *trims = calloc(runs * l.n, sizeof(double)),
	       *again = calloc(runs * l.n, sizeof(double));
	size_t n_idle = 0, n_trim = 0, n_again = 0;
	uint64_t sum_before = 0, sum_after = 0;
	char *tmp = bench_tmpdir();

	if (!idle || !trims || !again)
		die("memory");
	if (!json)
		printf("%-50s %8s %10s %10s %6s %8s %8s %8s\n", "session", "messages", "untrimmed", "trimmed", "ratio",
		       "idle ms", "trim ms", "again ms");
	for (size_t i = 0; i < l.n; i++) {
		cmv_repo *repo = NULL;
		cmv_import_result res;
		cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
		cmv_trim_report rep;
		size_t m_before, m_after;

		cmv_buf_clear(&file);
		if (cmv__read_file(&file, l.paths[i]) < 0)
			die(l.paths[i]);
		if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0 ||
		    cmv_import_file(&res, repo, l.paths[i], "claude-code", NULL) < 0)
			die(l.paths[i]);
		opts.threshold = threshold;
		opts.branch = "trimmed";
		if (cmv_trim(&rep, repo, &res.head, &opts) < 0)
			die(l.paths[i]);
		size_t before = resume_tokens(&m_before, repo, &res.head, tok);
		size_t after = resume_tokens(&m_after, repo, &rep.head, tok);
		cmv_repo_free(repo);
		sum_before += before;
		sum_after += after;

		/* The hook, on a copy of the session laid out as Claude Code keeps it. */
		char *sid = session_id(file.ptr, file.size);
		double s_idle[1000], s_trim[1000], s_again[1000];
		size_t k_idle = 0, k_trim = 0, k_again = 0;
		if (sid) {
			char claude[2048], store[2048], proj[4096];
			snprintf(claude, sizeof(claude), "%s/claude-%zu", tmp, i);
			snprintf(proj, sizeof(proj), "%s/projects/-bench", claude);
			snprintf(store, sizeof(store), "%s/store-%zu/.cmv", tmp, i);
			cmv_buf_clear(&path);
			cmv_buf_printf(&path, "%s/%s.jsonl", proj, sid);
			char cmd[3 * 4096];
			/* mkdtemp's folder: no quote in these paths */
			snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && '%s' init '%s/store-%zu' >/dev/null", proj, cmv, tmp, i);
			if (system(cmd) != 0) {
				errno = 0;
				die(cmd);
			}
			cmv_buf_clear(&input);
			cJSON *h = cJSON_CreateObject(), *ti = cJSON_CreateObject();
			cJSON_AddStringToObject(h, "session_id", sid);
			cJSON_AddStringToObject(h, "transcript_path", path.ptr);
			cJSON_AddStringToObject(h, "cwd", tmp);
			cJSON_AddStringToObject(h, "hook_event_name", "PostToolUse");
			cJSON_AddStringToObject(h, "tool_name", "Bash");
			cJSON_AddStringToObject(ti, "command", "ls");
			cJSON_AddItemToObject(h, "tool_input", ti);
			char *hs = cJSON_PrintUnformatted(h);
			cmv_buf_puts(&input, hs);
			cJSON_free(hs);
			cJSON_Delete(h);
			copy_file(path.ptr, file.ptr, file.size);
			for (size_t r = 0; r < runs; r++) /* under the size: nothing to do */
				s_idle[k_idle++] = hook_once(cmv, store, file.size + 1, input.ptr, claude);
			for (size_t r = 0; r < runs && r < 5; r++) { /* over it: a fresh copy each run */
				copy_file(path.ptr, file.ptr, file.size);
				s_trim[k_trim++] = hook_once(cmv, store, file.size / 2, input.ptr, claude);
			}
			/* Fired again with nothing appended since the trim, the file still over --size (a trimmed
			 * session that stays big): an incremental hook has nothing to do. */
			uint64_t trimmed_size = bench_file_bytes(path.ptr);
			for (size_t r = 0; r < runs; r++)
				s_again[k_again++] = hook_once(cmv, store, trimmed_size / 2 + 1, input.ptr, claude);
			free(sid);
		}
		memcpy(idle + n_idle, s_idle, k_idle * sizeof(double));
		memcpy(trims + n_trim, s_trim, k_trim * sizeof(double));
		memcpy(again + n_again, s_again, k_again * sizeof(double));
		n_idle += k_idle;
		n_trim += k_trim;
		n_again += k_again;
		double mi = median(s_idle, k_idle) * 1e3, mt = median(s_trim, k_trim) * 1e3,
		       ma = median(s_again, k_again) * 1e3;

		const char *base = strrchr(l.paths[i], '/') ? strrchr(l.paths[i], '/') + 1 : l.paths[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "file", l.paths[i]);
		cJSON_AddNumberToObject(o, "bytes", (double)file.size);
		cJSON_AddNumberToObject(o, "messages", (double)m_before);
		cJSON_AddNumberToObject(o, "messages_trimmed", (double)m_after);
		cJSON_AddNumberToObject(o, "tokens_untrimmed", (double)before);
		cJSON_AddNumberToObject(o, "tokens_trimmed", (double)after);
		cJSON_AddNumberToObject(o, "ratio", before ? (double)after / (double)before : 1);
		cJSON_AddNumberToObject(o, "hook_idle_ms", mi);
		cJSON_AddNumberToObject(o, "hook_trim_ms", mt);
		cJSON_AddNumberToObject(o, "hook_again_ms", ma);
		cJSON_AddItemToArray(sessions, o);
		if (!json)
			printf("%-50.50s %8zu %10zu %10zu %6.3f %8.1f %8.1f %8.1f\n", base, m_before, before, after,
			       before ? (double)after / (double)before : 1.0, mi, mt, ma);
	}
	double mi = median(idle, n_idle) * 1e3, mt = median(trims, n_trim) * 1e3, ma = median(again, n_again) * 1e3;
	double *base_runs = calloc(runs, sizeof(double));
	if (!base_runs)
		die("memory");
	for (size_t r = 0; r < runs; r++)
		base_runs[r] = exec_once(cmv);
	double mb = median(base_runs, runs) * 1e3;
	free(base_runs);
	cJSON *total = cJSON_AddObjectToObject(doc, "total");
	cJSON_AddNumberToObject(total, "sessions", (double)l.n);
	cJSON_AddNumberToObject(total, "tokens_untrimmed", (double)sum_before);
	cJSON_AddNumberToObject(total, "tokens_trimmed", (double)sum_after);
	cJSON_AddNumberToObject(total, "ratio", sum_before ? (double)sum_after / (double)sum_before : 1);
	cJSON_AddNumberToObject(total, "hook_idle_ms", mi);
	cJSON_AddNumberToObject(total, "hook_trim_ms", mt);
	cJSON_AddNumberToObject(total, "hook_again_ms", ma);
	cJSON_AddNumberToObject(total, "exec_baseline_ms", mb);
	cJSON_AddStringToObject(doc, "tokenizer", "o200k_base");
	cJSON_AddStringToObject(doc, "client_model", "Claude Code 2.1.328");
	cJSON_AddStringToObject(doc, "cmv", cmv);
	cJSON_AddStringToObject(doc, "machine", machine);
	if (json) {
		char *s = cJSON_Print(doc);
		puts(s);
		cJSON_free(s);
	} else {
		printf("total: %zu sessions, a resume sends %llu o200k tokens of messages untrimmed, %llu after cmv trim "
		       "(ratio %.3f)\n",
		       l.n, (unsigned long long)sum_before, (unsigned long long)sum_after,
		       sum_before ? (double)sum_after / (double)sum_before : 1.0);
		printf("hook per tool call (median of %zu execs each): %.1f ms with nothing to do, %.1f ms when it trims, "
		       "%.1f ms fired again after a trim; `cmv version` %.1f ms (same run); %s\n",
		       runs, mi, mt, ma, mb, machine);
	}
	cJSON_Delete(doc);
	bench_rmdir(tmp);
	free(tmp);
	free(idle);
	free(trims);
	free(again);
	bench_files_free(&l);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&path);
	cmv_buf_dispose(&input);
	cmv_tok_free(tok);
	return 0;
}
