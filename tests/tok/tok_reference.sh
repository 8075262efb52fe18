#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Token ids, compared id for id with the official tiktoken core (tiktoken@1.0.22,
# the Rust code as wasm; installed by scripts/setup) for cl100k_base and
# o200k_base, and with llama3-tokenizer-js@1.2.0 for llama3, over: every file
# of TRANSCRIPTS (the curated set, tests/resources/transcripts, by default; the
# full corpus, ../shared/transcripts, in the corpus tier), this project's own sources, and a generated
# multilingual/code/adversarial corpus. Then the SentencePiece models, line by
# line: against spm_encode (libsentencepiece's own tool, on the same .model
# files) for llama2, mistral-7b-v0.1 and gemma3, and against the JavaScript
# packages the models were converted from (llama-tokenizer-js,
# mistral-tokenizer-js), which checks the converter.
# Usage: tok_reference.sh TOK_DUMP DATA_DIR SOURCE_DIR [TRANSCRIPTS]
set -euo pipefail
DUMP=$1 DATA=$2 SRC=$3 TRANSCRIPTS=${4:-$3/tests/resources/transcripts}
REF=$DATA/reference
command -v node >/dev/null || { echo "tok_reference: node is required (scripts/setup installs it)" >&2; exit 1; }
test -f "$REF/node_modules/tiktoken/package.json" ||
	{ echo "tok_reference: the reference tokenizer is missing: run scripts/setup" >&2; exit 1; }
