/* SPDX-License-Identifier: MIT */
/*
 * One client request through the proxy: its session, its new messages
 * appended, the upstream body built from the pager's window, and the
 * upstream's reply appended (with the recall tool's faults answered).
 *
 * A session's branch keeps a note ("proxy") that says how the client's
 * messages map onto the branch: one entry per appended batch (how many
 * client items, a digest of them, the node it ended at), one per reply
 * (matched against whatever assistant items the client sends back in its
 * place), one per exchange the client never saw (the recall tool's calls
 * and answers, skipped when matching). A resent history is matched entry
 * by entry and costs nothing; only what follows the match is appended.
 * Digests leave out "cache_control" members: clients move their cache
 * marker from message to message, and the message is the same.
 *
 * Invariants:
 *  1. The upstream body is the client's body with its messages (Responses:
 *     input) replaced by the pager's window and its tool definitions paged;
 *     every other member passes through as the client wrote it.
 *  2. What the tools, the system prompt and the recall tool count is held
 *     back from the budget before the pager pages the messages to it, so
 *     the whole request keeps the budget (the count of raw JSON text is an
 *     over-count: the safe side).
 *  3. A request that does not follow the session's line and offers no
 *     tools (a title, a summary, a quota probe) is passed through and
 *     recorded nowhere; one that offers tools moves the branch back to
 *     where it diverged, the old line kept as BRANCH.fork-TIP.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/base.h"
#include <xxhash.h>
#include "proxy_priv.h"
#include "pager/pager_int.h"

#define NOTE_KEY "proxy"
#define STUB_TAIL " [abridged]"

typedef struct {
	char kind;  /* 'g' a batch of client items, 'r' a reply not yet seen back, 'h' hidden from the client */
	size_t n;   /* client items it stands for ('g') */
	cmv_id digest, node;
} entry;

typedef struct {
	char *name;
	size_t last;   /* the reply count when it was last called */
	size_t window; /* replies it stays whole after a call (0: not yet set) */
	bool whole;    /* sent whole by the last request */
} tool_use_rec;

typedef struct {
	cmv_id key;    /* name and input of a call */
	char page[CMV_ID_HEXSZ + 1];
} fault_key;

struct proxy_turn {
	proxy *p;
	proxy_api api;
	char branch[256];
	cJSON *body;          /* the client's request */
	char *raw;            /* its bytes */
	size_t raw_len;
	bool stream, side;
	cmv_model_handle *model;
	entry *e;
	size_t n_e, cap_e;
	tool_use_rec *tools;
	size_t n_tools, cap_tools;
	size_t replies;
	size_t last_cut;      /* the last window's stubbed + evicted count: when it moves, the prefix was cut */
	bool have_cut;
	fault_key *fk;
	size_t n_fk;
	cmv_page *pages;      /* the last window's pages (ids and sizes: what a fault may pin) */
	size_t n_pages;
	uint64_t page_budget;
	size_t round;
	cmv_buf upstream;
	proxy_turn_stats st;
	/* the model the request goes to (docs/proxy.md, "Switching"): candidates, the session's first */
	char client_model[256];
	char *cand[PROXY_MAX_MODELS];
	size_t n_cand, ci;
	proxy_target target;
	char *custom;          /* the client's custom tools, when translated */
	/* the failover state kept in the note: the model failed over from, the one failed over to, when */
	char *fo_primary, *fo_fallback;
	long long fo_time;
	bool fo_dirty;
};

static void fault(proxy_turn *t, const char *page);

/* ---- JSON spans ----------------------------------------------------------------------- */

/*
 * Whitespace as cJSON reads it: any byte up to a space (NUL and control
 * bytes too). The spans must fall where cJSON's parse puts the members, or
 * a body cJSON reads would be cut at another place than the one it read.
 */
const char *pjs_ws(const char *p, const char *end)
{
	while (p < end && (unsigned char)*p <= ' ')
		p++;
	return p;
}

/*
 * The end of the string at p. Most of a request's bytes are inside strings
 * (tool outputs): the next quote is found with memchr, and it ends the
 * string when an even number of backslashes stands before it (each pair
 * an escaped backslash), as a scan byte by byte would decide.
 */
static const char *pjs_string(const char *p, const char *end)
{
	const char *start;
	if (p >= end || *p != '"')
		return NULL;
	for (start = ++p; p < end;) {
		const char *q = memchr(p, '"', (size_t)(end - p)), *b;
		if (!q)
			return NULL;
		for (b = q; b > start && b[-1] == '\\';)
			b--;
		if ((q - b) % 2 == 0)
			return q + 1;
		p = q + 1;
	}
	return NULL;
}

const char *pjs_skip(const char *p, const char *end)
{
	size_t depth = 0;

	p = pjs_ws(p, end);
	if (p >= end)
		return NULL;
	if (*p != '{' && *p != '[') {
		if (*p == '"')
			return pjs_string(p, end);
		while (p < end && *p != ',' && *p != '}' && *p != ']' && (unsigned char)*p > ' ' && *p != ':')
			p++;
		return p;
	}
	/* iterative: nesting costs no stack */
	while (p < end) {
		if (*p == '"') {
			if (!(p = pjs_string(p, end)))
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (!--depth)
				return p + 1;
		}
		p++;
	}
	return NULL;
}

int pjs_member(pspan *out, pspan obj, const char *key)
{
	const char *p = pjs_ws(obj.p, obj.end), *end = obj.end;
	size_t klen = strlen(key);

	if (p >= end || *p != '{')
		return 0;
	p++;
	for (;;) {
		const char *k, *ke;
		p = pjs_ws(p, end);
		if (p >= end || *p == '}')
			return 0;
		k = p;
		if (!(ke = pjs_string(p, end)))
			return 0;
		p = pjs_ws(ke, end);
		if (p >= end || *p != ':')
			return 0;
		p = pjs_ws(p + 1, end);
		const char *v = p;
		if (!(p = pjs_skip(p, end)))
			return 0;
		if ((size_t)(ke - k) == klen + 2 && !memcmp(k + 1, key, klen)) {
			out->p = v;
			out->end = p;
			return 1;
		}
		p = pjs_ws(p, end);
		if (p < end && *p == ',')
			p++;
		else
			return 0;
	}
}

/* The items of the array in `arr`, as spans. */
static int pjs_items(pspan **out, size_t *n, pspan arr)
{
	const char *p = pjs_ws(arr.p, arr.end), *end = arr.end;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (p >= end || *p != '[')
		return cmv_error__set(CMV_EINVALID, "expected an array");
	p++;
	for (;;) {
		p = pjs_ws(p, end);
		if (p >= end)
			return cmv_error__set(CMV_EINVALID, "an array is cut short");
		if (*p == ']')
			return 0;
		const char *v = p;
		/* an item must take at least a byte: a scan that stops where it started would loop for ever */
		if (!(p = pjs_skip(p, end)) || p == v)
			return cmv_error__set(CMV_EINVALID, "an array item is not JSON");
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			pspan *g = realloc(*out, nc * sizeof(**out));
			if (!g)
				return cmv_error__oom();
			*out = g;
			cap = nc;
		}
		(*out)[(*n)++] = (pspan){ v, p };
		p = pjs_ws(p, end);
		if (p < end && *p == ',')
			p++;
		else if (p < end && *p != ']')
			return cmv_error__set(CMV_EINVALID, "array items are not separated by commas");
	}
}

/* The digest of a value's text with every "cache_control" member left out. */
static int digest_span(cmv_id *out, pspan s, cmv_buf *tmp)
{
	static const char cc[] = "\"cache_control\"";
	const char *p = s.p;
	int error = 0;

	if (!memmem(s.p, (size_t)(s.end - s.p), cc, sizeof(cc) - 1)) {
		cmv_id_hash(out, s.p, (size_t)(s.end - s.p));
		return 0;
	}
	cmv_buf_clear(tmp);
	while (p < s.end && !error) {
		if (*p == '"') {
			const char *q = pjs_string(p, s.end), *r;
			if (!q)
				break;
			if ((size_t)(q - p) == sizeof(cc) - 1 && !memcmp(p, cc, sizeof(cc) - 1) &&
			    (r = pjs_ws(q, s.end)) < s.end && *r == ':' && (r = pjs_skip(r + 1, s.end))) {
				size_t n = tmp->size;
				while (n && isspace((unsigned char)tmp->ptr[n - 1]))
					n--;
				if (n && tmp->ptr[n - 1] == ',') {
					tmp->size = n - 1;
					tmp->ptr[tmp->size] = '\0';
				} else {
					r = pjs_ws(r, s.end);
					if (r < s.end && *r == ',')
						r++;
				}
				p = r;
				continue;
			}
			error = cmv_buf_put(tmp, p, (size_t)(q - p));
			p = q;
			continue;
		}
		error = cmv_buf_putc(tmp, *p++);
	}
	if (!error)
		cmv_id_hash(out, tmp->ptr, tmp->size);
	return error;
}

static void digest_many(cmv_id *out, const cmv_id *ids, size_t n)
{
	cmv_id_hash(out, ids, n * sizeof(*ids));
}

/* ---- the session's note ---------------------------------------------------------------- */

static int push_entry(proxy_turn *t, char kind, size_t n, const cmv_id *digest, const cmv_id *node)
{
	if (t->n_e == t->cap_e) {
		size_t nc = t->cap_e ? t->cap_e * 2 : 32;
		entry *g = realloc(t->e, nc * sizeof(*g));
		if (!g)
			return cmv_error__oom();
		t->e = g;
		t->cap_e = nc;
	}
	entry *e = &t->e[t->n_e++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->n = n;
	if (digest)
		e->digest = *digest;
	e->node = *node;
	return 0;
}

/*
 * A call of the tool. Called while a stub after it had been whole (stubbed
 * again too early: a tool fault), its window doubles, as the pager's pin
 * does for a page faulted again: a tool the session keeps using stays
 * whole, one used once goes back to a stub soon (docs/proxy.md).
 */
static int tool_used(proxy_turn *t, const char *name)
{
	for (size_t i = 0; i < t->n_tools; i++)
		if (!strcmp(t->tools[i].name, name)) {
			tool_use_rec *r = &t->tools[i];
			if (!t->p->cfg.tool_tokens && !r->whole && r->last != t->replies && r->window)
				r->window = r->window < PROXY_TOOL_WINDOW_MAX / 2 ? r->window * 2 : PROXY_TOOL_WINDOW_MAX;
			r->last = t->replies;
			return 0;
		}
	if (t->n_tools == t->cap_tools) {
		size_t nc = t->cap_tools ? t->cap_tools * 2 : 16;
		tool_use_rec *g = realloc(t->tools, nc * sizeof(*g));
		if (!g)
			return cmv_error__oom();
		t->tools = g;
		t->cap_tools = nc;
	}
	if (!(t->tools[t->n_tools].name = strdup(name)))
		return cmv_error__oom();
	t->tools[t->n_tools].whole = false;
	t->tools[t->n_tools].window = t->p->cfg.tool_window ? t->p->cfg.tool_window
				      : t->p->cfg.tool_tokens ? 1 : PROXY_TOOL_RECENT;
	t->tools[t->n_tools++].last = t->replies;
	return 0;
}

static tool_use_rec *tool_rec(const proxy_turn *t, const char *name)
{
	for (size_t i = 0; i < t->n_tools; i++)
		if (!strcmp(t->tools[i].name, name))
			return &t->tools[i];
	return NULL;
}

static bool tool_recent(const proxy_turn *t, const tool_use_rec *r)
{
	/* tokens: the policy's window, whatever a note written under another policy kept (64 and doubled) */
	size_t w = !r ? 0 : !t->p->cfg.tool_tokens ? r->window : t->p->cfg.tool_window ? t->p->cfg.tool_window : 1;
	return r && t->replies - r->last < w;
}

/*
 * The note's lines: "n REPLIES", "t LAST NAME WINDOW" (a tool called), "w NAME" (sent whole), "c CUT" (the
 * last window's stubbed + evicted count), "e KIND N DIGEST NODE". A line it cannot read is left out.
 */
static int state_load(proxy_turn *t)
{
	cmv_buf note = CMV_BUF_INIT((size_t)256 << 20);
	int error = cmv_branch_note_get(&note, t->p->repo, t->branch, NOTE_KEY);

	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		cmv_buf_dispose(&note);
		return 0;
	}
	for (char *line = note.ptr, *next; !error && line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		char kind, dig[64], node[64], name[256];
		size_t n, w = 0;
		if (line[0] == 'n' && sscanf(line, "n %zu", &n) == 1) {
			t->replies = n;
		} else if (line[0] == 't' && sscanf(line, "t %zu %255s %zu", &n, name, &w) >= 2) {
			if (!(error = tool_used(t, name))) {
				t->tools[t->n_tools - 1].last = n;
				if (w)
					t->tools[t->n_tools - 1].window = w < PROXY_TOOL_WINDOW_MAX ? w : PROXY_TOOL_WINDOW_MAX;
			}
		} else if (line[0] == 'w' && sscanf(line, "w %255s", name) == 1) {
			tool_use_rec *r = tool_rec(t, name);
			if (r)
				r->whole = true;
		} else if (line[0] == 'c' && sscanf(line, "c %zu", &n) == 1) {
			t->last_cut = n;
			t->have_cut = true;
		} else if (!strncmp(line, "fp ", 3) || !strncmp(line, "ff ", 3)) {
			char **slot = line[1] == 'p' ? &t->fo_primary : &t->fo_fallback;
			free(*slot);
			if (!(*slot = strdup(line + 3)))
				error = cmv_error__oom();
		} else if (!strncmp(line, "ft ", 3)) {
			t->fo_time = strtoll(line + 3, NULL, 10);
		} else if (line[0] == 'e' && sscanf(line, "e %c %zu %63s %63s", &kind, &n, dig, node) == 4) {
			cmv_id d, nd;
			if (cmv_id_fromstr(&d, dig) < 0 || cmv_id_fromstr(&nd, node) < 0) {
				cmv_error_clear();
				continue;
			}
			error = push_entry(t, kind, n, &d, &nd);
		}
	}
	cmv_buf_dispose(&note);
	return error;
}

