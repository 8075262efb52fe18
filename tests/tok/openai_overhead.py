#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
OpenAI's per-item framing, measured on what Codex was billed, and cmv's count
of it checked on a rollout the measurement did not see.

Each Codex API call logs a token_count event with its usage
(last_token_usage.input_tokens). Within a turn the next call's prompt is the
previous one plus what was appended in between: the call's own output items
(reasoning, an assistant message, function calls) and the outputs of those
calls. So the growth between two consecutive calls is billed for exactly those
items. Three facts come out of the rollouts:
  - text is exact in o200k_base (the residuals below are the same integers
    pair after pair);
  - the call's reasoning stays in the prompt within a turn and is billed as
    the reasoning_output_tokens the call reported: the encrypted_content that
    carries it is not billed as text (cmv never counts it), and a session
    does not say how many tokens it holds, so the growth compared here is the
    billed growth minus those tokens;
  - what is left beyond the o200k count of the texts (message text, call name,
    arguments as their raw JSON text, output text) is framing: call ids and
    JSON syntax are not billed.

Measured on three rollouts (33-..., 46-..., a3-...: gpt-5.5 and gpt-5.4), the
fourth (00-34f597b72d, gpt-5.3-codex-spark, 2026-06-26) held out: cmv's count
of each held-out growth (pager/count.c's cmv_count_request on the appended
items, minus an empty request's count, through the rollout's own built-in
profile) must not be below the billed growth in more than MAX_LOW of the
pairs, and the total ratio counted / billed must lie in [1.00, 1.03]. Without
the held-out rollout (the curated set ships a3 only) the check runs on the
rollouts there are.

usage: openai_overhead.py TOK_DUMP TRANSCRIPTS [MIN_PAIRS]
Reproduce the figures in docs/tokenizers.md with
  python3 tests/tok/openai_overhead.py build/tests/tok_dump ../shared/transcripts
