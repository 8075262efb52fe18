# SPDX-License-Identifier: MIT
"""What the tests' OpenAI-compatible servers on 127.0.0.1 share: a Chat
Completions reply, written to the request's handler."""
import json


def send_chat_reply(handler, text, prompt_tokens, completion_tokens):
    out = json.dumps({"id": "chatcmpl-replay", "object": "chat.completion",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                   "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)
