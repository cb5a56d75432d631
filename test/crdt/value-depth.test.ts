import { describe, expect, it } from 'vitest';
import { GSet } from '../../src/crdt/g-set.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { RGA } from '../../src/crdt/rga.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';
import { decodeValue, encodeValue } from '../../src/codec/value.js';
import { canonicalReadable } from '../../src/codec/msgpack.js';
import { DecodeError } from '../../src/errors.js';

/**
 * Whether bytes decode must not depend on how deep in the JS stack decode is called: a value nested deeper than
 * the writer goes (64 levels below the top) is refused with DecodeError on every decoder path, at any depth; a
 * value at the deepest legal depth round-trips.
 */

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));
}

/** Calls f `frames` JS frames deeper than the caller. */
function deeper<R>(frames: number, f: () => R): R {
  if (frames === 0) return f();
  const r = deeper(frames - 1, f);
  return r; // not a tail call
}

type Outcome = { ok: true } | { ok: false; error: string; message: string };

function outcome(f: () => unknown): Outcome {
  try {
    f();
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).name, message: (e as Error).message };
  }
}

// the fuzzer's input: a GSet whose one element is an array nested 4,000 levels, nil inside
const FUZZ = hex('010301a11f' + '91'.repeat(4000) + 'c0');

/** Nested arrays, `levels` of them: the innermost (empty) at depth levels - 1 (the top value is depth 0). */
function nestedArrays(levels: number): unknown[] {
  let v: unknown[] = [];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

// two values of one byte length: LEGAL nests to the deepest depth the writer writes (an empty array at depth
// 64), DEEP has an item at depth 65; a state written with LEGAL becomes one holding DEEP by a byte swap
const LEGAL = encodeValue([nestedArrays(64), 0]);
const DEEP = hex('91'.repeat(65) + 'c0');

function swap(state: Uint8Array): Uint8Array {
  const out = state.slice();
  let found = -1;
  for (let i = 0; i + LEGAL.length <= out.length; i++) {
    let same = true;
    for (let j = 0; j < LEGAL.length && same; j++) same = out[i + j] === LEGAL[j];
    if (same) {
      expect(found).toBe(-1); // exactly once
      found = i;
    }
  }
  expect(found).toBeGreaterThanOrEqual(0);
  out.set(DEEP, found);
  return out;
}

const TYPES: [string, (v: unknown) => Uint8Array, (b: Uint8Array) => { encode(): Uint8Array }][] = [
  ['GSet', (v) => { const s = new GSet('r'); s.add(v); return s.encode(); }, (b) => GSet.decode(b)],
  ['TwoPSet', (v) => { const s = new TwoPSet('r'); s.add(v); return s.encode(); }, (b) => TwoPSet.decode(b)],
  ['ORSet', (v) => { const s = new ORSet('r'); s.add(v); return s.encode(); }, (b) => ORSet.decode(b)],
  ['LWWRegister', (v) => { const g = new LWWRegister('r'); g.set(v); return g.encode(); }, (b) => LWWRegister.decode(b)],
  ['MVRegister', (v) => { const g = new MVRegister('r'); g.set(v); return g.encode(); }, (b) => MVRegister.decode(b)],
  ['RGA', (v) => { const l = new RGA('r'); l.insert(0, v); return l.encode(); }, (b) => RGA.decode(b)],
  ['ORMap', (v) => { const m = new ORMap('r'); m.setLWW('k', v); return m.encode(); }, (b) => ORMap.decode(b)],
  ['ORMap nested map', (v) => { const m = new ORMap('r'); m.map('n').setLWW('k', v); return m.encode(); }, (b) => ORMap.decode(b)],
  ['ORMap nested set', (v) => { const m = new ORMap('r'); m.orSet('s').add(v); return m.encode(); }, (b) => ORMap.decode(b)],
  ['ORMap nested register', (v) => { const m = new ORMap('r'); m.register('g').set(v); return m.encode(); }, (b) => ORMap.decode(b)],
];

describe('value nesting depth on decode', () => {
  it('the fuzzer case: the same DecodeError at the top of the stack and 2,000 frames deeper', () => {
    const top = outcome(() => GSet.decode(FUZZ));
    expect(top.ok).toBe(false);
    expect(top).toMatchObject({ error: 'DecodeError' });
    expect(deeper(2000, () => outcome(() => GSet.decode(FUZZ)))).toEqual(top);
    expect(deeper(4000, () => outcome(() => GSet.decode(FUZZ)))).toEqual(top);
  });

  it('decodeValue: the same answer at any stack depth, on both readers', () => {
    const deepArr = hex('91'.repeat(4000) + 'c0');
    // with a date inside, the bytes are past the fast reader's subset and go to msgpackr
    const deepWithDate = Uint8Array.from([...hex('91'.repeat(4000)), ...encodeValue(new Date(1))]);
    const deepMap = hex('81a161'.repeat(4000) + 'c0');
    const truncated = hex('91'.repeat(4000) + 'c7');
    for (const b of [deepArr, deepWithDate, deepMap, DEEP, truncated]) {
      const top = outcome(() => decodeValue(b));
      expect(top).toMatchObject({ ok: false, error: 'DecodeError' });
      expect(deeper(2000, () => outcome(() => decodeValue(b)))).toEqual(top);
    }
    expect(canonicalReadable(DEEP, 0, DEEP.length)).toBe(false);
  });

  it('the writer refuses what the reader refuses: 65 levels are written, 66 are not', () => {
    expect(decodeValue(encodeValue(nestedArrays(65)))).toEqual(nestedArrays(65));
    const legal = encodeValue(nestedArrays(65));
    expect(legal.length).toBe(65);
    expect(canonicalReadable(legal, 0, legal.length)).toBe(true);
    const withDate = [nestedArrays(64), new Date(5)];
    expect(decodeValue(encodeValue(withDate))).toEqual(withDate);
    expect(() => encodeValue(nestedArrays(66))).toThrow();
  });

  for (const [name, write, decode] of TYPES) {
    it(`${name}: the deepest legal value round-trips; one level deeper is refused at any stack depth`, () => {
      const bytes = write([nestedArrays(64), 0]);
      expect(decode(bytes).encode()).toEqual(bytes);
      expect(deeper(2000, () => decode(bytes).encode())).toEqual(bytes);
      const bad = swap(bytes);
      const top = outcome(() => decode(bad));
      expect(top).toMatchObject({ ok: false, error: 'DecodeError' });
      expect((top as { message: string }).message).toMatch(/nested/);
      expect(deeper(2000, () => outcome(() => decode(bad)))).toEqual(top);
    });
  }

  it('the refusal is a DecodeError', () => {
    expect(() => GSet.decode(FUZZ)).toThrow(DecodeError);
  });

  it('decodeValue refuses msgpack extensions no writer makes (msgpackr reads some by reading further items)', () => {
    // msgpackr's Set extension (0x73) takes the next item as its contents: a nesting the depth check cannot see
    expect(() => decodeValue(Uint8Array.from([0xd4, 0x73, 0x00, 0x91, 0x01]))).toThrow(DecodeError);
    expect(() => decodeValue(Uint8Array.from([0xd4, 0x73, 0x00, ...hex('91'.repeat(4000) + 'c0')]))).toThrow(DecodeError);
    // the timestamp (-1) and msgpackr's "undefined" (0, holes written by older versions) are still read
    expect(decodeValue(Uint8Array.from([0x92, 0xd4, 0x00, 0x00, 0xc0]))).toEqual([undefined, null]);
  });
});
