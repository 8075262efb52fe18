#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cmv proxy against the scripted loopback model server (docs/proxy.md), tier quick.

A long Anthropic session with large tool outputs through a small budget: every upstream
request within the budget (counted again by `cmv tokens` on the body as sent), valid
(`cmv export --check`-style: roles alternate, every tool_use answered), its prefix stable
between turns except where a batch was cut, cache reads reported by the upstream; the
history resent costs nothing; tool definitions paged; the model's recall answered by the
proxy (the client sees one message); a repeated call counted as a fault; the key passed
through and never stored; Chat Completions and Responses, streamed and not; Codex's tool search
carried upstream in place across turns and paging; a side
request passed through; bad requests answered, never fatal."""
import atexit
import glob, json, os, re, shutil, socket, sqlite3, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sse import events  # noqa: E402
from proxy_run import check, failures, launch_proxy, launch_upstream, listening_port  # noqa: E402

CMV = os.path.abspath(sys.argv[1])
KEY = "sk-test-proxy-0123456789abcdef"


root = tempfile.mkdtemp(prefix="cmv-proxy-")
store = os.path.join(root, "store")
os.makedirs(store)
env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CMV_"))}
env["CMV_DIR"] = os.path.join(store, ".cmv")
subprocess.run([CMV, "init", store], check=True, capture_output=True, env=env)

BIG = "\n".join(f"line {i}: " + "lorem ipsum dolor sit amet " * 6 for i in range(400))  # ~70 KB
turns = []
for k in range(8):
    turns.append({"tool": "Bash", "input": {"command": f"cat big{k}.txt"}})
turns.append({"recall": True})
turns.append({"text": "I read it again."})
turns.append({"tool": "Bash", "input": {"command": "cat big0.txt"}})  # the same call: a fault
turns.append({"text": "All done."})
turns.append({"text": "Still done."})
turns.append({"recall": True})  # a non-streamed request whose model recalls: one body, usage of both rounds
turns.append({"text": "Recalled, done."})
script = os.path.join(root, "script.json")
# check_schemas: the upstream refuses an array schema without items, as OpenAI does (a stub must not make one)
json.dump({"turns": turns, "done": "Done.", "check_schemas": True}, open(script, "w"))
log = os.path.join(root, "log")
up, up_port = launch_upstream(script, log)
BUDGET = 12000
errlog = open(os.path.join(root, "proxy.err"), "w")
px = launch_proxy(CMV, ["--upstream", f"anthropic=http://127.0.0.1:{up_port}", "--upstream",
                        f"openai=http://127.0.0.1:{up_port}/v1", "--budget", str(BUDGET)],
                  stderr=errlog, cwd=store, env=env)


DONE = False


def _cleanup():
    # whatever ends the test: no server outlives it (an orphan holding ctest's pipe hangs the run),
    # and a proxy that died says why (a sanitizer's report goes to its stderr)
    died = px.poll() is not None and not DONE
    for p in (px, up):
        if p.poll() is None:
            p.kill()
    if not errlog.closed:
        errlog.flush()
    if died:
        print("the proxy died (exit %s); its stderr ends:" % px.returncode, file=sys.stderr)
        print("".join(open(errlog.name).readlines()[-60:]), file=sys.stderr)


atexit.register(_cleanup)
port = listening_port(px)
BASE = f"http://127.0.0.1:{port}"


def post(path, body, headers=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    h = {"content-type": "application/json", "x-api-key": KEY, "anthropic-version": "2023-06-01"}
    h.update(headers or {})
    req = urllib.request.Request(BASE + path, data=data, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def upstream(path=None):
    out = []
    for f in sorted(glob.glob(os.path.join(log, "*.json"))):
        r = json.load(open(f))
        if r["method"] == "POST" and (path is None or r["path"].startswith(path)):
            out.append(r)
    return out


def message_from_events(evs):
    """The assistant message the client builds from Anthropic events."""
    blocks, stop = {}, None
    for e in evs:
        d = e.get("data", {})
        t = d.get("type")
        if t == "content_block_start":
            blocks[d["index"]] = dict(d["content_block"])
            if blocks[d["index"]].get("type") == "tool_use":
                blocks[d["index"]]["_json"] = ""
        elif t == "content_block_delta":
            b = blocks[d["index"]]
            if d["delta"]["type"] == "text_delta":
                b["text"] = b.get("text", "") + d["delta"]["text"]
            else:
                b["_json"] += d["delta"]["partial_json"]
        elif t == "message_delta":
            stop = d["delta"]["stop_reason"]
    content = []
    for i in sorted(blocks):
        b = blocks[i]
        if "_json" in b:
            b["input"] = json.loads(b.pop("_json") or "{}")
        content.append(b)
    return {"role": "assistant", "content": content}, stop, sorted(blocks)


STUB_TAIL = " [abridged]"
TOOL_WINDOW = 8  # --tool-window for the paging session below (the default, 64, would take 64 turns)
TOOLS = [{"name": "Bash", "description": "Run a shell command.\n" + "Details of the Bash tool. " * 80,
          "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}]
TOOLS += [{"name": f"Tool{i}", "description": f"Tool number {i}.\n" + "A long description. " * 60,
           "input_schema": {"type": "object", "properties": {"x": {"type": "string", "description": "y " * 40}}}}
          for i in range(12)]
SESSION = "0b6d7c2e-1111-4222-8333-944455556666"
meta = {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": SESSION})}
messages = [{"role": "user", "content": "Read the big files one by one."}]
client_stops = []
for turn in range(12):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 2000, "stream": True, "metadata": meta,
            "system": [{"type": "text", "text": "You are a test.", "cache_control": {"type": "ephemeral"}}],
            "tools": TOOLS, "messages": messages}
    # the client marks its last message, as Claude Code does
    sent = json.loads(json.dumps(body))
    last = sent["messages"][-1]
    if isinstance(last["content"], str):
        last["content"] = [{"type": "text", "text": last["content"]}]
    last["content"][-1]["cache_control"] = {"type": "ephemeral"}
    status, text = post("/v1/messages?beta=true", sent)
    if not check(status == 200, f"turn {turn}: 200 ({status} {text[:200]})"):
        break
    evs = events(text)
    kinds = [e.get("event") for e in evs]
    check(kinds.count("message_start") == 1 and kinds[-1] == "message_stop" and kinds.count("message_stop") == 1,
          f"turn {turn}: one message_start, one message_stop at the end")
    msg, stop, idx = message_from_events(evs)
    if any(b.get("text") == "I read it again." for b in msg["content"]):
        # the round after a recall: the client's usage counts both upstream calls (10 output tokens each)
        u = [e["data"].get("usage", {}) for e in evs if e.get("event") == "message_delta"]
        check(u and u[-1].get("output_tokens") == 20 and u[-1].get("input_tokens", 0) > 0,
              f"a streamed recall turn reports the usage of both rounds ({u})")
    check(idx == list(range(len(idx))), f"turn {turn}: block indices 0..n-1 ({idx})")
    check(all(b.get("name") != "cmv_recall" for b in msg["content"]), f"turn {turn}: the client sees no recall call")
    client_stops.append(stop)
    messages.append(msg)
    calls = [b for b in msg["content"] if b.get("type") == "tool_use"]
    if not calls:
        if turn < 11:
            messages.append({"role": "user", "content": "Go on."})
        continue
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": c["id"], "content": BIG + str(turn)}
                                                 for c in calls]})

# not streamed: the model recalls, the proxy goes on; the client gets the last round's body, usage summed
messages.append({"role": "user", "content": "Recall the first file."})
status, text = post("/v1/messages", dict(body, stream=False, messages=messages))
whole = json.loads(text) if status == 200 else {}
check([b.get("text") for b in whole.get("content", [])] == ["Recalled, done."],
      f"a non-streamed recall turn: the client gets the final answer only ({status} {text[:200]})")
usage = whole.get("usage", {})
last_up = [r for r in upstream("/v1/messages") if r["turn"] is not None][-1]
check(usage.get("output_tokens") == 20 and usage.get("input_tokens", 0) > max(1, last_up["bytes"] // 4 - (last_up["cache_read"] or 0)),
      f"a non-streamed recall turn's usage is the sum of both rounds ({usage})")
messages.append({"role": "assistant", "content": whole.get("content", [])})

reqs = upstream("/v1/messages")
main = [r for r in reqs if r["turn"] is not None]
check(len(main) >= 12, f"the upstream saw every turn ({len(main)} main-loop requests)")

# every upstream request within the budget, by a count of the body as sent
over = []
for r in main:
    p = os.path.join(root, f"up{r['n']}.json")
    json.dump(r["body"], open(p, "w"))
    out = subprocess.run([CMV, "tokens", "--model", "claude-sonnet-4-5", "--json", p], capture_output=True, text=True,
                         env=env)
    n = json.loads(out.stdout)["tokens"] if out.returncode == 0 else None
    if n is None or n > BUDGET:
        over.append((r["n"], n, out.stderr[:200]))
check(not over, f"every upstream request counts at most {BUDGET} tokens ({over[:3]})")


def problems(msgs):
    out = []
    for i, m in enumerate(msgs):
        if m["role"] != ("user" if i % 2 == 0 else "assistant"):
            out.append(f"message {i} is {m['role']}")
        if m["role"] == "assistant" and isinstance(m["content"], list):
            ids = [b["id"] for b in m["content"] if b.get("type") == "tool_use"]
            nxt = msgs[i + 1]["content"] if i + 1 < len(msgs) else []
            got = [b.get("tool_use_id") for b in nxt if isinstance(b, dict) and b.get("type") == "tool_result"]
            if ids and sorted(ids) != sorted(got):
                out.append(f"message {i}'s calls unanswered")
    return out


bad = [(r["n"], problems(r["body"]["messages"])) for r in main if problems(r["body"]["messages"])]
check(not bad, f"every upstream request is valid for the Messages API ({bad[:2]})")
stubbed = [r for r in main if "; recall " in json.dumps(r["body"]["messages"])]
check(len(stubbed) >= 3, f"old tool results paged out to stubs ({len(stubbed)} requests with stubs)")


def strip_cc(m):
    return json.loads(re.sub(r',"cache_control":\{"type":"ephemeral"\}', "", json.dumps(m, separators=(",", ":"))))


stable = cuts = 0
for a, b in zip(main, main[1:]):
    ma, mb = [strip_cc(m) for m in a["body"]["messages"]], [strip_cc(m) for m in b["body"]["messages"]]
    if mb[:len(ma)] == ma:
        stable += 1
    else:
        cuts += 1
check(stable >= len(main) // 2 and cuts <= len(main) // 3,
      f"the prefix stays between turns except where a batch was cut ({stable} stable, {cuts} cuts)")
# the upstream's simulated prompt cache (Anthropic's rules): a stable prefix is read back
hits = [r["cache_read"] or 0 for r in main[1:]]
CACHE_READ = sum(hits)
check(sum(1 for h in hits if h > 0) >= len(hits) * 0.7, f"the provider's cache is read on most turns ({hits})")
check(any("cache_control" in json.dumps(r["body"]["messages"][-1]) for r in main),
      "a cache marker on the last message upstream")

# tool definitions: stubs until used; Bash whole once called; the client's set unchanged in count
first, later = main[0]["body"]["tools"], main[-1]["body"]["tools"]
names = [t["name"] for t in first]
check(names[:-1] == [t["name"] for t in TOOLS] and names[-1] == "cmv_recall", "every client tool sent, the recall tool added")
check(all(t["description"].endswith(STUB_TAIL) for t in first[:-1]), "unused tools go as stubs on the first turn")
bash = [t for t in later if t["name"] == "Bash"][0]
check(bash == TOOLS[0], "a tool the model called is sent whole afterwards")
full = len(json.dumps(TOOLS))
sent_tools = len(json.dumps(later[:-1]))
check(sent_tools < full * 0.5, f"tool definitions shrink ({sent_tools} of {full} bytes)")

# recall: the model called it, the proxy answered and went on; the client saw one message
rec = [r for r in main if any(b.get("name") == "cmv_recall" for m in r["body"]["messages"] if m["role"] == "assistant"
                              for b in m["content"] if isinstance(b, dict))]
check(rec, "the proxy's second round carries the recall call and its answer")
check("recall rounds" in open(os.path.join(root, "proxy.err")).read(), "the proxy logs each request")
err = open(os.path.join(root, "proxy.err")).read()
check(re.search(r", [1-9]\d* faults", err) is not None, "faults recorded (recall, and the repeated call)")

# the session's branch: proxy/SESSION_ID (`cmv log SESSION_ID` finds it), every message once
out = subprocess.run([CMV, "log", SESSION, "--json"], capture_output=True, text=True, env=env, cwd=store)
check(out.returncode == 0, f"cmv log {SESSION} shows the session ({out.stderr[:200]})")
lb = subprocess.run([CMV, "list", "--branches"], capture_output=True, text=True, env=env, cwd=store).stdout
check("proxy/" + SESSION in lb, f"the session's branch is proxy/{SESSION} ({lb[:300]})")
n_nodes = len(json.loads(out.stdout)) if out.returncode == 0 and out.stdout.strip().startswith("[") else \
    len([l for l in out.stdout.splitlines() if l.strip()])
check(n_nodes >= len(messages), f"every message on the branch ({n_nodes} nodes, {len(messages)} client messages)")

# resending the same history appends nothing
before = n_nodes
sent["stream"] = False
status, text = post("/v1/messages", dict(sent, messages=messages[:3]))
out = subprocess.run([CMV, "list", "--branches"], capture_output=True, text=True, env=env, cwd=store)
check(status == 200, "a retried (shorter) history is answered")
check(SESSION + ".fork-" in out.stdout, "a history that diverges keeps the old line as a fork")

# the key: passed through, never stored
check(all(r.get("key") == KEY for r in main), "the client's key reached the upstream")
hits = []
for dirpath, _, files in os.walk(store):
    for f in files:
        if KEY.encode() in open(os.path.join(dirpath, f), "rb").read():
            hits.append(f)
check(not hits, f"the key is in no file of the store ({hits})")
check(KEY not in open(os.path.join(root, "proxy.err")).read(), "the key is not in the proxy's log")

# an import of the same session (the hook, `cmv import`) keeps its own branch: the bare id; the proxy's is untouched
cc = os.path.join(root, SESSION + ".jsonl")
with open(cc, "w") as f:
    for rec in ({"type": "user", "uuid": "u-1", "parentUuid": None, "sessionId": SESSION, "cwd": "/tmp",
                 "timestamp": "2026-12-01T00:00:00.000Z", "message": {"role": "user", "content": "hello from the import"}},
                {"type": "assistant", "uuid": "a-1", "parentUuid": "u-1", "sessionId": SESSION, "cwd": "/tmp",
                 "timestamp": "2026-12-01T00:00:01.000Z",
                 "message": {"id": "msg_imp", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                             "content": [{"type": "text", "text": "imported reply"}], "stop_reason": "end_turn",
                             "usage": {"input_tokens": 3, "output_tokens": 2}}}):
        f.write(json.dumps(rec) + "\n")
before = subprocess.run([CMV, "log", "proxy/" + SESSION], capture_output=True, text=True, env=env, cwd=store).stdout
imp = subprocess.run([CMV, "import", cc], capture_output=True, text=True, env=env, cwd=store)
check(imp.returncode == 0, f"the same session imported beside the proxy's ({imp.stderr[:200]})")
lg = subprocess.run([CMV, "log", SESSION], capture_output=True, text=True, env=env, cwd=store).stdout
check("hello from the import" in lg and "Read the big files" not in lg, "cmv log SESSION_ID: the import's branch once there is one")
status, _ = post("/v1/messages", dict(body, stream=False, messages=messages + [{"role": "user", "content": "One more."}]))
after = subprocess.run([CMV, "log", "proxy/" + SESSION], capture_output=True, text=True, env=env, cwd=store).stdout
lg2 = subprocess.run([CMV, "log", SESSION], capture_output=True, text=True, env=env, cwd=store).stdout
check(status == 200 and len(after.splitlines()) > len(before.splitlines()) and "hello from the import" not in after
      and lg2 == lg, "after the import the proxy goes on on its own branch, and leaves the import's alone")

# a side request (no tools, not the session's line) passes through unrecorded
status, text = post("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 5, "metadata": meta,
                                     "messages": [{"role": "user", "content": "quota"}]})
check(status == 200 and json.loads(text)["content"][0]["text"] == "OK.", "a side request is passed through")

# Codex's update_plan (a required array of objects), and one nesting arrays: a stub keeps each array's items
PLAN_PARAMS = {"type": "object", "properties": {
    "explanation": {"type": "string"},
    "plan": {"type": "array", "description": "The list of steps", "items": {
        "type": "object", "properties": {"step": {"type": "string"},
                                         "status": {"type": "string", "description": "One of: pending, in_progress, completed"}},
        "required": ["step", "status"], "additionalProperties": False}}},
    "required": ["plan"], "additionalProperties": False}
PLAN_STUB = {"type": "object", "properties": {"plan": {"type": "array", "items": {
    "type": "object", "properties": {"step": {"type": "string"}, "status": {"type": "string"}},
    "required": ["step", "status"]}}}, "required": ["plan"]}
EDIT_PARAMS = {"type": "object", "properties": {
    "edits": {"type": ["array", "null"], "description": "The edits. " * 20, "items": {
        "type": "object", "properties": {"ranges": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                                         "note": {"type": "string", "description": "Why. " * 20}},
        "required": ["ranges"]}},
    "target": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "array", "items": {"type": "string"}}],
               "description": "Where. " * 20}},
    "required": ["edits", "target"]}
EDIT_STUB = {"type": "object", "properties": {
    "edits": {"type": ["array", "null"], "items": {"type": "object", "properties": {
        "ranges": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}, "required": ["ranges"]}},
    "target": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "array", "items": {"type": "string"}}]}},
    "required": ["edits", "target"]}
PLAN_DESC = "Updates the task plan.\nProvide an optional explanation and a list of plan items, each with a step and status."
EDIT_DESC = "Edits a file. " + "How to edit. " * 30


def array_without_items(schema):
    """Whether a schema has an array without items somewhere (OpenAI and Gemini refuse it)."""
    if isinstance(schema, list):
        return any(array_without_items(v) for v in schema)
    if not isinstance(schema, dict):
        return False
    ty = schema.get("type")
    if (ty == "array" or (isinstance(ty, list) and "array" in ty)) and "items" not in schema:
        return True
    return any(array_without_items(v) for k, v in schema.items() if k in ("items", "anyOf", "oneOf", "allOf", "prefixItems")) \
        or any(array_without_items(v) for k in ("properties", "$defs", "definitions")
               for v in (schema.get(k) or {}).values() if isinstance(schema.get(k), dict))


# Chat Completions, streamed and not
for stream in (True, False):
    body = {"model": "gpt-4o", "stream": stream, "user": "chat-session-1" if stream else "chat-session-2",
            "prompt_cache_key": "chat-" + str(stream),
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look up.",
                                                       "parameters": {"type": "object", "properties": {}}}},
                      {"type": "function", "function": {"name": "edit", "description": EDIT_DESC, "parameters": EDIT_PARAMS}}],
            "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]}
    status, text = post("/v1/chat/completions", body, {"authorization": "Bearer " + KEY})
    ok = status == 200
    if ok and stream:
        evs = events(text)
        ok = evs[-1]["data"] == "[DONE]" and any(e["data"]["choices"] and e["data"]["choices"][0].get("finish_reason")
                                                 for e in evs if isinstance(e.get("data"), dict))
    elif ok:
        ok = json.loads(text)["object"] == "chat.completion"
    check(ok, f"Chat Completions {'streamed' if stream else 'whole'} through the proxy ({status} {text[:200]})")

# Responses (Codex's API), streamed
body = {"model": "gpt-5", "stream": True, "store": False, "prompt_cache_key": "codex-conv-1", "instructions": "be brief",
        "tools": [{"type": "function", "name": "exec_command", "description": "Run.", "parameters": {"type": "object"}},
                  {"type": "function", "name": "update_plan", "description": PLAN_DESC, "strict": False,
                   "parameters": PLAN_PARAMS},
                  {"type": "namespace", "name": "agents", "description": "Sub-agents.", "tools": [
                      {"type": "function", "name": "spawn_agent", "description": "Spawn one. " + "Details. " * 80,
                       "strict": True, "parameters": {"type": "object", "properties": {"task": {"type": "string"}},
                                                      "required": ["task"], "additionalProperties": False}}]}],
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
status, text = post("/v1/responses", body, {"authorization": "Bearer " + KEY})
evs = events(text) if status == 200 else []
check(status == 200 and evs and evs[-1]["data"]["type"] == "response.completed",
      f"Responses streamed through the proxy ({status} {text[:200]})")
ns = [t for t in upstream("/v1/responses")[-1]["body"]["tools"] if t.get("type") == "namespace"]
check(ns and ns[0]["tools"][0] == {"type": "function", "name": "spawn_agent", "description": "Spawn one." + STUB_TAIL,
                                   "strict": False, "parameters": {"type": "object", "properties": {"task": {"type": "string"}},
                                                                   "required": ["task"]}},
      f"a function of a Responses namespace is paged as a stub, not strict ({ns})")
sent_fns = {t["name"]: t for t in upstream("/v1/responses")[-1]["body"]["tools"] if t.get("type") == "function"}
sent_fns.update((t["function"]["name"], t["function"]) for r in upstream("/v1/chat/completions") for t in r["body"]["tools"])
check(sent_fns.get("update_plan", {}).get("parameters") == PLAN_STUB,
      f"the stub of a required array keeps its items, pruned ({sent_fns.get('update_plan')})")
check(sent_fns.get("edit", {}).get("description", "").endswith(STUB_TAIL) and sent_fns["edit"].get("parameters") == EDIT_STUB,
      f"nested arrays, a type array and anyOf keep their items in the stub ({sent_fns.get('edit')})")
stubs = [(d.get("name"), d.get("input_schema", d.get("parameters"))) for r in upstream() if isinstance(r["body"], dict)
         for t in r["body"].get("tools") or [] for d in ([t["function"]] if "function" in t else t.get("tools", [t]))
         if str(d.get("description", "")).endswith(STUB_TAIL)]
bad_stubs = sorted({name for name, sch in stubs if array_without_items(sch)})
check(len(stubs) > 10 and not bad_stubs, f"every stub's arrays have items ({len(stubs)} stubs; bad: {bad_stubs})")
seqs = [e["data"].get("sequence_number") for e in evs]
check(seqs == list(range(len(seqs))), "Responses sequence numbers run 0..n-1")
out = subprocess.run([CMV, "log", "codex-conv-1"], capture_output=True, text=True, env=env, cwd=store)
check(out.returncode == 0 and "hi" in out.stdout, "Codex's prompt_cache_key names its branch")

# bad requests: answered, never fatal
for raw in (b"{", b"[]", b'{"model":"x"}', b'{"model":"claude-sonnet-4-5","messages":7}', b"\xff" * 10):
    status, text = post("/v1/messages", None, raw=raw)
    check(400 <= status < 500, f"a bad request gets a 4xx ({raw[:20]!r}: {status})")
status, _ = post("/v1/messages", None, raw=b'{"model":"claude-sonnet-4-5","messages":[' + b'{"role":"user","content":"a"},' * 10 + b'1]}')
check(400 <= status < 600, "a malformed message is refused")
check(px.poll() is None, "the proxy is still up")

# a client that disconnects mid-request: the proxy goes on serving
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
s.close()
time.sleep(0.2)
status, _ = post("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]})
check(status == 200 and px.poll() is None, "after a client went away mid-request, the next is served")

# a secret in a path or a query never travels on or reaches the log; a target that is not a path is refused
up_before = set(os.listdir(log))
status, _ = post("/t/SECRETPATH/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 5,
                                                "messages": [{"role": "user", "content": "q"}]})
check(status == 404, f"/t/TOKEN on a proxy with no token: 404, not forwarded ({status})")
try:
    urllib.request.urlopen(urllib.request.Request(BASE + "/v1/models?api-key=SECRETQUERY&x=a%26b",
                                                  headers={"x-api-key": KEY}), timeout=30).read()
except urllib.error.HTTPError:
    pass
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET @evil.example/v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
answer = s.recv(200)
s.close()
check(b" 400 " in answer.split(b"\r\n")[0], f"a target that is not a path: 400 ({answer[:40]!r})")
time.sleep(0.3)
errlog.flush()
seen = open(os.path.join(root, "proxy.err")).read()
up_paths = "".join(open(os.path.join(log, f)).read() for f in set(os.listdir(log)) - up_before)
check("SECRETPATH" not in seen and "SECRETPATH" not in up_paths, "a /t/ token is neither logged nor forwarded")
check("SECRETQUERY" not in seen, "a query string is not logged")

# a token set on loopback is checked too, and before the body is read
px2 = launch_proxy(CMV, ["--upstream", f"anthropic=http://127.0.0.1:{up_port}"], stderr=subprocess.DEVNULL,
                   cwd=store, env=dict(env, CMV_PROXY_TOKEN="tok-123"))
try:
    port2 = listening_port(px2)
    s = socket.create_connection(("127.0.0.1", port2))
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 60000000\r\n\r\n")
    s.settimeout(20)
    answer = s.recv(200)
    s.close()
    check(b" 401 " in answer.split(b"\r\n")[0], f"a token on loopback: refused before a 60 MB body is sent ({answer[:40]!r})")
    req = urllib.request.Request(f"http://127.0.0.1:{port2}/v1/messages", data=json.dumps(
        {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}).encode(),
        headers={"content-type": "application/json", "x-api-key": KEY, "X-Cmv-Token": "tok-123"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            st2 = r.status
    except urllib.error.HTTPError as e:
        st2 = e.code
    check(st2 != 401, f"with the token, served ({st2})")
finally:
    px2.kill()

# tool definitions as pages (docs/proxy.md): the stub form, a stub called, a tool used then idle stubbed again
READ = {"name": "Read", "description": "Reads a file. " + "How to read files well. " * 60,
        "input_schema": {"type": "object", "properties": {
            "file_path": {"type": "string", "description": "The path. " * 10},
            "offset": {"type": "integer", "description": "A line. " * 10}}, "required": ["file_path"]}}
PT_TOOLS = [READ] + TOOLS
def tool_turn(base, session, tools, msgs):
    """One turn of a Claude Code-shaped session: the request, then the answer and its tools' results appended."""
    req = urllib.request.Request(base + "/v1/messages", data=json.dumps(
        {"model": "claude-sonnet-4-5", "max_tokens": 500, "tools": tools, "messages": msgs,
         "metadata": {"user_id": json.dumps({"device_id": "d", "session_id": session})}}).encode(),
        headers={"content-type": "application/json", "x-api-key": KEY}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        ans = json.loads(r.read())
    msgs.append({"role": "assistant", "content": ans["content"]})
    calls = [b for b in ans["content"] if b.get("type") == "tool_use"]
    msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": c["id"], "content": "x"}
                                             for c in calls] or "Go on."})
    return ans


