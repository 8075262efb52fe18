#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CLI tests: each case runs a command and checks its exit code and output.
# Usage: cli_test.sh PATH/TO/cmv
set -u
CMV=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/cmv-cli-XXXXXX)
# Only this shell cleans up: a child it forked runs this trap too when a signal reaches it before it has
# exec'd its command (bash keeps the trap until then), and it once removed $WORK in the middle of the run.
trap '[ "$BASHPID" != $$ ] || { test -n "${LLM_PID:-}" && kill "$LLM_PID" 2>/dev/null; rm -rf "$WORK"; }' EXIT
cd "$WORK" || exit 1
unset CMV_DIR
export CMV_NOW=1767225600   # 2026-01-01 00:00:00 UTC: stable times in output

pass=0 fail=0
out="" err="" rc=0
run() { # run ARGS... : capture stdout, stderr, exit code
	out=$("$CMV" "$@" 2>"$WORK/.err"); rc=$?; err=$(cat "$WORK/.err")
}
ok() { # ok NAME CONDITION...
	local name=$1; shift
	if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; echo "  rc=$rc"; echo "  out: ${out:0:400}"; echo "  err: ${err:0:400}"; fi
}
has() { grep -qF -- "$1" <<<"$2"; }
# up FILE PATTERN PID: wait until the server PID has written PATTERN to FILE (its port, its "listening on"
# line), which it does once it listens. No time is assumed: it ends when the line is there, or the server
# has exited; one silent for two minutes is hung, and is killed (SIGKILL: no trap runs in a child not yet
# exec'd). FILE must not exist before the server starts, or a line an earlier server wrote is read.
up() {
	local _
	for _ in $(seq 1200); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	grep -q -- "$2" "$1" 2>/dev/null && return 0
	kill -KILL "$3" 2>/dev/null
	echo "cli_test: the server ($3) never wrote '$2' to $1" >&2
	return 1
}
# JSON is checked by an independent parser: python3 or node, whichever is there.
if command -v python3 >/dev/null; then
	# bytes decoded strictly: under the C locale sys.stdin would let invalid UTF-8 through
	is_json() { python3 -c 'import json,sys; json.loads(sys.stdin.buffer.read().decode("utf-8"))' <<<"$1" 2>/dev/null; }
elif command -v node >/dev/null; then
	is_json() { node -e 'JSON.parse(require("fs").readFileSync(0,"utf8"))' <<<"$1" 2>/dev/null; }
else
	echo "cli_test: needs python3 or node to check JSON output" >&2; exit 1
fi
command -v sqlite3 >/dev/null || { echo "cli_test: needs sqlite3 (scripts/setup installs it)" >&2; exit 1; }

# --- usage and help work outside a store ---
run; ok "no command is a usage error" test $rc -eq 2
run help; ok "help lists commands" test $rc -eq 0 -a -n "$(has snapshot "$out" && echo y)"
run snapshot --help; ok "command help outside a store" test $rc -eq 0
ok "help is generated from the option table" has "--description TEXT" "$out"
run log; ok "no store: error" test $rc -eq 1
ok "no store: says how to fix it" has "cmv init" "$err"
run frobnicate; ok "unknown command: usage error" test $rc -eq 2
ok "unknown command: named" has "'frobnicate' is not a cmv command" "$err"

# --- init and the main job ---
run init; ok "init" test $rc -eq 0
ok "init says where" has "$WORK/.cmv" "$out"
run init; ok "init again is harmless" test $rc -eq 0
ok "init again says so" has "Reinitialized" "$out"
run import --format cmv "$HERE/../../examples/sample.jsonl"
ok "import sample" test $rc -eq 0
ok "import names the branch" has "branch 'sample' created" "$out"
run import --format cmv "$HERE/../../examples/sample.jsonl" --json
ok "re-import: unchanged" has '"outcome":	"unchanged"' "$out"
ok "import --json is JSON" is_json "$out"
ok "import --json has records" has '"records":' "$out"
run log -n 2; ok "log -n" test $rc -eq 0 -a "$(grep -c '^[0-9a-f]\{12\} ' <<<"$out")" -eq 2
run log --json; ok "log --json" is_json "$out"
# a preview cut inside a two-byte character, and bytes that are not UTF-8: still strict JSON
printf 'a%.0s' 1 >"$WORK/.mb"; for i in $(seq 300); do printf '\xc3\xa9' >>"$WORK/.mb"; done
run append --role user utf8 <"$WORK/.mb"
ok "append multi-byte text" test $rc -eq 0
run log utf8 --json; ok "log --json cut inside a character is strict UTF-8" is_json "$out"
run snapshot before-trim -d "first checkpoint" -t demo,v1
ok "snapshot" test $rc -eq 0
run snapshot before-trim; ok "snapshot name taken" test $rc -eq 1
ok "snapshot name taken: says so" has "already exists" "$err"
run branch experiment --from before-trim --no-trim; ok "branch from snapshot (untrimmed)" test $rc -eq 0
run branch bad..name; ok "bad branch name" test $rc -eq 1
ok "bad branch name: says why" has "invalid name" "$err"
run branch early --at sample~3; ok "branch --at REF~N" test $rc -eq 0
run checkout experiment; ok "checkout" test $rc -eq 0
run append --role user --text "and one more thing"; ok "append to current" test $rc -eq 0
run append --role wizard --text x; ok "append bad role: usage" test $rc -eq 2
printf 'from stdin\n' | "$CMV" append --role assistant >/dev/null 2>&1; rc=$?
ok "append from stdin" test $rc -eq 0
run list; ok "list marks current" has "* branch" "$out"
run list --json; ok "list --json" is_json "$out"
run tree; ok "tree shows lineage" has "└── experiment" "$out"
run tree --json; ok "tree --json nests children" has '"children"' "$out"
run info before-trim; ok "info snapshot" has "tags:     demo, v1" "$out"
run info --json; ok "info --json" is_json "$out"
run search "heap-buffer-overflow"; ok "search finds tool output" has "heap-buffer-overflow" "$out"
run search "segfault*" --raw --json; ok "search --json" is_json "$out"
run search --raw 'AND ('; ok "bad raw query is an error" test $rc -eq 1
id=$("$CMV" log --json sample | grep -o '"id":[^"]*"[0-9a-f]*"' | head -1 | grep -o '[0-9a-f]\{32\}')
run show "${id:0:7}"; ok "show by 7-digit prefix" has "node $id" "$out"
run show "${id:0:6}"; ok "6 digits is not enough" test $rc -eq 1
run show nothing-here; ok "show unknown ref" test $rc -eq 1
ok "unknown ref named" has "nothing-here" "$err"
run export sample -o "$WORK/out.jsonl"; ok "export" test $rc -eq 0 -a -s "$WORK/out.jsonl"
ok "export has every line" test "$(wc -l <"$WORK/out.jsonl")" -eq "$(grep -c . "$HERE/../../examples/sample.jsonl")"
run fsck; ok "fsck clean" test $rc -eq 0
run delete experiment; ok "cannot delete current" test $rc -eq 1
run checkout sample; run delete experiment; ok "delete" test $rc -eq 0
run gc --json; ok "gc" test $rc -eq 0
ok "gc removed the appended messages" has '"nodes_removed":	2' "$out"
run fsck --json; ok "fsck --json" has '"ok":	true' "$out"

# --- a damaged store: fsck exits 1 and names the problem ---
sqlite3 .cmv/store.db "UPDATE blobs SET data = CAST('x' AS BLOB) WHERE rowid = 1"
run fsck; ok "fsck finds a corrupt blob" test $rc -eq 1
ok "fsck names it" has "blob_mismatch" "$out"

# --- bad input changes nothing ---
before=$(ls -l .cmv/store.db | awk '{print $5}')
printf '{"role":"user","content":"ok"}\n{"role":"user","content":\n' >"$WORK/bad.jsonl"
run import "$WORK/bad.jsonl"; ok "bad import fails" test $rc -eq 1
ok "bad import names file:line" has "bad.jsonl:2:" "$err"
run list --json; ok "bad import made no branch" test -z "$(grep -F '"bad"' <<<"$out")"
run import --max-line-bytes -5 "$WORK/bad.jsonl"; ok "bad option value: usage" test $rc -eq 2

# --- a real Claude Code session: detected, imported, written back byte for byte ---
# Real sessions from the curated set the project ships (tests/resources/transcripts, see its NOTICE.md).
T=${CMV_TRANSCRIPTS:-$HERE/../resources/transcripts}
CC=$T/claude-code/entireio-cli/39-7737088f0a-0__9b76dc0f-dc1b-4822-ac56-53cfa3fbc032.jsonl
test -f "$CC" || { echo "cli_test: the transcripts are missing ($CC)" >&2; exit 1; }
run import "$CC"; ok "claude code session detected and imported" has "12 records" "$out"
run list --sessions; ok "the session is listed" has "cc/9b76dc0f-dc1b-4822-ac56-53cfa3fbc032" "$out"
run export --session 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032 -o "$WORK/cc.jsonl"
ok "export --session" test $rc -eq 0
ok "export --session is byte-identical" cmp -s "$WORK/cc.jsonl" "$CC"
run log 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032; ok "the session's branch" has "Created \`SECRETS.md\`" "$out"
run export --session no-such-session; ok "unknown session" test $rc -eq 1

