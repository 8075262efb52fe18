#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cmv's MCP server inside the real Claude Code and the real Codex (clients tier, docs/mcp.md).

A store holds the example Claude Code session and a trim of it, whose stubs say `recall ID`.
`cmv mcp install --claude` (and `--codex`) writes the server into the client's configuration;
then the scripted model calls `search` and then `recall` on a stub's id, through the client, and
the test reads the client's next requests: each tool's answer reaches the model verbatim, the
same bytes the server gives when asked directly over stdio (search) and `cmv recall ID` prints
(recall). `cmv mcp uninstall` then leaves the configuration as it was.
Usage: mcp_test.py CMV SOURCE_DIR"""
import json, os, re, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clientlib import Sandbox, check, client, finish

SRC = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..")
SESSION = "2cba43de-c8d2-4a69-add8-9fae3ad93900"
QUERY = "benchmark GPU thread safety"  # words of the example session, none of them in the prompt
PROMPT = "Look through what we did before."


def mcp_call(sb, name, arguments):
    """The server's answer to one tools/call, asked over stdio as a client would."""
    msgs = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "mcp_test", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments}}]
    r = subprocess.run([sb.cmv, "--store", os.path.join(sb.store, ".cmv"), "mcp"], capture_output=True, text=True,
                       input="".join(json.dumps(m) + "\n" for m in msgs), env=sb.env(), timeout=60)
    for line in r.stdout.splitlines():
        m = json.loads(line)
        if m.get("id") == 2:
            return m["result"]["content"][0]["text"]
    sys.exit(f"cmv mcp gave no answer to tools/call {name}: {r.stderr}")


def texts_of(content):
    """A tool result's content as the texts the model reads."""
    if isinstance(content, str):
        return [content]
    return [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") in ("text", "input_text")]


def store_with_stub(sb):
    sb.run_cmv("import", os.path.join(SRC, "examples", "claude-code", SESSION + ".jsonl"))
    sb.run_cmv("trim", SESSION, "-n", "trimmed")
    stub = re.search(r"recall ([0-9a-f]{7,32})", sb.run_cmv("export", "trimmed.trim").stdout)
    check(stub is not None, "the trimmed branch has a stub")
    sb.run_cmv("checkout", SESSION)
    stub = stub.group(1) if stub else "0"
    recall = sb.run_cmv("recall", stub).stdout
    return stub, recall


def claude_part():
    sb = Sandbox("mcp-claude")
    try:
        stub, recall = store_with_stub(sb)
        search = mcp_call(sb, "search", {"query": QUERY, "budget_tokens": 800, "branch": SESSION})
        check(len(json.loads(search)["hits"]) > 0, "claude: the search finds hits in the session")
        settings = os.path.join(sb.claude_dir, "settings.json")
        r = sb.run_cmv("mcp", "install", "--claude")
        check(r.returncode == 0, "claude: cmv mcp install --claude")
        cfg = json.load(open(os.path.join(sb.claude_dir, ".claude.json")))
        check("cmv" in cfg.get("mcpServers", {}), "claude: .claude.json has mcpServers.cmv")
        sb.serve([{"tool": "mcp__cmv__search", "input": {"query": QUERY, "budget_tokens": 800, "branch": SESSION}},
                  {"tool": "mcp__cmv__recall", "input": {"id": stub}},
                  {"text": "Both read."}])
        r = sb.claude("-p", PROMPT, "--output-format", "json",
                      "--allowedTools", "mcp__cmv__search,mcp__cmv__recall")
        out = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}
        check(out.get("result") == "Both read.", f"claude: the run ends with the script's reply ({out.get('result')!r})")
        reqs = sb.main_requests("/v1/messages")
        check(len(reqs) == 3, f"claude: three requests reached the model ({len(reqs)})")
        # Claude Code 2.1.328 defers MCP tools: they are named to the model (ToolSearch loads their schemas)
        # rather than listed among the tools, and a call to one runs all the same.
        body = json.dumps(reqs[0]["body"]) if reqs else ""
        check("mcp__cmv__search" in body and "mcp__cmv__recall" in body,
              "claude: the model is told of cmv's search and recall")
        for k, (want, what) in enumerate(((search, "search"), (recall, "recall")), start=1):
            got = []
            if len(reqs) > k:
                last = reqs[k]["body"]["messages"][-1]
                got = [t for b in last.get("content", []) if isinstance(b, dict) and b.get("type") == "tool_result"
                       for t in texts_of(b.get("content", ""))]
            check(got and (got[0] == want or got[0] + "\n" == want),
                  f"claude: {what}'s answer reaches the model's next request verbatim ({len(got[0]) if got else 0} "
                  f"of {len(want)} bytes)")
        r = sb.run_cmv("mcp", "uninstall", "--claude")
        cfg = json.load(open(os.path.join(sb.claude_dir, ".claude.json")))
        hooks = json.load(open(settings)) if os.path.exists(settings) else {}
        check(r.returncode == 0 and "cmv" not in cfg.get("mcpServers", {}) and sb.cmv not in json.dumps(hooks),
              "claude: cmv mcp uninstall removes the server and the hook")
    finally:
        sb.close()


