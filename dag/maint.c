/* SPDX-License-Identifier: MIT */
/*
 * Maintenance: gc (remove what no ref reaches) and fsck (check everything).
 *
 * Invariants
 *  1. gc never removes an object reachable from a ref through parent,
 *     derived_from, covers or includes edges, nor a blob such an object's
 *     blocks use.
 *  2. gc is one transaction: it removes all it found unreachable, or nothing.
 *  3. fsck reads but never writes.
 */
#include <stdio.h>
#include "repo.h"

typedef struct {
	cmv_id *ids;
	size_t n, cap;
} id_list;

static int id_list_push(id_list *l, const cmv_id *id)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		cmv_id *n = cmv__realloc(l->ids, ncap * sizeof(*n));
		if (!n)
			return cmv_error__oom();
		l->ids = n;
		l->cap = ncap;
	}
	l->ids[l->n++] = *id;
	return 0;
}

typedef struct {
	cmv_repo *repo;
	cmv_idset nodes, blobs;
	id_list stack, garbage_nodes, garbage_blobs;
} gc_state;

static int gc_push_ref(const cmv_ref *ref, void *payload)
{
	gc_state *st = payload;

	if (cmv_id_is_none(&ref->target))
		return 0;
	return id_list_push(&st->stack, &ref->target);
}

static int gc_mark(gc_state *st)
{
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	while (st->stack.n) {
		cmv_id id = st->stack.ids[--st->stack.n];
		cmv_node *node = NULL;
		if ((error = cmv_idset_add(&st->nodes, &id)) < 0)
			return error;
		if (error == 0)
			continue; /* already marked */
		error = st->repo->backend->node_get(st->repo->backend, &node, &id);
		if (error == CMV_ENOTFOUND)
			return cmv_error__set(CMV_ECORRUPT,
					      "reachable node '%s' is missing; run 'cmv fsck' (gc removed nothing)",
					      cmv_id_tostr(hex, CMV_ID_HEXSZ, &id));
		if (error < 0)
			return error;
		if (!cmv_id_is_none(&node->parent))
			error = id_list_push(&st->stack, &node->parent);
		cmv_edge_list edges[CMV_EDGE_KINDS];
		cmv_dag__node_edges(edges, node);
		for (int k = 0; k < CMV_EDGE_KINDS; k++)
			for (size_t i = 0; !error && i < edges[k].n; i++)
				error = id_list_push(&st->stack, &edges[k].ids[i]);
		for (size_t i = 0; !error && i < node->n_blocks; i++)
			error = cmv_idset_add(&st->blobs, &node->blocks[i].blob) < 0 ? cmv_error__oom() : 0;
		cmv_node_free(node);
		if (error < 0)
			return error;
	}
	return 0;
}

static int gc_sweep_node(const cmv_id *id, void *payload)
{
	gc_state *st = payload;

	return cmv_idset_has(&st->nodes, id) ? 0 : id_list_push(&st->garbage_nodes, id);
}

static int gc_sweep_blob(const cmv_id *id, void *payload)
{
	gc_state *st = payload;

	return cmv_idset_has(&st->blobs, id) ? 0 : id_list_push(&st->garbage_blobs, id);
}

static int gc_filled(cmv_gc_stats *out, cmv_repo *repo, unsigned int flags)
{
	gc_state st;
	cmv_buf scratch = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_gc_stats stats;
	int error;

	CMV_ASSERT_ARG(repo);
	memset(&st, 0, sizeof(st));
	memset(&stats, 0, sizeof(stats));
	st.repo = repo;
	cmv_idset_init(&st.nodes);
	cmv_idset_init(&st.blobs);
	/* Mark and sweep under the write lock, so no append races the sweep. */
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if ((error = repo->backend->ref_foreach(repo->backend, gc_push_ref, &st)) < 0 ||
	    (error = gc_mark(&st)) < 0 ||
	    (error = repo->backend->object_foreach(repo->backend, CMV_OBJ_NODE, gc_sweep_node, &st)) < 0 ||
	    (error = repo->backend->object_foreach(repo->backend, CMV_OBJ_BLOB, gc_sweep_blob, &st)) < 0)
		goto done;
	for (size_t i = 0; i < st.garbage_blobs.n; i++) {
		if ((error = repo->backend->blob_get(repo->backend, &scratch,
						     &st.garbage_blobs.ids[i])) < 0)
			goto done;
		stats.bytes_removed += scratch.size;
	}
	stats.nodes_kept = st.nodes.n;
	stats.blobs_kept = st.blobs.n;
	stats.nodes_removed = st.garbage_nodes.n;
	stats.blobs_removed = st.garbage_blobs.n;
	if (flags & CMV_GC_DRY_RUN)
		goto done;
	for (size_t i = 0; i < st.garbage_nodes.n && !error; i++)
		error = repo->backend->object_delete(repo->backend, CMV_OBJ_NODE,
						     &st.garbage_nodes.ids[i]);
	for (size_t i = 0; i < st.garbage_blobs.n && !error; i++)
		error = repo->backend->object_delete(repo->backend, CMV_OBJ_BLOB,
						     &st.garbage_blobs.ids[i]);
done:
	error = cmv_dag__txn_end(repo, error);
	if (!error && out)
		*out = stats;
	cmv_idset_dispose(&st.nodes);
	cmv_idset_dispose(&st.blobs);
	free(st.stack.ids);
	free(st.garbage_nodes.ids);
	free(st.garbage_blobs.ids);
	cmv_buf_dispose(&scratch);
	return error;
}

