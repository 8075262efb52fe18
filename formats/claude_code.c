/* SPDX-License-Identifier: MIT */
/*
 * Claude Code session JSONL: lossless import, byte-identical export.
 *
 * Design notes
 *  - Every record of the file becomes a node. User and assistant lines are
 *    messages, and so is an `attachment` that carries `rendered` (what
 *    Claude Code sent the model for it: a skill listing, a nested
 *    CLAUDE.md, hook context) as the role `renderedRole` names; everything
 *    else (progress, system, summary, file-history-snapshot,
 *    queue-operation, pr-link, an attachment from a version that did not
 *    record what it sent, types not seen yet) is an event, never sent to a
 *    model but kept.
 *  - The DAG is the conversation, linearized: a record follows the chain's
 *    tail in file order, so the branch's path holds the results of parallel
 *    tool calls (which Claude Code parents on their tool_use line, off the
 *    path from the newest message) and crosses compaction boundaries. A new
 *    prompt whose parentUuid points at or before an earlier message of the
 *    chain is a rewind: the chain forks there, and the abandoned tail keeps
 *    a branch. Sidechain records hang by their parentUuid, off the chain.
 *  - A record is stored as a template: its exact bytes with the content cut
 *    out. Each cut is a hole, marked by a NUL byte (which cannot occur in
 *    JSON text), and filled from a block's blob on export: a string is
 *    re-escaped exactly as JavaScript's JSON.stringify does (the importer
 *    checks that this gives back the original bytes, and leaves the text
 *    in the template when it does not); tool inputs, array results and the
 *    UI-only toolUseResult are raw JSON. So export is byte-identical, and
 *    the text is stored once, in blobs the pager and search use.
 *  - The file's record order is a session manifest: chunk nodes whose
 *    `includes` edges list up to CHUNK records, and a manifest node that
 *    includes the chunks, named by the session ref "cc/<sessionId>". A
 *    grown file shares every full chunk, so re-importing it adds only its
 *    tail (plus one chunk and one manifest).
 *  - Two JSON objects glued on one line are two records (the separator
 *    between them is empty); a last line cut off mid-write is left out and
 *    picked up by the next import.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include "jscan.h"

#include "neutral.h"

/* ---- import ------------------------------------------------------------- */

/*
 * A new prompt typed by the user: a user record with text that is not a
 * tool result, a meta line or a compaction summary. Only such a record can
 * start a rewind.
 */
static bool is_prompt(const cJSON *j, const char *type)
{
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message"), *content;

	if (!type || strcmp(type, "user") || !cJSON_IsObject(msg) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isMeta")) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isCompactSummary")))
		return false;
	content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	if (cJSON_IsString(content))
		return true;
	for (const cJSON *b = content ? content->child : NULL; b; b = b->next) {
		const char *bt = cmv_formats__cj_str(b, "type");
		if (bt && !strcmp(bt, "tool_result"))
			return false;
	}
	return cJSON_IsArray(content) && content->child;
}

/*
 * The role an `attachment` record was sent to the model as ("user" or
 * "system"), or NULL when it is not one that was sent: older versions
 * record no `rendered` text, and an empty one sends nothing. Claude Code
 * sends attachments as user content unless it says otherwise; a role it
 * names that is neither is not guessed at (the record stays an event).
 * Import and rendering both ask this, so what is counted is what is sent.
 */
static const char *attachment_role(const cJSON *j)
{
	const char *type = cmv_formats__cj_str(j, "type"), *text = cmv_formats__cj_str(j, "rendered"), *role = cmv_formats__cj_str(j, "renderedRole");

	if (!type || strcmp(type, "attachment") || !text || !*text)
		return NULL;
	if (!cmv_formats__cj_get(j, "renderedRole") || (role && !strcmp(role, "user")))
		return "user";
	return role && !strcmp(role, "system") ? "system" : NULL;
}

/* The saved outputs found for one record: their bytes back to back, and each one's call and path. */
typedef struct {
	cmv_buf bytes, paths;
	struct {
		size_t off, path_off;
		const char *tool_id;
	} *items;
	size_t n, cap;
} saved_list;

