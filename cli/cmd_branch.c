/* SPDX-License-Identifier: MIT */
/*
 * cmv branch NAME [--from REF | --at NODE]: a new branch; one row, whatever
 * the history size. From a snapshot it is a trimmed branch unless
 * --no-trim (claude-code-cmv's `branch <snapshot>` since its 2.0; so is
 * `cmv branch SNAPSHOT`, which names the branch after it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cmd.h"
#include "sessions.h"

static const char *b_name, *b_from, *b_at, *b_threshold, *b_cwd, *b_model, *b_budget;
static bool b_checkout, b_json, b_claude, b_codex, b_launch, b_trim, b_no_trim, b_skip_launch, b_dry;
const cli_opt opts_branch[] = {
	{ OPT_ARG, "NAME", 0, NULL, "the new branch's name", &b_name, NULL },
	{ OPT_VALUE, "from", 0, "REF", "start from a branch or snapshot (default: the current branch)", &b_from, NULL },
	{ OPT_VALUE, "at", 0, "NODE", "start at a node (an id prefix, or REF~N)", &b_at, NULL },
	{ OPT_FLAG, "trim", 0, NULL, "trim it (the default from a snapshot)", NULL, &b_trim },
	{ OPT_FLAG, "no-trim", 0, NULL, "a raw copy, even from a snapshot", NULL, &b_no_trim },
	{ OPT_VALUE, "threshold", 't', "CHARS", "with trimming: stub content over this many characters (default 500)", &b_threshold, NULL },
	{ OPT_FLAG, "checkout", 'c', NULL, "make the new branch the current one", NULL, &b_checkout },
	{ OPT_FLAG, "claude", 0, NULL, "also write it as a new Claude Code session, resumable with claude --resume", NULL, &b_claude },
	{ OPT_FLAG, "codex", 0, NULL, "also write it as a new Codex rollout, resumable with codex resume", NULL, &b_codex },
	{ OPT_VALUE, "cwd", 0, "DIR", "carrying into the other agent: the folder it runs in (default: the current one); "
		   "the recorded one is remapped to it in what is carried", &b_cwd, NULL },
	{ OPT_VALUE, "model", 'm', "M", "carrying into the other agent: the model it will run (default: the agent's own, "
		   "claude-opus-5-5 or gpt-5); a branch over its window is compacted to fit", &b_model, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "carrying: the tokens the carried session may take (default: the model's input budget)", &b_budget, NULL },
	{ OPT_FLAG, "launch", 0, NULL, "with --claude or --codex: resume it now", NULL, &b_launch },
	{ OPT_FLAG, "skip-launch", 0, NULL, "accepted for claude-code-cmv's scripts: cmv launches only with --launch", NULL, &b_skip_launch },
	{ OPT_FLAG, "dry-run", 0, NULL, "say what would be made (and the trim's figures); change nothing", NULL, &b_dry },
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &b_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/*
 * Carrying into the other agent, what is carried fits the model it will
 * run: a branch whose rendering for that model is over its budget is
 * compacted first (trim, page, summarize what still does not fit: the
 * compaction's own rules), as branch NAME, and the report says what went.
 * *fitted is 1 when it made the branch. Nothing to do when the branch is
 * already the agent's own records (no carry) or fits.
 */
