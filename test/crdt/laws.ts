/**
 * Reusable law-test harness for state-based CRDTs (any type implementing `Crdt` from src/crdt/types.ts).
 *
 *   describe('GCounter', () => {
 *     checkLaws({
 *       name: 'GCounter',
 *       make: (id) => new GCounter(id),
 *       randomOp: (rng, c) => c.increment(rng.int(5)),
 *       decode: (bytes, id) => GCounter.decode(bytes, id),
 *       view: (c) => c.value(),
 *     });
 *   });
 *
 * `checkLaws` declares vitest tests (call it inside a `describe`): merge commutative, associative and
 * idempotent on random op histories across 3 replicas, convergence of 5 replicas under random merge orders
 * with duplicates and stale snapshots, delta equivalence (a shuffled, duplicated stream of `takeDelta()`
 * results, each round-tripped through encode/decode, gives the same bytes as merging the full state), encode
 * round trip, decode fuzz (mutated and truncated encodings give `DecodeError` or a valid state), and
 * byte-identical encodings on the wasm and js kernel backends.
 *
 * Randomness: fast-check drives every property with `seed` (env SEED, default below) and hands each run a
 * 32-bit seed for the small PRNG that builds the history, so a failure prints the fast-check seed and path
 * that replay it. Run counts: `runs` (default 500 per law) or `longRuns` (default 20,000) when env LONG is set.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import type { Crdt } from '../../src/crdt/types.js';
import { CrdtError, DecodeError } from '../../src/errors.js';
import { backend, initSync, isWasmReady, useBackend } from '../../src/kernel/index.js';
import { loadWasmSync } from '../../src/kernel/node-load.js';

export const SEED = Number(process.env.SEED ?? 0x5eed5);
export const LONG = Boolean(process.env.LONG);

/** `base` normally, `long` when LONG is set. */
export function runs(base: number, long = 20_000): number {
  return LONG ? Math.max(base, long) : base;
}

/** A small seeded PRNG (sfc32). */
export interface Rng {
  /** uniform uint32 */
  u32(): number;
  /** uniform float in [0, 1) */
  float(): number;
  /** uniform integer in [0, n) */
  int(n: number): number;
  /** true with probability p */
  bool(p?: number): boolean;
  pick<T>(xs: readonly T[]): T;
  shuffle<T>(xs: T[]): T[];
}

export function makeRng(seed: number): Rng {
  let a = 0x9e3779b9 ^ seed,
    b = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b),
    c = 0xb7e15162,
    d = 1;
  const u32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) u32();
  const rng: Rng = {
    u32,
    float: () => u32() / 4294967296,
    int: (n) => Math.floor((u32() / 4294967296) * n),
    bool: (p = 0.5) => u32() / 4294967296 < p,
    pick: (xs) => xs[Math.floor((u32() / 4294967296) * xs.length)],
    shuffle: (xs) => {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = Math.floor((u32() / 4294967296) * (i + 1));
        [xs[i], xs[j]] = [xs[j], xs[i]];
      }
      return xs;
    },
  };
  return rng;
}

/** Random msgpack-able values with plenty of collisions between replicas. */
export function randomValue(rng: Rng): unknown {
  switch (rng.int(7)) {
    case 0:
      return rng.int(20);
    case 1:
      return `s${rng.int(20)}`;
    case 2:
      return rng.bool();
    case 3:
      return null;
    case 4:
      return { id: rng.int(5), tags: [rng.int(3)] };
    case 5:
      return [rng.int(4), `x${rng.int(3)}`];
    default:
      return rng.int(1000) / 8;
  }
}

export interface LawSpec<C extends Crdt<C>> {
  name: string;
  /** A fresh replica. `rng` may seed injected clocks (e.g. an HLC on a random virtual time). */
  make(replicaId: string, rng: Rng): C;
  /** Apply one random local mutation to `crdt`. */
  randomOp(rng: Rng, crdt: C): void;
  decode(bytes: Uint8Array, replicaId: string): C;
  /** Observable value for round-trip checks (default: none). */
  view?(crdt: C): unknown;
  /** Runs per law (default runs(500)). */
  runs?: number;
  /** Max local ops per replica history step count (default 24). */
  maxSteps?: number;
  /** Mutated encodings in the decode fuzz (default 10,000; LONG: 50,000). */
  fuzzCount?: number;
}

function bytesOf<C extends Crdt<C>>(c: C): Uint8Array {
  return c.encode();
}

function merged<C extends Crdt<C>>(a: C, ...others: C[]): C {
  const x = a.clone();
  for (const o of others) x.merge(o);
  return x;
}

/**
 * A random history over `n` replicas: local ops interleaved with merges (some from stale snapshots), so the
 * states share causal history the way real replicas do.
 */
