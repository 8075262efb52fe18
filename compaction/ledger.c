/* SPDX-License-Identifier: MIT */
/*
 * The ledger of side effects (include/cmv/ledger.h, docs/ledger.md): one
 * walk of the path, reading the blobs of calls and of user texts. Nothing
 * is cached: a ledger is as fresh as the branch it is read from, and a
 * branch of 300 calls reads in milliseconds.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/ledger.h>

#define CONFIG_NOTE "ledger.effects"
#define TOOLS_NOTE "tools" /* host/request.c keeps a branch's tool definitions under it */
#define ARGS_SHOWN 200

/* ---- classification --------------------------------------------------------- */

typedef struct {
	const char *name;
	cmv_effect effect;
	const char *source;
	/* fields that comment on a call and change nothing it does: a model writes its own */
	const char *ignore[5];
} known_tool;

static const known_tool known[] = {
	/* Claude Code */
	{ "Read", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "Glob", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "Grep", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "LS", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "NotebookRead", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "WebFetch", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "WebSearch", CMV_EFFECT_NONE, "claude-code", { 0 } },
	/* the agent's own plan and task list: nothing outside the session changes */
	{ "TodoWrite", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "TodoRead", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "TaskCreate", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "TaskUpdate", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "TaskList", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "TaskGet", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "ExitPlanMode", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "EnterPlanMode", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "AskUserQuestion", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "Skill", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "BashOutput", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "TaskOutput", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "ListMcpResourcesTool", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "ReadMcpResourceTool", CMV_EFFECT_NONE, "claude-code", { 0 } },
	{ "Bash", CMV_EFFECT_SIDE, "claude-code", { "description", "timeout" } },
	{ "Edit", CMV_EFFECT_SIDE, "claude-code", { 0 } },
	{ "MultiEdit", CMV_EFFECT_SIDE, "claude-code", { 0 } },
	{ "Write", CMV_EFFECT_SIDE, "claude-code", { 0 } },
	{ "NotebookEdit", CMV_EFFECT_SIDE, "claude-code", { 0 } },
	/* a subagent may do anything its tools allow */
	{ "Task", CMV_EFFECT_SIDE, "claude-code", { "description" } },
	{ "Agent", CMV_EFFECT_SIDE, "claude-code", { "description" } },
	{ "KillShell", CMV_EFFECT_SIDE, "claude-code", { 0 } },
	{ "KillBash", CMV_EFFECT_SIDE, "claude-code", { 0 } },
	{ "SlashCommand", CMV_EFFECT_SIDE, "claude-code", { 0 } },
	/* Codex */
	{ "shell", CMV_EFFECT_SIDE, "codex", { "justification", "timeout_ms", "timeout" } },
	{ "local_shell", CMV_EFFECT_SIDE, "codex", { "justification", "timeout_ms" } },
	{ "container.exec", CMV_EFFECT_SIDE, "codex", { "justification", "timeout_ms" } },
	{ "exec_command", CMV_EFFECT_SIDE, "codex", { "justification", "yield_time_ms", "max_output_tokens" } },
	{ "unified_exec", CMV_EFFECT_SIDE, "codex", { "justification", "yield_time_ms", "max_output_tokens" } },
	{ "write_stdin", CMV_EFFECT_SIDE, "codex", { "yield_time_ms", "max_output_tokens" } },
	{ "apply_patch", CMV_EFFECT_SIDE, "codex", { 0 } },
	{ "update_plan", CMV_EFFECT_NONE, "codex", { 0 } },
	{ "view_image", CMV_EFFECT_NONE, "codex", { 0 } },
	{ "web_search", CMV_EFFECT_NONE, "codex", { 0 } },
	{ "read_file", CMV_EFFECT_NONE, "codex", { 0 } },
	{ "list_dir", CMV_EFFECT_NONE, "codex", { 0 } },
	{ "grep_files", CMV_EFFECT_NONE, "codex", { 0 } },
	{ "tool_search", CMV_EFFECT_NONE, "codex", { 0 } },
	/* Gemini CLI */
	{ "list_directory", CMV_EFFECT_NONE, "gemini-cli", { 0 } },
	{ "read_many_files", CMV_EFFECT_NONE, "gemini-cli", { 0 } },
	{ "glob", CMV_EFFECT_NONE, "gemini-cli", { 0 } },
	{ "search_file_content", CMV_EFFECT_NONE, "gemini-cli", { 0 } },
	{ "google_web_search", CMV_EFFECT_NONE, "gemini-cli", { 0 } },
	{ "web_fetch", CMV_EFFECT_NONE, "gemini-cli", { 0 } },
	{ "write_file", CMV_EFFECT_SIDE, "gemini-cli", { 0 } },
	{ "replace", CMV_EFFECT_SIDE, "gemini-cli", { 0 } },
	{ "run_shell_command", CMV_EFFECT_SIDE, "gemini-cli", { "description" } },
	{ "save_memory", CMV_EFFECT_SIDE, "gemini-cli", { 0 } },
	/* cmv's own: the recall tool, and the MCP server's tools (docs/mcp.md) */
	{ "cmv_recall", CMV_EFFECT_NONE, "cmv", { 0 } },
	{ "mcp__cmv__search", CMV_EFFECT_NONE, "cmv", { 0 } },
	{ "mcp__cmv__timeline", CMV_EFFECT_NONE, "cmv", { 0 } },
	{ "mcp__cmv__get", CMV_EFFECT_NONE, "cmv", { 0 } },
	{ "mcp__cmv__recall", CMV_EFFECT_NONE, "cmv", { 0 } },
	{ "mcp__cmv__handoff", CMV_EFFECT_NONE, "cmv", { 0 } },
	{ "mcp__cmv__fit", CMV_EFFECT_NONE, "cmv", { 0 } },
	{ "mcp__cmv__snapshot", CMV_EFFECT_SIDE, "cmv", { 0 } },
	{ "mcp__cmv__branch", CMV_EFFECT_SIDE, "cmv", { 0 } },
};

