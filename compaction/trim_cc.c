/* SPDX-License-Identifier: MIT */
/*
 * Trim's rules for Claude Code records (the design notes are in trim.c).
 * A record is edited as a JSON skeleton whose untouched holes keep their
 * blobs; only what a rule may stub is read.
 *
 * Invariants:
 *  - what a stub stands for is a blob of its own that the rewritten record
 *    reaches (through its original, or through the holder node that
 *    write_holder adds), so every stub recalls its exact bytes, after gc
 *    and in another store too;
 *  - a dropped record's children are relinked to its parent (t->remap), so
 *    the uuid chain Claude Code resumes from stays whole;
 *  - a call with no result anywhere after it is answered (unless live) by
 *    one added line (answer_pending) once the next message begins, and a result whose call
 *    went before the boundary is dropped: a request holds neither;
 *  - live (CMV_TRIM_LIVE): from the last message on, records are only
 *    relinked, since the agent is still writing them.
 */
#include <cjson/cJSON.h>
#include "formats/formats_int.h"
#include <cmv/compaction.h>
#include "trim_priv.h"

/* A blob a stub of the record being rewritten names (written already). */
static int hold(trim_ctx *t, const cmv_id *blob)
{
	int error = cmv__array_grow((void **)&t->held, &t->cap_held, t->n_held, sizeof(*t->held));
	if (error < 0)
		return error;
	t->held[t->n_held++] = *blob;
	return 0;
}

/*
 * The blobs a record's stubs name hang from a node of their own, which the
 * rewritten record is derived from (besides its original): nothing else
 * points at them, and a stub must recall after gc, and in another store
 * that a bundle brought it to.
 */
static int write_holder(cmv_id *out, trim_ctx *t)
{
	cmv_block_content stack[8], *blocks = stack;
	int error;
	if (t->n_held > CMV_ARRAY_SIZE(stack) && !(blocks = cmv__calloc(t->n_held, sizeof(*blocks))))
		return cmv_error__oom();
	for (size_t i = 0; i < t->n_held; i++)
		blocks[i] = (cmv_block_content){ .type = "stubbed", .blob = &t->held[i] };
	cmv_message m = { .role = CMV_ROLE_TOOL, .kind = CMV_KIND_EVENT, .blocks = blocks, .n_blocks = t->n_held };
	error = cmv_node_write(out, t->repo, NULL, &m);
	if (blocks != stack)
		free(blocks);
	t->n_held = 0;
	return error;
}

/* Replace `old` in its parent by `neu`. */
static int replace_item(cJSON *parent, cJSON *old, cJSON *neu)
{
	if (!neu)
		return cmv_error__oom();
	/* a member keeps its key (ReplaceItemViaPointer would leave the new item without one) */
	bool member = old->string != NULL;
	if (!(member ? cJSON_ReplaceItemInObjectCaseSensitive(parent, old->string, neu)
		     : cJSON_ReplaceItemViaPointer(parent, old, neu))) {
		cJSON_Delete(neu);
		return cmv_error__oom();
	}
	/* cJSON (1.7.15) does not check its copy of the key: when that fails it
	 * still replaces, leaving the member keyless (in the tree, freed with it) */
	if (member && !neu->string)
		return cmv_error__oom();
	return 0;
}

/* Stub one input string into a blob of its own (which gives back its exact bytes). */
static int stub_value(trim_ctx *t, cJSON *v, bool *changed)
{
	const char *data = v->valuestring;
	size_t len = strlen(data);
	cmv_id id;
	int error;

	cmv_id_hash(&id, data, len);
	if ((error = cmv_trim__make_stub(t, NULL, data, len, &id)) < 0 || t->stub.size >= len)
		return error; /* a stub no shorter than what it stands for saves nothing */
	if ((error = cmv_blob_write(&id, t->repo, data, len)) < 0 || (error = hold(t, &id)) < 0)
		return error;
	cmv_trim__rule_add(t, CMV_TRIM_TOOL_INPUTS, 1, (int64_t)len - (int64_t)t->stub.size,
		 cmv_trim__tokens_of(t, data, len) - cmv_trim__tokens_of(t, t->stub.ptr, t->stub.size));
	if (!cJSON_SetValuestring(v, t->stub.ptr))
		return cmv_error__oom();
	*changed = true;
	return 0;
}

