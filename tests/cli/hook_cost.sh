#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a hook costs per tool call (docs/trim.md, "Hooks"): cmv auto-trim
# timed as Claude Code runs it, when there is nothing to do and when it
# trims, beside `cmv version` (starting the program at all) and a command
# that opens the store and reads a note (what keeping the hook's state in
# the store would cost). Not a test: it prints milliseconds per call.
# Usage: hook_cost.sh PATH/TO/cmv [CALLS]
set -u
CMV=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
N=${2:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/cmv-hookcost-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
unset CMV_DIR CMV_HOOK_LOG
export HOME=$WORK/home CLAUDE_CONFIG_DIR=$WORK/home/.claude
SID=6dc88126-2048-43a9-b5c2-b9747d5a0301
SRC=$HERE/../resources/transcripts/claude-code/vsla/$SID.jsonl
PROJ=$CLAUDE_CONFIG_DIR/projects/-home-kenth56-vsla
LIVE=$PROJ/$SID.jsonl
mkdir -p "$PROJ" && cp "$SRC" "$LIVE"
"$CMV" init >/dev/null
IN="{\"session_id\":\"$SID\",\"transcript_path\":\"$LIVE\",\"cwd\":\"/home/kenth56/vsla\""
printf '%s,"hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"ls"},"tool_response":{"stdout":"a","stderr":""}}' "$IN" >post.json
printf '%s,"hook_event_name":"PreCompact","trigger":"auto"}' "$IN" >pre.json
python3 - "$SID" "$LIVE" >big.json <<'PY'
import json, sys
body = "".join("line %d: some source text of an edited file\n" % i for i in range(120000))
print(json.dumps({"session_id": sys.argv[1], "transcript_path": sys.argv[2], "hook_event_name": "PostToolUse",
                  "tool_name": "Edit", "tool_response": {"originalFile": body}}))
PY

"$CMV" import "$LIVE" >/dev/null
cp "$LIVE" live.orig
# the median of N runs of each, timed around the process as a hook runner sees it
python3 - "$CMV" "$WORK" "$N" <<'PY'
import os, shutil, subprocess, sys, time
cmv, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.chdir(work)
live = [l for l in open("post.json").read().split('"') if l.endswith(".jsonl")][0]
def med(args, stdin=None, calls=n, before=None):
    ts = []
    for _ in range(calls):
        if before:
            before()
        inp = open(stdin, "rb") if stdin else subprocess.DEVNULL
        t0 = time.perf_counter()
        subprocess.run(args, stdin=inp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ts.append((time.perf_counter() - t0) * 1000)
        if stdin:
            inp.close()
    ts.sort()
    return ts[len(ts) // 2]
hook = [cmv, "--store", work + "/.cmv", "auto-trim"]
rows = [("cmv version (starting the program)", med([cmv, "version"])),
        ("open the store, read a branch note (cmv model)", med([cmv, "--store", work + "/.cmv", "model", os.path.basename(live)[:-6]])),
        ("auto-trim --check-size, under --size", med(hook + ["--check-size", "--size", "100000000"], "post.json"))]
trim = med(hook, "pre.json", 20, lambda: shutil.copyfile("live.orig", live))
rows += [("auto-trim --check-size, over --size, not grown since", med(hook + ["--check-size", "--size", "100000"], "post.json")),
         ("  the same with a %d MB PostToolUse input" % (os.path.getsize("big.json") // 1000000),
          med(hook + ["--check-size", "--size", "100000"], "big.json", 20)),
         ("auto-trim on PreCompact: trims (backup, import, trim, write)", trim)]
if '"outcome":"trimmed"' not in open(".cmv/auto-trim.log").read():
    sys.exit("hook_cost: the trims did not trim")
print("%-62s %8s" % ("median ms per call (%d calls, trims 20, a %d-byte session)" % (n, os.path.getsize("live.orig")), "ms"))
for name, v in rows:
    print("%-62s %8.2f" % (name, v))
print("trim / nothing to do: %.0fx" % (trim / rows[3][1]))
PY