static const known_tool *known_find(const char *name)
{
	for (size_t i = 0; i < CMV_ARRAY_SIZE(known); i++)
		if (!strcmp(known[i].name, name))
			return &known[i];
	return NULL;
}

typedef struct {
	cJSON *config; /* {pattern: "none" | "side_effects"} */
	cJSON *tools;  /* the branch's definitions */
} classifier;

static void classifier_dispose(classifier *c)
{
	cJSON_Delete(c->config);
	cJSON_Delete(c->tools);
}

static int classifier_load(classifier *c, cmv_repo *repo, const char *branch)
{
	cmv_buf note = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;

	memset(c, 0, sizeof(*c));
	if ((error = cmv_store_note_get(&note, repo, CONFIG_NOTE)) == 0)
		c->config = cJSON_ParseWithLength(note.ptr, note.size);
	else if (error == CMV_ENOTFOUND)
		error = 0, cmv_error_clear();
	if (!error && branch) {
		if ((error = cmv_branch_note_get(&note, repo, branch, TOOLS_NOTE)) == 0)
			c->tools = cJSON_ParseWithLength(note.ptr, note.size);
		else if (error == CMV_ENOTFOUND)
			error = 0, cmv_error_clear();
	}
	cmv_buf_dispose(&note);
	return error;
}

static bool pattern_match(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);
	if (n && pattern[n - 1] == '*')
		return !strncmp(pattern, name, n - 1);
	return !strcmp(pattern, name);
}

/* An MCP definition's annotations, in either tool shape; the bare name of "mcp__server__tool" matches too. */
static const cJSON *annotations_of(const cJSON *tools, const char *name)
{
	const char *bare = NULL;
	if (!strncmp(name, "mcp__", 5) && (bare = strstr(name + 5, "__")))
		bare += 2;
	const cJSON *t;
	cJSON_ArrayForEach(t, tools) {
		const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
		const char *tn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
		if (!tn && fn)
			tn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fn, "name"));
		if (!tn || (strcmp(tn, name) && !(bare && !strcmp(tn, bare))))
			continue;
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "annotations");
		if (!a && fn)
			a = cJSON_GetObjectItemCaseSensitive(fn, "annotations");
		return cJSON_IsObject(a) ? a : NULL;
	}
	return NULL;
}

