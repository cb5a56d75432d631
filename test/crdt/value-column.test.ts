import { describe, expect, it } from 'vitest';
import { HLC } from '../../src/clock/hlc.js';
import { ORMap } from '../../src/crdt/index.js';
import { DecodeError } from '../../src/errors.js';
import { encodeValue } from '../../src/codec/value.js';
import { EXPANSION_RATIO } from '../../src/crdt/value-column.js';
import { mulberry32 } from '../../src/time/random.js';

/** A map holding `values` under keys k000, k001, ... (timestamps from a stopped clock: sizes are exact). */
function mapOf(values: unknown[]): ORMap<unknown> {
  const m = new ORMap<unknown>('r1', { clock: new HLC({ now: () => 1_764_000_000_000 }) });
  values.forEach((v, i) => m.setLWW(`k${String(i).padStart(3, '0')}`, v));
  return m;
}

function roundTrip(values: unknown[]): Uint8Array {
  const m = mapOf(values);
  const bytes = m.encode();
  const back = ORMap.decode(bytes, 'r2');
  values.forEach((v, i) => expect(back.get(`k${String(i).padStart(3, '0')}`)).toEqual(v));
  expect(back.encode()).toEqual(bytes);
  return bytes;
}

const record = (i: number) => ({ id: `vm-${i}`, status: i % 2 ? 'running' : 'stopped', cpu: i % 8, meta: { region: 'eu', tier: i % 3 } });

/** Offsets of shape references (0xc1 + an odd one-byte code) in an encoding. */
function shapeRefs(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0xc1 && (bytes[i + 1] & 1) === 1 && bytes[i + 1] < 0x80) out.push(i);
  return out;
}

