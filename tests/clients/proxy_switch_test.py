#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real Claude Code and real Codex through cmv proxy, switched mid-session to the other
provider and back (docs/proxy.md, "Switching"), against the scripted loopback model server.

Claude Code runs a turn with a tool call on Claude; `cmv switch SESSION --model gpt-5`; the
resumed session's requests go to the Responses API, a tool call the OpenAI upstream scripts
is run by Claude Code and its result reaches the upstream as a function_call_output; then
switched back, the Messages request holds both phases; `cmv log` holds every message.
The same with Codex switched to Claude, its developer items (its instructions, in the input on
gpt-5) system prompts there."""
import json, os, re, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import Sandbox, check, finish, clients_dir

sb = Sandbox("proxy-switch")
turns = [{"tool": "Bash", "input": {"command": "echo phase-one-output", "description": "echo"}},
         {"text": "Phase one done."},
         {"tool": "Bash", "input": {"command": "echo phase-two-output", "description": "echo"}},
         {"text": "Phase two done."},
         {"text": "Phase three done."}]
sb.serve(turns)
up_port = sb.port
err = open(os.path.join(sb.root, "proxy.err"), "w")


def start_proxy():
    px = subprocess.Popen([sb.cmv, "proxy", "--listen", "127.0.0.1:0",
                           "--upstream", f"anthropic=http://127.0.0.1:{up_port}",
                           "--upstream", f"openai=http://127.0.0.1:{up_port}/v1"],
                          stdout=subprocess.PIPE, stderr=err, text=True, cwd=sb.store,
                          env=sb.env(OPENAI_API_KEY="sk-openai-env-key", ANTHROPIC_API_KEY="sk-ant-env-key"))
    sb.port = int(re.search(r":(\d+)$", px.stdout.readline().strip()).group(1))
    return px


px = start_proxy()
r = sb.claude("-p", "Run the first echo.", "--model", "claude-sonnet-4-5", "--output-format", "json",
              "--allowedTools", "Bash", timeout=240)
out = json.loads(r.stdout) if r.returncode == 0 else {}
session = out.get("session_id", "")
check(out.get("result") == "Phase one done.", f"Claude Code's first phase on Claude ({out.get('result')!r})")
sw = sb.run_cmv("switch", session, "--model", "gpt-5", check_rc=False)
check(sw.returncode == 0, f"cmv switch {session} --model gpt-5 while the proxy runs")
r = sb.claude("--resume", session, "-p", "Run the second echo.", "--model", "claude-sonnet-4-5", "--output-format",
              "json", "--allowedTools", "Bash", timeout=240)
out = json.loads(r.stdout) if r.returncode == 0 else {}
check(out.get("result") == "Phase two done.", f"Claude Code keeps working on gpt-5 ({out.get('result')!r})")
resp = [q for q in sb.requests("/v1/responses") if isinstance(q["body"], dict) and q["body"].get("tools")]
check(len(resp) >= 2, f"the switched session's requests went to the Responses API ({len(resp)})")
check(all(q["key"] == "sk-openai-env-key" for q in resp), "the OpenAI upstream got OPENAI_API_KEY, not Claude Code's key")
outputs = [i for q in resp for i in q["body"].get("input") or [] if i.get("type") == "function_call_output"]
check(any("phase-two-output" in json.dumps(i.get("output")) and i.get("call_id") == "call_scripted_2" for i in outputs),
      "the OpenAI upstream's tool call was run by Claude Code, its result sent back as a function_call_output")
check(any("phase-one-output" in json.dumps(i.get("output")) for i in outputs),
      "the first phase's Claude tool result crossed too")
sw = sb.run_cmv("switch", session, "--model", "claude-sonnet-4-5", check_rc=False)
check(sw.returncode == 0, "switched back to claude-sonnet-4-5")
r = sb.claude("--resume", session, "-p", "Wrap up.", "--model", "claude-sonnet-4-5", "--output-format", "json",
              "--allowedTools", "Bash", timeout=240)
out = json.loads(r.stdout) if r.returncode == 0 else {}
check(out.get("result") == "Phase three done.", f"back on Claude ({out.get('result')!r})")
last = [q for q in sb.requests("/v1/messages") if isinstance(q["body"], dict) and q["body"].get("tools")][-1]
sent = json.dumps(last["body"]["messages"])
check("phase-one-output" in sent and "phase-two-output" in sent and "call_scripted_2" in sent,
      "the last Messages request holds both phases, the OpenAI call paired with its result")
lg = sb.run_cmv("log", session)
check(all(x in lg.stdout for x in ["Phase one done.", "phase-two-output", "Phase two done.", "Phase three done."]),
      "cmv log holds every message of every phase")

# Codex, switched to Claude
sb.stop()
sb.serve([{"text": "Codex says hi."}, {"tool": "exec_command", "input": {"cmd": "echo codex-on-claude"}},
          {"text": "Codex done on Claude."}])
px.terminate()
px.wait()
up_port = sb.port
px = start_proxy()
with open(os.path.join(sb.codex_home, "config.toml"), "w") as f:
    f.write(f'model = "gpt-5"\nopenai_base_url = "http://127.0.0.1:{sb.port}/v1"\n')
r = sb.codex("exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "Say hi.")
check(r.returncode == 0 and "Codex says hi." in r.stdout, "Codex's first turn on gpt-5")
reqs = [q for q in sb.requests("/v1/responses") if isinstance(q["body"], dict) and q["body"].get("tools")]
conv = reqs[0]["body"].get("prompt_cache_key", "") if reqs else ""
sw = sb.run_cmv("switch", conv, "--model", "claude-sonnet-4-5", check_rc=False)
check(sw.returncode == 0, f"cmv switch {conv} --model claude-sonnet-4-5")
r = sb.codex("exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "resume", conv,
             "Echo something.")
check(r.returncode == 0 and "Codex done on Claude." in r.stdout, f"Codex keeps working on Claude ({r.stdout[-300:]!r})")
msgs = [q for q in sb.requests("/v1/messages") if isinstance(q["body"], dict) and q["body"].get("tools")]
check(len(msgs) >= 2 and all(q["key"] == "sk-ant-env-key" for q in msgs),
      "Codex's switched requests went to Anthropic with ANTHROPIC_API_KEY")
check(any("codex-on-claude" in json.dumps(q["body"]["messages"]) for q in msgs),
      "Claude's tool call was run by Codex, its output sent back as a tool_result")
# Codex's developer items (its instructions): in the input on gpt-5, system prompts on Claude
devs = [p["text"] for i in (reqs[0]["body"].get("input") or [] if reqs else []) if i.get("role") == "developer"
        for p in i.get("content") or [] if p.get("text")]
check(devs and "instructions" not in reqs[0]["body"], f"Codex's instructions went to gpt-5 as developer items ({len(devs)} texts)")
for q in msgs:
    system = "\n".join(b.get("text", "") for b in q["body"].get("system") or [])
    text = json.dumps(q["body"]["messages"])
    check(all(d in system and json.dumps(d)[1:200] not in text for d in devs),
          f"request {q['n']} to Claude has Codex's developer items as system prompts, not messages")
lg = sb.run_cmv("log", conv)
check("Codex says hi." in lg.stdout and "Codex done on Claude." in lg.stdout, "cmv log holds Codex's both phases")
# the official SDKs streaming through switched sessions, each phase's answer assembled by the SDK's stream helpers
sb.stop()
sb.serve([{"text": "Claude first."}, {"tool": "lookup", "input": {"q": "x"}},
          {"text": "Chat first."}, {"tool": "lookup", "input": {"q": "y"}},
          {"text": "Responses first."}, {"tool": "lookup", "input": {"q": "z"}}])
px.terminate()
px.wait()
up_port = sb.port
px = start_proxy()
mods = os.path.join(os.path.dirname(clients_dir()), "node_modules")
sdk = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_switch_sdk.mjs")
for phase, session, model, path in [("a1", None, None, "/v1/messages"), ("a2", "sdk-switch-a", "gpt-4o", "/v1/chat/completions"),
                                    ("c1", None, None, "/v1/chat/completions"), ("c2", "sdk-switch-chat", "claude-sonnet-4-5", "/v1/messages"),
                                    ("r1", None, None, "/v1/responses"), ("r2", "sdk-switch-resp", "claude-sonnet-4-5", "/v1/messages")]:
    if session:
        sw = sb.run_cmv("switch", session, "--model", model, check_rc=False)
        check(sw.returncode == 0, f"cmv switch {session} --model {model} ({sw.stderr.strip()[:200]})")
    before = len(sb.requests())
    node = subprocess.run(["node", sdk, mods, f"http://127.0.0.1:{sb.port}", phase], capture_output=True, text=True, timeout=120)
    print(node.stdout, node.stderr[-2000:])
    ups = [q["path"].split("?")[0] for q in sb.requests()[before:]]
    check(node.returncode == 0 and ups == [path], f"SDK phase {phase}: the SDK's stream helpers accept it, upstream {ups}")
px.terminate()
px.wait()
err.close()
print(open(os.path.join(sb.root, "proxy.err")).read()[-2500:])
sb.close()
finish("clients_proxy_switch")
