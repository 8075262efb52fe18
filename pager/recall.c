/* SPDX-License-Identifier: MIT */
/*
 * Recall: the content a stub names, read back by its id (cmv_recall, and
 * the tool a model calls for it), and recall --query, which answers from
 * the branch's kept query index when it has one and loads the branch when
 * not.
 *
 * A stub's id is a blob the final rendering stored, so recall by id is a
 * blob read and depends on nothing the pager decides. A query answered
 * from the kept index must print what the loaded branch would: each turn
 * read alone is checked against its page id (cmv_pager__load_turn), and any
 * doubt (or memory short on the index's way) sends the query to the load
 * path instead of answering otherwise.
 */
#include <cjson/cJSON.h>
#include <string.h>
#include "pager_priv.h"
#include "tok/tok_int.h"

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/* A turn's messages as plain lines: "role: text", calls and results marked. */
static void turn_text(cmv_buf *out, const cJSON *msgs, size_t from, size_t to)
{
	size_t i = 0;
	for (const cJSON *m = msgs->child; m; m = m->next, i++) {
		if (i < from || i >= to)
			continue;
		const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		if (cJSON_IsString(content)) {
			cmv_buf_printf(out, "%s: %s\n", role ? role : "?", content->valuestring);
			continue;
		}
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
			const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			if (is(t, "text")) {
				cmv_buf_printf(out, "%s: %s\n", role ? role : "?",
					       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "text")));
			} else if (is(t, "tool_use")) {
				char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
				cmv_buf_printf(out, "%s calls %s %s\n", role ? role : "?",
					       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name")), in ? in : "");
				cJSON_free(in);
			} else if (is(t, "tool_result")) {
				char *r = cmv_pager__body_text(cJSON_GetObjectItemCaseSensitive(b, "content"));
				cmv_buf_printf(out, "result: %s\n", r ? r : "");
				cJSON_free(r);
			}
		}
	}
}

/*
 * The set-up every query shares: p for the model (its counts memoized),
 * qi empty, the render target, and one transaction for the many reads.
 */
static int query_begin(pager *p, qindex *qi, cmv_render_target *target, cmv_repo *repo, const cmv_model *model,
		       cmv_tok *tok)
{
	int error;
	memset(p, 0, sizeof(*p));
	memset(qi, 0, sizeof(*qi));
	p->repo = repo;
	p->model = model;
	p->tok = tok;
	*target = cmv_pager__target_of(model, 0);
	cmv__tok_memo(tok, true);
	cmv_buf_init(&p->scratch, 1 << 16);
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		cmv_buf_dispose(&p->scratch);
	return error;
}

/*
 * The load path: the branch loaded and paged, qi its index, kept for the
 * next query when a branch is named (a read-only store keeps none, and each
 * query loads the branch). 1 when loaded, 0 for a branch with no message.
 */
static int query_load(qindex *qi, pager *p, cmv_repo *repo, const cmv_id *tip, const char *branch,
		      const cmv_model *model, cmv_render_target target)
{
	int error;
	if ((error = cmv__conversation_load(&p->cv, repo, tip, target, 0)) < 0 ||
	    !cJSON_GetArraySize(p->cv.msgs))
		return error;
	p->lazy_ids = !branch;
	if ((error = cmv_pager__pages(p)) < 0 || (error = cmv_pager__qindex_of(qi, p)) < 0)
		return error;
	if (branch) {
		if ((error = cmv_pager__qindex_seam(qi, repo, tip, target, NULL, p->cv.msgs, 0)) < 0)
			return error;
		cmv_id_tostr(qi->tip, sizeof(qi->tip), tip);
		if (cmv_pager__qindex_put(repo, branch, model, target, qi, true) < 0)
			cmv_error_clear();
	}
	return 1;
}

/*
 * Turn g (page pg) read alone from its records, up to the parent of the
 * next turn's first record: 1 when it reads as the index says, 0 when not
 * (the caller loads the branch instead).
 */
