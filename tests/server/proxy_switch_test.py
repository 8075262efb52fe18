#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cmv proxy switching a live session to another model and provider, and failing over
(docs/proxy.md, "Switching"), against the scripted loopback model server; tier quick.

An Anthropic client (streamed) switched by `cmv switch` to a Responses model, then a Chat
model, then back: every request after a switch goes to the other API in its shape (tools,
system, tool calls and results paired by id), the client is answered in its own events
only, its key never leaves for the other provider, and the branch holds every message of
every phase; back on Claude, the window holds it all, nothing summarized. A Responses
client (Codex's shape, a custom tool among its tools) switched to Claude; a Chat client,
not streamed, switched to Claude. Failover on a scripted 529, a dropped connection and a
stream cut mid-answer, each recorded as a switch event, and the return. A switch to a
model without tool calling or images is refused, naming what is missing."""
import atexit, glob, json, os, re, shutil, sqlite3, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from sse import events  # noqa: E402
from proxy_run import check, failures, launch_proxy, launch_upstream, listening_port  # noqa: E402

CMV = os.path.abspath(sys.argv[1])
KEY_A = "sk-ant-client-0123456789abcdef"
KEY_O = "sk-openai-client-0123456789abcdef"
ENV_A = "sk-ant-env-fedcba9876543210"
ENV_O = "sk-openai-env-fedcba9876543210"


root = tempfile.mkdtemp(prefix="cmv-proxy-switch-")
store = os.path.join(root, "store")
os.makedirs(store)
env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CMV_", "XDG_"))}
env["CMV_DIR"] = os.path.join(store, ".cmv")
env["HOME"] = root
subprocess.run([CMV, "init", store], check=True, capture_output=True, env=env)


def cmv(*a, ok=True):
    r = subprocess.run([CMV, *a], capture_output=True, text=True, env=env, cwd=store)
    if ok and r.returncode != 0:
        print(f"cmv {' '.join(a)}: {r.returncode}\n{r.stderr}", flush=True)
    return r


THOUGHT = "The user wants a listing first; ls, then read a.txt. THINK-MARK-1."
turns = [
    # A: Anthropic client
    {"tool": "Bash", "input": {"command": "ls"}, "thinking": THOUGHT},  # 0 anthropic, signed thinking
    {"text": "I see two files."},                                 # 1 anthropic
    {"tool": "Bash", "input": {"command": "cat a.txt"}},          # 2 responses (switched to gpt-5)
    {"text": "It says alpha."},                                   # 3 responses
    {"tool": "Bash", "input": {"command": "wc -l a.txt"}},        # 4 chat (switched to gpt-4o)
    {"text": "One line."},                                        # 5 chat
    {"text": "Back on Claude."},                                  # 6 anthropic (switched back)
    # B: Responses client switched to Claude
    {"text": "Hello from gpt-5."},                                # 7 responses
    {"tool": "exec_command", "input": {"cmd": "seq 1 3"}},        # 8 anthropic
    {"tool": "apply_patch", "input": {"input": "*** Begin Patch\n*** End Patch\n"}},  # 9 anthropic
    {"text": "Patched."},                                         # 10 anthropic
    # C: Chat client, not streamed, switched to Claude
    {"text": "Hi there."},                                        # 11 chat
    {"tool": "lookup", "input": {"q": "cmv"}},                    # 12 anthropic
    # D: failover
    {"error": 529},                                               # 12 anthropic: fails
    {"text": "From the fallback."},                               # 13 responses
    {"text": "Returned."},                                        # 14 anthropic (return)
    {"drop": True},                                               # 15 anthropic: dropped
    {"text": "Fallback again."},                                  # 16 responses
    {"drop_mid": True},                                           # 17 responses: cut mid-answer
    {"text": "After the cut."},                                   # 18 anthropic
]
script = os.path.join(root, "script.json")
json.dump({"turns": turns, "done": "Done."}, open(script, "w"))
log = os.path.join(root, "log")
up, up_port = launch_upstream(script, log)
penv = dict(env, ANTHROPIC_API_KEY=ENV_A, OPENAI_API_KEY=ENV_O)
errlog = open(os.path.join(root, "proxy.err"), "w")
# --retry-primary longer than any run: D ages the failover in the proxy's note (failover_time) instead of
# sleeping past a short one, so no check depends on how fast the machine is (with 1 s, a loaded machine's
# retry after the cut came a second late and went to Claude)
RETRY = 3600
px = launch_proxy(CMV, ["--upstream", f"anthropic=http://127.0.0.1:{up_port}", "--upstream",
                        f"openai=http://127.0.0.1:{up_port}/v1", "--fallback", "gpt-5", "--retry-primary", str(RETRY),
                        "--timeout", "20"], stderr=errlog, cwd=store, env=penv)


def _cleanup():
    # whatever ends the test, no server outlives it (an orphan holding ctest's pipe hangs the run),
    # and a proxy that died says why
    died = px.poll() is not None and px.returncode not in (0, -15)
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


def post(path, body, headers=None):
    h = {"content-type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            try:
                return r.status, raw.decode()
            except UnicodeDecodeError:
                check(False, f"the answer is UTF-8 ({raw[:2000]!r})")
                return r.status, raw.decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


seen = set()


def new_upstream():
    """The upstream requests logged since the last call."""
    out = []
    for f in sorted(glob.glob(os.path.join(log, "*.json"))):
        if f in seen:
            continue
        seen.add(f)
        r = json.load(open(f))
        if r["method"] == "POST":
            out.append(r)
    return out


def anthropic_message(evs):
    """The assistant message the client builds from Anthropic events, checking their order."""
    blocks, stop, order_ok, usage = {}, None, True, {}
    names = [e.get("event") for e in evs]
    order_ok = names[:1] == ["message_start"] and names[-2:] == ["message_delta", "message_stop"]
    open_ = set()
    for e in evs:
        d = e.get("data", {})
        t = d.get("type")
        if t == "message_start":
            usage.update(d["message"]["usage"])
        elif t == "content_block_start":
            order_ok &= d["index"] not in blocks
            blocks[d["index"]] = dict(d["content_block"])
            open_.add(d["index"])
            if blocks[d["index"]]["type"] == "tool_use":
                blocks[d["index"]]["_json"] = ""
        elif t == "content_block_delta":
            order_ok &= d["index"] in open_
            b = blocks[d["index"]]
            if d["delta"]["type"] == "text_delta":
                b["text"] = b.get("text", "") + d["delta"]["text"]
            elif d["delta"]["type"] == "thinking_delta":
                b["thinking"] += d["delta"]["thinking"]
            elif d["delta"]["type"] == "signature_delta":
                b["signature"] += d["delta"]["signature"]
            else:
                b["_json"] += d["delta"]["partial_json"]
        elif t == "content_block_stop":
            order_ok &= d["index"] in open_
            open_.discard(d["index"])
        elif t == "message_delta":
            stop = d["delta"]["stop_reason"]
            usage.update({k: v for k, v in d.get("usage", {}).items() if v is not None})
    content = []
    for i in sorted(blocks):
        b = blocks[i]
        if "_json" in b:
            b["input"] = json.loads(b.pop("_json") or "{}")
        content.append(b)
    return {"role": "assistant", "content": content}, stop, order_ok and not open_ and sorted(blocks) == list(
        range(len(blocks))), usage


def foreign(text, api):
    """Another API's shapes in what a client of `api` received."""
    marks = {"anthropic": ["response.", "chat.completion", "function_call", "tool_calls"],
             "responses": ["message_start", "content_block", "chat.completion", "tool_use"],
             "chat": ["message_start", "content_block", "response.", "tool_use"]}[api]
    return [m for m in marks if m in text]


SYSTEM = "You are a careful coding agent. SYSTEM-MARK-7."
TOOLS_A = [{"name": "Bash", "description": "Run a shell command.\nMore detail.", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
META = {"user_id": json.dumps({"session_id": "sess-a"})}
msgs = [{"role": "user", "content": "List the files, then read a.txt."}]


def turn_a(expect_path, result=None):
    st, text = post("/v1/messages?beta=true", {"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": True,
                                               "system": SYSTEM, "tools": TOOLS_A, "metadata": META, "messages": msgs},
                    {"x-api-key": KEY_A, "anthropic-version": "2023-06-01"})
    ups = new_upstream()
    check(st == 200, f"A: the client is answered (status {st})")
    check([u["path"].split("?")[0] for u in ups] == [expect_path],
          f"A: the request went to {expect_path} ({[u['path'] for u in ups]})")
    msg, stop, order_ok, usage = anthropic_message(events(text))
    check(order_ok, "A: the client's events come in the Messages API's order")
    check(not foreign(text, "anthropic"), f"A: no other API's shapes reach the client ({foreign(text, 'anthropic')})")
    msgs.append(msg)
    calls = [b for b in msg["content"] if b["type"] == "tool_use"]
    if calls:
        check(stop == "tool_use", f"A: a tool call ends the turn as tool_use ({stop})")
        msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0]["id"],
                                                   "content": result or "ok"}]})
    return ups[0] if ups else {}, msg, usage


