// SPDX-License-Identifier: MIT
// cmv mcp driven by the official MCP TypeScript SDK (@modelcontextprotocol/sdk, pinned by
// scripts/setup-mcp) over stdio and Streamable HTTP: every tool called, its result checked; errors
// for bad input; the stateless 2026-07-28 form; the HTTP server's limits and security; 16 clients
// at once while the live-session hook imports a growing session.
// Usage: node mcp_sdk_test.mjs PATH/TO/cmv SOURCE_DIR
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [cmv, src] = process.argv.slice(2).map((p) => path.resolve(p));
const data = process.env.CMV_DATA_DIR || path.join(src, 'data');
const sdk = path.join(data, 'mcp/node_modules/@modelcontextprotocol/sdk/dist/esm');
if (!fs.existsSync(sdk)) {
	console.error(`mcp_sdk_test: the MCP SDK is not installed in ${data}/mcp: run scripts/setup-mcp`);
	process.exit(1);
}
const { Client } = await import(`${sdk}/client/index.js`);
const { StdioClientTransport } = await import(`${sdk}/client/stdio.js`);
const { StreamableHTTPClientTransport } = await import(`${sdk}/client/streamableHttp.js`);

let failed = 0, passed = 0;
function check(ok, what) {
	if (ok) passed++;
	else { failed++; console.error(`FAIL: ${what}`); }
}
async function rejects(p, code, what) {
	try { await p; check(false, `${what}: no error`); }
	catch (e) { check(e.code === code, `${what}: code ${e.code} (${e.message}), wanted ${code}`); }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmv-mcp-'));
const store = path.join(tmp, '.cmv');
const env = { ...process.env, CMV_DIR: store, HOME: tmp, CLAUDE_CONFIG_DIR: path.join(tmp, 'claude') };
delete env.CMV_MCP_TOKEN;
function run(args, input) {
	const r = spawnSync(cmv, args, { env, input, encoding: 'utf8', cwd: tmp });
	if (r.status !== 0) throw new Error(`cmv ${args.join(' ')}: ${r.stderr}`);
	return r.stdout;
}

// A store: the example Claude Code session, and a trim of it whose stubs name ids to recall.
run(['init']);
const session = path.join(src, 'examples/claude-code/2cba43de-c8d2-4a69-add8-9fae3ad93900.jsonl');
run(['import', session]);
const sid = '2cba43de-c8d2-4a69-add8-9fae3ad93900';
run(['trim', sid, '-n', 'trimmed']);
const trimmedLog = run(['export', 'trimmed.trim']);
const stub = /recall ([0-9a-f]{7,32})/.exec(trimmedLog);
check(stub, 'the trimmed branch has a stub');
run(['checkout', sid]);

function parse(res) { return JSON.parse(res.content[0].text); }

async function exercise(client, label) {
	const { tools } = await client.listTools();
	const names = tools.map((t) => t.name).sort();
	check(JSON.stringify(names) === JSON.stringify(['branch', 'fit', 'get', 'handoff', 'recall', 'search', 'snapshot', 'timeline']),
		`${label}: tools/list names ${names}`);
	check(tools.every((t) => t.inputSchema && t.inputSchema.type === 'object'), `${label}: every tool has a schema`);

	// search: a compact index, within the budget
	const s = await client.callTool({ name: 'search', arguments: { query: 'benchmark GPU thread safety', budget_tokens: 800 } });
	const idx = parse(s);
	check(!s.isError && idx.hits.length > 0, `${label}: search finds hits`);
	check(idx.hits.every((h) => /^[0-9a-f]{32}$/.test(h.id) && h.tokens > 0 && typeof h.snippet === 'string' && h.turn >= 0),
		`${label}: each hit has id, tokens, turn, snippet`);
	check(idx.hits[0].when && /^\d{4}-\d\d-\d\dT/.test(idx.hits[0].when), `${label}: a hit says when`);
	check(s.content[0].text.length < 800 * 6, `${label}: the index stays within its budget (${s.content[0].text.length} chars)`);
	const small = parse(await client.callTool({ name: 'search', arguments: { query: 'benchmark GPU thread safety', budget_tokens: 150 } }));
	check(small.hits.length < idx.hits.length || idx.hits.length === 1, `${label}: a smaller budget shows fewer hits`);
	const later = parse(await client.callTool({ name: 'search', arguments: { query: 'benchmark GPU', since: '2999-01-01' } }));
	check(later.hits.length === 0, `${label}: since in the future leaves no hit`);

	// get: the pages themselves; a turn's id from search gives its text back
	const g = parse(await client.callTool({ name: 'get', arguments: { ids: [idx.hits[0].id], budget_tokens: 20000 } }));
	check(g.pages.length === 1 && g.pages[0].text.length > 100, `${label}: get returns the page`);
	const gs = parse(await client.callTool({ name: 'get', arguments: { ids: [idx.hits[0].id], budget_tokens: 100 } }));
	check(gs.pages.length === 0 || (gs.pages[0].cut_at !== undefined && gs.pages[0].text.length < g.pages[0].text.length),
		`${label}: get cuts to the budget`);
	const gm = parse(await client.callTool({ name: 'get', arguments: { ids: ['0000000deadbeef'] } }));
	check(gm.not_found.length === 1, `${label}: get names an unknown id as not found`);

	// timeline: the neighbours
	const tl = parse(await client.callTool({ name: 'timeline', arguments: { id: idx.hits[0].id, before: 1, after: 1, budget_tokens: 20000 } }));
	check(tl.turns.length >= 2 && tl.turns.some((t) => t.id === idx.hits[0].id), `${label}: timeline has the hit and a neighbour`);

	// recall: exactly what the stub replaced
	if (stub) {
		const want = run(['recall', stub[1]]);
		const r = await client.callTool({ name: 'recall', arguments: { id: stub[1] } });
		check(!r.isError && (r.content[0].text === want || r.content[0].text + '\n' === want), `${label}: recall gives the stub's bytes`);
	}
	const bad = await client.callTool({ name: 'recall', arguments: { id: 'abcdef0123' } });
	check(bad.isError === true, `${label}: recall of an unknown id is a tool error`);

	const h = parse(await client.callTool({ name: 'handoff', arguments: { for_model: 'gpt-4o', budget_tokens: 1500 } }));
	check(h.parts.length === 1 && h.parts[0].document.includes('#'), `${label}: handoff gives a document`);
	const f = parse(await client.callTool({ name: 'fit', arguments: { models: ['gpt-4o', 'claude-sonnet-4-5'] } }));
	check(f.models.length === 2 && f.models.every((m) => typeof m.fits === 'boolean' && m.sent_tokens > 0), `${label}: fit per model`);
	const sn = parse(await client.callTool({ name: 'snapshot', arguments: { name: `snap-${label}` } }));
	check(sn.snapshot === `snap-${label}`, `${label}: snapshot`);
	const br = parse(await client.callTool({ name: 'branch', arguments: { name: `br-${label}`, from: `snap-${label}` } }));
	check(br.branch === `br-${label}`, `${label}: branch`);
	const dup = await client.callTool({ name: 'branch', arguments: { name: `br-${label}` } });
	check(dup.isError === true, `${label}: an existing branch name is a tool error`);

	// resources
	const { resources } = await client.listResources();
	check(resources.some((r) => r.uri === `cmv://branch/${sid}`) && resources.some((r) => r.uri === `cmv://handoff/${sid}`),
		`${label}: branches and handoffs are resources`);
	const rd = await client.readResource({ uri: `cmv://handoff/${sid}` });
	check(rd.contents[0].text.length > 50, `${label}: a handoff resource reads`);
	await rejects(client.readResource({ uri: 'cmv://branch/no-such' }), -32002, `${label}: unknown resource`);

	// errors: unknown tool, bad arguments, unknown argument
	await rejects(client.callTool({ name: 'nope', arguments: {} }), -32602, `${label}: unknown tool`);
	await rejects(client.callTool({ name: 'search', arguments: { query: 'x', budget_tokens: -3 } }), -32602, `${label}: bad budget`);
	await rejects(client.callTool({ name: 'search', arguments: { query: 'x', colour: 'red' } }), -32602, `${label}: unknown argument`);
	await rejects(client.callTool({ name: 'get', arguments: { ids: ['not hex'] } }), -32602, `${label}: a bad id`);
	await rejects(client.request({ method: 'no/such', params: {} }, (await import(`${sdk}/types.js`)).ResultSchema), -32601, `${label}: unknown method`);
}

// ---- stdio ----
{
	const t = new StdioClientTransport({ command: cmv, args: ['mcp'], env, stderr: 'pipe' });
	const client = new Client({ name: 'cmv-test', version: '1' });
	await client.connect(t);
	check(client.getServerVersion().name === 'cmv', 'stdio: serverInfo');
	await exercise(client, 'stdio');
	await client.close();
}

// ---- HTTP ----
async function startHttp(extraEnv = {}, addr = '127.0.0.1:0') {
	const p = spawn(cmv, ['mcp', '--http', addr], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
	let err = '';
	p.stderr.on('data', (d) => { err += d; });
	const url = await new Promise((resolve, reject) => {
		let out = '';
		p.stdout.on('data', (d) => {
			out += d;
			const m = /listening on (http:\/\/\S+)/.exec(out);
			if (m) resolve(m[1]);
		});
		p.on('exit', (code) => reject(new Error(`cmv mcp --http exited ${code}: ${err}`)));
	});
	return { p, url };
}
{
	const { p, url } = await startHttp();
	const client = new Client({ name: 'cmv-test', version: '1' });
	await client.connect(new StreamableHTTPClientTransport(new URL(url)));
	await exercise(client, 'http');
	await client.close();

	const post = (body, headers = {}) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body });
	const sl0 = { 'mcp-protocol-version': '2026-07-28' };
	let r = await post('{"jsonrpc":"2.0","id":1,"method":"tools/list"');
	check(r.status === 400 && (await r.json()).error.code === -32700, 'http: malformed JSON is -32700');
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
	check(r.status === 400, 'http: no session and no stateless version is 400');
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { 'mcp-session-id': 'ffff' });
	check(r.status === 404, 'http: an unknown session is 404');
	r = await post('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + 'a'.repeat(1100000) + '"}}');
	check(r.status === 413 && (await r.json()).error.code === -32600, 'http: an oversize request is 413 with -32600');
	r = await post('['.repeat(100) + ']'.repeat(100));
	check(r.status === 400 && (await r.json()).error.code === -32600, 'http: too deep is -32600');
	// numbers no integer holds (undefined behaviour if cast unchecked: the ASan build ends there)
	for (const id of ['1e300', '-1e300', '2.5']) {
		r = await post(`{"jsonrpc":"2.0","id":${id},"method":"ping"}`, sl0);
		check(r.status === 400 && (await r.json()).error.code === -32600, `http: id ${id} is -32600`);
	}
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'search', arguments: { query: 'GPU', budget_tokens: -1e300 } } }), sl0);
	check(r.status === 200 && (await r.json()).error.code === -32602, 'http: a budget of -1e300 is -32602');
	// 2026-07-28 stateless: no handshake, no session
	const sl = { 'mcp-protocol-version': '2026-07-28' };
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }), sl);
	check(r.status === 200 && (await r.json()).result.tools.length === 8, 'http stateless: tools/list without initialize');
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'search', arguments: { query: 'GPU', budget_tokens: 300 } } }), sl);
	check(r.status === 200 && JSON.parse((await r.json()).result.content[0].text).hits.length > 0, 'http stateless: search');
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'initialize', params: { protocolVersion: '2026-07-28', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }));
	check(r.status === 200 && !r.headers.get('mcp-session-id') && (await r.json()).result.protocolVersion === '2026-07-28', 'http: initialize at 2026-07-28 opens no session');
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { 'mcp-protocol-version': '1999-01-01' });
	check(r.status === 400, 'http: an unknown protocol version is 400');
	r = await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), sl);
	check(r.status === 202, 'http: a notification is 202');
	r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), { ...sl, origin: 'http://evil.example' });
	check(r.status === 403, 'http: a foreign Origin is 403');
	r = await fetch(url, { method: 'GET' });
	check(r.status === 405, 'http: GET is 405');
	r = await fetch(url.replace('/mcp', '/other'), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
	check(r.status === 404, 'http: another path is 404');

	// 16 clients at once, searching, while the hook imports a growing session into the same store
	const projects = path.join(tmp, 'claude/projects/-tmp-live');
	fs.mkdirSync(projects, { recursive: true });
	const liveId = '11111111-2222-4333-8444-555555555555';
	const live = path.join(projects, `${liveId}.jsonl`);
	const lines = fs.readFileSync(session, 'utf8').split('\n').filter(Boolean)
		.map((l) => l.replaceAll(sid, liveId));
	fs.writeFileSync(live, lines.slice(0, 4).join('\n') + '\n');
	const hookIn = JSON.stringify({ session_id: liveId, transcript_path: live, hook_event_name: 'PostToolUse', cwd: tmp });
	run(['mcp', 'hook'], hookIn);
	let importing = true, imports = 0;
	const importer = (async () => {
		for (let i = 4; i < lines.length; i++) {
			fs.appendFileSync(live, lines[i] + '\n');
			await new Promise((res) => {
				const h = spawn(cmv, ['mcp', 'hook'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
				h.stdin.end(hookIn);
				h.on('exit', () => { imports++; res(); });
			});
		}
		importing = false;
	})();
	const errors = [];
	let calls = 0;
	await Promise.all(Array.from({ length: 16 }, async (_, k) => {
		const c = new Client({ name: `c${k}`, version: '1' });
		await c.connect(new StreamableHTTPClientTransport(new URL(url)));
		for (let i = 0; i < 12; i++) {
			try {
				const res = await c.callTool({ name: 'search', arguments: { query: i % 2 ? 'GPU benchmark' : 'thread safety', session: liveId, budget_tokens: 400 } });
				if (res.isError) errors.push(res.content[0].text);
				calls++;
			} catch (e) { errors.push(String(e)); }
		}
		await c.close();
	}));
	await importer;
	check(errors.length === 0, `16 clients: no error reached a client (${errors.slice(0, 3).join(' | ')})`);
	check(calls === 192, `16 clients: all 192 searches answered (${calls})`);
	check(!importing && imports === lines.length - 4, `the hook ran ${imports} imports`);
	// nothing lost: the live branch holds every record the file holds, and search sees the newest
	const n = run(['export', '--session', liveId]).split('\n').filter(Boolean).length;
	check(n === lines.length, `the live session's branch holds all ${lines.length} records (${n})`);
	const again = spawnSync(cmv, ['mcp', 'hook'], { env, input: hookIn, encoding: 'utf8' });
	check(again.status === 0 && again.stderr === '', 'the hook on an unchanged session does nothing, quietly');
	p.kill('SIGTERM');
	await new Promise((res) => p.on('exit', res));

	// a token: required when set
	const { p: p2, url: url2 } = await startHttp({ CMV_MCP_TOKEN: 's3cret-token' });
	const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
	r = await fetch(url2, { method: 'POST', headers: { 'content-type': 'application/json', ...sl }, body });
	check(r.status === 401, 'http token: none is 401');
	r = await fetch(url2, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong', ...sl }, body });
	check(r.status === 401, 'http token: a wrong one is 401');
	r = await fetch(url2, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer s3cret-token', ...sl }, body });
	check(r.status === 200, 'http token: the right one is 200');
	p2.kill('SIGTERM');
	await new Promise((res) => p2.on('exit', res));
	const refused = spawnSync(cmv, ['mcp', '--http', '0.0.0.0:0'], { env, encoding: 'utf8' });
	check(refused.status === 2 && refused.stderr.includes('CMV_MCP_TOKEN'), 'a non-loopback address without a token is refused');
}

fs.rmSync(tmp, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
