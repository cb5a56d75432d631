/**
 * The engine's state hash of a map (what digests, answers and majority reads compare) is its bucket tree's
 * root with the state the entries leave out (context, hidden nested states), not a hash of the encoding: it
 * must still be equal on two replicas exactly when their encodings are, and the tree it reads must follow
 * every change (local writes included) without being rebuilt.
 */
import { describe, expect, it } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { KeyTree } from '../../src/sync/digest.js';
import { Simulation, bytesEqual } from '../../src/sync/simulation.js';
import { Random } from '../../src/time/random.js';
import { VirtualScheduler } from '../../src/time/virtual.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

const SEED = Number(process.env.SEED ?? 0x5a17);

/** An engine on a network of its own, not started. */
function loneEngine(id: string): SyncEngine {
  const scheduler = new VirtualScheduler();
  const net = new MemoryNetwork({ seed: 1, scheduler });
  return new SyncEngine({ replicaId: id, transport: net.transport(id), scheduler });
}

/** The hash a fresh engine gives a copy of `m` (its tree built from scratch). */
function freshHash(m: ORMap<unknown>): string {
  const e = loneEngine('fresh');
  e.register('m', ORMap.decode(m.encode(), 'fresh'));
  return e.hash('m');
}

/** A seeded random change to m: LWW writes, deletes, nested values of three kinds (their keys deleted too). */
function randomOp(rng: Random, m: ORMap<unknown>): void {
  const key = `k${rng.int(12)}`;
  switch (rng.int(6)) {
    case 0:
    case 1:
      m.setLWW(key, rng.int(4));
      break;
    case 2:
      m.delete(key);
      break;
    case 3:
      m.counter(`c${rng.int(3)}`).increment(1 + rng.int(3));
      break;
    case 4:
      m.orSet(`s${rng.int(3)}`).add(rng.int(3));
      break;
    default:
      if (rng.chance(0.5)) m.map(`m${rng.int(2)}`).setLWW(`f${rng.int(2)}`, rng.int(3));
      else m.delete(`${['c', 's', 'm'][rng.int(3)]}${rng.int(3)}`); // its nested state stays, hidden
  }
}