/* Every string over the threshold, nested ones too. */
static int stub_strings(trim_ctx *t, cJSON *v, bool *changed)
{
	int error = 0;
	if (cJSON_IsString(v))
		return cmv__utf8_chars(v->valuestring, strlen(v->valuestring)) > t->threshold ? stub_value(t, v, changed) : 0;
	for (cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c && !error; c = c->next)
		error = stub_strings(t, c, changed);
	return error;
}

static size_t json_chars(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	size_t n = s ? cmv__utf8_chars(s, strlen(s)) : 0;
	cJSON_free(s);
	return n;
}

/* The largest string below `v` worth a stub, and its parent. */
static void largest(cJSON *v, cJSON **best, size_t *best_len)
{
	for (cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c; c = c->next) {
		/* strings only: their stub gives back their exact bytes (a nested value printed again might not) */
		size_t n = cJSON_IsString(c) ? cmv__utf8_chars(c->valuestring, strlen(c->valuestring)) : 0;
		if (n > *best_len) {
			*best = c;
			*best_len = n;
		}
		largest(c, best, best_len);
	}
}

/*
 * A tool input over the threshold is cut down to it: first every string
 * over the threshold (nested ones too: MultiEdit's edits, a Bash heredoc),
 * then the largest remaining strings (an Edit's two halves) until it fits
 * or nothing is worth a stub. Each stubbed string is a blob of its own,
 * which gives back its exact bytes.
 */
static int fit_input(trim_ctx *t, cJSON *in, bool *changed)
{
	int error;
	if (json_chars(in) <= t->threshold)
		return 0;
	if ((error = stub_strings(t, in, changed)) < 0)
		return error;
	for (int guard = 0; guard < 64 && json_chars(in) > t->threshold; guard++) {
		cJSON *best = NULL;
		size_t len = 160; /* below this a stub saves too little to hide the value */
		largest(in, &best, &len);
		if (!best)
			break;
		bool did = false;
		if ((error = stub_value(t, best, &did)) < 0)
			return error;
		if (!did)
			break;
		*changed = true;
	}
	return 0;
}

/* A text block whose text is a new blob (a stub). */
static cJSON *text_block(record_edit *e, const char *text, size_t len)
{
	cJSON *b = cJSON_CreateObject(), *ph;
	cmv_block_content bc = { .type = "text", .data = text, .len = len };
	if (!b || !cJSON_AddStringToObject(b, "type", "text") || !(ph = cmv_formats__record_edit_add(e, 'S', &bc))) {
		cJSON_Delete(b);
		return NULL;
	}
	cJSON_AddItemToObject(b, "text", ph);
	return b;
}

/* An image block of a message: a text stub naming the image's blob. */
static int stub_image(trim_ctx *t, record_edit *e, cJSON *content, cJSON *el, const cmv_id *blob, const char *data,
		      size_t len, const char *media)
{
	int error;
	if ((error = cmv_trim__make_stub(t, media ? media : "unknown", data, len, blob)) < 0)
		return error;
	cmv_trim__rule_add(t, CMV_TRIM_IMAGES, 1, (int64_t)len - (int64_t)t->stub.size,
		 (t->opts->model ? (int64_t)t->opts->model->image_tokens : 0) - cmv_trim__tokens_of(t, t->stub.ptr, t->stub.size));
	return replace_item(content, el, text_block(e, t->stub.ptr, t->stub.size));
}

/*
 * A result Claude Code sent as a <persisted-output> preview (over the
 * threshold; one at or under it stays as it is). The tags and the first
 * line stay: they tell the model the output was too large and where it was
 * saved, a path it can Read (a written session names the copy in its own
 * folder). The preview between them becomes the stub, which names the
 * whole saved output when the import kept it (the record's
 * `cc_saved_output` block, carried with the record), else the preview.
 * The report counts what was sent: the preview, not the saved output.
 */
