/**
 * Durable key/value storage used by the sync engine. Keys are strings, values are bytes.
 * `put`/`delete`/`batch` resolve only once the write is durable (for a durable implementation).
 * Implementations: `MemoryStorage`, `LmdbStorage` (Node), `IndexedDbStorage` (browser).
 */
export interface StorageBatchOp {
  type: 'put' | 'del';
  key: string;
  value?: Uint8Array;
}

export interface Storage {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  /** Atomic group of writes. */
  batch(ops: StorageBatchOp[]): Promise<void>;
  /** All keys with the prefix, in key order, with their values. */
  entries(prefix?: string): AsyncIterable<[string, Uint8Array]>;
  close(): Promise<void>;
}
