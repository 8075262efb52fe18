#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The budget as billed, through `cmv proxy` (docs/tokenizers.md, "Anchored live").

An agent turn of TURNS tool calls, each result LINES lines, sent through the proxy at
--budget BUDGET to the scripted upstream (tests/support/model_server.py), which bills each
request FACTOR times its own count (bytes / 4) as a provider that counts more than cmv
would. For every FACTOR and LINES: how many requests were billed over the budget, the
largest bill, and the tokens billed in all (what was sent upstream, as billed).

    python3 bench/proxy_billed.py build/cmv [--factors 1.1,1.5,2] [--lines 6,30] [--turns 30]
                                            [--budget 9000] [--json]
"""
import argparse, json, os, subprocess, sys, tempfile, time, urllib.request, shutil
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from sse import events  # noqa: E402
from proxy_run import launch_proxy, launch_upstream, listening_port  # noqa: E402

KEY = "sk-bench-proxy-0123456789abcdef"
TOOLS = [{"name": "Bash", "description": "Run a shell command.\n" + "Details of the Bash tool. " * 80,
          "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}]


def reply(evs):
    """The assistant message the client builds from Anthropic events."""
    blocks = {}
    for e in evs:
        d = e.get("data", {})
        if d.get("type") == "content_block_start":
            blocks[d["index"]] = dict(d["content_block"], _json="")
        elif d.get("type") == "content_block_delta":
            b = blocks[d["index"]]
            if d["delta"]["type"] == "text_delta":
                b["text"] = b.get("text", "") + d["delta"]["text"]
            else:
                b["_json"] += d["delta"]["partial_json"]
    content = []
    for i in sorted(blocks):
        b = blocks[i]
        j = b.pop("_json")
        if b.get("type") == "tool_use":
            b["input"] = json.loads(j or "{}")
        content.append(b)
    return {"role": "assistant", "content": content}


def session(cmv, root, tag, factor, turns, lines, budget):
    st = os.path.join(root, tag)
    os.makedirs(st)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CMV_"))}
    env["CMV_DIR"] = os.path.join(st, ".cmv")
    subprocess.run([cmv, "init", st], check=True, capture_output=True, env=env)
    script = os.path.join(root, tag + ".json")
    json.dump({"turns": [{"tool": "Bash", "input": {"command": f"cat a{k}"}, "id": f"toolu_a{k:02d}"}
                         for k in range(turns)], "done": "Done.", "bill_factor": factor}, open(script, "w"))
    log = os.path.join(root, tag + "-log")
    up, port = launch_upstream(script, log)
    px = None
    try:
        px = launch_proxy(cmv, ["--upstream", f"anthropic=http://127.0.0.1:{port}", "--budget", str(budget)],
                          stderr=subprocess.DEVNULL, cwd=st, env=env)
        base = "http://127.0.0.1:%d/v1/messages" % listening_port(px)
        meta = {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": "bench-" + tag})}
        msgs = [{"role": "user", "content": "Read the a files one by one."}]
        for k in range(turns):
            body = {"model": "claude-sonnet-4-5", "max_tokens": 2000, "stream": True, "metadata": meta,
                    "system": [{"type": "text", "text": "You are a test."}], "tools": TOOLS, "messages": msgs}
            req = urllib.request.Request(base, data=json.dumps(body).encode(), method="POST",
                                         headers={"content-type": "application/json", "x-api-key": KEY})
            with urllib.request.urlopen(req, timeout=60) as r:
                msgs.append(reply(events(r.read().decode())))
            out = f"output of a{k}\n" + "\n".join(f"a{k} line {i}: " + "alpha beta gamma delta " * 5
                                                    for i in range(lines))
            msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_a{k:02d}",
                                                      "content": out}]})
    finally:
        for p in (px, up):
            if p and p.poll() is None:
                p.kill()
    # what the upstream billed each request: as model_server.py bills it
    bills = []
    for f in sorted(os.listdir(log)):
        r = json.load(open(os.path.join(log, f)))
        if r["method"] == "POST":
            bills.append(max(1, int(r["bytes"] // 4 * factor)))
    return bills


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmv")
    ap.add_argument("--factors", default="1.1,1.2,1.5,1.7,2.0,2.5")
    ap.add_argument("--lines", default="6,10,20,30")
    ap.add_argument("--turns", type=int, default=30)
    ap.add_argument("--budget", type=int, default=9000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="cmv-bench-billed-")
    rows = []
    t0 = time.time()
    try:
        for lines in [int(x) for x in a.lines.split(",")]:
            for factor in [float(x) for x in a.factors.split(",")]:
                b = session(os.path.abspath(a.cmv), root, f"f{factor}-l{lines}", factor, a.turns, lines, a.budget)
                rows.append({"lines": lines, "factor": factor, "requests": len(b),
                             "over": sum(x > a.budget for x in b), "max": max(b), "billed": sum(b)})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if a.json:
        print(json.dumps({"budget": a.budget, "turns": a.turns, "rows": rows}))
        return
    print(f"{a.turns} requests a session, --budget {a.budget}, {time.time() - t0:.0f} s")
    print("lines  factor  over  largest bill  billed in all")
    for r in rows:
        print(f"{r['lines']:5d}  {r['factor']:6.2f}  {r['over']:4d}  {r['max']:12d}  {r['billed']:13d}")
    print(f"over the budget: {sum(r['over'] for r in rows)} of {sum(r['requests'] for r in rows)} requests")


if __name__ == "__main__":
    main()
