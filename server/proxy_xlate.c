/* SPDX-License-Identifier: MIT */
/*
 * Translation between the client's API and the upstream's, for a session
 * switched to a model of another API (docs/proxy.md, "Switching").
 *
 * The request: the pager renders the branch in the upstream's shape (the
 * branch is neutral), so what is translated here is what the client sends
 * besides its messages: system prompt, tool definitions, tool choice,
 * output limit, sampling, stream options.
 *
 * The reply: the upstream's events are read into a neutral reply (blocks of
 * text or tool calls, a stop reason, usage) and written, as they arrive, as
 * the client's API's events; a whole body goes the same way. What has no
 * counterpart is left out: the upstream's reasoning or thinking (unsigned
 * for the other provider, it could not be sent back), provider built-in
 * tools.
 *
 * Invariants:
 *  - the client sees only its own API's shapes: events in its order
 *    (start, blocks each opened, delta'd and closed, end), tool calls with
 *    the upstream's ids (every provider takes letters, digits, '_' and '-'),
 *    usage in its own terms (Anthropic's input less cache reads, OpenAI's
 *    with them);
 *  - the upstream's events are read whatever their chunking (the caller
 *    splits at blank lines) and a stream cut short still ends (xlate_end).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/base.h"
#include "proxy_priv.h"

#define XL_MAX_INDEX 256

typedef struct {
	char kind; /* 't' text, 'c' a tool call */
	cmv_buf text; /* the text, or the call's arguments (JSON text) */
	char *id, *name;
	bool custom; /* a Responses custom tool: its arguments are {"input": TEXT} */
	bool closed;
} xblock;

struct xlate {
	proxy_api from, to;
	char model[256];
	char id[64];
	long created;
	bool started, finished, body_mode, chat_usage;
	xblock *b;
	size_t n, cap;
	int open;              /* the open block, or -1 */
	int umap[XL_MAX_INDEX]; /* upstream index -> block (-1 dropped, -2 unseen, -3 a message not yet opened) */
	char stop;             /* 'e' end of turn, 't' tool use, 'm' output limit, 's' a stop sequence */
	uint64_t in, out, cache_read, cache_write;
	char *custom;          /* "\nNAME\nNAME\n": the client's custom tools */
	size_t n_calls;
};

static const char *jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static uint64_t jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

int xlate_new(xlate **out, proxy_api from, proxy_api to, const char *model, const char *custom_tools,
	      bool chat_usage)
{
	static unsigned long counter;
	xlate *x = calloc(1, sizeof(*x));
	*out = NULL;
	if (!x)
		return cmv_error__oom();
	x->from = from;
	x->to = to;
	x->open = -1;
	x->chat_usage = chat_usage;
	x->created = (long)time(NULL);
	snprintf(x->model, sizeof(x->model), "%s", model ? model : "");
	/* an id of the proxy's own: the upstream's is in its own provider's shape */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(x->id, sizeof(x->id), "cmv%08lx%08lx%04lx", (unsigned long)ts.tv_sec, (unsigned long)ts.tv_nsec,
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) & 0xffff);
	for (int i = 0; i < XL_MAX_INDEX; i++)
		x->umap[i] = -2;
	if (custom_tools && *custom_tools && asprintf(&x->custom, "\n%s\n", custom_tools) < 0) {
		free(x);
		return cmv_error__oom();
	}
	*out = x;
	return 0;
}

void xlate_free(xlate *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n; i++) {
		cmv_buf_dispose(&x->b[i].text);
		free(x->b[i].id);
		free(x->b[i].name);
	}
	free(x->b);
	free(x->custom);
	free(x);
}

static bool is_custom(const xlate *x, const char *name)
{
	char pat[300];
	if (!x->custom || !name)
		return false;
	snprintf(pat, sizeof(pat), "\n%s\n", name);
	return strstr(x->custom, pat) != NULL;
}

/* ---- writing the client's events -------------------------------------------------------- */

static int put_event(cmv_buf *out, const char *name, cJSON *data)
{
	char *text = cJSON_PrintUnformatted(data);
	int error = 0;
	/* the name may be the data's own "type": written before the data is freed */
	if (text && name)
		error = cmv_buf_printf(out, "event: %s\n", name);
	cJSON_Delete(data);
	if (!text)
		return cmv_error__oom();
	if (!error)
		error = cmv_buf_printf(out, "data: %s\n\n", text);
	cJSON_free(text);
	return error;
}

static const char *anthropic_stop(char s)
{
	return s == 't' ? "tool_use" : s == 'm' ? "max_tokens" : s == 's' ? "stop_sequence" : "end_turn";
}

static const char *chat_finish(char s)
{
	return s == 't' ? "tool_calls" : s == 'm' ? "length" : "stop";
}

/* A Chat Completions object (a chunk or the whole reply) with its one choice, *choice, still to fill. */
static cJSON *chat_object(const xlate *x, const char *object, cJSON **choice)
{
	cJSON *o = cJSON_CreateObject();
	char id[96];
	snprintf(id, sizeof(id), "chatcmpl-%s", x->id);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "object", object);
	cJSON_AddNumberToObject(o, "created", (double)x->created);
	cJSON_AddStringToObject(o, "model", x->model);
	*choice = cJSON_CreateObject();
	cJSON_AddNumberToObject(*choice, "index", 0);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), *choice);
	return o;
}

static cJSON *chat_chunk(xlate *x, cJSON *delta, const char *finish)
{
	cJSON *c, *o = chat_object(x, "chat.completion.chunk", &c);
	cJSON_AddItemToObject(c, "delta", delta ? delta : cJSON_CreateObject());
	if (finish)
		cJSON_AddStringToObject(c, "finish_reason", finish);
	else
		cJSON_AddNullToObject(c, "finish_reason");
	return o;
}

static cJSON *anthropic_usage(const xlate *x, bool start)
{
	cJSON *u = cJSON_CreateObject();
	cJSON_AddNumberToObject(u, "input_tokens", (double)x->in);
	cJSON_AddNumberToObject(u, "cache_creation_input_tokens", (double)x->cache_write);
	cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)x->cache_read);
	cJSON_AddNumberToObject(u, "output_tokens", start ? 0 : (double)x->out);
	return u;
}

static cJSON *chat_usage(const xlate *x)
{
	cJSON *u = cJSON_CreateObject(), *d;
	uint64_t in = x->in + x->cache_read + x->cache_write;
	cJSON_AddNumberToObject(u, "prompt_tokens", (double)in);
	cJSON_AddNumberToObject(u, "completion_tokens", (double)x->out);
	cJSON_AddNumberToObject(u, "total_tokens", (double)(in + x->out));
	d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
	cJSON_AddNumberToObject(d, "cached_tokens", (double)x->cache_read);
	return u;
}