export function randomHistory<C extends Crdt<C>>(spec: LawSpec<C>, rng: Rng, n: number, steps = spec.maxSteps ?? 24): C[] {
  const reps = Array.from({ length: n }, (_, i) => spec.make(`r${i}`, rng));
  const snapshots: C[] = [];
  const total = 1 + rng.int(steps);
  for (let s = 0; s < total; s++) {
    const i = rng.int(n);
    const roll = rng.float();
    if (roll < 0.7) spec.randomOp(rng, reps[i]);
    else if (roll < 0.9) reps[i].merge(reps[rng.int(n)]);
    else if (snapshots.length > 0) reps[i].merge(rng.pick(snapshots));
    if (rng.bool(0.2)) snapshots.push(reps[rng.int(n)].clone());
  }
  return reps;
}

const eqBytes = (a: Uint8Array, b: Uint8Array): void => {
  expect(Buffer.from(a).toString('hex')).toBe(Buffer.from(b).toString('hex'));
};

/** Mutate an encoding: flips, truncations, insertions, deletions, garbage tails, count bumps. */
export function mutate(rng: Rng, src: Uint8Array): Uint8Array {
  let b = Uint8Array.from(src);
  const edits = 1 + rng.int(3);
  for (let e = 0; e < edits; e++) {
    const kind = rng.int(7);
    const at = b.length === 0 ? 0 : rng.int(b.length);
    if (kind === 0 && b.length > 0) b[at] ^= 1 << rng.int(8);
    else if (kind === 1 && b.length > 0) b[at] = rng.u32() & 0xff;
    else if (kind === 2) b = b.slice(0, rng.int(b.length + 1));
    else if (kind === 3) {
      const ins = Uint8Array.from({ length: 1 + rng.int(4) }, () => rng.u32() & 0xff);
      b = Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at)]);
    } else if (kind === 4 && b.length > 0) b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1)]);
    else if (kind === 5) b = Uint8Array.from([...b, ...Array.from({ length: 1 + rng.int(8) }, () => rng.u32() & 0xff)]);
    else if (b.length > 0) b[at] = rng.pick([0x00, 0x7f, 0x80, 0xff, 0xc1, 0xdc, 0xdd, 0xde, 0xdf]);
  }
  return b;
}

function ensureWasm(): void {
  if (isWasmReady()) return;
  const bytes = loadWasmSync();
  if (bytes === undefined) throw new Error('build/release.wasm missing: run `node scripts/build.mjs --no-types` first');
  initSync(bytes);
}

/** `f()` on the given kernel backend (loading wasm when needed), then the previous backend again. */
export function withBackend<T>(name: 'js' | 'wasm', f: () => T): T {
  const prev = backend();
  if (name === 'wasm') ensureWasm();
  useBackend(name);
  try {
    return f();
  } finally {
    useBackend(prev);
  }
}

