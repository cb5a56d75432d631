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
}

export class HLC {
  private last: Timestamp = 0;
  private readonly clock: () => number;
  readonly maxDriftMs: number;

  constructor(options: HLCOptions = {}) {
    this.clock = options.now ?? Date.now;
    this.maxDriftMs = options.maxDriftMs ?? 60_000;
    if (!(this.maxDriftMs >= 0)) throw new RangeError(`maxDriftMs must be >= 0, got ${this.maxDriftMs}`);
    const last = options.last ?? 0;
    if (!Number.isSafeInteger(last) || last < 0) throw new RangeError(`invalid HLC timestamp ${last}`);
    this.last = last;
  }

  /** The latest timestamp issued or received. */
  get current(): Timestamp {
    return this.last;
  }

  /** A new timestamp, strictly greater than every timestamp issued or received before. */
  now(): Timestamp {
    const phys = Math.floor(this.clock()) * SCALE;
    this.last = phys > this.last ? phys : this.last + 1;
    return this.last;
  }

  /** Merge a remote timestamp; returns a new local timestamp greater than both. Throws ClockSkewError. */
  receive(remote: Timestamp): Timestamp {
    if (!Number.isSafeInteger(remote) || remote < 0) throw new RangeError(`invalid HLC timestamp ${remote}`);
    const physMs = Math.floor(this.clock());
    const drift = hlcWall(remote) - physMs;
    if (drift > this.maxDriftMs) {
      throw new ClockSkewError(`remote clock ${drift} ms ahead (max ${this.maxDriftMs} ms)`, drift);
    }
    const phys = physMs * SCALE;
    const top = Math.max(this.last, remote);
    this.last = phys > top ? phys : top + 1;
    return this.last;
  }
}
