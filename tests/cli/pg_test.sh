#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A shared PostgreSQL store through the CLI: init by URL, many writers at
# once, a writer killed mid-transaction, push and pull between SQLite,
# PostgreSQL and a bundle (same ids everywhere), non-fast-forwards refused,
# an interrupted pull resumed, and no password in any output.
# Usage: pg_test.sh PATH/TO/cmv   (CMV_TEST_PG names the test cluster's state file)
set -u
CMV=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
TRANSCRIPTS=$HERE/../resources/transcripts
WORK=$(mktemp -d /tmp/cmv-pg-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
unset CMV_DIR

[ -n "${CMV_TEST_PG:-}" ] && [ -f "$CMV_TEST_PG" ] || { echo "pg_test: no test cluster (CMV_TEST_PG)" >&2; exit 1; }
BASE=$(sed -n 2p "$CMV_TEST_PG")
SOCKDIR=$(sed -n 1p "$CMV_TEST_PG")

pass=0 fail=0
out="" err="" rc=0
run() { out=$("$CMV" "$@" 2>"$WORK/.err"); rc=$?; err=$(cat "$WORK/.err"); }
ok() {
	local name=$1; shift
	if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; echo "  rc=$rc"; echo "  out: ${out:0:600}"; echo "  err: ${err:0:600}"; fi
}
has() { grep -qF -- "$1" <<<"$2"; }
hasnt() { ! grep -qF -- "$1" <<<"$2"; }
# A fresh schema in the test cluster: each store of this script is one
store() {
	psql -qX "$BASE" -c "DROP SCHEMA IF EXISTS $1 CASCADE; CREATE SCHEMA $1" >/dev/null 2>&1 ||
		{ echo "pg_test: cannot create schema $1" >&2; exit 1; }
	printf '%s&options=-csearch_path%%3D%s' "$BASE" "$1"
}
ids() { "$CMV" --store "$1" log "$2" --json | python3 -c 'import json,sys; print(" ".join(n["id"] for n in json.load(sys.stdin)))'; }

# --- one store by URL -----------------------------------------------------------
P=$(store t_basic)
run init "$P"; ok "init by URL" test $rc -eq 0
ok "init says where, without the query string" has "Initialized empty cmv store in postgresql:///postgres" "$out"
run --store "$P" append --role user --text "the zebra crossed the road"; ok "append on PostgreSQL" test $rc -eq 0
CMV_DIR=$P run append --role assistant --text "zebras have stripes"; ok "CMV_DIR=URL selects it" test $rc -eq 0
run --store "$P" search zebra; ok "search: stemmed, both" test "$(wc -l <<<"$out")" -eq 2
run --store "$P" search --json "zebra road"; ok "search: all words, BM25 scores" has '"score"' "$out"
run --store "$P" fsck; ok "fsck clean" test $rc -eq 0 -a "$out" = ok
run --store "$P" init; ok "init again: existing" has "Reinitialized existing" "$out"
# a store that was never initialised is not made by a mere command
P0=$(store t_none)
run --store "$P0" log; ok "no store at the URL: error" test $rc -eq 1
ok "...that says to init" has "cmv init" "$err"

# --- no password in output or errors ------------------------------------------------
run --store "postgresql://cmv:s3cretpw@/nodb?host=$SOCKDIR&password=s3cretpw" log
ok "bad database: error" test $rc -eq 1
ok "...without the password" hasnt s3cretpw "$err$out"
run init "postgresql://cmv:s3cretpw@/postgres?host=$SOCKDIR&options=-csearch_path%3Dt_basic"
ok "init with a password in the URL" test $rc -eq 0
ok "...prints no password" hasnt s3cretpw "$out$err"

# --- 16 writers at once: appends to one branch, to their own, and imports ----------
P=$(store t_many)
"$CMV" init "$P" >/dev/null
N=10
pids=()
for w in $(seq 1 16); do
	(
		if [ $((w % 4)) -eq 0 ]; then
			# an importer: the same sessions from four processes, deduplicated by ids
			"$CMV" --store "$P" import "$TRANSCRIPTS/claude-code/vsla" >/dev/null || exit 1
		fi
		for i in $(seq 1 $N); do
			"$CMV" --store "$P" append main --role user --text "writer $w message $i" >/dev/null || exit 1
			"$CMV" --store "$P" append "w$w" --role user --text "own $w $i" >/dev/null 2>&1 ||
				"$CMV" --store "$P" branch "w$w" --skip-launch >/dev/null 2>&1 || true
		done
	) &
	pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
ok "16 concurrent writers all succeed" test $bad -eq 0
run --store "$P" log main --json
n_main=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$out")
ok "no append to the shared branch is lost (16 x $N)" test "$n_main" -eq $((16 * N))
run --store "$P" fsck; ok "fsck clean after 16 writers" test $rc -eq 0 -a "$out" = ok
P1=$(store t_one)
"$CMV" init "$P1" >/dev/null
"$CMV" --store "$P1" import "$TRANSCRIPTS/claude-code/vsla" >/dev/null
n_sessions() { "$CMV" --store "$1" list | grep -c ' session '; }
ok "four importers of the same sessions store them once" test "$(n_sessions "$P")" -eq "$(n_sessions "$P1")" -a "$(n_sessions "$P1")" -ge 1

# --- a writer killed mid-transaction ------------------------------------------------
P=$(store t_kill)
"$CMV" init "$P" >/dev/null
for k in 1 2 3; do
	"$CMV" --store "$P" import "$TRANSCRIPTS/claude-code" >/dev/null 2>&1 &
	victim=$!
	sleep 0.$((k * 2))
	kill -9 $victim 2>/dev/null
	wait $victim 2>/dev/null
done
run --store "$P" fsck; ok "fsck clean after kill -9 of importers" test $rc -eq 0 -a "$out" = ok
run --store "$P" import "$TRANSCRIPTS/claude-code"; ok "an import after the kills completes" test $rc -eq 0
run --store "$P" fsck; ok "...and the store is clean" test $rc -eq 0 -a "$out" = ok

# --- push and pull: SQLite -> PostgreSQL -> SQLite -> bundle -> SQLite, same ids ---
P=$(store t_sync)
mkdir a b c
python3 -c 'import json
for i in range(300): print(json.dumps({"role": "user" if i % 2 == 0 else "assistant", "content": "line %d" % i}))' >lines.jsonl
(cd a && "$CMV" init >/dev/null && "$CMV" import "$TRANSCRIPTS/claude-code/vsla" >/dev/null &&
	"$CMV" import --format cmv --branch main ../lines.jsonl >/dev/null && "$CMV" snapshot s1 --from main >/dev/null)
"$CMV" init "$P" >/dev/null
run --store a/.cmv push "$P"; ok "push SQLite -> PostgreSQL" test $rc -eq 0
ok "...reports what moved" has "created      s1" "$out"
sent_all=$(sed -n 's/^sent \([0-9]*\) nodes.*/\1/p' <<<"$out")
run --store a/.cmv push "$P"; ok "push again: nothing to send" has "sent 0 nodes, 0 blobs" "$out"
(cd b && "$CMV" init >/dev/null)
run --store b/.cmv pull "$P"; ok "pull PostgreSQL -> SQLite" test $rc -eq 0
ok "same ids on main: SQLite and PostgreSQL" test "$(ids a/.cmv main)" = "$(ids "$P" main)"
ok "same ids on main: both SQLite stores" test "$(ids a/.cmv main)" = "$(ids b/.cmv main)"
run --store b/.cmv push "$WORK/x.bundle"; ok "push SQLite -> new bundle" test $rc -eq 0 -a -s "$WORK/x.bundle"
(cd c && "$CMV" init >/dev/null)
run --store c/.cmv pull "$WORK/x.bundle"; ok "pull bundle -> SQLite" test $rc -eq 0
ok "same ids after the bundle" test "$(ids a/.cmv main)" = "$(ids c/.cmv main)"
P2=$(store t_sync2)
"$CMV" init "$P2" >/dev/null
run --store "$P2" pull "$WORK/x.bundle"; ok "pull bundle -> PostgreSQL" test $rc -eq 0
ok "same ids on the second PostgreSQL store" test "$(ids a/.cmv main)" = "$(ids "$P2" main)"
run --store "$P2" fsck; ok "fsck clean after the pulls" test $rc -eq 0 -a "$out" = ok
run --store c/.cmv fsck; ok "fsck clean (SQLite)" test $rc -eq 0 -a "$out" = ok
run --store "$P2" info main --json; ok "origin recorded? (ref info works)" test $rc -eq 0

# 100 new nodes send 100 nodes, not the history
(cd a && for i in $(seq 1 100); do "$CMV" append main --role user --text "new $i" >/dev/null; done)
run --store a/.cmv push "$P" main; ok "push of 100 new nodes" has "sent 100 nodes" "$out"
ok "...a fast-forward" has "fast-forward main" "$out"

# non-fast-forward refused, then forced
"$CMV" --store "$P" append main --role user --text "only in PostgreSQL" >/dev/null
"$CMV" --store a/.cmv append main --role user --text "only in SQLite" >/dev/null
run --store a/.cmv push "$P" main; ok "a diverged branch is refused" test $rc -eq 1
ok "...as not a fast-forward" has "not a fast-forward" "$out"
run --store a/.cmv push --force "$P" main; ok "--force moves it" test $rc -eq 0 -a -n "$(has forced "$out" && echo y)"
ok "...to the pushed tip" test "$(ids a/.cmv main)" = "$(ids "$P" main)"
run --store a/.cmv push "$P" nope; ok "an unknown ref is an error" test $rc -eq 1

# --- a pull interrupted half way, then resumed ----------------------------------------
P3=$(store t_resume)
"$CMV" init "$P3" >/dev/null
total=$(ids a/.cmv main | wc -w)
(CMV_SYNC_TEST_KILL_AFTER=100 exec "$CMV" --store "$P3" pull --batch 50 "$WORK/a/.cmv" main >/dev/null 2>&1)
rc=$?; ok "the pull was killed (SIGKILL)" test $rc -eq 137
run --store "$P3" fsck; ok "fsck clean after the interrupted pull" test $rc -eq 0 -a "$out" = ok
run --store "$P3" pull "$WORK/a/.cmv" main; ok "resumed pull completes" test $rc -eq 0
got=$(sed -n 's/^received \([0-9]*\) nodes.*/\1/p' <<<"$out")
ok "...sending only what the first did not commit ($got of $total)" test "$got" -gt 0 -a "$got" -le $((total - 100))
ok "...with the same ids" test "$(ids a/.cmv main)" = "$(ids "$P3" main)"

echo "pg_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
