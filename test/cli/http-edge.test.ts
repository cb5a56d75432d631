/**
 * One node run in this process (`runNode` with a captured log) against requests a plain client does not
 * send: a request target that is no URL, a client that aborts mid-body, a 100k-character path, a huge
 * `timeoutMs`, a lower-case `bearer` scheme, a short API token, ISO-8601 times. Every answer is a 4xx, and
 * nothing of it is logged at error level.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeConfig } from '../../src/cli/args.js';
import { runNode } from '../../src/cli/node.js';
import { api } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ass-cli-edge-'));
const TOKEN = 'abc'; // short on purpose: accepted with a warning
const lines: string[] = [];
let stop!: () => void;
let done!: Promise<number>;
let base = '';
let port = 0;

function config(over: Partial<NodeConfig> = {}): NodeConfig {
  return {
    id: 'edge',
    region: 'us-east',
    host: '127.0.0.1',
    port: 0,
    peers: [],
    dataDir: join(dir, 'data'),
    gossipIntervalMs: 100,
    antiEntropyIntervalMs: 300,
    gossipFanout: 3,
    apiTokenFile: join(dir, 'token'),
    clusterKeyFile: join(dir, 'key'),
    heartbeatIntervalMs: 60_000,
    logLevel: 'debug',
    ...over,
  };
}

const records = () => lines.map((l) => JSON.parse(l) as { level: string; msg: string; [k: string]: unknown });
const errors = () => records().filter((r) => r.level === 'error');

/** Send raw bytes on a fresh connection; resolve with everything the node sent until it closed (bounded). */
function raw(payload: string, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${ms} ms; got ${JSON.stringify(got.slice(0, 200))}`));
    }, ms);
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.write(payload);
  });
}

async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  writeFileSync(join(dir, 'token'), TOKEN + '\n');
  writeFileSync(join(dir, 'key'), 'sekret\n'); // short on purpose too
  const stopSignal = new Promise<void>((r) => (stop = r));
  done = runNode(config(), { write: (l) => lines.push(l.trimEnd()), stopSignal });
  await until('listening', () => lines.some((l) => l.includes('"msg":"listening"')), 20_000);
  base = (records().find((r) => r.msg === 'listening')!.http as string);
  port = Number(new URL(base).port);
}, 30_000);

afterAll(async () => {
  stop?.();
  await done;
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTP edge cases', () => {
  it('answers 400 to a request target that is no URL, without an error-level log', async () => {
    const res = await raw('GET http://[::1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1\.1 400 /);
    expect(res).toContain('malformed request target');
    expect(errors()).toEqual([]);
  });

  it('logs a client that aborts mid-body at debug level, not as a handler failure', async () => {
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`PUT /vms/vm-abort HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":"vm-`);
    await new Promise((r) => setTimeout(r, 100));
    s.resetAndDestroy();
    await until('the abort log line', () => records().some((r) => r.msg === 'http client went away'));
    expect(records().find((r) => r.msg === 'http client went away')!.level).toBe('debug');
    expect(errors()).toEqual([]);
    expect((await api(base, 'GET', '/vms/vm-abort')).status).toBe(404);
  });

  it('answers 431 to a 100k-character path instead of dropping the connection', async () => {
    const res = await raw(`GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 431 /);
    expect((await fetch(`${base}/vms/${'b'.repeat(100_000)}`)).status).toBe(431);
    expect((await api(base, 'GET', '/healthz')).status).toBe(200);
    expect(errors()).toEqual([]);
  });

  it('bounds timeoutMs at 2^31-1 ms (Node fires a longer timer at once)', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const vm = { id: 'vm-t', status: 'running' };
    for (const t of ['99999999999999999999', '2147483648', '9'.repeat(400)]) {
      const r = await api(base, 'PUT', `/vms/vm-t?write=majority&timeoutMs=${t}`, vm, auth);
      expect(r.status, t).toBe(400);
      expect(r.body).toEqual({ error: 'timeoutMs must be at most 2147483647', code: 'E_BAD_REQUEST' });
    }
    expect((await api(base, 'GET', '/vms/vm-t')).body).toEqual({ error: 'no such VM', code: 'E_NOT_FOUND' });
    expect((await api(base, 'PUT', '/vms/vm-t?write=majority&timeoutMs=2147483647', vm, auth)).status).toBe(204);
  });

  it('accepts the bearer scheme in any case, and a short token and cluster key (with warnings at start-up)', async () => {
    const warn = records().find((r) => r.msg.startsWith('API token is short'));
    expect(warn?.level).toBe('warn');
    const keyWarn = records().find((r) => r.msg.startsWith('cluster key is short'));
    expect([keyWarn?.level, keyWarn?.chars]).toEqual(['warn', 6]);
    const vm = { id: 'vm-case', status: 'running' };
    for (const scheme of ['bearer', 'BEARER', 'Bearer', 'bEaReR']) {
      expect((await api(base, 'PUT', '/vms/vm-case', vm, { authorization: `${scheme} ${TOKEN}` })).status, scheme).toBe(204);
    }
    expect((await api(base, 'PUT', '/vms/vm-case', vm, { authorization: 'bearer abd' })).status).toBe(401);
    expect((await api(base, 'PUT', '/vms/vm-case', vm, { authorization: `bearer${TOKEN}` })).status).toBe(401);
    expect((await api(base, 'PUT', '/vms/vm-case', vm, { authorization: `Basic ${TOKEN}` })).status).toBe(401);
  });

  it('takes ISO-8601 times (what a Go client sends) and stores them as epoch ms', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const vm = { id: 'vm-go', status: 'running', createdAt: '2024-05-01T12:00:00Z', updatedAt: '2024-05-01T14:00:00.123456789+02:00' };
    expect((await api(base, 'PUT', '/vms/vm-go', vm, auth)).status).toBe(204);
    expect((await api(base, 'GET', '/vms/vm-go')).body).toMatchObject({ createdAt: Date.UTC(2024, 4, 1, 12), updatedAt: Date.UTC(2024, 4, 1, 12, 0, 0, 123) });
    const bad = await api(base, 'PUT', '/vms/vm-go', { ...vm, createdAt: 'May 1st 2024' }, auth);
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('ISO-8601');
  });

  it('routes a path starting with "//" as that path (not as a host): 404, nothing written', async () => {
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    for (const target of ['//state', '//metrics', '//x/healthz']) {
      const res = await raw(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      expect(res, target).toMatch(/^HTTP\/1\.1 404 /);
    }
    const body = JSON.stringify({ id: 'dbl', status: 'running' });
    const put = await raw(`PUT //evil/vms/dbl HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(put).toMatch(/^HTTP\/1\.1 404 /);
    expect((await api(base, 'GET', '/vms/dbl')).status).toBe(404);
    expect(errors()).toEqual([]);
  });

  it('a 401 names its scheme (WWW-Authenticate); a wrong method gets 405 with Allow, read-only paths too', async () => {
    const r401 = await fetch(`${base}/vms/vm-w`, { method: 'PUT', body: '{}' });
    expect(r401.status).toBe(401);
    expect(r401.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(((await r401.json()) as { code: string }).code).toBe('E_AUTH'); // every error answer has a code
    for (const [method, path, allow] of [['POST', '/state', 'GET, HEAD'], ['PUT', '/metrics', 'GET, HEAD'], ['DELETE', '/healthz', 'GET, HEAD'], ['POST', '/', 'GET, HEAD'], ['PATCH', '/vms/vm-w', 'GET, HEAD, PUT, DELETE'], ['GET', '/counters/c', 'POST'], ['PUT', '/counters/c', 'POST'], ['GET', '/assignments/vm-w', 'PUT'], ['GET', '/nothing', undefined]] as const) {
      const r = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
      const code = ((await r.json()) as { code: string }).code;
      if (allow === undefined) expect([r.status, code], `${method} ${path}`).toEqual([404, 'E_NOT_FOUND']);
      else {
        expect([r.status, code], `${method} ${path}`).toEqual([405, 'E_METHOD']);
        expect(r.headers.get('allow'), `${method} ${path}`).toBe(allow);
      }
    }
  });

  it('answers 400 to an unknown method or bytes that are not HTTP, then closes', async () => {
    expect(await raw('BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect((await api(base, 'GET', '/healthz')).status).toBe(200);
  });

  it('garbage pipelined behind a write does not answer that write with 400', async () => {
    const body = '{"delta":1}';
    const res = await raw(`POST /counters/piped HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}\x00\x01garbage\r\n\r\n`);
    expect(res).not.toMatch(/^HTTP\/1\.1 400 /); // the write's own answer (204), or a close with none
    let piped: unknown;
    for (let i = 0; i < 100 && piped === undefined; i++) {
      piped = (await api(base, 'GET', '/state')).body.counters.piped;
      if (piped === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(piped).toBe(1);
  });

  it('POST /counters/:name takes { "delta": n } only (no silent +1 for another body)', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const body of ['{}', 'null', '[]', '"x"', '{"delta":1.5}', '{"delta":"2"}']) {
      const r = await fetch(`${base}/counters/strict`, { method: 'POST', body, headers: auth });
      expect(r.status, body).toBe(400);
    }
    expect((await api(base, 'GET', '/state')).body.counters.strict).toBeUndefined();
    expect((await fetch(`${base}/counters/strict`, { method: 'POST', body: '{"delta":-2}', headers: auth })).status).toBe(204);
    expect((await api(base, 'GET', '/state')).body.counters.strict).toBe(-2);
  });

  it('refuses an empty API token file at start-up (exit code 1)', async () => {
    writeFileSync(join(dir, 'empty-token'), '\n');
    const out: string[] = [];
    const code = await runNode(config({ id: 'empty', dataDir: join(dir, 'empty'), apiTokenFile: join(dir, 'empty-token') }), { write: (l) => out.push(l), stopSignal: new Promise(() => {}) });
    expect(code).toBe(1);
    expect(out.join('')).toContain('is empty');
  });
});
