#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Failure cases of issue 20 through the real Claude Code (clients tier, docs/clients.md).

- A missing cwd: `cmv branch NAME --from SNAPSHOT --claude --launch` of a session recorded in a
  folder this machine lacks falls back to the current folder, says so, and the client it
  launches (the real claude, on PATH behind a wrapper that adds -p: --launch resumes
  interactively) resumes the session there: a valid request carrying its messages.
- A link outside the projects folder: a session file in Claude Code's projects folder that is a
  symbolic link to a file elsewhere, resumed with the hooks installed and the size low enough to
  trim: Claude Code writes through the link, and the hook must neither rewrite that file nor
  keep a backup of it.
(Divergence after an in-place trim is hook_live_test.py's; a hostile session_id cannot come
from the real client, which sends its own: the hook's own tests send one.) Usage: failures_test.py CMV"""
import glob, json, os, stat, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import (Sandbox, anthropic_messages_text, anthropic_problems, check, client, encode_project, finish)

HERE = os.path.dirname(os.path.abspath(__file__))
CURATED = os.path.join(HERE, "..", "resources", "transcripts", "claude-code", "vsla")
SESSION = os.path.join(CURATED, "f6108699-47cc-4b21-8ca6-3223992990b3.jsonl")
claude = client("claude")


def missing_cwd():
    sb = Sandbox("fail-cwd")
    try:
        recorded = json.loads(open(SESSION).readline()).get("cwd") or ""
        for line in open(SESSION):
            rec = json.loads(line)
            if rec.get("cwd"):
                recorded = rec["cwd"]
                break
        check(recorded and not os.path.exists(recorded), f"the session was recorded in {recorded}, absent here")
        r = sb.run_cmv("import", SESSION, "--branch", "orig")
        check(r.returncode == 0, "cmv import")
        check(sb.run_cmv("snapshot", "s1", "--from", "orig").returncode == 0, "cmv snapshot")
        bindir = os.path.join(sb.root, "bin")
        os.makedirs(bindir)
        wrapper = os.path.join(bindir, "claude")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\nexec "{claude}" "$@" -p "Launched." --output-format json < /dev/null\n')
        os.chmod(wrapper, 0o755)
        sb.serve([{"text": "Resumed after the launch."}])
        r = sb.run_cmv("branch", "b1", "--from", "s1", "--claude", "--launch", cwd=sb.work,
                       PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        check(r.returncode == 0, f"cmv branch --claude --launch ran the client ({r.stderr.strip()[-300:]})")
        check("does not exist here" in r.stderr and sb.work in r.stderr,
              f"it says the recorded folder is missing and the current one is used ({r.stderr.strip()[:300]})")
        out = r.stdout[r.stdout.find("{"):] if "{" in r.stdout else "{}"
        try:
            result = json.loads(out)
        except ValueError:
            result = {}
        check(result.get("result") == "Resumed after the launch.", "the launched Claude Code resumed and answered")
        placed = glob.glob(os.path.join(sb.claude_dir, "projects", encode_project(sb.work), "*.jsonl"))
        check(len(placed) == 1, f"the session was written for the current folder ({placed})")
        reqs = sb.main_requests("/v1/messages")
        if check(len(reqs) == 1, "one request reached the server"):
            msgs = [m for m in reqs[0]["body"]["messages"] if m.get("role") != "system"]
            check(not anthropic_problems(msgs), f"it is valid ({anthropic_problems(msgs)[:3]})")
            check(len(msgs) >= 10 and "Launched." in anthropic_messages_text(msgs[-1:]),
                  f"it carries the session's {len(msgs)} messages and the prompt")
    finally:
        sb.close()


def link_outside():
    sb = Sandbox("fail-link")
    try:
        r = sb.run_cmv("hook", "install", "--size", "20000")
        check(r.returncode == 0, "cmv hook install --size 20000")
        outside = os.path.join(sb.root, "elsewhere")
        os.makedirs(outside)
        sid, placed = sb.place_claude_session(SESSION)
        target = os.path.join(outside, sid + ".jsonl")
        os.replace(placed, target)
        os.chmod(target, 0o644)
        os.symlink(target, placed)
        original = open(target, "rb").read()
        check(len(original) > 20000, f"the session ({len(original)} bytes) is over the hook's --size")
        sb.serve([{"tool": "Bash", "input": {"command": "seq 1 3000", "description": "count"}},
                  {"tool": "Bash", "input": {"command": "seq 1 3000", "description": "count again"}},
                  {"text": "Counted."}])
        r = sb.claude("--resume", sid, "-p", "Count twice.", "--output-format", "json", "--allowedTools", "Bash")
        check(r.returncode == 0 and json.loads(r.stdout or "{}").get("result") == "Counted.",
              "Claude Code resumed the linked session and went on")
        now = open(target, "rb").read()
        check(now.startswith(original) and len(now) > len(original),
              f"the file outside the projects folder was only appended to, by Claude Code, never rewritten "
              f"({len(original)} -> {len(now)} bytes)")
        check(stat.S_IMODE(os.stat(target).st_mode) == 0o644, "its mode is unchanged")
        backups = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(sb.store, ".cmv")) for f in fs
                   if "backup" in d]
        copies = [b for b in backups if open(b, "rb").read(len(original)) == original]
        check(not copies, f"no backup keeps the outside file's bytes ({copies})")
        log = os.path.join(sb.store, ".cmv", "auto-trim.log")
        entries = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
        check(entries and all(e.get("outcome") != "trimmed" and e.get("error") for e in entries),
              f"the hook fired and refused, saying why ({entries[0].get('error', '')[:160] if entries else 'no log'})")
    finally:
        sb.close()


missing_cwd()
link_outside()
finish("failures_test")
