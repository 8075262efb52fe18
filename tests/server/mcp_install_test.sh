#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cmv mcp install|uninstall for Claude Code, Codex and Gemini CLI: what install writes, that a
# second install changes nothing, that uninstall takes away exactly that (others' entries stay),
# and that a file not ours to edit is left alone. Usage: mcp_install_test.sh PATH/TO/cmv
set -u
cmv=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home CLAUDE_CONFIG_DIR=$tmp/claude CODEX_HOME=$tmp/codex GEMINI_CLI_HOME=$tmp/gemini CMV_DIR=$tmp/.cmv
mkdir -p "$HOME" "$CLAUDE_CONFIG_DIR" "$CODEX_HOME" "$GEMINI_CLI_HOME"
pass=0 fail=0
ok() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1" >&2; fi; }
j() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

"$cmv" init >/dev/null
# others' entries, which must survive
printf '{"theme":"dark","hooks":{"Stop":[{"hooks":[{"type":"command","command":"echo theirs"}]}]}}' >"$CLAUDE_CONFIG_DIR/settings.json"
printf '{"mcpServers":{"other":{"command":"x"}},"userID":"u"}' >"$CLAUDE_CONFIG_DIR/.claude.json"
printf 'model = "gpt-5"\n\n[mcp_servers.other]\ncommand = "x"\n' >"$CODEX_HOME/config.toml"
cp "$CODEX_HOME/config.toml" "$tmp/codex.orig"

ok "install --claude" '"$cmv" mcp install --claude >/dev/null'
ok "claude: mcpServers.cmv runs cmv mcp on this store" '[ "$(j "$CLAUDE_CONFIG_DIR/.claude.json" "\" \".join(d[\"mcpServers\"][\"cmv\"][\"args\"])")" = "--store $tmp/.cmv mcp" ]'
ok "claude: other server kept" '[ "$(j "$CLAUDE_CONFIG_DIR/.claude.json" "d[\"mcpServers\"][\"other\"][\"command\"]")" = x ]'
ok "claude: the hook on 3 events" '[ "$(j "$CLAUDE_CONFIG_DIR/settings.json" "sum(\"mcp hook\" in h[\"command\"] for e in d[\"hooks\"].values() for g in e for h in g[\"hooks\"])")" = 3 ]'
cp "$CLAUDE_CONFIG_DIR/settings.json" "$tmp/s1"
ok "install twice changes nothing" '"$cmv" mcp install --claude >/dev/null && cmp -s "$tmp/s1" "$CLAUDE_CONFIG_DIR/settings.json"'
ok "uninstall --claude" '"$cmv" mcp uninstall --claude >/dev/null'
ok "claude: ours gone, theirs kept" '[ "$(j "$CLAUDE_CONFIG_DIR/settings.json" "d[\"theme\"] + str(len(d[\"hooks\"][\"Stop\"])) + \",\".join(d[\"hooks\"])")" = "dark1Stop" ]'
ok "claude: cmv server gone, other kept" '[ "$(j "$CLAUDE_CONFIG_DIR/.claude.json" "\",\".join(sorted(d[\"mcpServers\"]))")" = other ]'

ok "install --codex" '"$cmv" mcp install --codex >/dev/null && grep -q "^\[mcp_servers.cmv\]" "$CODEX_HOME/config.toml"'
ok "codex: the args name the store" 'grep -q "args = \[\"--store\", \"$tmp/.cmv\", \"mcp\"\]" "$CODEX_HOME/config.toml"'
ok "uninstall --codex gives the file back byte for byte" '"$cmv" mcp uninstall --codex >/dev/null && cmp -s "$tmp/codex.orig" "$CODEX_HOME/config.toml"'
printf '[mcp_servers.cmv]\ncommand = "someone-else"\n' >>"$CODEX_HOME/config.toml"
ok "codex: a [mcp_servers.cmv] not ours is refused" '! "$cmv" mcp install --codex 2>/dev/null'

ok "install --gemini" '"$cmv" mcp install --gemini >/dev/null && [ "$(j "$GEMINI_CLI_HOME/settings.json" "d[\"mcpServers\"][\"cmv\"][\"args\"][2]")" = mcp ]'
ok "uninstall --gemini" '"$cmv" mcp uninstall --gemini >/dev/null && [ "$(j "$GEMINI_CLI_HOME/settings.json" "\"mcpServers\" in d")" = False ]'

printf 'not json' >"$CLAUDE_CONFIG_DIR/.claude.json"
ok "a file that is not JSON is refused and left as it is" '! "$cmv" mcp install --claude 2>/dev/null && [ "$(cat "$CLAUDE_CONFIG_DIR/.claude.json")" = "not json" ]'
ok "one agent at a time" '! "$cmv" mcp install --claude --codex 2>/dev/null'
# the hook never fails Claude Code, whatever it is given
ok "hook: bad input exits 0" 'echo "{" | "$cmv" mcp hook 2>/dev/null'
ok "hook: a path outside the projects folder is refused, exit 0" 'echo "{\"session_id\":\"abc\",\"transcript_path\":\"/etc/passwd\"}" | "$cmv" mcp hook 2>&1 | grep -q "not a session below"'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
