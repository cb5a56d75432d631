/**
 * Helpers for tests that run real node processes on loopback: build the CLI bundle when it is stale, spawn
 * `bin/async-state-sync.js node ...` on port 0 and learn its port from the `listening` log line, talk HTTP,
 * and kill every child in `afterAll`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'async-state-sync.js');

/** Build the CLI bundle (build/dist/cli.js) with the project's build script when the build is stale. */
export async function ensureCli(): Promise<void> {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--if-needed', '--no-types'], { cwd: ROOT, stdio: 'inherit' });
}

export interface NodeProc {
  id: string;
  proc: ChildProcess;
  /** `http://127.0.0.1:PORT` */
  http: string;
  /** `ws://127.0.0.1:PORT` */
  address: string;
  port: number;
  log: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

/** Kill every child still running (afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(async (p) => {
      if (p.exitCode === null && p.signalCode === null) {
        const gone = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGKILL');
        await gone;
      }
      children.delete(p);
    }),
  );
}

export interface StartOptions {
  id: string;
  region: string;
  dataDir: string;
  port?: number;
  peers?: Array<{ id: string; address: string }>;
  args?: string[];
}

/** Spawn a node and resolve once it logged `listening` (rejects if it exits first or after 20 s). */
export async function startNode(o: StartOptions): Promise<NodeProc> {
  const args = [BIN, 'node', '--id', o.id, '--region', o.region, '--listen', `127.0.0.1:${o.port ?? 0}`, '--data-dir', o.dataDir];
  for (const p of o.peers ?? []) args.push('--peer', `${p.id}=${p.address}`);
  args.push('--gossip-interval', '100', '--anti-entropy-interval', '300', '--heartbeat-interval', '60000', ...(o.args ?? []));
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, env: { ...process.env, ASYNC_STATE_SYNC_EXIT_WITH_PARENT: '1' } });
  children.add(proc);
  const log: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return await new Promise<NodeProc>((resolve, reject) => {
    let buf = '';
    let done = false;
    const timer = setTimeout(() => fail(new Error(`node ${o.id} did not start in 20 s:\n${log.join('\n')}`)), 20_000);
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(e);
    };
    const onData = (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        log.push(line);
        if (log.length > 2000) log.shift();
        if (done || !line.includes('"listening"')) continue;
        const rec = JSON.parse(line) as { http: string; address: string };
        done = true;
        clearTimeout(timer);
        resolve({ id: o.id, proc, http: rec.http, address: rec.address, port: Number(new URL(rec.http).port), log, exited });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    void exited.then(({ code, signal }) => fail(new Error(`node ${o.id} exited (${code ?? signal}) before listening:\n${log.join('\n')}`)));
  });
}

/** JSON request; returns status and parsed body (or text). */
export async function api(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(base + path, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* text */
  }
  return { status: res.status, body: parsed, text };
}

export interface Summary {
  nodeId: string;
  vms: number;
  hash: string;
  counters: Record<string, number>;
}

export async function summary(n: NodeProc): Promise<Summary> {
  return (await api(n.http, 'GET', '/summary')).body as Summary;
}

/** Poll until every node holds `vms` VMs with the same hash. */
export async function waitConverged(nodes: NodeProc[], vms: number, limitMs = 30_000): Promise<Summary[]> {
  const end = Date.now() + limitMs;
  let last: Summary[] = [];
  for (;;) {
    last = await Promise.all(nodes.map(summary));
    if (last.every((s) => s.vms === vms && s.hash === last[0].hash && JSON.stringify(s.counters) === JSON.stringify(last[0].counters))) return last;
    if (Date.now() > end) throw new Error(`no convergence in ${limitMs} ms: ${JSON.stringify(last.map((s) => [s.nodeId, s.vms, s.hash.slice(0, 8)]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Run `fn` over items with `n` in flight. */
export async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Connect every node to every other (`POST /admin/peers`). */
export async function mesh(nodes: NodeProc[]): Promise<void> {
  for (const a of nodes) for (const b of nodes) if (a !== b) {
    const r = await api(a.http, 'POST', '/admin/peers', { id: b.id, address: b.address });
    if (r.status !== 204) throw new Error(`admin/peers on ${a.id}: ${r.status} ${r.text}`);
  }
}