static cJSON *responses_usage(const xlate *x)
{
	cJSON *u = cJSON_CreateObject(), *d;
	uint64_t in = x->in + x->cache_read + x->cache_write;
	cJSON_AddNumberToObject(u, "input_tokens", (double)in);
	d = cJSON_AddObjectToObject(u, "input_tokens_details");
	cJSON_AddNumberToObject(d, "cached_tokens", (double)x->cache_read);
	cJSON_AddNumberToObject(u, "output_tokens", (double)x->out);
	d = cJSON_AddObjectToObject(u, "output_tokens_details");
	cJSON_AddNumberToObject(d, "reasoning_tokens", 0);
	cJSON_AddNumberToObject(u, "total_tokens", (double)(in + x->out));
	return u;
}

/* A Responses event: its type and sequence number first, as the API writes them. */
static cJSON *resp_event(const char *type)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddNumberToObject(o, "sequence_number", 0); /* the stream filter numbers them */
	return o;
}

/* The custom tool's input: {"input": TEXT} as the model called it, or the arguments' text as they are. */
static char *custom_input(const xblock *b)
{
	cJSON *a = cJSON_ParseWithLength(b->text.ptr ? b->text.ptr : "", b->text.size);
	const char *in = jstr(a, "input");
	char *s = strdup(in ? in : b->text.ptr ? b->text.ptr : "");
	cJSON_Delete(a);
	return s;
}

/* An output item of the Responses API for block k. */
static cJSON *resp_item(const xlate *x, size_t k, bool done)
{
	const xblock *b = &x->b[k];
	cJSON *it = cJSON_CreateObject();
	char id[96];
	if (b->kind == 't') {
		snprintf(id, sizeof(id), "msg_%s_%zu", x->id, k);
		cJSON_AddStringToObject(it, "type", "message");
		cJSON_AddStringToObject(it, "id", id);
		cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
		cJSON_AddStringToObject(it, "role", "assistant");
		cJSON *content = cJSON_AddArrayToObject(it, "content");
		if (done) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "type", "output_text");
			cJSON_AddStringToObject(p, "text", b->text.ptr ? b->text.ptr : "");
			cJSON_AddArrayToObject(p, "annotations");
			cJSON_AddItemToArray(content, p);
		}
		return it;
	}
	if (b->custom) {
		char *in = done ? custom_input(b) : NULL;
		snprintf(id, sizeof(id), "ctc_%s_%zu", x->id, k);
		cJSON_AddStringToObject(it, "type", "custom_tool_call");
		cJSON_AddStringToObject(it, "id", id);
		cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
		cJSON_AddStringToObject(it, "call_id", b->id);
		cJSON_AddStringToObject(it, "name", b->name);
		cJSON_AddStringToObject(it, "input", in ? in : "");
		free(in);
		return it;
	}
	snprintf(id, sizeof(id), "fc_%s_%zu", x->id, k);
	cJSON_AddStringToObject(it, "type", "function_call");
	cJSON_AddStringToObject(it, "id", id);
	cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
	cJSON_AddStringToObject(it, "call_id", b->id);
	cJSON_AddStringToObject(it, "name", b->name);
	cJSON_AddStringToObject(it, "arguments", done && b->text.ptr ? b->text.ptr : "");
	return it;
}

static cJSON *resp_object(const xlate *x, const char *status, bool with_output)
{
	cJSON *r = cJSON_CreateObject(), *out;
	char id[96];
	snprintf(id, sizeof(id), "resp_%s", x->id);
	cJSON_AddStringToObject(r, "id", id);
	cJSON_AddStringToObject(r, "object", "response");
	cJSON_AddNumberToObject(r, "created_at", (double)x->created);
	cJSON_AddStringToObject(r, "status", status);
	cJSON_AddStringToObject(r, "model", x->model);
	out = cJSON_AddArrayToObject(r, "output");
	if (with_output) {
		for (size_t k = 0; k < x->n; k++)
			cJSON_AddItemToArray(out, resp_item(x, k, true));
		cJSON_AddItemToObject(r, "usage", responses_usage(x));
		if (x->stop == 'm') {
			cJSON *d = cJSON_AddObjectToObject(r, "incomplete_details");
			cJSON_AddStringToObject(d, "reason", "max_output_tokens");
		}
	}
	return r;
}

static int emit_start(xlate *x, cmv_buf *out)
{
	if (x->started)
		return 0;
	x->started = true;
	if (x->body_mode)
		return 0;
	if (x->to == PROXY_API_ANTHROPIC) {
		cJSON *o = cJSON_CreateObject(), *m;
		char id[96];
		snprintf(id, sizeof(id), "msg_%s", x->id);
		cJSON_AddStringToObject(o, "type", "message_start");
		m = cJSON_AddObjectToObject(o, "message");
		cJSON_AddStringToObject(m, "id", id);
		cJSON_AddStringToObject(m, "type", "message");
		cJSON_AddStringToObject(m, "role", "assistant");
		cJSON_AddStringToObject(m, "model", x->model);
		cJSON_AddArrayToObject(m, "content");
		cJSON_AddNullToObject(m, "stop_reason");
		cJSON_AddNullToObject(m, "stop_sequence");
		cJSON_AddItemToObject(m, "usage", anthropic_usage(x, true));
		return put_event(out, "message_start", o);
	}
	if (x->to == PROXY_API_CHAT) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "role", "assistant");
		cJSON_AddStringToObject(d, "content", "");
		return put_event(out, NULL, chat_chunk(x, d, NULL));
	}
	cJSON *o = resp_event("response.created");
	cJSON_AddItemToObject(o, "response", resp_object(x, "in_progress", false));
	int error = put_event(out, "response.created", o);
	if (!error) {
		o = resp_event("response.in_progress");
		cJSON_AddItemToObject(o, "response", resp_object(x, "in_progress", false));
		error = put_event(out, "response.in_progress", o);
	}
	return error;
}

/* The ordinal of block k among the calls (Chat's tool_calls index). */
static int call_ordinal(const xlate *x, size_t k)
{
	int n = 0;
	for (size_t i = 0; i < k; i++)
		n += x->b[i].kind == 'c';
	return n;
}

