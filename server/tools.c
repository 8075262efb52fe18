/* SPDX-License-Identifier: MIT */
/*
 * The tools and resources: search, timeline, get, recall, handoff, fit,
 * snapshot, branch; branches and their handoff documents as resources.
 *
 * Every answer is a JSON text counted in the server's model tokens and
 * held to the caller's budget: a list stops at the item that would not
 * fit (and says how many were left), one long text is cut at a token
 * boundary and says where to go on. A bad argument is the caller's
 * mistake (JSON-RPC -32602); a store answer such as "no such id" is a
 * tool result with isError, so a model can correct itself.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/base.h"
#include "mcp_priv.h"

/* ---- schemas ------------------------------------------------------------------------ */

#define BUDGET_PROP "\"budget_tokens\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":20000,\"description\":\"most tokens the answer may take (default 4096)\"}"
#define BRANCH_PROP "\"branch\":{\"type\":\"string\",\"description\":\"the branch (default: the live session the hook imports, else the current branch)\"}"

static const struct {
	const char *name, *title, *desc, *schema;
	bool read_only;
} tools[] = {
	{ "search", "Search history",
	  "Find the turns of this agent's history that answer a question, best first, as a compact index: id, turn, "
	  "time, the tokens fetching it costs, and a snippet. Then call get or recall with the ids worth reading.",
	  "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\",\"description\":\"what to look for, in "
	  "words\"}," BUDGET_PROP "," BRANCH_PROP ",\"session\":{\"type\":\"string\",\"description\":\"an imported "
	  "session (its id, or cc/ID, codex/ID) instead of a branch\"},\"since\":{\"type\":\"string\",\"description\":"
	  "\"only turns at or after this time (RFC 3339, e.g. 2026-11-30T00:00:00Z)\"}},\"required\":[\"query\"],"
	  "\"additionalProperties\":false}",
	  true },
	{ "timeline", "Neighbours of a hit",
	  "The turns around a search hit (or a record id): `before` turns before it, its own, and `after` after it.",
	  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"before\":{\"type\":\"integer\",\"minimum\":0,"
	  "\"maximum\":50},\"after\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":50}," BUDGET_PROP "," BRANCH_PROP
	  "},\"required\":[\"id\"],\"additionalProperties\":false}",
	  true },
	{ "get", "Get pages",
	  "The pages themselves, by the ids search or a stub shows, in the order given, within the budget.",
	  "{\"type\":\"object\",\"properties\":{\"ids\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,"
	  "\"maxItems\":100}," BUDGET_PROP "},\"required\":[\"ids\"],\"additionalProperties\":false}",
	  true },
	{ "recall", "Recall a page",
	  "Bring back what a stub such as \"[2199 chars, 49 lines; recall cd29840]\" replaced, exactly. A page longer "
	  "than the budget comes in parts: the answer says the offset to ask for next.",
	  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"description\":\"the id after 'recall' "
	  "(7 or more hex digits)\"},\"offset\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"bytes to skip "
	  "(from the previous part)\"}," BUDGET_PROP "},\"required\":[\"id\"],\"additionalProperties\":false}",
	  true },
	{ "handoff", "Handoff document",
	  "The branch's handoff document for a model: what a fresh session needs, in fixed sections, within the budget.",
	  "{\"type\":\"object\",\"properties\":{\"for_model\":{\"type\":\"string\"}," BUDGET_PROP "," BRANCH_PROP
	  "},\"required\":[\"for_model\"],\"additionalProperties\":false}",
	  true },
	{ "fit", "Which models fit",
	  "For each model: whether the branch fits its window, the tokens it would be sent, and what would be paged out.",
	  "{\"type\":\"object\",\"properties\":{\"models\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"
	  "\"minItems\":1,\"maxItems\":16}," BRANCH_PROP "},\"required\":[\"models\"],\"additionalProperties\":false}",
	  true },
	{ "snapshot", "Snapshot",
	  "Keep the branch's current state under a name (immutable).",
	  "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}," BRANCH_PROP
	  "},\"required\":[\"name\"],\"additionalProperties\":false}",
	  false },
	{ "branch", "Branch",
	  "Make a new branch from a branch, snapshot or id (default: the current branch).",
	  "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"from\":{\"type\":\"string\"}},"
	  "\"required\":[\"name\"],\"additionalProperties\":false}",
	  false },
};
#define N_TOOLS (sizeof(tools) / sizeof(tools[0]))

cJSON *mcp_tools_list(void)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; i < N_TOOLS; i++) {
		cJSON *t = cJSON_CreateObject(), *ann;
		cJSON_AddStringToObject(t, "name", tools[i].name);
		cJSON_AddStringToObject(t, "title", tools[i].title);
		cJSON_AddStringToObject(t, "description", tools[i].desc);
		cJSON_AddItemToObject(t, "inputSchema", cJSON_Parse(tools[i].schema));
		ann = cJSON_AddObjectToObject(t, "annotations");
		cJSON_AddBoolToObject(ann, "readOnlyHint", tools[i].read_only);
		cJSON_AddBoolToObject(ann, "destructiveHint", false);
		cJSON_AddBoolToObject(ann, "openWorldHint", false);
		cJSON_AddItemToArray(arr, t);
	}
	return arr;
}

/* ---- arguments ---------------------------------------------------------------------- */

typedef struct {
	const cJSON *args;
	char err[256];
} targs;

static bool bad(targs *a, const char *why, const char *name)
{
	snprintf(a->err, sizeof(a->err), "%s '%s'%s", why, name,
		 !strcmp(why, "argument") ? " must be a non-empty string (at most 4096 bytes)" : "");
	return false;
}

