/* SPDX-License-Identifier: MIT */
/*
 * The pre-migration job (docs/compaction.md): trim, then page, then
 * summarize only what still does not fit.
 *
 *  1. Trim the branch into the new branch (structurally lossless).
 *  2. If its rendering for the target fits the budget, that is the result.
 *  3. Otherwise cut it in two at a message where the request stays valid
 *     (a user turn, or an assistant message whose later results all answer
 *     calls after the cut): the longest tail that fits beside a summary is
 *     kept verbatim, and a summary node that `covers` everything before
 *     the cut takes its place. The search and the fit are done on the
 *     conversation in memory, counted exactly; nothing is written until the
 *     result is known to fit, and the written branch is rendered, counted
 *     and checked once more before the transaction commits.
 *
 * The covered messages are also kept as one blob, held by the job's event
 * node, whose id the summary shows: `cmv recall ID` prints them verbatim.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include "formats/formats_int.h"
#include <cmv/compaction.h>
#include <cmv/ledger.h>
#include "copy.h"
#include "handoff.h"
#include "tok/tok_int.h"

void cmv_compact_options_init(cmv_compact_options *opts)
{
	static const cmv_compact_options init = CMV_COMPACT_OPTIONS_INIT;
	*opts = init;
}

/* The summary gets at least this, and at most a quarter of the budget up to the cap. */
#define SUMMARY_MIN_TOKENS 256
#define SUMMARY_MAX_TOKENS 16000

void cmv_compact_report_dispose(cmv_compact_report *rep)
{
	if (!rep)
		return;
	free(rep->tools_used);
	rep->tools_used = NULL;
	free(rep->in_flight);
	rep->in_flight = NULL;
}

/* A node of the trimmed branch, as the cut and the write see it. */
typedef struct {
	cmv_id id;
	cmv_kind kind;
	cmv_role role;
	cmv_id parent;
	char hex[CMV_ID_HEXSZ + 1];
} path_node;

typedef struct {
	cmv_repo *repo;
	const cmv_id *tip;
	const cmv_compact_options *o;
	cmv_render_options ro;
	cmv_render_target target;
	uint64_t budget;
	conv raw;
	size_t n;          /* raw messages */
	cmv_buf body, problems;
	struct llm_plan *plan;
	/* what each phase of compact_once leaves to the next */
	cmv_id trimmed;        /* the trimmed branch's tip */
	cmv_id head;           /* the written branch's tip, before the event that records the job */
	uint64_t reserve;      /* the room the cut search leaves for the summary */
	size_t *cuts, n_cuts;  /* where a cut may go (cut_points) */
	size_t cut;            /* raw[0..cut) are summarized */
	uint64_t tail_tokens;  /* raw[cut..] rendered beside a one-token summary */
	path_node *path;       /* the trimmed branch, root first */
	size_t n_path, k;      /* path[k] is the cut's record (n_path: none) */
	cmv_id *cov;           /* the covered nodes (rep->covered_nodes of them) */
	size_t n_sys;          /* stage 3: the system prompts the abridged one derives from */
	cmv_buf doc, covered;  /* the summary; raw[0..cut) as one JSON array, kept whole in the event */
	cmv_buf sys_full, sys_text; /* stage 3: the system prompts whole, and abridged */
} job;

/*
 * A summarizer can take minutes; the store's write lock must not be held
 * that long. With an LLM the job runs twice: the first run finds the cut,
 * has the covered messages summarized into `doc` and rolls back; the second
 * (trim and cut are deterministic: the same nodes, the same cut) writes
 * the branch from that document, refitting it without asking again.
 */
struct llm_plan {
	bool have;           /* doc holds the summarizer's document */
	ho_doc doc;
	unsigned int passes;
	uint64_t in_tokens, out_tokens;
	size_t cut;          /* the first run's cut, which the second must find again */
	uint64_t allowance;
	cJSON *covered;      /* the first run's covered messages */
};
#define PLANNED 1

/* Render [summary lead] + raw[from..] for the target; count it; optionally check it. */
static int measure(uint64_t *tokens, size_t *problems, job *j, size_t from, const char *lead)
{
	cmv__conversation cv;
	cmv_token_stats ts;
	int error;

	if ((error = cmv__conversation_from_raw(&cv, &j->raw, from, lead, j->target)) < 0)
		return error;
	if (!cJSON_GetArraySize(cv.msgs)) {
		cmv__conversation_dispose(&cv);
		return cmv_error__set(CMV_EINVALID, "nothing to render: the conversation has no messages");
	}
	error = cmv__conversation_write(&j->body, &cv, &j->ro);
	cmv__conversation_dispose(&cv);
	if (error < 0)
		return error;
	if ((error = cmv_count_request(&ts, j->o->target, j->o->tok, j->body.ptr, j->body.size)) < 0)
		return error;
	*tokens = ts.total;
	if (problems) {
		int np = cmv_check_request(&j->problems, j->target, j->body.ptr, j->body.size);
		if (np < 0)
			return np;
		*problems = (size_t)np;
	}
	return 0;
}

/*
 * The messages a cut may start at, ascending: a user turn or an assistant
 * message that begins a record, with every later result answering a call
 * at or after it (a cut never orphans a result).
 */
