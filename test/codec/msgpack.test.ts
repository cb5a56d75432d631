/**
 * Differential tests: the one-pass canonical writer (src/codec/msgpack.ts, behind `encodeValue`) against the
 * reference path (`encodeValueReference`: sorted copy + msgpackr) on random values, byte for byte; refused
 * values refused alike; and `decodeValue` of the writer's bytes against msgpackr's own unpack.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Unpackr } from 'msgpackr';
import { canonicalReadable, copyToSlab, readCanonical, writeCanonical } from '../../src/codec/msgpack.js';
import { decodeValue, decodeValueReference, encodeValue, encodeValueReference, identityKey, valueIdentityKey } from '../../src/codec/value.js';
import { DecodeError, ValidationError } from '../../src/errors.js';
import { mulberry32 } from '../../src/time/random.js';

const SEED = Number(process.env.SEED ?? 0x5ca1ab1e);
const LONG = Boolean(process.env.LONG);

// ---------------------------------------------------------------------------------------------------------------
// arbitraries

const P32 = 2 ** 32;
const BOUNDARY_INTS: number[] = [];
for (const b of [0, 31, 32, 127, 128, 255, 256, 32767, 32768, 65535, 65536, 2 ** 31, P32, 2 ** 53, 2 ** 64]) {
  for (const d of [-1, 0, 1]) BOUNDARY_INTS.push(b + d, -(b + d));
}
const SPECIAL_NUMBERS = [-0, NaN, Infinity, -Infinity, 0.5, -0.5, 1e-300, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 2 ** 31 + 0.5, -(2 ** 31) - 0.5];

const numberArb = fc.oneof(
  fc.constantFrom(...BOUNDARY_INTS, ...SPECIAL_NUMBERS),
  fc.integer(),
  fc.integer({ min: -40, max: 300 }),
  fc.maxSafeInteger(),
  fc.double(),
  fc.double({ min: -1e6, max: 1e6, noNaN: true }),
);

/** UTF-16 code units of every kind: ASCII, 2- and 3-byte UTF-8, surrogates (paired and lone). */
const codeUnit = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x7f }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0x7ff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x800, max: 0xffff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }) },
).map((c) => String.fromCharCode(c));
const stringArb = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 40 }),
  fc.string({ unit: codeUnit, minLength: 20, maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 70 }),
  fc.string({ maxLength: 12 }),
);

const dateArb = fc.oneof(
  fc.date({ noInvalidDate: false }),
  fc.integer({ min: -8.64e15, max: 8.64e15 }).map((t) => new Date(t)),
  fc.integer({ min: -3000, max: 3000 }).map((t) => new Date(t)),
  fc.constantFrom(0, 1, 999, 1000, 1001, P32 * 1000, P32 * 1000 - 1, P32 * 1000 + 1, 2 ** 34 * 1000, 2 ** 34 * 1000 - 1, -1, -1000, -1001, NaN)
    .map((t) => new Date(t)),
);

const bytesArb = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.uint8Array({ minLength: 250, maxLength: 300 }),
  fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)),
);

const KEYS = ['0', '1', '9', '10', '01', '-1', '1.5', '4294967294', '4294967295', '4294967296', '', ' ', 'a', 'A', 'b', 'z', 'é', 'ä', '\ud800', 'status', 'cpuCores', 'toJSON', 'valueOf', 'hasOwnProperty', 'length'];
const keyArb = fc.oneof(fc.constantFrom(...KEYS), fc.string({ unit: codeUnit, maxLength: 6 }));

const leafArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: numberArb },
  { weight: 3, arbitrary: stringArb },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined) },
  { weight: 1, arbitrary: dateArb },
  { weight: 1, arbitrary: bytesArb },
);

/** Plain objects built from (key, value) entries in random insertion order; some with a null prototype. */
function objectFrom(entries: [string, unknown][], nullProto: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = nullProto ? Object.create(null) : {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** Arrays, some with holes (deleted elements). */
function arrayFrom(items: unknown[], holes: number[]): unknown[] {
  const a = items.slice();
  for (const h of holes) if (a.length > 0) delete a[h % a.length];
  return a;
}

const { value: valueArb } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: leafArb },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 18 }), fc.boolean(), fc.integer({ min: 0, max: 9 }))
        .map(([entries, nullProto, r]) => objectFrom(entries, nullProto && r < 2)),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.array(tie('value'), { maxLength: 18 }), fc.array(fc.nat(), { maxLength: 2 }))
        .map(([items, holes]) => arrayFrom(items, holes)),
    },
  ),
}));