int cmv_gc(cmv_gc_stats *out, cmv_repo *repo, unsigned int flags)
{
	int error = gc_filled(out, repo, flags);
	if (out)
		out->version = CMV_GC_STATS_VERSION;
	return error;
}

/* ---- fsck -------------------------------------------------------------- */

typedef struct {
	cmv_repo *repo;
	int (*cb)(const cmv_fsck_problem *, void *);
	void *payload;
	size_t n;
	cmv_buf data, msg;
} fsck_state;

static int report(fsck_state *st, cmv_fsck_problem_type type, const cmv_id *id, const char *name,
		  const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;

static int report(fsck_state *st, cmv_fsck_problem_type type, const cmv_id *id, const char *name,
		  const char *fmt, ...)
{
	cmv_fsck_problem p;
	va_list ap;

	st->n++;
	if (!st->cb)
		return 0;
	cmv_buf_clear(&st->msg);
	va_start(ap, fmt);
	cmv_buf_vprintf(&st->msg, fmt, ap);
	va_end(ap);
	p.type = type;
	if (id)
		p.id = *id;
	else
		cmv_id_clear(&p.id);
	p.name = name;
	p.message = st->msg.ptr;
	return st->cb(&p, st->payload);
}

static int fsck_integrity_cb(const char *message, void *payload)
{
	return report(payload, CMV_FSCK_INTEGRITY, NULL, NULL, "store file: %s", message);
}

static int fsck_blob(const cmv_id *id, void *payload)
{
	fsck_state *st = payload;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id actual;
	int error = st->repo->backend->blob_get(st->repo->backend, &st->data, id);

	if (error < 0)
		return error;
	cmv_id_hash(&actual, st->data.ptr, st->data.size);
	if (!cmv_id_equal(&actual, id))
		return report(st, CMV_FSCK_BLOB_MISMATCH, id, NULL,
			      "blob %s: content hashes to %s", cmv_id_tostr(hex, CMV_ID_HEXSZ, id),
			      cmv_id_tostr((char[CMV_ID_HEXSZ + 1]){ 0 }, CMV_ID_HEXSZ, &actual));
	return 0;
}

static int fsck_node(const cmv_id *id, void *payload)
{
	fsck_state *st = payload;
	cmv_store_backend *b = st->repo->backend;
	char hex[CMV_ID_HEXSZ + 1], hex2[CMV_ID_HEXSZ + 1];
	cmv_node *node = NULL;
	cmv_id actual, gp;
	uint64_t pdepth;
	int error;

	if ((error = b->node_get(b, &node, id)) < 0)
		return error;
	cmv_id_tostr(hex, CMV_ID_HEXSZ, id);
	cmv_dag__node_hash(&actual, node, &st->data);
	if (!cmv_id_equal(&actual, id) &&
	    (error = report(st, CMV_FSCK_NODE_MISMATCH, id, NULL, "node %s: fields hash to %s", hex,
			    cmv_id_tostr(hex2, CMV_ID_HEXSZ, &actual))) != 0)
		goto done;
	if (!cmv_id_is_none(&node->parent)) {
		error = b->node_parent(b, &gp, &pdepth, &node->parent);
		if (error == CMV_ENOTFOUND) {
			cmv_error_clear();
			error = report(st, CMV_FSCK_MISSING_NODE, id, NULL, "node %s: parent %s missing",
				       hex, cmv_id_tostr(hex2, CMV_ID_HEXSZ, &node->parent));
		} else if (error == 0 && pdepth + 1 != node->depth) {
			error = report(st, CMV_FSCK_BAD_DEPTH, id, NULL,
				       "node %s: depth %llu but parent's is %llu", hex,
				       (unsigned long long)node->depth, (unsigned long long)pdepth);
		}
	} else if (node->depth != 0) {
		error = report(st, CMV_FSCK_BAD_DEPTH, id, NULL, "node %s: a root with depth %llu", hex,
			       (unsigned long long)node->depth);
	}
	if (error)
		goto done;
	for (size_t i = 0; i < node->n_blocks; i++) {
		int there = b->blob_exists(b, &node->blocks[i].blob);
		if (there < 0) {
			error = there;
			goto done;
		}
		if (!there && (error = report(st, CMV_FSCK_MISSING_BLOB, id, NULL,
					      "node %s: block %zu's blob %s missing", hex, i,
					      cmv_id_tostr(hex2, CMV_ID_HEXSZ,
							   &node->blocks[i].blob))) != 0)
			goto done;
	}
	cmv_edge_list edges[CMV_EDGE_KINDS];
	cmv_dag__node_edges(edges, node);
	for (int k = 0; k < CMV_EDGE_KINDS; k++)
		for (size_t i = 0; i < edges[k].n; i++) {
			error = b->node_parent(b, &gp, &pdepth, &edges[k].ids[i]);
			if (error == CMV_ENOTFOUND) {
				cmv_error_clear();
				error = report(st, CMV_FSCK_MISSING_NODE, id, NULL,
					       "node %s: %s target %s missing", hex, edges[k].name,
					       cmv_id_tostr(hex2, CMV_ID_HEXSZ, &edges[k].ids[i]));
			}
			if (error)
				goto done;
		}
done:
	cmv_node_free(node);
	return error;
}

static int fsck_ref(const cmv_ref *ref, void *payload)
{
	fsck_state *st = payload;
	cmv_store_backend *b = st->repo->backend;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id gp;
	uint64_t depth;
	int error;

	if (cmv_id_is_none(&ref->target)) {
		if (ref->type != CMV_REF_BRANCH)
			return report(st, CMV_FSCK_DANGLING_REF, NULL, ref->name,
				      "%s '%s' points at nothing",
				      ref->type == CMV_REF_SNAPSHOT ? "snapshot" : "session", ref->name);
		return 0;
	}
	error = b->node_parent(b, &gp, &depth, &ref->target);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		return report(st, CMV_FSCK_DANGLING_REF, &ref->target, ref->name,
			      "%s '%s' points at missing node %s",
			      ref->type == CMV_REF_BRANCH ? "branch" : ref->type == CMV_REF_SNAPSHOT ? "snapshot" : "session", ref->name,
			      cmv_id_tostr(hex, CMV_ID_HEXSZ, &ref->target));
	}
	return error;
}

