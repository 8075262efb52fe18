// SPDX-License-Identifier: MIT
// Builds SentencePiece models from the vocabularies that llama-tokenizer-js and
// mistral-tokenizer-js embed (a 32k piece list and its BPE merges):
//
//   node scripts/jsvocab_to_spm.mjs PKGDIR OUT_PREFIX
//
// writes OUT_PREFIX.model (add_dummy_prefix on, as the original models) and
// OUT_PREFIX.noprefix.model (off: for the blocks after the first when counts
// are summed block by block, docs/tokenizers.md). libsentencepiece loads them
// with no patching, because the C++ library ships no protobuf header to edit
// a model at run time.
//
// The model (scripts/spm_proto.mjs) has its pieces in id order; <unk> UNKNOWN(2), <s> and </s> CONTROL(3), <0xNN> BYTE(6),
// the rest NORMAL(1) with score -(rank of the first merge that produces the
// piece), so libsentencepiece's BPE applies merges in the package's order;
// pieces no merge produces (single characters) score below every merge.
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';
import { modelProto, NORMAL, UNKNOWN, CONTROL, BYTE } from './spm_proto.mjs';

const [pkgDir, outPrefix] = process.argv.slice(2);
if (!pkgDir || !outPrefix) {
	console.error('usage: jsvocab_to_spm.mjs PKGDIR OUT_PREFIX');
	process.exit(2);
}
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const mod = await import(pathToFileURL(path.join(pkgDir, pkg.main)).href);
const tok = mod.default;
if (!tok || !Array.isArray(tok.vocabById) || !(tok.merges instanceof Map))
	throw new Error(`${pkgDir}: not a llama-tokenizer-js style package`);

const vocab = tok.vocabById;
const rank = new Map();
// merges maps "left right" to a priority that grows with the merge's position.
const merges = [...tok.merges.entries()].sort((a, b) => a[1] - b[1]);
merges.forEach(([pair, _prio], i) => {
	const sp = pair.indexOf(' ');
	const piece = pair.slice(0, sp) + pair.slice(sp + 1);
	if (!rank.has(piece)) rank.set(piece, i);
});
const nMerges = merges.length;

const pieces = vocab.map((p, id) => {
	let type = NORMAL, score = 0;
	if (id === 0) type = UNKNOWN;
	else if (id === 1 || id === 2) type = CONTROL;
	else if (/^<0x[0-9A-F]{2}>$/.test(p)) type = BYTE;
	else score = rank.has(p) ? -rank.get(p) : -(nMerges + id);
	return { piece: p, score, type };
});
if (vocab[0] !== '<unk>' || vocab[1] !== '<s>' || vocab[2] !== '</s>')
	throw new Error(`${pkgDir}: ids 0-2 are not <unk> <s> </s>`);
const ids = { unk: 0, bos: 1, eos: 2, pad: -1 };
fs.writeFileSync(outPrefix + '.model', modelProto(pieces, ids, true));
fs.writeFileSync(outPrefix + '.noprefix.model', modelProto(pieces, ids, false));