test -d "$TRANSCRIPTS" || { echo "tok_reference: $TRANSCRIPTS is missing" >&2; exit 1; }
WORK=$(mktemp -d /tmp/cmv-tokref-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat >"$REF/ref.mjs" <<'JS'
// node ref.mjs ENC OUTDIR FILE...: uint32 LE ids of each file, as tiktoken's encode_ordinary
import fs from 'fs';
import path from 'path';
import { get_encoding } from 'tiktoken';
const [enc, outDir, ...files] = process.argv.slice(2);
const e = get_encoding(enc);
files.forEach((f, i) => {
  const ids = e.encode_ordinary(fs.readFileSync(f, 'utf8'));  // invalid UTF-8 -> U+FFFD here
  fs.writeFileSync(path.join(outDir, `${i}.ref`), Buffer.from(new Uint32Array(ids).buffer));
});
e.free();
JS
cat >"$REF/ref_llama3.mjs" <<'JS'
// node ref_llama3.mjs llama3 OUTDIR FILE...: llama3-tokenizer-js ids, no BOS/EOS
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';
const [, outDir, ...files] = process.argv.slice(2);
const here = path.dirname(new URL(import.meta.url).pathname);
const tok = (await import(pathToFileURL(path.join(here, 'llama3-tokenizer-js/bundle/llama3-tokenizer-with-baked-data.js')))).default;
files.forEach((f, i) => {
  const ids = tok.encode(fs.readFileSync(f, 'utf8'), { bos: false, eos: false });
  fs.writeFileSync(path.join(outDir, `${i}.ref`), Buffer.from(new Uint32Array(ids).buffer));
});
JS

# A generated corpus: every script class, code, emoji, whitespace runs, long pieces, bad bytes.
node -e '
let s = 1; const r = n => (s = (s * 1103515245 + 12345) % 2147483648) % n;
const cls = [[0x20,0x7e],[0xa0,0x24f],[0x370,0x3ff],[0x400,0x4ff],[0x590,0x6ff],[0x900,0x97f],
  [0xe00,0xe7f],[0x3040,0x30ff],[0x4e00,0x9fff],[0xac00,0xd7a3],[0x1f300,0x1faff],[0x2000,0x206f]];
const out = [];
for (let k = 0; k < 4000; k++) {
  const c = cls[r(cls.length)], n = 1 + r(40); let w = "";
  for (let i = 0; i < n; i++) w += String.fromCodePoint(c[0] + r(c[1] - c[0] + 1));
  out.push(w, [" ", "\n", "  ", "\t", "\r\n", " \n\n", "'"'"'s ", "//", "*/\n/*"][r(9)]);
}
out.push("a\u180E\u180Eb  \u180E x", " ".repeat(3000), "x".repeat(70000), "_".repeat(30000), "\u00a0\u0085\u2028");
require("fs").writeFileSync(process.argv[1], out.join(""));
' "$WORK/generated.txt"
printf '\x61\xC3\x28\x62\xE2\x82\x63\xF0\x9F\x98\x64\xA9\xFF\x65 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf \xe0\x80\x80' >"$WORK/invalid.bin"

mapfile -t files < <(find "$TRANSCRIPTS" -type f -name '*.json*' -o -type f -name '*.traj' | sort)
# fail, never pass on nothing: the curated set has 16 such files, the full corpus 45
test "${#files[@]}" -ge 10 || { echo "tok_reference: only ${#files[@]} transcripts in $TRANSCRIPTS" >&2; exit 1; }
files+=("$WORK/generated.txt" "$WORK/invalid.bin")
mapfile -t -O "${#files[@]}" files < <(find "$SRC/dag" "$SRC/pager" "$SRC/formats" "$SRC/include" -type f | sort)

total=0
for enc in cl100k_base o200k_base llama3; do
	mkdir -p "$WORK/$enc"
	if [ "$enc" = llama3 ]; then
		node "$REF/ref_llama3.mjs" "$enc" "$WORK/$enc" "${files[@]}"
	else
		node "$REF/ref.mjs" "$enc" "$WORK/$enc" "${files[@]}"
	fi
	for i in "${!files[@]}"; do
		"$DUMP" "$enc" "${files[$i]}" "$WORK/$enc/$i.cmv"
		if ! cmp -s "$WORK/$enc/$i.cmv" "$WORK/$enc/$i.ref"; then
			echo "MISMATCH $enc ${files[$i]}: $(cmp "$WORK/$enc/$i.cmv" "$WORK/$enc/$i.ref" 2>&1 | head -1)" >&2
			exit 1
		fi
		total=$((total + $(stat -c %s "$WORK/$enc/$i.ref") / 4))
	done
done
echo "tok_reference: ${#files[@]} files x 3 tiktoken-family tokenizers, $total ids, all identical to the references"

# ---- SentencePiece ------------------------------------------------------------
command -v spm_encode >/dev/null || { echo "tok_reference: spm_encode is missing: run scripts/setup" >&2; exit 1; }
cat >"$REF/ref_spm_js.mjs" <<'JS'
// node ref_spm_js.mjs PKGDIR IN OUT: each line encoded alone, no BOS, as spm_encode prints ids
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';
const [pkgDir, inFile, outFile] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const tok = (await import(pathToFileURL(path.join(pkgDir, pkg.main)).href)).default;
const lines = fs.readFileSync(inFile, 'utf8').split('\n');
if (lines[lines.length - 1] === '') lines.pop();
fs.writeFileSync(outFile, lines.map(l => tok.encode(l, false).join(' ') + '\n').join(''));
JS
# spm_encode is about 2 MB/s: the SentencePiece pass takes a sample, not everything.
# Invalid UTF-8 is left out: spm_encode replaces each bad byte, cmv (like node) each
# maximal invalid sequence.
spm_files=("$WORK/generated.txt" "$SRC/tok/models.c" "$SRC/formats/claude_code.c")
mapfile -t -O 3 spm_files < <(find "$TRANSCRIPTS" -type f \( -name '*.json*' -o -name '*.traj' \) -size -400k | sort | head -12)
lines=0
for model in llama2 mistral-7b-v0.1 gemma3; do
	for i in "${!spm_files[@]}"; do
		f=${spm_files[$i]}
		"$DUMP" --lines "$model" "$f" "$WORK/$model.$i.cmv"
		spm_encode --model="$DATA/tokenizers/$model.model" --output_format=id <"$f" >"$WORK/$model.$i.spm"
		if ! cmp -s "$WORK/$model.$i.cmv" "$WORK/$model.$i.spm"; then
			echo "MISMATCH $model (spm_encode) $f: $(cmp "$WORK/$model.$i.cmv" "$WORK/$model.$i.spm" 2>&1 | head -1)" >&2
			exit 1
		fi
		case $model in
		llama2) pkg=llama-tokenizer-js ;;
		mistral-7b-v0.1) pkg=mistral-tokenizer-js ;;
		*) pkg= ;;
		esac
		if [ -n "$pkg" ]; then
			node "$REF/ref_spm_js.mjs" "$REF/$pkg" "$f" "$WORK/$model.$i.js"
			if ! cmp -s "$WORK/$model.$i.cmv" "$WORK/$model.$i.js"; then
				echo "MISMATCH $model ($pkg) $f: $(cmp "$WORK/$model.$i.cmv" "$WORK/$model.$i.js" 2>&1 | head -1)" >&2
				exit 1
			fi
		fi
		lines=$((lines + $(wc -l <"$f")))
	done
done
echo "tok_reference: ${#spm_files[@]} files x 3 SentencePiece models, $lines lines, identical to spm_encode (and to the JS packages for llama2, mistral-7b-v0.1)"