/** Declare the law tests for one CRDT type (call inside a vitest `describe`). */
export function checkLaws<C extends Crdt<C>>(spec: LawSpec<C>): void {
  const numRuns = spec.runs ?? runs(500);
  const seedArb = fc.integer({ min: 0, max: 0x7fffffff });
  const opts = { seed: SEED, numRuns };

  it(`${spec.name}: merge is commutative (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        const [a, b] = randomHistory(spec, makeRng(s), 3);
        const ab = merged(a, b);
        const ba = merged(b, a);
        eqBytes(bytesOf(ab), bytesOf(ba));
        if (spec.view) expect(spec.view(ab)).toEqual(spec.view(ba));
      }),
      opts,
    );
  });

  it(`${spec.name}: merge is associative (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        const [a, b, c] = randomHistory(spec, makeRng(s), 3);
        const left = merged(merged(a, b), c);
        const right = merged(a, merged(b, c));
        eqBytes(bytesOf(left), bytesOf(right));
        if (spec.view) expect(spec.view(left)).toEqual(spec.view(right));
      }),
      opts,
    );
  });

  it(`${spec.name}: merge is idempotent and leaves its argument unchanged (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        const [a, b] = randomHistory(spec, makeRng(s), 3);
        const before = bytesOf(b);
        eqBytes(bytesOf(merged(a, a)), bytesOf(a));
        const ab = merged(a, b);
        eqBytes(bytesOf(merged(ab, b)), bytesOf(ab));
        eqBytes(bytesOf(merged(ab, ab)), bytesOf(ab));
        eqBytes(bytesOf(b), before);
      }),
      opts,
    );
  });

  it(`${spec.name}: merge reports change soundly: false only when the state is unchanged, and a repeated merge is not a change (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        const rng = makeRng(s);
        const [a, b] = randomHistory(spec, rng, 3);
        const x = a.clone();
        const before = bytesOf(x);
        const first = x.merge(b.clone());
        if (first === false) eqBytes(bytesOf(x), before);
        const after = bytesOf(x);
        // types that report (return a boolean) must say false for a merge that cannot change anything
        const again = x.merge(b.clone());
        if (typeof first === 'boolean') expect(again).toBe(false);
        if (typeof first === 'boolean' && !bytesEqualU8(after, before)) expect(first).toBe(true);
        eqBytes(bytesOf(x), after);
      }),
      opts,
    );
  });

  it(`${spec.name}: 5 replicas converge under random merge orders with duplicates (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        const rng = makeRng(s);
        const reps = randomHistory(spec, rng, 5, 40);
        // final exchange: every replica merges every state, in random order, some twice, some stale copies
        const finals = reps.map((r) => r.clone());
        for (const r of reps) {
          const order = rng.shuffle([...finals, ...finals.filter(() => rng.bool(0.3))]);
          for (const o of order) r.merge(o);
        }
        const want = bytesOf(reps[0]);
        for (const r of reps) eqBytes(bytesOf(r), want);
        if (spec.view) for (const r of reps) expect(spec.view(r)).toEqual(spec.view(reps[0]));
      }),
      opts,
    );
  });

  it(`${spec.name}: a shuffled, duplicated stream of deltas equals the full state (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        const rng = makeRng(s);
        const others = randomHistory(spec, rng, 3);
        const src = spec.make('src', rng);
        const target = rng.pick(others).clone();
        const deltas: C[] = [];
        const take = (): void => {
          const d = src.takeDelta();
          if (d !== null) deltas.push(spec.decode(d.encode(), 'delta'));
        };
        const steps = 1 + rng.int(spec.maxSteps ?? 24);
        for (let k = 0; k < steps; k++) {
          if (rng.bool(0.75)) spec.randomOp(rng, src);
          else src.merge(rng.pick(others));
          if (rng.bool(0.4)) take();
        }
        take();
        expect(src.takeDelta()).toBeNull();
        const viaState = merged(target, src);
        const viaDeltas = target.clone();
        for (const d of rng.shuffle([...deltas, ...deltas.filter(() => rng.bool(0.3))])) viaDeltas.merge(d);
        eqBytes(bytesOf(viaDeltas), bytesOf(viaState));
        if (spec.view) expect(spec.view(viaDeltas)).toEqual(spec.view(viaState));
      }),
      opts,
    );
  });

  it(`${spec.name}: encode/decode round-trips (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        for (const x of randomHistory(spec, makeRng(s), 3)) {
          const bytes = bytesOf(x);
          const y = spec.decode(bytes, x.replicaId);
          eqBytes(bytesOf(y), bytes);
          eqBytes(bytesOf(x.clone()), bytes);
          if (spec.view) expect(spec.view(y)).toEqual(spec.view(x));
        }
      }),
      opts,
    );
  });

  const fuzzCount = spec.fuzzCount ?? (LONG ? 50_000 : 10_000);
  it(`${spec.name}: ${fuzzCount} mutated or truncated encodings give DecodeError or a valid state`, () => {
    const rng = makeRng(SEED ^ 0xf022);
    const corpus: Uint8Array[] = [];
    for (let k = 0; k < 40; k++) for (const x of randomHistory(spec, rng, 3)) corpus.push(bytesOf(x));
    let rejected = 0;
    let accepted = 0;
    for (let k = 0; k < fuzzCount; k++) {
      const m = mutate(rng, rng.pick(corpus));
      let x: C;
      try {
        x = spec.decode(m, 'fuzz');
      } catch (e) {
        if (!(e instanceof DecodeError)) {
          throw new Error(`decode threw ${(e as Error)?.name}: ${(e as Error)?.message} for ${Buffer.from(m).toString('hex')} (SEED=${SEED})`);
        }
        rejected++;
        continue;
      }
      // a valid state: re-encodes, decodes again to the same bytes, merges and is merged
      accepted++;
      const again = bytesOf(x);
      eqBytes(bytesOf(spec.decode(again, 'fuzz2')), again);
      // merging a hostile-but-decodable state may be refused with a typed error (e.g. ClockSkewError for an
      // HLC timestamp far in the future, RangeError past MAX_SAFE_INTEGER), and then must change nothing
      const other = spec.decode(rng.pick(corpus), 'other');
      for (const [into, from] of [[x.clone(), other], [other, x]] as const) {
        const before = bytesOf(into);
        try {
          into.merge(from);
        } catch (e) {
          if (!(e instanceof CrdtError) && !(e instanceof RangeError)) throw e;
          eqBytes(bytesOf(into), before);
          continue;
        }
        // the merged state is itself a valid state
        const merged = bytesOf(into);
        eqBytes(bytesOf(spec.decode(merged, 'fuzz3')), merged);
      }
      if (spec.view) spec.view(x);
    }
    expect(rejected + accepted).toBe(fuzzCount);
    expect(rejected).toBeGreaterThan(0);
  });

  it(`${spec.name}: wasm and js kernel backends give byte-identical states`, () => {
    const prev = backend();
    ensureWasm(); // loading makes wasm the default: restore the previous backend afterwards
    const n = Math.max(50, Math.floor(numRuns / 5));
    try {
      for (let k = 0; k < n; k++) {
        const s = (SEED + k * 7919) >>> 0;
        const out: string[][] = [];
        for (const name of ['js', 'wasm'] as const) {
          useBackend(name);
          const reps = randomHistory(spec, makeRng(s), 4, 32);
          const all = merged(reps[0], ...reps.slice(1));
          out.push([...reps, all].map((r) => Buffer.from(bytesOf(r)).toString('hex')));
        }
        expect(out[1], `seed ${s}`).toEqual(out[0]);
      }
    } finally {
      useBackend(prev);
    }
  });
}

function bytesEqualU8(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
