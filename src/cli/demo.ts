/**
 * `async-state-sync demo` (what `npm start` runs): a real multi-region cluster on loopback.
 *
 * 1. Starts one node process per region (`async-state-sync node`, regions us-east, us-west, eu-west, ap-south,
 *    sa-east), each on `127.0.0.1:0` so the OS picks a free port (two demos run side by side without a race),
 *    its data dir under a fresh temp dir. A node prints a `listening` log line with its address; the demo then
 *    tells every node where the others are (`POST /admin/peers`).
 * 2. Writes 70% of the VMs spread over the regions with `PUT /vms/:id` (each answered 204 once durable).
 * 3. Cuts the last region off: `POST /admin/partition` on both sides makes each node drop every message to or
 *    from the other side (a firewall inside the node's transport; the sockets stay up).
 * 4. Keeps writing on both sides: the remaining 30% of the VMs, plus conflicting updates of the same existing
 *    VMs on both sides (last writer by hybrid logical clock wins), plus a PN-counter per side.
 * 5. Heals (`POST /admin/heal`), and shows live progress per region (VMs held / expected) from `GET /summary`
 *    until every region holds the same state (same VM count, same state hash, same counters).
 * 6. Prints the convergence time, bytes sent per node (read from `/metrics`) and a summary table, checks the
 *    values written once on one node, stops the children with SIGTERM and removes the temp dir.
 * Exit 0 on success; 1 with a clear message on a child failure or a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DemoConfig } from './args.js';
import { parseMetrics } from './metrics.js';
import { hash64 } from '../sync/digest.js';
import { mulberry32 } from '../time/random.js';

export const DEMO_REGIONS = ['us-east', 'us-west', 'eu-west', 'ap-south', 'sa-east'];

interface Child {
  region: string;
  id: string;
  proc: ChildProcess;
  base: string;
  address: string;
  logPath: string;
  log: WriteStream;
  exited: boolean;
  exitInfo?: string;
}

interface Summary {
  nodeId: string;
  region: string;
  vms: number;
  nodes: number;
  assignments: number;
  counters: Record<string, number>;
  hash: string;
}

class DemoError extends Error {}

const binPath = fileURLToPath(new URL('../../bin/async-state-sync.js', import.meta.url));

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

/**
 * A `/summary` hash shown in `n` (at most 16) hex digits of its `hash64`, so a difference in either half (the VMs;
 * the assignments and counters) shows whatever digits are kept.
 */
function shortHash(h: string, n: number): string {
  const [lo, hi] = hash64(new TextEncoder().encode(h));
  return (hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0')).slice(0, n);
}

function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padStart(n) : t.padEnd(n);
}

/** The workload's seeded PRNG (same seed, same writes). */
const prng = mulberry32;

