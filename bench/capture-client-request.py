#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Capture the request a real client sends, for `cmv-bench proxy` (docs/proxy.md).

Transcripts do not record a client's tool definitions, and the clients are proprietary, so
their requests are never committed: this runs the pinned Claude Code (and Codex) of
data/clients once, headless, against the scripted loopback model (tests/support/model_server.py)
and keeps the first request of its main loop (the one that offers tools) under data/
(gitignored). cmv-bench proxy reads data/client-requests/claude-code.json when it is there.

Usage: bench/capture-client-request.py CMV_BINARY [--codex]
Nothing leaves the machine: the client talks to 127.0.0.1 with a fake key.
"""
import json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))
import clientlib  # noqa: E402

OUT = os.path.join(os.environ.get("CMV_DATA_DIR") or os.path.join(ROOT, "data"), "client-requests")


def keep(sb, path, name, version):
    reqs = sb.main_requests(path)
    if not reqs:
        sys.exit(f"capture: {name} sent no request with tools (server log: {sb.log})")
    body = reqs[0]["body"]
    os.makedirs(OUT, exist_ok=True)
    dst = os.path.join(OUT, name + ".json")
    with open(dst + ".tmp", "w") as f:
        json.dump({"client": name, "version": version, "path": reqs[0]["path"], "body": body}, f)
    os.replace(dst + ".tmp", dst)
    tools = body.get("tools", [])
    print(f"{dst}: {len(tools)} tools, {len(json.dumps(tools, separators=(',', ':')))} bytes of definitions")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    os.environ["CMV"] = os.path.abspath(sys.argv[1])
    sb = clientlib.Sandbox("capture")
    try:
        sb.serve([{"text": "Hello."}])
        r = sb.claude("-p", "Say hello.", "--output-format", "json")
        if r.returncode != 0:
            sys.exit("capture: claude failed")
        keep(sb, "/v1/messages", "claude-code", clientlib.CLAUDE_VERSION)
        if "--codex" in sys.argv[2:]:
            sb.serve([{"text": "Hello."}])
            r = sb.codex("exec", "--skip-git-repo-check", "Say hello.")
            if r.returncode != 0:
                sys.exit("capture: codex failed")
            keep(sb, "/v1/responses", "codex", clientlib.CODEX_VERSION)
    finally:
        sb.close()


main()
