/* SPDX-License-Identifier: MIT */
/*
 * Live anchoring (docs/tokenizers.md, "Anchored live"): what a host or the
 * proxy last sent from a branch for a model, and what its reply was billed.
 *
 * One note of the branch per model (LIVE_NOTE:MODEL) keeps two calls: the
 * last one sent (cmv_pager_sent) and the last one billed (the sent one,
 * once cmv_pager_billed names its tip). Each is the tip the request was
 * made at, the pager's plain count of its messages, the caller's count of
 * what it sent beside them and its key, how many pages were out, and the
 * billed call it held itself (a request made anchored and never billed, a
 * retry, holds the same bill). A note that does not read is no anchor,
 * never an error: the request is then counted plainly.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "pager_priv.h"

#define LIVE_NOTE "anchor"

static void live_key(char *out, size_t cap, const char *model_id)
{
	snprintf(out, cap, "%s:%s", LIVE_NOTE, model_id);
}

/* A count of the note: a number from 0 to 2^53 (what a double holds exactly), else none. */
static bool count_of(uint64_t *out, const cJSON *j, const char *name)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, name);
	*out = 0;
	if (!n)
		return true;
	if (!cJSON_IsNumber(n) || !(n->valuedouble >= 0 && n->valuedouble <= 9007199254740992.0))
		return false;
	*out = (uint64_t)n->valuedouble;
	return true;
}

static bool read_call(cmv_pager__live_call *c, const cJSON *j)
{
	uint64_t gone;
	const char *tip = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "tip"));
	const char *held = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "held"));
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "key"));
	const char *target = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "target"));
	memset(c, 0, sizeof(*c));
	if (!tip || !key || !target || cmv_id_fromstr(&c->tip, tip) < 0) {
		cmv_error_clear();
		return false;
	}
	if (!held || !*held || cmv_id_fromstr(&c->held, held) < 0) {
		cmv_error_clear();
		cmv_id_clear(&c->held);
	}
	snprintf(c->key, sizeof(c->key), "%s", key);
	snprintf(c->target, sizeof(c->target), "%s", target);
	/* a note altered by hand (a negative or huge number) is no anchor, not a cast out of range */
	if (!count_of(&c->tokens, j, "tokens") || !count_of(&c->extra, j, "extra") || !count_of(&gone, j, "gone") ||
	    !count_of(&c->prompt, j, "prompt")) {
		memset(c, 0, sizeof(*c));
		return false;
	}
	c->gone = (size_t)gone;
	return c->ok = true;
}

static cJSON *call_json(const cmv_pager__live_call *c)
{
	char hex[CMV_ID_HEXSZ + 1], held[CMV_ID_HEXSZ + 1] = "";
	cJSON *j = cJSON_CreateObject();
	if (!cmv_id_is_none(&c->held))
		cmv_id_tostr(held, sizeof(held), &c->held);
	if (!j || !cJSON_AddStringToObject(j, "tip", cmv_id_tostr(hex, sizeof(hex), &c->tip)) ||
	    !cJSON_AddStringToObject(j, "target", c->target) || !cJSON_AddStringToObject(j, "key", c->key) ||
	    !cJSON_AddNumberToObject(j, "tokens", (double)c->tokens) ||
	    !cJSON_AddNumberToObject(j, "extra", (double)c->extra) || !cJSON_AddNumberToObject(j, "gone", (double)c->gone) ||
	    !cJSON_AddStringToObject(j, "held", held) ||
	    (c->prompt && !cJSON_AddNumberToObject(j, "prompt", (double)c->prompt))) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

void cmv_pager__live_read(cmv_pager__live_call *sent, cmv_pager__live_call *billed, cmv_repo *repo,
			  const char *branch, const char *model_id)
{
	cmv_buf note = CMV_BUF_INIT(1 << 16);
	char key[CMV_REF_NAME_MAX + 64];
	cJSON *j = NULL;

	memset(sent, 0, sizeof(*sent));
	memset(billed, 0, sizeof(*billed));
	live_key(key, sizeof(key), model_id);
	if (cmv_branch_note_get(&note, repo, branch, key) == 0 && note.size)
		j = cJSON_ParseWithLength(note.ptr, note.size);
	cmv_error_clear();
	read_call(sent, cJSON_GetObjectItemCaseSensitive(j, "sent"));
	if (read_call(billed, cJSON_GetObjectItemCaseSensitive(j, "billed")) && !billed->prompt)
		billed->ok = false;
	cJSON_Delete(j);
	cmv_buf_dispose(&note);
}

static int live_write(cmv_repo *repo, const char *branch, const char *model_id, const cmv_pager__live_call *sent,
		      const cmv_pager__live_call *billed)
{
	char key[CMV_REF_NAME_MAX + 64], *text = NULL;
	cJSON *j = cJSON_CreateObject(), *s = sent->ok ? call_json(sent) : NULL, *b = billed->ok ? call_json(billed) : NULL;
	int error = 0;

	live_key(key, sizeof(key), model_id);
	if (!j || (sent->ok && (!s || !cJSON_AddItemToObject(j, "sent", s))) ||
	    (billed->ok && (!b || !cJSON_AddItemToObject(j, "billed", b))) || !(text = cJSON_PrintUnformatted(j))) {
		if (sent->ok && !cJSON_GetObjectItemCaseSensitive(j, "sent"))
			cJSON_Delete(s);
		if (billed->ok && !cJSON_GetObjectItemCaseSensitive(j, "billed"))
			cJSON_Delete(b);
		error = cmv_error__oom();
	} else {
		error = cmv_branch_note_set(repo, branch, key, text);
	}
	cJSON_free(text);
	cJSON_Delete(j);
	return error;
}

int cmv_pager_sent(cmv_repo *repo, const char *branch, const cmv_model *model, int target, const cmv_id *tip,
		   const cmv_materialize_report *rep, const char *key, uint64_t extra)
{
	cmv_pager__live_call sent, billed, now;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(rep);
	if (cmv_repo_is_readonly(repo))
		return 0; /* nothing kept: the next request is counted plainly */
	cmv_pager__live_read(&sent, &billed, repo, branch, model->id);
	memset(&now, 0, sizeof(now));
	now.ok = true;
	now.tip = *tip;
	snprintf(now.key, sizeof(now.key), "%s", key ? key : "");
	snprintf(now.target, sizeof(now.target), "%s", cmv_render_target_name(cmv_pager__target_of(model, target)));
	/* the plain count: a live report's tokens are the prediction (anchored or scaled), its correction on top */
	now.tokens = rep->version >= 2 && (int64_t)rep->tokens > rep->correction
		? (uint64_t)((int64_t)rep->tokens - rep->correction) : rep->tokens;
	now.extra = extra;
	now.gone = rep->stubbed + rep->evicted;
	/* made anchored on the last bill: it holds that billed request, and so does what grows from it */
	if (rep->version >= 2 && rep->anchored && billed.ok)
		now.held = billed.tip;
	else
		cmv_id_clear(&now.held);
	return live_write(repo, branch, model->id, &now, &billed);
}

int cmv_pager_billed(cmv_repo *repo, const char *branch, const cmv_model *model, int target, const cmv_id *tip,
		     uint64_t prompt)
{
	cmv_pager__live_call sent, billed;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tip);
	cmv_pager__live_read(&sent, &billed, repo, branch, model->id);
	/* a bill for a request the pager did not make at this tip says nothing of the kept window */
	if (!sent.ok || !prompt || !cmv_id_equal(&sent.tip, tip) ||
	    strcmp(sent.target, cmv_render_target_name(cmv_pager__target_of(model, target))))
		return 0;
	billed = sent;
	billed.prompt = prompt;
	return live_write(repo, branch, model->id, &sent, &billed);
}

