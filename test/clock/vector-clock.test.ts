import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VectorClock } from '../../src/clock/vector-clock.js';
import { ValidationError } from '../../src/errors.js';
import { DecodeError } from '../../src/errors.js';
import { backend, initSync, isWasmReady, useBackend } from '../../src/kernel/index.js';
import { loadWasmSync } from '../../src/kernel/node-load.js';
import { SEED, makeRng, mutate, runs } from '../crdt/laws.js';

const REPLICAS = ['a', 'b', 'c', 'd', 'node-us-east-1', 'ü', '\uFEFFbom-first'];
const clockArb = fc.dictionary(fc.constantFrom(...REPLICAS), fc.nat({ max: 6 }), { maxKeys: 6 });

function vc(rec: Record<string, number>, shuffleSeed = 0): VectorClock {
  const rng = makeRng(shuffleSeed);
  return VectorClock.from(rng.shuffle(Object.entries(rec)));
}

function reference(a: Record<string, number>, b: Record<string, number>): string {
  let less = false;
  let greater = false;
  for (const r of REPLICAS) {
    const x = a[r] ?? 0;
    const y = b[r] ?? 0;
    if (x < y) less = true;
    if (x > y) greater = true;
  }
  return less && greater ? 'concurrent' : less ? 'before' : greater ? 'after' : 'equal';
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('clock/vector-clock', () => {
  const opts = { seed: SEED, numRuns: runs(1000) };

  it('the constructor takes what VectorClock.from takes, and refuses anything else (ValidationError; RangeError for a bad counter)', () => {
    expect(new VectorClock({ p: 3, q: 1 }).toJSON()).toEqual({ p: 3, q: 1 });
    expect(new VectorClock(new Map([['p', 2]])).get('p')).toBe(2);
    expect(new VectorClock([['a', 1], ['b', 4]]).entries()).toEqual([['a', 1], ['b', 4]]);
    const src = new VectorClock({ z: 9 });
    const copy = new VectorClock(src);
    copy.increment('z');
    expect([src.get('z'), copy.get('z')]).toEqual([9, 10]);
    for (const bad of [5, 'p', true]) expect(() => new VectorClock(bad as never)).toThrow(ValidationError);
    for (const bad of [{ p: -1 }, { p: 1.5 }, { p: Number.NaN }]) expect(() => new VectorClock(bad)).toThrow(RangeError); // as set() does
  });

  it('increment, get, merge, compare on a small example', () => {
    const a = new VectorClock();
    const b = new VectorClock();
    expect(a.compare(b)).toBe('equal');
    a.increment('x');
    expect(a.get('x')).toBe(1);
    expect(a.get('nobody')).toBe(0);
    expect(b.compare(a)).toBe('before');
    expect(a.compare(b)).toBe('after');
    b.increment('y');
    expect(a.compare(b)).toBe('concurrent');
    a.merge(b);
    expect(a.entries()).toEqual([['x', 1], ['y', 1]]);
    expect(a.dominates(b)).toBe(true);
    expect(b.dominates(a)).toBe(false);
    expect(a.compare(b)).toBe('after');
    expect(a.toJSON()).toEqual({ x: 1, y: 1 });
  });

  it('compare and dominates agree with the pointwise definition (random clocks)', () => {
    fc.assert(
      fc.property(clockArb, clockArb, fc.integer(), (x, y, s) => {
        const a = vc(x, s);
        const b = vc(y, s + 1);
        expect(a.compare(b)).toBe(reference(x, y));
        expect(a.dominates(b)).toBe(['after', 'equal'].includes(reference(x, y)));
        // reads never change either clock
        expect(a.entries()).toEqual(vc(x).entries());
      }),
      opts,
    );
  });

  it('merge is the pointwise max: commutative, associative, idempotent, dominates both', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, fc.integer(), (x, y, z, s) => {
        const m = (...cs: VectorClock[]): VectorClock => {
          const out = cs[0].clone();
          for (const c of cs.slice(1)) out.merge(c);
          return out;
        };
        const [a, b, c] = [vc(x, s), vc(y, s + 1), vc(z, s + 2)];
        expect(hex(m(a, b).encode())).toBe(hex(m(b, a).encode()));
        expect(hex(m(m(a, b), c).encode())).toBe(hex(m(a, m(b, c)).encode()));
        expect(hex(m(a, a).encode())).toBe(hex(a.encode()));
        const ab = m(a, b);
        expect(ab.dominates(a) && ab.dominates(b)).toBe(true);
        for (const r of REPLICAS) expect(ab.get(r)).toBe(Math.max(x[r] ?? 0, y[r] ?? 0));
      }),
      opts,
    );
  });

  it('meet is the pointwise minimum, dominated by every input', () => {
    fc.assert(
      fc.property(fc.array(clockArb, { minLength: 1, maxLength: 5 }), (xs) => {
        const cs = xs.map((x) => vc(x));
        const m = VectorClock.meet(cs);
        for (const c of cs) expect(c.dominates(m)).toBe(true);
        for (const r of REPLICAS) expect(m.get(r)).toBe(Math.min(...xs.map((x) => x[r] ?? 0)));
      }),
      opts,
    );
    expect(VectorClock.meet([]).size).toBe(0);
  });

  it('encodes canonically (insertion order and zero entries do not matter) and round-trips', () => {
    fc.assert(
      fc.property(clockArb, fc.integer(), (x, s) => {
        const a = vc(x, s);
        const b = vc(x, s + 99);
        b.set('zero-entry', 0);
        expect(hex(a.encode())).toBe(hex(b.encode()));
        const back = VectorClock.decode(a.encode());
        expect(back.compare(a)).toBe('equal');
        expect(hex(back.encode())).toBe(hex(a.encode()));
      }),
      opts,
    );
  });

  it('10,000 mutated encodings give DecodeError or a valid clock', () => {
    const rng = makeRng(SEED);
    const corpus = Array.from({ length: 50 }, () => {
      const c = new VectorClock();
      for (let i = rng.int(8); i > 0; i--) c.set(rng.pick(REPLICAS), rng.int(2 ** rng.int(40)));
      return c.encode();
    });
    let rejected = 0;
    for (let k = 0; k < 10_000; k++) {
      const m = mutate(rng, rng.pick(corpus));
      try {
        const c = VectorClock.decode(m);
        expect(hex(VectorClock.decode(c.encode()).encode())).toBe(hex(c.encode()));
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('throws RangeError past MAX_SAFE_INTEGER and for bad set values, changing nothing', () => {
    const a = new VectorClock();
    a.set('r', Number.MAX_SAFE_INTEGER);
    expect(() => a.increment('r')).toThrow(RangeError);
    expect(a.get('r')).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => a.set('r', -1)).toThrow(RangeError);
    expect(() => a.set('r', 1.5)).toThrow(RangeError);
    expect(() => VectorClock.from({ x: NaN })).toThrow(RangeError);
  });

  it('wasm and js backends give identical results', () => {
    const prev = backend();
    if (!isWasmReady()) {
      const bytes = loadWasmSync();
      if (bytes === undefined) throw new Error('build/release.wasm missing: run `node scripts/build.mjs --no-types`');
      initSync(bytes);
    }
    try {
      fc.assert(
        fc.property(clockArb, clockArb, (x, y) => {
          const res: string[][] = [];
          for (const name of ['js', 'wasm'] as const) {
            useBackend(name);
            const a = vc(x);
            const b = vc(y);
            const cmp = a.compare(b);
            const dom = String(a.dominates(b));
            a.merge(b);
            res.push([cmp, dom, hex(a.encode())]);
          }
          expect(res[1]).toEqual(res[0]);
        }),
        { seed: SEED, numRuns: runs(300, 5000) },
      );
    } finally {
      useBackend(prev);
    }
  });
});