# --- models, counts per model, a branch's model ---
export CMV_MODELS=
run models; ok "models lists the registry" has "claude-sonnet-4-5" "$out"
run models --json; ok "models --json is JSON" is_json "$out"
ok "models --json has prices" has '"cache_write"' "$out"
printf 'Hello, World! How are you today?' >"$WORK/hello.txt"
run tokens --model gpt-4o "$WORK/hello.txt"; ok "tokens --model exact" test "$out" = 9
run tokens --tokenizer o200k_base "$WORK/hello.txt"; ok "tokens --tokenizer" test "$out" = 9
run tokens --model claude-sonnet-4-5 --json "$WORK/hello.txt"
ok "tokens --model approximate says so" has '"exact":	false' "$out"
ok "tokens --model approximate rounds up" has '"tokens":	12' "$out"
run tokens --model llama-2-7b-chat --ids "$WORK/hello.txt"; ok "tokens in a SentencePiece model" has "15043" "$out"
# gpt-9 was the unknown model here; since issue 19 a gpt-* id resolves by family (below), so a made-up
# id of a family-less provider stands in
run tokens --model llama-9 "$WORK/hello.txt"; ok "unknown model" test $rc -eq 1
ok "unknown model suggests" has "did you mean" "$err"
run tokens --model frobnicator-9 "$WORK/hello.txt"; ok "an id of no family fails" test $rc -eq 1
ok "an id of no family: named" has "unknown model 'frobnicator-9'" "$err"
# an id cmv has never seen, of a known family: counted as the family's newest profile, with a warning
run tokens --model claude-sonnet-7 "$WORK/hello.txt"; ok "a provisional model counts" test $rc -eq 0 -a "$out" = 12
ok "a provisional model says what it assumed" test "$err" = "cmv: unknown model 'claude-sonnet-7': counted as the claude family (claude-sonnet-5-5's window 1,000,000, output 128,000, tokenizer approximation)"
run tokens --model gpt-9 "$WORK/hello.txt"; ok "gpt-9: the gpt family, exact" test $rc -eq 0 -a "$out" = 9
ok "gpt-9: assumed gpt-5.5" has "counted as the gpt family (gpt-5.5's window 258,400" "$err"
run tokens --model gpt-4o "$WORK/hello.txt"; ok "a known model: no warning" test -z "$err"
run models; ok "models shows the source" has "Claude Code 2.1.328 modelUsage, 2026-12" "$out"
ok "models: Codex's window for gpt-5.5" grep -q "^gpt-5.5 .* 258400 .*Codex rollout token_count, 2026-06-25" <<<"$out"
run models --json; ok "models --json: the source" has '"source":	"Codex rollout token_count, 2026-06-26"' "$out"
run tokens "$WORK/hello.txt"; ok "tokens needs one of --tokenizer and --model" test $rc -eq 2
run stats 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032 --model gpt-4o,claude-opus-4-5-20251101 --json
ok "stats --json" is_json "$out"
ok "stats counts per kind" has '"tool_results"' "$out"
ok "stats resolves dated ids" has '"model":	"claude-opus-4-5"' "$out"
run model 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032; ok "no model yet" has "no model set" "$out"
run model 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032 claude-sonnet-4-5-20250929
ok "model set by alias, stored canonical" has "claude-sonnet-4-5 (anthropic" "$out"
run stats 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032 --json; ok "stats defaults to the branch's model" has '"model":	"claude-sonnet-4-5"' "$out"
run model 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032 '{"provider":"openai","model":"x","api_key":"sk-abcdefabcdefabcdefabcdef"}'
ok "a secret is refused" test $rc -eq 1
run model 9b76dc0f-dc1b-4822-ac56-53cfa3fbc032 --json; ok "the secret was not stored" has '"model":	"claude-sonnet-4-5"' "$out"
printf '{"models":[{"id":"gpt-4o","colour":1}]}' >"$WORK/models.json"
CMV_MODELS=$WORK/models.json "$CMV" models >/dev/null 2>"$WORK/err"; rc=$?
ok "a bad models file fails" test $rc -eq 1
ok "a bad models file is named" has "models.json: models[0]" "$(cat "$WORK/err")"
# models add|set|remove: the user's file without hand-written JSON (its folder is made)
MF=$WORK/cfg/cmv/models.json
mm() { out=$(CMV_MODELS=$MF "$CMV" "$@" 2>"$WORK/.err"); rc=$?; err=$(cat "$WORK/.err"); }
mm models add my-llama --like llama-3.1-8b --window 65536 --output 4096 --base-url http://127.0.0.1:8080/v1 --api-key-env LOCAL_KEY
ok "models add" test $rc -eq 0 -a -f "$MF"
ok "models add: the file is JSON" is_json "$(cat "$MF")"
mm models --json; ok "models add: the profile is there" has '"id":	"my-llama"' "$out"
ok "models add: its window" grep -q '"context_window":	65536' <<<"$out"
mm tokens --model my-llama "$WORK/hello.txt"; ok "models add: the new model counts" test $rc -eq 0 -a -n "$out"
mm models set my-llama window 32768; ok "models set" test $rc -eq 0
mm models --json; ok "models set: the new window" grep -q '"context_window":	32768' <<<"$out"
cp "$MF" "$WORK/mf.before"
mm models set my-llama max_output 40000; ok "models set: a bad value is refused" test $rc -eq 1
ok "models set: says why" has "'max_output' must be below 'context_window'" "$err"
ok "models set: a refused edit leaves the file" cmp -s "$MF" "$WORK/mf.before"
mm models set my-llama window lots; ok "models set: not a number" has "'context_window' must be a number, not 'lots'" "$err"
mm models set my-llama api_key sk-abcdefabcdefabcdef; ok "models set: a key is refused" test $rc -eq 1
ok "models set: the key is not stored" test -z "$(grep -F sk-abc "$MF")"
mm models set my-llama tokenizer nope; ok "models set: an unknown tokenizer" has "known tokenizer" "$err"
mm models set my-llama colour blue; ok "models set: an unknown field" has "unknown field 'colour'" "$err"
mm models add my-llama --like gpt-4o; ok "models add: an existing id is refused" test $rc -eq 1
mm models add other --like nope; ok "models add: an unknown base" has "unknown model 'nope'" "$err"
mm models add other; ok "models add needs --like" test $rc -eq 2
mm models set gpt-4o prices.input 2; ok "models set on a built-in" test $rc -eq 0
mm models --json; ok "models set on a built-in: the price" has '"input":	2,' "$out"
mm models remove my-llama; ok "models remove" test $rc -eq 0
mm models --json; ok "models remove: gone" test -z "$(grep -F my-llama <<<"$out")"
mm models remove my-llama; ok "models remove: not there" test $rc -eq 1
mm models remove gpt-5.5; ok "models remove: a built-in stays" has "a built-in cannot be removed" "$err"
mm models frob x; ok "models: an unknown action" test $rc -eq 2


# --- sessions of this machine, import by id, snapshot of a session, renderings ---
mkdir -p "$WORK/home/.claude/projects/-home-u-proj" "$WORK/home/.codex/sessions/2026/06/26"
cp "$HERE/../../examples/claude-code/2cba43de-c8d2-4a69-add8-9fae3ad93900.jsonl" "$WORK/home/.claude/projects/-home-u-proj/"
cp "$T/codex/agentv/a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl" \
	"$WORK/home/.codex/sessions/2026/06/26/rollout-2026-06-26T10-00-00-019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl"
touch -d '2026-06-01' "$WORK/home/.codex/sessions/2026/06/26/rollout-2026-06-26T10-00-00-019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl"
export HOME=$WORK/home
run sessions; ok "sessions lists both agents" test $rc -eq 0 -a "$(grep -c '^[a-z]' <<<"$out")" -eq 2
ok "newest first: the Claude Code session" has "claude-code" "$(head -1 <<<"$out")"
ok "a Codex session's project is its cwd" has "/home/entity/projects/EntityProcess/agentv" "$out"
run sessions --sort size --json; ok "sessions --json" is_json "$out"
ok "largest first: the Codex rollout" has '"agent":	"codex"' "$(head -3 <<<"$out")"
run sessions --project u-proj; ok "sessions --project filters" test "$(grep -c '^[a-z]' <<<"$out")" -eq 1
# what each session holds: its first prompt, messages, size, model, the path it was recorded in
ok "sessions shows the first prompt" has "(focus on the forthcom" "$out"
ok "sessions shows the message count" has " 28 msgs" "$out"
ok "sessions shows the model" has "claude-sonnet-4-20250514" "$out"
run sessions --json; ok "sessions --json details" python3 -c '
import json, sys
s = {x["id"][:8]: x for x in json.loads(sys.argv[1])}
c = s["2cba43de"]
assert c["title"].startswith("**Peer") and "(focus on the forthcom" in c["title"], c["title"]
assert "\n" not in c["title"] and len(c["title"].encode()) < 256
assert c["messages"] == 28 and c["model"] == "claude-sonnet-4-20250514" and c["cwd"] == "/home/kenth56/vsla", c
assert c["size"] > 70000 and c["made"] == []
x = s["019ed836"]
assert x["messages"] > 0 and x["model"] and x["title"] and not x["title"].startswith("<"), x
' "$out"
run sessions -p /home/kenth56/vsla; ok "-p matches the path the session was recorded in" test "$(grep -c '^claude-code' <<<"$out")" -eq 1
run sessions -p EntityProcess/agentv; ok "-p matches a Codex session's cwd" test "$(grep -c '^codex' <<<"$out")" -eq 1
run sessions --sort messages --json; ok "sessions --sort messages: most first" python3 -c '
import json, sys
m = [x["messages"] for x in json.loads(sys.argv[1])]
assert m == sorted(m, reverse=True) and len(m) == 2, m
' "$out"
run sessions --sort bytes; ok "sessions --sort: a bad key is a usage error" test $rc -eq 2
# a session with no message (Claude Code writes some that only track files): left out unless --all
printf '{"type":"file-history-snapshot","messageId":"m","snapshot":{},"isSnapshotUpdate":false}\n' \
	>"$WORK/home/.claude/projects/-home-u-proj/00000000-0000-4000-8000-000000000000.jsonl"
