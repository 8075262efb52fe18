/* SPDX-License-Identifier: MIT */
/*
 * Building the provider-neutral conversation (neutral.h has its shape): the
 * messages and blocks every format's reader (claude_code.c, codex.c,
 * agents.c, requests.c) writes into. A failed allocation sets c->oom
 * instead of failing each call; the caller checks it once.
 */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include "neutral.h"

/* ---- the neutral conversation --------------------------------------------- */

cJSON *cmv_formats__conv_msg(conv *c, const char *role, const char *group)
{
	cJSON *m = cJSON_CreateObject(), *content;

	if (!m || !cJSON_AddStringToObject(m, "role", role) || !(content = cJSON_AddArrayToObject(m, "content")) ||
	    (group && !cJSON_AddStringToObject(m, "group", group)) ||
	    (c->node && !cJSON_AddStringToObject(m, "node", c->node)) || !cJSON_AddItemToArray(c->messages, m)) {
		cJSON_Delete(m);
		c->oom = true;
		return NULL;
	}
	return content;
}

static bool only_results(const cJSON *m)
{
	const cJSON *content = cmv_formats__cj_get(m, "content");
	if (!content || !content->child)
		return false;
	for (const cJSON *b = content->child; b; b = b->next)
		if (!cmv_formats__cj_str(b, "type") || strcmp(cmv_formats__cj_str(b, "type"), "tool_result"))
			return false;
	return true;
}

cJSON *cmv_formats__conv_msg_join(conv *c, const char *role, const char *group)
{
	/*
	 * A message spread over several records (Claude Code writes a block a
	 * line, with the results of parallel calls in between) is joined back
	 * by its group; otherwise only to a last message of the same role.
	 */
	for (cJSON *m = c->messages->child ? c->messages->child->prev : NULL; m; m = m == c->messages->child ? NULL : m->prev) {
		const char *r = cmv_formats__cj_str(m, "role"), *g = cmv_formats__cj_str(m, "group");
		if (r && !strcmp(r, role) && (!group || !*group ? !g || !*g : g && !strcmp(g, group)))
			return cJSON_GetObjectItemCaseSensitive(m, "content");
		if (!group || !*group || !r || strcmp(r, "user") || !only_results(m))
			break;
	}
	return cmv_formats__conv_msg(c, role, group);
}

void cmv_formats__conv_system(conv *c, const char *text)
{
	cJSON *s = cJSON_CreateString(text);
	if (!s || !cJSON_AddItemToArray(c->system, s)) {
		cJSON_Delete(s);
		c->oom = true;
	}
}

void cmv_formats__conv_reset(conv *c)
{
	while (!c->keep_all && c->messages->child)
		cJSON_DeleteItemFromArray(c->messages, 0);
	c->resets++;
}

static cJSON *new_block(conv *c, cJSON *content, const char *type)
{
	cJSON *b;
	if (!content)
		return NULL;
	if (!(b = cJSON_CreateObject()) || !cJSON_AddStringToObject(b, "type", type) || !cJSON_AddItemToArray(content, b)) {
		cJSON_Delete(b);
		c->oom = true;
		return NULL;
	}
	return b;
}

static void add_str(conv *c, cJSON *o, const char *k, const char *v)
{
	if (o && !cJSON_AddStringToObject(o, k, v ? v : ""))
		c->oom = true;
}

static void add_dup(conv *c, cJSON *o, const char *k, const cJSON *v)
{
	cJSON *d;
	if (!o)
		return;
	if (!(d = cJSON_Duplicate(v, 1)) || !cJSON_AddItemToObject(o, k, d)) {
		cJSON_Delete(d);
		c->oom = true;
	}
}

void cmv_formats__nb_text(conv *c, cJSON *content, const char *text)
{
	add_str(c, new_block(c, content, "text"), "text", text);
}