int cmv_fsck(size_t *n_problems_out, cmv_repo *repo,
	     int (*cb)(const cmv_fsck_problem *, void *), void *payload)
{
	fsck_state st;
	cmv_buf head = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_ref *ref = NULL;
	size_t n_integrity = 0;
	int error;

	CMV_ASSERT_ARG(repo);
	memset(&st, 0, sizeof(st));
	st.repo = repo;
	st.cb = cb;
	st.payload = payload;
	cmv_buf_init(&st.data, CMV_BUF_CONTENT);
	cmv_buf_init(&st.msg, CMV_BUF_SMALL);
	if (repo->backend->integrity &&
	    (error = repo->backend->integrity(repo->backend, &n_integrity, fsck_integrity_cb, &st)) != 0)
		goto done;
	if ((error = repo->backend->object_foreach(repo->backend, CMV_OBJ_BLOB, fsck_blob, &st)) != 0 ||
	    (error = repo->backend->object_foreach(repo->backend, CMV_OBJ_NODE, fsck_node, &st)) != 0 ||
	    (error = repo->backend->ref_foreach(repo->backend, fsck_ref, &st)) != 0)
		goto done;
	error = repo->backend->config_get(repo->backend, &head, "HEAD");
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	} else if (error == 0) {
		error = repo->backend->ref_get(repo->backend, &ref, head.ptr);
		if (error == CMV_ENOTFOUND || (error == 0 && ref->type != CMV_REF_BRANCH)) {
			cmv_error_clear();
			error = report(&st, CMV_FSCK_BAD_HEAD, NULL, head.ptr,
				       "the current branch '%s' is not a branch", head.ptr);
		}
	}
done:
	if (n_problems_out)
		*n_problems_out = st.n;
	cmv_ref_free(ref);
	cmv_buf_dispose(&head);
	cmv_buf_dispose(&st.data);
	cmv_buf_dispose(&st.msg);
	return error < 0 ? error : 0;
}