"""
import glob, json, os, statistics, subprocess, sys, tempfile
from collections import defaultdict

tok_dump, transcripts = sys.argv[1:3]
MIN_PAIRS = int(sys.argv[3]) if len(sys.argv) > 3 else 100
HELD_OUT = "00-34f597b72d"
MAX_LOW = 0.05            # share of held-out pairs cmv may count below the billed growth
RATIO = (1.00, 1.03)      # sum(counted) / sum(billed) over the held-out pairs
OUTPUTS = ("function_call_output", "custom_tool_call_output")
CALLS = ("function_call", "custom_tool_call")
KNOWN = ("message", "reasoning") + CALLS + OUTPUTS


def pairs_of(path):
    """(model, billed growth, appended items) for each usable pair of consecutive calls."""
    calls, seg, broke, model = [], [], False, None
    last_total = None
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        t, p = r.get("type"), r.get("payload") or {}
        if t == "turn_context":
            model = p.get("model")
            broke = True
        elif t == "compacted":
            broke = True
        elif t == "response_item":
            seg.append(p)
        elif t == "event_msg" and p.get("type") in ("task_started", "user_message", "context_compacted",
                                                     "turn_aborted", "task_complete"):
            broke = True
        elif t == "event_msg" and p.get("type") == "token_count" and p.get("info"):
            total = p["info"].get("total_token_usage")
            # Codex may log a call's usage twice: the repeat is no new call, and what
            # was logged since belongs to the next growth
            if total == last_total:
                continue
            last_total = total
            calls.append({"usage": p["info"]["last_token_usage"], "items": seg, "broke": broke,
                          "model": model})
            seg, broke = [], False
    out = []
    for a, b in zip(calls, calls[1:]):
        # a turn boundary on either side: the growth holds what the session does not show
        if a["broke"] or b["broke"] or a["model"] != b["model"]:
            continue
        items = a["items"]
        if not items or any(x.get("type") not in KNOWN for x in items):
            continue
        if any(x.get("type") == "message" and x.get("role") != "assistant" for x in items):
            continue
        billed = b["usage"]["input_tokens"] - a["usage"]["input_tokens"] - \
            a["usage"].get("reasoning_output_tokens", 0)
        out.append((a["model"], billed, items))
    return out


def texts_of(items):
    """What the provider bills as text: o200k-counted, without framing."""
    out = []
    for x in items:
        t = x.get("type")
        if t == "message":
            out += [c.get("text", "") for c in x.get("content") or []]
        elif t == "function_call":
            out += [x.get("name", ""), x.get("arguments", "")]
        elif t == "custom_tool_call":
            out += [x.get("name", ""), x.get("input", "")]
        elif t in OUTPUTS:
            o = x.get("output")
            out += [o] if isinstance(o, str) else [c.get("text", "") for c in o or []]
        elif t == "reasoning":
            out += [s.get("text", "") for s in x.get("summary") or []]
    return out


def run_tok_dump(mode, arg, lines):
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in"), os.path.join(d, "out")
        with open(src, "w", encoding="utf-8") as fp:
            fp.writelines(line + "\n" for line in lines)
        subprocess.check_call([tok_dump, mode, arg, src, dst])
        return [int(x) for x in open(dst)]


files = sorted(glob.glob(transcripts + "/codex/**/*.jsonl", recursive=True))
rows = []   # (file, model, billed, items)
for f in files:
    rows += [(os.path.basename(f), m, b, it) for m, b, it in pairs_of(f)]
if len(rows) < MIN_PAIRS:
    sys.exit(f"openai_overhead: only {len(rows)} usable call pairs in {transcripts}/codex")

# the o200k count of each pair's texts
flat, owner = [], []
for i, (_, _, _, items) in enumerate(rows):
    for s in texts_of(items):
        flat.append(json.dumps(s))
        owner.append(i)
text = [0] * len(rows)
for i, n in zip(owner, run_tok_dump("--count-json", "o200k_base", flat)):
    text[i] += n

# cmv's count of each growth: the appended items as a Responses request, less an empty one
counted = [0] * len(rows)
by_model = defaultdict(list)
for i, (_, m, _, _) in enumerate(rows):
    by_model[m].append(i)
for m, idx in by_model.items():
    bodies = [json.dumps({"input": []})] + [json.dumps({"input": rows[i][3]}) for i in idx]
    n = run_tok_dump("--count-request", m, bodies)
    for i, c in zip(idx, n[1:]):
        counted[i] = c - n[0]

# --- the measurement: framing = billed - text, by what a pair appended ---
held = [i for i, r in enumerate(rows) if r[0].startswith(HELD_OUT)]
measure = [i for i in range(len(rows)) if i not in set(held)] or list(range(len(rows)))
check = held or list(range(len(rows)))
kinds = defaultdict(list)
for i in measure:
    items = rows[i][3]
    n_calls = sum(x.get("type") in CALLS for x in items)
    n_msg = sum(x.get("type") == "message" for x in items)
    n_rsn = sum(x.get("type") == "reasoning" for x in items)
    custom = any(x.get("type") == "custom_tool_call" for x in items)
    kinds[(n_calls, n_msg, n_rsn, custom)].append(rows[i][2] - text[i])


def med(key):
    v = kinds.get(key)
    return statistics.median(v) if v else None


print(f"openai_overhead: {len(rows)} call pairs in {len(files)} rollouts; measured on {len(measure)}, "
      f"checked on {len(check)}{' (held out: ' + HELD_OUT + ')' if held else ''}")
print("  framing beyond the o200k text (median over pairs; n):")
for key in sorted(kinds):
    c, mm, r, cu = key
    print(f"    {c} {'custom ' if cu else ''}call(s) + output(s), {mm} message(s), {r} reasoning: "
          f"{med(key):g} (n={len(kinds[key])})")
one = med((1, 0, 0, False))
msg = med((1, 1, 1, False)) - med((1, 0, 1, False)) if med((1, 1, 1, False)) is not None and \
    med((1, 0, 1, False)) is not None else None
rsn = med((1, 0, 1, False)) - one if one is not None and med((1, 0, 1, False)) is not None else None
if one is not None:
    print(f"  a call and its output: {one:g}; an assistant message: {msg}; a reasoning item: {rsn}")
    for n in range(2, 7):
        v = med((n, 1, 1, False))
        if v is not None and msg is not None and rsn is not None:
            print(f"  {n} parallel calls and their outputs: {v - msg - rsn:g} ({(v - msg - rsn) / n:.1f} a call)")

# --- the check on the held-out pairs ---
report = defaultdict(lambda: [0, 0, 0, 0])
for i, (f, m, b, _) in enumerate(rows):
    s = report[f[:13] + " " + m]
    s[0] += 1; s[1] += counted[i] < b; s[2] += counted[i]; s[3] += b
for k, (n, low, c, b) in sorted(report.items()):
    print(f"  {k:36} pairs {n:3}  counted below billed {low:3} ({low / n:.1%})  counted/billed {c / b:.4f}")
low = sum(counted[i] < rows[i][2] for i in check)
ratio = sum(counted[i] for i in check) / sum(rows[i][2] for i in check)
print(f"  checked: {len(check)} pairs, counted below billed in {low} ({low / len(check):.1%}), "
      f"counted/billed {ratio:.4f}")
if low > MAX_LOW * len(check):
    sys.exit(f"openai_overhead: cmv counts {low} of {len(check)} growths below what was billed "
             f"(over {MAX_LOW:.0%})")
if not RATIO[0] <= ratio <= RATIO[1]:
    sys.exit(f"openai_overhead: counted/billed {ratio:.4f} is outside [{RATIO[0]:.2f}, {RATIO[1]:.2f}]")