static int cut_points(size_t **out, size_t *n_out, const cJSON *msgs, size_t n)
{
	size_t *use_at = NULL, *cuts = NULL, *minuse = NULL, nc = 0, i = 0;
	cmv__strmap calls = { 0 };
	int error = 0;

	if (!(minuse = cmv__calloc(n + 1, sizeof(*minuse))) || !(cuts = cmv__calloc(n + 1, sizeof(*cuts))) ||
	    !(use_at = cmv__calloc(n + 1, sizeof(*use_at)))) {
		error = cmv_error__oom();
		goto done;
	}
	/* for each message, the earliest message holding a call that one of its results answers */
	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++) {
		const cJSON *b;
		use_at[i] = i;
		cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(m, "content")) {
			const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			if (!t)
				continue;
			if (!strcmp(t, "tool_use")) {
				const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id"));
				if (id && (error = cmv__strmap_put(&calls, id, i, NULL)) < 0)
					break;
			} else if (!strcmp(t, "tool_result")) {
				const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "tool_use_id"));
				size_t at;
				if (id && cmv__strmap_get(&calls, id, &at, NULL) && at < use_at[i])
					use_at[i] = at;
			}
		}
	}
	minuse[n] = n;
	for (size_t k = n; k-- > 0;)
		minuse[k] = use_at[k] < minuse[k + 1] ? use_at[k] : minuse[k + 1];
	i = 0;
	for (const cJSON *m = msgs->child; m; m = m->next, i++) {
		const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
		if (i == 0 || !cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "node")) || minuse[i] < i)
			continue;
		if (cmv_compaction__ho_user_turn(m) || (role && !strcmp(role, "assistant")))
			cuts[nc++] = i;
	}
	cuts[nc++] = n; /* everything summarized: always valid */
done:
	cmv__strmap_dispose(&calls);
	free(use_at);
	free(minuse);
	if (error < 0) {
		free(cuts);
		return error;
	}
	*out = cuts;
	*n_out = nc;
	return 0;
}

/* The capability check: what the session uses that the target may not take. */
static int capabilities(cmv_compact_report *rep, const cJSON *msgs, const cmv_model *target)
{
	cmv_buf names = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv__strmap seen = { 0 };
	int error = 0;

	for (const cJSON *m = msgs->child; m && !error; m = m->next) {
		const cJSON *b;
		cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(m, "content")) {
			const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			if (!t)
				continue;
			if (!strcmp(t, "tool_use")) {
				const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
				rep->tool_calls++;
				if (name && !cmv__strmap_get(&seen, name, NULL, NULL)) {
					if ((error = cmv__strmap_put(&seen, name, 1, NULL)) < 0 ||
					    (error = cmv_buf_printf(&names, "%s%s", names.size ? "," : "", name)) < 0)
						break;
				}
			} else if (!strcmp(t, "image")) {
				rep->images++;
			} else if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking") || !strcmp(t, "reasoning")) {
				rep->thinking++;
			}
		}
	}
	if (!error && !(rep->tools_used = cmv__strdup(names.size ? names.ptr : "")))
		error = cmv_error__oom();
	rep->tools_as_text = rep->tool_calls && !target->tools;
	rep->images_dropped = rep->images && !target->images;
	cmv__strmap_dispose(&seen);
	cmv_buf_dispose(&names);
	return error;
}

/* The ledger's part of the capability check: calls with side effects whose outcome is unknown. */
static int in_flight(cmv_compact_report *rep, job *j)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_ledger *l = NULL;
	int error;

	if ((error = cmv_ledger_build(&l, j->repo, j->tip, NULL)) < 0 || (error = cmv_ledger_in_flight_text(&text, l, 10)) < 0)
		goto done;
	rep->in_flight_effects = l->in_flight_effects;
	free(rep->in_flight);
	if (!(rep->in_flight = cmv__strdup(text.ptr ? text.ptr : "")))
		error = cmv_error__oom();
done:
	cmv_ledger_free(l);
	cmv_buf_dispose(&text);
	return error;
}

/*
 * Replace the conversation's system prompts with one abridged text of at
 * most `allowance` tokens: the head of each, in order, and a line that says
 * how much there was and how to get it back.
 */
static int abridge_system(job *j, cmv_buf *full, cmv_buf *text, uint64_t allowance)
{
	const cJSON *s;
	size_t n = 0;
	int error = 0;

	cmv_buf_clear(full);
	cJSON_ArrayForEach(s, j->raw.system) {
		if (cJSON_IsString(s) && (error = cmv_buf_printf(full, "%s%s", full->size ? "\n\n" : "", s->valuestring)) < 0)
			return error;
	}
	if ((error = cmv_model_count(&n, NULL, j->o->target, j->o->tok, full->ptr, full->size)) < 0)
		return error;
	cmv_id id;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id_hash(&id, full->ptr, full->size);
	cmv_id_tostr(hex, sizeof(hex), &id);
	size_t keep = full->size;
	for (int round = 0; round < 16; round++) {
		size_t got = 0;
		cmv_buf_clear(text);
		while (keep && keep < full->size && ((unsigned char)full->ptr[keep] & 0xC0) == 0x80)
			keep--;
		if ((error = cmv_buf_put(text, full->ptr, keep)) < 0 ||
		    (error = cmv_buf_printf(text, "\n\n[cmv: the system prompt (%zu tokens) is abridged to fit %s; "
						  "recall %.7s has it whole]", n, j->o->target->id, hex)) < 0 ||
		    (error = cmv_model_count(&got, NULL, j->o->target, j->o->tok, text->ptr, text->size)) < 0)
			return error;
		if (got <= allowance)
			break;
		keep = (size_t)((double)keep * (double)allowance / (double)got * 0.95);
	}
	cJSON *arr = cJSON_CreateArray();
	if (!arr || !cJSON_AddItemToArray(arr, cJSON_CreateString(text->ptr))) {
		cJSON_Delete(arr);
		return cmv_error__oom();
	}
	cJSON_Delete(j->raw.system);
	j->raw.system = arr;
	return 0;
}