static bool arg_str(targs *a, const char *name, bool required, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->args, name);
	*out = NULL;
	if (!v)
		return required ? bad(a, "missing argument", name) : true;
	if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 4096)
		return bad(a, "argument", name);
	*out = v->valuestring;
	return true;
}

static bool arg_uint(targs *a, const char *name, uint64_t dflt, uint64_t min, uint64_t max, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->args, name);
	*out = dflt;
	if (!v)
		return true;
	/* the range first: a negative or huge number cast to an integer is undefined */
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)min && v->valuedouble <= (double)max) ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble) {
		snprintf(a->err, sizeof(a->err), "argument '%s' must be a whole number from %llu to %llu", name,
			 (unsigned long long)min, (unsigned long long)max);
		return false;
	}
	*out = (uint64_t)v->valuedouble;
	return true;
}

/* A list of strings (or one string, or a comma list: what a model may well send). */
static bool arg_list(targs *a, const char *name, size_t max, const char ***out, size_t *n, cJSON **hold)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->args, name);
	*out = NULL;
	*n = 0;
	*hold = NULL;
	if (!v)
		return bad(a, "missing argument", name);
	if (cJSON_IsString(v)) {
		cJSON *arr = cJSON_CreateArray();
		char *dup = strdup(v->valuestring), *save = NULL;
		for (char *t = dup ? strtok_r(dup, ", ", &save) : NULL; t; t = strtok_r(NULL, ", ", &save))
			cJSON_AddItemToArray(arr, cJSON_CreateString(t));
		free(dup);
		v = *hold = arr;
	}
	if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v) || (size_t)cJSON_GetArraySize(v) > max) {
		snprintf(a->err, sizeof(a->err), "argument '%s' must be a list of 1 to %zu strings", name, max);
		return false;
	}
	*out = calloc((size_t)cJSON_GetArraySize(v), sizeof(char *));
	for (const cJSON *e = v->child; e; e = e->next) {
		if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) > 256) {
			snprintf(a->err, sizeof(a->err), "argument '%s' must hold non-empty strings", name);
			return false;
		}
		(*out)[(*n)++] = e->valuestring;
	}
	return true;
}

/* Every argument given is one the schema names. */
static bool args_known(targs *a, const char *schema)
{
	for (const cJSON *e = a->args ? a->args->child : NULL; e; e = e->next) {
		char key[300];
		snprintf(key, sizeof(key), "\"%s\":{", e->string);
		if (strlen(e->string) > 64 || !strstr(schema, key))
			return bad(a, "unknown argument", e->string);
	}
	return true;
}

/* ---- counting and cutting ----------------------------------------------------------- */

static uint64_t count(mcp_server *s, const char *text, size_t len)
{
	size_t n = 0;
	if (cmv_model_count(&n, NULL, s->model, s->tok, text, len) < 0) {
		cmv_error_clear();
		return len; /* a byte is never less than a token */
	}
	return n;
}

/* The longest prefix of text (at a UTF-8 boundary) that counts at most max tokens. */
static size_t fit_prefix(mcp_server *s, const char *text, size_t len, uint64_t max)
{
	size_t lo = 0, hi = len;
	if (count(s, text, len) <= max)
		return len;
	while (hi - lo > 64) {
		size_t mid = lo + (hi - lo) / 2;
		while (mid > lo && ((unsigned char)text[mid] & 0xC0) == 0x80)
			mid--;
		if (mid == lo)
			break;
		if (count(s, text, mid) <= max)
			lo = mid;
		else
			hi = mid;
	}
	while (lo > 0 && ((unsigned char)text[lo] & 0xC0) == 0x80)
		lo--;
	return lo;
}

/* A tool's answer: the JSON as the text content, and as structuredContent. */
static cJSON *tool_result(cJSON *data, bool is_error)
{
	cJSON *r = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(r, "content"), *t = cJSON_CreateObject();
	char *text = cJSON_PrintUnformatted(data);
	cJSON_AddStringToObject(t, "type", "text");
	cJSON_AddStringToObject(t, "text", text ? text : "{}");
	cJSON_AddItemToArray(content, t);
	cJSON_free(text);
	if (is_error) {
		cJSON_AddBoolToObject(r, "isError", true);
		cJSON_Delete(data);
	} else {
		cJSON_AddItemToObject(r, "structuredContent", data);
	}
	return r;
}

static cJSON *tool_error(const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "error", msg);
	return tool_result(o, true);
}

/* Set when a tool's store call failed on a lock another process held past the busy timeout. */
static __thread bool tl_locked;

static cJSON *store_error(const char *doing)
{
	char msg[600];
	tl_locked = cmv_error_last() && cmv_error_last()->code == CMV_ELOCKED;
	snprintf(msg, sizeof(msg), "%s: %s", doing, cmv_error_last() ? cmv_error_last()->message : "failed");
	cmv_error_clear();
	return tool_error(msg);
}

/* Whether obj's JSON text fits budget tokens. */
static bool fits(mcp_server *s, const cJSON *obj, uint64_t budget)
{
	char *t = cJSON_PrintUnformatted(obj);
	bool ok = t && count(s, t, strlen(t)) <= budget;
	cJSON_free(t);
	return ok;
}

/* ---- branches ------------------------------------------------------------------------ */

/*
 * The branch a call means: `session` (an imported session's branch, named
 * after its id), else `branch`, else the live session the hook imported
 * last (a store note), else the current branch.
 */