def switch_events(ref):
    out = []
    for n in json.loads(cmv("log", ref, "--json").stdout or "[]"):
        if n.get("kind") == "event" and "model_switch" in n.get("preview", ""):
            shown = cmv("show", n["id"]).stdout
            out += [json.loads(l) for l in shown.splitlines() if l.startswith('{"type":"model_switch"')]
    return out


def switches(ref):
    return [e["reason"] for e in switch_events(ref) if "reason" in e]


# ---- A: Claude, then gpt-5 (Responses), then gpt-4o (Chat), then Claude again ----
u0, m0, _ = turn_a("/v1/messages", "a.txt\nb.txt")
check(u0.get("key") == KEY_A, "A: on its own provider the client's key goes along")
u1, _, _ = turn_a("/v1/messages")
msgs.append({"role": "user", "content": "Now read a.txt."})
r = cmv("switch", "sess-a", "--model", "gpt-5")
check(r.returncode == 0, f"cmv switch sess-a --model gpt-5 while the proxy runs ({r.stderr.strip()})")
u2, m2, usage2 = turn_a("/v1/responses", "alpha")
b2 = u2.get("body", {})
check(b2.get("model") == "gpt-5", f"A: the Responses request names gpt-5 ({b2.get('model')})")
check(u2.get("key") == ENV_O, "A: the OpenAI upstream gets OPENAI_API_KEY, never the client's Anthropic key")
check(KEY_A not in json.dumps(u2), "A: the client's key appears nowhere in the OpenAI request")
check("SYSTEM-MARK-7" in (b2.get("instructions") or ""), "A: the system prompt became the instructions")
tools2 = b2.get("tools") or []
check(any(t.get("type") == "function" and t.get("name") == "Bash" and "parameters" in t for t in tools2)
      and not any("input_schema" in t for t in tools2), "A: tool definitions in the Responses shape")
