/* SPDX-License-Identifier: MIT */
/*
 * Calibration from billed usage: what a provider really bills for what cmv
 * counts, per model, learned from the sessions a store imports.
 *
 * A Claude Code session records each API call's prompt size
 * (message.usage: input + cache_creation + cache_read tokens). Between two
 * consecutive calls of one model the prompt grows by exactly what was
 * appended: the first call's reply and the tool results or user text that
 * followed. The host's own hidden prefix (its system prompt and tool
 * definitions) is in both and cancels out. Over every such pair whose
 * appended content cmv can see whole (no system record, no attachment, no
 * thinking, no image in between), the billed growth is fitted as
 *
 *     billed = factor x raw + per_block x blocks + per_pair
 *
 * where raw is the appended content counted by the model's tokenizer (the
 * store's token cache makes this cheap), blocks the content blocks, and
 * per_pair the framing of the two messages a pair adds. The fit is least
 * squares weighted by 1/billed (a growth's error is a sum over its tokens:
 * its variance grows with its size); a coefficient that comes out negative
 * is dropped and the rest refitted.
 *
 * The margin is learned on whole requests, not pairs: each call's prompt,
 * less the hidden prefix (the prompt of the first call of its segment, a
 * session's calls of one model between compactions, less what cmv counts of
 * the conversation before it), against what the fitted profile
 * counts of the conversation before the call, rendered for the model as the
 * pager renders it (what it cannot see counts nothing and so shows as
 * under-count). That is the promise a budget makes: a request cmv counts at
 * c is billed at most c x (1 + margin) + margin_tokens. Up to
 * REQUESTS_PER_SESSION calls of a session are rendered for it, evenly spread.
 * A session is calibrated in one transaction: its token counts, its notes,
 * all or nothing.
 *
 * Invariants:
 * 1. A session's pairs and requests are kept under its key: importing it
 *    again (or a grown copy) replaces them, never adds them twice.
 * 2. A calibration is used for counting only from CMV_CALIBRATION_MIN_PAIRS
 *    pairs on; below that it is shown, not believed. Its margin replaces the
 *    profile's only from CMV_CALIBRATION_MIN_SESSIONS sessions on (measured
 *    out of sample by cmv-bench count: a margin learned from one or two
 *    sessions under-covered the next one); before, the larger of the two.
 * 3. The margin a calibrated model keeps is relative (the 95th percentile of
 *    its large requests' under-count, never below a floor) plus a number of
 *    tokens, so that no request seen was billed more than count x (1 +
 *    margin) + margin_tokens: a budget is a promise for every request like
 *    those seen, small ones (where a host's own additions weigh most) too.
 *
 * Kept in store notes ("calibration:MODEL", and "calibration:models" listing
 * them), as text: a header and a fit line, then a line per pair ("p") and
 * per request ("r", keyed by session and segment).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/count.h>
#include "formats/formats_int.h"
#include "pager_priv.h"

#define NOTE_PREFIX "calibration:"
#define NOTE_INDEX "calibration:models"
#define NOTE_MAGIC "cmv-calibration 1"
/* A provider's pooled margin (per tokenizer): "calibration-pool:PROVIDER:TOKENIZER", apart from the models' notes. */
#define NOTE_POOL "calibration-pool:"
#define POOL_MAGIC "cmv-calibration-pool 1"
/* The least margin a fitted approximation keeps, and an exact tokenizer's (framing can still differ). */
#define MARGIN_FLOOR_APPROX 0.02
#define MARGIN_FLOOR_EXACT 0.005
/* A request this large (billed content) says the relative margin; smaller ones, what a host adds to each. */
#define LARGE_REQUEST 20000.0
/* Requests rendered and counted per session (evenly spread): what calibrating a session costs. */
#define REQUESTS_PER_SESSION 40
/*
 * And every one of a session's first calls: small and cheap to render, they
 * are where what a host adds unseen weighs most (a file's new text after an
 * edit is a third of a 6k-token request, a thirtieth of a 200k one).
 */
#define EARLY_REQUESTS 12

/* A pair (appended content against billed growth), or a request (everything before a call against its prompt). */
typedef struct {
	char session[160];
	bool request;
	uint64_t raw, blocks, messages, billed;
} obs_pair;

typedef struct {
	char model[CMV_CALIBRATION_MODEL_MAX];
	char tokenizer[32];
	obs_pair *v;
	size_t n, cap;
} model_pairs;

typedef struct {
	model_pairs *v;
	size_t n, cap;
} observation;

static void observation_dispose(observation *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i].v);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static int observe_pair(observation *o, const char *model, const char *tokenizer, const char *session, bool request,
			uint64_t raw, uint64_t blocks, uint64_t messages, uint64_t billed)
{
	model_pairs *mp = NULL;
	int error;

	for (size_t i = 0; i < o->n && !mp; i++)
		if (!strcmp(o->v[i].model, model))
			mp = &o->v[i];
	if (!mp) {
		if ((error = cmv__array_grow((void **)&o->v, &o->cap, o->n, sizeof(*o->v))) < 0)
			return error;
		mp = &o->v[o->n++];
		memset(mp, 0, sizeof(*mp));
		snprintf(mp->model, sizeof(mp->model), "%s", model);
		snprintf(mp->tokenizer, sizeof(mp->tokenizer), "%s", tokenizer);
	}
	if ((error = cmv__array_grow((void **)&mp->v, &mp->cap, mp->n, sizeof(*mp->v))) < 0)
		return error;
	obs_pair *p = &mp->v[mp->n++];
	snprintf(p->session, sizeof(p->session), "%s", session);
	p->request = request;
	p->raw = raw;
	p->blocks = blocks;
	p->messages = messages;
	p->billed = billed;
	return 0;
}

/* ---- reading a Claude Code session's calls ---------------------------------------- */

/* One API call: its prompt size, and what its reply and the records after it appended. */
typedef struct {
	char id[128], model[CMV_CALIBRATION_MODEL_MAX];
	uint64_t prompt;      /* billed prompt size */
	uint64_t raw, blocks; /* the reply and what followed, counted */
	bool unseen;          /* content cmv cannot count went in after it */
	cmv_id before;        /* the last node before the call's reply: the conversation it was sent */
	unsigned segment;     /* calls of one model between compactions: one hidden prefix */
	uint64_t reasoning;   /* Codex: the reply's reasoning tokens, billed in the next prompt of the turn */
	bool broke;           /* Codex: a turn began (or the history was compacted) before this call */
	bool has_before;
} call;

typedef struct {
	cmv_repo *repo;
	const cmv_models *models;
	cmv_tok *toks[8];
	const cmv_model *model; /* the profile of the current call's model, or NULL */
	call *calls;
	size_t n, cap;
	cmv_id prev; /* the node read last */
	/* Codex: a call's record (token_count) comes after its items: they gather here */
	call pending;
	char codex_model[CMV_CALIBRATION_MODEL_MAX];
	double codex_total; /* the last token_count's running total: a repeat is no new call */
	char cc_version[32]; /* Claude Code's version on the last record */
	bool restarted;      /* Claude Code started again since the last call: a new hidden prefix */
} reader;

static cmv_tok *tok_for(reader *r, const char *name)
{
	size_t i;
	for (i = 0; i < CMV_ARRAY_SIZE(r->toks) && r->toks[i]; i++)
		if (!strcmp(cmv_tok_name(r->toks[i]), name))
			return r->toks[i];
	if (i == CMV_ARRAY_SIZE(r->toks)) {
		cmv_error__set(CMV_ERROR, "a session of more than %zu tokenizers", CMV_ARRAY_SIZE(r->toks));
		return NULL;
	}
	if (cmv_tok_load(&r->toks[i], name, NULL) < 0)
		return NULL;
	return r->toks[i];
}

/* Block types a provider is sent whose size cmv counts from its blob alone. */
static bool countable(const char *type)
{
	return !strcmp(type, "text") || !strcmp(type, "tool_use") || !strcmp(type, "tool_result");
}

