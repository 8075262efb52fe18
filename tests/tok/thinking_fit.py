#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
What a thinking block stored without its text costs: fitted on signatures.

Claude Code stores a thinking block of late-2026 sessions as empty text and
a signature; the signature encrypts the thinking, so its length grows with
the text. Within a tool loop Anthropic bills the thinking whole, so
count_anthropic (pager/count.c) charges such a block by its signature:

    raw tokens = ceil(per_kb / 1000 * (signature bytes - base)), at least 0

in the tokenizer's raw tokens, which the model's factor then scales (as any
text). This fits `base` and `per_kb` on the thinking blocks of
TRANSCRIPTS/claude-code that carry both text and signature (older sessions),
the text counted with o200k_base times the Claude profile's factor (read from
`cmv models --json`), with the blocks of one session file held out; prints
the fit, and the error of the fit and of the constants pager/count.c ships on
the held-out session; and fails when either is over BOUND.

The fit: for each base (a multiple of 4, a base64 quantum, 0 to 400), per_kb
is the ratio of sums (the fitted blocks' total is matched exactly) and the
base kept is the one with the least total absolute error per block.

usage: thinking_fit.py CMV TOK_DUMP TRANSCRIPTS SOURCE_DIR
"""
import glob, json, math, os, re, subprocess, sys, tempfile

cmv, tok_dump, transcripts, source = sys.argv[1:5]
MODEL = "claude-sonnet-4-5"
# The newest session file with thinking (57 blocks); none of its blocks is fitted.
HELD_OUT = "d5-99f72ee73a-0__2026-01-21-0cd9edf7-459c-4900-af40-cf2c64dea525.jsonl"
BOUND = 0.10   # |sum(estimate) / sum(observed) - 1| on the held-out session (docs/tokenizers.md)
MIN_BLOCKS = 300


def blocks():
    out = []
    for f in sorted(glob.glob(transcripts + "/claude-code/**/*.jsonl", recursive=True)):
        for line in open(f, encoding="utf-8"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            m = r.get("message")
            c = m.get("content") if isinstance(m, dict) else None
            for b in c if isinstance(c, list) else []:
                if (isinstance(b, dict) and b.get("type") == "thinking" and b.get("thinking")
                        and b.get("signature")):
                    out.append((os.path.basename(f), b["thinking"], len(b["signature"].encode())))
    return out


def shipped():
    """The constants as pager/count.c has them."""
    src = open(os.path.join(source, "pager", "count.c"), encoding="utf-8").read()
    got = {}
    for name in ("THINKING_SIGNATURE_BASE", "THINKING_TOKENS_PER_KB"):
        m = re.search(r"#define\s+" + name + r"\s+(\d+)", src)
        if not m:
            sys.exit(f"thinking_fit: pager/count.c defines no {name}")
        got[name] = int(m.group(1))
    return got["THINKING_SIGNATURE_BASE"], got["THINKING_TOKENS_PER_KB"]


def raw_estimate(sig, base, per_kb):
    return max(0, math.ceil(per_kb * (sig - base) / 1000))


def fit(rows):
    best = None
    for base in range(0, 401, 4):
        per_kb = 1000 * sum(r for _, r, _ in rows) / sum(max(1, s - base) for _, _, s in rows)
        err = sum(abs(per_kb * max(0, s - base) / 1000 - r) for _, r, s in rows)
        if best is None or err < best[0]:
            best = (err, base, per_kb)
    return best[1], best[2]


def errors(rows, base, per_kb, factor):
    est = [math.ceil(raw_estimate(s, base, per_kb) * factor) for _, _, s in rows]
    obs = [math.ceil(r * factor) for _, r, _ in rows]
    rel = sorted(abs(e - o) / o for e, o in zip(est, obs))
    return sum(est) / sum(obs) - 1, rel[len(rel) // 2], rel[int(0.9 * len(rel))], sum(obs)


bl = blocks()
if len(bl) < MIN_BLOCKS:
    sys.exit(f"thinking_fit: only {len(bl)} thinking blocks with text and signature in {transcripts}")
profile = next(m for m in json.loads(subprocess.check_output([cmv, "models", "--json"])) if m["id"] == MODEL)
factor = profile["token_factor"]
with tempfile.TemporaryDirectory() as d:
    src, dst = os.path.join(d, "texts"), os.path.join(d, "counts")
    with open(src, "w", encoding="utf-8") as fp:
        for _, text, _ in bl:
            fp.write(json.dumps(text) + "\n")
    subprocess.check_call([tok_dump, "--count-json", profile["tokenizer"], src, dst])
    raw = [int(x) for x in open(dst)]
rows = [(f, r, s) for (f, _, s), r in zip(bl, raw)]
fitted = [x for x in rows if x[0] != HELD_OUT]
held = [x for x in rows if x[0] == HELD_OUT]
if not held:
    sys.exit(f"thinking_fit: the held-out session {HELD_OUT} is not in {transcripts}")

base, per_kb = fit(fitted)
ship_base, ship_per_kb = shipped()
print(f"thinking_fit: {len(rows)} thinking blocks with text and signature, {len(fitted)} fitted, "
      f"{len(held)} held out ({HELD_OUT[:13]}...)")
print(f"  fit: {profile['tokenizer']} tokens = {per_kb:.1f}/1000 x (signature bytes - {base}); "
      f"x {factor} = {per_kb * factor / 1000:.4f} {MODEL} tokens per signature byte over {base}")
print(f"  pager/count.c: {ship_per_kb}/1000 x (signature bytes - {ship_base})")
failed = False
for name, b, k in (("fit", base, per_kb), ("pager/count.c", ship_base, ship_per_kb)):
    agg, med, p90, obs = errors(held, b, k, factor)
    print(f"  held out, {name}: {obs} tokens observed, aggregate estimate/observed - 1 = {agg:+.3f}; "
          f"per block median |error| {med:.3f}, p90 {p90:.3f}")
    failed |= abs(agg) > BOUND
# for the record: each session held out in turn (not a bound: a few sessions have few blocks)
for f in sorted({x[0] for x in rows}):
    rest = [x for x in rows if x[0] != f]
    b, k = fit(rest)
    agg, med, _, obs = errors([x for x in rows if x[0] == f], b, k, factor)
    print(f"  leave-one-out {f[:13]:13} n={sum(1 for x in rows if x[0] == f):3} base={b:3} per_kb={k:5.1f} "
          f"aggregate {agg:+.3f}, median |error| {med:.3f}")
if failed:
    sys.exit(f"thinking_fit: the held-out aggregate error is outside the stated +-{BOUND}")
