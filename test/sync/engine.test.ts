import { describe, expect, it, vi } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { GCounter } from '../../src/crdt/g-counter.js';
import { GSet } from '../../src/crdt/g-set.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { RGA } from '../../src/crdt/rga.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { NotInitializedError, StorageError, TimeoutError, ValidationError } from '../../src/errors.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { MSG, decodeEnvelope, encodeEnvelope, makeSigner } from '../../src/sync/envelope.js';
import { decodeDigest, encodeDelta, encodeSync } from '../../src/sync/messages.js';
import { Simulation } from '../../src/sync/simulation.js';
import { Random } from '../../src/time/random.js';
import { VirtualScheduler } from '../../src/time/virtual.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

const SEED = Number(process.env.SEED ?? 0xe4e1);

function counterSim(nodes: string[], extra: Partial<ConstructorParameters<typeof Simulation>[0]> = {}) {
  return new Simulation({
    seed: SEED,
    nodes,
    latencyMs: [5, 20],
    engine: { gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 2000 }, ...(extra.engine ?? {}) },
    setup: (e, ctx) => {
      e.register('c', new GCounter(ctx.id));
      e.register('s', new ORSet<string>(ctx.id));
    },
    ...extra,
  });
}

const value = (e: SyncEngine) => e.get<GCounter>('c')!.value();

/**
 * Engines with storage on a MemoryNetwork, each with an ORMap 'big' (registered first: its item leads an
 * answer) and an RGA 'doc', for the recovery tests. `peersOf(id)`: whom each engine adds (default: all others).
 * `restart(id, lose)` crashes the node, sets its stored record of `lose` aside (garbles it) and builds a new
 * engine on its storage, started.
 */
function recoveryCluster(ids: string[], opts: { maxMessageBytes?: number; peersOf?: (id: string) => string[] } = {}) {
  const scheduler = new VirtualScheduler(1_000_000);
  const net = new MemoryNetwork({ seed: SEED, scheduler, latencyMs: [5, 5] });
  const stores = new Map(ids.map((id) => [id, new MemoryStorage()]));
  const mk = (id: string) => {
    const e = new SyncEngine({ replicaId: id, transport: net.transport(id), scheduler, storage: stores.get(id)!, gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 1000, timeoutMs: 2000 }, snapshotEvery: 1, maxMessageBytes: opts.maxMessageBytes });
    e.register('big', new ORMap<string>(id));
    e.register('doc', new RGA<string>(id));
    for (const o of opts.peersOf?.(id) ?? ids.filter((x) => x !== id)) e.addPeer(o, '');
    return e;
  };
  const eng = new Map(ids.map((id) => [id, mk(id)]));
  return {
    scheduler,
    net,
    eng,
    start: async () => {
      for (const e of eng.values()) await e.start();
    },
    crash: async (id: string, lose: string) => {
      net.crash(id);
      await stores.get(id)!.put(`s/${lose}`, Uint8Array.of(9, 9, 9));
    },
    restart: async (id: string) => {
      net.restart(id);
      const e = mk(id);
      eng.set(id, e);
      await e.start();
      return e;
    },
    stop: async () => {
      for (const e of eng.values()) await e.stop();
    },
  };
}

const insertAtEnd = (x: string) => (d: RGA<string>) => void d.insert(d.length, x);

describe('SyncEngine: writes and propagation', () => {
  it('eager push brings a write to every replica within a few latencies', async () => {
    const sim = counterSim(['a', 'b', 'c', 'd', 'e']);
    await sim.start();
    await sim.engine('a').update<GCounter>('c', (c) => c.increment(3));
    const t0 = sim.scheduler.now();
    const ok = await sim.runUntil(() => sim.upNodes().every((n) => value(n.engine) === 3), 10_000);
    expect(ok).toBe(true);
    // flush 10 ms + at most two hops of <= 20 ms, well before the first gossip or anti-entropy round matters
    expect(sim.scheduler.now() - t0).toBeLessThanOrEqual(60);
    await sim.stop();
  });

  it('a direct write on any registered type is pushed within the batch window, by the virtual clock alone', async () => {
    // no storage: nothing to await, so advancing the virtual clock (synchronously, no promise turns in
    // between) delivers the write; gossip and anti-entropy are far off, so only eager push can do it
    const net = new MemoryNetwork({ seed: SEED, latencyMs: [5, 20] });
    const make = (id: string) => {
      const e = new SyncEngine({ replicaId: id, transport: net.transport(id), gossip: { intervalMs: 600_000 }, antiEntropy: { intervalMs: 600_000 } });
      e.register('gc', new GCounter(id));
      e.register('pn', new PNCounter(id));
      e.register('gs', new GSet<string>(id));
      e.register('tp', new TwoPSet<string>(id));
      e.register('or', new ORSet<string>(id));
      e.register('lww', new LWWRegister<string>(id));
      e.register('mv', new MVRegister<string>(id));
      e.register('map', new ORMap<string>(id));
      e.register('rga', new RGA<string>(id));
      return e;
    };
    const a = make('a');
    const b = make('b');
    a.addPeer('b');
    b.addPeer('a');
    await a.start();
    await b.start();
    const sch = net.scheduler as VirtualScheduler;
    sch.advance(50);
    // one write at a time: a sweep commits every registered object, so each type's own hook must fire
    const steps: [() => unknown, () => unknown, unknown][] = [
      [() => a.get<GCounter>('gc')!.increment(2), () => b.get<GCounter>('gc')!.value(), 2],
      [() => a.get<PNCounter>('pn')!.decrement(3), () => b.get<PNCounter>('pn')!.value(), -3],
      [() => a.get<GSet<string>>('gs')!.add('x'), () => b.get<GSet<string>>('gs')!.has('x'), true],
      [() => a.get<TwoPSet<string>>('tp')!.add('y'), () => b.get<TwoPSet<string>>('tp')!.has('y'), true],
      [() => a.get<TwoPSet<string>>('tp')!.remove('y'), () => b.get<TwoPSet<string>>('tp')!.has('y'), false],
      [() => a.get<ORSet<string>>('or')!.add('z'), () => b.get<ORSet<string>>('or')!.has('z'), true],
      [() => a.get<LWWRegister<string>>('lww')!.set('v'), () => b.get<LWWRegister<string>>('lww')!.get(), 'v'],
      [() => a.get<MVRegister<string>>('mv')!.set('w'), () => b.get<MVRegister<string>>('mv')!.values().join(), 'w'],
      [() => a.get<ORMap<string>>('map')!.setLWW('k', 'v'), () => b.get<ORMap<string>>('map')!.get('k'), 'v'],
      [() => a.get<RGA<string>>('rga')!.insert(0, 'r'), () => b.get<RGA<string>>('rga')!.toArray().join(), 'r'],
      [() => a.get<RGA<string>>('rga')!.delete(0), () => b.get<RGA<string>>('rga')!.length, 0],
    ];
    for (const [write, read, want] of steps) {
      write();
      sch.advance(60); // flush 10 ms + one hop of <= 20 ms, with room
      expect(read()).toEqual(want);
    }
    await a.stop();
    await b.stop();
  });

  it('a storage that fails a write rejects the update with StorageError (the cause kept)', async () => {
    class FailingStorage extends MemoryStorage {
      fail = false;
      override async batch(ops: Parameters<MemoryStorage['batch']>[0]): Promise<void> {
        if (this.fail) throw new Error('disk on fire');
        return super.batch(ops);
      }
    }
    const storage = new FailingStorage();
    const net = new MemoryNetwork({ seed: SEED });
    const e = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), storage });
    e.register('c', new GCounter('a'));
    await e.start();
    await e.update<GCounter>('c', (c) => c.increment(1));
    storage.fail = true;
    const err = await e.update<GCounter>('c', (c) => c.increment(1)).then(() => undefined, (x: unknown) => x);
    expect(err).toBeInstanceOf(StorageError);
    expect(((err as StorageError).cause as Error).message).toBe('disk on fire');
    storage.fail = false;
    await e.stop();
  });

  it('emits change events for local and remote changes', async () => {
    const sim = counterSim(['a', 'b']);
    await sim.start();
    const seen: string[] = [];
    sim.engine('b').on('change', (ev) => seen.push(`${ev.name}:${ev.origin}:${ev.local}`));
    const off = sim.engine('a').on('change', (ev) => seen.push(`a-${ev.name}:${ev.local}`));
    await sim.engine('a').update<GCounter>('c', (c) => c.increment());
    await sim.run(200);
    off();
    await sim.engine('a').update<GCounter>('c', (c) => c.increment());
    await sim.run(200);
    expect(seen).toEqual(['a-c:true', 'c:a:false', 'c:a:false']);
    await sim.stop();
  });

  it('majority and all resolve once enough replicas merged; all times out across a partition and still converges', async () => {
    const sim = counterSim(['a', 'b', 'c', 'd', 'e']);
    await sim.start();
    const a = sim.engine('a');
    let resolved = false;
    const p = a.update<GCounter>('c', (c) => c.increment(), { write: 'all', timeoutMs: 5000 }).then(() => (resolved = true));
    await sim.runUntil(() => resolved, 5000);
    await p;
    expect(sim.upNodes().every((n) => value(n.engine) === 1)).toBe(true);

    sim.partition(['a', 'b', 'c'], ['d', 'e']);
    let majority = false;
    const pm = a.update<GCounter>('c', (c) => c.increment(), { write: 'majority', timeoutMs: 3000 }).then(() => (majority = true));
    await sim.runUntil(() => majority, 3000);
    await pm;
    expect(majority).toBe(true);

    let err: unknown;
    const pa = a.update<GCounter>('c', (c) => c.increment(), { write: 'all', timeoutMs: 3000 }).catch((e) => (err = e));
    await sim.run(3100);
    await pa;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(value(a)).toBe(3); // the write stays applied
    expect(a.stats().writes.timedOut).toBe(1);
    sim.heal();
    const ok = await sim.runUntil(() => sim.upNodes().every((n) => value(n.engine) === 3), 30_000);
    expect(ok).toBe(true);
    await sim.stop();
  });

  it('majority times out when only a minority is reachable', async () => {
    const sim = counterSim(['a', 'b', 'c', 'd', 'e']);
    await sim.start();
    sim.partition(['a', 'b'], ['c', 'd', 'e']);
    let err: unknown;
    const p = sim.engine('a').update<GCounter>('c', (c) => c.increment(), { write: 'majority', timeoutMs: 2000 }).catch((e) => (err = e));
    await sim.run(2100);
    await p;
    expect(err).toBeInstanceOf(TimeoutError);
    await sim.stop();
  });

  it('read majority merges the state of a majority before answering, and times out without one', async () => {
    const sim = counterSim(['a', 'b', 'c'], { engine: { gossip: { intervalMs: 500, fanout: 1 }, antiEntropy: { intervalMs: 60_000 } } });
    await sim.start();
    sim.partition(['a'], ['b', 'c']);
    await sim.engine('b').update<GCounter>('c', (c) => c.increment(7));
    await sim.run(100);
    expect(value(sim.engine('a'))).toBe(0);
    let err: unknown;
    const p1 = sim.engine('a').read('c', { read: 'majority', timeoutMs: 1000 }).catch((e) => (err = e));
    await sim.run(1100);
    await p1;
    expect(err).toBeInstanceOf(TimeoutError);
    sim.heal();
    let got: GCounter | undefined;
    const p2 = sim.engine('a').read<GCounter>('c', { read: 'majority', timeoutMs: 2000 }).then((c) => (got = c));
    await sim.runUntil(() => got !== undefined, 2000);
    await p2;
    expect(got!.value()).toBe(7);
    await sim.stop();
  });

  it('validates its inputs with typed errors', async () => {
    const sim = counterSim(['a', 'b']);
    const a = sim.engine('a');
    expect(() => a.register('c', new GCounter('a'))).toThrow(ValidationError);
    expect(() => a.register('', new GCounter('a'))).toThrow(ValidationError);
    expect(() => a.register('x', {} as never)).toThrow(ValidationError);
    await expect(a.update('nope', () => {})).rejects.toBeInstanceOf(ValidationError);
    let ran = false;
    await expect(a.update('c', () => void (ran = true), { write: 'most' as never })).rejects.toBeInstanceOf(ValidationError);
    expect(ran).toBe(false);
    await expect(a.commit('c', { write: 'most' as never })).rejects.toBeInstanceOf(ValidationError);
    // a timeout past the longest timer the platform keeps would fire at once: refused
    await expect(a.update('c', () => {}, { write: 'all', timeoutMs: 2 ** 31 })).rejects.toBeInstanceOf(ValidationError);
    await expect(a.update('c', () => {}, { timeoutMs: Number.NaN })).rejects.toBeInstanceOf(ValidationError);
    await expect(a.read('c', { read: 'majority', timeoutMs: -1 })).rejects.toBeInstanceOf(ValidationError);
    // with a storage, nothing is written before start() has loaded it (it would overwrite the stored sequence)
    await expect(a.update('c', () => {})).rejects.toBeInstanceOf(NotInitializedError);
    await expect(a.commit('c')).rejects.toBeInstanceOf(NotInitializedError);
    await sim.start();
    await expect(a.update('c', () => {})).resolves.toBeUndefined(); // no change: nothing to send
    expect(() => a.addPeer('a')).toThrow(ValidationError);
    expect(() => new SyncEngine({ replicaId: '', transport: sim.network.transport('z') })).toThrow(ValidationError);
    await sim.stop();
  });
});