touch -d '2026-05-01' "$WORK/home/.claude/projects/-home-u-proj/00000000-0000-4000-8000-000000000000.jsonl"
run sessions; ok "a session with no message is left out" test "$(grep -c 00000000-0000 <<<"$out")" -eq 0
run sessions --all; ok "sessions --all shows it" test "$(grep -c '^claude-code  00000000-0000' <<<"$out")" -eq 1
rm "$WORK/home/.claude/projects/-home-u-proj/00000000-0000-4000-8000-000000000000.jsonl"
# a title cut inside a character: the character goes whole
mkdir -p "$WORK/home/.claude/projects/-home-u-utf8"
python3 -c '
import json
rec = {"type":"user","cwd":"/home/u/utf8","sessionId":"u","uuid":"a","parentUuid":None,"message":{"role":"user","content":"x" + "é"*400}}
print(json.dumps(rec, ensure_ascii=False))
' >"$WORK/home/.claude/projects/-home-u-utf8/22222222-0000-4000-8000-000000000000.jsonl"
touch -d '2026-05-01' "$WORK/home/.claude/projects/-home-u-utf8/22222222-0000-4000-8000-000000000000.jsonl"
run sessions -p utf8 --json; ok "a long title is cut at a character boundary (strict JSON)" is_json "$out"
ok "and keeps whole characters" python3 -c '
import json, sys
t = json.loads(sys.stdin.buffer.read().decode("utf-8"))[0]["title"]
assert t.startswith("xé") and set(t[1:]) == {"é"} and len(t.encode()) <= 255, t
' <<<"$out"
run sessions -p utf8; ok "the text view cuts it too" has "xéé" "$out"
rm -r "$WORK/home/.claude/projects/-home-u-utf8"
run import --latest; ok "import --latest" test $rc -eq 0
ok "import --latest took the newest" has "branch '2cba43de-c8d2-4a69-add8-9fae3ad93900' created" "$out"
run import --session nope; ok "an unknown session is an error" test $rc -eq 1
ok "an unknown session says how to list them" has "cmv sessions" "$err"
run snapshot codex-start --session 019ed836 --json; ok "snapshot --session imports and snapshots" test $rc -eq 0
ok "snapshot --session took that session" has '"from":	"019ed836-b1da-78f1-8a0c-e598363d10f4"' "$out"
run import --session 019ed836 --json; ok "import --session again: unchanged" has '"outcome":	"unchanged"' "$out"
ok "import --json names format and session" has '"session":	"codex/019ed836-b1da-78f1-8a0c-e598363d10f4"' "$out"
run sessions -p agentv; ok "sessions names the snapshots made from a session" has "snap: codex-start" "$out"
ok "and its branch" has "branch: 019ed836-b1da-78f1-8a0c-e598363d10f4" "$out"
run sessions -p agentv --json; ok "sessions --json lists them under made" has '"name":	"codex-start"' "$out"
run export --session 019ed836-b1da-78f1-8a0c-e598363d10f4 -o "$WORK/rollout.jsonl"
ok "export --session by a bare Codex id" test $rc -eq 0
ok "the rollout comes back byte for byte" cmp -s "$WORK/rollout.jsonl" "$T/codex/agentv/a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl"
for f in anthropic openai-chat openai-responses gemini; do
	run export codex-start --format $f --check -o "$WORK/req.json"
	ok "Codex rendered for $f passes the checker" test $rc -eq 0
	ok "the $f check reports the repaired calls" has "2 calls answered for lack of a result" "$err"
	ok "the $f body is JSON" is_json "$(cat "$WORK/req.json")"
done
run export 2cba43de-c8d2-4a69-add8-9fae3ad93900 --format anthropic --model claude-sonnet-4-5
ok "rendered to stdout" has '"model":"claude-sonnet-4-5"' "$out"
run export --format klingon; ok "an unknown render format is a usage error" test $rc -eq 2
run export --format cmv --check; ok "--check needs a provider format" test $rc -eq 2
n=$(find "$T/openhands" -name '*.json' | wc -l)
run import "$T/openhands"; ok "import a folder" test $rc -eq 0 -a "$n" -ge 2 -a "$(grep -c 'openhands, ' <<<"$out")" -eq "$n"
n=$(find "$T/codex" -name '*.jsonl' | wc -l)
ok "the Codex folder holds checkpoint metadata beside its rollouts" test -n "$(find "$T/codex" -name '*__metadata.json')"
run import "$T/codex" --json; ok "import a folder --json" is_json "$out"
ok "a folder passes over what is not a session" test "$n" -ge 1 -a "$(grep -c '"format"' <<<"$out")" -eq "$n"
printf '{"timestamp":"t","type":"session_meta","payload":{"id":"cli-bad"}}\n{"timestamp":"t","type":\n{"timestamp":"t","type":"event_msg","payload":{}}\n' >"$WORK/bad-rollout.jsonl"
run import "$WORK/bad-rollout.jsonl"; ok "a bad line fails the import" test $rc -eq 1
ok "the error names file and line" has "bad-rollout.jsonl:2: malformed JSON record" "$err"
run import "$WORK/bad-rollout.jsonl" --lenient; ok "--lenient keeps going" test $rc -eq 0
ok "--lenient lists the bad lines" has "kept 1 bad record as opaque events, at line 2" "$err"
printf '{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"?"}]}],"max_tokens":5}' >"$WORK/orphan.json"
run import "$WORK/orphan.json" --format anthropic; ok "an Anthropic body imports" test $rc -eq 0
run export orphan --format anthropic --check; ok "an orphan result is kept as text, and passes" test $rc -eq 0
ok "the orphan is reported" has "1 orphan result kept as text" "$err"


# --- a branch written back as a resumable Claude Code session ---
V=2cba43de-c8d2-4a69-add8-9fae3ad93900
# the session was recorded in /home/kenth56/vsla, which does not exist here: it goes with the current folder
HERE_PROJ=$(printf '%s' "$WORK" | sed 's/[^A-Za-z0-9]/-/g')
mkdir -p "$WORK/home/.claude/projects/$HERE_PROJ"
printf '{"version":1,"entries":[],"originalPath":"%s"}' "$WORK" >"$WORK/home/.claude/projects/$HERE_PROJ/sessions-index.json"
run snapshot vsla-snap --from $V; ok "snapshot of the session" test $rc -eq 0
run branch vsla-more --from vsla-snap --no-trim; ok "branch from it, untrimmed" test $rc -eq 0
run append --role user --text "Now write the C17 migration plan." vsla-more; ok "append to it" test $rc -eq 0
run branch vsla-resume --from vsla-more --claude --json; ok "branch --claude" test $rc -eq 0
ok "branch --claude --json" is_json "$out"
ok "a recorded folder missing here is said" has "/home/kenth56/vsla, where the session was recorded, does not exist here" "$err"
ok "and named in the JSON" has '"recorded_cwd":	"/home/kenth56/vsla"' "$out"
NEW=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["claude_session"])' <<<"$out")
F=$WORK/home/.claude/projects/$HERE_PROJ/$NEW.jsonl
ok "the new session is in the current folder's project, where claude --resume looks" test -s "$F"
ok "one line per record, plus the appended message" test "$(wc -l <"$F")" -eq "$(($(wc -l <"$HERE/../../examples/claude-code/$V.jsonl") + 1))"
ok "every line names the new session" test "$(grep -c "\"sessionId\":\"$NEW\"" "$F")" -eq "$(wc -l <"$F")"
ok "no line names the old one" test "$(grep -c "$V" "$F")" -eq 0
ok "the uuid chain is intact" python3 - "$F" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
seen = set()
for l in lines:
    p = l.get("parentUuid")
    assert p is None or p in seen, p
    if l.get("uuid"): seen.add(l["uuid"])