static int emit_block_start(xlate *x, size_t k, cmv_buf *out)
{
	xblock *b = &x->b[k];
	if (x->body_mode)
		return 0;
	if (x->to == PROXY_API_ANTHROPIC) {
		cJSON *o = cJSON_CreateObject(), *cb;
		cJSON_AddStringToObject(o, "type", "content_block_start");
		cJSON_AddNumberToObject(o, "index", (double)k);
		cb = cJSON_AddObjectToObject(o, "content_block");
		if (b->kind == 't') {
			cJSON_AddStringToObject(cb, "type", "text");
			cJSON_AddStringToObject(cb, "text", "");
		} else {
			cJSON_AddStringToObject(cb, "type", "tool_use");
			cJSON_AddStringToObject(cb, "id", b->id);
			cJSON_AddStringToObject(cb, "name", b->name);
			cJSON_AddObjectToObject(cb, "input");
		}
		return put_event(out, "content_block_start", o);
	}
	if (x->to == PROXY_API_CHAT) {
		if (b->kind == 't')
			return 0;
		cJSON *d = cJSON_CreateObject(), *tcs = cJSON_AddArrayToObject(d, "tool_calls"), *tc = cJSON_CreateObject(), *fn;
		cJSON_AddNumberToObject(tc, "index", call_ordinal(x, k));
		cJSON_AddStringToObject(tc, "id", b->id);
		cJSON_AddStringToObject(tc, "type", "function");
		fn = cJSON_AddObjectToObject(tc, "function");
		cJSON_AddStringToObject(fn, "name", b->name);
		cJSON_AddStringToObject(fn, "arguments", "");
		cJSON_AddItemToArray(tcs, tc);
		return put_event(out, NULL, chat_chunk(x, d, NULL));
	}
	if (b->custom)
		return 0; /* its input is known once its arguments are whole: written at its end */
	cJSON *o = resp_event("response.output_item.added");
	cJSON_AddNumberToObject(o, "output_index", (double)k);
	cJSON_AddItemToObject(o, "item", resp_item(x, k, false));
	int error = put_event(out, "response.output_item.added", o);
	if (!error && b->kind == 't') {
		char id[96];
		snprintf(id, sizeof(id), "msg_%s_%zu", x->id, k);
		o = resp_event("response.content_part.added");
		cJSON_AddStringToObject(o, "item_id", id);
		cJSON_AddNumberToObject(o, "output_index", (double)k);
		cJSON_AddNumberToObject(o, "content_index", 0);
		cJSON *p = cJSON_AddObjectToObject(o, "part");
		cJSON_AddStringToObject(p, "type", "output_text");
		cJSON_AddStringToObject(p, "text", "");
		cJSON_AddArrayToObject(p, "annotations");
		error = put_event(out, "response.content_part.added", o);
	}
	return error;
}

static int emit_delta(xlate *x, size_t k, const char *s, size_t n, cmv_buf *out)
{
	xblock *b = &x->b[k];
	char *frag;
	int error;
	if ((error = cmv_buf_put(&b->text, s, n)) < 0)
		return error;
	if (x->body_mode || !n)
		return 0;
	if (!(frag = strndup(s, n)))
		return cmv_error__oom();
	if (x->to == PROXY_API_ANTHROPIC) {
		cJSON *o = cJSON_CreateObject(), *d;
		cJSON_AddStringToObject(o, "type", "content_block_delta");
		cJSON_AddNumberToObject(o, "index", (double)k);
		d = cJSON_AddObjectToObject(o, "delta");
		cJSON_AddStringToObject(d, "type", b->kind == 't' ? "text_delta" : "input_json_delta");
		cJSON_AddStringToObject(d, b->kind == 't' ? "text" : "partial_json", frag);
		error = put_event(out, "content_block_delta", o);
	} else if (x->to == PROXY_API_CHAT) {
		cJSON *d = cJSON_CreateObject();
		if (b->kind == 't') {
			cJSON_AddStringToObject(d, "content", frag);
		} else {
			cJSON *tcs = cJSON_AddArrayToObject(d, "tool_calls"), *tc = cJSON_CreateObject(), *fn;
			cJSON_AddNumberToObject(tc, "index", call_ordinal(x, k));
			fn = cJSON_AddObjectToObject(tc, "function");
			cJSON_AddStringToObject(fn, "arguments", frag);
			cJSON_AddItemToArray(tcs, tc);
		}
		error = put_event(out, NULL, chat_chunk(x, d, NULL));
	} else if (!b->custom) {
		char id[96];
		cJSON *o = resp_event(b->kind == 't' ? "response.output_text.delta" : "response.function_call_arguments.delta");
		snprintf(id, sizeof(id), b->kind == 't' ? "msg_%s_%zu" : "fc_%s_%zu", x->id, k);
		cJSON_AddStringToObject(o, "item_id", id);
		cJSON_AddNumberToObject(o, "output_index", (double)k);
		if (b->kind == 't')
			cJSON_AddNumberToObject(o, "content_index", 0);
		cJSON_AddStringToObject(o, "delta", frag);
		error = put_event(out, jstr(o, "type"), o);
	}
	free(frag);
	return error;
}

static int emit_block_stop(xlate *x, size_t k, cmv_buf *out)
{
	xblock *b = &x->b[k];
	int error = 0;
	if (b->closed)
		return 0;
	b->closed = true;
	if (x->open == (int)k)
		x->open = -1;
	if (x->body_mode || x->to == PROXY_API_CHAT)
		return 0;
	if (x->to == PROXY_API_ANTHROPIC) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "type", "content_block_stop");
		cJSON_AddNumberToObject(o, "index", (double)k);
		return put_event(out, "content_block_stop", o);
	}
	char id[96];
	cJSON *o;
	if (b->kind == 't') {
		snprintf(id, sizeof(id), "msg_%s_%zu", x->id, k);
		o = resp_event("response.output_text.done");
		cJSON_AddStringToObject(o, "item_id", id);
		cJSON_AddNumberToObject(o, "output_index", (double)k);
		cJSON_AddNumberToObject(o, "content_index", 0);
		cJSON_AddStringToObject(o, "text", b->text.ptr ? b->text.ptr : "");
		error = put_event(out, "response.output_text.done", o);
		if (!error) {
			o = resp_event("response.content_part.done");
			cJSON_AddStringToObject(o, "item_id", id);
			cJSON_AddNumberToObject(o, "output_index", (double)k);
			cJSON_AddNumberToObject(o, "content_index", 0);
			cJSON *p = cJSON_AddObjectToObject(o, "part");
			cJSON_AddStringToObject(p, "type", "output_text");
			cJSON_AddStringToObject(p, "text", b->text.ptr ? b->text.ptr : "");
			cJSON_AddArrayToObject(p, "annotations");
			error = put_event(out, "response.content_part.done", o);
		}
	} else if (b->custom) {
		char *in = custom_input(b);
		if (!in)
			return cmv_error__oom();
		snprintf(id, sizeof(id), "ctc_%s_%zu", x->id, k);
		o = resp_event("response.output_item.added");
		cJSON_AddNumberToObject(o, "output_index", (double)k);
		cJSON_AddItemToObject(o, "item", resp_item(x, k, false));
		error = put_event(out, "response.output_item.added", o);
		if (!error) {
			o = resp_event("response.custom_tool_call_input.delta");
			cJSON_AddStringToObject(o, "item_id", id);
			cJSON_AddNumberToObject(o, "output_index", (double)k);
			cJSON_AddStringToObject(o, "delta", in);
			error = put_event(out, "response.custom_tool_call_input.delta", o);
		}
		if (!error) {
			o = resp_event("response.custom_tool_call_input.done");
			cJSON_AddStringToObject(o, "item_id", id);
			cJSON_AddNumberToObject(o, "output_index", (double)k);
			cJSON_AddStringToObject(o, "input", in);
			error = put_event(out, "response.custom_tool_call_input.done", o);
		}
		free(in);
	} else {
		snprintf(id, sizeof(id), "fc_%s_%zu", x->id, k);
		o = resp_event("response.function_call_arguments.done");
		cJSON_AddStringToObject(o, "item_id", id);
		cJSON_AddNumberToObject(o, "output_index", (double)k);
		cJSON_AddStringToObject(o, "arguments", b->text.ptr ? b->text.ptr : "");
		error = put_event(out, "response.function_call_arguments.done", o);
	}
	if (!error) {
		o = resp_event("response.output_item.done");
		cJSON_AddNumberToObject(o, "output_index", (double)k);
		cJSON_AddItemToObject(o, "item", resp_item(x, k, true));
		error = put_event(out, "response.output_item.done", o);
	}
	return error;
}