describe('SyncEngine: a transport of your own', () => {
  it('runs on the members DESIGN lists (no id, a send that returns nothing)', async () => {
    // two engines joined by a hand-written in-process pipe: only address, send, onMessage, start and stop
    const handlers = new Map<string, (from: string, bytes: Uint8Array) => void>();
    const pipe = (self: string): import('../../src/transport/types.js').Transport => ({
      address: `pipe://${self}`,
      send(peer, bytes) {
        const copy = bytes.slice();
        setTimeout(() => handlers.get(peer)?.(self, copy), 1);
      },
      onMessage: (fn) => void handlers.set(self, fn),
      start: async () => {},
      stop: async () => {},
    });
    const a = new SyncEngine({ replicaId: 'a', transport: pipe('a') });
    const b = new SyncEngine({ replicaId: 'b', transport: pipe('b') });
    for (const [e, other] of [[a, 'b'], [b, 'a']] as const) {
      e.register('c', new GCounter(e.replicaId));
      e.addPeer(other, `pipe://${other}`);
      await e.start();
    }
    try {
      await a.update<GCounter>('c', (c) => c.increment(2));
      await b.update<GCounter>('c', (c) => c.increment(5));
      await vi.waitFor(() => expect([value(a), value(b)]).toEqual([7, 7]), { timeout: 5000, interval: 10 });
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('SyncEngine: untrusted input', () => {
  async function keyed() {
    const sim = counterSim(['a', 'b', 'c'], { engine: { clusterKey: 'secret-key', gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 2000 } } });
    await sim.start();
    const evil = sim.network.transport('evil');
    await evil.start();
    return { sim, evil };
  }

  it('drops and counts messages without a valid HMAC tag; state unchanged', async () => {
    const { sim, evil } = await keyed();
    const b = sim.engine('b');
    const before = b.get('c')!.encode();
    const forged = new GCounter('evil');
    forged.increment(1000);
    const payload = encodeDelta({ writesLo: 1, writesHi: 1, deps: [], objects: [{ name: 'c', typeTag: forged.typeTag, bytes: forged.encode() }] });
    const env = { type: MSG.DELTA, flags: 0, origin: 'evil', epoch: 1, counter: 1, hops: 0, payload };
    evil.send('b', encodeEnvelope(env, undefined)); // untagged
    evil.send('b', encodeEnvelope({ ...env, counter: 2 }, makeSigner('wrong-key'))); // wrong key
    const good = encodeEnvelope({ ...env, counter: 3 }, makeSigner('secret-key'));
    const tampered = good.slice();
    tampered[tampered.length - 40] ^= 1;
    evil.send('b', tampered);
    await sim.run(100);
    expect(b.stats().errors.auth).toBe(3);
    expect(b.get('c')!.encode()).toEqual(before);
    // the same message with the right tag is accepted
    evil.send('b', good);
    await sim.run(100);
    expect(value(b)).toBe(1000);
    await sim.stop();
  });

  it('a node without the cluster key merges nothing from keyed nodes, and both sides count the other as auth failures', async () => {
    const scheduler = new VirtualScheduler();
    const net = new MemoryNetwork({ seed: SEED, latencyMs: [5, 20], scheduler });
    const ids = ['a', 'b', 'c'];
    const engines = ids.map((id) => new SyncEngine({ replicaId: id, transport: net.transport(id), scheduler, gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 2000 }, ...(id === 'c' ? {} : { clusterKey: 'secret-key' }) }));
    for (const e of engines) for (const id of ids) if (id !== e.replicaId) e.addPeer(id, id);
    const counters = engines.map((e) => e.register('c', new GCounter(e.replicaId)));
    for (const e of engines) await e.start();
    await engines[0]!.update('c', (c: GCounter) => c.increment(5));
    await engines[2]!.update('c', (c: GCounter) => c.increment(7));
    await scheduler.run(10_000);
    expect(counters.map((c) => c.value())).toEqual([5, 5, 7]); // c got nothing of a's write, a and b nothing of c's
    expect(engines[2]!.stats().errors.auth).toBeGreaterThan(0);
    expect(engines[0]!.stats().errors.auth + engines[1]!.stats().errors.auth).toBeGreaterThan(0);
    for (const e of engines) await e.stop();
  });

  it('large messages that wait on dependencies that never come, or name unknown objects, hold bounded bytes', async () => {
    const MiB = 1024 * 1024;
    const sim = counterSim(['a', 'b', 'c'], { engine: { gossip: { intervalMs: 60_000, maxPendingBytes: 4 * MiB }, antiEntropy: { intervalMs: 60_000 }, causalBufferBytes: 3 * MiB } });
    await sim.start();
    const evil = sim.network.transport('evil');
    await evil.start();
    const b = sim.engine('b');
    const junk = new Uint8Array(MiB).fill(0x41);
    for (let i = 0; i < 12; i++) {
      // a causal delta whose dependency (evil's first event, and one from 'ghost') never arrives
      const payload = encodeDelta({ writesLo: 1, writesHi: 0, deps: [['evil', i + 2], ['ghost', 1]], objects: [{ name: 'no-such-object', typeTag: 1, bytes: junk }] });
      evil.send('b', encodeEnvelope({ type: MSG.DELTA, flags: 0, origin: 'evil', epoch: 1, counter: i + 1, hops: 0, payload }, undefined));
      await sim.run(5);
      const s = b.internals();
      expect(s.causalPendingBytes).toBeLessThanOrEqual(3 * MiB);
      expect(s.queueBytes).toBeLessThanOrEqual(4 * MiB);
    }
    await sim.run(100);
    expect(b.stats().errors.unknownObject).toBe(12);
    const s = b.internals();
    expect(s.causalPending).toBeGreaterThanOrEqual(2);
    expect(s.causalPending).toBeLessThanOrEqual(3);
    expect(s.queue).toBeGreaterThanOrEqual(3);
    expect(s.queue).toBeLessThanOrEqual(4);
    expect(b.stats().causal.dropped).toBe(12 - s.causalPending);
    // the node still works
    await sim.engine('a').update<GCounter>('c', (c) => c.increment(5));
    expect(await sim.runUntil(() => value(b) === 5, 5_000)).toBe(true);
    await sim.stop();
  });

  it('a delta a merge refuses in part (a clock too far ahead) is counted once and applied again when re-sent', async () => {
    const T = 1_700_000_000_000;
    let offset = 0;
    const sim = new Simulation({
      seed: SEED,
      nodes: ['v'],
      engine: { gossip: { intervalMs: 60_000 }, antiEntropy: { intervalMs: 600_000 } },
      setup: (e, ctx) => {
        e.register('c', new GCounter(ctx.id));
        e.register('r', new LWWRegister<string>(ctx.id, { clock: new HLC({ now: () => T + offset }) }));
      },
    });
    await sim.start();
    const v = sim.engine('v');
    const evil = sim.network.transport('x');
    await evil.start();
    const c = new GCounter('x');
    c.increment(7);
    const r = new LWWRegister<string>('x', { clock: new HLC({ now: () => T + 120_000 }) }); // 2 min ahead, max drift 1 min
    r.set('hello');
    const payload = encodeDelta({ writesLo: 1, writesHi: 1, deps: [], objects: [{ name: 'c', typeTag: c.typeTag, bytes: c.encode() }, { name: 'r', typeTag: r.typeTag, bytes: r.encode() }] });
    const msg = encodeEnvelope({ type: MSG.DELTA, flags: 0, origin: 'x', epoch: 1, counter: 1, hops: 0, payload }, undefined);
    evil.send('v', msg);
    await sim.run(100);
    expect(v.stats().errors).toMatchObject({ decode: 0, merge: 1 });
    expect(value(v)).toBe(7); // the counter merged before the register refused
    expect(v.get<LWWRegister<string>>('r')!.get()).toBeUndefined();
    expect(v.versionVector()).not.toContainEqual(['x', 1]);
    // the same message again, once the receiver's clock is within the drift bound: applied, not a duplicate
    offset = 90_000;
    const dups = v.stats().gossip.duplicatesDropped;
    evil.send('v', msg);
    await sim.run(100);
    expect(v.stats().gossip.duplicatesDropped).toBe(dups);
    expect(v.stats().errors.merge).toBe(1);
    expect(value(v)).toBe(7);
    expect(v.get<LWWRegister<string>>('r')!.get()).toBe('hello');
    await sim.stop();
  });

  it('a bad delta counts once as a decode error', async () => {
    const sim = counterSim(['a', 'b']);
    await sim.start();
    const evil = sim.network.transport('evil');
    await evil.start();
    const payload = encodeDelta({ writesLo: 1, writesHi: 1, deps: [], objects: [{ name: 'c', typeTag: new GCounter('x').typeTag, bytes: new Uint8Array([1, 2, 3]) }] });
    evil.send('b', encodeEnvelope({ type: MSG.DELTA, flags: 0, origin: 'evil', epoch: 1, counter: 1, hops: 0, payload }, undefined));
    await sim.run(100);
    expect(sim.engine('b').stats().errors.decode).toBe(1);
    await sim.stop();
  });

  it('survives random garbage and mutated valid messages: every one counted, nothing thrown, state unchanged', async () => {
    const sim = counterSim(['a', 'b']);
    await sim.start();
    const evil = sim.network.transport('evil');
    await evil.start();
    const b = sim.engine('b');
    await b.update<GCounter>('c', (c) => c.increment(2));
    await sim.run(200);
    const before = b.get('c')!.encode();
    const beforeSet = b.get('s')!.encode();
    const r = new Random(SEED);
    const g = new GCounter('evil');
    g.increment(5);
    const valid = encodeEnvelope(
      {
        type: MSG.DELTA,
        flags: 0,
        origin: 'evil',
        epoch: 9,
        counter: 1,
        hops: 0,
        payload: encodeDelta({ writesLo: 1, writesHi: 1, deps: [], objects: [{ name: 's', typeTag: g.typeTag, bytes: g.encode() }] }),
      },
      undefined,
    );
    let sent = 0;
    for (let i = 0; i < 2000; i++) {
      let m: Uint8Array;
      if (i % 2 === 0) m = Uint8Array.from({ length: r.int(64) }, () => r.int(256));
      else {
        m = valid.slice(0, 1 + r.int(valid.length));
        for (let k = 0; k < 1 + r.int(3); k++) m[r.int(m.length)] = r.int(256);
      }
      evil.send('b', m);
      sent++;
    }
    await sim.run(500);
    const s = b.stats();
    // the valid-shaped ones carried a GCounter under an ORSet name: rejected as a type mismatch (decode error)
    expect(s.errors.decode + s.errors.auth + s.errors.merge + s.errors.unknownObject + s.gossip.duplicatesDropped).toBeGreaterThan(sent * 0.9);
    expect(b.get('c')!.encode()).toEqual(before);
    expect(b.get('s')!.encode()).toEqual(beforeSet);
    // still works
    await sim.engine('a').update<GCounter>('c', (c) => c.increment(1));
    await sim.run(500);
    expect(value(b)).toBe(3);
    await sim.stop();
  });

  it('drops oversized messages before decoding them', async () => {
    const sim = counterSim(['a', 'b'], { engine: { maxMessageBytes: 256, gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 2000 } } });
    await sim.start();
    const evil = sim.network.transport('evil');
    await evil.start();
    evil.send('b', new Uint8Array(1000));
    await sim.run(100);
    expect(sim.engine('b').stats().errors.oversize).toBe(1);
    await sim.stop();
  });
});

describe('SyncEngine: membership and liveness', () => {
  it('marks a crashed peer dead, skips it, and revives it when it answers again', async () => {
    const sim = counterSim(['a', 'b', 'c'], { engine: { gossip: { intervalMs: 200 }, antiEntropy: { intervalMs: 1000 }, liveness: { probeIntervalMs: 200 } } });
    await sim.start();
    const events: string[] = [];
    sim.engine('a').on('peer-down', (id) => events.push(`down:${id}`));
    sim.engine('a').on('peer-up', (id) => events.push(`up:${id}`));
    await sim.run(2000);
    sim.crash('c');
    const dead = await sim.runUntil(() => sim.engine('a').peerState('c') === 'dead', 30_000);
    expect(dead).toBe(true);
    expect(events).toContain('down:c');
    await sim.restart('c');
    const back = await sim.runUntil(() => sim.engine('a').peerState('c') === 'alive', 30_000);
    expect(back).toBe(true);
    expect(events.filter((e) => e === 'up:c').length).toBeGreaterThanOrEqual(2);
    await sim.stop();
  });

  it('a removed peer never comes back: its messages are dropped and counted', async () => {
    const sim = counterSim(['a', 'b', 'c']);
    await sim.start();
    sim.engine('a').removePeer('c');
    // only c's own messages can reach a (b, which would relay c's state, is cut off)
    sim.partition(['a', 'c'], ['b']);
    await sim.engine('c').update<GCounter>('c', (c) => c.increment(4));
    await sim.run(10_000);
    expect(sim.engine('a').peerIds()).toEqual(['b']);
    expect(sim.engine('a').stats().errors.fromRemoved).toBeGreaterThan(0);
    expect(value(sim.engine('a'))).toBe(0);
    expect(sim.engine('a').stats().peers.map((p) => p.id)).toEqual(['b']);
    // a's own write never goes to c
    await sim.engine('a').update<GCounter>('c', (c) => c.increment(1));
    await sim.run(10_000);
    expect(value(sim.engine('c'))).toBe(4);
    await sim.stop();
  });

  it('Simulation peers: each node gets its list (the others the default), again after a restart; a list naming no node, the node itself or a node twice is a RangeError', async () => {
    const sim = counterSim(['a', 'b', 'c'], { peers: { a: ['b'], c: ['b', 'a'] } });
    expect(sim.engine('a').peerIds()).toEqual(['b']);
    expect(sim.engine('b').peerIds().sort()).toEqual(['a', 'c']);
    expect(sim.engine('c').peerIds().sort()).toEqual(['a', 'b']);
    await sim.start();
    sim.engine('a').addPeer('c', 'memory://c');
    sim.crash('a');
    await sim.restart('a');
    expect(sim.engine('a').peerIds()).toEqual(['b']); // the configured list, not the one before the crash
    await sim.stop();
    // a node named like an Object.prototype member, without a list of its own, gets the default
    expect(counterSim(['constructor', 'b'], { peers: { b: ['constructor'] } }).engine('constructor').peerIds()).toEqual(['b']);
    for (const peers of [{ x: ['a'] }, { a: ['x'] }, { a: ['a'] }, { a: ['b', 'b'] }, { a: 'b' as unknown as string[] }]) {
      expect(() => counterSim(['a', 'b'], { peers }), JSON.stringify(peers)).toThrow(RangeError);
    }
  });
});

describe('SyncEngine: durability and restart', () => {
  it('a local write resolves only once durable, and a restarted engine loads it', async () => {
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({ seed: SEED, scheduler });
    const storage = new MemoryStorage();
    const mk = () => {
      const e = new SyncEngine({ replicaId: 'a', transport: network.transport('a'), scheduler, storage, random: new Random(SEED), snapshotEvery: 4 });
      e.register('c', new GCounter('a'));
      e.register('m', new ORMap<string>('a'));
      return e;
    };
    const e1 = mk();
    await e1.start();
    for (let i = 0; i < 10; i++) {
      const writesBefore = storage.writes;
      await e1.update<GCounter>('c', (c) => c.increment(i + 1));
      expect(storage.writes).toBeGreaterThan(writesBefore);
    }
    await e1.update<ORMap<string>>('m', (m) => m.setLWW('vm-1', 'running'));
    // crash: no stop(), the engine is simply dropped
    network.crash('a');
    network.restart('a');
    const e2 = mk();
    await e2.start();
    expect(e2.get<GCounter>('c')!.value()).toBe(55);
    expect(e2.get<ORMap<string>>('m')!.get('vm-1')).toBe('running');
    // a new write continues the sequence (no reuse of counters or write ids); after the crash it waits for a
    // peer until the recovery's deadline (this engine has none)
    const w = e2.update<GCounter>('c', (c) => c.increment(1));
    await scheduler.run(60_000);
    await w;
    expect(e2.get<GCounter>('c')!.value()).toBe(56);
    expect(e2.versionVector()).toEqual([['a', 12]]);
    await e2.stop();
  });

  it('unreadable stored records are moved aside and counted; the node starts and its peer fills in', async () => {
    const sim = new Simulation({
      seed: SEED,
      nodes: ['a', 'b'],
      latencyMs: [5, 5],
      engine: { gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 1000 }, snapshotEvery: 4 },
      setup: (e, ctx) => {
        e.register('m', new ORMap<string>(ctx.id, { clock: ctx.clock }));
        e.register('c', new GCounter(ctx.id));
      },
    });
    await sim.start();
    for (let i = 0; i < 10; i++) await sim.engine('a').update<ORMap<string>>('m', (m) => m.setLWW(`k${i}`, `v${i}`));
    await sim.engine('a').update<GCounter>('c', (c) => c.increment(5));
    await sim.run(2000);
    expect(sim.engine('b').get<ORMap<string>>('m')!.size).toBe(10);
    sim.crash('a');
    // damage a's storage: garbage snapshot, a truncated log entry, another type's bytes, a garbled m/seq
    const st = sim.node('a').storage!;
    st.reopen(); // the crash closed it; the restart reopens it again
    const keys: string[] = [];
    for await (const [k] of st.entries('')) keys.push(k);
    const snap = keys.find((k) => k === 's/m')!;
    const log = keys.find((k) => k.startsWith('d/m/'))!;
    expect(snap).toBeDefined();
    expect(log).toBeDefined();
    const counterBytes = (await st.get('s/c')) ?? (await st.get(keys.find((k) => k.startsWith('d/c/'))!))!;
    await st.put('s/m', Uint8Array.of(1, 2, 3));
    await st.put(log, (await st.get(log))!.subarray(0, 5));
    await st.put('d/c/999999999999999', counterBytes.subarray(0, 2)); // truncated, and a sequence number from the future
    await st.put('s/c', new ORMap<string>('x').encode()); // another type's bytes
    await st.put('m/seq', Uint8Array.of(0xff));
    await sim.restart('a');
    const a = sim.engine('a');
    expect(a.stats().errors.storage).toBe(5);
    const moved: string[] = [];
    for await (const [k] of st.entries('q/')) moved.push(k);
    expect(moved.sort()).toEqual(['q/d/c/999999999999999', `q/${log}`, 'q/m/seq', 'q/s/c', 'q/s/m'].sort());
    expect(await sim.runUntil(() => a.get<ORMap<string>>('m')!.size === 10 && a.get<GCounter>('c')!.value() === 5, 10_000)).toBe(true);
    // its write sequence continues past every logged one: a new write is not mistaken for an old one
    await a.update<ORMap<string>>('m', (m) => m.setLWW('after', 'x'));
    expect(await sim.runUntil(() => sim.engine('b').get<ORMap<string>>('m')!.get('after') === 'x', 5_000)).toBe(true);
    await sim.stop();
  });

  describe('a restart after a run that did not stop cleanly recovers from a peer before local writes', () => {
    const setup = () => {
      const scheduler = new VirtualScheduler();
      const network = new MemoryNetwork({ seed: SEED, scheduler, latencyMs: [5, 5] });
      const mk = (id: string, storage: MemoryStorage, peer = true) => {
        const e = new SyncEngine({ replicaId: id, transport: network.transport(id), scheduler, storage, antiEntropy: { intervalMs: 1000 }, gossip: { intervalMs: 500 } });
        e.register('m', new ORMap<string>(id));
        e.register('n', new GCounter(id));
        if (peer) e.addPeer(id === 'a' ? 'c' : 'a', '');
        return e;
      };
      return { scheduler, network, mk };
    };
    const copyOf = async (st: MemoryStorage): Promise<MemoryStorage> => {
      const out = new MemoryStorage();
      for await (const [k, v] of st.entries()) await out.put(k, v);
      return out;
    };

    it('a crash that lost writes a peer holds: the new writes take fresh dots, nothing acknowledged is lost', async () => {
      // c's disk is rolled back behind writes its peer holds (what a crash inside the one-batch window
      // leaves, or a backup copied while c ran): c's next dots were issued before, for other values
      const { scheduler, network, mk } = setup();
      const sc = new MemoryStorage();
      const a = mk('a', new MemoryStorage());
      const c = mk('c', sc);
      await a.start();
      await c.start();
      await c.update<ORMap<string>>('m', (m) => m.setLWW('k1', 'v1'));
      const rolledBack = await copyOf(sc); // taken while c runs: the run is open in it
      await c.update<ORMap<string>>('m', (m) => m.setLWW('x', 'acknowledged before the crash'));
      await c.update<GCounter>('n', (n) => n.increment(7));
      await scheduler.run(3000);
      expect(a.get<ORMap<string>>('m')!.get('x')).toBe('acknowledged before the crash');
      network.crash('c');
      network.restart('c');
      const c2 = mk('c', rolledBack);
      await c2.start();
      expect(c2.recovery()).toBeDefined();
      const writes = Promise.all([c2.update<ORMap<string>>('m', (m) => m.setLWW('y', 'after the restart')), c2.update<GCounter>('n', (n) => n.increment(100))]);
      await scheduler.run(10_000);
      await writes;
      for (const e of [a, c2]) {
        expect(e.get<ORMap<string>>('m')!.get('x')).toBe('acknowledged before the crash');
        expect(e.get<ORMap<string>>('m')!.get('y')).toBe('after the restart');
        expect(e.get<GCounter>('n')!.value()).toBe(107);
      }
      expect(a.hash('m')).toBe(c2.hash('m'));
      await a.stop();
      await c2.stop();
    });

    it('after a clean stop a restart writes at once, even with its peer down', async () => {
      const { scheduler, network, mk } = setup();
      const sc = new MemoryStorage();
      const c = mk('c', sc);
      await c.start();
      await c.update<ORMap<string>>('m', (m) => m.setLWW('k1', 'v1'));
      await c.stop();
      network.restart('c');
      const c2 = mk('c', sc);
      await c2.start();
      expect(c2.recovery()).toBeUndefined();
      let done = false;
      void c2.update<ORMap<string>>('m', (m) => m.setLWW('k2', 'v2')).then(() => (done = true));
      await scheduler.run(0);
      expect(done).toBe(true);
      // and after a crash, the same restart waits for its (down) peer until the recovery gives up
      network.crash('c');
      network.restart('c');
      const c3 = mk('c', sc);
      await c3.start();
      let done3 = false;
      void c3.update<ORMap<string>>('m', (m) => m.setLWW('k3', 'v3')).then(() => (done3 = true));
      await scheduler.run(100);
      expect(done3).toBe(false);
      expect(await scheduler.runUntil(() => done3, 60_000)).toBe(true);
      expect(c3.get<ORMap<string>>('m')!.get('k2')).toBe('v2');
      await c3.stop();
    });

    it('after a crash, a replica with no peer yet waits for one; a peer added later still recovers its dots, and with none the writes go on after the deadline', async () => {
      // peers are not stored: none yet does not mean none before (the CLI adds some later over /admin/peers)
      const { scheduler, network, mk } = setup();
      const sc = new MemoryStorage();
      const a = mk('a', new MemoryStorage());
      const c = mk('c', sc);
      await a.start();
      await c.start();
      await c.update<ORMap<string>>('m', (m) => m.setLWW('k1', 'v1'));
      const rolledBack = await copyOf(sc);
      await c.update<ORMap<string>>('m', (m) => m.setLWW('x', 'acknowledged before the crash'));
      await scheduler.run(3000);
      network.crash('c');
      network.restart('c');
      const c2 = mk('c', rolledBack, false);
      await c2.start();
      let done = false;
      void c2.update<ORMap<string>>('m', (m) => m.setLWW('y', 'after the restart')).then(() => (done = true));
      await scheduler.run(500);
      expect(done).toBe(false);
      c2.addPeer('a', '');
      expect(await scheduler.runUntil(() => done, 30_000)).toBe(true);
      await scheduler.run(10_000);
      for (const e of [a, c2]) {
        expect(e.get<ORMap<string>>('m')!.get('x')).toBe('acknowledged before the crash');
        expect(e.get<ORMap<string>>('m')!.get('y')).toBe('after the restart');
      }
      await a.stop();
      // no peer at all: the wait ends at the deadline
      network.crash('c');
      network.restart('c');
      const c3 = mk('c', sc, false);
      await c3.start();
      let done3 = false;
      void c3.update<ORMap<string>>('m', (m) => m.setLWW('z', 'alone')).then(() => (done3 = true));
      expect(await scheduler.runUntil(() => done3, 60_000)).toBe(true);
      await c3.stop();
    });

    it('a stop before the recovery ended leaves the run open: the next start recovers still', async () => {
      const { scheduler, network, mk } = setup();
      const sc = new MemoryStorage();
      const c = mk('c', sc);
      await c.start();
      await c.update<ORMap<string>>('m', (m) => m.setLWW('k1', 'v1'));
      network.crash('c');
      network.restart('c');
      const c2 = mk('c', sc); // its peer a is down: the recovery waits
      await c2.start();
      const r2 = c2.recovery(); // rejects once the engine stops
      expect(r2).toBeDefined();
      void r2!.catch(() => undefined);
      await scheduler.run(100);
      await c2.stop();
      network.restart('c');
      const c3 = mk('c', sc);
      await c3.start();
      const r3 = c3.recovery(); // rejects once the engine stops
      expect(r3).toBeDefined();
      void r3!.catch(() => undefined);
      await c3.stop();
    });

    it('a replica loads its own stored map after its clock stepped back past the drift bound', async () => {
      let now = 1_000_000_000;
      const scheduler = new VirtualScheduler();
      const network = new MemoryNetwork({ seed: SEED, scheduler });
      const st = new MemoryStorage();
      const mk = () => {
        const e = new SyncEngine({ replicaId: 'c', transport: network.transport('c'), scheduler, storage: st });
        e.register('m', new ORMap<string>('c', { clock: new HLC({ now: () => now }) }));
        return e;
      };
      const c = mk();
      await c.start();
      await c.update<ORMap<string>>('m', (m) => m.setLWW('k', 'v'));
      await c.stop();
      now -= 120_000;
      network.restart('c');
      const c2 = mk();
      await c2.start();
      expect(c2.stats().errors.storage).toBe(0);
      expect(c2.get<ORMap<string>>('m')!.get('k')).toBe('v');
      expect(c2.recovery()).toBeUndefined();
      await c2.update<ORMap<string>>('m', (m) => m.setLWW('k', 'newer'));
      expect(c2.get<ORMap<string>>('m')!.get('k')).toBe('newer'); // the clock moved past its own timestamps
      await c2.stop();
    });
  });

  it('local writes not yet durable never leave by anti-entropy, so a crash cannot make a later acknowledged write lost', async () => {
    // c's disk stalls with a write x applied in memory; anti-entropy rounds run meanwhile; c crashes, restarts
    // on its storage and writes y, which gets the dot x had: had x reached a, a would take y for x, drop it
    class StallStorage extends MemoryStorage {
      stalled = false;
      override async batch(ops: Parameters<MemoryStorage['batch']>[0]): Promise<void> {
        if (this.stalled) return new Promise<void>(() => {});
        return super.batch(ops);
      }
    }
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({ seed: SEED, scheduler });
    const sc = new StallStorage();
    const mk = (id: string, storage: MemoryStorage) => {
      const e = new SyncEngine({ replicaId: id, transport: network.transport(id), scheduler, storage, antiEntropy: { intervalMs: 1000 }, gossip: { intervalMs: 500 } });
      e.register('m', new ORMap<string>(id));
      e.register('n', new GCounter(id));
      e.addPeer(id === 'a' ? 'c' : 'a', '');
      return e;
    };
    const a = mk('a', new MemoryStorage());
    let c = mk('c', sc);
    await a.start();
    await c.start();
    await c.update<ORMap<string>>('m', (m) => m.setLWW('k1', 'v1'));
    await c.update<GCounter>('n', (n) => n.increment(1));
    await scheduler.run(3000);
    expect(a.get<ORMap<string>>('m')!.get('k1')).toBe('v1');
    sc.stalled = true;
    let acked = false;
    void c.update<ORMap<string>>('m', (m) => m.setLWW('x', 'not durable')).then(() => (acked = true));
    void c.update<GCounter>('n', (n) => n.increment(10));
    await scheduler.run(5000); // anti-entropy rounds both ways while the writes are not durable
    expect(acked).toBe(false);
    expect(a.get<ORMap<string>>('m')!.get('x')).toBeUndefined();
    expect(a.get<GCounter>('n')!.value()).toBe(1);
    expect(c.stats().antiEntropy.heldRequests).toBeGreaterThan(0);
    network.crash('c');
    network.restart('c');
    sc.stalled = false;
    c = mk('c', sc);
    await c.start();
    // the crash left the run open: the writes wait for a session with a (see the restart recovery tests)
    const writes = Promise.all([c.update<ORMap<string>>('m', (m) => m.setLWW('y', 'acknowledged')), c.update<GCounter>('n', (n) => n.increment(100))]);
    await scheduler.run(10_000);
    await writes;
    for (const e of [a, c]) {
      expect(e.get<ORMap<string>>('m')!.get('y')).toBe('acknowledged');
      expect(e.get<GCounter>('n')!.value()).toBe(101);
    }
    await a.stop();
    await c.stop();
  });

  it('a write whose storage batch failed leaves only once a snapshot of its object is durable (a failed snapshot is retried)', async () => {
    class FlakyStorage extends MemoryStorage {
      failNext = 0;
      override async batch(ops: Parameters<MemoryStorage['batch']>[0]): Promise<void> {
        if (this.failNext > 0) {
          this.failNext--;
          throw new Error('transient I/O error');
        }
        return super.batch(ops);
      }
    }
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({ seed: SEED, scheduler });
    const sc = new FlakyStorage();
    const mk = (id: string, storage: MemoryStorage) => {
      const e = new SyncEngine({ replicaId: id, transport: network.transport(id), scheduler, storage, antiEntropy: { intervalMs: 1000 }, gossip: { intervalMs: 500 }, checkpointMs: 8000 });
      e.register('m', new ORMap<string>(id));
      e.addPeer(id === 'a' ? 'c' : 'a', '');
      return e;
    };
    const a = mk('a', new MemoryStorage());
    const c = mk('c', sc);
    await a.start();
    await c.start();
    sc.failNext = 2; // the write's batch, then the first checkpoint's snapshot
    const err = await c.update<ORMap<string>>('m', (m) => m.setLWW('x', 'v')).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    // anti-entropy runs all along; x may reach a only once c's checkpoint put a snapshot of m on disk
    let arrived = false;
    for (let t = 0; t < 40_000 && !arrived; t += 100) {
      const durable = (await sc.get('s/m')) !== undefined;
      await scheduler.run(100);
      arrived = a.get<ORMap<string>>('m')!.get('x') === 'v';
      if (arrived) expect(durable || (await sc.get('s/m')) !== undefined).toBe(true);
    }
    expect(arrived).toBe(true);
    expect(c.stats().antiEntropy.heldRequests).toBeGreaterThan(0);
    await a.stop();
    await c.stop();
  });

  it('after setting an unreadable snapshot aside, a new write waits for a peer session and reuses no lost dot', async () => {
    const sim = new Simulation({
      seed: SEED,
      nodes: ['a', 'b', 'c'],
      latencyMs: [5, 5],
      engine: { gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 1000 }, snapshotEvery: 1 },
      setup: (e, ctx) => e.register('s', new ORSet<string>(ctx.id)),
    });
    await sim.start();
    for (const x of ['x1', 'x2', 'x3']) await sim.engine('a').update<ORSet<string>>('s', (s) => s.add(x));
    await sim.run(3000);
    expect(sim.engine('c').get<ORSet<string>>('s')!.values()).toEqual(['x1', 'x2', 'x3']);
    sim.crash('a');
    const st = sim.node('a').storage!;
    st.reopen();
    await st.put('s/s', Uint8Array.of(9, 9, 9)); // its log was compacted into this snapshot: a's own dots are gone
    await sim.restart('a');
    const a = sim.engine('a');
    expect(a.stats().errors.storage).toBe(1);
    let done = false;
    void a.update<ORSet<string>>('s', (s) => s.add('NEW'), { write: 'all' }).then(() => (done = true));
    expect(await sim.runUntil(() => done, 30_000)).toBe(true);
    await sim.run(5000);
    for (const id of ['a', 'b', 'c']) expect(sim.engine(id).get<ORSet<string>>('s')!.values().sort(), id).toEqual(['NEW', 'x1', 'x2', 'x3']);
    await sim.stop();
  });

  for (const mode of ['peers added after start', 'write not awaiting start'] as const) {
    it(`after setting a record aside, a new write still reuses no lost dot (${mode})`, async () => {
      const scheduler = new VirtualScheduler(1_000_000);
      const net = new MemoryNetwork({ seed: SEED, scheduler, latencyMs: [5, 5] });
      const ids = ['a', 'b', 'c'];
      const stores = new Map(ids.map((id) => [id, new MemoryStorage()]));
      const mk = (id: string, peersFirst: boolean) => {
        const e = new SyncEngine({ replicaId: id, transport: net.transport(id), scheduler, storage: stores.get(id)!, gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 1000 }, snapshotEvery: 1 });
        e.register('s', new ORSet<string>(id));
        if (peersFirst) for (const o of ids) if (o !== id) e.addPeer(o, '');
        return e;
      };
      const eng = new Map(ids.map((id) => [id, mk(id, true)]));
      for (const e of eng.values()) await e.start();
      for (const x of ['x1', 'x2', 'x3']) await eng.get('a')!.update<ORSet<string>>('s', (s) => s.add(x));
      await scheduler.run(3000);
      net.crash('a');
      await stores.get('a')!.put('s/s', Uint8Array.of(9, 9, 9));
      net.restart('a');
      const a = mk('a', mode !== 'peers added after start');
      eng.set('a', a);
      let done = false;
      if (mode === 'write not awaiting start') {
        const started = a.start();
        void a.update<ORSet<string>>('s', (s) => s.add('NEW'), { write: 'all' }).then(() => (done = true));
        await started;
      } else {
        await a.start();
        expect(a.recovery()).toBeDefined(); // no peer yet: the writes wait for the first one
        for (const o of ids) if (o !== 'a') a.addPeer(o, '');
        void a.update<ORSet<string>>('s', (s) => s.add('NEW'), { write: 'all' }).then(() => (done = true));
      }
      expect(await scheduler.runUntil(() => done, 30_000)).toBe(true);
      await scheduler.run(5000);
      for (const id of ids) expect(eng.get(id)!.get<ORSet<string>>('s')!.values().sort(), id).toEqual(['NEW', 'x1', 'x2', 'x3']);
      for (const e of eng.values()) await e.stop();
    });
  }

  it('a recovery does not end on an answer that withheld the RGA (the peer does not count this replica as a member): it waits for a member\'s answer, so no lost dot is reused', async () => {
    // b never adds a (a is not a member for b: b answers a's digests without the RGA)
    const c = recoveryCluster(['a', 'b', 'c'], { peersOf: (id) => ['a', 'b', 'c'].filter((o) => o !== id && !(id === 'b' && o === 'a')) });
    await c.start();
    for (const x of ['x1', 'x2', 'x3']) await c.eng.get('a')!.update<RGA<string>>('doc', insertAtEnd(x));
    await c.scheduler.run(3000);
    for (const id of ['b', 'c']) expect(c.eng.get(id)!.get<RGA<string>>('doc')!.toArray()).toEqual(['x1', 'x2', 'x3']);
    await c.crash('a', 'doc'); // a's own inserts are lost here
    c.net.partition(['a', 'b'], ['c']); // the one member that would answer in full is out of reach for now
    const a = await c.restart('a');
    let done = false;
    void a.update<RGA<string>>('doc', insertAtEnd('NEW')).then(() => (done = true));
    await c.scheduler.run(3000); // sessions with b complete, but withheld the RGA: the write still waits
    expect(a.stats().antiEntropy.withheldAnswers).toBeGreaterThan(0);
    expect(a.stats().antiEntropy.successfulSyncs).toBeGreaterThan(0);
    expect(done).toBe(false);
    c.net.heal();
    expect(await c.scheduler.runUntil(() => done, 30_000)).toBe(true);
    await c.scheduler.run(5000);
    for (const id of ['a', 'c']) expect(c.eng.get(id)!.get<RGA<string>>('doc')!.toArray(), id).toEqual(['x1', 'x2', 'x3', 'NEW']);
    await c.stop();
  });

  it('a replica no peer lists gets no RGA state: anti-entropy answers withhold it and its majority read of the RGA times out (a map read succeeds)', async () => {
    const c = recoveryCluster(['a', 'b'], { peersOf: (id) => (id === 'a' ? ['b'] : []) });
    await c.start();
    await c.eng.get('b')!.update<RGA<string>>('doc', insertAtEnd('x'));
    await c.eng.get('b')!.update<ORMap<string>>('big', (m) => m.setLWW('k', 'v'));
    await c.scheduler.run(5000);
    const a = c.eng.get('a')!;
    expect(a.stats().antiEntropy.withheldAnswers).toBeGreaterThan(0);
    expect(a.get<RGA<string>>('doc')!.toArray()).toEqual([]);
    expect(a.get<ORMap<string>>('big')!.get('k')).toBe('v');
    let doc = 'pending';
    void a.read('doc', { read: 'majority', timeoutMs: 1000 }).then(() => (doc = 'ok'), (e: Error) => (doc = e.name));
    let big = 'pending';
    void a.read('big', { read: 'majority', timeoutMs: 1000 }).then(() => (big = 'ok'), (e: Error) => (big = e.name));
    await c.scheduler.run(2000);
    expect([doc, big]).toEqual(['TimeoutError', 'ok']);
    await c.stop();
  });

  it('a recovery does not end on the first part of an answer sent in parts: it waits for all of them (the RGA came in a later part)', async () => {
    const c = recoveryCluster(['a', 'b'], { maxMessageBytes: 8192 });
    await c.start();
    for (const x of ['x1', 'x2', 'x3']) await c.eng.get('a')!.update<RGA<string>>('doc', insertAtEnd(x));
    await c.scheduler.run(3000);
    expect(c.eng.get('b')!.get<RGA<string>>('doc')!.toArray()).toEqual(['x1', 'x2', 'x3']);
    await c.crash('a', 'doc'); // a's own inserts are lost here
    // while a is down, b writes ~3.6 KB into big: its answer to a's digest goes in parts (big | doc)
    await c.eng.get('b')!.update<ORMap<string>>('big', (m) => {
      for (let i = 0; i < 40; i++) m.setLWW(`k${i}`, `${i}-`.padEnd(90, 'z'));
    });
    const splitBefore = c.eng.get('b')!.stats().antiEntropy.splitAnswers;
    const a = await c.restart('a');
    let done = false;
    void a.update<RGA<string>>('doc', insertAtEnd('NEW')).then(() => (done = true));
    expect(await c.scheduler.runUntil(() => done, 30_000)).toBe(true);
    expect(c.eng.get('b')!.stats().antiEntropy.splitAnswers).toBeGreaterThan(splitBefore);
    await c.scheduler.run(8000);
    for (const id of ['a', 'b']) expect(c.eng.get(id)!.get<RGA<string>>('doc')!.toArray(), id).toEqual(['x1', 'x2', 'x3', 'NEW']);
    await c.stop();
  });

  it('a recovery whose lost map comes back through bucket trees (too big for one answer), in an answer sent in parts, reuses no lost dot', async () => {
    const c = recoveryCluster(['a', 'b'], { maxMessageBytes: 8192 });
    await c.start();
    // a writes ~18 KB in 200 keys: more than one answer can carry
    for (let i = 0; i < 200; i += 20) {
      await c.eng.get('a')!.update<ORMap<string>>('big', (m) => {
        for (let k = i; k < i + 20; k++) m.setLWW(`k${k}`, `${k}-`.padEnd(90, 'z'));
      });
    }
    await c.scheduler.run(5000);
    expect(c.eng.get('b')!.get<ORMap<string>>('big')!.size).toBe(200);
    await c.crash('a', 'big'); // a's own writes to big are lost here
    // while a is down, b writes ~6 KB of text: its answer goes in parts, the map's tree in the first (the
    // session can complete on the text's part while the tree rounds are still out)
    await c.eng.get('b')!.update<RGA<string>>('doc', (d) => {
      for (let i = 0; i < 60; i++) d.insert(d.length, `${i}-`.padEnd(100, 'y'));
    });
    const a = await c.restart('a');
    let done = false;
    void a.update<ORMap<string>>('big', (m) => m.setLWW('new', 'NEW')).then(() => (done = true));
    expect(await c.scheduler.runUntil(() => done, 30_000)).toBe(true);
    await c.scheduler.run(8000);
    for (const id of ['a', 'b']) {
      const m = c.eng.get(id)!.get<ORMap<string>>('big')!;
      expect(m.size, id).toBe(201);
      expect(m.get('new'), id).toBe('NEW');
      expect(m.get('k0'), id).toBe('0-'.padEnd(90, 'z'));
    }
    expect(c.eng.get('a')!.get<ORMap<string>>('big')!.encode()).toEqual(c.eng.get('b')!.get<ORMap<string>>('big')!.encode());
    await c.stop();
  });

  for (const seed of [1, 2, 6]) {
    it(`a recovery on a lossy network, with answers in parts, goes on while peers are heard: it ends on an answer in full and reuses no lost dot (seed ${seed})`, async () => {
      const warns: string[] = [];
      const sim = new Simulation({
        seed,
        nodes: ['a', 'b', 'c'],
        latencyMs: [5, 50],
        loss: 0.25,
        duplicate: 0.2,
        reorder: 0.3,
        engine: { maxMessageBytes: 4096, snapshotEvery: 1, gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 2000, timeoutMs: 1000 }, logger: { warn: (m: string) => warns.push(m) } },
        setup: (e, ctx) => e.register('map', new ORMap<string>(ctx.id, { clock: ctx.clock })),
      });
      const val = (k: string) => `${k}-`.padEnd(100, 'v');
      const want = new Set<string>();
      await sim.start();
      for (let i = 0; i < 600; i += 100) {
        await sim.engine('a').update<ORMap<string>>('map', (m) => {
          for (let k = i; k < i + 100; k++) m.setLWW(`a${k}`, val(`a${k}`)), want.add(`a${k}`);
        });
        await sim.run(50);
      }
      expect(await sim.runUntil(() => sim.converged(), 120_000), `seed ${seed}`).toBe(true);
      sim.crash('a');
      const st = sim.node('a').storage!;
      st.reopen();
      await st.put('s/map', Uint8Array.of(9, 9, 9)); // a's own writes are lost here
      void st.close();
      await sim.engine('b').update<ORMap<string>>('map', (m) => {
        for (let k = 0; k < 300; k++) m.setLWW(`b${k}`, val(`b${k}`)), want.add(`b${k}`);
      });
      await sim.run(2000);
      await sim.restart('a');
      let done = false;
      void sim.engine('a').update<ORMap<string>>('map', (m) => m.setLWW('new', 'NEW')).then(() => (done = true));
      want.add('new');
      expect(await sim.runUntil(() => done, 60_000), `seed ${seed}`).toBe(true);
      expect(warns.filter((w) => w.includes('no peer answered')), `seed ${seed}`).toEqual([]);
      expect(await sim.runUntil(() => sim.converged(), 120_000), `seed ${seed}`).toBe(true);
      for (const id of ['a', 'b', 'c']) expect(sim.engine(id).get<ORMap<string>>('map')!.keys().sort(), `seed ${seed}, ${id}`).toEqual([...want].sort());
      await sim.stop();
    });
  }

  it('an object too big for any message stays out of an answer in parts (which says it withheld something): the other parts arrive and the session completes', async () => {
    const c = recoveryCluster(['a', 'b'], { maxMessageBytes: 8192 });
    await c.start();
    c.net.partition(['a'], ['b']);
    const b = c.eng.get('b')!;
    await b.update<RGA<string>>('doc', (d) => {
      for (let i = 0; i < 100; i++) d.insert(d.length, `${i}-`.padEnd(100, 'y')); // ~10 KB: no message holds it
    });
    await b.update<ORMap<string>>('big', (m) => {
      for (let i = 0; i < 40; i++) m.setLWW(`k${i}`, `${i}-`.padEnd(90, 'z'));
    });
    await c.scheduler.run(3000);
    const a = c.eng.get('a')!;
    const before = { ok: a.stats().antiEntropy.successfulSyncs, withheld: a.stats().antiEntropy.withheldAnswers };
    c.net.heal();
    await c.scheduler.run(6000);
    expect(a.get<ORMap<string>>('big')!.size).toBe(40);
    expect(a.stats().antiEntropy.successfulSyncs).toBeGreaterThan(before.ok);
    expect(a.stats().antiEntropy.withheldAnswers).toBeGreaterThan(before.withheld);
    expect(b.stats().errors.oversize).toBeGreaterThan(0);
    await c.stop();
  });

  it('a peer that keeps sending parts of an answer that never completes cannot hold a session open past its limit', async () => {
    const scheduler = new VirtualScheduler(1_000_000);
    const net = new MemoryNetwork({ seed: SEED, scheduler, latencyMs: [5, 5] });
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), scheduler, antiEntropy: { intervalMs: 200_000, timeoutMs: 1000 } });
    a.register('c', new GCounter('a'));
    a.addPeer('evil', '');
    const evil = net.transport('evil');
    let session = -1;
    evil.onMessage((_from, bytes) => {
      const env = decodeEnvelope(bytes, undefined);
      if (env.type === MSG.SYNC_DIGEST) session = decodeDigest(env.payload).session;
    });
    await evil.start();
    await a.start();
    expect(await scheduler.runUntil(() => session >= 0, 400_000)).toBe(true); // a's first session
    expect(a.stats().antiEntropy.totalSyncs).toBe(1);
    // part i of 65,536, every 500 ms: each refreshes the session's timeout, none completes the answer
    let i = 0;
    const feed = scheduler.setInterval(() => {
      const payload = encodeSync({ session, seen: [], items: [], part: { group: 1, index: i++, total: 65_536 } });
      evil.send('a', encodeEnvelope({ type: MSG.SYNC, flags: 0, origin: 'evil', epoch: 1, counter: i, hops: 0, payload }, undefined));
    }, 500);
    await scheduler.run(50_000);
    expect(a.stats().antiEntropy.failedSyncs).toBe(0); // still open: the peer keeps answering
    await scheduler.run(20_000); // past 60 session timeouts from its start (the next tick is far off)
    scheduler.clearInterval(feed);
    expect(a.stats().antiEntropy.failedSyncs).toBe(1);
    expect(a.stats().antiEntropy.totalSyncs).toBe(2); // the failed one, then a retry at once
    expect(a.stats().antiEntropy.successfulSyncs).toBe(0);
    await a.stop();
  });

  it('stop() during the recovery rejects the waiting write and writes nothing after; a write before start() is refused', async () => {
    const scheduler = new VirtualScheduler(1_000_000);
    const net = new MemoryNetwork({ seed: SEED, scheduler });
    const storage = new MemoryStorage();
    await storage.put('s/s', Uint8Array.of(9, 9, 9));
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), scheduler, storage });
    a.register('s', new ORSet<string>('a'));
    await expect(a.update<ORSet<string>>('s', (s) => s.add('early'))).rejects.toBeInstanceOf(NotInitializedError);
    a.addPeer('b', ''); // never answers
    await a.start();
    let outcome = 'pending';
    void a.update<ORSet<string>>('s', (s) => s.add('late')).then(() => (outcome = 'resolved'), (e: Error) => (outcome = e.name));
    await scheduler.run(10);
    expect(outcome).toBe('pending');
    await a.stop();
    await scheduler.run(60_000);
    expect(outcome).toBe('NotInitializedError');
    const keys: string[] = [];
    for await (const [k] of storage.entries('')) keys.push(k);
    expect(keys.filter((k) => k.startsWith('d/'))).toEqual([]);
    expect(a.get<ORSet<string>>('s')!.has('late')).toBe(false);
  });

  it('a steady stream of local writes delays peers\' requests by about a batch, never starves them', async () => {
    const net = new MemoryNetwork({ seed: SEED, latencyMs: 5 });
    const sch = net.scheduler;
    class Slow extends MemoryStorage {
      override async batch(ops: Parameters<MemoryStorage['batch']>[0]): Promise<void> {
        await new Promise<void>((r) => sch.setTimeout(r, 15)); // every commit takes 15 ms
        return super.batch(ops);
      }
    }
    const mk = (id: string) => {
      const e = new SyncEngine({ replicaId: id, transport: net.transport(id), storage: new Slow(), antiEntropy: { intervalMs: 1000 } });
      e.register('c', new GCounter(id));
      return e;
    };
    const a = mk('a');
    const b = mk('b');
    a.addPeer('b');
    b.addPeer('a');
    await a.start();
    await b.start();
    await sch.run(100);
    // one write every 10 ms on a: its batches commit back to back, some write is always pending
    const load = sch.setInterval(() => void a.update<GCounter>('c', (c) => c.increment(1)).catch(() => undefined), 10);
    let read = 'pending';
    b.read('c', { read: 'majority', timeoutMs: 3000 }).then(() => (read = 'ok'), (e: Error) => (read = e.name));
    await sch.run(10_000);
    sch.clearInterval(load);
    expect(read).toBe('ok');
    expect(a.stats().antiEntropy.heldRequests).toBeGreaterThan(0);
    expect(b.stats().antiEntropy.successfulSyncs).toBeGreaterThanOrEqual(8);
    expect(b.stats().antiEntropy.failedSyncs).toBeLessThanOrEqual(1);
    expect(a.stats().antiEntropy.successfulSyncs).toBeGreaterThanOrEqual(8);
    // nothing stays held once the load stops (and stop() drops whatever would be)
    for (const e of [a, b]) {
      let stopped = false;
      void e.stop().then(() => (stopped = true));
      expect(await sch.runUntil(() => stopped, 5_000)).toBe(true); // its last snapshot waits on the slow disk
    }
    expect((a as unknown as { held: unknown[] }).held).toEqual([]);
  });

  it('a compaction that fails after a write\'s log is durable does not fail the write, and is retried', async () => {
    class SnapFails extends MemoryStorage {
      snapFailures = 1;
      override async batch(ops: Parameters<MemoryStorage['batch']>[0]): Promise<void> {
        if (this.snapFailures > 0 && ops.some((o) => o.key.startsWith('s/'))) {
          this.snapFailures--;
          throw new Error('disk full');
        }
        return super.batch(ops);
      }
    }
    const net = new MemoryNetwork({ seed: SEED, latencyMs: 5 });
    const st = new SnapFails();
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), storage: st, snapshotEvery: 1, checkpointMs: 1000 });
    const b = new SyncEngine({ replicaId: 'b', transport: net.transport('b') });
    for (const e of [a, b]) e.register('c', new GCounter(e.replicaId));
    a.addPeer('b');
    b.addPeer('a');
    await a.start();
    await b.start();
    let result = 'pending';
    a.update<GCounter>('c', (c) => c.increment(4)).then(() => (result = 'ok'), (e: Error) => (result = e.name));
    await net.scheduler.run(100);
    expect(result).toBe('ok');
    expect(b.get<GCounter>('c')!.value()).toBe(4); // pushed as usual
    await net.scheduler.run(3000);
    expect(await st.get('s/c')).toBeDefined(); // a checkpoint compacted it after all
    await a.stop();
    await b.stop();
  });

  /** Replica a on one MemoryStorage with an ORMap per name; `mk()` again after a crash is its restart. */
  function storedMaps(names: string[]) {
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({ seed: SEED, scheduler });
    const storage = new MemoryStorage();
    const mk = () => {
      const e = new SyncEngine({ replicaId: 'a', transport: network.transport('a'), scheduler, storage, snapshotEvery: 1000 });
      for (const n of names) e.register(n, new ORMap<string>('a'));
      return e;
    };
    return { network, storage, mk };
  }

  it('stored records carry a checksum tied to their object: a flipped bit or another object\'s bytes are set aside; unframed ones still load', async () => {
    const { network, storage, mk } = storedMaps(['vms', 'counters', 'old']);
    const e1 = mk();
    await e1.start();
    for (let i = 0; i < 3; i++) await e1.update<ORMap<string>>('vms', (m) => m.setLWW(`vm-${i}`, 'running'));
    await e1.update<ORMap<string>>('counters', (m) => m.setLWW('c', '1'));
    await e1.stop(); // snapshots every object
    // another object's snapshot (same type, decodes fine) under vms' key
    await storage.put('s/vms', (await storage.get('s/counters'))!);
    // one flipped bit in the counters snapshot's encoding
    const snap = (await storage.get('s/counters'))!.slice();
    snap[snap.length - 1] ^= 1;
    await storage.put('s/counters', snap);
    // a record written before records were framed: the bare encoding
    const legacy = new ORMap<string>('a');
    legacy.setLWW('kept', 'yes');
    await storage.put('s/old', legacy.encode());
    network.crash('a');
    network.restart('a');
    const e2 = mk();
    await e2.start();
    expect(e2.stats().errors.storage).toBe(2);
    expect(e2.get<ORMap<string>>('vms')!.size).toBe(0); // not counters' entries
    expect(e2.get<ORMap<string>>('counters')!.size).toBe(0);
    expect(e2.get<ORMap<string>>('old')!.get('kept')).toBe('yes');
    expect(await storage.get('q/s/vms')).toBeDefined();
    expect(await storage.get('q/s/counters')).toBeDefined();
    await e2.stop();
  });

  it('an object named like another\'s path prefix keeps its own log (names vms and vms/archive)', async () => {
    const { network, mk } = storedMaps(['vms', 'vms/archive']);
    const e1 = mk();
    await e1.start();
    await e1.update<ORMap<string>>('vms', (m) => m.setLWW('live', '1'));
    await e1.update<ORMap<string>>('vms/archive', (m) => m.setLWW('old', '2'));
    network.crash('a');
    network.restart('a');
    const e2 = mk();
    await e2.start();
    expect(e2.get<ORMap<string>>('vms')!.keys()).toEqual(['live']);
    expect(e2.get<ORMap<string>>('vms/archive')!.keys()).toEqual(['old']);
    expect(e2.stats().errors.storage).toBe(0);
    await e2.stop();
  });

  it('group commit: concurrent writes share storage batches, all resolve durable, and survive a crash', async () => {
    const scheduler = new VirtualScheduler();
    const network = new MemoryNetwork({ seed: SEED, scheduler });
    // a slow disk: every batch takes a few macrotasks to commit
    class SlowStorage extends MemoryStorage {
      batches = 0;
      override async batch(ops: Parameters<MemoryStorage['batch']>[0]): Promise<void> {
        this.batches++;
        for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
        return super.batch(ops);
      }
    }
    const storage = new SlowStorage();
    const mk = () => {
      const e = new SyncEngine({ replicaId: 'a', transport: network.transport('a'), scheduler, storage, random: new Random(SEED), snapshotEvery: 16 });
      e.register('c', new GCounter('a'));
      e.register('m', new ORMap<number>('a'));
      return e;
    };
    const e1 = mk();
    await e1.start();
    const before = storage.batches;
    const N = 200;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      writes.push(e1.update<GCounter>('c', (c) => c.increment(1)));
      writes.push(e1.update<ORMap<number>>('m', (m) => m.setLWW(`vm-${i}`, i)));
    }
    await Promise.all(writes);
    const used = storage.batches - before;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(N / 4); // 400 writes in far fewer batches (snapshots included)
    expect(e1.internals().storageBatches).toBeLessThan(N / 4);
    network.crash('a');
    network.restart('a');
    const e2 = mk();
    await e2.start();
    expect(e2.get<GCounter>('c')!.value()).toBe(N);
    expect(e2.get<ORMap<number>>('m')!.size).toBe(N);
    expect(e2.versionVector()).toEqual([['a', 2 * N]]);
    await e2.stop();
  });

  it('a restarted node catches up by anti-entropy on what it missed while down', async () => {
    const sim = counterSim(['a', 'b', 'c']);
    await sim.start();
    await sim.engine('c').update<GCounter>('c', (c) => c.increment(1));
    await sim.run(500);
    sim.crash('c');
    for (let i = 0; i < 5; i++) await sim.engine('a').update<GCounter>('c', (c) => c.increment(10));
    await sim.run(5000);
    await sim.restart('c');
    expect(value(sim.engine('c'))).toBe(1); // loaded from its storage
    const ok = await sim.runUntil(() => value(sim.engine('c')) === 51, 30_000);
    expect(ok).toBe(true);
    expect(sim.engine('c').stats().antiEntropy.successfulSyncs).toBeGreaterThan(0);
    await sim.stop();
  });
});

