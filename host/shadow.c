/* SPDX-License-Identifier: MIT */
/*
 * Shadow runs (include/cmv/shadow.h, docs/shadow.md): for each turn and each
 * model, a branch at the turn's base, the request the pager builds for that
 * model (its own window), one exchange through the LLM client, the reply
 * appended with its usage booked to the model, and a row of the report. The
 * branches are the record: the report can be rebuilt from them and the
 * ledger.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cmv/shadow.h>
#include "host_priv.h"

#define TEXT_SHOWN 2000

void cmv_shadow_options_init(cmv_shadow_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->version = CMV_SHADOW_OPTIONS_VERSION;
}

/* ---- text similarity ------------------------------------------------------------ */

static int word_counts(cmv__strmap *m, size_t *n_words, const char *s)
{
	char w[128];
	int error = 0;
	*n_words = 0;
	while (s && *s && !error) {
		size_t n = 0;
		while (*s && !isalnum((unsigned char)*s) && !((unsigned char)*s & 0x80))
			s++;
		/* bytes of multibyte characters belong to words: a text in any script has words */
		while (*s && (isalnum((unsigned char)*s) || ((unsigned char)*s & 0x80))) {
			if (n < sizeof(w) - 1)
				w[n++] = (char)tolower((unsigned char)*s);
			s++;
		}
		if (!n)
			continue;
		w[n] = '\0';
		size_t c = 0;
		cmv__strmap_get(m, w, &c, NULL);
		if ((error = cmv__strmap_put(m, w, c + 1, NULL)) == 0 && !c)
			(*n_words)++;
	}
	return error;
}

double cmv_text_similarity(const char *a, const char *b)
{
	cmv__strmap ma = { 0 }, mb = { 0 };
	size_t na, nb;
	double dot = 0, sa = 0, sb = 0, sim = 0;

	if (word_counts(&ma, &na, a) < 0 || word_counts(&mb, &nb, b) < 0)
		goto done;
	if (!na && !nb) {
		sim = 1;
		goto done;
	}
	for (size_t i = 0; i < ma.cap; i++) {
		if (!ma.keys[i])
			continue;
		size_t cb = 0;
		double ca = (double)ma.nums[i];
		cmv__strmap_get(&mb, ma.keys[i], &cb, NULL);
		dot += ca * (double)cb;
		sa += ca * ca;
	}
	for (size_t i = 0; i < mb.cap; i++)
		if (mb.keys[i])
			sb += (double)mb.nums[i] * (double)mb.nums[i];
	sim = sa > 0 && sb > 0 ? dot / (sqrt(sa) * sqrt(sb)) : 0;
done:
	cmv__strmap_dispose(&ma);
	cmv__strmap_dispose(&mb);
	cmv_error_clear();
	return sim;
}

/* ---- one run ------------------------------------------------------------------------- */

typedef struct {
	cmv_model_handle *h;
	cmv_llm *llm;
	const char *fmt; /* what cmv_reply_append reads */
	char slug[96];
	/* totals */
	uint64_t in, out, cache_read;
	double cost, ms;
	bool cost_unknown;
	size_t answers, calls;
} runner;

static const char *url_for(const cmv_shadow_options *o, const cmv_model *m)
{
	const char *by_provider = NULL;
	for (size_t i = 0; i < o->n_urls; i++) {
		const char *u = o->urls[i], *eq = strchr(u, '=');
		if (!eq)
			continue;
		size_t n = (size_t)(eq - u);
		if (strlen(m->id) == n && !strncmp(u, m->id, n))
			return eq + 1;
		if (strlen(m->provider) == n && !strncmp(u, m->provider, n))
			by_provider = eq + 1;
	}
	return by_provider;
}

