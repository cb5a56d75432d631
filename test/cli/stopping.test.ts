/**
 * A node run in this process (`runNode` with its own stop signal): a request that arrives on a connection the
 * graceful stop left open (a request begun before the stop, finished after it) is answered 503 with the same
 * error body as every other (`code` E_BUSY), `Retry-After` and `Connection: close`, and says "stopping".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runNode } from '../../src/cli/node.js';

const dir = mkdtempSync(join(tmpdir(), 'ass-cli-stopping-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(what: string, pred: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a request during a graceful stop', () => {
  it('is answered 503 {"error":"stopping","code":"E_BUSY"} with Retry-After', async () => {
    const lines: string[] = [];
    let stop!: () => void;
    const stopSignal = new Promise<void>((r) => (stop = r));
    const cfg = { id: 'stopping', region: 'us-east', host: '127.0.0.1', port: 0, peers: [], dataDir: join(dir, 'data'), gossipIntervalMs: 100, antiEntropyIntervalMs: 300, gossipFanout: 3, heartbeatIntervalMs: 60_000, logLevel: 'info' as const };
    const done = runNode(cfg, { write: (l) => lines.push(l.trimEnd()), stopSignal });
    await until('listening', () => lines.some((l) => l.includes('"msg":"listening"')));
    const http = (lines.map((l) => JSON.parse(l) as { msg: string; http?: string }).find((r) => r.msg === 'listening')!.http)!;
    const s = netConnect(Number(new URL(http).port), '127.0.0.1');
    s.on('error', () => {});
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    await new Promise<void>((r) => s.once('connect', () => r()));
    // a request begun before the stop: the connection is not idle, so closing the server leaves it open
    s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await new Promise((r) => setTimeout(r, 50));
    stop();
    await new Promise((r) => setImmediate(r));
    s.write('\r\n');
    await until('an answer', () => got.includes('\r\n\r\n') && got.includes('}'), 5000);
    s.destroy();
    expect(await done).toBe(0);
    const [head, body] = got.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    expect(head.toLowerCase()).toContain('retry-after: 1');
    expect(head.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(/\{.*\}/.exec(body!)![0])).toEqual({ error: 'stopping', code: 'E_BUSY' });
  }, 30_000);
});
