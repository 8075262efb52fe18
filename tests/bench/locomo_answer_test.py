#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cmv-bench locomo --answer-with, end to end and offline: a made-up LoCoMo-format
file, an OpenAI-compatible server on 127.0.0.1 that this test starts and that
answers from recorded replies, and the F1 the bench reports checked against the
reference scorer's rules. Usage: locomo_answer_test.py PATH/TO/cmv-bench"""
import json, os, subprocess, sys, tempfile, threading
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from openai_fake import send_chat_reply  # noqa: E402

BENCH = sys.argv[1]
CONV = [{
    "sample_id": "made-up-1",
    "conversation": {
        "speaker_a": "Ana", "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a grey cat named Pixel last week."},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! I am training for the Lisbon marathon."},
            {"speaker": "Ana", "dia_id": "D1:3", "text": "I also started pottery classes on Tuesdays."},
        ],
        "session_2_date_time": "10:00 am on 20 May, 2023",
        "session_2": [
            {"speaker": "Ben", "dia_id": "D2:1", "text": "I finished the marathon on 14 May 2023."},
            {"speaker": "Ana", "dia_id": "D2:2", "text": "Congratulations! Pixel broke a vase yesterday."},
        ],
    },
    "qa": [
        {"question": "What hobbies did Ana start?", "answer": "pottery classes", "evidence": ["D1:3"], "category": 1},
        {"question": "When did Ben finish the marathon?", "answer": "14 May 2023", "evidence": ["D2:1"], "category": 2},
        {"question": "What is the name of Ana's dog?", "adversarial_answer": "Pixel", "evidence": [], "category": 5},
        {"question": "What city was Ben's marathon in?", "answer": "Lisbon", "evidence": ["D1:2"], "category": 4},
    ],
}]
# The recorded replies, by a word of the question; the last one is half right.
REPLIES = {"hobbies": "pottery classes", "finish": "14 May 2023", "dog": "(a)", "city": "Lisbon, Portugal"}
requests = []

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        requests.append((self.path, body))
        text = body["messages"][-1]["content"]
        reply = next(v for k, v in REPLIES.items() if k in text.split("Question:")[1])
        send_chat_reply(self, reply, 100, 3)
    def log_message(self, *a):
        pass

srv = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
fails = 0
def check(name, cond):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", name)

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "conv.json")
    json.dump(CONV, open(path, "w"))
    env = dict(os.environ, CMV_LLM_API_KEY="test-key-not-sent-anywhere")
    r = subprocess.run([BENCH, "locomo", path, "--budget", "512", "--answer-with", "llama-3.1-8b",
                        "--llm-url", "http://127.0.0.1:%d/v1" % srv.server_port, "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    check("the bench runs: " + r.stderr[-300:], r.returncode == 0)
    out = json.loads(r.stdout) if r.returncode == 0 else [{}]
    b = out[0]
    check("one request per question", len(requests) == 4)
    check("to the chat completions path", all(p == "/v1/chat/completions" for p, _ in requests))
    check("the answerer's model and 32 tokens", all(q["model"] == "llama-3.1-8b" and q["max_tokens"] == 32 for _, q in requests))
    ctx = [q["messages"][-1]["content"] for _, q in requests]
    check("the working set carries the evidence", "pottery classes on Tuesdays" in ctx[0])
    check("category 2 asks for a date", "Use DATE of CONVERSATION" in ctx[1])
    check("category 5 is two options", "Select the correct answer: (a)" in ctx[2] and "Pixel" in ctx[2])
    # the reference's rules: 1, 1, the option (a) maps to, and F1("Lisbon Portugal", "Lisbon") = 2/3
    cat5 = 1.0 if "(a) Not mentioned in the conversation" in ctx[2] else 0.0
    want = (1 + 1 + cat5 + 2 / 3) / 4
    check("answer F1 %.4f, want %.4f" % (b.get("answer_f1", -1), want), abs(b.get("answer_f1", -1) - want) < 1e-6)
    check("by category", abs(b.get("answer_f1_by_category", {}).get("single-hop", -1) - 2 / 3) < 1e-6)
    check("no errors", b.get("answered") == 4 and b.get("answer_errors") == 0)
srv.shutdown()
print("locomo --answer-with: %s" % ("ok" if not fails else "%d failed" % fails))
sys.exit(1 if fails else 0)