/* The text of a tool result's content: a string, or an array whose first block is text. */
static const char *result_text(const cJSON *content)
{
	if (cJSON_IsString(content))
		return content->valuestring;
	const cJSON *first = cJSON_IsArray(content) ? content->child : NULL;
	const char *t = cmv_formats__cj_str(first, "type");
	return t && !strcmp(t, "text") ? cmv_formats__cj_str(first, "text") : NULL;
}

/*
 * Each result of a user record sent as a <persisted-output> preview gets
 * its saved file as a `cc_saved_output` block (formats/cc_saved.c): added
 * after the holes are laid out, it has none, so the record's bytes and
 * every rendering stay what they were.
 */
static int add_saved_outputs(record_build *rb, saved_list *sl, cmv_import_result *res, const char *path,
			     const cJSON *msg, const cmv_import_options *opts)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	size_t cap = opts->max_line_bytes ? opts->max_line_bytes : CMV_IMPORT_MAX_LINE_DEFAULT;
	cmv_buf file = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error = 0;

	cmv_buf_clear(&sl->bytes);
	cmv_buf_clear(&sl->paths);
	sl->n = 0;
	if (cap > CMV_BUF_CONTENT)
		cap = CMV_BUF_CONTENT;
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
		const char *bt = cmv_formats__cj_str(b, "type"), *text, *rec_path, *id = cmv_formats__cj_str(b, "tool_use_id");
		size_t plen;
		if (!bt || strcmp(bt, "tool_result") || !(text = result_text(cmv_formats__cj_get(b, "content"))) ||
		    !cmv__cc_persisted(text, strlen(text), NULL, &rec_path, &plen))
			continue;
		if (plen > CMV_FIELD_MAX || !cmv__cc_saved_find(&file, path, text, strlen(text), cap)) {
			res->saved_missing++;
			continue;
		}
		if ((error = cmv__array_grow((void **)&sl->items, &sl->cap, sl->n, sizeof(*sl->items))) < 0)
			break;
		sl->items[sl->n].off = sl->bytes.size;
		sl->items[sl->n].path_off = sl->paths.size;
		sl->items[sl->n].tool_id = id;
		if ((error = cmv_buf_put(&sl->bytes, file.ptr ? file.ptr : "", file.size)) < 0 ||
		    (error = cmv_buf_put(&sl->paths, rec_path, plen)) < 0 || (error = cmv_buf_putc(&sl->paths, '\0')) < 0)
			break;
		sl->n++;
		res->saved_outputs++;
	}
	cmv_buf_dispose(&file);
	/* the bytes are in place now: point the blocks at them */
	for (size_t i = 0; i < sl->n && !error; i++) {
		if ((error = cmv__array_grow((void **)&rb->blocks, &rb->cap_blocks, rb->n_blocks, sizeof(*rb->blocks))) < 0)
			break;
		size_t off = sl->items[i].off, end = i + 1 < sl->n ? sl->items[i + 1].off : sl->bytes.size;
		rb->blocks[rb->n_blocks++] = (cmv_block_content){ .type = "cc_saved_output",
								  .data = sl->bytes.ptr ? sl->bytes.ptr + off : "",
								  .len = end - off,
								  .tool_id = sl->items[i].tool_id,
								  .tool_name = sl->paths.ptr + sl->items[i].path_off,
								  .media_type = "text/plain" };
	}
	return error;
}

static void saved_list_dispose(saved_list *sl)
{
	cmv_buf_dispose(&sl->bytes);
	cmv_buf_dispose(&sl->paths);
	free(sl->items);
}

/* Make the chain the path from `tip` to the root; the depth of its last message in *last_msg. */
static void rebuild_chain(record_list *rl, size_t tip, uint64_t *last_msg)
{
	bool found = false;

	memset(rl->on_chain, 0, rl->n);
	*last_msg = 0;
	for (size_t a = tip; a != SIZE_MAX; a = rl->chain_parent[a]) {
		rl->on_chain[a] = 1;
		if (!found && rl->is_msg[a]) {
			*last_msg = rl->depth[a];
			found = true;
		}
	}
}

/* The first sessionId a record names. */
static int probe_session_id(jspan rec, const cJSON *j, void *payload)
{
	(void)rec;
	if (!cmv_formats__cj_str(j, "sessionId"))
		return 0;
	snprintf(payload, 128, "%s", cmv_formats__cj_str(j, "sessionId"));
	return 1;
}

