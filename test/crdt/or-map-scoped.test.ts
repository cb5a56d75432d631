/**
 * ORMap's scoped anti-entropy pieces: `deltaSince(peerContext)` and `mergeScoped(delta)`.
 * Properties on random histories of 3 replicas (seeded fast-check; SEED replays, LONG raises the runs).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HLC } from '../../src/clock/hlc.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { DecodeError } from '../../src/errors.js';
import { makeRng, randomValue, runs, SEED, type Rng } from './laws.js';

const KEYS = ['a', 'b', 'c', 'd', 'e', 'vm-1', 'vm-2', 'ключ'];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const clock = (rng: Rng): HLC => new HLC({ now: () => 1_700_000_000_000 + rng.int(5) });
const decode = (b: Uint8Array): ORMap => ORMap.decode(b, 'x', { clock: new HLC({ now: () => 1_700_000_000_000 }) });

/** Three replicas after a random history of writes (deletes and nested writes when `full`) and full-state merges. */
function history(seed: number, full: boolean): ORMap[] {
  const rng = makeRng(seed);
  const reps = ['r0', 'r1', 'r2'].map((id) => new ORMap(id, { clock: clock(rng) }));
  const steps = 5 + rng.int(40);
  for (let s = 0; s < steps; s++) {
    const m = rng.pick(reps);
    const roll = rng.float();
    if (roll < 0.2) m.merge(decode(rng.pick(reps).encode()));
    else if (!full || roll < 0.65) m.setLWW(rng.pick(KEYS), randomValue(rng));
    else if (roll < 0.8) m.delete(rng.pick(KEYS));
    else if (roll < 0.9) m.counter(rng.pick(KEYS)).increment(1 + rng.int(3));
    else m.orSet(rng.pick(KEYS)).add(rng.int(3));
  }
  return reps;
}

/** `to` merges `from`'s `deltaSince(to's context)`, sent through the wire encodings. */
function scopedStep(from: ORMap, to: ORMap): void {
  const d = from.deltaSince(to.contextBytes());
  to.mergeScoped(decode(d.encode()));
}

function joined(x: ORMap, y: ORMap): ORMap {
  const j = decode(x.encode());
  j.merge(decode(y.encode()));
  return j;
}

const opts = (n: number) => ({ seed: SEED, numRuns: runs(n, 10_000) });

/** lo <= mid <= hi: merging lo into mid, and mid into hi, changes nothing (on decoded copies). */
function expectBetween(lo: ORMap, mid: ORMap, hi: ORMap): void {
  const m = decode(mid.encode());
  m.merge(decode(lo.encode()));
  expect(hex(m.encode())).toBe(hex(mid.encode()));
  const h = decode(hi.encode());
  h.merge(decode(mid.encode()));
  expect(hex(h.encode())).toBe(hex(hi.encode()));
}

/** A map 'a' of 1,000 keys on a fixed clock, and a decoded copy. */
function twins(): [ORMap<number>, ORMap<number>] {
  const t = 1_700_000_000_000;
  const a = new ORMap<number>('a', { clock: new HLC({ now: () => t }) });
  for (let i = 0; i < 1000; i++) a.setLWW(`k${i}`, i);
  return [a, decode(a.encode()) as ORMap<number>];
}

