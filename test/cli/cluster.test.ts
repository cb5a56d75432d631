/**
 * Real node processes on loopback: convergence of 3 nodes on 1,000 VM updates, and a node killed with SIGKILL
 * in the middle of a write burst that, restarted on its data dir, still holds every update it acknowledged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, ensureCli, killAll, mesh, pool, startNode, waitConverged, type NodeProc } from './helpers.js';
import { mulberry32 } from '../../src/time/random.js';

const SEED = process.env.SEED ? Number(process.env.SEED) : 7;
const LONG = !!process.env.LONG;
const dir = mkdtempSync(join(tmpdir(), 'ass-cli-cluster-'));

beforeAll(async () => {
  await ensureCli();
});
afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** The workload's seeded PRNG (same seed, same writes). */
const prng = mulberry32;

const vmId = (i: number) => `vm-${String(i).padStart(5, '0')}`;

describe('node processes', () => {
  it(`3 nodes converge on 1,000 VM updates (seed ${SEED})`, async () => {
    const nodes: NodeProc[] = [];
    // later nodes name the earlier ones with --peer; the reverse links are added at run time
    for (const r of ['us-east', 'us-west', 'eu-west']) {
      nodes.push(await startNode({ id: `n-${r}`, region: r, dataDir: join(dir, `c-${r}`), peers: nodes.map((n) => ({ id: n.id, address: n.address })) }));
    }
    await mesh(nodes);
    const rnd = prng(SEED);
    const updates = LONG ? 5000 : 1000;
    const distinct = Math.floor(updates * 0.6);
    // each VM is written only through its own node, so its last write is known: the expected final state
    const plan: Array<{ node: NodeProc; id: string; body: Record<string, unknown> }> = [];
    const expected = new Map<string, Record<string, unknown>>();
    for (let k = 0; k < updates; k++) {
      const i = k < distinct ? k : Math.floor(rnd() * distinct);
      const node = nodes[i % 3];
      const body = { id: vmId(i), status: rnd() < 0.5 ? 'running' : 'stopped', nodeId: node.id, cpuCores: 1 + Math.floor(rnd() * 32), memoryMB: 1024 * (1 + Math.floor(rnd() * 16)), metadata: { write: k } };
      plan.push({ node, id: vmId(i), body });
    }
    // updates to one VM go in order (one lane per VM); different VMs go concurrently
    const lanes = new Map<string, typeof plan>();
    for (const p of plan) lanes.set(p.id, [...(lanes.get(p.id) ?? []), p]);
    await pool([...lanes.values()], 24, async (lane) => {
      for (const p of lane) {
        const r = await api(p.node.http, 'PUT', `/vms/${p.id}`, p.body);
        expect(r.status, r.text).toBe(204);
        expected.set(p.id, p.body);
      }
    });
    const sums = await waitConverged(nodes, distinct, 45_000);
    expect(new Set(sums.map((s) => s.hash)).size).toBe(1);
    for (const n of nodes) {
      const state = (await api(n.http, 'GET', '/state')).body as { nodeId: string; vms: Array<Record<string, unknown>> };
      expect(state.nodeId).toBe(n.id);
      expect(state.vms.length).toBe(distinct);
      for (const v of state.vms) expect(v).toMatchObject(expected.get(v.id as string)!);
    }
    for (const n of nodes) {
      n.proc.kill('SIGTERM');
      expect(await n.exited).toEqual({ code: 0, signal: null });
      expect(n.log.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    }
  });

  it('a node killed with SIGKILL mid-burst loses no acknowledged update and converges after restart', async () => {
    const a = await startNode({ id: 'k-a', region: 'us-east', dataDir: join(dir, 'k-a') });
    const b = await startNode({ id: 'k-b', region: 'us-west', dataDir: join(dir, 'k-b') });
    let c = await startNode({ id: 'k-c', region: 'eu-west', dataDir: join(dir, 'k-c') });
    await mesh([a, b, c]);
    const acked = new Set<string>();
    let killed = false;
    let next = 0;
    const burst = pool(
      Array.from({ length: 16 }, (_, w) => w),
      16,
      async () => {
        while (!killed && next < 5000) {
          const i = next++;
          try {
            const r = await fetch(`${c.http}/vms/${vmId(i)}`, {
              method: 'PUT',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ id: vmId(i), status: 'running', nodeId: 'k-c', cpuCores: 2 }),
            });
            if (r.status === 204) acked.add(vmId(i));
          } catch {
            /* the node died with this request in flight: not acknowledged */
          }
          if (acked.size >= 300 && !killed) {
            killed = true;
            c.proc.kill('SIGKILL');
          }
        }
      },
    );
    await burst;
    expect(await c.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(acked.size).toBeGreaterThanOrEqual(300);
    // the others keep taking writes while c is down
    for (let i = 0; i < 50; i++) expect((await api(a.http, 'PUT', `/vms/a-${i}`, { id: `a-${i}`, status: 'running' })).status).toBe(204);

    // restart on the same data dir and port, with no peers yet: whatever it holds now came from its own disk
    const port = c.port;
    c = await startNode({ id: 'k-c', region: 'eu-west', dataDir: join(dir, 'k-c'), port });
    const local = (await api(c.http, 'GET', '/state')).body as { vms: Array<{ id: string }> };
    const held = new Set(local.vms.map((v) => v.id));
    const lost = [...acked].filter((id) => !held.has(id));
    expect(lost).toEqual([]);

    // rejoin; c may also hold writes it made durable but never acknowledged: the union is what all converge to
    await mesh([a, b, c]);
    const total = new Set([...held, ...acked, ...Array.from({ length: 50 }, (_, i) => `a-${i}`)]);
    const sums = await waitConverged([a, b, c], await unionSize([a, b, c]), 45_000);
    expect(sums[0].vms).toBeGreaterThanOrEqual(total.size);
    const finalC = (await api(c.http, 'GET', '/state')).body as { vms: Array<{ id: string }> };
    const finalIds = new Set(finalC.vms.map((v) => v.id));
    for (const id of total) expect(finalIds.has(id)).toBe(true);
  });
});

/** Size of the union of VM ids held by the nodes (the state they must converge to). */
async function unionSize(nodes: NodeProc[]): Promise<number> {
  const ids = new Set<string>();
  for (const n of nodes) for (const v of ((await api(n.http, 'GET', '/state')).body as { vms: Array<{ id: string }> }).vms) ids.add(v.id);
  return ids.size;
}