static int state_save(proxy_turn *t)
{
	cmv_buf note = CMV_BUF_INIT((size_t)256 << 20);
	char a[CMV_ID_HEXSZ + 1], b[CMV_ID_HEXSZ + 1];
	int error = cmv_buf_printf(&note, "n %zu\n", t->replies);

	for (size_t i = 0; !error && i < t->n_tools; i++)
		error = cmv_buf_printf(&note, "t %zu %s %zu\n", t->tools[i].last, t->tools[i].name, t->tools[i].window);
	for (size_t i = 0; !error && i < t->n_tools; i++)
		if (t->tools[i].whole)
			error = cmv_buf_printf(&note, "w %s\n", t->tools[i].name);
	if (!error && t->have_cut)
		error = cmv_buf_printf(&note, "c %zu\n", t->last_cut);
	if (!error && t->fo_primary && t->fo_fallback)
		error = cmv_buf_printf(&note, "fp %s\nff %s\nft %lld\n", t->fo_primary, t->fo_fallback, t->fo_time);
	for (size_t i = 0; !error && i < t->n_e; i++)
		error = cmv_buf_printf(&note, "e %c %zu %s %s\n", t->e[i].kind, t->e[i].n,
				       cmv_id_tostr(a, sizeof(a), &t->e[i].digest), cmv_id_tostr(b, sizeof(b), &t->e[i].node));
	if (!error)
		error = cmv_branch_note_set(t->p->repo, t->branch, NOTE_KEY, note.ptr);
	cmv_buf_dispose(&note);
	return error;
}

/* ---- sessions -------------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/*
 * The session id a request carries: Claude Code's metadata.user_id (a JSON
 * object with "session_id", or "..._session_ID"), OpenAI's
 * prompt_cache_key (Codex sets it to its conversation id), a header the
 * server passed, else none.
 */
static bool session_of(char *out, size_t n, const cJSON *body, const char *hint)
{
	const char *uid = jstr(cJSON_GetObjectItemCaseSensitive(body, "metadata"), "user_id");
	const char *key = jstr(body, "prompt_cache_key");

	out[0] = '\0';
	if (uid) {
		cJSON *j = cJSON_Parse(uid);
		const char *sid = jstr(j, "session_id");
		const char *s = strstr(uid, "_session_");
		if (sid && *sid)
			snprintf(out, n, "%s", sid);
		else if (s && s[9])
			snprintf(out, n, "%s", s + 9);
		cJSON_Delete(j);
	}
	if (!out[0] && key && *key)
		snprintf(out, n, "%s", key);
	if (!out[0] && hint && *hint)
		snprintf(out, n, "%s", hint);
	return out[0] != '\0';
}

/*
 * A branch name from a session id: "proxy/ID" when ID makes a valid one,
 * else "proxy/" and a digest of it. Never the bare id: an import of the
 * same session (the hook, `cmv import`) names its branch by the bare id,
 * and the two record different things (the agent's records, the API's
 * messages), so each keeps its own line (docs/proxy.md).
 */
static void branch_of(char *out, size_t n, const char *sid)
{
	cmv_id d;
	char hex[CMV_ID_HEXSZ + 1];
	bool ok = strlen(sid) < 200;
	for (const char *c = sid; ok && *c; c++)
		ok = isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.';
	snprintf(out, n, PROXY_BRANCH_PREFIX "%.200s", sid);
	if (ok && cmv_ref_name_is_valid(out) == 1)
		return;
	cmv_id_hash(&d, sid, strlen(sid));
	snprintf(out, n, PROXY_BRANCH_PREFIX "h-%.16s", cmv_id_tostr(hex, sizeof(hex), &d));
}

static int model_for(cmv_model_handle **out, proxy *p, const char *name, proxy_api api, bool lenient)
{
	const char *fallback = api == PROXY_API_ANTHROPIC ? "claude-sonnet-4-5" : "gpt-4o";
	int error;

	for (size_t i = 0; i < p->n_models; i++)
		if (!strcmp(p->models[i].name, name)) {
			*out = p->models[i].h;
			return 0;
		}
	if (p->n_models == PROXY_MAX_MODELS)
		return cmv_error__set(CMV_ETOOBIG, "model %s: the proxy keeps %d models at most", name, PROXY_MAX_MODELS);
	if ((error = cmv_model_handle_open(out, p->repo, name)) < 0) {
		/* a model cmv does not know is counted as its API's reference model (docs/proxy.md) */
		if (!lenient)
			return error;
		cmv_error_clear();
		if ((error = cmv_model_handle_open(out, p->repo, fallback)) < 0)
			return error;
	}
	if (!(p->models[p->n_models].name = strdup(name))) {
		cmv_model_handle_free(*out);
		return cmv_error__oom();
	}
	p->models[p->n_models++].h = *out;
	return 0;
}

/* ---- matching the client's items to the branch ------------------------------------------ */

static const char *api_format(proxy_api api)
{
	return api == PROXY_API_ANTHROPIC ? "anthropic" : api == PROXY_API_CHAT ? "openai-chat" : "openai-responses";
}

/* ---- the model a request goes to ------------------------------------------------------- */

static proxy_api api_of_profile(const cmv_model *m)
{
	switch (m->api) {
	case CMV_API_ANTHROPIC:
		return PROXY_API_ANTHROPIC;
	case CMV_API_OPENAI_CHAT:
		return PROXY_API_CHAT;
	case CMV_API_OPENAI_RESPONSES:
		return PROXY_API_RESPONSES;
	default:
		return PROXY_API_NONE;
	}
}

static bool request_has_images(const proxy_turn *t)
{
	return memmem(t->raw, t->raw_len, "\"image\"", 7) || memmem(t->raw, t->raw_len, "\"input_image\"", 13) ||
	       memmem(t->raw, t->raw_len, "\"image_url\"", 11);
}

/*
 * Point the turn at candidate i. The client's own model goes as the client
 * wrote it; another is called in its own API, at its profile's endpoint.
 * A fallback (i > 0) that lacks what the request uses (tool calling,
 * images) is refused, naming it; the session's model was checked when it
 * was switched to (cmv switch).
 */
static int set_target(proxy_turn *t, size_t i, bool check)
{
	const char *name = t->cand[i];
	bool own = !strcmp(name, t->client_model);
	cmv_model_handle *h;
	int error;

	if ((error = model_for(&h, t->p, name, t->api, own)) < 0) {
		cmv_error__prefix("model %s: ", name);
		return error;
	}
	const cmv_model *m = cmv_model_handle_profile(h);
	proxy_target tg = { t->api, name, name, NULL, NULL, false, true, NULL };
	if (!own) {
		tg.api = api_of_profile(m);
		if (tg.api == PROXY_API_NONE)
			return cmv_error__set(CMV_EINVALID, "model %s: the proxy calls Anthropic Messages, OpenAI Chat "
					      "Completions and Responses; %s is none of them", name, cmv_api_name(m->api));
		tg.model = m->id;
		tg.translated = tg.api != t->api;
		tg.base_url = m->base_url;
		tg.key_env = m->api_key_env;
		tg.own_key = !m->base_url && !m->api_key_env &&
			     (tg.api == PROXY_API_ANTHROPIC) == (t->api == PROXY_API_ANTHROPIC);
	}
	if (check) {
		if (!m->tools && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t->body, "tools")) > 0)
			return cmv_error__set(CMV_EINVALID, "model %s has no tool calling, and the request offers tools", name);
		if (!m->images && request_has_images(t))
			return cmv_error__set(CMV_EINVALID, "model %s takes no images, and the session has some", name);
	}
	t->model = h;
	t->target = tg;
	t->ci = i;
	return 0;
}

static int add_candidate(proxy_turn *t, const char *name, size_t n)
{
	for (size_t i = 0; i < t->n_cand; i++)
		if (strlen(t->cand[i]) == n && !strncmp(t->cand[i], name, n))
			return 0;
	if (t->n_cand == PROXY_MAX_MODELS)
		return 0;
	if (!(t->cand[t->n_cand] = strndup(name, n)))
		return cmv_error__oom();
	t->n_cand++;
	return 0;
}

/*
 * The models to try, in order: the branch's (once switched, the session
 * runs on it; never switched, it follows the client's), then the
 * fallbacks. After a failover the model failed over from comes first again
 * once retry_primary_s have passed: the return.
 */
static int plan_models(proxy_turn *t)
{
	proxy *p = t->p;
	cmv_buf ref = CMV_BUF_INIT(1 << 20);
	int error = cmv_branch_llm_get(&ref, p->repo, t->branch);

	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	}
	if (error < 0)
		goto done;
	/* failed over, then switched by the user: the user's choice stands, the failover is over */
	if (t->fo_primary && (!ref.size || strcmp(ref.ptr, t->fo_fallback))) {
		free(t->fo_primary);
		free(t->fo_fallback);
		t->fo_primary = t->fo_fallback = NULL;
		t->fo_dirty = true;
	}
	if (t->fo_primary && (long long)time(NULL) - t->fo_time >= (long long)p->cfg.retry_primary_s &&
	    (error = add_candidate(t, t->fo_primary, strlen(t->fo_primary))) < 0)
		goto done;
	if ((error = add_candidate(t, ref.size ? ref.ptr : t->client_model, ref.size ? ref.size : strlen(t->client_model))) < 0)
		goto done;
	for (const char *f = p->cfg.fallback; f && *f && !error;) {
		size_t n = strcspn(f, ",");
		if (n)
			error = add_candidate(t, f, n);
		f += n + (f[n] == ',');
	}
