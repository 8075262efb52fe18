// SPDX-License-Identifier: MIT
// Writes a SentencePiece ModelProto (google/sentencepiece
// src/sentencepiece_model.proto) for a BPE model with byte fallback: the
// only kind cmv's converters produce. Field numbers were checked against a
// model spm_train wrote.
export const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, BYTE = 6;

function varint(n) {
	const o = [];
	let v = BigInt(n);
	if (v < 0n) v += 1n << 64n;
	do {
		let b = Number(v & 0x7fn);
		v >>= 7n;
		if (v) b |= 0x80;
		o.push(b);
	} while (v);
	return Buffer.from(o);
}
const key = (field, wire) => varint((field << 3) | wire);
const fInt = (field, n) => Buffer.concat([key(field, 0), varint(n)]);
const fBytes = (field, b) => Buffer.concat([key(field, 2), varint(b.length), b]);
const fStr = (field, s) => fBytes(field, Buffer.from(s, 'utf8'));
function fFloat(field, x) {
	const b = Buffer.alloc(4);
	b.writeFloatLE(x);
	return Buffer.concat([key(field, 5), b]);
}

// pieces: [{piece, score, type}] in id order; ids: {unk, bos, eos, pad}
export function modelProto(pieces, ids, dummyPrefix) {
	const ps = pieces.map(p => fBytes(1, Buffer.concat([fStr(1, p.piece), fFloat(2, p.score), fInt(3, p.type)])));
	const trainer = Buffer.concat([
		fInt(3, 2), // model_type BPE
		fInt(4, pieces.length), // vocab_size
		fInt(35, 1), // byte_fallback
		fInt(40, ids.unk), fInt(41, ids.bos), fInt(42, ids.eos), fInt(43, ids.pad),
	]);
	const normalizer = Buffer.concat([
		fStr(1, 'identity'),
		fInt(3, dummyPrefix ? 1 : 0), // add_dummy_prefix
		fInt(4, 0), // remove_extra_whitespaces
		fInt(5, 1), // escape_whitespaces
	]);
	return Buffer.concat([...ps, fBytes(2, trainer), fBytes(3, normalizer)]);
}
