/**
 * Which writes of each origin this replica has merged: per origin the highest contiguous sequence number
 * (`base`) plus a bounded set of merged numbers above it (gossip can deliver out of order). The bases form
 * the version vector carried in anti-entropy digests; acknowledgements are answered from it.
 *
 * Bounded: at most MAX_ORIGINS origins are tracked. A peer's vector (merged after a state transfer) or a
 * stream of deltas from made-up origins would otherwise grow it, and every digest this replica sends after
 * it, without limit. Past the bound a new origin is not tracked: its writes are still merged, only not
 * acknowledged through this vector (a majority write from it then times out, the data still converges).
 * Origins for which `always` holds (the engine's own id and its configured peers) are tracked regardless, so
 * made-up origins cannot crowd out the acknowledgements of real members. A cluster of real writers stays far
 * below the bound (one origin per replica id).
 */
import type { VersionEntries } from './messages.js';

const MAX_EXTRAS = 4096;
/** Origins tracked at most (see the module comment). */
export const MAX_ORIGINS = 4096;

interface Slot {
  base: number;
  extras: Set<number>;
}

export class WriteVector {
  private readonly slots = new Map<string, Slot>();

  /** `always(origin)`: origins tracked even past the bound (this replica and its configured peers). */
  constructor(private readonly always: (origin: string) => boolean = () => false) {}

  /** Record that writes lo..hi of `origin` are merged. */
  addRange(origin: string, lo: number, hi: number): void {
    if (!(lo >= 1 && hi >= lo)) return;
    const s = this.slot(origin);
    if (!s) return;
    if (hi <= s.base) return;
    if (lo <= s.base + 1) s.base = hi;
    else if (hi - lo < MAX_EXTRAS) for (let i = lo; i <= hi; i++) s.extras.add(i);
    this.compact(s);
  }

  /** Raise `origin`'s base to at least n (its writes 1..n are all merged). */
  raise(origin: string, n: number): void {
    if (!(n >= 1)) return;
    const s = this.slot(origin);
    if (!s) return;
    if (n > s.base) s.base = n;
    this.compact(s);
  }

  /** `origin`'s slot, made when new and the bound allows (else undefined). */
  private slot(origin: string): Slot | undefined {
    let s = this.slots.get(origin);
    if (!s && (this.slots.size < MAX_ORIGINS || this.always(origin))) this.slots.set(origin, (s = { base: 0, extras: new Set() }));
    return s;
  }

  /** Number of origins tracked. */
  get origins(): number {
    return this.slots.size;
  }

  /** True when every write lo..hi of `origin` is merged. */
  covers(origin: string, lo: number, hi: number): boolean {
    const s = this.slots.get(origin);
    if (!s) return false;
    for (let i = Math.max(lo, s.base + 1); i <= hi; i++) if (!s.extras.has(i)) return false;
    return true;
  }

  base(origin: string): number {
    return this.slots.get(origin)?.base ?? 0;
  }

  /** The version vector (bases), sorted by origin. */
  entries(): VersionEntries {
    return [...this.slots.entries()].filter(([, s]) => s.base > 0).map(([r, s]) => [r, s.base] as [string, number]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Merge another replica's version vector (after merging a state that includes everything it covers). */
  mergeEntries(v: VersionEntries): void {
    for (const [r, n] of v) this.raise(r, n);
  }

  /** Total number of out-of-order extras held (bounded by MAX_EXTRAS per origin). */
  get extras(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.extras.size;
    return n;
  }

  private compact(s: Slot): void {
    while (s.extras.has(s.base + 1)) s.extras.delete(++s.base);
    if (s.extras.size) for (const x of s.extras) if (x <= s.base) s.extras.delete(x);
    if (s.extras.size > MAX_EXTRAS) {
      const sorted = [...s.extras].sort((a, b) => a - b);
      for (let i = 0; i < sorted.length - MAX_EXTRAS; i++) s.extras.delete(sorted[i]);
    }
  }
}
