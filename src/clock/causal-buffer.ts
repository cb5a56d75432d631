/**
 * Causal delivery buffer (Birman-Schiper-Stephenson). Events arrive in any order, with duplicates; `deliver`
 * hands them back in an order that respects causality.
 *
 * Event contract: `deps` is the origin's vector clock *including this event*: `deps[origin]` is the event's
 * sequence number at its origin (1, 2, 3, ... with no gaps), and `deps[r]` for every other replica r is how
 * many of r's events the origin had delivered when it created this one. An event is deliverable when
 * `delivered[origin] === deps[origin] - 1` and `delivered[r] >= deps[r]` for every other r.
 *
 * Design choices:
 * - Duplicates are ignored: an event whose sequence number is already delivered, or whose `id` is already
 *   pending, changes nothing and returns `[]`.
 * - Blocked events wait in buckets keyed by the one dependency they miss (replica, needed count). Delivering
 *   an event raises `delivered[origin]` by exactly one, so only the bucket (origin, new count) is woken:
 *   each event is re-examined at most once per dependency, never by scanning all pending events.
 * - Bounded: at most `maxPending` events wait (default 10,000), and with `sizeOf` at most `maxPendingBytes`
 *   (default unbounded) in all. When full, the oldest pending events (by arrival) are dropped, counted in
 *   `dropped`, and passed to `onDrop`; an event larger than `maxPendingBytes` on its own is dropped rather than
 *   held. A dropped event can be re-delivered later (anti-entropy), the buffer keeps no record of it. The
 *   byte bound is what keeps a peer that sends large events with dependencies that never arrive from pinning
 *   `maxPending` times the largest message in memory.
 */
import { ValidationError } from '../errors.js';
import { VectorClock, clockEntries, clockGet, type ClockLike } from './vector-clock.js';

export interface CausalEvent<P = unknown> {
  /** Unique event id (duplicate detection among pending events). */
  readonly id: string;
  /** Replica that created the event. */
  readonly origin: string;
  /** The origin's vector clock including this event (see the module comment). */
  readonly deps: ClockLike;
  readonly payload: P;
}

export interface CausalBufferOptions<P> {
  /** Maximum number of pending events (default 10,000). */
  maxPending?: number;
  /** Already-delivered frontier to start from (e.g. restored from storage). */
  delivered?: VectorClock;
  /** Called with each event dropped because the buffer was full. */
  onDrop?: (event: CausalEvent<P>) => void;
  /** Bound of the pending events' total `sizeOf` (default: unbounded). */
  maxPendingBytes?: number;
  /** Size of an event for `maxPendingBytes`, e.g. its message's byte length (default 0). */
  sizeOf?: (event: CausalEvent<P>) => number;
}

interface Held<P> {
  event: CausalEvent<P>;
  /** Sequence number of the event at its origin. */
  seq: number;
  /** False once delivered or dropped. */
  live: boolean;
  /** `sizeOf(event)`, counted in `heldBytes` while the event is held. */
  size: number;
  /** The bucket this event is parked in, if any. */
  bucket?: Held<P>[];
}

export class CausalBuffer<P = unknown> {
  readonly maxPending: number;
  readonly maxPendingBytes: number;
  /** Number of events dropped because the buffer was full. */
  dropped = 0;
  /** Total `sizeOf` of the pending events. */
  private heldBytes = 0;
  private readonly sizeOf?: (event: CausalEvent<P>) => number;
  private readonly clock: VectorClock;
  private readonly onDrop?: (event: CausalEvent<P>) => void;
  /** Pending events by id, in arrival order (Map order), so the oldest is first. */
  private readonly held = new Map<string, Held<P>>();
  /** replica -> needed count -> events waiting for delivered[replica] to reach that count. */
  private readonly blocked = new Map<string, Map<number, Held<P>[]>>();