static int turn_alone(cmv__conversation *cv, const qindex *qi, size_t g, size_t pg, cmv_repo *repo, const cmv_id *tip,
		      cmv_render_target target)
{
	cmv_id last = *tip;
	if (g + 1 < qi->n_turns) {
		cmv_node *next = NULL;
		cmv_id nid;
		if (!qi->nodes[g + 1][0] || cmv_id_fromstr(&nid, qi->nodes[g + 1]) < 0 ||
		    cmv_node_read(&next, repo, &nid) < 0) {
			cmv_error_clear();
			return 0;
		}
		last = next->parent;
		cmv_node_free(next);
	}
	return cmv_pager__load_turn(cv, repo, qi->nodes[g], &last, target, qi->ids[pg]);
}

/* A body page the query took, under the line that names it. */
static int recall_body(cmv_buf *out, cmv_repo *repo, size_t g, uint64_t tokens, const char *id)
{
	cmv_buf blob = CMV_BUF_INIT((size_t)1 << 30);
	int error;
	if ((error = cmv_recall(&blob, repo, id)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
		cmv_buf_puts(&blob, "(not stored: materialize the branch first)");
	}
	if (!error)
		cmv_buf_printf(out, "[turn %zu, %llu tokens; page %.7s]\n%s\n", g, (unsigned long long)tokens, id,
			       blob.ptr ? blob.ptr : "");
	cmv_buf_dispose(&blob);
	return error;
}

/*
 * What the query took, in conversation order, each page under a line that
 * names it. The turns come from p (the branch, loaded) or, with p NULL,
 * are read alone from their records: 0 then when one does not read as the
 * index says (the caller loads the branch instead).
 */
static int recall_print(cmv_buf *out, size_t *shown, const qindex *qi, const bool *hit, pager *p, cmv_repo *repo,
			const cmv_id *tip, cmv_render_target target)
{
	int error = 0;
	for (size_t g = 0, b = 0; g < qi->n_turns && !error; g++) {
		size_t pg = qi->n_bodies + g, end = g + 1 < qi->n_turns ? qi->turn_first[g + 1] : qi->n_msgs;
		for (; !hit[pg] && b < qi->n_bodies && qi->body_msg[b] < end; b++)
			if (hit[b] && (error = recall_body(out, repo, g, qi->tokens[b], qi->ids[b])) == 0)
				(*shown)++;
		if (!hit[pg] || error)
			continue;
		while (b < qi->n_bodies && qi->body_msg[b] < end)
			b++;
		if (p) {
			char id[CMV_ID_HEXSZ + 1];
			if ((error = cmv_pager__group_id(id, cJSON_GetArrayItem(p->cv.msgs, (int)qi->turn_first[g]), end - qi->turn_first[g])) < 0)
				break;
			cmv_buf_printf(out, "[turn %zu, %llu tokens; page %.7s]\n", g, (unsigned long long)qi->tokens[pg], id);
			turn_text(out, p->cv.msgs, qi->turn_first[g], end);
		} else {
			cmv__conversation cv;
			int ok = turn_alone(&cv, qi, g, pg, repo, tip, target);
			if (ok <= 0)
				return ok;
			cmv_buf_printf(out, "[turn %zu, %llu tokens; page %.7s]\n", g, (unsigned long long)qi->tokens[pg],
				       qi->ids[pg]);
			turn_text(out, cv.msgs, 0, SIZE_MAX);
			cmv__conversation_dispose(&cv);
		}
		(*shown)++;
	}
	return error < 0 ? error : 1;
}

int cmv_recall_query(cmv_buf *out, size_t *n_pages, cmv_repo *repo, const cmv_id *tip, const char *branch,
		     const cmv_model *model, cmv_tok *tok, const char *query, uint64_t budget)
{
	cmv_render_target target;
	pager p;
	qindex qi;
	bool *pinned = NULL, *hit = NULL;
	int error, done = 0;
	size_t shown = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	CMV_ASSERT_ARG(query);
	cmv_buf_clear(out);
	if ((error = query_begin(&p, &qi, &target, repo, model, tok)) < 0)
		return error;
	/*
	 * The branch's index, when it keeps one: no load, each turn taken read
	 * alone. Memory short on its way (an index of made-up sizes, or truly
	 * short) sends the query to the load path, which says which.
	 */
	if (branch && (error = cmv_pager__qindex_get(&qi, repo, branch, tip, model, tok, target)) > 0) {
		size_t n = qi.n_bodies + qi.n_turns;
		if (!(pinned = cmv__calloc(n + 1, sizeof(bool))) || !(hit = cmv__calloc(n + 1, sizeof(bool))))
			error = cmv_error__oom();
		else if ((error = cmv_pager__qindex_query(&qi, repo, query, budget, pinned, hit)) == 0 &&
			 (error = done = recall_print(out, &shown, &qi, hit, NULL, repo, tip, target)) == 0) {
			cmv_buf_clear(out);
			shown = 0;
		}
		if (done > 0)
			cmv__pager_qread++;
		if (error == CMV_ENOMEM) {
			cmv_error_clear();
			cmv_buf_clear(out);
			shown = 0;
			error = done = 0;
		}
		cmv_pager__qindex_dispose(&qi);
		free(pinned);
		free(hit);
		pinned = hit = NULL;
	}
	/* else the branch, loaded (no message is no match); its index kept for the next query */
	if (error >= 0 && !done && (error = query_load(&qi, &p, repo, tip, branch, model, target)) > 0) {
		size_t n = qi.n_bodies + qi.n_turns;
		if (!(pinned = cmv__calloc(n + 1, sizeof(bool))) || !(hit = cmv__calloc(n + 1, sizeof(bool))))
			error = cmv_error__oom();
		else if ((error = cmv_pager__qindex_query(&qi, repo, query, budget, pinned, hit)) == 0)
			error = recall_print(out, &shown, &qi, hit, &p, repo, tip, target);
		if (error > 0)
			error = 0;
	}
	if (n_pages)
		*n_pages = shown;
	if (error < 0)
		cmv_repo_txn_rollback(repo);
	else
		error = cmv_repo_txn_commit(repo);
	cmv_pager__qindex_dispose(&qi);
	free(pinned);
	free(hit);
	cmv_pager__dispose(&p);
	return error;
}

int cmv_recall(cmv_buf *out, cmv_repo *repo, const char *id)
{
	cmv_object_type type;
	cmv_id oid;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(id);
	if ((error = cmv_resolve_object(&oid, &type, repo, id)) < 0)
		return error;
	if (type != CMV_OBJ_BLOB)
		return cmv_error__set(CMV_EINVALID, "'%s' is a node, not the content a stub names", id);
	return cmv_blob_read(out, repo, &oid);
}

/*
 * A stub for several runs of evicted turns names an index of the runs, each
 * with the id of its turns: the model asked for the turns, so it gets them
 * in the one call, each run's messages under its turn numbers (one recall,
 * never two). Anything else is left as it was read.
 */
static int expand_index(cmv_buf *out, cmv_repo *repo)
{
	static const char head[] = "{\"paged_out\":[";
	cmv_buf run = CMV_BUF_INIT(CMV_BUF_CONTENT), all = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cJSON *index;
	int error = 0;

	if (out->size < sizeof(head) - 1 || memcmp(out->ptr, head, sizeof(head) - 1))
		return 0;
	if (!(index = cJSON_ParseWithLength(out->ptr, out->size)))
		return 0;
	const cJSON *runs = cJSON_GetObjectItemCaseSensitive(index, "paged_out");
	for (const cJSON *r = runs ? runs->child : NULL; r && !error; r = r->next) {
		const char *rid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "recall"));
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "turns");
		if (!rid || cJSON_GetArraySize(t) != 2)
			continue;
		if ((error = cmv_recall(&run, repo, rid)) < 0)
			break;
		error = cmv_buf_printf(&all, "%s{\"turns\":[%d,%d],\"messages\":%s}", all.size ? "," : "[",
				       (int)cJSON_GetArrayItem(t, 0)->valuedouble, (int)cJSON_GetArrayItem(t, 1)->valuedouble,
				       run.ptr);
	}
	if (!error && all.size && (error = cmv_buf_putc(&all, ']')) == 0)
		error = cmv_buf_set(out, all.ptr, all.size);
	cJSON_Delete(index);
	cmv_buf_dispose(&run);
	cmv_buf_dispose(&all);
	return error;
}