describe('SyncEngine: determinism and bounds', () => {
  async function tracedRun(seed: number): Promise<string[]> {
    const sim = new Simulation({
      seed,
      nodes: ['a', 'b', 'c', 'd'],
      loss: 0.2,
      duplicate: 0.1,
      reorder: 0.2,
      trace: true,
      engine: { gossip: { intervalMs: 300 }, antiEntropy: { intervalMs: 1000 } },
      setup: (e, ctx) => {
        e.register('c', new GCounter(ctx.id));
        e.register('s', new ORSet<string>(ctx.id));
      },
    });
    await sim.start();
    for (let i = 0; i < 40; i++) {
      const n = sim.random.pick(sim.upNodes());
      if (i % 2) void n.engine.update<GCounter>('c', (c) => c.increment(1)).catch(() => undefined);
      else void n.engine.update<ORSet<string>>('s', (s) => s.add(`x${i % 7}`)).catch(() => undefined);
      if (i === 20) sim.crash('d');
      if (i === 30) await sim.restart('d');
      await sim.run(50 + sim.random.int(200));
    }
    await sim.run(10_000);
    await sim.stop();
    return sim.network.trace!;
  }

  /** Plain engines on a seeded MemoryNetwork, no `random` option: the network's seed must seed them too. */
  async function plainRun(seed: number): Promise<{ trace: string[]; stats: string }> {
    const net = new MemoryNetwork({ seed, latencyMs: [5, 50], loss: 0.1, duplicate: 0.05, reorder: 0.1, trace: true });
    const ids = ['a', 'b', 'c', 'd'];
    const engines = ids.map((id) => {
      const e = new SyncEngine({ replicaId: id, transport: net.transport(id), gossip: { intervalMs: 300 }, antiEntropy: { intervalMs: 1000 } });
      e.register('c', new GCounter(id));
      for (const o of ids) if (o !== id) e.addPeer(o, `memory://${o}`);
      return e;
    });
    for (const e of engines) await e.start();
    for (let i = 0; i < 60; i++) {
      void engines[i % 4].update<GCounter>('c', (c) => c.increment(1)).catch(() => undefined);
      await net.scheduler.run(100);
    }
    await net.scheduler.run(10_000);
    const stats = JSON.stringify(engines.map((e) => ({ ...e.stats(), antiEntropy: { ...e.stats().antiEntropy, averageSyncTimeMs: 0 } })));
    for (const e of engines) await e.stop();
    expect(engines.every((e) => e.get<GCounter>('c')!.value() === 60)).toBe(true);
    return { trace: net.trace!, stats };
  }

  it('plain engines on a seeded network (no random option) give the same run for the same seed', async () => {
    const r1 = await plainRun(SEED);
    const r2 = await plainRun(SEED);
    expect(r2.trace).toEqual(r1.trace);
    expect(r2.stats).toEqual(r1.stats);
    expect((await plainRun(SEED + 1)).trace).not.toEqual(r1.trace);
  });

  it('two runs with the same seed give identical event traces', async () => {
    const t1 = await tracedRun(SEED);
    const t2 = await tracedRun(SEED);
    expect(t1.length).toBeGreaterThan(100);
    expect(t2).toEqual(t1);
    expect(await tracedRun(SEED + 1)).not.toEqual(t1);
  });

  it('seen-cache, gossip queue, causal buffer and outbox stay within bounds over a long run', async () => {
    const sim = new Simulation({
      seed: SEED,
      nodes: ['a', 'b', 'c', 'd', 'e'],
      loss: 0.1,
      engine: { gossip: { intervalMs: 200, seenCacheSize: 100, maxPending: 20 }, antiEntropy: { intervalMs: 1000 }, causalBufferSize: 8 },
      setup: (e, ctx) => e.register('c', new GCounter(ctx.id)),
    });
    await sim.start();
    let maxSeen = 0;
    let maxQueue = 0;
    for (let i = 0; i < 3000; i++) {
      const n = sim.random.pick(sim.upNodes());
      void n.engine.update<GCounter>('c', (c) => c.increment(1));
      await sim.run(20);
      if (i % 50 === 0) {
        for (const node of sim.upNodes()) {
          const s = node.engine.internals();
          maxSeen = Math.max(maxSeen, s.seenCache);
          maxQueue = Math.max(maxQueue, s.queue);
          expect(s.seenCache).toBeLessThanOrEqual(100);
          expect(s.queue).toBeLessThanOrEqual(20);
          expect(s.causalPending).toBeLessThanOrEqual(8);
          expect(s.outbox).toBeLessThanOrEqual(5);
          expect(s.writeExtras).toBeLessThanOrEqual(4096);
        }
      }
    }
    expect(maxSeen).toBe(100); // the cache filled up and stayed at its bound
    expect(maxQueue).toBeGreaterThan(0);
    const ok = await sim.runUntil(() => sim.upNodes().every((n) => value(n.engine) === 3000), 60_000);
    expect(ok).toBe(true);
    await sim.stop();
  });
});

