import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CausalBuffer, type CausalEvent } from '../../src/clock/causal-buffer.js';
import { VectorClock } from '../../src/clock/vector-clock.js';
import { ValidationError } from '../../src/errors.js';
import { SEED, makeRng, runs, type Rng } from '../crdt/laws.js';

interface Ev extends CausalEvent<string> {
  readonly deps: VectorClock;
}

/** A random causal history: replicas create events and deliver each other's events (in causal order). */
function history(rng: Rng, nReplicas: number, nEvents: number): Ev[] {
  const ids = Array.from({ length: nReplicas }, (_, i) => `r${i}`);
  const clocks = ids.map(() => new VectorClock());
  const log: Ev[] = [];
  for (let k = 0; k < nEvents; k++) {
    const i = rng.int(nReplicas);
    // before creating, maybe catch up on some of the log (a causally closed prefix per origin)
    if (rng.bool(0.5)) {
      for (const e of log) {
        if (clocks[i].get(e.origin) === e.deps.get(e.origin) - 1 && clocks[i].dominates(withoutSelf(e))) {
          if (rng.bool(0.7)) clocks[i].increment(e.origin);
        }
      }
    }
    clocks[i].increment(ids[i]);
    const deps = clocks[i].clone();
    log.push({ id: `${ids[i]}#${deps.get(ids[i])}`, origin: ids[i], deps, payload: `p${k}` });
  }
  return log;
}

function withoutSelf(e: Ev): VectorClock {
  const c = new VectorClock();
  for (const [r, n] of e.deps.entries()) c.set(r, r === e.origin ? n - 1 : n);
  return c;
}

