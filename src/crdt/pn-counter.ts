/**
 * Positive-negative counter: two slots per replica (P for increments, N for decrements), interleaved in one
 * array so a merge is one kernel `counterMerge` call; value = sum(P) - sum(N). Each column total stays an
 * exact integer <= Number.MAX_SAFE_INTEGER (past it: RangeError, nothing changes), so the value is exact.
 */
import { SlotCounter } from './slot-counter.js';
import { CRDT_TYPE, type Crdt } from './types.js';
import { DECODED_REPLICA_ID } from './replicas.js';

export class PNCounter extends SlotCounter implements Crdt<PNCounter> {
  readonly typeTag: number = CRDT_TYPE.PNCounter;

  constructor(replicaId: string) {
    super(replicaId, 2);
  }

  protected empty(replicaId: string): this {
    return new PNCounter(replicaId) as this;
  }

  /** Add n (any safe integer, default 1; negative n decrements). RangeError for a non-integer or past MAX_SAFE_INTEGER. */
  increment(n = 1): void {
    if (n >= 0) this.add(0, n);
    else if (n < 0) this.add(1, -n);
    else throw new RangeError(`increment must be an integer, got ${n}`);
  }

  /** Subtract n (an integer >= 0, default 1). */
  decrement(n = 1): void {
    if (!(n >= 0)) throw new RangeError(`decrement must be a non-negative integer, got ${n}`);
    this.add(1, n);
  }

  /** The counter's value (exact). */
  value(): number {
    return this.total0 - this.total1;
  }

  /** Decode canonical bytes (DecodeError on any malformed input); `replicaId` is the local replica for further edits (default 'decoded', see `DECODED_REPLICA_ID`). */
  static decode(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID): PNCounter {
    return SlotCounter.decodeInto(new PNCounter(replicaId), bytes);
  }
}