static cmv_effect classify(const classifier *c, const char *name, const char **source)
{
	/* the longest matching pattern of the user's wins: "mcp__x__get_issue" over "mcp__x__*" */
	const cJSON *e, *best = NULL;
	size_t best_len = 0;
	cJSON_ArrayForEach(e, c->config) {
		if (cJSON_IsString(e) && e->string && pattern_match(e->string, name) && strlen(e->string) >= best_len) {
			best = e;
			best_len = strlen(e->string);
		}
	}
	if (best) {
		*source = "config";
		return !strcmp(best->valuestring, "none") ? CMV_EFFECT_NONE : CMV_EFFECT_SIDE;
	}
	const cJSON *a = annotations_of(c->tools, name);
	if (a) {
		const cJSON *ro = cJSON_GetObjectItemCaseSensitive(a, "readOnlyHint");
		const cJSON *de = cJSON_GetObjectItemCaseSensitive(a, "destructiveHint");
		if (cJSON_IsBool(ro) || cJSON_IsBool(de)) {
			*source = "mcp";
			return cJSON_IsTrue(ro) ? CMV_EFFECT_NONE : CMV_EFFECT_SIDE;
		}
	}
	const known_tool *k = known_find(name);
	if (k) {
		*source = k->source;
		return k->effect;
	}
	*source = "unclassified";
	return CMV_EFFECT_UNKNOWN;
}

int cmv_ledger_effect(cmv_effect *out, const char **source, cmv_repo *repo, const char *branch, const char *name)
{
	classifier c;
	const char *src;
	int error = classifier_load(&c, repo, branch);
	if (error < 0)
		return error;
	*out = classify(&c, name, &src);
	if (source)
		*source = src;
	classifier_dispose(&c);
	return 0;
}

int cmv_ledger_classification(cmv_buf *out, cmv_repo *repo)
{
	int error = cmv_store_note_get(out, repo, CONFIG_NOTE);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		cmv_buf_clear(out);
		return cmv_buf_puts(out, "{}");
	}
	return error;
}

int cmv_ledger_classify(cmv_repo *repo, const char *pattern, cmv_effect effect)
{
	cmv_buf note = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cJSON *c = NULL;
	char *text = NULL;
	int error;

	if (!pattern || !*pattern || (strchr(pattern, '*') && strchr(pattern, '*') != pattern + strlen(pattern) - 1))
		return cmv_error__set(CMV_EINVALID, "'%s' is not a tool name or a prefix ending in '*'",
				      pattern ? pattern : "");
	if ((error = cmv_ledger_classification(&note, repo)) < 0)
		goto done;
	if (!(c = cJSON_ParseWithLength(note.ptr, note.size)) || !cJSON_IsObject(c)) {
		cJSON_Delete(c);
		if (!(c = cJSON_CreateObject())) {
			error = cmv_error__oom();
			goto done;
		}
	}
	cJSON_DeleteItemFromObjectCaseSensitive(c, pattern);
	if (effect != CMV_EFFECT_UNKNOWN &&
	    !cJSON_AddStringToObject(c, pattern, effect == CMV_EFFECT_NONE ? "none" : "side_effects")) {
		error = cmv_error__oom();
		goto done;
	}
	if (!(text = cJSON_PrintUnformatted(c))) {
		error = cmv_error__oom();
		goto done;
	}
	error = cmv_store_note_set(repo, CONFIG_NOTE, cJSON_GetArraySize(c) ? text : NULL);
done:
	cJSON_free(text);
	cJSON_Delete(c);
	cmv_buf_dispose(&note);
	return error;
}

/* ---- normalized arguments ------------------------------------------------------ */

static void sort_keys(cJSON *j)
{
	if (cJSON_IsObject(j) && j->child) {
		/* insertion sort of the member list by key, bytewise: one order whatever the writer's */
		cJSON *sorted = NULL, *next;
		for (cJSON *m = j->child; m; m = next) {
			next = m->next;
			m->prev = m->next = NULL;
			cJSON **at = &sorted;
			while (*at && strcmp((*at)->string, m->string) <= 0)
				at = &(*at)->next;
			m->next = *at;
			*at = m;
		}
		/* cJSON keeps child->prev as the list's tail */
		cJSON *prev = NULL;
		for (cJSON *m = sorted; m; m = m->next) {
			m->prev = prev;
			prev = m;
		}
		sorted->prev = prev;
		j->child = sorted;
	}
	for (cJSON *c = (cJSON_IsObject(j) || cJSON_IsArray(j)) ? j->child : NULL; c; c = c->next)
		sort_keys(c);
}

static void trim_strings(cJSON *o)
{
	for (cJSON *c = cJSON_IsObject(o) ? o->child : NULL; c; c = c->next) {
		if (!cJSON_IsString(c) || !c->valuestring)
			continue;
		char *s = c->valuestring;
		size_t n = strlen(s), a = 0;
		while (n && isspace((unsigned char)s[n - 1]))
			s[--n] = '\0';
		while (a < n && isspace((unsigned char)s[a]))
			a++;
		memmove(s, s + a, n - a + 1);
	}
}

