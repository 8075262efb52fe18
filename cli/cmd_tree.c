/* SPDX-License-Identifier: MIT */
/*
 * cmv tree: snapshots and branches as a lineage tree (what each was made
 * from), which of them are trims and of what, and what each would cost to
 * send: the tokens of its conversation rendered for each model asked for.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

cJSON *cli_ref_json(const cmv_ref *r, const char *head);

static bool t_json, t_no_tokens;
static const char *t_models, *t_depth;
static size_t max_depth = SIZE_MAX;
const cli_opt opts_tree[] = {
	{ OPT_VALUE, "depth", 'd', "N", "show N levels (1: the roots only)", &t_depth, NULL },
	{ OPT_VALUE, "models", 'm', "M,...", "count the tokens each ref sends to these models (default: each in its own, see cmv model, else claude-sonnet-4-5)", &t_models, NULL },
	{ OPT_FLAG, "no-tokens", 0, NULL, "do not count tokens (faster on a large store)", NULL, &t_no_tokens },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON (nested \"children\")", NULL, &t_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

int cli_counter_init(cli_counter *c, const cli_cmd *cmd, const char *list)
{
	size_t n = 0;
	char **names = list ? cli_split_commas(list, &n) : NULL;
	static const char *const dflt[] = { "claude-sonnet-4-5" };
	int rc = EXIT_OK;

	memset(c, 0, sizeof(*c));
	if (list && (!names || !n || n > CLI_COUNTER_MAX)) {
		free(names);
		return cli_usage_error(cmd, "--models takes 1 to %d model names, comma-separated", CLI_COUNTER_MAX);
	}
	if (cmv_models_load(&c->models, NULL) < 0) {
		free(names);
		return cli_fail("cannot load the model profiles");
	}
	for (size_t i = 0; i < (names ? n : 1) && rc == EXIT_OK; i++) {
		const char *name = names ? names[i] : dflt[0];
		if (cli_model(&c->m[i], c->models, name) < 0)
			rc = cli_usage_error(cmd, "unknown model '%s' (see cmv models)", name);
		else if (cmv_tok_load(&c->tok[i], c->m[i]->tokenizer, NULL) < 0)
			rc = cli_fail("cannot load the tokenizer");
		else
			c->n++;
	}
	free(names);
	if (rc != EXIT_OK)
		cli_counter_free(c);
	return rc;
}

int cli_counter_add(size_t *index, cli_counter *c, const cli_cmd *cmd, const char *name)
{
	const cmv_model *m;

	if (!c->models && cmv_models_load(&c->models, NULL) < 0)
		return cli_fail("cannot load the model profiles");
	if (cli_model(&m, c->models, name) < 0)
		return cli_usage_error(cmd, "unknown model '%s' (see cmv models)", name);
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->m[i]->id, m->id)) {
			*index = i;
			return EXIT_OK;
		}
	if (c->n == CLI_COUNTER_MAX)
		return cli_failf("more than %d models to count in", CLI_COUNTER_MAX);
	if (cmv_tok_load(&c->tok[c->n], m->tokenizer, NULL) < 0)
		return cli_fail("cannot load the tokenizer");
	c->m[c->n] = m;
	*index = c->n++;
	return EXIT_OK;
}

int cli_counter_count(uint64_t *out, cli_counter *c, size_t i, cmv_repo *repo, const cmv_id *tip)
{
	cmv_token_stats st;
	*out = 0;
	if (cmv_id_is_none(tip))
		return 0;
	if (cmv_count_sent(&st, repo, tip, c->m[i], c->tok[i]) < 0)
		return -1;
	*out = st.total;
	return 0;
}

void cli_counter_free(cli_counter *c)
{
	for (size_t i = 0; i < CLI_COUNTER_MAX; i++)
		cmv_tok_free(c->tok[i]);
	cmv_models_free(c->models);
	memset(c, 0, sizeof(*c));
}

const char *cli_human(uint64_t n, char buf[16])
{
	if (n < 1000)
		snprintf(buf, 16, "%llu", (unsigned long long)n);
	else if (n < 1000000)
		snprintf(buf, 16, n < 10000 ? "%.2fk" : n < 100000 ? "%.1fk" : "%.0fk", (double)n / 1e3);
	else
		snprintf(buf, 16, n < 10000000 ? "%.2fM" : n < 100000000 ? "%.1fM" : "%.0fM", (double)n / 1e6);
	return buf;
}

/* A trimmed branch's note: what it is a trim of and what that cut. NULL when it is not one. */
static cJSON *trim_note(cmv_repo *repo, const cmv_ref *r)
{
	cmv_buf b = CMV_BUF_INIT(1 << 20);
	cJSON *j = NULL;
	if (r->type == CMV_REF_BRANCH && cmv_branch_note_get(&b, repo, r->name, "trim") == 0 && b.size)
		j = cJSON_Parse(b.ptr);
	cmv_error_clear();
	cmv_buf_dispose(&b);
	return cJSON_IsObject(j) ? j : (cJSON_Delete(j), NULL);
}

