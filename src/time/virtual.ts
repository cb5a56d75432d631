/**
 * Virtual time for deterministic simulation. Timers sit in a binary heap ordered by (due time, creation
 * sequence), so two timers due at the same virtual millisecond always fire in creation order and a run
 * replays exactly. Nothing here reads the host clock.
 *
 * `advance(ms)` runs due timers synchronously. `run(ms)` and `runUntil(predicate, limitMs)` are async: after
 * every timer they let pending promise continuations (e.g. a storage write the engine awaits) run before the
 * next timer, which keeps runs with async storage deterministic too.
 */
import type { Scheduler, TimerHandle } from './scheduler.js';

interface Timer {
  id: number;
  due: number;
  seq: number;
  fn: () => void;
  /** > 0 for intervals. */
  every: number;
  cancelled: boolean;
}

export class VirtualScheduler implements Scheduler {
  private time: number;
  private seq = 0;
  private heap: Timer[] = [];
  private readonly byId = new Map<number, Timer>();
  /** Timers fired so far (a cheap progress/speed figure). */
  fired = 0;

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, 0);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    this.cancel(handle);
  }
  clearInterval(handle: TimerHandle | undefined): void {
    this.cancel(handle);
  }

  /** Number of live (not yet fired or cancelled) timers. */
  get pending(): number {
    return this.byId.size;
  }

  /** Due time of the next live timer, or undefined when none. */
  nextDue(): number | undefined {
    this.dropCancelledTop();
    return this.heap.length ? this.heap[0].due : undefined;
  }

  /** Run, synchronously, every timer due within the next `ms` milliseconds; time ends at now + ms. */
  advance(ms: number): void {
    const end = this.time + Math.max(0, ms);
    for (;;) {
      const t = this.popDue(end);
      if (!t) break;
      this.fire(t);
    }
    this.time = end;
  }

  /**
   * Like `advance`, but lets promise continuations run first (so work a caller started without awaiting, such
   * as an unawaited durable write, is under way at the current time, as `runUntil` does) and after every timer.
   */
  async run(ms: number): Promise<void> {
    const end = this.time + Math.max(0, ms);
    await drain();
    for (;;) {
      const t = this.popDue(end);
      if (!t) break;
      this.fire(t);
      await drain();
    }
    this.time = end;
    await drain();
  }

  /**
   * Run timers until `predicate()` holds (checked before the first timer and after each one) or `limitMs` of
   * virtual time has passed. Returns true when the predicate held, with the clock at the moment it did.
   */
  async runUntil(predicate: () => boolean, limitMs: number): Promise<boolean> {
    const end = this.time + Math.max(0, limitMs);
    await drain();
    if (predicate()) return true;
    for (;;) {
      const t = this.popDue(end);
      if (!t) break;
      this.fire(t);
      await drain();
      if (predicate()) return true;
    }
    this.time = end;
    await drain();
    return predicate();
  }

  private add(fn: () => void, ms: number, every: number): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const t: Timer = { id: ++this.seq, due: this.time + delay, seq: this.seq, fn, every, cancelled: false };
    this.byId.set(t.id, t);
    this.push(t);
    return t.id as unknown as TimerHandle;
  }

  private cancel(handle: TimerHandle | undefined): void {
    if (typeof handle !== 'number') return;
    const t = this.byId.get(handle);
    if (!t) return;
    t.cancelled = true;
    this.byId.delete(handle);
  }

  private fire(t: Timer): void {
    this.time = Math.max(this.time, t.due);
    this.fired++;
    if (t.every > 0) {
      t.due = this.time + t.every;
      t.seq = ++this.seq;
      this.push(t);
    } else {
      this.byId.delete(t.id);
    }
    t.fn();
  }

  private dropCancelledTop(): void {
    while (this.heap.length && this.heap[0].cancelled) this.pop();
  }

  private popDue(end: number): Timer | undefined {
    this.dropCancelledTop();
    if (!this.heap.length || this.heap[0].due > end) return undefined;
    return this.pop();
  }

  private less(a: Timer, b: Timer): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Timer {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Let queued promise continuations run (a bounded number of microtask turns; deterministic). */
async function drain(): Promise<void> {
  for (let i = 0; i < 6; i++) await undefined;
}
