import { describe, expect, it } from 'vitest';
import { ORSet } from '../../src/crdt/or-set.js';
import { CausalContext } from '../../src/crdt/causal-context.js';
import { DecodeError } from '../../src/errors.js';
import { type LawSpec, checkLaws, randomValue } from './laws.js';
import { checkMergeReportsExactly } from './merge-report.js';

const pool = [1, 2, 3, 'a', 'b', { k: 1 }, [1, 2], null, true];

const spec: LawSpec<ORSet> = {
  name: 'ORSet',
  make: (id) => new ORSet(id),
  randomOp: (rng, s) => {
    const roll = rng.float();
    if (roll < 0.55) s.add(rng.bool(0.8) ? rng.pick(pool) : randomValue(rng));
    else if (roll < 0.9) s.remove(rng.pick(pool));
    else {
      const vs = s.values();
      if (vs.length > 0) s.remove(rng.pick(vs));
    }
  },
  decode: (b, id) => ORSet.decode(b, id),
  view: (s) => s.values(),
};

/**
 * Replicas that already made about 2^24 ops (their own counter starts just below it, as after 16.7M adds): the
 * histories cross from dots packed as `replica * 2^24 + counter` to the wide packing and then to arrays.
 */
const specHigh: LawSpec<ORSet> = {
  ...spec,
  name: 'ORSet (counters past 2^24)',
  make: (id) => {
    const s = new ORSet(id);
    const inner = s as unknown as { ctx: CausalContext; merged: CausalContext | undefined };
    inner.ctx.vv[0] = 2 ** 24 - 8; // the replica's own index: as if it had made that many ops
    inner.merged = inner.ctx.clone(); // and its next delta carries them, as the deltas of those ops would have
    return s;
  },
};

