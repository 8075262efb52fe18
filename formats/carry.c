/* SPDX-License-Identifier: MIT */
/*
 * Carrying a branch into the other agent: the conversation on the path to
 * a tip, whatever wrote it (Claude Code, Codex, another format, a host
 * through the library), written as records of Claude Code or Codex that
 * the agent resumes. The branch is read and repaired as a rendering for
 * the target's provider is (render.c, repair.c), so what comes out is a
 * conversation that provider takes; then each message becomes the
 * target's own lines.
 *
 * What cannot cross is stubbed and listed (docs/formats.md, "Continuing
 * in the other agent"): thinking signed by the other provider, tools the
 * target does not have (the call and its result become text), the other
 * agent's system prompts. Each line written names where it came from.
 */
#include <time.h>
#include "neutral.h"

#define OOM_IF(x) do { if (!(x)) { error = cmv_error__oom(); goto done; } } while (0)

/* Longest tool input kept in a stub's text; the rest is one recall away. */
#define STUB_INPUT_MAX 2000

static bool is_claude(const char *agent)
{
	return !strcmp(agent, "claude-code");
}

static const char *agent_label(const char *format)
{
	if (!strcmp(format, "claude-code"))
		return "Claude Code";
	if (!strcmp(format, "codex"))
		return "Codex";
	if (!strcmp(format, "cmv"))
		return "an agent host";
	return format;
}

/* ---- the path, record by record -------------------------------------------- */

typedef struct {
	char (*hex)[CMV_ID_HEXSZ + 1]; /* the records in path order */
	size_t n, cap;
	cmv__strmap index;             /* hex -> position */
} path_list;

static void path_dispose(path_list *p)
{
	free(p->hex);
	cmv__strmap_dispose(&p->index);
	memset(p, 0, sizeof(*p));
}

/* What the records say of themselves: their format, the session and folder they name. */
static void note_record(cmv_carry_result *res, const char *format, const cJSON *j)
{
	if (!res->source_format || !strcmp(res->source_format, "cmv"))
		res->source_format = format;
	if (!strcmp(format, "claude-code")) {
		if (!res->source_session[0] && cmv_formats__cj_str(j, "sessionId"))
			snprintf(res->source_session, sizeof(res->source_session), "%s", cmv_formats__cj_str(j, "sessionId"));
		if (!res->source_cwd[0] && cmv_formats__cj_str(j, "cwd") && *cmv_formats__cj_str(j, "cwd"))
			snprintf(res->source_cwd, sizeof(res->source_cwd), "%s", cmv_formats__cj_str(j, "cwd"));
	} else if (!strcmp(format, "codex")) {
		const char *type = cmv_formats__cj_str(j, "type");
		const cJSON *p = cmv_formats__cj_get(j, "payload");
		if (type && !strcmp(type, "session_meta") && !res->source_session[0] && cmv_formats__cj_str(p, "id"))
			snprintf(res->source_session, sizeof(res->source_session), "%s", cmv_formats__cj_str(p, "id"));
		if (type && (!strcmp(type, "session_meta") || !strcmp(type, "turn_context")) && !res->source_cwd[0] &&
		    cmv_formats__cj_str(p, "cwd"))
			snprintf(res->source_cwd, sizeof(res->source_cwd), "%s", cmv_formats__cj_str(p, "cwd"));
	}
}

static int read_path(path_list *p, cmv_carry_result *res, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	cmv_buf rec = CMV_BUF_INIT(SESSION_MAX_BYTES);
	int error;

	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		const char *format;
		if (p->n == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 256;
			void *nh = realloc(p->hex, cap * sizeof(*p->hex));
			if (!nh) {
				error = cmv_error__oom();
				break;
			}
			p->hex = nh;
			p->cap = cap;
		}
		cmv_id_tostr(p->hex[p->n], sizeof(p->hex[p->n]), &n->id);
		if ((error = cmv__strmap_put(&p->index, p->hex[p->n], p->n, NULL)) < 0)
			break;
		p->n++;
		res->records++;
		error = cmv_formats__session_record_bytes(&rec, &format, repo, n, false);
		if (error == CMV_ENOTFOUND) {
			cmv_error_clear();
			error = 0;
			if (n->kind != CMV_KIND_EVENT && !res->source_format)
				res->source_format = "cmv";
			continue;
		}
		if (error < 0)
			break;
		cJSON *j = cmv_formats__jscan_parse(rec.ptr, rec.size, &error);
		if (error < 0)
			break;
		note_record(res, format, j);
		cJSON_Delete(j);
	}
	if (error == CMV_ITEROVER)
		error = 0;
	if (!error && p->n)
		snprintf(res->last_node, sizeof(res->last_node), "%s", p->hex[p->n - 1]);
	cmv_walk_free(walk);
	cmv_buf_dispose(&rec);
	return error;
}

