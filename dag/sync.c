/* SPDX-License-Identifier: MIT */
/*
 * Sync: move refs and exactly the objects they need from one store to
 * another (cmv push / cmv pull), whatever the two backends.
 *
 * Negotiation is by ids, as git's have/want: from each ref's target in the
 * source, a walk over parents and edges stops at the first node the
 * destination has. A store never holds a node without its history
 * (invariant 1 of docs/store.md), so what the walk collects is exactly what
 * the destination lacks, and the cost of a sync is proportional to the new
 * nodes, not to the history.
 *
 * Writing: the collected nodes are written in post-order (parents and edge
 * targets first), each with the blobs it uses that the destination lacks,
 * in transactions of `batch_nodes` nodes. A prefix of a post-order is closed
 * under parents and edges, so every committed batch leaves a consistent
 * store, and a sync that is interrupted and run again finds those nodes
 * present and sends only the rest. Every blob is hashed again and every
 * node's id recomputed from its fields on arrival (CMV_EMISMATCH).
 *
 * Refs move last, by compare-and-swap against the target the destination
 * had at negotiation: a branch only forward (its old target an ancestor of
 * the new one) unless forced; a snapshot never changes unless forced. Each
 * moved ref gets an "origin" note: which store, when, from which target.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include "repo.h"

#define SYNC_BATCH_DEFAULT 1000

typedef struct {
	cmv_repo *dst, *src;
	const cmv_sync_options *o;
	cmv_idset have;      /* nodes known to be in dst, or collected for it */
	cmv_idset blobs;     /* blobs known to be in dst */
	cmv_id *order;       /* nodes to write, post-order */
	size_t n_order, cap_order;
	cmv_sync_stats *st;
	uint64_t ref_nodes, ref_blobs, ref_bytes;
} sync_state;

static int dst_has_node(sync_state *s, const cmv_id *id)
{
	cmv_id parent;
	uint64_t depth;
	int error;

	if (cmv_idset_has(&s->have, id))
		return 1;
	error = s->dst->backend->node_parent(s->dst->backend, &parent, &depth, id);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		return 0;
	}
	if (error < 0)
		return error;
	if ((error = cmv_idset_add(&s->have, id)) < 0)
		return error;
	return 1;
}

/* Collect what dst lacks below `root`, children before the node (explicit stack: histories are deep). */
static int collect(sync_state *s, const cmv_id *root)
{
	typedef struct {
		cmv_id id;
		bool expanded;
	} frame;
	frame *stack = NULL;
	size_t n = 0, cap = 0;
	int error = 0, has;

	if (cmv_id_is_none(root))
		return 0;
	if ((error = cmv__array_grow((void **)&stack, &cap, n, sizeof(*stack))) < 0)
		return error;
	stack[n++] = (frame){ *root, false };
	while (n && !error) {
		frame f = stack[--n];
		if (f.expanded) {
			/* 0: a sibling's walk (a shared edge target) collected it first: write it once */
			int added = cmv_idset_add(&s->have, &f.id);
			if (added < 0)
				error = added;
			else if (added &&
				 (error = cmv__array_grow((void **)&s->order, &s->cap_order, s->n_order, sizeof(*s->order))) == 0)
				s->order[s->n_order++] = f.id;
			continue;
		}
		if ((has = dst_has_node(s, &f.id)) != 0) {
			error = has < 0 ? has : 0;
			continue;
		}
		cmv_node *node = NULL;
		if ((error = s->src->backend->node_get(s->src->backend, &node, &f.id)) < 0)
			break;
		cmv_edge_list edges[CMV_EDGE_KINDS];
		cmv_dag__node_edges(edges, node);
		size_t need = 2 + cmv_dag__node_n_edges(node);
		while (!error && cap < n + need)
			error = cmv__array_grow((void **)&stack, &cap, cap + 1, sizeof(*stack));
		if (!error) {
			stack[n++] = (frame){ f.id, true };
			for (int k = 0; k < CMV_EDGE_KINDS; k++)
				for (size_t i = 0; i < edges[k].n; i++)
					if (!cmv_idset_has(&s->have, &edges[k].ids[i]))
						stack[n++] = (frame){ edges[k].ids[i], false };
			if (!cmv_id_is_none(&node->parent) && !cmv_idset_has(&s->have, &node->parent))
				stack[n++] = (frame){ node->parent, false };
		}
		cmv_node_free(node);
	}
	free(stack);
	return error;
}

