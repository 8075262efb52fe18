#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A scripted model server on 127.0.0.1 for the agent-host examples (examples/host.c,
examples/host.py): Anthropic Messages (POST /v1/messages) and OpenAI Chat Completions
(POST /v1/chat/completions), as JSON or, when the request asks ("stream": true), as
server-sent events. Usage: host_server.py PORT_FILE [LOG_FILE]

The script is the conversation itself, so a host can run any number of turns:
  - the last message holds tool results: the model answers "done (N results)";
  - the last user text says "run: CMD": the model calls the tool `shell` with {"cmd": CMD};
  - it says "recall": the model calls `cmv_recall` with the id of the first stub
    ("... recall ID]") in the request (a text answer "no stub" when there is none);
  - otherwise: "ok: " and the text's first words.
A model whose id has "mini" in it (gpt-4o-mini) is a second opinion, for shadow runs:
it runs "CMD --dry-run" instead of CMD and answers "sure: " and the first words.
A request whose tools lack one it is about to call gets a 400, as a provider
refuses a history with tool calls and no tools. Usage is input = body bytes / 4,
output = 7 (cache read 0). LOG_FILE, when given, gets one line per request:
{"path", "model", "stream", "tools", "bytes"}."""
import json, re, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file = sys.argv[1]
log_file = sys.argv[2] if len(sys.argv) > 2 else None
STUB = re.compile(r"recall ([0-9a-f]{7,32})\]")


def last_user(msgs):
    """The last message's texts and whether it carries tool results (either wire format)."""
    m = msgs[-1] if msgs else {}
    if m.get("role") == "tool":
        return "", True
    c = m.get("content")
    if isinstance(c, str):
        return c, False
    texts, results = [], False
    for b in c or []:
        if b.get("type") == "tool_result":
            results = True
        elif b.get("type") == "text":
            texts.append(b.get("text", ""))
    return " ".join(texts), results


def decide(body, raw):
    """(text, tool name, tool input) for this request."""
    text, results = last_user(body.get("messages", []))
    if "mini" in (body.get("model") or "") and not results:
        if text.startswith("run: "):
            return "running it dry first", "shell", {"cmd": text[5:] + " --dry-run"}
        if text.strip() != "recall":
            return "sure: " + " ".join(text.split()[:4]), None, None
    if results:
        n = sum(1 for m in body["messages"][-3:] if m.get("role") == "tool") or 1
        return "done (%d results)" % n, None, None
    if text.startswith("run: "):
        return "running it", "shell", {"cmd": text[5:]}
    if text.strip() == "recall":
        m = STUB.search(raw)
        if not m:
            return "no stub", None, None
        return "reading it back", "cmv_recall", {"id": m.group(1)}
    return "ok: " + " ".join(text.split()[:4]), None, None


def tool_names(body):
    return [t.get("name") or t.get("function", {}).get("name") for t in body.get("tools", [])]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        try:
            body = json.loads(raw)
        except ValueError:
            return self.reply(400, json.dumps({"error": {"message": "not JSON: " + raw[-80:]}}).encode())
        anthropic = self.path.endswith("/messages")
        if not anthropic and not self.path.endswith("/chat/completions"):
            return self.reply(404, b'{"error":{"message":"no such path"}}')
        if log_file:
            with open(log_file, "a") as f:
                f.write(json.dumps({"path": self.path, "model": body.get("model"), "stream": bool(body.get("stream")),
                                    "tools": tool_names(body), "bytes": len(raw)}) + "\n")
        text, tool, inp = decide(body, raw)
        if tool and tool not in tool_names(body):
            return self.reply(400, json.dumps({"error": {"message": "tool %s is not defined" % tool}}).encode())
        usage_in, n = len(raw) // 4, len(body.get("messages", []))
        call_id = "call_%d_%s" % (n, tool) if tool else None
        stream = bool(body.get("stream"))
        if anthropic:
            content = [{"type": "text", "text": text}]
            if tool:
                content.append({"type": "tool_use", "id": call_id, "name": tool, "input": inp})
            usage = {"input_tokens": usage_in, "output_tokens": 7, "cache_read_input_tokens": 0}
            stop = "tool_use" if tool else "end_turn"
            if not stream:
                return self.reply(200, json.dumps({"id": "msg_%d" % n, "type": "message", "role": "assistant",
                                                   "model": body.get("model"), "content": content,
                                                   "stop_reason": stop, "usage": usage}).encode())
            ev = [("message_start", {"type": "message_start", "message": {
                "id": "msg_%d" % n, "type": "message", "role": "assistant", "model": body.get("model"),
                "content": [], "usage": {"input_tokens": usage_in, "output_tokens": 1}}})]
            ev.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}}))
            for piece in (text[:5], text[5:]):
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": piece}}))
            ev.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
            if tool:
                js = json.dumps(inp)
                ev.append(("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                    "type": "tool_use", "id": call_id, "name": tool, "input": {}}}))
                for piece in (js[:6], js[6:]):
                    ev.append(("content_block_delta", {"type": "content_block_delta", "index": 1,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
                ev.append(("content_block_stop", {"type": "content_block_stop", "index": 1}))
            ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                                         "usage": {"output_tokens": 7}}))
            ev.append(("message_stop", {"type": "message_stop"}))
            data = "".join("event: %s\ndata: %s\n\n" % (k, json.dumps(v)) for k, v in ev)
            return self.reply(200, data.encode(), "text/event-stream")
        msg = {"role": "assistant", "content": text}
        if tool:
            msg["tool_calls"] = [{"id": call_id, "type": "function",
                                  "function": {"name": tool, "arguments": json.dumps(inp)}}]
        usage = {"prompt_tokens": usage_in, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 0}}
        finish = "tool_calls" if tool else "stop"
        if not stream:
            return self.reply(200, json.dumps({"id": "chatcmpl-%d" % n, "object": "chat.completion",
                                               "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                                               "usage": usage}).encode())
        chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        chunks += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in (text[:4], text[4:])]
        if tool:
            args = json.dumps(inp)
            chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": call_id, "type": "function", "function": {"name": tool, "arguments": ""}}]}}]})
            chunks += [{"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": p}}]}}]} for p in (args[:5], args[5:])]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        chunks.append({"choices": [], "usage": usage})
        data = "".join("data: %s\n\n" % json.dumps(dict(c, id="chatcmpl-%d" % n)) for c in chunks) + "data: [DONE]\n\n"
        return self.reply(200, data.encode(), "text/event-stream")


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_port))
import os
os.replace(port_file + ".tmp", port_file)
srv.serve_forever()
