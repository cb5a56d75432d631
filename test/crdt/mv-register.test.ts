import { describe, expect, it } from 'vitest';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { checkLaws, randomValue } from './laws.js';

describe('crdt/mv-register', () => {
  checkLaws<MVRegister>({
    name: 'MVRegister',
    make: (id) => new MVRegister(id),
    randomOp: (rng, r) => r.set(rng.bool(0.5) ? rng.int(4) : randomValue(rng)),
    decode: (b, id) => MVRegister.decode(b, id),
    view: (r) => r.values(),
  });

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
});
