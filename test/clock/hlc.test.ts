import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HLC, HLC_LOGICAL_MAX, hlcLogical, hlcPack, hlcWall } from '../../src/clock/hlc.js';
import { ClockSkewError } from '../../src/errors.js';
import { SEED, runs } from '../crdt/laws.js';

describe('clock/hlc', () => {
  it('packs wall time and logical counter into one exact integer', () => {
    const ts = hlcPack(1_700_000_000_123, 5);
    expect(Number.isSafeInteger(ts)).toBe(true);
    expect(hlcWall(ts)).toBe(1_700_000_000_123);
    expect(hlcLogical(ts)).toBe(5);
    expect(hlcPack(1, 0)).toBeGreaterThan(hlcPack(0, HLC_LOGICAL_MAX));
  });

  it('now() is strictly monotonic whatever the physical clock does', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 200 }), (times) => {
        let i = 0;
        const clock = new HLC({ now: () => times[i++ % times.length] });
        let prev = -1;
        for (let k = 0; k < times.length; k++) {
          const ts = clock.now();
          expect(ts).toBeGreaterThan(prev);
          // never behind physical time
          expect(hlcWall(ts)).toBeGreaterThanOrEqual(times[k]);
          prev = ts;
        }
        expect(clock.current).toBe(prev);
      }),
      { seed: SEED, numRuns: runs(500) },
    );
  });

  it('follows physical time when it advances, and the logical part counts within a millisecond', () => {
    let t = 1000;
    const clock = new HLC({ now: () => t });
    expect(clock.now()).toBe(hlcPack(1000, 0));
    expect(clock.now()).toBe(hlcPack(1000, 1));
    t = 1005;
    expect(clock.now()).toBe(hlcPack(1005, 0));
    t = 900; // physical clock stepped back
    expect(clock.now()).toBe(hlcPack(1005, 1));
  });

  it('a logical overflow within one millisecond carries into the wall part', () => {
    const clock = new HLC({ now: () => 7 });
    let ts = 0;
    for (let k = 0; k <= HLC_LOGICAL_MAX + 1; k++) ts = clock.now();
    expect(hlcWall(ts)).toBe(8);
    expect(hlcLogical(ts)).toBe(0);
  });

  it('receive returns a timestamp above both clocks and at or above physical time (random)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 2047 })), { maxLength: 100 }),
        (phys, events) => {
          let t = phys;
          const clock = new HLC({ now: () => t, maxDriftMs: 1_000_000 });
          for (const [isRemote, wall, logical] of events) {
            t += wall % 7;
            const before = clock.current;
            if (isRemote) {
              const remote = hlcPack(wall, logical);
              const ts = clock.receive(remote);
              expect(ts).toBeGreaterThan(remote);
              expect(ts).toBeGreaterThan(before);
              expect(hlcWall(ts)).toBeGreaterThanOrEqual(t);
              // the rule: max(last, remote) + 1 unless physical time is ahead of both
              const top = Math.max(before, remote);
              expect(ts).toBe(hlcPack(t, 0) > top ? hlcPack(t, 0) : top + 1);
            } else {
              expect(clock.now()).toBeGreaterThan(before);
            }
          }
        },
      ),
      { seed: SEED, numRuns: runs(500) },
    );
  });

  it('rejects a remote timestamp past the max drift with ClockSkewError and stays unchanged', () => {
    let t = 10_000;
    const clock = new HLC({ now: () => t, maxDriftMs: 500 });
    clock.now();
    const before = clock.current;
    const err = (() => {
      try {
        clock.receive(hlcPack(10_501, 0));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ClockSkewError);
    expect((err as ClockSkewError).driftMs).toBe(501);
    expect((err as ClockSkewError).code).toBe('E_CLOCK_SKEW');
    expect(clock.current).toBe(before);
    expect(clock.now()).toBe(before + 1);
    // exactly at the limit is accepted
    expect(clock.receive(hlcPack(10_500, 3))).toBe(hlcPack(10_500, 4));
    // once physical time catches up the same timestamp is accepted
    t = 20_000;
    expect(clock.receive(hlcPack(20_400, 0))).toBe(hlcPack(20_400, 1));
  });

  it('rejects malformed remote timestamps with RangeError, unchanged', () => {
    const clock = new HLC({ now: () => 5 });
    const before = clock.now();
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) expect(() => clock.receive(bad)).toThrow(RangeError);
    expect(clock.current).toBe(before);
  });

  it('restores the last timestamp so a restart never goes backwards', () => {
    const before = new HLC({ now: () => 5_000 });
    before.now();
    const last = before.now();
    const after = new HLC({ now: () => 4_000, last });
    expect(after.current).toBe(last);
    expect(after.now()).toBe(last + 1);
    expect(() => new HLC({ last: -1 })).toThrow(RangeError);
    expect(() => new HLC({ last: 0.5 })).toThrow(RangeError);
    expect(() => new HLC({ maxDriftMs: -1 })).toThrow(RangeError);
  });

  it('defaults to Date.now and a 60 s max drift', () => {
    const clock = new HLC();
    expect(clock.maxDriftMs).toBe(60_000);
    const ts = clock.now();
    expect(Math.abs(hlcWall(ts) - Date.now())).toBeLessThan(60_000);
  });
});

describe('HLC physical reading reuse', () => {
  it('reuses one reading for up to `reuse` timestamps in one synchronous run, strictly increasing', () => {
    let reads = 0;
    let t = 1_000;
    const clock = new HLC({ now: () => (reads++, t), reuse: 4 });
    const a = [clock.now(), clock.now(), clock.now(), clock.now()];
    expect(reads).toBe(1);
    t = 2_000;
    expect(a).toEqual([hlcPack(1_000, 0), hlcPack(1_000, 1), hlcPack(1_000, 2), hlcPack(1_000, 3)]);
    // the fifth timestamp reads the clock again
    expect(clock.now()).toBe(hlcPack(2_000, 0));
    expect(reads).toBe(2);
  });

  it('expires the reading at the next microtask checkpoint', async () => {
    let reads = 0;
    let t = 1_000;
    const clock = new HLC({ now: () => (reads++, t), reuse: 16 });
    expect(clock.now()).toBe(hlcPack(1_000, 0));
    t = 1_500;
    expect(clock.now()).toBe(hlcPack(1_000, 1)); // same run: reused
    await Promise.resolve();
    await Promise.resolve();
    expect(clock.now()).toBe(hlcPack(1_500, 0));
    expect(reads).toBe(2);
  });

  it('reads every time with an injected source unless asked, and validates reuse', () => {
    let reads = 0;
    const clock = new HLC({ now: () => (reads++, 7_000) });
    expect(clock.reuse).toBe(1);
    clock.now();
    clock.now();
    expect(reads).toBe(2);
    expect(new HLC().reuse).toBe(16);
    for (const bad of [0, -1, 1.5, NaN]) expect(() => new HLC({ reuse: bad })).toThrow(RangeError);
  });

  it('never goes backwards when the reused reading is behind a received timestamp', () => {
    let t = 1_000;
    const clock = new HLC({ now: () => t, reuse: 8 });
    clock.now();
    t = 1_010;
    const r = clock.receive(hlcPack(1_020, 5));
    expect(clock.now()).toBe(r + 1);
    expect(clock.now()).toBe(r + 2);
  });
});
