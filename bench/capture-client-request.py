#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Capture the request a real client sends, for `cmv-bench proxy` (docs/proxy.md).

Transcripts do not record a client's tool definitions, and the clients are proprietary, so
their requests are never committed: this runs the pinned Claude Code (and Codex) of
data/clients once, headless, against the scripted loopback model (tests/support/model_server.py)
and keeps the first request of its main loop (the one that offers tools) under data/
(gitignored). cmv-bench proxy reads data/client-requests/claude-code.json when it is there.
Then it runs the client once more through `cmv proxy` and prints the tool definitions' tokens
of that first request as the client sent them and as the proxy sent them upstream (every
tool a stub: what tool paging saves at most, before the model calls anything).

Usage: bench/capture-client-request.py CMV_BINARY [--codex]
Nothing leaves the machine: the client talks to 127.0.0.1 with a fake key.
"""
import json, os, re, subprocess, sys

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


def tool_tokens(sb, tools, model):
    r = subprocess.run([sb.cmv, "tokens", "--model", model, "--json"], input=json.dumps(tools, separators=(",", ":")),
                       capture_output=True, text=True, env=sb.env(), timeout=120)
    return json.loads(r.stdout)["tokens"] if r.returncode == 0 else None


def through_proxy(sb, name, path, run, model):
    """The client once more, through cmv proxy: its first request's tools as sent and as paged."""
    sb.serve([{"text": "Hello."}])
    px = subprocess.Popen([sb.cmv, "proxy", "--listen", "127.0.0.1:0", "--quiet",
                           "--upstream", f"anthropic=http://127.0.0.1:{sb.port}",
                           "--upstream", f"openai=http://127.0.0.1:{sb.port}/v1"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=sb.store, env=sb.env())
    try:
        sb.port = int(re.search(r":(\d+)$", px.stdout.readline().strip()).group(1))
        with open(os.path.join(sb.codex_home, "config.toml"), "w") as f:
            f.write(f'model = "gpt-5"\nopenai_base_url = "http://127.0.0.1:{sb.port}/v1"\n')
        run()
    finally:
        px.kill()
        px.wait()
    with open(os.path.join(OUT, name + ".json")) as f:
        client_tools = json.load(f)["body"]["tools"]
    reqs = sb.main_requests(path)
    if not reqs:
        sys.exit(f"capture: {name} through cmv proxy: no request reached the model")
    up = [t for t in reqs[0]["body"]["tools"] if t.get("name") != "cmv_recall"]
    a, b = tool_tokens(sb, client_tools, model), tool_tokens(sb, up, model)
    if a and b is not None:
        print(f"{name} through cmv proxy, first request: tool definitions {a} tokens as sent, {b} upstream "
              f"({100 * (1 - b / a):.1f}% saved before any call; {model}'s count, the recall tool left out)")


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
        through_proxy(sb, "claude-code", "/v1/messages", lambda: sb.claude("-p", "Say hello.", "--output-format", "json"),
                      "claude-sonnet-4-5")
        if "--codex" in sys.argv[2:]:
            sb.serve([{"text": "Hello."}])
            r = sb.codex("exec", "--skip-git-repo-check", "Say hello.")
            if r.returncode != 0:
                sys.exit("capture: codex failed")
            keep(sb, "/v1/responses", "codex", clientlib.CODEX_VERSION)
            through_proxy(sb, "codex", "/v1/responses",
                          lambda: sb.codex("exec", "--skip-git-repo-check", "Say hello."), "gpt-5")
    finally:
        sb.close()


main()