void cmv_formats__nb_copy(conv *c, cJSON *content, const cJSON *block)
{
	cJSON *d;
	if (!content)
		return;
	if (!(d = cJSON_Duplicate(block, 1)) || !cJSON_AddItemToArray(content, d)) {
		cJSON_Delete(d);
		c->oom = true;
	}
}

void cmv_formats__nb_tool_use(conv *c, cJSON *content, const char *id, const char *name, const cJSON *input,
		 const char *args_json, bool custom)
{
	cJSON *b = new_block(c, content, "tool_use");
	add_str(c, b, "id", id);
	add_str(c, b, "name", name);
	if (input && cJSON_IsObject(input)) {
		add_dup(c, b, "input", input);
	} else {
		cJSON *parsed = args_json ? cJSON_Parse(args_json) : NULL;
		if (!cJSON_IsObject(parsed)) {
			/* not an object: keep the text whole, under one key */
			cJSON_Delete(parsed);
			parsed = cJSON_CreateObject();
			if (parsed && input && !cJSON_IsObject(input))
				add_dup(c, parsed, "input", input);
			else if (parsed)
				add_str(c, parsed, "input", args_json);
		}
		if (!parsed || !b || !cJSON_AddItemToObject(b, "input", parsed)) {
			cJSON_Delete(parsed);
			c->oom = true; /* a NULL block means an allocation already failed */
		}
	}
	if (custom && b && !cJSON_AddTrueToObject(b, "custom"))
		c->oom = true;
}

void cmv_formats__nb_tool_result(conv *c, cJSON *content, const char *id, const cJSON *result, const char *text,
		    bool is_error)
{
	cJSON *b = new_block(c, content, "tool_result");
	add_str(c, b, "tool_use_id", id);
	if (result)
		add_dup(c, b, "content", result);
	else
		add_str(c, b, "content", text);
	if (is_error && b && !cJSON_AddTrueToObject(b, "is_error"))
		c->oom = true;
}

void cmv_formats__nb_reasoning(conv *c, cJSON *content, const cJSON *item)
{
	cJSON *b = new_block(c, content, "reasoning");
	if (cmv_formats__cj_str(item, "id"))
		add_str(c, b, "id", cmv_formats__cj_str(item, "id"));
	if (cJSON_IsArray(cmv_formats__cj_get(item, "summary")))
		add_dup(c, b, "summary", cmv_formats__cj_get(item, "summary"));
	else if (b && !cJSON_AddArrayToObject(b, "summary"))
		c->oom = true;
	if (cmv_formats__cj_str(item, "encrypted_content"))
		add_str(c, b, "encrypted_content", cmv_formats__cj_str(item, "encrypted_content"));
}

const char *cmv_formats__item_call_id(const cJSON *b, bool *output)
{
	const cJSON *item = cmv_formats__cj_get(b, "item");
	const char *t = cmv_formats__cj_str(item, "type"), *id = cmv_formats__cj_str(item, "call_id");
	size_t n = t ? strlen(t) : 0;

	*output = false;
	if (!id || !n || strcmp(cmv_formats__cj_str(b, "type") ? cmv_formats__cj_str(b, "type") : "", "openai_item"))
		return NULL;
	if (n > 7 && !strcmp(t + n - 7, "_output"))
		return *output = true, id;
	return n > 5 && !strcmp(t + n - 5, "_call") ? id : NULL;
}

bool cmv_formats__is_instruction_item(const cJSON *b)
{
	const cJSON *item = cmv_formats__cj_get(b, "item");
	const char *t = cmv_formats__cj_str(item, "type"), *r = cmv_formats__cj_str(item, "role");

	if (strcmp(cmv_formats__btype(b), "openai_item") || !r || (t && strcmp(t, "message")))
		return false;
	return !strcmp(r, "developer") || !strcmp(r, "system");
}

void cmv_formats__nb_openai_item(conv *c, cJSON *content, const cJSON *item)
{
	add_dup(c, new_block(c, content, "openai_item"), "item", item);
}