def turn_requests(logdir):
    """The scripted upstream's log of the scripted turns it served, in order."""
    reqs = (json.load(open(os.path.join(logdir, f))) for f in os.listdir(logdir) if f.endswith(".json"))
    return [r for r in sorted(reqs, key=lambda r: r["n"]) if r["turn"] is not None]

pt_turns = [{"tool": "Read", "input": {"file_path": "a.txt"}}] + [{"text": f"ok {k}"} for k in range(TOOL_WINDOW + 1)]
pt_turns += [{"tool": "Bash", "input": {"command": "ls"}}, {"text": "listed"}, {"tool": "Read", "input": {"file_path": "b.txt"}}]
pt_turns += [{"text": f"more {k}"} for k in range(TOOL_WINDOW + 1)] + [{"tool": "Tool0", "input": {}}, {"text": "end"}]
json.dump({"turns": pt_turns, "done": "Done."}, open(os.path.join(root, "script3.json"), "w"))
log3 = os.path.join(root, "log3")
up3, up3_port = launch_upstream(os.path.join(root, "script3.json"), log3)
px3 = launch_proxy(CMV, ["--tool-window", str(TOOL_WINDOW), "--upstream", f"anthropic=http://127.0.0.1:{up3_port}"],
                   stderr=subprocess.DEVNULL, cwd=store, env=env)