describe('crdt/or-map scoped anti-entropy', () => {
  it('a scoped merge lands between the receiver and the full join (b <= b + scoped(a) <= b + a), idempotently', () => {
    fc.assert(
      fc.property(fc.integer(), fc.boolean(), (seed, full) => {
        const [a, b] = history(seed, full);
        const join = joined(b, a);
        const b2 = decode(b.encode());
        scopedStep(a, b2);
        // b <= b2 <= join: merging b into b2, or b2 into the join, changes nothing
        expectBetween(b, b2, join);
        // idempotent
        const b3 = decode(b2.encode());
        scopedStep(a, b3);
        expect(hex(b3.encode())).toBe(hex(b2.encode()));
      }),
      opts(500),
    );
  });

  it('with writes only (no deletes), one scoped exchange each way gives both replicas the full join', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const [a, b] = history(seed, false);
        const join = joined(a, b);
        const b2 = decode(b.encode());
        scopedStep(a, b2);
        const a2 = decode(a.encode());
        scopedStep(b2, a2);
        expect(hex(a2.encode())).toBe(hex(join.encode()));
        expect(hex(b2.encode())).toBe(hex(join.encode()));
      }),
      opts(500),
    );
  });

  it('the delta carries only the keys holding a dot the peer has not seen', () => {
    const [a, b] = twins();
    a.setLWW('k5', -5);
    a.setLWW('k700', -700);
    a.delete('k9'); // a removal leaves no dot: not in the delta, and not applied by the scoped merge
    const d = a.deltaSince(b.contextBytes());
    expect(d.keys()).toEqual(['k5', 'k700']);
    expect(d.encode().length).toBeLessThan(200);
    b.mergeScoped(decode(d.encode()) as ORMap<number>);
    expect(b.get('k5')).toBe(-5);
    expect(b.get('k700')).toBe(-700);
    expect(b.get('k9')).toBe(9);
    // nothing new on b for a
    expect(b.deltaSince(a.contextBytes()).size).toBe(0);
    // a full merge completes the removal
    b.merge(decode(a.encode()) as ORMap<number>);
    expect(hex(b.encode())).toBe(hex(a.encode()));
  });

  it('retired parts: states without rows within the size asked, below the replica, safe to merge anywhere, and with its rows the whole state', () => {
    fc.assert(
      fc.property(fc.integer(), fc.boolean(), fc.integer({ min: 41, max: 160 }), (seed, full, maxBytes) => {
        const [a, b] = history(seed, full);
        const parts = a.retiredParts(maxBytes);
        expect(parts.length).toBeGreaterThan(0);
        const join = joined(b, a);
        const a2 = decode(a.encode());
        const b2 = decode(b.encode());
        for (const p of parts) {
          const bytes = p.encode();
          // within the size asked, except a part holding one hidden nested state bigger than that (documented)
          if (bytes.length > maxBytes) expect((p as unknown as { nested: Map<string, unknown> }).nested.size, `part of ${bytes.length} bytes`).toBe(1);
          else expect(bytes.length).toBeLessThanOrEqual(maxBytes);
          const d = decode(bytes);
          expect(d.size).toBe(0);
          a2.merge(d);
          b2.merge(decode(bytes));
        }
        // below a: merging them changes nothing there
        expect(hex(a2.encode())).toBe(hex(a.encode()));
        // with a's rows (and their dots) they make a's whole state
        const rows = decode(a.deltaForKeys(a.keys()).encode());
        for (const p of parts) rows.merge(decode(p.encode()));
        expect(hex(rows.encode())).toBe(hex(a.encode()));
        // b <= b2 <= b + a
        expectBetween(b, b2, join);
      }),
      opts(500),
    );
  });

  it('retired parts carry a context difference alone: a replica holding the same rows then holds the same state', () => {
    const [a, b] = twins();
    // every other key written twice (the first dot retired at once), or written and deleted
    for (let i = 0; i < 1000; i += 2) {
      a.setLWW(`k${i}`, -1);
      if (i % 4 === 0) a.setLWW(`k${i}`, -2);
      else a.delete(`k${i}`);
    }
    // b gets the rows as bucket slices carry them (the rows' dots and the dots b held that a retired)
    const all = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    b.merge(decode(a.deltaForKeys(all, decode(b.encode()) as ORMap<number>).encode()) as ORMap<number>);
    expect(b.keys()).toEqual(a.keys());
    expect(hex(b.encode())).not.toBe(hex(a.encode()));
    expect(b.contextBytes().length).toBeGreaterThan(500); // a cloud of every other dot; a's is one vector entry
    expect(a.contextBytes().length).toBeLessThan(8);
    const parts = a.retiredParts(200);
    expect(parts.length).toBeGreaterThan(3);
    for (const p of parts) b.merge(decode(p.encode()) as ORMap<number>);
    expect(hex(b.encode())).toBe(hex(a.encode()));
    // state kept for a deleted key (a nested counter) goes along: no entry hash shows it
    a.counter('gone').increment(2);
    a.delete('gone');
    b.counter('gone').increment(1); // and b the same on its own
    b.delete('gone');
    const c = decode(b.encode()) as ORMap<number>;
    for (const p of a.retiredParts(200)) c.merge(decode(p.encode()) as ORMap<number>);
    const join = decode(b.encode()) as ORMap<number>;
    join.merge(decode(a.encode()) as ORMap<number>);
    expect(hex(c.encode())).toBe(hex(join.encode()));
    // a replica with nothing retired has one part with an empty context
    const fresh = new ORMap<number>('c');
    fresh.setLWW('x', 1);
    expect(fresh.retiredParts(100).map((p) => p.contextBytes().length)).toEqual([1]);
  });

  it('retired parts end with one that fits, even after a nested state too big for any part', () => {
    const [a] = twins();
    const big = (a as ORMap<unknown>).map('gone');
    for (let i = 0; i < 100; i++) big.setLWW(`field-${i}`, 'x'.repeat(20));
    a.delete('gone'); // kept (keep-state), shown by no row
    for (let i = 0; i < 1000; i += 3) a.delete(`k${i}`);
    const parts = a.retiredParts(300);
    const sizes = parts.map((p) => p.encode().length);
    expect(Math.max(...sizes)).toBeGreaterThan(300); // the nested state's own part
    expect(sizes[sizes.length - 1]).toBeLessThanOrEqual(300);
    expect(sizes.filter((n) => n > 300)).toHaveLength(1);
    const b = decode(a.encode());
    for (const p of parts) b.merge(decode(p.encode()));
    expect(hex(b.encode())).toBe(hex(a.encode()));
  });

  it('a malformed or truncated peer context is a DecodeError and changes nothing', () => {
    const a = new ORMap<number>('a');
    for (let i = 0; i < 20; i++) a.setLWW(`k${i}`, i);
    const before = hex(a.encode());
    const good = a.contextBytes();
    expect(ORMap.decodeContext(good).toString()).toBe('a:20');
    const bad = [good.subarray(0, good.length - 1), Uint8Array.from([...good, 0]), Uint8Array.of(0xff, 0xff, 0xff), Uint8Array.of(2, 1, 0x61, 0, 0)];
    for (const b of bad) expect(() => a.deltaSince(b)).toThrow(DecodeError);
    expect(hex(a.encode())).toBe(before);
  });
});

