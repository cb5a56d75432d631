import { describe, expect, it } from 'vitest';
import { HLC, hlcPack } from '../../src/clock/hlc.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { ClockSkewError, DecodeError, ValidationError } from '../../src/errors.js';
import { type LawSpec, type Rng, SEED, checkLaws, makeRng, mutate, randomValue } from './laws.js';
import { Writer } from '../../src/codec/binary.js';
import { decodeValue, encodeValue } from '../../src/codec/value.js';
import { CODEC_VERSION, CRDT_TYPE } from '../../src/crdt/types.js';
import { checkMergeReportsExactly } from './merge-report.js';

/** An HLC on a virtual clock that `rng` jitters inside a small window (well within the max drift). */
function jitterClock(rng: { int(n: number): number }): HLC {
  return new HLC({ now: () => 1_700_000_000_000 + rng.int(5) });
}

const spec: LawSpec<LWWRegister> = {
  name: 'LWWRegister',
  make: (id, rng) => new LWWRegister(id, { clock: jitterClock(rng) }),
  randomOp: (rng, r) => r.set(randomValue(rng)),
  decode: (b, id) => LWWRegister.decode(b, id, { clock: new HLC({ now: () => 1_700_000_000_000 }) }),
  view: (r) => [r.get(), r.timestamp, r.writer],
};

describe('crdt/lww-register', () => {
  checkLaws(spec);
  checkMergeReportsExactly(spec);

  it('the later HLC timestamp wins', () => {
    let t = 1000;
    const clock = new HLC({ now: () => t });
    const a = new LWWRegister<string>('a', { clock });
    const b = new LWWRegister<string>('b', { clock: new HLC({ now: () => t }) });
    a.set('old');
    t += 5;
    b.set('new');
    a.merge(b);
    expect(a.get()).toBe('new');
    b.merge(a);
    expect(b.get()).toBe('new');
    expect(a.timestamp).toBe(hlcPack(1005, 0));
    expect(a.writer).toBe('b');
  });

  it('an equal timestamp is broken by the replica id, the same way on both sides', () => {
    const a = new LWWRegister<string>('node-a', { clock: new HLC({ now: () => 42 }) });
    const b = new LWWRegister<string>('node-b', { clock: new HLC({ now: () => 42 }) });
    a.set('from-a');
    b.set('from-b');
    expect(a.timestamp).toBe(b.timestamp);
    const ab = a.clone();
    ab.merge(b);
    const ba = b.clone();
    ba.merge(a);
    expect(ab.get()).toBe('from-b');
    expect(ba.get()).toBe('from-b');
    expect(ab.encode()).toEqual(ba.encode());
  });

  it('a local write after a merge wins over everything seen (the merge advances the HLC)', () => {
    const slow = new LWWRegister<number>('slow', { clock: new HLC({ now: () => 1000 }) });
    const fast = new LWWRegister<number>('fast', { clock: new HLC({ now: () => 5000 }) });
    fast.set(1);
    slow.merge(fast);
    slow.set(2);
    expect(slow.timestamp).toBeGreaterThan(fast.timestamp);
    fast.merge(slow);
    expect(fast.get()).toBe(2);
  });

  it('a remote write beyond the max drift throws ClockSkewError and changes nothing', () => {
    const local = new LWWRegister<string>('l', { clock: new HLC({ now: () => 1_000, maxDriftMs: 100 }) });
    local.set('mine');
    const before = local.encode();
    const remote = new LWWRegister<string>('r', { clock: new HLC({ now: () => 1_000 + 101 }) });
    remote.set('future');
    expect(() => local.merge(remote)).toThrow(ClockSkewError);
    expect(local.encode()).toEqual(before);
    expect(local.get()).toBe('mine');
    const near = new LWWRegister<string>('n', { clock: new HLC({ now: () => 1_000 + 100 }) });
    near.set('near');
    local.merge(near);
    expect(local.get()).toBe('near');
  });

  it('stores objects by value: later mutation of the caller object changes nothing', () => {
    const r = new LWWRegister<{ n: number }>('a', { clock: new HLC({ now: () => 1 }) });
    const v = { n: 1 };
    r.set(v);
    v.n = 2;
    expect(LWWRegister.decode(r.encode()).get()).toEqual({ n: 1 });
    expect(r.get()).toEqual({ n: 1 });
  });

  it('get() is undefined before any write; set(undefined) stores null', () => {
    const r = new LWWRegister('a', { clock: new HLC({ now: () => 1 }) });
    expect(r.get()).toBeUndefined();
    expect(r.timestamp).toBe(0);
    expect(LWWRegister.decode(r.encode()).get()).toBeUndefined();
    r.set(undefined);
    expect(r.get()).toBeNull();
    expect(LWWRegister.decode(r.encode()).get()).toBeNull();
  });

  it('rejects unencodable values with ValidationError, changing nothing', () => {
    const r = new LWWRegister<unknown>('a', { clock: new HLC({ now: () => 1 }) });
    r.set('ok');
    const before = r.encode();
    expect(() => r.set(5n)).toThrow(ValidationError);
    expect(r.encode()).toEqual(before);
  });

  it('uses a process-wide default HLC when none is injected (timestamps never go backwards)', () => {
    const a = new LWWRegister<number>('a');
    const b = new LWWRegister<number>('b');
    a.set(1);
    b.set(2);
    expect(b.timestamp).toBeGreaterThan(a.timestamp);
    expect(a.clock).toBe(b.clock);
  });

  it('decode rejects a bad flag', () => {
    const r = new LWWRegister('a', { clock: new HLC({ now: () => 1 }) });
    const bytes = r.encode();
    bytes[2] = 2;
    expect(() => LWWRegister.decode(bytes)).toThrow(DecodeError);
  });

  it('merge reports whether the write was replaced, including equal-timestamp ties', () => {
    const a = new LWWRegister<string>('node-a', { clock: new HLC({ now: () => 42 }) });
    const b = new LWWRegister<string>('node-b', { clock: new HLC({ now: () => 42 }) });
    expect(a.merge(b)).toBe(false); // nothing written on either side
    a.set('from-a');
    expect(a.merge(b)).toBe(false); // the other never wrote
    expect(b.merge(a)).toBe(true); // an empty register adopts any write
    b.set('from-b');
    const a2 = new LWWRegister<string>('node-a', { clock: new HLC({ now: () => 42 }) });
    a2.set('tie-a');
    const b2 = new LWWRegister<string>('node-b', { clock: new HLC({ now: () => 42 }) });
    b2.set('tie-b');
    expect(a2.timestamp).toBe(b2.timestamp);
    // equal timestamps: the larger replica id wins; the smaller never replaces it
    expect(b2.merge(a2)).toBe(false);
    expect(b2.get()).toBe('tie-b');
    expect(a2.merge(b2)).toBe(true);
    expect(a2.get()).toBe('tie-b');
    expect(a2.merge(b2)).toBe(false);
    // an older write never replaces a newer one
    expect(b.merge(a)).toBe(false);
    expect(a.merge(b)).toBe(true);
    expect(a.merge(LWWRegister.decode(b.encode(), 'x', { clock: new HLC({ now: () => 42 }) }))).toBe(false);
  });

  it('merge reports a full tie (same timestamp and writer) as a change only when the value bytes win', () => {
    const w1 = new LWWRegister<number>('w', { clock: new HLC({ now: () => 7 }) });
    const w2 = new LWWRegister<number>('w', { clock: new HLC({ now: () => 7 }) });
    w1.set(1);
    w2.set(2); // not issued by honest replicas: same (timestamp, writer), different bytes
    expect(w1.timestamp).toBe(w2.timestamp);
    expect(w2.merge(w1)).toBe(false); // smaller bytes lose
    expect(w1.merge(w2)).toBe(true);
    expect(w1.get()).toBe(2);
    expect(w1.encode()).toEqual(w2.encode());
    const same = new LWWRegister<number>('w', { clock: new HLC({ now: () => 7 }) });
    same.set(2);
    expect(w1.merge(same)).toBe(false); // identical write
  });
});