static int emit_finish(xlate *x, cmv_buf *out)
{
	int error = 0;
	if (x->finished)
		return 0;
	if ((error = emit_start(x, out)) < 0)
		return error;
	for (size_t k = 0; k < x->n && !error; k++)
		error = emit_block_stop(x, k, out);
	if (error)
		return error;
	x->finished = true;
	if (!x->stop)
		x->stop = x->n_calls ? 't' : 'e';
	if (x->body_mode)
		return 0;
	if (x->to == PROXY_API_ANTHROPIC) {
		cJSON *o = cJSON_CreateObject(), *d;
		cJSON_AddStringToObject(o, "type", "message_delta");
		d = cJSON_AddObjectToObject(o, "delta");
		cJSON_AddStringToObject(d, "stop_reason", anthropic_stop(x->stop));
		cJSON_AddNullToObject(d, "stop_sequence");
		cJSON_AddItemToObject(o, "usage", anthropic_usage(x, false));
		if ((error = put_event(out, "message_delta", o)) < 0)
			return error;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "type", "message_stop");
		return put_event(out, "message_stop", o);
	}
	if (x->to == PROXY_API_CHAT) {
		if ((error = put_event(out, NULL, chat_chunk(x, NULL, chat_finish(x->stop)))) < 0)
			return error;
		if (x->chat_usage) {
			cJSON *o = chat_chunk(x, NULL, NULL);
			cJSON_ReplaceItemInObjectCaseSensitive(o, "choices", cJSON_CreateArray());
			cJSON_AddItemToObject(o, "usage", chat_usage(x));
			if ((error = put_event(out, NULL, o)) < 0)
				return error;
		}
		return cmv_buf_puts(out, "data: [DONE]\n\n");
	}
	const char *type = x->stop == 'm' ? "response.incomplete" : "response.completed";
	cJSON *o = resp_event(type);
	cJSON_AddItemToObject(o, "response", resp_object(x, x->stop == 'm' ? "incomplete" : "completed", true));
	return put_event(out, type, o);
}

/* ---- reading the upstream's events ----------------------------------------------------- */

static int block_new(xlate *x, char kind, const char *id, const char *name, cmv_buf *out)
{
	int error;
	if (x->open >= 0 && (error = emit_block_stop(x, (size_t)x->open, out)) < 0)
		return error;
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 8;
		xblock *g = realloc(x->b, nc * sizeof(*g));
		if (!g)
			return cmv_error__oom();
		x->b = g;
		x->cap = nc;
	}
	xblock *b = &x->b[x->n];
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	cmv_buf_init(&b->text, PROXY_MAX_RESPONSE);
	if (kind == 'c') {
		char gen[128];
		if (!id || !*id) {
			snprintf(gen, sizeof(gen), "call_%s_%zu", x->id, x->n);
			id = gen;
		}
		b->id = strdup(id);
		b->name = strdup(name ? name : "");
		if (!b->id || !b->name) {
			free(b->id);
			free(b->name);
			return cmv_error__oom();
		}
		b->custom = x->to == PROXY_API_RESPONSES && is_custom(x, name);
		x->n_calls++;
	}
	x->open = (int)x->n++;
	if ((error = emit_start(x, out)) < 0)
		return error;
	return emit_block_start(x, (size_t)x->open, out);
}

static int uindex(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= XL_MAX_INDEX)
		return -1;
	return (int)v->valuedouble;
}

/* An error the upstream sent in its stream: its message, for the client's error event. */
static int stream_error(const cJSON *o)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
	const char *msg = jstr(e, "message");
	if (!msg)
		msg = jstr(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "response"), "error"), "message");
	return cmv_error__set(CMV_EINVALID, "the upstream's stream ended with an error: %s", msg ? msg : "(no message)");
}

static int from_anthropic(xlate *x, const cJSON *o, cmv_buf *out)
{
	const char *type = jstr(o, "type");
	int i, error = 0;
	if (!type)
		return 0;
	if (!strcmp(type, "message_start")) {
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "message"), "usage");
		x->in = jnum(u, "input_tokens");
		x->cache_read = jnum(u, "cache_read_input_tokens");
		x->cache_write = jnum(u, "cache_creation_input_tokens");
		return emit_start(x, out);
	}
	if (!strcmp(type, "content_block_start")) {
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "content_block");
		const char *bt = jstr(b, "type");
		if ((i = uindex(o, "index")) < 0)
			return 0;
		if (bt && !strcmp(bt, "text"))
			error = block_new(x, 't', NULL, NULL, out);
		else if (bt && !strcmp(bt, "tool_use"))
			error = block_new(x, 'c', jstr(b, "id"), jstr(b, "name"), out);
		else {
			x->umap[i] = -1; /* thinking, server tools: nothing the other API can carry */
			return 0;
		}
		x->umap[i] = x->open;
		const char *text = bt && !strcmp(bt, "text") ? jstr(b, "text") : NULL;
		if (!error && text && *text)
			error = emit_delta(x, (size_t)x->open, text, strlen(text), out);
		return error;
	}
	if (!strcmp(type, "content_block_delta")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "delta");
		const char *dt = jstr(d, "type"), *s = NULL;
		if ((i = uindex(o, "index")) < 0 || x->umap[i] < 0 || !dt)
			return 0;
		if (!strcmp(dt, "text_delta"))
			s = jstr(d, "text");
		else if (!strcmp(dt, "input_json_delta"))
			s = jstr(d, "partial_json");
		return s ? emit_delta(x, (size_t)x->umap[i], s, strlen(s), out) : 0;
	}
	if (!strcmp(type, "content_block_stop")) {
		if ((i = uindex(o, "index")) < 0 || x->umap[i] < 0)
			return 0;
		return emit_block_stop(x, (size_t)x->umap[i], out);
	}
	if (!strcmp(type, "message_delta")) {
		const char *sr = jstr(cJSON_GetObjectItemCaseSensitive(o, "delta"), "stop_reason");
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
		if (sr)
			x->stop = !strcmp(sr, "tool_use") ? 't' : !strcmp(sr, "max_tokens") ? 'm'
				: !strcmp(sr, "stop_sequence") ? 's' : 'e';
		if (jnum(u, "output_tokens"))
			x->out = jnum(u, "output_tokens");
		if (jnum(u, "input_tokens"))
			x->in = jnum(u, "input_tokens");
		if (jnum(u, "cache_read_input_tokens"))
			x->cache_read = jnum(u, "cache_read_input_tokens");
		return 0;
	}
	if (!strcmp(type, "message_stop"))
		return emit_finish(x, out);
	if (!strcmp(type, "error"))
		return stream_error(o);
	return 0;
}