/* Per entry: tokens for each model (UINT64_MAX: could not count; NOT_ASKED: not its model). */
#define NOT_ASKED (UINT64_MAX - 1)
typedef struct {
	cli_counter c;
	uint64_t *tokens; /* n_entries x c.n */
} counts;

static size_t depth_of(const cmv_tree *t, size_t i)
{
	size_t d = 1;
	for (size_t a = t->entries[i].parent; a != SIZE_MAX && d < SIZE_MAX; a = t->entries[a].parent)
		d++;
	return d;
}

static cJSON *tree_json(const cmv_tree *t, size_t i, const char *head, cmv_repo *repo, const counts *k)
{
	cJSON *o = cli_ref_json(t->entries[i].ref, head), *kids, *trim = trim_note(repo, t->entries[i].ref);

	cJSON_AddNumberToObject(o, "messages", (double)t->entries[i].n_nodes);
	if (trim)
		cJSON_AddItemToObject(o, "trim", trim);
	if (k->c.n) {
		cJSON *tok = cJSON_AddObjectToObject(o, "tokens");
		for (size_t m = 0; m < k->c.n; m++) {
			uint64_t v = k->tokens[i * k->c.n + m];
			if (v == NOT_ASKED)
				continue;
			if (v == UINT64_MAX)
				cJSON_AddNullToObject(tok, k->c.m[m]->id);
			else
				cJSON_AddNumberToObject(tok, k->c.m[m]->id, (double)v);
		}
	}
	kids = cJSON_AddArrayToObject(o, "children");
	for (size_t j = i + 1; j < t->n_entries; j++)
		if (t->entries[j].parent == i && depth_of(t, j) <= max_depth)
			cJSON_AddItemToArray(kids, tree_json(t, j, head, repo, k));
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
	char hex[CMV_ID_HEXSZ + 1], num[16];
	counts k = { 0 };
	int rc = EXIT_OK;

	CLI_PARSE("tree");
	if (t_depth) {
		uint64_t d;
		if (!cli_parse_u64(&d, t_depth) || !d)
			return cli_usage_error(cli_find("tree"), "--depth needs a positive number of levels, not '%s'", t_depth);
		max_depth = (size_t)d;
	}
	if (t_models && t_no_tokens)
		return cli_usage_error(cli_find("tree"), "--models or --no-tokens, not both");
	if (!t_no_tokens && t_models && (rc = cli_counter_init(&k.c, cli_find("tree"), t_models)) != EXIT_OK)
		return rc;
	if (cmv_tree_build(&t, ctx->repo) < 0) {
		cli_counter_free(&k.c);
		return cli_fail("cannot build the tree");
	}
	const char *h = cmv_head_get(&head, ctx->repo) == 0 ? head.ptr : NULL;
	cmv_error_clear();
	/* without --models each ref counts in its own model (cli_branch_model), as stats and info do */
	size_t *own = NULL;
	if (!t_no_tokens && !t_models && t->n_entries) {
		cmv_buf name = CMV_BUF_INIT(CMV_BUF_SMALL);
		if (!(own = calloc(t->n_entries, sizeof(*own)))) {
			rc = cli_fail("out of memory");
			goto done;
		}
		for (size_t i = 0; i < t->n_entries && rc == EXIT_OK; i++) {
			cli_branch_model(&name, ctx, t->entries[i].ref->name);
			rc = cli_counter_add(&own[i], &k.c, cli_find("tree"), name.size ? name.ptr : CLI_DEFAULT_MODEL);
		}
		cmv_buf_dispose(&name);
		if (rc != EXIT_OK) {
			free(own);
			goto done;
		}
	}
	if (k.c.n && t->n_entries && !(k.tokens = calloc(t->n_entries * k.c.n, sizeof(*k.tokens)))) {
		free(own);
		rc = cli_fail("out of memory");
		goto done;
	}
	for (size_t i = 0; i < t->n_entries && k.c.n; i++)
		for (size_t m = 0; m < k.c.n; m++)
			if (own && own[i] != m)
				k.tokens[i * k.c.n + m] = NOT_ASKED;
			else if (cli_counter_count(&k.tokens[i * k.c.n + m], &k.c, m, ctx->repo, &t->entries[i].ref->target) < 0) {
				/* a ref the model cannot be sent (no API to render for) shows no count, the rest do */
				k.tokens[i * k.c.n + m] = UINT64_MAX;
				cmv_error_clear();
			}
	free(own);
	if (t_json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < t->n_entries; i++)
			if (t->entries[i].parent == SIZE_MAX)
				cJSON_AddItemToArray(arr, tree_json(t, i, h, ctx->repo, &k));
		rc = cli_print_json(arr);
		goto done;
	}
	if (!t->n_entries)
		printf("(no branches or snapshots)\n");
	for (size_t i = 0; i < t->n_entries; i++) {
		const cmv_tree_entry *e = &t->entries[i];
		if (depth_of(t, i) > max_depth)
			continue;
		/* Draw the guides of each ancestor level, then this entry's connector. */
		size_t chain[256], n = 0;
		for (size_t a = e->parent; a != SIZE_MAX && n < 256; a = t->entries[a].parent)
			chain[n++] = a;
		for (size_t q = n; q-- > 0;) {
			if (q == 0)
				break;
			printf("%s", is_last_child(t, chain[q - 1]) ? "    " : "│   ");
		}
		if (e->parent != SIZE_MAX)
			printf("%s", is_last_child(t, i) ? "└── " : "├── ");
		printf("%s%s (%s, %llu messages%s%s", e->ref->name, h && !strcmp(h, e->ref->name) ? " *" : "",
		       cli_ref_type_name(e->ref->type), (unsigned long long)e->n_nodes,
		       cmv_id_is_none(&e->ref->target) ? "" : ", ",
		       cmv_id_is_none(&e->ref->target) ? "" : cli_short(&e->ref->target, hex));
		for (size_t m = 0, shown = 0; m < k.c.n; m++) {
			uint64_t v = k.tokens[i * k.c.n + m];
			if (v < NOT_ASKED && !cmv_id_is_none(&e->ref->target))
				printf("%s%s %s", shown++ ? ", " : "; ", cli_human(v, num), k.c.m[m]->id);
		}
		printf(")");
		cJSON *trim = trim_note(ctx->repo, e->ref);
		if (trim) {
			double b0 = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(trim, "bytes_before"));
			double b1 = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(trim, "bytes_after"));
			const char *of = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(trim, "from_ref"));
			printf(" [trim%s%s, threshold %g, bytes -%.0f%%]", of ? " of " : "", of ? of : "",
			       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(trim, "threshold")),
			       b0 > 0 ? 100.0 * (b0 - b1) / b0 : 0.0);
			cJSON_Delete(trim);
		}
		if (e->ref->description)
			printf(" - %s", e->ref->description);
		printf("\n");
	}
done:
	free(k.tokens);
	cli_counter_free(&k.c);
	cmv_tree_free(t);
	cmv_buf_dispose(&head);
	return rc;
}
