/* SPDX-License-Identifier: MIT */
/* cmv list: branches and snapshots, oldest first (or --sort name|branches); the current branch marked. */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "base/base.h"

static bool ls_json, ls_branches, ls_snapshots, ls_sessions;
static const char *ls_sort, *ls_tag;
const cli_opt opts_list[] = {
	{ OPT_VALUE, "sort", 0, "date|name|branches", "oldest first (the default), by name, or most branches made from it first", &ls_sort, NULL },
	{ OPT_VALUE, "tag", 0, "TAG", "only refs with this tag", &ls_tag, NULL },
	{ OPT_FLAG, "branches", 0, NULL, "only branches", NULL, &ls_branches },
	{ OPT_FLAG, "snapshots", 0, NULL, "only snapshots", NULL, &ls_snapshots },
	{ OPT_FLAG, "sessions", 0, NULL, "only imported sessions", NULL, &ls_sessions },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &ls_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

cJSON *cli_ref_json(const cmv_ref *r, const char *head);
cJSON *cli_ref_json(const cmv_ref *r, const char *head)
{
	cJSON *o = cJSON_CreateObject(), *tags;
	char hex[CMV_ID_HEXSZ + 1], when[32];

	cJSON_AddStringToObject(o, "name", r->name);
	cJSON_AddStringToObject(o, "type", cli_ref_type_name(r->type));
	/* the tip is "head" in every output (docs/cli.md) */
	if (cmv_id_is_none(&r->target))
		cJSON_AddNullToObject(o, "head");
	else
		cJSON_AddStringToObject(o, "head", cli_id(&r->target, hex));
	cJSON_AddBoolToObject(o, "current", head && !strcmp(head, r->name));
	cJSON_AddStringToObject(o, "created", cli_rfc3339(r->created, when));
	cJSON_AddStringToObject(o, "updated", cli_rfc3339(r->updated, when));
	if (r->from_ref)
		cJSON_AddStringToObject(o, "from", r->from_ref);
	else
		cJSON_AddNullToObject(o, "from");
	if (r->description)
		cJSON_AddStringToObject(o, "description", r->description);
	else
		cJSON_AddNullToObject(o, "description");
	tags = cJSON_AddArrayToObject(o, "tags");
	for (size_t i = 0; i < r->n_tags; i++)
		cJSON_AddItemToArray(tags, cJSON_CreateString(r->tags[i]));
	return o;
}

typedef struct {
	char *name, *from, *line;
	int64_t created;
	size_t branches; /* branches made from it */
	cJSON *json;
} entry;

typedef struct {
	const char *head;
	entry *v;
	size_t n, cap;
} collect_state;

static int list_one(const cmv_ref *r, void *payload)
{
	collect_state *st = payload;
	char hex[CMV_ID_HEXSZ + 1], when[32];
	bool tagged = !ls_tag;

	if ((ls_branches && r->type != CMV_REF_BRANCH) || (ls_snapshots && r->type != CMV_REF_SNAPSHOT) ||
	    (ls_sessions && r->type != CMV_REF_SESSION))
		tagged = false;
	for (size_t i = 0; ls_tag && i < r->n_tags; i++)
		tagged |= !strcmp(r->tags[i], ls_tag);
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 64;
		entry *v = realloc(st->v, ncap * sizeof(*v));
		if (!v)
			return cmv_error__oom();
		st->v = v;
		st->cap = ncap;
	}
	/* every ref is kept (a branch counts for what it was made from), shown or not */
	entry *e = &st->v[st->n++];
	memset(e, 0, sizeof(*e));
	e->name = strdup(r->name);
	e->from = r->from_ref && r->type == CMV_REF_BRANCH ? strdup(r->from_ref) : NULL;
	e->created = r->created;
	if (!tagged)
		return 0;
	e->json = cli_ref_json(r, st->head);
	cmv_buf line = CMV_BUF_INIT(1 << 20);
	cmv_buf_printf(&line, "%c %-8s %-12s %s  %s", st->head && !strcmp(st->head, r->name) ? '*' : ' ',
		       cli_ref_type_name(r->type), cmv_id_is_none(&r->target) ? "(empty)" : cli_short(&r->target, hex),
		       cli_time(r->created, when), r->name);
	if (r->n_tags) {
		cmv_buf_puts(&line, " [");
		for (size_t i = 0; i < r->n_tags; i++)
			cmv_buf_printf(&line, "%s%s", i ? "," : "", r->tags[i]);
		cmv_buf_puts(&line, "]");
	}
	if (r->description)
		cmv_buf_printf(&line, " - %s", r->description);
	e->line = cmv_buf_detach(&line);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int by_date(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	return x->created != y->created ? (x->created < y->created ? -1 : 1) : strcmp(x->name, y->name);
}

static int by_branches(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	return x->branches != y->branches ? (x->branches > y->branches ? -1 : 1) : by_date(a, b);
}

CMD(list)
{
	cmv_buf head = CMV_BUF_INIT(4096);
	collect_state st = { NULL, NULL, 0, 0 };
	cJSON *arr = NULL;
	int error;

	CLI_PARSE("list");
	if (ls_sort && strcmp(ls_sort, "date") && strcmp(ls_sort, "name") && strcmp(ls_sort, "branches"))
		return cli_usage_error(cli_find("list"), "--sort takes date, name or branches");
	if (cmv_head_get(&head, ctx->repo) == 0)
		st.head = head.ptr;
	cmv_error_clear();
	error = cmv_ref_foreach(ctx->repo, list_one, &st);
	for (size_t i = 0; i < st.n; i++)
		for (size_t j = 0; j < st.n && st.v[i].from; j++)
			if (st.v[j].name && !strcmp(st.v[j].name, st.v[i].from))
				st.v[j].branches++;
	if (ls_sort && st.n > 1)
		qsort(st.v, st.n, sizeof(*st.v), !strcmp(ls_sort, "name") ? by_name : !strcmp(ls_sort, "date") ? by_date : by_branches);
	if (ls_json)
		arr = cJSON_CreateArray();
	for (size_t i = 0; i < st.n; i++) {
		if (st.v[i].json) {
			cJSON_AddNumberToObject(st.v[i].json, "branches", (double)st.v[i].branches);
			if (arr && error >= 0)
				cJSON_AddItemToArray(arr, st.v[i].json);
			else
				cJSON_Delete(st.v[i].json);
		}
		if (!arr && error >= 0 && st.v[i].line)
			printf("%s\n", st.v[i].line);
		free(st.v[i].name);
		free(st.v[i].from);
		free(st.v[i].line);
	}
	free(st.v);
	cmv_buf_dispose(&head);
	if (error < 0) {
		cJSON_Delete(arr);
		return cli_fail("cannot list refs");
	}
	return arr ? cli_print_json(arr) : EXIT_OK;
}
