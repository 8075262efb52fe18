#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A scripted model server on 127.0.0.1 for the real-client tests (docs/clients.md).

It answers Claude Code (POST /v1/messages, Anthropic server-sent events) and Codex
(POST /v1/responses, Responses events) from a script, and keeps every request it
receives as one JSON file in a folder, so a test can assert on what the client sent.

Usage: model_server.py --script FILE --log-dir DIR [--port-file FILE]
  It prints the port on stdout (one line) and writes it to --port-file once it listens.

The script (JSON):
  {"turns": [
     {"text": "I will look."},                                 a text reply (ends the client's turn)
     {"tool": "Bash", "input": {"command": "cat big.txt"}},    a tool call (Claude Code's tools)
     {"tool": "exec_command", "input": {"cmd": "seq 1 9"}},    (Codex's: input becomes arguments)
     {"tool": "search", "namespace": "mcp__cmv", "input": {}}  (a tool Codex offers in a namespace, as its MCP tools)
     {"item": {"type": "tool_search_call", ...}}               (Responses only: an output item sent as it is)
   ],
   "done": "Done."}                                            the reply once the turns are used up
A turn may carry "text" and "tool" together (the text comes first). Failures, for failover
tests: {"error": 529} answers that status with the provider's error body, {"drop": true}
closes the connection without a reply, {"drop_mid": true} starts the stream and closes it
after the first event. "check_schemas": true (beside "turns") refuses, as OpenAI does, an
OpenAI request (Chat or Responses) with a function whose schema has an array without
"items": 400, the request logged with no turn taken. {"recall": true} calls
cmv_recall with the first stub id ("...; recall ID]") the request shows (cmv proxy's faults). Each request of
the client's main loop (one that offers tools) takes the next turn; a request
without tools (a title, a summary, a quota probe) gets a short text and takes none.

Each request is logged as DIR/NNNN.json: {"n", "method", "path", "turn" (the index
served, or null), "bytes" (of the body), "key" (the API key it carried: tests use fake
ones), "body" (parsed JSON, or the raw text when it is not JSON)}. It also answers
OpenAI Chat Completions (/v1/chat/completions, chunks or a whole body), and reports
prompt-cache reads as the providers do: Anthropic's cache_read_input_tokens for the
longest earlier prefix ending at a cache_control marker, OpenAI's cached_tokens for the
longest earlier prefix (whole items, 1024 tokens at least); a token is 4 bytes here, and a
prompt is billed "bill_factor" (beside "turns", default 1) times its tokens, as a provider
whose tokenizer counts more than the client's would. Nothing here needs the network; it survives any request: a body
that is not JSON gets 400, an unknown path 404."""
import argparse, gzip, hashlib, json, os, re, socket, sys, threading, time, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--script", required=True)
ap.add_argument("--log-dir", required=True)
ap.add_argument("--port-file")
args = ap.parse_args()

try:
    with open(args.script) as f:
        script = json.load(f)
    turns = script["turns"]
    if not isinstance(turns, list):
        raise ValueError('"turns" is not a list')
except (OSError, ValueError, KeyError, TypeError) as e:
    sys.exit(f"model_server: {args.script}: {e}")
done_text = script.get("done", "Done.")
check_schemas = bool(script.get("check_schemas"))
bill_factor = float(script.get("bill_factor", 1))
os.makedirs(args.log_dir, exist_ok=True)

lock = threading.Lock()
state = {"n": 0, "turn": 0}


def array_without_items(schema, where=()):
    """The path to the first array schema without "items" (OpenAI's 400), or None."""
    if isinstance(schema, list):
        for k, v in enumerate(schema):
            bad = array_without_items(v, where + (k,))
            if bad is not None:
                return bad
        return None
    if not isinstance(schema, dict):
        return None
    ty = schema.get("type")
    if (ty == "array" or (isinstance(ty, list) and "array" in ty)) and "items" not in schema:
        return where
    for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "additionalProperties"):
        if key in schema:
            bad = array_without_items(schema[key], where + (key,))
            if bad is not None:
                return bad
    for key in ("properties", "$defs", "definitions"):
        for name, v in (schema.get(key) or {}).items() if isinstance(schema.get(key), dict) else ():
            bad = array_without_items(v, where + (key, name))
            if bad is not None:
                return bad
    return None


def schema_error(body, path):
    """OpenAI's refusal of a function schema with an array lacking items, or None."""
    fns = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        if path == "/v1/chat/completions" and isinstance(t.get("function"), dict):
            fns.append(t["function"])
        elif t.get("type") == "function":
            fns.append(t)
        elif t.get("type") == "namespace":
            fns += [m for m in t.get("tools") or [] if isinstance(m, dict) and m.get("type") == "function"]
    for f in fns:
        bad = array_without_items(f.get("parameters"))
        if bad is not None:
            return f"Invalid schema for function '{f.get('name')}': In context={bad!r}, array schema missing items."
    return None


def next_turn():
    """The index and the turn the next main-loop request gets (None once they are used up)."""
    with lock:
        i = state["turn"]
        state["turn"] += 1
    if i < len(turns):
        return i, turns[i]
    return None, {"text": done_text}


cache = {"anthropic": {}, "openai": {}}  # prefix digest -> tokens


def prefix_units(body, kind):
    """The request as the units a provider caches by, in order: tools, system, message blocks."""
    units = []
    if kind == "anthropic":
        units += [(json.dumps(t, sort_keys=True), "cache_control" in t) for t in body.get("tools") or []]
        system = body.get("system") or []
        if isinstance(system, str):
            system = [{"type": "text", "text": system}]
        units += [(json.dumps(b, sort_keys=True), isinstance(b, dict) and "cache_control" in b) for b in system]
        for m in body.get("messages") or []:
            c = m.get("content")
            for b in [c] if isinstance(c, str) else c or []:
                mark = isinstance(b, dict) and "cache_control" in b
                if isinstance(b, dict):
                    b = {k: v for k, v in b.items() if k != "cache_control"}
                units.append((m.get("role", "") + json.dumps(b, sort_keys=True), mark))
    else:
        units += [(json.dumps(t, sort_keys=True), False) for t in body.get("tools") or []]
        units += [(json.dumps(body.get("instructions", ""), sort_keys=True), False)]
        items = body.get("input") if "input" in body else body.get("messages")
        units += [(json.dumps(i, sort_keys=True), False) for i in (items if isinstance(items, list) else [items])]
    return units


def cached_tokens(body, kind):
    """Tokens read from the simulated prompt cache, and the prefixes this request writes."""
    units = prefix_units(body, kind)
    h, digests, total = hashlib.sha256(), [], 0
    for text, mark in units:
        h.update(text.encode())
        total += max(1, len(text) // 4)
        digests.append((h.hexdigest(), total, mark))
    with lock:
        store = cache[kind]
        read = 0
        for d, n, mark in digests:
            if d in store:
                read = max(read, n)
        if kind == "openai" and read < 1024:
            read = 0
        for d, n, mark in digests:
            if kind == "openai" or mark:
                store[d] = n
    return read


def log_request(method, path, raw, body, turn, key=None, cache_read=None):
    with lock:
        state["n"] += 1
        n = state["n"]
    rec = {"n": n, "t": round(time.time(), 3), "method": method, "path": path, "turn": turn, "bytes": len(raw), "key": key, "cache_read": cache_read,
           "body": body if body is not None else raw.decode("utf-8", "replace")}
    tmp = os.path.join(args.log_dir, f".{n:04d}.tmp")
    with open(tmp, "w") as f:
        json.dump(rec, f)
    # Renamed into place: a test polling the folder never reads half a file.
    os.replace(tmp, os.path.join(args.log_dir, f"{n:04d}.json"))


def estimate_tokens(raw):
    return max(1, int(len(raw) // 4 * bill_factor))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        enc = self.headers.get("Content-Encoding", "").lower()
        if enc == "gzip":
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            raw = zlib.decompress(raw)
        return raw

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, kind, message):
        self.send_json(code, {"type": "error", "error": {"type": kind, "message": message}})

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def event(self, name, data):
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    # Probes: Claude Code and Codex may look at the server before they post; answer them plainly.
    def do_HEAD(self):
        log_request("HEAD", self.path, b"", None, None)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        path = self.path.split("?")[0]
        log_request("GET", self.path, b"", None, None)
        if self.headers.get("Upgrade"):
            # Codex tries a WebSocket for /v1/responses first; refusing the upgrade sends it to POST.
            self.error(426, "invalid_request_error", "no WebSocket here: POST instead")
        elif path in ("/", "/v1", "/health", "/v1/health"):
            self.send_json(200, {"ok": True})
        elif path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [], "models": []})
        else:
            self.error(404, "not_found_error", f"no such path: {path}")

    def do_POST(self):
        path = self.path.split("?")[0]
        try:
            raw = self.read_body()
        except (ValueError, OSError, zlib.error, EOFError) as e:
            log_request("POST", self.path, b"", None, None)
            return self.error(400, "invalid_request_error", f"unreadable body: {e}")
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as e:
            log_request("POST", self.path, raw, None, None)
            return self.error(400, "invalid_request_error", f"body is not JSON: {e}")
        if path == "/v1/messages/count_tokens":
            log_request("POST", self.path, raw, body, None)
            return self.send_json(200, {"input_tokens": estimate_tokens(raw)})
        if path not in ("/v1/messages", "/v1/responses", "/v1/chat/completions"):
            log_request("POST", self.path, raw, body, None)
            return self.error(404, "not_found_error", f"no such path: {path}")
        bad = check_schemas and path != "/v1/messages" and schema_error(body, path)
        if bad:
            log_request("POST", self.path, raw, body, None)
            return self.error(400, "invalid_request_error", bad)
        if body.get("tools"):
            i, turn = next_turn()
        else:
            i, turn = None, {"text": "OK."}
        auth = self.headers.get("x-api-key") or (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        kind = "anthropic" if path == "/v1/messages" else "openai"
        try:
            self.cache_read = cached_tokens(body, kind)
        except (AttributeError, TypeError):
            self.cache_read = 0  # a body of the wrong shape: no cache, the reply says the rest
        log_request("POST", self.path, raw, body, i, auth or None, self.cache_read)
        model = str(body.get("model", "scripted"))
        if turn.get("error"):
            code = int(turn["error"])
            return self.error(code, "overloaded_error" if code == 529 else "rate_limit_error" if code == 429
                              else "api_error", f"scripted failure {code}")
        if turn.get("drop") or turn.get("drop_mid"):
            if turn.get("drop_mid"):
                self.start_sse()
                self.wfile.write(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_cut",'
                                 b'"type":"message","role":"assistant","model":"m","content":[],"usage":'
                                 b'{"input_tokens":1,"output_tokens":0}}}\n\n' if path == "/v1/messages" else
                                 b'data: {"type":"response.created","sequence_number":0,"response":{"id":"r",'
                                 b'"object":"response","status":"in_progress","output":[]}}\n\n')
                self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if turn.get("recall"):
            ids = re.findall(r"; recall ([0-9a-f]{7,})\]", json.dumps(body))
            turn = {"tool": "cmv_recall", "input": {"id": ids[0]}} if ids else {"text": "nothing to recall"}
        try:
            if path == "/v1/messages":
                self.anthropic(body, raw, model, turn, i)
            elif path == "/v1/chat/completions":
                self.openai_chat(body, raw, model, turn, i)
            else:
                self.openai_responses(raw, model, turn, i)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away mid-stream: nothing to answer
        except Exception as e:  # a turn the script got wrong: say so, and keep serving
            print(f"model_server: turn {i}: {e!r}", file=sys.stderr, flush=True)
            self.close_connection = True

    def anthropic(self, body, raw, model, turn, i):
        blocks = []
        if turn.get("thinking"):
            # signed thinking, as Claude's extended thinking streams it
            blocks.append({"type": "thinking", "thinking": turn["thinking"], "signature": f"EqSig{i}scripted0123456789"})
        if turn.get("text"):
            blocks.append({"type": "text", "text": turn["text"]})
        if turn.get("tool"):
            blocks.append({"type": "tool_use", "id": turn.get("id") or f"toolu_{i:04d}_{int(time.time() * 1000) % 100000:05d}",
                           "name": turn["tool"], "input": turn.get("input", {})})
        if not blocks:
            blocks.append({"type": "text", "text": done_text})
        stop = "tool_use" if turn.get("tool") else "end_turn"
        usage = {"input_tokens": max(1, estimate_tokens(raw) - self.cache_read), "output_tokens": 10,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": self.cache_read}
        msg_id = f"msg_scripted_{i if i is not None else 'x'}"
        if not body.get("stream"):
            return self.send_json(200, {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                                        "content": blocks, "stop_reason": stop, "stop_sequence": None,
                                        "usage": usage})
        self.start_sse()
        self.event("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": dict(usage, output_tokens=1)}})
        for k, b in enumerate(blocks):
            if b["type"] == "thinking":
                self.event("content_block_start", {"type": "content_block_start", "index": k,
                                                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                self.event("content_block_delta", {"type": "content_block_delta", "index": k,
                                                   "delta": {"type": "thinking_delta", "thinking": b["thinking"]}})
                self.event("content_block_delta", {"type": "content_block_delta", "index": k,
                                                   "delta": {"type": "signature_delta", "signature": b["signature"]}})
            elif b["type"] == "text":
                self.event("content_block_start", {"type": "content_block_start", "index": k,
                                                   "content_block": {"type": "text", "text": ""}})
                self.event("content_block_delta", {"type": "content_block_delta", "index": k,
                                                   "delta": {"type": "text_delta", "text": b["text"]}})
            else:
                self.event("content_block_start", {"type": "content_block_start", "index": k,
                                                   "content_block": dict(b, input={})})
                self.event("content_block_delta", {"type": "content_block_delta", "index": k, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(b["input"])}})
            self.event("content_block_stop", {"type": "content_block_stop", "index": k})
        self.event("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": 10}})
        self.event("message_stop", {"type": "message_stop"})

    def openai_responses(self, raw, model, turn, i):
        tag = i if i is not None else "x"
        resp = {"id": f"resp_scripted_{tag}", "object": "response", "created_at": int(time.time()),
                "status": "in_progress", "model": model, "output": []}
        self.start_sse()
        seq = [0]

        def ev(name, data):
            data = dict(type=name, sequence_number=seq[0], **data)
            seq[0] += 1
            self.event(name, data)

        ev("response.created", {"response": resp})
        output = []
        if turn.get("item"):
            # an item of any kind (Codex's tool search, a web search): added and done as it is
            ev("response.output_item.added", {"output_index": 0, "item": turn["item"]})
            ev("response.output_item.done", {"output_index": 0, "item": turn["item"]})
            output.append(turn["item"])
        elif turn.get("text") or not turn.get("tool"):
            text = turn.get("text") or done_text
            item_id = f"msg_scripted_{tag}"
            k = len(output)
            ev("response.output_item.added", {"output_index": k, "item": {
                "type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}})
            part = {"type": "output_text", "text": "", "annotations": []}
            ev("response.content_part.added", {"item_id": item_id, "output_index": k, "content_index": 0,
                                               "part": part})
            ev("response.output_text.delta", {"item_id": item_id, "output_index": k, "content_index": 0,
                                              "delta": text})
            ev("response.output_text.done", {"item_id": item_id, "output_index": k, "content_index": 0,
                                             "text": text})
            ev("response.content_part.done", {"item_id": item_id, "output_index": k, "content_index": 0,
                                              "part": dict(part, text=text)})
            item = {"type": "message", "id": item_id, "status": "completed", "role": "assistant",
                    "content": [dict(part, text=text)]}
            ev("response.output_item.done", {"output_index": k, "item": item})
            output.append(item)
        if turn.get("tool"):
            k = len(output)
            arguments = json.dumps(turn.get("input", {}))
            item = {"type": "function_call", "id": f"fc_scripted_{tag}", "call_id": f"call_scripted_{tag}",
                    "name": turn["tool"], "arguments": "", "status": "in_progress"}
            if turn.get("namespace"):
                item["namespace"] = turn["namespace"]
            ev("response.output_item.added", {"output_index": k, "item": item})
            ev("response.function_call_arguments.delta", {"item_id": item["id"], "output_index": k,
                                                          "delta": arguments})
            ev("response.function_call_arguments.done", {"item_id": item["id"], "output_index": k,
                                                         "arguments": arguments})
            item = dict(item, arguments=arguments, status="completed")
            ev("response.output_item.done", {"output_index": k, "item": item})
            output.append(item)
        n_in = estimate_tokens(raw)
        ev("response.completed", {"response": dict(resp, status="completed", output=output, usage={
            "input_tokens": n_in, "input_tokens_details": {"cached_tokens": min(n_in, self.cache_read)}, "output_tokens": 10,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": n_in + 10})})


    def openai_chat(self, body, raw, model, turn, i):
        tag = i if i is not None else "x"
        text = turn.get("text") or ("" if turn.get("tool") else done_text)
        calls = []
        if turn.get("tool"):
            calls.append({"id": f"call_scripted_{tag}", "type": "function",
                          "function": {"name": turn["tool"], "arguments": json.dumps(turn.get("input", {}))}})
        n_in = estimate_tokens(raw)
        usage = {"prompt_tokens": n_in, "completion_tokens": 10, "total_tokens": n_in + 10,
                 "prompt_tokens_details": {"cached_tokens": min(n_in, self.cache_read)}}
        finish = "tool_calls" if calls else "stop"
        base = {"id": f"chatcmpl-scripted-{tag}", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            msg = {"role": "assistant", "content": text or None}
            if calls:
                msg["tool_calls"] = calls
            return self.send_json(200, dict(base, object="chat.completion", usage=usage, choices=[
                {"index": 0, "message": msg, "finish_reason": finish}]))
        self.start_sse()

        def chunk(delta, fin=None, **extra):
            data = dict(base, object="chat.completion.chunk", choices=[{"index": 0, "delta": delta, "finish_reason": fin}],
                        **extra)
            self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if text:
            chunk({"content": text})
        for k, c in enumerate(calls):
            chunk({"tool_calls": [{"index": k, "id": c["id"], "type": "function",
                                   "function": {"name": c["function"]["name"], "arguments": ""}}]})
            chunk({"tool_calls": [{"index": k, "function": {"arguments": c["function"]["arguments"]}}]})
        chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            data = dict(base, object="chat.completion.chunk", choices=[], usage=usage)
            self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that drops a kept-alive connection is no error of the server's.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


srv = Server(("127.0.0.1", 0), Handler)
port = srv.server_port
if args.port_file:
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.replace(args.port_file + ".tmp", args.port_file)
print(port, flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