/*
 * The arguments as one canonical text: JSON with sorted keys, no spaces, the
 * tool's commentary fields dropped and outer whitespace of string fields
 * trimmed; anything that is not a JSON object (a patch, free text) as it is,
 * less outer whitespace.
 */
static int normalize_args(char **out, const char *name, const char *args, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(args, len);
	*out = NULL;
	if (cJSON_IsObject(j)) {
		const known_tool *k = known_find(name);
		for (size_t i = 0; k && i < CMV_ARRAY_SIZE(k->ignore) && k->ignore[i]; i++)
			cJSON_DeleteItemFromObjectCaseSensitive(j, k->ignore[i]);
		trim_strings(j);
		sort_keys(j);
		*out = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		return *out ? 0 : cmv_error__oom();
	}
	cJSON_Delete(j);
	while (len && isspace((unsigned char)*args))
		args++, len--;
	while (len && isspace((unsigned char)args[len - 1]))
		len--;
	if (!(*out = cJSON_malloc(len + 1)))
		return cmv_error__oom();
	memcpy(*out, args, len);
	(*out)[len] = '\0';
	return 0;
}

/* s cut to at most max bytes on a character boundary, with "..." when cut (dst holds max + 4). */
static void cut_utf8(char *dst, const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max) {
		memcpy(dst, s, n + 1);
		return;
	}
	n = max;
	while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	memcpy(dst, s, n);
	memcpy(dst + n, "...", 4);
}

static void hash_hex(char out[CMV_LEDGER_KEY_HEXSZ + 1], const void *data, size_t len)
{
	cmv_id id;
	cmv_id_hash(&id, data, len);
	cmv_id_tostr(out, CMV_LEDGER_KEY_HEXSZ + 1, &id);
}

static int make_key(char out[CMV_LEDGER_KEY_HEXSZ + 1], const char *name, const char *norm, size_t turn,
		    unsigned int occurrence)
{
	cmv_buf b = CMV_BUF_INIT(CMV_BUF_CONTENT);
	/* NUL-separated fields: no name and arguments can be cut two ways */
	int error = cmv_buf_put(&b, "cmv-ledger-1", 13);
	if (!error && !(error = cmv_buf_put(&b, name, strlen(name) + 1)) &&
	    !(error = cmv_buf_put(&b, norm, strlen(norm) + 1)))
		error = cmv_buf_printf(&b, "%zu%c%u", turn, '\0', occurrence);
	if (!error)
		hash_hex(out, b.ptr, b.size);
	cmv_buf_dispose(&b);
	return error;
}

/* ---- the walk ---------------------------------------------------------------------- */

/* Harness text a user did not type: it starts no turn (the handoff's list, handoff_extract.c). */
static bool harness_text(const char *t)
{
	while (isspace((unsigned char)*t))
		t++;
	return !*t || !strncmp(t, "<command-", 9) || !strncmp(t, "<local-command", 14) ||
	       !strncmp(t, "<system-reminder>", 17) || !strncmp(t, "Caveat: The messages below", 26) ||
	       !strncmp(t, "[Request interrupted", 20) || !strncmp(t, "<environment_context>", 21) ||
	       !strncmp(t, "<user_instructions>", 19) || !strncmp(t, "<turn_aborted>", 14) ||
	       !strncmp(t, "# AGENTS.md instructions", 24);
}

/* Whether a node is a user prompt: a user message with something typed and no tool result. */
static int is_prompt(bool *out, cmv_repo *repo, const cmv_node *n, cmv_buf *scratch)
{
	*out = false;
	if (n->role != CMV_ROLE_USER || n->kind != CMV_KIND_MESSAGE)
		return 0;
	bool text = false;
	for (size_t i = 0; i < n->n_blocks; i++) {
		const char *t = n->blocks[i].type ? n->blocks[i].type : "";
		if (!strcmp(t, "tool_result"))
			return 0;
		if (!strcmp(t, "image")) {
			text = true;
		} else if (!strcmp(t, "text") && !text) {
			int error = cmv_blob_read(scratch, repo, &n->blocks[i].blob);
			if (error == CMV_ETOOBIG) {
				cmv_error_clear();
				text = true; /* longer than anything the harness writes */
			} else if (error < 0) {
				return error;
			} else {
				text = !harness_text(scratch->ptr);
			}
		}
	}
	*out = text;
	return 0;
}