static int import_claude_code_file_filled(cmv_import_result *out, cmv_repo *repo, const char *path,
				const cmv_import_options *opts)
{
	cmv_import_options defaults = CMV_IMPORT_OPTIONS_INIT;
	cmv_buf file = CMV_BUF_INIT(SESSION_MAX_BYTES), meta = CMV_BUF_INIT(CMV_BUF_CONTENT),
		name = CMV_BUF_INIT(4096);
	record_build rb;
	record_list rl;
	saved_list saved;
	cmv__strmap uuids; /* uuid -> record index */
	size_t tail = SIZE_MAX, *abandoned = NULL, n_abandoned = 0, cap_abandoned = 0;
	uint64_t last_msg_depth = 0;
	cmv_import_result res;
	char session_id[128] = "";
	const char *p, *end, *lead_end;
	size_t lineno = 1;
	int error = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(path);
	if (!opts)
		opts = &defaults;
	cmv_formats__record_build_init(&rb);
	memset(&rl, 0, sizeof(rl));
	memset(&uuids, 0, sizeof(uuids));
	memset(&res, 0, sizeof(res));
	memset(&saved, 0, sizeof(saved));
	cmv_buf_init(&saved.bytes, CMV_BUF_CONTENT);
	cmv_buf_init(&saved.paths, CMV_BUF_CONTENT);
	if ((error = cmv__read_file(&file, path)) < 0)
		goto out;
	/* The session's id, from its first records: a file imported before, unchanged, costs only a hash. */
	session_source src;
	char probe_id[128] = "";
	cmv_formats__session_source_init(&src, file.ptr, file.size);
	cmv_formats__session_probe(file.ptr, file.size, probe_session_id, probe_id);
	if (!probe_id[0] && (error = cmv_formats__branch_name_from_path(&name, path)) == 0)
		snprintf(probe_id, sizeof(probe_id), "%s", name.ptr);
	if (error < 0)
		goto out;
	if (cmv_formats__session_unchanged(out, repo, "claude-code", "cc", probe_id, &src, opts))
		goto out;
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto out;

	p = file.ptr;
	end = file.ptr + file.size;
	lead_end = cmv_formats__jscan_ws(p, end);
	for (const char *q = p; q < lead_end; q++)
		lineno += *q == '\n';
	p = lead_end;
	while (p < end) {
		const char *rec = p, *rec_end = *p == '{' ? cmv_formats__jscan_value(p, end) : NULL;
		cJSON *j = NULL;
		/* cJSON is laxer than JSON (it takes raw control bytes in strings): only what the scanner took is parsed */
		bool scanned = rec_end != NULL;
		if (!rec_end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl) {
				/* the last line, cut off: the session is still being written */
				cmv_formats__session_skip(&res, lineno);
				res.partial_tail = true;
				break;
			}
			rec_end = nl;
		}
		const char *sep = rec_end, *next = cmv_formats__jscan_ws(rec_end, end);
		if ((error = cmv_formats__session_check_size(path, lineno, (size_t)(rec_end - rec), opts)) < 0)
			goto fail;
		if (!scanned || !(j = cJSON_ParseWithLength(rec, (size_t)(rec_end - rec))) || !cJSON_IsObject(j)) {
			cJSON_Delete(j);
			if (!(opts->flags & CMV_IMPORT_LENIENT)) {
				error = cmv_error__set(CMV_EINVALID, "%s:%zu: malformed JSON record", path, lineno);
				goto fail;
			}
			/* kept whole as an opaque event, so export still gives the file back */
			cmv_formats__session_skip(&res, lineno);
			cmv_formats__record_build_reset(&rb, rec);
			cmv_message m = { .role = CMV_ROLE_SYSTEM, .kind = CMV_KIND_EVENT, .meta = meta.ptr };
			cmv_id id;
			if ((error = cmv_formats__record_add_opaque(&rb, (jspan){ rec, rec_end })) < 0 ||
			    (error = cmv_formats__session_meta_build(&meta, "claude-code", rec, (size_t)(rec_end - rec), &rb, sep,
							(size_t)(next - sep))) < 0) {
				cmv_error__prefix("%s:%zu: ", path, lineno);
				goto fail;
			}
			cmv_formats__record_build_finish(&rb);
			m.blocks = rb.blocks;
			m.n_blocks = rb.n_blocks;
			m.meta = meta.ptr;
			m.meta_len = meta.size;
			if ((error = cmv_node_write(&id, repo, tail == SIZE_MAX ? NULL : &rl.ids[tail], &m)) < 0 ||
			    (error = cmv_formats__record_list_push(&rl, &id, tail, true, false)) < 0)
				goto fail;
			tail = rl.n - 1;
			for (const char *q = rec; q < next; q++)
				lineno += *q == '\n';
			p = next;
			continue;
		}
		if (!cmv__utf8_valid(rec, (size_t)(rec_end - rec), NULL)) {
			cJSON_Delete(j);
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: invalid UTF-8", path, lineno);
			goto fail;
		}
		const char *type = cmv_formats__cj_str(j, "type"), *uuid = cmv_formats__cj_str(j, "uuid");
		const char *parent = cmv_formats__cj_str(j, "parentUuid");
		if (!parent)
			parent = cmv_formats__cj_str(j, "logicalParentUuid");
		if (!session_id[0] && cmv_formats__cj_str(j, "sessionId"))
			snprintf(session_id, sizeof(session_id), "%s", cmv_formats__cj_str(j, "sessionId"));
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
		bool is_msg = type && (!strcmp(type, "user") || !strcmp(type, "assistant")) && cJSON_IsObject(msg);
		/* content the model was sent, but not a turn: it takes no part in finding rewinds */
		const char *att_role = attachment_role(j);

		cmv_formats__record_build_reset(&rb, rec);
		jspan recspan = { rec, rec_end }, v, mspan;
		if (is_msg && cmv_formats__jscan_member(&mspan, recspan, "message") == 1 && cmv_formats__jscan_member(&v, mspan, "content") == 1) {
			const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
			error = cmv_formats__cut_anthropic_content(&rb, v, content);
		}
		if (!error && att_role)
			error = cmv_formats__record_add_string(&rb, recspan, "rendered", "text", NULL, NULL);
		if (!error && cmv_formats__jscan_member(&v, recspan, "toolUseResult") == 1)
			error = cmv_formats__record_add_block(&rb, v, "cc_tool_use_result", NULL, NULL, "application/json", 0);
		if (!error)
			error = cmv_formats__session_meta_build(&meta, "claude-code", rec, (size_t)(rec_end - rec), &rb, sep,
						   (size_t)(next - sep));
		if (error) {
			cJSON_Delete(j);
			cmv_error__prefix("%s:%zu: ", path, lineno);
			goto fail;
		}
		cmv_formats__record_build_finish(&rb);
		if (is_msg && !strcmp(type, "user") && (error = add_saved_outputs(&rb, &saved, &res, path, msg, opts)) < 0) {
			cJSON_Delete(j);
			cmv_error__prefix("%s:%zu: ", path, lineno);
			goto fail;
		}

		cmv_message m;
		memset(&m, 0, sizeof(m));
		m.role = att_role ? (!strcmp(att_role, "user") ? CMV_ROLE_USER : CMV_ROLE_SYSTEM)
			 : !is_msg ? CMV_ROLE_SYSTEM : !strcmp(type, "user") ? CMV_ROLE_USER : CMV_ROLE_ASSISTANT;
		m.kind = is_msg || att_role ? CMV_KIND_MESSAGE : CMV_KIND_EVENT;
		m.blocks = rb.blocks;
		m.n_blocks = rb.n_blocks;
		m.meta = meta.ptr;
		m.meta_len = meta.size;
		/*
		 * The record's place in the DAG. Records follow the chain's tail in
		 * file order: parallel tool results (parented on their tool_use
		 * line), events and compaction boundaries included, so the
		 * branch's path is the conversation. A new prompt whose parent is
		 * at or before an earlier message of the chain is a rewind: the
		 * chain forks there and the abandoned tail keeps a branch.
		 * Sidechain records hang by their parentUuid, off the chain.
		 */
		size_t pidx = SIZE_MAX, cparent = tail;
		cmv__strmap_get(&uuids, parent, &pidx, NULL);
		bool sidechain = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isSidechain"));
		if (sidechain) {
			cparent = pidx;
		} else if (pidx != SIZE_MAX && rl.on_chain[pidx] && pidx != tail && is_prompt(j, type) &&
			   last_msg_depth > rl.depth[pidx] && rl.is_msg[pidx]) {
			if ((error = cmv__array_grow((void **)&abandoned, &cap_abandoned, n_abandoned, sizeof(*abandoned))) < 0) {
				cJSON_Delete(j);
				goto fail;
			}
			abandoned[n_abandoned++] = tail;
			cparent = pidx;
			rebuild_chain(&rl, pidx, &last_msg_depth);
		}
		cmv_id id;
		if ((error = cmv_node_write(&id, repo, cparent == SIZE_MAX ? NULL : &rl.ids[cparent], &m)) < 0) {
			cJSON_Delete(j);
			cmv_error__prefix("%s:%zu: ", path, lineno);
			goto fail;
		}
		if ((error = cmv_formats__record_list_push(&rl, &id, cparent, !sidechain, is_msg)) < 0 ||
		    (uuid && (error = cmv__strmap_put(&uuids, uuid, rl.n - 1, NULL)) < 0)) {
			cJSON_Delete(j);
			goto fail;
		}
		if (!sidechain) {
			tail = rl.n - 1;
			if (is_msg)
				last_msg_depth = rl.depth[tail];
		}
		cJSON_Delete(j);
		res.records++;
		for (const char *q = rec; q < next; q++)
			lineno += *q == '\n';
		p = next;
		if (opts->progress && opts->progress(res.records, opts->progress_payload)) {
			error = cmv_error__set(CMV_EUSER, "%s: import cancelled", path);
			goto fail;
		}
	}
	if (!rl.n) {
		error = cmv_error__set(CMV_EINVALID, "%s: no records to import", path);
		goto fail;
	}
	if (!session_id[0]) {
		/* old files may lack it on every line: name the session after the file */
		if ((error = cmv_formats__branch_name_from_path(&name, path)) < 0)
			goto fail;
		snprintf(session_id, sizeof(session_id), "%s", name.ptr);
	}

	/*
	 * The conversation is a branch at the chain's tail; each abandoned tail
	 * (a rewind) keeps a branch NAME.2, NAME.3, ... in file order, which
	 * stays stable as the file grows.
	 */
	src.records = res.records;
	if ((error = cmv_formats__session_finish(&res, repo, path, "claude-code", "cc", session_id, &rl, tail, abandoned,
				    n_abandoned, file.ptr, (size_t)(lead_end - file.ptr), &src, opts)) < 0 ||
	    (error = cmv_repo_txn_commit(repo)) < 0)
		goto fail;
	*out = res;
	goto out;
