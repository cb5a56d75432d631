import { describe, expect, it } from 'vitest';
import { HLC, hlcPack } from '../../src/clock/hlc.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { ClockSkewError, DecodeError, ValidationError } from '../../src/errors.js';
import { type LawSpec, checkLaws, randomValue } from './laws.js';
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
