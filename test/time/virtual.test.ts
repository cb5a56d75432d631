import { describe, expect, it } from 'vitest';
import { VirtualScheduler } from '../../src/time/virtual.js';
import { RealScheduler, ScopedScheduler } from '../../src/time/scheduler.js';
import { Random } from '../../src/time/random.js';

const SEED = Number(process.env.SEED ?? 0x7135);

describe('VirtualScheduler', () => {
  it('fires timers in due order, ties in creation order, and moves time only virtually', () => {
    const s = new VirtualScheduler(100);
    const log: string[] = [];
    s.setTimeout(() => log.push('b30'), 30);
    s.setTimeout(() => log.push('a10'), 10);
    s.setTimeout(() => log.push('c10'), 10);
    s.setTimeout(() => log.push('zero'), 0);
    s.advance(9);
    expect(log).toEqual(['zero']);
    expect(s.now()).toBe(109);
    s.advance(100);
    expect(log).toEqual(['zero', 'a10', 'c10', 'b30']);
    expect(s.now()).toBe(209);
  });

  it('runs intervals until cleared, and cleared timeouts never fire', () => {
    const s = new VirtualScheduler();
    let ticks = 0;
    const h = s.setInterval(() => ticks++, 10);
    const t = s.setTimeout(() => ticks += 1000, 15);
    s.clearTimeout(t);
    s.advance(55);
    expect(ticks).toBe(5);
    s.clearInterval(h);
    s.advance(100);
    expect(ticks).toBe(5);
    expect(s.pending).toBe(0);
  });

  it('timers scheduled from a timer fire within the same advance when due', () => {
    const s = new VirtualScheduler();
    const at: number[] = [];
    s.setTimeout(() => {
      at.push(s.now());
      s.setTimeout(() => at.push(s.now()), 5);
    }, 5);
    s.advance(10);
    expect(at).toEqual([5, 10]);
  });

  it('runUntil stops when the predicate holds, lets promise continuations run, and respects the limit', async () => {
    const s = new VirtualScheduler();
    let done = false;
    s.setTimeout(() => {
      void Promise.resolve().then(() => (done = true));
    }, 40);
    expect(await s.runUntil(() => done, 1000)).toBe(true);
    expect(s.now()).toBe(40);
    expect(await s.runUntil(() => false, 500)).toBe(false);
    expect(s.now()).toBe(540);
  });

  it('run lets pending promise continuations run before the clock moves', async () => {
    const s = new VirtualScheduler(1000);
    const fired: number[] = [];
    // started without awaiting: two promise turns, then a 10 ms timer
    void Promise.resolve()
      .then(() => undefined)
      .then(() => s.setTimeout(() => fired.push(s.now()), 10));
    await s.run(40);
    expect(fired).toEqual([1010]);
  });

  it('ScopedScheduler.cancelAll cancels only its own timers', () => {
    const s = new VirtualScheduler();
    const a = new ScopedScheduler(s);
    let own = 0;
    let other = 0;
    a.setTimeout(() => own++, 5);
    a.setInterval(() => own++, 3);
    s.setTimeout(() => other++, 5);
    expect(a.size).toBe(2);
    a.cancelAll();
    s.advance(20);
    expect(own).toBe(0);
    expect(other).toBe(1);
    expect(a.size).toBe(0);
  });

  it('RealScheduler reads the wall clock and its timers can be cleared', async () => {
    const r = new RealScheduler();
    expect(Math.abs(r.now() - Date.now())).toBeLessThan(1000);
    let fired = false;
    const h = r.setTimeout(() => (fired = true), 1);
    r.clearTimeout(h);
    await new Promise((res) => setTimeout(res, 10));
    expect(fired).toBe(false);
  });
});

describe('Random', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Random(SEED);
    const b = new Random(SEED);
    const c = new Random(SEED + 1);
    const xs = Array.from({ length: 100 }, () => a.u32());
    expect(Array.from({ length: 100 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.u32())).not.toEqual(xs);
  });

  it('int, range, float and sample stay within bounds and look uniform', () => {
    const r = new Random(SEED);
    const counts = new Array(10).fill(0);
    let outOfBounds = 0;
    for (let i = 0; i < 20_000; i++) {
      const x = r.int(10);
      if (!(x >= 0 && x < 10)) outOfBounds++;
      else counts[x]++;
      const f = r.float();
      if (!(f >= 0 && f < 1)) outOfBounds++;
      const y = r.range(-3, 3);
      if (!(y >= -3 && y <= 3 && Number.isInteger(y))) outOfBounds++;
    }
    expect(outOfBounds).toBe(0);
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(300);
    const items = [1, 2, 3, 4, 5, 6];
    const s = r.sample(items, 4);
    expect(new Set(s).size).toBe(4);
    expect(s.every((x) => items.includes(x))).toBe(true);
    expect(r.sample(items, 10).length).toBe(6);
  });
});