fail:
	cmv_repo_txn_rollback(repo);
out:
	cmv_formats__record_build_dispose(&rb);
	cmv_formats__record_list_dispose(&rl);
	saved_list_dispose(&saved);
	free(abandoned);
	cmv__strmap_dispose(&uuids);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&meta);
	cmv_buf_dispose(&name);
	return error;
}

int cmv_import_claude_code_file(cmv_import_result *out, cmv_repo *repo, const char *path,
				const cmv_import_options *opts)
{
	int error = import_claude_code_file_filled(out, repo, path, opts);
	if (out)
		out->version = CMV_IMPORT_RESULT_VERSION;
	return error;
}

/* ---- reading back for rendering (formats.md §1.9) ------------------------- */

/*
 * What Claude Code sends in place of a result its microcompaction cleared
 * (the session file keeps the original; the stub's text is not recorded
 * there, and a few tokens either way do not matter beside the results).
 */
#define CC_CLEARED_RESULT "[Old tool result content cleared]"

/*
 * A microcompact_boundary: from there on the running Claude Code sends the
 * results of the listed tool calls as a stub (formats.md §1.9, rule 3).
 * Only the calibration's reading of what was billed renders them so
 * (CMV__RENDER_STUB_CLEARED); a resumed Claude Code sends them whole, and
 * so does every other rendering.
 */
