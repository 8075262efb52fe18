#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every command's --json, over a store built from the curated transcripts:
# each output is strict JSON (python3's json.loads on bytes decoded as strict
# UTF-8), every time in it is RFC 3339 with a zone, and the tip of a ref is
# "head" everywhere (no key "node" means it). The command table is read from
# `cmv help`: a command with --json that this script does not run fails it,
# so a new command cannot slip by.
# Usage: json_test.sh PATH/TO/cmv   (CMV_TRANSCRIPTS: the curated transcripts)
set -u
CMV=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=${CMV_TRANSCRIPTS:?set CMV_TRANSCRIPTS to tests/resources/transcripts}
WORK=$(mktemp -d /tmp/cmv-json-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
unset CMV_DIR
export HOME=$WORK/home
command -v python3 >/dev/null || { echo "json_test: needs python3" >&2; exit 1; }

pass=0 fail=0
declare -A covered
check() { # check NAME ARGS...: run cmv ARGS with --json, validate what it prints
	local name=$1; shift
	covered[$1]=1
	"$CMV" "$@" --json >"$WORK/.out" 2>"$WORK/.err"
	local rc=$?
	if [ $rc -ne 0 ]; then
		fail=$((fail + 1)); echo "FAIL: $name: cmv $* --json exited $rc: $(head -c 300 "$WORK/.err")"; return
	fi
	if python3 - "$WORK/.out" "$1" <<'PY'; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name: cmv $* --json"; fi
import json, re, sys
raw = open(sys.argv[1], "rb").read()
doc = json.loads(raw.decode("utf-8"))  # strict: invalid UTF-8 raises
cmd = sys.argv[2]
rfc3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
looks_like_time = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
time_keys = {"created", "updated", "modified", "started", "time", "timestamp", "date"}
bad = []
def walk(x, path):
    if isinstance(x, dict):
        for k, v in x.items():
            # the tip is "head"; "node" is only a search hit's message
            if k == "node" and cmd != "search":
                bad.append(f"{path}.node: the tip is called head")
            if k in time_keys and v is not None and not (isinstance(v, str) and rfc3339.match(v)):
                bad.append(f"{path}.{k}: {v!r} is not RFC 3339 with a zone")
            walk(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            walk(v, f"{path}[{i}]")
    elif isinstance(x, str) and looks_like_time.match(x) and not rfc3339.match(x):
        bad.append(f"{path}: {x!r} looks like a time but is not RFC 3339 with a zone")
walk(doc, "$")
for b in bad[:10]:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
}

# --- a store from the curated transcripts, laid out as this machine's sessions ---
V=2cba43de-c8d2-4a69-add8-9fae3ad93900
mkdir -p "$HOME/.claude/projects/-home-u-vsla" "$HOME/.codex/sessions/2026/06/26"
cp "$T"/claude-code/vsla/*.jsonl "$HOME/.claude/projects/-home-u-vsla/"
cp "$T/codex/agentv/a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl" \
	"$HOME/.codex/sessions/2026/06/26/rollout-2026-06-26T10-00-00-019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl"
check "init" init
check "import a folder" import "$T/claude-code"
check "import a session" import --session "cc/$V"
check "sessions" sessions
check "sessions --all" sessions --all
check "list" list
check "snapshot" snapshot snap1 --from "cc/$V"
check "branch" branch b1 --from snap1 --no-trim
check "trim" trim b1 --name t1
check "append" append b1 --role user --text "é — and one more thing"
check "log" log b1
check "show" show b1
check "info" info b1
check "tree" tree
check "stats" stats b1
check "model" model b1 gpt-4o
check "materialize" materialize b1
check "fit" fit b1
check "switch" switch b1 -m claude-sonnet-4-5
check "ledger" ledger b1
check "ledger --check" ledger b1 --check Bash --args '{"command":"ls"}'
ID=$("$CMV" export t1.trim --format anthropic | grep -o 'recall [0-9a-f]\{7,\}' | head -1 | cut -d' ' -f2)
check "recall ID" recall "$ID"
check "recall --query" recall --query "vsla" --from b1
check "compact" compact b1 --for claude-sonnet-4-5 --offline --branch c1
check "uncompact" uncompact c1
check "handoff" handoff b1 --offline
check "search" search vsla
check "tokens" tokens "$T/claude-code/vsla/$V.jsonl" -m gpt-4o
check "models" models
check "checkout" checkout b1
check "delete" delete snap1
check "push" push "$WORK/out.bundle" b1
check "pull" pull "$WORK/out.bundle"
check "gc" gc --dry-run
check "fsck" fsck
check "hook status" hook status
check "version" version
check "mcp install" mcp install --codex --config "$WORK/codex-home"
check "mcp uninstall" mcp uninstall --codex --config "$WORK/codex-home"
check "sync (no pairs)" sync
check "benchmark" benchmark -s "$V"

# --- every command that prints for a program has --json, and ran above ---
# not here, each for a reason: help (text for people), export (its output is
# the data: JSONL or a request body), tool-schema (always JSON), auto-trim (the
# hooks' entry point: prints nothing, always exits 0), completions (a shell script), proxy (a server: its one
# line on stdout says where it listens), shadow (it needs model endpoints: tests/host/shadow_test.sh parses
# its --json against a scripted server)
exempt=" help export tool-schema auto-trim completions proxy shadow "
for c in $("$CMV" help | sed -n 's/^    \([a-z-]*\) .*/\1/p'); do
	if [[ $exempt == *" $c "* ]]; then continue; fi
	if ! "$CMV" help "$c" | grep -q -- '--json'; then
		fail=$((fail + 1)); echo "FAIL: cmv $c has no --json"
	elif [ -z "${covered[$c]:-}" ]; then
		fail=$((fail + 1)); echo "FAIL: cmv $c --json is not checked here"
	else
		pass=$((pass + 1))
	fi
done

echo "$pass passed, $fail failed"
test "$fail" -eq 0