assert lines[-1]["message"]["content"][0]["text"] == "Now write the C17 migration plan."
assert lines[-1]["parentUuid"] == [l for l in lines[:-1] if l.get("uuid")][-1]["uuid"]
PY
ok "sessions-index.json has the new entry" has "\"sessionId\":	\"$NEW\"" "$(cat "$WORK/home/.claude/projects/$HERE_PROJ/sessions-index.json")"
run import "$F" --json; ok "the new session imports back" has '"format":	"claude-code"' "$out"
run branch codex-more --from codex-start; ok "branch of the Codex session" test $rc -eq 0
run append --role user --text "Continue with the third issue." codex-more; ok "append to it" test $rc -eq 0
run branch codex-resume --from codex-more --codex --json; ok "branch --codex" test $rc -eq 0
NEWC=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["codex_session"])' <<<"$out")
FC=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["codex_file"])' <<<"$out")
ok "the rollout is under CODEX_HOME's sessions, named by the new id" has "$WORK/home/.codex/sessions/" "$FC"
ok "the rollout file exists" test -s "$FC"
ok "its session_meta names the new id" has "\"id\":\"$NEWC\"" "$(head -1 "$FC")"
ok "the rest is the branch, plus the appended message" test "$(wc -l <"$FC")" -eq 93
ok "the appended message is a response item" has '"input_text","text":"Continue with the third issue."' "$(tail -1 "$FC")"
run sessions --json; ok "cmv sessions sees the new rollout" has "$NEWC" "$out"
run import --session "$NEWC" --json; ok "and imports it" has "\"session\":	\"codex/$NEWC\"" "$out"
run branch x --launch; ok "--launch needs --claude" test $rc -eq 2
# the other agent's branch is carried across (tests/cli/carry_test.sh has the details)
run branch codex-claude --from codex-start --claude; ok "a Codex branch is carried into Claude Code" test $rc -eq 0
ok "and says what crossed" has "cmv: carried" "$err"
run branch claude-codex --from vsla-more --codex; ok "a Claude Code branch is carried into Codex" test $rc -eq 0
run branch claude-codex2 --from vsla-more --codex --budget 5; ok "a carry nothing fits is refused" test $rc -eq 1
ok "the refused branch is not left behind" test -z "$("$CMV" list | grep claude-codex2)"
run trim vsla-more --name refused --claude --json; ok "trim --claude of a Claude Code branch" test $rc -eq 0
run trim codex-more --name carried2 --claude; ok "trim --claude of a Codex branch carries the trimmed branch" test $rc -eq 0
# --launch: a stand-in claude records where and how it was run
mkdir -p "$WORK/bin"; printf '#!/bin/sh\necho "$PWD $*" >"%s/launched"\n' "$WORK" >"$WORK/bin/claude"; chmod +x "$WORK/bin/claude"
mkdir -p "$WORK/elsewhere"
out=$(cd "$WORK/elsewhere" && PATH=$WORK/bin:$PATH "$CMV" --store "$WORK/.cmv" branch launched --from vsla-more --claude --launch 2>"$WORK/.err"); rc=$?; err=$(cat "$WORK/.err")
ok "branch --claude --launch with the recorded folder missing" test $rc -eq 0
ok "--launch says it falls back" has "goes with the current folder, $WORK/elsewhere" "$err"
ok "claude was run in the current folder with --resume ID" has "$WORK/elsewhere --resume " "$(cat "$WORK/launched")"
LID=$(cut -d' ' -f3 <"$WORK/launched")
ok "the session is where claude --resume run there looks" test -s "$WORK/home/.claude/projects/$(printf '%s' "$WORK/elsewhere" | sed 's/[^A-Za-z0-9]/-/g')/$LID.jsonl"
# a session recorded in a folder that exists here stays with it
mkdir -p "$WORK/proj"
sed "s#/home/kenth56/vsla#$WORK/proj#g; s#$V#11111111-2222-4333-8444-555555555555#g" "$HERE/../../examples/claude-code/$V.jsonl" >"$WORK/here.jsonl"
"$CMV" import "$WORK/here.jsonl" >/dev/null
run branch here-resume --from 11111111-2222-4333-8444-555555555555 --claude --json; ok "branch --claude, recorded folder present" test $rc -eq 0
ok "nothing said about the folder" test -z "$err"
ok "the session is in the recorded folder's project" has "/projects/$(printf '%s' "$WORK/proj" | sed 's/[^A-Za-z0-9]/-/g')/" "$out"

# --- trim ---
run trim $V --threshold abc; ok "trim: a bad threshold is a usage error" test $rc -eq 2
ok "trim: says why" has "whole number" "$err"
run trim $V --threshold 20; ok "trim: a threshold under 50 is a usage error" test $rc -eq 2
run trim $V --name t1 --json; ok "trim --json" test $rc -eq 0
ok "trim --json is JSON" is_json "$out"
for k in tokens_before tokens_after bytes_before bytes_after model tokenizer branch snapshot rules; do
	ok "trim --json has $k" has "\"$k\":" "$out"
done
ok "the report names the branch" has '"branch":	"t1.trim"' "$out"
run trim $V --name t1; ok "trim: the snapshot name is taken" test $rc -eq 1
run list; ok "trim made a snapshot and a branch" has "t1.trim" "$out"
ok "trim made the snapshot" has "t1 " "$out"
run export t1.trim --format anthropic --check; ok "the trimmed branch passes the checker" test $rc -eq 0
ID=$("$CMV" export t1.trim --format anthropic | grep -o 'recall [0-9a-f]\{7,\}' | head -1 | cut -d' ' -f2)
ok "the trimmed branch has stubs" test -n "$ID"
run recall "$ID"; ok "recall prints the original" test $rc -eq 0 -a -n "$out"
run recall 0000000000; ok "recall of nothing fails" test $rc -eq 1
run trim $V --dry-run --json; ok "trim --dry-run" has '"dry_run":	true' "$out"
run list; ok "a dry run writes nothing" test "$(grep -c trim- <<<"$out")" -eq 0
run branch vsla-snap --json; ok "branch SNAPSHOT: a trimmed branch named after it" has '"branch":	"vsla-snap-' "$out"
ok "branch SNAPSHOT reports its trim" has '"tokens_after"' "$out"
run branch raw-copy --from vsla-snap --no-trim --json; ok "branch --no-trim" test $rc -eq 0
ok "--no-trim does not trim" test "$(grep -c tokens_after <<<"$out")" -eq 0
run trim $V --name t2 --claude --json; ok "trim --claude" test $rc -eq 0
TF=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["claude_file"])' <<<"$out")
ok "trim --claude writes a session" test -s "$TF"
ok "it is smaller than the source" test "$(wc -c <"$TF")" -lt "$(wc -c <"$HERE/../../examples/claude-code/$V.jsonl")"

# --- a session as import prints it (cc/<id>) is accepted wherever a session is asked for ---
SREF=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["session"])' <<<"$("$CMV" import --session $V --json)")
ok "import --json names the session ref" test "$SREF" = "cc/$V"
run trim --session "cc/${V:0:8}" --dry-run --json; ok "trim --session cc/ID" test $rc -eq 0
ok "trim --session cc/ID trims that session" has "\"from\":	\"$V\"" "$out"
run trim "$SREF" --dry-run --json; ok "trim cc/ID" test $rc -eq 0
WANT=$("$CMV" trim $V --dry-run --json | grep tokens_before)
ok "trim cc/ID counts the session's messages" test "$(grep tokens_before <<<"$out")" = "$WANT"
run branch from-sref --from "$SREF" --no-trim --json; ok "branch --from cc/ID" test $rc -eq 0
ok "branch --from cc/ID is the session's conversation" test "$("$CMV" log from-sref | wc -l)" -eq "$("$CMV" log $V | wc -l)"
ok "branch --from cc/ID is not empty" test "$("$CMV" log from-sref | wc -l)" -gt 10
run log "$SREF~1" -n 1; ok "log cc/ID~1" test $rc -eq 0 -a "$(grep -c '^[0-9a-f]\{12\} ' <<<"$out")" -eq 1
run snapshot from-sref-snap --from "$SREF" --json; ok "snapshot --from cc/ID" has "\"from\":	\"$V\"" "$out"
run stats "$SREF" --json; ok "stats cc/ID" test $rc -eq 0 -a "$(grep -c '"messages":	0' <<<"$out")" -eq 0
run info "$SREF" --json; ok "info cc/ID is the session's branch" has "\"name\":	\"$V\"" "$out"
run snapshot x --session codex/nope; ok "--session codex/ID of an unknown id" test $rc -eq 1

# --- hooks: install, the auto-trim entry point, restore, uninstall ---
SET=$WORK/home/.claude/settings.json
printf '{"model":"opus","hooks":{"PreCompact":[{"matcher":"","hooks":[{"type":"command","command":"other-tool --x"}]}]}}' >"$SET"
run hook install; ok "hook install" test $rc -eq 0
run hook install; ok "hook install again" test $rc -eq 0
ok "install keeps other settings" has '"model":	"opus"' "$(cat "$SET")"
ok "install keeps other hooks" has 'other-tool --x' "$(cat "$SET")"
ok "install is idempotent: one PreCompact entry of ours" test "$(grep -c "auto-trim\"" "$SET")" -eq 1
ok "install adds the size check after tool use" test "$(grep -c "auto-trim --check-size" "$SET")" -eq 1
run hook status --json; ok "hook status --json" is_json "$out"
ok "status: installed" has '"installed":	true' "$out"
cp "$SET" "$WORK/settings.good"
printf '{"hooks": [' >"$SET"
run hook install; ok "malformed settings: an error" test $rc -eq 1
ok "malformed settings: named" has "settings.json" "$err"
ok "malformed settings: left as they were" test "$(cat "$SET")" = '{"hooks": ['
cp "$WORK/settings.good" "$SET"
run hook frob; ok "hook: an unknown action is a usage error" test $rc -eq 2

