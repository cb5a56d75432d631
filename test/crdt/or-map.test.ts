import { describe, expect, it } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { encodeValue, encodeValueReference } from '../../src/codec/value.js';
import { ValidationError } from '../../src/errors.js';
import { checkLaws, makeRng, randomValue, type Rng } from './laws.js';

const KEYS = ['a', 'b', 'c', 'd', 'vm-1', 'ключ'];

function jitterClock(rng: Rng): HLC {
  return new HLC({ now: () => 1_700_000_000_000 + rng.int(5) });
}

/** A plain view of a map: nested CRDTs as their values. */
function view(m: ORMap): unknown {
  return m.entries().map(([k, v]) => [k, plain(v)]);
}
function plain(v: unknown): unknown {
  if (v instanceof PNCounter) return { counter: v.value() };
  if (v instanceof ORSet) return { set: v.values() };
  if (v instanceof MVRegister) return { mv: v.values() };
  if (v instanceof ORMap) return { map: view(v) };
  return v;
}

function randomMapOp(rng: Rng, m: ORMap, depth = 0): void {
  const key = rng.pick(KEYS);
  const roll = rng.float();
  if (roll < 0.45) m.setLWW(key, randomValue(rng));
  else if (roll < 0.6) m.delete(rng.bool(0.7) ? key : (rng.pick(m.keys()) ?? key));
  else if (roll < 0.72) m.counter(key).increment(rng.int(7) - 3);
  else if (roll < 0.82) {
    const s = m.orSet(key);
    if (rng.bool(0.6)) s.add(rng.int(4));
    else s.remove(rng.int(4));
  } else if (roll < 0.9) m.register(key).set(rng.int(4));
  else if (depth < 2) randomMapOp(rng, m.map(key), depth + 1);
  else m.setLWW(key, rng.int(3));
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const encodeValueLength = (v: unknown): number => encodeValue(v).length;

describe('crdt/or-map', () => {
  checkLaws<ORMap>({
    name: 'ORMap',
    make: (id, rng) => new ORMap(id, { clock: jitterClock(rng) }),
    randomOp: (rng, m) => randomMapOp(rng, m),
    decode: (b, id) => ORMap.decode(b, id, { clock: new HLC({ now: () => 1_700_000_000_000 }) }),
    view: (m) => view(m),
  });

  it('the later HLC timestamp wins; equal timestamps are broken by replica id, the same on both sides', () => {
    let t = 1000;
    const a = new ORMap<string>('node-a', { clock: new HLC({ now: () => t }) });
    const b = new ORMap<string>('node-b', { clock: new HLC({ now: () => t }) });
    a.setLWW('k', 'from-a');
    b.setLWW('k', 'from-b');
    expect(a.timestamp('k')).toBe(b.timestamp('k'));
    const ab = a.clone();
    ab.merge(b);
    const ba = b.clone();
    ba.merge(a);
    expect(ab.get('k')).toBe('from-b');
    expect(ba.get('k')).toBe('from-b');
    expect(hex(ab.encode())).toBe(hex(ba.encode()));
    t += 10;
    a.setLWW('k', 'later-a');
    ab.merge(a);
    ba.merge(a);
    expect(ab.get('k')).toBe('later-a');
    expect(ba.get('k')).toBe('later-a');
  });

  it('a causal overwrite wins even when the writer clock is behind', () => {
    const fast = new ORMap<number>('z-fast', { clock: new HLC({ now: () => 9_000 }) });
    const slow = new ORMap<number>('a-slow', { clock: new HLC({ now: () => 1_000 }) });
    fast.setLWW('k', 1);
    slow.merge(fast);
    slow.setLWW('k', 2);
    expect(slow.timestamp('k')!).toBeGreaterThan(fast.timestamp('k')!);
    fast.merge(slow);
    expect(fast.get('k')).toBe(2);
  });

  it('delete of an observed key removes it; a concurrent set wins over the delete', () => {
    const a = new ORMap<string>('a');
    const b = new ORMap<string>('b');
    a.setLWW('x', '1');
    a.setLWW('y', '1');
    b.merge(a);
    expect(b.delete('x')).toBe(true);
    expect(b.delete('nope')).toBe(false);
    a.merge(b);
    expect(a.has('x')).toBe(false);
    expect(a.keys()).toEqual(['y']);
    // concurrent: b deletes y while a sets y again
    b.delete('y');
    a.setLWW('y', '2');
    a.merge(b);
    b.merge(a);
    expect(a.get('y')).toBe('2');
    expect(b.get('y')).toBe('2');
    expect(hex(a.encode())).toBe(hex(b.encode()));
    expect(a.size).toBe(1);
  });

  it('deltas carry deletes, and a deleted key costs no bytes in the state', () => {
    const a = new ORMap<number>('a');
    const b = new ORMap<number>('b');
    for (let i = 0; i < 50; i++) a.setLWW(`k${i}`, i);
    b.merge(a.takeDelta()!);
    const full = a.encode().length;
    for (let i = 0; i < 50; i++) a.delete(`k${i}`);
    b.merge(ORMap.decode(a.takeDelta()!.encode()));
    expect(b.size).toBe(0);
    expect(a.encode().length).toBeLessThan(full / 5);
    expect(hex(b.encode())).toBe(hex(a.encode()));
  });

  it('nested counters sum increments from every replica; delete hides, a concurrent update revives (keep-state)', () => {
    const a = new ORMap('a');
    const b = new ORMap('b');
    a.counter('hits').increment(5);
    b.counter('hits').increment(2);
    a.merge(b);
    b.merge(a);
    expect((a.get('hits') as PNCounter).value()).toBe(7);
    expect(a.counter('hits').value()).toBe(7);
    // a deletes while b increments concurrently: the increment wins, the state continues
    a.delete('hits');
    expect(a.has('hits')).toBe(false);
    b.counter('hits').decrement(1);
    a.merge(b);
    expect(a.has('hits')).toBe(true);
    expect(a.counter('hits').value()).toBe(6);
    // deletes that observed everything hide the key everywhere
    a.delete('hits');
    b.merge(a);
    expect(b.has('hits')).toBe(false);
    expect(b.get('hits')).toBeUndefined();
  });

  it('nested sets, registers and maps merge per key', () => {
    const a = new ORMap('a');
    const b = new ORMap('b');
    a.orSet<string>('tags').add('x');
    b.orSet<string>('tags').add('y');
    a.register<number>('mv').set(1);
    b.register<number>('mv').set(2);
    a.map('vm').setLWW('status', 'running');
    b.map('vm').setLWW('cpu', 4);
    a.merge(b);
    b.merge(a);
    expect(a.orSet('tags').values()).toEqual(['x', 'y']);
    expect(a.register('mv').values()).toEqual([1, 2]);
    expect(view(a.map('vm'))).toEqual([['cpu', 4], ['status', 'running']]);
    expect(hex(a.encode())).toBe(hex(b.encode()));
    expect(view(ORMap.decode(a.encode()))).toEqual(view(a));
  });

  it('an LWW write and a nested write on one key: the later one wins', () => {
    let t = 100;
    const a = new ORMap('a', { clock: new HLC({ now: () => t }) });
    const b = new ORMap('b', { clock: new HLC({ now: () => t }) });
    a.setLWW('k', 'plain');
    t = 200;
    b.counter('k').increment(3);
    a.merge(b);
    expect(a.get('k')).toBeInstanceOf(PNCounter);
    t = 300;
    a.setLWW('k', 'again');
    b.merge(a);
    expect(b.get('k')).toBe('again');
  });

  it('an unmutated nested accessor leaves the key absent and the encoding unchanged', () => {
    const a = new ORMap('a');
    const before = hex(a.encode());
    a.counter('c');
    a.orSet('s');
    a.map('m');
    expect(a.has('c')).toBe(false);
    expect(hex(a.encode())).toBe(before);
    expect(a.takeDelta()).toBeNull();
  });

  it('a merge into a nested value\'s handle is a local write of its key (a dot, a delta, a change report); merging the map into its nested values is not', () => {
    const a = new ORMap<unknown>('a');
    const b = new ORMap<unknown>('b');
    b.map('r').setLWW('status', 'up');
    b.counter('c').increment(2);
    b.orSet('s').add('x');
    b.register('v').set(1);
    const changes: string[][] = [];
    a.onChange((keys) => changes.push(keys));
    a.merge(b);
    expect(changes).toEqual([['c', 'r', 's', 'v']]);
    expect(ORMap.decodeContext(a.contextBytes()).hasId('a', 1)).toBe(false); // no write of a's own
    a.takeDelta();
    // now through the handles: each a write of a's, with the nested state in a's next delta
    const o = new ORMap<unknown>('o');
    o.map('r').setLWW('owner', 'zed');
    o.counter('c').increment(5);
    o.orSet('s').add('y');
    o.register('v').set(2);
    changes.length = 0;
    (a.map('r') as ORMap<unknown>).merge(o.map('r') as ORMap<unknown>);
    a.counter('c').merge(o.counter('c'));
    a.orSet('s').merge(o.orSet('s'));
    a.register('v').merge(o.register('v'));
    expect(changes).toEqual([['r'], ['c'], ['s'], ['v']]);
    expect(ORMap.decodeContext(a.contextBytes()).hasId('a', 4)).toBe(true);
    const d = a.takeDelta()!;
    const c = ORMap.decode<unknown>(b.encode(), 'c');
    c.merge(ORMap.decode(d.encode(), 'w') as ORMap<unknown>);
    expect((c.get('r') as ORMap<unknown>).get('owner')).toBe('zed');
    expect(c.counter('c').value()).toBe(7);
    expect(c.orSet('s').values().sort()).toEqual(['x', 'y']);
    expect(c.register('v').values().sort()).toEqual([1, 2]);
    // a merge that changes nothing is no write
    changes.length = 0;
    a.counter('c').merge(o.counter('c'));
    expect(changes).toEqual([]);
    expect(a.takeDelta()).toBeNull();
  });

  it('a merge that throws in a nested counter (past MAX_SAFE_INTEGER) changes nothing and reports nothing', () => {
    const a = new ORMap<unknown>('a');
    a.counter('junk').increment(Number.MAX_SAFE_INTEGER - 1);
    a.takeChangedKeys(); // tracking on
    const changes: string[][] = [];
    const merged: number[] = [];
    a.onChange((keys) => changes.push(keys));
    const parent = new ORMap<unknown>('p');
    parent.map('r');
    const evil = new ORMap<unknown>('evil');
    evil.setLWW('vm-1', 'visible');
    evil.counter('junk').increment(5);
    const before = Buffer.from(a.encode()).toString('hex');
    expect(() => a.merge(evil)).toThrow(RangeError);
    expect(Buffer.from(a.encode()).toString('hex')).toBe(before);
    expect(a.get('vm-1')).toBeUndefined();
    expect(changes).toEqual([]);
    expect(a.takeChangedKeys()).toEqual([]);
    // through a parent's handle: refused before anything changes, the parent hears of nothing
    const h = parent.map('r') as ORMap<unknown>;
    h.counter('junk').increment(Number.MAX_SAFE_INTEGER - 1);
    parent.takeDelta();
    parent.onChange(() => merged.push(1));
    const evil2 = new ORMap<unknown>('evil2');
    evil2.setLWW('x', 1);
    evil2.counter('junk').increment(5);
    const parentBefore = Buffer.from(parent.encode()).toString('hex');
    expect(() => h.merge(evil2)).toThrow(RangeError);
    expect(h.get('x')).toBeUndefined();
    expect(merged).toEqual([]);
    expect(parent.takeDelta()).toBeNull();
    expect(Buffer.from(parent.encode()).toString('hex')).toBe(parentBefore);
  });

  it('a merge that would throw two levels down changes nothing, not even the nested map', () => {
    const a = new ORMap<unknown>('a');
    (a.map('k') as ORMap<unknown>).setLWW('f', 1);
    const b = ORMap.decode<unknown>(a.encode(), 'b');
    // b's nested map gets a field and a counter from z without a write of b's own (a hand-built state)
    const inner = b.map('k') as ORMap<unknown>;
    const z = new ORMap<unknown>('z');
    z.setLWW('g', 2);
    z.counter('c').increment(5);
    const hook = inner.onMerged;
    inner.onMerged = undefined;
    inner.merge(z);
    inner.onMerged = hook;
    (a.map('k') as ORMap<unknown>).counter('c').increment(Number.MAX_SAFE_INTEGER - 1);
    a.takeChangedKeys(); // tracking on
    const heard: string[][] = [];
    a.onChange((keys) => heard.push(keys));
    const before = Buffer.from(a.encode()).toString('hex');
    expect(() => a.merge(ORMap.decode(b.encode(), 'w') as ORMap<unknown>)).toThrow(RangeError);
    expect(Buffer.from(a.encode()).toString('hex')).toBe(before);
    expect((a.map('k') as ORMap<unknown>).get('g')).toBeUndefined();
    expect(heard).toEqual([]);
    expect(a.takeChangedKeys()).toEqual([]);
  });

  it('a merge whose nested counter would overflow leaves the encoding byte-identical (repro)', () => {
    const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));
    const toHex = (x: Uint8Array): string => Buffer.from(x).toString('hex');
    // a: counter c = 5 from r0; b: key k = 'v' and counter c = 2^53 - 3 from r1
    const aHex = '010801027230010001000163010101808080daf2cf97060001010163080102010272300500';
    const bHex = '01080102723102000200016300016b010101000201808080daf2cf9706010002a176010101630f010201027231fdffffffffffff0f00';
    const a = ORMap.decode(hex(aHex));
    expect(() => a.merge(ORMap.decode(hex(bHex)))).toThrow(/exceed Number.MAX_SAFE_INTEGER/);
    expect(toHex(a.encode())).toBe(aHex);
    expect(a.has('k')).toBe(false);
    // the same one level down: the counter inside a nested map
    const outerA = new ORMap<unknown>('r0');
    (outerA.map('m') as ORMap<unknown>).counter('c').increment(5);
    const outerB = new ORMap<unknown>('r1');
    outerB.setLWW('k', 'v');
    (outerB.map('m') as ORMap<unknown>).setLWW('f', 1);
    (outerB.map('m') as ORMap<unknown>).counter('c').increment(Number.MAX_SAFE_INTEGER - 3);
    const x = ORMap.decode(outerA.encode(), 'r0');
    const xBefore = toHex(x.encode());
    expect(() => x.merge(ORMap.decode(outerB.encode(), 'r1'))).toThrow(RangeError);
    expect(toHex(x.encode())).toBe(xBefore);
    expect(x.has('k')).toBe(false);
    expect((x.map('m') as ORMap<unknown>).get('f')).toBeUndefined();
    // totals whose sum passes 2^53 but whose slot-wise max does not (the same replica's slot on both sides)
    const big = ORMap.decode(outerB.encode(), 'r1');
    const again = ORMap.decode(outerB.encode(), 'r3');
    (again.map('m') as ORMap<unknown>).setLWW('g', 2);
    expect(big.merge(again)).toBe(true);
    expect(((big.map('m') as ORMap<unknown>).counter('c')).value()).toBe(Number.MAX_SAFE_INTEGER - 3);
    // a counter that stays in range merges as before
    const y = ORMap.decode(outerA.encode(), 'r0');
    const ok = new ORMap<unknown>('r2');
    (ok.map('m') as ORMap<unknown>).counter('c').increment(7);
    expect(y.merge(ok)).toBe(true);
    expect(((y.map('m') as ORMap<unknown>).counter('c')).value()).toBe(12);
  });

  it('every change listener hears of a change, and a parent of a merge, though one throws', () => {
    const parent = new ORMap<unknown>('p');
    const m = parent.map('r') as ORMap<unknown>;
    const heard: string[][] = [];
    m.onChange(() => {
      throw new Error('faulty');
    });
    m.onChange((keys) => heard.push(keys));
    parent.takeDelta();
    expect(() => m.setLWW('x', 1)).toThrow('faulty');
    expect(heard).toEqual([['x']]);
    expect(parent.has('r')).toBe(true); // the parent's hook ran: a write of r
    parent.takeDelta();
    const o = new ORMap<unknown>('o');
    o.setLWW('y', 2);
    expect(() => m.merge(o)).toThrow('faulty');
    expect(heard).toEqual([['x'], ['y']]);
    expect(parent.takeDelta()).not.toBeNull(); // the merge through the handle reached the parent
  });

  it('two distinct keys forced onto one 64-bit hash both survive merges and digests', () => {
    const keyHash = (): [number, number] => [0x1234, 0xabcd];
    const a = new ORMap<number>('a', { keyHash });
    const b = new ORMap<number>('b', { keyHash });
    a.setLWW('first', 1);
    b.setLWW('second', 2);
    a.merge(b);
    b.merge(a);
    b.setLWW('first', 3);
    a.delete('second');
    a.merge(b);
    b.merge(a);
    expect(a.keys()).toEqual(['first']);
    expect(a.get('first')).toBe(3);
    a.setLWW('second', 4);
    b.merge(a);
    expect(b.keys()).toEqual(['first', 'second']);
    const kh = b.keyHashes();
    expect(kh.keys).toEqual(['first', 'second']);
    expect([...kh.keyHashes]).toEqual([0x1234, 0xabcd, 0x1234, 0xabcd]);
    expect(kh.entryHashes[0] !== kh.entryHashes[2] || kh.entryHashes[1] !== kh.entryHashes[3]).toBe(true);
    const bucket = 0xabcd >>> (32 - 4);
    const d = b.deltaForBuckets(4, [bucket]);
    expect(d.keys()).toEqual(['first', 'second']);
    expect(b.deltaForBuckets(4, [(bucket + 1) % 16]).size).toBe(0);
    expect(hex(b.hashTree(4))).toBe(hex(a.hashTree(4)));
  });

  it('anti-entropy by keys: bytes grow with the difference, and deletes propagate with `seen`', () => {
    const a = new ORMap<number>('a');
    const b = new ORMap<number>('b');
    for (let i = 0; i < 2000; i++) a.setLWW(`k${i}`, i);
    b.merge(a);
    a.setLWW('k7', -7);
    a.delete('k9');
    b.setLWW('new', 1);
    // digests: find the differing keys
    const ha = a.keyHashes(), hb = b.keyHashes();
    const entry = (h: typeof ha): Map<string, string> =>
      new Map(h.keys.map((k, i) => [k, `${h.entryHashes[2 * i]}:${h.entryHashes[2 * i + 1]}`]));
    const ea = entry(ha), eb = entry(hb);
    const diff = [...new Set([...ea.keys(), ...eb.keys()])].filter((k) => ea.get(k) !== eb.get(k)).sort();
    expect(diff).toEqual(['k7', 'k9', 'new']);
    // b -> a: b's version of those keys; a answers with its version plus the retired dots b still holds
    const fromB = b.deltaForKeys(diff);
    a.merge(ORMap.decode(fromB.encode(), 'a'));
    const fromA = a.deltaForKeys(diff, fromB);
    const bytes = fromA.encode();
    expect(bytes.length).toBeLessThan(200);
    b.merge(ORMap.decode(bytes, 'b'));
    expect(hex(a.encode())).toBe(hex(b.encode()));
    expect(b.has('k9')).toBe(false);
    expect(b.get('k7')).toBe(-7);
    expect(a.get('new')).toBe(1);
    // the hash trees agree again
    expect(hex(a.hashTree(8))).toBe(hex(b.hashTree(8)));
  });

  it('change hooks: onChange per write and merge, takeChangedKeys after the first call', () => {
    const a = new ORMap<number>('a');
    const b = new ORMap<number>('b');
    const seen: string[][] = [];
    const off = a.onChange((keys) => seen.push(keys));
    expect(a.takeChangedKeys()).toEqual([]);
    a.setLWW('x', 1);
    b.setLWW('y', 2);
    b.setLWW('z', 3);
    a.merge(b);
    a.merge(b); // idempotent: no change
    expect(seen).toEqual([['x'], ['y', 'z']]);
    expect(a.takeChangedKeys()).toEqual(['x', 'y', 'z']);
    expect(a.takeChangedKeys()).toEqual([]);
    off();
    a.delete('x');
    expect(seen.length).toBe(2);
    expect(a.takeChangedKeys()).toEqual(['x']);
  });

  it('values are kept as bytes and decoded lazily; get returns equal values after decode', () => {
    const a = new ORMap('a');
    const vm = { id: 'vm-001', status: 'running', cpuCores: 4, memoryMB: 8192, createdAt: new Date(1_700_000_000_000), metadata: { env: 'prod' } };
    a.setLWW('vm-001', vm);
    vm.status = 'mutated after set';
    const d = ORMap.decode(a.encode());
    expect(d.get('vm-001')).toEqual({ ...vm, status: 'running' });
    expect(a.get('vm-001')).toEqual(d.get('vm-001'));
  });

  it('the value column round-trips exact bytes through the string dictionary', () => {
    const a = new ORMap('a');
    const strs = ['', 'ab', 'abc', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(255), 'w'.repeat(256), 'ünïcødé', '😀😀'];
    const values: unknown[] = [
      ...strs,
      ...strs.map((x) => ({ [x || 'k']: x, again: x, list: [x, x, { x }] })),
      { d: new Date(1_700_000_000_123), bin: new Uint8Array([0xc1, 0xa3, 1, 2]), n: -1.5, big: 2 ** 40, neg: -(2 ** 33) },
      [[[[['deep', 'deep', 'deep']]]]],
    ];
    values.forEach((v, i) => a.setLWW(`k${String(i).padStart(3, '0')}`, v));
    const bytes = a.encode();
    const b = ORMap.decode(bytes);
    values.forEach((v, i) => expect(b.get(`k${String(i).padStart(3, '0')}`)).toEqual(v));
    expect(hex(b.encode())).toBe(hex(bytes));
    // and through a merge into a third replica (values copied between arenas)
    const c = new ORMap('c');
    c.merge(b);
    expect(hex(c.encode())).toBe(hex(bytes));
  });

  it('repeated field names and values shrink the wire: a 200-VM delta is well under its plain msgpack size', () => {
    const a = new ORMap('a');
    let plainBytes = 0;
    for (let i = 0; i < 200; i++) {
      const vm = { id: `vm-${String(i).padStart(6, '0')}`, status: ['running', 'stopped'][i % 2], nodeId: `node-eu-west-${i % 7}`, cpuCores: 4, memoryMB: 8192, diskGB: 100, ipAddress: `10.0.${i >> 8}.${i & 255}`, createdAt: 1_700_000_000_000 + i, updatedAt: 1_700_000_100_000 + i, metadata: { region: 'eu-west', owner: 'team-a', tier: 'gold', image: 'debian-12' } };
      a.setLWW(vm.id, vm);
      plainBytes += encodeValueLength(vm);
    }
    const delta = a.takeDelta()!.encode();
    expect(delta.length).toBeLessThan(plainBytes * 0.6);
    expect(ORMap.decode(delta).get('vm-000007')).toMatchObject({ nodeId: 'node-eu-west-0', metadata: { tier: 'gold' } });
  });

  it('keys are front-coded on their UTF-8 bytes, including shared multi-byte prefixes', () => {
    const a = new ORMap<number>('a');
    const keys = ['', 'a', 'ab', 'abc', 'é', 'éa', 'éé', '😀', '😀x', '😁', 'z'.repeat(300), 'z'.repeat(301)];
    keys.forEach((k, i) => a.setLWW(k, i));
    const b = ORMap.decode(a.encode());
    expect(b.keys()).toEqual([...keys].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    for (const [i, k] of keys.entries()) expect(b.get(k)).toBe(i);
  });

  it('nested maps decode their keys right past the shared-key cache (many distinct keys, short and long)', () => {
    const a = new ORMap<unknown>('a');
    // 60 records of 40 fields: 2,400 distinct short field names (past the cache's 1,024) plus shared ones
    for (let r = 0; r < 60; r++) {
      const m = a.map(`vm-${r}`);
      for (let f = 0; f < 40; f++) m.setLWW(`f${r}-${f}`, f);
      m.setLWW('status', `s${r}`);
      m.setLWW('x'.repeat(40 + r), r); // longer than the cache takes
    }
    for (let round = 0; round < 2; round++) {
      const b = ORMap.decode(a.encode());
      expect(b.encode()).toEqual(a.encode());
      for (let r = 0; r < 60; r += 7) {
        const m = b.get(`vm-${r}`) as ORMap<unknown>;
        expect(m.keys()).toEqual((a.get(`vm-${r}`) as ORMap<unknown>).keys());
        expect(m.get('status')).toBe(`s${r}`);
        expect(m.get(`f${r}-39`)).toBe(39);
        expect(m.get('x'.repeat(40 + r))).toBe(r);
      }
    }
  });

  it('dot counters past 2^32 stay exact (the counter column widens)', () => {
    const a = new ORMap<number>('a');
    a.setLWW('x', 1);
    a.ctx.vv[a.ctx.lookup('a')] = 2 ** 40;
    a.setLWW('y', 2);
    a.setLWW('x', 3);
    const b = ORMap.decode(a.encode(), 'b');
    expect(b.get('x')).toBe(3);
    expect(hex(b.encode())).toBe(hex(a.encode()));
    const c = new ORMap<number>('c');
    c.merge(b);
    c.delete('y');
    a.merge(c);
    expect(a.keys()).toEqual(['x']);
  });

  it('rejects keys that are not well-formed UTF-16', () => {
    const a = new ORMap('a');
    expect(() => a.setLWW('\ud800', 1)).toThrow(ValidationError);
    expect(() => a.counter('x\udc00')).toThrow(ValidationError);
    a.setLWW('😀', 1);
    expect(ORMap.decode(a.encode()).keys()).toEqual(['😀']);
  });

  it('many keys, many replicas: state merge of random maps converges (seeded)', () => {
    const rng = makeRng(Number(process.env.SEED ?? 7));
    const reps = Array.from({ length: 5 }, (_, i) => new ORMap<unknown>(`r${i}`, { clock: jitterClock(rng) }));
    for (let step = 0; step < 3000; step++) {
      const m = rng.pick(reps);
      const k = `vm-${rng.int(300)}`;
      if (rng.bool(0.85)) m.setLWW(k, { n: rng.int(1000) });
      else m.delete(k);
      if (rng.bool(0.05)) m.merge(rng.pick(reps).takeDelta() ?? new ORMap('empty'));
    }
    for (const r of reps) for (const o of reps) r.merge(o);
    const want = hex(reps[0].encode());
    for (const r of reps) expect(hex(r.encode())).toBe(want);
  });
});