/* Add a node's sent blocks to the current call; anything cmv cannot count from a blob marks it unseen. */
static int add_blocks(reader *r, call *c, const cmv_node *n)
{
	cmv_tok *tok = NULL;
	int error;

	if (!c)
		return 0;
	if (!r->model) {
		c->unseen = true; /* a model the registry does not know: nothing to count in */
		return 0;
	}
	/* a tokenizer that does not load (or memory that runs out) is an error, not an unseen call */
	if (!(tok = tok_for(r, r->model->tokenizer)))
		return CMV_ERROR;
	for (size_t i = 0; i < n->n_blocks; i++) {
		const cmv_block *b = &n->blocks[i];
		uint64_t raw;
		size_t name_tokens = 0;
		if (!strcmp(b->type, "thinking") || !strcmp(b->type, "redacted_thinking") || !strcmp(b->type, "image") ||
		    !strcmp(b->type, "document")) {
			c->unseen = true; /* billed otherwise than its text: not a plain pair */
			continue;
		}
		if (!countable(b->type))
			continue; /* a format's own block (Claude Code's UI copy of a result): never sent */
		if ((error = cmv_count_blob(&raw, r->repo, tok, &b->blob)) < 0)
			return error;
		if (b->tool_name && (error = cmv_tok_count(&name_tokens, tok, b->tool_name, strlen(b->tool_name))) < 0)
			return error;
		c->raw += raw + name_tokens;
		c->blocks++;
	}
	return 0;
}

/* Count what follows in this model's tokenizer (none when the registry does not know it). */
static void resolve_model(reader *r, const char *model)
{
	if (cmv_models_find(&r->model, r->models, model) < 0) {
		cmv_error_clear();
		r->model = NULL;
	}
}

static uint64_t usage_num(const cJSON *u, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, k);
	return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e15 ? (uint64_t)v->valuedouble : 0;
}

/* One record of the session, in file order along the branch. */
static int read_record(reader *r, const cmv_node *n, const cJSON *j)
{
	const char *type = cmv_formats__cj_str(j, "type");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
	call *cur = r->n ? &r->calls[r->n - 1] : NULL;
	int error;

	if (!type || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isSidechain")))
		return 0;
	/*
	 * Claude Code started again (/exit, then a resume; or a resume by
	 * another version): it builds its system prompt anew (environment, git
	 * status, memory files), so what it sends beside the conversation
	 * changes: 10,049 tokens of growth over a 127-token message after the
	 * /exit of 53ea1606 (entireio-cli 91-b42542f24f).
	 */
	const char *version = cmv_formats__cj_str(j, "version");
	if (version) {
		if (r->cc_version[0] && strcmp(r->cc_version, version))
			r->restarted = true;
		snprintf(r->cc_version, sizeof(r->cc_version), "%s", version);
	}
	if (!strcmp(type, "user") && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "content")) &&
	    strstr(cJSON_GetObjectItemCaseSensitive(msg, "content")->valuestring, "<command-name>/exit</command-name>"))
		r->restarted = true;
	if (!strcmp(type, "assistant") && cJSON_IsObject(msg)) {
		const char *id = cmv_formats__cj_str(msg, "id"), *model = cmv_formats__cj_str(msg, "model");
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(msg, "usage");
		if (!id || !model || !strcmp(model, "<synthetic>") || !cJSON_IsObject(u)) {
			if (cur)
				cur->unseen = true;
			return 0;
		}
		if (!cur || strcmp(cur->id, id)) {
			if ((error = cmv__array_grow((void **)&r->calls, &r->cap, r->n, sizeof(*r->calls))) < 0)
				return error;
			cur = &r->calls[r->n++];
			memset(cur, 0, sizeof(*cur));
			snprintf(cur->id, sizeof(cur->id), "%s", id);
			snprintf(cur->model, sizeof(cur->model), "%s", model);
			cur->prompt = usage_num(u, "input_tokens") + usage_num(u, "cache_creation_input_tokens") +
				      usage_num(u, "cache_read_input_tokens");
			cur->before = r->prev;
			/*
			 * A new segment where the model changed, the prompt fell by
			 * a third (a compaction, a /clear) or Claude Code started
			 * again: what the host sends beside the conversation may
			 * have changed with it.
			 */
			if (r->n > 1) {
				const call *last = &r->calls[r->n - 2];
				cur->segment = last->segment + (strcmp(last->model, cur->model) ||
								cur->prompt * 3 < last->prompt * 2 || r->restarted);
			}
			r->restarted = false;
			resolve_model(r, model);
		}
		return add_blocks(r, cur, n);
	}
	if (!strcmp(type, "user"))
		return add_blocks(r, cur, n);
	if (!cur)
		return 0;
	/* sent to the model, but not from blocks cmv counts here */
	if (!strcmp(type, "system") || !strcmp(type, "attachment"))
		cur->unseen = true;
	return 0;
}

/*
 * One record of a Codex rollout. A call's usage (token_count) is logged
 * after its output items and the outputs of its tool calls; within a turn
 * the next call's prompt is this one's plus exactly those items, plus the
 * reply's reasoning (billed as its reasoning_output_tokens: the
 * encrypted_content that carries it is never counted). A turn's start, a
 * user message or a compaction adds what the pair cannot see
 * (tests/tok/openai_overhead.py measured the same pairs).
 */
static int read_codex(reader *r, const cmv_node *n, const cJSON *j)
{
	const char *type = cmv_formats__cj_str(j, "type");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
	const char *pt = cmv_formats__cj_str(p, "type");
	call *c = &r->pending;
	int error;

	if (!type)
		return 0;
	if (!strcmp(type, "turn_context")) {
		const char *model = cmv_formats__cj_str(p, "model");
		if (model) {
			snprintf(r->codex_model, sizeof(r->codex_model), "%s", model);
			resolve_model(r, model);
		}
		c->broke = true;
		return 0;
	}
	if (!strcmp(type, "compacted")) {
		c->broke = c->unseen = true;
		return 0;
	}
	if (!strcmp(type, "response_item")) {
		const char *role = cmv_formats__cj_str(p, "role");
		if (!pt || (!strcmp(pt, "message") && (!role || strcmp(role, "assistant")))) {
			c->unseen = true; /* the user's or the host's message: a turn's own additions */
			return 0;
		}
		if (!strcmp(pt, "reasoning"))
			return 0; /* billed as the reply's reasoning tokens */
		if (strcmp(pt, "message") && strcmp(pt, "function_call") && strcmp(pt, "custom_tool_call") &&
		    strcmp(pt, "function_call_output") && strcmp(pt, "custom_tool_call_output")) {
			c->unseen = true;
			return 0;
		}
		if (!c->has_before) {
			c->before = r->prev;
			c->has_before = true;
		}
		return add_blocks(r, c, n);
	}
	if (strcmp(type, "event_msg") || !pt)
		return 0;
	if (!strcmp(pt, "task_started") || !strcmp(pt, "user_message") || !strcmp(pt, "context_compacted") ||
	    !strcmp(pt, "turn_aborted") || !strcmp(pt, "task_complete")) {
		c->broke = true;
		return 0;
	}
	const cJSON *info = cJSON_GetObjectItemCaseSensitive(p, "info");
	const cJSON *last = cJSON_GetObjectItemCaseSensitive(info, "last_token_usage");
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(info, "total_token_usage"),
							     "total_tokens");
	if (strcmp(pt, "token_count") || !cJSON_IsObject(last) || !r->codex_model[0])
		return 0;
	/* Codex may log a call's usage twice: the repeat is no new call */
	if (cJSON_IsNumber(total) && total->valuedouble == r->codex_total)
		return 0;
	r->codex_total = cJSON_IsNumber(total) ? total->valuedouble : -1;
	if ((error = cmv__array_grow((void **)&r->calls, &r->cap, r->n, sizeof(*r->calls))) < 0)
		return error;
	call *cur = &r->calls[r->n++];
	*cur = *c;
	snprintf(cur->model, sizeof(cur->model), "%s", r->codex_model);
	cur->prompt = usage_num(last, "input_tokens");
	cur->reasoning = usage_num(last, "reasoning_output_tokens");
	if (!cur->has_before)
		cur->before = r->prev;
	if (r->n > 1) {
		const call *prev = &r->calls[r->n - 2];
		cur->segment = prev->segment + (strcmp(prev->model, cur->model) || cur->prompt * 3 < prev->prompt * 2);
	}
	memset(c, 0, sizeof(*c));
	return 0;
}

/* The record's JSON, when the node is a Claude Code record; NULL otherwise (or on error: *error). */
static cJSON *record_of(cmv_buf *rec, cmv_repo *repo, const cmv_node *n, int *error)
{
	const char *format;
	int rc = cmv_formats__session_record_bytes(rec, &format, repo, n, false);

	*error = 0;
	if (rc == CMV_ENOTFOUND) {
		cmv_error_clear();
		return NULL;
	}
	if (rc < 0) {
		*error = rc;
		return NULL;
	}
	return strcmp(format, "claude-code") ? NULL : cmv_formats__jscan_parse(rec->ptr, rec->size, error);
}