LIVE=$WORK/home/.claude/projects/-home-u-proj/live.jsonl
# a session of its own (the hook moves its branch to what it trims), not the $V the pager tests read below
SID=11111111-2222-4333-8444-555555555555
sed "s/$V/$SID/g" "$HERE/../../examples/claude-code/$V.jsonl" >"$LIVE"; chmod 644 "$LIVE"
cp "$LIVE" "$WORK/live.pristine"
at() { # at STDIN ARGS... : run auto-trim as a hook does
	out=$(printf '%s' "$1" | "$CMV" --store "$WORK/.cmv" auto-trim "${@:2}" 2>"$WORK/.err"); rc=$?; err=$(cat "$WORK/.err")
}
lastlog() { tail -1 "$WORK/.cmv/auto-trim.log"; }
at 'not json'; ok "auto-trim: bad stdin still exits 0" test $rc -eq 0
ok "auto-trim: bad stdin is logged" has "not a JSON object" "$(lastlog)"
at ''; ok "auto-trim: empty stdin exits 0" test $rc -eq 0
at '{"session_id":"x"}'; ok "auto-trim: no transcript_path exits 0" test $rc -eq 0
ok "auto-trim: says what is missing" has "no session_id or transcript_path" "$(lastlog)"
at "{\"session_id\":\"$SID\",\"transcript_path\":\"$WORK/nope.jsonl\"}"; ok "auto-trim: a missing file exits 0" test $rc -eq 0
ok "auto-trim: the missing file is named" has "nope.jsonl: No such file" "$(lastlog)"
at "{\"session_id\":\"../../etc\",\"transcript_path\":\"$LIVE\"}"; ok "auto-trim: a hostile session id exits 0" test $rc -eq 0
ok "auto-trim: a hostile session id is refused" has "not a Claude Code session id" "$(lastlog)"
at "{\"session_id\":\"$SID\",\"transcript_path\":\"$WORK/home/.claude/projects/-home-u-proj\"}"; ok "auto-trim: a folder exits 0" has "not a regular file" "$(lastlog)"
at "{\"session_id\":\"$SID\",\"transcript_path\":\"$LIVE\"}" --threshold 5; ok "auto-trim: a usage error exits 0" test $rc -eq 0
cmp -s "$LIVE" "$WORK/live.pristine"; ok "none of that touched the session" test $? -eq 0
LINES=$(wc -l <"$WORK/.cmv/auto-trim.log")
at "{\"session_id\":\"$SID\",\"transcript_path\":\"$LIVE\"}" --check-size; ok "auto-trim --check-size: under the size" test $rc -eq 0
ok "under the size: untouched, nothing logged" test "$(wc -l <"$WORK/.cmv/auto-trim.log")" -eq "$LINES"
# being written: the last line cut off mid-record
cp "$LIVE" "$WORK/live.orig"; printf '\n{"parentUuid":"x","type":"assist' >>"$LIVE"; cp "$LIVE" "$WORK/live.partial"
at "{\"session_id\":\"$SID\",\"transcript_path\":\"$LIVE\",\"hook_event_name\":\"PreCompact\"}"
ok "auto-trim: a session being written exits 0" test $rc -eq 0
ok "a session being written is left as it was" cmp -s "$LIVE" "$WORK/live.partial"
ok "and that is logged" has "being written" "$(lastlog)"
cp "$WORK/live.orig" "$LIVE"
at "{\"session_id\":\"$SID\",\"transcript_path\":\"$LIVE\",\"hook_event_name\":\"PreCompact\"}" --check-size --size 1000
ok "auto-trim over the size" test $rc -eq 0
ok "auto-trim: logged as trimmed" has '"outcome":"trimmed"' "$(lastlog)"
ok "the live session shrank" test "$(wc -c <"$LIVE")" -lt "$(wc -c <"$WORK/live.orig")"
ok "it keeps its session id on every line" test "$(grep -c "\"sessionId\":\"$SID\"" "$LIVE")" -eq "$(grep -c '"sessionId"' "$LIVE")"
ok "it keeps its mode" test "$(stat -c %a "$LIVE")" = 644
run import "$LIVE" --branch live-chk; ok "the trimmed live session imports" test $rc -eq 0
run export live-chk --format anthropic --check; ok "and passes the checker" test $rc -eq 0
BK=$(ls "$WORK/.cmv/backups/$SID/"*.jsonl | head -1)
ok "the backup is the session as it was" cmp -s "$BK" "$WORK/live.orig"
run hook status; ok "status shows the last run" has '"outcome":"trimmed"' "$out"
run hook restore --list --json; ok "restore --list" has "$SID" "$out"
run hook restore "$SID"; ok "hook restore" test $rc -eq 0
ok "restore brings the session back byte for byte" cmp -s "$LIVE" "$WORK/live.orig"
run hook restore nobody; ok "restore of a session with no backup fails" test $rc -eq 1
ln -s "$LIVE" "$WORK/live-link.jsonl"
# (PreCompact: after a restore, the size check alone waits for the session to grow)
at "{\"session_id\":\"$SID\",\"transcript_path\":\"$WORK/live-link.jsonl\",\"hook_event_name\":\"PreCompact\"}" --check-size --size 1000
ok "auto-trim through a link trims the file it names" test "$(wc -c <"$LIVE")" -lt "$(wc -c <"$WORK/live.orig")"
ok "and leaves the link a link" test -L "$WORK/live-link.jsonl"
run hook uninstall; ok "hook uninstall" has "2 cmv hooks removed" "$out"
ok "uninstall keeps the other hook" has 'other-tool --x' "$(cat "$SET")"
ok "uninstall leaves none of ours" test "$(grep -c auto-trim "$SET")" -eq 0
run hook status --json; ok "status: not installed" has '"installed":	false' "$out"
(cd / && printf '{}' | HOME=/nonexistent "$CMV" auto-trim >/dev/null 2>&1); ok "auto-trim with no store still exits 0" test $? -eq 0

