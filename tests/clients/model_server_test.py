#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The scripted model server itself (tests/support/model_server.py): both event streams carry
what the script says, in the order the SDKs expect; a bad body gets 400, an unknown path 404,
and the server keeps serving; every request is logged. Usage: model_server_test.py"""
import http.client, json, os, shutil, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
server = os.path.join(here, "..", "support", "model_server.py")
tmp = tempfile.mkdtemp(prefix="cmv-ms-")
script = os.path.join(tmp, "script.json")
with open(script, "w") as f:
    json.dump({"turns": [{"text": "Looking.", "tool": "Bash", "input": {"command": "seq 1 3"}},
                         {"tool": "exec_command", "input": {"cmd": "ls"}}, {"text": "Fine."}],
               "done": "Over."}, f)
log = os.path.join(tmp, "log")
proc = subprocess.Popen([sys.executable, server, "--script", script, "--log-dir", log,
                         "--port-file", os.path.join(tmp, "port")], stdout=subprocess.PIPE, text=True)
port = int(proc.stdout.readline())
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def post(path, body, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, body=raw if raw is not None else json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.getheader("Content-Type"), r.read().decode()


def events(text):
    out = []
    for chunk in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
        data = json.loads(lines["data"])
        check(data["type"] == lines["event"], f"event name {lines['event']} carries type {data['type']}")
        out.append(data)
    return out


try:
    tools = [{"name": "Bash"}]
    # Turn 0 through the Anthropic stream: text, then a tool_use, then stop_reason tool_use.
    st, ct, text = post("/v1/messages?beta=true", {"model": "m", "stream": True, "tools": tools, "messages": []})
    check(st == 200 and ct == "text/event-stream", f"messages: {st} {ct}")
    ev = events(text)
    names = [e["type"] for e in ev]
    check(names == ["message_start"] + ["content_block_start", "content_block_delta", "content_block_stop"] * 2
          + ["message_delta", "message_stop"], f"anthropic event order {names}")
    check(ev[2]["delta"]["text"] == "Looking.", "the text block")
    check(ev[4]["content_block"]["name"] == "Bash"
          and json.loads(ev[5]["delta"]["partial_json"]) == {"command": "seq 1 3"}, "the tool_use block")
    check(ev[-2]["delta"]["stop_reason"] == "tool_use" and ev[-2]["usage"]["output_tokens"] > 0, "message_delta")
    # A request without tools (a title, a probe) gets text and leaves the script where it was.
    st, _, text = post("/v1/messages", {"model": "m", "messages": []})
    check(st == 200 and json.loads(text)["content"][0]["text"] == "OK.", f"a request without tools: {text}")
    # Turn 1 through the Responses stream: a function_call item, then response.completed with usage.
    st, ct, text = post("/v1/responses", {"model": "gpt-5", "stream": True, "tools": tools, "input": []})
    ev = events(text)
    names = [e["type"] for e in ev]
    check(names == ["response.created", "response.output_item.added", "response.function_call_arguments.delta",
                    "response.function_call_arguments.done", "response.output_item.done",
                    "response.completed"], f"responses event order {names}")
    item = ev[-2]["item"]
    check(item["type"] == "function_call" and item["name"] == "exec_command"
          and json.loads(item["arguments"]) == {"cmd": "ls"}, f"the function_call item {item}")
    check(ev[-1]["response"]["usage"]["input_tokens"] > 0, "response.completed usage")
    check([e["sequence_number"] for e in ev] == list(range(len(ev))), "sequence numbers")
    # Turn 2: text; then the script is used up and "done" answers.
    st, _, text = post("/v1/responses", {"model": "gpt-5", "stream": True, "tools": tools, "input": []})
    check("output_text.delta" in text and '"Fine."' in text, "turn 2's text")
    st, _, text = post("/v1/messages", {"model": "m", "stream": True, "tools": tools, "messages": []})
    check('"Over."' in text and '"end_turn"' in text, "the done reply once the turns are used up")
    # What a client may get wrong: the server answers and stays up.
    st, _, text = post("/v1/messages", None, raw="{not json")
    check(st == 400 and "not JSON" in text, f"bad JSON: {st} {text}")
    st, _, _ = post("/v1/elsewhere", {"x": 1})
    check(st == 404, f"unknown path: {st}")
    st, _, text = post("/v1/messages/count_tokens", {"model": "m", "messages": []})
    check(st == 200 and json.loads(text)["input_tokens"] > 0, f"count_tokens: {text}")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("HEAD", "/")
    check(c.getresponse().status == 200, "HEAD /")
    # Every request is in the log, in order, with the turn it took.
    recs = [json.load(open(os.path.join(log, f))) for f in sorted(os.listdir(log))]
    check(len(recs) == 9, f"{len(recs)} requests logged, not 9")
    check([r["turn"] for r in recs[:5]] == [0, None, 1, 2, None], f"turns {[r['turn'] for r in recs[:5]]}")
    check(recs[5]["body"] == "{not json" and recs[0]["body"]["model"] == "m", "bodies as received")
finally:
    proc.kill()
    proc.wait()
if failures:
    sys.exit(f"model_server_test: {len(failures)} failed (log: {log})")
shutil.rmtree(tmp)
print("model_server_test: passed")