/* The summary for raw[0..cut) within `allowance` tokens of the target. */
static int summarize(cmv_buf *doc, uint64_t *doc_tokens, cmv_compact_report *rep, job *j, size_t cut,
		     uint64_t allowance, size_t covered_nodes)
{
	const cmv_compact_options *o = j->o;
	ho_doc d;
	int error;

	cmv_compaction__ho_init(&d);
	if (o->llm) {
		struct llm_plan *pl = j->plan;
		error = 0;
		if (!pl->have) {
			/* what to summarize, kept for after the rollback: the model is asked with no lock held */
			cJSON *msgs = cJSON_CreateArray();
			size_t i = 0;
			for (const cJSON *m = j->raw.messages->child; msgs && m && i < cut; m = m->next, i++)
				if (!cJSON_AddItemToArray(msgs, cJSON_Duplicate(m, 1))) {
					cJSON_Delete(msgs);
					msgs = NULL;
				}
			cmv_compaction__ho_dispose(&d);
			if (!msgs)
				return cmv_error__oom();
			cJSON_Delete(pl->covered);
			pl->covered = msgs;
			pl->cut = cut;
			pl->allowance = allowance;
			return PLANNED;
		} else if (pl->cut != cut) {
			error = cmv_error__set(CMV_ERROR, "the second run cut at message %zu, the first at %zu", cut, pl->cut);
		}
		rep->passes = pl->passes;
		rep->llm_input_tokens = pl->in_tokens;
		rep->llm_output_tokens = pl->out_tokens;
		for (int sec = 0; sec < CMV_HANDOFF_NSECTIONS && !error; sec++)
			for (size_t i = 0; i < pl->doc.n[sec] && !error; i++)
				error = cmv_compaction__ho_add(&d, sec, pl->doc.items[sec][i], 0);
		/* the recall line is ours, whatever the model wrote */
		if (!error) {
			char line[256];
			snprintf(line, sizeof(line), "Replaces %zu messages (%zu records), kept verbatim: recall %.7s.", cut,
				 covered_nodes, rep->recall);
			const int L = CMV_HANDOFF_NSECTIONS - 1;
			size_t before = d.n[L];
			error = cmv_compaction__ho_add(&d, L, line, 0);
			/* first among the losses: the fitter keeps the first loss line to the end */
			if (!error && d.n[L] > before && d.n[L] > 1) {
				char *recall_line = d.items[L][d.n[L] - 1];
				memmove(&d.items[L][1], &d.items[L][0], (d.n[L] - 1) * sizeof(char *));
				d.items[L][0] = recall_line;
			}
		}
	} else {
		error = cmv_compaction__ho_extract(&d, j->raw.messages, 0, cut, rep->recall, covered_nodes);
	}
	if (!error) {
		char head[256];
		snprintf(head, sizeof(head),
			 "# Handoff document\nThe earlier part of this conversation, summarized (%s) to fit %s; what "
			 "follows is verbatim.",
			 o->llm ? o->summarizer->id : "extractive", o->target->id);
		if (!(d.header = cmv__strdup(head)))
			error = cmv_error__oom();
	}
	if (!error)
		error = cmv_compaction__ho_fit(doc, doc_tokens, &d, o->target, o->tok, allowance);
	cmv_compaction__ho_dispose(&d);
	return error;
}

static int read_path(path_node **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	path_node *p = NULL;
	size_t k = 0;
	int error;

	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	if (!(p = cmv__calloc(cmv_walk_length(walk) + 1, sizeof(*p)))) {
		cmv_walk_free(walk);
		return cmv_error__oom();
	}
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		p[k].id = n->id;
		p[k].kind = n->kind;
		p[k].role = n->role;
		p[k].parent = n->parent;
		cmv_id_tostr(p[k].hex, sizeof(p[k].hex), &n->id);
		k++;
	}
	cmv_walk_free(walk);
	if (error != CMV_ITEROVER) {
		free(p);
		return error;
	}
	*out = p;
	*n_out = k;
	return 0;
}

static bool is_system(const path_node *p)
{
	return p->kind == CMV_KIND_MESSAGE && p->role == CMV_ROLE_SYSTEM;
}

/*
 * Before the cut, events and system prompts stay (they are never summarized
 * and render no message); every message and earlier summary is covered. An
 * agent's own compaction record (Codex's `compacted`) is a summary, whatever
 * role its format gives it: carried, it would reset the conversation.
 */
static bool carried(const path_node *p)
{
	return p->kind == CMV_KIND_EVENT || is_system(p);
}

/* Write node `id` again below `*tail` (the same node when its parent is the tail already). */
static int carry(cmv_id *tail, cmv_repo *repo, const cmv_id *id)
{
	cmv_node *n = NULL;
	int error;

	if ((error = cmv_node_read(&n, repo, id)) < 0)
		return error;
	if ((cmv_id_is_none(tail) && cmv_id_is_none(&n->parent)) || cmv_id_equal(tail, &n->parent))
		*tail = n->id;
	else
		error = cmv__node_copy_below(tail, repo, n);
	cmv_node_free(n);
	return error;
}