static int copy_blob(sync_state *s, const cmv_block *b, cmv_buf *data)
{
	cmv_id got;
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	if (cmv_idset_has(&s->blobs, &b->blob))
		return 0;
	if ((error = s->dst->backend->blob_exists(s->dst->backend, &b->blob)) < 0)
		return error;
	if (error == 0) {
		if ((error = s->src->backend->blob_get(s->src->backend, data, &b->blob)) < 0)
			return error;
		cmv_id_hash(&got, data->ptr ? data->ptr : "", data->size);
		if (!cmv_id_equal(&got, &b->blob))
			return cmv_error__set(CMV_EMISMATCH, "blob %s from the source hashes to something else: damaged",
					      cmv_id_tostr(hex, sizeof(hex), &b->blob));
		if ((error = s->dst->backend->blob_put(s->dst->backend, &b->blob, data->ptr ? data->ptr : "", data->size,
							cmv_dag__block_is_text(b->type, b->media_type) ? CMV_STORE_BLOB_INDEX : 0)) < 0)
			return error;
		s->ref_blobs++;
		s->ref_bytes += data->size;
	} else if (cmv_dag__block_is_text(b->type, b->media_type)) {
		/* there already, perhaps only as an image's bytes: the put indexes it if need be */
		if ((error = s->src->backend->blob_get(s->src->backend, data, &b->blob)) < 0 ||
		    (error = s->dst->backend->blob_put(s->dst->backend, &b->blob, data->ptr ? data->ptr : "", data->size,
							CMV_STORE_BLOB_INDEX)) < 0)
			return error;
	}
	return cmv_idset_add(&s->blobs, &b->blob) < 0 ? CMV_ENOMEM : 0;
}

static int write_node(sync_state *s, const cmv_id *id, cmv_buf *data, cmv_buf *scratch, cmv_id *last,
		      uint64_t *last_depth)
{
	cmv_node *node = NULL;
	cmv_id got, pp;
	uint64_t pdepth = 0;
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	if ((error = s->src->backend->node_get(s->src->backend, &node, id)) < 0)
		return error;
	cmv_dag__node_hash(&got, node, scratch);
	if (!cmv_id_equal(&got, id)) {
		error = cmv_error__set(CMV_EMISMATCH, "node %s from the source hashes to something else: damaged",
				       cmv_id_tostr(hex, sizeof(hex), id));
		goto done;
	}
	/* the depth is derived, not hashed: computed here, never taken on trust */
	if (cmv_id_is_none(&node->parent))
		node->depth = 0;
	else if (cmv_id_equal(&node->parent, last))
		node->depth = *last_depth + 1;
	else if ((error = s->dst->backend->node_parent(s->dst->backend, &pp, &pdepth, &node->parent)) < 0)
		goto done;
	else
		node->depth = pdepth + 1;
	for (size_t i = 0; i < node->n_blocks && !error; i++)
		error = copy_blob(s, &node->blocks[i], data);
	if (!error && !(error = s->dst->backend->node_put(s->dst->backend, node))) {
		*last = *id;
		*last_depth = node->depth;
		s->ref_nodes++;
	}
done:
	cmv_node_free(node);
	return error;
}