describe('crdt/or-set', () => {
  checkLaws(spec);
  checkMergeReportsExactly(spec);
  checkLaws(specHigh);

  it('dots past 2^24 stay packed small integers for the first replicas, and arrays beyond them', () => {
    const s = specHigh.make('r1');
    const dots = (x: ORSet) => (x as unknown as { strsMap: Map<string, unknown> }).strsMap;
    for (let i = 0; i < 20; i++) s.add(`e${i}`); // counters 2^24 - 7 .. 2^24 + 12
    expect([...dots(s).values()].every((d) => typeof d === 'number')).toBe(true);
    expect([...dots(s).values()].some((d) => (d as number) < 0)).toBe(true); // the wide packing
    const back = ORSet.decode<string>(s.encode(), 'r1');
    expect(back.encode()).toEqual(s.encode());
    expect(back.values().sort()).toEqual(s.values().sort());
    // a fifth replica's counter past 2^24 does not pack: an array, the same state
    const many = ['a', 'b', 'c', 'd'].map((id) => {
      const x = new ORSet<string>(id);
      x.add(id);
      return x;
    });
    const t = specHigh.make('z') as ORSet<string>;
    for (const x of many) t.merge(x);
    t.add('late');
    const late = dots(t).get(Array.from(dots(t).keys()).find((k) => k.endsWith('late'))!);
    expect(Array.isArray(late) || typeof late === 'number').toBe(true);
    const u = ORSet.decode<string>(t.encode(), 'u');
    expect(u.values().sort()).toEqual(['a', 'b', 'c', 'd', 'late']);
    u.remove('late');
    t.merge(u);
    expect(t.has('late')).toBe(false);
  });

  it('add wins over a concurrent remove', () => {
    const a = new ORSet<string>('a');
    const b = new ORSet<string>('b');
    a.add('x');
    b.merge(a);
    b.remove('x'); // b removes the add it observed
    a.add('x'); // a adds again concurrently
    a.merge(b);
    b.merge(a);
    expect(a.has('x')).toBe(true);
    expect(b.has('x')).toBe(true);
    expect(a.encode()).toEqual(b.encode());
  });

  it('removing an observed element removes it everywhere, and it can come back', () => {
    const a = new ORSet<number>('a');
    const b = new ORSet<number>('b');
    a.add(1);
    a.add(2);
    b.merge(a);
    b.remove(1);
    a.merge(b);
    expect(a.values()).toEqual([2]);
    expect(a.size).toBe(1);
    a.add(1);
    b.merge(a);
    expect(b.values()).toEqual([1, 2]);
  });

  it('equal values are one element whatever their key order; removes keep no tombstone', () => {
    const a = new ORSet<Record<string, number>>('a');
    a.add({ x: 1, y: 2 });
    a.add({ y: 2, x: 1 });
    expect(a.size).toBe(1);
    const before = a.encode().length;
    for (let i = 0; i < 100; i++) {
      a.add({ i } as never);
      a.remove({ i } as never);
    }
    expect(a.size).toBe(1);
    // the context stays compact (own dots contiguous), so removed elements cost no bytes
    expect(a.encode().length).toBeLessThanOrEqual(before + 2);
  });

  it('concurrent adds of one element from two replicas both need removing', () => {
    const a = new ORSet<string>('a');
    const b = new ORSet<string>('b');
    const c = new ORSet<string>('c');
    a.add('x');
    b.add('x');
    c.merge(a); // c saw only a's add
    c.remove('x');
    c.merge(b);
    expect(c.has('x')).toBe(true); // b's add was not observed
    c.remove('x');
    a.merge(c);
    b.merge(c);
    expect(a.has('x')).toBe(false);
    expect(b.has('x')).toBe(false);
  });

  it('rejects non-canonical element bytes and unsorted elements', () => {
    const a = new ORSet<unknown>('a');
    a.add({ b: 1, a: 2 });
    const bytes = a.encode();
    // the canonical bytes of {a:2,b:1} are 0x82 a1 'a' 02 a1 'b' 01; swap the pairs
    const hex = Buffer.from(bytes).toString('hex');
    const canon = '82a16102a16201';
    expect(hex).toContain(canon);
    const swapped = Buffer.from(hex.replace(canon, '82a16201a16102'), 'hex');
    expect(() => ORSet.decode(new Uint8Array(swapped))).toThrow(DecodeError);
    const two = new ORSet<number>('a');
    two.add(1);
    two.add(2);
    const h2 = Buffer.from(two.encode()).toString('hex');
    // elements 01 and 02 (length 1, byte, dot count 1, replica 0, counter 1 / 2): swap them
    expect(h2).toContain('01010100010102010002');
    const swapped2 = Buffer.from(h2.replace('01010100010102010002', '01020100020101010001'), 'hex');
    expect(() => ORSet.decode(new Uint8Array(swapped2))).toThrow(DecodeError);
  });

  it('a delta after a merge carries the merged elements', () => {
    const a = new ORSet<number>('a');
    const b = new ORSet<number>('b');
    b.add(7);
    a.add(1);
    a.takeDelta();
    a.merge(b);
    const c = new ORSet<number>('c');
    c.merge(a.takeDelta()!);
    expect(c.values()).toEqual([7]);
    expect(a.takeDelta()).toBeNull();
  });

  it('merge reports a change that only grows the causal context, and one that only drops a dot', () => {
    // b added and removed x: its state has no element, only a context a has not seen
    const a = new ORSet<string>('a');
    const b = new ORSet<string>('b');
    b.add('x');
    b.remove('x');
    const before = Buffer.from(a.encode()).toString('hex');
    expect(a.merge(b)).toBe(true);
    expect(a.size).toBe(0);
    expect(Buffer.from(a.encode()).toString('hex')).not.toBe(before);
    expect(a.merge(b.clone())).toBe(false);
    // c removed an add it observed: same context as d, so the merge only drops d's dot
    const c = new ORSet<string>('c');
    const d = new ORSet<string>('d');
    d.add('y');
    c.merge(d);
    c.remove('y');
    expect(c.ctx.toString()).toContain('d:1');
    const dBefore = d.encode();
    expect(d.merge(c)).toBe(true);
    expect(d.has('y')).toBe(false);
    expect(d.encode()).not.toEqual(dBefore);
    expect(d.merge(c)).toBe(false);
  });

  it('merge reports nothing new from a stale snapshot, a subset delta or itself', () => {
    const a = new ORSet<number>('a');
    const b = new ORSet<number>('b');
    b.add(1);
    const old = b.clone();
    b.add(2);
    const delta = b.takeDelta()!;
    expect(a.merge(b)).toBe(true);
    expect(a.merge(old)).toBe(false);
    expect(a.merge(delta)).toBe(false);
    expect(a.merge(ORSet.decode(b.encode()))).toBe(false);
    expect(a.merge(a)).toBe(false);
    // a concurrent add of an element a already has brings a new dot: a change
    const c = new ORSet<number>('c');
    c.add(1);
    expect(a.merge(c)).toBe(true);
    expect(a.values()).toEqual([1, 2]);
  });
});

describe('ORSet.discardDelta', () => {
  it('drops what takeDelta would return after a merge, and leaves the state alone', () => {
    const a = new ORSet<string>('a');
    a.add('x');
    a.add('y');
    a.remove('y');
    const b = new ORSet<string>('b');
    b.merge(a);
    const reference = b.clone();
    expect(reference.takeDelta()).not.toBeNull();
    b.discardDelta();
    expect(b.takeDelta()).toBeNull();
    expect(b.encode()).toEqual(reference.encode());
    b.add('z');
    expect(b.takeDelta()!.values()).toEqual(['z']);
  });
});