try:
    base3 = "http://127.0.0.1:%d" % listening_port(px3)
    pt_session = "7c1d2e3f-2222-4333-8444-955566667777"
    pt_msgs = [{"role": "user", "content": "Read a.txt."}]
    answers = []
    for k in range(len(pt_turns)):
        answers.append(tool_turn(base3, pt_session, PT_TOOLS, pt_msgs))
    ups = [r["body"]["tools"] for r in turn_requests(log3)]
    check(len(ups) == len(pt_turns), f"every paging turn reached the upstream ({len(ups)} of {len(pt_turns)})")

    def sent(i, name):
        return [t for t in ups[i] if t["name"] == name][0] if i < len(ups) else {}
    check(sent(0, "Read") == {"name": "Read", "description": "Reads a file." + STUB_TAIL,
                              "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                                               "required": ["file_path"]}},
          f"the stub: the first sentence, the schema cut to its required properties' types ({sent(0, 'Read')})")
    check(sent(0, "Tool0")["input_schema"] == {"type": "object"}, "a schema with nothing required: an object")
    first_call = [b for b in answers[0]["content"] if b.get("type") == "tool_use"]
    check([(c["name"], c["input"]) for c in first_call] == [("Read", {"file_path": "a.txt"})],
          f"a call to a stubbed tool reaches the client as the model made it ({first_call})")
    check(sent(1, "Read") == READ, "the tool called goes whole from the next request on")
    idle = TOOL_WINDOW + 1
    check(all(ups[i] == ups[1] for i in range(1, idle + 2)),
          "idle past its window, it stays whole until the tools change anyway (the cache kept)")
    check(sent(idle + 2, "Bash") == TOOLS[0] and sent(idle + 2, "Read") == sent(0, "Read"),
          "when another tool goes whole, the idle one is stubbed again")
    check(sent(idle + 4, "Read") == READ, "called again as a stub, it is whole again")
    # Tool0 goes whole TOOL_WINDOW + 2 replies after Read's last call: Read's window has doubled, Bash's has not
    check(sent(len(ups) - 1, "Tool0")["input_schema"] == TOOLS[1]["input_schema"] and sent(len(ups) - 1, "Read") == READ
          and sent(len(ups) - 1, "Bash") == sent(0, "Bash"),
          "a tool called again after it was stubbed keeps a doubled window; an idle one is stubbed")
    check([b.get("text") for b in answers[-1]["content"]] == ["end"] and
          all(b.get("name") != "cmv_recall" for a in answers for b in a["content"]),
          "the client's replies carry only the model's own calls and text")
finally:
    px3.kill()
    up3.kill()

# a tool's window (the note's "t LAST NAME WINDOW"): a definition sent whole because its stub is no shorter counts as
# whole (a call to it is no refault); doubling stops at 512 (PROXY_TOOL_WINDOW_MAX), as a note read back is clamped
TINY = {"name": "Tiny", "description": "Tiny.", "input_schema": {"type": "object"}}
wt_turns = [{"tool": "Tiny", "input": {}}, {"text": "a"}, {"text": "b"}, {"text": "c"}, {"tool": "Bash", "input": {"command": "ls"}},
            {"tool": "Tiny", "input": {}}, {"text": "d"}, {"tool": "Read", "input": {"file_path": "c.txt"}}, {"text": "end"}]
json.dump({"turns": wt_turns, "done": "Done."}, open(os.path.join(root, "script4.json"), "w"))
up4, up4_port = launch_upstream(os.path.join(root, "script4.json"), os.path.join(root, "log4"))
px4 = launch_proxy(CMV, ["--tool-window", "2", "--upstream", f"anthropic=http://127.0.0.1:{up4_port}"],
                   stderr=subprocess.DEVNULL, cwd=store, env=env)
try:
    base4 = "http://127.0.0.1:%d" % listening_port(px4)
    wt_session = "5e2d3c4b-3333-4444-8555-a66677778888"
    wt_msgs = [{"role": "user", "content": "Go."}]
    db = sqlite3.connect(os.path.join(store, ".cmv", "store.db"), timeout=30)

    def wt_note():
        row = db.execute("SELECT value FROM branch_state WHERE branch = ? AND key = 'proxy'",
                         ("proxy/" + wt_session,)).fetchone()
        return row[0] if row else ""

    def wt_window(name):
        m = re.search(r"^t \d+ " + name + r" (\d+)$", wt_note(), re.M)
        return int(m.group(1)) if m else None
    for k in range(len(wt_turns)):
        if k == 7:  # Read (never called) last called 1000 replies ago with a window of 400: not recent, stubbed
            note = re.sub(r"^n \d+$", "n 1000", wt_note(), flags=re.M)
            note = "\n".join(l for l in note.split("\n") if l != "w Read") + "t 0 Read 400\n"
            db.execute("UPDATE branch_state SET value = ? WHERE branch = ? AND key = 'proxy'", (note, "proxy/" + wt_session))
            db.commit()
        tool_turn(base4, wt_session, [READ, TOOLS[0], TINY], wt_msgs)
        if k == 5:
            check(wt_window("Tiny") == 2, f"a tool sent whole as no longer than its stub, called again: no refault "
                                          f"(its window stays 2: {wt_window('Tiny')})")
        if k == 7:
            check(wt_window("Read") == 512, f"a window doubles up to 512, not past it (400 doubled: {wt_window('Read')})")
    db.close()
finally:
    px4.kill()
    up4.kill()
bad = subprocess.run([CMV, "proxy", "--listen", "127.0.0.1:0", "--tool-window", "0"], capture_output=True, text=True,
                     cwd=store, env=env, timeout=30)
check(bad.returncode != 0 and "--tool-window 0: expected" in bad.stderr, f"--tool-window 0 is refused ({bad.stderr[:200]})")

# --tool-paging tokens: a called tool whole on the next request only, stubbed again at once, its window never doubled
tk_turns = [{"tool": "Bash", "input": {"command": "ls"}}, {"tool": "Bash", "input": {"command": "pwd"}},
            {"tool": "Read", "input": {"file_path": "a.txt"}}, {"text": "read"}, {"tool": "Bash", "input": {"command": "ls"}},
            {"text": "end"}]
json.dump({"turns": tk_turns, "done": "Done."}, open(os.path.join(root, "script5.json"), "w"))
log5 = os.path.join(root, "log5")
up5, up5_port = launch_upstream(os.path.join(root, "script5.json"), log5)
px5 = launch_proxy(CMV, ["--tool-paging", "tokens", "--upstream", f"anthropic=http://127.0.0.1:{up5_port}"],
                   stderr=subprocess.DEVNULL, cwd=store, env=env)
try:
    base5 = "http://127.0.0.1:%d" % listening_port(px5)
    tk_session = "6f3e4d5c-4444-4555-8666-b77788889999"
    tk_msgs = [{"role": "user", "content": "Go."}]
    for k in range(len(tk_turns)):
        tool_turn(base5, tk_session, PT_TOOLS, tk_msgs)
    tk = [r["body"]["tools"] for r in turn_requests(log5)]
    check(len(tk) == len(tk_turns), f"every tokens-policy turn reached the upstream ({len(tk)} of {len(tk_turns)})")

    def whole5(i):
        return sorted(t["name"] for t in (tk[i] if i < len(tk) else []) if t in PT_TOOLS)
    check([whole5(i) for i in range(len(tk_turns))] == [[], ["Bash"], ["Bash"], ["Read"], [], ["Bash"]],
          f"tokens: whole exactly the tools the last reply called ({[whole5(i) for i in range(len(tk))]})")
    db5 = sqlite3.connect(os.path.join(store, ".cmv", "store.db"), timeout=30)
    row = db5.execute("SELECT value FROM branch_state WHERE branch = ? AND key = 'proxy'",
                      ("proxy/" + tk_session,)).fetchone()
    db5.close()
    bash_w = re.search(r"^t \d+ Bash (\d+)$", row[0] if row else "", re.M)
    check(bash_w and bash_w.group(1) == "1", f"tokens: a tool called again as a stub keeps a window of 1 "
                                              f"({bash_w.group(0) if bash_w else row})")
finally:
    px5.kill()
    up5.kill()
# the earlier session (paged under the default policy: Read's window 512 in its note) carried on under tokens:
# Read, called two replies ago, goes as a stub (the note's window gives way to the policy's)
json.dump({"turns": [{"text": "later"}], "done": "Done."}, open(os.path.join(root, "script6.json"), "w"))
log6 = os.path.join(root, "log6")
up6, up6_port = launch_upstream(os.path.join(root, "script6.json"), log6)
px6 = launch_proxy(CMV, ["--tool-paging", "tokens", "--upstream", f"anthropic=http://127.0.0.1:{up6_port}"],
                   stderr=subprocess.DEVNULL, cwd=store, env=env)
try:
    tool_turn("http://127.0.0.1:%d" % listening_port(px6), wt_session, [READ, TOOLS[0], TINY], wt_msgs)
    r6 = turn_requests(log6)
    read6 = [t for t in r6[0]["body"]["tools"] if t["name"] == "Read"] if r6 else []
    check(read6 and read6[0] != READ and read6[0]["description"].endswith(STUB_TAIL),
          f"tokens on a session paged under cache: a tool idle two replies is a stub whatever its old window ({read6})")
finally:
    px6.kill()
    up6.kill()
bad = subprocess.run([CMV, "proxy", "--listen", "127.0.0.1:0", "--tool-paging", "tokens", "--no-tool-paging"],
                     capture_output=True, text=True, cwd=store, env=env, timeout=30)
check(bad.returncode != 0 and "choose one" in bad.stderr, f"--tool-paging tokens with --no-tool-paging is refused ({bad.stderr[:200]})")
bad = subprocess.run([CMV, "proxy", "--listen", "127.0.0.1:0", "--tool-paging", "some"], capture_output=True, text=True,
                     cwd=store, env=env, timeout=30)
check(bad.returncode != 0 and "--tool-paging some: expected" in bad.stderr, f"--tool-paging some is refused ({bad.stderr[:200]})")

# The kept request grown (the pager's splice, at a step seam inside the agent's long paged turn)
# gives what the whole work gives: the same client requests through a proxy that grows its kept
# window and one with CMV_PAGER_SPLICE=0 (each on a store and a scripted upstream of its own, the
# same script) give the same upstream bodies and the same branch, through a history the client
# edits (a fork) and a restart of the proxy.
def spawn_pair(tag, turns_g, extra_env):
    st = os.path.join(root, "st-" + tag)
    os.makedirs(st)
    e = dict(env, CMV_DIR=os.path.join(st, ".cmv"), **extra_env)
    subprocess.run([CMV, "init", st], check=True, capture_output=True, env=e)
    sc = os.path.join(root, "script-" + tag + ".json")
    json.dump({"turns": turns_g, "done": "Done."}, open(sc, "w"))
    lg = os.path.join(root, "log-" + tag)
    u, u_port = launch_upstream(sc, lg)
    return {"store": st, "env": e, "log": lg, "up": u, "up_port": u_port}


def start_proxy(side):
    p = launch_proxy(CMV, ["--upstream", f"anthropic=http://127.0.0.1:{side['up_port']}", "--budget", "9000"],
                     stderr=open(side["store"] + ".err", "a"), cwd=side["store"], env=side["env"])
    side["px"] = p
    side["base"] = "http://127.0.0.1:%d" % listening_port(p)


def post_to(side, body):
    req = urllib.request.Request(side["base"] + "/v1/messages", data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "x-api-key": KEY})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


