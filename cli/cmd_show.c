/* SPDX-License-Identifier: MIT */
/* cmv show ID: a node in full, or a blob's raw bytes. */
#include <string.h>
#include "cmd.h"

static const char *s_id;
static bool s_json;
const cli_opt opts_show[] = {
	{ OPT_ARG, "ID", 0, NULL, "a node or blob id (7+ hex digits), or a ref", &s_id, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print a node as JSON (blob ids, not contents)", NULL, &s_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static int show_node(cli_ctx *ctx, const cmv_id *id)
{
	cmv_node *n = NULL;
	cmv_buf data = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char hex[CMV_ID_HEXSZ + 1];
	int rc = EXIT_OK;

	if (cmv_node_read(&n, ctx->repo, id) < 0)
		return cli_fail("cannot read the node");
	if (s_json) {
		cJSON *o = cJSON_CreateObject(), *blocks, *e;
		cJSON_AddStringToObject(o, "id", cli_id(&n->id, hex));
		if (cmv_id_is_none(&n->parent))
			cJSON_AddNullToObject(o, "parent");
		else
			cJSON_AddStringToObject(o, "parent", cli_id(&n->parent, hex));
		cJSON_AddStringToObject(o, "role", cmv_role_name(n->role));
		cJSON_AddStringToObject(o, "kind", cmv_kind_name(n->kind));
		cJSON_AddNumberToObject(o, "depth", (double)n->depth);
		blocks = cJSON_AddArrayToObject(o, "blocks");
		for (size_t i = 0; i < n->n_blocks; i++) {
			const cmv_block *b = &n->blocks[i];
			cJSON *bo = cJSON_CreateObject();
			cJSON_AddStringToObject(bo, "type", b->type);
			cJSON_AddStringToObject(bo, "blob", cli_id(&b->blob, hex));
			if (b->tool_id)
				cJSON_AddStringToObject(bo, "tool_id", b->tool_id);
			if (b->tool_name)
				cJSON_AddStringToObject(bo, "tool_name", b->tool_name);
			if (b->media_type)
				cJSON_AddStringToObject(bo, "media_type", b->media_type);
			if (b->flags & CMV_BLOCK_ERROR)
				cJSON_AddTrueToObject(bo, "is_error");
			cJSON_AddItemToArray(blocks, bo);
		}
		if (n->meta) {
			cJSON *m = cJSON_ParseWithLength(n->meta, n->meta_len);
			cJSON_AddItemToObject(o, "meta", m ? m : cJSON_CreateString("(not JSON)"));
		}
		e = cJSON_AddArrayToObject(o, "derived_from");
		for (size_t i = 0; i < n->n_derived_from; i++)
			cJSON_AddItemToArray(e, cJSON_CreateString(cli_id(&n->derived_from[i], hex)));
		e = cJSON_AddArrayToObject(o, "covers");
		for (size_t i = 0; i < n->n_covers; i++)
			cJSON_AddItemToArray(e, cJSON_CreateString(cli_id(&n->covers[i], hex)));
		cmv_node_free(n);
		return cli_print_json(o);
	}
	printf("node %s\n", cli_id(&n->id, hex));
	if (!cmv_id_is_none(&n->parent))
		printf("parent %s\n", cli_id(&n->parent, hex));
	printf("role %s\nkind %s\ndepth %llu\n", cmv_role_name(n->role), cmv_kind_name(n->kind),
	       (unsigned long long)n->depth);
	for (size_t i = 0; i < n->n_derived_from; i++)
		printf("derived_from %s\n", cli_id(&n->derived_from[i], hex));
	for (size_t i = 0; i < n->n_covers; i++)
		printf("covers %s\n", cli_id(&n->covers[i], hex));
	if (n->meta)
		printf("meta %.*s\n", (int)n->meta_len, n->meta);
	for (size_t i = 0; i < n->n_blocks; i++) {
		const cmv_block *b = &n->blocks[i];
		if (cmv_blob_read(&data, ctx->repo, &b->blob) < 0) {
			rc = cli_fail("cannot read a blob");
			break;
		}
		printf("\n--- block %zu: %s", i, b->type);
		if (b->tool_name)
			printf(" %s", b->tool_name);
		if (b->tool_id)
			printf(" [%s]", b->tool_id);
		if (b->flags & CMV_BLOCK_ERROR)
			printf(" (error)");
		printf(" blob %s, %zu bytes\n", cli_short(&b->blob, hex), data.size);
		if (cmv_utf8_valid(data.ptr, data.size, NULL) && !memchr(data.ptr, '\0', data.size))
			printf("%s\n", data.ptr);
		else
			printf("(binary%s%s; 'cmv show %s' prints the bytes)\n",
			       b->media_type ? " " : "", b->media_type ? b->media_type : "",
			       cli_short(&b->blob, hex));
	}
	cmv_node_free(n);
	cmv_buf_dispose(&data);
	return rc;
}

CMD(show)
{
	cmv_buf data = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_object_type type = CMV_OBJ_NODE;
	cmv_id id;
	int rc = EXIT_OK;

	CLI_PARSE("show");
	/* A ref name or HEAD~N first; then a bare prefix may also name a blob. */
	if (cmv_resolve(&id, ctx->repo, s_id) < 0) {
		if (!cmv_id_is_prefix(s_id) || cmv_resolve_object(&id, &type, ctx->repo, s_id) < 0)
			return cli_fail("not found");
	}
	cmv_error_clear();
	if (type == CMV_OBJ_NODE)
		return show_node(ctx, &id);
	if (cmv_blob_read(&data, ctx->repo, &id) < 0)
		rc = cli_fail("cannot read the blob");
	else if (fwrite(data.ptr, 1, data.size, stdout) != data.size)
		rc = cli_failf("cannot write the blob");
	cmv_buf_dispose(&data);
	return rc;
}
