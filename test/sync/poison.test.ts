/**
 * A peer that claims a replica's own dot counter is near 2^53 (a hostile delta of 87 bytes did it: the next
 * writes took counters past MAX_SAFE_INTEGER, every encoding after them threw, and the process died in the
 * anti-entropy timer, again on every restart): the claim still counts (a replica restored from an old backup
 * must not reuse dots its peers hold), but a write that would need a counter past MAX_SAFE_INTEGER fails with
 * RangeError before it changes anything, and an error in an engine timer is logged instead of thrown.
 */
import { describe, expect, it } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { GCounter } from '../../src/crdt/g-counter.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { MSG, decodeEnvelope, encodeEnvelope } from '../../src/sync/envelope.js';
import { DecodeError } from '../../src/errors.js';
import { ITEM_TREE, MIN_DELTA_ENVELOPE_BYTES, decodeBundle, encodeBundle, encodeDelta, encodeDigest, encodeNonce, encodeReadReq, encodeSync, type SyncItem } from '../../src/sync/messages.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { NovaCronIntegration } from '../../src/cluster/integration.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

const TOP = Number.MAX_SAFE_INTEGER;

/** A map whose context claims replica `victim`'s dots up to `c` (as a hostile peer can write one). */
function claiming(victim: string, c: number): ORMap<unknown> {
  const m = new ORMap<unknown>('x', { clock: new HLC({ now: () => 0 }) }); // at time 0: behind every receiver's clock
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
    // a write through a nested handle is refused before the nested value changes
    expect(() => m.counter('n').increment(1)).toThrow(RangeError);
    expect(m.encode()).toEqual(before);

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

/** A map of replica 'victim' with a nested counter, register, map and OR-Set, then its dots claimed up to TOP. */
function exhaustedWithNested(): ORMap<unknown> {
  const m = new ORMap<unknown>('victim');
  m.counter('n').increment(1);
  m.register('r').set('v1');
  m.map('inner').setLWW('f', 1);
  m.orSet('s').add('a');
  m.takeDelta();
  m.merge(ORMap.decode(claiming('victim', TOP).encode()));
  return m;
}

describe('a write this replica cannot record', () => {
  it('nested values already there keep their value, and the error says E_EXHAUSTED', () => {
    const m = exhaustedWithNested();
    const before = m.encode();
    const errs: unknown[] = [];
    for (const write of [() => m.counter('n').increment(5), () => m.register('r').set('v2'), () => m.map('inner').setLWW('f', 2), () => m.map('inner').delete('f'), () => m.orSet('s').add('b'), () => m.orSet('s').remove('a'), () => m.setLWW('k', 1), () => m.delete('n')]) {
      try {
        write();
      } catch (e) {
        errs.push(e);
      }
    }
    // delete takes no dot: it is the one write that goes through
    expect(errs.length).toBe(7);
    for (const e of errs) expect([e instanceof RangeError, (e as { code?: string }).code]).toEqual([true, 'E_EXHAUSTED']);
    expect([m.counter('n').value(), m.register('r').values(), (m.get('inner') as ORMap<unknown>).get('f'), m.orSet('s').values()]).toEqual([1, ['v1'], 1, ['a']]);
    expect(ORMap.decode(before).has('n')).toBe(true);
  });

  it('merges through nested handles are refused before they change anything; merges into the map itself are not', () => {
    const m = exhaustedWithNested();
    const before = m.encode();
    const o = new ORSet<string>('o');
    o.add('z');
    const pc = new PNCounter('o');
    pc.increment(9);
    const mv = new MVRegister<string>('o');
    mv.set('v9');
    const im = new ORMap<unknown>('o');
    im.setLWW('g', 2);
    const merges = [() => m.orSet('s').merge(o), () => m.counter('n').merge(pc as never), () => m.register('r').merge(mv), () => m.map('inner').merge(im)];
    for (const merge of merges) expect(merge).toThrow(expect.objectContaining({ code: 'E_EXHAUSTED' }));
    expect(m.encode()).toEqual(before);
    // a remote state merged into the map (not a local write) still goes in, nested values included
    const remote = new ORMap<unknown>('o');
    remote.orSet('s').add('y');
    remote.setLWW('other', 1);
    expect(m.merge(remote)).toBe(true);
    expect([m.get('other'), m.orSet('s').values()]).toEqual([1, ['a', 'y']]);
  });

  it('a row a peer stamped MAX_SAFE_INTEGER: overwriting it is refused before anything changes', () => {
    const evil = new ORMap<unknown>('evil');
    evil.setLWW('a', 1);
    evil.counter('c').increment(1);
    const ts = (evil as unknown as { ts: Float64Array }).ts;
    ts[0] = TOP; // a hostile peer can send this (decode takes it)
    ts[1] = TOP;
    // a merge refuses such a row (ClockSkewError: far ahead of this clock, see below); a replica can still hold
    // one as its own state (loaded, or merged on a clock with a huge maxDriftMs)
    expect(() => new ORMap<unknown>('victim').merge(ORMap.decode(evil.encode()))).toThrow(expect.objectContaining({ name: 'ClockSkewError' }));
    const m = ORMap.decode<unknown>(evil.encode(), 'victim');
    const before = m.encode();
    for (const write of [() => m.setLWW('a', 2), () => m.counter('c').increment(1)]) {
      let err: unknown;
      try {
        write();
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('E_EXHAUSTED');
    }
    expect(m.encode()).toEqual(before); // and encodings still work
    m.setLWW('b', 3); // other keys are fine
    expect(ORMap.decode(m.encode()).get('b')).toBe(3);
  });

  it('the cluster API keeps E_EXHAUSTED apart from a counter overflow (E_RANGE, the request\'s fault)', async () => {
    const net = new MemoryNetwork({ seed: 1 });
    const n = new NovaCronIntegration({ nodeId: 'a', region: 'r', transport: net.transport('a') });
    await n.start();
    await n.incrementCounter('c', 1);
    n.metadata.counters.merge(ORMap.decode(claiming('a', TOP).encode()));
    const err = await n.incrementCounter('c', 5).catch((e: unknown) => e);
    expect([err instanceof RangeError, (err as { code?: string }).code]).toEqual([true, 'E_EXHAUSTED']);
    expect(n.getCounter('c')).toBe(1);
    const big = await n.incrementCounter('d', TOP).then(() => n.incrementCounter('d', 1)).catch((e: unknown) => e);
    expect((big as { code?: string }).code).toBe('E_EXHAUSTED'); // no dot for d either: the map is exhausted
    await n.stop();
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

  it('an error in the session-timeout retry (a peer that never answers) is logged, not thrown', async () => {
    const net = new MemoryNetwork({ seed: 3, latencyMs: [1, 2] });
    const errors: string[] = [];
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), gossip: { intervalMs: 100 }, antiEntropy: { intervalMs: 300 }, logger: { error: (m: string) => void errors.push(m) } });
    const broken = new GCounter('a');
    let failing = false;
    const encode = broken.encode.bind(broken);
    broken.encode = () => {
      if (failing) throw new RangeError('value out of range');
      return encode();
    };
    a.register('c', broken);
    a.addPeer('b', 'b'); // never answers: every session times out and is retried from its timer
    await a.start();
    net.scheduler.advance(350);
    failing = true;
    broken.increment(1);
    expect(() => net.scheduler.advance(3000)).not.toThrow();
    expect(errors.some((m) => m.includes('value out of range'))).toBe(true);
    await a.stop();
  });

  it('a direct write whose commit throws does not throw out of the transport handler', async () => {
    const net = new MemoryNetwork({ seed: 9, latencyMs: [1, 1] });
    const errors: string[] = [];
    const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), storage: new MemoryStorage(), flushDelayMs: 50, gossip: { intervalMs: 60_000 }, antiEntropy: { intervalMs: 60_000 }, logger: { error: (m: string) => void errors.push(m), warn: () => {} } });
    const broken = new GCounter('a');
    let failing = false;
    const takeDelta = broken.takeDelta.bind(broken);
    broken.takeDelta = () => {
      if (failing) throw new RangeError('delta out of range');
      return takeDelta();
    };
    a.register('c', broken);
    await a.start();
    const evil = net.transport('evil');
    await evil.start();
    failing = true;
    broken.increment(2); // a direct write: the engine commits it on its next sweep (a message's arrival is one)
    evil.send('a', encodeEnvelope({ type: MSG.PING, flags: 0, origin: 'evil', epoch: 1, counter: 2, hops: 0, payload: encodeNonce(7) }, undefined));
    expect(() => net.scheduler.advance(5)).not.toThrow();
    expect(errors.some((m) => m.includes('delta out of range'))).toBe(true);
    await a.stop().catch(() => {});
  });

  it('a SYNC repeating one tree item 200 times is answered once', async () => {
    async function answerBytes(repeat: number): Promise<number> {
      const { net, a, evil, got } = await victim(2000, 40);
      const zero = Array.from({ length: 16 }, () => ({ count: 0, lo: 0, hi: 0 }));
      const item: SyncItem = { kind: ITEM_TREE, name: 'm', depth: 4, nodes: Array.from({ length: 16 }, (_, p) => ({ prefix: p, children: zero })) };
      const payload = encodeSync({ session: 1, seen: [], items: Array.from({ length: repeat }, () => item) });
      evil.send('a', encodeEnvelope({ type: MSG.SYNC, flags: 0, origin: 'evil', epoch: 1, counter: 1, hops: 0, payload }, undefined));
      net.scheduler.advance(20);
      await a.stop();
      return got();
    }
    const one = await answerBytes(1);
    expect(one).toBeGreaterThan(10_000);
    expect(await answerBytes(200)).toBeLessThan(1.5 * one);
  });

  it('a bundle carries deltas only: digests and read requests in one are dropped unanswered', async () => {
    const { net, a, m, evil, got } = await victim(500, 0);
    const empty = new ORMap<unknown>('zz');
    const env = (type: number, counter: number, payload: Uint8Array) => encodeEnvelope({ type, flags: 0, origin: 'evil', epoch: 1, counter, hops: 0, payload }, undefined);
    const parts: Uint8Array[] = [];
    const delta = new ORMap<unknown>('evil');
    delta.setLWW('from-evil', 1);
    parts.push(env(MSG.DELTA, 1, encodeDelta({ writesLo: 1, writesHi: 1, deps: [], objects: [{ name: 'm', typeTag: delta.typeTag, bytes: delta.encode() }] })));
    for (let i = 0; i < 50; i++) {
      parts.push(env(MSG.SYNC_DIGEST, 10 + i, encodeDigest({ session: i + 1, seen: [], objects: [{ name: 'm', typeTag: empty.typeTag, lo: 0, hi: 0, keyed: true, context: empty.contextBytes() }] })));
      parts.push(env(MSG.READ_REQ, 100 + i, encodeReadReq({ reqId: i + 1, name: 'm', lo: 0, hi: 0 })));
    }
    evil.send('a', env(MSG.BUNDLE, 1000, encodeBundle(parts)));
    net.scheduler.advance(20);
    // the first digest drops the rest of the bundle: one error
    expect(a.stats().errors.decode).toBe(1);
    expect(got()).toBeLessThan(1000); // an ack at most: no whole state
    expect(m.get('from-evil')).toBe(1); // the delta before it is taken
    // one digest on its own is still answered
    evil.send('a', parts[1]!);
    net.scheduler.advance(20);
    expect(got()).toBeGreaterThan(5000);
    await a.stop();
  });

  it('MIN_DELTA_ENVELOPE_BYTES is the smallest delta envelope the encoders make; decodeBundle refuses shorter parts', () => {
    const smallest = encodeEnvelope({ type: MSG.DELTA, flags: 0, origin: 'e', epoch: 0, counter: 0, hops: 0, payload: encodeDelta({ writesLo: 0, writesHi: 0, deps: [], objects: [] }) }, undefined);
    expect(smallest.length).toBe(MIN_DELTA_ENVELOPE_BYTES);
    expect(decodeEnvelope(smallest, undefined).type).toBe(MSG.DELTA);
    expect(decodeBundle(encodeBundle([smallest, smallest]))).toEqual([smallest, smallest]);
    expect(() => decodeBundle(encodeBundle([smallest, smallest.subarray(1)]))).toThrow(DecodeError);
    expect(() => decodeBundle(encodeBundle([new Uint8Array(1)]))).toThrow(DecodeError);
  });

  it('a bundle of 32,000 one-byte parts is refused whole, one error counted', async () => {
    const { net, a, evil } = await victim(10, 0);
    const env = (type: number, counter: number, payload: Uint8Array) => encodeEnvelope({ type, flags: 0, origin: 'evil', epoch: 1, counter, hops: 0, payload }, undefined);
    // built by hand: encodeBundle would write the same
    const n = 32_000;
    const payload = new Uint8Array(3 + 2 * n);
    payload.set([0x80 | (n & 0x7f), 0x80 | ((n >> 7) & 0x7f), n >> 14]);
    for (let i = 0; i < n; i++) payload.set([1, 0xff], 3 + 2 * i);
    expect(() => decodeBundle(payload)).toThrow(DecodeError);
    evil.send('a', env(MSG.BUNDLE, 1, payload));
    net.scheduler.advance(20);
    expect(a.stats().errors.decode).toBe(1); // was 32,000: one per part
    await a.stop();
  });

  it('a bundle of many bad parts of delta size: the first bad part drops the rest, one error counted', async () => {
    const { net, a, m, evil } = await victim(10, 0);
    const env = (type: number, counter: number, payload: Uint8Array) => encodeEnvelope({ type, flags: 0, origin: 'evil', epoch: 1, counter, hops: 0, payload }, undefined);
    const garbage = new Uint8Array(MIN_DELTA_ENVELOPE_BYTES).fill(0xff);
    evil.send('a', env(MSG.BUNDLE, 1, encodeBundle(Array.from({ length: 5000 }, () => garbage))));
    net.scheduler.advance(20);
    expect(a.stats().errors.decode).toBe(1);
    // a bad first part and valid deltas after it: the whole bundle is dropped
    const parts = [garbage];
    const d = new ORMap<unknown>('evil');
    for (let i = 0; i < 3; i++) {
      d.setLWW(`from-evil-${i}`, i);
      const delta = d.takeDelta()!;
      parts.push(env(MSG.DELTA, 10 + i, encodeDelta({ writesLo: i + 1, writesHi: i + 1, deps: [], objects: [{ name: 'm', typeTag: d.typeTag, bytes: delta.encode() }] })));
    }
    evil.send('a', env(MSG.BUNDLE, 2, encodeBundle(parts)));
    net.scheduler.advance(20);
    expect(a.stats().errors.decode).toBe(2);
    expect([m.get('from-evil-0'), m.get('from-evil-1'), m.get('from-evil-2')]).toEqual([undefined, undefined, undefined]);
    // the same deltas without the bad part go in
    evil.send('a', env(MSG.BUNDLE, 3, encodeBundle(parts.slice(1))));
    net.scheduler.advance(20);
    expect(a.stats().errors.decode).toBe(2);
    expect([m.get('from-evil-0'), m.get('from-evil-1'), m.get('from-evil-2')]).toEqual([0, 1, 2]);
    await a.stop();
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

/** An engine 'a' holding map 'm' of n VM-like records (pad: extra bytes each), timers far off, and a raw
 * transport 'evil' on its network counting the bytes it is sent. */
async function victim(n: number, pad: number) {
  const net = new MemoryNetwork({ seed: 9, latencyMs: [1, 1] });
  const a = new SyncEngine({ replicaId: 'a', transport: net.transport('a'), gossip: { intervalMs: 60_000 }, antiEntropy: { intervalMs: 60_000 } });
  const m = new ORMap<unknown>('a');
  for (let i = 0; i < n; i++) m.setLWW(`vm-${i}`, pad ? { status: 'running', n: i, pad: 'x'.repeat(pad) } : { status: 'running', n: i });
  a.register('m', m);
  await a.start();
  const evil = net.transport('evil');
  let bytes = 0;
  evil.onMessage((_f, b) => void (bytes += b.length));
  await evil.start();
  return { net, a, m, evil, got: () => bytes };
}
