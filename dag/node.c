/* SPDX-License-Identifier: MIT */
/*
 * Writing and reading content: blobs, nodes, and appends to a branch.
 *
 * Invariants
 *  1. A node is written only after its blobs, its parent and every edge
 *     target exist, so nothing stored ever points at nothing.
 *  2. A node's id is the hash of its canonical encoding (object.c); its
 *     depth is its parent's depth + 1, computed here, never trusted from input.
 *  3. cmv_append reads the branch head and moves it inside one transaction,
 *     with a compare-and-swap as a second line of defence.
 */
#include "repo.h"

/* Big enough for the encoding of any node this module accepts. */
#define NODE_ENCODING_MAX ((size_t)64 << 20)

static bool field_ok(const char *s)
{
	return !s || strlen(s) <= CMV_FIELD_MAX;
}

int cmv_blob_write(cmv_id *out, cmv_repo *repo, const void *data, size_t len)
{
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(data || !len);
	if (len > CMV_BUF_CONTENT)
		return cmv_error__set(CMV_ETOOBIG, "blob of %zu bytes exceeds the %zu-byte limit",
				      len, (size_t)CMV_BUF_CONTENT);
	cmv_id_hash(out, data, len);
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->blob_put(repo->backend, out, data, len, 0);
	return cmv_dag__txn_end(repo, error);
}

int cmv_blob_read(cmv_buf *out, cmv_repo *repo, const cmv_id *id)
{
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(id);
	if ((error = repo->backend->blob_get(repo->backend, out, id)) < 0)
		return error;
	if (repo->flags & CMV_REPO_OPEN_VERIFY) {
		cmv_id actual;
		char hex[CMV_ID_HEXSZ + 1];
		cmv_id_hash(&actual, out->ptr, out->size);
		if (!cmv_id_equal(&actual, id))
			return cmv_error__set(CMV_EMISMATCH,
					      "blob '%s' does not match its content (run 'cmv fsck')",
					      cmv_id_tostr(hex, CMV_ID_HEXSZ, id));
	}
	return 0;
}

int cmv_node_read(cmv_node **out, cmv_repo *repo, const cmv_id *id)
{
	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(id);
	return repo->backend->node_get(repo->backend, out, id);
}

static int check_exists(cmv_repo *repo, const cmv_id *id, const char *what)
{
	uint64_t depth;
	cmv_id parent;
	char hex[CMV_ID_HEXSZ + 1];
	int error = repo->backend->node_parent(repo->backend, &parent, &depth, id);

	if (error == CMV_ENOTFOUND)
		return cmv_error__set(CMV_ENOTFOUND, "%s target '%s' not found", what,
				      cmv_id_tostr(hex, CMV_ID_HEXSZ, id));
	return error;
}

/* Write one node below `parent`, whose depth the caller already knows. */
static int node_write(cmv_id *out, cmv_repo *repo, const cmv_id *parent, uint64_t parent_depth,
		      const cmv_message *msg, cmv_buf *scratch)
{
	cmv_block stack_blocks[16], *blocks = stack_blocks;
	cmv_node n;
	size_t i;
	int error = 0;

	if (!cmv_role_name(msg->role))
		return cmv_error__set(CMV_EINVALID, "invalid role %d", (int)msg->role);
	if (!cmv_kind_name(msg->kind))
		return cmv_error__set(CMV_EINVALID, "invalid kind %d", (int)msg->kind);
	if (msg->n_blocks > CMV_ARRAY_SIZE(stack_blocks) &&
	    !(blocks = cmv__calloc(msg->n_blocks, sizeof(*blocks))))
		return cmv_error__oom();

	for (i = 0; i < msg->n_blocks; i++) {
		const cmv_block_content *bc = &msg->blocks[i];
		unsigned int bflags = 0;
		if (!bc->type || !*bc->type || !field_ok(bc->type) || !field_ok(bc->tool_id) ||
		    !field_ok(bc->tool_name) || !field_ok(bc->media_type)) {
			error = cmv_error__set(CMV_EINVALID,
					       "block %zu: missing type or a field over %d bytes", i,
					       CMV_FIELD_MAX);
			goto done;
		}
		blocks[i].type = bc->type;
		blocks[i].tool_id = bc->tool_id && *bc->tool_id ? bc->tool_id : NULL;
		blocks[i].tool_name = bc->tool_name && *bc->tool_name ? bc->tool_name : NULL;
		blocks[i].media_type = bc->media_type && *bc->media_type ? bc->media_type : NULL;
		blocks[i].flags = bc->flags;
		if (bc->blob) {
			char hex[CMV_ID_HEXSZ + 1];
			int there = repo->backend->blob_exists(repo->backend, bc->blob);
			if (there < 0) {
				error = there;
				goto done;
			}
			if (!there) {
				error = cmv_error__set(CMV_ENOTFOUND, "block %zu: blob '%s' not found", i,
						       cmv_id_tostr(hex, sizeof(hex), bc->blob));
				goto done;
			}
			blocks[i].blob = *bc->blob;
			continue;
		}
		if (bc->len > CMV_BUF_CONTENT) {
			error = cmv_error__set(CMV_ETOOBIG, "block %zu: %zu bytes exceeds the limit", i,
					       bc->len);
			goto done;
		}
		cmv_id_hash(&blocks[i].blob, bc->data ? bc->data : "", bc->len);
		if (cmv_dag__block_is_text(bc->type, blocks[i].media_type) &&
		    cmv__utf8_valid(bc->data ? bc->data : "", bc->len, NULL))
			bflags |= CMV_STORE_BLOB_INDEX;
		if ((error = repo->backend->blob_put(repo->backend, &blocks[i].blob,
						     bc->data ? bc->data : "", bc->len, bflags)) < 0)
			goto done;
	}
	memset(&n, 0, sizeof(n));
	n.n_derived_from = msg->n_derived_from;
	n.derived_from = msg->derived_from;
	n.n_covers = msg->n_covers;
	n.covers = msg->covers;
	n.n_includes = msg->n_includes;
	n.includes = msg->includes;
	cmv_edge_list edges[CMV_EDGE_KINDS];
	cmv_dag__node_edges(edges, &n);
	for (int k = 0; k < CMV_EDGE_KINDS; k++)
		for (i = 0; i < edges[k].n; i++)
			if ((error = check_exists(repo, &edges[k].ids[i], edges[k].name)) < 0)
				goto done;

	if (parent)
		n.parent = *parent;
	n.role = msg->role;
	n.kind = msg->kind;
	n.depth = parent ? parent_depth + 1 : 0;
	n.n_blocks = msg->n_blocks;
	n.blocks = blocks;
	n.meta = msg->meta;
	n.meta_len = msg->meta ? msg->meta_len : 0;
	if ((error = cmv_dag__node_encode(scratch, &n)) < 0)
		goto done;
	cmv_id_hash(&n.id, scratch->ptr, scratch->size);
	if ((error = repo->backend->node_put(repo->backend, &n)) < 0)
		goto done;
	*out = n.id;
	repo->last_node = n.id;
	repo->last_depth = n.depth;
done:
	if (blocks != stack_blocks)
		free(blocks);
	return error;
}