int cmv_recall_runs(cmv_buf *out, cmv_repo *repo, const char *id)
{
	int error = cmv_recall(out, repo, id);
	return error < 0 ? error : expand_index(out, repo);
}

int cmv_recall_tool_answer(cmv_buf *out, cmv_repo *repo, const char *input, size_t len)
{
	cJSON *in;
	const char *id;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(input);
	in = cJSON_ParseWithLength(input, len);
	id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "id"));
	cmv_buf_clear(out);
	if (!id || !cmv_id_is_prefix(id)) {
		cJSON_Delete(in);
		error = cmv_buf_puts(out, "error: cmv_recall takes {\"id\": \"...\"}, the 7 or more hex digits a stub shows");
		return error < 0 ? error : 1;
	}
	error = cmv_recall(out, repo, id);
	if (error == CMV_ENOTFOUND || error == CMV_EAMBIGUOUS || error == CMV_EINVALID) {
		/* the model's mistake: it gets told, the host goes on */
		char msg[256];
		snprintf(msg, sizeof(msg), "error: %s", cmv_error_last() ? cmv_error_last()->message : "no such page");
		cmv_error_clear();
		cJSON_Delete(in);
		cmv_buf_clear(out);
		error = cmv_buf_puts(out, msg);
		return error < 0 ? error : 1;
	}
	cJSON_Delete(in);
	if (error == 0)
		error = expand_index(out, repo);
	return error;
}