typedef struct {
	char *sig;             /* name NUL... as "name\nargs_hash" */
	unsigned int occurrence;
	size_t epoch, own;     /* side-effect results in the turn when last issued; of this call since */
} turn_call;

typedef struct {
	cmv_ledger *l;
	size_t cap;
	cmv__strmap by_call;   /* call id -> index + 1 (the latest) */
	cmv__strmap by_key;    /* key -> index + 1 (the latest) */
	turn_call *tc;
	size_t n_tc, cap_tc;
	size_t epoch;          /* results of calls with side effects in this turn */
	classifier cls;
	cmv_buf scratch;
} builder;

static void turn_reset(builder *b)
{
	for (size_t i = 0; i < b->n_tc; i++)
		free(b->tc[i].sig);
	b->n_tc = 0;
	b->epoch = 0;
}

/* The occurrence of a call in the turn, as the key's rule says (ledger.h). */
static int occurrence_of(unsigned int *out, builder *b, const char *name, const char *args_hash)
{
	char sig[CMV_FIELD_MAX + CMV_LEDGER_KEY_HEXSZ + 2];
	snprintf(sig, sizeof(sig), "%s\n%s", name, args_hash);
	for (size_t i = 0; i < b->n_tc; i++) {
		turn_call *t = &b->tc[i];
		if (strcmp(t->sig, sig))
			continue;
		if (b->epoch - t->epoch - t->own)
			t->occurrence++;
		t->epoch = b->epoch;
		t->own = 0;
		*out = t->occurrence;
		return 0;
	}
	int error = cmv__array_grow((void **)&b->tc, &b->cap_tc, b->n_tc, sizeof(*b->tc));
	if (error < 0)
		return error;
	if (!(b->tc[b->n_tc].sig = cmv__strdup(sig)))
		return cmv_error__oom();
	b->tc[b->n_tc].occurrence = 1;
	b->tc[b->n_tc].epoch = b->epoch;
	b->tc[b->n_tc].own = 0;
	b->n_tc++;
	*out = 1;
	return 0;
}

static void result_arrived(builder *b, const cmv_ledger_entry *e)
{
	if (e->effect == CMV_EFFECT_NONE)
		return;
	b->epoch++;
	char sig[CMV_FIELD_MAX + CMV_LEDGER_KEY_HEXSZ + 2];
	snprintf(sig, sizeof(sig), "%s\n%s", e->name, e->args_hash);
	for (size_t i = 0; i < b->n_tc; i++)
		if (!strcmp(b->tc[i].sig, sig))
			b->tc[i].own++;
}

/* A new entry for a call, keyed at the builder's position. */
static int add_call(builder *b, const char *call_id, const char *name, const char *args, size_t len, const cmv_id *node)
{
	cmv_ledger *l = b->l;
	char *norm = NULL;
	int error;

	if ((error = cmv__array_grow((void **)&l->entries, &b->cap, l->n, sizeof(*l->entries))) < 0)
		return error;
	cmv_ledger_entry *e = &l->entries[l->n];
	memset(e, 0, sizeof(*e));
	if ((error = normalize_args(&norm, name, args, len)) < 0)
		return error;
	hash_hex(e->args_hash, norm, strlen(norm));
	e->effect = classify(&b->cls, name, &e->effect_source);
	e->turn = l->turns;
	if ((error = occurrence_of(&e->occurrence, b, name, e->args_hash)) < 0 ||
	    (error = make_key(e->key, name, norm, e->turn, e->occurrence)) < 0) {
		cJSON_free(norm);
		return error;
	}
	e->call_id = call_id ? cmv__strdup(call_id) : NULL;
	e->name = cmv__strdup(name);
	e->args = cmv__strdup(norm);
	cJSON_free(norm);
	if ((call_id && !e->call_id) || !e->name || !e->args) {
		free((char *)e->call_id);
		free((char *)e->name);
		free((char *)e->args);
		return cmv_error__oom();
	}
	if (node)
		e->call_node = *node;
	l->n++;
	size_t prev;
	if (cmv__strmap_get(&b->by_key, e->key, &prev, NULL)) {
		cmv_ledger_entry *p = &l->entries[prev - 1];
		p->state = CMV_CALL_SUPERSEDED;
		p->superseded_by = l->n - 1;
		e->duplicate = p->has_result && p->effect != CMV_EFFECT_NONE;
	}
	if ((error = cmv__strmap_put(&b->by_key, e->key, l->n, NULL)) < 0)
		return error;
	if (call_id && (error = cmv__strmap_put(&b->by_call, call_id, l->n, NULL)) < 0)
		return error;
	return 0;
}

