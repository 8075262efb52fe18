#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Continuing a session in the other agent, without the clients (their own test is in the clients
# tier: tests/clients/carry_test.py). Curated sessions laid out as Claude Code and Codex keep
# them; each is carried into the other agent and the result read back by cmv as that agent's
# session (its format detected from the content), rendered for that agent's provider and passed
# by the checker; sync carries what either side adds, once; --cwd, fitting, a host's branch and
# the refusals.
# Usage: carry_test.sh PATH/TO/cmv   (CMV_TRANSCRIPTS: the curated transcripts)
set -u
CMV=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=${CMV_TRANSCRIPTS:?set CMV_TRANSCRIPTS to tests/resources/transcripts}
WORK=$(mktemp -d /tmp/cmv-carry-XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK/home CLAUDE_CONFIG_DIR=$WORK/home/.claude CODEX_HOME=$WORK/home/.codex CMV_DIR=$WORK/store/.cmv
mkdir -p "$WORK/store" "$WORK/proj" "$CLAUDE_CONFIG_DIR/projects/-x" "$CODEX_HOME/sessions/2026/01/02"
cd "$WORK/proj" || exit 1
pass=0 fail=0
ok() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
# j FILE EXPR: EXPR over the JSON in FILE (as d), printed as compact JSON (a string bare)
j() { python3 -c "import json,sys; d=json.load(open('$1')); v=($2); print(v if isinstance(v, str) else json.dumps(v, separators=(',', ':')))"; }

CC=$CLAUDE_CONFIG_DIR/projects/-x/6dc88126-2048-43a9-b5c2-b9747d5a0301.jsonl
CX=$CODEX_HOME/sessions/2026/01/02/rollout-2026-01-02T00-00-00-019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl
cp "$T/claude-code/vsla/6dc88126-2048-43a9-b5c2-b9747d5a0301.jsonl" "$CC"
cp "$T/codex/agentv/a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl" "$CX"
"$CMV" init "$WORK/store" >/dev/null
"$CMV" import "$CC" >/dev/null && "$CMV" import "$CX" >/dev/null || { echo "FAIL: import"; exit 1; }

# Claude Code into Codex
"$CMV" branch to-codex --from 6dc88126-2048-43a9-b5c2-b9747d5a0301 --codex --json >"$WORK/b1.json" 2>"$WORK/err"
ok "branch --codex from a Claude Code branch ($(head -c 300 "$WORK/err"))" '[ $? -eq 0 ] || true; [ -s "$WORK/b1.json" ]'
R1=$(j "$WORK/b1.json" "d['codex_file']")
ok "the carried report counts the shell calls mapped and the others stubbed" \
   '[ "$(j "$WORK/b1.json" "(d[\"carried\"][\"mapped_calls\"], d[\"carried\"][\"stubbed_calls\"])")" = "[17,3]" ]'
ok "each stubbed tool is listed with a recall id that recalls it" \
   '"$CMV" recall "$(j "$WORK/b1.json" "[n for n in d[\"carried\"][\"not_carried\"] if n[\"what\"]==\"tool\"][0][\"recall\"]")" | grep -q todos'
ok "--cwd's default is the current folder; the recorded one is remapped and named" \
   '[ "$(j "$WORK/b1.json" "(d[\"cwd\"], d[\"carried\"][\"cwd_from\"])")" = "[\"$WORK/proj\",\"/home/kenth56/vsla\"]" ] && ! grep -q /home/kenth56/vsla "$R1"'
ok "every carried item names where it came from" \
   'python3 -c "import json,sys; L=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(not all(\"cmv_carried\" in x for x in L[1:]) or L[1][\"cmv_carried\"][\"from\"] != \"cc/6dc88126-2048-43a9-b5c2-b9747d5a0301\")" "$R1"'
ok "the rollout reads back as a Codex session (format told from its content)" \
   '"$CMV" import "$R1" --json | grep -q "\"format\":[[:space:]]*\"codex\""'
ok "the carried branch renders for Codex's provider and passes the checker" \
   '"$CMV" export to-codex --format openai-responses --check >/dev/null'

# Codex into Claude Code
"$CMV" branch to-claude --from 019ed836-b1da-78f1-8a0c-e598363d10f4 --claude --json >"$WORK/b2.json" 2>"$WORK/err"
ok "branch --claude from a Codex branch ($(head -c 300 "$WORK/err"))" '[ -s "$WORK/b2.json" ]'
S2=$(j "$WORK/b2.json" "d['claude_file']")
ok "Codex's system prompts and reasoning are left behind, and listed" \
   '[ "$(j "$WORK/b2.json" "(d[\"carried\"][\"system_prompts_left\"], d[\"carried\"][\"stubbed_thinking\"] > 0)")" = "[6,true]" ]'
ok "the session reads back as Claude Code's, chained by uuid" \
   'python3 -c "import json,sys; L=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(not all(L[i][\"parentUuid\"]==L[i-1][\"uuid\"] for i in range(1,len(L))) or L[0][\"parentUuid\"] is not None or not all(\"cmvCarried\" in x for x in L))" "$S2"'
ok "the carried branch renders for Anthropic and passes the checker" \
   '"$CMV" export to-claude --format anthropic --check >/dev/null'

# sync: each side grows; what is new crosses once
CCID=6dc88126-2048-43a9-b5c2-b9747d5a0301
LASTU=$(python3 -c "import json,sys; print([json.loads(l)['uuid'] for l in open(sys.argv[1]) if '\"uuid\"' in l and json.loads(l).get('type') in ('user','assistant')][-1])" "$CC")
printf '{"parentUuid":"%s","isSidechain":false,"userType":"external","cwd":"/home/kenth56/vsla","sessionId":"%s","type":"user","message":{"role":"user","content":"grown-in-claude: run ls /home/kenth56/vsla/src"},"uuid":"11111111-1111-4111-8111-111111111111","timestamp":"2026-01-02T00:00:00.000Z"}\n' "$LASTU" "$CCID" >>"$CC"
printf '{"parentUuid":"11111111-1111-4111-8111-111111111111","isSidechain":false,"userType":"external","cwd":"/home/kenth56/vsla","sessionId":"%s","type":"assistant","message":{"id":"msg_g1","type":"message","role":"assistant","content":[{"type":"text","text":"listed"}]},"uuid":"22222222-2222-4222-8222-222222222222","timestamp":"2026-01-02T00:00:01.000Z"}\n' "$CCID" >>"$CC"
"$CMV" sync to-codex --json >"$WORK/s1.json" 2>"$WORK/err"
ok "sync carries Claude Code's new turn into Codex ($(head -c 300 "$WORK/err"))" \
   '[ "$(j "$WORK/s1.json" "(d[0][\"forward\"][\"messages\"], d[0][\"back\"][\"messages\"])")" = "[2,0]" ] && grep -q "grown-in-claude: run ls $WORK/proj/src" "$R1"'
printf '{"timestamp":"2026-01-02T00:00:02.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"grown-in-codex"}]}}\n{"timestamp":"2026-01-02T00:00:03.000Z","type":"response_item","payload":{"type":"function_call","name":"exec_command","arguments":"{\\"cmd\\":\\"ls\\"}","call_id":"call_g2"}}\n{"timestamp":"2026-01-02T00:00:04.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"call_g2","output":"a.c"}}\n' >>"$R1"
"$CMV" sync --json >"$WORK/s2.json" 2>"$WORK/err"
ok "sync (every pair) carries Codex's new turn back into Claude Code as Bash ($(head -c 300 "$WORK/err"))" \
   '[ "$(j "$WORK/s2.json" "[(p[\"branch\"], p[\"forward\"][\"messages\"], p[\"back\"].get(\"messages\")) for p in d if p[\"branch\"]==\"to-codex\"]")" = "[[\"to-codex\",0,3]]" ] && grep -q "grown-in-codex" "$CC" && tail -2 "$CC" | grep -q "\"name\":\"Bash\""'
ok "the lines carried back chain from the session's last line" \
   'grep "grown-in-codex" "$CC" | grep -q "\"parentUuid\":\"22222222-2222-4222-8222-222222222222\""'
"$CMV" sync --json >"$WORK/s3.json"
ok "a sync with nothing new carries nothing, both ways" \
   '[ "$(j "$WORK/s3.json" "sorted(set((p[\"forward\"][\"messages\"], p[\"back\"].get(\"messages\") or 0) for p in d))")" = "[[0,0]]" ]'
ok "no line was carried twice" '[ "$(grep -c grown-in-claude "$R1")" = 1 ] && [ "$(grep -c grown-in-codex "$CC")" = 1 ]'
ok "the source still reads back whole" '"$CMV" import "$CC" --json | grep -q "\"outcome\":[[:space:]]*\"unchanged\""'

# a branch an agent host wrote (cmv JSONL, its own tool), into both agents
printf '%s\n' '{"role":"user","content":"status of order 42?"}' \
  '{"role":"assistant","content":[{"type":"tool_use","id":"h1","name":"lookup_order","input":{"order":42}}]}' \
  '{"role":"user","content":[{"type":"tool_result","tool_use_id":"h1","content":"shipped"}]}' \
  '{"role":"assistant","content":"It shipped."}' >"$WORK/host.jsonl"
"$CMV" import "$WORK/host.jsonl" --branch host >/dev/null
for a in claude codex; do
	"$CMV" branch "host-$a" --from host --$a --json >"$WORK/h.json" 2>/dev/null
	ok "a host's branch carried into $a, its tool as text" \
	   '[ "$(j "$WORK/h.json" "(d[\"carried\"][\"source_agent\"], d[\"carried\"][\"stubbed_calls\"], d[\"carried\"][\"messages\"])")" = "[\"cmv\",1,4]" ]'
done

# fitting: over the model's budget, compacted first
"$CMV" branch fitted --from 019ed836-b1da-78f1-8a0c-e598363d10f4 --claude --budget 15000 --json >"$WORK/f.json" 2>"$WORK/err"
ok "a branch over --budget is compacted before it is carried ($(head -c 300 "$WORK/err"))" \
   '[ "$(j "$WORK/f.json" "(d[\"fit\"][\"compacted\"], d[\"fit\"][\"tokens_after\"] <= 15000, len(d[\"fit\"][\"recall\"]))")" = "[true,true,32]" ]'

# refusals leave nothing behind
ok "--cwd goes with --claude or --codex" '! "$CMV" branch nope --cwd /tmp 2>/dev/null'
ok "sync of a branch that is no pair says so" '"$CMV" sync host 2>&1 | grep -q "not a branch carried"'
n=$(ls "$CODEX_HOME"/sessions/*/*/*/ | wc -l)
ok "a budget nothing fits is refused, and no branch or file is left" \
   '! "$CMV" branch tiny --from 6dc88126-2048-43a9-b5c2-b9747d5a0301 --codex --budget 20 2>/dev/null && ! "$CMV" list | grep -q " tiny$" && [ "$(ls "$CODEX_HOME"/sessions/*/*/*/ | wc -l)" = "$n" ]'

echo "carry_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
