/**
 * `MemoryStorage`: the `Storage` contract over a sorted in-memory map. Values are copied in and out, so a
 * caller mutating its buffer never changes what was stored. The simulator keeps one per node outside the node,
 * so a crashed node restarts from what it had made "durable".
 */
import { StorageError } from '../errors.js';
import type { Storage, StorageBatchOp } from './types.js';

export class MemoryStorage implements Storage {
  private readonly data = new Map<string, Uint8Array>();
  private closed = false;
  /** Completed write operations (put, delete, batch), for tests and accounting. */
  writes = 0;
  /** Bytes of values written. */
  bytesWritten = 0;

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check();
    const v = this.data.get(key);
    return v ? v.slice() : undefined;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.check();
    this.validate({ type: 'put', key, value });
    this.data.set(key, value.slice());
    this.writes++;
    this.bytesWritten += value.length;
  }

  async delete(key: string): Promise<void> {
    this.check();
    this.data.delete(key);
    this.writes++;
  }

  async batch(ops: StorageBatchOp[]): Promise<void> {
    this.check();
    for (const op of ops) this.validate(op); // all-or-nothing: validate before applying any
    for (const op of ops) {
      if (op.type === 'put') {
        this.data.set(op.key, op.value!.slice());
        this.bytesWritten += op.value!.length;
      } else this.data.delete(op.key);
    }
    this.writes++;
  }

  async *entries(prefix = ''): AsyncIterable<[string, Uint8Array]> {
    this.check();
    const keys = [...this.data.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const k of keys) {
      const v = this.data.get(k);
      if (v) yield [k, v.slice()];
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Reopen after `close()` (the simulator's restart of a node on the same storage). */
  reopen(): void {
    this.closed = false;
  }

  /** Number of stored keys. */
  get size(): number {
    return this.data.size;
  }

  private check(): void {
    if (this.closed) throw new StorageError('storage is closed');
  }

  private validate(op: StorageBatchOp): void {
    if (typeof op.key !== 'string') throw new StorageError('key must be a string');
    if (op.type === 'put' && !(op.value instanceof Uint8Array)) throw new StorageError(`value for ${op.key} must be a Uint8Array`);
    if (op.type !== 'put' && op.type !== 'del') throw new StorageError(`unknown batch op ${String(op.type)}`);
  }
}