describe('SyncEngine: causal delivery of RGA deltas', () => {
  it('holds out-of-order RGA deltas in the bounded causal buffer and applies them in causal order', async () => {
    const { RGA } = await import('../../src/crdt/rga.js');
    const sim = new Simulation({
      seed: SEED,
      nodes: ['a', 'b'],
      latencyMs: [5, 10],
      reorder: 0.7,
      engine: { gossip: { intervalMs: 10_000, rounds: 1 }, antiEntropy: { intervalMs: 60_000 }, flushDelayMs: 0 },
      setup: (e, ctx) => void e.register('doc', new RGA<string>(ctx.id)),
    });
    await sim.start();
    const a = sim.engine('a');
    const b = sim.engine('b');
    let maxPending = 0;
    const applied: number[] = [];
    b.on('change', () => applied.push(b.get<InstanceType<typeof RGA<string>>>('doc')!.length));
    for (let i = 0; i < 30; i++) {
      void a.update<InstanceType<typeof RGA<string>>>('doc', (d) => void d.insert(d.length, `c${i}`));
      await sim.run(1);
      maxPending = Math.max(maxPending, b.stats().causal.pending);
    }
    await sim.runUntil(() => b.get<InstanceType<typeof RGA<string>>>('doc')!.length === 30, 5000);
    expect(maxPending).toBeGreaterThan(0); // some arrived before their predecessors and waited
    expect(b.stats().causal.pending).toBe(0);
    // every delivery extended the visible list by exactly one element: nothing applied before its dependency
    expect(applied).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(b.get<InstanceType<typeof RGA<string>>>('doc')!.toArray()).toEqual(Array.from({ length: 30 }, (_, i) => `c${i}`));
    await sim.stop();
  });
});