describe('ORMap value column: string and map-shape dictionaries', () => {
  it('round-trips records of one shape, alternating shapes, nested and self-similar maps', () => {
    roundTrip(Array.from({ length: 50 }, (_, i) => record(i)));
    roundTrip(Array.from({ length: 40 }, (_, i) => (i % 2 ? record(i) : { other: i, shape: [record(i), record(i + 1)] })));
    roundTrip([{ a: { a: { a: { a: 1 } } } }, { a: { a: { a: { a: 2 } } } }, { a: 3 }, { a: { a: 4 } }]);
    roundTrip([{}, { x: {} }, { x: {} }, [{}, {}], [{ y: 1 }, { y: 2 }, { y: [{ y: 3 }] }]]);
  });

  it('round-trips key kinds at the shape boundaries', () => {
    const long32 = 'l'.repeat(32), long300 = 'm'.repeat(300);
    const fifteen = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`f${i}`, i]));
    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`f${i}`, i]));
    roundTrip([
      { a: 1, bb: 2 }, { a: 3, bb: 4 }, // keys below the string-dictionary minimum
      { [long32]: 1, z: 2 }, { [long32]: 3, z: 4 }, // str8 key
      { [long300]: 1 }, { [long300]: 2 }, // str16 key: no shape
      fifteen, { ...fifteen, f0: 'x' }, sixteen, sixteen, // fixmap limit
      { 'é': 1, '名前': 'x' }, { 'é': 2, '名前': 'y' }, // non-ASCII keys
      { 1: 'a', b: 2 }, { 1: 'c', b: 3 }, // integer-like key
      { z: 1, a: 2 }, { a: 3, z: 4 }, // insertion order differs, canonical order does not
    ]);
  });

  it('shapes are capped at 255 bytes of key items (a reference never expands further than a string one)', () => {
    const k = (c: string, n: number) => c.repeat(n);
    // 3 keys of 84 chars: 3 x (2 + 84) = 258 bytes of key items, one byte over: no shape
    const over = { [k('a', 84)]: 1, [k('b', 84)]: 2, [k('c', 84)]: 3 };
    const overBytes = roundTrip([over, { ...over }, { ...over }]);
    expect(shapeRefs(overBytes)).toEqual([]);
    // 3 keys of 83 chars: 255 bytes, a shape
    const at = { [k('a', 83)]: 1, [k('b', 83)]: 2, [k('c', 83)]: 3 };
    expect(shapeRefs(roundTrip([at, { ...at }, { ...at }])).length).toBe(2);
  });

  it('a record of a known shape costs no field names', () => {
    const wide = (i: number) => Object.fromEntries(Array.from({ length: 12 }, (_, j) => [`field${j}`, (i + j) % 100]));
    const n = 100;
    const a = mapOf(Array.from({ length: n }, (_, i) => wide(i))).encode().length;
    const b = mapOf(Array.from({ length: n + 1 }, (_, i) => wide(i))).encode().length;
    // the 101st record: its row (front-coded key, dot, timestamp: ~10 B), a length, one 2-byte shape
    // reference and 12 one-byte values; with per-field string references it would be 24 B more
    expect(b - a).toBeLessThanOrEqual(30);
    expect(shapeRefs(mapOf([wide(1), wide(2)]).encode()).length).toBe(1);
  });

  it('encodes a 1,000-VM-record map in fewer bytes than a string dictionary alone allows', () => {
    const vms = Array.from({ length: 1000 }, (_, i) => ({
      id: `vm-${i}`, status: ['running', 'stopped'][i % 2], nodeId: `node-${i % 20}`, cpuCores: 4, memoryMB: 8192,
      diskGB: 100, ipAddress: `10.0.${i >> 8}.${i & 255}`, createdAt: 1_764_000_000_000 + i, updatedAt: 1_764_000_000_000 + i,
      metadata: { region: 'eu', owner: 'team', tier: 'gold', image: 'debian' },
    }));
    const bytes = roundTrip(vms);
    // 14 field names as 2-byte string references would be 28 B per record on their own
    expect(bytes.length / 1000).toBeLessThan(75);
  });

  it("a string equal to the row's key is echoed, not repeated", () => {
    const withId = (i: number) => ({ id: `k${String(i).padStart(3, '0')}`, v: i });
    const withOther = (i: number) => ({ id: `x${String(i).padStart(3, '0')}`, v: i });
    const echoed = roundTrip(Array.from({ length: 50 }, (_, i) => withId(i))).length;
    const plain = roundTrip(Array.from({ length: 50 }, (_, i) => withOther(i))).length;
    // each id is 5 bytes raw and a 2-byte reference echoed
    expect(plain - echoed).toBeGreaterThanOrEqual(50 * 2);
    // the key as a map key, in arrays and nested, next to non-ASCII and short keys (never echoed)
    const m = new ORMap<unknown>('r1');
    const vals: [string, unknown][] = [
      ['vm-1', { 'vm-1': 'vm-1', list: ['vm-1', { 'vm-1': ['vm-1'] }] }],
      ['ab', 'ab'],
      ['clé-1', { id: 'clé-1' }],
      ['x'.repeat(40), 'x'.repeat(40)],
      ['y'.repeat(300), 'y'.repeat(300)],
    ];
    for (const [k, v] of vals) m.setLWW(k, v);
    const bytes = m.encode();
    const back = ORMap.decode(bytes, 'r2');
    for (const [k, v] of vals) expect(back.get(k)).toEqual(v);
    expect(back.encode()).toEqual(bytes);
  });

  it('a key echo in a row whose key cannot be echoed is a decode error', () => {
    const m = new ORMap<unknown>('r1');
    m.setLWW('clé', 'abc'); // non-ASCII key: the value stays raw
    const bytes = m.encode();
    const at = bytes.length - 5; // the value is the last item before the nested count (0): len 4, a3 "abc"
    expect([...bytes.subarray(at - 1, at + 4)]).toEqual([4, 0xa3, 0x61, 0x62, 0x63]);
    const bad = new Uint8Array([...bytes.subarray(0, at - 1), 2, 0xc1, 0, 0]); // len 2: an echo ref, then no nested states
    expect(() => ORMap.decode(bad)).toThrow(DecodeError);
    const good = new Uint8Array([...bytes.subarray(0, at - 1), 4, 0xa3, 0x61, 0x62, 0x63, 0]);
    expect(ORMap.decode(good).get('clé')).toBe('abc');
  });

  it('shape references out of range or non-canonical are decode errors', () => {
    const bytes = mapOf([record(1), record(2)]).encode();
    const refs = shapeRefs(bytes);
    expect(refs.length).toBeGreaterThan(0);
    const at = refs[0];
    const bad = bytes.slice();
    bad[at + 1] = 0x7f; // shape 63: never defined
    expect(() => ORMap.decode(bad)).toThrow(DecodeError);
    // the same code as a two-byte varuint with a zero high byte: not canonical
    const code = bytes[at + 1];
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes.subarray(0, at + 1));
    longer[at + 1] = code | 0x80;
    longer[at + 2] = 0;
    longer.set(bytes.subarray(at + 2), at + 3);
    expect(() => ORMap.decode(longer)).toThrow(DecodeError);
  });

  it('mutated or truncated shape-rich encodings give DecodeError or a valid state', () => {
    const seed = Number(process.env.SEED ?? 20261125);
    const runs = process.env.LONG ? 50_000 : 5_000;
    const rnd = mulberry32(seed);
    const base = mapOf(Array.from({ length: 12 }, (_, i) => (i % 3 ? record(i) : { a: { a: i }, list: [record(i)] }))).encode();
    for (let r = 0; r < runs; r++) {
      const b = base.slice(0, rnd() < 0.2 ? Math.floor(rnd() * base.length) : base.length);
      for (let k = 1 + Math.floor(rnd() * 3); k > 0 && b.length > 0; k--) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        const m = ORMap.decode(b);
        // a valid state: it re-encodes canonically and decodes back to the same bytes
        const again = m.encode();
        expect(ORMap.decode(again).encode()).toEqual(again);
        for (const k of m.keys()) m.get(k);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw new Error(`seed ${seed}, run ${r}: ${String(e)}`);
      }
    }
  });
});