int cmv_recall_tool_schema(cmv_buf *out, const char *format)
{
	static const char desc[] =
		"Bring back content that was paged out of this conversation to save room. A stub such as "
		"\"[2199 chars, 49 lines; recall cd29840]\" or \"[3 turns paged out; recall "
		"ab12cd3]\" stands where it was; call this with the id after 'recall' to read it whole.";
	static const char params[] =
		"{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"description\":\"the id a stub "
		"shows after 'recall' (7 or more hex digits)\"}},\"required\":[\"id\"]}";
	cJSON *o = cJSON_CreateObject(), *schema = cJSON_Parse(params), *fn;
	char *text = NULL;
	int error = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(format);
	if (!o || !schema) {
		error = cmv_error__oom();
	} else if (!strcmp(format, "anthropic")) {
		cJSON_AddStringToObject(o, "name", "cmv_recall");
		cJSON_AddStringToObject(o, "description", desc);
		cJSON_AddItemToObject(o, "input_schema", schema);
		schema = NULL;
	} else if (!strcmp(format, "openai")) {
		cJSON_AddStringToObject(o, "type", "function");
		fn = cJSON_AddObjectToObject(o, "function");
		cJSON_AddStringToObject(fn, "name", "cmv_recall");
		cJSON_AddStringToObject(fn, "description", desc);
		cJSON_AddItemToObject(fn, "parameters", schema);
		schema = NULL;
	} else {
		error = cmv_error__set(CMV_EINVALID, "no tool schema format '%s' (anthropic, openai)", format);
	}
	if (!error && !(text = cJSON_Print(o)))
		error = cmv_error__oom();
	if (!error) {
		cmv_buf_clear(out);
		error = cmv_buf_puts(out, text);
	}
	cJSON_free(text);
	cJSON_Delete(schema);
	cJSON_Delete(o);
	return error;
}

/* ---- the query's pages, ranked, for a search index (cmv_query_pages) ---------------- */

void cmv_query_hits_free(cmv_query_hit *hits, size_t n)
{
	for (size_t i = 0; hits && i < n; i++)
		free(hits[i].text);
	free(hits);
}

/*
 * Keep a turn's messages as the blob its page id names (the bytes
 * cmv_pager__group_id hashes), so that recall by that id gives the turn
 * back as it does after a materialization paged it out.
 */
static int turn_keep(cmv_repo *repo, const cJSON *first, size_t n)
{
	cmv_buf s = CMV_BUF_INIT((size_t)1 << 30);
	cmv_id id;
	int error = cmv_buf_puts(&s, "[");
	for (const cJSON *m = first; m && n && !error; m = m->next, n--) {
		char *t = cJSON_PrintUnformatted(m);
		if (!t)
			error = cmv_error__oom();
		else
			error = cmv_buf_printf(&s, "%s%s", m == first ? "" : ",", t);
		cJSON_free(t);
	}
	if (!error && (error = cmv_buf_puts(&s, "]")) == 0)
		error = cmv_blob_write(&id, repo, s.ptr, s.size);
	cmv_buf_dispose(&s);
	return error;
}