static void cc_microcompact(conv *c, const cJSON *rec)
{
	const cJSON *ids = cmv_formats__cj_get(cmv_formats__cj_get(rec, "microcompactMetadata"), "compactedToolIds");
	if (c->keep_all || !c->stub_cleared || !cJSON_IsArray(ids))
		return;
	for (const cJSON *m = c->messages ? c->messages->child : NULL; m; m = m->next)
		for (cJSON *b = cJSON_GetArrayItem(cmv_formats__cj_get(m, "content"), 0); b; b = b->next) {
			const char *id = cmv_formats__cj_str(b, "tool_use_id");
			bool listed = false;
			if (!id || strcmp(cmv_formats__btype(b), "tool_result"))
				continue;
			for (const cJSON *x = ids->child; x && !listed; x = x->next)
				listed = cJSON_IsString(x) && !strcmp(x->valuestring, id);
			if (!listed)
				continue;
			cJSON *stub = cJSON_CreateString(CC_CLEARED_RESULT);
			bool had = cJSON_GetObjectItemCaseSensitive(b, "content") != NULL;
			if (!stub || !(had ? cJSON_ReplaceItemInObjectCaseSensitive(b, "content", stub)
					   : cJSON_AddItemToObject(b, "content", stub))) {
				cJSON_Delete(stub);
				c->oom = true;
			}
		}
}