check(not any(t.get("name") == "web_search" for t in tools2), "A: Anthropic's built-in web search is not sent to OpenAI")
items = b2.get("input") or []
first_call = m0["content"][-1]["id"]
check(any(i.get("type") == "function_call" and i.get("call_id") == first_call for i in items) and
      any(i.get("type") == "function_call_output" and i.get("call_id") == first_call and "a.txt" in str(i.get("output"))
          for i in items), "A: Claude's tool call and its result cross as function_call and function_call_output")
# signed thinking cannot cross: a stub naming its recall id stands in its place, and recall brings it back
thought_stub = re.findall(r"\[thinking signed for another provider, \d+ chars; recall ([0-9a-f]{7,})\]", json.dumps(items))
check(m0["content"][0].get("type") == "thinking" and len(thought_stub) == 1,
      f"A: Claude's signed thinking reaches the Responses upstream as one stub with a recall id ({thought_stub})")
check("THINK-MARK-1" not in json.dumps(b2) and "EqSig0" not in json.dumps(b2) and
      not any(i.get("type") == "reasoning" for i in items), "A: neither the thinking nor its signature is sent to OpenAI")
rc = cmv("recall", thought_stub[0]) if thought_stub else None
check(rc is not None and rc.stdout.strip() == THOUGHT, f"A: cmv recall of the stub's id returns the thinking ({rc.stdout[:120] if rc else ''})")
calls2 = [b for b in m2["content"] if b["type"] == "tool_use"]
check(len(calls2) == 1 and calls2[0]["id"] == "call_scripted_2" and calls2[0]["input"] == {"command": "cat a.txt"},
      f"A: the OpenAI model's call reaches the client as a tool_use with its id and input ({calls2})")