static int runner_open(runner *r, cmv_repo *repo, const char *ref, const cmv_shadow_options *o)
{
	cmv_llm_options lo = CMV_LLM_OPTIONS_INIT;
	int error;

	memset(r, 0, sizeof(*r));
	if ((error = cmv_model_handle_open(&r->h, repo, ref)) < 0)
		return error;
	const cmv_model *m = cmv_model_handle_profile(r->h);
	if (m->api == CMV_API_ANTHROPIC)
		r->fmt = "anthropic";
	else if (m->api == CMV_API_OPENAI_CHAT)
		r->fmt = "openai-chat";
	else
		return cmv_error__set(CMV_EINVALID, "%s speaks %s: a shadow run sends Anthropic Messages or Chat "
				      "Completions (give a descriptor with \"api\": \"openai-chat\" for a compatible endpoint)",
				      m->id, cmv_api_name(m->api));
	lo.base_url = url_for(o, m);
	lo.transport = o->transport;
	lo.retries = o->retries;
	lo.timeout_ms = o->timeout_ms;
	if ((error = cmv_llm_new(&r->llm, m, &lo)) < 0)
		return error;
	size_t n = 0;
	for (const char *s = m->id; *s && n < sizeof(r->slug) - 1; s++)
		r->slug[n++] = (isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-') ? *s : '-';
	r->slug[n] = '\0';
	return 0;
}

static void runner_close(runner *r)
{
	cmv_llm_free(r->llm);
	cmv_model_handle_free(r->h);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static cJSON *cut_string(const char *s)
{
	size_t n = strlen(s);
	if (n <= TEXT_SHOWN)
		return cJSON_CreateString(s);
	while (n > TEXT_SHOWN || (n && ((unsigned char)s[n] & 0xC0) == 0x80))
		n--;
	char *c = cmv__malloc(n + 4);
	if (!c)
		return NULL;
	memcpy(c, s, n);
	memcpy(c + n, "...", 4);
	cJSON *j = cJSON_CreateString(c);
	free(c);
	return j;
}

/* The calls a reply proposed, as the ledger keys them at the reply's node. */
static int proposed_calls(cJSON *arr, cmv_repo *repo, const char *branch, const cmv_reply *reply)
{
	cJSON *calls = cJSON_Parse(reply->tool_calls.ptr ? reply->tool_calls.ptr : "[]");
	const cJSON *c;
	int error = 0;

	cJSON_ArrayForEach(c, calls) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
		char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "input"));
		cmv_ledger_check_result r;
		if (!name || !in ||
		    (error = cmv_ledger_check(&r, repo, &reply->head, branch, name, in, strlen(in))) < 0) {
			cJSON_free(in);
			if (!error)
				error = cmv_error__set(CMV_EINVALID, "a tool call of the reply has no name");
			break;
		}
		cJSON_free(in);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddStringToObject(o, "args_hash", r.args_hash);
		cJSON_AddStringToObject(o, "key", r.key);
	}
	cJSON_Delete(calls);
	return error;
}

/* The same calls, whatever their order: the set of "name args_hash". */
static bool calls_agree(const cJSON *a, const cJSON *b)
{
	if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
		return false;
	const cJSON *x, *y;
	cJSON_ArrayForEach(x, a) {
		bool found = false;
		cJSON_ArrayForEach(y, b) {
			found = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "name")),
					cJSON_GetStringValue(cJSON_GetObjectItem(y, "name"))) &&
				!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "args_hash")),
					cJSON_GetStringValue(cJSON_GetObjectItem(y, "args_hash")));
			if (found)
				break;
		}
		if (!found)
			return false;
	}
	return true;
}

