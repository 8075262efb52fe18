#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An OpenAI-compatible Chat Completions server on 127.0.0.1 for the CLI tests:
it answers every request with the recorded reply in REPLY_FILE, appends each
request (path, headers that matter, body) as a JSON line to LOG_FILE, and writes
its port to PORT_FILE once it listens. Usage: llm_server.py REPLY_FILE LOG_FILE PORT_FILE"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from openai_fake import send_chat_reply

reply_file, log_file, port_file = sys.argv[1:4]
reply = open(reply_file).read()

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(log_file, "a") as log:
            log.write(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization"),
                                  "body": json.loads(body)}) + "\n")
        send_chat_reply(self, reply, 1000, 100)
    def log_message(self, *a):
        pass

srv = HTTPServer(("127.0.0.1", 0), Handler)
# whole or not at all: the test reads the port as soon as the file is there
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_port))
os.replace(port_file + ".tmp", port_file)
srv.serve_forever()