done:
	cmv_buf_dispose(&ref);
	return error;
}

/*
 * Whether a client item is the assistant's (what a reply comes back as).
 * Every Responses item the model makes is a "*_call" (function, custom
 * tool, local shell, web search, tool search, and kinds to come) or its
 * reasoning; what answers one is a "*_output". Listing the kinds missed
 * tool_search_call: the recorded reply stopped matching there and the
 * client's resend was appended a second time.
 */
static bool assistant_item(const cJSON *it, proxy_api api)
{
	const char *role = jstr(it, "role"), *type = jstr(it, "type");
	if (role)
		return !strcmp(role, "assistant");
	if (api != PROXY_API_RESPONSES || !type)
		return false;
	size_t n = strlen(type);
	return !strcmp(type, "reasoning") || (n > 5 && !strcmp(type + n - 5, "_call"));
}

/* Whether the client's copy of a reply's item replaces the reply (the reply is appended again from it). */
static bool item_kept_whole(const cJSON *it)
{
	const char *type = jstr(it, "type");
	/*
	 * Only a tool search: Codex sends it back with metadata of its own
	 * added, and only the client's copy is what Codex alone would send.
	 * Every other reply item goes upstream as the model sent it (the
	 * proxy's copy), so a client that echoes a reply changed (reasoning
	 * without its encrypted content, text edited) never replaces it.
	 */
	return type && !strcmp(type, "tool_search_call");
}

/* ---- tool definitions as pages --------------------------------------------------------- */

/* A definition's name and whether it is a function the proxy may stub (not a provider's built-in). */
static const char *tool_name(const cJSON *t, proxy_api api, bool *pageable)
{
	const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
	const char *type = jstr(t, "type");
	*pageable = false;
	if (api == PROXY_API_CHAT && cJSON_IsObject(fn)) {
		*pageable = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(fn, "parameters")) ||
			    !cJSON_GetObjectItemCaseSensitive(fn, "parameters");
		return jstr(fn, "name");
	}
	if (api == PROXY_API_ANTHROPIC)
		*pageable = (!type || !strcmp(type, "custom")) && cJSON_GetObjectItemCaseSensitive(t, "input_schema");
	else if (api == PROXY_API_RESPONSES)
		*pageable = type && !strcmp(type, "function");
	return jstr(t, "name");
}

/* The stub of a description: its first sentence (of its first line, 100 bytes at most, cut at a character boundary). */
static char *stub_description(const char *desc)
{
	size_t n = 0;
	cmv_buf b = CMV_BUF_INIT(1024);
	desc = desc ? desc : "";
	while (desc[n] && desc[n] != '\n' && n < 100 && !(n && desc[n - 1] == '.' && desc[n] == ' '))
		n++;
	while (n && desc[n] && ((unsigned char)desc[n] & 0xC0) == 0x80)
		n--;
	if (cmv_buf_put(&b, desc, n) < 0 || cmv_buf_puts(&b, STUB_TAIL) < 0) {
		cmv_buf_dispose(&b);
		return NULL;
	}
	return cmv_buf_detach(&b);
}

/* Nesting a stub prunes; deeper, a sub-schema is copied whole (as valid as the client's). */
#define STUB_DEPTH 8

static bool stub_add(cJSON *o, const char *key, cJSON *v)
{
	if (v && cJSON_AddItemToObject(o, key, v))
		return true;
	cJSON_Delete(v);
	return false;
}

static cJSON *stub_sub(const cJSON *schema, int depth);