describe('clock/causal-buffer', () => {
  it('delivers every event exactly once, in causal order, from any arrival order with duplicates', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (s) => {
        const rng = makeRng(s);
        const log = history(rng, 2 + rng.int(4), 1 + rng.int(60));
        const arrivals = rng.shuffle([...log, ...log.filter(() => rng.bool(0.3))]);
        const buf = new CausalBuffer<string>();
        const delivered: CausalEvent<string>[] = [];
        for (const e of arrivals) delivered.push(...buf.deliver(e));
        expect(buf.pending).toBe(0);
        expect(delivered.map((e) => e.id).sort()).toEqual(log.map((e) => e.id).sort());
        // causal order: when an event is delivered, everything in its deps is already delivered
        const seen = new VectorClock();
        for (const e of delivered as Ev[]) {
          expect(seen.dominates(withoutSelf(e))).toBe(true);
          expect(seen.get(e.origin)).toBe(e.deps.get(e.origin) - 1);
          seen.increment(e.origin);
        }
        expect(buf.delivered.compare(seen)).toBe('equal');
      }),
      { seed: SEED, numRuns: runs(500) },
    );
  });

  it('holds an event until its dependencies arrive, then releases the chain in order', () => {
    const buf = new CausalBuffer<string>();
    const e1 = { id: 'a1', origin: 'a', deps: { a: 1 }, payload: 'x' };
    const e2 = { id: 'a2', origin: 'a', deps: { a: 2 }, payload: 'y' };
    const f1 = { id: 'b1', origin: 'b', deps: new Map([['a', 2], ['b', 1]]), payload: 'z' };
    expect(buf.deliver(f1)).toEqual([]);
    expect(buf.deliver(e2)).toEqual([]);
    expect(buf.pending).toBe(2);
    expect(buf.deliver(e1).map((e) => e.id)).toEqual(['a1', 'a2', 'b1']);
    expect(buf.pending).toBe(0);
    // duplicates (already delivered, or already pending) are ignored
    expect(buf.deliver(e1)).toEqual([]);
    const g2 = { id: 'b3', origin: 'b', deps: { b: 3 }, payload: 'w' };
    expect(buf.deliver(g2)).toEqual([]);
    expect(buf.deliver(g2)).toEqual([]);
    expect(buf.pending).toBe(1);
  });

  it('is bounded: past maxPending the oldest pending event is dropped and counted', () => {
    const dropped: string[] = [];
    const buf = new CausalBuffer<number>({ maxPending: 3, onDrop: (e) => dropped.push(e.id) });
    for (let k = 2; k <= 6; k++) buf.deliver({ id: `a${k}`, origin: 'a', deps: { a: k }, payload: k });
    expect(buf.pending).toBe(3);
    expect(buf.dropped).toBe(2);
    expect(dropped).toEqual(['a2', 'a3']);
    expect(buf.pendingEvents().map((e) => e.id)).toEqual(['a4', 'a5', 'a6']);
    // a1 arrives: a2 was dropped, so nothing after it can go yet; re-sending a2 releases the rest
    expect(buf.deliver({ id: 'a1', origin: 'a', deps: { a: 1 }, payload: 1 }).map((e) => e.id)).toEqual(['a1']);
    expect(buf.deliver({ id: 'a2', origin: 'a', deps: { a: 2 }, payload: 2 }).map((e) => e.id)).toEqual(['a2']);
    expect(buf.deliver({ id: 'a3', origin: 'a', deps: { a: 3 }, payload: 3 }).map((e) => e.id)).toEqual(['a3', 'a4', 'a5', 'a6']);
    expect(buf.pending).toBe(0);
  });

  it('is bounded in bytes with sizeOf: the oldest go first, an event over the whole budget is not held', () => {
    const dropped: string[] = [];
    const buf = new CausalBuffer<number>({ maxPendingBytes: 100, sizeOf: (e) => e.payload, onDrop: (e) => dropped.push(e.id) });
    // a1 never arrives: everything from a2 waits
    buf.deliver({ id: 'a2', origin: 'a', deps: { a: 2 }, payload: 40 });
    buf.deliver({ id: 'a3', origin: 'a', deps: { a: 3 }, payload: 40 });
    expect(buf.pendingBytes).toBe(80);
    buf.deliver({ id: 'a4', origin: 'a', deps: { a: 4 }, payload: 30 }); // 110 > 100: a2 goes
    expect(dropped).toEqual(['a2']);
    expect(buf.pendingBytes).toBe(70);
    buf.deliver({ id: 'a5', origin: 'a', deps: { a: 5 }, payload: 101 }); // alone over the budget
    expect(dropped).toEqual(['a2', 'a5']);
    expect(buf.pendingEvents().map((e) => e.id)).toEqual(['a3', 'a4']);
    expect(buf.pendingBytes).toBe(70);
    expect(buf.dropped).toBe(2);
    // the dropped a5 left no trace in the wait buckets: delivering the chain releases a3, a4 only, then a5 again
    expect(buf.deliver({ id: 'a1', origin: 'a', deps: { a: 1 }, payload: 1 }).map((e) => e.id)).toEqual(['a1']);
    expect(buf.deliver({ id: 'a2', origin: 'a', deps: { a: 2 }, payload: 1 }).map((e) => e.id)).toEqual(['a2', 'a3', 'a4']);
    expect(buf.pendingBytes).toBe(0);
    expect(buf.deliver({ id: 'a5', origin: 'a', deps: { a: 5 }, payload: 101 }).map((e) => e.id)).toEqual(['a5']);
    expect(() => new CausalBuffer({ maxPendingBytes: -1 })).toThrow(RangeError);
  });

  it('never holds more than maxPending or maxPendingBytes under a long random stream', () => {
    const rng = makeRng(SEED);
    const log = history(rng, 4, 400);
    const size = (e: CausalEvent<string>) => e.payload.length * 10;
    const buf = new CausalBuffer<string>({ maxPending: 64, maxPendingBytes: 400, sizeOf: size });
    const out = new Set<string>();
    for (const e of rng.shuffle(log.slice())) {
      for (const d of buf.deliver(e)) {
        expect(out.has(d.id)).toBe(false);
        out.add(d.id);
      }
      expect(buf.pendingBytes).toBeLessThanOrEqual(400);
      expect(buf.pendingBytes).toBe(buf.pendingEvents().reduce((t, x) => t + size(x), 0));
    }
    expect(buf.dropped).toBeGreaterThan(0);
    for (const e of log) for (const d of buf.deliver(e)) out.add(d.id);
    expect(out.size).toBe(log.length);
    expect(buf.pendingBytes).toBe(0);
  });

  it('never holds more than maxPending under a long random stream', () => {
    const rng = makeRng(SEED);
    const log = history(rng, 4, 400);
    const buf = new CausalBuffer<string>({ maxPending: 16 });
    const out = new Set<string>();
    for (const e of rng.shuffle(log.slice())) {
      for (const d of buf.deliver(e)) {
        expect(out.has(d.id)).toBe(false);
        out.add(d.id);
      }
      expect(buf.pending).toBeLessThanOrEqual(16);
    }
    expect(buf.dropped).toBeGreaterThan(0);
    // re-sending everything (anti-entropy) delivers the rest
    for (const e of log) for (const d of buf.deliver(e)) out.add(d.id);
    expect(out.size).toBe(log.length);
    expect(buf.pending).toBe(0);
  });

  it('starts from a restored delivered frontier', () => {
    const buf = new CausalBuffer<string>({ delivered: VectorClock.from({ a: 5 }) });
    expect(buf.deliver({ id: 'a5', origin: 'a', deps: { a: 5 }, payload: '' })).toEqual([]);
    expect(buf.deliver({ id: 'a6', origin: 'a', deps: { a: 6 }, payload: '' }).length).toBe(1);
  });

  it('rejects malformed events and options with typed errors, changing nothing', () => {
    const buf = new CausalBuffer();
    expect(() => buf.deliver({ id: 'x', origin: 'a', deps: {}, payload: 0 })).toThrow(ValidationError);
    expect(() => buf.deliver({ id: 'x', origin: 'a', deps: { a: 1.5 }, payload: 0 })).toThrow(ValidationError);
    expect(() => buf.deliver({ id: 1, origin: 'a', deps: { a: 1 }, payload: 0 } as never)).toThrow(ValidationError);
    expect(() => buf.deliver({ id: 'x', origin: 'a', deps: null, payload: 0 } as never)).toThrow(ValidationError);
    expect(() => buf.deliver({ id: 'x', origin: 'a', deps: { a: 1, b: -1 }, payload: 0 })).toThrow(ValidationError);
    expect(() => buf.deliver({ id: 'x', origin: 'a', deps: { a: 1, b: 'z' } as never, payload: 0 })).toThrow(ValidationError);
    expect(buf.pending).toBe(0);
    expect(() => new CausalBuffer({ maxPending: 0 })).toThrow(RangeError);
  });
});