/** Values the reference refuses (ValidationError), or hands to msgpackr's object-model quirks. */
class Point {
  x = 1;
}
class List extends Array<unknown> {}
const oddArb: fc.Arbitrary<unknown> = fc.constantFrom<unknown>(
  () => 1,
  Symbol('s'),
  10n,
  new Map([[1, 2]]),
  new Set([1]),
  new Point(),
  new Int8Array([1, 2]),
  new Float64Array([1.5]),
  new ArrayBuffer(4),
  new DataView(new ArrayBuffer(2)),
  /re/g,
  new Error('e'),
  Object.assign(Object.create(null), { ['__proto__']: 1 }),
  JSON.parse('{"__proto__": {"a": 1}, "b": 2}'),
  JSON.parse('{"__proto__": [1, 2], "b": 2}'),
  JSON.parse('{"__proto__": null, "b": 2}'),
  { constructor: 'x', a: 1 },
  { constructor: { a: 1 }, toJSON: 5 },
  { constructor: 1, toJSON: 0 },
  Object.assign([1, 2], { extra: 3 }),
  List.from([1, 'a']),
  Object.setPrototypeOf([1], Date.prototype),
  Object.setPrototypeOf([1], Uint8Array.prototype),
  Object.setPrototypeOf({ a: 1 }, Date.prototype),
  Object.assign(new Date(5), { constructor: Object }),
  Object.assign(new Uint8Array([1, 2]), { constructor: Object }),
  new (class Stamp extends Date {})(7),
);
const withOddArb: fc.Arbitrary<unknown> = fc
  .tuple(valueArb, oddArb, keyArb, fc.boolean())
  .map(([v, odd, k, inArray]) => (inArray ? [v, odd] : { [k]: v, odd }));

/** A value nested `depth` levels below the root (arrays and objects alternating by the pattern). */
function nested(depth: number, leaf: unknown, pattern: number): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = (pattern >> i % 8) & 1 ? [v] : { k: v };
  return v;
}
const deepArb = fc
  .tuple(fc.integer({ min: 60, max: 68 }), fc.oneof(leafArb, fc.constantFrom<unknown>([], {}, { u: undefined }, [undefined], [1, , 2])), fc.nat(255))
  .map(([d, leaf, pattern]) => nested(d, leaf, pattern));

// ---------------------------------------------------------------------------------------------------------------
// the comparison

type Outcome = { bytes: number[] } | { error: string; validation: boolean };

