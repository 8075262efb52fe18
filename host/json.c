/* SPDX-License-Identifier: MIT */
/*
 * The JSON entry: every host call as JSON in, JSON out, so that a binding
 * needs four functions (open, call, free a string, free) and no struct
 * layout. docs/host.md lists the methods and their members.
 *
 * Invariants
 *  1. A failed call returns its code and leaves *out NULL; its message is
 *     cmv_error_last()'s, as for every other call.
 *  2. Model handles are kept per reference for the host's life: a
 *     tokenizer loads once, not once per turn.
 *  3. A request body is passed through as the JSON it is, never parsed and
 *     printed again: request's result is exactly {"report":R,"request":B}
 *     with B the body's bytes, so a binding may take B out without parsing
 *     it (bindings/python does).
 */
#include <stdio.h>
#include "host_priv.h"

#define HOST_MODELS_MAX 32
#define HOST_STREAMS_MAX 64

struct cmv_host {
	cmv_repo *repo;
	struct {
		char *ref;
		cmv_model_handle *h;
	} models[HOST_MODELS_MAX];
	size_t n_models;
	/* replies arriving as streams, fed by cmv_host_stream_feed; 0 is no id */
	struct {
		unsigned int id;
		char format[24];
		cmv_reply_stream *s;
	} streams[HOST_STREAMS_MAX];
	unsigned int next_stream;
};

int cmv_host_open(cmv_host **out, const char *path, unsigned int flags)
{
	cmv_host *h;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(path);
	*out = NULL;
	if (!(h = cmv__calloc(1, sizeof(*h))))
		return cmv_error__oom();
	if ((error = cmv_repo_open(&h->repo, path, flags)) < 0) {
		free(h);
		return error;
	}
	*out = h;
	return 0;
}

void cmv_host_free(cmv_host *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_models; i++) {
		free(h->models[i].ref);
		cmv_model_handle_free(h->models[i].h);
	}
	for (size_t i = 0; i < HOST_STREAMS_MAX; i++)
		cmv_reply_stream_free(h->streams[i].s);
	cmv_repo_free(h->repo);
	free(h);
}

cmv_repo *cmv_host_repo(cmv_host *h)
{
	return h->repo;
}

void cmv_host_string_free(char *s)
{
	free(s);
}

/* The slot of open stream `id`, or -1. */
static int stream_slot(const cmv_host *h, unsigned int id)
{
	for (int i = 0; id && i < HOST_STREAMS_MAX; i++)
		if (h->streams[i].id == id)
			return i;
	return -1;
}

int cmv_host_stream_feed(cmv_host *h, unsigned int stream, const char *chunk, size_t len)
{
	int i;
	CMV_ASSERT_ARG(h);
	cmv_error_clear();
	if ((i = stream_slot(h, stream)) < 0)
		return cmv_error__set(CMV_ENOTFOUND, "stream_feed: no open stream %u", stream);
	if (!len)
		return 0;
	CMV_ASSERT_ARG(chunk);
	return cmv_reply_stream_feed(h->streams[i].s, chunk, len);
}

/* A model by reference (a string, or a descriptor object), resolved once per host. */
static int host_model(cmv_model_handle **out, cmv_host *h, const cJSON *ref)
{
	char *text = cJSON_IsString(ref) ? cmv__strdup(ref->valuestring) : cJSON_IsObject(ref) ? cJSON_PrintUnformatted(ref) : NULL;
	int error;

	*out = NULL;
	if (!ref)
		return cmv_error__set(CMV_EINVALID, "\"model\" is required");
	if (!text)
		return cJSON_IsString(ref) || cJSON_IsObject(ref) ? cmv_error__oom()
								  : cmv_error__set(CMV_EINVALID, "\"model\" is a name or a descriptor object");
	for (size_t i = 0; i < h->n_models; i++)
		if (!strcmp(h->models[i].ref, text)) {
			free(text);
			*out = h->models[i].h;
			return 0;
		}
	if ((error = cmv_model_handle_open(out, h->repo, text)) < 0) {
		free(text);
		return error;
	}
	if (h->n_models == HOST_MODELS_MAX) {
		/* the oldest goes: a host cycling through many models reloads, never grows */
		free(h->models[0].ref);
		cmv_model_handle_free(h->models[0].h);
		memmove(h->models, h->models + 1, (HOST_MODELS_MAX - 1) * sizeof(h->models[0]));
		h->n_models--;
	}
	h->models[h->n_models].ref = text;
	h->models[h->n_models].h = *out;
	h->n_models++;
	return 0;
}