/* Whether `ancestor` is on the parent chain of `tip` in the source (a fast-forward). */
static int is_ancestor(sync_state *s, const cmv_id *ancestor, const cmv_id *tip)
{
	cmv_id cur = *tip, parent;
	uint64_t depth, adepth;
	int error;

	if (cmv_id_is_none(ancestor))
		return 1;
	if ((error = s->src->backend->node_parent(s->src->backend, &parent, &adepth, ancestor)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		return 0;
	}
	if (error < 0)
		return error;
	/* walk down only to the ancestor's depth: the cost is the distance, not the history */
	for (;;) {
		if (cmv_id_equal(&cur, ancestor))
			return 1;
		if ((error = s->src->backend->node_parent(s->src->backend, &parent, &depth, &cur)) < 0)
			return error;
		if (depth <= adepth || cmv_id_is_none(&parent))
			return 0;
		cur = parent;
	}
}

static int record_origin(sync_state *s, const char *name, const cmv_id *from, const cmv_id *to)
{
	cJSON *o = cJSON_CreateObject();
	char hex[CMV_ID_HEXSZ + 1], *text;
	int error;

	if (!o)
		return cmv_error__oom();
	cJSON_AddStringToObject(o, "store", s->o->origin ? s->o->origin : "");
	cJSON_AddNumberToObject(o, "at", (double)cmv__now());
	if (cmv_id_is_none(from))
		cJSON_AddNullToObject(o, "from");
	else
		cJSON_AddStringToObject(o, "from", cmv_id_tostr(hex, sizeof(hex), from));
	cJSON_AddStringToObject(o, "to", cmv_id_tostr(hex, sizeof(hex), to));
	cJSON_AddNumberToObject(o, "nodes", (double)s->ref_nodes);
	cJSON_AddNumberToObject(o, "blobs", (double)s->ref_blobs);
	cJSON_AddNumberToObject(o, "bytes", (double)s->ref_bytes);
	if (!(text = cJSON_PrintUnformatted(o))) {
		cJSON_Delete(o);
		return cmv_error__oom();
	}
	error = s->dst->backend->state_set(s->dst->backend, name, "origin", text);
	cJSON_free(text);
	cJSON_Delete(o);
	return error;
}

/* Copy a branch's notes that describe it (its trim, its model) when it is new to dst. */
static int copy_notes(sync_state *s, const char *name)
{
	static const char *const keys[] = { "trim", "llm" };
	cmv_buf v = CMV_BUF_INIT((size_t)64 << 20);
	int error = 0;

	for (size_t i = 0; i < CMV_ARRAY_SIZE(keys) && !error; i++) {
		error = s->src->backend->state_get(s->src->backend, &v, name, keys[i]);
		if (error == CMV_ENOTFOUND) {
			cmv_error_clear();
			error = 0;
			continue;
		}
		if (!error)
			error = s->dst->backend->state_set(s->dst->backend, name, keys[i], v.ptr ? v.ptr : "");
	}
	cmv_buf_dispose(&v);
	return error;
}

static int sync_one(sync_state *s, const cmv_ref *r)
{
	cmv_sync_ref rep;
	cmv_ref *d = NULL;
	cmv_buf data = CMV_BUF_INIT(CMV_BUF_CONTENT), scratch = CMV_BUF_INIT(CMV_BUF_CONTENT);
	size_t batch = s->o->batch_nodes ? s->o->batch_nodes : SYNC_BATCH_DEFAULT;
	bool force = (s->o->flags & CMV_SYNC_FORCE) != 0;
	int error;

	memset(&rep, 0, sizeof(rep));
	rep.name = r->name;
	rep.type = r->type;
	rep.new_target = r->target;
	s->ref_nodes = s->ref_blobs = s->ref_bytes = 0;
	s->n_order = 0;
	error = s->dst->backend->ref_get(s->dst->backend, &d, r->name);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	}
	if (error < 0)
		goto done;
	if (d) {
		rep.old_target = d->target;
		if (cmv_id_equal(&d->target, &r->target) && d->type == r->type) {
			rep.status = CMV_SYNC_UP_TO_DATE;
			goto report;
		}
		int ff = 0;
		if (d->type == CMV_REF_SNAPSHOT || d->type != r->type)
			ff = 0; /* a snapshot never moves; a branch never becomes a snapshot */
		else if ((ff = is_ancestor(s, &d->target, &r->target)) < 0) {
			error = ff;
			goto done;
		}
		if (!ff && !force) {
			rep.status = CMV_SYNC_REJECTED;
			rep.reason = d->type != r->type ? "a ref of another type has that name"
				     : d->type == CMV_REF_SNAPSHOT ? "a snapshot of that name points elsewhere"
								   : "not a fast-forward";
			goto report;
		}
		rep.status = ff ? CMV_SYNC_FAST_FORWARD : CMV_SYNC_FORCED;
	} else {
		rep.status = CMV_SYNC_CREATED;
	}

	if ((error = collect(s, &r->target)) < 0)
		goto done;
	/* batches: each is closed under parents and edges, so each commit leaves a whole store */
	cmv_id last;
	uint64_t last_depth = 0;
	cmv_id_clear(&last);
	for (size_t i = 0; i < s->n_order;) {
		size_t end = i + batch < s->n_order ? i + batch : s->n_order;
		if ((error = cmv_dag__txn_start(s->dst)) < 0)
			goto done;
		for (; i < end && !error; i++)
			error = write_node(s, &s->order[i], &data, &scratch, &last, &last_depth);
		if ((error = cmv_dag__txn_end(s->dst, error)) < 0)
			goto done;
		if (s->o->progress && (error = s->o->progress(rep.name, i, s->n_order, s->o->payload)) != 0)
			goto done;
	}
	/* the ref, against what negotiation saw: a writer that moved it since wins, and we say so */
	if ((error = cmv_dag__txn_start(s->dst)) < 0)
		goto done;
	if (!d) {
		cmv_ref nr = *r;
		nr.updated = cmv__now();
		if ((error = s->dst->backend->ref_put(s->dst->backend, &nr, CMV_STORE_REF_CREATE, NULL)) == 0)
			error = copy_notes(s, r->name);
	} else if (d->type == CMV_REF_BRANCH && r->type == CMV_REF_BRANCH) {
		cmv_ref nr = *d;
		nr.target = r->target;
		nr.updated = cmv__now();
		error = s->dst->backend->ref_put(s->dst->backend, &nr, CMV_STORE_REF_CAS, &d->target);
	} else {
		/* forced over a snapshot or a ref of another type: replaced whole */
		cmv_ref nr = *r;
		nr.updated = cmv__now();
		if ((error = s->dst->backend->ref_delete(s->dst->backend, r->name)) == 0 &&
		    (error = s->dst->backend->ref_put(s->dst->backend, &nr, CMV_STORE_REF_CREATE, NULL)) == 0)
			error = copy_notes(s, r->name);
	}
	if (!error)
		error = record_origin(s, r->name, &rep.old_target, &r->target);
	if ((error = cmv_dag__txn_end(s->dst, error)) < 0) {
		if (error == CMV_EMODIFIED || error == CMV_EEXISTS) {
			/* the objects are there; only the ref lost the race */
			rep.status = CMV_SYNC_REJECTED;
			rep.reason = "moved in the destination during the sync";
			cmv_error_clear();
			error = 0;
			goto report;
		}
		goto done;
	}
report:
	rep.nodes = s->ref_nodes;
	rep.blobs = s->ref_blobs;
	rep.bytes = s->ref_bytes;
	s->st->nodes += s->ref_nodes;
	s->st->blobs += s->ref_blobs;
	s->st->bytes += s->ref_bytes;
	if (rep.status == CMV_SYNC_UP_TO_DATE)
		s->st->refs_up_to_date++;
	else if (rep.status == CMV_SYNC_REJECTED)
		s->st->refs_rejected++;
	else
		s->st->refs_moved++;
	if (s->o->report)
		error = s->o->report(&rep, s->o->payload);
done:
	cmv_ref_free(d);
	cmv_buf_dispose(&data);
	cmv_buf_dispose(&scratch);
	return error;
}