static void chat_usage_in(xlate *x, const cJSON *u)
{
	uint64_t cached = jnum(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens");
	uint64_t prompt = jnum(u, "prompt_tokens");
	x->cache_read = cached;
	x->in = prompt > cached ? prompt - cached : 0;
	x->out = jnum(u, "completion_tokens");
}

static int from_chat(xlate *x, const cJSON *o, cmv_buf *out)
{
	const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
	const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
	const char *fin = jstr(choice, "finish_reason");
	int error;

	if (cJSON_GetObjectItemCaseSensitive(o, "error"))
		return stream_error(o);
	if ((error = emit_start(x, out)) < 0)
		return error;
	if (cJSON_IsObject(u))
		chat_usage_in(x, u);
	const char *text = jstr(delta, "content");
	if (text && *text) {
		if (x->open < 0 || x->b[x->open].kind != 't')
			if ((error = block_new(x, 't', NULL, NULL, out)) < 0)
				return error;
		if ((error = emit_delta(x, (size_t)x->open, text, strlen(text), out)) < 0)
			return error;
	}
	const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
	for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next) {
		const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
		int i = uindex(tc, "index");
		if (i < 0)
			i = 0;
		if (x->umap[i] < 0 || (jstr(tc, "id") && x->b[x->umap[i]].id && strcmp(jstr(tc, "id"), x->b[x->umap[i]].id))) {
			if ((error = block_new(x, 'c', jstr(tc, "id"), jstr(fn, "name"), out)) < 0)
				return error;
			x->umap[i] = x->open;
		}
		const char *args = jstr(fn, "arguments");
		if (args && *args && (error = emit_delta(x, (size_t)x->umap[i], args, strlen(args), out)) < 0)
			return error;
	}
	if (fin)
		x->stop = !strcmp(fin, "tool_calls") || !strcmp(fin, "function_call") ? 't' : !strcmp(fin, "length") ? 'm' : 'e';
	return 0;
}

static void responses_usage_in(xlate *x, const cJSON *r)
{
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(r, "usage");
	uint64_t cached = jnum(cJSON_GetObjectItemCaseSensitive(u, "input_tokens_details"), "cached_tokens");
	uint64_t in = jnum(u, "input_tokens");
	x->cache_read = cached;
	x->in = in > cached ? in - cached : 0;
	x->out = jnum(u, "output_tokens");
}

/* A whole output item: its block, when nothing was streamed for it (a done item, or a body's). */
static int responses_item(xlate *x, const cJSON *it, int i, cmv_buf *out)
{
	const char *t = jstr(it, "type");
	int error = 0;
	if (!t)
		return 0;
	if (!strcmp(t, "message")) {
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
		for (const cJSON *p = cJSON_IsArray(content) ? content->child : NULL; p && !error; p = p->next) {
			const char *s = jstr(p, "text");
			if (!s)
				s = jstr(p, "refusal");
			if (!s)
				continue;
			if ((error = block_new(x, 't', NULL, NULL, out)) == 0)
				error = emit_delta(x, (size_t)x->open, s, strlen(s), out);
		}
	} else if (!strcmp(t, "function_call") || !strcmp(t, "custom_tool_call")) {
		const char *args = jstr(it, !strcmp(t, "function_call") ? "arguments" : "input");
		cmv_buf wrapped = CMV_BUF_INIT(PROXY_MAX_RESPONSE);
		if (!strcmp(t, "custom_tool_call")) {
			cJSON *w = cJSON_CreateObject();
			char *s;
			cJSON_AddStringToObject(w, "input", args ? args : "");
			s = cJSON_PrintUnformatted(w);
			cJSON_Delete(w);
			if (!s)
				return cmv_error__oom();
			cmv_buf_puts(&wrapped, s);
			cJSON_free(s);
			args = wrapped.ptr;
		}
		if ((error = block_new(x, 'c', jstr(it, "call_id"), jstr(it, "name"), out)) == 0 && args && *args)
			error = emit_delta(x, (size_t)x->open, args, strlen(args), out);
		cmv_buf_dispose(&wrapped);
	} else {
		return 0;
	}
	if (!error && i >= 0)
		x->umap[i] = x->open;
	if (!error && x->open >= 0)
		error = emit_block_stop(x, (size_t)x->open, out);
	return error;
}

static int from_responses(xlate *x, const cJSON *o, cmv_buf *out)
{
	const char *type = jstr(o, "type");
	int i, error;
	if (!type)
		return 0;
	if (!strcmp(type, "response.created") || !strcmp(type, "response.in_progress"))
		return emit_start(x, out);
	if (!strcmp(type, "response.output_item.added")) {
		const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "item");
		const char *t = jstr(it, "type");
		if ((i = uindex(o, "output_index")) < 0 || !t)
			return 0;
		if (!strcmp(t, "function_call")) {
			if ((error = block_new(x, 'c', jstr(it, "call_id"), jstr(it, "name"), out)) < 0)
				return error;
			x->umap[i] = x->open;
		} else if (!strcmp(t, "message")) {
			x->umap[i] = -3; /* opened by its first text */
		} else {
			x->umap[i] = -1; /* reasoning, built-in tools' calls */
		}
		return 0;
	}
	if (!strcmp(type, "response.output_text.delta") || !strcmp(type, "response.refusal.delta")) {
		const char *d = jstr(o, "delta");
		if ((i = uindex(o, "output_index")) < 0 || !d)
			return 0;
		if (x->umap[i] == -3 || x->umap[i] == -2) {
			if ((error = block_new(x, 't', NULL, NULL, out)) < 0)
				return error;
			x->umap[i] = x->open;
		}
		if (x->umap[i] < 0 || x->b[x->umap[i]].kind != 't')
			return 0;
		return emit_delta(x, (size_t)x->umap[i], d, strlen(d), out);
	}
	if (!strcmp(type, "response.function_call_arguments.delta")) {
		const char *d = jstr(o, "delta");
		if ((i = uindex(o, "output_index")) < 0 || x->umap[i] < 0 || !d)
			return 0;
		return emit_delta(x, (size_t)x->umap[i], d, strlen(d), out);
	}
	if (!strcmp(type, "response.output_item.done")) {
		const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "item");
		if ((i = uindex(o, "output_index")) < 0)
			return 0;
		if (x->umap[i] == -2 || x->umap[i] == -3) /* nothing streamed for it: the item whole */
			return responses_item(x, it, i, out);
		if (x->umap[i] < 0)
			return 0;
		xblock *b = &x->b[x->umap[i]];
		const char *args = jstr(it, "arguments");
		if (b->kind == 'c' && !b->text.size && args && *args &&
		    (error = emit_delta(x, (size_t)x->umap[i], args, strlen(args), out)) < 0)
			return error;
		return emit_block_stop(x, (size_t)x->umap[i], out);
	}
	if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete")) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "response");
		const char *why = jstr(cJSON_GetObjectItemCaseSensitive(r, "incomplete_details"), "reason");
		responses_usage_in(x, r);
		if (!strcmp(type, "response.incomplete"))
			x->stop = why && !strcmp(why, "max_output_tokens") ? 'm' : 'e';
		return emit_finish(x, out);
	}
	if (!strcmp(type, "response.failed") || !strcmp(type, "error"))
		return stream_error(o);
	return 0;
}