static size_t path_pos(const path_list *p, const char *hex)
{
	size_t pos;
	return hex && cmv__strmap_get(&p->index, hex, &pos, NULL) ? pos : SIZE_MAX;
}

/*
 * The blob of the first block of `type` (and tool id, when given) in the
 * records [from, to) of the path: what a stub's recall id names. "" when
 * there is none.
 */
static void find_blob(char out[CMV_ID_HEXSZ + 1], cmv_repo *repo, const path_list *p, size_t from, size_t to,
		      const char *type, const char *tool_id)
{
	out[0] = '\0';
	for (size_t i = from; i < to && i < p->n && !out[0]; i++) {
		cmv_node *n = NULL;
		cmv_id id;
		if (cmv_id_fromstr(&id, p->hex[i]) < 0 || cmv_node_read(&n, repo, &id) < 0) {
			cmv_error_clear();
			continue;
		}
		for (size_t k = 0; k < n->n_blocks; k++)
			if (!strcmp(n->blocks[k].type, type) && (!tool_id || (n->blocks[k].tool_id && !strcmp(n->blocks[k].tool_id, tool_id)))) {
				cmv_id_tostr(out, CMV_ID_HEXSZ + 1, &n->blocks[k].blob);
				break;
			}
		cmv_node_free(n);
	}
}

/* ---- remapping the working directory ------------------------------------------- */

static bool path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.' || (unsigned char)c >= 0x80;
}

/*
 * `s` with every mention of the folder `from` (as a whole path: followed by
 * '/' or a character no name has) as `to`. NULL when nothing changed.
 */
static char *remap(const char *s, const char *from, const char *to, size_t *count)
{
	size_t k = strlen(from), hits = 0;
	cmv_buf out = CMV_BUF_INIT(SESSION_MAX_BYTES);
	const char *p = s;

	if (!k)
		return NULL;
	for (const char *q = strstr(s, from); q; q = strstr(q, from)) {
		if ((q == s || !path_char(q[-1]) || q[-1] == '/') && !path_char(q[k])) {
			cmv_buf_put(&out, p, (size_t)(q - p));
			cmv_buf_puts(&out, to);
			p = q + k;
			hits++;
			q += k;
		} else {
			q++;
		}
	}
	if (!hits) {
		cmv_buf_dispose(&out);
		return NULL;
	}
	cmv_buf_puts(&out, p);
	*count += hits;
	return cmv_buf_detach(&out);
}

/* Every string in v (keys stay). */
static void remap_json(cJSON *v, const char *from, const char *to, size_t *count)
{
	if (cJSON_IsString(v)) {
		char *r = remap(v->valuestring, from, to, count);
		if (r) {
			cJSON_SetValuestring(v, r);
			free(r);
		}
	} else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
		for (cJSON *x = v->child; x; x = x->next)
			remap_json(x, from, to, count);
	}
}

/* ---- what crosses, and what becomes a stub ----------------------------------- */

/*
 * A call the target has a tool for: its name and input there. The shell is
 * the one both agents share (Claude Code's Bash, Codex's exec_command, and
 * Codex's older shell and local_shell); everything else is one agent's own.
 */