describe('ORMap.discardDelta', () => {
  it('drops what takeDelta would return after a merge, nested deltas included, and nothing else', () => {
    const a = new ORMap<number>('a');
    a.setLWW('x', 1);
    a.map('inner').setLWW('f', 1);
    a.counter('n').increment(2);
    const b = new ORMap<number>('b');
    b.merge(a);
    const reference = b.clone();
    expect(reference.takeDelta()).not.toBeNull(); // a merge leaves a pending delta
    b.discardDelta();
    expect(b.takeDelta()).toBeNull();
    expect((b.get('inner') as ORMap).takeDelta()).toBeNull();
    expect(b.encode()).toEqual(reference.encode()); // the state is untouched
    // later local writes are pending as usual
    b.setLWW('y', 2);
    const d = b.takeDelta()!;
    expect(d.keys()).toEqual(['y']);
  });
});

describe('ORMap short string values', () => {
  // setLWW writes a string of fewer than 32 chars straight into the value arena when it is ASCII; the stored
  // bytes must be exactly the canonical encoding (the reference encoder's), on first writes and overwrites
  const internals = (m: ORMap) => m as unknown as { head: { get(k: string): number | undefined }; valueBytes(row: number): Uint8Array };
  const strings = ['', 'a', 'running', 'x'.repeat(31), 'x'.repeat(32), 'é', 'ação', 'a😀', 'abc\u007f', 'abc\u0080', '\u0000'];
  it('stores the canonical bytes for ASCII and non-ASCII strings around the 32-char boundary', () => {
    const m = new ORMap<string>('r1');
    for (const s of strings) {
      for (const key of ['new-' + s, 'over']) {
        m.setLWW(key, s); // 'over' is overwritten with every string in turn
        const row = internals(m).head.get(key)!;
        expect(Array.from(internals(m).valueBytes(row)), JSON.stringify(s)).toEqual(Array.from(encodeValueReference(s)));
        expect(m.get(key)).toBe(s);
      }
    }
    const back = ORMap.decode<string>(m.encode());
    for (const s of strings) expect(back.get('new-' + s)).toBe(s);
    expect(back.encode()).toEqual(m.encode());
  });
});

