#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/host.c and examples/host.py, each a whole agent loop against the scripted
# loopback model server (tests/support/host_server.py): tool calls, a switch from an
# OpenAI model to a Claude model and back, usage per model, a recall through cmv_recall.
# Usage: examples_test.sh EXAMPLE_HOST_BINARY LIBCMV_SO PYTHON3
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$3" "$src/tests/support/host_server.py" "$tmp/port" "$tmp/log" &
pid=$!
# the port file appears, whole, once it listens: waited for, however loaded the machine (it ends early
# when the server exits; two minutes silent is a hang)
for _ in $(seq 2400); do { [ -s "$tmp/port" ] || ! kill -0 "$pid" 2>/dev/null; } && break; sleep 0.05; done
[ -s "$tmp/port" ] || { echo "host_server did not start"; exit 1; }
url="http://127.0.0.1:$(cat "$tmp/port")"
fail=0
check() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }

"$1" "$tmp/c/deep/.cmv" "$url" >"$tmp/c.out" 2>&1
rc=$?
cat "$tmp/c.out"
check "host.c runs the loop" '[ $rc -eq 0 ]'
check "host.c: both models booked, each with a price" 'grep -q "\"signature\":\"openai/gpt-4o\"" "$tmp/c.out" && grep -q "\"signature\":\"anthropic/claude-sonnet-4-5\"" "$tmp/c.out" && ! grep -q "\"cost_usd\":null" "$tmp/c.out"'
check "host.c: the model recalled" 'grep -q "^recalled [1-9]" "$tmp/c.out"'
check "the server saw both wire formats, streamed, with the tools" 'grep -q "/v1/messages.*\"stream\": true.*cmv_recall" "$tmp/log" && grep -q "/v1/chat/completions.*\"stream\": true.*\"shell\"" "$tmp/log"'
: >"$tmp/log"
# a sanitized libcmv in Python needs the sanitizer's runtime first (CMV_PYTHON_PRELOAD, set by ctest)
py_env=()
[ -n "${CMV_PYTHON_PRELOAD:-}" ] && py_env=(LD_PRELOAD="$CMV_PYTHON_PRELOAD" ASAN_OPTIONS=detect_leaks=0)
env "${py_env[@]}" CMV_LIBRARY="$2" PYTHONPATH="$src/bindings/python" "$3" "$src/examples/host.py" "$tmp/py/.cmv" "$url" >"$tmp/py.out" 2>&1
rc=$?
cat "$tmp/py.out"
check "host.py runs the loop" '[ $rc -eq 0 ]'
check "host.py: the model recalled" 'grep -q "recalled [1-9]" "$tmp/py.out"'
check "host.py and host.c asked the same of the server" '[ "$(wc -l <"$tmp/log")" -ge 10 ]'
exit $fail
