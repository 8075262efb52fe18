#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The hooks in a live Claude Code session (clients tier, docs/clients.md).

`cmv hook install` into a temporary CLAUDE_CONFIG_DIR, then a scripted session of four runs of
the real Claude Code (`claude -p`, then `claude --resume ID -p` three times), 19 tool calls in
all, a Bash `seq` whose output (about 28 KB) is sent whole, and one `cat` of 300 KB. The PostToolUse hook must:
fire and trim the live file in place (auto-trim.log says so, the file stays where it is);
leave Claude Code going (every run ends with the script's last reply); make the next request
smaller (a run that resumes after a trim sends fewer tokens than the run before it last sent);
leave the store in a state where `cmv import --latest` and `cmv trim --latest` work without
--force; keep the refs few (later firings add none). Then the session, as Claude Code wrote it,
goes through `cmv trim --latest --claude` and is resumed: a valid request, and a smaller one.
Usage: hook_live_test.py CMV"""
import json, os, sys, uuid
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import (Sandbox, anthropic_messages_text, anthropic_problems, check, client, finish, o200k)

SIZE = 150_000  # the hook's --size: a few calls' outputs, so it fires several times per run
RUNS = [6, 4, 4, 4]  # tool calls per claude run; run 2 also cats a 300 KB file, which Claude Code
# 2.1.328 saves beside the session and sends as a 2 KB <persisted-output> preview
client("claude")
sb = Sandbox("hook-live")
try:
    r = sb.run_cmv("hook", "install", "--size", str(SIZE))
    check(r.returncode == 0, "cmv hook install")
    settings = json.load(open(os.path.join(sb.claude_dir, "settings.json")))
    commands = [h["command"] for ev in settings.get("hooks", {}).values() for m in ev for h in m["hooks"]]
    check(len(commands) == 2 and all(sb.cmv in c for c in commands),
          f"both hooks run the cmv under test by its absolute path ({commands})")
    r = sb.run_cmv("hook", "status")
    check(r.returncode == 0, f"cmv hook status: {r.stdout.strip()[:200]}")

    with open(os.path.join(sb.work, "big.txt"), "w") as f:
        f.write("".join(f"line {i} of a large file\n" for i in range(12_000)))
    sid = str(uuid.uuid4())
    log_path = os.path.join(sb.store, ".cmv", "auto-trim.log")
    transcript = None
    runs = []  # per run: (its requests' message-token counts, the trims logged during it)
    refs_after = []
    call = 0
    for k, n in enumerate(RUNS):
        turns = []
        for _ in range(n):
            turns.append({"tool": "Bash", "input": {"command": f"seq {call * 1_000_000} {call * 1_000_000 + 3500}",
                                                     "description": f"count {call}"}})
            call += 1
        if k == 2:
            turns.append({"tool": "Bash", "input": {"command": "cat big.txt", "description": "show it"}})
            n += 1
        turns.append({"text": f"Run {k} counted."})
        sb.serve(turns)
        logged = open(log_path).read().splitlines() if os.path.exists(log_path) else []
        args = ["--session-id", sid] if k == 0 else ["--resume", sid]
        r = sb.claude(*args, "-p", f"Count, part {k}.", "--output-format", "json", "--allowedTools", "Bash")
        out = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}
        check(out.get("result") == f"Run {k} counted." and out.get("session_id") == sid,
              f"run {k}: Claude Code went through its {n} tool calls to the last reply ({out.get('result')!r})")
        reqs = sb.main_requests("/v1/messages")
        check(len(reqs) == n + 1, f"run {k}: {n + 1} requests reached the server ({len(reqs)})")
        for q in reqs:
            problems = anthropic_problems([m for m in q["body"]["messages"] if m.get("role") != "system"])
            if problems:
                check(False, f"run {k}, request {q['n']}: invalid: {problems[:3]}")
        tokens = [o200k(sb, anthropic_messages_text(q["body"]["messages"])) for q in (reqs[0], reqs[-1])] if reqs else []
        now = open(log_path).read().splitlines() if os.path.exists(log_path) else []
        trims = [json.loads(x) for x in now[len(logged):]]
        trims = [t for t in trims if t.get("session") == sid and t.get("outcome") == "trimmed"]
        runs.append((tokens, trims))
        print(f"run {k}: first request {tokens[0] if tokens else '-'} tokens, last {tokens[-1] if tokens else '-'}, "
              f"{len(trims)} trims", flush=True)
        if transcript is None:
            found = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(sb.claude_dir, "projects"))
                     for f in fs if f == sid + ".jsonl"]
            transcript = found[0] if found else None
        refs_after.append(len(json.loads(sb.run_cmv("list", "--json").stdout or "[]")))

    all_trims = [t for _, ts in runs for t in ts]
    check(len(all_trims) >= 2, f"the PostToolUse hook trimmed the live session ({len(all_trims)} times)")
    check(all(t.get("transcript") == transcript for t in all_trims),
          f"every trim was in place, on Claude Code's own file ({transcript})")
    check(all(t.get("bytes_after", 1 << 60) < t.get("bytes_before", 0) for t in all_trims),
          "every trim made the file smaller")
    for k in range(len(runs) - 1):
        (_, last), trims = runs[k]
        first = runs[k + 1][0][0]
        if trims:
            check(first < last, f"run {k + 1} resumes the trimmed file: its first request is smaller than "
                  f"run {k}'s last ({first} < {last} tokens)")
    check(refs_after[-1] <= refs_after[1], f"later firings add no refs ({refs_after})")
    refs = json.loads(sb.run_cmv("list", "--json").stdout or "[]")
    auto = [x["name"] for x in refs if x["name"].startswith("auto-")]
    check(len(auto) <= 2, f"one rolling backup per session, not a snapshot and branch per firing ({auto})")

    r = sb.run_cmv("import", "--latest")
    check(r.returncode == 0, f"cmv import --latest works after the hook, without --force ({r.stderr.strip()})")
    r = sb.run_cmv("trim", "--latest", "--claude", "--json")
    check(r.returncode == 0, f"cmv trim --latest --claude works after the hook, without --force ({r.stderr.strip()})")
    if r.returncode != 0:
        # Failed above; the session still goes through trim and resume, imported beside the branch.
        sb.run_cmv("import", transcript, "--branch", "live-again")
        r = sb.run_cmv("trim", "live-again", "--claude", "--json")
    if check(r.returncode == 0, "the live session trims with --claude"):
        new = json.loads(r.stdout)["claude_session"]
        sb.serve([{"text": "Resumed the trim."}])
        r = sb.claude("--resume", new, "-p", "Go on.", "--output-format", "json")
        reqs = sb.main_requests("/v1/messages")
        if check(r.returncode == 0 and len(reqs) == 1, "the trimmed live session resumes in Claude Code"):
            msgs = [m for m in reqs[0]["body"]["messages"] if m.get("role") != "system"]
            problems = anthropic_problems(msgs)
            check(not problems, f"its request is valid ({problems[:3]})")
            t = o200k(sb, anthropic_messages_text(reqs[0]["body"]["messages"]))
            check(t < runs[-1][0][-1], f"and smaller than the live session's last request ({t} < {runs[-1][0][-1]} tokens)")
finally:
    sb.close()
finish("hook_live_test")
