import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Reader, Writer } from '../../src/codec/binary.js';
import { CausalContext, DotList, SMALL_DOTS, assertDistinctDots, rangesAdd, rangesHave } from '../../src/crdt/causal-context.js';
import { DecodeError } from '../../src/errors.js';
import { makeRng, runs, SEED } from './laws.js';

/** A reference model: a plain set of "id:counter" strings. */
function model(dots: [string, number][]): Set<string> {
  return new Set(dots.map(([r, c]) => `${r}:${c}`));
}

function build(dots: [string, number][]): CausalContext {
  const c = new CausalContext();
  for (const [r, n] of dots) c.add(c.intern(r), n);
  return c;
}

function encode(c: CausalContext): Uint8Array {
  const w = new Writer();
  c.write(w);
  return w.finish();
}

function decode(bytes: Uint8Array): CausalContext {
  const c = new CausalContext();
  const rd = new Reader(bytes);
  c.read(rd);
  rd.done();
  return c;
}

const dotArb = fc.tuple(fc.constantFrom('a', 'b', 'c', 'zz'), fc.integer({ min: 1, max: 40 }));
const opts = { seed: SEED, numRuns: runs(500) };

describe('crdt/causal-context', () => {
  it(`has() agrees with a set model; the vector absorbs contiguous dots (${opts.numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.array(dotArb, { maxLength: 60 }), (dots) => {
        const c = build(dots);
        const m = model(dots);
        for (const r of ['a', 'b', 'c', 'zz']) {
          const i = c.lookup(r);
          for (let n = 1; n <= 42; n++) expect(i >= 0 && c.has(i, n)).toBe(m.has(`${r}:${n}`));
          if (i >= 0) {
            // compaction: the cloud never starts right after the vector
            let v = 0;
            while (m.has(`${r}:${v + 1}`)) v++;
            expect(c.vv[i]).toBe(v);
            const cl = c.cloud[i];
            if (cl !== undefined) {
              expect(cl.length).toBeGreaterThan(0);
              expect(cl[0]).toBeGreaterThanOrEqual(v + 2);
              for (let k = 2; k < cl.length; k += 2) expect(cl[k]).toBeGreaterThanOrEqual(cl[k - 1] + 2);
            }
          }
        }
      }),
      opts,
    );
  });

  it(`merge is set union, and the encoding is canonical (${opts.numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.array(dotArb, { maxLength: 40 }), fc.array(dotArb, { maxLength: 40 }), (x, y) => {
        const a = build(x);
        const b = build(y);
        const ab = a.clone();
        ab.absorb(b);
        const ba = b.clone();
        ba.absorb(a);
        const both = build([...y, ...x]);
        expect(Buffer.from(encode(ab)).toString('hex')).toBe(Buffer.from(encode(both)).toString('hex'));
        expect(Buffer.from(encode(ba)).toString('hex')).toBe(Buffer.from(encode(both)).toString('hex'));
        const back = decode(encode(ab));
        expect(Buffer.from(encode(back)).toString('hex')).toBe(Buffer.from(encode(ab)).toString('hex'));
        const m = model([...x, ...y]);
        for (const [r, n] of [...x, ...y]) expect(back.hasId(r, n)).toBe(m.has(`${r}:${n}`));
      }),
      opts,
    );
  });

  it(`sharedCount() is the size of the intersection of the two dot sets (${opts.numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.array(dotArb, { maxLength: 60 }), fc.array(dotArb, { maxLength: 60 }), (xs, ys) => {
        const a = build(xs), b = build(ys);
        const mb = model(ys);
        const both = [...model(xs)].filter((d) => mb.has(d)).length;
        expect(a.sharedCount(b, a.mapFrom(b))).toBe(both);
      }),
      opts,
    );
  });

  it('interns ids in first-seen order below and above the size where it starts a Map index (seeded)', () => {
    const rng = makeRng(SEED);
    for (let run = 0; run < 50; run++) {
      const c = new CausalContext();
      const order: string[] = [];
      const n = 1 + rng.int(30);
      for (let k = 0; k < 4 * n; k++) {
        const id = `r${rng.int(n)}`;
        if (!order.includes(id)) order.push(id);
        expect(c.intern(id), `seed ${SEED} run ${run}`).toBe(order.indexOf(id));
        c.add(c.lookup(id), k + 1);
        // every id seen so far is found, an unseen one is not
        for (let i = 0; i < order.length; i++) expect(c.lookup(order[i])).toBe(i);
        expect(c.lookup(`x${k}`)).toBe(-1);
        expect(c.hasId(id, k + 1)).toBe(true);
        expect(c.hasId(`x${k}`, 1)).toBe(false);
      }
      expect(c.ids).toEqual(order);
      // the encoding round-trips and the copy finds the same ids
      const back = decode(encode(c));
      expect(encode(back)).toEqual(encode(c));
      for (const id of order) expect(back.ids[back.lookup(id)]).toBe(id);
      const copy = c.clone();
      for (let i = 0; i < order.length; i++) expect(copy.lookup(order[i])).toBe(i);
    }
  });

  it('next() issues one past everything seen from the replica', () => {
    const c = new CausalContext();
    const a = c.intern('a');
    expect(c.next(a)).toBe(1);
    expect(c.next(a)).toBe(2);
    c.add(a, 10);
    expect(c.next(a)).toBe(11);
    expect(c.has(a, 5)).toBe(false);
    expect(c.isEmpty()).toBe(false);
    expect(new CausalContext().isEmpty()).toBe(true);
  });

  it('a huge range encodes in a few bytes and never expands into memory', () => {
    const c = new CausalContext();
    const r = c.intern('r');
    c.add(r, 5);
    const cl = [6, 2 ** 50];
    rangesAdd(c.cloud[r]!, cl[0], cl[1]);
    const bytes = encode(c);
    expect(bytes.length).toBeLessThan(20);
    const back = decode(bytes);
    expect(back.hasId('r', 2 ** 49)).toBe(true);
    expect(back.hasId('r', 3)).toBe(false);
    expect(back.cloud[back.lookup('r')]!.length).toBe(2);
  });

  it('range lists stay sorted, maximal and non-adjacent', () => {
    const rng = makeRng(SEED);
    for (let k = 0; k < 200; k++) {
      const cl: number[] = [];
      const set = new Set<number>();
      for (let i = 0; i < 30; i++) {
        const s = 1 + rng.int(60);
        const e = s + rng.int(4);
        rangesAdd(cl, s, e);
        for (let x = s; x <= e; x++) set.add(x);
      }
      for (let x = 0; x < 70; x++) expect(rangesHave(cl, x)).toBe(set.has(x));
      for (let i = 2; i < cl.length; i += 2) expect(cl[i]).toBeGreaterThan(cl[i - 1] + 1);
    }
  });

  it('decode rejects unsorted or duplicate replicas, empty entries and truncation', () => {
    const w = new Writer();
    w.varuint(2);
    w.string('b');
    w.varuint(1);
    w.varuint(0);
    w.string('a');
    w.varuint(1);
    w.varuint(0);
    expect(() => decode(w.finish())).toThrow(DecodeError);
    const e = new Writer();
    e.varuint(1);
    e.string('a');
    e.varuint(0);
    e.varuint(0);
    expect(() => decode(e.finish())).toThrow(DecodeError);
    const ok = encode(build([['a', 1], ['a', 5], ['b', 2]]));
    for (let n = 0; n < ok.length; n++) expect(() => decode(ok.subarray(0, n))).toThrow(DecodeError);
    const huge = new Writer();
    huge.varuint(1e9);
    expect(() => decode(huge.finish())).toThrow(DecodeError);
  });

  it('DotList sorts into kernel order (key hash unsigned, replica, counter) on both paths', () => {
    const rng = makeRng(SEED ^ 99);
    for (const wide of [false, true]) {
      const l = new DotList(4);
      for (let i = 0; i < 300; i++) l.push(rng.int(20), wide ? rng.u32() % 3 === 0 ? 0xffffffff : 0 : 0, rng.int(3), 1 + rng.int(5), i);
      l.sort();
      for (let i = 1; i < l.n; i++) {
        const a = [l.keys[2 * i - 1], l.keys[2 * i - 2], l.replicas[i - 1], l.counters[i - 1]];
        const b = [l.keys[2 * i + 1], l.keys[2 * i], l.replicas[i], l.counters[i]];
        let cmp = 0;
        for (let k = 0; k < 4 && cmp === 0; k++) cmp = a[k] === b[k] ? 0 : a[k] < b[k] ? -1 : 1;
        expect(cmp).toBeLessThanOrEqual(0);
      }
    }
  });
});

describe('assertDistinctDots', () => {
  it('throws exactly when two dots are equal, below and above the pairwise cut-off (seeded)', () => {
    const rng = makeRng(SEED ^ 0xd15);
    for (let run = 0; run < 400; run++) {
      const n = 2 + rng.int(2 * SMALL_DOTS);
      const width = 1 + rng.int(4);
      const shift = rng.int(2) === 0 ? 0 : 3;
      const reps = new Uint32Array(n), ctrs = new Float64Array(n);
      const seen = new Set<string>();
      let dup = false;
      for (let i = 0; i < n; i++) {
        const r = rng.int(width), c = 1 + rng.int(rng.int(2) === 0 ? 3 * n : 2 ** 40);
        reps[i] = (r << shift) | (shift ? rng.int(8) : 0); // low bits (a kind) must not count
        ctrs[i] = c;
        const k = `${r}:${c}`;
        if (seen.has(k)) dup = true;
        seen.add(k);
      }
      const label = `seed ${SEED ^ 0xd15} run ${run} n ${n}`;
      const plain = [Array.from(reps), Array.from(ctrs)] as const;
      for (const [rs, cs] of [[reps, ctrs], plain] as const) {
        if (dup) expect(() => assertDistinctDots(rs, shift, cs, n, width), label).toThrow(/share a dot/);
        else expect(() => assertDistinctDots(rs, shift, cs, n, width), label).not.toThrow();
      }
    }
  });
});
