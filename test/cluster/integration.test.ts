import { describe, expect, it } from 'vitest';
import { NovaCronIntegration } from '../../src/cluster/integration.js';
import { ClusterMetadata } from '../../src/cluster/metadata.js';
import type { NodeStatus, VMState } from '../../src/cluster/types.js';
import { NotInitializedError, TimeoutError, ValidationError } from '../../src/errors.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { Random } from '../../src/time/random.js';
import { VirtualScheduler } from '../../src/time/virtual.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { RealScheduler } from '../../src/time/scheduler.js';
import type { Transport } from '../../src/transport/types.js';
import { WebSocketTransport } from '../../src/transport/websocket.js';
import { mulberry32 } from '../../src/time/random.js';

const REGIONS = ['us-east', 'us-west', 'eu-west', 'ap-south', 'sa-east'];
const SEED = process.env.SEED ? Number(process.env.SEED) : 20261125;
const LONG = !!process.env.LONG;

/** The workload's seeded PRNG (same seed, same writes). */
const prng = mulberry32;

interface Cluster {
  sch: VirtualScheduler;
  net: MemoryNetwork;
  nodes: NovaCronIntegration[];
  storages: MemoryStorage[];
  ids: string[];
}

async function cluster(n: number, seed = SEED, opts: { loss?: number } = {}): Promise<Cluster> {
  const sch = new VirtualScheduler(1_700_000_000_000);
  const net = new MemoryNetwork({ seed, scheduler: sch, latencyMs: [5, 40], loss: opts.loss ?? 0 });
  const ids = REGIONS.slice(0, n).map((r) => `node-${r}-1`);
  const storages = ids.map(() => new MemoryStorage());
  const nodes = ids.map(
    (id, i) =>
      new NovaCronIntegration({
        nodeId: id,
        region: REGIONS[i],
        transport: net.transport(id),
        storage: storages[i],
        scheduler: sch,
        random: new Random(seed + i),
        gossipInterval: 500,
        antiEntropyInterval: 2000,
      }),
  );
  for (const node of nodes) await node.start();
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) nodes[i].registerRegion(ids[j], REGIONS[j], `mem://${ids[j]}`);
  return { sch, net, nodes, storages, ids };
}

function same(nodes: NovaCronIntegration[]): boolean {
  const a = JSON.stringify(nodes[0].exportState());
  return nodes.every((n) => JSON.stringify(n.exportState()) === a);
}

async function converge(c: Cluster, limitMs = 120_000): Promise<void> {
  const ok = await c.sch.runUntil(() => same(c.nodes), limitMs);
  if (!ok) throw new Error(`no convergence within ${limitMs} virtual ms (seed ${SEED})`);
}

function vm(i: number, nodeId: string, extra: Partial<VMState> = {}): VMState {
  return { id: `vm-${String(i).padStart(4, '0')}`, status: 'running', nodeId, cpuCores: 1 + (i % 8), memoryMB: 1024 * (1 + (i % 4)), diskGB: 20, ipAddress: `10.0.${i >> 8}.${i & 255}`, ...extra };
}