describe('SyncEngine: RGA tombstone collection', () => {
  type Doc = InstanceType<typeof import('../../src/crdt/rga.js').RGA<string>>;
  async function rgaSim(nodes: string[]) {
    const { RGA } = await import('../../src/crdt/rga.js');
    const sim = new Simulation({
      seed: SEED,
      nodes,
      latencyMs: [5, 20],
      engine: { gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 1000 }, checkpointMs: 2000 },
      setup: (e, ctx) => void e.register('doc', new RGA<string>(ctx.id)),
    });
    await sim.start();
    const doc = (id: string): Doc => sim.engine(id).get<Doc>('doc')!;
    for (let i = 0; i < 40; i++) await sim.engine('a').update<Doc>('doc', (d) => void d.insert(d.length, `x${i}`));
    await sim.runUntil(() => doc('b').length === 40, 10_000);
    // deleted from the end: a tombstone is collected once no element refers to it (see RGA)
    for (let i = 0; i < 25; i++) await sim.engine('b').update<Doc>('doc', (d) => void d.delete(d.length - 1));
    return { sim, doc };
  }

  it('collects tombstones once every replica has reported them durable, and the replicas stay identical', async () => {
    const { sim, doc } = await rgaSim(['a', 'b', 'c']);
    const ids = ['a', 'b', 'c'];
    // a collection is each replica's own: its raised floor never goes out as a local write
    let localChanges = 0;
    for (const id of ids) sim.engine(id).on('change', (ev) => void (ev.local && localChanges++));
    const ok = await sim.runUntil(() => ids.every((id) => doc(id).tombstones === 0 && doc(id).length === 15) && sim.converged(), 120_000);
    expect(ok).toBe(true);
    for (const id of ids) expect(doc(id).toArray()).toEqual(Array.from({ length: 15 }, (_, i) => `x${i}`));
    // a replica collects on its own or takes the raised floor from a peer's state
    expect(ids.reduce((n, id) => n + sim.engine(id).stats().causal.tombstonesCollected, 0)).toBeGreaterThan(0);
    expect(localChanges).toBe(0);
    await sim.stop();
  });

  it('keeps tombstones while a known replica has not reported, and collects after it rejoins', async () => {
    const { sim, doc } = await rgaSim(['a', 'b', 'c', 'd']);
    sim.crash('d');
    await sim.run(30_000);
    for (const id of ['a', 'b', 'c']) {
      expect(doc(id).length).toBe(15);
      expect(doc(id).tombstones).toBe(25); // d may still hold ops that refer to them
    }
    await sim.restart('d');
    const ok = await sim.runUntil(() => ['a', 'b', 'c', 'd'].every((id) => doc(id).tombstones === 0 && doc(id).length === 15) && sim.converged(), 120_000);
    expect(ok).toBe(true);
    await sim.stop();
  });
});

