/* SPDX-License-Identifier: MIT */
/*
 * Fault-driven pinning: a page recalled (faulted in) is pinned for the
 * next materializations of the branch, kept in one note of it (FAULT_KEY:
 * per page id, how often it faulted and the branch's depth at the last).
 *
 * A pin lasts a number of appended records that doubles with each fault,
 * up to a cap, so a page the agent keeps asking for stays and one asked
 * for once leaves again: no thrashing. Whatever reads the faults (the whole
 * work, a report after a splice, the page table's check that its pins
 * still hold) goes through each_fault, so all agree on what is pinned at a
 * tip. A note that does not read is no faults, never an error.
 */
#include <cjson/cJSON.h>
#include <string.h>
#include "pager_priv.h"

#define FAULT_TTL_NODES 8     /* a page faulted in once stays for this many appended records */
#define FAULT_TTL_MAX 512     /* and at most this many, however often it faulted */

static uint64_t depth_of(cmv_repo *repo, const cmv_id *tip)
{
	cmv_node *n = NULL;
	uint64_t d = 0;
	if (cmv_node_read(&n, repo, tip) == 0)
		d = n->depth;
	cmv_error_clear();
	cmv_node_free(n);
	return d;
}

static uint64_t fault_ttl(uint64_t count)
{
	uint64_t ttl = FAULT_TTL_NODES;
	for (uint64_t i = 1; i < count && ttl < FAULT_TTL_MAX; i++)
		ttl *= 2;
	return ttl < FAULT_TTL_MAX ? ttl : FAULT_TTL_MAX;
}

int cmv_pager_fault(cmv_repo *repo, const char *branch, const char *page_id)
{
	cmv_buf note = CMV_BUF_INIT(1 << 24);
	cmv_id tip;
	cJSON *j = NULL;
	char *text = NULL;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(page_id);
	if (!cmv_id_is_prefix(page_id))
		return cmv_error__set(CMV_EINVALID, "'%s' is not a page id (7 or more hex digits)", page_id);
	if ((error = cmv_resolve(&tip, repo, branch)) < 0)
		return error;
	if (cmv_branch_note_get(&note, repo, branch, FAULT_KEY) == 0 && note.size)
		j = cJSON_Parse(note.ptr);
	cmv_error_clear();
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		j = cJSON_CreateObject();
	}
	/* [faults, depth of the branch at the last one] */
	cJSON *e = cJSON_GetObjectItemCaseSensitive(j, page_id);
	double count = cJSON_IsArray(e) && e->child ? e->child->valuedouble : 0;
	const double v[2] = { count + 1, (double)depth_of(repo, &tip) };
	cJSON *ne = cJSON_CreateDoubleArray(v, 2);
	if (!ne || (e ? !cJSON_ReplaceItemInObjectCaseSensitive(j, page_id, ne) : !cJSON_AddItemToObject(j, page_id, ne))) {
		cJSON_Delete(ne);
		error = cmv_error__oom();
	} else if (!(text = cJSON_PrintUnformatted(j))) {
		error = cmv_error__oom();
	} else {
		error = cmv_branch_note_set(repo, branch, FAULT_KEY, text);
	}
	cJSON_free(text);
	cJSON_Delete(j);
	cmv_buf_dispose(&note);
	return error;
}

/* Each page id (a prefix) that the branch's faults pin at tip's depth. */
static void each_fault(cmv_repo *repo, const char *branch, const cmv_id *tip, void (*fn)(const char *id, void *ctx),
		       void *ctx)
{
	cmv_buf note = CMV_BUF_INIT(1 << 24);
	cJSON *j = NULL;
	if (cmv_branch_note_get(&note, repo, branch, FAULT_KEY) == 0 && note.size)
		j = cJSON_Parse(note.ptr);
	cmv_error_clear();
	uint64_t now = j ? depth_of(repo, tip) : 0;
	for (const cJSON *e = cJSON_IsObject(j) ? j->child : NULL; e; e = e->next) {
		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2)
			continue;
		uint64_t count = (uint64_t)e->child->valuedouble, at = (uint64_t)e->child->next->valuedouble;
		if (now < at || now - at >= fault_ttl(count))
			continue;
		fn(e->string, ctx);
	}
	cJSON_Delete(j);
	cmv_buf_dispose(&note);
}