int cmv__cc_neutral(conv *c, const cJSON *rec)
{
	const char *type = cmv_formats__cj_str(rec, "type");
	const cJSON *msg = cmv_formats__cj_get(rec, "message");

	if (!type || cJSON_IsTrue(cmv_formats__cj_get(rec, "isSidechain")))
		return 0;
	if (!strcmp(type, "system")) {
		const char *sub = cmv_formats__cj_str(rec, "subtype");
		if (sub && !strcmp(sub, "compact_boundary")) {
			cmv_formats__conv_reset(c); /* the summary that follows is what the model sees */
			c->after_boundary = true;
		} else if (sub && !strcmp(sub, "microcompact_boundary"))
			cc_microcompact(c, rec);
		return 0;
	}
	const char *att_role = attachment_role(rec);
	if (att_role) {
		/* sent in its place: as user content (merged with its neighbours by repair), or as a system prompt */
		if (!strcmp(att_role, "system"))
			cmv_formats__conv_system(c, cmv_formats__cj_str(rec, "rendered"));
		else
			cmv_formats__nb_text(c, cmv_formats__conv_msg(c, "user", NULL), cmv_formats__cj_str(rec, "rendered"));
		return 0;
	}
	if ((strcmp(type, "user") && strcmp(type, "assistant")) || !cJSON_IsObject(msg))
		return 0;
	const char *model = cmv_formats__cj_str(msg, "model");
	if (cJSON_IsTrue(cmv_formats__cj_get(rec, "isApiErrorMessage")) || (model && !strcmp(model, "<synthetic>")))
		return 0; /* written by Claude Code, never by the model */
	/*
	 * Older files have no boundary line before the summary. After a
	 * boundary, what came between it and the summary (attachments Claude
	 * Code re-sends) is not a second compaction.
	 */
	if (cJSON_IsTrue(cmv_formats__cj_get(rec, "isCompactSummary")) && !c->after_boundary &&
	    cJSON_GetArraySize(c->messages) > 0 && !c->keep_all)
		cmv_formats__conv_reset(c);
	c->after_boundary = false;
	/* one API message is spread over several lines that share message.id */
	return cmv_formats__anthropic_message_neutral(c, msg, type[0] == 'a' ? (cmv_formats__cj_str(msg, "id") ? cmv_formats__cj_str(msg, "id") : "") : NULL);
}

/* ---- writing a branch as a new Claude Code session ------------------------- */

