import { describe, expect, it } from 'vitest';
import { GCounter } from '../../src/crdt/g-counter.js';
import { CODEC_VERSION, CRDT_TYPE } from '../../src/crdt/types.js';
import { DecodeError } from '../../src/errors.js';
import { checkLaws } from './laws.js';

describe('crdt/g-counter', () => {
  checkLaws({
    name: 'GCounter',
    make: (id) => new GCounter(id),
    randomOp: (rng, c) => c.increment(rng.bool(0.5) ? 1 : rng.int(1000)),
    decode: (b, id) => GCounter.decode(b, id),
    view: (c) => c.value(),
  });

  it('counts increments from every replica, max per replica on merge', () => {
    const a = new GCounter('a');
    const b = new GCounter('b');
    a.increment();
    a.increment(4);
    b.increment(10);
    a.merge(b);
    b.merge(a);
    expect(a.value()).toBe(15);
    expect(b.value()).toBe(15);
    a.merge(b);
    expect(a.value()).toBe(15);
    b.increment(0);
    expect(b.value()).toBe(15);
  });

  it('rejects bad increments with RangeError and changes nothing', () => {
    const a = new GCounter('a');
    a.increment(3);
    const before = a.encode();
    for (const bad of [-1, 1.5, NaN, Infinity, -Infinity]) expect(() => a.increment(bad)).toThrow(RangeError);
    expect(a.encode()).toEqual(before);
    expect(a.value()).toBe(3);
  });

  it('throws RangeError past MAX_SAFE_INTEGER (local and merged) and changes nothing', () => {
    const a = new GCounter('a');
    a.increment(Number.MAX_SAFE_INTEGER - 1);
    a.increment();
    expect(a.value()).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => a.increment()).toThrow(RangeError);
    expect(a.value()).toBe(Number.MAX_SAFE_INTEGER);

    const x = new GCounter('x');
    x.increment(2 ** 52);
    const y = new GCounter('y');
    y.increment(2 ** 52);
    const xb = x.encode();
    expect(() => x.merge(y)).toThrow(RangeError);
    expect(x.encode()).toEqual(xb);
    expect(x.value()).toBe(2 ** 52);
  });

  it('rejects a hand-built encoding whose total exceeds MAX_SAFE_INTEGER', () => {
    // two replicas at 2^52 each: valid varuints, total 2^53
    const x = new GCounter('x');
    x.increment(2 ** 52);
    const y = new GCounter('y');
    y.increment(2 ** 52);
    const xb = x.encode();
    const yb = y.encode();
    // header, n=1, id, value -> splice into n=2
    const idX = xb.subarray(3, 5);
    const idY = yb.subarray(3, 5);
    const val = xb.subarray(5);
    const bytes = Uint8Array.from([CODEC_VERSION, CRDT_TYPE.GCounter, 2, ...idX, ...idY, ...val, ...val]);
    expect(() => GCounter.decode(bytes)).toThrow(DecodeError);
  });

  it('encodes canonically whatever the order of merges', () => {
    const a = new GCounter('zeta');
    a.increment(3);
    const b = new GCounter('alpha');
    b.increment(5);
    const ab = a.clone();
    ab.merge(b);
    const ba = b.clone();
    ba.merge(a);
    expect(ab.encode()).toEqual(ba.encode());
    expect(GCounter.decode(ab.encode(), 'q').value()).toBe(8);
    // a replica that never incremented adds nothing to the encoding
    const empty = new GCounter('m');
    empty.merge(ab);
    expect(empty.encode()).toEqual(ab.encode());
  });

  it('takeDelta returns only what changed since the last take', () => {
    const a = new GCounter('a');
    expect(a.takeDelta()).toBeNull();
    a.increment(2);
    const d1 = a.takeDelta()!;
    expect(d1.value()).toBe(2);
    expect(a.takeDelta()).toBeNull();
    const b = new GCounter('b');
    b.increment(7);
    a.merge(b);
    const d2 = a.takeDelta()!;
    expect(d2.value()).toBe(7);
    const c = new GCounter('c');
    c.merge(d2);
    c.merge(d1);
    c.merge(d1);
    expect(c.value()).toBe(9);
  });

  it('decode rejects wrong version, wrong tag, zero slots, unsorted ids and trailing bytes', () => {
    const a = new GCounter('a');
    a.increment(1);
    const ok = a.encode();
    expect(() => GCounter.decode(Uint8Array.from([9, ...ok.subarray(1)]))).toThrow(DecodeError);
    expect(() => GCounter.decode(Uint8Array.from([ok[0], CRDT_TYPE.PNCounter, ...ok.subarray(2)]))).toThrow(DecodeError);
    expect(() => GCounter.decode(Uint8Array.from([...ok, 0]))).toThrow(DecodeError);
    expect(() => GCounter.decode(Uint8Array.from([CODEC_VERSION, CRDT_TYPE.GCounter, 1, 1, 0x61, 0]))).toThrow(DecodeError);
    expect(() => GCounter.decode(Uint8Array.from([CODEC_VERSION, CRDT_TYPE.GCounter, 2, 1, 0x62, 1, 0x61, 1, 1]))).toThrow(DecodeError);
    expect(() => GCounter.decode(Uint8Array.from([CODEC_VERSION, CRDT_TYPE.GCounter, 0xff, 0xff, 0x7f]))).toThrow(DecodeError);
    expect(() => GCounter.decode('x' as unknown as Uint8Array)).toThrow(DecodeError);
  });
});
