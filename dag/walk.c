/* SPDX-License-Identifier: MIT */
/*
 * Walks: the conversation at a node, from its root down to it.
 *
 * The chain is read tip to root once (parent pointers only, one indexed
 * lookup per node) and then replayed forwards, so a walk costs O(depth)
 * ids of memory and one full node read per step.
 */
#include "repo.h"

struct cmv_walk {
	cmv_repo *repo;
	cmv_id *chain; /* root first */
	size_t n, pos;
	cmv_node *current;
};

static int read_chain(cmv_id **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_id cur = *tip, parent, *chain;
	uint64_t depth;
	size_t n;
	int error;

	if ((error = repo->backend->node_parent(repo->backend, &parent, &depth, &cur)) < 0)
		return error;
	if (depth >= SIZE_MAX / sizeof(cmv_id))
		return cmv_error__set(CMV_ECORRUPT, "node depth %llu is impossible",
				      (unsigned long long)depth);
	n = (size_t)depth + 1;
	if (!(chain = cmv__malloc(n * sizeof(*chain))))
		return cmv_error__oom();
	for (size_t i = n; i-- > 0;) {
		chain[i] = cur;
		if (i == 0)
			break;
		if (cmv_id_is_none(&parent)) {
			error = cmv_error__set(CMV_ECORRUPT, "node depths are inconsistent (run 'cmv fsck')");
			goto fail;
		}
		cur = parent;
		if ((error = repo->backend->node_parent(repo->backend, &parent, &depth, &cur)) < 0) {
			if (error == CMV_ENOTFOUND) {
				char hex[CMV_ID_HEXSZ + 1];
				error = cmv_error__set(CMV_ECORRUPT,
						       "parent '%s' is missing (run 'cmv fsck')",
						       cmv_id_tostr(hex, CMV_ID_HEXSZ, &cur));
			}
			goto fail;
		}
	}
	if (!cmv_id_is_none(&parent)) {
		error = cmv_error__set(CMV_ECORRUPT, "node depths are inconsistent (run 'cmv fsck')");
		goto fail;
	}
	*out = chain;
	*n_out = n;
	return 0;
fail:
	free(chain);
	return error;
}

int cmv_walk_new(cmv_walk **out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *w;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	*out = NULL;
	if (!(w = cmv__calloc(1, sizeof(*w))))
		return cmv_error__oom();
	w->repo = repo;
	if ((error = read_chain(&w->chain, &w->n, repo, tip)) < 0) {
		free(w);
		return error;
	}
	*out = w;
	return 0;
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
