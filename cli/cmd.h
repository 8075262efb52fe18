/* SPDX-License-Identifier: MIT */
/*
 * The cmv command line: the command table and what every command shares.
 *
 * To add a command:
 *  1. write cli/cmd_<name>.c with `int cmd_<name>(cli_ctx *, int, char **)`,
 *     a static cli_opt array describing its options and arguments (help is
 *     generated from it), and a one-line summary;
 *  2. declare it below and add it to the table in cli/main.c, with
 *     CLI_NEEDS_STORE when it works on a store;
 *  3. add tests in tests/cli/ and a line in README.md's "CLI at a glance".
 *
 * Exit codes: 0 ok, 1 error, 2 usage. Errors go to stderr as "cmv: <msg>";
 * primary output (--json included) goes to stdout.
 */
#ifndef CMV_CLI_CMD_H
#define CMV_CLI_CMD_H

#include <stdbool.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include <cmv/cmv.h>

#define EXIT_OK 0
#define EXIT_ERROR 1
#define EXIT_USAGE 2

typedef enum {
	OPT_END = 0,
	OPT_FLAG,     /* --name: sets *flag = true */
	OPT_VALUE,    /* --name VALUE: sets *value */
	OPT_ARG,      /* a required positional argument */
	OPT_ARG_OPT,  /* an optional positional argument */
} cli_opt_kind;

typedef struct cli_opt {
	cli_opt_kind kind;
	const char *name;      /* long option name, or the positional's display name */
	char short_name;       /* 0 for none */
	const char *value_name;
	const char *help;
	const char **value;    /* OPT_VALUE, OPT_ARG, OPT_ARG_OPT */
	bool *flag;            /* OPT_FLAG */
} cli_opt;

typedef struct cli_ctx {
	const char *cmd_name;
	cmv_repo *repo;
	const char *store_path; /* the .cmv folder in use */
	const char *store_arg;  /* --store as given (commands that open the store themselves) */
} cli_ctx;

enum cli_cmd_flags {
	CLI_NEEDS_STORE = (1u << 0),
};

typedef struct cli_cmd {
	const char *name;
	int (*fn)(cli_ctx *ctx, int argc, char **argv);
	unsigned int flags;
	const char *summary;
	const cli_opt *opts;
} cli_cmd;

/*
 * Parse argv against opts. Prints usage and returns EXIT_USAGE on a bad
 * command line; returns -1 after printing help for -h/--help (the caller
 * exits 0); returns 0 otherwise.
 */
int cli_parse(const cli_cmd *cmd, int argc, char **argv);
void cli_usage(FILE *out, const cli_cmd *cmd, bool full);
const cli_cmd *cli_find(const char *name);
extern const cli_cmd cli_commands[];

/* Report the library's last error (or `fallback`) as "cmv: ..." and return EXIT_ERROR. */
int cli_fail(const char *fallback);
int cli_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a cJSON document to stdout (and free it). */
int cli_print_json(cJSON *doc);
/* Hex id helpers: full and abbreviated (12 digits). */
const char *cli_id(const cmv_id *id, char buf[CMV_ID_HEXSZ + 1]);
const char *cli_short(const cmv_id *id, char buf[CMV_ID_HEXSZ + 1]);
/* A unix time as "2026-11-22 11:01:00" (UTC) in buf: for people. */
const char *cli_time(int64_t t, char buf[32]);
/* A unix time as RFC 3339 in UTC, "2026-11-22T11:01:00Z": every time in JSON. */
const char *cli_rfc3339(int64_t t, char buf[32]);
/* The longest prefix of s[0..len) of at most max bytes that ends on a UTF-8 character boundary. */
size_t cli_utf8_cut(const char *s, size_t len, size_t max);
/* Create a folder and its missing parents (0700); -1 with errno set on failure. */
int cli_mkdirs(const char *path);
/* Read all of stdin into buf. */
int cli_read_stdin(cmv_buf *buf);
/* Split "a,b,c" into an array of strings (one allocation, free with free()). */
char **cli_split_commas(const char *s, size_t *n_out);
/* "branch", "snapshot" or "session". */
const char *cli_ref_type_name(cmv_ref_type type);
/* The current branch name, or NULL with an error printed. */
int cli_current_branch(cmv_buf *out, cli_ctx *ctx);

/* Parse this command's options; returns from the caller on --help or a usage error. */
#define CLI_PARSE(name)                                                        \
	do {                                                                   \
		int parse_rc_ = cli_parse(cli_find(name), argc, argv);         \
		if (parse_rc_ != 0)                                            \
			return parse_rc_ < 0 ? EXIT_OK : parse_rc_;            \
	} while (0)

/*
 * A REF as the user gave it, with a session ref (cc/<id>, codex/<id>: what
 * import prints) replaced by the session's branch, or by its last imported
 * head when the branch is gone; anything else unchanged. NULL for NULL.
 */
