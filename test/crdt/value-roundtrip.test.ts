import { describe, expect, it } from 'vitest';
import { GSet } from '../../src/crdt/g-set.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { RGA } from '../../src/crdt/rga.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';
import { decodeValue, encodeValue, encodeValueReference } from '../../src/codec/value.js';
import { ValidationError } from '../../src/errors.js';

/**
 * Every value a write accepts must come back through every type's encode/decode (a fuzzer found values that
 * encoded to bytes the type's own decode refused, so the state could never be read by a peer), and a value the
 * library cannot carry must be refused at the write, with ValidationError, before anything changes.
 */

interface Case {
  name: string;
  /** Write v; returns the instance. */
  write(v: unknown): { encode(): Uint8Array };
  /** A fresh instance (for the refused-write checks). */
  fresh(): { encode(): Uint8Array };
  /** Write v into an existing instance. */
  writeInto(x: unknown, v: unknown): void;
  decode(b: Uint8Array): { encode(): Uint8Array };
  /** The value read back from a decoded instance. */
  read(x: unknown): unknown;
}

function kase<T extends { encode(): Uint8Array }>(
  name: string,
  fresh: () => T,
  writeInto: (x: T, v: unknown) => void,
  decode: (b: Uint8Array) => T,
  read: (x: T) => unknown,
): Case {
  return {
    name,
    fresh,
    write(v) {
      const x = fresh();
      writeInto(x, v);
      return x;
    },
    writeInto: (x, v) => writeInto(x as T, v),
    decode,
    read: (x) => read(x as T),
  };
}

const CASES: Case[] = [
  kase('ORMap', () => new ORMap('r'), (m, v) => m.setLWW('k', v), (b) => ORMap.decode(b), (m) => m.get('k')),
  kase('ORMap nested map', () => new ORMap('r'), (m, v) => m.map('n').setLWW('k', v), (b) => ORMap.decode(b), (m) => (m.get('n') as ORMap).get('k')),
  kase('ORMap nested map in a map', () => new ORMap('r'), (m, v) => m.map('n').map('o').setLWW('k', v), (b) => ORMap.decode(b), (m) => ((m.get('n') as ORMap).get('o') as ORMap).get('k')),
  kase('ORMap nested set', () => new ORMap('r'), (m, v) => m.orSet('s').add(v), (b) => ORMap.decode(b), (m) => (m.get('s') as ORSet).values()[0]),
  kase('ORMap nested register', () => new ORMap('r'), (m, v) => m.register('g').set(v), (b) => ORMap.decode(b), (m) => (m.get('g') as MVRegister).values()[0]),
  kase('ORSet', () => new ORSet('r'), (s, v) => s.add(v), (b) => ORSet.decode(b), (s) => s.values()[0]),
  kase('GSet', () => new GSet('r'), (s, v) => s.add(v), (b) => GSet.decode(b), (s) => s.values()[0]),
  kase('TwoPSet', () => new TwoPSet('r'), (s, v) => s.add(v), (b) => TwoPSet.decode(b), (s) => s.values()[0]),
  kase('LWWRegister', () => new LWWRegister('r'), (g, v) => g.set(v), (b) => LWWRegister.decode(b), (g) => g.get()),
  kase('MVRegister', () => new MVRegister('r'), (g, v) => g.set(v), (b) => MVRegister.decode(b), (g) => g.values()[0]),
  kase('RGA', () => new RGA('r'), (l, v) => l.insert(0, v), (b) => RGA.decode(b), (l) => l.get(0)),
];

