import { describe, expect, it } from 'vitest';
import { TwoPSet } from '../../src/crdt/two-p-set.js';
import { DecodeError } from '../../src/errors.js';
import { type LawSpec, checkLaws, randomValue } from './laws.js';
import { checkMergeReportsExactly } from './merge-report.js';

const spec: LawSpec<TwoPSet> = {
  name: 'TwoPSet',
  make: (id) => new TwoPSet(id),
  randomOp: (rng, s) => {
    const present = s.values();
    if (present.length > 0 && rng.bool(0.35)) s.remove(rng.pick(present));
    else s.add(randomValue(rng));
  },
  decode: (b, id) => TwoPSet.decode(b, id),
  view: (s) => s.values(),
};

describe('crdt/two-p-set', () => {
  checkLaws(spec);
  checkMergeReportsExactly(spec);

  it('remove wins forever: a removed element never returns, locally or by merge', () => {
    const a = new TwoPSet<string>('a');
    const b = new TwoPSet<string>('b');
    a.add('vm-1');
    b.merge(a);
    expect(b.remove('vm-1')).toBe(true);
    // concurrent re-add on a (a has not seen the remove): the remove still wins after merge
    expect(a.add('vm-1')).toBe(false);
    a.merge(b);
    expect(a.has('vm-1')).toBe(false);
    expect(a.isRemoved('vm-1')).toBe(true);
    expect(a.add('vm-1')).toBe(false);
    expect(a.has('vm-1')).toBe(false);
    // a stale state that still holds the element does not bring it back
    const stale = new TwoPSet<string>('s');
    stale.add('vm-1');
    a.merge(stale);
    stale.merge(a);
    expect(a.has('vm-1')).toBe(false);
    expect(stale.has('vm-1')).toBe(false);
    expect(a.size).toBe(0);
    expect(a.encode()).toEqual(stale.encode());
  });

  it('remove of an element not present is a no-op (no pre-emptive tombstone)', () => {
    const a = new TwoPSet<string>('a');
    expect(a.remove('ghost')).toBe(false);
    expect(a.takeDelta()).toBeNull();
    expect(a.add('ghost')).toBe(true);
    expect(a.has('ghost')).toBe(true);
    expect(a.remove('ghost')).toBe(true);
    expect(a.remove('ghost')).toBe(false);
  });

  it('deltas carry removals', () => {
    const a = new TwoPSet<number>('a');
    const b = new TwoPSet<number>('b');
    a.add(1);
    a.add(2);
    b.merge(a.takeDelta()!);
    a.remove(1);
    const d = a.takeDelta()!;
    expect(d.isRemoved(1)).toBe(true);
    b.merge(TwoPSet.decode(d.encode()));
    expect(b.values()).toEqual([2]);
    expect(b.encode()).toEqual(a.encode());
  });

  it('decode rejects bad removed flags', () => {
    const a = new TwoPSet('a');
    a.add(1);
    const bytes = a.encode();
    bytes[bytes.length - 1] = 2;
    expect(() => TwoPSet.decode(bytes)).toThrow(DecodeError);
  });

  it('merge reports a change that only adds a removal, and no change for a subset', () => {
    const a = new TwoPSet<string>('a');
    const b = new TwoPSet<string>('b');
    expect(a.merge(b)).toBe(false);
    a.add('x');
    expect(b.merge(a)).toBe(true);
    expect(b.merge(a)).toBe(false);
    b.remove('x');
    const before = a.encode();
    // same elements on both sides: only the tombstone is new to a (one flag byte flips)
    expect(a.merge(b)).toBe(true);
    expect(a.encode()).not.toEqual(before);
    expect(a.encode().length).toBe(before.length);
    expect(a.has('x')).toBe(false);
    expect(a.merge(b)).toBe(false);
    // a state without the removal changes nothing: tombstones are kept
    const c = new TwoPSet<string>('c');
    c.add('x');
    expect(a.merge(c)).toBe(false);
    expect(a.merge(TwoPSet.decode(b.encode()))).toBe(false);
  });
});
