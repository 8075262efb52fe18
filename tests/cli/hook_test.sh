#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Claude Code hooks in a running session (docs/trim.md, "Hooks"): cmv
# auto-trim fed what Claude Code sends, on a session laid out as in a real
# ~/.claude, that grows between firings as an agent's does. Each failure
# case of the hooks is a case here.
# Usage: hook_test.sh PATH/TO/cmv
set -u
CMV=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/cmv-hook-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
unset CMV_DIR CMV_HOOK_LOG CODEX_HOME
export HOME=$WORK/home CLAUDE_CONFIG_DIR=$WORK/home/.claude
command -v python3 >/dev/null || { echo "hook_test: needs python3" >&2; exit 1; }

pass=0 fail=0
out="" err="" rc=0
run() { out=$("$CMV" "$@" 2>"$WORK/.err"); rc=$?; err=$(cat "$WORK/.err"); }
ok() { # ok NAME CONDITION...
	local name=$1; shift
	if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; echo "  rc=$rc"; echo "  out: ${out:0:400}"; echo "  err: ${err:0:400}"; fi
}
has() { grep -qF -- "$1" <<<"$2"; }
# what the last run logged: a field of the log's last line
logged() { tail -1 "$WORK/.cmv/auto-trim.log" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }
loglines() { wc -l <"$WORK/.cmv/auto-trim.log"; }
# fire JSON ARGS... : auto-trim as Claude Code runs it, the input on stdin
fire() { out=$(printf '%s' "$1" | "$CMV" --store "$WORK/.cmv" auto-trim "${@:2}" 2>"$WORK/.err"); rc=$?; err=$(cat "$WORK/.err"); }
# grow FILE BYTES : the agent goes on: a tool call, its result of BYTES bytes, and an answer
grow() {
	python3 - "$1" "$2" <<'PY'
import json, sys, uuid
path, size = sys.argv[1], int(sys.argv[2])
last = [json.loads(l) for l in open(path) if l.strip()][-1]
base = {k: last[k] for k in ("isSidechain", "userType", "cwd", "sessionId", "version") if k in last}
parent = last["uuid"]
def rec(kind, message):
    global parent
    r = dict(base, parentUuid=parent, type=kind, message=message, uuid=str(uuid.uuid4()),
             timestamp="2026-01-01T00:00:00.000Z")
    parent = r["uuid"]
    return json.dumps(r, separators=(",", ":"))
tid = "toolu_" + uuid.uuid4().hex[:20]
lines = [rec("assistant", {"role": "assistant", "model": "claude-sonnet-4-5", "content": [
             {"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": "cat big.log"}}]}),
         rec("user", {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid,
             "content": ("log line %d\n" * (size // 14 + 1) % tuple(range(size // 14 + 1)))[:size]}]}),
         rec("assistant", {"role": "assistant", "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "Read it."}]})]
with open(path, "a") as f:
    f.write("\n".join(lines) + "\n")
PY
}
nrefs() { "$CMV" --store "$WORK/.cmv" list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d) if isinstance(d, list) else sum(len(v) for v in d.values() if isinstance(v, list)))'; }

SRC=$HERE/../resources/transcripts/claude-code/vsla/6dc88126-2048-43a9-b5c2-b9747d5a0301.jsonl
SID=6dc88126-2048-43a9-b5c2-b9747d5a0301
PROJ=$CLAUDE_CONFIG_DIR/projects/-home-kenth56-vsla
LIVE=$PROJ/$SID.jsonl
mkdir -p "$PROJ" && cp "$SRC" "$LIVE" && chmod 644 "$LIVE"
run init; ok "init" test $rc -eq 0
IN="{\"session_id\":\"$SID\",\"transcript_path\":\"$LIVE\",\"cwd\":\"/home/kenth56/vsla\""
PRE="$IN,\"hook_event_name\":\"PreCompact\",\"trigger\":\"auto\"}"
POST="$IN,\"hook_event_name\":\"PostToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"ls\"},\"tool_response\":{\"stdout\":\"a\\nb\",\"stderr\":\"\",\"interrupted\":false}}"

# --- the first case: the session's branch follows what the hook wrote ---
run import --latest; ok "the session imports before any hook" test $rc -eq 0
fire "$PRE"; ok "PreCompact exits 0" test $rc -eq 0
ok "PreCompact trims" test "$(logged outcome)" = trimmed
ok "the log names the trigger" test "$(logged trigger)" = PreCompact
ok "the session shrank" test "$(wc -c <"$LIVE")" -lt "$(wc -c <"$SRC")"
ok "it kept its mode" test "$(stat -c %a "$LIVE")" = 644
run import --latest; ok "import --latest after the hook: no divergence" test $rc -eq 0
ok "import --latest: nothing new" has unchanged "$out"
run trim --latest --name t1; ok "trim --latest after the hook" test $rc -eq 0
run snapshot s1 --latest; ok "snapshot --latest after the hook" test $rc -eq 0
grow "$LIVE" 3000
run import --latest; ok "the agent went on: import --latest moves forward" test $rc -eq 0
ok "import --latest: updated" has updated "$out"

# --- growth: --check-size waits for the file to grow past the last trim ---
BEFORE=$(loglines); cp "$LIVE" "$WORK/live.1"
fire "$POST" --check-size --size 1000; ok "PostToolUse exits 0" test $rc -eq 0
ok "grown by less than --growth: the session is untouched" cmp -s "$LIVE" "$WORK/live.1"
ok "and nothing is logged" test "$(loglines)" -eq "$BEFORE"
printf '%s' "$POST" | CMV_HOOK_LOG=all "$CMV" --store "$WORK/.cmv" auto-trim --check-size --size 1000 2>/dev/null
ok "CMV_HOOK_LOG=all logs it as not grown" test "$(logged outcome)" = "not grown"
grow "$LIVE" 70000
fire "$POST" --check-size --size 1000
ok "grown past --growth (64 KiB): trimmed" test "$(logged outcome)" = trimmed
run import --latest; ok "and import --latest still follows" test $rc -eq 0
grow "$LIVE" 3000; grow "$LIVE" 3000
fire "$PRE"
ok "PreCompact trims whatever the growth" test "$(logged outcome)" = trimmed

# --- 100 firings: the refs stay as after one ---
run tree; TREE1=$(wc -l <<<"$out"); REFS1=$(nrefs)
ok "one rolling ref for the session" test "$("$CMV" list | grep -c "auto/$SID")" -eq 1
for i in $(seq 100); do
	[ $((i % 10)) -eq 0 ] && grow "$LIVE" 9000
	printf '%s' "$POST" | "$CMV" --store "$WORK/.cmv" auto-trim --check-size --size 1000 --keep 2 2>/dev/null
done
ok "100 firings trimmed a few times" test "$(grep -c '"outcome":"trimmed"' "$WORK/.cmv/auto-trim.log")" -ge 4
ok "after 100 firings the refs are as many" test "$(nrefs)" -eq "$REFS1"
run tree; ok "and cmv tree as long" test "$(wc -l <<<"$out")" -eq "$TREE1"
ok "backups stay pruned to --keep" test "$(ls "$WORK/.cmv/backups/$SID/"*.jsonl | wc -l)" -eq 2
run log "auto/$SID"; ok "the rolling ref keeps one record per trim" test "$(wc -l <<<"$out")" -ge 4
run import --latest; ok "after 100 firings import --latest works" test $rc -eq 0
run gc; ok "gc" test $rc -eq 0
STUB=$(grep -o 'recall [0-9a-f]\{7,\}' "$LIVE" | head -1 | cut -d' ' -f2)
run recall "$STUB"; ok "a stub of the first trim still recalls after gc" test $rc -eq 0 -a -n "$out"

# --- what the hook refuses, leaving the file byte for byte ---
cp "$LIVE" "$WORK/live.2"; NB=$(ls "$WORK/.cmv/backups" | wc -l)
fire "{\"session_id\":\"abc\\u0000../../x\",\"transcript_path\":\"$LIVE\",\"hook_event_name\":\"PreCompact\"}"
ok "a NUL in the session id: exits 0" test $rc -eq 0
ok "a NUL in the session id: refused" has "NUL" "$(logged error)"
ok "a NUL in the session id: the session is byte-identical" cmp -s "$LIVE" "$WORK/live.2"
OTHER=0a0a0a0a-1111-4222-8333-444444444444
fire "{\"session_id\":\"$OTHER\",\"transcript_path\":\"$LIVE\",\"hook_event_name\":\"PreCompact\"}"
ok "another session's id: refused" has "not the hook's session_id" "$(logged error)"
ok "another session's id: the session is byte-identical" cmp -s "$LIVE" "$WORK/live.2"
ok "another session's id: no backup under it" test ! -e "$WORK/.cmv/backups/$OTHER"
mkdir -p "$WORK/elsewhere"; cp "$SRC" "$WORK/elsewhere/x.jsonl"; ln -s "$WORK/elsewhere/x.jsonl" "$PROJ/$SID-link.jsonl"
fire "{\"session_id\":\"$SID\",\"transcript_path\":\"$PROJ/$SID-link.jsonl\",\"hook_event_name\":\"PreCompact\"}"
ok "a link to a file outside the projects folder: refused" has "not inside Claude Code's projects folder" "$(logged error)"
ok "that file is untouched" cmp -s "$WORK/elsewhere/x.jsonl" "$SRC"
ok "and no backup of it is kept" test -z "$(grep -rl "$WORK/elsewhere" "$WORK/.cmv/backups")"
rm "$PROJ/$SID-link.jsonl" # (else it is the newest session --latest finds)
fire "{\"session_id\":\"$SID\",\"transcript_path\":\"$WORK/elsewhere/x.jsonl\",\"hook_event_name\":\"PreCompact\"}"
ok "a path outside the projects folder: refused" has "not inside" "$(logged error)"
ok "the backups are as many as before" test "$(ls "$WORK/.cmv/backups" | wc -l)" -eq "$NB"
ok "and the session is byte-identical" cmp -s "$LIVE" "$WORK/live.2"

# --- a PostToolUse input of 5 MB (an Edit of a big file) ---
python3 - "$SID" "$LIVE" >"$WORK/big.json" <<'PY'
import json, sys
body = "".join("line %d: \"quoted\" \\ tab\t and ünïcode\n" % i for i in range(120000))
print(json.dumps({"session_id": sys.argv[1], "transcript_path": sys.argv[2], "cwd": "/home/kenth56/vsla",
                  "hook_event_name": "PostToolUse", "tool_name": "Edit",
                  "tool_input": {"file_path": "/x.txt", "old_string": "a", "new_string": "b"},
                  "tool_response": {"filePath": "/x.txt", "originalFile": body, "structuredPatch": [{"lines": body.split("\n")[:50000]}]}}))
PY
ok "the big input is over 5 MB" test "$(wc -c <"$WORK/big.json")" -gt 5000000
grow "$LIVE" 70000
"$CMV" --store "$WORK/.cmv" auto-trim --check-size --size 1000 <"$WORK/big.json" 2>/dev/null
ok "a 5 MB PostToolUse input still trims" test "$(logged outcome)" = trimmed
run import --latest; ok "import --latest after it" test $rc -eq 0

# --- restore: the mode kept, only inside the projects folder, the branch follows ---
chmod 640 "$LIVE"
run hook restore "$SID"; ok "hook restore" test $rc -eq 0
ok "restore keeps the file's mode" test "$(stat -c %a "$LIVE")" = 640
run import --latest; ok "import --latest after a restore" test $rc -eq 0
ok "import --latest after a restore: nothing new" has unchanged "$out"
cp "$LIVE" "$WORK/live.3"
fire "$POST" --check-size --size 1000
ok "after a restore --check-size waits for growth" cmp -s "$LIVE" "$WORK/live.3"
mkdir -p "$WORK/.cmv/backups/$OTHER"; cp "$SRC" "$WORK/.cmv/backups/$OTHER/20990101T000000Z.jsonl"
printf '%s' "$WORK/elsewhere/victim.jsonl" >"$WORK/.cmv/backups/$OTHER/path"
run hook restore "$OTHER"; ok "restore over a path outside the projects folder is refused" test $rc -eq 1
ok "and names it" has "not a session file in Claude Code's projects folder" "$err"
ok "nothing was written there" test ! -e "$WORK/elsewhere/victim.jsonl"

# --- hook install passes --size and --growth to the after-tool-use hook only ---
run --store "$WORK/.cmv" hook install --settings "$WORK/settings.json" --size 700000 --growth 131072
ok "hook install --growth: exits 0" test $rc -eq 0
post_cmd=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["hooks"]; print(h["PostToolUse"][0]["hooks"][0]["command"]); print(h["PreCompact"][0]["hooks"][0]["command"])' "$WORK/settings.json")
ok "hook install --growth: in the PostToolUse command" has "--check-size --size 700000 --growth 131072" "$post_cmd"
ok "hook install --growth: not in the PreCompact command" test "$(grep -c -- --growth <<<"$post_cmd")" -eq 1
run --store "$WORK/.cmv" hook install --settings "$WORK/settings.json" --growth -5
ok "hook install --growth -5: a usage error" test $rc -eq 2

echo "$pass passed, $fail failed"
test $fail -eq 0