static int persisted_stub(trim_ctx *t, record_edit *e, cJSON *el, cJSON *content, const char *id, const cmv_id *preview,
			  bool inline_text, size_t header, bool *changed)
{
	static const char close[] = "\n</persisted-output>";
	const cmv_block *saved = NULL;
	cmv_buf whole = CMV_BUF_INIT(CMV_BUF_CONTENT), text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error = 0;

	for (size_t i = 0; id && e->node && i < e->node->n_blocks && !saved; i++) {
		const cmv_block *b = &e->node->blocks[i];
		if (!strcmp(b->type, "cc_saved_output") && b->tool_id && !strcmp(b->tool_id, id))
			saved = b;
	}
	if (saved && (error = cmv_blob_read(&whole, t->repo, &saved->blob)) < 0)
		goto done;
	if (saved)
		error = cmv_trim__make_stub(t, NULL, whole.ptr ? whole.ptr : "", whole.size, &saved->blob);
	else
		error = cmv_trim__make_stub(t, NULL, t->blob.ptr, t->blob.size, preview);
	if (error < 0 || (error = cmv_buf_put(&text, t->blob.ptr, header)) < 0 || (error = cmv_buf_putc(&text, '\n')) < 0 ||
	    (error = cmv_buf_put(&text, t->stub.ptr, t->stub.size)) < 0 ||
	    (error = cmv_buf_put(&text, close, sizeof(close) - 1)) < 0)
		goto done;
	if (text.size >= t->blob.size)
		goto done; /* saves nothing */
	if (!saved && inline_text && (error = cmv_blob_write(&(cmv_id){ 0 }, t->repo, t->blob.ptr, t->blob.size)) < 0)
		goto done;
	cmv_trim__rule_add(t, CMV_TRIM_TOOL_RESULTS, 1, (int64_t)t->blob.size - (int64_t)text.size,
			   (inline_text ? cmv_trim__tokens_of(t, t->blob.ptr, t->blob.size) : cmv_trim__tokens_of_blob(t, preview)) -
				   cmv_trim__tokens_of(t, text.ptr, text.size));
	cmv_block_content bc = { .type = "tool_result", .data = text.ptr, .len = text.size, .tool_id = id,
				 .flags = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(el, "is_error")) ? CMV_BLOCK_ERROR : 0 };
	*changed = true;
	error = replace_item(el, content, cmv_formats__record_edit_add(e, 'S', &bc));
done:
	cmv_buf_dispose(&whole);
	cmv_buf_dispose(&text);
	return error;
}

