/**
 * Element identity in the sets (ORSet, GSet, TwoPSet) against the definition: two values are one element
 * exactly when their canonical bytes (`encodeValue`) are equal, and an encoding lists each element's canonical
 * bytes in unsigned byte order. The sets key strings by the string itself and keep short ASCII strings in
 * a fast path, so this holds them to the general path on the values where the two could part: non-ASCII,
 * strings of 31/32+ chars, lone surrogates (encoded as U+FFFD), surrogate pairs against BMP chars above them
 * (UTF-16 order is not byte order), -0 (encoded as 0), numbers and strings with the same text, objects.
 * Randomised with the seeded PRNG of laws.ts; a failure names its seed (`SEED=n` replays the run).
 */
import { describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../src/codec/binary.js';
import { encodeValue } from '../../src/codec/value.js';
import { CausalContext } from '../../src/crdt/causal-context.js';
import { GSet } from '../../src/crdt/g-set.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';
import { CODEC_VERSION, CRDT_TYPE } from '../../src/crdt/types.js';
import { DecodeError } from '../../src/errors.js';
import { type Rng, SEED, makeRng, runs } from './laws.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const idOf = (v: unknown): string => hex(encodeValue(v));

/** Values where a string fast path could differ from the canonical bytes. */
const TRICKY: unknown[] = [
  '', 'a', 'b', 'ab', 'e0', 'e10', 'e9', 'x'.repeat(31), 'x'.repeat(32), 'y'.repeat(31), 'x'.repeat(33), 'x'.repeat(300),
  '\x7f', '\x80', '\xa1x', '\xff', 'é', 'e\u0301', '日本', '😀', '\uffff', '\u{10000}', '\ue000', '\ud7ff',
  '\ud800', '\udc00', 'a\ud800b', 'a\udc00b', '\ud800\ud800', '\ufffd', 'a\ufffdb', '\ufffd\ufffd', '\ud83d\ude00x',
  'é'.repeat(16), 'é'.repeat(15), 'a'.repeat(20) + '😀',
  0, -0, 1, 127, 128, 255, 65536, -1, -32, -33, 1.5, -1.5, 2 ** 40, -(2 ** 31), Number.MAX_SAFE_INTEGER, NaN,
  '0', '1', '-0', '1.5', 'true', 'false', 'null', true, false, null,
  { a: 1 }, { a: 1, b: 2 }, { b: 2, a: 1 }, { a: '1' }, [1, '1'], [], {}, ['a'], [[]], { x: { y: 'é' } },
  new Uint8Array([1, 2]), new Uint8Array([0xa1, 0x78]),
];

const CHARS = ['a', 'z', '0', ' ', '\x00', '\x7f', '\x80', 'é', 'ÿ', 'Ā', '日', '\ufffd', '\uffff', '\ue000', '\ud83d', '\ude00', '😀'];

/**
 * Per seed, one of three element pools: short ASCII strings only (every element on the fast paths), ASCII
 * strings of up to 40 chars, or tricky values and random strings of any char kind.
 */
type Pool = 0 | 1 | 2;

/** A random element from the pool (string lengths around the 32-char fixstr limit). */
function randomElement(rng: Rng, pool: Pool = 2): unknown {
  if (pool < 2) {
    const len = rng.int(pool === 0 ? 32 : 41);
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(0x20 + rng.int(95));
    return rng.bool(0.3) ? s.slice(0, 2) : s;
  }
  if (rng.bool(0.5)) return rng.pick(TRICKY);
  const len = rng.pick([0, 1, 2, 3, 15, 16, 30, 31, 32, 33, 40]);
  const ascii = rng.bool(0.6);
  let s = '';
  for (let i = 0; i < len; i++) s += ascii ? String.fromCharCode(0x61 + rng.int(3)) : rng.pick(CHARS);
  return s;
}

/** The element bytes of an encoding (and the dot count of each, for ORSet), parsed independently. */
function elementsOf(bytes: Uint8Array, tag: number): { elems: string[]; flags?: number[]; dots: Map<string, string[]> } {
  const rd = new Reader(bytes);
  expect(rd.u8()).toBe(CODEC_VERSION);
  expect(rd.u8()).toBe(tag);
  const ctx = new CausalContext();
  const map = tag === CRDT_TYPE.ORSet ? ctx.read(rd) : new Int32Array(0);
  const n = rd.varuint();
  const elems: string[] = [];
  const dots = new Map<string, string[]>(); // ORSet: element -> its dots as "replica:counter"
  for (let i = 0; i < n; i++) {
    const id = hex(rd.bytes());
    elems.push(id);
    if (tag === CRDT_TYPE.ORSet) {
      const k = rd.varuint();
      expect(k).toBeGreaterThan(0);
      const list: string[] = [];
      for (let d = 0; d < k; d++) {
        const r = rd.varuint();
        list.push(`${ctx.ids[map[r]]}:${rd.varuint()}`);
      }
      dots.set(id, list.sort());
    }
  }
  let flags: number[] | undefined;
  if (tag === CRDT_TYPE.TwoPSet) flags = Array.from({ length: n }, () => rd.u8());
  rd.done();
  return { elems, flags, dots };
}

/** Byte order of hex strings of bytes (hex order is byte order, a prefix first). */
const sortedIds = (ids: Iterable<string>): string[] => [...ids].sort();

interface AnySet {
  add(x: unknown): unknown;
  has(x: unknown): boolean;
  values(): unknown[];
  readonly size: number;
  encode(): Uint8Array;
}

/** The set holds exactly `model` (ids), lists it in byte order, and encodes exactly those bytes in that order. */
function checkAgainstModel(s: AnySet, model: Set<string>, tag: number, decode: (b: Uint8Array) => AnySet): void {
  const want = sortedIds(model);
  expect(s.size).toBe(model.size);
  expect(s.values().map(idOf)).toEqual(want);
  for (const v of TRICKY) expect(s.has(v)).toBe(model.has(idOf(v)));
  const bytes = s.encode();
  const { elems, flags } = elementsOf(bytes, tag);
  if (flags === undefined) expect(elems).toEqual(want);
  else expect(elems.filter((_, i) => flags[i] === 0)).toEqual(want);
  const back = decode(bytes);
  expect(hex(back.encode())).toBe(hex(bytes));
  expect(back.values().map(idOf)).toEqual(want);
  for (const v of TRICKY) expect(back.has(v)).toBe(model.has(idOf(v)));
}

/** A reference OR-Set over canonical-byte ids (hex): element -> dots "replica:counter", and the dots seen. */
class RefORSet {
  private n = 0;
  readonly elems = new Map<string, Set<string>>();
  readonly seen = new Set<string>();
  constructor(private readonly me: string) {}
  add(id: string): void {
    const d = `${this.me}:${++this.n}`;
    this.seen.add(d);
    this.elems.set(id, new Set([d]));
  }
  remove(id: string): boolean {
    return this.elems.delete(id);
  }
  merge(o: RefORSet): void {
    const ids = new Set([...this.elems.keys(), ...o.elems.keys()]);
    for (const id of ids) {
      const mine = this.elems.get(id) ?? new Set<string>(), theirs = o.elems.get(id) ?? new Set<string>();
      const keep = new Set<string>();
      for (const d of mine) if (theirs.has(d) || !o.seen.has(d)) keep.add(d);
      for (const d of theirs) if (mine.has(d) || !this.seen.has(d)) keep.add(d);
      if (keep.size > 0) this.elems.set(id, keep);
      else this.elems.delete(id);
    }
    for (const d of o.seen) this.seen.add(d);
  }
  ids(): Set<string> {
    return new Set(this.elems.keys());
  }
}

function withSeed(seed: number, f: () => void): void {
  try {
    f();
  } catch (e) {
    (e as Error).message = `seed ${seed} (SEED=${SEED}): ${(e as Error).message}`;
    throw e;
  }
}

const RUNS = runs(150, 3000);

describe('crdt/set identity: string fast paths against canonical bytes', () => {
  it('the tricky values: one element per distinct canonical encoding', () => {
    const ids = new Set(TRICKY.map(idOf));
    const o = new ORSet('o'), g = new GSet('g'), t = new TwoPSet('t');
    for (const v of TRICKY) {
      o.add(v);
      g.add(v);
      t.add(v);
    }
    checkAgainstModel(o, ids, CRDT_TYPE.ORSet, (b) => ORSet.decode(b));
    checkAgainstModel(g, ids, CRDT_TYPE.GSet, (b) => GSet.decode(b));
    checkAgainstModel(t, ids, CRDT_TYPE.TwoPSet, (b) => TwoPSet.decode(b));
    // the encodings are the same however the elements came in
    const o2 = new ORSet('o'), g2 = new GSet('g'), t2 = new TwoPSet('t');
    for (const v of [...TRICKY].reverse()) {
      g2.add(v);
      t2.add(v);
    }
    expect(hex(g2.encode())).toBe(hex(g.encode()));
    expect(hex(t2.encode())).toBe(hex(t.encode()));
    o2.merge(ORSet.decode(o.encode()));
    expect(hex(o2.encode())).toBe(hex(o.encode()));
  });

  it('lone surrogates are U+FFFD, -0 is 0, and equal text of another type is another element', () => {
    const o = new ORSet('o');
    o.add('a\ud800');
    expect(o.has('a\ufffd')).toBe(true);
    expect(o.has('a\udfff')).toBe(true);
    o.add('a\udc00');
    expect(o.size).toBe(1);
    expect(o.values()).toEqual(['a\ufffd']);
    expect(o.remove('a\ufffd')).toBe(true);
    expect(o.size).toBe(0);
    o.add(-0);
    expect(o.has(0)).toBe(true);
    expect(Object.is(o.values()[0], 0)).toBe(true);
    o.add('0');
    o.add('1');
    o.add(1);
    expect(o.size).toBe(4);
    const g = new GSet('g');
    expect(g.add('\ud800')).toBe(true);
    expect(g.add('\ufffd')).toBe(false);
    expect(g.values()).toEqual(['\ufffd']);
    expect(g.add(-0)).toBe(true);
    expect(g.add(0)).toBe(false);
    expect(g.add('0')).toBe(true);
    const t = new TwoPSet('t');
    t.add('x\udc00');
    expect(t.remove('x\ufffd')).toBe(true);
    expect(t.add('x\ud800')).toBe(false);
    expect(t.isRemoved('x\ufffd')).toBe(true);
  });

  it(`ORSet: random adds, removes and merges match the byte-identity model (${RUNS} seeds)`, () => {
    for (let run = 0; run < RUNS; run++) {
      const seed = (SEED + run * 7919) >>> 0;
      withSeed(seed, () => {
        const rng = makeRng(seed);
        const pool = (run % 3) as Pool;
        const a = new ORSet('a'), b = new ORSet('b');
        const ra = new RefORSet('a'), rb = new RefORSet('b');
        const steps = 1 + rng.int(60);
        for (let i = 0; i < steps; i++) {
          const [s, r] = rng.bool() ? [a, ra] : [b, rb];
          const v = randomElement(rng, pool);
          const roll = rng.float();
          if (roll < 0.6) {
            s.add(v);
            r.add(idOf(v));
          } else if (roll < 0.9) {
            expect(s.remove(v)).toBe(r.remove(idOf(v)));
          } else if (s === a) {
            a.merge(b);
            ra.merge(rb);
          } else {
            b.merge(a);
            rb.merge(ra);
          }
          if (rng.bool(0.2)) {
            // the encoding (and the order it keeps for the next one) matches a fresh copy's
            const fresh = new ORSet(s.replicaId);
            fresh.merge(s);
            expect(hex(s.encode())).toBe(hex(fresh.encode()));
          }
        }
        const ma = ra.ids(), mb = rb.ids();
        // every element carries exactly the reference's dots
        for (const [s, r] of [
          [a, ra],
          [b, rb],
        ] as const) {
          const { dots } = elementsOf(s.encode(), CRDT_TYPE.ORSet);
          expect(dots).toEqual(new Map([...r.elems].map(([id, ds]) => [id, [...ds].sort()])));
        }
        checkAgainstModel(a, ma, CRDT_TYPE.ORSet, (x) => ORSet.decode(x));
        checkAgainstModel(b, mb, CRDT_TYPE.ORSet, (x) => ORSet.decode(x));
        // a delta stream and a full-state merge give the same bytes
        const viaDelta = new ORSet('c'), viaState = new ORSet('c');
        viaState.merge(a);
        const d = a.clone().takeDelta();
        if (d !== null) viaDelta.merge(ORSet.decode(d.encode()));
        expect(hex(viaDelta.encode())).toBe(hex(viaState.encode()));
      });
    }
  });

  it(`GSet and TwoPSet: random adds, removes and merges match the byte-identity model (${RUNS} seeds)`, () => {
    for (let run = 0; run < RUNS; run++) {
      const seed = (SEED + run * 104729) >>> 0;
      withSeed(seed, () => {
        const rng = makeRng(seed);
        const pool = (run % 3) as Pool;
        const ga = new GSet('a'), gb = new GSet('b');
        const ta = new TwoPSet('a'), tb = new TwoPSet('b');
        const mga = new Set<string>(), mgb = new Set<string>();
        const mta = new Set<string>(), mtb = new Set<string>(); // present
        const rta = new Set<string>(), rtb = new Set<string>(); // removed (tombstones)
        const steps = 1 + rng.int(60);
        for (let i = 0; i < steps; i++) {
          const left = rng.bool();
          const v = randomElement(rng, pool);
          const id = idOf(v);
          const [mt, rt] = left ? [mta, rta] : [mtb, rtb];
          const roll = rng.float();
          if (roll < 0.6) {
            const mg = left ? mga : mgb;
            expect((left ? ga : gb).add(v)).toBe(!mg.has(id));
            mg.add(id);
            expect((left ? ta : tb).add(v)).toBe(!mt.has(id) && !rt.has(id));
            if (!rt.has(id)) mt.add(id);
          } else if (roll < 0.85) {
            expect((left ? ta : tb).remove(v)).toBe(mt.has(id));
            if (mt.delete(id)) rt.add(id);
            expect((left ? ta : tb).isRemoved(v)).toBe(rt.has(id));
          } else {
            ga.merge(gb);
            gb.merge(ga);
            for (const x of mgb) mga.add(x);
            for (const x of mga) mgb.add(x);
            ta.merge(tb);
            tb.merge(ta);
            for (const x of mtb) mta.add(x);
            for (const x of mta) mtb.add(x);
            for (const x of rtb) rta.add(x);
            for (const x of rta) rtb.add(x);
            for (const x of rta) {
              mta.delete(x);
              mtb.delete(x);
            }
          }
        }
        checkAgainstModel(ga, mga, CRDT_TYPE.GSet, (x) => GSet.decode(x));
        checkAgainstModel(gb, mgb, CRDT_TYPE.GSet, (x) => GSet.decode(x));
        checkAgainstModel(ta, mta, CRDT_TYPE.TwoPSet, (x) => TwoPSet.decode(x));
        checkAgainstModel(tb, mtb, CRDT_TYPE.TwoPSet, (x) => TwoPSet.decode(x));
        for (const [s, d] of [
          [ga, GSet.decode],
          [ta, TwoPSet.decode],
        ] as const) {
          const c = s.clone();
          const delta = c.takeDelta();
          const fresh = s === ga ? new GSet('c') : new TwoPSet('c');
          if (delta !== null) (fresh as GSet).merge(d(delta.encode()) as GSet);
          expect(hex(fresh.encode())).toBe(hex(s.encode()));
        }
      });
    }
  });

  it('ORSet: more than 64 replicas and counters past 2^24 (dots outside the packed form)', () => {
    const reps = Array.from({ length: 70 }, (_, i) => new ORSet<string>(`r${String(i).padStart(2, '0')}`));
    reps.forEach((r, i) => {
      r.add('x');
      r.add(`own${i}`);
    });
    const fwd = new ORSet<string>('z'), back = new ORSet<string>('z');
    for (const r of reps) fwd.merge(r);
    for (const r of [...reps].reverse()) back.merge(r);
    expect(hex(back.encode())).toBe(hex(fwd.encode()));
    expect(fwd.size).toBe(71);
    const d = ORSet.decode(fwd.encode(), 'z');
    expect(hex(d.encode())).toBe(hex(fwd.encode()));
    // x holds 70 dots; one replica's remove drops every one it has seen
    const last = reps[69];
    last.merge(fwd);
    last.remove('x');
    fwd.merge(last);
    expect(fwd.has('x')).toBe(false);
    expect(fwd.size).toBe(70);

    // a state whose counters are past 2^24: built as bytes (adding 2^24 times would take too long)
    const big = 2 ** 30;
    const w = new Writer(64);
    w.u8(CODEC_VERSION);
    w.u8(CRDT_TYPE.ORSet);
    w.varuint(1); // one replica: 'a', vv = big, no cloud
    w.string('a');
    w.varuint(big);
    w.varuint(0);
    w.varuint(1); // one element 'x' with dot (0, big)
    w.bytes(encodeValue('x'));
    w.varuint(1);
    w.varuint(0);
    w.varuint(big);
    const bytes = w.finish();
    const s = ORSet.decode<string>(bytes, 'a');
    expect(hex(s.encode())).toBe(hex(bytes));
    expect(s.values()).toEqual(['x']);
    s.add('x'); // replaces the dot: (a, big + 1)
    s.add('y');
    const t = new ORSet<string>('b');
    t.merge(s);
    expect(t.values()).toEqual(['x', 'y']);
    t.remove('x');
    s.merge(t);
    expect(s.values()).toEqual(['y']);
    const delta = s.takeDelta()!;
    const u = ORSet.decode<string>(bytes, 'u');
    u.merge(ORSet.decode(delta.encode()));
    expect(u.values()).toEqual(['y']);
    expect(hex(u.encode())).toBe(hex(s.encode()));
  });

  it('ORSet: counters of several varint bytes and replica positions past 127 encode as the reference reads them', () => {
    // one replica: counters past 2^7 and 2^14 (re-adds of one element move it along)
    const a = new ORSet<string>('a');
    const want = new Map<string, string[]>();
    let c = 0;
    for (let i = 0; i < 200; i++) {
      a.add(`k${i}`);
      want.set(idOf(`k${i}`), [`a:${++c}`]);
      if (i % 50 === 0) {
        for (let j = 0; j < 5000; j++) a.add('x');
        c += 5000;
        want.set(idOf('x'), [`a:${c}`]);
      }
    }
    const check = (s: ORSet<string>, expected: Map<string, string[]>): void => {
      const bytes = s.encode();
      const { elems, dots } = elementsOf(bytes, CRDT_TYPE.ORSet);
      expect(elems).toEqual(sortedIds(expected.keys()));
      expect(dots).toEqual(new Map([...expected].map(([id, ds]) => [id, [...ds].sort()])));
      expect(hex(ORSet.decode(bytes).encode())).toBe(hex(bytes));
    };
    check(a, want);
    // 200 replicas merged in reverse id order: my first indices (dots packed) sit past 127 in the encoded
    // (sorted) order; the later replicas removed their element (their dots stay in the context only)
    const z = new ORSet<string>('z');
    const all = new Map<string, string[]>();
    for (let i = 199; i >= 0; i--) {
      const id = `r${String(i).padStart(3, '0')}`;
      const e = `e${String(199 - i).padStart(3, '0')}`;
      const r = new ORSet<string>(id);
      r.add(e);
      if (i < 150) r.remove(e);
      else all.set(idOf(e), [`${id}:1`]);
      z.merge(r);
      if (i % 40 === 0) check(z, all);
    }
    check(z, all);
  });

  it('ORSet: a decoded state merged, encoded, cloned and written reads like the state it came from', () => {
    for (const elems of [
      ['b', 'a', 'ccc'], // short ASCII only (kept as read)
      ['b', 1, { k: 'é' }, 'é', 'x'.repeat(40), -0, 'a'], // mixed
    ]) {
      const src = new ORSet<unknown>('s');
      for (const e of elems) src.add(e);
      const bytes = src.encode();
      const d = ORSet.decode(bytes, 'd');
      expect(d.size).toBe(src.size);
      expect(hex(d.encode())).toBe(hex(bytes)); // from the lists as read
      const t1 = new ORSet<unknown>('t'), t2 = new ORSet<unknown>('t');
      t1.merge(d);
      t2.merge(src);
      expect(hex(t1.encode())).toBe(hex(t2.encode()));
      const c = d.clone();
      c.add('new');
      c.remove(elems[0]);
      expect(d.has('new')).toBe(false);
      expect(d.has(elems[0])).toBe(true);
      expect(hex(d.encode())).toBe(hex(bytes));
      d.add('z');
      expect(d.values().map(idOf)).toEqual(sortedIds([...elems, 'z'].map(idOf)));
      const t3 = new ORSet<unknown>('t');
      t3.merge(ORSet.decode(bytes));
      expect(hex(t3.encode())).toBe(hex(t2.encode()));
    }
  });

  it('large short-ASCII sets (past the encoders\' scratch) encode in byte order', () => {
    const g = new GSet<string>('g'), t = new TwoPSet<string>('t'), o = new ORSet<string>('o');
    const ids = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const e = `key-${(i * 7919) % 1000}`;
      g.add(e);
      t.add(e);
      o.add(e);
      ids.add(idOf(e));
    }
    checkAgainstModel(g, ids, CRDT_TYPE.GSet, (b) => GSet.decode(b));
    checkAgainstModel(t, ids, CRDT_TYPE.TwoPSet, (b) => TwoPSet.decode(b));
    checkAgainstModel(o, ids, CRDT_TYPE.ORSet, (b) => ORSet.decode(b));
  });

  it('decode rejects a non-canonical string or out-of-order strings in every set', () => {
    const o = new ORSet('o');
    o.add('ab');
    o.add('b');
    const ok = o.encode();
    // 'b' (a1 62) sorts before 'ab' (a2 61 62): swap the two elements into the wrong order
    const i = hex(ok).indexOf('02a162');
    const j = hex(ok).indexOf('03a26162');
    expect(i).toBeGreaterThan(0);
    expect(j).toBeGreaterThan(i);
    const first = ok.slice(i / 2, j / 2), second = ok.slice(j / 2, j / 2 + 6);
    const swapped = Uint8Array.from([...ok.slice(0, i / 2), ...second, ...first]);
    expect(() => ORSet.decode(swapped)).toThrow(DecodeError);
    // 'a' as a str8 (d9 01 61) instead of a fixstr: not canonical
    const g = new GSet('g');
    g.add('a');
    const gb = g.encode();
    const nonCanonical = Uint8Array.from([gb[0], gb[1], 1, 3, 0xd9, 0x01, 0x61]);
    expect(() => ORSet.decode(Uint8Array.from([...ok.slice(0, i / 2 - 1), 1, 3, 0xd9, 0x01, 0x61, 1, 0, 1]))).toThrow(DecodeError);
    // GSet and TwoPSet check only that an element is valid msgpack, and keep its bytes as they came
    expect(hex(GSet.decode(nonCanonical).encode())).toBe(hex(nonCanonical));
    expect(GSet.decode(nonCanonical).values()).toEqual(['a']);
    const t = Uint8Array.from([nonCanonical[0], CRDT_TYPE.TwoPSet, ...nonCanonical.slice(2), 0]);
    expect(hex(TwoPSet.decode(t).encode())).toBe(hex(t));
    // a lone surrogate's CESU-8 bytes (a3 ed a0 80) are not valid UTF-8: not canonical for ORSet, kept as they
    // came by GSet (which reads them back as the lone surrogate, and holds them apart from U+FFFD's bytes)
    expect(() => ORSet.decode(Uint8Array.from([...ok.slice(0, i / 2 - 1), 1, 4, 0xa3, 0xed, 0xa0, 0x80, 1, 0, 1]))).toThrow(DecodeError);
    const cesu = Uint8Array.from([gb[0], gb[1], 1, 4, 0xa3, 0xed, 0xa0, 0x80]);
    const gc = GSet.decode(cesu);
    expect(hex(gc.encode())).toBe(hex(cesu));
    expect(gc.has('\ufffd')).toBe(false);
    expect(gc.add('\ufffd')).toBe(true);
    expect(gc.size).toBe(2);
  });
});
