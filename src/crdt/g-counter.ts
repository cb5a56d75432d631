/**
 * Grow-only counter: one slot per replica, value = sum of slots, merge = slot-wise max (kernel
 * `counterMerge`). Exact integers: an increment or merge that would take the value past
 * Number.MAX_SAFE_INTEGER throws RangeError and changes nothing. See slot-counter.ts for layout and encoding.
 */
import { SlotCounter } from './slot-counter.js';
import { CRDT_TYPE, type Crdt } from './types.js';
import { DECODED_REPLICA_ID } from './replicas.js';

export class GCounter extends SlotCounter implements Crdt<GCounter> {
  readonly typeTag: number = CRDT_TYPE.GCounter;

  constructor(replicaId: string) {
    super(replicaId, 1);
  }

  protected empty(replicaId: string): this {
    return new GCounter(replicaId) as this;
  }

  /** Add n (an integer >= 0, default 1). RangeError for a bad n or past MAX_SAFE_INTEGER (nothing changes). */
  increment(n = 1): void {
    // inlined fast path of SlotCounter.add for the common call
    if (n === 1) {
      const t = this.total0 + 1;
      if (t <= Number.MAX_SAFE_INTEGER) {
        this.slots[0] += 1;
        this.total0 = t;
        this.dirtyOwn = true;
        this.enc = null;
        this.onLocalChange?.();
        return;
      }
    }
    this.add(0, n);
  }

  /** The counter's value (exact). */
  value(): number {
    return this.total0;
  }

  /** Decode canonical bytes; `replicaId` is the local replica for further increments (default 'decoded', see `DECODED_REPLICA_ID`). */
  static decode(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID): GCounter {
    return SlotCounter.decodeInto(new GCounter(replicaId), bytes);
  }
}