/* Each member of a schema array (anyOf, prefixItems) pruned. */
static cJSON *stub_each(const cJSON *arr, int depth)
{
	cJSON *a = cJSON_CreateArray();
	for (const cJSON *e = arr->child; a && e; e = e->next) {
		cJSON *x = stub_sub(e, depth);
		if (!x || !cJSON_AddItemToArray(a, x)) {
			cJSON_Delete(x);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

/*
 * The required properties of schema (at depth) into its stub s: "properties"
 * with each pruned, and "required" naming them; neither when none is.
 */
static int stub_required(cJSON *s, const cJSON *schema, int depth)
{
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
	cJSON *sp = NULL, *sr = NULL;

	for (const cJSON *r = cJSON_IsArray(req) ? req->child : NULL; r; r = r->next) {
		const char *name = cJSON_GetStringValue(r);
		if (!name || (sp && cJSON_GetObjectItemCaseSensitive(sp, name)))
			continue;
		if (!sp && (!(sp = cJSON_AddObjectToObject(s, "properties")) || !(sr = cJSON_AddArrayToObject(s, "required"))))
			return -1;
		const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, name);
		if (!stub_add(sp, name, ps ? stub_sub(ps, depth + 1) : cJSON_CreateObject()) ||
		    !cJSON_AddItemToArray(sr, cJSON_CreateString(name)))
			return -1;
	}
	return 0;
}

/*
 * A sub-schema pruned: what says what a value is (type, enum, const, a
 * $ref) and what every provider requires beside it (an array's items, or
 * OpenAI and Gemini refuse the whole request; an object's required
 * properties, each pruned), descriptions and optional properties left
 * out. Leaving out only loosens: a stub accepts whatever the definition
 * accepts.
 */
static cJSON *stub_sub(const cJSON *schema, int depth)
{
	static const char *const scalars[] = { "type", "enum", "const", "nullable", "$ref", NULL };
	static const char *const lists[] = { "anyOf", "oneOf", "allOf", "prefixItems", NULL };
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
	cJSON *s;

	if (!cJSON_IsObject(schema) || depth >= STUB_DEPTH)
		return cJSON_Duplicate(schema, 1);
	if (!(s = cJSON_CreateObject()))
		return NULL;
	for (int k = 0; scalars[k]; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(schema, scalars[k]);
		if (v && !stub_add(s, scalars[k], cJSON_Duplicate(v, 1)))
			goto oom;
	}
	if (items && !stub_add(s, "items", cJSON_IsArray(items) ? stub_each(items, depth + 1) : stub_sub(items, depth + 1)))
		goto oom;
	for (int k = 0; lists[k]; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(schema, lists[k]);
		if (cJSON_IsArray(v) && !stub_add(s, lists[k], stub_each(v, depth + 1)))
			goto oom;
	}
	if (stub_required(s, schema, depth) < 0)
		goto oom;
	return s;
oom:
	cJSON_Delete(s);
	return NULL;
}

/*
 * The stub of a schema: an object with the required properties, each
 * pruned by stub_sub (its type, and an array's items). A model calling the
 * stub then still names what a call cannot go without; whatever else it
 * gets wrong, the client (which checks the input against the whole schema
 * it holds) answers as the tool's error, and the next request carries the
 * whole definition. A $ref kept needs the definitions it points into.
 */
static cJSON *stub_schema(const cJSON *schema)
{
	static const char *const defs[] = { "$defs", "definitions", NULL };
	cJSON *s = cJSON_CreateObject(), *sp = NULL;
	char *text;

	if (!s || !cJSON_AddStringToObject(s, "type", "object"))
		goto oom;
	if (stub_required(s, schema, 0) < 0)
		goto oom;
	if ((sp = cJSON_GetObjectItemCaseSensitive(s, "properties"))) {
		if (!(text = cJSON_PrintUnformatted(sp)))
			goto oom;
		bool refs = strstr(text, "\"$ref\"") != NULL;
		cJSON_free(text);
		for (int k = 0; refs && defs[k]; k++) {
			const cJSON *d = cJSON_GetObjectItemCaseSensitive(schema, defs[k]);
			if (d && !stub_add(s, defs[k], cJSON_Duplicate(d, 1)))
				goto oom;
		}
	}
	return s;
oom:
	cJSON_Delete(s);
	return NULL;
}

/* The definitions of a tools array, each function of a Responses namespace among them (Codex's MCP tools, its agents). */
static cJSON **tool_defs(size_t *n, cJSON *arr, proxy_api api)
{
	size_t cap = 0;
	cJSON **v = NULL;

	*n = 0;
	for (cJSON *d = arr->child; d; d = d->next) {
		const char *type = jstr(d, "type");
		cJSON *members = cJSON_GetObjectItemCaseSensitive(d, "tools");
		bool ns = api == PROXY_API_RESPONSES && type && !strcmp(type, "namespace") && cJSON_IsArray(members);
		for (cJSON *e = ns ? members->child : d; e; e = ns ? e->next : NULL) {
			if (*n == cap) {
				cJSON **g = realloc(v, (cap = cap ? cap * 2 : 32) * sizeof(*v));
				if (!g) {
					free(v);
					cmv_error__oom();
					return NULL;
				}
				v = g;
			}
			v[(*n)++] = e;
		}
	}
	if (!v && !(v = malloc(sizeof(*v)))) /* none is not an error */
		cmv_error__oom();
	return v;
}

/*
 * The tools to send: each definition whole or as its stub, and the recall
 * tool. *out NULL: no tools member. A tool called within the window goes
 * whole. The tools come first in the provider's cache order, so changing
 * the array costs the cache of everything after it: a tool goes whole at
 * once when the model called its stub (the call needs it), but idle tools
 * are stubbed again only when the array changes anyway (a tool going whole)
 * or the pager cut the window's prefix this request (`cut`; the messages'
 * cache is lost anyway), or as cfg.tool_demote says (docs/proxy.md).
 */
/*
 * What page_tools learns from a tools array alone, kept by its bytes (the
 * client sends the same array every turn): each definition's name, whether
 * it may be stubbed and whether its stub is shorter (which took printing
 * both schemas), the array as cJSON prints it, and the last set of stubs
 * asked for with the text it made.
 */
typedef struct {
	cmv_id digest;
	size_t n_defs;
	char **name;   /* NULL where the definition has none */
	bool *pageable, *shorter;
	char *full;    /* the client's tools printed: their count when sent whole */
	bool *stubbed; /* the last set of stubs made */
	bool recall;
	char *out;     /* and what it made */
	bool have_out;
} td_entry;

#define TD_ENTRIES 8

struct td_cache {
	td_entry e[TD_ENTRIES];
	size_t next; /* the one replaced next */
};

static void td_entry_dispose(td_entry *e)
{
	for (size_t i = 0; e->name && i < e->n_defs; i++)
		free(e->name[i]);
	free(e->name);
	free(e->pageable);
	free(e->shorter);
	free(e->stubbed);
	cJSON_free(e->full);
	free(e->out);
	memset(e, 0, sizeof(*e));
}

/* The stub of definition d (its function's description and schema replaced), made in place. */
static int stub_def(cJSON *d, proxy_api api)
{
	const char *schema_key = api == PROXY_API_ANTHROPIC ? "input_schema" : "parameters";
	cJSON *fn = api == PROXY_API_CHAT ? cJSON_GetObjectItemCaseSensitive(d, "function") : d;
	char *sd = stub_description(jstr(fn, "description"));
	cJSON *ss = stub_schema(cJSON_GetObjectItemCaseSensitive(fn, schema_key));
	if (!sd || !ss) {
		free(sd);
		cJSON_Delete(ss);
		return cmv_error__oom();
	}
	cJSON_DeleteItemFromObjectCaseSensitive(fn, "description");
	cJSON_AddStringToObject(fn, "description", sd);
	free(sd);
	cJSON_DeleteItemFromObjectCaseSensitive(fn, schema_key); /* a definition may have none: replace would leak */
	cJSON_AddItemToObject(fn, schema_key, ss);
	if (cJSON_GetObjectItemCaseSensitive(fn, "strict"))
		cJSON_ReplaceItemInObjectCaseSensitive(fn, "strict", cJSON_CreateFalse());
	return 0;
}

/* Whether definition d's stub is shorter than d (a definition as short as its stub is sent whole). */
static int stub_shorter(bool *out, const cJSON *d, proxy_api api)
{
	const char *schema_key = api == PROXY_API_ANTHROPIC ? "input_schema" : "parameters";
	const cJSON *fn = api == PROXY_API_CHAT ? cJSON_GetObjectItemCaseSensitive(d, "function") : d;
	char *sd = stub_description(jstr(fn, "description"));
	cJSON *ss = stub_schema(cJSON_GetObjectItemCaseSensitive(fn, schema_key));
	int error = 0;
	if (!sd || !ss) {
		error = cmv_error__oom();
	} else {
		char *ws = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(fn, schema_key)), *ssp = cJSON_PrintUnformatted(ss);
		const char *wd = jstr(fn, "description");
		*out = ssp && strlen(sd) + strlen(ssp) < (wd ? strlen(wd) : 0) + (ws ? strlen(ws) : 0);
		cJSON_free(ws);
		cJSON_free(ssp);
	}
	free(sd);
	cJSON_Delete(ss);
	return error;
}

/* The cache's entry for the client's tools array (its bytes `span`), made now where there is none. */
static int td_lookup(td_entry **out, proxy_turn *t, const cJSON *tools, pspan span)
{
	proxy *p = t->p;
	XXH3_state_t *st = XXH3_createState();
	char api = (char)('0' + (int)t->api);
	XXH128_hash_t h = { 0, 0 };
	cmv_id d;
	cJSON **defs = NULL;
	int error = 0;

	if (!st)
		return cmv_error__oom();
	if (XXH3_128bits_reset(st) == XXH_OK) {
		XXH3_128bits_update(st, &api, 1);
		XXH3_128bits_update(st, span.p, (size_t)(span.end - span.p));
		h = XXH3_128bits_digest(st);
	}
	XXH3_freeState(st);
	memset(&d, 0, sizeof(d));
	d.type = CMV_ID_XXH3_128;
	memcpy(d.raw, &h, sizeof(h) < sizeof(d.raw) ? sizeof(h) : sizeof(d.raw));
	if (!p->tdc && !(p->tdc = calloc(1, sizeof(*p->tdc))))
		return cmv_error__oom();
	for (size_t i = 0; i < TD_ENTRIES; i++)
		if (p->tdc->e[i].name && cmv_id_equal(&p->tdc->e[i].digest, &d)) {
			*out = &p->tdc->e[i];
			return 0;
		}
	td_entry *e = &p->tdc->e[p->tdc->next];
	p->tdc->next = (p->tdc->next + 1) % TD_ENTRIES;
	td_entry_dispose(e);
	e->digest = d;
	if (!(defs = tool_defs(&e->n_defs, (cJSON *)tools, t->api)) || !(e->name = calloc(e->n_defs + 1, sizeof(*e->name))) ||
	    !(e->pageable = calloc(e->n_defs + 1, sizeof(bool))) || !(e->shorter = calloc(e->n_defs + 1, sizeof(bool))) ||
	    !(e->stubbed = calloc(e->n_defs + 1, sizeof(bool))) || !(e->full = cJSON_PrintUnformatted(tools))) {
		error = defs ? cmv_error__oom() : CMV_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < e->n_defs && !error; i++) {
		const char *name = tool_name(defs[i], t->api, &e->pageable[i]);
		if (name && !(e->name[i] = strdup(name)))
			error = cmv_error__oom();
		else if (!p->cfg.no_tool_paging && e->pageable[i] && name)
			error = stub_shorter(&e->shorter[i], defs[i], t->api);
	}
done:
	free(defs);
	if (error < 0) {
		td_entry_dispose(e);
		return error;
	}
	*out = e;
	return 0;
}

/*
 * The tools to send: each definition whole or as its stub, and the recall
 * tool. *out NULL: no tools member. A tool called within the window goes
 * whole. The tools come first in the provider's cache order, so changing
 * the array costs the cache of everything after it: a tool goes whole at
 * once when the model called its stub (the call needs it), but idle tools
 * are stubbed again only when the array changes anyway (a tool going whole)
 * or the pager cut the window's prefix this request (`cut`; the messages'
 * cache is lost anyway), or as cfg.tool_demote says (docs/proxy.md).
 */
static int page_tools(char **out, proxy_turn *t, bool recall, bool cut)
{
	const cJSON *tools = cJSON_GetObjectItemCaseSensitive(t->body, "tools");
	int how = t->p->cfg.tool_tokens ? PROXY_DEMOTE_EAGER
		  : t->p->cfg.tool_demote ? t->p->cfg.tool_demote : PROXY_DEMOTE_DEFAULT;
	bool flip = cut || how == PROXY_DEMOTE_EAGER;
	pspan whole = { t->raw, t->raw + t->raw_len }, span;
	td_entry *e = NULL;
	cJSON *arr = NULL, **defs = NULL;
	size_t n_defs;
	bool *stub = NULL;
	int error;

	*out = NULL;
	t->st.n_tools = t->st.n_tools_stubbed = 0;
	if (!cJSON_IsArray(tools))
		return 0;
	/* the member cJSON read is the first of its name, as pjs_member's */
	if (!pjs_member(&span, whole, "tools"))
		return cmv_error__set(CMV_EINVALID, "the request's \"tools\" could not be read");
	if ((error = td_lookup(&e, t, tools, span)) < 0)
		return error;
	if (!(stub = calloc(e->n_defs + 1, sizeof(*stub))))
		return cmv_error__oom();
	for (size_t i = 0; i < e->n_defs && !flip && how == PROXY_DEMOTE_CHANGE; i++) {
		tool_use_rec *r = e->name[i] && e->pageable[i] ? tool_rec(t, e->name[i]) : NULL;
		flip = r && !r->whole && tool_recent(t, r);
	}
	for (size_t i = 0; i < e->n_defs; i++) {
		t->st.n_tools++;
		if (t->p->cfg.no_tool_paging || !e->pageable[i] || !e->name[i])
			continue;
		tool_use_rec *r = tool_rec(t, e->name[i]);
		if (r && (r->whole = flip ? tool_recent(t, r) : r->whole || tool_recent(t, r)))
			continue;
		if (!e->shorter[i]) { /* a definition as short as its stub is sent whole: a call to it is no call to a stub */
			if (r)
				r->whole = true;
			continue;
		}
		stub[i] = true;
		t->st.n_tools_stubbed++;
	}
	if (e->have_out && e->recall == recall && !memcmp(e->stubbed, stub, e->n_defs * sizeof(*stub))) {
		/* the same stubs as the last request of this array: the same text */
		free(stub);
		/* the caller frees it with cJSON_free */
		if (!(*out = cJSON_malloc(strlen(e->out) + 1)))
			return cmv_error__oom();
		memcpy(*out, e->out, strlen(e->out) + 1);
		goto count;
	}
	if (!(arr = cJSON_Duplicate(tools, 1)) || !(defs = tool_defs(&n_defs, arr, t->api))) {
		error = arr ? CMV_ENOMEM : cmv_error__oom();
		goto fail;
	}
	for (size_t i = 0; i < n_defs && i < e->n_defs && !error; i++)
		if (stub[i])
			error = stub_def(defs[i], t->api);
	if (error < 0)
		goto fail;
	free(defs);
	defs = NULL;
	if (recall) {
		cmv_buf schema = CMV_BUF_INIT(1 << 16);
		error = cmv_recall_tool_schema(&schema, t->api == PROXY_API_ANTHROPIC ? "anthropic" : "openai");
		cJSON *r = error < 0 ? NULL : cJSON_Parse(schema.ptr);
		cmv_buf_dispose(&schema);
		if (r && t->api == PROXY_API_RESPONSES) {
			/* Responses takes a function's members at the top of its definition */
			cJSON *fn = cJSON_DetachItemFromObjectCaseSensitive(r, "function");
			cJSON_Delete(r);
			r = fn;
			if (r)
				cJSON_AddItemToObject(r, "type", cJSON_CreateString("function"));
		}
		if (!r) {
			error = error < 0 ? error : cmv_error__oom();
			goto fail;
		}
		cJSON_AddItemToArray(arr, r);
	}
	if (!(*out = cJSON_PrintUnformatted(arr))) {
		error = cmv_error__oom();
		goto fail;
	}
	cJSON_Delete(arr);
	/* kept as the entry's last text (a copy: the caller frees its own) */
	free(e->out);
	e->have_out = (e->out = strdup(*out)) != NULL;
	memcpy(e->stubbed, stub, e->n_defs * sizeof(*stub));
	e->recall = recall;
	free(stub);
count:;
	size_t n = 0;
	const cmv_model *m = cmv_model_handle_profile(t->model);
	if (cmv_model_count(&n, NULL, m, cmv_model_handle_tok(t->model), e->full, strlen(e->full)) == 0)
		t->st.tools_tokens_full = n;
	return 0;
fail:
	free(defs);
	free(stub);
	cJSON_Delete(arr);
	cJSON_free(*out);
	*out = NULL;
	return error;
}

/* ---- the upstream body ----------------------------------------------------------------- */

/*
 * What one window item holds for the fault keys: its calls (id, and the
 * key of name and input) and then its results that are stubs (the call id
 * and the page). A pure function of the item's text, so it is kept by the
 * text's digest (fk_cache): a window grown from the kept one repeats its
 * items turn after turn, and parsing its calls again was a fifth of a
 * turn's work.
 */
typedef struct {
	char *id;
	cmv_id key; /* unset for a result */
	char page[CMV_ID_HEXSZ + 1];
} fk_rec;

typedef struct fk_item {
	cmv_id digest;
	fk_rec *recs; /* the calls, then the results */
	size_t n_calls, n_res;
	struct fk_item *next;
} fk_item;

#define FK_BUCKETS 4096
#define FK_MAX_ITEMS 65536 /* past it the cache starts again empty, before a window's lookups: a bound, not a policy */

struct fk_cache {
	fk_item *b[FK_BUCKETS];
	size_t n;
};

static void fk_item_free(fk_item *it)
{
	for (size_t i = 0; it && i < it->n_calls + it->n_res; i++)
		free(it->recs[i].id);
	if (it)
		free(it->recs);
	free(it);
}

static void fk_cache_clear(struct fk_cache *c)
{
	for (size_t i = 0; i < FK_BUCKETS; i++)
		for (fk_item *it = c->b[i], *nx; it; it = nx) {
			nx = it->next;
			fk_item_free(it);
		}
	memset(c->b, 0, sizeof(c->b));
	c->n = 0;
}

void proxy_turn_cache_free(proxy *p)
{
	if (p->fkc)
		fk_cache_clear(p->fkc);
	free(p->fkc);
	p->fkc = NULL;
	for (size_t i = 0; p->tdc && i < TD_ENTRIES; i++)
		td_entry_dispose(&p->tdc->e[i]);
	free(p->tdc);
	p->tdc = NULL;
}

/* The fault key of a call: its name and canonical input. */
static int fault_key_of(cmv_id *out, const char *name, const char *input)
{
	cmv_buf k = CMV_BUF_INIT((size_t)1 << 26);
	int error = 0;
	if (cmv_buf_puts(&k, name) < 0 || cmv_buf_putc(&k, '\x1f') < 0 || cmv_buf_puts(&k, input) < 0)
		error = cmv_error__oom();
	else
		cmv_id_hash(out, k.ptr, k.size);
	cmv_buf_dispose(&k);
	return error;
}

static int add_fault_key(proxy_turn *t, const cmv_id *key, const char *page)
{
	fault_key *g = realloc(t->fk, (t->n_fk + 1) * sizeof(*g));
	if (!g)
		return cmv_error__oom();
	t->fk = g;
	t->fk[t->n_fk].key = *key;
	snprintf(t->fk[t->n_fk].page, sizeof(t->fk[t->n_fk].page), "%s", page);
	t->n_fk++;
	return 0;
}

/* The page id in a body's stub ("[... ; recall ID]"), or false. */
static bool stub_id(char out[CMV_ID_HEXSZ + 1], const char *s)
{
	const char *r;
	size_t n = 0;
	if (!s || s[0] != '[' || !(r = strstr(s, "; recall ")))
		return false;
	r += 9;
	while (n < CMV_ID_HEXSZ && isxdigit((unsigned char)r[n]))
		n++;
	if (n < 7 || r[n] != ']' || r[n + 1] != '\0')
		return false;
	memcpy(out, r, n);
	out[n] = '\0';
	return true;
}

/* Canonical text of a call's input: the JSON reprinted (an OpenAI arguments string parsed first). */
static char *canon_input(const cJSON *input)
{
	if (cJSON_IsString(input)) {
		cJSON *j = cJSON_Parse(input->valuestring);
		char *s = j ? cJSON_PrintUnformatted(j) : strdup(input->valuestring);
		cJSON_Delete(j);
		return s;
	}
	return input ? cJSON_PrintUnformatted(input) : strdup("{}");
}

static int fk_push(fk_item *it, size_t *cap, const char *id, const char *name, const cJSON *input, const char *page)
{
	if (it->n_calls + it->n_res == *cap) {
		fk_rec *g = realloc(it->recs, (*cap = *cap ? *cap * 2 : 4) * sizeof(*g));
		if (!g)
			return cmv_error__oom();
		it->recs = g;
	}
	fk_rec *r = &it->recs[it->n_calls + it->n_res];
	memset(r, 0, sizeof(*r));
	if (!(r->id = strdup(id)))
		return cmv_error__oom();
	if (page) {
		snprintf(r->page, sizeof(r->page), "%s", page);
		it->n_res++;
		return 0;
	}
	it->n_calls++; /* counted now: a failure below leaves the record to be freed */
	char *in = canon_input(input);
	int error = in ? fault_key_of(&r->key, name, in) : cmv_error__oom();
	free(in);
	return error;
}

/* One item's calls, then its results that are stubs, into *it (its digest left as it is). */
static int fk_item_read(fk_item *it, const cJSON *m)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
	const char *type = jstr(m, "type");
	size_t cap = 0;
	int error = 0;

	/* the calls: Anthropic's tool_use blocks, Chat's tool_calls, Responses' function_call items */
	const cJSON *list[2] = { cJSON_IsArray(content) ? content->child : NULL, cJSON_IsArray(tcs) ? tcs->child : NULL };
	for (int l = 0; l < 2 && !error; l++)
		for (const cJSON *b = list[l]; b && !error; b = b->next) {
			const cJSON *fn = cJSON_GetObjectItemCaseSensitive(b, "function");
			const char *bt = jstr(b, "type"), *id = NULL, *name = NULL;
			const cJSON *input = NULL;
			if (l == 0 && bt && !strcmp(bt, "tool_use"))
				id = jstr(b, "id"), name = jstr(b, "name"), input = cJSON_GetObjectItemCaseSensitive(b, "input");
			else if (l == 1 && fn)
				id = jstr(b, "id"), name = jstr(fn, "name"), input = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
			if (id && name)
				error = fk_push(it, &cap, id, name, input, NULL);
		}
	if (!error && type && !strcmp(type, "function_call") && jstr(m, "call_id") && jstr(m, "name"))
		error = fk_push(it, &cap, jstr(m, "call_id"), jstr(m, "name"), cJSON_GetObjectItemCaseSensitive(m, "arguments"),
				NULL);
	/* the results that are stubs */
	const char *rid = NULL, *text = NULL;
	char page[CMV_ID_HEXSZ + 1];
	if (type && !strcmp(type, "function_call_output")) {
		rid = jstr(m, "call_id");
		text = jstr(m, "output");
	} else if (jstr(m, "tool_call_id")) {
		rid = jstr(m, "tool_call_id");
		text = jstr(m, "content");
	}
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
		const char *bt = jstr(b, "type");
		if (!bt || strcmp(bt, "tool_result"))
			continue;
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(b, "content");
		const char *s = cJSON_IsString(c) ? c->valuestring
			: cJSON_IsArray(c) && cJSON_GetArraySize(c) == 1 ? jstr(c->child, "text") : NULL;
		const char *id = jstr(b, "tool_use_id");
		if (id && stub_id(page, s))
			error = fk_push(it, &cap, id, NULL, NULL, page);
	}
	if (!error && rid && stub_id(page, text))
		error = fk_push(it, &cap, rid, NULL, NULL, page);
	return error;
}