int cmv_node_write(cmv_id *out, cmv_repo *repo, const cmv_id *parent, const cmv_message *msg)
{
	cmv_buf scratch = CMV_BUF_INIT(NODE_ENCODING_MAX);
	uint64_t depth = 0;
	cmv_id grand;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(msg);
	if (parent && cmv_id_is_none(parent))
		parent = NULL;
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if (parent && !cmv_id_is_none(&repo->last_node) && cmv_id_equal(parent, &repo->last_node))
		depth = repo->last_depth;
	else if (parent &&
		 (error = repo->backend->node_parent(repo->backend, &grand, &depth, parent)) < 0) {
		char hex[CMV_ID_HEXSZ + 1];
		if (error == CMV_ENOTFOUND)
			error = cmv_error__set(CMV_ENOTFOUND, "parent node '%s' not found",
					       cmv_id_tostr(hex, CMV_ID_HEXSZ, parent));
		goto done;
	}
	error = node_write(out, repo, parent, depth, msg, &scratch);
done:
	cmv_buf_dispose(&scratch);
	return cmv_dag__txn_end(repo, error);
}

int cmv_append(cmv_id *out, cmv_repo *repo, const char *branch, const cmv_message *msgs,
	       size_t n_msgs, unsigned int flags)
{
	cmv_buf scratch = CMV_BUF_INIT(NODE_ENCODING_MAX);
	cmv_ref *ref = NULL;
	cmv_id head, old, grand;
	uint64_t depth = 0;
	bool have_head;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(msgs || !n_msgs);
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->ref_get(repo->backend, &ref, branch);
	if (error == CMV_ENOTFOUND && (flags & CMV_APPEND_CREATE)) {
		cmv_ref nr;
		cmv_error_clear();
		if (!cmv_ref_name_is_valid(branch)) {
			error = cmv_branch_create(repo, branch, NULL, NULL); /* says what is wrong with the name */
			goto done;
		}
		memset(&nr, 0, sizeof(nr));
		nr.name = branch;
		nr.type = CMV_REF_BRANCH;
		nr.created = nr.updated = cmv__now();
		/*
		 * Another writer may create it between our read and this put (a
		 * shared store, where creating does not lock the whole store): then
		 * we append to theirs, as if we had come second.
		 */
		error = repo->backend->ref_put(repo->backend, &nr, CMV_STORE_REF_CREATE, NULL);
		if (error == CMV_EEXISTS) {
			cmv_error_clear();
			error = 0;
		}
		if (error < 0 || (error = repo->backend->ref_get(repo->backend, &ref, branch)) < 0)
			goto done;
	} else if (error < 0) {
		goto done;
	}
	if (ref->type != CMV_REF_BRANCH) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is a snapshot; snapshots never change",
				       branch);
		goto done;
	}
	old = head = ref->target;
	have_head = !cmv_id_is_none(&head);
	if (have_head && (error = repo->backend->node_parent(repo->backend, &grand, &depth, &head)) < 0)
		goto done;
	for (size_t i = 0; i < n_msgs; i++) {
		cmv_id id;
		if ((error = node_write(&id, repo, have_head ? &head : NULL, depth, &msgs[i],
					&scratch)) < 0) {
			cmv_error__prefix("message %zu: ", i + 1);
			goto done;
		}
		depth = have_head ? depth + 1 : 0;
		head = id;
		have_head = true;
	}
	if (n_msgs)
		error = cmv_branch_update(repo, branch, &head, &old);
	if (!error && out)
		*out = head;
done:
	cmv_ref_free(ref);
	cmv_buf_dispose(&scratch);
	return cmv_dag__txn_end(repo, error);
}