/* One model's answer at `base`: a branch, the request, the exchange, the reply. */
static int run_one(cJSON *answers, runner *r, cmv_repo *repo, const char *branch, const cmv_id *base,
		   const char *from_ref, const char *prompt, const char *tools, const cmv_shadow_options *o)
{
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), resp = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_request_report rep = { 0 };
	cmv_reply reply = { 0 };
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	if ((error = cmv_branch_create(repo, branch, base, from_ref)) < 0) {
		if (error == CMV_EEXISTS)
			cmv_error__prefix("a shadow run writes new branches: ");
		return error;
	}
	if ((error = cmv_branch_llm_set(repo, branch, cmv_model_handle_ref(r->h))) < 0)
		goto done;
	if (prompt) {
		cJSON *m = cJSON_CreateObject();
		char *text;
		cJSON_AddStringToObject(m, "role", "user");
		cJSON_AddStringToObject(m, "content", prompt);
		text = cJSON_PrintUnformatted(m);
		cJSON_Delete(m);
		if (!text) {
			error = cmv_error__oom();
			goto done;
		}
		error = cmv_append_json(NULL, repo, branch, "anthropic", text, strlen(text));
		cJSON_free(text);
		if (error < 0)
			goto done;
	}
	cmv_request_options_init(&ro);
	po.budget = o->budget;
	ro.pager = &po;
	ro.tools = tools;
	if ((error = cmv_request(&body, &rep, repo, branch, r->h, &ro)) < 0)
		goto done;
	double t0 = now_ms();
	if ((error = cmv_llm_send(&resp, NULL, r->llm, body.ptr, body.size)) < 0)
		goto done;
	double ms = now_ms() - t0;
	if ((error = cmv_reply_append(&reply, repo, branch, r->fmt, resp.ptr, resp.size, r->h)) < 0)
		goto done;
	cJSON *a = cJSON_CreateObject(), *calls;
	cJSON_AddItemToArray(answers, a);
	cJSON_AddStringToObject(a, "model", cmv_model_handle_profile(r->h)->id);
	cJSON_AddStringToObject(a, "signature", cmv_model_handle_signature(r->h));
	cJSON_AddStringToObject(a, "branch", branch);
	cJSON_AddStringToObject(a, "head", cmv_id_tostr(hex, sizeof(hex), &reply.head));
	cJSON_AddNumberToObject(a, "request_tokens", (double)(rep.pages.tokens + rep.tools_tokens));
	cJSON_AddNumberToObject(a, "input_tokens", (double)reply.usage.input_tokens);
	cJSON_AddNumberToObject(a, "output_tokens", (double)reply.usage.output_tokens);
	cJSON_AddNumberToObject(a, "cache_read_tokens", (double)reply.usage.cache_read_tokens);
	if (reply.has_usage && reply.cost >= 0)
		cJSON_AddNumberToObject(a, "cost_usd", reply.cost);
	else
		cJSON_AddNullToObject(a, "cost_usd");
	cJSON_AddNumberToObject(a, "ms", ms);
	cJSON_AddStringToObject(a, "stop_reason", reply.stop_reason);
	cJSON_AddItemToObject(a, "text", cut_string(reply.text.ptr ? reply.text.ptr : ""));
	/* the whole text for the similarity; dropped from the report at the end */
	cJSON_AddStringToObject(a, "_text", reply.text.ptr ? reply.text.ptr : "");
	calls = cJSON_AddArrayToObject(a, "tool_calls");
	if ((error = proposed_calls(calls, repo, branch, &reply)) < 0)
		goto done;
	r->in += reply.usage.input_tokens;
	r->out += reply.usage.output_tokens;
	r->cache_read += reply.usage.cache_read_tokens;
	if (reply.has_usage && reply.cost >= 0)
		r->cost += reply.cost;
	else
		r->cost_unknown = true;
	r->ms += ms;
	r->answers++;
	r->calls += (size_t)cJSON_GetArraySize(calls);
done:
	/* a run that failed leaves no branch behind: the branches are the runs that answered */
	if (error < 0) {
		const cmv_error *e = cmv_error_last();
		char msg[1024];
		int code = e ? e->code : error;
		snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : cmv_strerror(error));
		cmv_ref_delete(repo, branch);
		cmv_error__set(code, "%s", msg);
	}
	cmv_reply_dispose(&reply);
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&resp);
	return error;
}

/* ---- the source: turns, the original answers, the tools --------------------------------- */

/*
 * The tool definitions each request carries: the source branch's, else one
 * bare definition per tool the conversation called (providers refuse a
 * history with calls and no tools, and a model may call them again).
 */