/* The model of the session's first call: what the conversation before it is counted in. */
static int first_model(reader *r, const cmv_id *tip, cmv_buf *rec)
{
	cmv_walk *w = NULL;
	const cmv_node *n;
	int error = cmv_walk_new(&w, r->repo, tip);

	while (!error && !r->model && (error = cmv_walk_next(&n, w)) == 0) {
		cJSON *j = record_of(rec, r->repo, n, &error);
		if (error < 0)
			break;
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
		const char *model = cmv_formats__cj_str(msg, "model");
		if (model && strcmp(model, "<synthetic>") && cmv_formats__cj_str(j, "type") && !strcmp(cmv_formats__cj_str(j, "type"), "assistant"))
			resolve_model(r, model);
		cJSON_Delete(j);
	}
	cmv_walk_free(w);
	return error == CMV_ITEROVER ? 0 : error;
}

static int read_session(reader *r, const cmv_id *tip)
{
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_buf rec = CMV_BUF_INIT(SESSION_MAX_BYTES);
	int error;

	if ((error = first_model(r, tip, &rec)) < 0 || (error = cmv_walk_new(&w, r->repo, tip)) < 0) {
		cmv_buf_dispose(&rec);
		return error;
	}
	for (; (error = cmv_walk_next(&n, w)) == 0; r->prev = n->id) {
		const char *format;
		int rc = cmv_formats__session_record_bytes(&rec, &format, r->repo, n, false);
		if (rc == CMV_ENOTFOUND) {
			/* a message appended in cmv: no usage, and the next prompt holds it */
			cmv_error_clear();
			if (r->n)
				r->calls[r->n - 1].unseen = true;
			continue;
		}
		if (rc < 0) {
			error = rc;
			break;
		}
		bool codex = !strcmp(format, "codex");
		if (strcmp(format, "claude-code") && !codex)
			continue;
		cJSON *j = cmv_formats__jscan_parse(rec.ptr, rec.size, &error);
		if (error < 0)
			break; /* out of memory, not bad text: the session's evidence would be wrong */
		if (!j)
			continue; /* a line a lenient import kept whole */
		error = codex ? read_codex(r, n, j) : read_record(r, n, j);
		cJSON_Delete(j);
		if (error < 0)
			break;
	}
	if (error == CMV_ITEROVER)
		error = 0;
	cmv_walk_free(w);
	cmv_buf_dispose(&rec);
	return error;
}

/* ---- fitting ----------------------------------------------------------------- */

/* Solve the k x k system a x = b in place (Gaussian elimination); false when singular. */
static bool solve(double a[3][3], double b[3], int k, double x[3])
{
	for (int c = 0; c < k; c++) {
		int p = c;
		for (int r = c + 1; r < k; r++)
			if (fabs(a[r][c]) > fabs(a[p][c]))
				p = r;
		if (fabs(a[p][c]) < 1e-12)
			return false;
		for (int j = 0; j < k; j++) {
			double t = a[c][j];
			a[c][j] = a[p][j];
			a[p][j] = t;
		}
		double t = b[c];
		b[c] = b[p];
		b[p] = t;
		for (int r = c + 1; r < k; r++) {
			double f = a[r][c] / a[c][c];
			for (int j = c; j < k; j++)
				a[r][j] -= f * a[c][j];
			b[r] -= f * b[c];
		}
	}
	for (int c = k - 1; c >= 0; c--) {
		double s = b[c];
		for (int j = c + 1; j < k; j++)
			s -= a[c][j] * x[j];
		x[c] = s / a[c][c];
	}
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double quantile(const double *sorted, size_t n, double q)
{
	size_t i = (size_t)ceil(q * (double)n) - (q > 0 ? 1 : 0);
	return sorted[i < n ? i : n - 1];
}

static double predict_request(const cmv_calibration *c, const obs_pair *p)
{
	return c->factor * (double)p->raw + c->per_block * (double)p->blocks + c->per_pair / 2 * (double)p->messages;
}

/*
 * Fit factor, per_block and per_pair to the pairs (least squares, weights 1/billed),
 * dropping a coefficient that comes out negative; then the error of whole
 * requests, each session's hidden prefix taken off (hidden_prefix), and the
 * margins from it.
 */
static int fit(cmv_calibration *c, const obs_pair *p, size_t n, bool exact)
{
	double x[3] = { 0, 0, 0 };
	int k;
	double *err;
	size_t n_err = 0, pairs = 0;

	c->factor = c->per_block = c->per_pair = 0;
	for (size_t i = 0; i < n; i++)
		pairs += !p[i].request;
	c->pairs = pairs;
	/*
	 * Fitted on the pairs, counted from blobs. (Fitting the growth of whole
	 * requests within a segment instead was tried: with fewer points whose
	 * blocks and messages grow together, it gave a degenerate fit.) Columns:
	 * raw, blocks, 1; the last ones go first when a coefficient comes out
	 * negative.
	 */
	c->requests = 0;
	c->err_p50 = c->err_p95 = c->err_p99 = c->err_max = 0;
	c->margin = exact ? MARGIN_FLOOR_EXACT : MARGIN_FLOOR_APPROX;
	c->margin_tokens = 0;
	if (!pairs)
		return 0;
	for (k = 3; k >= 1; k--) {
		double a[3][3] = { { 0 } }, b[3] = { 0 };
		for (size_t i = 0; i < n; i++) {
			if (p[i].request)
				continue;
			double col[3] = { (double)p[i].raw, (double)p[i].blocks, 1 }, y = (double)p[i].billed;
			/*
			 * Weighted by 1/billed: a growth's error is a sum over its
			 * tokens, so its variance grows with its size (not its
			 * square, which relative least squares assumes and which
			 * let small pairs, where the host's own additions weigh,
			 * steer the factor: whole requests came out 5% under on
			 * the pairs' aggregate, approx_test.py's 0.952).
			 */
			double w = 1.0 / y;
			for (int r = 0; r < k; r++) {
				for (int q = 0; q < k; q++)
					a[r][q] += w * col[r] * col[q];
				b[r] += w * col[r] * y;
			}
		}
		x[0] = x[1] = x[2] = 0;
		if (!solve(a, b, k, x))
			continue;
		bool ok = x[0] > 0;
		for (int r = 1; r < k; r++)
			ok = ok && x[r] >= 0;
		if (ok)
			break;
	}
	if (k == 0)
		return cmv_error__set(CMV_EINVALID, "the billed usage of '%s' fits no positive factor", c->model);
	c->factor = x[0];
	c->per_block = k > 1 ? x[1] : 0;
	c->per_pair = k > 2 ? x[2] : 0;
	/* one allocation: errors, contents, counts, and the large requests' errors */
	if (!(err = cmv__calloc(4 * n, sizeof(*err))))
		return CMV_ENOMEM;
	double *content = err + n, *counted = err + 2 * n, *large = err + 3 * n;
	/*
	 * Each segment's hidden prefix (the host's system prompt and tools, in
	 * every prompt): its first request's prompt less the fit's count of the
	 * conversation before it. Requests are kept by segment (a session's
	 * calls of one model between compactions), in order.
	 */
	cmv__strmap first = { 0 };
	for (size_t i = 0; i < n; i++)
		if (p[i].request && !cmv__strmap_get(&first, p[i].session, NULL, NULL) &&
		    cmv__strmap_put(&first, p[i].session, i, NULL) < 0) {
			cmv__strmap_dispose(&first);
			free(err);
			return CMV_ENOMEM;
		}
	for (size_t i = 0; i < n; i++) {
		size_t f = i;
		if (!p[i].request || (cmv__strmap_get(&first, p[i].session, &f, NULL), f == i))
			continue; /* the first says the hidden prefix: no error of its own */
		double hidden = (double)p[f].billed - predict_request(c, &p[f]);
		double billed = (double)p[i].billed - hidden, count = predict_request(c, &p[i]);
		if (billed <= 0)
			continue;
		content[n_err] = billed;
		counted[n_err] = count;
		err[n_err++] = (billed - count) / billed;
	}
	double floor_m = exact ? MARGIN_FLOOR_EXACT : MARGIN_FLOOR_APPROX;
	c->requests = n_err;
	c->err_p50 = c->err_p95 = c->err_p99 = c->err_max = 0;
	c->margin = floor_m;
	c->margin_tokens = 0;
	if (n_err) {
		/*
		 * The relative margin from large requests, where a host's fixed
		 * additions weigh little (their 95th percentile); then the
		 * tokens every request seen still needs above that: together, no
		 * request seen was billed more than count x (1 + margin) +
		 * margin_tokens.
		 */
		size_t n_large = 0;
		for (size_t i = 0; i < n_err; i++)
			if (content[i] >= LARGE_REQUEST)
				large[n_large++] = err[i];
		qsort(large, n_large, sizeof(*large), cmp_double);
		double rel = n_large ? quantile(large, n_large, 0.95) : 0;
		c->margin = rel > floor_m ? rel : floor_m;
		for (size_t i = 0; i < n_err; i++) {
			double over = content[i] - counted[i] * (1 + c->margin);
			if (over > (double)c->margin_tokens)
				c->margin_tokens = (uint64_t)ceil(over);
		}
		qsort(err, n_err, sizeof(*err), cmp_double);
		c->err_p50 = quantile(err, n_err, 0.50);
		c->err_p95 = quantile(err, n_err, 0.95);
		c->err_p99 = quantile(err, n_err, 0.99);
		c->err_max = err[n_err - 1];
	}
	cmv__strmap_dispose(&first);
	free(err);
	return 0;
}

/* ---- the notes ------------------------------------------------------------------ */

static int note_read(cmv_calibration *c, model_pairs *mp, cmv_repo *repo, const char *model)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char key[256];
	int error;

	snprintf(key, sizeof(key), NOTE_PREFIX "%s", model);
	if ((error = cmv_store_note_get(&text, repo, key)) < 0)
		goto done;
	char *line = text.ptr, *nl;
	if (strncmp(line, NOTE_MAGIC "\n", sizeof(NOTE_MAGIC))) {
		error = cmv_error__set(CMV_ECORRUPT, "the calibration note of '%s' is not one", model);
		goto done;
	}
	memset(c, 0, sizeof(*c));
	snprintf(c->model, sizeof(c->model), "%s", model);
	for (line += sizeof(NOTE_MAGIC); *line; line = nl ? nl + 1 : line + strlen(line)) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char sess[160];
		unsigned long long raw, blocks, billed, msgs = 0, requests = 0, margin_tokens = 0;
		long long updated;
		unsigned long long pairs, sessions;
		if (!strncmp(line, "tokenizer ", 10)) {
			snprintf(c->tokenizer, sizeof(c->tokenizer), "%s", line + 10);
		} else if (!strncmp(line, "provider ", 9)) {
			snprintf(c->provider, sizeof(c->provider), "%s", strcmp(line + 9, "-") ? line + 9 : "");
		} else if (sscanf(line, "fit %llu %llu %llu %lf %lf %lf %lf %lf %lf %lf %lf %llu %lld", &pairs, &requests,
				  &sessions, &c->factor, &c->per_block, &c->per_pair, &c->err_p50, &c->err_p95, &c->err_p99,
				  &c->err_max, &c->margin, &margin_tokens, &updated) == 13) {
			c->margin_tokens = (uint64_t)margin_tokens;
			c->pairs = (size_t)pairs;
			c->requests = (size_t)requests;
			c->sessions = (size_t)sessions;
			c->updated = updated;
		} else if (mp && (sscanf(line, "p %159s %llu %llu %llu", sess, &raw, &blocks, &billed) == 4 ||
				  sscanf(line, "r %159s %llu %llu %llu %llu", sess, &raw, &blocks, &msgs, &billed) == 5) &&
			   billed) {
			if ((error = cmv__array_grow((void **)&mp->v, &mp->cap, mp->n, sizeof(*mp->v))) < 0)
				goto done;
			obs_pair *p = &mp->v[mp->n++];
			snprintf(p->session, sizeof(p->session), "%s", sess);
			p->request = line[0] == 'r';
			p->raw = raw;
			p->blocks = blocks;
			p->messages = p->request ? msgs : 2;
			p->billed = billed;
			msgs = 0;
		}
	}
	if (!c->tokenizer[0]) {
		error = cmv_error__set(CMV_ECORRUPT, "the calibration note of '%s' names no tokenizer", model);
		goto done;
	}
	/* store data: a fit nobody could have made is refused, not turned into a profile */
	if (!isfinite(c->factor) || c->factor < 0 || c->factor > 100 || !isfinite(c->per_block) || c->per_block < 0 ||
	    c->per_block > 1e6 || !isfinite(c->per_pair) || c->per_pair < 0 || c->per_pair > 1e6 ||
	    !isfinite(c->margin) || c->margin < 0 || c->margin >= 1 || (c->pairs && c->factor == 0)) {
		error = cmv_error__set(CMV_ECORRUPT, "the calibration note of '%s' holds a fit out of range", model);
		goto done;
	}