describe('SyncEngine: RGA tombstone collection across differing memberships', () => {
  type Doc = InstanceType<typeof import('../../src/crdt/rga.js').RGA<string>>;
  /**
   * a, b, d hold ["x", "y"]; d is a member to b but not to a (never added, or removed); d is cut off while a
   * deletes "y". Collecting "y" at a (over a and b only) and b taking a's floor would leave d showing "y"
   * forever: the delete is gone everywhere d can get it from.
   */
  /** Nodes a, b, d with an RGA 'doc'; `peers` as in SimulationOptions (default: everyone knows everyone). */
  async function docSim(peers?: Record<string, string[]>) {
    const { RGA } = await import('../../src/crdt/rga.js');
    const sim = new Simulation({
      seed: SEED,
      nodes: ['a', 'b', 'd'],
      latencyMs: [5, 20],
      engine: { gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 1000 }, checkpointMs: 2000 },
      setup: (e, ctx) => {
        e.register('doc', new RGA<string>(ctx.id));
        e.register('n', new GCounter(ctx.id));
      },
      peers,
    });
    await sim.start();
    return { sim, doc: (id: string): Doc => sim.engine(id).get<Doc>('doc')! };
  }

  async function scenario(variant: 'never-added' | 'removed') {
    const { sim, doc } = await docSim(variant === 'never-added' ? { a: ['b'], d: ['b'] } : undefined);
    await sim.engine('a').update<Doc>('doc', (d) => void d.insert(0, 'x'));
    await sim.engine('a').update<Doc>('doc', (d) => void d.insert(1, 'y'));
    expect(await sim.runUntil(() => ['a', 'b', 'd'].every((id) => doc(id).length === 2), 20_000)).toBe(true);
    // let every member report the two inserts, then a stops counting d
    await sim.run(5000);
    if (variant === 'removed') sim.engine('a').removePeer('d');
    sim.partition(['a', 'b'], ['d']);
    await sim.engine('a').update<Doc>('doc', (d) => void d.delete(1));
    await sim.run(30_000);
    // a and b count different members: neither collects the tombstone d has not seen
    expect(doc('a').tombstones).toBe(1);
    expect(doc('b').tombstones).toBe(1);
    expect(sim.engine('a').stats().causal.membersDiffer).toBe(1); // b names d
    expect(sim.engine('b').stats().causal.membersDiffer).toBe(variant === 'never-added' ? 2 : 1); // a does not (nor d, knowing only b)
    sim.heal();
    const ok = await sim.runUntil(() => ['a', 'b', 'd'].every((id) => doc(id).toArray().join() === 'x') && sim.converged(), 60_000);
    expect(['a', 'b', 'd'].map((id) => doc(id).toArray().join())).toEqual(['x', 'x', 'x']);
    expect(ok).toBe(true);
    // once the memberships agree again the tombstone goes everywhere
    sim.engine('a').addPeer('d', 'memory://d');
    sim.engine('d').addPeer('a', 'memory://a');
    const collected = await sim.runUntil(() => ['a', 'b', 'd'].every((id) => doc(id).tombstones === 0) && sim.converged(), 60_000);
    expect(collected).toBe(true);
    for (const id of ['a', 'b', 'd']) expect(sim.engine(id).stats().causal.membersDiffer).toBe(0);
    await sim.stop();
  }

  it('a replica that does not know a member of its peers keeps the tombstone that member has not seen', () => scenario('never-added'));
  it('a replica that removed a member its peers still count keeps the tombstone too', () => scenario('removed'));

  it('a replica no member counts gets no collectable object (it could insert after what they collect), the rest it does', async () => {
    // d knows b; a and b do not count d (a peer may reach us before an operator adds it: it is answered)
    const { sim, doc } = await docSim({ a: ['b'], b: ['a'], d: ['b'] });
    await sim.engine('a').update<Doc>('doc', (d) => void d.insert(0, 'x'));
    await sim.engine('a').update<GCounter>('n', (c) => c.increment(3));
    expect(await sim.runUntil(() => sim.engine('d').get<GCounter>('n')!.value() === 3, 20_000)).toBe(true);
    await sim.run(10_000); // anti-entropy rounds: d asks b for everything
    expect(doc('d').length).toBe(0);
    // d's own writes still reach the members (they may come before an operator adds it)
    await sim.engine('d').update<Doc>('doc', (d) => void d.insert(0, 'w'));
    expect(await sim.runUntil(() => doc('a').toArray().join() === 'w,x', 20_000)).toBe(true);
    // d was told nothing of b's writes it lacks: none of them counts as acknowledged by d once it is added
    sim.engine('b').addPeer('d', 'memory://d');
    sim.engine('a').addPeer('d', 'memory://d');
    expect(await sim.runUntil(() => doc('d').toArray().join() === 'w,x' && sim.converged(), 30_000)).toBe(true);
    await sim.stop();
  });

  it('a member removed everywhere and added back with its old state drops the element the others collected meanwhile', async () => {
    const { sim, doc } = await docSim();
    await sim.engine('a').update<Doc>('doc', (d) => void d.insert(0, 'x'));
    await sim.engine('a').update<Doc>('doc', (d) => void d.insert(1, 'y'));
    expect(await sim.runUntil(() => doc('d').length === 2, 20_000)).toBe(true);
    sim.partition(['a', 'b'], ['d']);
    sim.engine('a').removePeer('d');
    sim.engine('b').removePeer('d');
    await sim.engine('a').update<Doc>('doc', (d) => void d.delete(1));
    expect(await sim.runUntil(() => doc('a').tombstones === 0 && doc('b').tombstones === 0, 60_000)).toBe(true);
    sim.heal();
    sim.engine('a').addPeer('d', 'memory://d');
    sim.engine('b').addPeer('d', 'memory://d');
    // d never got the delete, and nobody holds it any more: the floor in a full state shows y collected
    const ok = await sim.runUntil(() => doc('d').toArray().join() === 'x' && sim.converged(), 60_000);
    expect(doc('d').toArray()).toEqual(['x']);
    expect(ok).toBe(true);
    await sim.stop();
  });
});