int cmv__uuid_v4(char out[37])
{
	unsigned char b[16];
	FILE *fp = fopen("/dev/urandom", "rb");
	if (!fp || fread(b, 1, sizeof(b), fp) != sizeof(b)) {
		if (fp)
			fclose(fp);
		return cmv_error__set(CMV_EIO, "cannot read /dev/urandom for a session id");
	}
	fclose(fp);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
		 b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* Copy a record, with every "sessionId":"..." naming the new session. */
static int put_renamed(cmv_buf *out, const char *rec, size_t len, const char *new_id)
{
	static const char key[] = "\"sessionId\":\"";
	const char *p = rec, *end = rec + len;
	int error;

	while (p < end) {
		const char *hit = NULL;
		for (const char *q = p; q + sizeof(key) - 1 <= end; q++)
			if (*q == '"' && !memcmp(q, key, sizeof(key) - 1)) {
				hit = q;
				break;
			}
		if (!hit)
			return cmv_buf_put(out, p, (size_t)(end - p));
		const char *v = hit + sizeof(key) - 1, *close = memchr(v, '"', (size_t)(end - v));
		if (!close)
			return cmv_buf_put(out, p, (size_t)(end - p));
		if ((error = cmv_buf_put(out, p, (size_t)(v - p))) < 0 || (error = cmv_buf_puts(out, new_id)) < 0)
			return error;
		p = close;
	}
	return 0;
}

/* A message appended in cmv (no source line): a Claude Code line of its own. */
static int synth_line(cmv_buf *out, cmv_repo *repo, const cmv_node *n, const char *parent_uuid, const char *uuid,
		      const char *session_id, const char *cwd)
{
	cmv_buf blob = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cJSON *o = cJSON_CreateObject(), *msg, *content;
	char *text = NULL;
	int error = 0;
	bool asst = n->role == CMV_ROLE_ASSISTANT;

	if (!o || !(parent_uuid ? cJSON_AddStringToObject(o, "parentUuid", parent_uuid) : cJSON_AddNullToObject(o, "parentUuid")) ||
	    !cJSON_AddFalseToObject(o, "isSidechain") || !cJSON_AddStringToObject(o, "userType", "external") ||
	    !cJSON_AddStringToObject(o, "cwd", cwd ? cwd : "") || !cJSON_AddStringToObject(o, "sessionId", session_id) ||
	    !cJSON_AddStringToObject(o, "type", asst ? "assistant" : "user") ||
	    !(msg = cJSON_AddObjectToObject(o, "message")) || !cJSON_AddStringToObject(msg, "role", asst ? "assistant" : "user") ||
	    !(content = cJSON_AddArrayToObject(msg, "content"))) {
		error = cmv_error__oom();
		goto done;
	}
	for (size_t i = 0; i < n->n_blocks && !error; i++) {
		const cmv_block *b = &n->blocks[i];
		cJSON *blk;
		if ((error = cmv_blob_read(&blob, repo, &b->blob)) < 0)
			break;
		if (!(blk = cJSON_CreateObject()) || !cJSON_AddItemToArray(content, blk)) {
			cJSON_Delete(blk);
			error = cmv_error__oom();
			break;
		}
		if (!strcmp(b->type, "tool_use")) {
			cJSON *in = cJSON_Parse(blob.ptr);
			cJSON_AddStringToObject(blk, "type", "tool_use");
			cJSON_AddStringToObject(blk, "id", b->tool_id ? b->tool_id : "");
			cJSON_AddStringToObject(blk, "name", b->tool_name ? b->tool_name : "");
			cJSON_AddItemToObject(blk, "input", cJSON_IsObject(in) ? in : cJSON_CreateObject());
			if (!cJSON_IsObject(in))
				cJSON_Delete(in);
		} else if (!strcmp(b->type, "tool_result")) {
			cJSON_AddStringToObject(blk, "type", "tool_result");
			cJSON_AddStringToObject(blk, "tool_use_id", b->tool_id ? b->tool_id : "");
			cJSON_AddStringToObject(blk, "content", blob.ptr);
		} else {
			cJSON_AddStringToObject(blk, "type", "text");
			cJSON_AddStringToObject(blk, "text", blob.ptr);
		}
	}
	if (!error && (!cJSON_AddStringToObject(o, "uuid", uuid) || !(text = cJSON_PrintUnformatted(o))))
		error = cmv_error__oom();
	if (!error)
		error = cmv_buf_puts(out, text);
done:
	cJSON_free(text);
	cJSON_Delete(o);
	cmv_buf_dispose(&blob);
	return error;
}

typedef struct {
	const char *new_id;
	char last_uuid[128];
	cmv_buf *cwd_out;
	cmv__strmap written; /* the uuids of the lines written so far */
} cc_rewrite;

static int cc_rewrite_record(cmv_buf *out, const char *rec, size_t len, void *payload)
{
	cc_rewrite *r = payload;
	cJSON *j = cJSON_ParseWithLength(rec, len);
	cmv_buf relinked = CMV_BUF_INIT(SESSION_MAX_BYTES);
	const char *parent = cmv_formats__cj_str(j, "parentUuid");
	jspan v;
	int error = 0;

	/*
	 * A record whose parent is not in the file (it was summarized away by a
	 * compaction, or dropped) hangs from the line before it: Claude Code
	 * resumes along the uuid chain, and a gap would cut the chain there.
	 */
	if (parent && !cmv__strmap_get(&r->written, parent, NULL, NULL) &&
	    cmv_formats__jscan_member(&v, (jspan){ rec, rec + len }, "parentUuid") == 1) {
		/* with no line before it, it is the root */
		if ((error = cmv_buf_put(&relinked, rec, (size_t)(v.p - rec))) == 0 &&
		    (error = r->last_uuid[0] ? cmv_buf_printf(&relinked, "\"%s\"", r->last_uuid)
					     : cmv_buf_puts(&relinked, "null")) == 0)
			error = cmv_buf_put(&relinked, v.end, (size_t)(rec + len - v.end));
		if (!error) {
			rec = relinked.ptr;
			len = relinked.size;
		}
	}
	if (!error && cmv_formats__cj_str(j, "uuid")) {
		snprintf(r->last_uuid, sizeof(r->last_uuid), "%s", cmv_formats__cj_str(j, "uuid"));
		error = cmv__strmap_put(&r->written, cmv_formats__cj_str(j, "uuid"), 0, NULL);
	}
	if (r->cwd_out && cmv_formats__cj_str(j, "cwd") && !r->cwd_out->size)
		cmv_buf_puts(r->cwd_out, cmv_formats__cj_str(j, "cwd"));
	cJSON_Delete(j);
	if (!error)
		error = put_renamed(out, rec, len, r->new_id);
	cmv_buf_dispose(&relinked);
	return error;
}

static int cc_rewrite_message(cmv_buf *out, cmv_repo *repo, const cmv_node *n, void *payload)
{
	cc_rewrite *r = payload;
	char uuid[37];
	int error;
	if ((error = cmv__uuid_v4(uuid)) < 0 ||
	    (error = synth_line(out, repo, n, r->last_uuid[0] ? r->last_uuid : NULL, uuid, r->new_id,
				r->cwd_out ? r->cwd_out->ptr : NULL)) < 0)
		return error;
	snprintf(r->last_uuid, sizeof(r->last_uuid), "%s", uuid);
	return cmv__strmap_put(&r->written, uuid, 0, NULL);
}

/* The path as a Claude Code session under `session_id` (written into every line). */
static int cc_write(cmv_buf *out, const char *session_id, cmv_buf *cwd_out, cmv_repo *repo, const cmv_id *tip)
{
	static const session_rewriter w = { "claude-code", "Claude Code", cc_rewrite_record, cc_rewrite_message };
	cc_rewrite r = { session_id, "", cwd_out, { 0 } };
	int error = cmv_formats__session_rewrite(out, repo, tip, &w, &r);
	cmv__strmap_dispose(&r.written);
	return error;
}

int cmv_claude_session_write(cmv_buf *out, char new_id[37], cmv_buf *cwd_out, cmv_repo *repo, const cmv_id *tip)
{
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	if ((error = cmv__uuid_v4(new_id)) < 0)
		return error;
	return cc_write(out, new_id, cwd_out, repo, tip);
}

int cmv_claude_session_write_as(cmv_buf *out, const char *session_id, cmv_repo *repo, const cmv_id *tip)
{
	size_t n = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(session_id);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	/* it goes into every line, unescaped: only the characters a session id has */
	for (; session_id[n]; n++)
		if (!isalnum((unsigned char)session_id[n]) && session_id[n] != '-' && session_id[n] != '_')
			break;
	if (!n || n > 36 || session_id[n])
		return cmv_error__set(CMV_EINVALID, "'%s' is not a Claude Code session id", session_id);
	return cc_write(out, session_id, NULL, repo, tip);
}