static int which_branch(mcp_server *s, cmv_buf *name, cmv_id *tip, const char *branch, const char *session)
{
	int error;
	cmv_buf_clear(name);
	if (session) {
		const char *slash = strchr(session, '/');
		cmv_buf_puts(name, slash && (!strncmp(session, "cc/", 3) || !strncmp(session, "codex/", 6)) ? slash + 1 : session);
	} else if (branch) {
		cmv_buf_puts(name, branch);
	} else {
		cmv_buf live = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
		cmv_ref *r = NULL;
		if (cmv_store_note_get(&live, s->repo, "mcp.live") == 0 && live.size && cmv_ref_lookup(&r, s->repo, live.ptr) == 0 &&
		    r->type == CMV_REF_BRANCH)
			cmv_buf_puts(name, live.ptr);
		cmv_error_clear();
		cmv_ref_free(r);
		cmv_buf_dispose(&live);
		if (!name->size && (error = cmv_head_get(name, s->repo)) < 0)
			return error;
	}
	if ((error = cmv_resolve(tip, s->repo, name->ptr)) < 0)
		return error;
	if (cmv_id_is_none(tip))
		return cmv_error__set(CMV_ENOTFOUND, "branch '%s' is empty", name->ptr);
	return 0;
}

/* A record's time, as its source wrote it ("timestamp" in its meta), into out ("" if none). */
static void record_time(mcp_server *s, char *out, size_t cap, const char *node_hex)
{
	cmv_id id;
	cmv_node *n = NULL;
	out[0] = '\0';
	if (!node_hex[0] || cmv_id_fromstr(&id, node_hex) < 0 || cmv_node_read(&n, s->repo, &id) < 0) {
		cmv_error_clear();
		return;
	}
	const char *k = n->meta ? memmem(n->meta, n->meta_len, "\"timestamp\":\"", 13) : NULL;
	if (k) {
		const char *v = k + 13, *end = memchr(v, '"', n->meta_len - (size_t)(v - n->meta));
		if (end && (size_t)(end - v) < cap && end - v >= 10)
			snprintf(out, cap, "%.*s", (int)(end - v), v);
	}
	cmv_node_free(n);
}

/* A snippet of text around the first word of query it holds: one line, about max bytes. */
static void snippet(char *out, size_t max, const char *text, const char *query)
{
	size_t len = strlen(text), at = 0, o = 0;
	char word[64];
	for (const char *q = query; *q && !at;) {
		size_t n = 0;
		while (*q && !isalnum((unsigned char)*q))
			q++;
		while (*q && isalnum((unsigned char)*q) && n + 1 < sizeof(word))
			word[n++] = *q++;
		while (*q && isalnum((unsigned char)*q))
			q++;
		word[n] = '\0';
		if (n >= 4) {
			const char *hit = strcasestr(text, word);
			if (hit)
				at = (size_t)(hit - text);
		}
	}
	at = at > max / 3 ? at - max / 3 : 0;
	while (at > 0 && ((unsigned char)text[at] & 0xC0) == 0x80)
		at--;
	if (at && o + 3 < max) {
		memcpy(out, "...", 3);
		o = 3;
	}
	bool space = false;
	for (size_t i = at; i < len && o + 4 < max; i++) {
		unsigned char c = (unsigned char)text[i];
		if (isspace(c)) {
			space = o > 0;
			continue;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		out[o++] = (char)c;
	}
	while (o > 0 && ((unsigned char)out[o - 1] & 0x80)) { /* never end inside a character */
		size_t st = o - 1;
		while (st > 0 && ((unsigned char)out[st] & 0xC0) == 0x80)
			st--;
		unsigned char lead = (unsigned char)out[st];
		size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
		if (o - st == need)
			break;
		o = st;
	}
	out[o] = '\0';
}

static cJSON *hit_json(mcp_server *s, const cmv_query_hit *h, const char *branch, const char *query, bool with_text)
{
	cJSON *o = cJSON_CreateObject();
	char when[64], snip[320];
	record_time(s, when, sizeof(when), h->node);
	cJSON_AddStringToObject(o, "id", h->id);
	cJSON_AddStringToObject(o, "kind", h->kind == CMV_PAGE_BODY ? "body" : "turn");
	cJSON_AddStringToObject(o, "branch", branch);
	cJSON_AddNumberToObject(o, "turn", (double)h->turn);
	cJSON_AddNumberToObject(o, "of", (double)h->turns);
	if (when[0])
		cJSON_AddStringToObject(o, "when", when);
	cJSON_AddNumberToObject(o, "tokens", (double)h->tokens);
	if (with_text) {
		cJSON_AddStringToObject(o, "text", h->text ? h->text : "");
	} else {
		snippet(snip, sizeof(snip), h->text ? h->text : "", query ? query : "");
		cJSON_AddStringToObject(o, "snippet", snip);
	}
	return o;
}

/* ---- the tools ----------------------------------------------------------------------- */

static cJSON *do_search(mcp_server *s, targs *a, bool *bad_args)
{
	const char *query, *branch, *session, *since;
	uint64_t budget;
	cmv_buf name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
	cmv_id tip;
	cmv_query_hit *hits = NULL;
	size_t n = 0;
	cJSON *res;

	if (!arg_str(a, "query", true, &query) || !arg_uint(a, "budget_tokens", MCP_DEFAULT_BUDGET, 1, MCP_MAX_BUDGET, &budget) ||
	    !arg_str(a, "branch", false, &branch) || !arg_str(a, "session", false, &session) ||
	    !arg_str(a, "since", false, &since)) {
		*bad_args = true;
		return NULL;
	}
	if (since && (strlen(since) < 10 || !isdigit((unsigned char)since[0]) || since[4] != '-')) {
		*bad_args = true;
		snprintf(a->err, sizeof(a->err), "argument 'since' must be a time as 2026-11-30 or 2026-11-30T12:00:00Z");
		return NULL;
	}
	if (which_branch(s, &name, &tip, branch, session) < 0) {
		cmv_buf_dispose(&name);
		return store_error("search");
	}
	/*
	 * The pages considered: the pager's query path with an allowance of
	 * fetch costs well beyond what the index will show, so the index is
	 * the ranking's head whatever the pages' sizes.
	 */
	if (cmv_query_pages(&hits, &n, s->repo, &tip, name.ptr, s->model, s->tok, query, budget * 16) < 0) {
		cmv_buf_dispose(&name);
		return store_error("search");
	}
	res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "branch", name.ptr);
	cJSON *arr = cJSON_AddArrayToObject(res, "hits");
	size_t shown = 0, passed = 0;
	for (size_t i = 0; i < n; i++) {
		cJSON *h = hit_json(s, &hits[i], name.ptr, query, false);
		const char *when = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "when"));
		if (since && when && strncmp(when, since, strlen(since) < strlen(when) ? strlen(since) : strlen(when)) < 0) {
			cJSON_Delete(h);
			passed++;
			continue;
		}
		cJSON_AddItemToArray(arr, h);
		if (!fits(s, res, budget)) {
			cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
			break;
		}
		shown++;
	}
	cJSON_AddNumberToObject(res, "more", (double)(n - shown - passed));
	cmv_query_hits_free(hits, n);
	cmv_buf_dispose(&name);
	return tool_result(res, false);
}