static int source_tools(char **out, cmv_repo *repo, const char *branch, const cmv_ledger *l, const char *tools_given)
{
	cmv_buf note = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;

	*out = NULL;
	if (tools_given) {
		*out = cmv__strdup(tools_given);
		return *out ? 0 : cmv_error__oom();
	}
	if (branch && (error = cmv_branch_note_get(&note, repo, branch, "tools")) == 0) {
		*out = cmv__strdup(note.ptr);
		cmv_buf_dispose(&note);
		return *out ? 0 : cmv_error__oom();
	}
	cmv_error_clear();
	cmv_buf_dispose(&note);
	cJSON *arr = cJSON_CreateArray();
	cmv__strmap seen = { 0 };
	error = 0;
	for (size_t i = 0; arr && i < l->n && !error; i++) {
		const char *name = l->entries[i].name;
		bool ok = *name && strlen(name) <= 64;
		for (const char *s = name; ok && *s; s++)
			ok = isalnum((unsigned char)*s) || *s == '_' || *s == '-';
		if (!ok || cmv__strmap_get(&seen, name, NULL, NULL))
			continue;
		if ((error = cmv__strmap_put(&seen, name, 1, NULL)) < 0)
			break;
		cJSON *t = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, t);
		cJSON_AddStringToObject(t, "name", name);
		cJSON_AddStringToObject(t, "description", "A tool this session used (its definition was not recorded).");
		cJSON *schema = cJSON_AddObjectToObject(t, "input_schema");
		cJSON_AddStringToObject(schema, "type", "object");
	}
	cmv__strmap_dispose(&seen);
	if (!error && !(*out = arr ? cJSON_PrintUnformatted(arr) : NULL))
		error = cmv_error__oom();
	cJSON_Delete(arr);
	return error;
}

/* What the original model answered after prompt node `at`: the assistant messages up to the next user message. */
static int original_answer(cJSON **out, cmv_repo *repo, const cmv_id *tip, const cmv_id *at, const cmv_ledger *l)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT), blob = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_walk *w = NULL;
	const cmv_node *n;
	bool after = false;
	cJSON *o = cJSON_CreateObject(), *calls = cJSON_AddArrayToObject(o, "tool_calls");
	int error;

	*out = NULL;
	if ((error = cmv_walk_new(&w, repo, tip)) < 0)
		goto done;
	while ((error = cmv_walk_next(&n, w)) == 0) {
		if (!after) {
			after = cmv_id_equal(&n->id, at);
			continue;
		}
		if (n->kind != CMV_KIND_MESSAGE)
			continue;
		if (n->role != CMV_ROLE_ASSISTANT)
			break;
		for (size_t i = 0; i < n->n_blocks && !error; i++) {
			const cmv_block *b = &n->blocks[i];
			if (b->type && !strcmp(b->type, "text")) {
				if ((error = cmv_blob_read(&blob, repo, &b->blob)) == 0)
					error = cmv_buf_printf(&text, "%s%s", text.size ? "\n" : "", blob.ptr);
			} else if (b->type && !strcmp(b->type, "tool_use")) {
				for (size_t k = 0; k < l->n; k++) {
					const cmv_ledger_entry *e = &l->entries[k];
					if (!cmv_id_equal(&e->call_node, &n->id) || !e->call_id || !b->tool_id ||
					    strcmp(e->call_id, b->tool_id))
						continue;
					cJSON *c = cJSON_CreateObject();
					cJSON_AddItemToArray(calls, c);
					cJSON_AddStringToObject(c, "name", e->name);
					cJSON_AddStringToObject(c, "args_hash", e->args_hash);
					cJSON_AddStringToObject(c, "key", e->key);
					break;
				}
			}
		}
		if (error)
			break;
	}
	if (error == CMV_ITEROVER) {
		cmv_error_clear();
		error = 0;
	}
	if (!error) {
		cJSON_AddItemToObject(o, "text", cut_string(text.ptr ? text.ptr : ""));
		cJSON_AddStringToObject(o, "_text", text.ptr ? text.ptr : "");
		*out = o;
		o = NULL;
	}
done:
	cmv_walk_free(w);
	cJSON_Delete(o);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&blob);
	return error;
}

static int node_text(char **out, cmv_repo *repo, const cmv_id *id)
{
	cmv_node *n = NULL;
	cmv_buf b = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error = cmv_node_read(&n, repo, id);
	*out = NULL;
	for (size_t i = 0; !error && i < n->n_blocks; i++)
		if (n->blocks[i].type && !strcmp(n->blocks[i].type, "text")) {
			error = cmv_blob_read(&b, repo, &n->blocks[i].blob);
			break;
		}
	if (!error && !(*out = cmv__strdup(b.ptr ? b.ptr : "")))
		error = cmv_error__oom();
	cmv_node_free(n);
	cmv_buf_dispose(&b);
	return error;
}

