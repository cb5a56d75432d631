/**
 * A peer that claims a replica's own dot counter is near 2^53 (a hostile delta of 87 bytes did it: the next
 * writes took counters past MAX_SAFE_INTEGER, every encoding after them threw, and the process died in the
 * anti-entropy timer, again on every restart): the claim still counts (a replica restored from an old backup
 * must not reuse dots its peers hold), but a write that would need a counter past MAX_SAFE_INTEGER fails with
 * RangeError before it changes anything, and an error in an engine timer is logged instead of thrown.
 */
import { describe, expect, it } from 'vitest';
import { GCounter } from '../../src/crdt/g-counter.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { MSG, encodeEnvelope } from '../../src/sync/envelope.js';
import { encodeDelta } from '../../src/sync/messages.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

const TOP = Number.MAX_SAFE_INTEGER;

/** A map whose context claims replica `victim`'s dots up to `c` (as a hostile peer can write one). */
function claiming(victim: string, c: number): ORMap<unknown> {
  const m = new ORMap<unknown>('x');
  m.setLWW('x', 1);
  const i = m.ctx.intern(victim); // first: interning replaces the context's arrays
  m.ctx.cloud[i] = [c, c];
  return m;
}

describe('dot counters claimed up to MAX_SAFE_INTEGER', () => {
  it('the last counter is taken; the write after it is a RangeError that changes nothing, for every dotted type', () => {
    const m = new ORMap<unknown>('victim');
    m.merge(ORMap.decode(claiming('victim', TOP - 1).encode()));
    m.setLWW('a', 1); // counter TOP
    const before = m.encode();
    expect(() => m.setLWW('b', 2)).toThrow(RangeError);
    expect(() => m.setLWW('a', 3)).toThrow(RangeError);
    expect(m.encode()).toEqual(before);
    expect(ORMap.decode(before).get('a')).toBe(1); // and its encodings stay valid
    expect(m.takeDelta()?.encode()).toBeDefined();
    // a write through a nested handle throws too (the nested value has changed by then: it tells the map after)
    expect(() => m.counter('n').increment(1)).toThrow(RangeError);
    expect(ORMap.decode(m.encode()).has('n')).toBe(false);

    const s = new ORSet<string>('victim');
    const si = s.ctx.intern('victim');
    s.ctx.cloud[si] = [TOP, TOP];
    const sBefore = s.encode();
    expect(() => s.add('e')).toThrow(RangeError);
    expect(s.encode()).toEqual(sBefore);

    const r = new MVRegister<string>('victim');
    r.set('v');
    const ri = r.ctx.intern('victim');
    r.ctx.cloud[ri] = [TOP, TOP];
    const rBefore = r.encode();
    expect(() => r.set('w')).toThrow(RangeError);
    expect(r.encode()).toEqual(rBefore);
    expect(r.values()).toEqual(['v']);
  });
});

describe('an engine sent a poisoned delta', () => {
  it('takes it (a keyless peer is trusted), then refuses writes with RangeError and keeps running', async () => {
    const net = new MemoryNetwork({ seed: 9, latencyMs: [1, 2] });
    const errors: string[] = [];
    const logger = { error: (msg: string) => void errors.push(msg) };
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), gossip: { intervalMs: 100 }, antiEntropy: { intervalMs: 200 }, logger });
    const b = new SyncEngine({ replicaId: 'b', transport: net.transport('b'), gossip: { intervalMs: 100 }, antiEntropy: { intervalMs: 200 } });
    for (const [e, other] of [[a, 'b'], [b, 'a']] as const) {
      e.register('m', new ORMap(e.replicaId));
      e.addPeer(other, other);
      await e.start();
    }
    await b.update<ORMap<unknown>>('m', (m) => m.setLWW('from-b', 1));
    const evil = net.transport('evil');
    await evil.start();
    const poison = claiming('a', TOP - 2);
    const payload = encodeDelta({ writesLo: 1, writesHi: 0, deps: [], objects: [{ name: 'm', typeTag: poison.typeTag, bytes: poison.encode() }] });
    evil.send('a', encodeEnvelope({ type: MSG.DELTA, flags: 0, origin: 'evil', epoch: 1, counter: 1, hops: 0, payload }, undefined));
    net.scheduler.advance(50);
    expect(a.get<ORMap<unknown>>('m')!.has('x')).toBe(true);
    await a.update<ORMap<unknown>>('m', (m) => m.setLWW('k0', 0)); // TOP - 1
    await a.update<ORMap<unknown>>('m', (m) => m.setLWW('k1', 1)); // TOP
    await expect(a.update<ORMap<unknown>>('m', (m) => m.setLWW('k2', 2))).rejects.toThrow(RangeError);
    // gossip and anti-entropy ticks (the node died in one of them): both replicas end equal
    expect(() => net.scheduler.advance(3000)).not.toThrow();
    expect(b.get<ORMap<unknown>>('m')!.keys()).toEqual(['from-b', 'k0', 'k1', 'x']);
    expect(a.get<ORMap<unknown>>('m')!.encode()).toEqual(b.get<ORMap<unknown>>('m')!.encode());
    expect(errors).toEqual([]);
    await a.stop();
    await b.stop();
  });

  it('logs an error thrown in a timer and goes on ticking', async () => {
    const net = new MemoryNetwork({ seed: 3, latencyMs: [1, 2] });
    const errors: string[] = [];
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), gossip: { intervalMs: 100 }, antiEntropy: { intervalMs: 100 }, logger: { error: (m: string) => void errors.push(m) } });
    const b = new SyncEngine({ replicaId: 'b', transport: net.transport('b'), gossip: { intervalMs: 100 }, antiEntropy: { intervalMs: 100 } });
    // a CRDT whose encoding throws (as the poisoned map's did): anti-entropy hashes it on every tick
    const broken = new GCounter('a');
    let failing = true;
    const encode = broken.encode.bind(broken);
    broken.encode = () => {
      if (failing) throw new RangeError('value out of range');
      return encode();
    };
    a.register('c', broken);
    b.register('c', new GCounter('b'));
    a.addPeer('b', 'b');
    b.addPeer('a', 'a');
    await a.start();
    await b.start();
    broken.increment(4);
    expect(() => net.scheduler.advance(1000)).not.toThrow();
    expect(errors.some((m) => m.includes('value out of range'))).toBe(true);
    failing = false; // the next ticks run as usual: anti-entropy brings b the state
    net.scheduler.advance(2000);
    expect(b.get<GCounter>('c')!.value()).toBe(4);
    await a.stop();
    await b.stop();
  });
});