/* Add texts to arr while res fits budget; the first that does not is cut to what is left. */
static void add_texts(mcp_server *s, cJSON *res, cJSON *arr, cJSON *item, const char *field, uint64_t budget, bool *full)
{
	if (*full) {
		cJSON_Delete(item);
		return;
	}
	cJSON_AddItemToArray(arr, item);
	if (fits(s, res, budget))
		return;
	/* cut this one's text to what is left (JSON escaping makes it cost more than its tokens: aim under) */
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, field));
	size_t len = text ? strlen(text) : 0;
	char *copy = text ? strndup(text, len) : NULL;
	uint64_t room = budget;
	*full = true;
	for (int tries = 0; copy && tries < 8; tries++) {
		cJSON_DeleteItemFromObject(item, field);
		char *t = cJSON_PrintUnformatted(res);
		uint64_t used = t ? count(s, t, strlen(t)) : budget;
		cJSON_free(t);
		room = used + 40 < budget ? (budget - used - 40) * (8 - (uint64_t)tries) / 8 : 0;
		size_t keep = room ? fit_prefix(s, copy, len, room) : 0;
		char saved = copy[keep];
		copy[keep] = '\0';
		cJSON_AddStringToObject(item, field, copy);
		copy[keep] = saved;
		cJSON_DeleteItemFromObject(item, "cut_at");
		cJSON_AddNumberToObject(item, "cut_at", (double)keep);
		if (fits(s, res, budget)) {
			free(copy);
			return;
		}
	}
	free(copy);
	cJSON_DetachItemViaPointer(arr, item);
	cJSON_Delete(item);
}

static cJSON *do_timeline(mcp_server *s, targs *a, bool *bad_args)
{
	const char *id, *branch;
	uint64_t before, after, budget;
	cmv_buf name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
	cmv_id tip;
	cmv_query_hit *hits = NULL;
	size_t n = 0;
	if (!arg_str(a, "id", true, &id) || !arg_uint(a, "before", 2, 0, 50, &before) || !arg_uint(a, "after", 2, 0, 50, &after) ||
	    !arg_uint(a, "budget_tokens", MCP_DEFAULT_BUDGET, 1, MCP_MAX_BUDGET, &budget) || !arg_str(a, "branch", false, &branch)) {
		*bad_args = true;
		return NULL;
	}
	if (!cmv_id_is_prefix(id)) {
		*bad_args = true;
		snprintf(a->err, sizeof(a->err), "argument 'id' must be 7 or more hex digits");
		return NULL;
	}
	if (which_branch(s, &name, &tip, branch, NULL) < 0 ||
	    cmv_query_turns(&hits, &n, s->repo, &tip, s->model, s->tok, id, before, after) < 0) {
		cmv_buf_dispose(&name);
		return store_error("timeline");
	}
	cJSON *res = cJSON_CreateObject(), *arr;
	bool full = false;
	cJSON_AddStringToObject(res, "branch", name.ptr);
	arr = cJSON_AddArrayToObject(res, "turns");
	for (size_t i = 0; i < n; i++)
		add_texts(s, res, arr, hit_json(s, &hits[i], name.ptr, NULL, true), "text", budget, &full);
	cJSON_AddNumberToObject(res, "more", (double)(n - (size_t)cJSON_GetArraySize(arr)));
	cmv_query_hits_free(hits, n);
	cmv_buf_dispose(&name);
	return tool_result(res, false);
}