typedef struct {
	pager *p;
	size_t n_pinned;
} fault_pin;

static void pin_fault(const char *id, void *ctx)
{
	fault_pin *fp = ctx;
	pager *p = fp->p;
	size_t len = strlen(id);
	for (size_t q = 0; q < p->n; q++)
		if (!strncmp(p->pages[q].pub.id, id, len) && !p->pages[q].pub.pinned) {
			p->pages[q].pub.pinned = p->pages[q].faulted = true;
			cmv_pager__pin_group(p, p->pages[q].pub.turn);
			fp->n_pinned++;
		}
}

/* Pages faulted in lately stay pinned: longer the more often they faulted (no thrashing). */
void cmv_pager__pin_faulted(pager *p, const char *branch, const cmv_id *tip, size_t *n_pinned)
{
	fault_pin fp = { p, 0 };
	each_fault(p->repo, branch, tip, pin_fault, &fp);
	*n_pinned += fp.n_pinned;
}

typedef struct {
	cmv_materialize_report *r;
	size_t n_bodies;
} report_fault;

static void report_fault_pin(const char *id, void *ctx)
{
	report_fault *rf = ctx;
	size_t len = strlen(id);
	for (size_t q = 0; q < rf->r->n_pages; q++) {
		cmv_page *pg = &rf->r->pages[q];
		if (strncmp(pg->id, id, len))
			continue;
		pg->pinned = true;
		if (rf->n_bodies + pg->turn < rf->r->n_pages)
			rf->r->pages[rf->n_bodies + pg->turn].pinned = true;
	}
}

/*
 * A report's pins and counts after an append, as the whole work would set
 * them: the last keep_turns turns, bodies and all, and what faults pin now.
 * The pages are the bodies (n_bodies of them), then one per turn in order.
 */
void cmv_pager__report_pins(cmv_materialize_report *r, const cmv_pager_options *o, cmv_repo *repo, const cmv_id *tip,
			    size_t n_bodies)
{
	report_fault rf = { r, n_bodies };
	for (size_t q = 0; q < r->n_pages; q++)
		r->pages[q].pinned = r->pages[q].turn + o->keep_turns >= r->turns &&
				     !(o->stub_pinned && r->pages[q].kind == CMV_PAGE_BODY); /* as pin_pages says */
	if (o->state_branch)
		each_fault(repo, o->state_branch, tip, report_fault_pin, &rf);
	r->resident = r->stubbed = r->evicted = r->pinned = 0;
	r->pinned_tokens = 0;
	for (size_t q = 0; q < r->n_pages; q++) {
		const cmv_page *pg = &r->pages[q];
		r->resident += pg->state == CMV_PAGE_RESIDENT;
		r->stubbed += pg->state == CMV_PAGE_STUBBED;
		r->evicted += pg->state == CMV_PAGE_EVICTED;
		if (pg->pinned) {
			r->pinned++;
			if (pg->kind == CMV_PAGE_GROUP)
				r->pinned_tokens += pg->tokens;
		}
	}
}

typedef struct {
	const cJSON *faulted; /* the ids the table's faults pinned */
	bool *held;           /* per id: a fault pins it still */
} fault_hold;

static void fault_holds(const char *prefix, void *ctx)
{
	fault_hold *h = ctx;
	size_t k = 0;
	for (const cJSON *f = h->faulted->child; f; f = f->next, k++)
		if (cJSON_IsString(f) && !strncmp(f->valuestring, prefix, strlen(prefix)))
			h->held[k] = true;
}

/*
 * Whether every page the table's faults pinned is still pinned by one at
 * tip: when a pin ran out, the page leaves again, and that is a new cut.
 */
bool cmv_pager__faults_hold(cmv_repo *repo, const char *branch, const cmv_id *tip, const cJSON *faulted)
{
	size_t n = (size_t)cJSON_GetArraySize(faulted);
	if (!n)
		return true;
	fault_hold h = { faulted, cmv__calloc(n, sizeof(bool)) };
	bool all = h.held != NULL;
	if (all)
		each_fault(repo, branch, tip, fault_holds, &h);
	for (size_t k = 0; k < n && all; k++)
		all = h.held[k];
	free(h.held);
	return all;
}