# --- tree and info: trims, lineage, tokens per model ---
run tree; ok "tree marks a trim and what it is of" has "t1.trim (branch" "$out"
ok "tree: the trim line" has "[trim of t1, threshold 500, bytes -" "$(grep 't1.trim' <<<"$out")"
ok "tree: tokens per model" has "claude-sonnet-4-5)" "$(grep 't1.trim' <<<"$out")"
run tree --models gpt-4o,claude-sonnet-4-5 --json; ok "tree --models --json" is_json "$out"
ok "tree --json: tokens of both models" has '"gpt-4o":' "$out"
ok "tree --json: the trim note" has '"threshold":	500' "$out"
run tree --models nope; ok "tree: an unknown model is a usage error" test $rc -eq 2
run tree --no-tokens; ok "tree --no-tokens" test $rc -eq 0 -a "$(grep -c 'claude-sonnet' <<<"$out")" -eq 0
run info t1.trim -m gpt-4o,claude-sonnet-4-5; ok "info: tokens for each model" test "$(grep -c '^tokens:' <<<"$out")" -eq 2
ok "info: the lineage" has "lineage:  t1.trim <- t1 <-" "$out"
ok "info: the trim" has "trim:     of t1, threshold 500" "$out"
run info t1 --json; ok "info --json" is_json "$out"
ok "info --json: what was made from it" has '"made_from_it":	["t1.trim"' "$out"
# fewer tokens after the trim, in the tree's own counts
B=$("$CMV" info t1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"]["claude-sonnet-4-5"])')
A=$("$CMV" info t1.trim --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"]["claude-sonnet-4-5"])')
ok "the trim sends fewer tokens than its snapshot" test "$A" -lt "$B"

# --- the pager: materialize, fit, the recall tool ---
run fit "$V" --model claude-sonnet-4-5,gpt-4 --json; ok "fit --json" is_json "$out"
ok "fit: the big window fits whole" has '"stubbed":	0' "$out"
run fit "$V" --model gpt-4; ok "fit: gpt-4 needs paging" has "turns left out" "$out"
# anchored on the branch's last billed call (claude-sonnet-4 billed it), not for another model
run fit "$V" --model claude-sonnet-4 --json; ok "fit: anchored on what the model billed" has '"anchored":	true' "$out"
ok "fit: says the bill it is anchored on" has "anchored on the branch's last billed call" "$out"
run fit "$V" --model claude-sonnet-4-5 --json; ok "fit: another model is not anchored" has '"anchored":	false' "$out"
run materialize "$V" --model gpt-4 -o "$WORK/g4.json" --report "$WORK/g4r.json"; ok "materialize" test $rc -eq 0
ok "materialize: the report says it fits" has '"fits":	true' "$(cat "$WORK/g4r.json")"
ok "materialize: a run of turns paged out, with its id" grep -q '\[[0-9]* turns* paged out; recall [0-9a-f]\{7\}\]' "$WORK/g4.json"
PID=$(grep -o 'paged out[^]]*recall [0-9a-f]*' "$WORK/g4.json" | head -1 | grep -o '[0-9a-f]*$')
run recall "$PID"; ok "the paged-out turns recall as JSON" is_json "$out"
run materialize "$V" --model gpt-4 -o "$WORK/g4b.json"; ok "materialize again: the same bytes" cmp -s "$WORK/g4.json" "$WORK/g4b.json"
BID=$(python3 -c 'import json,sys; print([p["id"] for p in json.load(open(sys.argv[1]))["paged_out"] if p["state"]=="stubbed"][0])' "$WORK/g4r.json")
run recall "$BID" --from "$V"; ok "recall --from records a fault" test $rc -eq 0 -a -n "$out"
run materialize "$V" --model gpt-4 --report "$WORK/g4f.json" -o /dev/null; ok "a faulted page comes back" test $rc -eq 0
ok "it is no longer paged out" test "$(grep -c "$BID" "$WORK/g4f.json")" -eq 0
run recall "$PID" --from nobranch; ok "a fault on no branch fails" test $rc -eq 1
run materialize "$V" --model gpt-4 --budget 100; ok "materialize: the pinned turns do not fit" test $rc -eq 1
ok "materialize: says what is pinned" has "pinned" "$err"
run fit "$V" --model gpt-4 --budget 100; ok "fit: a branch that cannot fit is an answer" test $rc -eq 0
ok "fit: says why, the pager's reason" has "with every page that may leave gone, the request is" "$out"
run materialize "$V"; ok "materialize without --model is a usage error" test $rc -eq 2
run materialize "$V" --model gpt-4o --format gemini -o "$WORK/gem.json"; ok "materialize --format gemini" is_json "$(cat "$WORK/gem.json")"
# an id cmv does not know, of a known family: fit and materialize work, and say what they assumed
run fit "$V" --model claude-sonnet-7 --json; ok "fit: a provisional model" test $rc -eq 0
ok "fit: a provisional model's warning" has "unknown model 'claude-sonnet-7': counted as the claude family" "$err"
run materialize "$V" --model gpt-9 --stateless -o "$WORK/g9.json"; ok "materialize: a provisional model" test $rc -eq 0
ok "materialize: a provisional model's request" is_json "$(cat "$WORK/g9.json")"
ok "materialize: a provisional model's warning" has "unknown model 'gpt-9': counted as the gpt family" "$err"
run fit "$V" --model frobnicator-9; ok "fit: an id of no family fails" test $rc -eq 1
run recall --query "C17 standard" --from "$V" --budget 3000; ok "recall --query finds pages" has "[turn " "$out"
Q1=$out
run recall --query "C17 standard" --from "$V" --budget 3000; ok "recall --query again, from the branch's query index: the same" test "$out" = "$Q1"
run snapshot vq-snap --from "$V"
run recall --query "C17 standard" --from vq-snap --budget 3000; ok "recall --query from a snapshot (no index kept): the same" test "$out" = "$Q1"
run recall --query zzqqxxnothing --from "$V"; ok "recall --query with no match" has "no page matches" "$err"
run recall; ok "recall needs an ID or --query" test $rc -eq 2
run tool-schema --format openai; ok "tool-schema --format openai" has '"name":	"cmv_recall"' "$out"
run tool-schema --format nope; ok "tool-schema: an unknown format is a usage error" test $rc -eq 2

run switch "$V" --model gpt-4 --json; ok "switch to a small window" has '"evicted":' "$out"
ok "switch: the report fits" has '"fits":	true' "$out"
run model "$V"; ok "switch set the branch's model" has "gpt-4 (" "$out"
run switch "$V" --model claude-sonnet-4-5; ok "switch to a large window brings the pages back" has "0 stubbed, 0 evicted" "$out"
run info "$V"; ok "switch started a usage segment for each model" test "$(grep -c 'from turn' <<<"$out")" -ge 2
run switch "$V" --model gpt-4 --budget 100; ok "a switch that cannot fit fails" test $rc -eq 1
run model "$V"; ok "and records nothing" has "claude-sonnet-4-5 (" "$out"
run switch t1 --model gpt-4; ok "switch needs a branch" test $rc -eq 1
run switch "$V" --model '{"provider":"openai","model":"gpt-4o"}' --json; ok "switch takes a model descriptor" has '"signature":	"openai/gpt-4o"' "$out"
run log "$V"; ok "one switch, one event" test "$(grep -c 'model_switch' <<<"$out")" -eq "$(grep -c 'model_switch\|cmv_switch' <<<"$out")"
run stats "$V" --model gpt-4o; ok "stats shows the usage segments" has "openai/gpt-4o" "$out"
# calls booked as an agent host books them (the host API, through the Python package over libcmv.so;
# a sanitized libcmv in Python needs the sanitizer's runtime first: CMV_PYTHON_PRELOAD, set by ctest)
py_env=()
[ -n "${CMV_PYTHON_PRELOAD:-}" ] && py_env=(LD_PRELOAD="$CMV_PYTHON_PRELOAD" ASAN_OPTIONS=detect_leaks=0)
env "${py_env[@]}" CMV_LIBRARY="${CMV_LIBRARY:-$(dirname "$CMV")/libcmv.so}" PYTHONPATH="$HERE/../../bindings/python" python3 -c '
import cmv, sys
with cmv.Store(sys.argv[1]) as s:
    b = cmv.Branch(s, sys.argv[2])  # the branch as it is: Store.branch would make a missing one
    b.record_usage("gpt-4o", input_tokens=1200, output_tokens=80)
    b.record_usage("gpt-4o", input_tokens=1300, output_tokens=20)
    b.record_usage("claude-sonnet-4-5", input_tokens=5000, output_tokens=300, cache_read_tokens=4000)
' "$WORK/.cmv" "$V"; ok "usage booked through the host API" test $? -eq 0
run stats "$V" --model gpt-4o --json; ok "stats --json: the branch's usage per model" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["ref"] == sys.argv[2] and len(d["head"]) == 32 and d["models"][0]["model"] == "gpt-4o"
tot = {t["signature"]: t for t in d["usage"]["totals"]}
assert tot["openai/gpt-4o"]["calls"] == 2 and tot["openai/gpt-4o"]["input_tokens"] == 2500, tot
assert tot["openai/gpt-4o"]["output_tokens"] == 100 and tot["openai/gpt-4o"]["cost_usd"] > 0
assert tot["anthropic/claude-sonnet-4-5"]["cache_read_tokens"] == 4000
segs = d["usage"]["segments"]
assert len(segs) >= 3 and all(s["started"].endswith("Z") for s in segs)
assert abs(d["usage"]["cost_usd"] - sum(t["cost_usd"] for t in tot.values())) < 1e-9
' "$out" "$V"
run stats "$V" --model gpt-4o; ok "stats: the calls in the usage section" grep -q "openai/gpt-4o .* 2 calls .* 2500 in .* 100 out" <<<"$out"
ok "stats: the usage's total" has "total \$" "$out"
run stats vsla-snap --json; ok "stats --json of a snapshot: no usage (null)" python3 -c '
import json, sys; d = json.loads(sys.argv[1]); assert d["usage"] is None and d["ref"] == "vsla-snap"' "$out"

# --- compaction: compact, handoff, uncompact ---
run compact "$V" --for gpt-4 --json; ok "compact for gpt-4" test $rc -eq 0
ok "compact --json is JSON" is_json "$out"
ok "compact: the result fits" has '"fits":	true' "$out"
ok "compact: it passes the checker" has '"passes_check":	true' "$out"
ok "compact: a coverage score" has '"coverage":' "$out"
ok "compact: what the session used" has '"tools_used":' "$out"
CB=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["branch"])' <<<"$out")
ok "compact: the default branch name" test "$CB" = "$V.compact-gpt-4"
run fit "$CB" --model gpt-4 --json; ok "the compacted branch fits gpt-4 with nothing paged out" has '"evicted":	0' "$out"
run model "$CB"; ok "compact set the branch's model" has "gpt-4 (" "$out"
run compact "$V" --for gpt-4; ok "compact into an existing branch fails" test $rc -eq 1
run uncompact "$CB" --branch restored; ok "uncompact" test $rc -eq 0
ok "uncompact restores the same conversation" test "$("$CMV" log "$V" --json)" = "$("$CMV" log restored --json)"
run uncompact "$V"; ok "uncompact of a branch never compacted fails" test $rc -eq 1
run handoff "$V" --for gpt-4 --budget 800; ok "handoff" test $rc -eq 0
ok "handoff: the fixed sections" has "## Pending actions and unanswered tool calls" "$out"
ok "handoff: its size and coverage on stderr" has "coverage" "$err"
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run compact "$V" --for gpt-4 --budget 2500 --json -n small; ok "compact below the trim: a summary" has '"stage":	2' "$out"
ok "compact: the summary fits the budget" test "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["tokens_after"] <= 2500 and d["kept_messages"] > 0)' <<<"$out")" = True
RID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["recall"][:7])' <<<"$out")
run recall "$RID"; ok "the summary's id recalls the covered messages" is_json "$out"
run export small --format openai-chat; ok "the summary names that id" has "recall $RID" "$out"
run compact "$V" --for gpt-4 --budget 2500 --summarizer gpt-4o-mini --llm-url "http://127.0.0.1:$DEAD/v1" -n viallm
ok "an unreachable summarizer fails" test $rc -eq 1
ok "and says why" has "connection refused" "$err"
run list; ok "and writes nothing" test -z "$(grep viallm <<<"$out")"
# an LLM summarizer end to end: the CLI, libcurl, a replaying server on 127.0.0.1
cat > "$WORK/reply.md" <<'MD'
## User instructions and constraints
- keep the C17 standard
## Decisions made
- the replay server wrote this
## Declared losses
- the exact compiler flags
MD
rm -f "$WORK/llm.log" "$WORK/llm.port"
python3 "$HERE/../support/llm_server.py" "$WORK/reply.md" "$WORK/llm.log" "$WORK/llm.port" &
LLM_PID=$!
up "$WORK/llm.port" '^[0-9][0-9]*$' "$LLM_PID"
LLM_URL="http://127.0.0.1:$(cat "$WORK/llm.port")/v1"
OPENAI_API_KEY=sk-cli-test-key run compact "$V" --for gpt-4 --budget 2500 --summarizer gpt-4o-mini --llm-url "$LLM_URL" -n vialocal --json
ok "compact with an LLM summarizer" test $rc -eq 0
ok "compact with an LLM: the passes counted" test "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["passes"])' <<<"$out")" -ge 1
ok "compact with an LLM: it fits" has '"fits":	true' "$out"
ok "the summarizer got the model and the key from the environment" test "$(python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; print(all(r["body"]["model"] == "gpt-4o-mini" and r["authorization"] == "Bearer sk-cli-test-key" and r["path"] == "/v1/chat/completions" for r in l) and len(l) >= 1)' "$WORK/llm.log")" = True
run export vialocal --format openai-chat; ok "the model's document, in the fixed shape" has "the replay server wrote this" "$out"
ok "the shape holds whatever the model wrote" has "## Pending actions and unanswered tool calls" "$out"
ok "the key is stored nowhere" test -z "$(grep -rl sk-cli-test-key "$WORK/.cmv" 2>/dev/null)"
OPENAI_API_KEY=sk-cli-test-key run handoff "$V" --for gpt-4 --summarizer gpt-4o-mini --llm-url "$LLM_URL" --budget 600
ok "handoff with an LLM" has "the replay server wrote this" "$out"
# (forgotten once reaped: the EXIT trap would kill whatever process got its pid next)
kill "$LLM_PID" 2>/dev/null; wait "$LLM_PID" 2>/dev/null; LLM_PID=
run compact "$V" --for gpt-4 --budget 40 -n tiny; ok "a budget nothing fits is refused" test $rc -eq 1
run compact "$V" --for gpt-4 --dry-run -n dry; ok "compact --dry-run" has "(dry run)" "$out"
run list; ok "compact --dry-run writes nothing" test -z "$(grep ' dry$' <<<"$out")"
run switch "$V" --model gpt-4 --budget 100; ok "a switch that cannot fit offers compaction" has "cmv compact" "$err"

