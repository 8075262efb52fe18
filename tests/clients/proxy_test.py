#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real Claude Code, real Codex and the official SDKs through cmv proxy, which points at the
scripted loopback model server (docs/proxy.md, docs/clients.md). A long Claude Code session
with large tool outputs through a small budget: every upstream request within the budget by
`cmv tokens` on the body as sent, valid for the Messages API, its prefix stable between
turns except where a batch was cut; the model calls recall through the proxy and Claude Code
goes on; Codex's session lands on the branch its conversation id names."""
import json, os, re, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import Sandbox, check, finish, anthropic_problems, client, clients_dir

BUDGET = 24000
# the proxy's tool paging: cache (the default) or tokens (clients_proxy_tokens: a called tool whole for one reply)
POLICY = os.environ.get("CMV_TEST_TOOL_PAGING", "cache")
sb = Sandbox("proxy")
for k in range(6):
    with open(os.path.join(sb.work, f"big{k}.txt"), "w") as f:
        f.write("\n".join(f"row {k}.{i}: " + "alpha beta gamma delta " * 4 for i in range(250)))
turns = [{"tool": "Bash", "input": {"command": f"cat big{k}.txt", "description": "show"}} for k in range(6)]
turns += [{"recall": True}, {"text": "Read them all."}]
sb.serve(turns)
up_port = sb.port
err = open(os.path.join(sb.root, "proxy.err"), "w")
px = subprocess.Popen([sb.cmv, "proxy", "--listen", "127.0.0.1:0", "--budget", str(BUDGET), "--tool-paging", POLICY,
                       "--upstream", f"anthropic=http://127.0.0.1:{up_port}",
                       "--upstream", f"openai=http://127.0.0.1:{up_port}/v1"],
                      stdout=subprocess.PIPE, stderr=err, text=True, cwd=sb.store, env=sb.env())
sb.port = int(re.search(r":(\d+)$", px.stdout.readline().strip()).group(1))
with open(os.path.join(sb.codex_home, "config.toml"), "w") as f:
    f.write(f'model = "gpt-5"\nopenai_base_url = "http://127.0.0.1:{sb.port}/v1"\n')

r = sb.claude("-p", "Read the six big files, one at a time.", "--model", "claude-sonnet-4-5", "--output-format", "json",
              "--allowedTools", "Bash", timeout=240)
check(r.returncode == 0, "Claude Code ran its session through the proxy")
out = json.loads(r.stdout) if r.returncode == 0 else {}
session = out.get("session_id", "")
check(out.get("result") == "Read them all.", f"Claude Code got the final answer after the recall ({out.get('result')!r})")
main = sb.main_requests("/v1/messages")
check(len(main) >= 8, f"every turn went upstream ({len(main)} requests)")
over = []
for q in main:
    p = os.path.join(sb.root, f"up{q['n']}.json")
    json.dump(q["body"], open(p, "w"))
    t = sb.run_cmv("tokens", "--model", "claude-sonnet-4-5", "--json", p)
    n = json.loads(t.stdout)["tokens"] if t.returncode == 0 else None
    if n is None or n > BUDGET:
        over.append((q["n"], n))
check(not over, f"every upstream request within {BUDGET} tokens by cmv tokens on the body sent ({over})")
bad = [(q["n"], anthropic_problems(q["body"]["messages"])) for q in main if anthropic_problems(q["body"]["messages"])]
check(not bad, f"every upstream request valid for the Messages API ({bad[:2]})")
check(any("; recall " in json.dumps(q["body"]["messages"]) for q in main), "old tool results were paged out")


def norm(ms):
    return [json.loads(re.sub(r',"cache_control":\{"type":"ephemeral"(,"ttl":"[^"]*")?\}', "", json.dumps(m, separators=(",", ":"))))
            for m in ms]


stable = cuts = 0
for a, b in zip(main, main[1:]):
    ma, mb = norm(a["body"]["messages"]), norm(b["body"]["messages"])
    if mb[:len(ma)] == ma:
        stable += 1
    else:
        cuts += 1