/*
 * JSON's decimal point is '.', whatever the locale a host program set
 * (de_DE writes and reads ','): cJSON's own print_number and
 * parse_number swap it the same way.
 */
static char locale_point(void)
{
	const struct lconv *lc = localeconv();
	return lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';
}

static double json_strtod(const char *s)
{
	char buf[64], pt = locale_point();
	size_t n = strlen(s);
	if (n >= sizeof(buf))
		return strtod(s, NULL);
	for (size_t i = 0; i <= n; i++)
		buf[i] = s[i] == '.' ? pt : s[i];
	return strtod(buf, NULL);
}

static int json_dtoa(char *buf, size_t size, int prec, double v)
{
	char pt = locale_point();
	int n = snprintf(buf, size, "%.*g", prec, v);
	for (int i = 0; n > 0 && pt != '.' && i < n && (size_t)i < size; i++)
		if (buf[i] == pt)
			buf[i] = '.';
	return n;
}

int cmv_formats__exact_numbers(cJSON *j)
{
	for (cJSON *v = j ? j->child : NULL; v; v = v->next) {
		if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
			int error = cmv_formats__exact_numbers(v);
			if (error < 0)
				return error;
			continue;
		}
		if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
			continue;
		char *t = cJSON_PrintUnformatted(v), buf[40];
		bool exact = t && json_strtod(t) == v->valuedouble;
		cJSON_free(t);
		if (!t)
			return cmv_error__oom();
		if (exact)
			continue;
		/* the shortest text that reads back as the same double (what Codex's serializer writes) */
		for (int prec = 15; prec <= 17; prec++)
			if (json_dtoa(buf, sizeof(buf), prec, v->valuedouble) > 0 && json_strtod(buf) == v->valuedouble)
				break;
		char *raw = cJSON_malloc(strlen(buf) + 1);
		if (!raw)
			return cmv_error__oom();
		memcpy(raw, buf, strlen(buf) + 1);
		/* printed as it is, in its place, under its name */
		v->type = cJSON_Raw;
		v->valuestring = raw;
	}
	return 0;
}

/* Whether a message's content has text that is not blank. */
static bool says_something(const cJSON *parts)
{
	if (cJSON_IsString(parts))
		return cmv_formats__has_text(parts->valuestring);
	for (const cJSON *p = cJSON_IsArray(parts) ? parts->child : NULL; p; p = p->next)
		if (cmv_formats__has_text(cmv_formats__cj_str(p, "text")))
			return true;
	return false;
}

void cmv_formats__nb_instruction(conv *c, cJSON *content, const cJSON *item)
{
	const cJSON *parts = cmv_formats__cj_get(item, "content");

	if (c->developer_in_place) {
		/* one without text would be an empty message, which the API refuses: it said nothing */
		if (says_something(parts))
			cmv_formats__nb_openai_item(c, content ? content : cmv_formats__conv_msg_join(c, "user", NULL), item);
		return;
	}
	/* blank text is no system prompt: Gemini refuses an empty part */
	if (cJSON_IsString(parts) && cmv_formats__has_text(parts->valuestring))
		cmv_formats__conv_system(c, parts->valuestring);
	for (const cJSON *p = cJSON_IsArray(parts) ? parts->child : NULL; p; p = p->next)
		if (cmv_formats__has_text(cmv_formats__cj_str(p, "text")))
			cmv_formats__conv_system(c, cmv_formats__cj_str(p, "text"));
}

void cmv_formats__nb_image_b64(conv *c, cJSON *content, const char *media_type, const char *data)
{
	cJSON *b = new_block(c, content, "image"), *src = b ? cJSON_AddObjectToObject(b, "source") : NULL;
	if (b && !src)
		c->oom = true;
	add_str(c, src, "type", "base64");
	add_str(c, src, "media_type", media_type);
	add_str(c, src, "data", data);
}