describe('ORMap.getCopy', () => {
  it('gives a fresh copy of an LWW value (equal to get, shared with nothing), and the instance for a nested winner', () => {
    const m = new ORMap<unknown>('r1');
    const rec = { status: 'running', tags: ['a', 'b'], bytes: new Uint8Array([1, 2, 3]), at: new Date(5) };
    m.setLWW('vm', rec);
    m.setLWW('n', 7);
    const cached = m.get('vm');
    const c1 = m.getCopy('vm') as typeof rec;
    expect(c1).toEqual(rec);
    expect(c1).not.toBe(cached);
    expect(m.getCopy('vm')).not.toBe(c1);
    c1.status = 'tampered';
    c1.tags.push('c');
    c1.bytes[0] = 9;
    expect(m.get('vm')).toEqual(rec);
    expect(m.getCopy('vm')).toEqual(rec);
    expect(m.getCopy('n')).toBe(7);
    expect(m.getCopy('absent')).toBeUndefined();
    m.counter('c').increment(2);
    expect(m.getCopy('c')).toBe(m.get('c'));
  });
});

describe('ORMap merge: clock drift, as LWWRegister', () => {
  const T0 = 1_764_000_000_000;
  const clockAt = (ms: () => number) => new HLC({ now: ms, reuse: 1 });
  it('a row timestamped further ahead than maxDriftMs throws ClockSkewError and changes nothing; within it the local clock follows', () => {
    let now = T0;
    const ahead = new ORMap<string>('b', { clock: clockAt(() => now + 120_000) });
    ahead.setLWW('k', 'future');
    const nestedAhead = new ORMap<unknown>('b', { clock: clockAt(() => now + 120_000) });
    nestedAhead.map('vm').setLWW('status', 'future');
    const here = new ORMap<unknown>('a', { clock: clockAt(() => now) });
    here.setLWW('x', 'mine');
    const before = here.encode();
    for (const other of [ahead, nestedAhead]) {
      let err: unknown;
      try {
        here.merge(other as ORMap<unknown>);
      } catch (e) {
        err = e;
      }
      expect((err as Error)?.name).toBe('ClockSkewError');
      expect(here.encode()).toEqual(before);
    }
    // 30 s ahead: merged, and a later local overwrite of the key still wins although this clock is behind
    const near = new ORMap<string>('b', { clock: clockAt(() => now + 30_000) });
    near.setLWW('k', 'theirs');
    here.merge(near as ORMap<unknown>);
    expect(here.get('k')).toBe('theirs');
    now += 1;
    here.setLWW('k', 'mine later');
    const peer = new ORMap<unknown>('c', { clock: clockAt(() => now) });
    peer.merge(near as ORMap<unknown>);
    peer.merge(here);
    expect(peer.get('k')).toBe('mine later');
  });
});
