/**
 * Cluster benchmark: the same workload on a real cluster and on the simulator.
 *
 * - Real: 5 node processes (`async-state-sync node`) on loopback, gossip and anti-entropy every 200 ms,
 *   LMDB storage; 1,000 VMs written over HTTP (`PUT /vms/:id`, 40 in flight, each acknowledged once
 *   durable), spread over the 5 nodes. Measured: write phase, time from the last acknowledgement until every
 *   node holds the same 1,000 VMs (`GET /summary`, polled every 20 ms), and bytes each node sent
 *   (`ass_transport_bytes_sent_total` from `/metrics`, WebSocket frame payloads).
 * - Simulated: 5 `NovaCronIntegration`s over `MemoryNetwork` (1-5 ms latency, no loss) on a
 *   `VirtualScheduler`, same intervals, same 1,000 writes issued at time 0. Measured: virtual time to
 *   convergence, the real time the simulation took, and bytes each node sent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NovaCronIntegration } from '../src/cluster/integration.js';
import { parseMetrics } from '../src/cli/metrics.js';
import { MemoryStorage } from '../src/storage/memory.js';
import { Random } from '../src/time/random.js';
import { VirtualScheduler } from '../src/time/virtual.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import type { BenchSuite } from './suites.js';

const REGIONS = ['us-east', 'us-west', 'eu-west', 'ap-south', 'sa-east'];
const VMS = 1000;
const INTERVAL_MS = 200;

function vmBody(i: number, nodeId: string): Record<string, unknown> {
  return { id: `vm-${String(i).padStart(5, '0')}`, status: 'running', nodeId, cpuCores: 1 + (i % 16), memoryMB: 1024 * (1 + (i % 8)), diskGB: 40, ipAddress: `10.1.${i >> 8}.${i & 255}` };
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

interface Proc {
  id: string;
  proc: ChildProcess;
  http: string;
  address: string;
}

async function spawnNode(bin: string, id: string, region: string, dataDir: string): Promise<Proc> {
  const proc = spawn(
    process.execPath,
    [bin, 'node', '--id', id, '--region', region, '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--gossip-interval', String(INTERVAL_MS), '--anti-entropy-interval', String(INTERVAL_MS), '--heartbeat-interval', '600000'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ASYNC_STATE_SYNC_EXIT_WITH_PARENT: '1' } },
  );
  return await new Promise<Proc>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`${id} did not start`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /"address":"([^"]+)","http":"([^"]+)"/.exec(buf);
      if (m) {
        clearTimeout(t);
        buf = '';
        proc.stdout!.removeAllListeners('data');
        proc.stdout!.resume(); // keep draining the node's log lines
        resolve({ id, proc, address: m[1], http: m[2] });
      }
    });
    proc.once('exit', (c) => reject(new Error(`${id} exited with ${c}`)));
  });
}

async function put(base: string, path: string, body: unknown): Promise<void> {
  const r = await fetch(base + path, { method: path.startsWith('/admin') ? 'POST' : 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 204) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
}

async function realCluster(): Promise<{ writeMs: number; convergeMs: number; totalMs: number; bytes: number[] }> {
  const bin = fileURLToPath(new URL('../bin/async-state-sync.js', import.meta.url));
  if (!existsSync(fileURLToPath(new URL('../build/dist/cli.js', import.meta.url)))) throw new Error('build/dist/cli.js is missing: run `npm run build`');
  const dir = mkdtempSync(join(tmpdir(), 'ass-bench-cluster-'));
  const nodes: Proc[] = [];
  try {
    for (const r of REGIONS) nodes.push(await spawnNode(bin, `node-${r}-1`, r, join(dir, r)));
    for (const a of nodes) for (const b of nodes) if (a !== b) await put(a.http, '/admin/peers', { id: b.id, address: b.address });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (next < VMS) {
          const i = next++;
          const n = nodes[i % nodes.length];
          await put(n.http, `/vms/vm-${String(i).padStart(5, '0')}`, vmBody(i, n.id));
        }
      }),
    );
    const t1 = performance.now();
    for (;;) {
      const sums = await Promise.all(nodes.map(async (n) => (await (await fetch(n.http + '/summary')).json()) as { vms: number; hash: string }));
      if (sums.every((s) => s.vms === VMS && s.hash === sums[0].hash)) break;
      if (performance.now() - t1 > 120_000) throw new Error('no convergence in 120 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const t2 = performance.now();
    const bytes: number[] = [];
    for (const n of nodes) bytes.push(parseMetrics(await (await fetch(n.http + '/metrics')).text()).get('ass_transport_bytes_sent_total') ?? 0);
    return { writeMs: t1 - t0, convergeMs: t2 - t1, totalMs: t2 - t0, bytes };
  } finally {
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((r) => {
            if (n.proc.exitCode !== null) return r();
            n.proc.once('exit', () => r());
            n.proc.kill('SIGTERM');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The simulated run; with `spreadMs` the writes are paced evenly over that much virtual time (else all at once). */
