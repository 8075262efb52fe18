#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cmv mcp driven by the MCP Inspector's CLI (@modelcontextprotocol/inspector --cli, pinned by
# scripts/setup-mcp) over stdio and Streamable HTTP: the tools listed, search and recall called
# and their results checked, a bad argument answered as an error (the Inspector exits non-zero).
# The Inspector runs offline: it needs no browser and no network for --cli.
# Usage: mcp_inspector_test.sh PATH/TO/cmv SOURCE_DIR
set -u
cmv=$(realpath "$1")
src=$(realpath "$2")
data=${CMV_DATA_DIR:-$src/data}
inspector=$data/mcp/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js
if [ ! -f "$inspector" ]; then
	echo "mcp_inspector_test: the MCP Inspector is not installed in $data/mcp: run scripts/setup-mcp" >&2
	exit 1
fi
tmp=$(mktemp -d)
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
export HOME=$tmp CMV_DIR=$tmp/.cmv MCP_CATALOG_PATH=$tmp/catalog.json
unset CMV_MCP_TOKEN
cd "$tmp" || exit 1
failed=0
fail() {
	echo "FAIL: $*" >&2
	failed=1
}

"$cmv" init >/dev/null && "$cmv" import "$src/examples/claude-code/2cba43de-c8d2-4a69-add8-9fae3ad93900.jsonl" >/dev/null &&
	"$cmv" checkout 2cba43de-c8d2-4a69-add8-9fae3ad93900 >/dev/null || { echo "mcp_inspector_test: the store" >&2; exit 1; }

# check LABEL FILE JS: JS is a boolean expression over r, the Inspector's JSON output.
check() {
	node -e 'const fs = require("fs"); const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
		const hit = (t) => JSON.parse(t.content[0].text);
		process.exit(eval(process.argv[2]) ? 0 : 1);' "$2" "$3" || fail "$1: $3: $(head -c 400 "$2")"
}

exercise() {
	local label=$1
	shift
	node "$inspector" --cli "$@" --method tools/list >"$tmp/list.json" 2>"$tmp/err" || fail "$label: tools/list: $(cat "$tmp/err")"
	check "$label: tools/list" "$tmp/list.json" \
		'JSON.stringify(r.tools.map((t) => t.name).sort()) === JSON.stringify(["branch", "fit", "get", "handoff", "recall", "search", "snapshot", "timeline"]) && r.tools.every((t) => t.inputSchema.type === "object")'
	node "$inspector" --cli "$@" --method tools/call --tool-name search --tool-arg "query=benchmark GPU thread safety" budget_tokens=800 \
		>"$tmp/search.json" 2>"$tmp/err" || fail "$label: search: $(cat "$tmp/err")"
	check "$label: search" "$tmp/search.json" \
		'!r.isError && hit(r).hits.length > 0 && hit(r).hits.every((h) => /^[0-9a-f]{32}$/.test(h.id) && h.tokens > 0 && typeof h.snippet === "string")'
	local id
	id=$(node -e 'console.log(JSON.parse(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).content[0].text).hits[0].id)' "$tmp/search.json")
	node "$inspector" --cli "$@" --method tools/call --tool-name recall --tool-arg "id=$id" >"$tmp/recall.json" 2>"$tmp/err" ||
		fail "$label: recall: $(cat "$tmp/err")"
	check "$label: recall of the first hit" "$tmp/recall.json" '!r.isError && hit(r).length > 0 && hit(r)[0].role === "user"'
	if node "$inspector" --cli "$@" --method tools/call --tool-name recall --tool-arg id=zz >"$tmp/bad.json" 2>&1; then
		fail "$label: recall of a malformed id succeeded"
	fi
	grep -q "must be the 7 or more hex digits" "$tmp/bad.json" || fail "$label: recall of a malformed id: $(head -c 400 "$tmp/bad.json")"
}

exercise stdio "$cmv" mcp

"$cmv" mcp --http 127.0.0.1:0 >"$tmp/server.err" 2>&1 &
server=$!
url=
# until it says where it listens, however loaded the machine: it ends early when the server exits, and
# two minutes silent is a hang
for _ in $(seq 1200); do
	url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/server.err")
	[ -n "$url" ] && break
	kill -0 "$server" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$url" ]; then
	fail "cmv mcp --http did not listen: $(cat "$tmp/server.err")"
else
	exercise http "$url"
fi

[ "$failed" = 0 ] && echo "mcp_inspector_test: ok"
exit "$failed"