/* The branch's model when the call names none. */
static int branch_model(cmv_model_handle **out, cmv_host *h, const cJSON *p, const char *branch)
{
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(p, "model");
	cmv_buf llm = CMV_BUF_INIT(CMV_BUF_SMALL);
	int error;
	if (ref && !cJSON_IsNull(ref))
		return host_model(out, h, ref);
	if ((error = cmv_branch_llm_get(&llm, h->repo, branch)) == 0) {
		cJSON *s = cJSON_CreateString(llm.ptr);
		error = s ? host_model(out, h, s) : cmv_error__oom();
		cJSON_Delete(s);
	} else if (error == CMV_ENOTFOUND) {
		error = cmv_error__set(CMV_EINVALID, "no \"model\" given and branch '%s' has none set", branch);
	}
	cmv_buf_dispose(&llm);
	return error;
}

static const char *pstr(const cJSON *p, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, k));
}

static uint64_t pnum(const cJSON *p, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, k);
	/* past 1e18 the cast would be undefined, and no count is that large */
	return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e18 ? (uint64_t)v->valuedouble : 0;
}

static int need(const char **out, const cJSON *p, const char *k)
{
	if (!(*out = pstr(p, k)) || !**out)
		return cmv_error__set(CMV_EINVALID, "\"%s\" is required (a string)", k);
	return 0;
}

/* A member that may be JSON text or a JSON value: its text. */
static char *json_text(const cJSON *v)
{
	return cJSON_IsString(v) ? cmv__strdup(v->valuestring) : v ? cJSON_PrintUnformatted(v) : NULL;
}

static char *hex(char buf[CMV_ID_HEXSZ + 1], const cmv_id *id)
{
	return cmv_id_tostr(buf, CMV_ID_HEXSZ + 1, id);
}

static int add_head(cJSON *o, const char *k, const cmv_id *id)
{
	char h[CMV_ID_HEXSZ + 1];
	return cmv_id_is_none(id) ? (cJSON_AddNullToObject(o, k) ? 0 : -1) : (cJSON_AddStringToObject(o, k, hex(h, id)) ? 0 : -1);
}

/* The pager's report; the pages paged out only when asked (a long session has hundreds). */
static cJSON *report_json(const cmv_materialize_report *r, bool with_pages)
{
	cJSON *o = cJSON_CreateObject(), *pages = with_pages ? cJSON_AddArrayToObject(o, "paged_out") : NULL;
	cJSON_AddNumberToObject(o, "budget", (double)r->budget);
	cJSON_AddNumberToObject(o, "billed_budget", (double)r->billed_budget);
	cJSON_AddNumberToObject(o, "tokens", (double)r->tokens);
	cJSON_AddNumberToObject(o, "tokens_full", (double)r->tokens_full);
	cJSON_AddBoolToObject(o, "fits", r->fits);
	cJSON_AddBoolToObject(o, "exact", r->exact);
	cJSON_AddNumberToObject(o, "turns", (double)r->turns);
	cJSON_AddNumberToObject(o, "resident", (double)r->resident);
	cJSON_AddNumberToObject(o, "stubbed", (double)r->stubbed);
	cJSON_AddNumberToObject(o, "evicted", (double)r->evicted);
	cJSON_AddNumberToObject(o, "pinned", (double)r->pinned);
	/* counted from the last reply's bill (docs/tokenizers.md, "Anchored live"), and by how much */
	if (r->version >= 2) {
		cJSON_AddBoolToObject(o, "anchored", r->anchored);
		cJSON_AddNumberToObject(o, "correction", (double)r->correction);
	}
	for (size_t i = 0; pages && i < r->n_pages; i++) {
		const cmv_page *pg = &r->pages[i];
		if (pg->state == CMV_PAGE_RESIDENT)
			continue;
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "id", pg->id);
		cJSON_AddStringToObject(x, "kind", pg->kind == CMV_PAGE_BODY ? "body" : "turn");
		cJSON_AddStringToObject(x, "state", pg->state == CMV_PAGE_STUBBED ? "stubbed" : "evicted");
		cJSON_AddNumberToObject(x, "turn", (double)pg->turn);
		cJSON_AddNumberToObject(x, "tokens", (double)pg->tokens);
		cJSON_AddItemToArray(pages, x);
	}
	return o;
}