/** Bytes of the canonical msgpack of a string of n UTF-8 bytes (ASCII here). */
const strBytes = (n: number) => n + (n < 32 ? 1 : n < 256 ? 2 : 3);

describe('ORMap value column: the expansion bound never refuses what the writer made', () => {
  const long = (c: string) => c.repeat(255);

  /** Encode, decode, re-encode: equal bytes and values; returns the encoding. */
  function exact(m: ORMap<unknown>): Uint8Array {
    const bytes = m.encode();
    const back = ORMap.decode(bytes, 'r2');
    for (const k of m.keys()) expect(back.get(k)).toEqual(m.get(k));
    expect(back.size).toBe(m.size);
    expect(back.encode()).toEqual(bytes);
    return bytes;
  }

  it('10,000 keys holding the same 255-byte string round-trip exactly, within the ratio, still compressed', () => {
    const m = new ORMap<unknown>('r1', { clock: new HLC({ now: () => 1_764_000_000_000 }) });
    for (let i = 0; i < 10_000; i++) m.setLWW(`key-${i}`, long('s'));
    const bytes = exact(m);
    const expanded = 10_000 * strBytes(255);
    // every value as a 2-byte reference would expand ~128x: the bound makes some copies literal ...
    expect(expanded).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
    expect(expanded).toBeGreaterThan((EXPANSION_RATIO / 2) * bytes.length);
    // ... yet most stay references
    expect(bytes.length).toBeLessThan(expanded / 8);
  });

  it('records with many long repeated strings, shapes of 255 bytes and key echoes round-trip exactly', () => {
    const keys = ['a', 'b', 'c'].map((c) => c.repeat(83)); // a 255-byte shape
    const m = new ORMap<unknown>('r1', { clock: new HLC({ now: () => 1_764_000_000_000 }) });
    for (let i = 0; i < 2000; i++) {
      const key = `${'id'.repeat(120)}-${String(i).padStart(5, '0')}`; // 246 chars: echoable
      m.setLWW(key, {
        id: key,
        self: [key, key, key, key],
        x: long('x'), y: long('y'), z: [long('x'), long('y'), long('z'), long('z')],
        shaped: Array.from({ length: 6 }, (_, j) => Object.fromEntries(keys.map((k) => [k, j]))),
      });
    }
    const bytes = exact(m);
    let expanded = 0;
    for (const k of m.keys()) expanded += encodeValue(m.get(k)).length;
    expect(expanded).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
    expect(bytes.length).toBeLessThan(expanded / 4);
  });

  it('a value that is one long array of copies (one item crossing the bound) round-trips exactly', () => {
    const m = new ORMap<unknown>('r1');
    m.setLWW('list', Array.from({ length: 20_000 }, (_, i) => (i % 3 === 2 ? { [long('k').slice(0, 200)]: i % 5 } : long('v'))));
    m.setLWW('list', [...(m.get('list') as unknown[]), 'tail']); // overwrite: the arena holds the new value
    const bytes = exact(m);
    expect(encodeValue(m.get('list')).length).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
  });

  it('a full string dictionary with repeats over the bound round-trips exactly', () => {
    // the first value fills the 4,096-entry dictionary (one long string first); later values repeat it
    const m = new ORMap<unknown>('r1');
    m.setLWW('a0', [long('q'), ...Array.from({ length: 5000 }, (_, i) => `u${String(i).padStart(4, '0')}`)]);
    for (let i = 1; i < 400; i++) m.setLWW(`a${i}`, Array.from({ length: 30 }, (_, j) => (j % 2 ? long('q') : `u${String(j).padStart(4, '0')}`)));
    exact(m);
  });

  it('random repetitive states round-trip exactly and stay within the ratio', () => {
    const seed = Number(process.env.SEED ?? 20261126);
    const runs = process.env.LONG ? 300 : 40;
    const rnd = mulberry32(seed);
    const pool = ['x', 'y', 'z', 'w'].map((c, i) => c.repeat([255, 200, 40, 3][i]));
    const pick = () => pool[Math.floor(rnd() * pool.length)];
    const fieldNames = ['f'.repeat(60), 'g'.repeat(60), 'h'.repeat(60), 'id'];
    const gen = (key: string, depth: number): unknown => {
      const r = rnd();
      if (depth > 2 || r < 0.35) return rnd() < 0.2 ? key : pick();
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * (depth === 0 ? 60 : 6)) }, () => gen(key, depth + 1));
      const o: Record<string, unknown> = {};
      for (const f of fieldNames) if (rnd() < 0.8) o[f] = gen(key, depth + 1);
      return o;
    };
    let nearBound = 0;
    for (let r = 0; r < runs; r++) {
      const m = new ORMap<unknown>('r1');
      const n = 1 + Math.floor(rnd() * 150);
      for (let i = 0; i < n; i++) {
        const key = rnd() < 0.5 ? `key-${'k'.repeat(Math.floor(rnd() * 60))}-${i}` : `k${i}`;
        m.setLWW(key, gen(key, 0));
      }
      try {
        const bytes = exact(m);
        let expanded = 0;
        for (const k of m.keys()) expanded += encodeValue(m.get(k)).length;
        expect(expanded).toBeLessThanOrEqual(EXPANSION_RATIO * bytes.length);
        if (expanded > (EXPANSION_RATIO / 2) * bytes.length) nearBound++;
      } catch (e) {
        throw new Error(`seed ${seed}, run ${r}: ${String(e)}`);
      }
    }
    // the states are repetitive enough that the bound shapes their encodings
    expect(nearBound).toBeGreaterThan(runs / 2);
  });
});