typedef struct {
	cmv_ref **refs;
	size_t n, cap;
} ref_list;

static int list_ref(const cmv_ref *r, void *payload)
{
	ref_list *l = payload;
	int error;

	if ((error = cmv__array_grow((void **)&l->refs, &l->cap, l->n, sizeof(*l->refs))) < 0)
		return error;
	if (!(l->refs[l->n] = cmv_dag__ref_copy(r)))
		return cmv_error__oom();
	l->n++;
	return 0;
}

int cmv_sync(cmv_sync_stats *out, cmv_repo *dst, cmv_repo *src, const char *const *refs, size_t n_refs,
	     const cmv_sync_options *opts)
{
	cmv_sync_options none = CMV_SYNC_OPTIONS_INIT;
	cmv_sync_stats st;
	sync_state s;
	ref_list l = { 0 };
	int error = 0;

	CMV_ASSERT_ARG(dst);
	CMV_ASSERT_ARG(src);
	memset(&st, 0, sizeof(st));
	memset(&s, 0, sizeof(s));
	s.dst = dst;
	s.src = src;
	s.o = opts ? opts : &none;
	s.st = &st;
	cmv_idset_init(&s.have);
	cmv_idset_init(&s.blobs);
	if (dst->flags & CMV_REPO_OPEN_READONLY)
		return cmv_error__set(CMV_EINVALID, "the destination store was opened read-only");
	if (n_refs == 0) {
		error = src->backend->ref_foreach(src->backend, list_ref, &l);
	} else {
		for (size_t i = 0; i < n_refs && !error; i++) {
			cmv_ref *r = NULL;
			if ((error = src->backend->ref_get(src->backend, &r, refs[i])) == 0)
				error = list_ref(r, &l);
			else if (error == CMV_ENOTFOUND)
				error = cmv_error__set(CMV_ENOTFOUND, "no branch or snapshot named '%s' in the source", refs[i]);
			cmv_ref_free(r);
		}
	}
	for (size_t i = 0; i < l.n && !error; i++)
		error = sync_one(&s, l.refs[i]);
	for (size_t i = 0; i < l.n; i++)
		cmv_ref_free(l.refs[i]);
	free(l.refs);
	free(s.order);
	cmv_idset_dispose(&s.have);
	cmv_idset_dispose(&s.blobs);
	if (out)
		*out = st;
	return error;
}