static cJSON *usage_obj(const cmv_usage *u)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "input_tokens", (double)u->input_tokens);
	cJSON_AddNumberToObject(o, "output_tokens", (double)u->output_tokens);
	cJSON_AddNumberToObject(o, "cache_read_tokens", (double)u->cache_read_tokens);
	cJSON_AddNumberToObject(o, "cache_write_tokens", (double)u->cache_write_tokens);
	return o;
}

static void add_cost(cJSON *o, double cost)
{
	if (cost >= 0)
		cJSON_AddNumberToObject(o, "cost_usd", cost);
	else
		cJSON_AddNullToObject(o, "cost_usd");
}

/* ---- the methods --------------------------------------------------------------- */

typedef struct {
	cmv_host *h;
	const cJSON *p;
	cJSON *res;      /* the result, as an object */
	cmv_buf raw;     /* or the result as text, built by the method */
} call;

static int m_branch(call *c)
{
	const char *name, *from = pstr(c->p, "from");
	cmv_ref *ref = NULL;
	cmv_id at;
	int error;
	bool created = false;

	cmv_id_clear(&at);
	if ((error = need(&name, c->p, "name")) < 0)
		return error;
	if ((error = cmv_ref_lookup(&ref, c->h->repo, name)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		if (from && (error = cmv_resolve(&at, c->h->repo, from)) < 0)
			return error;
		if ((error = cmv_branch_create(c->h->repo, name, from ? &at : NULL, from)) < 0)
			return error;
		created = true;
	} else if (error < 0) {
		return error;
	} else {
		if (ref->type != CMV_REF_BRANCH)
			error = cmv_error__set(CMV_EINVALID, "'%s' is a snapshot, not a branch (make a branch from it)", name);
		else if (from)
			error = cmv_error__set(CMV_EEXISTS, "branch '%s' exists: it cannot be made again from '%s'", name, from);
		at = ref->target;
		cmv_ref_free(ref);
		if (error < 0)
			return error;
	}
	cJSON_AddStringToObject(c->res, "name", name);
	cJSON_AddBoolToObject(c->res, "created", created);
	return add_head(c->res, "head", &at);
}

static int m_head(call *c)
{
	const char *name;
	cmv_id at;
	int error;
	cmv_id_clear(&at);
	if ((error = need(&name, c->p, "branch")) < 0)
		return error;
	if ((error = cmv_resolve(&at, c->h->repo, name)) < 0) {
		cmv_ref *ref = NULL;
		/* an empty branch has no head, and is no error */
		if (error != CMV_ENOTFOUND || cmv_ref_lookup(&ref, c->h->repo, name) < 0)
			return error;
		cmv_ref_free(ref);
		cmv_error_clear();
	}
	return add_head(c->res, "head", &at);
}

static int m_append(call *c)
{
	const char *branch;
	char *text;
	cmv_id head;
	int error;
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(c->p, "messages");
	if ((error = need(&branch, c->p, "branch")) < 0)
		return error;
	if (cJSON_IsObject(msgs) || cJSON_IsArray(msgs)) {
		/* already parsed with the parameters: appended as they are */
		error = cmv_host__append_parsed(&head, c->h->repo, branch, pstr(c->p, "format") ? pstr(c->p, "format") : "cmv", msgs);
		return error < 0 ? error : add_head(c->res, "head", &head);
	}
	if (!(text = json_text(msgs)))
		return cmv_error__set(CMV_EINVALID, "\"messages\" is required");
	error = cmv_append_json(&head, c->h->repo, branch, pstr(c->p, "format") ? pstr(c->p, "format") : "cmv", text,
				strlen(text));
	free(text);
	return error < 0 ? error : add_head(c->res, "head", &head);
}

static int m_append_response(call *c)
{
	const char *branch, *format;
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(c->p, "body");
	const char *events = pstr(c->p, "events");
	cmv_model_handle *model = NULL;
	cmv_buf sbody = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_reply r = { 0 };
	char *text = NULL;
	int error;

	const cJSON *sid = cJSON_GetObjectItemCaseSensitive(c->p, "stream");
	char sformat[sizeof(c->h->streams[0].format)];
	int slot = -1;

	if ((error = need(&branch, c->p, "branch")) < 0)
		return error;
	if (sid && (slot = stream_slot(c->h, cJSON_IsNumber(sid) && sid->valuedouble > 0 ? (unsigned int)sid->valuedouble : 0)) < 0)
		return cmv_error__set(CMV_ENOTFOUND, "no open stream %s", cJSON_IsNumber(sid) ? "of that id" : "(\"stream\" is an id)");
	if (slot >= 0) {
		/* the slot is cleared below */
		memcpy(sformat, c->h->streams[slot].format, sizeof(sformat));
		format = sformat;
	} else if ((error = need(&format, c->p, "format")) < 0)
		return error;
	if (cJSON_GetObjectItemCaseSensitive(c->p, "model") && (error = host_model(&model, c->h, cJSON_GetObjectItemCaseSensitive(c->p, "model"))) < 0)
		return error;
	if (slot >= 0) {
		/* the stream ends here, appended or not: its id is spent */
		error = cmv_reply_stream_body(&sbody, c->h->streams[slot].s);
		cmv_reply_stream_free(c->h->streams[slot].s);
		memset(&c->h->streams[slot], 0, sizeof(c->h->streams[slot]));
		if (error < 0)
			goto done;
	} else if (events) {
		cmv_reply_stream *s = NULL;
		if ((error = cmv_reply_stream_new(&s, format)) == 0 &&
		    (error = cmv_reply_stream_feed(s, events, strlen(events))) == 0)
			error = cmv_reply_stream_body(&sbody, s);
		cmv_reply_stream_free(s);
		if (error < 0)
			goto done;
	} else if (!(text = json_text(body))) {
		error = cmv_error__set(CMV_EINVALID, "\"body\" (the response) or \"events\" (its stream) is required");
		goto done;
	}
	if ((error = cmv_reply_append(&r, c->h->repo, branch, format, text ? text : sbody.ptr,
				      text ? strlen(text) : sbody.size, model)) < 0)
		goto done;
	add_head(c->res, "head", &r.head);
	cJSON_AddStringToObject(c->res, "text", r.text.ptr);
	cJSON_AddItemToObject(c->res, "tool_calls", cJSON_Parse(r.tool_calls.ptr));
	cJSON_AddStringToObject(c->res, "stop_reason", r.stop_reason);
	if (r.has_usage)
		cJSON_AddItemToObject(c->res, "usage", usage_obj(&r.usage));
	else
		cJSON_AddNullToObject(c->res, "usage");
	add_cost(c->res, model && r.has_usage ? r.cost : -1);
	if (model)
		cJSON_AddStringToObject(c->res, "signature", cmv_model_handle_signature(model));
done:
	cmv_reply_dispose(&r);
	cmv_buf_dispose(&sbody);
	free(text);
	return error;
}

static int m_stream_open(call *c)
{
	const char *format;
	cmv_reply_stream *s;
	int error, i;
	if ((error = need(&format, c->p, "format")) < 0)
		return error;
	for (i = 0; i < HOST_STREAMS_MAX && c->h->streams[i].s; i++)
		;
	if (i == HOST_STREAMS_MAX)
		return cmv_error__set(CMV_ETOOBIG, "%d streams are open: finish one (append_response) or close it first",
				      HOST_STREAMS_MAX);
	if ((error = cmv_reply_stream_new(&s, format)) < 0)
		return error;
	if (!++c->h->next_stream)
		c->h->next_stream = 1;
	c->h->streams[i].id = c->h->next_stream;
	c->h->streams[i].s = s;
	snprintf(c->h->streams[i].format, sizeof(c->h->streams[i].format), "%s", format);
	cJSON_AddNumberToObject(c->res, "stream", (double)c->h->streams[i].id);
	return 0;
}

static int m_stream_close(call *c)
{
	const cJSON *sid = cJSON_GetObjectItemCaseSensitive(c->p, "stream");
	int slot = stream_slot(c->h, cJSON_IsNumber(sid) && sid->valuedouble > 0 ? (unsigned int)sid->valuedouble : 0);
	/* closing a stream already finished is no error: a binding's finalizer may run after append_response */
	if (slot >= 0) {
		cmv_reply_stream_free(c->h->streams[slot].s);
		memset(&c->h->streams[slot], 0, sizeof(c->h->streams[slot]));
	}
	cJSON_AddBoolToObject(c->res, "closed", slot >= 0);
	return 0;
}

static int m_request(call *c)
{
	const char *branch, *format = pstr(c->p, "format");
	cmv_model_handle *model;
	cmv_request_options ro;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_request_report rep = { .version = CMV_REQUEST_REPORT_VERSION }; /* the layout with `anchored` */
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT);
	const cJSON *tools = cJSON_GetObjectItemCaseSensitive(c->p, "tools");
	const cJSON *pins = cJSON_GetObjectItemCaseSensitive(c->p, "pins");
	const char *pinv[64];
	char *ttext = NULL, *rtext = NULL;
	int error;

	if ((error = need(&branch, c->p, "branch")) < 0 || (error = branch_model(&model, c->h, c->p, branch)) < 0)
		return error;
	cmv_request_options_init(&ro);
	po.budget = pnum(c->p, "budget");
	po.keep_turns = (size_t)pnum(c->p, "keep_turns");
	po.query = pstr(c->p, "query");
	po.stub_pinned = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->p, "stub_pinned"));
	for (const cJSON *x = cJSON_IsArray(pins) ? pins->child : NULL; x && po.n_pins < 64; x = x->next)
		if (cJSON_IsString(x))
			pinv[po.n_pins++] = x->valuestring;
	po.pins = pinv;
	if (format) {
		cmv_render_target t;
		if ((error = cmv_host__format(&t, format)) < 0)
			return error;
		po.target = (int)t;
	}
	if (tools && !cJSON_IsNull(tools) && !(ttext = json_text(tools)))
		return cmv_error__oom();
	ro.tools = ttext;
	ro.recall_tool = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->p, "recall_tool"));
	ro.max_tokens = (uint32_t)pnum(c->p, "max_tokens");
	ro.pager = &po;
	ro.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->p, "stream"));
	if ((error = cmv_request(&body, &rep, c->h->repo, branch, model, &ro)) < 0)
		goto done;
	cJSON *r = report_json(&rep.pages, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->p, "pages")));
	cJSON_AddNumberToObject(r, "tools_tokens", (double)rep.tools_tokens);
	cJSON_AddNumberToObject(r, "tools", (double)rep.n_tools);
	cJSON_AddNumberToObject(r, "max_tokens", (double)rep.max_tokens);
	cJSON_AddStringToObject(r, "model", cmv_model_handle_ref(model));
	cJSON_AddStringToObject(r, "signature", cmv_model_handle_signature(model));
	/* the body goes through as the bytes it is: the result is built around it */
	if (!(rtext = cJSON_PrintUnformatted(r)))
		error = cmv_error__oom();
	cJSON_Delete(r);
	if (!error && (error = cmv_buf_grow(&c->raw, body.size + strlen(rtext) + 32)) == 0)
		error = cmv_buf_printf(&c->raw, "{\"report\":%s,\"request\":", rtext);
	if (!error && (error = cmv_buf_put(&c->raw, body.ptr, body.size)) == 0)
		error = cmv_buf_putc(&c->raw, '}');
