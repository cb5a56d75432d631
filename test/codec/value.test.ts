import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bytesCompare,
  bytesEqual,
  compareShortAscii,
  decodeValue,
  encodeValue,
  isShortAscii,
  isWellFormedString,
  isWellFormedStringLoop,
  shortAsciiOrder,
  valueIdentityKey,
  wellFormedString,
} from '../../src/codec/value.js';
import { DecodeError, ValidationError } from '../../src/errors.js';
import { mulberry32 } from '../../src/time/random.js';

const SEED = Number(process.env.SEED ?? 0xc0dec);

describe('codec/value', () => {
  it('is canonical: key order does not change the bytes, nested too', () => {
    expect(encodeValue({ b: 1, a: { d: [1, 2], c: 'x' } })).toEqual(encodeValue({ a: { c: 'x', d: [1, 2] }, b: 1 }));
    expect(encodeValue({ a: 1, skip: undefined })).toEqual(encodeValue({ a: 1 }));
  });

  it('round-trips JSON-like values, dates and bytes', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const back = decodeValue(encodeValue(v));
        expect(encodeValue(back)).toEqual(encodeValue(v));
      }),
      { seed: SEED, numRuns: process.env.LONG ? 20_000 : 500 },
    );
    const d = new Date(1_700_000_000_123);
    expect((decodeValue(encodeValue(d)) as Date).getTime()).toBe(d.getTime());
    const bytes = decodeValue(encodeValue(new Uint8Array([1, 2, 3])));
    expect(bytes).toBeInstanceOf(Uint8Array); // a Buffer on Node, which is a Uint8Array
    expect(Array.from(bytes as Uint8Array)).toEqual([1, 2, 3]);
  });

  it('refuses values msgpack cannot carry faithfully with ValidationError', () => {
    expect(() => encodeValue({ f: () => 1 })).toThrow(ValidationError);
    expect(() => encodeValue({ n: 10n })).toThrow(ValidationError);
    expect(() => encodeValue(new Map())).toThrow(ValidationError);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(() => encodeValue(deep)).toThrow(ValidationError);
  });

  it('throws DecodeError on empty, truncated and reserved bytes', () => {
    expect(() => decodeValue(new Uint8Array())).toThrow(DecodeError);
    expect(() => decodeValue(new Uint8Array([0xc1]))).toThrow(DecodeError);
    expect(() => decodeValue(new Uint8Array([0x92, 1]))).toThrow(DecodeError);
    expect(() => decodeValue(new Uint8Array([0xa5, 0x61]))).toThrow(DecodeError);
  });

  it('bytesEqual and bytesCompare agree with a reference order', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 }), (a, b) => {
        const ref = Buffer.compare(Buffer.from(a), Buffer.from(b));
        expect(bytesCompare(a, b)).toBe(ref);
        expect(bytesEqual(a, b)).toBe(ref === 0);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
  it('string identity helpers agree with the canonical bytes', () => {
    // strings from chars that straddle every boundary: ASCII / latin1 / BMP, high and low surrogates alone
    // and paired, U+FFFD itself; lengths around the 32-char fixstr limit
    const chars = ['a', 'Z', '\x00', '\x7f', '\x80', 'é', '\uffff', '\ue000', '\ufffd', '\ud800', '\udbff', '\udc00', '\udfff', '😀'];
    const str = fc.array(fc.constantFrom(...chars), { maxLength: 40 }).map((a) => a.join(''));
    const utf8 = new TextEncoder(), back = new TextDecoder();
    fc.assert(
      fc.property(str, str, (s, t) => {
        // well-formed exactly when the UTF-8 round trip gives s back (a lone surrogate becomes U+FFFD)
        const roundTrip = back.decode(utf8.encode(s));
        expect(isWellFormedStringLoop(s)).toBe(roundTrip === s);
        expect(isWellFormedString(s)).toBe(roundTrip === s);
        expect(wellFormedString(s)).toBe(roundTrip);
        // equal canonical bytes exactly when the well-formed strings are equal
        expect(bytesEqual(encodeValue(s), encodeValue(t))).toBe(wellFormedString(s) === wellFormedString(t));
        expect(valueIdentityKey(wellFormedString(s))).toBe(valueIdentityKey(s));
        // the short-ASCII order is the byte order of the fixstr encodings
        const b = encodeValue(s);
        expect(isShortAscii(s)).toBe(b.length === s.length + 1 && b[0] === (0xa0 | s.length));
        if (isShortAscii(s) && isShortAscii(t) && s !== t) expect(Math.sign(compareShortAscii(s, t))).toBe(bytesCompare(b, encodeValue(t)));
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('shortAsciiOrder', () => {
  it('gives the byte order of the strings\' encodings, as a comparison sort does (seeded)', () => {
    // sizes around the insertion-sort cutoff and big groups of one length (the radix passes), with shared
    // prefixes (positions where a group has one char are skipped) and every ASCII char
    const ascii = fc.string({ unit: fc.integer({ min: 0, max: 127 }).map((c) => String.fromCharCode(c)), maxLength: 31 });
    const prefixed = fc.tuple(fc.constantFrom('', 'vm-', 'vm-0000', 'node-us-east-'), fc.string({ unit: fc.constantFrom('0', '1', '9', 'a', 'z', '-'), maxLength: 6 })).map(([a, b]) => (a + b).slice(0, 31));
    fc.assert(
      fc.property(fc.uniqueArray(fc.oneof(ascii, prefixed), { maxLength: 400 }), (keys) => {
        const at = shortAsciiOrder(keys);
        const got = Array.from(at, (i) => keys[i]);
        const want = [...keys].sort(compareShortAscii);
        expect(got).toEqual(want);
        // and that is the byte order of their encodings
        for (let i = 1; i < got.length; i++) expect(bytesCompare(encodeValue(got[i - 1]), encodeValue(got[i]))).toBeLessThan(0);
      }),
      { seed: SEED, numRuns: process.env.LONG ? 5_000 : 300 },
    );
  });

  it('sorts big groups of one length: ids with shared prefixes, and random chars at every position (seeded)', () => {
    const keys: string[] = [];
    for (let i = 0; i < 20_000; i++) keys.push(`vm-${String((i * 7919) % 20_011).padStart(6, '0')}`);
    const rnd = mulberry32(SEED);
    for (let i = 0; i < 3_000; i++) {
      const len = 1 + (i % 12);
      let s = '';
      for (let k = 0; k < len; k++) s += String.fromCharCode(Math.floor(rnd() * 128));
      keys.push(s);
    }
    const uniq = [...new Set(keys)];
    const got = Array.from(shortAsciiOrder(uniq), (i) => uniq[i]);
    expect(got).toEqual([...uniq].sort(compareShortAscii));
  });
});
