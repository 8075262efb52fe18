/* SPDX-License-Identifier: MIT */
/*
 * Refs: branches (moved by compare-and-swap), snapshots (immutable), the
 * current branch, name resolution, and the lineage tree.
 *
 * Invariants
 *  1. Creating a branch or a snapshot writes exactly one row.
 *  2. A snapshot's target never changes after creation.
 *  3. HEAD, when set, names a branch; the current branch cannot be deleted.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include "repo.h"

void cmv_snapshot_options_init(cmv_snapshot_options *opts)
{
	static const cmv_snapshot_options init = CMV_SNAPSHOT_OPTIONS_INIT;
	*opts = init;
}

#define HEAD_KEY "HEAD"

int cmv_ref_name_is_valid(const char *name)
{
	size_t len, i;

	if (!name || !(len = strlen(name)) || len > CMV_REF_NAME_MAX)
		return 0;
	if (name[0] == '-' || name[0] == '.' || name[0] == '/' || name[len - 1] == '/' ||
	    name[len - 1] == '.')
		return 0;
	if (strstr(name, "..") || strstr(name, "//") || strstr(name, "/.") || !strcmp(name, "HEAD"))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/'))
			return 0;
	}
	/* A name that reads as an id prefix would make resolution ambiguous. */
	if (cmv_id_is_prefix(name))
		return 0;
	return 1;
}

static int check_name(const char *name)
{
	if (!cmv_ref_name_is_valid(name))
		return cmv_error__set(CMV_EINVALID,
				      "invalid name '%s' (use letters, digits, '.', '_', '-', '/'; "
				      "not a hex id; at most %d bytes)",
				      name ? name : "", CMV_REF_NAME_MAX);
	return 0;
}

int cmv_ref_lookup(cmv_ref **out, cmv_repo *repo, const char *name)
{
	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(name);
	return repo->backend->ref_get(repo->backend, out, name);
}

static int node_must_exist(cmv_repo *repo, const cmv_id *at)
{
	cmv_id parent;
	uint64_t depth;
	char hex[CMV_ID_HEXSZ + 1];
	int error = repo->backend->node_parent(repo->backend, &parent, &depth, at);

	if (error == CMV_ENOTFOUND)
		return cmv_error__set(CMV_ENOTFOUND, "node '%s' not found",
				      cmv_id_tostr(hex, CMV_ID_HEXSZ, at));
	return error;
}

int cmv_branch_create(cmv_repo *repo, const char *name, const cmv_id *at, const char *from_ref)
{
	cmv_ref r;
	int error;

	CMV_ASSERT_ARG(repo);
	if ((error = check_name(name)) < 0)
		return error;
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if (at && !cmv_id_is_none(at) && (error = node_must_exist(repo, at)) < 0)
		goto done;
	memset(&r, 0, sizeof(r));
	r.name = name;
	r.type = CMV_REF_BRANCH;
	if (at)
		r.target = *at;
	r.created = r.updated = cmv__now();
	r.from_ref = from_ref;
	error = repo->backend->ref_put(repo->backend, &r, CMV_STORE_REF_CREATE, NULL);
done:
	return cmv_dag__txn_end(repo, error);
}

int cmv_branch_update(cmv_repo *repo, const char *name, const cmv_id *target,
		      const cmv_id *expected)
{
	cmv_ref *cur = NULL;
	cmv_ref r;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(name);
	CMV_ASSERT_ARG(target);
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if ((error = repo->backend->ref_get(repo->backend, &cur, name)) < 0)
		goto done;
	if (cur->type != CMV_REF_BRANCH) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is a snapshot; snapshots never change", name);
		goto done;
	}
	if (!cmv_id_is_none(target) && (error = node_must_exist(repo, target)) < 0)
		goto done;
	memset(&r, 0, sizeof(r));
	r.name = name;
	r.type = CMV_REF_BRANCH;
	r.target = *target;
	r.updated = cmv__now();
	error = repo->backend->ref_put(repo->backend, &r, expected ? CMV_STORE_REF_CAS : 0, expected);
done:
	cmv_ref_free(cur);
	return cmv_dag__txn_end(repo, error);
}

