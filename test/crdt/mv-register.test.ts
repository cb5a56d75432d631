import { describe, expect, it } from 'vitest';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { type LawSpec, checkLaws, randomValue } from './laws.js';
import { checkMergeReportsExactly } from './merge-report.js';

const spec: LawSpec<MVRegister> = {
  name: 'MVRegister',
  make: (id) => new MVRegister(id),
  randomOp: (rng, r) => r.set(rng.bool(0.5) ? rng.int(4) : randomValue(rng)),
  decode: (b, id) => MVRegister.decode(b, id),
  view: (r) => r.values(),
};

describe('crdt/mv-register', () => {
  checkLaws(spec);
  checkMergeReportsExactly(spec);

  it('keeps both concurrent values, and a later causal set replaces them', () => {
    const a = new MVRegister<string>('a');
    const b = new MVRegister<string>('b');
    a.set('x');
    b.set('y');
    a.merge(b);
    b.merge(a);
    expect(a.values()).toEqual(['x', 'y']);
    expect(b.values()).toEqual(['x', 'y']);
    b.set('z');
    a.merge(b);
    expect(a.values()).toEqual(['z']);
    expect(a.encode()).toEqual(b.encode());
  });

  it('a set replaces only what it observed', () => {
    const a = new MVRegister<number>('a');
    const b = new MVRegister<number>('b');
    const c = new MVRegister<number>('c');
    a.set(1);
    b.merge(a);
    b.set(2); // replaces 1
    c.set(3); // concurrent with both
    a.merge(c);
    a.merge(b);
    expect(a.values()).toEqual([2, 3]);
  });

  it('equal concurrent values are listed once; an empty register lists nothing', () => {
    const a = new MVRegister<string>('a');
    expect(a.values()).toEqual([]);
    expect(a.takeDelta()).toBeNull();
    const b = new MVRegister<string>('b');
    a.set('same');
    b.set('same');
    a.merge(b);
    expect(a.values()).toEqual(['same']);
    expect(MVRegister.decode(a.encode()).values()).toEqual(['same']);
  });

  it('merge reports a change exactly: new concurrent value, replaced values, stale or repeated states', () => {
    const a = new MVRegister<string>('a');
    const b = new MVRegister<string>('b');
    expect(a.merge(b)).toBe(false); // both empty
    a.set('x');
    b.set('y');
    const bOld = b.clone();
    expect(a.merge(b)).toBe(true); // a concurrent value joins
    expect(a.merge(b)).toBe(false);
    expect(a.merge(a)).toBe(false);
    expect(b.merge(a)).toBe(true);
    b.set('z'); // replaces both observed values
    expect(a.merge(b)).toBe(true);
    expect(a.values()).toEqual(['z']);
    expect(a.merge(bOld)).toBe(false); // a stale state: its dots are all seen and its values replaced
    expect(a.merge(MVRegister.decode(b.encode()))).toBe(false);
  });

  it('merge reports a change that only grows the causal context (same values, more dots seen)', () => {
    const a = new MVRegister<string>('a');
    const b = new MVRegister<string>('b');
    b.set('y'); // dot b:1
    a.merge(b);
    a.set('z'); // dot a:1, replaces b:1: a's context is {a:1, b:1}
    // c holds the same dotted value a:1 = 'z' but has never seen b:1
    const twin = new MVRegister<string>('a');
    twin.set('z');
    const c = new MVRegister<string>('c');
    c.merge(twin);
    const before = c.encode();
    expect(c.merge(a)).toBe(true);
    expect(c.values()).toEqual(['z']);
    expect(c.encode()).not.toEqual(before);
    expect(c.encode()).toEqual(a.encode());
    expect(c.merge(a)).toBe(false);
    expect(c.merge(twin)).toBe(false);
    expect(c.merge(b)).toBe(false); // b's value was replaced by a write c has seen
  });
});

describe('MVRegister values are the reader\'s own', () => {
  it('writing into a Uint8Array from values() changes neither the register nor its encoding', () => {
    const r = new MVRegister<unknown>('a');
    r.set(new Uint8Array([1, 2, 3]));
    const before = Buffer.from(r.encode()).toString('hex');
    (r.values()[0] as Uint8Array)[0] = 9;
    expect(Buffer.from(r.encode()).toString('hex')).toBe(before);
    const d = MVRegister.decode<unknown>(r.encode());
    (d.values()[0] as Uint8Array)[1] = 7;
    expect(Buffer.from(d.encode()).toString('hex')).toBe(before);
    expect(d.values()).toStrictEqual([new Uint8Array([1, 2, 3])]);
  });
});
