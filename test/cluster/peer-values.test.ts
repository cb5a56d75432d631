import { describe, expect, it } from 'vitest';
import { ClusterMetadata } from '../../src/cluster/metadata.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ValidationError } from '../../src/errors.js';
import { makeRng, SEED } from '../crdt/laws.js';

/**
 * A peer's maps can hold anything an ORMap holds (a faulty or hostile node writes through the CRDTs, not
 * through the validated cluster API): reads must neither throw nor hand out values that are not records.
 */
function hostile(): ClusterMetadata {
  const evil = new ClusterMetadata('evil');
  evil.vms.counter('vm-1').increment(3); // a nested CRDT where a VM record belongs
  (evil.vms as ORMap<unknown>).setLWW('vm-2', 5);
  (evil.vms as ORMap<unknown>).setLWW('vm-3', { id: 'vm-other', status: 'running' });
  (evil.vms as ORMap<unknown>).setLWW('vm-4', null);
  (evil.vms as ORMap<unknown>).setLWW('vm-5', { id: 'vm-5', status: 7 });
  (evil.vms as ORMap<unknown>).setLWW('vm-6', { id: 'vm-6', status: 'running', createdAt: 'yesterday' });
  (evil.vms as ORMap<unknown>).setLWW('vm-7', ['vm-7']);
  (evil.vms as ORMap<unknown>).setLWW('vm-8', { id: 'vm-8', status: 'running', metadata: 'x' });
  (evil.vms as ORMap<unknown>).setLWW('vm-new', { id: 'vm-new', status: 'running', futureField: 1 }); // unknown fields pass
  evil.putVM('vm-ok', { status: 'running', nodeId: 'n1' });
  (evil.nodes as ORMap<unknown>).setLWW('node-a', 'up');
  evil.nodes.orSet('node-b').add('x');
  (evil.nodes as ORMap<unknown>).setLWW('node-c', { id: 'node-c', status: 'healthy' }); // no region
  (evil.nodes as ORMap<unknown>).setLWW('node-d', { id: 'node-d', region: 'r', status: 'healthy', vmCount: '3' });
  evil.putNode({ id: 'node-ok', region: 'us-east', status: 'healthy' });
  evil.resources.counter('res-1').increment(1);
  evil.setResource('res-ok', { a: 1 });
  return evil;
}

describe('cluster reads of values merged from a peer', () => {
  it('entries that are not records of their kind read as absent; reads never throw', () => {
    const good = new ClusterMetadata('good');
    const evil = hostile();
    for (const [, crdt] of evil.crdts()) expect(crdt).toBeDefined();
    good.vms.merge(evil.vms);
    good.nodes.merge(evil.nodes);
    good.resources.merge(evil.resources);
    expect(good.vms.size).toBe(10);
    expect(good.listVMs().map((v) => v.id)).toEqual(['vm-new', 'vm-ok']);
    for (let i = 1; i <= 8; i++) expect(good.getVMState(`vm-${i}`)).toBeUndefined();
    expect(good.getVMState('vm-ok')?.status).toBe('running');
    expect(good.listNodes().map((n) => n.id)).toEqual(['node-ok']);
    for (const id of ['node-a', 'node-b', 'node-c', 'node-d']) expect(good.getNodeStatus(id)).toBeUndefined();
    expect(good.getResource('res-1')).toBeUndefined();
    expect(good.listResources()).toEqual({ 'res-ok': { a: 1 } });
    const all = good.exportState();
    expect(all.vms).toHaveLength(2);
    expect(JSON.parse(JSON.stringify(all))).toEqual(all);
  });

  it('a valid local write replaces a bad entry, and a bad createdAt is not carried over', () => {
    const good = new ClusterMetadata('good', { now: () => 1_000 });
    good.vms.merge(hostile().vms);
    good.putVM('vm-1', { status: 'stopped' });
    good.putVM('vm-6', { status: 'stopped' });
    expect(good.getVMState('vm-1')).toMatchObject({ id: 'vm-1', status: 'stopped', createdAt: 1_000 });
    expect(good.getVMState('vm-6')).toMatchObject({ id: 'vm-6', status: 'stopped', createdAt: 1_000 });
    expect(good.listVMs().map((v) => v.id)).toEqual(['vm-1', 'vm-6', 'vm-new', 'vm-ok']);
  });
});