done:
	cJSON_free(rtext);
	free(ttext);
	cmv_request_report_dispose(&rep);
	cmv_buf_dispose(&body);
	return error;
}

static int m_switch(call *c)
{
	const char *branch;
	cmv_model_handle *model;
	cmv_switch_options so;
	cmv_switch_report rep = { 0 };
	cmv_buf old = CMV_BUF_INIT(CMV_BUF_SMALL);
	int error;

	if ((error = need(&branch, c->p, "branch")) < 0 ||
	    (error = host_model(&model, c->h, cJSON_GetObjectItemCaseSensitive(c->p, "model"))) < 0)
		return error;
	cmv_switch_options_init(&so);
	so.budget = pnum(c->p, "budget");
	so.from = pstr(c->p, "from");
	so.keep_turns = (size_t)pnum(c->p, "keep_turns");
	so.stub_pinned = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->p, "stub_pinned"));
	if (!so.from && cmv_branch_llm_get(&old, c->h->repo, branch) < 0)
		cmv_error_clear();
	if ((error = cmv_switch(&rep, c->h->repo, branch, model, &so)) == 0) {
		cJSON_AddStringToObject(c->res, "branch", branch);
		if (old.size)
			cJSON_AddStringToObject(c->res, "from", old.ptr);
		else
			cJSON_AddNullToObject(c->res, "from");
		cJSON_AddStringToObject(c->res, "to", cmv_model_handle_ref(model));
		cJSON_AddStringToObject(c->res, "signature", cmv_model_handle_signature(model));
		cJSON_AddBoolToObject(c->res, "changed", rep.changed);
		cJSON_AddBoolToObject(c->res, "created", rep.created);
		add_head(c->res, "event", &rep.event);
		cJSON_AddNumberToObject(c->res, "budget", (double)rep.budget);
		cJSON_AddNumberToObject(c->res, "tokens", (double)rep.tokens);
		cJSON_AddNumberToObject(c->res, "tokens_full", (double)rep.tokens_full);
		cJSON_AddNumberToObject(c->res, "stubbed", (double)rep.stubbed);
		cJSON_AddNumberToObject(c->res, "evicted", (double)rep.evicted);
		cJSON_AddNumberToObject(c->res, "in_flight", (double)rep.in_flight);
		cJSON_AddNumberToObject(c->res, "in_flight_side_effects", (double)rep.in_flight_effects);
	}
	cmv_buf_dispose(&old);
	return error;
}