describe('crdt/or-map overwrite in place', () => {
  it('setLWW over a single dot gives the same state and delta as retiring it and writing anew', () => {
    const rng = makeRng(SEED);
    let t = 1_700_000_000_000;
    const clockA = new HLC({ now: () => t });
    const clockB = new HLC({ now: () => t });
    const a = new ORMap<unknown>('r', { clock: clockA });
    const b = new ORMap<unknown>('r', { clock: clockB });
    for (let step = 0; step < 2000; step++) {
      t += rng.int(3);
      const key = `k${rng.int(50)}`;
      const v = randomValue(rng);
      if (rng.bool(0.1)) {
        a.counter(key).increment(1);
        b.counter(key).increment(1);
        continue;
      }
      a.setLWW(key, v); // in place when the key has one dot
      b.delete(key); // the long way: retire, then a fresh row
      b.setLWW(key, v);
      if (rng.bool(0.2)) expect(hex(a.takeDelta()!.encode())).toBe(hex(b.takeDelta()!.encode()));
    }
    expect(hex(a.encode())).toBe(hex(b.encode()));
    const plain = (v: unknown): unknown => (v !== null && typeof v === 'object' && 'encode' in v ? hex((v as { encode(): Uint8Array }).encode()) : v);
    for (let i = 0; i < 50; i++) expect(plain(a.get(`k${i}`))).toEqual(plain(b.get(`k${i}`)));
  });
});