async function simulated(spreadMs = 0): Promise<{ virtualMs: number; afterLastMs: number; realMs: number; bytes: number[] }> {
  const sch = new VirtualScheduler(1_700_000_000_000);
  const net = new MemoryNetwork({ seed: 42, scheduler: sch, latencyMs: [1, 5] });
  const ids = REGIONS.map((r) => `node-${r}-1`);
  const nodes = ids.map(
    (id, i) =>
      new NovaCronIntegration({
        nodeId: id,
        region: REGIONS[i],
        transport: net.transport(id),
        storage: new MemoryStorage(),
        scheduler: sch,
        random: new Random(42 + i),
        gossipInterval: INTERVAL_MS,
        antiEntropyInterval: INTERVAL_MS,
      }),
  );
  const r0 = performance.now();
  for (const n of nodes) await n.start();
  for (let i = 0; i < nodes.length; i++) for (let j = 0; j < nodes.length; j++) if (i !== j) nodes[i].registerRegion(ids[j], REGIONS[j], `mem://${ids[j]}`);
  const v0 = sch.now();
  const writes: Promise<void>[] = [];
  for (let i = 0; i < VMS; i++) {
    const n = nodes[i % nodes.length];
    writes.push(n.updateVMState(`vm-${String(i).padStart(5, '0')}`, vmBody(i, n.nodeId) as never));
    if (spreadMs > 0) await sch.run(spreadMs / VMS);
  }
  await Promise.all(writes);
  const vWritten = sch.now();
  const same = () => {
    if (nodes.some((n) => n.metadata.vms.size !== VMS)) return false;
    const a = JSON.stringify(nodes[0].listVMs());
    return nodes.every((n) => JSON.stringify(n.listVMs()) === a);
  };
  if (!(await sch.runUntil(same, 600_000))) throw new Error('simulation did not converge');
  const virtualMs = sch.now() - v0;
  const realMs = performance.now() - r0;
  const bytes = ids.map((id) => net.bytesSent(id));
  for (const n of nodes) await n.stop();
  return { virtualMs, afterLastMs: sch.now() - vWritten, realMs, bytes };
}

export const suite: BenchSuite = {
  name: 'cluster',
  title: 'Cluster: 5 real node processes on loopback vs MemoryNetwork',
  async run(): Promise<string> {
    const real = await realCluster();
    const burst = await simulated();
    const paced = await simulated(real.writeMs);
    const rows = REGIONS.map((r, i) => `| node-${r}-1 | ${kib(real.bytes[i])} | ${kib(paced.bytes[i])} | ${kib(burst.bytes[i])} |`);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    return [
      `${REGIONS.length} nodes, ${VMS} VMs written round-robin over the nodes, gossip and anti-entropy every ${INTERVAL_MS} ms.`,
      'Simulated twice: with the writes paced over the real run\'s write phase (same workload in time), and all at once.',
      '',
      '| measure | real processes (WebSocket, LMDB) | MemoryNetwork, paced (virtual) | MemoryNetwork, burst (virtual) |',
      '| --- | --- | --- | --- |',
      `| write phase (1,000 HTTP PUTs acknowledged once durable, 40 in flight) | ${real.writeMs.toFixed(0)} ms | ${real.writeMs.toFixed(0)} ms (paced) | 0 ms |`,
      `| last write -> all nodes equal | ${real.convergeMs.toFixed(0)} ms | ${paced.afterLastMs.toFixed(0)} ms | ${burst.afterLastMs.toFixed(0)} ms |`,
      `| first write -> all nodes equal | ${real.totalMs.toFixed(0)} ms | ${paced.virtualMs.toFixed(0)} ms | ${burst.virtualMs.toFixed(0)} ms |`,
      `| real time to run the simulation (start-up included) | - | ${paced.realMs.toFixed(0)} ms | ${burst.realMs.toFixed(0)} ms |`,
      `| bytes sent per node (mean) | ${kib(mean(real.bytes))} | ${kib(mean(paced.bytes))} | ${kib(mean(burst.bytes))} |`,
      '',
      '| node | bytes sent (real) | bytes sent (paced simulation) | bytes sent (burst simulation) |',
      '| --- | --- | --- | --- |',
      ...rows,
      '',
      'Real bytes are WebSocket message payloads as the transport counts them (frame kind byte included, TCP/WebSocket',
      'headers not); simulated bytes are the same sync messages on MemoryNetwork. The real write phase is bounded by',
      'durable HTTP writes: concurrent local writes share one LMDB commit (group commit in the sync engine); the run',
      'before group commit took 26.7 s for the same 1,000 PUTs.',
    ].join('\n');
  },
};