static int m_record_usage(call *c)
{
	const char *branch;
	cmv_model_handle *model;
	cmv_usage u = { CMV_USAGE_VERSION, 0, 0, 0, 0 };
	double cost = -1;
	int error;

	if ((error = need(&branch, c->p, "branch")) < 0 || (error = branch_model(&model, c->h, c->p, branch)) < 0)
		return error;
	u.input_tokens = pnum(c->p, "input_tokens");
	u.output_tokens = pnum(c->p, "output_tokens");
	u.cache_read_tokens = pnum(c->p, "cache_read_tokens");
	u.cache_write_tokens = pnum(c->p, "cache_write_tokens");
	if ((error = cmv_usage_add(&cost, c->h->repo, branch, model, &u)) < 0)
		return error;
	cJSON_AddStringToObject(c->res, "signature", cmv_model_handle_signature(model));
	add_cost(c->res, cost);
	return 0;
}

static int m_usage(call *c)
{
	const char *branch;
	int error;
	if ((error = need(&branch, c->p, "branch")) < 0)
		return error;
	return cmv_usage_json(&c->raw, c->h->repo, branch);
}

/* {branch | ref}: the ledger of side effects (the branch's tool annotations count when a branch is named) */
static int m_ledger(call *c)
{
	const char *branch = pstr(c->p, "branch"), *ref = branch ? branch : pstr(c->p, "ref");
	cmv_ledger *l = NULL;
	cmv_id tip;
	int error;
	if (!ref)
		return cmv_error__set(CMV_EINVALID, "\"branch\" or \"ref\" is required");
	if ((error = cmv_resolve(&tip, c->h->repo, ref)) < 0 || (error = cmv_ledger_build(&l, c->h->repo, &tip, branch)) < 0)
		return error;
	error = cmv_ledger_json(&c->raw, l);
	cmv_ledger_free(l);
	return error;
}