static char *event_json(const cmv_compact_report *rep, const cmv_compact_options *o, const cmv_id *from,
			const char *endpoint)
{
	cJSON *ev = cJSON_CreateObject();
	char hex[CMV_ID_HEXSZ + 1], *text;
	cJSON_AddStringToObject(ev, "event", "compact");
	cJSON_AddStringToObject(ev, "from", cmv_id_tostr(hex, sizeof(hex), from));
	cJSON_AddStringToObject(ev, "target", o->target->id);
	cJSON_AddNumberToObject(ev, "budget", (double)rep->budget);
	cJSON_AddNumberToObject(ev, "tokens_before", (double)rep->tokens_before);
	cJSON_AddNumberToObject(ev, "tokens_trimmed", (double)rep->tokens_trimmed);
	cJSON_AddNumberToObject(ev, "tokens_after", (double)rep->tokens_after);
	cJSON_AddNumberToObject(ev, "covered_nodes", (double)rep->covered_nodes);
	cJSON_AddNumberToObject(ev, "coverage", rep->coverage);
	/* the LLM reference: the registry key and endpoint, never a key */
	if (o->llm) {
		cJSON *s = cJSON_AddObjectToObject(ev, "summarizer");
		cJSON_AddStringToObject(s, "model", o->summarizer->id);
		cJSON_AddStringToObject(s, "provider", o->summarizer->provider);
		cJSON_AddStringToObject(s, "endpoint", endpoint);
		cJSON_AddNumberToObject(s, "passes", rep->passes);
		cJSON_AddNumberToObject(s, "input_tokens", (double)rep->llm_input_tokens);
		cJSON_AddNumberToObject(s, "output_tokens", (double)rep->llm_output_tokens);
	} else {
		cJSON_AddStringToObject(ev, "summarizer", rep->covered_nodes ? "extractive" : "none");
	}
	if (rep->recall[0])
		cJSON_AddStringToObject(ev, "recall", rep->recall);
	text = cJSON_PrintUnformatted(ev);
	cJSON_Delete(ev);
	return text;
}

/* ---- the job, phase by phase ------------------------------------------------------ */

/* Check the options and set the job up: nothing is read or written yet. */
static int job_init(job *j, cmv_compact_report *rep, cmv_repo *repo, const cmv_id *tip, const cmv_compact_options *opts,
		    struct llm_plan *plan)
{
	if (!opts->target || !opts->tok)
		return cmv_error__set(CMV_EINVALID, "compact needs the target model and its tokenizer");
	if (opts->llm && (!opts->summarizer || !opts->summarizer_tok))
		return cmv_error__set(CMV_EINVALID, "a summarizer needs its profile and tokenizer");
	if (!opts->branch || !cmv_ref_name_is_valid(opts->branch))
		return cmv_error__set(CMV_EINVALID, "compact needs a valid name for the new branch, not '%s'",
				      opts->branch ? opts->branch : "");
	j->repo = repo;
	j->tip = tip;
	j->o = opts;
	j->plan = plan;
	j->target = cmv_model_render_target(opts->target);
	if (!j->target)
		j->target = CMV_RENDER_OPENAI_CHAT;
	j->ro = (cmv_render_options)CMV_RENDER_OPTIONS_INIT;
	j->ro.model = opts->target->id;
	j->ro.flags = CMV_RENDER_NO_DECORATIONS | (opts->target->tools ? 0 : CMV_RENDER_TOOLS_AS_TEXT) |
		      (opts->target->images ? 0 : CMV_RENDER_NO_IMAGES);
	cmv_buf_init(&j->body, CMV_BUF_CONTENT);
	cmv_buf_init(&j->problems, CMV_BUF_SMALL);
	cmv_buf_init(&j->doc, CMV_BUF_CONTENT);
	cmv_buf_init(&j->covered, CMV_BUF_CONTENT);
	cmv_buf_init(&j->sys_full, CMV_BUF_CONTENT);
	cmv_buf_init(&j->sys_text, CMV_BUF_CONTENT);
	/* the cut search counts the same tail again and again */
	cmv__tok_memo(opts->tok, true);
	/* what the provider may bill, less the target's count margin (cmv_count_ceiling) */
	uint64_t cap = cmv_count_ceiling(opts->target, 0), asked = cmv_count_ceiling(opts->target, opts->budget);
	j->budget = rep->budget = opts->budget && asked < cap ? asked : cap;
	return 0;
}

static void job_dispose(job *j)
{
	cmv__conv_dispose(&j->raw);
	cmv_buf_dispose(&j->body);
	cmv_buf_dispose(&j->problems);
	cmv_buf_dispose(&j->doc);
	cmv_buf_dispose(&j->covered);
	cmv_buf_dispose(&j->sys_full);
	cmv_buf_dispose(&j->sys_text);
	free(j->path);
	free(j->cuts);
	free(j->cov);
}

/* 0. The conversation as it is: what the report measures the job against. */
static int measure_before(job *j, cmv_compact_report *rep)
{
	cmv_token_stats ts;
	int error;

	if ((error = cmv_render(&j->body, NULL, j->repo, j->tip, j->target, &j->ro)) < 0 ||
	    (error = cmv_count_request(&ts, j->o->target, j->o->tok, j->body.ptr, j->body.size)) < 0)
		return error;
	rep->tokens_before = ts.total;
	return 0;
}