/*
 * The calls whose results the window shows as stubs: calling one again is
 * a fault (docs/proxy.md). `items` in the window's order; a result is
 * paired with the latest call of its id up to its own item (that item's
 * calls included).
 */
static int fault_keys_of(proxy_turn *t, fk_item *const *items, size_t n)
{
	int error = 0;
	t->n_fk = 0;
	for (size_t i = 0; i < n && !error; i++) {
		const fk_item *it = items[i];
		for (size_t r = it->n_calls; r < it->n_calls + it->n_res && !error; r++) {
			const fk_rec *res = &it->recs[r];
			bool found = false;
			for (size_t j = i + 1; j-- > 0 && !found;)
				for (size_t c = items[j]->n_calls; c-- > 0;)
					if (!strcmp(items[j]->recs[c].id, res->id)) {
						error = add_fault_key(t, &items[j]->recs[c].key, res->page);
						found = true;
						break;
					}
		}
	}
	return error;
}

/* collect_fault_keys for a parsed array of items (a translated window), nothing cached. */
static int collect_fault_keys(proxy_turn *t, const cJSON *msgs)
{
	size_t n = (size_t)cJSON_GetArraySize(msgs), k = 0;
	fk_item **items = calloc(n + 1, sizeof(*items));
	int error = items ? 0 : cmv_error__oom();
	for (const cJSON *m = msgs ? msgs->child : NULL; m && !error; m = m->next, k++)
		error = !(items[k] = calloc(1, sizeof(fk_item))) ? cmv_error__oom() : fk_item_read(items[k], m);
	if (!error)
		error = fault_keys_of(t, items, k);
	for (size_t i = 0; items && i < n; i++)
		fk_item_free(items[i]);
	free(items);
	return error;
}

/*
 * The fault records of one item of the pager's window, from the cache or
 * read now (and kept). An item that names no call and no recall stub is
 * not parsed: quoted, as cJSON prints a type or a key (a result's
 * "tool_use_id" is not a call).
 */
static int fk_lookup(fk_item **out, proxy *p, pspan s)
{
	size_t len = (size_t)(s.end - s.p);
	cmv_id d;
	int error = 0;

	if (!p->fkc && !(p->fkc = calloc(1, sizeof(*p->fkc))))
		return cmv_error__oom();
	cmv_id_hash(&d, s.p, len);
	size_t h = 0;
	memcpy(&h, d.raw, sizeof(h) < sizeof(d.raw) ? sizeof(h) : sizeof(d.raw));
	h %= FK_BUCKETS;
	for (fk_item *it = p->fkc->b[h]; it; it = it->next)
		if (cmv_id_equal(&it->digest, &d)) {
			*out = it;
			return 0;
		}
	fk_item *it = calloc(1, sizeof(*it));
	if (!it)
		return cmv_error__oom();
	it->digest = d;
	if (memmem(s.p, len, "; recall ", 9) || memmem(s.p, len, "\"tool_use\"", 10) ||
	    memmem(s.p, len, "\"tool_calls\"", 12) || memmem(s.p, len, "\"function_call\"", 15)) {
		cJSON *m = cJSON_ParseWithLength(s.p, len);
		error = m ? fk_item_read(it, m) : cmv_error__oom();
		cJSON_Delete(m);
	}
	if (error < 0) {
		fk_item_free(it);
		return error;
	}
	it->next = p->fkc->b[h];
	p->fkc->b[h] = it;
	p->fkc->n++;
	*out = it;
	return 0;
}

/* Count the cache_control markers in a span of text. */
static size_t count_markers(pspan s)
{
	size_t n = 0;
	for (const char *p = s.p; p && p < s.end && (p = memmem(p, (size_t)(s.end - p), "\"cache_control\"", 15)); p += 15)
		n++;
	return n;
}

/* The same API, another model: the body's "model" member names it. */
static int rename_model(proxy_turn *t)
{
	pspan whole = { t->upstream.ptr, t->upstream.ptr + t->upstream.size }, m;
	cmv_buf b = CMV_BUF_INIT((size_t)1 << 30);
	cJSON *name = cJSON_CreateString(t->target.model);
	char *text = name ? cJSON_PrintUnformatted(name) : NULL;
	int error = 0;

	if (!text)
		error = cmv_error__oom();
	else if (pjs_member(&m, whole, "model") &&
		 !(error = cmv_buf_put(&b, t->upstream.ptr, (size_t)(m.p - t->upstream.ptr))) &&
		 !(error = cmv_buf_puts(&b, text)) &&
		 !(error = cmv_buf_put(&b, m.end, (size_t)(whole.end - m.end))))
		error = cmv_buf_set(&t->upstream, b.ptr, b.size);
	cJSON_free(text);
	cJSON_Delete(name);
	cmv_buf_dispose(&b);
	return error;
}

/* Another API: the pager's request in it, and what the client sent besides its messages, translated. */
static int build_translated(proxy_turn *t, const cmv_buf *mat, const char *tools)
{
	cJSON *mj = cJSON_ParseWithLength(mat->ptr, mat->size), *tj = tools ? cJSON_Parse(tools) : NULL;
	const cmv_model *m = cmv_model_handle_profile(t->model);
	const char *mkey = t->target.api == PROXY_API_RESPONSES ? "input" : "messages";
	int error;

	if (!mj || (tools && !tj)) {
		error = cmv_error__oom();
		goto done;
	}
	if ((error = collect_fault_keys(t, cJSON_GetObjectItemCaseSensitive(mj, mkey))) < 0)
		goto done;
	free(t->custom);
	t->custom = NULL;
	error = xlate_request(&t->upstream, &t->custom, &t->st.tools_dropped, t->body, t->api, mj, t->target.api,
			      t->target.model, tj, cmv_model_handle_max_tokens(t->model), m->tools);
	t->target.custom = t->custom;
done:
	cJSON_Delete(mj);
	cJSON_Delete(tj);
	return error;
}