# --- bundles ---
run export t1 --bundle "$WORK/t1.cmvb" --with-branches; ok "export --bundle" test $rc -eq 0
ok "export --bundle says what it holds" has "nodes" "$err"
ok "a bundle is a tar any tar lists" has "nodes.jsonl" "$(tar tf "$WORK/t1.cmvb")"
run export t1.trim --bundle "$WORK/x.cmvb"; ok "export --bundle of a branch is refused" test $rc -eq 1
ok "and leaves no file" test ! -e "$WORK/x.cmvb"
mkdir -p "$WORK/other" && (cd "$WORK/other" && "$CMV" init >/dev/null)
OTHER=(--store "$WORK/other/.cmv")
run "${OTHER[@]}" import "$WORK/t1.cmvb" --json; ok "import a bundle" test $rc -eq 0
ok "import a bundle: its refs" has '"refs":	2' "$out"
run "${OTHER[@]}" list; ok "the bundle's snapshot and trimmed branch arrived" has "t1.trim" "$out"
ID=$("$CMV" "${OTHER[@]}" export t1.trim --format anthropic | grep -o 'recall [0-9a-f]\{7,\}' | head -1 | cut -d' ' -f2)
run "${OTHER[@]}" recall "$ID"; ok "a stub recalls in the other store" test $rc -eq 0 -a -n "$out"
run "${OTHER[@]}" import "$WORK/t1.cmvb" --prefix laptop; ok "import --prefix" test $rc -eq 0
run "${OTHER[@]}" tree; ok "the lineage is kept under the prefix" has "laptop/t1.trim" "$out"
python3 - "$WORK" <<'PY'
import io, json, sys, tarfile
w = sys.argv[1]
m = json.dumps({"format": "cmv-bundle", "version": 1, "refs": []}).encode()
def bundle(name, add):
    with tarfile.open(f"{w}/{name}", "w", format=tarfile.USTAR_FORMAT) as t:
        i = tarfile.TarInfo("cmv-bundle.json"); i.size = len(m); t.addfile(i, io.BytesIO(m))
        add(t)
def link(t):
    i = tarfile.TarInfo("blobs/x"); i.type = tarfile.SYMTYPE; i.linkname = "/etc/passwd"; t.addfile(i)
def dotdot(t):
    i = tarfile.TarInfo("../../evil"); i.size = 3; t.addfile(i, io.BytesIO(b"abc"))
def absolute(t):
    i = tarfile.TarInfo("/tmp/evil"); i.size = 3; t.addfile(i, io.BytesIO(b"abc"))
bundle("link.cmvb", link); bundle("dotdot.cmvb", dotdot); bundle("abs.cmvb", absolute)
PY
run "${OTHER[@]}" import "$WORK/link.cmvb"; ok "a bundle with a link is refused" test $rc -eq 1
ok "the link is named" has "symbolic link" "$err"
run "${OTHER[@]}" import "$WORK/dotdot.cmvb"; ok "a bundle with '..' is refused" has "'..'" "$err"
run "${OTHER[@]}" import "$WORK/abs.cmvb"; ok "a bundle with an absolute path is refused" has "absolute path" "$err"
ok "nothing was written outside" test ! -e "$WORK/../evil"

# --- the store is found from a subdirectory, and by CMV_DIR ---
mkdir -p sub/dir && cd sub/dir
run list; ok "discovered from a subdirectory" test $rc -eq 0
cd "$WORK"
CMV_DIR="$WORK/.cmv" "$CMV" list >/dev/null 2>&1; rc=$?
ok "CMV_DIR" test $rc -eq 0
CMV_DIR=/nonexistent/.cmv "$CMV" list >/dev/null 2>&1; rc=$?
ok "CMV_DIR pointing nowhere" test $rc -eq 1

# --- serving (cmv mcp --http, cmv proxy): the address and the signals, set up alike (server/http.c) ---
for serve in "mcp --http" "proxy --listen"; do
	# a fresh file: the last server's "listening on" is no sign this one listens (read so, the SIGTERM
	# reached a child not yet exec'd, under load)
	rm -f "$WORK/.serve"
	# shellcheck disable=SC2086
	"$CMV" $serve 127.0.0.1:0 >"$WORK/.serve" 2>&1 &
	spid=$!
	up "$WORK/.serve" "listening on" "$spid" && kill -TERM "$spid"; wait "$spid"; rc=$?
	ok "$serve: SIGTERM stops it, exit 0" test $rc -eq 0 -a -n "$(grep -o 'listening on http://127.0.0.1:[1-9]' "$WORK/.serve")"
done
# ":PORT" is every interface: off loopback, so a token is required
run proxy --listen :8080; ok "proxy --listen :PORT without a token: usage" test $rc -eq 2
ok "proxy --listen :PORT: every interface, so a token" has "--listen :8080 is not a loopback address: set CMV_PROXY_TOKEN" "$err"
run mcp --http :8080; ok "mcp --http :PORT without a token: usage" test $rc -eq 2 -a -n "$(has CMV_MCP_TOKEN "$err" && echo y)"
for serve in "mcp --http" "proxy --listen"; do
	rm -f "$WORK/.serve"
	# shellcheck disable=SC2086
	CMV_MCP_TOKEN=t0k CMV_PROXY_TOKEN=t0k "$CMV" $serve :0 >"$WORK/.serve" 2>&1 &
	spid=$!
	up "$WORK/.serve" "listening on" "$spid" && kill -TERM "$spid"; wait "$spid"; rc=$?
	ok "$serve :PORT with a token: every interface" test $rc -eq 0 -a -n "$(grep -o 'listening on http://0.0.0.0:[1-9]' "$WORK/.serve")"
