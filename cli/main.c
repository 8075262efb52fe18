/* SPDX-License-Identifier: MIT */
/* cmv: the command table and dispatch. Each command lives in cmd_<name>.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

const cli_cmd cli_commands[] = {
	{ "init", cmd_init, 0, "Create a store (.cmv/) in a directory", opts_init },
	{ "import", cmd_import, CLI_NEEDS_STORE, "Import agent sessions or request bodies (a file, a folder, --session, --latest)", opts_import },
	{ "export", cmd_export, CLI_NEEDS_STORE, "Write a branch as JSONL or a provider request, or a session back whole", opts_export },
	{ "sessions", cmd_sessions, 0, "List the Claude Code and Codex sessions of this machine", opts_sessions },
	{ "append", cmd_append, CLI_NEEDS_STORE, "Append one message to a branch", opts_append },
	{ "log", cmd_log, CLI_NEEDS_STORE, "Show the conversation at a ref", opts_log },
	{ "show", cmd_show, CLI_NEEDS_STORE, "Show a node, or print a blob's bytes", opts_show },
	{ "snapshot", cmd_snapshot, CLI_NEEDS_STORE, "Name an immutable snapshot of a ref", opts_snapshot },
	{ "branch", cmd_branch, CLI_NEEDS_STORE, "Create a branch from a ref or node", opts_branch },
	{ "sync", cmd_sync, CLI_NEEDS_STORE, "Carry what either agent added since into the other, for each carried pair", opts_sync },
	{ "trim", cmd_trim, CLI_NEEDS_STORE, "Snapshot, then a trimmed branch: bloat stubbed, every text kept", opts_trim },
	{ "recall", cmd_recall, CLI_NEEDS_STORE, "Print the original bytes a trim stub names", opts_recall },
	{ "hook", cmd_hook, CLI_NEEDS_STORE, "Install, check or undo the Claude Code hooks that trim a session before it compacts", opts_hook },
	{ "mcp", cmd_mcp, 0, "The MCP server (stdio or HTTP) and its install into Claude Code, Codex, Gemini CLI", opts_mcp },
	{ "proxy", cmd_proxy, CLI_NEEDS_STORE, "The proxy: an agent's model API with demand paging, through its base URL", opts_proxy },
	{ "auto-trim", cmd_auto_trim, 0, "What the hooks run: trim the live session on stdin in place (always exits 0)", opts_auto_trim },
	{ "materialize", cmd_materialize, CLI_NEEDS_STORE, "The request a model is sent for a branch, paged to fit its window", opts_materialize },
	{ "fit", cmd_fit, CLI_NEEDS_STORE, "Whether a branch fits each model, and what would be paged out", opts_fit },
	{ "switch", cmd_switch, CLI_NEEDS_STORE, "Move a branch to another model: re-materialize it, record the switch", opts_switch },
	{ "compact", cmd_compact, CLI_NEEDS_STORE, "Make a branch fit a model: trim, page, summarize only what still does not fit", opts_compact },
	{ "handoff", cmd_handoff, CLI_NEEDS_STORE, "Print the handoff document of a conversation (for a new runtime)", opts_handoff },
	{ "uncompact", cmd_uncompact, CLI_NEEDS_STORE, "Restore the conversation a compacted branch came from", opts_uncompact },
	{ "ledger", cmd_ledger, CLI_NEEDS_STORE, "The side effects of a conversation: every tool call, its idempotency key and state", opts_ledger },
	{ "shadow", cmd_shadow, CLI_NEEDS_STORE, "Send a branch to two or more models, each reply on its own branch, and compare them side by side", opts_shadow },
	{ "benchmark", cmd_benchmark, 0, "What trimming saves per session, in the model's tokens and dollars (the real trimmer, a scratch store)", opts_benchmark },
	{ "tool-schema", cmd_tool_schema, 0, "The recall tool's definition, for an agent host to offer models", opts_tool_schema },
	{ "checkout", cmd_checkout, CLI_NEEDS_STORE, "Make a branch the current one", opts_checkout },
	{ "list", cmd_list, CLI_NEEDS_STORE, "List branches and snapshots", opts_list },
	{ "tree", cmd_tree, CLI_NEEDS_STORE, "Show snapshots and branches as a lineage tree", opts_tree },
	{ "info", cmd_info, CLI_NEEDS_STORE, "Show details of a branch or snapshot", opts_info },
	{ "delete", cmd_delete, CLI_NEEDS_STORE, "Delete a branch or snapshot (content stays until gc)", opts_delete },
	{ "search", cmd_search, CLI_NEEDS_STORE, "Full-text search over every stored message", opts_search },
	{ "push", cmd_push, CLI_NEEDS_STORE, "Send branches and snapshots, and only the objects it lacks, to another store or a bundle", opts_push },
	{ "pull", cmd_pull, CLI_NEEDS_STORE, "Fetch branches and snapshots, and only the objects this store lacks, from another store or a bundle", opts_pull },
	{ "gc", cmd_gc, CLI_NEEDS_STORE, "Remove content that no branch or snapshot reaches", opts_gc },
	{ "fsck", cmd_fsck, CLI_NEEDS_STORE, "Check the store; exit 1 if anything is wrong", opts_fsck },
	{ "tokens", cmd_tokens, 0, "Count tokens exactly in a model's tokenizer", opts_tokens },
	{ "models", cmd_models, 0, "List the model profiles (window, prices, tokenizer, source); add, set or remove your own", opts_models },
	{ "stats", cmd_stats, CLI_NEEDS_STORE, "Tokens of a conversation per model and kind", opts_stats },
	{ "model", cmd_model, CLI_NEEDS_STORE, "Show or set the model a branch runs on", opts_model },
	{ "completions", cmd_completions, 0, "Tab completion for bash, zsh or fish, made from this command table", opts_completions },
	{ "help", cmd_help, 0, "Show help for cmv or one command", opts_help },
	{ "version", cmd_version, 0, "Print the version", opts_version },
	{ NULL, NULL, 0, NULL, NULL },
};

static void usage_all(FILE *out)
{
	fputs("usage: cmv [--store PATH] COMMAND [ARGS]\n\n"
	      "cmv keeps an agent's context in a versioned, content-addressed store.\n\n"
	      "commands:\n", out);
	for (const cli_cmd *c = cli_commands; c->name; c++)
		fprintf(out, "    %-10s %s\n", c->name, c->summary);
	fputs("\nThe store is $CMV_DIR, --store PATH, or the nearest .cmv/ above the\n"
	      "working directory. 'cmv help COMMAND' shows a command's options.\n", out);
}

static const char *help_topic;
const cli_opt opts_help[] = {
	{ OPT_ARG_OPT, "COMMAND", 0, NULL, "the command to describe", &help_topic, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(help)
{
	const cli_cmd *c;
	int rc;

	(void)ctx;
	if ((rc = cli_parse(cli_find("help"), argc, argv)) != 0)
		return rc < 0 ? EXIT_OK : rc;
	if (!help_topic) {
		usage_all(stdout);
		return EXIT_OK;
	}
	if (!(c = cli_find(help_topic)))
		return cli_failf("no command named '%s' (see 'cmv help')", help_topic);
	cli_usage(stdout, c, true);
	return EXIT_OK;
}

static bool version_json;
const cli_opt opts_version[] = {
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &version_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(version)
{
	(void)ctx;
	CLI_PARSE("version");
	if (version_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "version", cmv_version());
		return cli_print_json(o);
	}
	printf("cmv %s\n", cmv_version());
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const char *store = NULL;
	const cli_cmd *cmd;
	cli_ctx ctx;
	cmv_buf path = CMV_BUF_INIT(4096);
	int i = 1, rc;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			store = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--store=", 8)) {
			store = argv[i] + 8;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage_all(stdout);
			return EXIT_OK;
		} else if (!strcmp(argv[i], "--version")) {
			printf("cmv %s\n", cmv_version());
			return EXIT_OK;
		} else {
			fprintf(stderr, "cmv: unknown option '%s'\n", argv[i]);
			usage_all(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	if (!(cmd = cli_find(argv[i]))) {
		fprintf(stderr, "cmv: '%s' is not a cmv command (see 'cmv help')\n", argv[i]);
		return EXIT_USAGE;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.cmd_name = cmd->name;
	ctx.store_arg = store;
	/* -h works anywhere, also outside a store. */
	for (int j = i + 1; j < argc && strcmp(argv[j], "--"); j++)
		if (!strcmp(argv[j], "-h") || !strcmp(argv[j], "--help")) {
			cli_usage(stdout, cmd, true);
			return EXIT_OK;
		}
	if (cmd->flags & CLI_NEEDS_STORE) {
		if (store)
			rc = cmv_buf_puts(&path, store);
		else
			rc = cmv_repo_discover(&path, NULL);
		if (rc < 0 || cmv_repo_open(&ctx.repo, path.ptr, 0) < 0) {
			rc = cli_fail("cannot open the store");
			cmv_buf_dispose(&path);
			return rc;
		}
		ctx.store_path = path.ptr;
	}
	cli_calibrate_with(ctx.repo);
	rc = cmd->fn(&ctx, argc - i, argv + i);
	cli_calibrate_with(NULL);
	cli_ref_args_free();
	cmv_repo_free(ctx.repo);
	cmv_buf_dispose(&path);
	/* A full disk or a closed pipe must not pass for success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			fprintf(stderr, "cmv: cannot write output: %s\n", strerror(errno));
		return EXIT_ERROR;
	}
	return rc;
}