/* 1. Trim into the new branch: lossless, and often all it takes; the rest works on its result. */
static int trim_branch(job *j, cmv_compact_report *rep)
{
	cmv_trim_options to = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report trep;
	cmv_render_stats rst;
	int error;

	to.threshold = j->o->trim_threshold;
	to.branch = j->o->branch;
	to.from_ref = j->o->from_ref;
	if ((error = cmv_trim(&trep, j->repo, j->tip, &to)) < 0)
		return error;
	j->trimmed = trep.head;
	if ((error = cmv__conv_load_raw(&j->raw, &rst, j->repo, &j->trimmed, 0)) < 0)
		return error;
	j->n = (size_t)cJSON_GetArraySize(j->raw.messages);
	if ((error = capabilities(rep, j->raw.messages, j->o->target)) < 0 || (error = in_flight(rep, j)) < 0 ||
	    (error = measure(&rep->tokens_trimmed, NULL, j, 0, NULL)) < 0)
		return error;
	rep->stage = 1;
	rep->coverage = 1.0;
	rep->kept_messages = j->n;
	j->head = j->trimmed;
	return 0;
}

/* 2. The longest tail that fits beside a summary: the more is kept verbatim, the less is lost. */
static int find_cut(job *j, cmv_compact_report *rep)
{
	int error;

	rep->stage = 2;
	uint64_t reserve = j->budget / 4;
	reserve = reserve < SUMMARY_MIN_TOKENS ? SUMMARY_MIN_TOKENS : reserve > SUMMARY_MAX_TOKENS ? SUMMARY_MAX_TOKENS : reserve;
	j->reserve = reserve;
	if ((error = cut_points(&j->cuts, &j->n_cuts, j->raw.messages, j->n)) < 0)
		return error;
	size_t lo = 0, hi = j->n_cuts - 1; /* the last (everything summarized) is the fallback */
	uint64_t t = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((error = measure(&t, NULL, j, j->cuts[mid], "x")) < 0)
			return error;
		if (t + reserve <= j->budget)
			hi = mid;
		else
			lo = mid + 1;
	}
	j->cut = j->cuts[lo];
	return measure(&j->tail_tokens, NULL, j, j->cut, "x");
}

/*
 * 3. The system prompts alone leave too little room (a Codex session's
 * instructions run past 10k tokens; an 8k model cannot take them).
 * They are pinned, and the pinned set does not fit: the one case
 * where they are abridged, into a new system node derived from the
 * originals, with the whole text a recall away. After that, a tail that
 * leaves no room even for a summary is refused.
 */
static int fit_system_prompts(job *j, cmv_compact_report *rep)
{
	int error;

	if (j->cut == j->n && j->tail_tokens + j->reserve / 2 > j->budget && cJSON_GetArraySize(j->raw.system) > 0) {
		if ((error = abridge_system(j, &j->sys_full, &j->sys_text, j->budget / 3)) < 0 ||
		    (error = measure(&j->tail_tokens, NULL, j, j->cut, "x")) < 0)
			return error;
		cmv_id sid;
		cmv_id_hash(&sid, j->sys_full.ptr, j->sys_full.size);
		cmv_id_tostr(rep->system_recall, sizeof(rep->system_recall), &sid);
		rep->stage = 3;
	}
	if (j->tail_tokens + SUMMARY_MIN_TOKENS / 4 > j->budget)
		return cmv_error__set(CMV_EBUDGET, "%s: even a summary alone does not fit %llu tokens of %s "
				      "(the system prompt and framing take %llu)", j->o->branch,
				      (unsigned long long)j->budget, j->o->target->id, (unsigned long long)j->tail_tokens);
	return 0;
}

/* The nodes before the cut's record are covered; system prompts and events are carried. */
static int split_at_cut(job *j, cmv_compact_report *rep)
{
	size_t cut = j->cut;
	int error;

	const char *cut_hex = cut < j->n ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
						   cJSON_GetArrayItem(j->raw.messages, (int)cut), "node"))
				       : NULL;
	if ((error = read_path(&j->path, &j->n_path, j->repo, &j->trimmed)) < 0)
		return error;
	size_t k = j->n_path;
	for (size_t i = 0; cut_hex && i < j->n_path; i++)
		if (!strcmp(j->path[i].hex, cut_hex)) {
			k = i;
			break;
		}
	if (cut_hex && k == j->n_path)
		return cmv_error__set(CMV_ECORRUPT, "the cut's record %.12s is not on the branch", cut_hex);
	j->k = k;
	if (!(j->cov = cmv__calloc(k + 1, sizeof(*j->cov))))
		return cmv_error__oom();
	for (size_t i = 0; i < k; i++) {
		if (rep->stage == 3 && is_system(&j->path[i]))
			j->n_sys++; /* the abridged prompt derives from these */
		else if (!carried(&j->path[i]))
			j->cov[rep->covered_nodes++] = j->path[i].id;
	}
	rep->kept_nodes = j->n_path - k;
	rep->covered_messages = cut;
	rep->kept_messages = j->n - cut;
	return 0;
}