describe('NovaCronIntegration over MemoryNetwork', () => {
  it(`5 regions converge on concurrent VM, node, assignment, counter and resource writes (seed ${SEED})`, async () => {
    const c = await cluster(5);
    const rnd = prng(SEED);
    const perNode = LONG ? 400 : 60;
    const writes: Promise<void>[] = [];
    let expectedCounter = 0;
    for (let k = 0; k < perNode; k++) {
      for (let i = 0; i < c.nodes.length; i++) {
        const node = c.nodes[i];
        const id = Math.floor(rnd() * perNode * 3); // overlapping ids: concurrent writes to the same VM
        writes.push(node.updateVMState(`vm-${String(id).padStart(4, '0')}`, vm(id, c.ids[i], { status: rnd() < 0.5 ? 'running' : 'stopped' })));
        if (rnd() < 0.3) writes.push(node.assignVM(`vm-${String(id).padStart(4, '0')}`, c.ids[i]));
        const d = Math.floor(rnd() * 21) - 10;
        expectedCounter += d;
        writes.push(node.incrementCounter('vm-ops', d));
        if (rnd() < 0.1) writes.push(node.setResource(`quota/${REGIONS[i]}`, { cpu: k, mem: k * 2 }));
      }
      if (k % 10 === 0) await c.sch.run(50);
    }
    for (let i = 0; i < c.nodes.length; i++) {
      writes.push(c.nodes[i].updateNodeStatus({ id: c.ids[i], region: REGIONS[i], status: 'healthy', cpuUsage: 10 * i, memoryUsage: 50, diskUsage: 5, vmCount: i }));
    }
    await Promise.all(writes);
    await converge(c);
    const s = c.nodes[0].exportState();
    expect(s.counters['vm-ops']).toBe(expectedCounter);
    expect(s.nodes.map((n) => n.region)).toEqual([...REGIONS].sort((a, b) => (`node-${a}-1` < `node-${b}-1` ? -1 : 1)));
    for (const n of c.nodes) {
      expect(n.listVMs().length).toBe(s.vms.length);
      expect(n.getCounter('vm-ops')).toBe(expectedCounter);
      expect(n.getNodeStatus(c.ids[2])?.region).toBe('eu-west');
      expect(n.regionOf(c.ids[3])).toBe('ap-south');
    }
    expect(s.vms.length).toBeGreaterThan(perNode);
  });

  it('a cut-off region keeps working and converges after the heal; concurrent updates resolve the same everywhere', async () => {
    const c = await cluster(5);
    for (let i = 0; i < 50; i++) await c.nodes[i % 5].updateVMState(vm(i, c.ids[i % 5]).id, vm(i, c.ids[i % 5]));
    await converge(c);
    c.net.partition(c.ids.slice(0, 4), [c.ids[4]]);
    await c.nodes[0].updateVMState('vm-0007', vm(7, c.ids[0], { status: 'migrating' }));
    await c.sch.run(10);
    await c.nodes[4].updateVMState('vm-0007', vm(7, c.ids[4], { status: 'stopped' }));
    await c.nodes[4].updateVMState('vm-0100', vm(100, c.ids[4]));
    await c.nodes[1].removeVM('vm-0003');
    await c.nodes[4].updateVMState('vm-0003', vm(3, c.ids[4], { status: 'restarted' })); // concurrent with the remove
    await c.nodes[2].incrementCounter('migrations', 3);
    await c.nodes[4].incrementCounter('migrations', 4);
    await c.sch.run(10_000);
    expect(c.nodes[0].getVMState('vm-0100')).toBeUndefined();
    expect(c.nodes[4].getVMState('vm-0007')?.status).toBe('stopped');
    expect(c.nodes[0].getVMState('vm-0007')?.status).toBe('migrating');
    c.net.heal();
    await converge(c);
    for (const n of c.nodes) {
      expect(n.getVMState('vm-0100')?.nodeId).toBe(c.ids[4]);
      // the later write (by hybrid logical clock) wins everywhere
      expect(n.getVMState('vm-0007')?.status).toBe('stopped');
      // observed-remove: the update concurrent with the remove survives
      expect(n.getVMState('vm-0003')?.status).toBe('restarted');
      expect(n.getCounter('migrations')).toBe(7);
      expect(n.listVMs().length).toBe(51);
    }
  });

  it('MemoryNetwork crash and restart: the same node objects catch up after the restart', async () => {
    const c = await cluster(3);
    await c.nodes[0].updateVMState('vm-0001', vm(1, c.ids[0]));
    await converge(c);
    c.net.crash(c.ids[2]);
    await c.nodes[0].updateVMState('vm-0002', vm(2, c.ids[0]));
    await c.nodes[1].incrementCounter('ops', 2);
    await c.sch.run(5_000);
    expect(c.nodes[2].getVMState('vm-0002')).toBeUndefined();
    c.net.restart(c.ids[2]);
    await converge(c);
    expect(c.nodes[2].getVMState('vm-0002')?.status).toBe('running');
    expect(c.nodes[2].getCounter('ops')).toBe(2);
    // and its own writes go out again
    await c.nodes[2].updateVMState('vm-0003', vm(3, c.ids[2]));
    await converge(c);
    expect(c.nodes[0].getVMState('vm-0003')?.nodeId).toBe(c.ids[2]);
  });

  it('a wrong field type is a ValidationError and changes nothing, locally or remotely', async () => {
    const c = await cluster(2);
    await c.nodes[0].updateVMState('vm-0001', vm(1, c.ids[0]));
    await c.nodes[0].updateNodeStatus({ id: c.ids[0], region: 'us-east', status: 'healthy' });
    await c.nodes[0].incrementCounter('ops', 2);
    await c.nodes[0].setResource('quota', { cpu: 4 });
    await converge(c);
    const before = JSON.stringify(c.nodes[0].exportState());
    const writesBefore = c.storages[0].writes;
    const n = c.nodes[0];
    const bad: Array<() => Promise<unknown>> = [
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), cpuCores: '4' as unknown as number }),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), status: 5 as unknown as string }),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), memoryMB: NaN }),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), cpuCores: 2.5 }),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), id: 'vm-0002' }),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), colour: 'red' } as VMState),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), metadata: { f: () => 1 } }),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), metadata: [] as unknown as Record<string, unknown> }),
      () => n.updateVMState('vm-0001', null as unknown as VMState),
      () => n.updateVMState('', vm(1, 'x')),
      () => n.updateVMState('vm-0001', vm(1, 'x'), { write: 'quorum' as 'all' }),
      () => n.updateNodeStatus({ id: c.ids[0], region: 'us-east', status: 'healthy', cpuUsage: 'high' as unknown as number }),
      () => n.updateNodeStatus({ id: c.ids[0], region: 'us-east', status: 'healthy', cpuUsage: 120 }),
      () => n.updateNodeStatus({ id: c.ids[0], status: 'healthy' } as NodeStatus),
      () => n.updateNodeStatus({ id: c.ids[0], region: 'us-east', status: 'healthy', lastHeartbeat: new Date('not a date') as unknown as number }),
      () => n.updateVMState('vm-0001', { ...vm(1, 'x'), createdAt: '2026-01-01' as unknown as number }),
      () => n.assignVM('vm-0001', 7 as unknown as string),
      () => n.incrementCounter('ops', 1.5),
      () => n.incrementCounter('ops', '1' as unknown as number),
      () => n.setResource('quota', undefined),
      () => n.setResource('quota', new Map() as unknown),
      () => n.removeVM(3 as unknown as string),
      () => n.migrateFrom({ vms: [vm(5, 'x'), { ...vm(6, 'x'), diskGB: '1' as unknown as number }] }),
      () => n.migrateFrom({ counters: { a: 1, b: 0.5 } }),
      () => n.migrateFrom({ extra: 1 } as never),
    ];
    for (const [i, f] of bad.entries()) {
      const err = await f().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `case ${i}`).toBeInstanceOf(ValidationError);
    }
    // a counter past Number.MAX_SAFE_INTEGER is a RangeError (DESIGN), and changes nothing either
    const over = await n.incrementCounter('ops', Number.MAX_SAFE_INTEGER).then(() => undefined, (e: unknown) => e);
    expect(over).toBeInstanceOf(RangeError);
    await c.sch.run(5000);
    expect(JSON.stringify(c.nodes[0].exportState())).toBe(before);
    expect(JSON.stringify(c.nodes[1].exportState())).toBe(before);
    expect(c.storages[0].writes).toBe(writesBefore);
    expect(n.getCounter('ops')).toBe(2);
  });

  it('migrateFrom imports a cluster snapshot once, validated as a whole, and replicates it', async () => {
    const c = await cluster(3);
    const snapshot = {
      vms: [vm(1, 'legacy-1'), vm(2, 'legacy-2', { createdAt: 1000, updatedAt: 2000, metadata: { tier: 'gold', tags: ['a', 'b'] } })],
      nodes: { 'legacy-1': { id: 'legacy-1', region: 'us-east', status: 'healthy', cpuUsage: 20, vmCount: 1, lastHeartbeat: 5 } },
      assignments: { 'vm-0001': 'legacy-1', 'vm-0002': 'legacy-2' },
      counters: { 'vms.created': 2, 'vms.failed': -1 },
      resources: { 'pool/default': { cpu: 64, memGB: 256 } },
    };
    const counts = await c.nodes[0].migrateFrom(snapshot);
    expect(counts).toEqual({ vms: 2, nodes: 1, assignments: 2, counters: 2, resources: 1 });
    await c.nodes[0].migrateFrom(snapshot); // again: counters are raised to the snapshot, not doubled
    await converge(c);
    for (const n of c.nodes) {
      expect(n.getVMState('vm-0002')).toMatchObject({ createdAt: 1000, updatedAt: 2000, metadata: { tier: 'gold', tags: ['a', 'b'] } });
      expect(n.getNodeStatus('legacy-1')).toEqual(snapshot.nodes['legacy-1']);
      expect(n.getAssignment('vm-0001')).toBe('legacy-1');
      expect(n.getCounter('vms.created')).toBe(2);
      expect(n.getCounter('vms.failed')).toBe(-1);
      expect(n.getResource('pool/default')).toEqual({ cpu: 64, memGB: 256 });
    }
    // VMs as a record keyed by id work too
    await c.nodes[1].migrateFrom({ vms: { 'vm-0009': vm(9, 'legacy-1') } });
    await converge(c);
    expect(c.nodes[2].getVMState('vm-0009')?.nodeId).toBe('legacy-1');
    expect(() => ClusterMetadata.checkSnapshot({ vms: { 'vm-0001': vm(2, 'x') } })).toThrow(ValidationError);
  });

  it('getStats has the documented shape and counts', async () => {
    const c = await cluster(3);
    // the seed's fields are there before any write: counterValue 0, seenMessages, averageSyncTime
    const fresh = c.nodes[0].getStats();
    expect(fresh.clusterStats).toEqual({ totalVMs: 0, totalNodes: 0, totalAssignments: 0, counterValue: 0 });
    expect(fresh.gossipStats.seenMessages).toBe(fresh.gossipStats.seenCacheSize);
    expect(fresh.antiEntropyStats.averageSyncTime).toBe(fresh.antiEntropyStats.averageSyncTimeMs);
    await c.nodes[0].updateVMState('vm-0001', vm(1, c.ids[0]));
    await c.nodes[0].assignVM('vm-0001', c.ids[0]);
    await c.nodes[1].incrementCounter('a', 5);
    await c.nodes[2].incrementCounter('b', -2);
    await converge(c);
    await c.sch.run(5000);
    const s = c.nodes[0].getStats();
    expect(s.clusterStats).toEqual({ totalVMs: 1, totalNodes: 0, totalAssignments: 1, counterValue: 3 });
    expect(s.gossipStats.seenMessages).toBeGreaterThan(0);
    expect(s.gossipStats.seenMessages).toBe(s.gossipStats.seenCacheSize);
    expect(s.antiEntropyStats.averageSyncTime).toBe(s.antiEntropyStats.averageSyncTimeMs);
    expect(s.peerCount).toBe(2);
    expect(s.crdtCount).toBe(5);
    expect(s.gossipStats.sent).toBeGreaterThan(0);
    expect(s.gossipStats.bytesSent).toBeGreaterThan(0);
    expect(typeof s.antiEntropyStats.totalSyncs).toBe('number');
    expect(s.antiEntropyStats.totalSyncs).toBeGreaterThan(0);
    expect(Object.keys(s).sort()).toEqual(['antiEntropyStats', 'clusterStats', 'crdtCount', 'gossipStats', 'peerCount']);
  });

  it('reads return copies, removeVM drops the assignment, and reads see a write before it is awaited', async () => {
    const c = await cluster(2);
    const p = c.nodes[0].updateVMState('vm-0001', vm(1, c.ids[0], { metadata: { a: 1 } }));
    expect(c.nodes[0].getVMState('vm-0001')?.status).toBe('running');
    await p;
    const got = c.nodes[0].getVMState('vm-0001')!;
    got.status = 'tampered';
    (got.metadata as Record<string, unknown>).a = 2;
    expect(c.nodes[0].getVMState('vm-0001')).toMatchObject({ status: 'running', metadata: { a: 1 } });
    const listed = c.nodes[0].listVMs();
    listed[0].status = 'tampered';
    (listed[0].metadata as Record<string, unknown>).a = 3;
    expect(c.nodes[0].listVMs()[0]).toMatchObject({ status: 'running', metadata: { a: 1 } });
    expect(got.createdAt).toBe(c.sch.now());
    await c.nodes[0].updateNodeStatus({ id: 'n9', region: 'eu-west', status: 'healthy', lastHeartbeat: new Date(5000) as unknown as number });
    expect(c.nodes[0].getNodeStatus('n9')?.lastHeartbeat).toBe(5000);
    await c.sch.run(1000);
    await c.nodes[0].updateVMState('vm-0001', vm(1, c.ids[0], { status: 'stopped' }));
    expect(c.nodes[0].getVMState('vm-0001')!.createdAt).toBe(got.createdAt);
    expect(c.nodes[0].getVMState('vm-0001')!.updatedAt).toBe(c.sch.now());
    await c.nodes[0].assignVM('vm-0001', c.ids[1]);
    await converge(c);
    await c.nodes[1].removeVM('vm-0001');
    await converge(c);
    expect(c.nodes[0].getVMState('vm-0001')).toBeUndefined();
    expect(c.nodes[0].getAssignment('vm-0001')).toBeUndefined();
    await c.nodes[1].removeVM('vm-unknown'); // no-op
  });

  it('a restarted node loads its state from storage and catches up on what it missed', async () => {
    const c = await cluster(3);
    for (let i = 0; i < 20; i++) await c.nodes[2].updateVMState(vm(i, c.ids[2]).id, vm(i, c.ids[2]));
    await c.nodes[2].incrementCounter('ops', 20);
    await converge(c);
    c.net.crash(c.ids[2]);
    await c.nodes[2].stop().catch(() => {});
    for (let i = 20; i < 30; i++) await c.nodes[0].updateVMState(vm(i, c.ids[0]).id, vm(i, c.ids[0]));
    c.net.restart(c.ids[2]);
    const again = new NovaCronIntegration({
      nodeId: c.ids[2],
      region: REGIONS[2],
      transport: c.net.transport(c.ids[2]),
      storage: c.storages[2],
      scheduler: c.sch,
      random: new Random(SEED + 99),
      gossipInterval: 500,
      antiEntropyInterval: 2000,
    });
    await expect(again.updateVMState('vm-x', vm(1, 'x'))).rejects.toThrow(NotInitializedError);
    await again.start();
    expect(again.listVMs().length).toBe(20);
    expect(again.getCounter('ops')).toBe(20);
    for (let j = 0; j < 2; j++) again.registerRegion(c.ids[j], REGIONS[j], `mem://${c.ids[j]}`);
    c.nodes[2] = again;
    await again.incrementCounter('ops', 1);
    await converge(c);
    expect(again.listVMs().length).toBe(30);
    expect(c.nodes[0].getCounter('ops')).toBe(21);
  });

  it('majority writes resolve with a quorum and time out (applied locally) without one', async () => {
    const c = await cluster(3);
    await c.sch.run(2000);
    const ok = c.nodes[0].updateVMState('vm-0001', vm(1, c.ids[0]), { write: 'majority', timeoutMs: 3000 });
    await c.sch.runUntil(() => false, 500);
    await expect(ok).resolves.toBeUndefined();
    c.net.partition([c.ids[0]], c.ids.slice(1));
    const late = c.nodes[0].updateVMState('vm-0002', vm(2, c.ids[0]), { write: 'all', timeoutMs: 1000 });
    const settled = late.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await c.sch.run(2000);
    expect(await settled).toBeInstanceOf(TimeoutError);
    expect(c.nodes[0].getVMState('vm-0002')).toBeDefined();
    c.net.heal();
    await converge(c);
    expect(c.nodes[2].getVMState('vm-0002')).toBeDefined();
  });

  it('the DESIGN example on a MemoryNetwork runs on the network\'s virtual clock alone (no scheduler option)', async () => {
    const net = new MemoryNetwork({ seed: SEED });
    const ids = ['node-us-east-1', 'node-eu-west-1'];
    const [a, b] = ids.map(
      (nodeId, i) =>
        new NovaCronIntegration({ nodeId, region: ['us-east', 'eu-west'][i], antiEntropyInterval: 30_000, gossipFanout: 3,
          gossipInterval: 5_000, maxGossipHops: 10, transport: net.transport(nodeId) }),
    );
    // the node's timers are the network's virtual clock: nothing below waits for real time
    expect(a.engine.scheduler).toBe(net.scheduler);
    expect(b.engine.scheduler).toBe(net.scheduler);
    await a.start();
    await b.start();
    a.registerRegion(ids[1], 'eu-west', net.transport(ids[1]).address);
    b.registerRegion(ids[0], 'us-east', `memory://${ids[0]}`);
    const t0 = net.scheduler.now();
    await a.updateVMState('vm-001', { id: 'vm-001', status: 'running', nodeId: ids[0], cpuCores: 4, memoryMB: 8192 });
    // eager push: the 10 ms flush timer and the delivery both fire on virtual time, long before the first gossip round
    expect(await net.scheduler.runUntil(() => b.getVMState('vm-001') !== undefined, 60_000), `seed ${SEED}`).toBe(true);
    expect(net.scheduler.now() - t0).toBeLessThan(5_000);
    expect(b.getVMState('vm-001')).toMatchObject({ id: 'vm-001', status: 'running', nodeId: ids[0], cpuCores: 4, memoryMB: 8192 });

    // writes during a partition reach the other side after the heal through gossip / anti-entropy timers, which
    // also run on the virtual clock (eager pushes were dropped by the partition)
    net.partition([ids[0]], [ids[1]]);
    await b.updateVMState('vm-001', { id: 'vm-001', status: 'stopped', nodeId: ids[0], cpuCores: 4, memoryMB: 8192 });
    await a.incrementCounter('migrations', 3);
    await net.scheduler.run(1_000);
    expect(a.getVMState('vm-001')!.status).toBe('running');
    expect(b.getCounter('migrations')).toBe(0);
    net.heal();
    const same = () => JSON.stringify(a.exportState()) === JSON.stringify(b.exportState());
    expect(await net.scheduler.runUntil(same, 120_000), `seed ${SEED}`).toBe(true);
    expect(a.getVMState('vm-001')!.status).toBe('stopped');
    expect(b.getCounter('migrations')).toBe(3);
    await a.stop();
    await b.stop();
  });

  it('an explicit scheduler option wins over the transport\'s; a transport without one means real time', () => {
    const net = new MemoryNetwork({ seed: SEED });
    const other = new VirtualScheduler(5);
    const n1 = new NovaCronIntegration({ nodeId: 'n1', region: 'r', transport: net.transport('n1'), scheduler: other });
    expect(n1.engine.scheduler).toBe(other);
    const bare: Transport = {
      id: 'n2', address: 'none://n2', send: () => false, onMessage: () => {}, start: async () => {}, stop: async () => {},
    };
    const n2 = new NovaCronIntegration({ nodeId: 'n2', region: 'r', transport: bare });
    expect(n2.engine.scheduler).toBeInstanceOf(RealScheduler);
  });

  it('a WebSocketTransport made without an id takes the node id; one with another id is refused', () => {
    const t = new WebSocketTransport({ host: '127.0.0.1', port: 0 });
    expect(t.id).toBe('');
    const node = new NovaCronIntegration({ nodeId: 'node-us-east-1', region: 'us-east', transport: t });
    expect(t.id).toBe('node-us-east-1');
    expect(node.engine.replicaId).toBe('node-us-east-1');
    const wrong = new WebSocketTransport({ id: 'someone-else', host: '127.0.0.1', port: 0 });
    expect(() => new NovaCronIntegration({ nodeId: 'node-us-east-1', region: 'us-east', transport: wrong })).toThrow(ValidationError);
    expect(wrong.id).toBe('someone-else');
    const same = new WebSocketTransport({ id: 'node-us-east-1', host: '127.0.0.1', port: 0 });
    expect(() => new NovaCronIntegration({ nodeId: 'node-us-east-1', region: 'us-east', transport: same })).not.toThrow();
  });
});
