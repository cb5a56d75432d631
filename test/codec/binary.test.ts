import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Reader, Writer } from '../../src/codec/binary.js';
import { DecodeError } from '../../src/errors.js';
import { VectorClock } from '../../src/clock/vector-clock.js';
import { GCounter, GSet, LWWRegister, MVRegister, ORMap, ORSet, PNCounter, RGA, TwoPSet, decodeCrdt } from '../../src/crdt/index.js';

const SEED = Number(process.env.SEED ?? 0x5eed);

describe('codec/binary', () => {
  it('round-trips varuint, varint, f64, strings and bytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.maxSafeNat(), fc.integer({ min: -(2 ** 52 - 1), max: 2 ** 52 - 1 }), fc.double(), fc.string(), fc.uint8Array())),
        (items) => {
          const w = new Writer(4);
          for (const [u, i, d, s, b] of items) {
            w.varuint(u);
            w.varint(i);
            w.f64(d);
            w.string(s);
            w.bytes(b);
          }
          const r = new Reader(w.finish());
          for (const [u, i, d, s, b] of items) {
            expect(r.varuint()).toBe(u);
            expect(r.varint()).toBe(i);
            expect(Object.is(r.f64(), d)).toBe(true);
            expect(r.string()).toBe(s);
            expect(r.bytes()).toEqual(b);
          }
          r.done();
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('throws DecodeError on truncated input, overlong varints and bad UTF-8', () => {
    const w = new Writer();
    w.varuint(2 ** 40);
    const bytes = w.finish();
    expect(() => new Reader(bytes.subarray(0, bytes.length - 1)).varuint()).toThrow(DecodeError);
    expect(() => new Reader(new Uint8Array(9).fill(0xff)).varuint()).toThrow(DecodeError);
    expect(() => new Reader(new Uint8Array([0x80, 0x00])).varuint()).toThrow(DecodeError);
    expect(() => new Reader(new Uint8Array([2, 0xc3, 0x28])).string()).toThrow(DecodeError);
    expect(() => new Reader(new Uint8Array([5, 1, 2])).bytes()).toThrow(DecodeError);
    expect(() => new Reader(new Uint8Array([0xff, 0xff, 0x03])).count(1)).toThrow(DecodeError);
  });

  it('rejects out-of-range integers on write with RangeError', () => {
    const w = new Writer();
    expect(() => w.varuint(-1)).toThrow(RangeError);
    expect(() => w.varuint(2 ** 53)).toThrow(RangeError);
    expect(() => w.varuint(1.5)).toThrow(RangeError);
    expect(() => w.varint(2 ** 52)).toThrow(RangeError);
  });
});

describe('codec/binary strings', () => {
  it('keeps a leading U+FEFF (byte-order mark) in strings', () => {
    const w = new Writer();
    w.string('\ufeffid');
    expect(new Reader(w.finish()).string()).toBe('\ufeffid');
  });

  it('round-trips strings at every length around the ASCII fast paths, ASCII or not, and rejects bad UTF-8', () => {
    for (const n of [0, 1, 12, 13, 31, 32, 33, 64, 127, 128, 200]) {
      for (const tail of ['', 'é', '\u{1F600}', '\u0000']) {
        const s = 'k'.repeat(n) + tail;
        const w = new Writer(4);
        w.string(s);
        w.u8(7);
        const r = new Reader(w.finish());
        expect(r.string()).toBe(s);
        expect(r.u8()).toBe(7);
        r.done();
      }
    }
    // a short string whose bytes are not valid UTF-8
    expect(() => new Reader(Uint8Array.of(3, 0x61, 0xff, 0x62)).string()).toThrow(DecodeError);
    expect(() => new Reader(Uint8Array.of(5, 0x61, 0x62)).string()).toThrow(DecodeError);
  });

  it('a Writer refuses to be written after finish()', () => {
    const w = new Writer(8);
    w.string('abc');
    expect(w.finish().length).toBe(4);
    expect(() => w.string('more than the first buffer holds, surely')).toThrow();
  });

  describe('input that is not a Uint8Array is a DecodeError everywhere', () => {
    const notBytes: [string, unknown][] = [
      ['null', null],
      ['undefined', undefined],
      ['a string', 'str'],
      ['a plain object', {}],
      ['a number', 42],
      ['an array', [1, 2, 3]],
      ['an ArrayBuffer', new ArrayBuffer(4)],
    ];
    const decoders: [string, (bytes: Uint8Array) => unknown][] = [
      ['GCounter', (b) => GCounter.decode(b)],
      ['PNCounter', (b) => PNCounter.decode(b)],
      ['GSet', (b) => GSet.decode(b)],
      ['TwoPSet', (b) => TwoPSet.decode(b)],
      ['ORSet', (b) => ORSet.decode(b)],
      ['LWWRegister', (b) => LWWRegister.decode(b)],
      ['MVRegister', (b) => MVRegister.decode(b)],
      ['ORMap', (b) => ORMap.decode(b)],
      ['RGA', (b) => RGA.decode(b)],
      ['VectorClock', (b) => VectorClock.decode(b)],
      ['decodeCrdt', (b) => decodeCrdt(b)],
      ['Reader', (b) => new Reader(b)],
    ];

    it('covers all nine CRDT types', () => {
      expect(decoders.filter(([n]) => n !== 'VectorClock' && n !== 'decodeCrdt' && n !== 'Reader')).toHaveLength(9);
    });

    for (const [name, decode] of decoders) {
      it(`${name}: null, undefined, a string, an object, ... throw DecodeError (not TypeError)`, () => {
        for (const [what, input] of notBytes) {
          let err: unknown;
          try {
            decode(input as Uint8Array);
          } catch (e) {
            err = e;
          }
          expect(err, `${name}.decode(${what})`).toBeInstanceOf(DecodeError);
        }
      });
    }

    it('a replica id next to bad input does not change the outcome', () => {
      expect(() => GCounter.decode(null as unknown as Uint8Array, 'r1')).toThrow(DecodeError);
      expect(() => ORMap.decode(undefined as unknown as Uint8Array, 'r1')).toThrow(DecodeError);
    });

    it('a Reader still reads a sub-range [start, end) when both are given', () => {
      const r = new Reader(Uint8Array.of(9, 1, 2, 3, 9), 1, 4);
      expect([r.u8(), r.u8(), r.u8()]).toEqual([1, 2, 3]);
      expect(() => r.u8()).toThrow(DecodeError);
    });
  });
});

describe('codec/binary Writer.finish', () => {
  it('gives each result bytes of its own, across the fresh-array, slab and large sizes (seeded)', () => {
    let s = SEED >>> 0;
    const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const kept: [Uint8Array, number[]][] = [];
    for (let i = 0; i < 2000; i++) {
      const n = Math.floor(rnd() * (rnd() < 0.1 ? 5000 : 1100));
      const w = new Writer(Math.max(1, Math.floor(rnd() * 64)));
      const want: number[] = [];
      for (let j = 0; j < n; j++) {
        const b = Math.floor(rnd() * 256);
        w.u8(b);
        want.push(b);
      }
      const out = w.finish();
      expect(out.length, `seed ${SEED}`).toBe(n);
      expect(Array.from(out), `seed ${SEED}`).toEqual(want);
      // a caller may write into its result: no other result changes
      if (n > 0 && rnd() < 0.3) {
        out[0] ^= 0xff;
        want[0] ^= 0xff;
      }
      kept.push([out, want]);
    }
    for (const [out, want] of kept) expect(Array.from(out), `seed ${SEED}`).toEqual(want);
  });
});

describe('codec/binary outputs and state', () => {
  it('transferring an encoding\'s buffer leaves every CRDT\'s state intact (outputs never share a buffer with state)', () => {
    const regs: LWWRegister<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const w = new LWWRegister<unknown>(`w${i}`);
      w.set({ id: `vm-${i}`, status: 'running', note: 'x'.repeat(80 + i) });
      regs.push(LWWRegister.decode(w.encode(), `r${i}`)); // keeps its value bytes, decoded on first get()
      const s = new ORSet<string>('s');
      for (let j = 0; j < 10; j++) s.add(`element-${i}-${j}`);
      const out = s.encode();
      expect(out.length).toBeGreaterThan(64);
      structuredClone(out.buffer, { transfer: [out.buffer] }); // detaches out's buffer
      expect(out.length).toBe(0);
    }
    for (let i = 0; i < regs.length; i++) expect(regs[i]!.get()).toEqual({ id: `vm-${i}`, status: 'running', note: 'x'.repeat(80 + i) });
  });

  it('finish() twice throws instead of returning bytes of other encodings', () => {
    const w = new Writer(16);
    for (let i = 0; i < 100; i++) w.u8(i);
    expect(w.finish().length).toBe(100);
    expect(() => w.finish()).toThrow(/twice/);
  });

  it('a counter\'s cached encoding is an array of its own (a kept view would pin an output slab)', () => {
    const g = new GCounter('a');
    for (let i = 0; i < 8; i++) {
      const o = new GCounter(`replica-${i}`);
      o.increment(i + 1);
      g.merge(o);
    }
    const first = g.encode();
    expect(first.length).toBeGreaterThan(64);
    const enc = (g as unknown as { enc: Uint8Array }).enc;
    expect(enc.byteOffset).toBe(0);
    expect(enc.buffer.byteLength).toBe(enc.length);
    expect(Array.from(g.encode())).toEqual(Array.from(first));
  });
});