/* The covered messages, verbatim, as one blob: the summary names its id, so nothing is lost. */
static int keep_covered(job *j, cmv_compact_report *rep)
{
	int error = 0;
	cJSON *arr = cJSON_CreateArray();
	size_t mi = 0;

	for (const cJSON *m = j->raw.messages->child; arr && m && mi < j->cut; m = m->next, mi++)
		cJSON_AddItemToArray(arr, cJSON_Duplicate(m, 1));
	char *ctext = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!ctext || (error = cmv_buf_puts(&j->covered, ctext)) < 0) {
		cJSON_free(ctext);
		return error < 0 ? error : CMV_ENOMEM;
	}
	cJSON_free(ctext);
	cmv_id rid;
	cmv_id_hash(&rid, j->covered.ptr, j->covered.size);
	cmv_id_tostr(rep->recall, sizeof(rep->recall), &rid);
	return 0;
}

/*
 * The summary, made to fit what the tail leaves: it is measured rendered
 * with the tail, and made smaller until the two fit. PLANNED: the first run
 * of an LLM job, which stops here (see struct llm_plan).
 */
static int summarize_to_fit(job *j, cmv_compact_report *rep)
{
	uint64_t room = j->budget - j->tail_tokens;
	/* what the tail leaves is the summary's, up to twice the cap */
	uint64_t allowance = room > 16 ? room - 16 : room;
	if (allowance > 2 * SUMMARY_MAX_TOKENS)
		allowance = 2 * SUMMARY_MAX_TOKENS;
	uint64_t final_tokens = 0;
	size_t problems = 0;
	int error;

	for (int round = 0;; round++) {
		if ((error = summarize(&j->doc, &rep->summary_tokens, rep, j, j->cut, allowance, rep->covered_nodes)) != 0 ||
		    (error = measure(&final_tokens, &problems, j, j->cut, j->doc.ptr)) < 0)
			return error;
		if (final_tokens <= j->budget)
			break;
		/* rendering costs more than the document alone: give back the difference */
		uint64_t over = final_tokens - j->budget + 8;
		if (round == 4 || over >= allowance)
			return cmv_error__set(CMV_EBUDGET, "%s: the summary does not fit beside the kept tail (%llu over %llu)",
					      j->o->branch, (unsigned long long)final_tokens, (unsigned long long)j->budget);
		allowance -= over;
	}
	return 0;
}

/* Stage 3: the abridged system prompt, the new branch's root, derived from the prompts it replaces. */
static int write_abridged_system(cmv_id *tail, job *j)
{
	cmv_id *sys_ids = cmv__calloc(j->n_sys + 1, sizeof(*sys_ids));
	size_t ns = 0;
	int error;

	if (!sys_ids)
		return cmv_error__oom();
	for (size_t i = 0; i < j->k; i++)
		if (is_system(&j->path[i]))
			sys_ids[ns++] = j->path[i].id;
	/*
	 * When the first prompt is a source record with one text in it (a
	 * Codex session_meta), the abridged text goes into a copy of that
	 * record: written back as a session, it still opens with the
	 * record its agent needs. Otherwise it is a system message of its own.
	 */
	cmv_node *first = NULL;
	if (ns && (error = cmv_node_read(&first, j->repo, &sys_ids[0])) < 0) {
		free(sys_ids);
		return error;
	}
	bool templated = first && first->meta && first->n_blocks == 1 && !strcmp(first->blocks[0].type, "text");
	cmv_block_content b = { .type = "text", .data = j->sys_text.ptr, .len = j->sys_text.size,
				.media_type = templated ? first->blocks[0].media_type : NULL };
	cmv_message sm = { .role = CMV_ROLE_SYSTEM, .kind = CMV_KIND_MESSAGE, .blocks = &b, .n_blocks = 1,
			   .derived_from = sys_ids, .n_derived_from = ns,
			   .meta = templated ? first->meta : NULL, .meta_len = templated ? first->meta_len : 0 };
	error = cmv_node_write(tail, j->repo, NULL, &sm);
	cmv_node_free(first);
	free(sys_ids);
	return error;
}

/* 3. Write: carried prefix, the summary node with a covers edge to each covered node, tail. */
static int write_summarized(job *j, cmv_compact_report *rep)
{
	cmv_id tail = { 0 };
	int error = 0;

	if (rep->stage == 3 && (error = write_abridged_system(&tail, j)) < 0)
		return error;
	for (size_t i = 0; i < j->k && !error; i++)
		if (carried(&j->path[i]) && !(rep->stage == 3 && is_system(&j->path[i])))
			error = carry(&tail, j->repo, &j->path[i].id);
	if (!error) {
		cmv_block_content b = { .type = "text", .data = j->doc.ptr, .len = j->doc.size };
		cmv_message sm = { .role = CMV_ROLE_USER, .kind = CMV_KIND_SUMMARY, .blocks = &b, .n_blocks = 1,
				   .covers = j->cov, .n_covers = rep->covered_nodes };
		error = cmv_node_write(&tail, j->repo, cmv_id_is_none(&tail) ? NULL : &tail, &sm);
		rep->summary = tail;
	}
	for (size_t i = j->k; i < j->n_path && !error; i++)
		error = carry(&tail, j->repo, &j->path[i].id);
	if (error < 0)
		return error;
	j->head = tail;
	return 0;
}

