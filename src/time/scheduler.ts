/**
 * Every timer of the sync engine goes through a `Scheduler`, so a whole cluster can run on virtual time
 * (see `VirtualScheduler`) and replay event for event. `RealScheduler` wraps the host timers.
 */

/** Opaque timer handle returned by a scheduler; pass it back to the matching `clear*`. */
export type TimerHandle = { readonly __timer: unique symbol } | number | object;

export interface Scheduler {
  /** Current time in milliseconds (wall clock for `RealScheduler`, virtual for `VirtualScheduler`). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /**
   * Optional: make a timer from `setTimeout` keep the process alive until it fires or is cleared (the engine's
   * timers are unref'd; one a caller awaits, such as a consistency wait's timeout, must not be).
   */
  ref?(handle: TimerHandle | undefined): void;
}

/** Host timers (`globalThis.setTimeout`) and `Date.now()`. Timers are unref'd on Node so they never hold a process open, unless `ref` is called on one. */
export class RealScheduler implements Scheduler {
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = globalThis.setTimeout(fn, Math.max(0, ms));
    unref(t);
    return t as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) globalThis.clearTimeout(handle as never);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    const t = globalThis.setInterval(fn, Math.max(1, ms));
    unref(t);
    return t as unknown as TimerHandle;
  }
  clearInterval(handle: TimerHandle | undefined): void {
    if (handle !== undefined) globalThis.clearInterval(handle as never);
  }
  ref(handle: TimerHandle | undefined): void {
    const r = (handle as { ref?: () => void } | undefined)?.ref;
    if (typeof r === 'function') r.call(handle);
  }
}

function unref(t: unknown): void {
  const u = (t as { unref?: () => void }).unref;
  if (typeof u === 'function') u.call(t);
}

/**
 * A view of another scheduler that remembers its own live timers so they can all be cancelled at once.
 * The simulator gives each node one: `cancelAll()` is what a crash does to the node's timers.
 */
export class ScopedScheduler implements Scheduler {
  private readonly live = new Set<TimerHandle>();
  private readonly intervals = new Set<TimerHandle>();
  private closed = false;
  constructor(private readonly inner: Scheduler) {}

  now(): number {
    return this.inner.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (this.closed) return {};
    const h = this.inner.setTimeout(() => {
      this.live.delete(h);
      fn();
    }, ms);
    this.live.add(h);
    return h;
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.live.delete(handle);
    this.inner.clearTimeout(handle);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    if (this.closed) return {};
    const h = this.inner.setInterval(fn, ms);
    this.intervals.add(h);
    return h;
  }
  clearInterval(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.intervals.delete(handle);
    this.inner.clearInterval(handle);
  }
  ref(handle: TimerHandle | undefined): void {
    if (handle !== undefined && this.live.has(handle)) this.inner.ref?.(handle);
  }
  /** Number of live timers and intervals (for bound checks in tests). */
  get size(): number {
    return this.live.size + this.intervals.size;
  }
  /** Cancel every timer and interval created through this view. */
  cancelAll(): void {
    for (const h of this.live) this.inner.clearTimeout(h);
    for (const h of this.intervals) this.inner.clearInterval(h);
    this.live.clear();
    this.intervals.clear();
  }
  /** Cancel everything and ignore every later timer (a crashed node's code may still run a continuation). */
  close(): void {
    this.cancelAll();
    this.closed = true;
  }
}