int xlate_event(xlate *x, const char *data, size_t len, cmv_buf *out)
{
	cJSON *o;
	int error;
	if (x->finished)
		return 0;
	if (len == 6 && !strncmp(data, "[DONE]", 6))
		return x->from == PROXY_API_CHAT ? emit_finish(x, out) : 0;
	if (!(o = cJSON_ParseWithLength(data, len)))
		return 0; /* not an event the reply is made of (a comment, a keep-alive) */
	error = x->from == PROXY_API_ANTHROPIC ? from_anthropic(x, o, out)
		: x->from == PROXY_API_CHAT ? from_chat(x, o, out) : from_responses(x, o, out);
	cJSON_Delete(o);
	return error;
}

bool xlate_finished(const xlate *x)
{
	return x->finished;
}

int xlate_end(xlate *x, cmv_buf *out)
{
	/* Chat's stream may end without [DONE]: its finish_reason said it was over */
	if (x->finished || x->from != PROXY_API_CHAT || !x->stop)
		return 0;
	return emit_finish(x, out);
}

/* ---- whole bodies ---------------------------------------------------------------------- */

static int body_in(xlate *x, const cJSON *o, cmv_buf *scratch)
{
	int error = 0;
	if (x->from == PROXY_API_ANTHROPIC) {
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(o, "content");
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
		const char *sr = jstr(o, "stop_reason");
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
			const char *bt = jstr(b, "type");
			if (bt && !strcmp(bt, "text")) {
				const char *s = jstr(b, "text");
				if ((error = block_new(x, 't', NULL, NULL, scratch)) == 0 && s)
					error = emit_delta(x, (size_t)x->open, s, strlen(s), scratch);
			} else if (bt && !strcmp(bt, "tool_use")) {
				char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
				if ((error = block_new(x, 'c', jstr(b, "id"), jstr(b, "name"), scratch)) == 0)
					error = emit_delta(x, (size_t)x->open, in ? in : "{}", strlen(in ? in : "{}"), scratch);
				cJSON_free(in);
			}
		}
		x->in = jnum(u, "input_tokens");
		x->out = jnum(u, "output_tokens");
		x->cache_read = jnum(u, "cache_read_input_tokens");
		x->cache_write = jnum(u, "cache_creation_input_tokens");
		if (sr)
			x->stop = !strcmp(sr, "tool_use") ? 't' : !strcmp(sr, "max_tokens") ? 'm'
				: !strcmp(sr, "stop_sequence") ? 's' : 'e';
	} else if (x->from == PROXY_API_CHAT) {
		const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
		const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
		const char *text = jstr(msg, "content"), *fin = jstr(choice, "finish_reason");
		if (text && *text && (error = block_new(x, 't', NULL, NULL, scratch)) == 0)
			error = emit_delta(x, (size_t)x->open, text, strlen(text), scratch);
		for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc && !error; tc = tc->next) {
			const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
			const char *args = jstr(fn, "arguments");
			if ((error = block_new(x, 'c', jstr(tc, "id"), jstr(fn, "name"), scratch)) == 0 && args)
				error = emit_delta(x, (size_t)x->open, args, strlen(args), scratch);
		}
		chat_usage_in(x, cJSON_GetObjectItemCaseSensitive(o, "usage"));
		if (fin)
			x->stop = !strcmp(fin, "tool_calls") ? 't' : !strcmp(fin, "length") ? 'm' : 'e';
	} else {
		const cJSON *output = cJSON_GetObjectItemCaseSensitive(o, "output");
		for (const cJSON *it = cJSON_IsArray(output) ? output->child : NULL; it && !error; it = it->next)
			error = responses_item(x, it, -1, scratch);
		responses_usage_in(x, o);
		if (jstr(o, "status") && !strcmp(jstr(o, "status"), "incomplete"))
			x->stop = 'm';
	}
	return error;
}

static cJSON *body_out(xlate *x)
{
	if (x->to == PROXY_API_RESPONSES)
		return resp_object(x, x->stop == 'm' ? "incomplete" : "completed", true);
	if (x->to == PROXY_API_ANTHROPIC) {
		cJSON *o = cJSON_CreateObject(), *content;
		char id[96];
		snprintf(id, sizeof(id), "msg_%s", x->id);
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "type", "message");
		cJSON_AddStringToObject(o, "role", "assistant");
		cJSON_AddStringToObject(o, "model", x->model);
		content = cJSON_AddArrayToObject(o, "content");
		for (size_t k = 0; k < x->n; k++) {
			const xblock *b = &x->b[k];
			cJSON *blk = cJSON_CreateObject();
			if (b->kind == 't') {
				cJSON_AddStringToObject(blk, "type", "text");
				cJSON_AddStringToObject(blk, "text", b->text.ptr ? b->text.ptr : "");
			} else {
				cJSON *in = b->text.size ? cJSON_ParseWithLength(b->text.ptr, b->text.size) : NULL;
				cJSON_AddStringToObject(blk, "type", "tool_use");
				cJSON_AddStringToObject(blk, "id", b->id);
				cJSON_AddStringToObject(blk, "name", b->name);
				cJSON_AddItemToObject(blk, "input", cJSON_IsObject(in) ? in : cJSON_CreateObject());
				if (!cJSON_IsObject(in))
					cJSON_Delete(in);
			}
			cJSON_AddItemToArray(content, blk);
		}
		cJSON_AddStringToObject(o, "stop_reason", anthropic_stop(x->stop));
		cJSON_AddNullToObject(o, "stop_sequence");
		cJSON_AddItemToObject(o, "usage", anthropic_usage(x, false));
		return o;
	}
	cJSON *c, *o = chat_object(x, "chat.completion", &c), *msg, *tcs = NULL;
	cmv_buf text = CMV_BUF_INIT(PROXY_MAX_RESPONSE);
	msg = cJSON_AddObjectToObject(c, "message");
	cJSON_AddStringToObject(msg, "role", "assistant");
	for (size_t k = 0; k < x->n; k++) {
		const xblock *b = &x->b[k];
		if (b->kind == 't') {
			cmv_buf_put(&text, b->text.ptr ? b->text.ptr : "", b->text.size);
			continue;
		}
		if (!tcs)
			tcs = cJSON_CreateArray();
		cJSON *tc = cJSON_CreateObject(), *fn;
		cJSON_AddStringToObject(tc, "id", b->id);
		cJSON_AddStringToObject(tc, "type", "function");
		fn = cJSON_AddObjectToObject(tc, "function");
		cJSON_AddStringToObject(fn, "name", b->name);
		cJSON_AddStringToObject(fn, "arguments", b->text.ptr ? b->text.ptr : "{}");
		cJSON_AddItemToArray(tcs, tc);
	}
	if (text.size)
		cJSON_AddStringToObject(msg, "content", text.ptr);
	else
		cJSON_AddNullToObject(msg, "content");
	if (tcs)
		cJSON_AddItemToObject(msg, "tool_calls", tcs);
	cJSON_AddStringToObject(c, "finish_reason", chat_finish(x->stop));
	cJSON_AddItemToObject(o, "usage", chat_usage(x));
	cmv_buf_dispose(&text);
	return o;
}