static cJSON *map_call(const char **name_out, const char *name, const cJSON *input, const char *target)
{
	cJSON *in = NULL;
	const char *cmd = NULL;
	char *joined = NULL;

	if (is_claude(target)) {
		if (!strcmp(name, "exec_command") || !strcmp(name, "shell_command"))
			cmd = cmv_formats__cj_str(input, "cmd") ? cmv_formats__cj_str(input, "cmd") : cmv_formats__cj_str(input, "command");
		else if (!strcmp(name, "shell") || !strcmp(name, "local_shell")) {
			const cJSON *argv = cmv_formats__cj_get(input, "command");
			if (cJSON_IsString(argv))
				cmd = argv->valuestring;
			else if (cJSON_IsArray(argv)) {
				int n = cJSON_GetArraySize(argv);
				const cJSON *last = cJSON_GetArrayItem(argv, n - 1);
				const cJSON *flag = cJSON_GetArrayItem(argv, n - 2);
				/* ["bash", "-lc", SCRIPT]: the script is the command */
				if (n >= 3 && cJSON_IsString(last) && cJSON_IsString(flag) && flag->valuestring[0] == '-')
					cmd = last->valuestring;
				else {
					cmv_buf b = CMV_BUF_INIT(SESSION_MAX_BYTES);
					for (const cJSON *a = argv->child; a; a = a->next)
						if (cJSON_IsString(a))
							cmv_buf_printf(&b, "%s%s", b.size ? " " : "", a->valuestring);
					joined = cmv_buf_detach(&b);
					cmd = joined;
				}
			}
		}
		if (!cmd)
			return NULL;
		*name_out = "Bash";
		if ((in = cJSON_CreateObject()))
			cJSON_AddStringToObject(in, "command", cmd);
	} else {
		if (strcmp(name, "Bash") || !(cmd = cmv_formats__cj_str(input, "command")))
			return NULL;
		*name_out = "exec_command";
		if ((in = cJSON_CreateObject()))
			cJSON_AddStringToObject(in, "cmd", cmd);
	}
	free(joined);
	return in;
}

typedef struct {
	cmv_repo *repo;
	const cmv_carry_options *o;
	cmv_carry_result *res;
	cJSON *notes;             /* what could not cross */
	const path_list *path;
	cJSON *stubbed_ids;       /* call id -> tool name, for calls carried as text */
	const char *from_cwd;     /* remapped to o->cwd; NULL: nothing to remap */
	const char *src_label;
	cmv_buf scratch;
} carry_state;

static void add_note(carry_state *s, const char *what, const char *detail, const char *node, const char *recall)
{
	cJSON *n = cJSON_CreateObject();
	if (!n)
		return;
	cJSON_AddStringToObject(n, "what", what);
	cJSON_AddStringToObject(n, "detail", detail);
	if (node)
		cJSON_AddStringToObject(n, "node", node);
	else
		cJSON_AddNullToObject(n, "node");
	if (recall && *recall)
		cJSON_AddStringToObject(n, "recall", recall);
	else
		cJSON_AddNullToObject(n, "recall");
	cJSON_AddItemToArray(s->notes, n);
}

/* The records of a message: from the one it began at to where the next began. */
static void message_span(const carry_state *s, const cJSON *m, size_t *from, size_t *to)
{
	*from = path_pos(s->path, cmv_formats__cj_str(m, "node"));
	*to = s->path->n;
	for (const cJSON *x = m->next; x; x = x->next) {
		size_t pos = path_pos(s->path, cmv_formats__cj_str(x, "node"));
		if (pos != SIZE_MAX) {
			*to = pos;
			break;
		}
	}
	if (*from == SIZE_MAX)
		*from = 0;
}

/*
 * One raw message made fit for the target, in place: thinking out (one
 * stub per message), calls the target has no tool for (and their results)
 * as text, the folder remapped.
 */