describe('sync/state hash of a map', () => {
  it('is equal on two replicas exactly when their encodings are (seeded: writes, deletes, hidden nested states, merges of states, deltas and retired dots)', () => {
    const rng = new Random(SEED);
    const ids = ['a', 'b', 'c', 'd'];
    const maps = ids.map((id) => new ORMap<unknown>(id));
    let equal = 0, differ = 0;
    try {
      for (let round = 0; round < 60; round++) {
        for (const m of maps) for (let i = rng.int(3); i > 0; i--) randomOp(rng, m);
        for (let i = rng.int(4); i > 0; i--) {
          const to = maps[rng.int(maps.length)]!, from = maps[rng.int(maps.length)]!;
          const how = rng.int(3);
          if (how === 0) to.merge(ORMap.decode(from.encode(), 'w'));
          else if (how === 1) {
            const d = from.takeDelta();
            if (d) to.merge(d);
          } else for (const p of from.retiredParts(120)) to.merge(p); // dots and hidden nested states only
        }
        const compare = (when: string): void => {
          const hashes = maps.map(freshHash);
          for (let i = 0; i < maps.length; i++) {
            for (let j = i + 1; j < maps.length; j++) {
              const same = bytesEqual(maps[i]!.encode(), maps[j]!.encode());
              if (same) equal++;
              else differ++;
              expect(hashes[i] === hashes[j], `round ${round} ${when}: ${ids[i]} and ${ids[j]} ${same ? 'equal' : 'differ'}`).toBe(same);
            }
          }
        };
        compare('');
        // now and then everyone catches up with everyone: equal states, then the rounds make them differ again
        if (round % 6 === 5) {
          for (const to of maps) for (const from of maps) to.merge(from);
          compare('after catching up');
        }
      }
    } catch (e) {
      console.error(`state hash test failed with SEED=${SEED}`);
      throw e;
    }
    expect(equal).toBeGreaterThan(20);
    expect(differ).toBeGreaterThan(100);
  });

  it('tells apart states that differ only in their contexts, or only in a hidden nested state', () => {
    const a = new ORMap<unknown>('a');
    a.setLWW('x', 1);
    const b = ORMap.decode<unknown>(a.encode(), 'b');
    expect(freshHash(b)).toBe(freshHash(a));
    // c wrote and deleted a key: merged into b, b's context holds a dot a's does not, with the same entries
    const c = new ORMap<unknown>('c');
    c.setLWW('gone', 1);
    c.delete('gone');
    b.merge(c);
    expect(b.keys()).toEqual(a.keys());
    expect(freshHash(b)).not.toBe(freshHash(a));
    a.merge(c);
    expect(freshHash(b)).toBe(freshHash(a));
    // a counter incremented, then its key deleted: a state no row shows. d gets the same rows and context
    // from retired dots alone, without the counter's state
    const d = ORMap.decode<unknown>(a.encode(), 'd');
    a.counter('n').increment(5);
    a.delete('n');
    // small parts: the nested state and the retired dots go in parts of their own
    const contextOnly = a.retiredParts(40).filter((p) => p.nestedIsEmpty());
    expect(contextOnly.length).toBeGreaterThan(0);
    for (const p of contextOnly) d.merge(p);
    expect(d.keys()).toEqual(a.keys());
    expect(ORMap.decodeContext(d.contextBytes()).toString()).toBe(ORMap.decodeContext(a.contextBytes()).toString());
    expect(bytesEqual(d.encode(), a.encode())).toBe(false);
    expect(freshHash(d)).not.toBe(freshHash(a));
    d.merge(a);
    expect(freshHash(d)).toBe(freshHash(a));
  });

  it('a merge into a nested value\'s handle is a local write of its key: it reaches the peer and the kept trees (a kept tree never heard of it: equal hashes, different states, never repaired)', async () => {
    const sim = new Simulation({
      seed: SEED,
      nodes: ['a', 'b'],
      latencyMs: [5, 5],
      storage: false,
      engine: { antiEntropy: { intervalMs: 1000 } },
      setup: (e, ctx) => e.register('vms', new ORMap(ctx.id, { clock: ctx.clock })),
    });
    await sim.start();
    const A = sim.engine('a'), B = sim.engine('b');
    await A.update('vms', (m: ORMap<unknown>) => {
      m.map('r').setLWW('status', 'up');
      for (let i = 0; i < 50; i++) m.setLWW(`k${i}`, i);
    });
    await sim.run(3000);
    expect(A.hash('vms')).toBe(B.hash('vms')); // trees kept from here
    const other = new ORMap<unknown>('z', { clock: new HLC({ now: () => 0 }) }); // not ahead of the simulated clocks
    other.setLWW('owner', 'zed');
    other.counter('n').increment(2);
    await A.update('vms', (m: ORMap<unknown>) => {
      (m.map('r') as ORMap<unknown>).merge(other);
      m.counter('c').merge(other.counter('n'));
    });
    await sim.run(3000);
    const a = A.get<ORMap<unknown>>('vms')!, b = B.get<ORMap<unknown>>('vms')!;
    expect((b.get('r') as ORMap<unknown>).get('owner')).toBe('zed');
    expect(b.counter('c').value()).toBe(2);
    expect(bytesEqual(a.encode(), b.encode())).toBe(true);
    expect(A.hash('vms')).toBe(freshHash(a));
    expect(B.hash('vms')).toBe(freshHash(b));
    await sim.stop();
  });

  it('a change listener that throws keeps neither the kept tree nor other listeners from hearing of a write', async () => {
    const e = loneEngine('a');
    const m = e.register('m', new ORMap<unknown>('a'));
    await e.start();
    for (let i = 0; i < 20; i++) m.setLWW(`k${i}`, i);
    const heard: string[][] = [];
    m.onChange(() => {
      throw new Error('a faulty listener');
    });
    m.onChange((keys) => heard.push(keys));
    e.refresh('m');
    expect(e.hash('m')).toBe(freshHash(m)); // the engine's listener comes after the faulty one
    expect(() => m.setLWW('k1', 'new')).toThrow('a faulty listener');
    expect(m.get('k1')).toBe('new');
    expect(heard).toEqual([['k1']]);
    expect(e.hash('m')).toBe(freshHash(m));
    await expect(e.update('m', (x: ORMap<unknown>) => x.setLWW('k2', 'new'))).rejects.toThrow('a faulty listener');
    expect(e.hash('m')).toBe(freshHash(m));
    await e.stop();
  });

  it('a tracked type whose tree cannot follow its keys is dropped on each change, not kept stale', async () => {
    /** A map whose digests name no keys: its tree cannot be updated key by key. */
    class Keyless<V> extends ORMap<V> {
      override keyHashes(): ReturnType<ORMap<V>['keyHashes']> {
        const { keyHashes, entryHashes } = super.keyHashes();
        return { keyHashes, entryHashes } as ReturnType<ORMap<V>['keyHashes']>;
      }
    }
    const e = loneEngine('a');
    const m = e.register('m', new Keyless<unknown>('a'), { decode: (b) => ORMap.decode(b, 'a') as Keyless<unknown> });
    await e.start();
    await e.update('m', (x: ORMap<unknown>) => x.setLWW('a', 1));
    const first = e.hash('m');
    await e.update('m', (x: ORMap<unknown>) => x.setLWW('b', 2));
    expect(e.hash('m')).not.toBe(first);
    expect(e.hash('m')).toBe(freshHash(m));
    await e.stop();
  });

  it('a stopped engine stops following its maps', async () => {
    const e = loneEngine('a');
    const m = e.register('m', new ORMap<unknown>('a'));
    await e.start();
    m.setLWW('x', 1);
    const listeners = (): number => (m as unknown as { listeners: unknown[] }).listeners.length;
    expect(listeners()).toBe(0);
    e.hash('m'); // builds the tree, which follows the map from now on
    expect(listeners()).toBe(1);
    await e.stop();
    expect(listeners()).toBe(0);
    // a hash asked of a stopped engine is right, and keeps nothing
    m.setLWW('y', 2);
    expect(e.hash('m')).toBe(freshHash(m));
    expect(listeners()).toBe(0);
    m.setLWW('y', 3);
    expect(e.hash('m')).toBe(freshHash(m));
  });

  it('follows local writes (through update and direct), deletes and nested writes without rebuilding the tree, and replicas still converge', async () => {
    const sim = new Simulation({
      seed: SEED,
      nodes: ['a', 'b'],
      latencyMs: [5, 5],
      engine: { gossip: { intervalMs: 1e9 }, antiEntropy: { intervalMs: 1e9 }, liveness: { probeIntervalMs: 1e9 } },
      storage: false,
      setup: (e, ctx) => e.register('vms', new ORMap(ctx.id, { clock: ctx.clock })),
    });
    await sim.start();
    const a = sim.engine('a').get<ORMap<unknown>>('vms')!;
    const b = sim.engine('b').get<ORMap<unknown>>('vms')!;
    await sim.engine('a').update('vms', (m: ORMap<unknown>) => {
      for (let i = 0; i < 3000; i++) m.setLWW(`vm-${i}`, { status: 'running', n: i });
    });
    await sim.run(200);
    expect(bytesEqual(a.encode(), b.encode())).toBe(true);
    // both build their trees once
    expect(sim.engine('a').hash('vms')).toBe(sim.engine('b').hash('vms'));
    let rebuilt = 0;
    for (const m of [a, b]) {
      const keyHashes = m.keyHashes.bind(m);
      m.keyHashes = () => {
        rebuilt++;
        return keyHashes();
      };
    }
    const rng = new Random(SEED).fork('local');
    for (let round = 0; round < 5; round++) {
      await sim.engine('a').update('vms', (m: ORMap<unknown>) => {
        for (let i = 0; i < 40; i++) m.setLWW(`vm-${rng.int(3000)}`, { status: 'stopped', round });
        for (let i = 0; i < 5; i++) m.delete(`vm-${rng.int(3000)}`);
        m.counter('ops').increment(1);
        m.map(`vm-nested-${round}`).setLWW('status', 'new');
      });
      // direct writes on b: the tree follows them before any sweep commits them
      for (let i = 0; i < 20; i++) b.setLWW(`b-${round}-${i}`, round);
      b.delete(`vm-${rng.int(3000)}`);
      for (const [id, m] of [['a', a], ['b', b]] as const) {
        expect(sim.engine(id).hash('vms'), `${id} after round ${round}`).toBe(freshHash(m));
      }
    }
    expect(rebuilt).toBe(0);
    for (const id of ['a', 'b']) {
      const eng = sim.engine(id) as unknown as { entries: Map<string, unknown>; treeOf(e: unknown): KeyTree };
      const t = eng.treeOf(eng.entries.get('vms'));
      const m = id === 'a' ? a : b;
      expect(t.n).toBe(m.size);
    }
    // the pushes land first (a's updates, and b's direct writes, swept and pushed flushDelayMs after they were
    // made): an anti-entropy session started while they are in flight can find every key equal and the hashes
    // not, and answer with the whole state (a merge of every key, which drops the tree)
    await sim.run(50);
    for (let round = 0; round < 4 && !bytesEqual(a.encode(), b.encode()); round++) {
      sim.engine(round % 2 ? 'a' : 'b').syncWith(round % 2 ? 'b' : 'a');
      await sim.run(1000);
    }
    expect(bytesEqual(a.encode(), b.encode())).toBe(true);
    expect(sim.engine('a').hash('vms')).toBe(sim.engine('b').hash('vms'));
    expect(rebuilt).toBe(0);
    await sim.stop();
  });
});