check(stable >= cuts, f"the prefix stays between turns except where a batch was cut ({stable} stable, {cuts} cut)")
recalled = [q for q in main if any(isinstance(b, dict) and b.get("name") == "cmv_recall"
                                   for m in q["body"]["messages"] if m["role"] == "assistant" for b in m["content"])]
check(recalled, "the proxy answered the model's recall and went on upstream")
full = sum(len(json.dumps(t)) for t in main[0]["body"]["tools"])
check(any(t.get("description", "").endswith(" [abridged]") for t in main[0]["body"]["tools"]),
      f"Claude Code's unused tools went as stubs ({len(main[0]['body']['tools'])} definitions, {full} bytes)")
if POLICY == "tokens":
    # whole: what no stub is shorter than (the first request's), and the tools the reply before called
    def whole(q):
        return {t["name"] for t in q["body"]["tools"] if not t.get("description", "").endswith(" [abridged]")}

    def called_before(q):
        last = [m for m in q["body"]["messages"] if m["role"] == "assistant"][-1:]
        return {b["name"] for m in last for b in (m["content"] if isinstance(m["content"], list) else [])
                if isinstance(b, dict) and b.get("type") == "tool_use"}
    always = whole(main[0])
    wrong = [(q["n"], sorted(whole(q)), sorted(called_before(q))) for q in main[1:]
             if whole(q) != always | (called_before(q) - {"cmv_recall"})]
    check("Bash" not in always and not wrong,
          f"tokens: each request sends whole only the tools the reply before it called ({wrong[:3]})")
lg = sb.run_cmv("log", session)
check(lg.returncode == 0 and "Read them all." in lg.stdout, f"cmv log {session} shows the session")

# Codex through the proxy
sb.stop()
sb.serve([{"tool": "exec_command", "input": {"cmd": "seq 1 3"}}, {"text": "Codex done."}])
px.terminate()
px.wait()
px = subprocess.Popen([sb.cmv, "proxy", "--listen", "127.0.0.1:0", "--budget", str(BUDGET),
                       "--upstream", f"anthropic=http://127.0.0.1:{sb.port}",
                       "--upstream", f"openai=http://127.0.0.1:{sb.port}/v1"],
                      stdout=subprocess.PIPE, stderr=err, text=True, cwd=sb.store, env=sb.env())
up_port = sb.port
sb.port = int(re.search(r":(\d+)$", px.stdout.readline().strip()).group(1))
with open(os.path.join(sb.codex_home, "config.toml"), "w") as f:
    f.write(f'model = "gpt-5"\nopenai_base_url = "http://127.0.0.1:{sb.port}/v1"\n')
r = sb.codex("exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "Count to three.")
check(r.returncode == 0 and "Codex done." in r.stdout, f"Codex ran through the proxy ({r.stdout[-300:]!r})")
reqs = [q for q in sb.requests("/v1/responses") if isinstance(q["body"], dict) and q["body"].get("tools")]
keys = {q["body"].get("prompt_cache_key") for q in reqs}
check(len(reqs) >= 2 and len(keys) == 1, f"Codex's requests carry one conversation id ({keys})")
key = next(iter(keys)) if keys else ""
lg = sb.run_cmv("log", key)
check(lg.returncode == 0 and "Codex done." in lg.stdout, "cmv log CONVERSATION_ID shows Codex's session")

# the official SDKs
node = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_sdk.mjs"),
                       os.path.join(os.path.dirname(clients_dir()), "node_modules"), f"http://127.0.0.1:{sb.port}"],
                      capture_output=True, text=True, timeout=120)
print(node.stdout, node.stderr[-2000:])
check(node.returncode == 0, "the Anthropic and OpenAI SDKs stream through the proxy")
px.terminate()
px.wait()
err.close()
if not check(px.returncode in (0, -15), "the proxy stopped cleanly"):
    pass
print(open(os.path.join(sb.root, "proxy.err")).read()[-2500:])
sb.close()
finish("clients_proxy")