/* A body's turn. */
static size_t body_turn_of(const qindex *qi, size_t k)
{
	size_t lo = 0, hi = qi->n_turns;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (qi->turn_first[mid] <= qi->body_msg[k])
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The text of each page in order[] (bodies read as blobs; turns from p, or
 * with p NULL read alone: 0 when one does not read as the index says).
 */
static int hits_fill(cmv_query_hit *hits, const qindex *qi, const size_t *order, size_t n, pager *p, cmv_repo *repo,
		     const cmv_id *tip, cmv_render_target target)
{
	for (size_t k = 0; k < n; k++) {
		size_t pg = order[k], g;
		cmv_query_hit *h = &hits[k];
		cmv_buf text = CMV_BUF_INIT((size_t)1 << 30);
		int error = 0;
		g = pg < qi->n_bodies ? body_turn_of(qi, pg) : pg - qi->n_bodies;
		size_t end = g + 1 < qi->n_turns ? qi->turn_first[g + 1] : qi->n_msgs;
		h->kind = pg < qi->n_bodies ? CMV_PAGE_BODY : CMV_PAGE_GROUP;
		h->turn = g;
		h->turns = qi->n_turns;
		h->tokens = qi->tokens[pg];
		snprintf(h->node, sizeof(h->node), "%s", qi->nodes[g]);
		snprintf(h->id, sizeof(h->id), "%s", qi->ids[pg]);
		if (pg < qi->n_bodies) {
			cmv_id oid;
			if ((error = cmv_id_fromstr(&oid, qi->ids[pg])) == 0 && (error = cmv_blob_read(&text, repo, &oid)) == CMV_ENOTFOUND) {
				cmv_error_clear();
				error = cmv_buf_puts(&text, "(not stored: materialize the branch first)");
			}
		} else if (p) {
			const cJSON *first = cJSON_GetArrayItem(p->cv.msgs, (int)qi->turn_first[g]);
			if ((error = cmv_pager__group_id(h->id, first, end - qi->turn_first[g])) == 0 &&
			    (error = turn_keep(repo, first, end - qi->turn_first[g])) == 0)
				turn_text(&text, p->cv.msgs, qi->turn_first[g], end);
		} else {
			cmv__conversation cv;
			int ok = turn_alone(&cv, qi, g, pg, repo, tip, target);
			if (ok <= 0) {
				cmv_buf_dispose(&text);
				return ok;
			}
			if ((error = turn_keep(repo, cv.msgs->child, (size_t)cJSON_GetArraySize(cv.msgs))) == 0)
				turn_text(&text, cv.msgs, 0, SIZE_MAX);
			cmv__conversation_dispose(&cv);
		}
		if (error < 0) {
			cmv_buf_dispose(&text);
			return error;
		}
		free(h->text);
		h->text = cmv_buf_detach(&text);
		if (!h->text)
			return cmv_error__oom();
	}
	return 1;
}

int cmv_query_pages(cmv_query_hit **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip, const char *branch,
		    const cmv_model *model, cmv_tok *tok, const char *query, uint64_t allowance)
{
	cmv_render_target target;
	pager p;
	qindex qi;
	bool *pinned = NULL, *hit = NULL;
	size_t *order = NULL, n_order = 0;
	cmv_query_hit *hits = NULL;
	int error, done = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(n_out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	CMV_ASSERT_ARG(query);
	*out = NULL;
	*n_out = 0;
	if ((error = query_begin(&p, &qi, &target, repo, model, tok)) < 0)
		return error;
	/* as cmv_recall_query: the kept index when there is one, and any doubt sends it to the load path */
	for (int pass = 0; pass < 2 && error >= 0 && !done; pass++) {
		bool kept = false;
		if (pass == 0) {
			if (!branch || (error = cmv_pager__qindex_get(&qi, repo, branch, tip, model, tok, target)) <= 0)
				continue;
			kept = true;
		} else if ((error = query_load(&qi, &p, repo, tip, branch, model, target)) <= 0) {
			break;
		}
		size_t n = qi.n_bodies + qi.n_turns;
		free(pinned);
		free(hit);
		free(order);
		cmv_query_hits_free(hits, n_order);
		hits = NULL;
		n_order = 0;
		if (!(pinned = cmv__calloc(n + 1, sizeof(bool))) || !(hit = cmv__calloc(n + 1, sizeof(bool))) ||
		    !(order = cmv__calloc(n + 1, sizeof(size_t))) || !(hits = cmv__calloc(n + 1, sizeof(*hits))))
			error = cmv_error__oom();
		else if ((error = cmv_pager__qindex_ranked(&qi, repo, query, allowance, pinned, hit, order, &n_order)) == 0)
			error = done = hits_fill(hits, &qi, order, n_order, kept ? NULL : &p, repo, tip, target);
		if (kept && error == CMV_ENOMEM) {
			cmv_error_clear();
			error = 0;
		}
		cmv_pager__qindex_dispose(&qi);
	}
	if (error < 0) {
		cmv_repo_txn_rollback(repo);
		cmv_query_hits_free(hits, n_order);
	} else if ((error = cmv_repo_txn_commit(repo)) < 0) {
		cmv_query_hits_free(hits, n_order);
	} else {
		*out = done > 0 ? hits : NULL;
		*n_out = done > 0 ? n_order : 0;
		if (done <= 0)
			cmv_query_hits_free(hits, n_order);
		error = 0;
	}
	cmv_pager__qindex_dispose(&qi);
	free(pinned);
	free(hit);
	free(order);
	cmv_pager__dispose(&p);
	return error;
}

int cmv_query_turns(cmv_query_hit **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip, const cmv_model *model,
		    cmv_tok *tok, const char *id, size_t before, size_t after)
{
	pager p;
	qindex qi;
	size_t *order = NULL, n = 0, at = SIZE_MAX, len;
	cmv_query_hit *hits = NULL;
	cmv_render_target target;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(n_out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	CMV_ASSERT_ARG(id);
	*out = NULL;
	*n_out = 0;
	if (!cmv_id_is_prefix(id))
		return cmv_error__set(CMV_EINVALID, "'%s' is not a page id (7 or more hex digits)", id);
	len = strlen(id);
	if ((error = query_begin(&p, &qi, &target, repo, model, tok)) < 0)
		return error;
	if ((error = cmv__conversation_load(&p.cv, repo, tip, target, 0)) == 0 && cJSON_GetArraySize(p.cv.msgs) &&
	    (error = cmv_pager__pages(&p)) == 0 && (error = cmv_pager__qindex_of(&qi, &p)) == 0) {
		/* a page's id, or the record a turn begins at */
		for (size_t pg = 0; pg < qi.n_bodies + qi.n_turns && at == SIZE_MAX; pg++)
			if (!strncmp(qi.ids[pg], id, len))
				at = pg < qi.n_bodies ? body_turn_of(&qi, pg) : pg - qi.n_bodies;
		for (size_t g = 0; g < qi.n_turns && at == SIZE_MAX; g++)
			if (!strncmp(qi.nodes[g], id, len))
				at = g;
		if (at == SIZE_MAX) {
			error = cmv_error__set(CMV_ENOTFOUND, "no page or record '%s' on this branch", id);
		} else {
			size_t from = at > before ? at - before : 0, to = at + after < qi.n_turns ? at + after + 1 : qi.n_turns;
			if (!(order = cmv__calloc(to - from + 1, sizeof(size_t))) || !(hits = cmv__calloc(to - from + 1, sizeof(*hits)))) {
				error = cmv_error__oom();
			} else {
				for (size_t g = from; g < to; g++)
					order[n++] = qi.n_bodies + g;
				if ((error = hits_fill(hits, &qi, order, n, &p, repo, tip, target)) > 0)
					error = 0;
			}
		}
	} else if (!error) {
		error = cmv_error__set(CMV_ENOTFOUND, "the branch has no messages");
	}
	if (error < 0) {
		cmv_repo_txn_rollback(repo);
		cmv_query_hits_free(hits, n);
	} else if ((error = cmv_repo_txn_commit(repo)) < 0) {
		cmv_query_hits_free(hits, n);
	} else {
		*out = hits;
		*n_out = n;
	}
	free(order);
	cmv_pager__qindex_dispose(&qi);
	cmv_pager__dispose(&p);
	return error;
}