/*
 * The rate (docs/tokenizers.md, "Anchored live"): what the last bill was
 * over what the caller counted for it, messages and what went beside them
 * together, so that a tools count off by some tokens moves it by their
 * share, not by their ratio to a short conversation. Kept only upward and
 * bounded: a bill under the count never lowers one (the plain count and its
 * margin hold), and one past CMV_PAGER__RATE_MAX_PM scales by that bound.
 * What goes beside this request is the caller's count of it (the pager
 * options' live_beside; 0 is nothing beside them); a caller that gives
 * none (CMV_PAGER_BESIDE_UNKNOWN, or options older than version 4) has it taken as the larger of the last sent and billed
 * ones', which over-predicts when the tools shrank (Claude Code's, stubbed
 * through the proxy: 9,089 tokens to 858), never under.
 */
void cmv_pager__live_rate(cmv_pager__predict *pr, const cmv_pager__live_call *sent,
			  const cmv_pager__live_call *billed, uint64_t beside)
{
	memset(pr, 0, sizeof(*pr));
	pr->rate_pm = 1000;
	uint64_t counted = billed->ok ? billed->tokens + billed->extra : 0;
	if (!billed->ok || !counted || billed->prompt <= counted)
		return;
	/* prompt and count below 2^53 (read_call): the product is exact in a double's range, not in 64 bits */
	double pm = ceil((double)billed->prompt * 1000.0 / (double)counted);
	pr->rate_pm = pm > CMV_PAGER__RATE_MAX_PM ? CMV_PAGER__RATE_MAX_PM : (uint32_t)pm;
	pr->extra = beside != CMV_PAGER_BESIDE_UNKNOWN ? beside
		    : sent->ok && sent->extra > billed->extra ? sent->extra : billed->extra;
}

uint64_t cmv_pager__predicted(const cmv_model *model, const cmv_pager__predict *pr, uint64_t plain)
{
	if (!pr)
		return plain;
	if (pr->anchored)
		return cmv_count_anchored(model, plain, pr->correction);
	if (pr->rate_pm <= 1000)
		return plain;
	/* (rate − 1) × (messages + beside): the beside part is held by the caller at 1 + margin, not at the rate */
	uint64_t up = (uint64_t)ceil((double)(pr->rate_pm - 1000) * (double)(plain + pr->extra) / 1000.0);
	return plain + up;
}

uint64_t cmv_pager__plain_within(const cmv_pager__predict *pr, uint64_t limit)
{
	if (!pr || pr->rate_pm <= 1000)
		return limit;
	double room = (double)limit * 1000.0 - (double)(pr->rate_pm - 1000) * (double)pr->extra;
	if (room <= 0)
		return 0;
	uint64_t p = (uint64_t)floor(room / (double)pr->rate_pm);
	cmv_pager__predict r = *pr;
	r.anchored = false;
	/* the ceiling in predicted: down by a token or two where floor and ceil disagree */
	while (p && cmv_pager__predicted(NULL, &r, p) > limit)
		p--;
	return p;
}