/* The key of what a request sends beside its messages: its API, the client's system prompt, the tools as paged. */
static void live_key_of(char *out, size_t cap, const proxy_turn *t, pspan sys, const char *tools)
{
	XXH3_state_t *st = XXH3_createState();
	char api = (char)('0' + (int)t->target.api);
	XXH128_hash_t h = { 0, 0 };
	if (st && XXH3_128bits_reset(st) == XXH_OK) {
		XXH3_128bits_update(st, &api, 1);
		if (sys.p)
			XXH3_128bits_update(st, sys.p, (size_t)(sys.end - sys.p));
		XXH3_128bits_update(st, "\n", 1);
		if (tools)
			XXH3_128bits_update(st, tools, strlen(tools));
		h = XXH3_128bits_digest(st);
	}
	XXH3_freeState(st);
	snprintf(out, cap, "p:%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

/*
 * Build the upstream body from the branch: the pager's window for the
 * budget left once system and tools are counted, spliced into the
 * client's body.
 */
static int build_upstream(proxy_turn *t)
{
	proxy *p = t->p;
	const cmv_model *m = cmv_model_handle_profile(t->model);
	cmv_tok *tok = cmv_model_handle_tok(t->model);
	pspan whole = { t->raw, t->raw + t->raw_len }, sys = { NULL, NULL }, tools_span = { NULL, NULL }, msgs_span;
	const char *msgs_key = t->api == PROXY_API_RESPONSES ? "input" : "messages";
	bool recall = !p->cfg.no_recall && t->round + 1 < PROXY_MAX_ROUNDS;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report rep;
	cmv_buf mat = CMV_BUF_INIT((size_t)1 << 30);
	char *tools = NULL, *msgs_text = NULL;
	cmv_id tip;
	size_t over = 0, n;
	int error;

	cmv_materialize_report_init(&rep); /* the version that has `anchored` */
	cmv_buf_clear(&t->upstream);
	if ((error = page_tools(&tools, t, recall, false)) < 0)
		goto done;
	/* what is sent besides the messages: the client's system prompt and the tools as paged */
	uint64_t sys_n = 0;
	if (pjs_member(&sys, whole, t->api == PROXY_API_RESPONSES ? "instructions" : "system") &&
	    cmv_model_count(&n, NULL, m, tok, sys.p, (size_t)(sys.end - sys.p)) == 0)
		over += sys_n = n;
	if (tools && cmv_model_count(&n, NULL, m, tok, tools, strlen(tools)) == 0) {
		over += n;
		t->st.tools_tokens = n;
	}
	uint64_t base = p->cfg.budget ? p->cfg.budget
		: m->context_window > m->max_output ? m->context_window - m->max_output : 0;
	uint64_t held = (uint64_t)ceil((double)over * (1 + m->margin));
	if (held >= base) {
		error = cmv_error__set(CMV_EBUDGET, "the system prompt and tool definitions alone (%zu tokens) fill the budget of %llu",
				       over, (unsigned long long)base);
		goto done;
	}
	po.budget = base - held;
	po.state_branch = t->branch;
	po.stub_pinned = true;
	/*
	 * Anchored on the last reply's bill while what is sent beside the
	 * messages is what it was sent with (docs/proxy.md, "Budgets and
	 * paging"): the system prompt and the tools as paged, for this API.
	 */
	char live_key[CMV_ID_HEXSZ + 8];
	live_key_of(live_key, sizeof(live_key), t, sys, tools);
	po.live_key = live_key;
	po.live_why = t->st.unanchored;
	po.live_beside = over; /* this request's, not the last one's: the tools may have been stubbed since */
	/* signed thinking of the other provider's phase: a recallable stub, where it would be refused (docs/proxy.md) */
	po.render_flags |= CMV_RENDER_STUB_THINKING;
	po.target = t->target.api == PROXY_API_ANTHROPIC ? CMV_RENDER_ANTHROPIC
		: t->target.api == PROXY_API_CHAT ? CMV_RENDER_OPENAI_CHAT : CMV_RENDER_OPENAI_RESPONSES;
	size_t n_grown = cmv__pager_spliced, n_whole = cmv__pager_whole; /* under the store lock: this call's alone */
	if ((error = cmv_resolve(&tip, p->repo, t->branch)) < 0 ||
	    (error = cmv_materialize_for(&mat, &rep, p->repo, &tip, t->model, &po)) < 0)
		goto done;
	t->st.window = cmv__pager_spliced != n_grown ? 'g' : cmv__pager_whole != n_whole ? 'w' : 'k';
	t->st.budget = p->cfg.budget ? p->cfg.budget : base;
	free(t->pages);
	t->pages = NULL;
	t->n_pages = 0;
	if (rep.n_pages && (t->pages = malloc(rep.n_pages * sizeof(*t->pages)))) {
		memcpy(t->pages, rep.pages, rep.n_pages * sizeof(*t->pages));
		t->n_pages = rep.n_pages;
	}
	t->page_budget = po.budget;
	t->st.tokens = rep.tokens + held;
	t->st.tokens_full = rep.tokens_full + held;
	t->st.stubbed = rep.stubbed;
	t->st.evicted = rep.evicted;
	/* the pager cut the prefix: its cache is lost from there anyway, so idle tools are stubbed again now */
	if (t->have_cut && t->last_cut != rep.stubbed + rep.evicted && t->st.n_tools_stubbed < t->st.n_tools) {
		uint64_t was = t->st.tools_tokens;
		cJSON_free(tools);
		tools = NULL;
		if ((error = page_tools(&tools, t, recall, true)) < 0)
			goto done;
		/* only stubs added, each shorter than its definition: the window's budget, counted with the old set, holds */
		if (tools && cmv_model_count(&n, NULL, m, tok, tools, strlen(tools)) == 0) {
			t->st.tools_tokens = n;
			t->st.tokens = t->st.tokens + n - was;
		}
	}
	t->last_cut = rep.stubbed + rep.evicted;
	t->have_cut = true;
	t->st.anchored = rep.anchored;
	t->st.correction = rep.anchored ? rep.correction : 0;
	t->st.n_anchored += rep.anchored;
	if (rep.anchored) {
		/* the pager's count is the bill's prediction: the window's part of the line's figure */
		t->st.tokens = rep.tokens + held;
	}
	/* what goes beside the messages as sent (the tools paged again after a cut): the bill's other part */
	live_key_of(live_key, sizeof(live_key), t, sys, tools);
	if ((error = cmv_pager_sent(p->repo, t->branch, m, po.target, &tip, &rep, live_key, sys_n + t->st.tools_tokens)) < 0)
		goto done;
	if (t->target.translated) {
		error = build_translated(t, &mat, tools);
		goto done;
	}
	pspan mwhole = { mat.ptr, mat.ptr + mat.size }, mm;
	if (!pjs_member(&mm, mwhole, msgs_key)) {
		error = cmv_error__set(CMV_EINVALID, "the pager's request has no \"%s\"", msgs_key);
		goto done;
	}
	/*
	 * The fault keys need the calls and the stubbed results: each message's
	 * are read once and kept by its bytes (fk_lookup), and a message that
	 * holds neither (a resident tool output: most of the bytes) is never
	 * parsed.
	 */
	pspan *wit = NULL;
	fk_item **fki = NULL;
	size_t n_wit = 0;
	if ((error = pjs_items(&wit, &n_wit, mm)) < 0 || !(fki = calloc(n_wit + 1, sizeof(*fki)))) {
		free(wit);
		error = error < 0 ? error : cmv_error__oom();
		goto done;
	}
	/* the items stay in the cache while the store lock is held (emptied only here): fki borrows them */
	if (p->fkc && p->fkc->n + n_wit > FK_MAX_ITEMS)
		fk_cache_clear(p->fkc);
	for (size_t k = 0; k < n_wit && !error; k++)
		error = fk_lookup(&fki[k], p, wit[k]);
	if (!error)
		error = fault_keys_of(t, fki, n_wit);
	free(fki);
	pspan lastsp = n_wit ? wit[n_wit - 1] : (pspan){ NULL, NULL };
	free(wit);
	if (error < 0)
		goto done;
	if (t->api == PROXY_API_ANTHROPIC && n_wit > 0) {
		/*
		 * One cache marker on the last message: the next turn's request
		 * repeats this one's prefix, so the provider reads it from cache.
		 * The client's own markers on system and tools stay; four at most.
		 * The pager printed the array as cJSON prints it: only its last
		 * message is printed again, the rest kept as the pager wrote it.
		 */
		size_t markers = 0;
		if (sys.p)
			markers += count_markers(sys);
		if (pjs_member(&tools_span, whole, "tools"))
			markers += count_markers(tools_span);
		cJSON *last = cJSON_ParseWithLength(lastsp.p, (size_t)(lastsp.end - lastsp.p));
		cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
		if (cJSON_IsString(content)) {
			cJSON *blk = cJSON_CreateObject();
			cJSON_AddStringToObject(blk, "type", "text");
			cJSON_AddStringToObject(blk, "text", content->valuestring);
			cJSON *arr = cJSON_CreateArray();
			cJSON_AddItemToArray(arr, blk);
			cJSON_ReplaceItemInObjectCaseSensitive(last, "content", arr);
			content = arr;
		}
		cJSON *lb = cJSON_GetArrayItem(content, cJSON_GetArraySize(content) - 1);
		const char *lbt = jstr(lb, "type");
		if (markers < 4 && cJSON_IsObject(lb) && lbt && strcmp(lbt, "thinking") && strcmp(lbt, "redacted_thinking") &&
		    !cJSON_GetObjectItemCaseSensitive(lb, "cache_control"))
			cJSON_AddItemToObject(lb, "cache_control", cJSON_Parse("{\"type\":\"ephemeral\"}"));
		char *lt = last ? cJSON_PrintUnformatted(last) : NULL;
		cJSON_Delete(last);
		size_t head = (size_t)(lastsp.p - mm.p), tail = (size_t)(mm.end - lastsp.end);
		if (!lt || !(msgs_text = malloc(head + strlen(lt) + tail + 1))) {
			cJSON_free(lt);
			error = cmv_error__oom();
			goto done;
		}
		memcpy(msgs_text, mm.p, head);
		memcpy(msgs_text + head, lt, strlen(lt));
		memcpy(msgs_text + head + strlen(lt), lastsp.end, tail);
		msgs_text[head + strlen(lt) + tail] = '\0';
		cJSON_free(lt);
	}
	/* the client's body with its messages and tools replaced, members in their order */
	if (!pjs_member(&msgs_span, whole, msgs_key)) {
		error = cmv_error__set(CMV_EINVALID, "the request has no \"%s\"", msgs_key);
		goto done;
	}
	bool have_tools = tools && pjs_member(&tools_span, whole, "tools");
	pspan first = msgs_span, second = { NULL, NULL };
	const char *first_text = msgs_text ? msgs_text : NULL;
	size_t first_len = msgs_text ? strlen(msgs_text) : (size_t)(mm.end - mm.p);
	const char *first_src = msgs_text ? msgs_text : mm.p;
	(void)first_text;
	if (have_tools)
		second = tools_span;
	if (have_tools && second.p < first.p) {
		pspan s = first;
		first = second;
		second = s;
	}
	const char *a_src = first.p == msgs_span.p ? first_src : tools;
	size_t a_len = first.p == msgs_span.p ? first_len : strlen(tools);
	if ((error = cmv_buf_put(&t->upstream, t->raw, (size_t)(first.p - t->raw))) < 0 ||
	    (error = cmv_buf_put(&t->upstream, a_src, a_len)) < 0)
		goto done;
	if (have_tools) {
		const char *b_src = second.p == msgs_span.p ? first_src : tools;
		size_t b_len = second.p == msgs_span.p ? first_len : strlen(tools);
		if ((error = cmv_buf_put(&t->upstream, first.end, (size_t)(second.p - first.end))) < 0 ||
		    (error = cmv_buf_put(&t->upstream, b_src, b_len)) < 0 ||
		    (error = cmv_buf_put(&t->upstream, second.end, (size_t)(t->raw + t->raw_len - second.end))) < 0)
			goto done;
	} else if (tools) {
		/* no tools member: the recall tool alone, added at the end */
		const char *end = t->raw + t->raw_len;
		while (end > first.end && end[-1] != '}')
			end--;
		if (end <= first.end) {
			error = cmv_error__set(CMV_EINVALID, "the request is not a JSON object");
			goto done;
		}
		if ((error = cmv_buf_put(&t->upstream, first.end, (size_t)(end - 1 - first.end))) < 0 ||
		    (error = cmv_buf_printf(&t->upstream, ",\"tools\":%s}", tools)) < 0)
			goto done;
	} else if ((error = cmv_buf_put(&t->upstream, first.end, (size_t)(t->raw + t->raw_len - first.end))) < 0) {
		goto done;
	}
	if (strcmp(t->target.model, t->client_model))
		error = rename_model(t);
done:
	free(msgs_text);
	cJSON_free(tools);
	cmv_materialize_report_dispose(&rep);
	cmv_buf_dispose(&mat);
	return error;
}

/* ---- a request in ---------------------------------------------------------------------- */

/*
 * Move the branch back to before the reply of entry `keep`, the reply
 * dropped from it: what the client sent back in its place is appended
 * instead.
 */
static int rewind_reply(proxy_turn *t, size_t keep)
{
	proxy *p = t->p;
	cmv_id tip;
	int error;

	if ((error = cmv_resolve(&tip, p->repo, t->branch)) < 0)
		return error;
	if (keep == 0)
		error = cmv_ref_delete(p->repo, t->branch);
	else
		error = cmv_branch_update(p->repo, t->branch, &t->e[keep - 1].node, &tip);
	t->n_e = keep;
	return error;
}

/* Move the branch back to where the client's line left it, the old line kept beside it. */
static int fork_back(proxy_turn *t, size_t keep)
{
	proxy *p = t->p;
	cmv_id tip;
	char hex[CMV_ID_HEXSZ + 1], name[300];
	int error;

	if ((error = cmv_resolve(&tip, p->repo, t->branch)) < 0)
		return error;
	snprintf(name, sizeof(name), "%s.fork-%.7s", t->branch, cmv_id_tostr(hex, sizeof(hex), &tip));
	if ((error = cmv_branch_create(p->repo, name, &tip, t->branch)) < 0 && error != CMV_EEXISTS)
		return error;
	cmv_error_clear();
	if (keep == 0) {
		/* nothing kept: the branch begins again with the next append */
		if ((error = cmv_ref_delete(p->repo, t->branch)) < 0)
			return error;
	} else if ((error = cmv_branch_update(p->repo, t->branch, &t->e[keep - 1].node, &tip)) < 0) {
		return error;
	}
	t->n_e = keep;
	return 0;
}

int proxy_turn_new(proxy_turn **out, proxy *p, proxy_api api, const char *session_hint, const char *body, size_t len)
{
	proxy_turn *t = calloc(1, sizeof(*t));
	cmv_buf tmp = CMV_BUF_INIT((size_t)1 << 30), batch = CMV_BUF_INIT((size_t)1 << 30);
	pspan *items = NULL;
	cmv_id *dig = NULL;
	size_t n_items = 0;
	char sid[256];
	int error = 0;

	*out = NULL;
	if (!t)
		return cmv_error__oom();
	t->p = p;
	t->api = api;
	cmv_buf_init(&t->upstream, (size_t)1 << 30);
	if (api == PROXY_API_NONE) {
		error = cmv_error__set(CMV_EINVALID, "not a request the proxy pages");
		goto fail;
	}
	if (len > PROXY_MAX_REQUEST) {
		error = cmv_error__set(CMV_ETOOBIG, "the request is over %zu bytes", PROXY_MAX_REQUEST);
		goto fail;
	}
	if (!(t->raw = malloc(len + 1))) {
		error = cmv_error__oom();
		goto fail;
	}
	memcpy(t->raw, body, len);
	t->raw[len] = '\0';
	t->raw_len = len;
	const char *msgs_key = api == PROXY_API_RESPONSES ? "input" : "messages";
	pspan whole = { t->raw, t->raw + len }, ms;
	/*
	 * The body is parsed without its messages, which are most of it: they
	 * are read as spans (pjs_items), matched by digest, and parsed where
	 * they are used: the new ones by the append, the assistant items
	 * matched to a reply here, all of them for a request passed through
	 * (docs/proxy.md, "How a request is handled").
	 */
	bool skeleton = pjs_member(&ms, whole, msgs_key) && ms.p < ms.end && *ms.p == '[';
	if (skeleton) {
		size_t head = (size_t)(ms.p - t->raw), rest = (size_t)(whole.end - ms.end);
		if ((error = cmv_buf_put(&tmp, t->raw, head)) < 0 || (error = cmv_buf_puts(&tmp, "[]")) < 0 ||
		    (error = cmv_buf_put(&tmp, ms.end, rest)) < 0)
			goto fail;
		t->body = cJSON_ParseWithLength(tmp.ptr, tmp.size);
	} else {
		t->body = cJSON_ParseWithLength(body, len);
	}
	if (!t->body || !cJSON_IsObject(t->body)) {
		error = cmv_error__set(CMV_EINVALID, "the request body is not a JSON object");
		goto fail;
	}
	t->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t->body, "stream"));
	const char *model = jstr(t->body, "model");
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(t->body, msgs_key);
	if (!model || !*model) {
		error = cmv_error__set(CMV_EINVALID, "the request has no \"model\"");
		goto fail;
	}
	if (api == PROXY_API_RESPONSES && cJSON_IsString(msgs)) {
		/* a Responses input given as one string: taken as is, recorded nowhere */
		t->side = true;
		goto side;
	}
	if (!skeleton || !cJSON_IsArray(msgs) || (error = pjs_items(&items, &n_items, ms)) < 0) {
		cmv_error_clear();
		error = cmv_error__set(CMV_EINVALID, "the request's \"%s\" is not an array", msgs_key);
		goto fail;
	}
	if (!(dig = calloc(n_items + 1, sizeof(*dig)))) {
		error = cmv_error__oom();
		goto fail;
	}
	for (size_t i = 0; i < n_items && !error; i++)
		error = digest_span(&dig[i], items[i], &tmp);
	if (error < 0)
		goto fail;
	if (!session_of(sid, sizeof(sid), t->body, session_hint)) {
		/* no session id: one is derived from the conversation's first item (docs/proxy.md) */
		cmv_id d;
		char hex[CMV_ID_HEXSZ + 1];
		cmv_id_hash(&d, n_items ? (const void *)&dig[0] : "", n_items ? sizeof(dig[0]) : 0);
		snprintf(sid, sizeof(sid), "conv-%.16s", cmv_id_tostr(hex, sizeof(hex), &d));
	}
	branch_of(t->branch, sizeof(t->branch), sid);

	pthread_mutex_lock(&p->lock);
	snprintf(t->client_model, sizeof(t->client_model), "%s", model);
	if ((error = model_for(&t->model, p, model, api, true)) < 0 || (error = state_load(t)) < 0)
		goto unlock;
	/* match the client's items against the branch's entries */
	size_t i = 0, j = 0;
	bool rewind = false;
	for (; j < t->n_e && i <= n_items; j++) {
		entry *e = &t->e[j];
		if (e->kind == 'h')
			continue;
		if (e->kind == 'r') {
			size_t k = i;
			for (cJSON *it; k < n_items; k++) {
				if (!(it = cJSON_ParseWithLength(items[k].p, (size_t)(items[k].end - items[k].p)))) {
					error = cmv_error__set(CMV_EINVALID, "the request body is not a JSON object");
					goto unlock;
				}
				bool asst = assistant_item(it, api);
				rewind |= asst && api == PROXY_API_RESPONSES && item_kept_whole(it);
				cJSON_Delete(it);
				if (!asst)
					break;
			}
			if (k == i)
				break;
			/*
			 * The reply holds an item kept whole (Codex's tool search):
			 * what goes upstream from now on is the client's copy, as
			 * it sent it (Codex adds its own metadata to the item), so
			 * the reply is appended again from that copy.
			 */
			if (rewind)
				break;
			e->kind = 'g';
			e->n = k - i;
			digest_many(&e->digest, dig + i, k - i);
			i = k;
			continue;
		}
		cmv_id d;
		if (i + e->n > n_items)
			break;
		digest_many(&d, dig + i, e->n);
		if (!cmv_id_equal(&d, &e->digest))
			break;
		i += e->n;
	}
	if (rewind) {
		if ((error = rewind_reply(t, j)) < 0)
			goto unlock;
	} else if (j < t->n_e) {
		bool tools = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t->body, "tools")) > 0;
		if (!tools) {
			/* passed through as the client wrote it: JSON, as the whole body was checked to be before */
			cJSON *all = cJSON_ParseWithLength(ms.p, (size_t)(ms.end - ms.p));
			if (!all) {
				error = cmv_error__set(CMV_EINVALID, "the request body is not a JSON object");
				goto unlock;
			}
			cJSON_Delete(all);
			t->side = true;
			goto unlock;
		}
		/* hidden entries just before the divergence go with it */
		while (j > 0 && t->e[j - 1].kind == 'h')
			j--;
		if ((error = fork_back(t, j)) < 0)
			goto unlock;
	}
	if (i < n_items) {
		cmv_id head, d;
		if ((error = cmv_buf_putc(&batch, '[')) < 0)
			goto unlock;
		for (size_t k = i; k < n_items && !error; k++)
			if ((k > i && (error = cmv_buf_putc(&batch, ',')) < 0) ||
			    (error = cmv_buf_put(&batch, items[k].p, (size_t)(items[k].end - items[k].p))) < 0)
				break;
		if (!error && !(error = cmv_buf_putc(&batch, ']')) &&
		    (error = cmv_append_json(&head, p->repo, t->branch, api_format(api), batch.ptr, batch.size)) < 0)
			cmv_error__prefix("%s: ", msgs_key);
		if (error < 0)
			goto unlock;
		digest_many(&d, dig + i, n_items - i);
		if ((error = push_entry(t, 'g', n_items - i, &d, &head)) < 0)
			goto unlock;
		t->st.appended = n_items - i;
	}
	if ((error = plan_models(t)) < 0)
		goto unlock;
	/* the first model that can take the request: a model failed over from that still fails is passed by */
	for (size_t c = 0; c < t->n_cand; c++) {
		if ((error = set_target(t, c, c > 0)) == 0 && (error = build_upstream(t)) == 0)
			break;
		if (c + 1 < t->n_cand && t->fo_primary && !strcmp(t->cand[c], t->fo_primary))
			cmv_error_clear();
		else
			goto unlock;
	}
	if ((error = state_save(t)) < 0)
		goto unlock;