static int count_covered_prompts(builder *b, cmv_repo *repo, const cmv_node *summary)
{
	for (size_t i = 0; i < summary->n_covers; i++) {
		cmv_node *c = NULL;
		bool p;
		int error = cmv_node_read(&c, repo, &summary->covers[i]);
		if (error < 0)
			return error;
		error = is_prompt(&p, repo, c, &b->scratch);
		cmv_node_free(c);
		if (error < 0)
			return error;
		b->l->turns += p;
	}
	return 0;
}

static int visit(builder *b, cmv_repo *repo, const cmv_node *n)
{
	int error;
	bool prompt;

	if (n->kind == CMV_KIND_SUMMARY) {
		size_t before = b->l->turns;
		if ((error = count_covered_prompts(b, repo, n)) < 0)
			return error;
		if (b->l->turns != before)
			turn_reset(b);
		return 0;
	}
	if (n->kind != CMV_KIND_MESSAGE)
		return 0;
	if ((error = is_prompt(&prompt, repo, n, &b->scratch)) < 0)
		return error;
	if (prompt) {
		b->l->turns++;
		turn_reset(b);
		return 0;
	}
	for (size_t i = 0; i < n->n_blocks; i++) {
		const cmv_block *k = &n->blocks[i];
		const char *t = k->type ? k->type : "";
		if (!strcmp(t, "tool_use")) {
			if ((error = cmv_blob_read(&b->scratch, repo, &k->blob)) < 0 ||
			    (error = add_call(b, k->tool_id, k->tool_name ? k->tool_name : "?", b->scratch.ptr,
					      b->scratch.size, &n->id)) < 0)
				return error;
		} else if (!strcmp(t, "tool_result") && k->tool_id) {
			size_t at;
			if (!cmv__strmap_get(&b->by_call, k->tool_id, &at, NULL))
				continue; /* a result whose call is not on this path */
			cmv_ledger_entry *e = &b->l->entries[at - 1];
			if (e->has_result)
				continue;
			if (k->flags & CMV_BLOCK_ERROR) {
				/* trim's stand-in answer (CMV_NO_RESULT_TEXT) is no result: the outcome is still unknown */
				int rerr = cmv_blob_read(&b->scratch, repo, &k->blob);
				if (rerr < 0 && rerr != CMV_ETOOBIG)
					return rerr;
				cmv_error_clear();
				if (rerr == 0 && b->scratch.size < 1024 && strstr(b->scratch.ptr, "[cmv: no result was recorded"))
					continue;
			}
			e->has_result = true;
			e->error = k->flags & CMV_BLOCK_ERROR;
			e->result_node = n->id;
			result_arrived(b, e);
		}
	}
	return 0;
}

static void ledger_count(cmv_ledger *l)
{
	for (size_t i = 0; i < l->n; i++) {
		cmv_ledger_entry *e = &l->entries[i];
		bool fx = e->effect != CMV_EFFECT_NONE;
		if (e->state != CMV_CALL_SUPERSEDED)
			e->state = e->has_result ? CMV_CALL_COMMITTED : CMV_CALL_IN_FLIGHT;
		l->committed += e->state == CMV_CALL_COMMITTED;
		l->in_flight += e->state == CMV_CALL_IN_FLIGHT;
		l->superseded += e->state == CMV_CALL_SUPERSEDED;
		l->duplicates += e->duplicate;
		l->side_effects += fx;
		l->in_flight_effects += fx && e->state == CMV_CALL_IN_FLIGHT;
		l->unclassified += e->effect == CMV_EFFECT_UNKNOWN;
	}
}

static void builder_dispose(builder *b)
{
	turn_reset(b);
	free(b->tc);
	cmv__strmap_dispose(&b->by_call);
	cmv__strmap_dispose(&b->by_key);
	classifier_dispose(&b->cls);
	cmv_buf_dispose(&b->scratch);
}

