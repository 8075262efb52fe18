#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Continuing a session in the other agent, with the real clients (clients tier; docs/formats.md,
"Continuing in the other agent").

1. A Claude Code session (a prompt, a Bash call, its result, a reply) carried into Codex with
   `cmv branch --codex` and resumed with `codex exec resume ID`: the server receives the carried
   prompt, the call (as Codex's exec_command) and its output in Responses items, and a tool call
   scripted after the resume runs (its file appears) and is recorded in the rollout.
2. Both sides grow (Claude Code resumes its own session, Codex has its new turn); `cmv sync`
   carries each side's new turns into the other, once: a second sync carries nothing, and the
   next request of each client holds each marker exactly once.
3. A Codex rollout carried into Claude Code with `cmv branch --claude`, resumed with
   `claude --resume ID -p`: the Anthropic request holds the call (as Bash) and its result, and a
   scripted Bash call after the resume runs and is recorded.
4. A conversation an agent host wrote through the library (cmv JSONL with the host's own tool)
   carried into both agents: resumed by each, the host's tool crosses as text.
5. --cwd: a session recorded in another folder lands in the given one, its paths remapped.
Usage: carry_test.py CMV"""
import glob, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import (Sandbox, anthropic_messages_text, anthropic_problems, check, client, finish,
                       responses_input_text)

client("claude")
client("codex")
sb = Sandbox("carry")
with open(os.path.join(sb.work, "a.txt"), "w") as f:
    f.write("alpha-contents\n")


def claude_run(*args):
    return sb.claude(*args, "--output-format", "json", "--allowedTools", "Bash")


def codex_run(*args):
    return sb.codex("exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", *args)


def cc_file(sid):
    hits = glob.glob(os.path.join(sb.claude_dir, "projects", "*", sid + ".jsonl"))
    return hits[0] if hits else None


def codex_file(sid):
    hits = glob.glob(os.path.join(sb.codex_home, "sessions", "*", "*", "*", f"rollout-*-{sid}.jsonl"))
    return hits[0] if hits else None


def records(path):
    return [json.loads(l) for l in open(path) if l.strip()]


def last_body(prefix):
    reqs = sb.main_requests(prefix)
    return reqs[-1]["body"] if reqs else {}


def cmv_json(*args):
    r = sb.run_cmv(*args, "--json", cwd=sb.work)
    check(r.returncode == 0, f"cmv {' '.join(args)}" + ("" if r.returncode == 0 else f": {r.stderr.strip()}"))
    return json.loads(r.stdout) if r.returncode == 0 else {}


# ---- 1. Claude Code into Codex ------------------------------------------------------------------
sb.serve([{"text": "Let me look.", "tool": "Bash", "input": {"command": "cat a.txt", "description": "show it"}},
          {"text": "The file says alpha-contents."}])
r = claude_run("-p", "what is in a.txt? (marker-cc-1)")
check(r.returncode == 0, "claude ran the first session")
cc_sid = json.loads(r.stdout)["session_id"] if r.returncode == 0 else ""
cc_path = cc_file(cc_sid)
imp = cmv_json("import", cc_path)
cc_branch = imp[0]["branch"] if imp else ""
br = cmv_json("branch", "to-codex", "--from", cc_branch, "--codex")
cx_sid = br.get("codex_session", "")
carried = br.get("carried", {})
check(carried.get("source_agent") == "claude-code" and carried.get("mapped_calls") == 1,
      f"the Bash call crossed as Codex's shell ({carried.get('mapped_calls')} mapped)")
cx_path = codex_file(cx_sid)
check(cx_path is not None, f"the rollout of {cx_sid} is where Codex looks")
check(all("cmv_carried" in x for x in records(cx_path) if x.get("type") == "response_item"),
      "every carried rollout item names where it came from")

sb.serve([{"text": "Writing it.", "tool": "exec_command", "input": {"cmd": "echo from-codex > b.txt"}},
          {"text": "Wrote b.txt."}])
r = codex_run("resume", cx_sid, "now write b.txt (marker-cx-1)")
check(r.returncode == 0, f"codex exec resume {cx_sid} ran")
body = last_body("/v1/responses")
items = body.get("input", [])
text = responses_input_text(items)
check("marker-cc-1" in text, "Codex's request holds the carried prompt")
calls = [i for i in items if i.get("type") == "function_call" and "cat a.txt" in i.get("arguments", "")]
outs = [i for i in items if i.get("type") == "function_call_output" and "alpha-contents" in str(i.get("output"))]
check(len(calls) == 1 and len(outs) == 1 and calls[0]["name"] == "exec_command" and outs[0]["call_id"] == calls[0]["call_id"],
      "Codex's request holds the carried call as exec_command and its output, paired")
check(os.path.exists(os.path.join(sb.work, "b.txt")), "the tool call scripted after the resume ran in Codex")
check(any(x.get("type") == "response_item" and x["payload"].get("type") == "function_call_output"
          and "from-codex" not in json.dumps(x) and x["payload"].get("call_id") != calls[0]["call_id"]
          for x in records(cx_path)) if calls else False, "Codex recorded its new call's output in the rollout")

# ---- 2. both grow; sync both ways, once -------------------------------------------------------------
sb.serve([{"text": "Counting.", "tool": "Bash", "input": {"command": "wc -c a.txt"}}, {"text": "Counted."}])
r = claude_run("--resume", cc_sid, "-p", "how long is a.txt? (marker-cc-2)")
check(r.returncode == 0, "Claude Code resumed its own session (it grew)")
s1 = cmv_json("sync")
fw, bk = (s1[0]["forward"], s1[0]["back"]) if s1 else ({}, {})
check(fw.get("messages", 0) > 0 and bk.get("messages", 0) > 0,
      f"cmv sync carried both ways ({fw.get('messages')} into Codex, {bk.get('messages')} into Claude Code)")
s2 = cmv_json("sync")
check(s2 and s2[0]["forward"].get("messages") == 0 and s2[0]["back"].get("messages") == 0,
      "a second cmv sync carries nothing")

sb.serve([{"text": "Both sides agree."}])
r = claude_run("--resume", cc_sid, "-p", "what did Codex do? (marker-cc-3)")
check(r.returncode == 0, "Claude Code resumed after the sync")
msgs = last_body("/v1/messages").get("messages", [])
t = anthropic_messages_text(msgs)
check(t.count("marker-cx-1") == 1 and t.count("marker-cc-1") == 1 and t.count("marker-cc-2") == 1,
      f"Claude Code's request holds Codex's turn once and its own once "
      f"({t.count('marker-cx-1')}, {t.count('marker-cc-1')}, {t.count('marker-cc-2')})")
check("echo from-codex > b.txt" in t, "Codex's call crossed into Claude Code as Bash")
problems = anthropic_problems([m for m in msgs if m.get("role") != "system"])
check(not problems, f"Claude Code's request after the sync is valid ({'; '.join(problems[:3]) or 'no problem'})")

s3 = cmv_json("sync")
sb.serve([{"text": "Caught up."}])
r = codex_run("resume", cx_sid, "and now? (marker-cx-2)")
check(r.returncode == 0, "Codex resumed after the syncs")
text = responses_input_text(last_body("/v1/responses").get("input", []))
check(text.count("marker-cc-2") == 1 and text.count("marker-cc-3") == 1 and text.count("marker-cx-1") == 1,
      f"Codex's request holds Claude Code's new turns once and its own once "
      f"({text.count('marker-cc-2')}, {text.count('marker-cc-3')}, {text.count('marker-cx-1')})")
check(s3 and s3[0]["forward"].get("messages", 0) > 0 and s3[0]["back"].get("messages") == 0,
      "the third sync carried only Claude Code's new turn")

# ---- 3. Codex into Claude Code -------------------------------------------------------------------
sb.serve([{"text": "Reading.", "tool": "exec_command", "input": {"cmd": "cat a.txt"}}, {"text": "It holds alpha."}])
r = codex_run("what does a.txt hold? (marker-cx-10)")
check(r.returncode == 0, "codex ran a session of its own")
rollouts = sorted(glob.glob(os.path.join(sb.codex_home, "sessions", "*", "*", "*", "rollout-*.jsonl")), key=os.path.getmtime)
imp = cmv_json("import", rollouts[-1])
cx_branch = imp[0]["branch"] if imp else ""
br = cmv_json("branch", "to-claude", "--from", cx_branch, "--claude")
sid2 = br.get("claude_session", "")
check(br.get("carried", {}).get("source_agent") == "codex", "the rollout was carried into Claude Code")
sb.serve([{"text": "Appending.", "tool": "Bash", "input": {"command": "echo from-claude > c.txt"}}, {"text": "Appended."}])
r = claude_run("--resume", sid2, "-p", "write c.txt (marker-cc-10)")
check(r.returncode == 0 and json.loads(r.stdout).get("session_id") == sid2, f"claude --resume {sid2} ran")
msgs = last_body("/v1/messages").get("messages", []) if r.returncode == 0 else []
t = anthropic_messages_text(msgs)
uses = [b for m in msgs if isinstance(m.get("content"), list) for b in m["content"]
        if b.get("type") == "tool_use" and b.get("input", {}).get("command") == "cat a.txt"]
check("marker-cx-10" in t and len(uses) == 1 and uses[0]["name"] == "Bash" and "alpha-contents" in t,
      "Claude Code's request holds the carried call as Bash and its result")
problems = anthropic_problems([m for m in msgs if m.get("role") != "system"])
check(not problems, f"the carried session's request is valid ({'; '.join(problems[:3]) or 'no problem'})")
check(os.path.exists(os.path.join(sb.work, "c.txt")), "the Bash call scripted after the resume ran in Claude Code")
recs = records(cc_file(sid2)) if cc_file(sid2) else []
check(any(isinstance(x.get("message", {}).get("content"), list) and any(
    b.get("type") == "tool_result" for b in x["message"]["content"]) and "cmvCarried" not in x for x in recs),
    "Claude Code recorded its new call's result in the carried session")

# ---- 4. a session an agent host wrote through the library ------------------------------------------
host = os.path.join(sb.root, "host.jsonl")
with open(host, "w") as f:
    for m in [{"role": "user", "content": "Find the order status (marker-host-1)."},
              {"role": "assistant", "content": [{"type": "text", "text": "Looking it up."},
                                                {"type": "tool_use", "id": "h1", "name": "lookup_order", "input": {"order": 42}}]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "h1", "content": "order 42: shipped"}]},
              {"role": "assistant", "content": "Order 42 has shipped."}]:
        f.write(json.dumps(m) + "\n")
cmv_json("import", host, "--branch", "host")
for agent, flag in (("claude", "--claude"), ("codex", "--codex")):
    br = cmv_json("branch", f"host-{agent}", "--from", "host", flag)
    c = br.get("carried", {})
    check(c.get("source_agent") == "cmv" and c.get("stubbed_calls") == 1,
          f"the host's branch carried into {agent}, its own tool as text")
    sid = br.get(f"{agent}_session", "")
    sb.serve([{"text": f"Continuing the host's work in {agent}."}])
    if agent == "claude":
        r = claude_run("--resume", sid, "-p", "what was the status? (marker-host-2)")
        t = anthropic_messages_text(last_body("/v1/messages").get("messages", []))
    else:
        r = codex_run("resume", sid, "what was the status? (marker-host-2)")
        t = responses_input_text(last_body("/v1/responses").get("input", []))
    check(r.returncode == 0 and "marker-host-1" in t and "order 42: shipped" in t and "lookup_order" in t,
          f"{agent} resumed the host's session with its tool call and result")

# ---- 5. --cwd remaps the recorded folder ---------------------------------------------------------
other = os.path.join(sb.root, "elsewhere")
os.makedirs(other)
br = cmv_json("branch", "moved", "--from", cc_branch, "--codex", "--cwd", other)
c = br.get("carried", {})
check(br.get("cwd") == other and c.get("remapped_paths", 0) > 0 and c.get("cwd_from") == sb.work,
      f"--cwd put the rollout in {other} and remapped {c.get('remapped_paths')} mentions of {sb.work}")
p = codex_file(br.get("codex_session", "x"))
check(p is not None and sb.work not in open(p).read(), "the remapped rollout no longer names the recorded folder")

sb.close()
finish("carry_test")