static int cross_message(carry_state *s, cJSON *m)
{
	cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	const char *node = cmv_formats__cj_str(m, "node");
	bool asst = !strcmp(cmv_formats__cj_str(m, "role"), "assistant"), thought = false;
	char blob[CMV_ID_HEXSZ + 1];
	cmv_buf text = CMV_BUF_INIT(SESSION_MAX_BYTES);
	size_t from, to;
	int error = 0;

	message_span(s, m, &from, &to);
	for (cJSON *b = content ? content->child : NULL, *next; b; b = next) {
		const char *t = cmv_formats__btype(b);
		cJSON *tb = NULL;
		next = b->next;
		cmv_buf_clear(&text);
		if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking") || !strcmp(t, "reasoning")) {
			s->res->stubbed_thinking++;
			if (!thought) {
				thought = true;
				find_blob(blob, s->repo, s->path, from, to, "thinking", NULL);
				cmv_buf_printf(&text, "[%s's thinking is not carried: it is signed for %s%s%s]", s->src_label,
					       s->src_label, blob[0] ? "; cmv recall " : "", blob[0] ? blob : "");
				add_note(s, "thinking", "signed by the source's provider; the target cannot replay it", node, blob);
				OOM_IF(tb = cmv_formats__text_block(text.ptr));
				cJSON_ReplaceItemViaPointer(content, b, tb);
			} else {
				cJSON_Delete(cJSON_DetachItemViaPointer(content, b));
			}
			continue;
		}
		if (!strcmp(t, "tool_use") && asst) {
			const char *name = cmv_formats__cj_str(b, "name") ? cmv_formats__cj_str(b, "name") : "", *mapped = NULL;
			cJSON *in = map_call(&mapped, name, cmv_formats__cj_get(b, "input"), s->o->agent);
			s->res->calls++;
			if (in) {
				s->res->mapped_calls++;
				cJSON_ReplaceItemInObjectCaseSensitive(b, "input", in);
				cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(b, "name"), mapped);
				cJSON_DeleteItemFromObjectCaseSensitive(b, "custom");
				if (s->from_cwd)
					remap_json(cJSON_GetObjectItemCaseSensitive(b, "input"), s->from_cwd, s->o->cwd,
						   &s->res->remapped_paths);
				continue;
			}
			/* a tool the target does not have: the call as text, one recall from its input */
			s->res->stubbed_calls++;
			const cJSON *input = cmv_formats__cj_get(b, "input");
			char *js = cJSON_IsTrue(cmv_formats__cj_get(b, "custom")) && cmv_formats__cj_str(input, "input") ? NULL : cJSON_PrintUnformatted(input);
			const char *shown = js ? js : cmv_formats__cj_str(input, "input") ? cmv_formats__cj_str(input, "input") : "";
			char *mapped_text = s->from_cwd ? remap(shown, s->from_cwd, s->o->cwd, &s->res->remapped_paths) : NULL;
			if (mapped_text)
				shown = mapped_text;
			size_t len = strlen(shown), cut = len > STUB_INPUT_MAX ? STUB_INPUT_MAX : len;
			while (cut < len && cut > 0 && ((unsigned char)shown[cut] & 0xc0) == 0x80)
				cut--;
			find_blob(blob, s->repo, s->path, from, to, "tool_use", cmv_formats__cj_str(b, "id"));
			cmv_buf_printf(&text, "[%s called its tool %s (%s has no such tool; carried as text%s%s)]\n%.*s%s", s->src_label,
				       name, is_claude(s->o->agent) ? "Claude Code" : "Codex", blob[0] ? "; cmv recall " : "",
				       blob[0] ? blob : "", (int)cut, shown, cut < len ? "\n[... cut; the whole input is recalled by the id above]" : "");
			cJSON_free(js);
			free(mapped_text);
			cmv_buf_clear(&s->scratch);
			cmv_buf_printf(&s->scratch, "%s: %s has no such tool", name, is_claude(s->o->agent) ? "Claude Code" : "Codex");
			add_note(s, "tool", s->scratch.ptr, node, blob);
			if (cmv_formats__cj_str(b, "id"))
				cJSON_AddStringToObject(s->stubbed_ids, cmv_formats__cj_str(b, "id"), name);
			OOM_IF(tb = cmv_formats__text_block(text.ptr));
			cJSON_ReplaceItemViaPointer(content, b, tb);
			continue;
		}
		if (!strcmp(t, "tool_result")) {
			const char *id = cmv_formats__cj_str(b, "tool_use_id");
			const char *name = id ? cmv_formats__cj_str(s->stubbed_ids, id) : NULL;
			if (s->from_cwd)
				remap_json(cJSON_GetObjectItemCaseSensitive(b, "content"), s->from_cwd, s->o->cwd,
					   &s->res->remapped_paths);
			if (!name)
				continue;
			/* the result of a call carried as text is text too */
			cmv_buf body = CMV_BUF_INIT(SESSION_MAX_BYTES);
			if ((error = cmv__result_text(&body, cmv_formats__cj_get(b, "content"))) < 0) {
				cmv_buf_dispose(&body);
				goto done;
			}
			cmv_buf_printf(&text, "[what %s's %s returned%s]\n%s", s->src_label, name,
				       cJSON_IsTrue(cmv_formats__cj_get(b, "is_error")) ? ", an error" : "", body.size ? body.ptr : "");
			cmv_buf_dispose(&body);
			OOM_IF(tb = cmv_formats__text_block(text.ptr));
			cJSON_ReplaceItemViaPointer(content, b, tb);
			continue;
		}
		if (!strcmp(t, "text") && s->from_cwd)
			remap_json(cJSON_GetObjectItemCaseSensitive(b, "text"), s->from_cwd, s->o->cwd, &s->res->remapped_paths);
	}