describe('ORMap value column: length prefixes of values written in place', () => {
  /** Occurrences of the byte sequence `seq` in b. */
  function count(b: Uint8Array, seq: number[]): number {
    let n = 0;
    for (let i = 0; i + seq.length <= b.length; i++) if (seq.every((x, j) => b[i + j] === x)) n++;
    return n;
  }

  it('a value whose references make it longer than written (its prefix grows a byte) round-trips exactly', () => {
    const m = new ORMap<unknown>('r1', { clock: new HLC({ now: () => 1_764_000_000_000 }) });
    // 70 one-key shapes first, so the shape of {"": x} gets index 70 (code 141, a 2-byte varuint): its 3-byte
    // reference stands for 2 bytes (fixmap header, empty key)
    m.setLWW('a', Array.from({ length: 70 }, (_, i) => ({ [`s${String(i).padStart(2, '0')}`]: 0 })));
    m.setLWW('b', { '': 1 });
    const list = Array.from({ length: 41 }, (_, i) => ({ '': i % 3 })); // 126 bytes: a 1-byte prefix
    expect(encodeValue(list).length).toBe(126);
    m.setLWW('c', list);
    const bytes = m.encode();
    expect(count(bytes, [0xc1, 0x8d, 0x01])).toBe(41); // 41 x 4 + 3 = 167 bytes: a 2-byte prefix
    const back = ORMap.decode(bytes, 'r2');
    for (const k of ['a', 'b', 'c']) expect(back.get(k)).toEqual(m.get(k));
    expect(back.encode()).toEqual(bytes);
  });

  it('values around the 1- and 2-byte prefix sizes, compressed across them or not, round-trip exactly', () => {
    const seed = Number(process.env.SEED ?? 20261203);
    const rnd = mulberry32(seed);
    for (let r = 0; r < 30; r++) {
      const m = new ORMap<unknown>('r1', { clock: new HLC({ now: () => 1_764_000_000_000 }) });
      for (let i = 0; i < 8; i++) {
        // a record of about 127 or 16,383 bytes: a few repeated strings and a pad that tunes its length
        const big = rnd() < 0.1;
        const target = (big ? 16_383 : 127) + Math.floor(rnd() * 7) - 3;
        const rec: Record<string, unknown> = { id: `row-${i}`, status: rnd() < 0.5 ? 'running' : 'stopped', node: 'node-eu-west-1' };
        const base = encodeValue({ ...rec, pad: '' }).length;
        rec.pad = 'p'.repeat(Math.max(0, target - base - (target - base > 31 ? (target - base > 255 ? 2 : 1) : 0)));
        m.setLWW(`row-${i}`, rec);
      }
      try {
        const bytes = m.encode();
        const back = ORMap.decode(bytes, 'r2');
        for (const k of m.keys()) expect(back.get(k)).toEqual(m.get(k));
        expect(back.encode()).toEqual(bytes);
      } catch (e) {
        throw new Error(`seed ${seed}, run ${r}: ${String(e)}`);
      }
    }
  });
});