done:
	cmv_buf_dispose(&text);
	return error;
}

static int note_write(cmv_repo *repo, const cmv_calibration *c, const model_pairs *mp)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char key[256];
	int error = 0;

	error = cmv_buf_printf(&text, NOTE_MAGIC "\ntokenizer %s\nprovider %s\nfit %zu %zu %zu %.6f %.4f %.4f %.6f %.6f %.6f %.6f %.6f %llu %lld\n",
		       c->tokenizer, c->provider[0] ? c->provider : "-", c->pairs, c->requests, c->sessions, c->factor, c->per_block, c->per_pair, c->err_p50,
		       c->err_p95, c->err_p99, c->err_max, c->margin, (unsigned long long)c->margin_tokens,
		       (long long)c->updated);
	for (size_t i = 0; i < mp->n && !error; i++) {
		const obs_pair *p = &mp->v[i];
		if (p->request)
			error = cmv_buf_printf(&text, "r %s %llu %llu %llu %llu\n", p->session, (unsigned long long)p->raw,
					       (unsigned long long)p->blocks, (unsigned long long)p->messages,
					       (unsigned long long)p->billed);
		else
			error = cmv_buf_printf(&text, "p %s %llu %llu %llu\n", p->session, (unsigned long long)p->raw,
					       (unsigned long long)p->blocks, (unsigned long long)p->billed);
	}
	snprintf(key, sizeof(key), NOTE_PREFIX "%s", c->model);
	if (!error)
		error = cmv_store_note_set(repo, key, text.ptr);
	cmv_buf_dispose(&text);
	return error;
}

/* Add model to the index note of calibrated models, once. */
static int index_add(cmv_repo *repo, const char *model)
{
	cmv_buf idx = CMV_BUF_INIT(1 << 20);
	int error = cmv_store_note_get(&idx, repo, NOTE_INDEX);

	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	}
	for (char *l = idx.ptr; !error && l && *l;) {
		char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (len == strlen(model) && !strncmp(l, model, len))
			goto done;
		l = nl ? nl + 1 : NULL;
	}
	if (!error && (error = cmv_buf_printf(&idx, "%s\n", model)) == 0)
		error = cmv_store_note_set(repo, NOTE_INDEX, idx.ptr);
done:
	cmv_buf_dispose(&idx);
	return error;
}

/* The sessions a model's pairs and requests come from (a request's key is "SESSION#SEGMENT"). */
static int count_sessions(size_t *out, const model_pairs *mp)
{
	cmv__strmap seen = { 0 };
	char key[160];
	int error = 0;

	*out = 0;
	for (size_t i = 0; i < mp->n && !error; i++) {
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(mp->v[i].session, "#"), mp->v[i].session);
		if (!cmv__strmap_get(&seen, key, NULL, NULL)) {
			error = cmv__strmap_put(&seen, key, 0, NULL);
			++*out;
		}
	}
	cmv__strmap_dispose(&seen);
	return error;
}

/* Merge one session's new pairs into a model's note and fit again. */
static int update_model(cmv_repo *repo, const model_pairs *fresh, const char *session, const cmv_models *models)
{
	cmv_calibration c;
	model_pairs all = { 0 };
	const cmv_model *m = NULL;
	int error = note_read(&c, &all, repo, fresh->model);

	/* a damaged note is learned again from this session on, rather than never again */
	if (error == CMV_ECORRUPT) {
		all.n = 0;
		error = CMV_ENOTFOUND;
	}
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
		memset(&c, 0, sizeof(c));
		snprintf(c.model, sizeof(c.model), "%s", fresh->model);
	}
	if (error < 0)
		goto done;
	if (strcmp(c.tokenizer, fresh->tokenizer)) {
		/* counted with another tokenizer before (a profile changed): those pairs say nothing now */
		all.n = 0;
		snprintf(c.tokenizer, sizeof(c.tokenizer), "%s", fresh->tokenizer);
	}
	size_t kept = 0, len = strlen(session);
	for (size_t i = 0; i < all.n; i++)
		if (strncmp(all.v[i].session, session, len) || (all.v[i].session[len] && all.v[i].session[len] != '#'))
			all.v[kept++] = all.v[i];
	all.n = kept;
	for (size_t i = 0; i < fresh->n; i++) {
		if ((error = cmv__array_grow((void **)&all.v, &all.cap, all.n, sizeof(*all.v))) < 0)
			goto done;
		all.v[all.n++] = fresh->v[i];
	}
	if (cmv_models_find(&m, models, c.model) < 0) {
		cmv_error_clear();
		m = NULL;
	}
	snprintf(c.provider, sizeof(c.provider), "%s", m && m->provider ? m->provider : "");
	if ((error = fit(&c, all.v, all.n, m && m->exact)) < 0 || (error = count_sessions(&c.sessions, &all)) < 0)
		goto done;
	c.updated = cmv__now();
	if ((error = note_write(repo, &c, &all)) == 0)
		error = index_add(repo, c.model);