/* A page's text: a turn's messages (a JSON array) as "role: text" lines, anything else as it is. */
static char *page_text(const cmv_buf *blob)
{
	cJSON *j = blob->size && blob->ptr[0] == '[' ? cJSON_ParseWithLength(blob->ptr, blob->size) : NULL;
	cmv_buf out = CMV_BUF_INIT((size_t)1 << 30);
	bool msgs = cJSON_IsArray(j) && j->child;
	for (const cJSON *m = msgs ? j->child : NULL; m && msgs; m = m->next)
		msgs = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role"));
	if (!msgs) {
		cJSON_Delete(j);
		cmv_buf_dispose(&out);
		return strndup(blob->ptr ? blob->ptr : "", blob->size);
	}
	for (const cJSON *m = j->child; m; m = m->next) {
		const char *role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
		if (cJSON_IsString(c)) {
			cmv_buf_printf(&out, "%s: %s\n", role, c->valuestring);
			continue;
		}
		for (const cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next) {
			const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			const cJSON *text = cJSON_GetObjectItemCaseSensitive(b, "text");
			if (t && !strcmp(t, "text") && cJSON_IsString(text)) {
				cmv_buf_printf(&out, "%s: %s\n", role, text->valuestring);
			} else if (t && !strcmp(t, "tool_use")) {
				char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
				cmv_buf_printf(&out, "%s calls %s %s\n", role,
					       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name")), in ? in : "");
				cJSON_free(in);
			} else if (t && !strcmp(t, "tool_result")) {
				const cJSON *rc = cJSON_GetObjectItemCaseSensitive(b, "content");
				if (cJSON_IsString(rc)) {
					cmv_buf_printf(&out, "result: %s\n", rc->valuestring);
				} else {
					for (const cJSON *x = cJSON_IsArray(rc) ? rc->child : NULL; x; x = x->next)
						if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(x, "text")))
							cmv_buf_printf(&out, "result: %s\n",
								       cJSON_GetObjectItemCaseSensitive(x, "text")->valuestring);
				}
			}
		}
	}
	cJSON_Delete(j);
	return cmv_buf_detach(&out);
}

static cJSON *do_get(mcp_server *s, targs *a, bool *bad_args)
{
	const char **ids = NULL;
	size_t n = 0;
	uint64_t budget;
	cJSON *hold = NULL;
	if (!arg_list(a, "ids", 100, &ids, &n, &hold) ||
	    !arg_uint(a, "budget_tokens", MCP_DEFAULT_BUDGET, 1, MCP_MAX_BUDGET, &budget)) {
		free(ids);
		cJSON_Delete(hold);
		*bad_args = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (!cmv_id_is_prefix(ids[i])) {
			snprintf(a->err, sizeof(a->err), "'%.64s' is not an id (7 or more hex digits)", ids[i]);
			free(ids);
			cJSON_Delete(hold);
			*bad_args = true;
			return NULL;
		}
	cJSON *res = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(res, "pages");
	cJSON *missing = cJSON_AddArrayToObject(res, "not_found");
	bool full = false;
	size_t left = 0;
	for (size_t i = 0; i < n; i++) {
		cmv_buf blob = CMV_BUF_INIT((size_t)1 << 30);
		if (cmv_recall_runs(&blob, s->repo, ids[i]) < 0) {
			cJSON *m = cJSON_CreateObject();
			cJSON_AddStringToObject(m, "id", ids[i]);
			cJSON_AddStringToObject(m, "why", cmv_error_last() ? cmv_error_last()->message : "not found");
			cmv_error_clear();
			cJSON_AddItemToArray(missing, m);
		} else if (full) {
			left++;
		} else {
			char *text = page_text(&blob);
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "id", ids[i]);
			cJSON_AddNumberToObject(p, "bytes", (double)blob.size);
			cJSON_AddStringToObject(p, "text", text ? text : "");
			free(text);
			add_texts(s, res, arr, p, "text", budget, &full);
		}
		cmv_buf_dispose(&blob);
	}
	cJSON_AddNumberToObject(res, "left_out", (double)left);
	free(ids);
	cJSON_Delete(hold);
	return tool_result(res, false);
}

static cJSON *do_recall(mcp_server *s, targs *a, bool *bad_args)
{
	const char *id;
	uint64_t offset, budget;
	if (!arg_str(a, "id", true, &id) || !arg_uint(a, "offset", 0, 0, (uint64_t)1 << 40, &offset) ||
	    !arg_uint(a, "budget_tokens", MCP_MAX_BUDGET, 1, MCP_MAX_BUDGET, &budget)) {
		*bad_args = true;
		return NULL;
	}
	if (!cmv_id_is_prefix(id)) {
		*bad_args = true;
		snprintf(a->err, sizeof(a->err), "argument 'id' must be the 7 or more hex digits a stub shows");
		return NULL;
	}
	cmv_buf blob = CMV_BUF_INIT((size_t)1 << 30);
	if (cmv_recall_runs(&blob, s->repo, id) < 0) {
		cmv_buf_dispose(&blob);
		return store_error("recall");
	}
	if (offset > blob.size)
		offset = blob.size;
	while (offset < blob.size && offset > 0 && ((unsigned char)blob.ptr[offset] & 0xC0) == 0x80)
		offset--;
	/*
	 * The page itself is the text content, byte for byte (what the stub
	 * replaced, for the model to read); a part says where the next begins.
	 */
	size_t len = blob.size - offset, keep = fit_prefix(s, blob.ptr + offset, len, budget > 64 ? budget - 64 : budget);
	cJSON *r = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(r, "content"), *t = cJSON_CreateObject();
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 30);
	cmv_buf_put(&text, blob.ptr + offset, keep);
	if (keep < len)
		cmv_buf_printf(&text, "\n[cmv: %zu more bytes; recall with id %s and offset %llu for the rest]", len - keep,
			       id, (unsigned long long)(offset + keep));
	cJSON_AddStringToObject(t, "type", "text");
	cJSON_AddStringToObject(t, "text", text.ptr ? text.ptr : "");
	cJSON_AddItemToArray(content, t);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&blob);
	return r;
}