static int fit_carry(int *fitted, cmv_id *at, cli_ctx *ctx, const char *agent, const char *from_ref, uint64_t budget,
		     cJSON *o)
{
	const char *fmt = agent;
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	cmv_tok *tok = NULL;
	cmv_token_stats ts;
	int rc = EXIT_OK;

	*fitted = 0;
	if (cmv_branch_format(&fmt, ctx->repo, at) < 0 || !strcmp(fmt, agent))
		return EXIT_OK;
	const char *model = b_model ? b_model : !strcmp(agent, "codex") ? "gpt-5" : "claude-opus-5-5";
	if (cmv_models_load(&models, NULL) < 0 || cli_model(&m, models, model) < 0 || cmv_tok_load(&tok, m->tokenizer, NULL) < 0) {
		rc = cli_failf("cannot load model %s to fit the carried session", model);
		goto done;
	}
	if (!budget)
		budget = cmv_model_input_budget(m);
	if (cmv_count_sent(&ts, ctx->repo, at, m, tok) < 0) {
		rc = cli_failf("cannot count the branch in %s's tokens: %s", m->id, cmv_error_last() ? cmv_error_last()->message : "failed");
		goto done;
	}
	cJSON *fit = o ? cJSON_AddObjectToObject(o, "fit") : NULL;
	if (fit) {
		cJSON_AddStringToObject(fit, "model", m->id);
		cJSON_AddNumberToObject(fit, "budget", (double)budget);
		cJSON_AddNumberToObject(fit, "tokens_before", (double)ts.total);
	}
	if (ts.total <= budget) {
		if (fit)
			cJSON_AddBoolToObject(fit, "compacted", false);
		goto done;
	}
	cmv_compact_options co = CMV_COMPACT_OPTIONS_INIT;
	cmv_compact_report rep;
	memset(&rep, 0, sizeof(rep));
	co.branch = b_name;
	co.from_ref = from_ref;
	co.target = m;
	co.tok = tok;
	co.budget = budget;
	if (cmv_compact(&rep, ctx->repo, at, &co) < 0) {
		rc = cli_failf("the branch (%llu tokens) is over %s's budget of %llu and cannot be made to fit: %s",
			       (unsigned long long)ts.total, m->id, (unsigned long long)budget,
			       cmv_error_last() ? cmv_error_last()->message : "compaction failed");
		goto done;
	}
	*at = rep.head;
	*fitted = 1;
	if (fit) {
		cJSON_AddBoolToObject(fit, "compacted", true);
		cJSON_AddNumberToObject(fit, "tokens_after", (double)rep.tokens_after);
		cJSON_AddNumberToObject(fit, "stage", rep.stage);
		cJSON_AddNumberToObject(fit, "summarized_messages", (double)rep.covered_messages);
		cJSON_AddNumberToObject(fit, "kept_messages", (double)rep.kept_messages);
		if (rep.recall[0])
			cJSON_AddStringToObject(fit, "recall", rep.recall);
		else
			cJSON_AddNullToObject(fit, "recall");
	} else {
		fprintf(stderr, "cmv: the branch is %llu tokens of %s, over its budget of %llu: compacted to %llu (%s%zu messages "
				"summarized, %zu kept%s%s)\n",
			(unsigned long long)ts.total, m->id, (unsigned long long)budget, (unsigned long long)rep.tokens_after,
			rep.stage == 1 ? "trimmed; " : "", rep.covered_messages, rep.kept_messages,
			rep.recall[0] ? "; cmv recall " : "", rep.recall[0] ? rep.recall : "");
	}
	cmv_compact_report_dispose(&rep);
done:
	cmv_tok_free(tok);
	cmv_models_free(models);
	return rc;
}