done:
	free(all.v);
	return error;
}

/* ---- the margin: a prediction bound over sessions ------------------------------------ */

/*
 * Student's t, one-sided 0.99 (the 99th percentile of a prediction), for 1
 * to 30 degrees of freedom; beyond, 2.326 + 3.73 / df (Cornish-Fisher's
 * first term: within 0.008 of the table from 30 to 120).
 */
static double t99(size_t df)
{
	static const double t[] = { 31.821, 6.965, 4.541, 3.747, 3.365, 3.143, 2.998, 2.896, 2.821, 2.764,
				    2.718,  2.681, 2.650, 2.624, 2.602, 2.583, 2.567, 2.552, 2.539, 2.528,
				    2.518,  2.508, 2.500, 2.492, 2.485, 2.479, 2.473, 2.467, 2.462, 2.457 };
	if (df == 0)
		return INFINITY;
	return df <= CMV_ARRAY_SIZE(t) ? t[df - 1] : 2.326 + 3.73 / (double)df;
}

/* The mean of v (n of them), its sample standard deviation and its largest. */
static double mean_sd(double *sd, double *max, const double *v, size_t n)
{
	double mean = 0;

	*sd = 0;
	*max = 0;
	for (size_t i = 0; i < n; i++) {
		mean += v[i] / (double)n;
		if (i == 0 || v[i] > *max)
			*max = v[i];
	}
	for (size_t i = 0; n > 1 && i < n; i++)
		*sd += (v[i] - mean) * (v[i] - mean) / (double)(n - 1);
	*sd = sqrt(*sd);
	return mean;
}

/* What a prediction bound for one more of n draws adds to their mean: t(0.99, n - 1) x sd x sqrt(1 + 1/n). */
static double prediction_allowance(double sd, size_t n)
{
	return n < 2 ? INFINITY : t99(n - 1) * sd * sqrt(1.0 + 1.0 / (double)n);
}

typedef struct {
	cmv_calibration c;
	model_pairs mp;
	bool loaded, exact;
	size_t fit; /* the loaded calibration this model counts with (its own or its family's); SIZE_MAX: none */
} pool_member;

/* The family of a model id: up to its first digit ("claude-opus-", "gpt-"). */
static bool same_family(const char *a, const char *b)
{
	size_t fa = strcspn(a, "0123456789");
	return fa && fa == strcspn(b, "0123456789") && !strncmp(a, b, fa);
}

static int pool_note_key(char *out, size_t cap, const char *provider, const char *tokenizer)
{
	if ((size_t)snprintf(out, cap, NOTE_POOL "%s:%s", provider[0] ? provider : "-", tokenizer) >= cap)
		return cmv_error__set(CMV_EINVALID, "a provider or tokenizer name too long for a calibration");
	return 0;
}

/*
 * The margin of one provider's models with one tokenizer, from every
 * session of them the store learned from: each (model, session) is a unit,
 * its largest relative under-count among its large requests (against the
 * fit that model counts with). Sessions differ more than calls (a host adds
 * what the transcript never shows: a file's new text after an edit, a
 * reminder), so a bound for the next session is a prediction bound over
 * sessions, not a percentile over calls: mean + t(0.99, n - 1) x sd x
 * sqrt(1 + 1/n). Its allowance for few sessions shrinks as they accumulate.
 * margin_tokens: what every request seen still needs beyond it.
 */
static int pool_write(cmv_repo *repo, pool_member *pm, size_t n, size_t lead)
{
	size_t n_req = 0, n_units = 0, n_large = 0;
	double *content = NULL, *counted = NULL, *unit = NULL, *over = NULL, *large = NULL;
	size_t *unit_of = NULL;
	bool *has_large = NULL;
	cmv__strmap first = { 0 }, units = { 0 };
	cmv_buf text = CMV_BUF_INIT(4096);
	char key[256], segkey[CMV_CALIBRATION_MODEL_MAX + 200];
	int error = 0;

	for (size_t i = 0; i < n; i++)
		n_req += pm[i].mp.n;
	/* one allocation: per request its content, count and unit; per unit its worst relative and token excess */
	if (n_req && (!(content = cmv__calloc(n_req, 5 * sizeof(double) + sizeof(size_t) + sizeof(bool)))))
		return CMV_ENOMEM;
	counted = content + n_req;
	unit = content + 2 * n_req;
	over = content + 3 * n_req;
	large = content + 4 * n_req;
	unit_of = (size_t *)(content + 5 * n_req);
	has_large = (bool *)(unit_of + n_req);
	size_t k = 0;
	for (size_t i = 0; i < n && !error; i++) {
		pool_member *x = &pm[i];
		if (!x->loaded || x->fit == SIZE_MAX || strcmp(x->c.provider, pm[lead].c.provider) ||
		    strcmp(x->c.tokenizer, pm[lead].c.tokenizer))
			continue;
		const cmv_calibration *f = &pm[x->fit].c;
		for (size_t j = 0; j < x->mp.n && !error; j++) {
			const obs_pair *p = &x->mp.v[j];
			size_t fi = j, ui;
			if (!p->request)
				continue;
			snprintf(segkey, sizeof(segkey), "%s\t%s", x->c.model, p->session);
			if (!cmv__strmap_get(&first, segkey, &fi, NULL)) {
				error = cmv__strmap_put(&first, segkey, j, NULL);
				continue; /* the first says the hidden prefix: no error of its own */
			}
			const obs_pair *pf = &x->mp.v[fi];
			double billed = (double)p->billed - ((double)pf->billed - predict_request(f, pf));
			if (billed <= 0)
				continue;
			/* the unit: this model in this session ("SESSION#SEGMENT" less the segment) */
			snprintf(segkey, sizeof(segkey), "%s\t%.*s", x->c.model, (int)strcspn(p->session, "#"), p->session);
			if (!cmv__strmap_get(&units, segkey, &ui, NULL)) {
				if ((error = cmv__strmap_put(&units, segkey, n_units, NULL)) < 0)
					break;
				ui = n_units++;
			}
			content[k] = billed;
			counted[k] = predict_request(f, p);
			unit_of[k++] = ui;
			double e = (billed - predict_request(f, p)) / billed;
			if (billed >= LARGE_REQUEST && (!has_large[ui] || e > unit[ui])) {
				n_large += !has_large[ui];
				has_large[ui] = true;
				unit[ui] = e;
			}
		}
	}
	cmv_calibration pool = { 0 };
	double floor_m = pm[lead].exact ? MARGIN_FLOOR_EXACT : MARGIN_FLOOR_APPROX;
	for (size_t i = 0, j = 0; i < n_units; i++)
		if (has_large[i])
			large[j++] = unit[i];
	pool.pool_sessions = n_large;
	pool.pool_mean = mean_sd(&pool.pool_sd, &pool.pool_max, large, n_large);
	if (n_large >= CMV_CALIBRATION_MIN_SESSIONS) {
		pool.pool_margin = pool.pool_mean + prediction_allowance(pool.pool_sd, n_large);
		if (pool.pool_margin < floor_m)
			pool.pool_margin = floor_m;
		if (pool.pool_margin > 0.9)
			pool.pool_margin = 0.9;
		/*
		 * The tokens beyond it, the same way: each unit's largest excess
		 * over count x (1 + margin), every request size (small ones are
		 * where a host's own additions weigh), bound for a new session;
		 * never below the largest seen.
		 */
		double seen = 0, max_over, bound;
		for (size_t i = 0; i < k; i++) {
			double o = content[i] - counted[i] * (1 + pool.pool_margin);
			if (o > over[unit_of[i]])
				over[unit_of[i]] = o;
			if (o > seen)
				seen = o;
		}
		double m_over = mean_sd(&bound, &max_over, over, n_units);
		bound = m_over + prediction_allowance(bound, n_units);
		pool.pool_margin_tokens = (uint64_t)ceil(bound > seen ? bound : seen);
	}
	if (!error && (error = pool_note_key(key, sizeof(key), pm[lead].c.provider, pm[lead].c.tokenizer)) == 0 &&
	    (error = cmv_buf_printf(&text, POOL_MAGIC "\npool %zu %.6f %.6f %.6f %.6f %llu\n", pool.pool_sessions,
				    pool.pool_mean, pool.pool_sd, pool.pool_max, pool.pool_margin,
				    (unsigned long long)pool.pool_margin_tokens)) == 0)
		error = cmv_store_note_set(repo, key, text.ptr);
	cmv__strmap_dispose(&first);
	cmv__strmap_dispose(&units);
	cmv_buf_dispose(&text);
	free(content);
	return error;
}