/* Similarities and agreement of one run's answers, and each one's to the original. */
static void compare(cJSON *run)
{
	cJSON *answers = cJSON_GetObjectItem(run, "answers"), *orig = cJSON_GetObjectItem(run, "original"), *a, *b;
	double sum = 0;
	size_t pairs = 0;
	bool agree = true;

	cJSON_ArrayForEach(a, answers) {
		const char *ta = cJSON_GetStringValue(cJSON_GetObjectItem(a, "_text"));
		if (orig) {
			cJSON_AddNumberToObject(a, "similarity_to_original",
						cmv_text_similarity(ta, cJSON_GetStringValue(cJSON_GetObjectItem(orig, "_text"))));
			cJSON_AddBoolToObject(a, "tool_calls_match_original",
					      calls_agree(cJSON_GetObjectItem(a, "tool_calls"), cJSON_GetObjectItem(orig, "tool_calls")));
		}
		for (b = a->next; b; b = b->next) {
			sum += cmv_text_similarity(ta, cJSON_GetStringValue(cJSON_GetObjectItem(b, "_text")));
			pairs++;
			agree = agree && calls_agree(cJSON_GetObjectItem(a, "tool_calls"), cJSON_GetObjectItem(b, "tool_calls"));
		}
	}
	/* the mean over pairs of models (1 with one model: nothing to differ from) */
	cJSON_AddNumberToObject(run, "similarity", pairs ? sum / (double)pairs : 1.0);
	cJSON_AddBoolToObject(run, "tool_calls_agree", agree);
	cJSON_ArrayForEach(a, answers)
		cJSON_DeleteItemFromObject(a, "_text");
	if (orig)
		cJSON_DeleteItemFromObject(orig, "_text");
}