check(usage2.get("input_tokens", 0) > 0 and usage2.get("output_tokens") == 10,
      f"A: the client's usage is the OpenAI upstream's, in Anthropic's terms ({usage2})")
u3, _, _ = turn_a("/v1/responses")
items3 = u3.get("body", {}).get("input") or []
check(any(i.get("type") == "function_call_output" and i.get("call_id") == "call_scripted_2" and "alpha" in str(i.get("output"))
          for i in items3), "A: the client's tool result reaches the OpenAI upstream as the function result")
r = cmv("switch", "sess-a", "--model", "gpt-4o")
check(r.returncode == 0, "cmv switch sess-a --model gpt-4o (Chat Completions)")
msgs.append({"role": "user", "content": "Count its lines."})
u4, m4, _ = turn_a("/v1/chat/completions", "1 a.txt")
b4 = u4.get("body", {})
cm = b4.get("messages") or []
check(cm[:1] and cm[0].get("role") == "system" and "SYSTEM-MARK-7" in cm[0].get("content", ""),
      "A: on Chat the system prompt is the first message")
check(any(m.get("role") == "tool" and m.get("tool_call_id") == "call_scripted_2" for m in cm) and
      any(tc.get("id") == first_call for m in cm for tc in m.get("tool_calls") or []),
      "A: every earlier call and result crosses to Chat, paired by id")
check(re.search(r"\[thinking signed for another provider, \d+ chars; recall [0-9a-f]{7,}\]", json.dumps(cm)) and
      "THINK-MARK-1" not in json.dumps(b4), "A: on Chat too, the thinking is the stub")
check(b4.get("stream") is True and (b4.get("stream_options") or {}).get("include_usage") is True,
      "A: the Chat stream asks for its usage")
check([b["id"] for b in m4["content"] if b["type"] == "tool_use"] == ["call_scripted_4"],
      "A: Chat's streamed tool call is assembled into one tool_use")
u5, _, _ = turn_a("/v1/chat/completions")
r = cmv("switch", "sess-a", "--model", "claude-sonnet-4-5")
check(r.returncode == 0, "cmv switch sess-a back to claude-sonnet-4-5")
msgs.append({"role": "user", "content": "Thanks."})
u6, m6, _ = turn_a("/v1/messages")
b6 = u6.get("body", {})
check(u6.get("key") == KEY_A, "A: back on Anthropic, the client's key again")
sent = json.dumps(b6.get("messages"))
check(all(x in sent for x in ["List the files", "I see two files.", "alpha", "It says alpha.", "call_scripted_2",
                              "call_scripted_4", "One line.", "Thanks."]) and "; recall " not in sent,
      "A: back on Claude, the window holds both phases whole (nothing summarized, nothing paged)")
th6 = [b for m in b6.get("messages") or [] if isinstance(m.get("content"), list) for b in m["content"]
       if b.get("type") == "thinking"]
check(len(th6) == 1 and th6[0].get("thinking") == THOUGHT and th6[0].get("signature") == "EqSig0scripted0123456789",
      f"A: back on Claude, the original thinking block with its signature, not the stub ({th6})")
runs = sum(1 for i, m in enumerate(msgs[:-1]) if i == 0 or m["role"] != msgs[i - 1]["role"])
check(len(b6.get("messages") or []) == runs, f"A: every message the client sent (same-role neighbours merged: {len(b6.get('messages') or [])}/{runs})")
lg = cmv("log", "sess-a", "--json")
missing = [x for x in ["List the files", "It says alpha.", "cat a.txt", "One line.", "Back on Claude."] if x not in lg.stdout]
check(not missing, f"A: cmv log holds every message of every phase (missing: {missing})")
sw = switch_events("sess-a")
check([e["to"] for e in sw] == ["gpt-5", "gpt-4o", "claude-sonnet-4-5"], f"A: one switch event per switch ({[e['to'] for e in sw]})")

