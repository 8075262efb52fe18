#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ledger of every session of a transcript folder (the corpus tier: ../shared/transcripts):
# each imports, its ledger reads, its counts add up; a few are held to hand-counted figures
# (calls, and the calls cut mid-call: Codex turns aborted, Claude Code sessions that stopped).
# Usage: ledger_corpus.sh CMV PYTHON3 TRANSCRIPTS
set -u
CMV=$1 PY=$2 T=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CMV_DIR="$tmp/.cmv"
"$CMV" init "$tmp" >/dev/null
fail=0 n=0
declare -A want=(
	[a3-92ff332928-0__019ed836-b1da-78f1-8a0c-e598363d10f4.jsonl]="23 2"
	[33-5841c2d678-0__019efc87-fa98-7971-91df-0c9512a065da.jsonl]="318 2" # 289 function, 28 custom, 1 tool search
	[8c-fa910f8ef9-0__2026-01-20-86cc3044-7515-43f1-9c25-1444738c64c9.jsonl]="56 1"
	[fc-99c919b212-0__062a8bdd-4322-4ffa-bc38-3e8b8bfb5a56.jsonl]="127 1"
	[f6108699-47cc-4b21-8ca6-3223992990b3.jsonl]="9 1"
	[00-34f597b72d-1__019f03e0-321f-7eb2-83cc-b54ecd71be23.jsonl]="177 0"
)
while IFS= read -r f; do
	b=$(basename "$f")
	br=$("$CMV" import "$f" --json 2>/dev/null | "$PY" -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d.get("branch") or "")' 2>/dev/null)
	[ -n "$br" ] || continue
	n=$((n + 1))
	if ! "$CMV" ledger "$br" --json >"$tmp/l.json" 2>"$tmp/err"; then
		echo "not ok - $b: $(cat "$tmp/err")"; fail=1; continue
	fi
	got=$("$PY" -c '
import json,sys
r=json.load(open(sys.argv[1])); c=r["counts"]
assert c["committed"]+c["in_flight"]+c["superseded"]==c["calls"]==len(r["calls"]), c
assert sum(1 for x in r["calls"] if x["state"]=="in_flight" and x["effect"]!="none")==c["in_flight_side_effects"]
print(c["calls"], c["in_flight"])' "$tmp/l.json") || { echo "not ok - $b: counts do not add up"; fail=1; continue; }
	if [ -n "${want[$b]:-}" ]; then
		if [ "$got" = "${want[$b]}" ]; then echo "ok - $b: $got (hand-counted)"; else echo "not ok - $b: $got, hand-counted ${want[$b]}"; fail=1; fi
		unset "want[$b]"
	else
		echo "ok - $b: $got"
	fi
done < <(find "$T" -type f \( -name '*.jsonl' -o -name '*session.json' -o -name '*.traj' -o -path '*openhands*.json' \) | sort)
for b in "${!want[@]}"; do echo "not ok - $b: not in $T"; fail=1; done
[ "$n" -ge 20 ] || { echo "not ok - only $n sessions"; fail=1; }
exit $fail
