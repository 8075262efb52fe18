/* SPDX-License-Identifier: MIT */
/* cmv tree: snapshots and branches as a lineage tree (what each was made from). */
#include <string.h>
#include "cmd.h"

cJSON *cli_ref_json(const cmv_ref *r, const char *head);

static bool t_json;
const cli_opt opts_tree[] = {
	{ OPT_FLAG, "json", 0, NULL, "print as JSON (nested \"children\")", NULL, &t_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static cJSON *tree_json(const cmv_tree *t, size_t i, const char *head)
{
	cJSON *o = cli_ref_json(t->entries[i].ref, head), *kids;

	cJSON_AddNumberToObject(o, "messages", (double)t->entries[i].n_nodes);
	kids = cJSON_AddArrayToObject(o, "children");
	for (size_t j = i + 1; j < t->n_entries; j++)
		if (t->entries[j].parent == i)
			cJSON_AddItemToArray(kids, tree_json(t, j, head));
	return o;
}

/* Whether entry i is the last child of its parent (for drawing the tree). */
static bool is_last_child(const cmv_tree *t, size_t i)
{
	for (size_t j = i + 1; j < t->n_entries; j++)
		if (t->entries[j].parent == t->entries[i].parent)
			return false;
	return true;
}

CMD(tree)
{
	cmv_tree *t = NULL;
	cmv_buf head = CMV_BUF_INIT(4096);
	char hex[CMV_ID_HEXSZ + 1];

	CLI_PARSE("tree");
	if (cmv_tree_build(&t, ctx->repo) < 0)
		return cli_fail("cannot build the tree");
	const char *h = cmv_head_get(&head, ctx->repo) == 0 ? head.ptr : NULL;
	cmv_error_clear();
	if (t_json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < t->n_entries; i++)
			if (t->entries[i].parent == SIZE_MAX)
				cJSON_AddItemToArray(arr, tree_json(t, i, h));
		cmv_tree_free(t);
		cmv_buf_dispose(&head);
		return cli_print_json(arr);
	}
	if (!t->n_entries)
		printf("(no branches or snapshots)\n");
	for (size_t i = 0; i < t->n_entries; i++) {
		const cmv_tree_entry *e = &t->entries[i];
		/* Draw the guides of each ancestor level, then this entry's connector. */
		size_t chain[256], n = 0;
		for (size_t a = e->parent; a != SIZE_MAX && n < 256; a = t->entries[a].parent)
			chain[n++] = a;
		for (size_t k = n; k-- > 0;) {
			if (k == 0)
				break;
			printf("%s", is_last_child(t, chain[k - 1]) ? "    " : "│   ");
		}
		if (e->parent != SIZE_MAX)
			printf("%s", is_last_child(t, i) ? "└── " : "├── ");
		printf("%s%s (%s, %llu messages%s%s)", e->ref->name, h && !strcmp(h, e->ref->name) ? " *" : "",
		       cli_ref_type_name(e->ref->type),
		       (unsigned long long)e->n_nodes, cmv_id_is_none(&e->ref->target) ? "" : ", ",
		       cmv_id_is_none(&e->ref->target) ? "" : cli_short(&e->ref->target, hex));
		if (e->ref->description)
			printf(" - %s", e->ref->description);
		printf("\n");
	}
	cmv_tree_free(t);
	cmv_buf_dispose(&head);
	return EXIT_OK;
}