G = 16
turns_g = [{"tool": "Bash", "input": {"command": f"cat g{k}"}, "id": f"toolu_g{k:02d}"} for k in range(G)]
sides = {"grow": spawn_pair("grow", turns_g, {}), "whole": spawn_pair("whole", turns_g, {"CMV_PAGER_SPLICE": "0"})}
try:
    for side in sides.values():
        start_proxy(side)
    SID_G = "0b6d7c2e-2222-4222-8333-944455556666"
    meta_g = {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": SID_G})}
    msgs = [{"role": "user", "content": "Read the g files one by one."}]
    for k in range(G):
        if k == 6:
            # a restart: a new process finds what the last one kept in the store
            for side in sides.values():
                side["px"].terminate()
                side["px"].wait(timeout=10)
                start_proxy(side)
        if k == 9:
            # the client edits its history: a result it sent before said otherwise (the branch forks back)
            msgs[-3]["content"][0]["content"] = "edited: " + "the file was replaced. " * 40
        body = {"model": "claude-sonnet-4-5", "max_tokens": 2000, "stream": True, "metadata": meta_g,
                "system": [{"type": "text", "text": "You are a test."}], "tools": TOOLS[:1], "messages": msgs}
        sent = json.loads(json.dumps(body))
        # the client's marker on its last message, moved every turn, as Claude Code does
        last = sent["messages"][-1]
        if isinstance(last["content"], list):
            last["content"][-1]["cache_control"] = {"type": "ephemeral"}
        replies = {name: post_to(side, sent) for name, side in sides.items()}
        asst, _, _ = message_from_events(events(replies["grow"]))
        msgs.append(asst)
        out_k = f"output of g{k}\n" + "\n".join(f"g{k} line {i}: " + "alpha beta gamma delta " * 5 for i in range(20))
        msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_g{k:02d}",
                                                  "content": out_k}]})

    def bodies(side):
        out = []
        for f in sorted(glob.glob(os.path.join(side["log"], "*.json"))):
            r = json.load(open(f))
            if r["method"] == "POST":
                out.append(r["body"])
        return out

    bg, bw = bodies(sides["grow"]), bodies(sides["whole"])
    check(len(bg) == G and len(bw) == G, f"both proxies sent {G} upstream requests ({len(bg)}, {len(bw)})")
    differ = [k for k in range(min(len(bg), len(bw))) if bg[k] != bw[k]]
    check(not differ, f"the grown window is the whole work's, request by request (differ: {differ})")
    stubbed = sum(1 for b in bg for m in b.get("messages", []) for c in (m.get("content") or [])
                  if isinstance(c, dict) and c.get("type") == "tool_result" and "recall" in json.dumps(c.get("content")))
    check(stubbed > 0, f"the session was paged inside its one long turn ({stubbed} stubbed results sent)")

    def branch(side, name):
        r = subprocess.run([CMV, "log", name, "--json"], capture_output=True, text=True, env=side["env"],
                           cwd=side["store"])
        return [(x.get("role"), x.get("id")) for x in json.loads(r.stdout or "[]")] if r.returncode == 0 else None

    grown = [open(s["store"] + ".err").read().count("window grown") for s in sides.values()]
    check(grown[0] >= G // 2 and grown[1] == 0,
          f"the window was grown from the kept one on most requests, and never with CMV_PAGER_SPLICE=0 ({grown})")

    lg_g, lg_w = branch(sides["grow"], "proxy/" + SID_G), branch(sides["whole"], "proxy/" + SID_G)
    check(lg_g is not None and lg_g == lg_w and len(lg_g) >= 2 * G, "the same branch either way")
    forks = [subprocess.run([CMV, "list", "--branches"], capture_output=True, text=True, env=s["env"],
                            cwd=s["store"]).stdout.count(SID_G + ".fork-") for s in sides.values()]
    check(forks == [1, 1], f"the edited history forked the branch once on each ({forks})")
