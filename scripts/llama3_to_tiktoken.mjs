// SPDX-License-Identifier: MIT
// Convert llama3-tokenizer-js's vocabulary into a .tiktoken rank file.
// usage: node llama3_to_tiktoken.mjs PACKAGE_DIR OUT_FILE
// Llama 3's vocabulary is stored as GPT-2 "byte-level" strings: each byte is
// mapped to a printable code point (bytes_to_unicode). Reversing that map on
// the first 128,000 ids (the ordinary tokens; the rest are special) gives the
// rank file Meta ships as original/tokenizer.model; setup checks its sha256.
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';

const [pkg, out] = process.argv.slice(2);
const mod = await import(pathToFileURL(path.join(pkg, 'bundle/llama3-tokenizer-with-baked-data.js')));
const tok = mod.default;

// GPT-2's bytes_to_unicode, inverted.
const printable = [];
for (let b = 33; b <= 126; b++) printable.push(b);
for (let b = 161; b <= 172; b++) printable.push(b);
for (let b = 174; b <= 255; b++) printable.push(b);
const unicodeToByte = new Map();
let extra = 0;
for (let b = 0; b < 256; b++) {
  const cp = printable.includes(b) ? b : 256 + extra++;
  unicodeToByte.set(String.fromCodePoint(cp), b);
}

const lines = [];
for (let id = 0; id < 128000; id++) {
  const s = tok.vocabById[id];
  const bytes = [];
  for (const ch of s) {
    const b = unicodeToByte.get(ch);
    if (b === undefined) throw new Error(`id ${id}: '${ch}' is not a byte-level character`);
    bytes.push(b);
  }
  lines.push(Buffer.from(bytes).toString('base64') + ' ' + id);
}
fs.writeFileSync(out, lines.join('\n') + '\n');
