#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Codex rollouts cmv writes, resumed by the real Codex (clients tier, docs/clients.md).

Each Codex rollout of the curated set is laid out as Codex keeps it (CODEX_HOME/sessions/Y/M/D),
resumed untrimmed (`codex exec --skip-git-repo-check resume ID "..."`), then imported, trimmed
(`cmv trim`), written back by `cmv branch NAME --from SNAPSHOT --codex` and resumed. The input
items the server receives must be valid (every call has its output, every output answers a call,
the new prompt comes last), and the trimmed resume sends fewer o200k tokens than the untrimmed
one. Usage: codex_resume_test.py CMV [TRANSCRIPTS_DIR]"""
import glob, json, os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import Sandbox, check, client, finish, o200k

PROMPT = "Carry on from here."
transcripts = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("CMV_TRANSCRIPTS", "")
rollouts = sorted(glob.glob(os.path.join(transcripts, "codex", "**", "*.jsonl"), recursive=True))
if not rollouts:
    sys.exit(f"codex_resume_test: no Codex rollouts under {transcripts}/codex")
client("codex")

CALLS = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output",
         "local_shell_call": "local_shell_call_output"}


def item_text(it):
    t = it.get("type")
    if t == "message":
        c = it.get("content", "")
        return c if isinstance(c, str) else "\n".join(x.get("text", "") for x in c if isinstance(x, dict))
    if t == "function_call":
        return it.get("name", "") + " " + it.get("arguments", "")
    if t == "custom_tool_call":
        return it.get("name", "") + " " + it.get("input", "")
    if t in ("function_call_output", "custom_tool_call_output"):
        o = it.get("output", "")
        return o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)
    if t == "reasoning":
        return "\n".join(s.get("text", "") for s in it.get("summary", []) or [])
    return ""


def problems(items):
    out = []
    calls = {it.get("call_id"): it["type"] for it in items if it.get("type") in CALLS}
    answered = {}
    for i, it in enumerate(items):
        t = it.get("type")
        if t in CALLS.values():
            cid = it.get("call_id")
            if cid not in calls:
                out.append(f"item {i}: {t} {cid} answers no call")
            elif CALLS[calls[cid]] != t:
                out.append(f"item {i}: {t} answers a {calls[cid]}")
            answered[cid] = True
        elif t == "message" and it.get("role") not in ("user", "assistant", "developer", "system"):
            out.append(f"item {i}: a message from {it.get('role')}")
        elif t is None:
            out.append(f"item {i}: no type")
    out += [f"call {c} has no output" for c in calls if c not in answered]
    return out


def place(sb, src):
    """The rollout where Codex looks for it, its cwd made ours; returns its id."""
    rid = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", os.path.basename(src)).group(0)
    d = os.path.join(sb.codex_home, "sessions", "2026", "06", "18")
    os.makedirs(d, exist_ok=True)
    dst = os.path.join(d, f"rollout-2026-06-18T00-52-03-{rid}.jsonl")
    with open(src) as fi, open(dst, "w") as fo:
        for line in fi:
            rec = json.loads(line)
            p = rec.get("payload")
            if isinstance(p, dict) and "cwd" in p:
                p["cwd"] = sb.work
            fo.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
    return rid, dst


def resume(sb, rid, what):
    sb.serve([{"text": f"Resumed {what}."}])
    r = sb.codex("exec", "--skip-git-repo-check", "resume", rid, PROMPT)
    reqs = sb.main_requests("/v1/responses")
    if not check(r.returncode == 0 and reqs, f"{what}: codex exec resume {rid} ran and sent a request"):
        return None
    items = reqs[-1]["body"].get("input", [])
    p = problems(items)
    check(not p, f"{what}: the {len(items)} input items are valid ({'; '.join(p[:3]) or 'no problem'})")
    check(PROMPT in item_text(items[-1]) if items else False, f"{what}: the new prompt comes last")
    return items


rows = []
for src in rollouts:
    sb = Sandbox("codex-resume")
    name = os.path.basename(src)[:12]
    rid, placed = place(sb, src)
    items = resume(sb, rid, f"{name} untrimmed")
    if items is None:
        sb.close()
        continue
    full = o200k(sb, "\n".join(item_text(i) for i in items))
    imp = sb.run_cmv("import", placed, "--json")
    if not check(imp.returncode == 0, f"{name}: cmv import"):
        sb.close()
        continue
    branch = json.loads(imp.stdout)[0]["branch"]
    tr = sb.run_cmv("trim", branch, "--json", "--name", "t1")
    if check(tr.returncode == 0, f"{name}: cmv trim"):
        br = sb.run_cmv("branch", "c1", "--from", "t1.trim", "--codex", "--json")
        if check(br.returncode == 0, f"{name}: cmv branch --from the trim --codex ({br.stderr.strip()[:200]})"):
            new = json.loads(br.stdout)["codex_session"]
            got = resume(sb, new, f"{name} trimmed")
            if got is not None:
                trimmed = o200k(sb, "\n".join(item_text(i) for i in got))
                check(trimmed < full, f"{name}: the trimmed resume sends fewer tokens ({trimmed} < {full})")
                rows.append((os.path.basename(src), len(items), full, len(got), trimmed))
    sb.close()

print("\nresume with Codex: input items and o200k tokens the server received")
print(f"{'rollout':58} {'items':>6} {'untrimmed':>10} {'items':>6} {'trimmed':>8}")
for n, a, b, c, d in rows:
    print(f"{n:58} {a:6} {b:10} {c:6} {d:8}")
finish("codex_resume_test")