describe('SyncEngine: default randomness on a seeded MemoryNetwork', () => {
  /** The epochs a's digests carry: a first engine, one rebuilt on the same transport, one after a crash. */
  async function epochs(): Promise<number[]> {
    const network = new MemoryNetwork({ seed: SEED, latencyMs: 1 });
    const b = network.transport('b');
    const seen: number[] = [];
    b.onMessage((_from, bytes) => {
      const env = decodeEnvelope(bytes, undefined);
      if (env.type === MSG.SYNC_DIGEST) seen.push(env.epoch);
    });
    await b.start();
    const build = async () => {
      const e = new SyncEngine({ replicaId: 'a', transport: network.transport('a'), gossip: { intervalMs: 1e9 }, antiEntropy: { intervalMs: 1e9 }, liveness: { probeIntervalMs: 1e9 } });
      e.register('c', new GCounter('a'));
      await e.start();
      e.addPeer('b', 'memory://b');
      e.syncWith('b');
      await network.scheduler.run(50);
      return e;
    };
    const e1 = await build();
    await e1.stop();
    const e2 = await build(); // a process restart on the same transport
    network.crash('a');
    network.restart('a');
    await e2.stop();
    await build(); // after a crash
    return seen;
  }

  it('a rebuilt engine gets an epoch of its own (a repeated one repeats message ids), and the same seed the same epochs', async () => {
    const first = await epochs();
    expect(first.length).toBe(3);
    expect(new Set(first).size).toBe(3);
    expect(await epochs()).toEqual(first);
  });
});

