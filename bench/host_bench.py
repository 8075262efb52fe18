#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python half of `cmv-bench host`: the loop of bench/bench_host.c through the package.
Usage: host_bench.py STORE TURNS BUDGET [bytes|dict]; prints {"p50_ms", "mean_ms", "cpu_mean_ms"} as one JSON line.
bytes (the same work as the C loop): the request body comes back as the bytes to send;
dict: it is parsed into a dict as well (Branch.materialize)."""
import json, statistics, sys, time
import cmv

store_path, turns, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
as_dict = len(sys.argv) > 4 and sys.argv[4] == "dict"
TOOLS = [{"name": "shell", "description": "Run a command.",
          "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}}}]


def words(turn, n):
    return "".join("w%d_%d " % (turn * 7 + i, i % 13) for i in range(n))


ms, cpu = [], []
with cmv.Store(store_path) as store:
    b = store.branch("h")
    get = b.materialize if as_dict else b.request
    for t in range(turns):
        user, reply = words(t, 40), words(t + 100000, 120)
        t0, c0 = time.perf_counter(), time.thread_time()
        b.append([{"role": "user", "content": user}], format="openai-chat")
        body, report = get("gpt-4o", budget=budget, tools=TOOLS, recall_tool=True)
        b.append({"role": "assistant", "content": reply}, format="openai-chat")
        b.record_usage("gpt-4o", input_tokens=1000 + t, output_tokens=100)
        ms.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
print(json.dumps({"p50_ms": statistics.median(ms), "mean_ms": statistics.fmean(ms), "cpu_mean_ms": statistics.fmean(cpu),
                  "cpu_p50_ms": statistics.median(cpu)}))