CMD(branch)
{
	cmv_buf from = CMV_BUF_INIT(4096);
	cmv_ref *src = NULL;
	cmv_id at;
	char hex[CMV_ID_HEXSZ + 1];
	const char *from_ref = NULL;
	int rc = EXIT_OK;

	CLI_PARSE("branch");
	size_t threshold;
	char auto_name[CMV_REF_NAME_MAX + 1];
	if (b_trim && b_no_trim)
		return cli_usage_error(cli_find("branch"), "--trim or --no-trim, not both");
	if (cli_parse_threshold(&threshold, b_threshold) < 0)
		return cli_usage_error(cli_find("branch"), "--threshold needs a whole number of characters, at least %d, not '%s'",
				       CMV_TRIM_THRESHOLD_MIN, b_threshold);
	if (!b_from && !b_at && cmv_ref_lookup(&src, ctx->repo, b_name) == 0 && src->type == CMV_REF_SNAPSHOT) {
		/* `cmv branch SNAPSHOT`: a branch of it named SNAPSHOT-<date> */
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
		snprintf(auto_name, sizeof(auto_name), "%.*s-%s", (int)cli_utf8_cut(b_name, strlen(b_name), 200), b_name,
			 stamp);
		b_from = b_name;
		b_name = auto_name;
	}
	cmv_ref_free(src);
	src = NULL;
	cmv_error_clear();
	if (b_launch && b_skip_launch)
		return cli_usage_error(cli_find("branch"), "--launch or --skip-launch, not both");
	if (b_launch && b_dry)
		return cli_usage_error(cli_find("branch"), "--dry-run launches nothing: no --launch");
	if (b_launch && !b_claude && !b_codex)
		return cli_usage_error(cli_find("branch"), "--launch goes with --claude or --codex");
	if (b_claude && b_codex)
		return cli_usage_error(cli_find("branch"), "--claude or --codex, not both");
	if (b_from && b_at)
		return cli_usage_error(cli_find("branch"), "--from and --at cannot be used together");
	if ((b_cwd || b_model || b_budget) && !b_claude && !b_codex)
		return cli_usage_error(cli_find("branch"), "--cwd, --model and --budget go with --claude or --codex");
	uint64_t budget = 0;
	if (b_budget && (!cli_parse_u64(&budget, b_budget) || !budget))
		return cli_usage_error(cli_find("branch"), "--budget needs a positive number of tokens, not '%s'", b_budget);
	if (b_at || b_from) {
		cli_ref_canon(&from, ctx, b_at ? b_at : b_from);
	} else if ((rc = cli_current_branch(&from, ctx)) != 0) {
		goto done;
	}
	if ((rc = cli_resolve(&at, ctx, from.ptr)) != 0)
		goto done;
	/* Lineage: the ref named, also when it is given as REF~N with --at. */
	if (b_at) {
		char *tilde = strrchr(from.ptr, '~');
		if (tilde)
			*tilde = '\0';
	}
	if (cmv_ref_lookup(&src, ctx->repo, from.ptr) == 0)
		from_ref = src->name;
	cmv_error_clear();
	bool trim = b_trim || (src && src->type == CMV_REF_SNAPSHOT && !b_at && !b_no_trim);
	/* with an agent's session, the branch and the session stand together or neither does */
	bool agent = b_claude || b_codex;
	if (b_dry) {
		/* the branch name is checked as creating it would; the trim runs dry */
		cmv_ref *taken = NULL;
		if (!cmv_ref_name_is_valid(b_name)) {
			rc = cli_failf("invalid name '%s'", b_name);
			goto done;
		}
		if (cmv_ref_lookup(&taken, ctx->repo, b_name) == 0) {
			cmv_ref_free(taken);
			rc = cli_failf("'%s' already exists", b_name);
			goto done;
		}
		cmv_error_clear();
		cJSON *o = b_json ? cJSON_CreateObject() : NULL;
		cmv_id head = at;
		if (trim && (rc = cli_trim(&head, ctx, &at, from_ref, b_name, NULL, threshold, NULL, true,
					   o ? cJSON_AddObjectToObject(o, "trim") : NULL)) != EXIT_OK) {
			cJSON_Delete(o);
			goto done;
		}
		if (o) {
			cJSON_AddStringToObject(o, "branch", b_name);
			cJSON_AddStringToObject(o, "head", cli_id(&head, hex));
			if (from_ref)
				cJSON_AddStringToObject(o, "from", from_ref);
			else
				cJSON_AddNullToObject(o, "from");
			cJSON_AddBoolToObject(o, "trimmed", trim);
			if (agent)
				cJSON_AddStringToObject(o, "agent", b_claude ? "claude-code" : "codex");
			cJSON_AddBoolToObject(o, "dry_run", true);
			rc = cli_print_json(o);
		} else {
			printf("would make %sbranch '%s'%s%s%s%s; nothing was changed\n", trim ? "trimmed " : "", b_name,
			       from_ref ? " from " : "", from_ref ? from_ref : "",
			       agent ? (b_claude ? ", and a Claude Code session of it" : ", and a Codex rollout of it") : "",
			       b_checkout ? ", checked out" : "");
		}
		goto done;
	}
	if (agent && cmv_repo_txn_begin(ctx->repo) < 0) {
		rc = cli_fail("cannot start a transaction");
		goto done;
	}
	cJSON *o = b_json ? cJSON_CreateObject() : NULL;
	int fitted = 0;
	cmv_id source_tip = at;
	if (agent && !trim && (rc = fit_carry(&fitted, &at, ctx, b_claude ? "claude-code" : "codex", from_ref, budget, o)) != EXIT_OK) {
		cmv_repo_txn_rollback(ctx->repo);
		cJSON_Delete(o);
		goto done;
	}
	if (fitted) {
		/* the compaction made the branch */
	} else if (trim) {
		cJSON *report = o ? cJSON_AddObjectToObject(o, "trim") : NULL;
		rc = cli_trim(&at, ctx, &at, from_ref, b_name, NULL, threshold, NULL, false, report);
	} else if (cmv_branch_create(ctx->repo, b_name, &at, from_ref) < 0) {
		rc = cli_fail("cannot create the branch");
	}
	if (rc == EXIT_OK && b_checkout && cmv_head_set(ctx->repo, b_name) < 0)
		rc = cli_fail("cannot check out the branch");
	if (rc != EXIT_OK) {
		if (agent)
			cmv_repo_txn_rollback(ctx->repo);
		cJSON_Delete(o);
		goto done;
	}
	if (b_json) {
		cJSON_AddStringToObject(o, "branch", b_name);
		cJSON_AddStringToObject(o, "head", cli_id(&at, hex));
		if (from_ref)
			cJSON_AddStringToObject(o, "from", from_ref);
		else
			cJSON_AddNullToObject(o, "from");
	}
	cli_agent_session written;
	cli_carry_opts carry = { b_cwd, b_name, from_ref, fitted ? &source_tip : NULL };
	if (agent && (rc = cli_write_agent_session(&written, ctx, &at, o, b_claude ? "claude" : "codex", b_name, true, &carry)) != EXIT_OK) {
		cJSON_Delete(o);
		goto done;
	}
	/* a carried branch holds the target's records now: its head is theirs */
	cmv_ref *made = NULL;
	if (agent && cmv_ref_lookup(&made, ctx->repo, b_name) == 0 && !cmv_id_equal(&made->target, &at)) {
		at = made->target;
		if (o)
			cJSON_ReplaceItemInObjectCaseSensitive(o, "head", cJSON_CreateString(cli_id(&at, hex)));
	}
	cmv_ref_free(made);
	cmv_error_clear();
	if (!b_json)
		printf("%sbranch '%s' at %s%s%s\n", trim ? "trimmed " : "", b_name, cli_short(&at, hex),
		       from_ref ? " from " : "", from_ref ? from_ref : "");
	if (o)
		rc = cli_print_json(o);
	if (rc == EXIT_OK && b_launch)
		rc = cli_launch_agent_session(&written);
done:
	cmv_ref_free(src);
	cmv_buf_dispose(&from);
	return rc;
}