/** Nested `levels` arrays deep: the outermost at depth 0, the innermost (empty) at depth levels - 1. */
function nestedArrays(levels: number): unknown[] {
  let v: unknown[] = [];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

// eslint-disable-next-line no-sparse-arrays
const hole3 = [1, , 3];
const ACCEPTED: [string, unknown, unknown][] = [
  // name, value, what it reads back as
  ['array with a hole', hole3, [1, null, 3]],
  ['array of holes only', new Array(3), [null, null, null]],
  ['array with an undefined element', [1, undefined, 3], [1, null, 3]],
  // eslint-disable-next-line no-sparse-arrays
  ['holes inside a nested object', { a: [, 'x'], b: { c: [[, ,]] } }, { a: [null, 'x'], b: { c: [[null, null]] } }],
  ['object property undefined', { a: 1, b: undefined }, { a: 1 }],
  ['Date at the latest valid time', new Date(8.64e15), new Date(8.64e15)],
  ['Date at the earliest valid time', new Date(-8.64e15), new Date(-8.64e15)],
  ['Date before 1970 with milliseconds', new Date(-1_234_567), new Date(-1_234_567)],
  ['Date at 0', new Date(0), new Date(0)],
  ['-0', -0, 0],
  ['NaN', NaN, NaN],
  ['Infinity', Infinity, Infinity],
  ['-Infinity', -Infinity, -Infinity],
  ['largest safe integer', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ['Uint8Array', new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3])],
  ['Buffer', Buffer.from([4, 5]), new Uint8Array([4, 5])],
  ['empty Uint8Array', new Uint8Array(0), new Uint8Array(0)],
  ['lone surrogate', 'a\ud800', 'a\ufffd'],
  ['arrays at the deepest legal depth', nestedArrays(65), nestedArrays(65)],
];

// Date(NaN) first: the fuzzer's case
const REFUSED: [string, () => unknown][] = [
  ['invalid Date', () => new Date(NaN)],
  ['invalid Date in an array', () => [1, new Date('x')]],
  ['invalid Date in a nested object', () => ({ a: { b: [new Date(NaN)] } })],
  ['bigint', () => 1n],
  ['Map', () => new Map([[1, 2]])],
  ['Set', () => new Set([1])],
  ['Int16Array', () => new Int16Array(2)],
  ['Float64Array', () => new Float64Array(1)],
  ['function', () => () => 1],
  ['symbol', () => Symbol('s')],
  ['arrays one level deeper than allowed', () => nestedArrays(66)],
];

function plain(v: unknown): unknown {
  // toEqual compares a Buffer and a Uint8Array by class: compare bytes as arrays
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (Array.isArray(v)) return Array.from(v, plain);
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('every accepted value round-trips through every type', () => {
  for (const [vname, v, back] of ACCEPTED) {
    for (const c of CASES) {
      it(`${vname}: ${c.name}`, () => {
        const x = c.write(v);
        const bytes = x.encode();
        const y = c.decode(bytes);
        expect(y.encode()).toEqual(bytes);
        expect(plain(c.read(y))).toEqual(plain(back));
        // and once more from the decoded state: a peer of a peer reads the same
        expect(c.decode(y.encode()).encode()).toEqual(bytes);
      });
    }
  }

  it('a hole is written as an undefined element is (nil), by both writers', () => {
    const nil3 = encodeValue([1, undefined, 3]);
    expect(Array.from(nil3)).toEqual([0x93, 0x01, 0xc0, 0x03]);
    expect(encodeValue(hole3)).toEqual(nil3);
    expect(Uint8Array.from(encodeValueReference(hole3))).toEqual(nil3);
    expect(decodeValue(nil3)).toEqual([1, null, 3]);
  });
});

describe('a value the library cannot carry is refused at the write, state unchanged', () => {
  for (const [vname, make] of REFUSED) {
    for (const c of CASES) {
      it(`${vname}: ${c.name}`, () => {
        const x = c.fresh();
        c.writeInto(x, 'before');
        const before = x.encode();
        expect(() => c.writeInto(x, make())).toThrow(ValidationError);
        expect(x.encode()).toEqual(before);
        expect(plain(c.read(c.decode(x.encode())))).toEqual('before');
      });
    }
  }

  it('encodeValue and the reference encoder both refuse an invalid Date', () => {
    expect(() => encodeValue(new Date(NaN))).toThrow(ValidationError);
    expect(() => encodeValueReference(new Date(NaN))).toThrow(ValidationError);
    expect(() => encodeValue([new Date(NaN)])).toThrow(ValidationError);
  });
});

describe('bytes written by older versions for holes and invalid dates', () => {
  it('decodeValue still reads them as before (no writer makes them now)', () => {
    expect(decodeValue(Uint8Array.from([0x93, 0x01, 0xd4, 0x00, 0x00, 0x03]))).toEqual([1, undefined, 3]);
    expect(Number.isNaN((decodeValue(Uint8Array.from([0xd4, 0xff, 0xff])) as Date).getTime())).toBe(true);
  });
});
