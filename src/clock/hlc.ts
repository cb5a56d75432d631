/**
 * Hybrid logical clock (Kulkarni et al.). A timestamp is one exact integer number:
 *
 *   ts = wallMs * 2048 + logical      (0 <= logical < 2048)
 *
 * so timestamps compare with `<`, fit a Float64Array slot, and stay exact until the year 2109
 * (2^53 / 2048 ms after the epoch). When the logical part would overflow within one millisecond the wall part
 * advances by one (the clock runs at most 2048 events per ms ahead of physical time, then waits for it).
 *
 * Remote timestamps further ahead of local physical time than `maxDriftMs` are rejected with
 * `ClockSkewError` and leave the clock unchanged.
 *
 * Reading the physical clock is the dearest part of a local write here (`Date.now()` takes about 60 ns on the
 * reference machine, more than a whole counter increment or register write). So, on the default source, `now()`
 * reuses one physical reading for up to `reuse` (16) timestamps within one synchronous run of JS: the reading
 * expires at the next microtask checkpoint (after the current task, or at the next `await`) and after `reuse`
 * timestamps, whichever comes first. Timestamps stay strictly increasing (the logical part counts the reuses);
 * the cost is that, inside one long synchronous task, the wall part of a timestamp can lag real time by the time
 * that task spent since the reading it reuses (at most 15 timestamps back). That is the same effect as a little
 * extra clock skew between replicas, which LWW ordering by HLC already tolerates. An injected `now` (virtual time
 * in simulations) is read on every call unless `reuse` is given; `reuse: 1` turns reuse off. `receive` always
 * reads the clock.
 */
import { ClockSkewError } from '../errors.js';

export const HLC_LOGICAL_BITS = 11;
export const HLC_LOGICAL_MAX = 2047;
const SCALE = 2048;

export type Timestamp = number;

export function hlcPack(wallMs: number, logical: number): Timestamp {
  return wallMs * SCALE + logical;
}
export function hlcWall(ts: Timestamp): number {
  return Math.floor(ts / SCALE);
}
export function hlcLogical(ts: Timestamp): number {
  return ts % SCALE;
}

export interface HLCOptions {
  /** Physical time source in ms (injectable for simulation). Default `Date.now`. */
  now?: () => number;
  /** Max allowed lead of a remote timestamp over local physical time, ms. Default 60_000. */
  maxDriftMs?: number;
  /**
   * The last timestamp issued before a restart (e.g. from storage), so timestamps stay monotonic across
   * restarts even if the physical clock stepped back. Default 0.
   */
  last?: Timestamp;
  /**
   * Timestamps `now()` may issue from one physical reading within one synchronous run (the reading expires at
   * the next microtask checkpoint). Default 16 on the default `Date.now` source, 1 (read every time) when `now`
   * is given. An integer >= 1.
   */
  reuse?: number;
}

/** Bumped once per microtask checkpoint after a clock reading was cached: a cached reading is valid while it
 * was taken in the current epoch. */
let epoch = 0;
let epochQueued = false;
function nextEpoch(): void {
  epoch++;
  epochQueued = false;
}

export class HLC {
  private last: Timestamp = 0;
  private readonly clock: () => number;
  readonly maxDriftMs: number;
  /** Timestamps per physical reading (see `HLCOptions.reuse`). */
  readonly reuse: number;
  /** The cached physical reading (ms * 2048), the epoch it was taken in and the uses left. */
  private phys = 0;
  private physEpoch = -1;
  private physLeft = 0;

  constructor(options: HLCOptions = {}) {
    this.clock = options.now ?? Date.now;
    this.maxDriftMs = options.maxDriftMs ?? 60_000;
    if (!(this.maxDriftMs >= 0)) throw new RangeError(`maxDriftMs must be >= 0, got ${this.maxDriftMs}`);
    const last = options.last ?? 0;
    if (!Number.isSafeInteger(last) || last < 0) throw new RangeError(`invalid HLC timestamp ${last}`);
    this.last = last;
    const reuse = options.reuse ?? (options.now === undefined ? 16 : 1);
    if (!Number.isSafeInteger(reuse) || reuse < 1) throw new RangeError(`reuse must be an integer >= 1, got ${reuse}`);
    this.reuse = reuse;
  }

  /** The latest timestamp issued or received. */
  get current(): Timestamp {
    return this.last;
  }

  /** A new timestamp, strictly greater than every timestamp issued or received before. */
  now(): Timestamp {
    let phys: number;
    if (this.physLeft > 0 && this.physEpoch === epoch) {
      this.physLeft--;
      phys = this.phys;
    } else {
      phys = Math.floor(this.clock()) * SCALE;
      if (this.reuse > 1) {
        this.phys = phys;
        this.physLeft = this.reuse - 1;
        this.physEpoch = epoch;
        if (!epochQueued) {
          epochQueued = true;
          queueMicrotask(nextEpoch);
        }
      }
    }
    this.last = phys > this.last ? phys : this.last + 1;
    return this.last;
  }

  /** Merge a remote timestamp; returns a new local timestamp greater than both. Throws ClockSkewError. */
  receive(remote: Timestamp): Timestamp {
    if (!Number.isSafeInteger(remote) || remote < 0) throw new RangeError(`invalid HLC timestamp ${remote}`);
    const physMs = Math.floor(this.clock());
    const drift = hlcWall(remote) - physMs;
    if (drift > this.maxDriftMs && trusting === 0) {
      throw new ClockSkewError(`remote clock ${drift} ms ahead (max ${this.maxDriftMs} ms)`, drift);
    }
    const phys = physMs * SCALE;
    const top = Math.max(this.last, remote);
    this.last = phys > top ? phys : top + 1;
    return this.last;
  }
}

let trusting = 0;

/**
 * @internal Run `fn` with the drift bound off for every HLC: the engine loads a replica's own stored state
 * through `merge`, and its own timestamps are not a remote clock's (after the local clock stepped back, they
 * may be ahead of it; the clock then moves past them, so new writes still take larger timestamps).
 */
export function withTrustedTimes<T>(fn: () => T): T {
  trusting++;
  try {
    return fn();
  } finally {
    trusting--;
  }
}