static cJSON *do_handoff(mcp_server *s, targs *a, bool *bad_args)
{
	const char *for_model, *branch;
	uint64_t budget;
	const cmv_model *m;
	cmv_tok *tok = NULL;
	cmv_buf name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1), doc = CMV_BUF_INIT((size_t)1 << 26);
	cmv_id tip;
	cJSON *res = NULL;
	if (!arg_str(a, "for_model", true, &for_model) ||
	    !arg_uint(a, "budget_tokens", MCP_DEFAULT_BUDGET, 256, MCP_MAX_BUDGET, &budget) || !arg_str(a, "branch", false, &branch)) {
		*bad_args = true;
		return NULL;
	}
	if (cmv_models_resolve(&m, s->models, for_model) < 0) {
		res = store_error("handoff");
	} else if (cmv_tok_load(&tok, m->tokenizer, NULL) < 0 || which_branch(s, &name, &tip, branch, NULL) < 0) {
		res = store_error("handoff");
	} else {
		cmv_handoff_options o = CMV_HANDOFF_OPTIONS_INIT;
		cmv_handoff_stats st;
		o.model = m;
		o.tok = tok;
		/* the document in for_model's tokens, and the answer in ours: the smaller of the two */
		o.max_tokens = budget > 200 ? budget - 200 : budget;
		if (cmv_handoff(&doc, &st, s->repo, &tip, &o) < 0) {
			res = store_error("handoff");
		} else {
			cJSON *d = cJSON_CreateObject(), *arr = cJSON_CreateArray();
			bool full = false;
			cJSON_AddStringToObject(d, "branch", name.ptr);
			cJSON_AddStringToObject(d, "for_model", m->id);
			cJSON_AddNumberToObject(d, "tokens", (double)st.tokens);
			cJSON *item = cJSON_CreateObject();
			cJSON_AddStringToObject(item, "document", doc.ptr ? doc.ptr : "");
			cJSON_AddItemToObject(d, "parts", arr);
			add_texts(s, d, arr, item, "document", budget, &full);
			res = tool_result(d, false);
		}
	}
	cmv_tok_free(tok);
	cmv_buf_dispose(&name);
	cmv_buf_dispose(&doc);
	return res;
}

static cJSON *do_fit(mcp_server *s, targs *a, bool *bad_args)
{
	const char **names = NULL, *branch;
	size_t n = 0;
	cJSON *hold = NULL, *res = NULL;
	cmv_buf name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
	cmv_id tip;
	if (!arg_list(a, "models", 16, &names, &n, &hold) || !arg_str(a, "branch", false, &branch)) {
		free(names);
		cJSON_Delete(hold);
		*bad_args = true;
		return NULL;
	}
	if (which_branch(s, &name, &tip, branch, NULL) < 0) {
		res = store_error("fit");
		n = 0;
	}
	cJSON *d = res ? NULL : cJSON_CreateObject(), *arr = d ? cJSON_AddArrayToObject(d, "models") : NULL;
	if (d)
		cJSON_AddStringToObject(d, "branch", name.ptr);
	for (size_t i = 0; i < n && !res; i++) {
		const cmv_model *m;
		cmv_tok *tok = NULL;
		cmv_buf out = CMV_BUF_INIT((size_t)1 << 30);
		cmv_materialize_report rep;
		cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
		memset(&rep, 0, sizeof(rep));
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "model", names[i]);
		if (cmv_models_resolve(&m, s->models, names[i]) < 0 || cmv_tok_load(&tok, m->tokenizer, NULL) < 0) {
			cJSON_AddStringToObject(j, "error", cmv_error_last() ? cmv_error_last()->message : "unknown model");
			cmv_error_clear();
		} else {
			int e = cmv_materialize(&out, &rep, s->repo, &tip, m, tok, &po);
			cJSON_ReplaceItemInObject(j, "model", cJSON_CreateString(m->id));
			if (e == CMV_EBUDGET) {
				cJSON_AddBoolToObject(j, "fits", false);
				cJSON_AddNumberToObject(j, "budget", (double)cmv_model_input_budget(m));
				cJSON_AddStringToObject(j, "why", cmv_error_last() ? cmv_error_last()->message : "");
				cmv_error_clear();
			} else if (e < 0) {
				cJSON_AddStringToObject(j, "error", cmv_error_last() ? cmv_error_last()->message : "failed");
				cmv_error_clear();
			} else {
				size_t turns_out = 0;
				cJSON *gone = cJSON_CreateArray();
				for (size_t q = 0; q < rep.n_pages; q++) {
					if (rep.pages[q].state == CMV_PAGE_RESIDENT)
						continue;
					turns_out += rep.pages[q].kind == CMV_PAGE_GROUP;
					if (cJSON_GetArraySize(gone) < 20)
						cJSON_AddItemToArray(gone, cJSON_CreateString(rep.pages[q].id));
				}
				cJSON_AddBoolToObject(j, "fits", !rep.stubbed && !rep.evicted);
				cJSON_AddNumberToObject(j, "budget", (double)rep.budget);
				cJSON_AddNumberToObject(j, "branch_tokens", (double)rep.tokens_full);
				cJSON_AddNumberToObject(j, "sent_tokens", (double)rep.tokens);
				cJSON_AddNumberToObject(j, "bodies_stubbed", (double)rep.stubbed);
				cJSON_AddNumberToObject(j, "turns_left_out", (double)turns_out);
				cJSON_AddNumberToObject(j, "turns", (double)rep.turns);
				cJSON_AddItemToObject(j, "paged_out_first", gone);
			}
		}
		cJSON_AddItemToArray(arr, j);
		cmv_materialize_report_dispose(&rep);
		cmv_buf_dispose(&out);
		cmv_tok_free(tok);
	}
	free(names);
	cJSON_Delete(hold);
	cmv_buf_dispose(&name);
	return res ? res : tool_result(d, false);
}