/* The fidelity check, over what the summary replaced: the report says how much of it the summary names. */
static int check_fidelity(job *j, cmv_compact_report *rep)
{
	cmv_buf src = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;

	if (!(error = cmv_compaction__ho_fidelity_source(&src, j->raw.messages, 0, j->cut)))
		error = cmv_fidelity(&rep->coverage, &rep->entities, &rep->entities_found, NULL,
				     src.ptr ? src.ptr : "", src.size, j->doc.ptr, j->doc.size);
	cmv_buf_dispose(&src);
	return error;
}

/* The written branch, rendered, counted and checked: the figures reported are these, and over the budget is refused. */
static int verify_written(job *j, cmv_compact_report *rep)
{
	cmv_token_stats ts;
	int error;

	if ((error = cmv_render(&j->body, NULL, j->repo, &j->head, j->target, &j->ro)) < 0 ||
	    (error = cmv_count_request(&ts, j->o->target, j->o->tok, j->body.ptr, j->body.size)) < 0)
		return error;
	rep->tokens_after = ts.total;
	rep->fits = ts.total <= j->budget;
	int np = cmv_check_request(&j->problems, j->target, j->body.ptr, j->body.size);
	if (np < 0)
		return np;
	rep->problems = (size_t)np;
	if (!rep->fits)
		return cmv_error__set(CMV_EBUDGET, "%s: the result takes %llu tokens of %s, over the budget of %llu",
				      j->o->branch, (unsigned long long)ts.total, j->o->target->id,
				      (unsigned long long)j->budget);
	return 0;
}

/* The record: an event (holding the covered blob), the note, the target as the branch's LLM. */
static int record_job(job *j, cmv_compact_report *rep)
{
	const cmv_compact_options *opts = j->o;
	int error;

	char *ev = event_json(rep, opts, j->tip, opts->llm ? cmv_llm_endpoint(opts->llm) : "");
	if (!ev)
		return cmv_error__oom();
	cmv_block_content eb[3] = { { .type = "cmv_compact", .data = ev, .len = strlen(ev) } };
	size_t n_eb = 1;
	if (j->covered.size)
		eb[n_eb++] = (cmv_block_content){ .type = "cmv_covered", .data = j->covered.ptr, .len = j->covered.size,
						  .media_type = "application/json" };
	if (j->sys_full.size)
		eb[n_eb++] = (cmv_block_content){ .type = "cmv_system", .data = j->sys_full.ptr, .len = j->sys_full.size,
						  .media_type = "text/plain" };
	cmv_message em = { .role = CMV_ROLE_SYSTEM, .kind = CMV_KIND_EVENT, .blocks = eb, .n_blocks = n_eb };
	cmv_id ev_id;
	error = cmv_node_write(&ev_id, j->repo, &j->head, &em);
	if (!error)
		error = cmv_branch_update(j->repo, opts->branch, &ev_id, &j->trimmed);
	if (!error)
		error = cmv_branch_note_set(j->repo, opts->branch, "compact", ev);
	cJSON_free(ev);
	if (!error)
		error = cmv_branch_llm_set(j->repo, opts->branch, opts->target->id);
	if (error < 0)
		return error;
	cmv_ref *r = NULL;
	if ((error = cmv_ref_lookup(&r, j->repo, opts->branch)) < 0)
		return error;
	rep->head = r->target;
	cmv_ref_free(r);
	return 0;
}

/*
 * One run of the job, in one transaction: trim; then, only when the trimmed
 * branch is over the budget, cut, summarize and write the summarized
 * branch; then check what was written and record it. Nothing is committed
 * unless every phase succeeds (and not at all on a dry run). Returns
 * PLANNED from the first run of an LLM job, rolled back.
 */
static int compact_once(cmv_compact_report *rep, cmv_repo *repo, const cmv_id *tip, const cmv_compact_options *opts,
			struct llm_plan *plan)
{
	job j;
	int error;

	CMV_ASSERT_ARG(rep);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(opts);
	memset(rep, 0, sizeof(*rep));
	memset(&j, 0, sizeof(j));
	if ((error = job_init(&j, rep, repo, tip, opts, plan)) < 0)
		return error;

	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto out;
	if ((error = measure_before(&j, rep)) < 0 || (error = trim_branch(&j, rep)) < 0)
		goto fail;
	if (rep->tokens_trimmed > j.budget &&
	    ((error = find_cut(&j, rep)) < 0 || (error = fit_system_prompts(&j, rep)) < 0 ||
	     (error = split_at_cut(&j, rep)) < 0 || (error = keep_covered(&j, rep)) < 0 ||
	     (error = summarize_to_fit(&j, rep)) != 0 || (error = write_summarized(&j, rep)) < 0 ||
	     (error = check_fidelity(&j, rep)) < 0))
		goto fail;
	if ((error = verify_written(&j, rep)) < 0 || (error = record_job(&j, rep)) < 0)
		goto fail;
	if (opts->flags & CMV_COMPACT_DRY_RUN) {
		cmv_repo_txn_rollback(repo);
		error = 0;
		goto out;
	}
	error = cmv_repo_txn_commit(repo);
	goto out;
fail:
	cmv_repo_txn_rollback(repo);
out:
	if (error < 0)
		cmv_compact_report_dispose(rep);
	job_dispose(&j);
	return error;
}

