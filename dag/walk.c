/* SPDX-License-Identifier: MIT */
/*
 * Walks: the conversation at a node, from its root down to it.
 *
 * The chain is read tip to root (parent pointers only, one indexed lookup
 * per node) and then replayed forwards, so a walk costs O(depth) ids of
 * memory and one full node read per step. It is read lazily, only as far
 * up as the walk goes: the tip's depth gives the length, so a walk that
 * seeks to its last N nodes (`cmv log -n N`) reads N parents, not the
 * whole history (on PostgreSQL each is a round trip: 2.5 s at 100k nodes
 * for `log -n 20`, docs/store.md).
 */
#include "repo.h"

struct cmv_walk {
	cmv_repo *repo;
	cmv_id *chain; /* root first; chain[known..n-1] are read */
	size_t n, pos, known;
	cmv_id above;  /* the parent of chain[known] (none at the root) */
	cmv_node *current;
};

/* Read the chain up to index `to` (every id from there to the tip). */
static int read_chain_to(cmv_walk *w, size_t to)
{
	cmv_id parent;
	uint64_t depth;
	int error;

	while (w->known > to) {
		if (cmv_id_is_none(&w->above))
			return cmv_error__set(CMV_ECORRUPT, "node depths are inconsistent (run 'cmv fsck')");
		w->chain[w->known - 1] = w->above;
		if ((error = w->repo->backend->node_parent(w->repo->backend, &parent, &depth, &w->above)) < 0) {
			if (error == CMV_ENOTFOUND) {
				char hex[CMV_ID_HEXSZ + 1];
				error = cmv_error__set(CMV_ECORRUPT, "parent '%s' is missing (run 'cmv fsck')",
						       cmv_id_tostr(hex, CMV_ID_HEXSZ, &w->above));
			}
			return error;
		}
		w->known--;
		w->above = parent;
	}
	if (w->known == 0 && !cmv_id_is_none(&w->above))
		return cmv_error__set(CMV_ECORRUPT, "node depths are inconsistent (run 'cmv fsck')");
	return 0;
}

int cmv_walk_new(cmv_walk **out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *w;
	uint64_t depth;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	*out = NULL;
	if (!(w = cmv__calloc(1, sizeof(*w))))
		return cmv_error__oom();
	w->repo = repo;
	if ((error = repo->backend->node_parent(repo->backend, &w->above, &depth, tip)) < 0)
		goto fail;
	if (depth >= SIZE_MAX / sizeof(cmv_id)) {
		error = cmv_error__set(CMV_ECORRUPT, "node depth %llu is impossible", (unsigned long long)depth);
		goto fail;
	}
	w->n = (size_t)depth + 1;
	if (!(w->chain = cmv__malloc(w->n * sizeof(*w->chain)))) {
		error = cmv_error__oom();
		goto fail;
	}
	w->chain[w->n - 1] = *tip;
	w->known = w->n - 1;
	if ((error = read_chain_to(w, w->known)) < 0) /* a root with a parent */
		goto fail;
	*out = w;
	return 0;
fail:
	free(w->chain);
	free(w);
	return error;
}

int cmv_walk_next(const cmv_node **out, cmv_walk *w)
{
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(w);
	cmv_node_free(w->current);
	w->current = NULL;
	if (w->pos >= w->n)
		return CMV_ITEROVER;
	if ((error = read_chain_to(w, w->pos)) < 0)
		return error;
	if ((error = w->repo->backend->node_get(w->repo->backend, &w->current,
						&w->chain[w->pos])) < 0)
		return error;
	w->pos++;
	*out = w->current;
	return 0;
}

size_t cmv_walk_length(const cmv_walk *w)
{
	return w->n;
}

void cmv_walk_seek(cmv_walk *w, size_t index)
{
	w->pos = index < w->n ? index : w->n;
}

void cmv_walk_reset(cmv_walk *w)
{
	w->pos = 0;
}

void cmv_walk_free(cmv_walk *w)
{
	if (!w)
		return;
	cmv_node_free(w->current);
	free(w->chain);
	free(w);
}

int cmv_is_ancestor(cmv_repo *repo, const cmv_id *ancestor, const cmv_id *node)
{
	cmv_id cur = *node, parent;
	uint64_t depth, anc_depth;
	int error;

	CMV_ASSERT_ARG(repo);
	if ((error = repo->backend->node_parent(repo->backend, &parent, &anc_depth, ancestor)) < 0)
		return error;
	if ((error = repo->backend->node_parent(repo->backend, &parent, &depth, &cur)) < 0)
		return error;
	/* Depths let us stop as soon as we are above the candidate. */
	while (depth > anc_depth) {
		cur = parent;
		if ((error = repo->backend->node_parent(repo->backend, &parent, &depth, &cur)) < 0)
			return error;
	}
	return cmv_id_equal(&cur, ancestor) ? 1 : 0;
}