static cJSON *do_snapshot(mcp_server *s, targs *a, bool *bad_args)
{
	const char *snap, *branch;
	cmv_buf name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
	cmv_id tip;
	char hex[CMV_ID_HEXSZ + 1];
	cJSON *res;
	if (!arg_str(a, "name", true, &snap) || !arg_str(a, "branch", false, &branch)) {
		*bad_args = true;
		return NULL;
	}
	if (!cmv_ref_name_is_valid(snap)) {
		*bad_args = true;
		snprintf(a->err, sizeof(a->err), "'%.64s' is not a valid ref name", snap);
		return NULL;
	}
	if (which_branch(s, &name, &tip, branch, NULL) < 0 || cmv_snapshot_create(s->repo, snap, &tip, name.ptr, NULL) < 0) {
		res = store_error("snapshot");
	} else {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "snapshot", snap);
		cJSON_AddStringToObject(d, "of", name.ptr);
		cJSON_AddStringToObject(d, "at", cmv_id_tostr(hex, sizeof(hex), &tip));
		res = tool_result(d, false);
	}
	cmv_buf_dispose(&name);
	return res;
}

static cJSON *do_branch(mcp_server *s, targs *a, bool *bad_args)
{
	const char *nb, *from;
	cmv_buf name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
	cmv_id at;
	char hex[CMV_ID_HEXSZ + 1];
	cJSON *res;
	if (!arg_str(a, "name", true, &nb) || !arg_str(a, "from", false, &from)) {
		*bad_args = true;
		return NULL;
	}
	if (!cmv_ref_name_is_valid(nb)) {
		*bad_args = true;
		snprintf(a->err, sizeof(a->err), "'%.64s' is not a valid branch name", nb);
		return NULL;
	}
	int e = from ? (cmv_buf_puts(&name, from), cmv_resolve(&at, s->repo, from)) : which_branch(s, &name, &at, NULL, NULL);
	if (e < 0 || cmv_branch_create(s->repo, nb, &at, name.ptr) < 0) {
		res = store_error("branch");
	} else {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "branch", nb);
		cJSON_AddStringToObject(d, "from", name.ptr);
		cJSON_AddStringToObject(d, "at", cmv_id_tostr(hex, sizeof(hex), &at));
		res = tool_result(d, false);
	}
	cmv_buf_dispose(&name);
	return res;
}

typedef cJSON *(*tool_fn)(mcp_server *s, targs *a, bool *bad_args);
static const tool_fn tool_fns[N_TOOLS] = { do_search, do_timeline, do_get, do_recall, do_handoff, do_fit, do_snapshot, do_branch };

/*
 * Run a call with the store to ourselves. A lock another process held past
 * the busy timeout (a long import) is waited out again, a few times: a
 * client sees a slow answer, never a lock error.
 */
int mcp_tools_call(mcp_server *s, cmv_buf *out, const cJSON *id, const cJSON *params)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "name"));
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
	targs a = { args, "" };
	size_t k = 0;
	bool bad_args = false;
	cJSON *res = NULL;

	if (!name)
		return mcp_error(out, id, MCP_INVALID_PARAMS, "tools/call needs params.name");
	while (k < N_TOOLS && strcmp(tools[k].name, name))
		k++;
	if (k == N_TOOLS)
		return mcp_error(out, id, MCP_INVALID_PARAMS, "unknown tool '%.64s'", name);
	if (args && !cJSON_IsObject(args))
		return mcp_error(out, id, MCP_INVALID_PARAMS, "arguments must be an object");
	if (!args_known(&a, tools[k].schema))
		return mcp_error(out, id, MCP_INVALID_PARAMS, "%s: %s", name, a.err);
	pthread_mutex_lock(&s->lock);
	for (int attempt = 0; attempt < 20; attempt++) {
		cmv_error_clear();
		tl_locked = false;
		res = tool_fns[k](s, &a, &bad_args);
		if (!tl_locked)
			break;
		cJSON_Delete(res);
		res = NULL;
		usleep(50000);
	}
	pthread_mutex_unlock(&s->lock);
	if (bad_args)
		return mcp_error(out, id, MCP_INVALID_PARAMS, "%s: %s", name, a.err);
	if (!res)
		return mcp_error(out, id, MCP_INTERNAL_ERROR, "%s: the store stayed busy; try again", name);
	return mcp_reply_result(out, id, res);
}

/* ---- resources ------------------------------------------------------------------------ */

typedef struct {
	cJSON *arr;
	size_t n;
} ref_list;

