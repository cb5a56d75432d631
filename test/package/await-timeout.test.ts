/**
 * Engine timers are unref'd (a node's gossip never holds a process open), but the timeout of a consistency wait
 * a caller awaits must be ref'd: a script whose only pending work is `await update(..., { write: 'majority' })`
 * over a transport that holds no handle used to exit with code 13 (unsettled top-level await) instead of
 * rejecting with TimeoutError. Run in a child Node process against the built package (build/dist).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

beforeAll(() => {
  // as test/cli's ensureCli: build/dist when it is older than the sources
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--if-needed', '--no-types'], { cwd: root, stdio: 'inherit' });
}, 300_000);

function run(code: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

const setup = `
  const { SyncEngine, MemoryNetwork, RealScheduler, GCounter } = await import('async-state-sync');
  const scheduler = new RealScheduler();
  const net = new MemoryNetwork({ scheduler, latencyMs: 0 });
  const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), scheduler });
  a.register('c', new GCounter('a'));
  a.addPeer('b', 'b'); // never answers
  await a.start();
  const t0 = Date.now();
`;

describe('a consistency wait keeps the process alive until it settles', () => {
  it("write 'majority' over a transport with no handles rejects with TimeoutError after timeoutMs; the process exits 0", () => {
    const r = run(`${setup}
      try {
        await a.update('c', (c) => c.increment(1), { write: 'majority', timeoutMs: 1000 });
        console.log('resolved');
      } catch (e) {
        console.log(e.code, Date.now() - t0 >= 990);
      }
    `);
    expect(r).toEqual({ status: 0, out: 'E_TIMEOUT true', err: '' });
  }, 60_000);

  it("read 'majority' and write 'all' too; and the engine's own timers still let the process exit", () => {
    const r = run(`${setup}
      for (const f of [() => a.read('c', { read: 'majority', timeoutMs: 300 }), () => a.update('c', (c) => c.increment(1), { write: 'all', timeoutMs: 300 })]) {
        try {
          await f();
          console.log('resolved');
        } catch (e) {
          console.log(e.code);
        }
      }
      // not stopped: the gossip and anti-entropy timers are unref'd, so nothing keeps the process now
    `);
    expect(r).toEqual({ status: 0, out: 'E_TIMEOUT\nE_TIMEOUT', err: '' });
  }, 60_000);
});