/* The walk, leaving the builder at the tip (cmv_ledger_check keys a call there). */
static int build(builder *b, cmv_repo *repo, const cmv_id *tip, const char *branch)
{
	cmv_walk *w = NULL;
	const cmv_node *n;
	int error;

	memset(b, 0, sizeof(*b));
	b->scratch = (cmv_buf)CMV_BUF_INIT(CMV_BUF_CONTENT);
	if (!(b->l = cmv__calloc(1, sizeof(*b->l))))
		return cmv_error__oom();
	if ((error = classifier_load(&b->cls, repo, branch)) < 0)
		return error;
	if (cmv_id_is_none(tip))
		return 0; /* an empty branch: an empty ledger */
	if ((error = cmv_walk_new(&w, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&n, w)) == 0)
		if ((error = visit(b, repo, n)) < 0)
			break;
	cmv_walk_free(w);
	if (error == CMV_ITEROVER) {
		cmv_error_clear();
		error = 0;
	}
	if (!error)
		ledger_count(b->l);
	return error;
}

int cmv_ledger_build(cmv_ledger **out, cmv_repo *repo, const cmv_id *tip, const char *branch)
{
	builder b;
	int error = build(&b, repo, tip, branch);

	*out = NULL;
	if (error < 0)
		cmv_ledger_free(b.l);
	else
		*out = b.l;
	builder_dispose(&b);
	return error;
}

void cmv_ledger_free(cmv_ledger *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free((char *)l->entries[i].call_id);
		free((char *)l->entries[i].name);
		free((char *)l->entries[i].args);
	}
	free(l->entries);
	free(l);
}

const char *cmv_call_state_name(cmv_call_state s)
{
	return s == CMV_CALL_COMMITTED ? "committed" : s == CMV_CALL_IN_FLIGHT ? "in_flight" : "superseded";
}

const char *cmv_effect_name(cmv_effect e)
{
	return e == CMV_EFFECT_NONE ? "none" : e == CMV_EFFECT_SIDE ? "side_effects" : "unknown";
}

int cmv_ledger_json(cmv_buf *out, const cmv_ledger *l)
{
	cJSON *root = cJSON_CreateObject(), *counts = cJSON_CreateObject(), *calls = cJSON_CreateArray();
	char hex[CMV_ID_HEXSZ + 1];
	int error = 0;

	if (!root || !counts || !calls) {
		cJSON_Delete(root);
		cJSON_Delete(counts);
		cJSON_Delete(calls);
		return cmv_error__oom();
	}
	cJSON_AddItemToObject(root, "counts", counts);
	cJSON_AddItemToObject(root, "calls", calls);
	cJSON_AddNumberToObject(root, "turns", (double)l->turns);
	cJSON_AddNumberToObject(counts, "calls", (double)l->n);
	cJSON_AddNumberToObject(counts, "committed", (double)l->committed);
	cJSON_AddNumberToObject(counts, "in_flight", (double)l->in_flight);
	cJSON_AddNumberToObject(counts, "superseded", (double)l->superseded);
	cJSON_AddNumberToObject(counts, "duplicates", (double)l->duplicates);
	cJSON_AddNumberToObject(counts, "side_effects", (double)l->side_effects);
	cJSON_AddNumberToObject(counts, "in_flight_side_effects", (double)l->in_flight_effects);
	cJSON_AddNumberToObject(counts, "unclassified", (double)l->unclassified);
	for (size_t i = 0; i < l->n && !error; i++) {
		const cmv_ledger_entry *e = &l->entries[i];
		cJSON *c = cJSON_CreateObject();
		if (!c || !cJSON_AddItemToArray(calls, c)) {
			cJSON_Delete(c);
			error = cmv_error__oom();
			break;
		}
		if (e->call_id)
			cJSON_AddStringToObject(c, "call_id", e->call_id);
		else
			cJSON_AddNullToObject(c, "call_id");
		cJSON_AddStringToObject(c, "name", e->name);
		cJSON_AddStringToObject(c, "args_hash", e->args_hash);
		cJSON_AddStringToObject(c, "key", e->key);
		cJSON_AddStringToObject(c, "state", cmv_call_state_name(e->state));
		if (e->has_result)
			cJSON_AddStringToObject(c, "result", e->error ? "error" : "ok");
		else
			cJSON_AddNullToObject(c, "result");
		cJSON_AddStringToObject(c, "effect", cmv_effect_name(e->effect));
		cJSON_AddStringToObject(c, "effect_source", e->effect_source);
		cJSON_AddNumberToObject(c, "turn", (double)e->turn);
		cJSON_AddNumberToObject(c, "occurrence", e->occurrence);
		cJSON_AddStringToObject(c, "call_node", cmv_id_tostr(hex, sizeof(hex), &e->call_node));
		if (e->has_result)
			cJSON_AddStringToObject(c, "result_node", cmv_id_tostr(hex, sizeof(hex), &e->result_node));
		else
			cJSON_AddNullToObject(c, "result_node");
		if (e->state == CMV_CALL_SUPERSEDED)
			cJSON_AddNumberToObject(c, "superseded_by", (double)e->superseded_by);
		cJSON_AddBoolToObject(c, "duplicate", e->duplicate);
		char shown[ARGS_SHOWN + 4];
		cut_utf8(shown, e->args, ARGS_SHOWN);
		cJSON_AddStringToObject(c, "args", shown);
	}
	char *text = error ? NULL : cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (error)
		return error;
	if (!text)
		return cmv_error__oom();
	cmv_buf_clear(out);
	error = cmv_buf_puts(out, text);
	cJSON_free(text);
	return error;
}