describe('SyncEngine: CRDTs changed directly (get + mutator, no update)', () => {
  /** Two started engines on a MemoryNetwork with no scheduler option (they run on the network's clock). */
  async function pair() {
    const network = new MemoryNetwork({ seed: SEED, latencyMs: 20 });
    const engines = ['a', 'b'].map((id) => {
      const e = new SyncEngine({ replicaId: id, transport: network.transport(id), random: new Random(SEED), gossip: { intervalMs: 5000 }, antiEntropy: { intervalMs: 30_000 } });
      e.register('c', new GCounter(id));
      e.register('m', new ORMap<number>(id));
      return e;
    });
    const [a, b] = engines;
    for (const e of engines) await e.start();
    a.addPeer('b', 'memory://b');
    b.addPeer('a', 'memory://a');
    return { network, a, b, stop: () => Promise.all(engines.map((e) => e.stop())) };
  }

  it('the engine runs on the network clock when no scheduler is given', async () => {
    const { network, a, b, stop } = await pair();
    await a.update<GCounter>('c', (c) => c.increment(1));
    // virtual time only: nothing here waits in real time
    expect(await network.scheduler.runUntil(() => b.get<GCounter>('c')!.value() === 1, 1000)).toBe(true);
    await stop();
  });

  it('flush() sends a direct change', async () => {
    const { network, a, b, stop } = await pair();
    a.get<GCounter>('c')!.increment(5); // a counter reports no local change: flush() picks it up
    await a.flush();
    // well before the first gossip (5 s) or anti-entropy (30 s) tick
    expect(await network.scheduler.runUntil(() => b.get<GCounter>('c')!.value() === 5, 1000)).toBe(true);
    await stop();
  });

  it('a direct map write is pushed eagerly with no call at all', async () => {
    const { network, a, b, stop } = await pair();
    a.get<ORMap<number>>('m')!.setLWW('vm-1', 7);
    expect(await network.scheduler.runUntil(() => b.get<ORMap<number>>('m')!.get('vm-1') === 7, 1000)).toBe(true);
    await stop();
  });

  it('a direct change survives a remote merge that arrives before it was sent', async () => {
    const { network, a, b, stop } = await pair();
    a.get<GCounter>('c')!.increment(2); // not committed yet
    await b.update<GCounter>('c', (c) => c.increment(3)); // reaches a first and is merged there
    expect(await network.scheduler.runUntil(() => a.get<GCounter>('c')!.value() === 5, 1000)).toBe(true);
    // the merge committed a's pending change first, so it went out too (not only at anti-entropy)
    expect(await network.scheduler.runUntil(() => b.get<GCounter>('c')!.value() === 5, 1000)).toBe(true);
    // and the digests see the change: both sides hash alike
    expect(a.hash('c')).toBe(b.hash('c'));
    await stop();
  });
});

describe('eager push of a direct write', () => {
  /** Engine 'a' with a registered map and a raw peer 'b' on a zero-latency network: when b's transport gets a DELTA. */
  let deltas = 0;
  async function pushAt(flushDelayMs: number | undefined, write: (a: SyncEngine, m: ORMap<unknown>) => void, storage = false): Promise<number> {
    deltas = 0;
    const net = new MemoryNetwork({ seed: 5, latencyMs: 0 });
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), storage: storage ? new MemoryStorage() : undefined, flushDelayMs, gossip: { intervalMs: 60_000 }, antiEntropy: { intervalMs: 60_000 } });
    const m = a.register('m', new ORMap<unknown>('a'));
    a.addPeer('b', 'b');
    const b = net.transport('b');
    let at = -1;
    b.onMessage((_f, bytes) => {
      if (decodeEnvelope(bytes, undefined).type !== MSG.DELTA) return;
      deltas++;
      if (at < 0) at = net.scheduler.now();
    });
    await b.start();
    await a.start();
    net.scheduler.advance(1);
    await Promise.resolve();
    const t0 = net.scheduler.now();
    write(a, m);
    for (let i = 0; i < 200 && at < 0; i++) {
      for (let j = 0; j < 5; j++) await Promise.resolve(); // storage writes settle between ticks
      net.scheduler.advance(1);
    }
    await a.stop();
    return at - t0;
  }

  it('reaches a peer after flushDelayMs, as a write through update() does, not after twice that', async () => {
    expect(await pushAt(undefined, (_a, m) => m.setLWW('k', 'v'))).toBe(10);
    expect(await pushAt(undefined, (a) => a.get<ORMap<unknown>>('m')!.setLWW('k', 'v'))).toBe(10);
    expect(await pushAt(undefined, (a) => void a.update<ORMap<unknown>>('m', (m) => m.setLWW('k', 'v')))).toBe(10);
    expect(await pushAt(30, (_a, m) => m.setLWW('k', 'v'))).toBe(30);
    expect(await pushAt(30, (a) => void a.update<ORMap<unknown>>('m', (m) => m.setLWW('k', 'v')))).toBe(30);
  });

  it('direct writes within flushDelayMs still go as one message', async () => {
    const at = await pushAt(30, (_a, m) => {
      m.setLWW('k1', 1);
      m.setLWW('k2', 2);
      m.delete('k1');
    });
    expect([at, deltas]).toEqual([30, 1]);
  });

  it('with storage, a direct write goes once durable after flushDelayMs, not after a second flushDelayMs', async () => {
    expect(await pushAt(30, (_a, m) => m.setLWW('k', 'v'), true)).toBe(30);
  });
});
