#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python half of `cmv-bench host`: the loop of bench/bench_host.c through the package.
Usage: host_bench.py STORE TURNS BUDGET; prints {"p50_ms", "mean_ms"} as one JSON line."""
import json, statistics, sys, time
import cmv

store_path, turns, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
TOOLS = [{"name": "shell", "description": "Run a command.",
          "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}}}]


def words(turn, n):
    return "".join("w%d_%d " % (turn * 7 + i, i % 13) for i in range(n))


ms = []
with cmv.Store(store_path) as store:
    b = store.branch("h")
    for t in range(turns):
        user, reply = words(t, 40), words(t + 100000, 120)
        t0 = time.perf_counter()
        b.append([{"role": "user", "content": user}], format="openai-chat")
        body, report = b.materialize("gpt-4o", budget=budget, tools=TOOLS, recall_tool=True)
        b.append({"role": "assistant", "content": reply}, format="openai-chat")
        b.record_usage("gpt-4o", input_tokens=1000 + t, output_tokens=100)
        ms.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"p50_ms": statistics.median(ms), "mean_ms": statistics.fmean(ms)}))