int cmv_session_set(cmv_repo *repo, const char *name, const cmv_id *manifest, const cmv_id *expected)
{
	cmv_ref *cur = NULL;
	cmv_ref r;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(manifest);
	if ((error = check_name(name)) < 0)
		return error;
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if ((error = node_must_exist(repo, manifest)) < 0)
		goto done;
	memset(&r, 0, sizeof(r));
	r.name = name;
	r.type = CMV_REF_SESSION;
	r.target = *manifest;
	r.created = r.updated = cmv__now();
	error = repo->backend->ref_get(repo->backend, &cur, name);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		if (expected) {
			error = cmv_error__set(CMV_EMODIFIED, "session '%s' disappeared concurrently", name);
			goto done;
		}
		error = repo->backend->ref_put(repo->backend, &r, CMV_STORE_REF_CREATE, NULL);
		goto done;
	}
	if (error < 0)
		goto done;
	if (cur->type != CMV_REF_SESSION) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is a %s, not a session", name,
				       cur->type == CMV_REF_BRANCH ? "branch" : "snapshot");
		goto done;
	}
	error = repo->backend->ref_put(repo->backend, &r, expected ? CMV_STORE_REF_CAS : 0, expected);
done:
	cmv_ref_free(cur);
	return cmv_dag__txn_end(repo, error);
}

int cmv_snapshot_create(cmv_repo *repo, const char *name, const cmv_id *at, const char *from_ref,
			const cmv_snapshot_options *opts)
{
	cmv_snapshot_options defaults = CMV_SNAPSHOT_OPTIONS_INIT;
	cmv_ref r;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(at);
	if (!opts)
		opts = &defaults;
	if (opts->version != CMV_SNAPSHOT_OPTIONS_VERSION)
		return cmv_error__set(CMV_EINVALID, "unknown snapshot options version %u",
				      opts->version);
	if ((error = check_name(name)) < 0)
		return error;
	if (cmv_id_is_none(at))
		return cmv_error__set(CMV_EINVALID, "cannot snapshot an empty branch");
	for (size_t i = 0; i < opts->n_tags; i++) {
		const char *t = opts->tags[i];
		if (!t || !*t || strlen(t) > CMV_FIELD_MAX || strpbrk(t, "\n\r,"))
			return cmv_error__set(CMV_EINVALID,
					      "invalid tag '%s' (non-empty, no comma or newline)",
					      t ? t : "");
	}
	if (opts->n_tags > 255)
		return cmv_error__set(CMV_EINVALID, "too many tags (at most 255)");
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if ((error = node_must_exist(repo, at)) < 0)
		goto done;
	memset(&r, 0, sizeof(r));
	r.name = name;
	r.type = CMV_REF_SNAPSHOT;
	r.target = *at;
	r.description = opts->description && *opts->description ? opts->description : NULL;
	r.tags = opts->tags;
	r.n_tags = opts->n_tags;
	r.created = r.updated = cmv__now();
	r.from_ref = from_ref;
	error = repo->backend->ref_put(repo->backend, &r, CMV_STORE_REF_CREATE, NULL);
done:
	return cmv_dag__txn_end(repo, error);
}

int cmv_ref_delete(cmv_repo *repo, const char *name)
{
	cmv_buf head = CMV_BUF_INIT(CMV_BUF_SMALL);
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(name);
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->config_get(repo->backend, &head, HEAD_KEY);
	if (error == 0 && !strcmp(head.ptr, name)) {
		error = cmv_error__set(CMV_EINVALID,
				       "cannot delete '%s': it is the current branch (check out another)",
				       name);
		goto done;
	}
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	}
	if (error < 0 || (error = repo->backend->ref_delete(repo->backend, name)) < 0)
		goto done;
	error = repo->backend->state_drop(repo->backend, name);
done:
	cmv_buf_dispose(&head);
	return cmv_dag__txn_end(repo, error);
}

int cmv_ref_foreach(cmv_repo *repo, int (*cb)(const cmv_ref *, void *), void *payload)
{
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(cb);
	return repo->backend->ref_foreach(repo->backend, cb, payload);
}

int cmv_head_get(cmv_buf *out, cmv_repo *repo)
{
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	error = repo->backend->config_get(repo->backend, out, HEAD_KEY);
	if (error == CMV_ENOTFOUND)
		return cmv_error__set(CMV_ENOTFOUND, "no current branch (use 'cmv checkout')");
	return error;
}

