import { describe, expect, it } from 'vitest';
import { GSet, LWWRegister, MVRegister, ORMap, ORSet, RGA, TwoPSet } from '../../src/crdt/index.js';
import { decodeValue, encodeValue } from '../../src/codec/value.js';

/**
 * A value read from a CRDT is the caller's own: writing into a byte array it holds must not change the state
 * (its canonical bytes are what every replica compares and exchanges).
 */
interface Holder {
  encode(): Uint8Array;
  read(): unknown;
}

/** Values holding byte arrays at the top level and nested, in shapes the fast reader and msgpackr each take. */
const VALUES: (() => unknown)[] = [
  () => new Uint8Array([1, 2, 3, 4, 5]),
  () => ({ b: new Uint8Array([1, 2, 3, 4, 5]) }),
  () => ({ id: 'vm-1', blobs: [new Uint8Array([9, 8, 7]), new Uint8Array(300).fill(6)], when: new Date(1764000000000) }),
];

function arraysIn(v: unknown, out: Uint8Array[] = []): Uint8Array[] {
  if (v instanceof Uint8Array) out.push(v);
  else if (Array.isArray(v)) for (const x of v) arraysIn(x, out);
  else if (v !== null && typeof v === 'object' && !(v instanceof Date)) for (const x of Object.values(v)) arraysIn(x, out);
  return out;
}

const CASES: [string, (v: unknown) => Holder][] = [
  ['ORMap', (v) => { const m = new ORMap('a'); m.setLWW('k', v); return { encode: () => m.encode(), read: () => m.get('k') }; }],
  ['ORMap (decoded)', (v) => { const m0 = new ORMap('a'); m0.setLWW('k', v); const m = ORMap.decode(m0.encode()); return { encode: () => m.encode(), read: () => m.get('k') }; }],
  ['ORMap (merged)', (v) => { const m0 = new ORMap('a'); m0.setLWW('k', v); const m = new ORMap('b'); m.merge(m0); return { encode: () => m.encode(), read: () => m.get('k') }; }],
  ['RGA', (v) => { const r = new RGA('a'); r.insert(0, v); return { encode: () => r.encode(), read: () => r.get(0) }; }],
  ['RGA (decoded)', (v) => { const r0 = new RGA('a'); r0.insert(0, v); const r = RGA.decode(r0.encode()); return { encode: () => r.encode(), read: () => r.toArray()[0] }; }],
  ['LWWRegister', (v) => { const r = new LWWRegister('a'); r.set(v); return { encode: () => r.encode(), read: () => r.get() }; }],
  ['LWWRegister (decoded)', (v) => { const r0 = new LWWRegister('a'); r0.set(v); const r = LWWRegister.decode(r0.encode()); return { encode: () => r.encode(), read: () => r.get() }; }],
  ['MVRegister', (v) => { const r = new MVRegister('a'); r.set(v); return { encode: () => r.encode(), read: () => r.values()[0] }; }],
  ['ORSet', (v) => { const s = new ORSet('a'); s.add(v); return { encode: () => s.encode(), read: () => s.values()[0] }; }],
  ['GSet (decoded)', (v) => { const s0 = new GSet('a'); s0.add(v); const s = GSet.decode(s0.encode()); return { encode: () => s.encode(), read: () => s.values()[0] }; }],
  ['TwoPSet', (v) => { const s = new TwoPSet('a'); s.add(v); return { encode: () => s.encode(), read: () => s.values()[0] }; }],
];

describe('values read from a CRDT are the caller\'s own', () => {
  for (const [name, make] of CASES) {
    it(`${name}: writing into a byte array read from it leaves its encoding unchanged`, () => {
      for (const mk of VALUES) {
        const h = make(mk());
        const before = h.encode();
        const arrays = arraysIn(h.read());
        expect(arrays.length).toBeGreaterThan(0);
        for (const a of arrays) a.fill(0xee);
        // (a read may return the same cached object again, documented as read-only; the state is what counts)
        expect(h.encode()).toEqual(before);
      }
    });
  }

  it('decodeValue never returns a view of its input', () => {
    for (const mk of VALUES) {
      const bytes = encodeValue(mk()).slice();
      const copy = bytes.slice();
      for (const a of arraysIn(decodeValue(bytes))) a.fill(0xee);
      expect(bytes).toEqual(copy);
    }
  });
});