/* A tool result's content: images stubbed, and the whole stubbed when over the threshold. */
static int trim_result(trim_ctx *t, record_edit *e, cJSON *el, bool *changed)
{
	cJSON *content = cJSON_GetObjectItemCaseSensitive(el, "content");
	const char *id = cmv_formats__cj_str(el, "tool_use_id");
	size_t k = cmv_formats__record_edit_block(e, content);
	cmv_id blob;
	int error;

	if (!content)
		return 0;
	if (k != SIZE_MAX) {
		blob = e->node->blocks[k].blob;
		if ((error = cmv_blob_read(&t->blob, t->repo, &blob)) < 0)
			return error;
	} else if (cJSON_IsString(content)) {
		if ((error = cmv_buf_set(&t->blob, content->valuestring, strlen(content->valuestring))) < 0)
			return error;
		cmv_id_hash(&blob, t->blob.ptr, t->blob.size);
	} else {
		return 0; /* inline structure the importer did not cut: small by construction */
	}
	if (k == SIZE_MAX || e->enc[k] == 'S') {
		size_t header;
		if (cmv__utf8_chars(t->blob.ptr, t->blob.size) <= t->threshold)
			return 0;
		if (cmv__cc_persisted(t->blob.ptr, t->blob.size, &header, NULL, NULL))
			return persisted_stub(t, e, el, content, id, &blob, k == SIZE_MAX, header, changed);
	} else {
		/* blocks: images are stubbed whatever the size; the text decides the rest */
		cJSON *arr = cJSON_ParseWithLength(t->blob.ptr ? t->blob.ptr : "", t->blob.size);
		size_t chars = 0;
		bool images = false;
		for (cJSON *c = cJSON_IsArray(arr) ? arr->child : NULL; c; c = c->next) {
			const char *ct = cmv_formats__cj_str(c, "type");
			if (ct && !strcmp(ct, "text") && cmv_formats__cj_str(c, "text"))
				chars += cmv__utf8_chars(cmv_formats__cj_str(c, "text"), strlen(cmv_formats__cj_str(c, "text")));
			else if (ct && !strcmp(ct, "image"))
				images = true;
			else if (!ct || strcmp(ct, "image")) {
				char *s = cJSON_PrintUnformatted(c);
				chars += s ? strlen(s) : 0;
				cJSON_free(s);
			}
		}
		if (!arr || (chars <= t->threshold && !images)) {
			cJSON_Delete(arr);
			return 0;
		}
		if (chars <= t->threshold) {
			/* small text: keep it, stub each image into a blob of its own */
			for (cJSON *c = arr->child, *next; c; c = next) {
				next = c->next;
				const char *ct = cmv_formats__cj_str(c, "type");
				const cJSON *src = cJSON_GetObjectItemCaseSensitive(c, "source");
				const char *data = cmv_formats__cj_str(src, "data");
				if (!ct || strcmp(ct, "image"))
					continue;
				cmv_id iid;
				const char *d = data ? data : "";
				if ((error = cmv_blob_write(&iid, t->repo, d, strlen(d))) < 0 || (error = hold(t, &iid)) < 0 ||
				    (error = cmv_trim__make_stub(t, cmv_formats__cj_str(src, "media_type") ? cmv_formats__cj_str(src, "media_type") : "unknown", d, strlen(d), &iid)) < 0)
					break;
				cmv_trim__rule_add(t, CMV_TRIM_IMAGES, 1, (int64_t)strlen(d) - (int64_t)t->stub.size,
					 (t->opts->model ? (int64_t)t->opts->model->image_tokens : 0) -
						 cmv_trim__tokens_of(t, t->stub.ptr, t->stub.size));
				cJSON *tb = cJSON_CreateObject();
				if (!tb || !cJSON_AddStringToObject(tb, "type", "text") ||
				    !cJSON_AddStringToObject(tb, "text", t->stub.ptr)) {
					cJSON_Delete(tb);
					error = cmv_error__oom();
					break;
				}
				cJSON_ReplaceItemViaPointer(arr, c, tb);
			}
			char *s = error ? NULL : cJSON_PrintUnformatted(arr);
			cJSON_Delete(arr);
			if (error)
				return error;
			if (!s)
				return cmv_error__oom();
			const cmv_block *ob = &e->node->blocks[k];
			cmv_block_content bc = { .type = ob->type, .data = s, .len = strlen(s), .tool_id = ob->tool_id,
						 .media_type = ob->media_type, .flags = ob->flags };
			error = replace_item(el, content, cmv_formats__record_edit_add(e, 'R', &bc));
			cJSON_free(s);
			*changed = true;
			return error;
		}
		cJSON_Delete(arr);
	}
	/* the whole result becomes a stub; the stub names the blob that holds it */
	if ((error = cmv_trim__make_stub(t, NULL, t->blob.ptr ? t->blob.ptr : "", t->blob.size, &blob)) < 0)
		return error;
	if (t->stub.size >= t->blob.size)
		return 0; /* a stub no shorter than what it stands for saves nothing */
	if (k == SIZE_MAX && (error = cmv_blob_write(&blob, t->repo, t->blob.ptr, t->blob.size)) < 0)
		return error;
	cmv_trim__rule_add(t, CMV_TRIM_TOOL_RESULTS, 1, (int64_t)t->blob.size - (int64_t)t->stub.size,
		 cmv_trim__tokens_of_blob(t, &blob) - cmv_trim__tokens_of(t, t->stub.ptr, t->stub.size));
	cmv_block_content bc = { .type = "tool_result", .data = t->stub.ptr, .len = t->stub.size, .tool_id = id,
				 .flags = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(el, "is_error")) ? CMV_BLOCK_ERROR : 0 };
	*changed = true;
	return replace_item(el, content, cmv_formats__record_edit_add(e, 'S', &bc));
}

/*
 * A snapshot tool's input restated by a later call (every TodoWrite but the
 * last): its state member becomes a stub whose blob is that member's exact
 * bytes in the call (t->blob holds the input as recorded).
 */