describe('LWWRegister values kept as given', () => {
  it('reads on the writer what every other replica reads (-0, lone surrogates)', () => {
    for (const v of [-0, 'a\uD800b', '\uDC00', 'ok', 0, 1.5]) {
      const r = new LWWRegister<unknown>('a');
      r.set(v);
      const back = LWWRegister.decode<unknown>(r.encode(), 'b');
      expect(Object.is(r.get(), back.get()), JSON.stringify(v)).toBe(true);
    }
  });
});

describe('LWWRegister encode and decode fast paths against the general path', () => {
  /** Values of every kind the codec carries: the fast reader's subset and what it leaves to msgpackr. */
  function anyValue(rng: Rng, depth = 0): unknown {
    switch (rng.int(depth > 2 ? 9 : 12)) {
      case 0: return rng.pick([0, -0, 1, -1, 127, 128, -33, 65535, 2 ** 32, -(2 ** 31) - 1, 2 ** 53, 1.5, NaN, Infinity]);
      case 1: return rng.u32() - 2 ** 31;
      case 2: return `s${rng.int(1000)}`.repeat(1 + rng.int(rng.bool(0.1) ? 40 : 3));
      case 3: return rng.pick(['é', 'a\uD800b', '\uDC00', '€uro', '', '__proto__', 'x'.repeat(300)]);
      case 4: return rng.bool();
      case 5: return null;
      case 6: return new Date(rng.pick([0, 1000, 1_764_000_000_123, -5, 8.64e15, 2 ** 34 * 1000]));
      case 7: return Uint8Array.from({ length: rng.int(rng.bool(0.2) ? 300 : 5) }, () => rng.int(256));
      case 8: return rng.u32() / 7;
      case 9:
      case 10: {
        const o: Record<string, unknown> = {};
        for (let i = rng.int(12); i > 0; i--) o[rng.pick(['id', 'status', 'b', 'a', '0', '10', 'é', `k${rng.int(20)}`])] = anyValue(rng, depth + 1);
        return o;
      }
      default:
        return Array.from({ length: rng.int(rng.bool(0.1) ? 20 : 5) }, () => anyValue(rng, depth + 1));
    }
  }

  /** The encoding as a Writer writes it (the general path). */
  function writerBytes(ts: number, writer: string, value: Uint8Array): Uint8Array {
    const w = new Writer(16);
    w.u8(CODEC_VERSION);
    w.u8(CRDT_TYPE.LWWRegister);
    w.u8(1);
    w.varuint(ts);
    w.string(writer);
    w.bytes(value);
    return w.finish();
  }

  it('decode then encode gives back the Writer bytes; get() is what decodeValue reads', () => {
    const rng = makeRng(SEED ^ 0x1ee7);
    const ids = ['a', 'node-us-east-1', 'é-node', 'x'.repeat(127), 'y'.repeat(128), 'ü'.repeat(50), ''];
    for (let i = 0; i < 3000; i++) {
      const ts = rng.pick([0, 1, 127, 128, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 35 - 1, 2 ** 35, 2 ** 49, Number.MAX_SAFE_INTEGER, 1_764_000_000_000 * 2048 + rng.int(2048), rng.u32() * 2048]);
      const value = encodeValue(anyValue(rng)).slice();
      const bytes = writerBytes(ts, rng.pick(ids), value);
      const msg = `SEED=${SEED} case ${i}: ${Buffer.from(bytes).toString('hex')}`;
      const r = LWWRegister.decode<unknown>(bytes, 'r');
      expect(Buffer.from(r.encode()).toString('hex'), msg).toBe(Buffer.from(bytes).toString('hex'));
      expect(r.get(), msg).toStrictEqual(decodeValue(value));
      expect(Buffer.from(r.encode()).toString('hex'), msg).toBe(Buffer.from(bytes).toString('hex'));
      // and written locally: the encoding carries encodeValue's bytes
      const local = new LWWRegister<unknown>('w', { clock: new HLC({ now: () => 1_700_000_000_000 }) });
      const v = anyValue(rng);
      local.set(v);
      expect(Buffer.from(local.encode()).toString('hex'), msg).toBe(Buffer.from(writerBytes(local.timestamp, 'w', encodeValue(v))).toString('hex'));
    }
  });

  it('malformed value bytes are a DecodeError from decode itself, whichever reader would read them', () => {
    const rng = makeRng(SEED ^ 0xbad);
    let failed = 0;
    for (let i = 0; i < 3000; i++) {
      const value = encodeValue(anyValue(rng)).slice();
      const m = value.length > 0 && rng.bool(0.7) ? mutate(rng, value) : value.subarray(0, rng.int(value.length + 1));
      if (m.length === 0) continue;
      let ok: boolean;
      try {
        decodeValue(m.slice());
        ok = true;
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        ok = false;
      }
      const bytes = writerBytes(5, 'w', m);
      const msg = `SEED=${SEED} case ${i}: ${Buffer.from(bytes).toString('hex')}`;
      if (ok) {
        expect(LWWRegister.decode<unknown>(bytes).get(), msg).toStrictEqual(decodeValue(m.slice()));
      } else {
        failed++;
        expect(() => LWWRegister.decode(bytes), msg).toThrow(DecodeError);
      }
    }
    expect(failed).toBeGreaterThan(100);
  });
});

describe('LWWRegister values read back from bytes are the reader\'s own', () => {
  it('writing into a Uint8Array from get() changes neither the register nor its encoding', () => {
    const r = new LWWRegister<unknown>('a');
    r.set({ bin: new Uint8Array([1, 2, 3]), when: new Date(5) });
    const before = Buffer.from(r.encode()).toString('hex');
    ((r.get() as { bin: Uint8Array }).bin)[0] = 9;
    expect(Buffer.from(r.encode()).toString('hex')).toBe(before);
    const d = LWWRegister.decode<unknown>(r.encode());
    ((d.get() as { bin: Uint8Array }).bin)[1] = 7;
    expect(Buffer.from(d.encode()).toString('hex')).toBe(before);
    expect(LWWRegister.decode<unknown>(d.encode()).get()).toStrictEqual({ bin: new Uint8Array([1, 2, 3]), when: new Date(5) });
  });
});