/* {branch, name, input?}: before running a call, has one with its key committed on the branch? */
static int m_ledger_check(call *c)
{
	const char *branch, *name;
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(c->p, "input");
	cmv_ledger_check_result r;
	char *text = NULL, h[CMV_ID_HEXSZ + 1];
	cmv_id tip;
	int error;
	if ((error = need(&branch, c->p, "branch")) < 0 || (error = need(&name, c->p, "name")) < 0)
		return error;
	if (cJSON_IsString(in))
		text = cmv__strdup(in->valuestring);
	else
		text = in ? json_text(in) : cmv__strdup("{}");
	if (!text)
		return cmv_error__oom();
	if ((error = cmv_resolve(&tip, c->h->repo, branch)) == 0 &&
	    (error = cmv_ledger_check(&r, c->h->repo, &tip, branch, name, text, strlen(text))) == 0) {
		cJSON_AddStringToObject(c->res, "key", r.key);
		cJSON_AddStringToObject(c->res, "args_hash", r.args_hash);
		cJSON_AddStringToObject(c->res, "effect", cmv_effect_name(r.effect));
		cJSON_AddBoolToObject(c->res, "committed", r.committed);
		if (r.committed) {
			cJSON_AddStringToObject(c->res, "call_node", hex(h, &r.call_node));
			cJSON_AddStringToObject(c->res, "result_node", hex(h, &r.result_node));
			cJSON_AddStringToObject(c->res, "result", r.error ? "error" : "ok");
		}
	}
	free(text);
	return error;
}