static int stub_superseded(trim_ctx *t, cJSON *in, const char *name, const char *id, bool *changed)
{
	for (size_t s = 0; s < CMV_ARRAY_SIZE(trim_snapshot_inputs); s++) {
		const char *key = trim_snapshot_inputs[s].key;
		jspan obj = { t->blob.ptr, t->blob.ptr + t->blob.size }, val;
		cJSON *member = cJSON_GetObjectItemCaseSensitive(in, key);
		char hex[CMV_ID_HEXSZ + 1];
		cmv_id blob;
		int error;

		if (!name || !id || strcmp(name, trim_snapshot_inputs[s].tool) || !t->last_snapshot[s] ||
		    !strcmp(id, t->last_snapshot[s]) || !member || !t->blob.ptr)
			continue;
		obj.p = cmv_formats__jscan_ws(obj.p, obj.end);
		if (cmv_formats__jscan_member(&val, obj, key) != 1)
			continue;
		size_t len = (size_t)(val.end - val.p);
		cmv_id_hash(&blob, val.p, len);
		if ((error = cmv_trim__abbrev(hex, t, &blob)) < 0)
			return error;
		cmv_buf_clear(&t->stub);
		if ((error = cmv_buf_printf(&t->stub, "[superseded; recall %s]", hex)) < 0)
			return error;
		if (t->stub.size + 2 >= len)
			continue; /* as its quoted string, the stub would be no shorter */
		if ((error = cmv_blob_write(&blob, t->repo, val.p, len)) < 0 || (error = hold(t, &blob)) < 0)
			return error;
		cmv_trim__rule_add(t, CMV_TRIM_SUPERSEDED, 1, (int64_t)len - (int64_t)t->stub.size - 2,
			 cmv_trim__tokens_of(t, val.p, len) - cmv_trim__tokens_of(t, t->stub.ptr, t->stub.size));
		if (replace_item(in, member, cJSON_CreateString(t->stub.ptr)) < 0)
			return cmv_error__oom();
		*changed = true;
	}
	return 0;
}

/* A tool call: its input's large strings stubbed; its id and what it was about remembered. */
static int trim_call(trim_ctx *t, record_edit *e, cJSON *el, bool *changed)
{
	cJSON *input = cJSON_GetObjectItemCaseSensitive(el, "input"), *parsed = NULL, *in;
	const char *id = cmv_formats__cj_str(el, "id");
	size_t k = cmv_formats__record_edit_block(e, input);
	bool stubbed = false;
	int error = 0;

	if (k != SIZE_MAX && e->enc[k] == 'R') {
		if ((error = cmv_blob_read(&t->blob, t->repo, &e->node->blocks[k].blob)) < 0)
			return error;
		parsed = cJSON_ParseWithLength(t->blob.ptr ? t->blob.ptr : "", t->blob.size);
		in = parsed;
	} else {
		in = input;
	}
	if (id)
		error = cmv__strmap_put(&t->calls, id, 0, NULL);
	if (!error && parsed)
		error = stub_superseded(t, parsed, cmv_formats__cj_str(el, "name"), id, &stubbed);
	if (!error && in && (k == SIZE_MAX || t->blob.size > t->threshold))
		error = fit_input(t, in, &stubbed);
	if (!error && stubbed && parsed) {
		char *s = cJSON_PrintUnformatted(parsed);
		const cmv_block *ob = &e->node->blocks[k];
		cmv_block_content bc = { .type = ob->type, .data = s, .len = s ? strlen(s) : 0, .tool_id = ob->tool_id,
					 .tool_name = ob->tool_name, .media_type = ob->media_type, .flags = ob->flags };
		error = s ? replace_item(el, input, cmv_formats__record_edit_add(e, 'R', &bc)) : CMV_ENOMEM;
		cJSON_free(s);
	}
	if (stubbed)
		*changed = true;
	cJSON_Delete(parsed);
	return error;
}

/* The uuid a record's children hang from once dropped records are skipped. */
static const char *resolve_uuid(const trim_ctx *t, const char *uuid)
{
	const char *to;
	for (int guard = 0; uuid && guard < 1 << 20 && cmv__strmap_get(&t->remap, uuid, NULL, &to); guard++)
		uuid = to;
	return uuid;
}