int cmv_shadow(cmv_buf *out, cmv_repo *repo, const char *ref, const cmv_shadow_options *o)
{
	runner *rs = NULL;
	cmv_ledger *l = NULL;
	cmv_id tip, *prompts = NULL;
	size_t n_prompts = 0;
	char *tools = NULL, *text = NULL;
	cmv_ref *rf = NULL;
	cmv_buf prefix = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1), name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
	cJSON *root = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(root, "runs");
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(ref);
	CMV_ASSERT_ARG(o);
	if (!root || !runs)
		return cJSON_Delete(root), cmv_error__oom();
	if (!o->n_models) {
		error = cmv_error__set(CMV_EINVALID, "a shadow run needs at least one model");
		goto done;
	}
	if (o->replay && o->prompt) {
		error = cmv_error__set(CMV_EINVALID, "a replay answers the branch's own turns: it takes no prompt");
		goto done;
	}
	if ((error = cmv_resolve(&tip, repo, ref)) < 0)
		goto done;
	const char *branch = cmv_ref_lookup(&rf, repo, ref) == 0 && rf->type == CMV_REF_BRANCH ? ref : NULL;
	cmv_error_clear();
	if (o->prefix)
		error = cmv_buf_puts(&prefix, o->prefix);
	else if (cmv_ref_name_is_valid(ref) && strlen(ref) < 200)
		error = cmv_buf_printf(&prefix, "shadow/%s", ref);
	else
		error = cmv_buf_printf(&prefix, "shadow/%.12s", cmv_id_tostr(hex, sizeof(hex), &tip));
	if (error < 0 || (error = cmv_ledger_build(&l, repo, &tip, branch)) < 0 ||
	    (error = source_tools(&tools, repo, branch, l, o->tools)) < 0 ||
	    (error = cmv_ledger_prompts(&prompts, &n_prompts, repo, &tip)) < 0)
		goto done;
	if (o->replay && o->replay > n_prompts) {
		error = cmv_error__set(CMV_EINVALID, "%s has %zu user turn%s: cannot replay %zu", ref, n_prompts,
				       n_prompts == 1 ? "" : "s", o->replay);
		goto done;
	}
	if (!(rs = cmv__calloc(o->n_models, sizeof(*rs)))) {
		error = cmv_error__oom();
		goto done;
	}
	for (size_t i = 0; i < o->n_models; i++)
		if ((error = runner_open(&rs[i], repo, o->models[i], o)) < 0)
			goto done;
	cJSON_AddStringToObject(root, "ref", ref);
	cJSON_AddStringToObject(root, "mode", o->replay ? "replay" : "prompt");
	size_t n_runs = o->replay ? o->replay : 1;
	for (size_t k = 0; k < n_runs && !error; k++) {
		size_t turn = o->replay ? n_prompts - o->replay + k : n_prompts; /* 0-based prompt index in replay */
		const cmv_id *base = o->replay ? &prompts[turn] : &tip;
		cJSON *run = cJSON_CreateObject(), *answers;
		cJSON_AddItemToArray(runs, run);
		cJSON_AddNumberToObject(run, "turn", (double)(o->replay ? turn + 1 : n_prompts + (o->prompt != NULL)));
		cJSON_AddStringToObject(run, "base", cmv_id_tostr(hex, sizeof(hex), base));
		free(text);
		text = NULL;
		if (o->replay) {
			cJSON *orig = NULL;
			if ((error = node_text(&text, repo, base)) < 0 ||
			    (error = original_answer(&orig, repo, &tip, base, l)) < 0)
				break;
			cJSON_AddItemToObject(run, "prompt", cut_string(text));
			cJSON_AddItemToObject(run, "original", orig);
		} else if (o->prompt) {
			cJSON_AddItemToObject(run, "prompt", cut_string(o->prompt));
		} else {
			cJSON_AddNullToObject(run, "prompt");
		}
		answers = cJSON_AddArrayToObject(run, "answers");
		for (size_t i = 0; i < o->n_models && !error; i++) {
			cmv_buf_clear(&name);
			if (o->replay)
				error = cmv_buf_printf(&name, "%s/turn-%zu/%s", prefix.ptr, turn + 1, rs[i].slug);
			else
				error = cmv_buf_printf(&name, "%s/%s", prefix.ptr, rs[i].slug);
			if (!error)
				error = run_one(answers, &rs[i], repo, name.ptr, base, ref, o->replay ? NULL : o->prompt, tools, o);
		}
		if (!error)
			compare(run);
	}
	if (!error) {
		cJSON *models = cJSON_AddArrayToObject(root, "models");
		for (size_t i = 0; i < o->n_models; i++) {
			cJSON *m = cJSON_CreateObject();
			cJSON_AddItemToArray(models, m);
			cJSON_AddStringToObject(m, "model", cmv_model_handle_profile(rs[i].h)->id);
			cJSON_AddStringToObject(m, "endpoint", cmv_llm_endpoint(rs[i].llm));
			cJSON_AddNumberToObject(m, "answers", (double)rs[i].answers);
			cJSON_AddNumberToObject(m, "input_tokens", (double)rs[i].in);
			cJSON_AddNumberToObject(m, "output_tokens", (double)rs[i].out);
			cJSON_AddNumberToObject(m, "cache_read_tokens", (double)rs[i].cache_read);
			if (rs[i].cost_unknown)
				cJSON_AddNullToObject(m, "cost_usd");
			else
				cJSON_AddNumberToObject(m, "cost_usd", rs[i].cost);
			cJSON_AddNumberToObject(m, "ms", rs[i].ms);
			cJSON_AddNumberToObject(m, "tool_calls", (double)rs[i].calls);
		}
		char *s = cJSON_PrintUnformatted(root);
		cmv_buf_clear(out);
		error = s ? cmv_buf_puts(out, s) : cmv_error__oom();
		cJSON_free(s);
	}
done:
	for (size_t i = 0; rs && i < o->n_models; i++)
		runner_close(&rs[i]);
	free(rs);
	free(prompts);
	free(tools);
	free(text);
	cmv_ref_free(rf);
	cmv_ledger_free(l);
	cmv_buf_dispose(&prefix);
	cmv_buf_dispose(&name);
	cJSON_Delete(root);
	return error;
}