/* Every provider's pooled margin, made again from the store's calibrations. */
static int pool_update(cmv_repo *repo, const cmv_models *models)
{
	cmv_buf idx = CMV_BUF_INIT(1 << 20);
	pool_member *pm = NULL;
	size_t n = 0, cap = 0;
	int error = cmv_store_note_get(&idx, repo, NOTE_INDEX);

	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		cmv_buf_dispose(&idx);
		return 0;
	}
	for (char *l = idx.ptr, *nl; !error && l && *l; l = nl ? nl + 1 : NULL) {
		if ((nl = strchr(l, '\n')) != NULL)
			*nl = '\0';
		if ((error = cmv__array_grow((void **)&pm, &cap, n, sizeof(*pm))) < 0)
			break;
		pool_member *x = &pm[n++];
		const cmv_model *m = NULL;
		memset(x, 0, sizeof(*x));
		x->fit = SIZE_MAX;
		if ((error = note_read(&x->c, &x->mp, repo, l)) == CMV_ENOTFOUND || error == CMV_ECORRUPT) {
			cmv_error_clear();
			error = 0;
			continue;
		}
		if (error < 0)
			break;
		x->loaded = true;
		if (cmv_models_find(&m, models, x->c.model) == 0)
			x->exact = m->exact;
		else
			cmv_error_clear();
	}
	/* the fit each model counts with: its own, else its family's with the most pairs (as calibration_for) */
	for (size_t i = 0; i < n; i++) {
		if (!pm[i].loaded)
			continue;
		if (pm[i].c.pairs >= CMV_CALIBRATION_MIN_PAIRS) {
			pm[i].fit = i;
			continue;
		}
		for (size_t j = 0; j < n; j++)
			if (j != i && pm[j].loaded && pm[j].c.pairs >= CMV_CALIBRATION_MIN_PAIRS &&
			    same_family(pm[i].c.model, pm[j].c.model) && !strcmp(pm[i].c.tokenizer, pm[j].c.tokenizer) &&
			    (pm[i].fit == SIZE_MAX || pm[j].c.pairs > pm[pm[i].fit].c.pairs))
				pm[i].fit = j;
	}
	/* one note per provider and tokenizer, written by its first member */
	for (size_t i = 0; i < n && !error; i++) {
		bool lead = pm[i].loaded;
		for (size_t j = 0; j < i && lead; j++)
			lead = !(pm[j].loaded && !strcmp(pm[j].c.provider, pm[i].c.provider) &&
				 !strcmp(pm[j].c.tokenizer, pm[i].c.tokenizer));
		if (lead)
			error = pool_write(repo, pm, n, i);
	}
	for (size_t i = 0; i < n; i++)
		free(pm[i].mp.v);
	free(pm);
	cmv_buf_dispose(&idx);
	return error;
}

