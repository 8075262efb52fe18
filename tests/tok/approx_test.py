#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
The Claude approximation's error, measured on real sessions.

Claude's tokenizer is not public. Each Claude Code API call records its
prompt size (usage.input_tokens + cache_creation_input_tokens +
cache_read_input_tokens); between two consecutive calls of a session the
prompt grows by exactly what was appended: the first call's reply (text and
tool calls) and the tool results or user text that followed. Over every such
pair in TRANSCRIPTS/claude-code whose appended content is plain
(no thinking, images or injected system records), this compares that growth
with the Claude profile's estimate (its tokenizer count times token_factor,
plus per_block per content block; all read from `cmv models --json`, not
from here), and fails when the aggregate error leaves the stated bound; then the same with
the calibration cmv import learns from the same sessions (in sample: what a store that
imported them counts with), within the same bound.
The bound is stated for the full corpus (../shared/transcripts, at least
100 pairs); the curated set the project ships (tests/resources/transcripts)
has fewer pairs, named by MIN_PAIRS.

usage: approx_test.py CMV TOK_DUMP TRANSCRIPTS [MIN_PAIRS]
"""
import glob, json, os, subprocess, sys, tempfile

cmv, tok_dump, transcripts = sys.argv[1:4]
MIN_PAIRS = int(sys.argv[4]) if len(sys.argv) > 4 else 100
MODEL = "claude-sonnet-4-5"
BOUND = 0.10   # |sum(estimate) / sum(observed) - 1|, stated in docs/tokenizers.md


def pairs():
    out = []
    for f in sorted(glob.glob(transcripts + "/claude-code/**/*.jsonl", recursive=True)):
        calls = []
        for line in open(f, encoding="utf-8"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("isSidechain"):
                continue
            t = r.get("type")
            if t == "assistant":
                m = r.get("message", {})
                mid, u = m.get("id"), m.get("usage") or {}
                if not mid or m.get("model") == "<synthetic>":
                    continue
                tin = sum(u.get(k) or 0 for k in ("input_tokens", "cache_creation_input_tokens",
                                                  "cache_read_input_tokens"))
                if calls and calls[-1]["id"] == mid:
                    calls[-1]["blocks"] += m.get("content") or []
                else:
                    calls.append({"id": mid, "tin": tin, "model": m.get("model"),
                                  "blocks": list(m.get("content") or []), "after": []})
            elif t == "user" and calls:
                calls[-1]["after"].append(r.get("message", {}).get("content"))
            elif t == "system" and calls:
                calls[-1]["after"].append(None)  # content we cannot see: skip the pair
        for a, b in zip(calls, calls[1:]):
            if None in a["after"] or a["model"] != b["model"] or b["tin"] <= a["tin"]:
                continue
            parts, n_blocks, plain = [], 0, True
            for bl in a["blocks"]:
                if bl.get("type") == "text":
                    parts.append(bl["text"])
                elif bl.get("type") == "tool_use":
                    parts += [bl["name"], json.dumps(bl["input"], ensure_ascii=False)]
                else:
                    plain = False
                n_blocks += 1
            for c in a["after"]:
                items = [{"type": "text", "text": c}] if isinstance(c, str) else (c or [])
                for bl in items:
                    n_blocks += 1
                    if bl.get("type") == "text":
                        parts.append(bl["text"])
                    elif bl.get("type") == "tool_result":
                        cc = bl.get("content")
                        for x in ([{"type": "text", "text": cc}] if isinstance(cc, str) else (cc or [])):
                            if x.get("type") == "text":
                                parts.append(x["text"])
                            else:
                                plain = False
                    else:
                        plain = False
            if plain:
                out.append((b["tin"] - a["tin"], n_blocks, "\n".join(parts), a["model"]))
    return out


ps = pairs()
if len(ps) < MIN_PAIRS:
    sys.exit(f"approx_test: only {len(ps)} usable request pairs in {transcripts}")
profile = next(m for m in json.loads(subprocess.check_output([cmv, "models", "--json"]))
               if m["id"] == MODEL)
with tempfile.TemporaryDirectory() as d:
    src, dst = os.path.join(d, "texts"), os.path.join(d, "counts")
    with open(src, "w", encoding="utf-8") as fp:
        for _, _, text, _ in ps:
            fp.write(json.dumps(text) + "\n")
    subprocess.check_call([tok_dump, "--count-json", profile["tokenizer"], src, dst])
    raw = [int(x) for x in open(dst)]

est = [-(-r * profile["token_factor"] // 1) + profile["per_block"] * p[1] for r, p in zip(raw, ps)]
obs = [p[0] for p in ps]
ratio = sum(est) / sum(obs)
big = sorted(abs(e - o) / o for e, o in zip(est, obs) if o >= 300)
under = sum(1 for e, o in zip(est, obs) if o >= 300 and e < o) / len(big)
by_model = {}
for e, o, p in zip(est, obs, ps):
    s = by_model.setdefault(p[3], [0, 0, 0])
    s[0] += e; s[1] += o; s[2] += 1
print(f"approx_test: {MODEL} = {profile['tokenizer']} x {profile['token_factor']} + "
      f"{profile['per_block']}/block over {len(ps)} request pairs ({sum(obs)} observed tokens)")
print(f"  aggregate estimate/observed = {ratio:.3f}; per pair (growth >= 300 tokens, n={len(big)}): "
      f"median |error| {big[len(big) // 2]:.3f}, p90 {big[int(0.9 * len(big))]:.3f}, "
      f"under-estimates {under:.0%}")
for m, (e, o, n) in sorted(by_model.items()):
    print(f"  {m:28} n={n:3} estimate/observed = {e / o:.3f}")
if abs(ratio - 1) > BOUND:
    sys.exit(f"approx_test: aggregate error {ratio - 1:+.3f} is outside the stated +-{BOUND}")

# The same pairs against the calibrated counts: the sessions imported into a scratch store
# (cmv import learns each model's calibration from them), each pair estimated as its model's
# calibration says (factor x tokens + per_block x blocks + per_pair), else as the profile.
with tempfile.TemporaryDirectory() as d:
    env = dict(os.environ, CMV_DIR=os.path.join(d, ".cmv"))
    subprocess.check_call([cmv, "init", d], env=env, stdout=subprocess.DEVNULL)
    subprocess.run([cmv, "import", os.path.join(transcripts, "claude-code")], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    cal = {c["model"]: c for c in json.loads(subprocess.check_output(
        [cmv, "models", "--calibration", "--json"], env=env)) if c["used"]}
models = json.loads(subprocess.check_output([cmv, "models", "--json"]))
def profile_id(model_id):
    for m in models:
        if m["id"] == model_id or model_id in m.get("aliases", []):
            return m["id"]
    return None
est_c, used = [], 0
for r, p, e in zip(raw, ps, est):
    c = cal.get(profile_id(p[3]))
    if c:
        used += 1
        est_c.append(c["factor"] * r + c["per_block"] * p[1] + c["per_pair"])
    else:
        est_c.append(e)
ratio_c = sum(est_c) / sum(obs)
print(f"  calibrated ({len(cal)} models calibrated by cmv import, {used} of {len(ps)} pairs counted with "
      f"theirs): aggregate estimate/observed = {ratio_c:.3f}")
if used == 0:
    sys.exit("approx_test: cmv import calibrated no model of these pairs")
if abs(ratio_c - 1) > BOUND:
    sys.exit(f"approx_test: calibrated aggregate error {ratio_c - 1:+.3f} is outside the stated +-{BOUND}")