unlock:
	pthread_mutex_unlock(&p->lock);
	if (error < 0)
		goto fail;
side:
	t->st.side = t->side;
	free(items);
	free(dig);
	cmv_buf_dispose(&tmp);
	cmv_buf_dispose(&batch);
	*out = t;
	return 0;
fail:
	free(items);
	free(dig);
	cmv_buf_dispose(&tmp);
	cmv_buf_dispose(&batch);
	proxy_turn_free(t);
	return error;
}

void proxy_turn_free(proxy_turn *t)
{
	if (!t)
		return;
	cJSON_Delete(t->body);
	free(t->raw);
	free(t->e);
	for (size_t i = 0; i < t->n_tools; i++)
		free(t->tools[i].name);
	free(t->tools);
	free(t->fk);
	free(t->pages);
	cmv_buf_dispose(&t->upstream);
	for (size_t i = 0; i < t->n_cand; i++)
		free(t->cand[i]);
	free(t->custom);
	free(t->fo_primary);
	free(t->fo_fallback);
	free(t);
}

const char *proxy_turn_upstream(const proxy_turn *t, size_t *len)
{
	if (t->side) {
		*len = t->raw_len;
		return NULL;
	}
	*len = t->upstream.size;
	return t->upstream.ptr;
}

const cJSON *proxy_turn_client(const proxy_turn *t)
{
	return t->body;
}

const char *proxy_turn_branch(const proxy_turn *t)
{
	return t->branch;
}

bool proxy_turn_streams(const proxy_turn *t)
{
	return t->stream;
}

const proxy_turn_stats *proxy_turn_stats_get(const proxy_turn *t)
{
	return &t->st;
}

/* ---- a reply in ------------------------------------------------------------------------ */

/*
 * A fault: counted, and recorded on the branch by the pager (which keeps
 * the page resident for a while) when the page can stay without crowding
 * the window: one over a quarter of the messages' budget is answered but
 * not pinned, or the next request could not fit at all.
 */
static void fault(proxy_turn *t, const char *page)
{
	size_t n = strlen(page);
	t->st.faults++;
	for (size_t i = 0; i < t->n_pages; i++)
		if (!strncmp(t->pages[i].id, page, n)) {
			if (t->pages[i].tokens > t->page_budget / 4)
				return;
			break;
		}
	if (cmv_pager_fault(t->p->repo, t->branch, page) < 0)
		cmv_error_clear();
}