int xlate_body(cmv_buf *out, proxy_api from, proxy_api to, const char *model, const char *custom_tools,
	       const char *body, size_t len)
{
	xlate *x = NULL;
	cJSON *in = NULL, *o = NULL;
	cmv_buf scratch = CMV_BUF_INIT(PROXY_MAX_RESPONSE * 2);
	char *text = NULL;
	int error;

	if ((error = xlate_new(&x, from, to, model, custom_tools, false)) < 0)
		return error;
	x->body_mode = true;
	if (!(in = cJSON_ParseWithLength(body, len))) {
		error = cmv_error__set(CMV_EINVALID, "the upstream's reply is not JSON");
		goto done;
	}
	if ((error = body_in(x, in, &scratch)) < 0 || (error = emit_finish(x, &scratch)) < 0)
		goto done;
	if (!(o = body_out(x)) || !(text = cJSON_PrintUnformatted(o))) {
		error = cmv_error__oom();
		goto done;
	}
	error = cmv_buf_puts(out, text);
done:
	cJSON_free(text);
	cJSON_Delete(o);
	cJSON_Delete(in);
	cmv_buf_dispose(&scratch);
	xlate_free(x);
	return error;
}

const char *xlate_error_message(const char *body, size_t len, char *buf, size_t n)
{
	cJSON *o = cJSON_ParseWithLength(body, len);
	const char *m = jstr(cJSON_GetObjectItemCaseSensitive(o, "error"), "message");
	if (!m)
		m = jstr(o, "message");
	snprintf(buf, n, "%s", m ? m : "");
	cJSON_Delete(o);
	return buf;
}

/* ---- the request ----------------------------------------------------------------------- */

/* A tool definition's name, description and schema, whatever the API; false for a provider's built-in. */
static bool tool_parts(const cJSON *t, proxy_api api, const char **name, const char **desc, const cJSON **schema,
		       bool *custom)
{
	const char *type = jstr(t, "type");
	const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
	*custom = false;
	if (api == PROXY_API_CHAT && cJSON_IsObject(fn)) {
		*name = jstr(fn, "name");
		*desc = jstr(fn, "description");
		*schema = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
		return *name != NULL;
	}
	if (api == PROXY_API_ANTHROPIC) {
		if (type && strcmp(type, "custom"))
			return false;
		*name = jstr(t, "name");
		*desc = jstr(t, "description");
		*schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
		return *name != NULL;
	}
	if (api == PROXY_API_RESPONSES && type && (!strcmp(type, "function") || !strcmp(type, "custom"))) {
		*name = jstr(t, "name");
		*desc = jstr(t, "description");
		*schema = cJSON_GetObjectItemCaseSensitive(t, "parameters");
		*custom = !strcmp(type, "custom");
		return *name != NULL;
	}
	return false;
}

static cJSON *tool_to(proxy_api to, const char *name, const char *desc, const cJSON *schema, bool custom)
{
	cJSON *o = cJSON_CreateObject(), *fn = o, *s;
	if (custom)
		s = cJSON_Parse("{\"type\":\"object\",\"properties\":{\"input\":{\"type\":\"string\",\"description\":"
				"\"the tool's input, as its description says\"}},\"required\":[\"input\"]}");
	else
		s = cJSON_IsObject(schema) ? cJSON_Duplicate(schema, 1) : cJSON_Parse("{\"type\":\"object\",\"properties\":{}}");
	if (to != PROXY_API_ANTHROPIC)
		cJSON_AddStringToObject(o, "type", "function");
	if (to == PROXY_API_CHAT)
		fn = cJSON_AddObjectToObject(o, "function");
	cJSON_AddStringToObject(fn, "name", name);
	if (desc)
		cJSON_AddStringToObject(fn, "description", desc);
	cJSON_AddItemToObject(fn, to == PROXY_API_ANTHROPIC ? "input_schema" : "parameters", s);
	return o;
}

/* The client's system prompt as one text (Anthropic's blocks joined; Responses' instructions). */
static int system_text(cmv_buf *out, const cJSON *body, proxy_api api)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(body, api == PROXY_API_RESPONSES ? "instructions" : "system");
	int error = 0;
	if (api == PROXY_API_CHAT)
		return 0; /* Chat's system messages are the conversation's: the branch holds them */
	if (cJSON_IsString(s))
		return cmv_buf_puts(out, s->valuestring);
	for (const cJSON *b = cJSON_IsArray(s) ? s->child : NULL; b && !error; b = b->next) {
		const char *t = jstr(b, "text");
		if (!t)
			continue;
		if (out->size)
			error = cmv_buf_puts(out, "\n\n");
		if (!error)
			error = cmv_buf_puts(out, t);
	}
	return error;
}

static cJSON *tool_choice_to(const cJSON *tc, proxy_api from, proxy_api to)
{
	const char *kind = NULL, *name = NULL;
	if (!tc)
		return NULL;
	if (from == PROXY_API_ANTHROPIC) {
		const char *t = jstr(tc, "type");
		kind = !t ? NULL : !strcmp(t, "any") ? "required" : !strcmp(t, "tool") ? "function" : t;
		name = jstr(tc, "name");
	} else if (cJSON_IsString(tc)) {
		kind = tc->valuestring;
	} else {
		kind = "function";
		name = jstr(tc, "name");
		if (!name)
			name = jstr(cJSON_GetObjectItemCaseSensitive(tc, "function"), "name");
	}
	if (!kind)
		return NULL;
	if (to == PROXY_API_ANTHROPIC) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "type", !strcmp(kind, "required") ? "any" : !strcmp(kind, "function") ? "tool" : kind);
		if (!strcmp(kind, "function") && name)
			cJSON_AddStringToObject(o, "name", name);
		return o;
	}
	if (strcmp(kind, "function") || !name)
		return cJSON_CreateString(!strcmp(kind, "function") ? "required" : kind);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "function");
	if (to == PROXY_API_CHAT)
		cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "function"), "name", name);
	else
		cJSON_AddStringToObject(o, "name", name);
	return o;
}