  constructor(options: CausalBufferOptions<P> = {}) {
    const max = options.maxPending ?? 10_000;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxPending must be a positive integer, got ${max}`);
    this.maxPending = max;
    const maxBytes = options.maxPendingBytes ?? Infinity;
    if (!(maxBytes >= 0)) throw new RangeError(`maxPendingBytes must be >= 0, got ${maxBytes}`);
    this.maxPendingBytes = maxBytes;
    this.sizeOf = options.sizeOf;
    this.clock = options.delivered ? options.delivered.clone() : new VectorClock();
    this.onDrop = options.onDrop;
  }

  /** Number of events waiting for their dependencies. */
  get pending(): number {
    return this.held.size;
  }

  /** Total `sizeOf` of the events waiting (0 without `sizeOf`). */
  get pendingBytes(): number {
    return this.heldBytes;
  }

  /** A copy of the delivered frontier. */
  get delivered(): VectorClock {
    return this.clock.clone();
  }

  /**
   * Offer an event. Returns the events that became deliverable, in causal order (possibly empty; the offered
   * event itself first when it is deliverable). ValidationError for a malformed event (nothing changes).
   */
  deliver(event: CausalEvent<P>): CausalEvent<P>[] {
    if (event === null || typeof event !== 'object' || typeof event.id !== 'string' || typeof event.origin !== 'string') {
      throw new ValidationError('causal event needs string id and origin');
    }
    if (event.deps === null || typeof event.deps !== 'object') throw new ValidationError('causal event needs deps');
    const seq = clockGet(event.deps, event.origin);
    if (!Number.isSafeInteger(seq) || seq < 1) {
      throw new ValidationError(`causal event ${event.id}: deps[${event.origin}] must be its sequence number >= 1`);
    }
    for (const [r, n] of clockEntries(event.deps)) {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
        throw new ValidationError(`causal event ${event.id}: deps[${r}] must be a safe integer >= 0`);
      }
    }
    if (seq <= this.clock.get(event.origin) || this.held.has(event.id)) return [];
    const size = this.sizeOf ? this.sizeOf(event) : 0;
    const h: Held<P> = { event, seq, live: true, size: size > 0 ? size : 0 };
    const out: CausalEvent<P>[] = [];
    if (!this.tryDeliver(h, out)) {
      if (h.size > this.maxPendingBytes) {
        // larger than the whole budget: dropped at once (parked by tryDeliver, never held)
        this.unpark(h);
        h.live = false;
        this.dropped++;
        this.onDrop?.(h.event);
        return out;
      }
      while (this.held.size > 0 && (this.held.size >= this.maxPending || this.heldBytes + h.size > this.maxPendingBytes)) this.dropOldest();
      this.held.set(event.id, h);
      this.heldBytes += h.size;
    }
    return out;
  }

  /** Events still pending, oldest first (for inspection and persistence). */
  pendingEvents(): CausalEvent<P>[] {
    return [...this.held.values()].map((h) => h.event);
  }

  /** Deliver `h` if possible (then everything it unblocks); otherwise park it on one missing dependency. */
  private tryDeliver(h: Held<P>, out: CausalEvent<P>[]): boolean {
    const missing = this.missing(h);
    if (missing !== undefined) {
      this.park(h, missing[0], missing[1]);
      return false;
    }
    // deliver h, then wake what waits on the origin's new count (iteratively, no recursion)
    const queue: Held<P>[] = [h];
    while (queue.length > 0) {
      const x = queue.pop()!;
      if (!x.live) continue;
      if (x !== h || this.held.has(x.event.id)) {
        const m = this.missing(x);
        if (m !== undefined) {
          this.park(x, m[0], m[1]);
          continue;
        }
      }
      if (x.seq <= this.clock.get(x.event.origin)) {
        // a duplicate that was parked under a different id
        this.retire(x);
        continue;
      }
      this.retire(x);
      const count = this.clock.increment(x.event.origin);
      out.push(x.event);
      const byNeed = this.blocked.get(x.event.origin);
      const woken = byNeed?.get(count);
      if (woken !== undefined) {
        byNeed!.delete(count);
        if (byNeed!.size === 0) this.blocked.delete(x.event.origin);
        for (let i = woken.length - 1; i >= 0; i--) {
          woken[i].bucket = undefined;
          if (woken[i].live) queue.push(woken[i]);
        }
      }
    }
    return true;
  }

  /** The first unmet dependency as [replica, needed count], or undefined when deliverable. */
  private missing(h: Held<P>): [string, number] | undefined {
    const origin = h.event.origin;
    if (this.clock.get(origin) < h.seq - 1) return [origin, h.seq - 1];
    for (const [r, n] of clockEntries(h.event.deps)) {
      if (r === origin) continue;
      if (this.clock.get(r) < n) return [r, n];
    }
    return undefined;
  }

  private park(h: Held<P>, replica: string, need: number): void {
    let byNeed = this.blocked.get(replica);
    if (byNeed === undefined) this.blocked.set(replica, (byNeed = new Map()));
    let list = byNeed.get(need);
    if (list === undefined) byNeed.set(need, (list = []));
    list.push(h);
    h.bucket = list;
  }

  private retire(h: Held<P>): void {
    h.live = false;
    h.bucket = undefined;
    if (this.held.get(h.event.id) === h) {
      this.held.delete(h.event.id);
      this.heldBytes -= h.size;
    }
  }

  private unpark(h: Held<P>): void {
    const bucket = h.bucket;
    if (bucket !== undefined) {
      const i = bucket.indexOf(h);
      if (i >= 0) bucket.splice(i, 1);
      h.bucket = undefined;
    }
  }

  private dropOldest(): void {
    const first = this.held.values().next();
    if (first.done) return;
    const h = first.value;
    this.unpark(h);
    this.retire(h);
    this.dropped++;
    this.onDrop?.(h.event);
  }
}