# ---- B: a Responses client (Codex's shape) switched to Claude ----
TOOLS_B = [{"type": "function", "name": "exec_command", "description": "Run a command.", "strict": False,
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
           {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
           {"type": "web_search"}]
# Codex 0.171.0 sends its instructions as developer items in the input (data/client-requests/codex.json)
DEV_B = {"type": "message", "id": "msg_dev_b", "role": "developer",
         "content": [{"type": "input_text", "text": "<permissions instructions>DEV-MARK</permissions instructions>"}]}
items_b = [DEV_B, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}]


def turn_b(expect_path, result=None):
    st, text = post("/v1/responses", {"model": "gpt-5", "instructions": "You are Codex. CODEX-MARK.", "input": items_b,
                                      "tools": TOOLS_B, "stream": True, "store": False, "prompt_cache_key": "sess-b"},
                    {"authorization": f"Bearer {KEY_O}"})
    ups = new_upstream()
    check(st == 200 and [u["path"].split("?")[0] for u in ups] == [expect_path],
          f"B: answered, through {expect_path} ({st}, {[u['path'] for u in ups]})")
    evs = [e["data"] for e in events(text) if isinstance(e.get("data"), dict)]
    check(not foreign(text, "responses"), f"B: only Responses events reach the client ({foreign(text, 'responses')})")
    seqs = [e.get("sequence_number") for e in evs]
    check(seqs == list(range(len(seqs))), "B: sequence numbers run 0, 1, 2, ...")
    check(evs and evs[0]["type"] == "response.created" and evs[-1]["type"] == "response.completed",
          "B: the stream starts with response.created and ends with response.completed")
    done = evs[-1]["response"] if evs else {}
    for it in done.get("output") or []:
        items_b.append(it)
        if it["type"] == "function_call":
            items_b.append({"type": "function_call_output", "call_id": it["call_id"], "output": result or "ok"})
        elif it["type"] == "custom_tool_call":
            items_b.append({"type": "custom_tool_call_output", "call_id": it["call_id"], "output": result or "ok"})
    return ups[0] if ups else {}, done


u7, _ = turn_b("/v1/responses")
in7 = u7.get("body", {}).get("input") or []
check(in7[:1] == [DEV_B] and "DEV-MARK" not in json.dumps(u7.get("body", {}).get("instructions")),
      f"B: on its own API, Codex's developer item goes in the input, whole, where Codex put it ({json.dumps(in7)[:300]})")
r = cmv("switch", "sess-b", "--model", "claude-sonnet-4-5")
check(r.returncode == 0, f"cmv switch sess-b (Codex's) to claude-sonnet-4-5 ({r.stderr.strip()})")
items_b.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Count to three."}]})
u8, d8 = turn_b("/v1/messages", "1\n2\n3")
b8 = u8.get("body", {})
check(u8.get("key") == ENV_A and KEY_O not in json.dumps(u8), "B: Anthropic gets ANTHROPIC_API_KEY, never the OpenAI key")
check("CODEX-MARK" in json.dumps(b8.get("system")), "B: the instructions became the system prompt")
check("DEV-MARK" in json.dumps(b8.get("system")) and "DEV-MARK" not in json.dumps(b8.get("messages")),
      "B: Codex's developer item became a system prompt on Claude, not a message")
tb = {t.get("name"): t for t in b8.get("tools") or []}
check("exec_command" in tb and "input_schema" in tb["exec_command"] and "web_search" not in tb,
      "B: function tools in Anthropic's shape, OpenAI's built-in web search left out")
check("apply_patch" in tb and "input" in tb["apply_patch"]["input_schema"]["properties"],
      "B: the custom tool crosses as a function taking its input")
fc = [i for i in d8.get("output") or [] if i["type"] == "function_call"]
check(len(fc) == 1 and fc[0]["name"] == "exec_command" and json.loads(fc[0]["arguments"]) == {"cmd": "seq 1 3"}
      and fc[0]["call_id"].startswith("toolu_"), f"B: Claude's call reaches Codex as a function_call ({fc})")
us = d8.get("usage") or {}
check(us.get("output_tokens") == 10 and us.get("input_tokens", 0) > 0, f"B: usage in Responses' terms ({us})")
u9, d9 = turn_b("/v1/messages", "patched")
sent9 = b9 = u9.get("body", {})
check(any(b.get("type") == "tool_result" and b.get("tool_use_id") == fc[0]["call_id"] if fc else False
          for m in b9.get("messages") or [] for b in (m.get("content") if isinstance(m.get("content"), list) else [])),
      "B: Codex's function_call_output reaches Claude as the tool_result")
ct = [i for i in d9.get("output") or [] if i["type"] == "custom_tool_call"]
check(len(ct) == 1 and ct[0]["name"] == "apply_patch" and ct[0]["input"].startswith("*** Begin Patch"),
      f"B: a call of the custom tool reaches Codex as a custom_tool_call with its input ({ct})")
u10, _ = turn_b("/v1/messages")
check("patched" in json.dumps(u10.get("body", {}).get("messages")), f"B: the custom tool's output reaches Claude ({json.dumps(u10.get('body', {}).get('messages'))[-600:]})")

# ---- C: a Chat client, not streamed, switched to Claude ----
chat = [{"role": "system", "content": "CHAT-SYS"}, {"role": "user", "content": "Look up cmv."}]
r = cmv("switch", "sess-c", "--model", "claude-sonnet-4-5")  # no branch yet: refused
check(r.returncode != 0, "cmv switch of a session that does not exist is refused")
st, text = post("/v1/chat/completions", {"model": "gpt-4o", "messages": chat[:1] + [{"role": "user", "content": "Hi."}],
                                         "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {
                                             "type": "object", "properties": {"q": {"type": "string"}}}}}]},
                {"authorization": f"Bearer {KEY_O}", "session_id": "sess-c"})