describe('countVMsOn', () => {
  it('matches listVMs() after local writes, moves, removals, merges and peer values, re-reading only what changed', () => {
    const a = new ClusterMetadata('a');
    const b = new ClusterMetadata('b');
    const expected = (m: ClusterMetadata, node: string) => m.listVMs().filter((v) => v.nodeId === node).length;
    for (let i = 0; i < 20; i++) a.putVM(`vm-${i}`, { status: 'running', nodeId: `n${i % 3}` });
    expect(a.countVMsOn('n0')).toBe(7);
    a.putVM('vm-0', { status: 'running', nodeId: 'n1' }); // moved
    a.removeVM('vm-3');
    for (let i = 20; i < 25; i++) b.putVM(`vm-${i}`, { status: 'running', nodeId: 'n0' });
    a.vms.merge(b.vms);
    (a.vms as ORMap<unknown>).setLWW('vm-6', 5); // no longer a VM record
    for (const n of ['n0', 'n1', 'n2', 'nx']) expect(a.countVMsOn(n), n).toBe(expected(a, n));
    expect(a.countVMsOn('n0')).toBe(9); // 7, less vm-0 (moved), vm-3 (removed), vm-6 (not a record), plus b's 5
    // a merge that removes one
    b.vms.merge(a.vms);
    b.removeVM('vm-21');
    a.vms.merge(b.vms);
    expect(a.countVMsOn('n0')).toBe(expected(a, 'n0'));
    expect(a.countVMsOn('n0')).toBe(8);
  });
});

describe('overview', () => {
  /** The overview computed from listVMs() (what the dashboard computed itself from /state before). */
  function expectedOverview(m: ClusterMetadata, recent: number) {
    const vms = m.listVMs();
    const regionOf = new Map(m.listNodes().map((n) => [n.id, n.region]));
    const regions = new Map<string, number>();
    for (const v of vms) {
      const r = (v.nodeId !== undefined ? regionOf.get(v.nodeId) : undefined) || (v.metadata?.region as string | undefined) || 'unknown';
      regions.set(r, (regions.get(r) ?? 0) + 1);
    }
    const sorted = vms.slice().sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { vms: vms.length, regions: Object.fromEntries([...regions].sort()), recent: sorted.slice(0, recent), nodes: m.listNodes(), counters: m.listCounters() };
  }

  it('matches listVMs() after local writes, moves, removals, merges and peer values (seeded)', () => {
    const rng = makeRng(SEED);
    const a = new ClusterMetadata('a');
    const b = new ClusterMetadata('b');
    a.putNode({ id: 'n0', status: 'healthy', region: 'eu-west' });
    b.putNode({ id: 'n1', status: 'healthy', region: 'toString' }); // names an Object.prototype member
    for (let step = 0; step < 400; step++) {
      const m = rng.bool() ? a : b;
      const id = `vm-${rng.int(60)}`;
      const op = rng.int(10);
      if (op < 6) {
        const nodeId = rng.pick(['n0', 'n1', 'n2', undefined]);
        const metadata = rng.bool() ? { region: rng.pick(['ap-south', 'eu-west', '', 'constructor', '__proto__']) } : undefined;
        // ties on updatedAt too: the order then goes by id
        m.putVM(id, { status: 'running', ...(nodeId ? { nodeId } : {}), ...(metadata ? { metadata } : {}), updatedAt: 1000 + rng.int(50) });
      } else if (op < 8) m.removeVM(id);
      else if (op === 8) (m.vms as ORMap<unknown>).setLWW(id, rng.int(3)); // not a VM record
      else m.increment(rng.pick(['c0', 'c1', '__proto__']), 1 + rng.int(5));
      if (rng.int(8) === 0) {
        a.vms.merge(b.vms);
        a.nodes.merge(b.nodes);
        a.counters.merge(b.counters);
      }
      if (rng.int(25) === 0) {
        const recent = rng.pick([0, 1, 5, 11, 100]);
        expect(a.overview(recent), `seed ${SEED} step ${step}`).toEqual(expectedOverview(a, recent));
        expect(a.countVMsOn('n0')).toBe(a.listVMs().filter((v) => v.nodeId === 'n0').length);
      }
    }
    expect(a.overview()).toEqual(expectedOverview(a, 25));
    // region and counter names that are Object.prototype members are counted as any other
    for (const r of ['constructor', 'constructor', '__proto__', 'hasOwnProperty']) a.putVM(`vm-${r}-${a.vms.size}`, { status: 'running', metadata: { region: r } });
    expect(a.overview(0)).toEqual(expectedOverview(a, 0));
    const o = a.overview(0);
    expect(o.regions.constructor).toBe(expectedOverview(a, 0).regions.constructor);
    expect(o.regions.hasOwnProperty).toBe(1);
    for (const r of Object.keys(o.regions)) expect(typeof o.regions[r], r).toBe('number');
    expect(Object.keys(o.regions)).toEqual(expect.arrayContaining(['__proto__', 'constructor', 'hasOwnProperty']));
    expect(Object.getPrototypeOf(o.regions)).toBe(Object.prototype);
    expect(Object.keys(a.listCounters())).toContain('__proto__');
    expect(JSON.parse(JSON.stringify(a.listCounters())).__proto__).toBe(a.getCounter('__proto__'));
    // values a peer filled with things that are not VM records are left out, as listVMs() leaves them out
    a.vms.merge(hostile().vms);
    expect(a.overview(100)).toEqual(expectedOverview(a, 100));
    expect(() => a.overview(-1)).toThrow(ValidationError);
  });
});

