#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An agent host in Python on cmv (docs/host.md): a complete loop against a model
server, with tools, a switch from an OpenAI model to a Claude model and back, usage
per model, and the model recalling a paged-out result through cmv_recall.
Usage: host.py STORE_DIR BASE_URL   (tests/support/host_server.py serves BASE_URL)"""
import sys, urllib.request
import cmv

store_dir, base = sys.argv[1], sys.argv[2]
TOOLS = [{"name": "shell", "description": "Run a command; its output comes back.",
          "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]
SCRIPT = [("gpt-4o", "hello"), ("gpt-4o", "run: seq 1 1500"), ("gpt-4o", "run: seq 1000 2500"),
          ("claude-sonnet-4-5", "what did it print"), ("claude-sonnet-4-5", "run: seq 1 1200"),
          ("claude-sonnet-4-5", "recall"), ("gpt-4o", "thanks"), ("gpt-4o", "recall")]


def shell(cmd):
    """The host's tool (simulated: seq A B)."""
    a, b = (int(x) for x in cmd.split()[1:3])
    return "\n".join(str(i) for i in range(a, b + 1))


def send(api, body):
    """POST the body (it asks for a stream); the events come back in chunks as the server sends them."""
    path = "/v1/messages" if api == "anthropic" else "/v1/chat/completions"
    req = urllib.request.Request(base + path, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        yield from iter(lambda: r.read(256), b"")


recalled = 0
with cmv.Store(store_dir) as store:
    b = store.branch("agent")
    for model, text in SCRIPT:
        b.switch(model)  # a no-op when the branch already runs on it
        api = store.model(model)["api"]
        b.append({"role": "user", "content": text}, format="anthropic")
        for _ in range(4):  # the model's steps in one turn
            body, report = b.request(model, budget=6000, tools=TOOLS, recall_tool=True, stub_pinned=True, stream=True)
            reply = b.append_response(send(api, body), format=api, model=model)
            if not reply["tool_calls"]:
                break
            results = []
            for call in reply["tool_calls"]:
                if call["name"] == "cmv_recall":
                    out, is_error = b.recall_tool(call["input"])
                    recalled += not is_error
                else:
                    out, is_error = shell(call["input"]["cmd"]), False
                results.append({"type": "tool_result", "tool_use_id": call["id"], "content": out, "is_error": is_error})
            b.append({"role": "user", "content": results}, format="anthropic")
        print("%-18s %-22s -> %s (%d tokens, %d stubbed)" % (model, text, reply["text"], report["tokens"],
                                                             report["stubbed"]))
    usage = b.usage()
    for t in usage["totals"]:
        print("%-28s %d calls, %d in, %d out, $%s" % (t["signature"], t["calls"], t["input_tokens"],
                                                        t["output_tokens"], t["cost_usd"]))
    print("segments %d, recalled %d" % (len(usage["segments"]), recalled))
    assert recalled >= 1 and len(usage["totals"]) == 2 and len(usage["segments"]) >= 3
