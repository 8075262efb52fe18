#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An OpenAI-compatible Chat Completions server on 127.0.0.1 for the CLI tests:
it answers every request with the recorded reply in REPLY_FILE, appends each
request (path, headers that matter, body) as a JSON line to LOG_FILE, and writes
its port to PORT_FILE once it listens. Usage: llm_server.py REPLY_FILE LOG_FILE PORT_FILE"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

reply_file, log_file, port_file = sys.argv[1:4]
reply = open(reply_file).read()

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(log_file, "a") as log:
            log.write(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization"),
                                  "body": json.loads(body)}) + "\n")
        out = json.dumps({"id": "chatcmpl-replay", "object": "chat.completion",
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                       "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 1000, "completion_tokens": 100}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass

srv = HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file, "w") as f:
    f.write(str(srv.server_port))
srv.serve_forever()