const char *cli_ref_canon(cmv_buf *out, cli_ctx *ctx, const char *spec);
/* As cli_ref_canon, kept until the command returns: `ref = cli_ref_arg(ctx, ref);` */
const char *cli_ref_arg(cli_ctx *ctx, const char *spec);
/* Keep a malloc'd string until the command returns (NULL: cannot). */
const char *cli_ref_arg_keep(char *s);
void cli_ref_args_free(void);
/* Resolve a REF argument (NULL: the current branch; a session ref: its branch) to a node id, or fail. */
int cli_resolve(cmv_id *out, cli_ctx *ctx, const char *spec);
/* A one-line preview of a node's content, at most max_chars bytes. */
int cli_preview(cmv_buf *out, cli_ctx *ctx, const cmv_node *node, size_t max_chars);

#define CMD(name) int cmd_##name(cli_ctx *ctx, int argc, char **argv)
CMD(init); CMD(append); CMD(import); CMD(export); CMD(log); CMD(show); CMD(snapshot);
CMD(branch); CMD(checkout); CMD(list); CMD(tree); CMD(info); CMD(delete); CMD(search);
CMD(gc); CMD(fsck); CMD(sessions); CMD(tokens); CMD(models); CMD(stats); CMD(model); CMD(help); CMD(version);
CMD(trim); CMD(recall); CMD(hook); CMD(auto_trim); CMD(materialize); CMD(fit); CMD(tool_schema); CMD(switch);
CMD(compact); CMD(sync); CMD(handoff); CMD(uncompact); CMD(benchmark); CMD(completions); CMD(mcp); CMD(proxy);
CMD(push); CMD(pull);
CMD(ledger); CMD(shadow);

extern const cli_opt opts_init[], opts_append[], opts_import[], opts_export[], opts_log[],
	opts_show[], opts_snapshot[], opts_branch[], opts_sync[], opts_checkout[], opts_list[], opts_tree[],
	opts_info[], opts_delete[], opts_search[], opts_gc[], opts_fsck[], opts_sessions[], opts_tokens[], opts_models[], opts_stats[], opts_model[], opts_help[], opts_trim[], opts_recall[], opts_hook[], opts_auto_trim[], opts_materialize[], opts_fit[], opts_tool_schema[], opts_switch[],
	opts_compact[], opts_handoff[], opts_uncompact[], opts_benchmark[], opts_completions[],
	opts_version[], opts_mcp[], opts_proxy[], opts_push[], opts_pull[], opts_ledger[], opts_shadow[];

/* Parse a --threshold value: a whole number >= CMV_TRIM_THRESHOLD_MIN (NULL: 0, the default). -1 if bad. */
int cli_parse_threshold(size_t *out, const char *s);
/* A whole, non-negative number (a token budget, a count): false when s is not one. */
bool cli_parse_u64(uint64_t *out, const char *s);
/*
 * The one way the command line resolves a model name (cmv_models_resolve):
 * an id, alias or dated id, else a provisional profile by family, which
 * prints what it assumed on stderr ("cmv: unknown model ...: counted as
 * ..."). @return 0, or the library's error (its message suggests close ids)
 */
int cli_model(const cmv_model **out, cmv_models *models, const char *name);
/*
 * The model REF runs on (NULL: the current branch): the branch's (cmv
 * model), else that of what it was made from; 1 with its id in out, 0 with
 * out empty when none is set. Every command that needs a model defaults
 * to this, then to CLI_DEFAULT_MODEL.
 */
int cli_branch_model(cmv_buf *out, cli_ctx *ctx, const char *ref);
#define CLI_DEFAULT_MODEL "claude-sonnet-4-5"
/* Models cli_model resolves from now on count as `repo`'s calibrations say (main: the command's store). */
void cli_calibrate_with(cmv_repo *repo);
/*
 * Trim tip into `branch` (made from from_ref / snapshot) and report in the
 * model's tokens: into json when given, else as a table on stdout.
 */
int cli_trim(cmv_id *head, cli_ctx *ctx, const cmv_id *tip, const char *from_ref, const char *branch,
	     const char *snapshot, size_t threshold, const char *model, bool dry, cJSON *json);

/*
 * Token counts of what models are sent for a conversation (cmv tree, cmv
 * info): the models of a comma list (NULL: claude-sonnet-4-5), each with
 * its tokenizer loaded once.
 */
#define CLI_COUNTER_MAX 8
typedef struct cli_counter {
	cmv_models *models;
	const cmv_model *m[CLI_COUNTER_MAX];
	cmv_tok *tok[CLI_COUNTER_MAX];
	size_t n;
} cli_counter;
/* EXIT_OK, or EXIT_USAGE / EXIT_ERROR after saying why. */
int cli_counter_init(cli_counter *c, const cli_cmd *cmd, const char *list);
/* The index of model `name` in c, loading it when new (up to CLI_COUNTER_MAX); EXIT_OK or as cli_counter_init. */
int cli_counter_add(size_t *index, cli_counter *c, const cli_cmd *cmd, const char *name);
int cli_counter_count(uint64_t *out, cli_counter *c, size_t i, cmv_repo *repo, const cmv_id *tip);
void cli_counter_free(cli_counter *c);
/* "12.3k" for 12345 (3 significant digits) into buf. */
const char *cli_human(uint64_t n, char buf[16]);

#endif