done:
	cmv_buf_dispose(&text);
	return error;
}

/* ---- writing the target's lines -------------------------------------------------- */

static void now_iso(char out[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, 32 - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Where a line came from: the source, its record, the agent that wrote it. */
static cJSON *provenance(const carry_state *s, const char *node)
{
	cJSON *p = cJSON_CreateObject();
	if (!p)
		return NULL;
	if (s->o->origin) {
		cJSON_AddStringToObject(p, "from", s->o->origin);
	} else if (s->res->source_session[0]) {
		char from[192];
		const char *f = s->res->source_format;
		snprintf(from, sizeof(from), "%s/%s", !strcmp(f, "claude-code") ? "cc" : f, s->res->source_session);
		cJSON_AddStringToObject(p, "from", from);
	} else {
		cJSON_AddStringToObject(p, "from", "cmv");
	}
	cJSON_AddStringToObject(p, "agent", s->res->source_format ? s->res->source_format : "cmv");
	if (node)
		cJSON_AddStringToObject(p, "node", node);
	return p;
}

static int put_line(cmv_buf *out, cJSON *o, size_t *lines)
{
	char *text = cJSON_PrintUnformatted(o);
	int error;
	if (!text)
		return cmv_error__oom();
	if ((error = cmv_buf_puts(out, text)) == 0)
		error = cmv_buf_putc(out, '\n');
	cJSON_free(text);
	(*lines)++;
	return error;
}

static int write_claude(cmv_buf *out, carry_state *s, cJSON *msgs, const cJSON *nodes)
{
	const cmv_carry_options *o = s->o;
	cJSON *shaped = cJSON_CreateObject(), *empty = cJSON_CreateArray();
	char parent[64], uuid[37], when[32];
	int error = 0;
	size_t i = 0;

	snprintf(parent, sizeof(parent), "%s", o->parent_uuid ? o->parent_uuid : "");
	OOM_IF(shaped && empty);
	/* Anthropic's shape, ids made valid for it; no decorations: they are a request's, not a session's */
	if ((error = cmv_formats__write_anthropic(shaped, msgs, empty, CMV_RENDER_NO_DECORATIONS)) < 0)
		goto done;
	for (const cJSON *m = cmv_formats__cj_get(shaped, "messages")->child; m; m = m->next, i++) {
		bool asst = !strcmp(cmv_formats__cj_str(m, "role"), "assistant");
		const cJSON *nd = cJSON_GetArrayItem(nodes, (int)i);
		cJSON *line = cJSON_CreateObject(), *msg;
		if ((error = cmv__uuid_v4(uuid)) < 0) {
			cJSON_Delete(line);
			goto done;
		}
		now_iso(when);
		OOM_IF(line);
		if (parent[0])
			cJSON_AddStringToObject(line, "parentUuid", parent);
		else
			cJSON_AddNullToObject(line, "parentUuid");
		cJSON_AddFalseToObject(line, "isSidechain");
		cJSON_AddStringToObject(line, "userType", "external");
		cJSON_AddStringToObject(line, "cwd", o->cwd ? o->cwd : s->res->source_cwd);
		cJSON_AddStringToObject(line, "sessionId", s->res->session_id);
		cJSON_AddStringToObject(line, "type", asst ? "assistant" : "user");
		msg = cJSON_AddObjectToObject(line, "message");
		OOM_IF(msg);
		if (asst) {
			char mid[64];
			snprintf(mid, sizeof(mid), "msg_cmv_%.24s", uuid);
			for (char *p = mid; *p; p++)
				if (*p == '-')
					*p = '_';
			cJSON_AddStringToObject(msg, "id", mid);
			cJSON_AddStringToObject(msg, "type", "message");
			cJSON_AddStringToObject(msg, "role", "assistant");
			cJSON_AddItemToObject(msg, "content", cJSON_Duplicate(cmv_formats__cj_get(m, "content"), 1));
			cJSON_AddStringToObject(msg, "stop_reason", "end_turn");
			cJSON_AddNullToObject(msg, "stop_sequence");
		} else {
			cJSON_AddStringToObject(msg, "role", "user");
			cJSON_AddItemToObject(msg, "content", cJSON_Duplicate(cmv_formats__cj_get(m, "content"), 1));
		}
		cJSON_AddStringToObject(line, "uuid", uuid);
		cJSON_AddStringToObject(line, "timestamp", when);
		cJSON_AddItemToObject(line, "cmvCarried", provenance(s, cJSON_IsString(nd) ? nd->valuestring : NULL));
		error = put_line(out, line, &s->res->lines);
		cJSON_Delete(line);
		if (error < 0)
			goto done;
		snprintf(parent, sizeof(parent), "%s", uuid);
	}
	snprintf(s->res->last_uuid, sizeof(s->res->last_uuid), "%s", parent);
done:
	cJSON_Delete(shaped);
	cJSON_Delete(empty);
	return error;
}

/* One rollout line: {"timestamp", "type", "payload", "cmv_carried"}. */
static int codex_line(cmv_buf *out, carry_state *s, const char *type, cJSON *payload, const char *node)
{
	char when[32];
	cJSON *line = cJSON_CreateObject();
	int error;

	if (!line || !payload) {
		cJSON_Delete(line);
		cJSON_Delete(payload);
		return cmv_error__oom();
	}
	now_iso(when);
	cJSON_AddStringToObject(line, "timestamp", when);
	cJSON_AddStringToObject(line, "type", type);
	cJSON_AddItemToObject(line, "payload", payload);
	if (strcmp(type, "session_meta"))
		cJSON_AddItemToObject(line, "cmv_carried", provenance(s, node));
	error = put_line(out, line, &s->res->lines);
	cJSON_Delete(line);
	return error;
}

static cJSON *codex_message(const char *role)
{
	cJSON *p = cJSON_CreateObject();
	if (p) {
		cJSON_AddStringToObject(p, "type", "message");
		cJSON_AddStringToObject(p, "role", role);
		cJSON_AddArrayToObject(p, "content");
	}
	return p;
}

static int write_codex(cmv_buf *out, carry_state *s, cJSON *msgs, const cJSON *nodes)
{
	const cmv_carry_options *o = s->o;
	cmv_buf scratch = CMV_BUF_INIT(SESSION_MAX_BYTES);
	int error = 0;
	size_t i = 0;

	if (o->flags & CMV_CARRY_HEADER) {
		char when[32];
		cJSON *meta = cJSON_CreateObject();
		now_iso(when);
		if (meta) {
			cJSON_AddStringToObject(meta, "id", s->res->session_id);
			cJSON_AddStringToObject(meta, "timestamp", when);
			cJSON_AddStringToObject(meta, "cwd", o->cwd ? o->cwd : s->res->source_cwd);
			cJSON_AddStringToObject(meta, "originator", "cmv");
			cJSON_AddStringToObject(meta, "cli_version", "0.171.0");
			cJSON_AddStringToObject(meta, "source", "exec");
			cJSON_AddStringToObject(meta, "model_provider", "openai");
			cJSON_AddItemToObject(meta, "cmv_carried", provenance(s, NULL));
		}
		if ((error = codex_line(out, s, "session_meta", meta, NULL)) < 0)
			goto done;
	}
	for (const cJSON *m = msgs->child; m; m = m->next, i++) {
		bool asst = !strcmp(cmv_formats__cj_str(m, "role"), "assistant");
		const cJSON *nd = cJSON_GetArrayItem(nodes, (int)i);
		const char *node = cJSON_IsString(nd) ? nd->valuestring : NULL;
		cJSON *open = NULL; /* the message item being filled */
		for (const cJSON *b = cmv_formats__cj_get(m, "content")->child; b; b = b->next) {
			const char *t = cmv_formats__btype(b);
			if (!strcmp(t, "text") || !strcmp(t, "image")) {
				cJSON *part = cJSON_CreateObject();
				if (!open && !(open = codex_message(asst ? "assistant" : "user"))) {
					cJSON_Delete(part);
					error = cmv_error__oom();
					goto done;
				}
				OOM_IF(part && cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(open, "content"), part));
				if (!strcmp(t, "text")) {
					cJSON_AddStringToObject(part, "type", asst ? "output_text" : "input_text");
					cJSON_AddStringToObject(part, "text", cmv_formats__cj_str(b, "text"));
				} else {
					const cJSON *src = cmv_formats__cj_get(b, "source");
					cmv_buf_clear(&scratch);
					cmv_buf_printf(&scratch, "data:%s;base64,%s",
						       cmv_formats__cj_str(src, "media_type") ? cmv_formats__cj_str(src, "media_type") : "image/png",
						       cmv_formats__cj_str(src, "data") ? cmv_formats__cj_str(src, "data") : "");
					cJSON_AddStringToObject(part, "type", "input_image");
					cJSON_AddStringToObject(part, "image_url", scratch.ptr);
				}
				continue;
			}
			if (open) {
				if ((error = codex_line(out, s, "response_item", open, node)) < 0)
					goto done;
				open = NULL;
			}
			cJSON *p = cJSON_CreateObject();
			OOM_IF(p);
			if (!strcmp(t, "tool_use")) {
				char *args = cJSON_PrintUnformatted(cmv_formats__cj_get(b, "input"));
				cJSON_AddStringToObject(p, "type", "function_call");
				cJSON_AddStringToObject(p, "name", cmv_formats__cj_str(b, "name"));
				cJSON_AddStringToObject(p, "arguments", args ? args : "{}");
				cJSON_AddStringToObject(p, "call_id", cmv_formats__cj_str(b, "id"));
				cJSON_free(args);
			} else if (!strcmp(t, "tool_result")) {
				if ((error = cmv__result_text(&scratch, cmv_formats__cj_get(b, "content"))) < 0) {
					cJSON_Delete(p);
					goto done;
				}
				cJSON_AddStringToObject(p, "type", "function_call_output");
				cJSON_AddStringToObject(p, "call_id", cmv_formats__cj_str(b, "tool_use_id"));
				cJSON_AddStringToObject(p, "output", scratch.size ? scratch.ptr : "");
			} else {
				cJSON_Delete(p);
				continue;
			}
			if ((error = codex_line(out, s, "response_item", p, node)) < 0)
				goto done;
		}
		if (open && (error = codex_line(out, s, "response_item", open, node)) < 0)
			goto done;
	}
done:
	cmv_buf_dispose(&scratch);
	return error;
}

/* ---- the entry point ----------------------------------------------------------- */

int cmv_carry(cmv_buf *out, cmv_carry_result *res, cmv_repo *repo, const cmv_id *tip, const cmv_carry_options *opts)
{
	path_list path = { 0 };
	conv raw, sel = { 0 };
	cmv_render_stats st;
	cmv__conversation cv = { 0 };
	carry_state s = { 0 };
	bool loaded = false;
	size_t after;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(res);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(opts);
	memset(res, 0, sizeof(*res));
	cmv_buf_init(&res->notes, SESSION_MAX_BYTES);
	cmv_buf_init(&s.scratch, SESSION_MAX_BYTES);
	if (!opts->agent || (strcmp(opts->agent, "claude-code") && strcmp(opts->agent, "codex")))
		return cmv_error__set(CMV_EINVALID, "cannot carry into '%s': claude-code or codex", opts->agent ? opts->agent : "");
	if (!opts->session_id) {
		if ((error = cmv__uuid_v4(res->session_id)) < 0)
			return error;
	} else if (!*opts->session_id || strlen(opts->session_id) >= sizeof(res->session_id) ||
		   strspn(opts->session_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(opts->session_id)) {
		return cmv_error__set(CMV_EINVALID, "'%s' is not a session id", opts->session_id);
	} else {
		snprintf(res->session_id, sizeof(res->session_id), "%s", opts->session_id);
	}
	if ((error = read_path(&path, res, repo, tip)) < 0)
		goto done;
	if (!res->source_format)
		res->source_format = "cmv";
	after = opts->after ? path_pos(&path, opts->after) : SIZE_MAX;
	if (opts->after && after == SIZE_MAX) {
		error = cmv_error__set(CMV_ENOTFOUND, "record %s, where the last carry ended, is not on the branch", opts->after);
		goto done;
	}
	if ((error = cmv__conv_load_raw(&raw, &st, repo, tip, 0)) < 0)
		goto done;
	loaded = true;
	s.repo = repo;
	s.o = opts;
	s.res = res;
	s.path = &path;
	s.src_label = agent_label(res->source_format);
	s.from_cwd = opts->cwd && res->source_cwd[0] && strcmp(opts->cwd, res->source_cwd) ? res->source_cwd : NULL;
	if (!(s.notes = cJSON_CreateArray()) || !(s.stubbed_ids = cJSON_CreateObject()) ||
	    !(sel.system = cJSON_CreateArray()) || !(sel.messages = cJSON_CreateArray())) {
		error = cmv_error__oom();
		goto done;
	}
	/* the other agent's system prompts are its own (its tools, its sandbox): listed, not carried */
	if (cJSON_GetArraySize(raw.system) && after == SIZE_MAX) {
		size_t chars = 0;
		for (const cJSON *x = raw.system->child; x; x = x->next)
			chars += strlen(x->valuestring);
		res->dropped_system = (size_t)cJSON_GetArraySize(raw.system);
		cmv_buf_clear(&s.scratch);
		cmv_buf_printf(&s.scratch, "%zu system prompts of %s (%zu characters): the target has its own",
			       res->dropped_system, s.src_label, chars);
		add_note(&s, "system", s.scratch.ptr, NULL, NULL);
	}
	for (cJSON *m = raw.messages->child, *next; m; m = next) {
		next = m->next;
		size_t pos = path_pos(&path, cmv_formats__cj_str(m, "node"));
		/* only what followed the last carry; a message of no record (none here) goes with the first */
		if (after != SIZE_MAX && (pos == SIZE_MAX || pos <= after))
			continue;
		cJSON_AddItemToArray(sel.messages, cJSON_DetachItemViaPointer(raw.messages, m));
	}
	for (cJSON *m = sel.messages->child; m; m = m->next) {
		if ((error = cross_message(&s, m)) < 0)
			goto done;
		res->messages++;
	}
	if (!res->messages)
		goto notes; /* nothing new: nothing written */
	if ((error = cmv__conversation_from_raw(&cv, &sel, 0, NULL,
						is_claude(opts->agent) ? CMV_RENDER_ANTHROPIC : CMV_RENDER_OPENAI_RESPONSES)) < 0)
		goto done;
	res->answered_calls = cv.st.answered_calls;
	cmv_buf_clear(out);
	error = is_claude(opts->agent) ? write_claude(out, &s, cv.msgs, cv.nodes) : write_codex(out, &s, cv.msgs, cv.nodes);
	if (error < 0)
		goto done;
notes:
	{
		char *text = cJSON_PrintUnformatted(s.notes);
		cmv_buf_clear(&res->notes);
		error = text ? cmv_buf_puts(&res->notes, text) : cmv_error__oom();
		cJSON_free(text);
	}
done:
	if (loaded)
		cmv__conv_dispose(&raw);
	cJSON_Delete(sel.system);
	cJSON_Delete(sel.messages);
	cmv__conversation_dispose(&cv);
	cJSON_Delete(s.notes);
	cJSON_Delete(s.stubbed_ids);
	cmv_buf_dispose(&s.scratch);
	path_dispose(&path);
	return error;
}

int cmv_branch_format(const char **out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	session_tpl t;
	int error;

	CMV_ASSERT_ARG(out);
	*out = "cmv";
	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&n, walk)) == 0)
		if (cmv_formats__session_template(&t, n) == 0) {
			*out = t.format;
			break;
		}
	cmv_error_clear();
	cmv_walk_free(walk);
	return error == CMV_ITEROVER || error == 0 ? 0 : error;
}

void cmv_carry_result_dispose(cmv_carry_result *res)
{
	if (res)
		cmv_buf_dispose(&res->notes);
}