ups = new_upstream()
check(st == 200 and ups and ups[0]["path"] == "/v1/chat/completions", "C: the Chat session starts on its own API")
body = json.loads(text) if st == 200 else {}
chat = chat[:1] + [{"role": "user", "content": "Hi."}, body.get("choices", [{}])[0].get("message", {}),
                   {"role": "user", "content": "Look up cmv."}]
r = cmv("switch", "sess-c", "--model", "claude-sonnet-4-5")
check(r.returncode == 0, "cmv switch sess-c to Claude")
st, text = post("/v1/chat/completions", {"model": "gpt-4o", "messages": chat,
                                         "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {
                                             "type": "object", "properties": {"q": {"type": "string"}}}}}]},
                {"authorization": f"Bearer {KEY_O}", "session_id": "sess-c"})
ups = new_upstream()
body = json.loads(text) if st == 200 else {}
check(ups and ups[0]["path"].startswith("/v1/messages") and "CHAT-SYS" in json.dumps(ups[0]["body"].get("system")),
      "C: the Chat session's request went to Anthropic, its system message as the system prompt")
ch = (body.get("choices") or [{}])[0]
tcs = ch.get("message", {}).get("tool_calls") or []
check(body.get("object") == "chat.completion" and ch.get("finish_reason") == "tool_calls" and len(tcs) == 1 and
      tcs[0]["function"]["name"] == "lookup" and json.loads(tcs[0]["function"]["arguments"]) == {"q": "cmv"},
      f"C: a whole Chat Completions body with the tool call comes back ({text[:200]})")
check((body.get("usage") or {}).get("completion_tokens") == 10, "C: with Chat's usage")

# ---- D: failover ----
DMETA = {"user_id": json.dumps({"session_id": "sess-d"})}
dmsgs = [{"role": "user", "content": "Work, whatever fails."}]


def failover_time(ref, age=0):
    """When the session failed over, as the proxy's note says (None: no failover there); with age, the
    failover is made that much older in the note, as if the time had passed (the proxy reads the note at
    each request, and has written it before its answer ends)."""
    db = sqlite3.connect(os.path.join(store, ".cmv", "store.db"), timeout=30)
    try:
        with db:
            row = db.execute("SELECT rowid, value FROM branch_state WHERE branch = ? AND key = 'proxy'",
                             ("proxy/" + ref,)).fetchone()
            m = re.search(r"^ft (\d+)$", row[1] if row else "", re.M)
            if m and age:
                db.execute("UPDATE branch_state SET value = ? WHERE rowid = ?",
                           (row[1][:m.start(1)] + str(int(m.group(1)) - age) + row[1][m.end(1):], row[0]))
            return int(m.group(1)) if m else None
    finally:
        db.close()


def turn_d(label):
    st, text = post("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True, "system": SYSTEM,
                                     "tools": TOOLS_A[:1], "metadata": DMETA, "messages": dmsgs},
                    {"x-api-key": KEY_A, "anthropic-version": "2023-06-01"})
    ups = [u["path"].split("?")[0] for u in new_upstream()]
    msg, stop, order_ok, _ = anthropic_message(events(text)) if "message_stop" in text else (None, None, False, None)
    if msg:
        dmsgs.append(msg)
        dmsgs.append({"role": "user", "content": f"Go on ({label})."})
    return st, text, ups, msg