def codex_part():
    sb = Sandbox("mcp-codex")
    try:
        stub, recall = store_with_stub(sb)
        search = mcp_call(sb, "search", {"query": QUERY, "budget_tokens": 800, "branch": SESSION})
        # Codex offers an MCP server's tools in a namespace named after it (Responses' namespace tools).
        sb.serve([{"tool": "search", "namespace": "mcp__cmv",
                   "input": {"query": QUERY, "budget_tokens": 800, "branch": SESSION}},
                  {"tool": "recall", "namespace": "mcp__cmv", "input": {"id": stub}},
                  {"text": "Both read."}])
        config = os.path.join(sb.codex_home, "config.toml")
        before = open(config).read()
        r = sb.run_cmv("mcp", "install", "--codex")
        check(r.returncode == 0 and "[mcp_servers.cmv]" in open(config).read(), "codex: cmv mcp install --codex")
        r = sb.codex("exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", PROMPT)
        check(r.returncode == 0 and "Both read." in r.stdout, "codex: the run ends with the script's reply")
        reqs = sb.main_requests("/v1/responses")
        check(len(reqs) == 3, f"codex: three requests reached the model ({len(reqs)})")
        ns = [t for t in reqs[0]["body"]["tools"] if t.get("name") == "mcp__cmv"] if reqs else []
        sub = [t.get("name") for t in ns[0].get("tools", [])] if ns else []
        check("search" in sub and "recall" in sub, f"codex: the model is offered cmv's search and recall ({sub})")
        for k, (want, what) in enumerate(((search, "search"), (recall, "recall")), start=1):
            got = []
            if len(reqs) > k:
                outs = [it for it in reqs[k]["body"].get("input", []) if it.get("type") == "function_call_output"]
                if outs:
                    # Codex puts "Wall time: ...\nOutput:" before the server's text: one string joined by a
                    # newline, or a list of items with the server's text as an item of its own
                    o = outs[-1].get("output", "")
                    got = texts_of(o) if isinstance(o, list) else [o.split("\nOutput:\n", 1)[-1]]
            ok = any(g == want or g + "\n" == want for g in got)
            check(ok, f"codex: {what}'s answer reaches the model's next request verbatim ({len(want)} bytes)")
            if not ok:
                print(f"codex: {what}: sent {got!r:.400}", file=sys.stderr)
        r = sb.run_cmv("mcp", "uninstall", "--codex")
        check(r.returncode == 0 and open(config).read() == before, "codex: cmv mcp uninstall leaves config.toml as it was")
    finally:
        sb.close()


client("claude")
client("codex")
claude_part()
codex_part()
finish("mcp_test")