/* {pattern?, effect?}: set the user's classification of tools (effect none, side_effects or unset); {classification} */
static int m_ledger_classify(call *c)
{
	const char *pattern = pstr(c->p, "pattern"), *effect = pstr(c->p, "effect");
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;
	if (!pattern != !effect)
		return cmv_error__set(CMV_EINVALID, "\"pattern\" and \"effect\" go together");
	if (pattern) {
		cmv_effect e;
		if (!strcmp(effect, "none"))
			e = CMV_EFFECT_NONE;
		else if (!strcmp(effect, "side_effects"))
			e = CMV_EFFECT_SIDE;
		else if (!strcmp(effect, "unset"))
			e = CMV_EFFECT_UNKNOWN;
		else
			return cmv_error__set(CMV_EINVALID, "effect '%s': expected none, side_effects or unset", effect);
		if ((error = cmv_ledger_classify(c->h->repo, pattern, e)) < 0)
			return error;
	}
	if ((error = cmv_ledger_classification(&text, c->h->repo)) == 0) {
		cJSON *o = cJSON_Parse(text.ptr);
		if (!o || !cJSON_AddItemToObject(c->res, "classification", o)) {
			cJSON_Delete(o);
			error = cmv_error__oom();
		}
	}
	cmv_buf_dispose(&text);
	return error;
}

static int m_tools_set(call *c)
{
	const char *branch;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(c->p, "tools");
	char *text = NULL;
	int error;
	if ((error = need(&branch, c->p, "branch")) < 0)
		return error;
	if (t && !cJSON_IsNull(t) && !(text = json_text(t)))
		return cmv_error__oom();
	error = cmv_branch_tools_set(c->h->repo, branch, text);
	free(text);
	return error;
}

typedef struct {
	cJSON *hits;
	cmv_repo *repo;
} search_walk;

static int search_cb(const cmv_search_hit *hit, void *payload)
{
	search_walk *w = payload;
	cJSON *o = cJSON_CreateObject();
	char h[CMV_ID_HEXSZ + 1];
	cJSON_AddStringToObject(o, "node", hex(h, &hit->node));
	cJSON_AddStringToObject(o, "blob", hex(h, &hit->blob));
	cJSON_AddNumberToObject(o, "block", (double)hit->block);
	cJSON_AddNumberToObject(o, "score", hit->score);
	cJSON_AddStringToObject(o, "snippet", hit->snippet ? hit->snippet : "");
	cJSON_AddItemToArray(w->hits, o);
	return 0;
}

static int m_search(call *c)
{
	const char *query, *branch = pstr(c->p, "branch");
	uint64_t budget = pnum(c->p, "budget");
	int error;

	if ((error = need(&query, c->p, "query")) < 0)
		return error;
	if (branch && budget) {
		/* the pager's query: pages within a budget of the branch's model's tokens */
		cmv_model_handle *model;
		cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
		size_t n = 0;
		cmv_id tip;
		if ((error = branch_model(&model, c->h, c->p, branch)) < 0 || (error = cmv_resolve(&tip, c->h->repo, branch)) < 0)
			return error;
		if ((error = cmv_recall_query(&out, &n, c->h->repo, &tip, branch, cmv_model_handle_profile(model),
					      cmv_model_handle_tok(model), query, budget)) == 0) {
			cJSON_AddStringToObject(c->res, "text", out.ptr);
			cJSON_AddNumberToObject(c->res, "pages", (double)n);
		}
		cmv_buf_dispose(&out);
		return error;
	}
	search_walk w = { cJSON_AddArrayToObject(c->res, "hits"), c->h->repo };
	return cmv_search(c->h->repo, query, pnum(c->p, "limit") ? (size_t)pnum(c->p, "limit") : 20, 0, search_cb, &w);
}

static int m_recall(call *c)
{
	const char *id;
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;
	if ((error = need(&id, c->p, "id")) < 0)
		return error;
	if ((error = cmv_recall(&out, c->h->repo, id)) == 0)
		cJSON_AddStringToObject(c->res, "text", out.ptr);
	cmv_buf_dispose(&out);
	return error;
}

static int m_recall_tool(call *c)
{
	const char *branch;
	char *input;
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;
	if ((error = need(&branch, c->p, "branch")) < 0)
		return error;
	if (!(input = json_text(cJSON_GetObjectItemCaseSensitive(c->p, "input"))))
		return cmv_error__set(CMV_EINVALID, "\"input\" (the call's input) is required");
	if ((error = cmv_recall_tool_call(&out, c->h->repo, branch, input, strlen(input))) >= 0) {
		cJSON_AddStringToObject(c->res, "text", out.ptr);
		cJSON_AddBoolToObject(c->res, "is_error", error == 1);
		error = 0;
	}
	free(input);
	cmv_buf_dispose(&out);
	return error;
}