/* A call in a reply: the provider's id, name and input. */
typedef struct {
	const char *id, *name;
	const cJSON *input;
	cJSON *node;   /* the block, item or tool_calls entry (to drop it) */
	cJSON *parent;
} reply_call;

/* The calls of a response body. */
static int reply_calls(reply_call **out, size_t *n, cJSON *body, proxy_api api)
{
	cJSON *list = NULL;
	*out = NULL;
	*n = 0;
	if (api == PROXY_API_ANTHROPIC)
		list = cJSON_GetObjectItemCaseSensitive(body, "content");
	else if (api == PROXY_API_RESPONSES)
		list = cJSON_GetObjectItemCaseSensitive(body, "output");
	else
		list = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(body, "choices"), 0),
							 "message"),
			"tool_calls");
	if (!cJSON_IsArray(list))
		return 0;
	if (!(*out = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(**out))))
		return cmv_error__oom();
	for (cJSON *b = list->child; b; b = b->next) {
		const char *type = jstr(b, "type");
		reply_call c = { NULL, NULL, NULL, b, list };
		if (api == PROXY_API_ANTHROPIC && type && !strcmp(type, "tool_use"))
			c.id = jstr(b, "id"), c.name = jstr(b, "name"), c.input = cJSON_GetObjectItemCaseSensitive(b, "input");
		else if (api == PROXY_API_RESPONSES && type && !strcmp(type, "function_call"))
			c.id = jstr(b, "call_id"), c.name = jstr(b, "name"), c.input = cJSON_GetObjectItemCaseSensitive(b, "arguments");
		else if (api == PROXY_API_CHAT) {
			const cJSON *fn = cJSON_GetObjectItemCaseSensitive(b, "function");
			c.id = jstr(b, "id"), c.name = jstr(fn, "name"), c.input = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
		}
		if (c.id && c.name)
			(*out)[(*n)++] = c;
	}
	return 0;
}

/* The text of a recall call's input, as cmv_recall_tool_call takes it. */
static char *input_text(const cJSON *input)
{
	if (cJSON_IsString(input))
		return strdup(input->valuestring);
	return input ? cJSON_PrintUnformatted(input) : strdup("{}");
}

/* The answers to the recall calls, as the API's messages. */
static int recall_answers(cmv_buf *out, proxy_turn *t, reply_call *calls, size_t n)
{
	cJSON *arr = cJSON_CreateArray(), *blocks = NULL;
	int error = 0;

	if (!arr)
		return cmv_error__oom();
	if (t->target.api == PROXY_API_ANTHROPIC) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "role", "user");
		blocks = cJSON_AddArrayToObject(m, "content");
		cJSON_AddItemToArray(arr, m);
	}
	for (size_t i = 0; i < n && !error; i++) {
		cmv_buf ans = CMV_BUF_INIT((size_t)1 << 28);
		char *in = input_text(calls[i].input);
		cJSON *id = in ? cJSON_Parse(in) : NULL;
		const char *page = jstr(id, "id");
		int rc = in ? cmv_recall_tool_call(&ans, t->p->repo, t->branch, in, strlen(in)) : cmv_error__oom();
		if (rc >= 0 && rc != 1 && page)
			fault(t, page);
		if (rc < 0) {
			error = rc;
		} else {
			cJSON *o = cJSON_CreateObject();
			if (t->target.api == PROXY_API_ANTHROPIC) {
				cJSON_AddStringToObject(o, "type", "tool_result");
				cJSON_AddStringToObject(o, "tool_use_id", calls[i].id);
				cJSON_AddStringToObject(o, "content", ans.ptr);
				if (rc == 1)
					cJSON_AddTrueToObject(o, "is_error");
				cJSON_AddItemToArray(blocks, o);
			} else if (t->target.api == PROXY_API_CHAT) {
				cJSON_AddStringToObject(o, "role", "tool");
				cJSON_AddStringToObject(o, "tool_call_id", calls[i].id);
				cJSON_AddStringToObject(o, "content", ans.ptr);
				cJSON_AddItemToArray(arr, o);
			} else {
				cJSON_AddStringToObject(o, "type", "function_call_output");
				cJSON_AddStringToObject(o, "call_id", calls[i].id);
				cJSON_AddStringToObject(o, "output", ans.ptr);
				cJSON_AddItemToArray(arr, o);
			}
		}
		cJSON_Delete(id);
		free(in);
		cmv_buf_dispose(&ans);
	}
	char *text = error ? NULL : cJSON_PrintUnformatted(arr);
	if (!error)
		error = text ? cmv_buf_puts(out, text) : cmv_error__oom();
	cJSON_free(text);
	cJSON_Delete(arr);
	return error;
}

int proxy_turn_reply(proxy_turn *t, const char *body, size_t len, bool *again)
{
	proxy *p = t->p;
	cJSON *j = t->side ? NULL : cJSON_ParseWithLength(body, len); /* a side request's reply is not read */
	reply_call *calls = NULL;
	size_t n_calls = 0, n_recall = 0;
	cmv_buf answers = CMV_BUF_INIT((size_t)1 << 30);
	cmv_reply reply;
	char *filtered = NULL;
	int error;

	*again = false;
	memset(&reply, 0, sizeof(reply));
	if (t->side)
		return 0;
	if (!j) {
		error = cmv_error__set(CMV_EINVALID, "the upstream's reply is not JSON");
		goto done;
	}
	if ((error = reply_calls(&calls, &n_calls, j, t->target.api)) < 0)
		goto done;
	for (size_t i = 0; i < n_calls; i++)
		n_recall += !strcmp(calls[i].name, "cmv_recall");
	bool answer = n_recall && n_recall == n_calls && t->round + 1 < PROXY_MAX_ROUNDS && !p->cfg.no_recall;
	if (n_recall && !answer) {
		/* the client never sees a recall call: one it would have to answer is dropped from the record too */
		for (size_t i = 0; i < n_calls; i++)
			if (!strcmp(calls[i].name, "cmv_recall"))
				cJSON_Delete(cJSON_DetachItemViaPointer(calls[i].parent, calls[i].node));
		free(calls);
		calls = NULL;
		if (!(filtered = cJSON_PrintUnformatted(j)) || (error = reply_calls(&calls, &n_calls, j, t->target.api)) < 0) {
			error = error ? error : cmv_error__oom();
			goto done;
		}
		n_recall = 0;
	}
	pthread_mutex_lock(&p->lock);
	if ((error = cmv_reply_append(&reply, p->repo, t->branch, api_format(t->target.api), filtered ? filtered : body,
				      filtered ? strlen(filtered) : len, t->model)) < 0)
		goto unlock;
	t->replies++;
	if ((error = push_entry(t, answer ? 'h' : 'r', 0, NULL, &reply.head)) < 0)
		goto unlock;
	for (size_t i = 0; i < n_calls && !error; i++) {
		if (!strcmp(calls[i].name, "cmv_recall"))
			continue;
		error = tool_used(t, calls[i].name);
		/* the same call again, its earlier result paged out: a fault */
		char *in = canon_input(calls[i].input);
		cmv_buf k = CMV_BUF_INIT((size_t)1 << 26);
		cmv_id key;
		if (!in || cmv_buf_printf(&k, "%s", calls[i].name) < 0 || cmv_buf_putc(&k, '\x1f') < 0 ||
		    cmv_buf_puts(&k, in) < 0) {
			free(in);
			cmv_buf_dispose(&k);
			error = cmv_error__oom();
			break;
		}
		cmv_id_hash(&key, k.ptr, k.size);
		for (size_t f = 0; f < t->n_fk; f++)
			if (cmv_id_equal(&key, &t->fk[f].key)) {
				fault(t, t->fk[f].page);
				break;
			}
		free(in);
		cmv_buf_dispose(&k);
	}
	if (!error && answer) {
		cmv_id head;
		if ((error = recall_answers(&answers, t, calls, n_calls)) < 0 ||
		    (error = cmv_append_json(&head, p->repo, t->branch, api_format(t->target.api), answers.ptr, answers.size)) < 0 ||
		    (error = push_entry(t, 'h', 0, NULL, &head)) < 0)
			goto unlock;
		t->round++;
		t->st.rounds = t->round;
		if ((error = build_upstream(t)) < 0)
			goto unlock;
		*again = true;
	}
	if (!error)
		error = state_save(t);
unlock:
	pthread_mutex_unlock(&p->lock);
done:
	cmv_reply_dispose(&reply);
	cmv_buf_dispose(&answers);
	cJSON_free(filtered);
	free(calls);
	cJSON_Delete(j);
	return error;
}

/* ---- failover -------------------------------------------------------------------------- */

const proxy_target *proxy_turn_target(const proxy_turn *t)
{
	return &t->target;
}

int proxy_turn_next(proxy_turn *t, const char *why)
{
	proxy *p = t->p;
	size_t from = t->ci;
	int moved = 0;

	pthread_mutex_lock(&p->lock);
	snprintf(t->st.why, sizeof(t->st.why), "%s: %s", t->cand[from], why);
	for (size_t c = from + 1; c < t->n_cand && !moved; c++) {
		if (set_target(t, c, true) == 0 && build_upstream(t) == 0) {
			moved = 1;
			t->st.failovers++;
			break;
		}
		/* a model that cannot take the request is passed by, and the log line says why */
		size_t n = strlen(t->st.why);
		snprintf(t->st.why + n, sizeof(t->st.why) - n, "; %s skipped: %s", t->cand[c], cmv_error_last()->message);
		cmv_error_clear();
	}
	pthread_mutex_unlock(&p->lock);
	return moved;
}

int proxy_turn_settle(proxy_turn *t, const char *why)
{
	proxy *p = t->p;
	cmv_buf ref = CMV_BUF_INIT(1 << 20), reason = CMV_BUF_INIT(1 << 12);
	cmv_switch_options so;
	cmv_switch_report rep = { 0 };
	cmv_model_handle *h;
	int error;

	if (t->side || !t->n_cand)
		return 0;
	pthread_mutex_lock(&p->lock);
	const char *used = t->cand[t->ci];
	if ((error = cmv_branch_llm_get(&ref, p->repo, t->branch)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	}
	if (error < 0)
		goto done;
	const char *cur = ref.size ? ref.ptr : t->client_model;
	bool back = t->fo_primary && !strcmp(used, t->fo_primary);
	if (!strcmp(used, cur) && !back) {
		if (t->st.failovers && t->fo_primary) {
			/* the model failed over from failed again: the next try waits its time */
			t->fo_time = (long long)time(NULL);
			t->fo_dirty = true;
		}
		if (t->fo_dirty)
			error = state_save(t);
		goto done;
	}
	if (back)
		error = cmv_buf_printf(&reason, "return to %s after a failover", used);
	else
		error = cmv_buf_printf(&reason, "failover from %s: %s", cur, why ? why : t->st.why);
	if (error < 0 || (error = model_for(&h, p, used, t->api, !strcmp(used, t->client_model))) < 0)
		goto done;
	cmv_switch_options_init(&so);
	so.reason = reason.ptr;
	so.tools_as_text = true; /* checked when the model was chosen; a fallback is never refused after it answered */
	if ((error = cmv_switch(&rep, p->repo, t->branch, h, &so)) < 0)
		goto done;
	t->st.switched = true;
	if (back) {
		free(t->fo_primary);
		free(t->fo_fallback);
		t->fo_primary = t->fo_fallback = NULL;
	} else {
		if (!t->fo_primary && !(t->fo_primary = strdup(cur))) {
			error = cmv_error__oom();
			goto done;
		}
		free(t->fo_fallback);
		if (!(t->fo_fallback = strdup(used))) {
			error = cmv_error__oom();
			goto done;
		}
		t->fo_time = (long long)time(NULL);
	}
	error = state_save(t);
done:
	pthread_mutex_unlock(&p->lock);
	cmv_buf_dispose(&ref);
	cmv_buf_dispose(&reason);
	return error;
}