export async function runDemo(cfg: DemoConfig, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const regions = DEMO_REGIONS.slice(0, cfg.regions);
  const dir = mkdtempSync(join(tmpdir(), 'async-state-sync-demo-'));
  const children: Child[] = [];
  const tty = !cfg.plain && !!process.stdout.isTTY;
  let failed: string | undefined;
  const t0 = performance.now();
  let progress: ReturnType<typeof createProgress> | undefined;
  const say = (s: string) => {
    progress?.finish();
    out(s + '\n');
  };

  const onSignal = () => {
    failed = 'interrupted';
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // output piped into a reader that went away (e.g. `| head`): stop, but still clean up children and files
  // (the handler stays for the rest of the process: the last failed writes report their error later)
  const onOutputError = () => {
    failed = 'output closed';
  };
  process.stdout.on('error', onOutputError);

  const check = () => {
    if (failed) throw new DemoError(failed);
    for (const c of children) if (c.exited) throw new DemoError(`node ${c.id} exited unexpectedly (${c.exitInfo}); log: ${c.logPath}`);
  };

  async function http(c: Child, method: string, path: string, body?: unknown): Promise<Response> {
    check();
    const res = await fetch(c.base + path, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json' } : undefined,
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return res;
  }

  async function expectNoContent(c: Child, method: string, path: string, body?: unknown): Promise<void> {
    const res = await http(c, method, path, body);
    if (res.status !== 204) throw new DemoError(`${method} ${path} on ${c.id}: HTTP ${res.status} ${await res.text()}`);
  }

  try {
    say(`async-state-sync demo: ${regions.length} regions, ${cfg.vms} VMs, gossip every ${cfg.intervalMs} ms`);
    say(`data dirs and logs in ${dir}`);

    // 1. start the nodes
    for (const region of regions) {
      const id = `node-${region}-1`;
      const logPath = join(dir, `${id}.log`);
      const log = createWriteStream(logPath);
      const proc = spawn(
        process.execPath,
        [
          binPath,
          'node',
          '--id',
          id,
          '--region',
          region,
          '--listen',
          '127.0.0.1:0',
          '--data-dir',
          join(dir, id),
          '--gossip-interval',
          String(cfg.intervalMs),
          '--anti-entropy-interval',
          String(cfg.intervalMs * 2),
          '--gossip-fanout',
          '3',
          '--heartbeat-interval',
          String(Math.max(1000, cfg.intervalMs * 5)),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ASYNC_STATE_SYNC_EXIT_WITH_PARENT: '1' } },
      );
      const child: Child = { region, id, proc, base: '', address: '', logPath, log, exited: false };
      children.push(child);
      proc.stderr!.pipe(log, { end: false });
      let buf = '';
      proc.stdout!.on('data', (d: Buffer) => {
        log.write(d);
        if (child.base) return;
        buf += d.toString();
        for (const line of buf.split('\n')) {
          if (!line.includes('"listening"')) continue;
          try {
            const rec = JSON.parse(line) as { address?: string; http?: string };
            if (rec.address && rec.http) {
              child.address = rec.address;
              child.base = rec.http;
            }
          } catch {
            /* not a log line */
          }
        }
        if (buf.length > 65536) buf = buf.slice(-4096);
      });
      proc.once('exit', (code, sig) => {
        child.exited = true;
        child.exitInfo = sig ? `signal ${sig}` : `code ${code}`;
      });
    }
    const startBy = Date.now() + 20_000;
    while (children.some((c) => !c.base)) {
      check();
      if (Date.now() > startBy) throw new DemoError('nodes did not start within 20 s');
      await sleep(20);
    }
    for (const c of children) {
      for (const p of children) if (p !== c) await expectNoContent(c, 'POST', '/admin/peers', { id: p.id, address: p.address });
    }
    say(`started ${children.length} nodes in ${((performance.now() - t0) / 1000).toFixed(1)} s:`);
    for (const c of children) say(`  ${pad(c.region, 9)} ${pad(c.id, 18)} ${c.base}/  (dashboard)`);

    // the workload
    const rnd = prng(0x5eed + cfg.vms * 31 + regions.length);
    const expected = new Map<string, { written: unknown; conflicted: boolean }>();
    const writesPerNode = new Map<string, number>();
    const vmBody = (i: number, region: string, nodeId: string, phase: string) => ({
      id: `vm-${String(i).padStart(6, '0')}`,
      status: 'running',
      nodeId,
      cpuCores: 1 + Math.floor(rnd() * 16),
      memoryMB: 512 * (1 + Math.floor(rnd() * 32)),
      diskGB: 10 * (1 + Math.floor(rnd() * 50)),
      ipAddress: `10.${regions.indexOf(region)}.${(i >> 8) & 255}.${i & 255}`,
      metadata: { region, phase },
    });
    async function writeAll(items: Array<{ child: Child; body: ReturnType<typeof vmBody> }>, conflicted: boolean): Promise<void> {
      let next = 0;
      const worker = async () => {
        while (next < items.length) {
          const { child, body } = items[next++];
          await expectNoContent(child, 'PUT', `/vms/${encodeURIComponent(body.id)}`, body);
          const prev = expected.get(body.id);
          expected.set(body.id, { written: body, conflicted: conflicted || prev !== undefined });
          writesPerNode.set(child.id, (writesPerNode.get(child.id) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: Math.min(8 * children.length, items.length) }, worker));
    }

    progress = createProgress(children, tty, (s) => out(s + '\n'), out);
    const prog = progress;
    /** Show live progress (VMs held per region / VMs the demo will write) while `work` runs. */
    const watch = async (phase: string, work: Promise<void>): Promise<void> => {
      let done = false;
      const finished = work.finally(() => {
        done = true;
      });
      while (!done) {
        await Promise.race([finished.catch(() => {}), sleep(tty ? 250 : 1000)]);
        if (!done) await prog.show(cfg.vms, phase).catch(() => []);
      }
      await finished;
    };

    // 2. initial writes
    const initial = regions.length > 1 ? Math.floor(cfg.vms * 0.7) : cfg.vms;
    const tw = performance.now();
    await watch(
      'writing',
      writeAll(
        Array.from({ length: initial }, (_, i) => {
          const child = children[i % children.length];
          return { child, body: vmBody(i, child.region, child.id, 'initial') };
        }),
        false,
      ),
    );
    say(`wrote ${initial} VMs over HTTP in ${((performance.now() - tw) / 1000).toFixed(1)} s (each acknowledged once durable)`);

    // 3. partition
    let healedAt = performance.now();
    if (children.length > 1) {
      const cut = children[children.length - 1];
      const rest = children.slice(0, -1);
      await expectNoContent(cut, 'POST', '/admin/partition', { peers: rest.map((c) => c.id) });
      for (const c of rest) await expectNoContent(c, 'POST', '/admin/partition', { peers: [cut.id] });
      say(`partition: ${cut.region} is cut off from ${rest.map((c) => c.region).join(', ')}`);

      // 4. writes on both sides: new VMs, and the same existing VMs updated on both sides
      const items: Array<{ child: Child; body: ReturnType<typeof vmBody> }> = [];
      for (let i = initial; i < cfg.vms; i++) {
        const child = children[i % children.length];
        items.push({ child, body: vmBody(i, child.region, child.id, 'partitioned') });
      }
      const conflicts = Math.min(initial, Math.max(1, Math.floor(cfg.vms * 0.05)));
      const conflictItems: typeof items = [];
      for (let k = 0; k < conflicts; k++) {
        const i = Math.floor((k * initial) / conflicts);
        const a = rest[k % rest.length];
        conflictItems.push({ child: a, body: { ...vmBody(i, a.region, a.id, 'conflict'), status: 'migrating' } });
        conflictItems.push({ child: cut, body: { ...vmBody(i, cut.region, cut.id, 'conflict'), status: 'stopped' } });
      }
      await watch('writing (partitioned)', writeAll(items, false).then(() => writeAll(conflictItems, true)));
      for (const c of children) await expectNoContent(c, 'POST', `/counters/${encodeURIComponent('demo.writes')}`, { delta: writesPerNode.get(c.id) ?? 0 });
      say(`wrote ${items.length} new VMs and ${conflicts} VMs on both sides of the partition (concurrent updates)`);
      await progress.show(expected.size, 'partitioned', true);
      await sleep(Math.max(500, cfg.intervalMs * 3));
      await progress.show(expected.size, 'partitioned', true);

      // 5. heal
      for (const c of children) await expectNoContent(c, 'POST', '/admin/heal', {});
      healedAt = performance.now();
      say(`healed at +${((healedAt - t0) / 1000).toFixed(1)} s; waiting for every region to hold the same state`);
    } else {
      for (const c of children) await expectNoContent(c, 'POST', `/counters/${encodeURIComponent('demo.writes')}`, { delta: writesPerNode.get(c.id) ?? 0 });
    }

    const expectedVms = expected.size;
    let converged = false;
    let last: Summary[] = [];
    const deadline = performance.now() + cfg.timeoutMs;
    while (!converged) {
      check();
      last = await progress.show(expectedVms, 'syncing');
      const h = last[0].hash;
      converged =
        last.every((s) => s.vms === expectedVms && s.hash === h && JSON.stringify(s.counters) === JSON.stringify(last[0].counters)) &&
        (last[0].counters['demo.writes'] ?? 0) === [...writesPerNode.values()].reduce((a, b) => a + b, 0);
      if (converged) break;
      if (performance.now() > deadline) {
        throw new DemoError(
          `regions did not converge within ${cfg.timeoutMs} ms after the heal: ` +
            last.map((s) => `${s.region} ${s.vms}/${expectedVms} hash ${shortHash(s.hash, 8)}`).join(', '),
        );
      }
      await sleep(tty ? 100 : 250);
    }
    const convergenceMs = performance.now() - healedAt;
    if (!tty) await progress.show(expectedVms, 'converged', true);
    progress.finish();

    // 6. verify values and report
    const stateRes = await http(children[0], 'GET', '/state');
    const state = (await stateRes.json()) as { vms: Array<Record<string, unknown>> };
    const byId = new Map(state.vms.map((v) => [v.id as string, v]));
    let checked = 0;
    for (const [id, e] of expected) {
      const got = byId.get(id);
      if (!got) throw new DemoError(`VM ${id} is missing after convergence`);
      if (e.conflicted) {
        if (got.status !== 'migrating' && got.status !== 'stopped') throw new DemoError(`VM ${id} has status ${String(got.status)} after the conflict`);
      } else {
        const w = e.written as Record<string, unknown>;
        for (const k of ['status', 'nodeId', 'cpuCores', 'memoryMB', 'diskGB', 'ipAddress']) {
          if (got[k] !== w[k]) throw new DemoError(`VM ${id} field ${k}: wrote ${String(w[k])}, node holds ${String(got[k])}`);
        }
      }
      checked++;
    }

    const rows: string[][] = [];
    let totalBytes = 0;
    for (const c of children) {
      const m = parseMetrics(await (await http(c, 'GET', '/metrics')).text());
      const sum = (name: string) => {
        let s = 0;
        for (const [k, v] of m) if (k === name || k.startsWith(name + '{')) s += v;
        return s;
      };
      const s = last.find((x) => x.nodeId === c.id)!;
      const sent = sum('ass_transport_bytes_sent_total');
      totalBytes += sent;
      rows.push([
        c.region,
        c.id,
        String(s.vms),
        shortHash(s.hash, 12),
        fmtBytes(sent),
        fmtBytes(sum('ass_transport_bytes_received_total')),
        String(sum('ass_transport_messages_sent_total')),
        String(sum('ass_gossip_messages_sent_total')),
        String(sum('ass_anti_entropy_syncs_total')),
        String(writesPerNode.get(c.id) ?? 0),
      ]);
    }
    const head = ['region', 'node', 'VMs', 'state hash', 'bytes sent', 'bytes recv', 'msgs sent', 'gossip msgs', 'AE syncs', 'writes'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((x, i) => pad(x, widths[i], i >= 2 && i !== 3)).join('  ');
    say('');
    say(line(head));
    say(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const r of rows) say(line(r));
    say('');
    say(`converged: ${children.length} regions hold the same ${expectedVms} VMs (hash ${shortHash(last[0].hash, 16)})`);
    say(`convergence time after ${children.length > 1 ? 'heal' : 'the last write'}: ${(convergenceMs / 1000).toFixed(2)} s`);
    say(`bytes sent, all nodes: ${fmtBytes(totalBytes)} (${fmtBytes(totalBytes / children.length)} per node)`);
    say(`counter demo.writes = ${last[0].counters['demo.writes'] ?? 0} on every node; ${checked} VMs checked against what was written`);
    say(`total demo time: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } catch (e) {
    const msg = e instanceof DemoError ? e.message : `unexpected error: ${(e as Error).stack ?? e}`;
    out(`\ndemo FAILED: ${msg}\n`);
    for (const c of children) {
      if (!c.exited) continue;
      try {
        const tail = readFileSync(c.logPath, 'utf8').trim().split('\n').slice(-10).join('\n');
        out(`--- last log lines of ${c.id} ---\n${tail}\n`);
      } catch {
        /* no log */
      }
    }
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopChildren(children);
    for (const c of children) c.log.end();
    if (cfg.keep) out(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function stopChildren(children: Child[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.exited) return;
      const gone = new Promise<void>((r) => c.proc.once('exit', () => r()));
      c.proc.kill('SIGTERM');
      const t = setTimeout(() => c.proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }),
  );
}

/** Live progress per region: redrawn in place on a terminal, printed as a block otherwise. */
function createProgress(children: Child[], tty: boolean, say: (s: string) => void, out: (s: string) => void) {
  let drawn = 0;
  let lastPlain = 0;
  return {
    async show(expected: number, phase: string, force = false): Promise<Summary[]> {
      const sums = await Promise.all(
        children.map(async (c) => {
          const res = await fetch(c.base + '/summary');
          if (!res.ok) throw new DemoError(`GET /summary on ${c.id}: HTTP ${res.status}`);
          return (await res.json()) as Summary;
        }),
      );
      const lines = sums.map((s) => {
        const frac = expected ? Math.min(1, s.vms / expected) : 1;
        const w = 30;
        const fill = Math.round(frac * w);
        return `  ${pad(s.region, 9)} [${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${pad(s.vms, 7, true)}/${expected} VMs  hash ${shortHash(s.hash, 8)}  ${phase}`;
      });
      if (tty) {
        if (drawn) out(`\x1b[${drawn}A`);
        out(lines.map((l) => `\x1b[2K${l}\n`).join(''));
        drawn = lines.length;
      } else if (force || performance.now() - lastPlain > 1000) {
        lastPlain = performance.now();
        say(`progress (${phase}):`);
        for (const l of lines) say(l);
      }
      return sums;
    },
    finish(): void {
      drawn = 0;
    },
  };
}