int cmv_head_set(cmv_repo *repo, const char *branch)
{
	cmv_ref *ref = NULL;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if ((error = repo->backend->ref_get(repo->backend, &ref, branch)) < 0)
		goto done;
	if (ref->type != CMV_REF_BRANCH) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is a %s; branch from it to work on it",
				       branch, ref->type == CMV_REF_SNAPSHOT ? "snapshot" : "session");
		goto done;
	}
	error = repo->backend->config_set(repo->backend, HEAD_KEY, branch);
done:
	cmv_ref_free(ref);
	return cmv_dag__txn_end(repo, error);
}

/* ---- resolution -------------------------------------------------------- */

#define AMBIGUOUS_SHOWN 10

int cmv_resolve_object(cmv_id *out, cmv_object_type *type_out, cmv_repo *repo, const char *prefix)
{
	cmv_id found[AMBIGUOUS_SHOWN];
	cmv_object_type types[AMBIGUOUS_SHOWN];
	size_t n = 0, len;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(prefix);
	if (!cmv_id_is_prefix(prefix))
		return cmv_error__set(CMV_EINVALID,
				      "'%s' is not an id prefix (%d to %d hex digits)", prefix,
				      CMV_ID_MINPREFIX, CMV_ID_HEXSZ);
	len = strlen(prefix);
	if ((error = repo->backend->lookup_prefix(repo->backend, found, types, AMBIGUOUS_SHOWN, &n,
						  prefix, len)) < 0)
		return error;
	if (n == 0)
		return cmv_error__set(CMV_ENOTFOUND, "no object with id '%s'", prefix);
	if (n > 1) {
		cmv_buf msg = CMV_BUF_INIT(CMV_BUF_SMALL);
		char hex[CMV_ID_HEXSZ + 1];
		cmv_buf_printf(&msg, "id prefix '%s' is ambiguous; candidates:", prefix);
		for (size_t i = 0; i < n && i < AMBIGUOUS_SHOWN; i++)
			cmv_buf_printf(&msg, " %s (%s)", cmv_id_tostr(hex, CMV_ID_HEXSZ, &found[i]),
				       types[i] == CMV_OBJ_NODE ? "node" : "blob");
		if (n > AMBIGUOUS_SHOWN)
			cmv_buf_puts(&msg, " ...");
		error = cmv_error__set(CMV_EAMBIGUOUS, "%s", msg.ptr);
		cmv_buf_dispose(&msg);
		return error;
	}
	*out = found[0];
	if (type_out)
		*type_out = types[0];
	return 0;
}

int cmv_resolve(cmv_id *out, cmv_repo *repo, const char *spec)
{
	cmv_buf name = CMV_BUF_INIT(CMV_BUF_SMALL), head = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_ref *ref = NULL;
	const char *tilde;
	unsigned long long up = 0;
	cmv_object_type type;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(spec);
	tilde = strrchr(spec, '~');
	if (tilde) {
		char *end;
		errno = 0;
		up = tilde[1] ? strtoull(tilde + 1, &end, 10) : 1;
		if (errno || (tilde[1] && *end) || tilde[1] == '-' || tilde[1] == '+')
			return cmv_error__set(CMV_EINVALID, "invalid ancestor suffix in '%s'", spec);
		error = cmv_buf_put(&name, spec, (size_t)(tilde - spec));
	} else {
		error = cmv_buf_puts(&name, spec);
	}
	if (error < 0)
		goto done;
	if (!strcmp(name.ptr, "HEAD")) {
		if ((error = cmv_head_get(&head, repo)) < 0)
			goto done;
		if ((error = cmv_buf_set(&name, head.ptr, head.size)) < 0)
			goto done;
	}
	error = repo->backend->ref_get(repo->backend, &ref, name.ptr);
	if (error == 0) {
		if (cmv_id_is_none(&ref->target)) {
			error = cmv_error__set(CMV_ENOTFOUND, "branch '%s' has no messages yet", name.ptr);
			goto done;
		}
		*out = ref->target;
	} else if (error == CMV_ENOTFOUND && cmv_id_is_prefix(name.ptr)) {
		cmv_error_clear();
		if ((error = cmv_resolve_object(out, &type, repo, name.ptr)) < 0)
			goto done;
		if (type != CMV_OBJ_NODE) {
			error = cmv_error__set(CMV_EINVALID, "'%s' is a blob, not a node", name.ptr);
			goto done;
		}
	} else {
		goto done;
	}
	for (unsigned long long i = 0; i < up; i++) {
		cmv_id parent;
		uint64_t depth;
		if ((error = repo->backend->node_parent(repo->backend, &parent, &depth, out)) < 0)
			goto done;
		if (cmv_id_is_none(&parent)) {
			error = cmv_error__set(CMV_ENOTFOUND, "'%s' goes past the first message", spec);
			goto done;
		}
		*out = parent;
	}
done:
	cmv_ref_free(ref);
	cmv_buf_dispose(&name);
	cmv_buf_dispose(&head);
	return error;
}

