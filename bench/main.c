/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench: measurements of speed and size. Figures are reported with a
 * baseline measured in the same run on the same machine, so they compare
 * across machines as ratios. Never a pass/fail test. This file only
 * dispatches to the suites (bench_*.c); their shared helpers are bench.c.
 */
#include <string.h>
#include "bench.h"

static void usage(FILE *out)
{
	fputs("usage: cmv-bench SUITE [OPTIONS]\n\n"
	      "suites:\n"
	      "    store [--quick] [--json]   append rate, snapshot/branch latency by history size,\n"
	      "                               store bytes with 100 branches and 100 snapshots\n"
	      "        [--store URL [--shared-only | --ops]]  PostgreSQL beside SQLite; --ops: each\n"
	      "                               operation's p50 at 10k and 100k nodes, both backends\n"
	      "    import DIR [--json]        import, re-import, export and render throughput over a\n"
	      "                               folder of sessions; store bytes against input bytes\n"
	      "    tokenizer [--json]         MB/s per text class for each tokenizer, beside the\n"
	      "                               official tiktoken core; the 1 MiB worst case\n"
	      "    pager [--quick] [--json]     materialize latency, 10k to 1M-token histories into 8k to\n"
	      "                               200k windows (cold, warm, after an append); fault-in latency\n"
	      "    mcp [--quick] [--queries N] [--live[=same]] [--json]\n"
	      "                               MCP search and get p50/p95 over stdio and HTTP on 100k and\n"
	      "                               1M-token histories, beside the in-process query path\n"
	      "    proxy --switch [--requests N] [--words N] [--corpus DIR] [--quick] [--json]\n"
	      "                               a switched session's added first byte; Anthropic -> OpenAI -> Anthropic\n"
	      "                               round trips of every session in the corpus, with what changed\n"
	      "    host [--turns N] [--budget N] [--stream DELTAS] [--json]\n"
	      "                               an agent host's loop per turn (append, request, reply, usage),\n"
	      "                               in C and in Python (bindings/python); the goal: Python within 1.3x;\n"
	      "                               --stream: a streamed reply of DELTAS one-character deltas assembled\n"
	      "    locomo FILE [--budget N,...] [--json]\n"
	      "                               evidence recall within a token budget through the pager's\n"
	      "                               query path, beside a BM25 top-turns baseline (same run)\n"
	      "    trim DIR [--model M] [--threshold N] [--json]\n"
	      "                               trim every Claude Code session: tokens sent on resume\n"
	      "                               before and after, beside claude-code-cmv's rules; MB/s\n"
	      "    compact DIR --for MODEL[:BUDGET][,...] [--offline] [--summarizer M] [--llm-url URL] [--json]\n"
	      "                               the pre-migration job on every Claude Code and Codex session:\n"
	      "                               tokens before and after, fits, passes, coverage, time\n"
	      "    carry DIR [--json]         every Claude Code session carried into Codex and every Codex\n"
	      "                               rollout into Claude Code: what crossed, what could not,\n"
	      "                               tokens in the target's count, time\n"
	      "    count DIR [--json]         counted against billed per model, over every Claude Code session\n"
	      "                               that records usage, calibrated on the other half (two folds),\n"
	      "                               beside the built-in profiles\n"
	      "    resume DIR [--threshold N] [--runs N] [--cmv PATH] [--json]\n"
	      "                               what a real Claude Code resume sends for each session, untrimmed\n"
	      "                               and after cmv trim (o200k tokens); the hook's cost per tool call\n"
	      "    proxy [DIR] [--turns N] [--session-tokens N] [--budget N,...] [--client FILE] [--quick] [--json]\n"
	      "                               cmv proxy: added time to first byte beside the direct path on a\n"
	      "                               200k-token session; tokens sent, tool definitions saved and faults\n"
	      "                               on replayed Claude Code sessions\n",
	      out);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "store"))
		return bench_store(argc - 1, argv + 1);
	if (!strcmp(argv[1], "import"))
		return bench_import(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pager"))
		return bench_pager(argc - 1, argv + 1);
	if (!strcmp(argv[1], "host"))
		return bench_host(argc - 1, argv + 1);
	if (!strcmp(argv[1], "locomo"))
		return bench_locomo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mcp"))
		return bench_mcp(argc - 1, argv + 1);
	/* `proxy --switch`: switching and translation (bench_proxy_switch.c); plain `proxy` is bench_proxy.c's */
	for (int i = 2; !strcmp(argv[1], "proxy") && i < argc; i++)
		if (!strcmp(argv[i], "--switch"))
			return bench_proxy_switch(argc - 1, argv + 1);
	if (!strcmp(argv[1], "trim"))
		return bench_trim(argc - 1, argv + 1);
	if (!strcmp(argv[1], "compact"))
		return bench_compact(argc - 1, argv + 1);
	if (!strcmp(argv[1], "carry"))
		return bench_carry(argc - 1, argv + 1);
	if (!strcmp(argv[1], "count"))
		return bench_count(argc - 1, argv + 1);
	if (!strcmp(argv[1], "resume"))
		return bench_resume(argc - 1, argv + 1);
	if (!strcmp(argv[1], "proxy"))
		return bench_proxy(argc - 1, argv + 1);
	if (!strcmp(argv[1], "tokenizer"))
		return bench_tokenizer(argc - 1, argv + 1);
	fprintf(stderr, "cmv-bench: unknown suite '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