int xlate_request(cmv_buf *out, char **custom_out, size_t *n_dropped, const cJSON *client, proxy_api from,
		  cJSON *mat, proxy_api to, const char *model, const cJSON *tools, uint64_t max_output, bool tools_ok)
{
	cJSON *o = cJSON_CreateObject(), *msgs;
	cmv_buf sys = CMV_BUF_INIT(PROXY_MAX_REQUEST), custom = CMV_BUF_INIT(1 << 20);
	const char *mkey = to == PROXY_API_RESPONSES ? "input" : "messages";
	char *text = NULL;
	int error = 0;

	*custom_out = NULL;
	*n_dropped = 0;
	if (!o)
		return cmv_error__oom();
	cJSON_AddStringToObject(o, "model", model);
	if ((error = system_text(&sys, client, from)) < 0)
		goto done;
	/* the pager's system (a Chat client's system messages) and the client's own, in that order */
	const cJSON *msys = cJSON_GetObjectItemCaseSensitive(mat, to == PROXY_API_RESPONSES ? "instructions" : "system");
	if (to == PROXY_API_ANTHROPIC && (sys.size || msys)) {
		cJSON *arr = cJSON_AddArrayToObject(o, "system");
		for (const cJSON *b = cJSON_IsArray(msys) ? msys->child : NULL; b; b = b->next)
			cJSON_AddItemToArray(arr, cJSON_Duplicate(b, 1));
		if (cJSON_IsString(msys)) {
			cJSON *b = cJSON_CreateObject();
			cJSON_AddStringToObject(b, "type", "text");
			cJSON_AddStringToObject(b, "text", msys->valuestring);
			cJSON_AddItemToArray(arr, b);
		}
		if (sys.size) {
			cJSON *b = cJSON_CreateObject();
			cJSON_AddStringToObject(b, "type", "text");
			cJSON_AddStringToObject(b, "text", sys.ptr);
			cJSON_AddItemToObject(b, "cache_control", cJSON_Parse("{\"type\":\"ephemeral\"}"));
			cJSON_AddItemToArray(arr, b);
		}
	} else if (to == PROXY_API_RESPONSES && (sys.size || cJSON_IsString(msys))) {
		cmv_buf both = CMV_BUF_INIT(PROXY_MAX_REQUEST);
		if (cJSON_IsString(msys))
			cmv_buf_puts(&both, msys->valuestring);
		if (sys.size && both.size)
			cmv_buf_puts(&both, "\n\n");
		cmv_buf_put(&both, sys.ptr ? sys.ptr : "", sys.size);
		cJSON_AddStringToObject(o, "instructions", both.ptr ? both.ptr : "");
		cmv_buf_dispose(&both);
	}
	msgs = cJSON_DetachItemFromObjectCaseSensitive(mat, mkey);
	if (!msgs)
		msgs = cJSON_CreateArray();
	if (to == PROXY_API_CHAT && sys.size) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "role", "system");
		cJSON_AddStringToObject(m, "content", sys.ptr);
		cJSON_InsertItemInArray(msgs, 0, m);
	}
	if (to == PROXY_API_ANTHROPIC && cJSON_GetArraySize(msgs) > 0) {
		/* one cache marker on the last message, as for a client of the API itself (docs/proxy.md) */
		cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
		cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
		cJSON *lb = cJSON_IsArray(content) ? cJSON_GetArrayItem(content, cJSON_GetArraySize(content) - 1) : NULL;
		const char *lbt = jstr(lb, "type");
		if (cJSON_IsString(content)) {
			cJSON *arr = cJSON_CreateArray();
			lb = cJSON_CreateObject();
			cJSON_AddStringToObject(lb, "type", "text");
			cJSON_AddStringToObject(lb, "text", content->valuestring);
			cJSON_AddItemToArray(arr, lb);
			cJSON_ReplaceItemInObjectCaseSensitive(last, "content", arr);
			lbt = "text";
		}
		if (lb && lbt && strcmp(lbt, "thinking") && strcmp(lbt, "redacted_thinking") &&
		    !cJSON_GetObjectItemCaseSensitive(lb, "cache_control"))
			cJSON_AddItemToObject(lb, "cache_control", cJSON_Parse("{\"type\":\"ephemeral\"}"));
	}
	cJSON_AddItemToObject(o, mkey, msgs);
	/* tools: functions cross; a provider's built-ins do not (counted, for the log) */
	if (cJSON_IsArray(tools) && tools_ok) {
		cJSON *arr = cJSON_CreateArray();
		for (const cJSON *t = tools->child; t; t = t->next) {
			const char *name, *desc;
			const cJSON *schema;
			bool is_custom;
			if (!tool_parts(t, from, &name, &desc, &schema, &is_custom)) {
				++*n_dropped;
				continue;
			}
			if (is_custom) {
				if (custom.size)
					cmv_buf_putc(&custom, '\n');
				cmv_buf_puts(&custom, name);
			}
			cJSON_AddItemToArray(arr, tool_to(to, name, desc, schema, is_custom));
		}
		if (cJSON_GetArraySize(arr))
			cJSON_AddItemToObject(o, "tools", arr);
		else
			cJSON_Delete(arr);
		cJSON *tc = cJSON_GetObjectItemCaseSensitive(o, "tools")
			? tool_choice_to(cJSON_GetObjectItemCaseSensitive(client, "tool_choice"), from, to) : NULL;
		if (tc)
			cJSON_AddItemToObject(o, "tool_choice", tc);
	}
	/* the output limit: the client's, within what the model can give */
	const cJSON *mt = cJSON_GetObjectItemCaseSensitive(client, from == PROXY_API_ANTHROPIC ? "max_tokens"
									 : from == PROXY_API_RESPONSES ? "max_output_tokens"
									 : "max_completion_tokens");
	if (!mt && from == PROXY_API_CHAT)
		mt = cJSON_GetObjectItemCaseSensitive(client, "max_tokens");
	uint64_t limit = cJSON_IsNumber(mt) && mt->valuedouble > 0 ? (uint64_t)mt->valuedouble : max_output;
	if (max_output && limit > max_output)
		limit = max_output;
	if (limit || to == PROXY_API_ANTHROPIC)
		cJSON_AddNumberToObject(o, to == PROXY_API_ANTHROPIC ? "max_tokens" : to == PROXY_API_RESPONSES
				? "max_output_tokens" : "max_completion_tokens", (double)(limit ? limit : 4096));
	static const char *same[] = { "temperature", "top_p", NULL };
	for (int i = 0; same[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(client, same[i]);
		if (cJSON_IsNumber(v))
			cJSON_AddNumberToObject(o, same[i], v->valuedouble);
	}
	const cJSON *stop = cJSON_GetObjectItemCaseSensitive(client, from == PROXY_API_ANTHROPIC ? "stop_sequences" : "stop");
	if (stop && to != PROXY_API_RESPONSES)
		cJSON_AddItemToObject(o, to == PROXY_API_ANTHROPIC ? "stop_sequences" : "stop", cJSON_IsString(stop)
				? cJSON_CreateStringArray((const char *const[]){ stop->valuestring }, 1) : cJSON_Duplicate(stop, 1));
	if (to == PROXY_API_RESPONSES)
		cJSON_AddFalseToObject(o, "store"); /* the session is cmv's to keep */
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(client, "stream"))) {
		cJSON_AddTrueToObject(o, "stream");
		if (to == PROXY_API_CHAT)
			cJSON_AddItemToObject(o, "stream_options", cJSON_Parse("{\"include_usage\":true}"));
	}
	if (!(text = cJSON_PrintUnformatted(o))) {
		error = cmv_error__oom();
		goto done;
	}
	if ((error = cmv_buf_puts(out, text)) == 0 && custom.size && !(*custom_out = strdup(custom.ptr)))
		error = cmv_error__oom();
done:
	cJSON_free(text);
	cJSON_Delete(o);
	cmv_buf_dispose(&sys);
	cmv_buf_dispose(&custom);
	return error;
}