static int list_ref(const cmv_ref *r, void *payload)
{
	ref_list *l = payload;
	char uri[300], title[300];
	if (r->type != CMV_REF_BRANCH || cmv_id_is_none(&r->target) || l->n >= 1000)
		return 0;
	for (int k = 0; k < 2; k++) {
		cJSON *o = cJSON_CreateObject();
		snprintf(uri, sizeof(uri), "cmv://%s/%s", k ? "handoff" : "branch", r->name);
		snprintf(title, sizeof(title), k ? "handoff document of %s" : "branch %s", r->name);
		cJSON_AddStringToObject(o, "uri", uri);
		cJSON_AddStringToObject(o, "name", k ? title : r->name);
		cJSON_AddStringToObject(o, "title", title);
		cJSON_AddStringToObject(o, "mimeType", k ? "text/markdown" : "application/json");
		cJSON_AddItemToArray(l->arr, o);
	}
	l->n++;
	return 0;
}

int mcp_resources(mcp_server *s, cmv_buf *out, const cJSON *id, const char *method, const cJSON *params)
{
	cJSON *r = cJSON_CreateObject();
	int error = 0;
	if (!strcmp(method, "resources/templates/list")) {
		cJSON *arr = cJSON_AddArrayToObject(r, "resourceTemplates"), *t;
		t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "uriTemplate", "cmv://branch/{name}");
		cJSON_AddStringToObject(t, "name", "branch");
		cJSON_AddStringToObject(t, "mimeType", "application/json");
		cJSON_AddItemToArray(arr, t);
		t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "uriTemplate", "cmv://handoff/{name}");
		cJSON_AddStringToObject(t, "name", "handoff");
		cJSON_AddStringToObject(t, "mimeType", "text/markdown");
		cJSON_AddItemToArray(arr, t);
		return mcp_reply_result(out, id, r);
	}
	if (!strcmp(method, "resources/list")) {
		ref_list l = { cJSON_AddArrayToObject(r, "resources"), 0 };
		pthread_mutex_lock(&s->lock);
		error = cmv_ref_foreach(s->repo, list_ref, &l);
		pthread_mutex_unlock(&s->lock);
		if (error < 0) {
			cJSON_Delete(r);
			error = mcp_error(out, id, MCP_INTERNAL_ERROR, "listing branches: %s",
					  cmv_error_last() ? cmv_error_last()->message : "failed");
			cmv_error_clear();
			return error;
		}
		return mcp_reply_result(out, id, r);
	}
	/* resources/read */
	const char *uri = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "uri"));
	const char *branch = NULL;
	bool handoff = false;
	if (uri && !strncmp(uri, "cmv://branch/", 13))
		branch = uri + 13;
	else if (uri && !strncmp(uri, "cmv://handoff/", 14))
		branch = uri + 14, handoff = true;
	if (!branch || !cmv_ref_name_is_valid(branch)) {
		cJSON_Delete(r);
		return mcp_error(out, id, MCP_INVALID_PARAMS, "resources/read needs a uri cmv://branch/NAME or cmv://handoff/NAME");
	}
	cmv_id tip;
	cmv_ref *ref = NULL;
	cmv_buf doc = CMV_BUF_INIT((size_t)1 << 26);
	char hex[CMV_ID_HEXSZ + 1];
	pthread_mutex_lock(&s->lock);
	if (cmv_ref_lookup(&ref, s->repo, branch) < 0 || ref->type != CMV_REF_BRANCH || cmv_id_is_none(&ref->target)) {
		cmv_error_clear();
		pthread_mutex_unlock(&s->lock);
		cmv_ref_free(ref);
		cJSON_Delete(r);
		cmv_buf_dispose(&doc);
		/* MCP's code for a resource that is not there */
		return mcp_error(out, id, -32002, "no branch '%.255s'", branch);
	}
	tip = ref->target;
	if (handoff) {
		cmv_handoff_options o = CMV_HANDOFF_OPTIONS_INIT;
		cmv_handoff_stats st;
		o.model = s->model;
		o.tok = s->tok;
		o.max_tokens = MCP_DEFAULT_BUDGET;
		error = cmv_handoff(&doc, &st, s->repo, &tip, &o);
	} else {
		cJSON *d = cJSON_CreateObject();
		cmv_walk *w = NULL;
		cJSON_AddStringToObject(d, "branch", branch);
		cJSON_AddStringToObject(d, "tip", cmv_id_tostr(hex, sizeof(hex), &tip));
		if (ref->from_ref)
			cJSON_AddStringToObject(d, "made_from", ref->from_ref);
		if (cmv_walk_new(&w, s->repo, &tip) == 0)
			cJSON_AddNumberToObject(d, "records", (double)cmv_walk_length(w));
		cmv_walk_free(w);
		cJSON_AddNumberToObject(d, "updated", (double)ref->updated);
		char *t = cJSON_PrintUnformatted(d);
		cmv_buf_puts(&doc, t ? t : "{}");
		cJSON_free(t);
		cJSON_Delete(d);
	}
	pthread_mutex_unlock(&s->lock);
	cmv_ref_free(ref);
	if (error < 0) {
		cJSON_Delete(r);
		cmv_buf_dispose(&doc);
		error = mcp_error(out, id, MCP_INTERNAL_ERROR, "%s", cmv_error_last() ? cmv_error_last()->message : "failed");
		cmv_error_clear();
		return error;
	}
	cJSON *arr = cJSON_AddArrayToObject(r, "contents"), *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "uri", uri);
	cJSON_AddStringToObject(c, "mimeType", handoff ? "text/markdown" : "application/json");
	cJSON_AddStringToObject(c, "text", doc.ptr ? doc.ptr : "");
	cJSON_AddItemToArray(arr, c);
	cmv_buf_dispose(&doc);
	return mcp_reply_result(out, id, r);
}