int cmv_ledger_in_flight_text(cmv_buf *out, const cmv_ledger *l, size_t max)
{
	size_t shown = 0, more = 0;
	int error = 0;

	cmv_buf_clear(out);
	for (size_t i = 0; i < l->n && !error; i++) {
		const cmv_ledger_entry *e = &l->entries[i];
		if (e->state != CMV_CALL_IN_FLIGHT || e->effect == CMV_EFFECT_NONE)
			continue;
		if (shown == max) {
			more++;
			continue;
		}
		shown++;
		char args[124];
		cut_utf8(args, e->args, 120);
		error = cmv_buf_printf(out, "%s%s (call %s, key %.8s%s): %s", out->size ? "\n" : "", e->name,
				       e->call_id ? e->call_id : "?", e->key,
				       e->effect == CMV_EFFECT_UNKNOWN ? ", unclassified" : "", args);
	}
	if (!error && more)
		error = cmv_buf_printf(out, "\n... and %zu more", more);
	return error;
}

int cmv_ledger_check(cmv_ledger_check_result *out, cmv_repo *repo, const cmv_id *tip, const char *branch,
		     const char *name, const char *args, size_t len)
{
	builder b;
	char *norm = NULL;
	unsigned int occ;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = build(&b, repo, tip, branch)) < 0)
		goto done;
	if ((error = normalize_args(&norm, name, args ? args : "", args ? len : 0)) < 0)
		goto done;
	hash_hex(out->args_hash, norm, strlen(norm));
	const char *src;
	out->effect = classify(&b.cls, name, &src);
	/* keyed as the next call at the tip; a call already at the tip gets its own key, as the re-issue rule says */
	if ((error = occurrence_of(&occ, &b, name, out->args_hash)) < 0 ||
	    (error = make_key(out->key, name, norm, b.l->turns, occ)) < 0)
		goto done;
	for (size_t i = b.l->n; i-- > 0;) {
		const cmv_ledger_entry *e = &b.l->entries[i];
		if (strcmp(e->key, out->key) || !e->has_result)
			continue;
		out->committed = true;
		out->call_node = e->call_node;
		out->result_node = e->result_node;
		out->error = e->error;
		break;
	}
done:
	cJSON_free(norm);
	cmv_ledger_free(b.l);
	builder_dispose(&b);
	return error;
}

int cmv_ledger_prompts(cmv_id **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_buf scratch = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_id *ids = NULL;
	size_t cnt = 0, cap = 0;
	int error;

	*out = NULL;
	*n_out = 0;
	if (cmv_id_is_none(tip))
		return 0;
	if ((error = cmv_walk_new(&w, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&n, w)) == 0) {
		bool p;
		if ((error = is_prompt(&p, repo, n, &scratch)) < 0)
			break;
		if (!p)
			continue;
		if ((error = cmv__array_grow((void **)&ids, &cap, cnt, sizeof(*ids))) < 0)
			break;
		ids[cnt++] = n->id;
	}
	cmv_walk_free(w);
	cmv_buf_dispose(&scratch);
	if (error == CMV_ITEROVER) {
		cmv_error_clear();
		error = 0;
	}
	if (error < 0) {
		free(ids);
		return error;
	}
	*out = ids;
	*n_out = cnt;
	return 0;
}