done
run proxy --listen "[]:8080"; ok "proxy --listen with an empty host: usage" test $rc -eq 2
ok "proxy --listen: the message names the option" has "--listen []:8080: expected PORT or HOST:PORT" "$err"
run mcp --http 127.0.0.1:123456789012345678; ok "mcp --http with a port too long: usage" test $rc -eq 2
ok "mcp --http: the message names the option" has "--http" "$err"
# --timeout 0 meant never: an upstream that never answers held its request (and a worker) forever
run proxy --listen 127.0.0.1:0 --timeout 0; ok "proxy --timeout 0: refused before it listens" test $rc -eq 2 -a -z "$out"
ok "proxy --timeout 0: says why and what to give" has "--timeout 0: an upstream that never answers would hold its request forever; give 1 to 86400 seconds" "$err"
run proxy --listen 127.0.0.1:0 --timeout 000; ok "proxy --timeout 000: the same" has "give 1 to 86400 seconds" "$err"
run proxy --listen 127.0.0.1:0 --timeout -5; ok "proxy --timeout -5: usage" test $rc -eq 2 -a -n "$(has "expected a number of seconds" "$err" && echo y)"
run proxy --listen 0.0.0.0:0; ok "proxy off loopback without a token: usage" test $rc -eq 2 -a -n "$(has CMV_PROXY_TOKEN "$err" && echo y)"

# --- init honours --store and CMV_DIR ---
run --store "$WORK/by-option" init; ok "init --store" test $rc -eq 0 -a -f "$WORK/by-option/store.db"
ok "init --store says where" has "$WORK/by-option" "$out"
ok "init --store makes no ./.cmv elsewhere" test ! -e "$WORK/by-option/.cmv"
run --store "$WORK/by-option" list; ok "the store init --store made is the one --store opens" has "main" "$out"
out=$(CMV_DIR="$WORK/by-env" "$CMV" init 2>&1); rc=$?
ok "init with CMV_DIR" test $rc -eq 0 -a -f "$WORK/by-env/store.db"
out=$(CMV_DIR="$WORK/by-env" "$CMV" list 2>&1); ok "the store init made under CMV_DIR opens" has "main" "$out"
run --store "$WORK/x" init "$WORK/y"; ok "init DIR --store: usage" test $rc -eq 2

# --- the branch's model is the default wherever a model is needed ---
"$CMV" append --role user --text "no model here" no-model-yet >/dev/null
run materialize no-model-yet -o /dev/null; ok "materialize without a model anywhere: usage" test $rc -eq 2
ok "... says how to set one" has "cmv model" "$err"
run model vsla-more gpt-4o; ok "cmv model BRANCH gpt-4o" test $rc -eq 0
run materialize vsla-more -o "$WORK/mat.json"; ok "materialize takes the branch's model" test $rc -eq 0
ok "... and says it" has "gpt-4o:" "$err"
ok "... an OpenAI request" has '"model":"gpt-4o"' "$(head -c 300 "$WORK/mat.json")"
run fit vsla-more --json; ok "fit takes the branch's model" test $rc -eq 0 -a "$(grep -c '"model":	"gpt-4o"' <<<"$out")" -eq 1
run info vsla-more --json; ok "info counts in the branch's model" has '"gpt-4o":' "$out"
ok "... only in it" test "$(grep -c '"claude-sonnet-4-5":' <<<"$out")" -eq 0
run snapshot model-snap --from vsla-more; run info model-snap --json
ok "a snapshot counts in the model of what it was made from" has '"gpt-4o":' "$out"
run tree --json; ok "tree counts each ref in its own model" python3 -c '
import json, sys
def walk(xs):
    for x in xs:
        yield x
        yield from walk(x["children"])
refs = {x["name"]: x for x in walk(json.loads(sys.argv[1]))}
assert list(refs["vsla-more"]["tokens"]) == ["gpt-4o"], refs["vsla-more"]["tokens"]
assert list(refs["vsla-snap"]["tokens"]) == ["claude-sonnet-4-5"], refs["vsla-snap"]["tokens"]
' "$out"
run tree --models claude-sonnet-4-5,gpt-4o --json; ok "tree --models counts all in each" test "$(grep -c '"gpt-4o":' <<<"$out")" -gt 5
run trim vsla-more --dry-run --json; ok "trim counts in the branch's model" has '"model":	"gpt-4o"' "$out"

# --- command for command with claude-code-cmv ---
run branch cmd-dry --from vsla-snap --dry-run --json; ok "branch --dry-run" test $rc -eq 0
ok "branch --dry-run reports the trim" has '"tokens_after"' "$out"
ok "branch --dry-run makes nothing" test -z "$("$CMV" list | grep ' cmd-dry$')"
run branch cmd-skip --from vsla-more --skip-launch; ok "branch --skip-launch" test $rc -eq 0
run branch cmd-x --from vsla-more --claude --launch --skip-launch; ok "--launch with --skip-launch: usage" test $rc -eq 2
run list --sort name --json; ok "list --sort name" python3 -c '
import json, sys
n = [x["name"].encode() for x in json.loads(sys.argv[1])]
assert n == sorted(n) and len(n) > 5, n
' "$out"
run list --sort branches --json; ok "list --sort branches: most first" python3 -c '
import json, sys
b = [x["branches"] for x in json.loads(sys.argv[1])]
assert b == sorted(b, reverse=True) and b[0] >= 2, b
' "$out"
run list --sort size; ok "list --sort: a bad key is a usage error" test $rc -eq 2
run list --tag trimmed; ok "list --tag" test $rc -eq 0 -a "$(grep -c . <<<"$out")" -ge 1 -a "$(grep -vc '\[.*trimmed' <<<"$out")" -eq 0
run tree --depth 1 --no-tokens; ok "tree --depth 1: roots only" test $rc -eq 0 -a "$(grep -c '──' <<<"$out")" -eq 0
run tree --depth 2 --no-tokens --json; ok "tree --depth 2 --json" python3 -c '
import json, sys
for r in json.loads(sys.argv[1]):
    for c in r["children"]:
        assert c["children"] == [], c["name"]
' "$out"
run tree --depth 0; ok "tree --depth 0: usage" test $rc -eq 2
run delete -f cmd-skip; ok "delete -f" test $rc -eq 0
run delete --force nothing-here; ok "delete --force of nothing still fails" test $rc -eq 1
run benchmark -s "cc/${V:0:8}" --json; ok "benchmark -s" test $rc -eq 0
ok "benchmark counts with the real trimmer" python3 -c '
import json, sys
d = json.loads(sys.argv[1]); s = d["sessions"][0]
assert d["model"] == "claude-sonnet-4-5" and d["cache_rate"] == 0.9
assert s["id"] == "'$V'" and 0 < s["tokens_after"] < s["tokens_before"], s
assert s["cost_per_turn_after"] < s["cost_per_turn_before"] and s["break_even_turns"] >= 1, s
' "$out"
# benchmark counts in the model's profile (a scratch store has no calibration): so does a fresh store
"$CMV" --store "$WORK/bench-store" init >/dev/null
"$CMV" --store "$WORK/bench-store" import "$HERE/../../examples/claude-code/$V.jsonl" >/dev/null
WANT=$("$CMV" --store "$WORK/bench-store" trim $V --dry-run -m claude-sonnet-4-5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_after"])')
ok "benchmark's tokens are trim's" has "\"tokens_after\":	$WANT" "$out"
run benchmark --all -m gpt-4o -c 50 --json; ok "benchmark --all -m -c" test $rc -eq 0
ok "benchmark --all covers every session" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["model"] == "gpt-4o" and d["cache_rate"] == 0.5 and d["summary"]["sessions"] == len(d["sessions"]) >= 2, d["summary"]
' "$out"
run benchmark --latest -o "$WORK/bench.json"; ok "benchmark --latest -o" test $rc -eq 0 -a -s "$WORK/bench.json"
ok "benchmark -o writes JSON" is_json "$(cat "$WORK/bench.json")"
run benchmark -c 101; ok "benchmark -c over 100: usage" test $rc -eq 2
for sh in bash zsh fish; do
	run completions $sh; ok "completions $sh" test $rc -eq 0
	for c in benchmark completions sessions; do ok "completions $sh names $c" has "$c" "$out"; done
	ok "completions $sh names a flag from the table" has "skip-launch" "$out"
done
run completions bash; printf '%s\n' "$out" >"$WORK/comp.bash"
ok "the bash completion parses" bash -n "$WORK/comp.bash"
ok "the bash completion completes" bash -c 'source "$1"; COMP_WORDS=(cmv bra); COMP_CWORD=1; _cmv; [ "${COMPREPLY[*]}" = branch ]' _ "$WORK/comp.bash"
ok "... and a command's flags" bash -c 'source "$1"; COMP_WORDS=(cmv list --so); COMP_CWORD=2; _cmv; [ "${COMPREPLY[*]}" = --sort ]' _ "$WORK/comp.bash"
# every command and flag of the table is in it: generated, not kept by hand
for c in $("$CMV" help | sed -n 's/^    \([a-z-]*\) .*/\1/p'); do
	grep -q "^	$c) words=" "$WORK/comp.bash" || { fail=$((fail + 1)); echo "FAIL: completion lacks $c"; }
done
run completions powershell; ok "completions of an unknown shell: usage" test $rc -eq 2
run completions bash --install; ok "completions --install" test $rc -eq 0 -a -s "$WORK/home/.local/share/bash-completion/completions/cmv"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