st, text, ups, msg = turn_d("529")
check(ups == ["/v1/messages", "/v1/responses"], f"D: a 529 from Anthropic fails over to gpt-5 ({ups})")
check(st == 200 and msg and msg["content"][0].get("text") == "From the fallback.",
      "D: the client gets the fallback's answer in its own API, as if nothing happened")
check(len(switches("sess-d")) == 1 and "529" in switches("sess-d")[0], f"D: the failover is a switch event with its reason ({switches('sess-d')})")
check(failover_time("sess-d", age=RETRY) is not None, "D: the failover is in the session's note")
st, text, ups, msg = turn_d("return")
check(ups == ["/v1/messages"] and msg and msg["content"][0].get("text") == "Returned.",
      f"D: once --retry-primary has passed, the session returns to Claude ({ups})")
check(len(switches("sess-d")) == 2 and switches("sess-d")[1].startswith("return"), "D: the return is a switch event")
st, text, ups, msg = turn_d("drop")
check(ups == ["/v1/messages", "/v1/responses"] and msg and msg["content"][0].get("text") == "Fallback again.",
      f"D: a dropped connection fails over too ({ups})")
check(failover_time("sess-d", age=RETRY) is not None, "D: the second failover is in the session's note")
t_cut = int(time.time())
st, text, ups, msg = turn_d("cut")
evs = events(text)
check(ups == ["/v1/messages"], f"D: after --retry-primary, Claude is tried again, and cuts its stream ({ups})")
check(any(e.get("event") == "error" for e in evs) and "message_stop" not in text,
      "D: a stream cut mid-answer is not restarted: the client's stream ends with an error event")
# the cut: Claude failed again, so its next try waits --retry-primary from now (read in the note: no
# check depends on the time between two requests)
ft = failover_time("sess-d")
check(ft is not None and ft >= t_cut, f"D: the cut restarts the wait for Claude (failed over at {ft}, the cut at {t_cut})")
st, text, ups, msg = turn_d("retry")
check(msg is not None and msg["content"][0].get("text") == "After the cut." and ups == ["/v1/responses"],
      f"D: the client's retry goes to the fallback, and is answered ({ups})")
sw = switches("sess-d")
check(len(sw) == 3, f"D: every failover and return recorded, once each ({sw})")
usage = cmv("stats", "sess-d")
check("openai/gpt-5" in usage.stdout and "anthropic/claude-sonnet-4-5" in usage.stdout,
      f"D: usage is booked to each model that answered (cmv stats: {usage.stdout[-400:]})")

# ---- E: the capability check ----
r = cmv("models", "add", "toolless", "--like", "gpt-4o")
r2 = cmv("models", "set", "toolless", "tools", "false")
check(r.returncode == 0 and r2.returncode == 0, "a model without tool calling is added (cmv models)")
r = cmv("switch", "sess-a", "--model", "toolless", ok=False)
check(r.returncode != 0 and "tool calling" in r.stderr, f"E: a switch to it is refused, naming tool calling ({r.stderr.strip()[:160]})")
before = len(glob.glob(os.path.join(log, "*.json")))
check(len(switch_events("sess-a")) == 3, "E: the refused switch recorded nothing")
r = cmv("switch", "sess-a", "--model", "toolless", "--tools-as-text")
check(r.returncode == 0, "E: with --tools-as-text it is carried, as the user asked")

px.terminate()
px.wait(timeout=10)
up.terminate()
up.wait(timeout=10)
errlog.close()
text = open(os.path.join(root, "proxy.err")).read()
check("translated to openai-responses" in text and "translated to anthropic" in text, "the log line names the translation")
stored = b""
for f in glob.glob(os.path.join(store, ".cmv", "**"), recursive=True):
    if os.path.isfile(f):
        stored += open(f, "rb").read()
check(all(k.encode() not in stored for k in [KEY_A, KEY_O, ENV_A, ENV_O]), "no key is stored")
if failures:
    print(open(os.path.join(root, "proxy.err")).read()[-3000:])
    sys.exit(f"{len(failures)} checks failed")
if not os.environ.get("KEEP"): shutil.rmtree(root, ignore_errors=True)
print("all checks passed")