static int m_snapshot(call *c)
{
	const char *name, *ref;
	cmv_snapshot_options so = CMV_SNAPSHOT_OPTIONS_INIT;
	cmv_id at;
	int error;
	if ((error = need(&name, c->p, "name")) < 0 || (error = need(&ref, c->p, "ref")) < 0)
		return error;
	so.description = pstr(c->p, "description");
	if ((error = cmv_resolve(&at, c->h->repo, ref)) < 0 ||
	    (error = cmv_snapshot_create(c->h->repo, name, &at, ref, &so)) < 0)
		return error;
	cJSON_AddStringToObject(c->res, "name", name);
	return add_head(c->res, "head", &at);
}

static int m_model(call *c)
{
	cmv_model_handle *model;
	int error;
	if ((error = host_model(&model, c->h, cJSON_GetObjectItemCaseSensitive(c->p, "model"))) < 0)
		return error;
	const cmv_model *m = cmv_model_handle_profile(model);
	cJSON_AddStringToObject(c->res, "ref", cmv_model_handle_ref(model));
	cJSON_AddStringToObject(c->res, "signature", cmv_model_handle_signature(model));
	cJSON_AddStringToObject(c->res, "id", m->id);
	cJSON_AddStringToObject(c->res, "provider", m->provider);
	cJSON_AddStringToObject(c->res, "api", cmv_api_name(m->api));
	cJSON_AddStringToObject(c->res, "tokenizer", m->tokenizer);
	cJSON_AddBoolToObject(c->res, "exact", m->exact);
	cJSON_AddNumberToObject(c->res, "context_window", (double)m->context_window);
	cJSON_AddNumberToObject(c->res, "max_tokens", (double)cmv_model_handle_max_tokens(model));
	cJSON_AddNumberToObject(c->res, "input_budget", (double)cmv_model_input_budget(m));
	if (m->base_url)
		cJSON_AddStringToObject(c->res, "base_url", m->base_url);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(call *c);
} methods[] = {
	{ "branch", m_branch },
	{ "head", m_head },
	{ "append", m_append },
	{ "append_response", m_append_response },
	{ "request", m_request },
	{ "materialize", m_request },
	{ "switch", m_switch },
	{ "record_usage", m_record_usage },
	{ "usage", m_usage },
	{ "tools_set", m_tools_set },
	{ "ledger", m_ledger },
	{ "ledger_check", m_ledger_check },
	{ "ledger_classify", m_ledger_classify },
	{ "search", m_search },
	{ "recall", m_recall },
	{ "recall_tool", m_recall_tool },
	{ "snapshot", m_snapshot },
	{ "model", m_model },
	{ "stream_open", m_stream_open },
	{ "stream_close", m_stream_close },
};

int cmv_host_call(char **out, cmv_host *h, const char *method, const char *params)
{
	call c;
	cJSON *p = NULL;
	int error = 0;
	size_t i;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(h);
	CMV_ASSERT_ARG(method);
	*out = NULL;
	cmv_error_clear();
	for (i = 0; i < CMV_ARRAY_SIZE(methods) && strcmp(methods[i].name, method); i++)
		;
	if (i == CMV_ARRAY_SIZE(methods))
		return cmv_error__set(CMV_EINVALID, "no method '%s'", method);
	if (params && !(p = cJSON_Parse(params)))
		return cmv_error__set(CMV_EINVALID, "%s: the parameters are not JSON", method);
	if (p && !cJSON_IsObject(p)) {
		cJSON_Delete(p);
		return cmv_error__set(CMV_EINVALID, "%s: the parameters are not a JSON object", method);
	}
	memset(&c, 0, sizeof(c));
	c.h = h;
	c.p = p;
	cmv_buf_init(&c.raw, (size_t)1 << 30);
	if (!(c.res = cJSON_CreateObject()))
		error = cmv_error__oom();
	if (!error)
		error = methods[i].fn(&c);
	if (!error) {
		if (c.raw.size)
			*out = cmv_buf_detach(&c.raw);
		else
			*out = cJSON_PrintUnformatted(c.res);
		if (!*out)
			error = cmv_error__oom();
	} else if (!cmv_error_last()) {
		cmv_error__set(error, "%s failed", method);
	}
	if (error < 0 && cmv_error_last())
		cmv_error__prefix("%s: ", method);
	cJSON_Delete(c.res);
	cJSON_Delete(p);
	cmv_buf_dispose(&c.raw);
	return error;
}
