import { describe, expect, it } from 'vitest';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { DecodeError } from '../../src/errors.js';
import { checkLaws } from './laws.js';

describe('crdt/pn-counter', () => {
  checkLaws({
    name: 'PNCounter',
    make: (id) => new PNCounter(id),
    randomOp: (rng, c) => {
      const roll = rng.int(3);
      if (roll === 0) c.increment(rng.int(100) - 50);
      else if (roll === 1) c.decrement(rng.int(10));
      else c.increment(1);
    },
    decode: (b, id) => PNCounter.decode(b, id),
    view: (c) => c.value(),
  });

  it('adds increments and subtracts decrements across replicas', () => {
    const a = new PNCounter('a');
    const b = new PNCounter('b');
    a.increment(10);
    a.decrement(3);
    b.increment(-5);
    b.decrement();
    b.increment(); // default 1, as GCounter's
    a.merge(b);
    b.merge(a);
    expect(a.value()).toBe(2);
    expect(b.value()).toBe(2);
    expect(PNCounter.decode(a.encode()).value()).toBe(2);
  });

  it('rejects bad amounts with RangeError and changes nothing', () => {
    const a = new PNCounter('a');
    a.increment(2);
    const before = a.encode();
    for (const bad of [1.5, NaN, Infinity, -Infinity, -0.5]) expect(() => a.increment(bad)).toThrow(RangeError);
    for (const bad of [-1, 1.5, NaN]) expect(() => a.decrement(bad)).toThrow(RangeError);
    expect(a.encode()).toEqual(before);
  });

  it('throws RangeError when either side would pass MAX_SAFE_INTEGER, changing nothing', () => {
    const a = new PNCounter('a');
    a.increment(Number.MAX_SAFE_INTEGER);
    a.decrement(Number.MAX_SAFE_INTEGER);
    expect(a.value()).toBe(0);
    const before = a.encode();
    expect(() => a.increment(1)).toThrow(RangeError);
    expect(() => a.decrement(1)).toThrow(RangeError);
    expect(() => a.increment(-1)).toThrow(RangeError);
    expect(a.encode()).toEqual(before);

    const x = new PNCounter('x');
    x.decrement(2 ** 52);
    const y = new PNCounter('y');
    y.decrement(2 ** 52);
    expect(() => x.merge(y)).toThrow(RangeError);
    expect(x.value()).toBe(-(2 ** 52));
  });

  it('keeps exact values near the limits', () => {
    const a = new PNCounter('a');
    const b = new PNCounter('b');
    a.increment(Number.MAX_SAFE_INTEGER - 10);
    b.decrement(Number.MAX_SAFE_INTEGER - 20);
    a.merge(b);
    expect(a.value()).toBe(10);
    a.increment(10);
    expect(a.value()).toBe(20);
  });

  it('decode rejects a GCounter encoding', () => {
    const a = new PNCounter('a');
    a.increment(1);
    const bytes = a.encode();
    bytes[1] = 1;
    expect(() => PNCounter.decode(bytes)).toThrow(DecodeError);
  });
});