function outcome(f: () => Uint8Array): Outcome {
  try {
    return { bytes: Array.from(f()) };
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}`, validation: e instanceof ValidationError };
  }
}

function hex(b: Uint8Array | number[]): string {
  return Buffer.from(b).toString('hex');
}

const stats = { fastWriter: 0, total: 0 };

/** encodeValue and valueIdentityKey agree with the reference; the fast writer, when it answers, too. */
function checkAgainstReference(v: unknown): void {
  stats.total++;
  const ref = outcome(() => encodeValueReference(v));
  const got = outcome(() => encodeValue(v));
  expect(got).toEqual(ref);
  if ('bytes' in ref) {
    const key = identityKey(new Uint8Array(ref.bytes));
    expect(valueIdentityKey(v)).toBe(key);
  } else {
    expect(() => valueIdentityKey(v)).toThrow(ref.validation ? ValidationError : Error);
  }
  let fast: Uint8Array | undefined;
  try {
    fast = writeCanonical(v);
  } catch {
    fast = undefined;
  }
  if (fast !== undefined) {
    stats.fastWriter++;
    expect('bytes' in ref ? hex(ref.bytes) : ref.error).toBe(hex(fast));
  }
}

const runs = (n: number) => ({ seed: SEED, numRuns: LONG ? n * 10 : n });

describe('codec/msgpack: the one-pass writer matches the reference encoder byte for byte', () => {
  it('on random nested values (objects in random key order, arrays with holes, every leaf type)', () => {
    stats.fastWriter = stats.total = 0;
    fc.assert(fc.property(valueArb, checkAgainstReference), runs(3000));
    // the writer itself answered for nearly all of them (the reference fallback is for rare shapes only)
    expect(stats.fastWriter).toBeGreaterThan(stats.total * 0.95);
  });

  it('on leaves: numbers at every width boundary, strings with lone surrogates, dates, bytes', () => {
    fc.assert(fc.property(leafArb, checkAgainstReference), runs(3000));
    for (const n of [...BOUNDARY_INTS, ...SPECIAL_NUMBERS]) checkAgainstReference(n);
    for (const t of [0, 1, 999, 1000, -1, -999, -1000, -1001, 2 ** 32 * 1000 - 1, 2 ** 32 * 1000, 2 ** 34 * 1000 - 1, 2 ** 34 * 1000, 8.64e15, -8.64e15, NaN]) {
      checkAgainstReference(new Date(t));
    }
  });

  it('on strings and byte arrays across every header width (fixstr, str8, str16, str32; bin8, bin16, bin32)', () => {
    for (const len of [0, 1, 31, 32, 63, 64, 65, 255, 256, 65535, 65536, 70000]) {
      checkAgainstReference('x'.repeat(len));
      checkAgainstReference('é'.repeat(len));
      checkAgainstReference('\ud83d\ude00'.repeat(len >> 1));
      checkAgainstReference('\udc00'.repeat(len));
      checkAgainstReference(`${'a'.repeat(len)}\ud800`);
      checkAgainstReference(new Uint8Array(len).map((_, i) => i * 7));
      checkAgainstReference([...Array(len % 1000)].map((_, i) => i));
    }
    // map headers: fixmap, map16 (also when skipped undefined properties bring the count below 16)
    for (const n of [15, 16, 17, 300]) {
      const o: Record<string, unknown> = {};
      for (let i = n - 1; i >= 0; i--) o[`k${i}`] = i % 3 === 0 ? undefined : i;
      checkAgainstReference(o);
    }
  });

  it('on strings whose header outgrows its estimate right at the end of the output buffer', () => {
    // 11 three-byte chars: the estimate is a fixstr, the bytes need str8; shifting k moves a string onto the end
    for (let k = 0; k < 40; k++) {
      checkAgainstReference([new Uint8Array(k), ...Array.from({ length: 300 }, () => '日'.repeat(11))]);
      checkAgainstReference([new Uint8Array(k), ...Array.from({ length: 40 }, () => '日'.repeat(90))]);
    }
  });

  it('on values nested near the 64-level limit', () => {
    fc.assert(fc.property(deepArb, checkAgainstReference), runs(500));
  });

  it('refuses alike: functions, symbols, bigints, class instances and msgpackr quirk shapes', () => {
    fc.assert(fc.property(withOddArb, checkAgainstReference), runs(1000));
    for (const v of [() => 1, Symbol('x'), 1n, new Map(), new Point(), [1n], { a: [{ b: () => 0 }] }]) {
      expect(() => encodeValue(v)).toThrow(ValidationError);
      expect(() => valueIdentityKey(v)).toThrow(ValidationError);
    }
  });

  it('re-entrant encoding (a getter that encodes a value) gives the reference bytes', () => {
    const o = {
      b: 2,
      get a(): number {
        return encodeValue({ y: 1, x: [2] }).length;
      },
    };
    checkAgainstReference(o);
    const inner = encodeValueReference({ x: [2], y: 1 }).length;
    expect(Array.from(encodeValue(o))).toEqual(Array.from(encodeValueReference({ a: inner, b: 2 })));
  });

  it('returns results no later encoding changes, across output buffer changes and growth mid-value', () => {
    const kept: [Uint8Array, number[]][] = [];
    for (let i = 0; i < 300; i++) {
      // small, medium (past the copy-out size) and large values (past the output buffer, growing it mid-map)
      const v =
        i % 3 === 0
          ? { k: `v${i}` }
          : i % 3 === 1
            ? { k: 'x'.repeat(100 + i), n: i }
            : Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`key${j}`, j === 7 ? 'y'.repeat(2000 + i) : j]));
      const got = encodeValue(v);
      expect(hex(got)).toBe(hex(encodeValueReference(v)));
      kept.push([got, Array.from(got)]);
    }
    for (const [got, copy] of kept) expect(Array.from(got)).toEqual(copy);
  });

  it('identityKey is one char per byte for every byte value and length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(5), (b, off) => {
        const view = new Uint8Array(off + b.length);
        view.set(b, off);
        const sub = view.subarray(off);
        let want = '';
        for (const x of b) want += String.fromCharCode(x);
        expect(identityKey(sub)).toBe(want);
      }),
      runs(1000),
    );
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(identityKey(all)).toBe(String.fromCharCode(...all));
  });
});

describe('codec/msgpack: decodeValue matches msgpackr (the reference decoder)', () => {
  const unpackr = new Unpackr({ useRecords: false, structuredClone: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true, int64AsType: 'number' });

  /** decodeValue and the reference agree: the same value, or both a DecodeError. */
  function checkDecode(bytes: Uint8Array): void {
    let ref: { value: unknown } | { error: unknown };
    try {
      ref = { value: decodeValueReference(bytes.slice()) };
    } catch (e) {
      ref = { error: e };
    }
    if ('error' in ref) {
      expect(ref.error).toBeInstanceOf(DecodeError);
      expect(() => decodeValue(bytes.slice())).toThrow(DecodeError);
    } else {
      expect(decodeValue(bytes.slice())).toStrictEqual(ref.value);
    }
  }

  it('decodes encodings like msgpackr unpack, and they re-encode to the same bytes', () => {
    let fast = 0;
    let total = 0;
    fc.assert(
      fc.property(valueArb, (v) => {
        let bytes: Uint8Array;
        try {
          bytes = encodeValue(v);
        } catch {
          return; // refused values have no bytes
        }
        total++;
        const got = decodeValue(bytes.slice());
        expect(got).toStrictEqual(unpackr.unpack(bytes.slice()));
        try {
          expect(readCanonical(bytes.slice())).toStrictEqual(got);
          fast++;
        } catch (e) {
          if ((e as Error).name === 'AssertionError') throw e;
        }
        // holes (msgpackr's undefined extension, d4 00 00, which older versions wrote) come back as undefined, which encodes as nil, and
        // keys that differed only in lone surrogates come back as one key (U+FFFD, ef bf bd)
        const h = hex(bytes);
        if (!h.includes('d40000') && !h.includes('efbfbd')) expect(hex(encodeValue(got))).toBe(h);
      }),
      runs(2000),
    );
    // the fast reader answered for a good share (it leaves dates, bytes and non-ASCII strings to msgpackr)
    expect(fast).toBeGreaterThan(total * 0.2);
  });

  it('decodes JSON-like ASCII values with the fast reader', () => {
    const ascii = fc.jsonValue({ maxDepth: 4 }).filter((v) => !/[^\x00-\x7f]/.test(JSON.stringify(v)) && !JSON.stringify(v).includes('__proto__'));
    fc.assert(
      fc.property(ascii, (v) => {
        const bytes = encodeValue(v);
        expect(readCanonical(bytes)).toStrictEqual(unpackr.unpack(bytes.slice()));
      }),
      runs(1000),
    );
  });

  it('on truncated, extended and mutated encodings and random bytes: the same value or DecodeError', () => {
    const mutated = fc
      .tuple(valueArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(), fc.integer({ min: 0, max: 3 }))
      .map(([v, flips, cut, mode]) => {
        let b: Uint8Array;
        try {
          b = encodeValue(v).slice();
        } catch {
          b = new Uint8Array([0xc0]);
        }
        for (const [i, x] of flips) if (b.length > 0) b[i % b.length] = x;
        if (mode === 1) b = b.subarray(0, cut % (b.length + 1)); // truncated
        if (mode === 2) b = Uint8Array.from([...b, cut & 0xff]); // trailing byte
        return b;
      });
    fc.assert(fc.property(mutated, checkDecode), runs(3000));
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 24 }), checkDecode), runs(3000));
    for (const b of [[0xc1], [0x91, 0xc1], [0x81, 0xa1, 0x61, 0xc1], [0x81, 0xa9, ...Buffer.from('__proto__'), 1], [0x81, 1, 2], [0xca, 0x3f, 0xc0, 0, 0], [0xcf, 0, 0, 0, 1, 0, 0, 0, 0], [0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xdc, 0xff, 0xff], [0xde, 0xff, 0xff, 1], [0xa3, 0x61], [0xa1, 0xff], [0xa2, 0xc3, 0xa9], [0x00, 0x00]]) {
      checkDecode(new Uint8Array(b));
    }
  });
});

describe('codec/msgpack: canonicalReadable says exactly when the fast reader reads', () => {
  /** canonicalReadable on b (alone, and inside other bytes) against readCanonical's outcome. */
  function checkReadable(b: Uint8Array, pad: number): void {
    let reads = true;
    try {
      readCanonical(b.slice());
    } catch {
      reads = false;
    }
    expect(canonicalReadable(b, 0, b.length)).toBe(reads);
    const big = new Uint8Array(b.length + 2 * pad).fill(0x91); // an array header before and after: never read
    big.set(b, pad);
    expect(canonicalReadable(big, pad, pad + b.length)).toBe(reads);
  }

  it('on encodings, mutated and truncated encodings, and random bytes', () => {
    let readable = 0;
    const cases = fc
      .tuple(valueArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }), fc.nat(), fc.integer({ min: 0, max: 3 }), fc.nat(3))
      .map(([v, flips, cut, mode, pad]) => {
        let b: Uint8Array;
        try {
          b = encodeValue(v).slice();
        } catch {
          b = new Uint8Array([0xc0]);
        }
        if (mode !== 0) for (const [i, x] of flips) if (b.length > 0) b[i % b.length] = x;
        if (mode === 1) b = b.subarray(0, cut % (b.length + 1));
        if (mode === 2) b = Uint8Array.from([...b, cut & 0xff]);
        return [b, pad] as const;
      });
    fc.assert(
      fc.property(cases, ([b, pad]) => {
        checkReadable(b, pad);
        if (canonicalReadable(b, 0, b.length)) readable++;
      }),
      runs(4000),
    );
    expect(readable).toBeGreaterThan(400);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 24 }), fc.nat(3), (b, pad) => checkReadable(b, pad)), runs(3000));
    const ascii = fc.jsonValue({ maxDepth: 5 }).filter((v) => !/[^\x00-\x7f]/.test(JSON.stringify(v)));
    fc.assert(fc.property(ascii, fc.nat(3), (v, pad) => checkReadable(encodeValue(v).slice(), pad)), runs(1000));
    const proto = [0x81, 0xa9, ...Buffer.from('__proto__'), 1];
    const protoLike = [0x81, 0xa9, ...Buffer.from('__proto_x'), 1];
    for (const b of [[], proto, protoLike, [0x81, 0xd9, 9, ...Buffer.from('__proto__'), 1], [0xdc, 0, 1, 1], [0xde, 0, 1, 0xa1, 0x61, 1], [0xda, 0, 2, 0x61, 0x62], [0xda, 0, 3, 0x61, 0x62], [0xcb, 0, 0, 0, 0, 0, 0, 0], [0xd9, 1, 0x80], [0xc4, 0], [0xcf, 0, 0, 0, 0, 0, 0, 0, 0]]) {
      checkReadable(new Uint8Array(b), 2);
    }
    // nesting right at the reader's depth limit
    for (const d of [511, 512, 513, 600]) checkReadable(new Uint8Array([...new Array(d).fill(0x91), 1]), 1);
  });
});

describe('codec/msgpack: copyToSlab', () => {
  it('copies exactly, and no later write or copy changes an earlier result', () => {
    const rnd = mulberry32(SEED);
    const kept: [Uint8Array, number[]][] = [];
    for (let i = 0; i < 3000; i++) {
      const n = Math.floor(rnd() * (rnd() < 0.1 ? 3000 : 300));
      const src = new Uint8Array(n + 8);
      for (let j = 0; j < src.length; j++) src[j] = Math.floor(rnd() * 256);
      const from = Math.floor(rnd() * 8);
      const out = copyToSlab(src, from, from + n);
      expect(Array.from(out), `seed ${SEED}`).toEqual(Array.from(src.subarray(from, from + n)));
      kept.push([out, Array.from(out)]);
      if (rnd() < 0.5) writeCanonical({ a: 'x'.repeat(Math.floor(rnd() * 2000)), b: [1, 2, 3] });
    }
    for (const [out, bytes] of kept) expect(Array.from(out), `seed ${SEED}`).toEqual(bytes);
  });
});