static int pending_push(trim_ctx *t, const char *id)
{
	int error = cmv__array_grow((void **)&t->pending, &t->cap_pending, t->n_pending, sizeof(*t->pending));
	if (error < 0)
		return error;
	if (!(t->pending[t->n_pending] = cmv__strdup(id)))
		return cmv_error__oom();
	t->n_pending++;
	return 0;
}

/* A deterministic uuid for a record trim adds, from what it answers. */
static void derived_uuid(char out[37], const char *seed)
{
	cmv_id h;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id_hash(&h, seed, strlen(seed));
	cmv_id_tostr(hex, sizeof(hex), &h);
	hex[12] = '4';
	hex[16] = "89ab"[hex[16] % 4];
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static const char *const answer_copies[] = { "isSidechain", "userType", "cwd", "sessionId", "version", "gitBranch",
					     "timestamp" };

/* What an answer copies from its call's record: the fields every Claude Code line has. */
static cJSON *answer_base(const cJSON *rec)
{
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; o && i < CMV_ARRAY_SIZE(answer_copies); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, answer_copies[i]);
		cJSON *c = v ? cJSON_Duplicate(v, true) : NULL;
		if (v && (!c || !cJSON_AddItemToObject(o, answer_copies[i], c))) {
			cJSON_Delete(c);
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

/* Answer the pending calls with an error result, in a Claude Code line after their message. */
int cmv_trim__answer_pending(trim_ctx *t)
{
	/* the words the renderer answers such a call with, so a trimmed branch reads the same */
	static const char answer[] = CMV_NO_RESULT_TEXT;
	record_edit e;
	cJSON *o = cJSON_CreateObject(), *msg, *content;
	char uuid[37];
	int error = 0;

	if (!t->n_pending) {
		cJSON_Delete(o);
		return 0;
	}
	if ((error = cmv_formats__record_edit_new(&e, "claude-code", o)) < 0)
		return error;
	cmv_buf_clear(&t->text);
	for (size_t i = 0; i < t->n_pending; i++)
		cmv_buf_puts(&t->text, t->pending[i]);
	derived_uuid(uuid, t->text.ptr ? t->text.ptr : "");
	if (!(t->last_uuid[0] ? cJSON_AddStringToObject(o, "parentUuid", t->last_uuid) : cJSON_AddNullToObject(o, "parentUuid")))
		error = cmv_error__oom();
	for (size_t i = 0; !error && i + 1 < CMV_ARRAY_SIZE(answer_copies); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->pending_base, answer_copies[i]);
		if (v && !cJSON_AddItemToObject(o, answer_copies[i], cJSON_Duplicate(v, true)))
			error = cmv_error__oom();
	}
	if (!error && (!cJSON_AddStringToObject(o, "type", "user") || !(msg = cJSON_AddObjectToObject(o, "message")) ||
		       !cJSON_AddStringToObject(msg, "role", "user") || !(content = cJSON_AddArrayToObject(msg, "content"))))
		error = cmv_error__oom();
	for (size_t i = 0; !error && i < t->n_pending; i++) {
		cJSON *b = cJSON_CreateObject(), *ph;
		cmv_block_content bc = { .type = "tool_result", .data = answer, .len = sizeof(answer) - 1,
					 .tool_id = t->pending[i], .flags = CMV_BLOCK_ERROR };
		if (!b || !cJSON_AddItemToArray(content, b) || !cJSON_AddStringToObject(b, "tool_use_id", t->pending[i]) ||
		    !cJSON_AddStringToObject(b, "type", "tool_result") || !(ph = cmv_formats__record_edit_add(&e, 'S', &bc)) ||
		    !cJSON_AddItemToObject(b, "content", ph) || !cJSON_AddTrueToObject(b, "is_error"))
			error = cmv_error__oom();
		cmv_trim__rule_add(t, CMV_TRIM_UNANSWERED, 1, -(int64_t)sizeof(answer), -cmv_trim__tokens_of(t, answer, sizeof(answer) - 1));
	}
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(t->pending_base, "timestamp");
	if (!error && (!cJSON_AddStringToObject(o, "uuid", uuid) ||
		       (ts && !cJSON_AddItemToObject(o, "timestamp", cJSON_Duplicate(ts, true)))))
		error = cmv_error__oom();
	if (!error)
		error = cmv_formats__record_edit_write(&t->tail, &e, t->repo, cmv_id_is_none(&t->tail) ? NULL : &t->tail,
					  CMV_ROLE_USER, CMV_KIND_MESSAGE, &t->pending_from, 1);
	/* whatever hung from the call's line now hangs from its answer */
	if (!error && t->last_uuid[0])
		error = cmv__strmap_put(&t->remap, t->last_uuid, 0, uuid);
	if (!error) {
		snprintf(t->last_uuid, sizeof(t->last_uuid), "%s", uuid);
		t->parent_kept = false;
		t->rep->records_after++;
	}
	cmv_formats__record_edit_dispose(&e);
	for (size_t i = 0; i < t->n_pending; i++)
		free(t->pending[i]);
	t->n_pending = 0;
	cJSON_Delete(t->pending_base);
	t->pending_base = NULL;
	return error;
}

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/* Drop a record: its children hang from its parent instead. */
static int drop_record(trim_ctx *t, const cJSON *root, cmv_trim_rule rule, size_t bytes)
{
	const char *uuid = cmv_formats__cj_str(root, "uuid"), *parent = cmv_formats__cj_str(root, "parentUuid");
	cmv_trim__rule_add(t, rule, 1, (int64_t)bytes, 0);
	t->parent_kept = false;
	return uuid ? cmv__strmap_put(&t->remap, uuid, 0, resolve_uuid(t, parent)) : 0;
}

/* The members by which a Claude Code record names the record it hangs from. */
static const char *const uuid_links[] = { "parentUuid", "leafUuid" };

int cmv_trim__cc(trim_ctx *t, const cmv_node *n)
{
	record_edit e;
	bool changed = false;
	int error;

	t->n_held = 0;
	if ((error = cmv_formats__record_edit_load(&e, n)) < 0)
		return error;
	cJSON *root = e.root;
	const char *type = cmv_formats__cj_str(root, "type");
	size_t tpl_bytes = n->meta_len;
	cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
	const char *group = is(type, "assistant") ? cmv_formats__cj_str(msg, "id") : NULL;

	bool is_msg = (is(type, "user") || is(type, "assistant")) && cJSON_IsObject(msg);

	if (t->live && t->index >= t->frozen_from)
		goto relink;

	/* calls of the previous message with no result: answered once the next message begins */
	if (t->n_pending && is_msg && !(group && !strcmp(group, t->pending_group)) && (error = cmv_trim__answer_pending(t)) < 0)
		goto done;
	if (is(type, "progress") || is(type, "file-history-snapshot") || is(type, "queue-operation")) {
		error = drop_record(t, root, is(type, "progress") ? CMV_TRIM_PROGRESS
					     : is(type, "queue-operation") ? CMV_TRIM_QUEUE : CMV_TRIM_FILE_HISTORY,
				    tpl_bytes);
		goto done;
	}
	cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	for (cJSON *el = is_msg && cJSON_IsArray(content) ? content->child : NULL, *next; el && !error; el = next) {
		next = el->next;
		const char *bt = cmv_formats__cj_str(el, "type");
		if (is(bt, "thinking") || is(bt, "redacted_thinking")) {
			size_t k = cmv_formats__record_edit_block(&e, cJSON_GetObjectItemCaseSensitive(el, is(bt, "thinking") ? "thinking" : "data"));
			char *s = cJSON_PrintUnformatted(el);
			cmv_trim__rule_add(t, CMV_TRIM_THINKING, 1, s ? (int64_t)strlen(s) : 0,
				 k != SIZE_MAX ? cmv_trim__tokens_of_blob(t, &n->blocks[k].blob) : 0);
			cJSON_free(s);
			cJSON_Delete(cJSON_DetachItemViaPointer(content, el));
			changed = true;
		} else if (is(bt, "image")) {
			cJSON *src = cJSON_GetObjectItemCaseSensitive(el, "source");
			size_t k = cmv_formats__record_edit_block(&e, cJSON_GetObjectItemCaseSensitive(src, "data"));
			if (k == SIZE_MAX)
				continue; /* an image by URL: a few tokens of text, kept */
			if ((error = cmv_blob_read(&t->blob, t->repo, &n->blocks[k].blob)) < 0)
				break;
			error = stub_image(t, &e, content, el, &n->blocks[k].blob, t->blob.ptr ? t->blob.ptr : "",
					   t->blob.size, cmv_formats__cj_str(src, "media_type"));
			changed = true;
		} else if (is(bt, "tool_use")) {
			const char *id = cmv_formats__cj_str(el, "id");
			error = trim_call(t, &e, el, &changed);
			if (!error && !t->live && id && !cmv__strmap_get(&t->results, id, NULL, NULL) && group) {
				if (!t->n_pending) {
					snprintf(t->pending_group, sizeof(t->pending_group), "%s", group);
					cJSON_Delete(t->pending_base);
					if (!(t->pending_base = answer_base(root))) {
						error = cmv_error__oom();
						break;
					}
					t->pending_from = n->id;
				}
				error = pending_push(t, id);
			}
		} else if (is(bt, "tool_result")) {
			const char *id = cmv_formats__cj_str(el, "tool_use_id");
			if (!id || !cmv__strmap_get(&t->calls, id, NULL, NULL)) {
				/* its call is gone (before the compaction): a result with no call is refused */
				char *s = cJSON_PrintUnformatted(el);
				cmv_trim__rule_add(t, CMV_TRIM_ORPHANS, 1, s ? (int64_t)strlen(s) : 0, 0);
				cJSON_free(s);
				cJSON_Delete(cJSON_DetachItemViaPointer(content, el));
				changed = true;
				continue;
			}
			error = trim_result(t, &e, el, &changed);
		}
	}
	if (error)
		goto done;
	if (is_msg && cJSON_IsArray(content) && !content->child) {
		error = drop_record(t, root, CMV_TRIM_EMPTY, 0);
		goto done;
	}
	cJSON *ui = cJSON_GetObjectItemCaseSensitive(root, "toolUseResult");
	if (ui) {
		size_t k = cmv_formats__record_edit_block(&e, ui);
		int64_t bytes = 0;
		if (k != SIZE_MAX && (error = cmv_blob_read(&t->blob, t->repo, &n->blocks[k].blob)) == 0)
			bytes = (int64_t)t->blob.size;
		if (error)
			goto done;
		cmv_trim__rule_add(t, CMV_TRIM_UI_COPIES, 1, bytes, 0);
		cJSON_DeleteItemFromObjectCaseSensitive(root, "toolUseResult");
		changed = true;
	}
	if (is(type, "assistant") && cJSON_GetObjectItemCaseSensitive(msg, "usage")) {
		cmv_trim__rule_add(t, CMV_TRIM_USAGE, 1, 0, 0);
		cJSON_DeleteItemFromObjectCaseSensitive(msg, "usage");
		changed = true;
	}
relink:
	/* children of dropped records hang from what is left */
	for (size_t i = 0; i < CMV_ARRAY_SIZE(uuid_links); i++) {
		const char *p = cmv_formats__cj_str(root, uuid_links[i]), *to = p ? resolve_uuid(t, p) : NULL;
		if (p && to != p) {
			cJSON *nv = to ? cJSON_CreateString(to) : cJSON_CreateNull();
			if (!nv || !cJSON_ReplaceItemInObjectCaseSensitive(root, uuid_links[i], nv)) {
				cJSON_Delete(nv);
				error = cmv_error__oom();
				goto done;
			}
			changed = true;
		}
	}
	if (cmv_formats__cj_str(root, "uuid") && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "isSidechain")))
		snprintf(t->last_uuid, sizeof(t->last_uuid), "%s", cmv_formats__cj_str(root, "uuid"));
	if (!changed) {
		error = cmv_trim__carry(t, n);
	} else {
		cmv_id from[2] = { n->id };
		size_t n_from = 1;
		if (t->n_held && (error = write_holder(&from[1], t)) == 0)
			n_from = 2;
		if (!error)
			error = cmv_formats__record_edit_write(&t->tail, &e, t->repo, cmv_id_is_none(&t->tail) ? NULL : &t->tail, n->role,
						  n->kind, from, n_from);
		t->parent_kept = false;
	}
	if (!error)
		t->rep->records_after++;
done:
	cmv_formats__record_edit_dispose(&e);
	return error;
}