describe('summary', () => {
  /** A replica holding m's state, its summary built from scratch. */
  function fresh(m: ClusterMetadata): ClusterMetadata {
    const f = new ClusterMetadata('fresh');
    const mine = new Map(m.crdts());
    for (const [name, crdt] of f.crdts()) (crdt as { merge(o: unknown): unknown }).merge(mine.get(name));
    return f;
  }

  /** What the summary's VM and assignment parts stand for: the records and assignments as the reads list them. */
  function content(m: ClusterMetadata): string {
    return JSON.stringify([m.listVMs().map((v) => JSON.stringify(Object.entries(v).sort())), Object.entries(m.listAssignments()).sort(), Object.entries(m.listCounters()).sort()]);
  }

  it('kept up to date call by call, equals one built from scratch, and tells replicas apart exactly when their VMs, assignments or counters differ (seeded)', () => {
    const rng = makeRng(SEED);
    const a = new ClusterMetadata('a');
    const b = new ClusterMetadata('b');
    a.putNode({ id: 'n0', status: 'healthy', region: 'eu-west' });
    let same = 0, differ = 0;
    for (let step = 0; step < 500; step++) {
      const m = rng.bool() ? a : b;
      const id = rng.pick([`vm-${rng.int(40)}`, '__proto__', 'constructor']);
      const op = rng.int(13);
      if (op < 5) m.putVM(id, { status: rng.pick(['running', 'stopped']), cpuCores: rng.int(4), metadata: rng.bool() ? { z: 1, a: [rng.int(2)] } : undefined, updatedAt: 1000 + rng.int(5) });
      else if (op < 7) m.removeVM(id);
      else if (op < 10) m.assign(id, rng.pick(['n0', 'n1', 'n2']));
      else if (op === 10) (m.assignments as ORMap<unknown>).setLWW(id, rng.int(3)); // not an assignment
      else if (op === 11) (m.vms as ORMap<unknown>).setLWW(id, rng.int(3)); // not a VM record
      else m.increment(`c${rng.int(2)}`, 1 + rng.int(3));
      if (rng.int(6) === 0) {
        const [to, from] = rng.bool() ? [a, b] : [b, a];
        to.vms.merge(from.vms);
        to.assignments.merge(from.assignments);
        to.counters.merge(from.counters);
      }
      if (rng.int(5) === 0) {
        for (const x of [a, b]) {
          const s = x.summary();
          expect(s, `seed ${SEED} step ${step}`).toEqual(fresh(x).summary());
          expect(s.vms).toBe(x.listVMs().length);
          expect(s.assignments).toBe(Object.keys(x.listAssignments()).length);
          expect(s.nodes).toBe(x.listNodes().length);
          expect(s.hash).toMatch(/^[0-9a-f]{26}$/);
        }
        const equal = content(a) === content(b);
        if (equal) same++;
        else differ++;
        expect(a.summary().hash === b.summary().hash, `seed ${SEED} step ${step}: ${equal ? 'same' : 'different'} content`).toBe(equal);
      }
      // now and then both catch up: the same content from different histories
      if (step % 50 === 49) {
        for (const [to, from] of [[a, b], [b, a]]) {
          to.vms.merge(from.vms);
          to.assignments.merge(from.assignments);
          to.counters.merge(from.counters);
        }
        expect(a.summary().hash).toBe(b.summary().hash);
        same++;
      }
    }
    expect(same).toBeGreaterThan(5);
    expect(differ).toBeGreaterThan(20);
  });

  it('stays right after a merge that throws (changing nothing), and its assignment changes do not pile up while the VM index is read', () => {
    const a = new ClusterMetadata('a');
    a.vms.counter('junk').increment(Number.MAX_SAFE_INTEGER - 1);
    a.putVM('vm-0', { status: 'running' });
    a.summary();
    const evil = new ClusterMetadata('evil');
    evil.putVM('vm-1', { status: 'running' });
    evil.vms.counter('junk').increment(5);
    expect(() => a.vms.merge(evil.vms)).toThrow(RangeError);
    expect(a.listVMs().map((v) => v.id)).toEqual(['vm-0']); // refused whole: vm-1 was not merged either
    expect(a.summary()).toEqual(fresh(a).summary());
    // the CLI heartbeat reads the VM index (countVMsOn): the assignment changes are taken along
    for (let i = 0; i < 500; i++) {
      a.assign(`vm-x${i}`, 'n0');
      a.removeVM(`vm-x${i}`);
    }
    a.countVMsOn('n0');
    expect((a.assignments as unknown as { changed: Set<string> }).changed.size).toBe(0);
    a.assign('vm-0', 'n1');
    expect(a.summary()).toEqual(fresh(a).summary());
  });
});