/* ---- the lineage tree -------------------------------------------------- */

typedef struct {
	cmv_ref **refs;
	size_t n, cap;
} ref_list;

static int collect_ref(const cmv_ref *ref, void *payload)
{
	ref_list *l = payload;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		cmv_ref **nr = cmv__realloc(l->refs, ncap * sizeof(*nr));
		if (!nr)
			return cmv_error__oom();
		l->refs = nr;
		l->cap = ncap;
	}
	if (!(l->refs[l->n] = cmv_dag__ref_copy(ref)))
		return cmv_error__oom();
	l->n++;
	return 0;
}

static int tree_visit(cmv_tree *t, const ref_list *l, const size_t *parent_of, bool *placed,
		      size_t i, size_t parent_entry, size_t depth)
{
	size_t me = t->n_entries++;

	t->entries[me].ref = l->refs[i];
	t->entries[me].parent = parent_entry;
	t->entries[me].depth = depth;
	placed[i] = true;
	for (size_t j = 0; j < l->n; j++)
		if (!placed[j] && parent_of[j] == i)
			tree_visit(t, l, parent_of, placed, j, me, depth + 1);
	return 0;
}

int cmv_tree_build(cmv_tree **out, cmv_repo *repo)
{
	ref_list l = { NULL, 0, 0 };
	cmv_tree *t = NULL;
	size_t *parent_of = NULL;
	bool *placed = NULL;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	*out = NULL;
	if ((error = repo->backend->ref_foreach(repo->backend, collect_ref, &l)) < 0)
		goto fail;
	if (!(t = cmv__calloc(1, sizeof(*t))) ||
	    !(t->entries = cmv__calloc(l.n ? l.n : 1, sizeof(*t->entries))) ||
	    !(parent_of = cmv__calloc(l.n ? l.n : 1, sizeof(*parent_of))) ||
	    !(placed = cmv__calloc(l.n ? l.n : 1, sizeof(*placed)))) {
		error = cmv_error__oom();
		goto fail;
	}
	for (size_t i = 0; i < l.n; i++) {
		parent_of[i] = SIZE_MAX;
		if (l.refs[i]->from_ref)
			for (size_t j = 0; j < l.n; j++)
				if (j != i && !strcmp(l.refs[j]->name, l.refs[i]->from_ref))
					parent_of[i] = j;
	}
	/* Roots first, in creation order; then anything left in a cycle. */
	for (size_t i = 0; i < l.n; i++)
		if (!placed[i] && parent_of[i] == SIZE_MAX)
			tree_visit(t, &l, parent_of, placed, i, SIZE_MAX, 0);
	for (size_t i = 0; i < l.n; i++)
		if (!placed[i])
			tree_visit(t, &l, parent_of, placed, i, SIZE_MAX, 0);
	for (size_t i = 0; i < t->n_entries; i++) {
		const cmv_ref *r = t->entries[i].ref;
		cmv_id parent;
		uint64_t depth = 0;
		t->entries[i].n_nodes = 0;
		if (!cmv_id_is_none(&r->target) &&
		    repo->backend->node_parent(repo->backend, &parent, &depth, &r->target) == 0)
			t->entries[i].n_nodes = depth + 1;
	}
	cmv_error_clear();
	free(parent_of);
	free(placed);
	free(l.refs); /* the refs themselves now belong to the entries */
	*out = t;
	return 0;
fail:
	for (size_t i = 0; i < l.n; i++)
		cmv_ref_free(l.refs[i]);
	free(l.refs);
	free(parent_of);
	free(placed);
	if (t)
		free(t->entries);
	free(t);
	return error;
}

void cmv_tree_free(cmv_tree *tree)
{
	if (!tree)
		return;
	for (size_t i = 0; i < tree->n_entries; i++)
		cmv_ref_free((cmv_ref *)tree->entries[i].ref);
	free(tree->entries);
	free(tree);
}