finally:
    for side in sides.values():
        for p in (side.get("px"), side["up"]):
            if p and p.poll() is None:
                p.kill()


# Codex's tool search through the proxy (docs/proxy.md, "A reply's items are the model's"): the
# model's tool_search_call streamed back, sent back by the client with its metadata added and its
# tool_search_output after it, then calls of
# what it found and long outputs through a small budget, over two prompts. Every upstream request
# carries the search as the client sent it, the output right after its call, while tool results
# around it are paged out to stubs; once the first prompt's turn leaves the window (the prompts
# after it), call and output leave together. The session's branch never forks.
SEARCH_CALL = {"type": "tool_search_call", "id": "tsc_0ca0f0", "call_id": "call_search1", "status": "completed",
               "execution": "client", "arguments": {"query": "GitHub list issues", "limit": 8}}
SEARCH_OUTPUT = {"type": "tool_search_output", "call_id": "call_search1", "status": "completed", "execution": "client",
                 "tools": [{"type": "namespace", "name": "mcp__codex_apps__github", "description": "GitHub issues.",
                            "tools": [{"type": "function", "name": "_list_issues", "description": "List the open issues.",
                                       "strict": False, "defer_loading": True,
                                       "parameters": {"type": "object", "properties": {"repo": {"type": "string"}}}}]}]}
