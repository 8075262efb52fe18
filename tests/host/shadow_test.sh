#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cmv shadow against the scripted loopback server (tests/support/host_server.py), both
# providers: a prompt sent to two models, a replay of the last two turns, the branches,
# the report, the keys, and no key stored. Usage: shadow_test.sh CMV PYTHON3
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
CMV=$1
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$2" "$src/tests/support/host_server.py" "$tmp/port" "$tmp/log" &
pid=$!
# the port file appears, whole, once it listens: waited for, however loaded the machine (it ends early
# when the server exits; two minutes silent is a hang)
for _ in $(seq 2400); do { [ -s "$tmp/port" ] || ! kill -0 "$pid" 2>/dev/null; } && break; sleep 0.05; done
[ -s "$tmp/port" ] || { echo "host_server did not start"; exit 1; }
url="http://127.0.0.1:$(cat "$tmp/port")/v1"
export CMV_DIR="$tmp/.cmv" OPENAI_API_KEY=sk-shadowtestsecret0123456789 ANTHROPIC_API_KEY=sk-ant-shadowtestsecret0123
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
j() { "$2" -c "import json,sys; r=json.load(open('$1')); print($3)"; }
q() { j "$1" "$PY" "$2"; }
PY=$2

"$CMV" init "$tmp" >/dev/null
"$CMV" append main --role user --text "hello there model" >/dev/null
"$CMV" append main --role assistant --text "hello there, how can I help" >/dev/null
"$CMV" append main --role user --text "run: git push origin" >/dev/null
"$CMV" append main --role assistant --text "pushing" >/dev/null
echo '[{"name":"shell","description":"run a command","input_schema":{"type":"object","properties":{"cmd":{"type":"string"}}}}]' >"$tmp/tools.json"

"$CMV" shadow main --models gpt-4o,gpt-4o-mini --prompt "run: make deploy" --tools "$tmp/tools.json" \
	--llm-url "openai=$url" --json >"$tmp/p.json" 2>"$tmp/p.err"
check "shadow --prompt runs" '[ $? -eq 0 ]'
cat "$tmp/p.err"
check "one run, two answers, each on its own branch" '[ "$(q "$tmp/p.json" "len(r[\"runs\"][0][\"answers\"])")" = 2 ] && "$CMV" info shadow/main/gpt-4o >/dev/null && "$CMV" info shadow/main/gpt-4o-mini >/dev/null'
check "the two proposed different calls, and the report says so" '[ "$(q "$tmp/p.json" "r[\"runs\"][0][\"tool_calls_agree\"]")" = False ] && [ "$(q "$tmp/p.json" "r[\"runs\"][0][\"answers\"][1][\"tool_calls\"][0][\"name\"]")" = shell ]'
check "tokens, cost, time per model" '[ "$(q "$tmp/p.json" "all(a[\"input_tokens\"] > 0 and a[\"output_tokens\"] == 7 and a[\"cost_usd\"] > 0 and a[\"ms\"] >= 0 for a in r[\"runs\"][0][\"answers\"])")" = True ]'
check "a text similarity between 0 and 1" '[ "$(q "$tmp/p.json" "0 < r[\"runs\"][0][\"similarity\"] < 1")" = True ]'
check "each reply is the tip of its branch, its call in flight in the ledger" '"$CMV" ledger shadow/main/gpt-4o-mini --json | grep -q "\"in_flight\":[[:space:]]*1," && "$CMV" log shadow/main/gpt-4o-mini | grep -q "make deploy --dry-run"'
check "the usage is booked to each model" '"$CMV" stats shadow/main/gpt-4o-mini | grep -q "openai/gpt-4o-mini"'

"$CMV" shadow main --models claude-sonnet-4-5,gpt-4o --replay 2 --tools "$tmp/tools.json" \
	--llm-url "openai=$url" --llm-url "anthropic=$url" --json >"$tmp/r.json" 2>"$tmp/r.err"
check "shadow --replay 2 runs over both providers" '[ $? -eq 0 ] && grep -q "/v1/messages" "$tmp/log" && grep -q "/v1/chat/completions" "$tmp/log"'
cat "$tmp/r.err"
check "two turns, each against the original answer" '[ "$(q "$tmp/r.json" "[x[\"turn\"] for x in r[\"runs\"]]")" = "[1, 2]" ] && [ "$(q "$tmp/r.json" "r[\"runs\"][1][\"original\"][\"text\"]")" = pushing ]'
check "similarity to the original, per answer" '[ "$(q "$tmp/r.json" "all(0 <= a[\"similarity_to_original\"] <= 1 for x in r[\"runs\"] for a in x[\"answers\"])")" = True ]'
check "two models, the same call: the same idempotency key" '[ "$(q "$tmp/r.json" "len(set(a[\"tool_calls\"][0][\"key\"] for a in r[\"runs\"][1][\"answers\"]))")" = 1 ] && [ "$(q "$tmp/r.json" "r[\"runs\"][1][\"tool_calls_agree\"]")" = True ]'
check "replay branches per turn and model" '"$CMV" info shadow/main/turn-2/claude-sonnet-4-5 >/dev/null && "$CMV" info shadow/main/turn-1/gpt-4o >/dev/null'
"$CMV" shadow main --models claude-sonnet-4-5,gpt-4o --replay 1 --name side --tools "$tmp/tools.json" --llm-url "openai=$url" --llm-url "anthropic=$url" >"$tmp/h.out" 2>&1
check "the report for people: side by side, with totals" 'grep -q "^totals" "$tmp/h.out" && grep -q "like the original" "$tmp/h.out"'

# failures: an existing branch, a down endpoint (no branch left behind), too many turns
"$CMV" shadow main --models gpt-4o --prompt hi --llm-url "openai=$url" >/dev/null 2>"$tmp/e1"
check "an existing branch is refused" 'grep -q "already exists" "$tmp/e1"'
"$CMV" shadow main --models gpt-4o --prompt hi --name down --llm-url "openai=http://127.0.0.1:9/v1" >/dev/null 2>"$tmp/e2"
check "a down endpoint: an error naming it, and no branch left" 'grep -q "127.0.0.1:9" "$tmp/e2" && ! "$CMV" info down/gpt-4o >/dev/null 2>&1'
"$CMV" shadow main --models gpt-4o --replay 9 --llm-url "openai=$url" >/dev/null 2>"$tmp/e3"
check "replaying more turns than there are" 'grep -q "has 2 user turns" "$tmp/e3"'
# a switch and a compaction of a branch that ends mid-call warn, naming the call
"$CMV" switch shadow/main/gpt-4o-mini -m claude-sonnet-4-5 >/dev/null 2>"$tmp/w1"
check "cmv switch warns of the call in flight" 'grep -q "warning: 1 call with side effects is in flight" "$tmp/w1" && grep -q "make deploy --dry-run" "$tmp/w1"'
"$CMV" compact shadow/main/gpt-4o --for gpt-4o --dry-run >/dev/null 2>"$tmp/w2"
check "cmv compact --for warns of it too" 'grep -q "in flight: the requests to gpt-4o say the outcome is unknown" "$tmp/w2"'
"$CMV" handoff shadow/main/gpt-4o >"$tmp/h.md" 2>/dev/null
check "the handoff lists it as a pending action" 'grep -q "In flight, outcome unknown.*make deploy" "$tmp/h.md"'
check "no key is stored" '! grep -rqa "shadowtestsecret" "$tmp/.cmv"'
exit $fail