/* The pooled margin of c's provider and tokenizer into c (none yet: pool_sessions 0). */
static int pool_read(cmv_calibration *c, cmv_repo *repo)
{
	cmv_buf text = CMV_BUF_INIT(4096);
	char key[256];
	unsigned long long sessions, mt;
	int error;

	c->pool_sessions = 0;
	c->pool_mean = c->pool_sd = c->pool_max = c->pool_margin = 0;
	c->pool_margin_tokens = 0;
	if ((error = pool_note_key(key, sizeof(key), c->provider, c->tokenizer)) < 0)
		return error;
	if ((error = cmv_store_note_get(&text, repo, key)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	} else if (error == 0) {
		const char *line = strchr(text.ptr, '\n');
		if (strncmp(text.ptr, POOL_MAGIC "\n", sizeof(POOL_MAGIC)) || !line ||
		    sscanf(line + 1, "pool %llu %lf %lf %lf %lf %llu", &sessions, &c->pool_mean, &c->pool_sd, &c->pool_max,
			   &c->pool_margin, &mt) != 6 ||
		    !isfinite(c->pool_margin) || c->pool_margin < 0 || c->pool_margin >= 1 || !isfinite(c->pool_max)) {
			/* learned again on the next import; until then, the profile's margin */
			c->pool_mean = c->pool_sd = c->pool_max = c->pool_margin = 0;
		} else {
			c->pool_sessions = (size_t)sessions;
			c->pool_margin_tokens = (uint64_t)mt;
		}
	}
	cmv_buf_dispose(&text);
	return error;
}

int cmv_calibration_forget(cmv_repo *repo, const char *key, const cmv_models *models)
{
	cmv_buf idx = CMV_BUF_INIT(1 << 20);
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(key);
	CMV_ASSERT_ARG(models);
	if ((error = cmv_store_note_get(&idx, repo, NOTE_INDEX)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		cmv_buf_dispose(&idx);
		return 0;
	}
	if (error == 0)
		error = cmv_repo_txn_begin(repo);
	if (error < 0) {
		cmv_buf_dispose(&idx);
		return error;
	}
	for (char *l = idx.ptr, *nl; !error && l && *l; l = nl ? nl + 1 : NULL) {
		cmv_calibration c;
		model_pairs none = { 0 };
		if ((nl = strchr(l, '\n')) != NULL)
			*nl = '\0';
		if ((error = note_read(&c, NULL, repo, l)) == CMV_ENOTFOUND || error == CMV_ECORRUPT) {
			cmv_error_clear();
			error = 0;
			continue;
		}
		snprintf(none.model, sizeof(none.model), "%s", c.model);
		snprintf(none.tokenizer, sizeof(none.tokenizer), "%s", c.tokenizer);
		if (!error)
			error = update_model(repo, &none, key, models);
	}
	if (!error)
		error = pool_update(repo, models);
	cmv_buf_dispose(&idx);
	if (error < 0) {
		cmv_repo_txn_rollback(repo);
		return error;
	}
	return cmv_repo_txn_commit(repo);
}

/*
 * A whole request: the conversation before the call, rendered for the model
 * as the pager renders it and counted with a unit profile (factor 1, no
 * overheads), so that any fit's count of it is factor x raw + per_block x
 * blocks + per_message x messages, as the pager's would be.
 */
static int observe_request(observation *o, reader *r, const cmv_model *m, const char *key, const call *a)
{
	cmv_model unit = *m;
	cmv_token_stats st;
	cmv_tok *tok = tok_for(r, m->tokenizer);
	int error;

	if (!tok)
		return CMV_ERROR;
	unit.exact = true;
	unit.token_factor = 1;
	unit.per_block = unit.per_message = unit.per_request = 0;
	if ((error = cmv_pager__count_sent_live(&st, r->repo, &a->before, &unit, tok)) < 0) {
		if (error != CMV_EINVALID)
			return error;
		/* a conversation that does not render (nothing to send yet): no request to learn from */
		cmv_error_clear();
		return 0;
	}
	char segment[160];
	snprintf(segment, sizeof(segment), "%s#%u", key, a->segment);
	return observe_pair(o, m->id, m->tokenizer, segment, true, st.total, st.blocks, st.messages, a->prompt);
}

int cmv_calibrate(size_t *n_pairs, cmv_repo *repo, const cmv_id *tip, const char *key, const cmv_models *models)
{
	reader r = { .repo = repo, .models = models };
	observation o = { 0 };
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(models);
	if (n_pairs)
		*n_pairs = 0;
	if (!key || !*key)
		key = cmv_id_tostr(hex, sizeof(hex), tip);
	if (strpbrk(key, " \t\r\n#") || strlen(key) >= sizeof(((obs_pair *)0)->session) - 12)
		return cmv_error__set(CMV_EINVALID, "a calibration key has no space or '#' and is under 148 bytes: '%s'",
				      key);
	/*
	 * One transaction for the whole call: the token counts it keeps on its
	 * way, the notes, all or nothing; and one lock taking, not hundreds.
	 */
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto done;
	if ((error = read_session(&r, tip)) < 0)
		goto fail;
	size_t step = r.n / REQUESTS_PER_SESSION + 1;
	for (size_t i = 0; i < r.n; i++) {
		const call *a = &r.calls[i], *b = i + 1 < r.n ? &r.calls[i + 1] : NULL;
		const cmv_model *m = NULL;
		if (cmv_models_find(&m, models, a->model) < 0) {
			cmv_error_clear();
			continue;
		}
		/* kept under the profile's id, so a dated id and its alias are one model */
		if (a->prompt && !cmv_id_is_none(&a->before) && (i < EARLY_REQUESTS || i % step == 0) &&
		    (error = observe_request(&o, &r, m, key, a)) < 0)
			goto fail;
		if (!b || a->unseen || a->broke || b->broke || a->segment != b->segment || strcmp(a->model, b->model) ||
		    b->prompt <= a->prompt + a->reasoning || !a->blocks)
			continue;
		if ((error = observe_pair(&o, m->id, m->tokenizer, key, false, a->raw, a->blocks, 2,
					  b->prompt - a->prompt - a->reasoning)) < 0)
			goto fail;
	}
	for (size_t i = 0; i < o.n && !error; i++) {
		error = update_model(repo, &o.v[i], key, models);
		for (size_t k = 0; n_pairs && k < o.v[i].n; k++)
			*n_pairs += !o.v[i].v[k].request;
	}
	if (!error && o.n)
		error = pool_update(repo, models);
	if (!error) {
		error = cmv_repo_txn_commit(repo);
		goto done;
	}
fail:
	cmv_repo_txn_rollback(repo);
done:
	for (size_t i = 0; i < CMV_ARRAY_SIZE(r.toks); i++)
		cmv_tok_free(r.toks[i]);
	free(r.calls);
	observation_dispose(&o);
	return error;
}

int cmv_calibration_get(cmv_calibration *out, cmv_repo *repo, const char *model)
{
	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(model);
	int error = note_read(out, NULL, repo, model);
	return error < 0 ? error : pool_read(out, repo);
}

int cmv_calibration_foreach(cmv_repo *repo, int (*cb)(const cmv_calibration *c, void *payload), void *payload)
{
	cmv_buf idx = CMV_BUF_INIT(1 << 20);
	int error = cmv_store_note_get(&idx, repo, NOTE_INDEX);

	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		cmv_buf_dispose(&idx);
		return 0;
	}
	for (char *l = idx.ptr, *nl; !error && l && *l; l = nl ? nl + 1 : NULL) {
		cmv_calibration c;
		if ((nl = strchr(l, '\n')) != NULL)
			*nl = '\0';
		if ((error = note_read(&c, NULL, repo, l)) == 0 && (error = pool_read(&c, repo)) == 0) {
			error = cb(&c, payload);
		} else if (error == CMV_ECORRUPT || error == CMV_ENOTFOUND) {
			/* one damaged note hides no other (the next import of that model writes it again) */
			cmv_error_clear();
			error = 0;
		}
	}
	cmv_buf_dispose(&idx);
	return error;
}

/*
 * The calibration a model counts with: its own, else the one of its family
 * (the same provider and the same name up to its version: claude-opus-*)
 * with the most pairs, else none.
 */
static int calibration_for(cmv_calibration *out, bool *own, cmv_repo *repo, const cmv_model *model)
{
	int error = cmv_calibration_get(out, repo, model->id);

	*own = true;
	if (error == 0 && out->pairs >= CMV_CALIBRATION_MIN_PAIRS)
		return 0;
	if (error < 0 && error != CMV_ENOTFOUND)
		return error;
	cmv_error_clear();
	*own = false;
	/* the family: the id up to the first digit ("claude-opus-", "gpt-", "gemini-") */
	size_t fam = strcspn(model->id, "0123456789");
	cmv_buf idx = CMV_BUF_INIT(1 << 20);
	bool found = false;
	if ((error = cmv_store_note_get(&idx, repo, NOTE_INDEX)) < 0) {
		cmv_buf_dispose(&idx);
		if (error == CMV_ENOTFOUND)
			cmv_error_clear();
		return error;
	}
	for (char *l = idx.ptr, *nl; l && *l; l = nl ? nl + 1 : NULL) {
		cmv_calibration c;
		if ((nl = strchr(l, '\n')) != NULL)
			*nl = '\0';
		if (!fam || strncmp(l, model->id, fam))
			continue;
		if ((error = note_read(&c, NULL, repo, l)) < 0) {
			if (error != CMV_ENOTFOUND && error != CMV_ECORRUPT)
				break;
			cmv_error_clear();
			error = 0;
			continue;
		}
		if (!strcmp(c.tokenizer, model->tokenizer) && c.pairs >= CMV_CALIBRATION_MIN_PAIRS &&
		    (!found || c.pairs > out->pairs) && (error = pool_read(&c, repo)) == 0) {
			*out = c;
			found = true;
		}
	}
	cmv_buf_dispose(&idx);
	if (error < 0)
		return error;
	return found ? 0 : CMV_ENOTFOUND;
}

int cmv_model_calibrated(cmv_model *out, cmv_buf *source, const cmv_model *model, cmv_repo *repo)
{
	cmv_calibration c;
	bool own;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(model);
	*out = *model;
	if (source)
		cmv_buf_clear(source);
	error = repo ? calibration_for(&c, &own, repo, model) : CMV_ENOTFOUND;
	if (error == 0 && c.pairs >= CMV_CALIBRATION_MIN_PAIRS && !strcmp(c.tokenizer, model->tokenizer)) {
		/* the per-pair framing is two messages' worth */
		out->token_factor = c.factor;
		/* a factor other than 1 is an approximation, whatever the tokenizer (cmv_model_scale skips it for exact) */
		out->exact = false;
		out->per_block = (uint32_t)ceil(c.per_block);
		out->per_message = (uint32_t)ceil(c.per_pair / 2);
		if (c.pool_sessions >= CMV_CALIBRATION_MIN_SESSIONS) {
			/* a bound for a session not seen, from the provider's sessions (pool_write) */
			out->margin = c.pool_margin;
			out->margin_tokens = c.pool_margin_tokens;
		} else {
			/* too few sessions for a bound: the profile's margin, or the worst seen if larger */
			out->margin = model->margin;
			if (c.pool_max > out->margin)
				out->margin = c.pool_max;
			if (c.margin > out->margin)
				out->margin = c.margin;
			out->margin_tokens = c.margin_tokens > c.pool_margin_tokens ? c.margin_tokens : c.pool_margin_tokens;
		}
		if (source && c.pool_sessions >= CMV_CALIBRATION_MIN_SESSIONS)
			cmv_buf_printf(source,
				       "calibrated on %zu billed pairs of %s%s; margin %.1f%% + %llu tokens: a 99%% "
				       "prediction bound for a new session over %zu sessions of %s models",
				       c.pairs, c.model, own ? "" : " (its family)", out->margin * 100,
				       (unsigned long long)out->margin_tokens, c.pool_sessions,
				       c.provider[0] ? c.provider : "its provider's");
		else if (source)
			cmv_buf_printf(source,
				       "calibrated on %zu billed pairs of %s%s; margin %.1f%% + %llu tokens: the profile's "
				       "(or the worst seen), %zu session%s too few for a bound",
				       c.pairs, c.model, own ? "" : " (its family)", out->margin * 100,
				       (unsigned long long)out->margin_tokens, c.pool_sessions,
				       c.pool_sessions == 1 ? " is" : "s are");
		return 0;
	}
	if (error < 0 && error != CMV_ENOTFOUND)
		return error;
	cmv_error_clear();
	if (source)
		cmv_buf_printf(source, "%s profile%s", model->exact ? "exact" : "built-in approximation",
			       model->exact ? "" : ", not calibrated: its conservative margin");
	return 0;
}

int cmv_billed_calls(cmv_billed_call **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip,
		     const cmv_models *models)
{
	reader r = { .repo = repo, .models = models };
	cmv_billed_call *v = NULL;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(n_out);
	*out = NULL;
	*n_out = 0;
	if ((error = read_session(&r, tip)) == 0 && r.n && !(v = cmv__calloc(r.n, sizeof(*v))))
		error = CMV_ENOMEM;
	for (size_t i = 0; !error && i < r.n; i++) {
		snprintf(v[i].model, sizeof(v[i].model), "%s", r.calls[i].model);
		v[i].prompt = r.calls[i].prompt;
		v[i].before = r.calls[i].before;
		v[i].segment = r.calls[i].segment;
		snprintf(v[i].id, sizeof(v[i].id), "%s", r.calls[i].id);
		v[i].reasoning = r.calls[i].reasoning;
	}
	for (size_t i = 0; i < CMV_ARRAY_SIZE(r.toks); i++)
		cmv_tok_free(r.toks[i]);
	free(r.calls);
	if (!error) {
		*out = v;
		*n_out = r.n;
	}
	return error;
}

uint64_t cmv_count_ceiling(const cmv_model *model, uint64_t budget)
{
	if (!budget)
		return cmv_model_input_budget(model) > model->margin_tokens
			       ? cmv_model_input_budget(model) - model->margin_tokens : 0;
	/* the promise is about what is billed: count x (1 + margin) + margin_tokens stays within it */
	if (budget <= model->margin_tokens)
		return 0;
	return (uint64_t)floor((double)(budget - model->margin_tokens) /
			       (1.0 + (model->margin > 0 ? model->margin : 0)));
}

/*
 * How far an anchor may lower a count, as a share of it (docs/tokenizers.md,
 * "A correction down is bounded"): just past the largest lowering a real
 * bill gave in the corpus's 1,026 anchored calls (cmv-bench count, leave one
 * session out): 3.8% with an exact tokenizer (gpt-5.5: cmv counts Codex's
 * items 1-4% over), 18.1% with Claude's approximate one (claude-opus-4's
 * line-numbered Read results, counted high). Past that it is more likely a
 * wrong hidden prefix (a host that sent less after the segment's first call:
 * an absolute number of tokens, not a share) than a count that high.
 */
#define ANCHOR_DOWN_EXACT 0.05
#define ANCHOR_DOWN_APPROX 0.20

/*
 * The anchored count. Up, a correction is trusted whole: it is the safe
 * side, and the host events it catches have no bound. Down, bounded.
 */
uint64_t cmv_count_anchored(const cmv_model *model, uint64_t count, int64_t correction)
{
	int64_t floor_c = -(int64_t)floor((double)count * (model->exact ? ANCHOR_DOWN_EXACT : ANCHOR_DOWN_APPROX));
	if (correction < floor_c)
		correction = floor_c;
	int64_t w = (int64_t)count + correction;
	return w > 0 ? (uint64_t)w : 0;
}

/*
 * The conversation at `tip` rendered for the model's API, as cmv_count_sent
 * renders it (flags: CMV__RENDER_STUB_CLEARED for what a running host was
 * billed for), parsed; NULL on error.
 */
static cJSON *rendered(cmv_repo *repo, const cmv_id *tip, const cmv_model *model, unsigned int flags, int *error)
{
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 31);
	cJSON *j = NULL;

	ro.model = model->id;
	ro.flags = CMV_RENDER_NO_DECORATIONS | flags;
	if ((*error = cmv_render(&body, NULL, repo, tip, cmv_model_render_target(model), &ro)) == 0 &&
	    !(j = cJSON_ParseWithLength(body.ptr, body.size)))
		*error = cmv_error__set(CMV_ERROR, "a rendered request does not parse");
	cmv_buf_dispose(&body);
	return j;
}