PASS = {"internal_chat_message_metadata_passthrough": {"turn_id": "019b2c3d-0001"}}
SEARCH_OUTPUT["internal_chat_message_metadata_passthrough"] = {"turn_id": "019b2c3d-0001", "create_time": 1796554729.2877152}
turns_t = [{"item": SEARCH_CALL}, {"tool": "_list_issues", "namespace": "mcp__codex_apps__github", "input": {"repo": "cmv"}}]
turns_t += [{"tool": "exec_command", "input": {"cmd": f"cat t{k}"}} for k in range(3)] + [{"text": "Listed."}]
for k in range(8):
    turns_t += [{"tool": "exec_command", "input": {"cmd": f"make u{k}"}}, {"text": "Built."}]
side = spawn_pair("tsearch", turns_t, {})
try:
    pxt = launch_proxy(CMV, ["--budget", "3000", "--upstream", f"openai=http://127.0.0.1:{side['up_port']}/v1"],
                       stderr=open(side["store"] + ".err", "a"), cwd=side["store"], env=side["env"])
    side["px"] = pxt
    base_t = "http://127.0.0.1:%d" % listening_port(pxt)
    tools_t = [{"type": "function", "name": "exec_command", "description": "Run a command.",
                "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
               {"type": "tool_search", "execution": "client", "description": "Search the deferred tools."}]

    def user(t):
        return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": t}]}

    items, served = [], 0
    for prompt in ["List the issues, then run the t commands."] + [f"Now build u{k}." for k in range(8)]:
        items.append(user(prompt))
        for _ in range(8):
            body = {"model": "gpt-5", "stream": True, "store": False, "prompt_cache_key": "codex-tsearch",
                    "include": ["reasoning.encrypted_content"], "tools": tools_t, "input": items}
            req = urllib.request.Request(base_t + "/v1/responses", data=json.dumps(body).encode(), method="POST",
                                         headers={"content-type": "application/json", "authorization": "Bearer " + KEY})
            with urllib.request.urlopen(req, timeout=60) as r:
                evs = events(r.read().decode())
            served += 1
            out = [e["data"]["response"]["output"] for e in evs if e["data"].get("type") == "response.completed"]
            out = out[0] if out else []
            # as Codex 0.171.0 sends them back: the model's items as they came, a tool search with metadata added
            items += [dict(o, **PASS) if o["type"] == "tool_search_call" else o for o in out]
            calls = [o for o in out if o["type"] in ("function_call", "tool_search_call")]
            if not calls:
                break
            for c in calls:
                if c["type"] == "tool_search_call":
                    items.append(SEARCH_OUTPUT)
                else:
                    text = f"output of {c['call_id']}\n" + "\n".join(f"row {i}: " + "alpha beta gamma " * 6 for i in range(60))
                    items.append({"type": "function_call_output", "call_id": c["call_id"], "output": text})
    ups = [json.load(open(f))["body"] for f in sorted(glob.glob(os.path.join(side["log"], "*.json")))
           if json.load(open(f))["method"] == "POST"]
    check(served == len(turns_t) and len(ups) == served, f"every request of the session went upstream ({served}, {len(ups)})")
    placed, gone, stubbed_beside, bad = [], [], 0, []
    for n, b in enumerate(ups):
        inp = b.get("input", [])
        kinds = [i.get("type") for i in inp]
        calls = {i.get("call_id") for i in inp if i.get("type") == "function_call"}
        if any(i.get("type") == "function_call_output" and i.get("call_id") not in calls for i in inp):
            bad.append(n)
        if "tool_search_call" not in kinds and "tool_search_output" not in kinds:
            gone.append(n)
            continue
        k = kinds.index("tool_search_call") if "tool_search_call" in kinds else -1
        ok = (kinds.count("tool_search_call") == 1 and kinds.count("tool_search_output") == 1 and k >= 0 and
              inp[k] == dict(SEARCH_CALL, **PASS) and k + 1 < len(inp) and inp[k + 1] == SEARCH_OUTPUT)
        placed.append(n) if ok else bad.append(n)
        stubbed_beside += any(i.get("type") == "function_call_output" and "; recall " in str(i.get("output")) for i in inp)
    check(not bad, f"every upstream request valid, the search as the client sent it, its output right after its call "
                   f"(bad: {bad}; {json.dumps(ups[bad[0]]['input'])[:600] if bad else ''})")
    check(placed and placed[0] == 1 and placed == list(range(1, placed[-1] + 1)),
          f"the search went upstream from the request after it was made, until its turn left ({placed})")
    check(stubbed_beside > 0, f"tool results around the search were paged out while it stayed whole ({stubbed_beside})")
    check(gone and gone[-1] == len(ups) - 1, f"the first prompt's turn left the window at last, the search with it ({gone})")
    forks = subprocess.run([CMV, "list", "--branches"], capture_output=True, text=True, env=side["env"],
                           cwd=side["store"]).stdout
    check("proxy/codex-tsearch" in forks and ".fork-" not in forks, f"one branch for the session, no fork ({forks.strip()})")
finally:
    for p in (side.get("px"), side["up"]):
        if p and p.poll() is None:
            p.kill()


# Anchored on the bill: an upstream that bills more than cmv counts (its tokens 1.3 times the
# scripted ones) makes the proxy page more, so that each request holding the one billed before
# stays within the budget by the billed figure; at 1.0 the same session pages less. The log line
# says which rule each request followed (docs/proxy.md, "Budgets and paging").
A, ABUDGET = 14, 9000


def billed_session(tag, factor, turns=A, lines=30, restart=None):
    st = os.path.join(root, "st-" + tag)
    os.makedirs(st)
    e = dict(env, CMV_DIR=os.path.join(st, ".cmv"))
    subprocess.run([CMV, "init", st], check=True, capture_output=True, env=e)
    sc = os.path.join(root, "script-" + tag + ".json")
    json.dump({"turns": [{"tool": "Bash", "input": {"command": f"cat a{k}"}, "id": f"toolu_a{k:02d}"}
                         for k in range(turns)],
               "done": "Done.", "bill_factor": factor}, open(sc, "w"))
    lg = os.path.join(root, "log-" + tag)
    u, u_port = launch_upstream(sc, lg)
    side = {"store": st, "env": e, "log": lg, "up": u, "up_port": u_port}
    try:
        p = launch_proxy(CMV, ["--upstream", f"anthropic=http://127.0.0.1:{u_port}", "--budget", str(ABUDGET)],
                         stderr=open(st + ".err", "a"), cwd=st, env=e)
        side["px"] = p
        side["base"] = "http://127.0.0.1:%d" % listening_port(p)
        meta = {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": "anchor-" + tag})}
        msgs = [{"role": "user", "content": "Read the a files one by one."}]
        for k in range(turns):
            if k == restart:
                # a restarted proxy: what it sent and was billed is in the branch's note (its log line
                # for the last reply is written once the client has the reply: wait for it first, however
                # loaded the machine; two minutes without it is a hang, or the proxy died)
                for _ in range(2400):
                    if open(st + ".err").read().count("tokens (") >= k or side["px"].poll() is not None:
                        break
                    time.sleep(0.05)
                side["px"].kill()
                side["px"].wait(timeout=10)
                p = launch_proxy(CMV, ["--upstream", f"anthropic=http://127.0.0.1:{u_port}", "--budget", str(ABUDGET)],
                                 stderr=open(st + ".err", "a"), cwd=st, env=e)
                side["px"] = p
                side["base"] = "http://127.0.0.1:%d" % listening_port(p)
            body = {"model": "claude-sonnet-4-5", "max_tokens": 2000, "stream": True, "metadata": meta,
                    "system": [{"type": "text", "text": "You are a test."}], "tools": TOOLS[:1], "messages": msgs}
            asst, _, _ = message_from_events(events(post_to(side, body)))
            msgs.append(asst)
            out_k = f"output of a{k}\n" + "\n".join(f"a{k} line {i}: " + "alpha beta gamma delta " * 5
                                                  for i in range(lines))
            msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_a{k:02d}",
                                                      "content": out_k}]})
        # the log line is written once the client has its reply: wait for the last one (as above)
        for _ in range(2400):
            if open(st + ".err").read().count("tokens (") >= turns or side["px"].poll() is not None:
                break
            time.sleep(0.05)
    finally:
        for q in (side.get("px"), side["up"]):
            if q and q.poll() is None:
                q.kill()
    ups = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(lg, "*.json")))]
    bills = [max(1, int(r["bytes"] // 4 * factor)) for r in ups if r["method"] == "POST"]
    lines = [ln for ln in open(st + ".err").read().splitlines() if "tokens (" in ln]
    return bills, lines, [r["bytes"] for r in ups if r["method"] == "POST"]


bills_hi, lines_hi, bytes_hi = billed_session("bill-high", 1.3)
bills_lo, lines_lo, bytes_lo = billed_session("bill-plain", 1.0)
print("bills at 1.3:", bills_hi, "at 1.0:", bills_lo)


def paged(ln):
    m = re.search(r"(\d+) stubbed, (\d+) evicted", ln)
    return int(m.group(1)) + int(m.group(2)) if m else -1


anch_hi = [ln for ln in lines_hi if "anchored on the last bill (+" in ln]
check(len(lines_hi) == A and len(bills_hi) == A, f"{A} requests, {A} log lines ({len(bills_hi)}, {len(lines_hi)})")
check("counted plainly (no reply billed yet" in lines_hi[0], "the first request is counted plainly: nothing billed yet")
check(len(anch_hi) >= A // 3, f"requests that hold the one billed before are anchored on its bill ({len(anch_hi)} of {A})")
check(all(b <= ABUDGET for b in bills_hi), f"every request billed within the budget by the billed figure ({max(bills_hi)})")
check(max(bills_lo) * 1.3 > ABUDGET,
      f"the windows paged as at 1.0 would have been billed over it at 1.3 ({max(bills_lo) * 1.3:.0f})")
check(paged(lines_hi[-1]) > paged(lines_lo[-1]) >= 0,
      f"billed more than counted, the proxy pages more ({paged(lines_hi[-1])} pages out against {paged(lines_lo[-1])})")
check(any("window grown, anchored" in ln for ln in lines_hi), "an anchored window is still grown from the kept one")

# The rate (docs/tokenizers.md, "Anchored live"): billed 1.5 times, 30 short results, the proxy
# restarted halfway. A request that holds no bill (after a cut as billed, where the whole
# conversation fits as counted and the pages would come back) is counted at the last bill's
# rate: every request within the budget by the billed figure, the first after each cut and
# after the restart too. Without the rate, request 25 came back whole and was billed 10,036.
bills_r, lines_r, _ = billed_session("bill-rate", 1.5, turns=30, lines=6, restart=15)
print("bills at 1.5, 30 short results, restarted at 15:", bills_r)
# the rate is the bill over cmv's count (the scripted upstream bills 1.5 times its own, bytes / 4)
scaled_r = [i for i, ln in enumerate(lines_r) if re.search(r"scaled x1\.[1-9]", ln)]
check(len(bills_r) == 30 and len(lines_r) == 30, f"30 requests, 30 log lines ({len(bills_r)}, {len(lines_r)})")
check(all(b <= ABUDGET for b in bills_r),
      f"every request billed within the budget by the billed figure at 1.5 ({max(bills_r)}; over: "
      f"{[(i, b) for i, b in enumerate(bills_r) if b > ABUDGET]})")
check(len(scaled_r) >= 2 and all("counted plainly" in lines_r[i] for i in scaled_r),
      f"the requests that hold no bill are counted at the rate ({scaled_r})")
check(15 in scaled_r or "anchored on the last bill" in lines_r[15],
      f"the first request after the restart is anchored or counted at the rate ({lines_r[15][-160:]})")
check(sum(1 for ln in lines_r if "anchored on the last bill (+" in ln) >= 15,
      "the anchored path keeps the requests that hold the bill")


DONE = True
px.terminate()
px.wait(timeout=10)
up.kill()
errlog.close()
if failures:
    print(open(os.path.join(root, "proxy.err")).read()[-3000:], file=sys.stderr)
    print(f"kept for inspection: {root}", file=sys.stderr)
    sys.exit(f"proxy_test: {len(failures)} checks failed")
shutil.rmtree(root, ignore_errors=True)
print("proxy_test: passed")
