#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real Codex's tool search through cmv proxy (docs/proxy.md, "A reply's items are the model's").

Codex 0.171.0 with its tool_search feature on, cmv's MCP server installed (its tools deferred,
so the model finds them by searching), and a model whose metadata says it takes the search tool
(gpt-5.5): the scripted model's tool_search_call is run by Codex, which sends back the call (with
metadata of its own added) and a tool_search_output holding the definitions it found. Every
upstream request from then on carries both as Codex sent them (equal to the items of Codex's
own rollout), the output right after its call; the session stays one branch. Codex's developer
items (its instructions) go upstream in the input as it sent them, each request's input the one
before it and more."""
import glob, json, os, re, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import Sandbox, check, finish

SEARCH = {"type": "tool_search_call", "id": "tsc_0ca0f091", "call_id": "call_search1", "status": "completed",
          "execution": "client", "arguments": {"query": "search the conversation history", "limit": 8}}
sb = Sandbox("proxy_tool_search")
sb.serve([{"item": SEARCH}, {"tool": "exec_command", "input": {"cmd": "echo searched"}}, {"text": "Found it."}])
err = open(os.path.join(sb.root, "proxy.err"), "w")
px = subprocess.Popen([sb.cmv, "proxy", "--listen", "127.0.0.1:0", "--budget", "60000",
                       "--upstream", f"openai=http://127.0.0.1:{sb.port}/v1"],
                      stdout=subprocess.PIPE, stderr=err, text=True, cwd=sb.store, env=sb.env())
sb.port = int(re.search(r":(\d+)$", px.stdout.readline().strip()).group(1))
cfg = os.path.join(sb.codex_home, "config.toml")
with open(cfg, "w") as f:
    f.write(f'model = "gpt-5.5"\nopenai_base_url = "http://127.0.0.1:{sb.port}/v1"\n')
check(sb.run_cmv("mcp", "install", "--codex").returncode == 0, "cmv mcp install --codex")
with open(cfg, "a") as f:
    f.write("\n[features]\ntool_search = true\ntool_search_always_defer_mcp_tools = true\n")

r = sb.codex("exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
             "Find a tool that searches the conversation history.", timeout=240)
check(r.returncode == 0 and "Found it." in r.stdout, f"Codex ran its session through the proxy ({r.stdout[-300:]!r})")
reqs = [q["body"] for q in sb.requests("/v1/responses") if isinstance(q["body"], dict) and q["body"].get("tools")]
check(len(reqs) == 3, f"three requests went upstream ({len(reqs)})")
check(reqs and any(t.get("type") == "tool_search" for t in reqs[0]["tools"]), "Codex offered its tool_search tool")

# what Codex kept of the search: the items it sends
rollout = [json.loads(line) for p in glob.glob(os.path.join(sb.codex_home, "sessions", "*", "*", "*", "rollout-*.jsonl"))
           for line in open(p) if line.strip()]
kept = {x["payload"]["type"]: x["payload"] for x in rollout
        if x.get("type") == "response_item" and x["payload"].get("type", "").startswith("tool_search")}
call, output = kept.get("tool_search_call"), kept.get("tool_search_output")
check(call and output and output.get("call_id") == "call_search1" and output.get("tools"),
      f"Codex ran the search: its output holds the definitions it found ({json.dumps(output)[:300]})")
check(call and "internal_chat_message_metadata_passthrough" in call,
      "Codex sends the model's call back with metadata of its own added")
for n, body in enumerate(reqs[1:], 1):
    inp = body.get("input", [])
    kinds = [i.get("type") for i in inp]
    k = kinds.index("tool_search_call") if "tool_search_call" in kinds else -1
    check(kinds.count("tool_search_call") == 1 and kinds.count("tool_search_output") == 1 and k >= 0 and
          inp[k] == call and k + 1 < len(inp) and inp[k + 1] == output,
          f"upstream request {n + 1} carries the search as Codex sent it, the output right after its call ({kinds})")
check(any(t.get("name") == "mcp__cmv" for t in (output or {}).get("tools", [])) and
      "mcp__cmv" in json.dumps(reqs[-1]["input"]), "the searched definitions (cmv's MCP tools) went upstream")

# Codex's developer items: 0.171.0 sends its instructions so, in the input, not in `instructions`
# (data/client-requests/codex.json), and they go upstream as Codex sent them, where it put them
devs = [x["payload"] for x in rollout if x.get("type") == "response_item" and x["payload"].get("role") == "developer"]
check(devs, "Codex's rollout holds its developer items")
for n, body in enumerate(reqs):
    inp = body.get("input", [])
    up = {i.get("id"): i for i in inp if i.get("role") == "developer"}
    check("instructions" not in body and inp and inp[0].get("role") == "developer" and
          "model.base_instructions" in json.dumps(inp[0].get("internal_chat_message_metadata_passthrough")),
          f"upstream request {n + 1} begins with Codex's base instructions as Codex sent them, no instructions member")
    for d in devs:
        u = up.get(d.get("id"), {})
        # the rollout keeps metadata Codex does not send (content_item_metadata): the rest is what it sent
        meta = {k: v for k, v in (d.get("internal_chat_message_metadata_passthrough") or {}).items() if k != "content_item_metadata"}
        check(u.get("content") == d.get("content") and u.get("type") == d.get("type") and
              u.get("internal_chat_message_metadata_passthrough") == meta,
              f"upstream request {n + 1} carries Codex's developer item {d.get('id')} whole, in the input")
    check(not n or inp[:len(reqs[n - 1]["input"])] == reqs[n - 1]["input"],
          f"upstream request {n + 1}'s input begins with the one before it (the prompt cache holds)")
keys = {b.get("prompt_cache_key") for b in reqs}
key = next(iter(keys)) if len(keys) == 1 else ""
lg = sb.run_cmv("log", key) if key else None
check(lg is not None and lg.returncode == 0 and "Found it." in lg.stdout, f"cmv log {key} shows Codex's session")
branches = sb.run_cmv("list", "--branches").stdout
check(".fork-" not in branches, f"the search forked nothing off the session's branch ({branches.strip()})")
px.terminate()
px.wait()
err.close()
check(px.returncode in (0, -15), "the proxy stopped cleanly")
print(open(os.path.join(sb.root, "proxy.err")).read()[-1500:])
sb.close()
finish("clients_proxy_tool_search")