/*
 * Whether the request at `tip` holds the one at `at` whole: every top-level
 * field but the conversation the same, and the conversation (messages, a
 * Responses request's input, Gemini's contents) starting with the billed one's, its last message
 * equal or grown by content blocks appended to it. A trim, a compaction, a
 * microcompaction's stubs or a host's rewrite of an earlier message breaks it.
 */
int cmv_count_anchor_holds(bool *out, cmv_repo *repo, const cmv_id *at, const cmv_id *tip, const cmv_model *model)
{
	int error;
	cJSON *a = NULL, *t = NULL;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(at);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	*out = false;
	if (cmv_id_equal(at, tip)) {
		*out = true;
		return 0;
	}
	/* what was billed at `at` (as the running host sent it) against what would be sent now */
	if (!(a = rendered(repo, at, model, CMV__RENDER_STUB_CLEARED, &error)) || !(t = rendered(repo, tip, model, 0, &error)))
		goto done;
	bool ok = true;
	const cJSON *conv_a = NULL, *conv_t = NULL;
	for (const cJSON *f = a->child; f && ok; f = f->next) {
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(t, f->string);
		if (cJSON_IsArray(f) &&
		    (!strcmp(f->string, "messages") || !strcmp(f->string, "input") || !strcmp(f->string, "contents"))) {
			conv_a = f;
			conv_t = g;
		} else {
			ok = g && cJSON_Compare(f, g, true);
		}
	}
	if (ok && conv_a && cJSON_IsArray(conv_t) && cJSON_GetArraySize(conv_t) >= cJSON_GetArraySize(conv_a)) {
		const cJSON *x = conv_a->child, *y = conv_t->child;
		for (; ok && x && x->next; x = x->next, y = y->next)
			ok = cJSON_Compare(x, y, true);
		if (ok && x && !cJSON_Compare(x, y, true)) {
			/* the last message may have grown: the same fields, its content blocks a prefix of the new ones */
			const cJSON *cx = cJSON_GetObjectItemCaseSensitive(x, "content"),
				    *cy = cJSON_GetObjectItemCaseSensitive(y, "content");
			for (const cJSON *f = x->child; f && ok; f = f->next)
				ok = f == cx || (cJSON_GetObjectItemCaseSensitive(y, f->string) &&
						 cJSON_Compare(f, cJSON_GetObjectItemCaseSensitive(y, f->string), true));
			ok = ok && cJSON_IsArray(cx) && cJSON_IsArray(cy) && cJSON_GetArraySize(cy) >= cJSON_GetArraySize(cx);
			for (const cJSON *p = ok ? cx->child : NULL, *q = ok ? cy->child : NULL; ok && p; p = p->next, q = q->next)
				ok = cJSON_Compare(p, q, true);
		}
		*out = ok;
	}
done:
	cJSON_Delete(a);
	cJSON_Delete(t);
	return error;
}

/*
 * The anchor (docs/tokenizers.md, "Anchored on what was billed"): the last
 * call on the path to tip that records usage, when it was billed for this
 * model. Its billed content is its prompt less its segment's hidden prefix
 * (the segment's first call's prompt less cmv's count before it, as the
 * calibration takes it), and the correction is that less cmv's count of
 * what it was sent. Only calls on the path count: a call is known once its
 * reply is recorded, so the anchor never uses a call after the tip.
 */
int cmv_count_anchor_find(cmv_count_anchor *out, cmv_repo *repo, const cmv_id *tip, const cmv_model *model,
			  cmv_tok *tok, const cmv_models *models)
{
	cmv_billed_call *calls = NULL;
	const cmv_model *billed_as = NULL;
	cmv_token_stats st;
	size_t n = 0, a, f;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	CMV_ASSERT_ARG(models);
	memset(out, 0, sizeof(*out));
	if ((error = cmv_billed_calls(&calls, &n, repo, tip, models)) < 0)
		return error;
	if (!n) {
		snprintf(out->why, sizeof(out->why), "no call on the branch records what it was billed");
		goto done;
	}
	a = n - 1;
	if (cmv_models_find(&billed_as, models, calls[a].model) < 0) {
		cmv_error_clear();
		billed_as = NULL;
	}
	if (!billed_as || strcmp(billed_as->id, model->id)) {
		snprintf(out->why, sizeof(out->why), "the last billed call was for %.56s, not %.56s", calls[a].model,
			 model->id);
		goto done;
	}
	if (cmv_id_is_none(&calls[a].before) || !calls[a].prompt) {
		snprintf(out->why, sizeof(out->why), "the last billed call was sent nothing cmv holds");
		goto done;
	}
	bool holds;
	if ((error = cmv_count_anchor_holds(&holds, repo, &calls[a].before, tip, model)) < 0)
		goto done;
	if (!holds) {
		snprintf(out->why, sizeof(out->why),
			 "the request no longer holds the billed one (trimmed, compacted or rewritten since)");
		goto done;
	}
	/* its segment's first call with a conversation before it: where the hidden prefix is taken */
	for (f = a; f > 0 && calls[f - 1].segment == calls[a].segment && !cmv_id_is_none(&calls[f - 1].before); f--)
		;
	if ((error = cmv_pager__count_sent_live(&st, repo, &calls[a].before, model, tok)) < 0)
		goto done;
	out->counted = st.total;
	out->hidden = (int64_t)calls[f].prompt - (int64_t)st.total;
	if (f != a) {
		if ((error = cmv_pager__count_sent_live(&st, repo, &calls[f].before, model, tok)) < 0)
			goto done;
		out->hidden = (int64_t)calls[f].prompt - (int64_t)st.total;
	}
	out->found = true;
	out->call = a;
	out->at = calls[a].before;
	out->prompt = calls[a].prompt;
	out->correction = (int64_t)calls[a].prompt - out->hidden - (int64_t)out->counted;
done:
	free(calls);
	return error;
}
