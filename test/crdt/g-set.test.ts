import { describe, expect, it } from 'vitest';
import { GSet } from '../../src/crdt/g-set.js';
import { DecodeError, ValidationError } from '../../src/errors.js';
import { type LawSpec, checkLaws, randomValue } from './laws.js';
import { checkMergeReportsExactly } from './merge-report.js';

const spec: LawSpec<GSet> = {
  name: 'GSet',
  make: (id) => new GSet(id),
  randomOp: (rng, s) => {
    s.add(randomValue(rng));
  },
  decode: (b, id) => GSet.decode(b, id),
  view: (s) => s.values(),
};

describe('crdt/g-set', () => {
  checkLaws(spec);
  checkMergeReportsExactly(spec);

  it('adds, unions and never loses an element', () => {
    const a = new GSet<string>('a');
    const b = new GSet<string>('b');
    expect(a.add('x')).toBe(true);
    expect(a.add('x')).toBe(false);
    b.add('y');
    a.merge(b);
    expect(a.has('x') && a.has('y')).toBe(true);
    expect(a.size).toBe(2);
    expect(a.values()).toEqual(['x', 'y']);
  });

  it('uses canonical value bytes as identity (object key order does not matter)', () => {
    const a = new GSet('a');
    a.add({ b: 1, a: 2 });
    expect(a.has({ a: 2, b: 1 })).toBe(true);
    expect(a.add({ a: 2, b: 1 })).toBe(false);
    expect(a.size).toBe(1);
    expect(a.has({ a: 2 })).toBe(false);
  });

  it('rejects values msgpack cannot carry, changing nothing', () => {
    const a = new GSet('a');
    expect(() => a.add(10n)).toThrow(ValidationError);
    expect(() => a.add(new Map())).toThrow(ValidationError);
    expect(a.size).toBe(0);
  });

  it('decode rejects duplicate or unsorted elements and bad msgpack', () => {
    const a = new GSet('a');
    a.add(1);
    a.add(2);
    const ok = a.encode(); // [ver, tag, 2, 1, 0x01, 1, 0x02]
    expect(GSet.decode(ok).values()).toEqual([1, 2]);
    const dup = Uint8Array.from([ok[0], ok[1], 2, 1, 0x01, 1, 0x01]);
    expect(() => GSet.decode(dup)).toThrow(DecodeError);
    const unsorted = Uint8Array.from([ok[0], ok[1], 2, 1, 0x02, 1, 0x01]);
    expect(() => GSet.decode(unsorted)).toThrow(DecodeError);
    const badValue = Uint8Array.from([ok[0], ok[1], 1, 1, 0xc1]);
    expect(() => GSet.decode(badValue)).toThrow(DecodeError);
    const truncatedValue = Uint8Array.from([ok[0], ok[1], 1, 1, 0xa3]);
    expect(() => GSet.decode(truncatedValue)).toThrow(DecodeError);
  });

  it('merge reports whether an element was new', () => {
    const a = new GSet<number>('a');
    const b = new GSet<number>('b');
    expect(a.merge(b)).toBe(false);
    b.add(1);
    b.add(2);
    expect(a.merge(b)).toBe(true);
    expect(a.merge(b)).toBe(false);
    a.add(3);
    expect(a.merge(b)).toBe(false); // a subset
    expect(b.merge(a)).toBe(true);
    expect(b.merge(GSet.decode(a.encode()))).toBe(false);
  });
});

describe('GSet element records', () => {
  it('reads the same values on the writer and on a decoded copy (-0, objects mutated after add, binary)', () => {
    const s = new GSet<unknown>('a');
    const obj = { n: 1, list: [1, 2] };
    const bin = new Uint8Array([1, 2, 3]);
    for (const v of [-0, 'x', 1.5, null, true, obj, bin]) s.add(v);
    obj.n = 2;
    obj.list.push(3);
    bin[0] = 9;
    const back = GSet.decode<unknown>(s.encode(), 'b');
    expect(s.values()).toEqual(back.values());
    expect(s.values()).toContainEqual({ n: 1, list: [1, 2] });
    expect(s.values()).toContainEqual(new Uint8Array([1, 2, 3]));
    expect(s.values().some((v) => Object.is(v, -0))).toBe(false);
    // a value read from a decoded set does not alias the input bytes
    const input = s.encode();
    const d = GSet.decode<unknown>(input, 'c');
    input.fill(0);
    expect(d.values()).toEqual(back.values());
  });
});

describe('GSet strings with lone surrogates', () => {
  it('reads on the writer what a decoded copy reads', () => {
    const s = new GSet<string>('a');
    s.add('a\uD800b');
    s.add('\uDC00');
    s.add('fine');
    expect(s.values()).toEqual(GSet.decode<string>(s.encode(), 'b').values());
  });
});