static int compact_filled(cmv_compact_report *rep, cmv_repo *repo, const cmv_id *tip, const cmv_compact_options *opts)
{
	struct llm_plan plan;
	int error;

	CMV_ASSERT_ARG(rep);
	CMV_ASSERT_ARG(opts);
	memset(&plan, 0, sizeof(plan));
	cmv_compaction__ho_init(&plan.doc);
	error = compact_once(rep, repo, tip, opts, &plan);
	if (error == PLANNED) {
		/* rolled back: now the summarizer, with no lock held, then the run that writes */
		ho_llm l = { opts->llm, opts->summarizer, opts->summarizer_tok, 0, 0, 0, 0, 0 };
		uint64_t want = plan.allowance < opts->summarizer->max_output ? plan.allowance : opts->summarizer->max_output;
		l.max_tokens = (uint32_t)(want > 8192 ? 8192 : want);
		cmv_compact_report_dispose(rep);
		error = cmv_compaction__ho_summarize(&plan.doc, &l, plan.covered, 0, plan.cut);
		plan.passes = l.passes;
		plan.in_tokens = l.in_tokens;
		plan.out_tokens = l.out_tokens;
		plan.have = error == 0;
		if (!error)
			error = compact_once(rep, repo, tip, opts, &plan);
		if (error == PLANNED)
			error = cmv_error__set(CMV_ERROR, "compaction did not settle on one cut");
	}
	cJSON_Delete(plan.covered);
	cmv_compaction__ho_dispose(&plan.doc);
	return error;
}

int cmv_compact(cmv_compact_report *rep, cmv_repo *repo, const cmv_id *tip, const cmv_compact_options *opts)
{
	int error = compact_filled(rep, repo, tip, opts);
	if (rep)
		rep->version = CMV_COMPACT_REPORT_VERSION;
	return error;
}

/* ---- uncompact ------------------------------------------------------------------ */

/* The original a rewritten node came from (itself when it is one). */
static int original(cmv_id *out, cmv_repo *repo, const cmv_id *id)
{
	cmv_id cur = *id;
	for (int guard = 0; guard < 64; guard++) {
		cmv_node *n = NULL;
		int error = cmv_node_read(&n, repo, &cur);
		if (error < 0)
			return error;
		if (!n->n_derived_from) {
			cmv_node_free(n);
			*out = cur;
			return 0;
		}
		cur = n->derived_from[0];
		cmv_node_free(n);
	}
	return cmv_error__set(CMV_ECORRUPT, "derived_from edges loop");
}

int cmv_uncompact(cmv_id *out, size_t *restored, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	cmv_id from = { 0 }, *list = NULL;
	size_t n_list = 0, cap = 0;
	bool any_summary = false;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		size_t need = n_list + n->n_covers + 1;
		if (need > cap) {
			size_t ncap = need * 2;
			cmv_id *g = cmv__realloc(list, ncap * sizeof(*g));
			if (!g) {
				error = cmv_error__oom();
				break;
			}
			list = g;
			cap = ncap;
		}
		if (n->kind == CMV_KIND_SUMMARY && n->n_covers) {
			any_summary = true;
			for (size_t i = 0; i < n->n_covers; i++)
				list[n_list++] = n->covers[i];
			continue;
		}
		if (n->kind == CMV_KIND_EVENT && !n->n_derived_from) {
			/* the job's own events; the last one names where it started */
			for (size_t i = 0; i < n->n_blocks; i++)
				if (!strcmp(n->blocks[i].type, "cmv_compact")) {
					cmv_buf ev = CMV_BUF_INIT(CMV_BUF_SMALL);
					if (cmv_blob_read(&ev, repo, &n->blocks[i].blob) == 0) {
						cJSON *j = cJSON_ParseWithLength(ev.ptr, ev.size);
						const char *f = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "from"));
						if (f)
							cmv_id_fromstr(&from, f);
						cJSON_Delete(j);
					}
					cmv_buf_dispose(&ev);
				}
			continue;
		}
		list[n_list++] = n->id;
	}
	cmv_walk_free(walk);
	if (error != CMV_ITEROVER) {
		free(list);
		return error;
	}
	(void)any_summary;
	if (cmv_id_is_none(&from)) {
		free(list);
		return cmv_error__set(CMV_EINVALID, "not a compacted conversation (no compact event on it)");
	}
	/* every node, resolved to its original, must lie on the path to where the job started */
	cmv__strmap on_path = { 0 };
	char hex[CMV_ID_HEXSZ + 1];
	size_t checked = 0;
	if ((error = cmv_walk_new(&walk, repo, &from)) < 0)
		goto done;
	while ((error = cmv_walk_next(&n, walk)) == 0)
		if ((error = cmv__strmap_put(&on_path, cmv_id_tostr(hex, sizeof(hex), &n->id), 1, NULL)) < 0)
			break;
	cmv_walk_free(walk);
	if (error != CMV_ITEROVER)
		goto done;
	error = 0;
	for (size_t i = 0; i < n_list && !error; i++) {
		cmv_id o;
		if ((error = original(&o, repo, &list[i])) < 0)
			break;
		if (!cmv__strmap_get(&on_path, cmv_id_tostr(hex, sizeof(hex), &o), NULL, NULL))
			error = cmv_error__set(CMV_ECORRUPT, "node %.12s does not lead back to the compacted conversation", hex);
		checked++;
	}
done:
	cmv__strmap_dispose(&on_path);
	free(list);
	if (error < 0)
		return error;
	*out = from;
	if (restored)
		*restored = checked;
	return 0;
}
