/**
 * `IndexedDbStorage`: durable storage for browsers on IndexedDB.
 *
 * Design choices:
 * - One database (`name`, default `async-state-sync`) with one object store `kv`; keys are the storage's string
 *   keys, values are stored as `Uint8Array` (structured clone keeps the type).
 * - Durability: each write is its own `readwrite` transaction opened with `{ durability: 'strict' }` (where the
 *   browser supports the hint) and resolves on the transaction's `complete` event, i.e. once committed.
 * - `batch` is one transaction: all of its writes or none (an abort rolls back every request in it).
 * - `entries(prefix)` reads the whole range in one transaction (`getAllKeys` + `getAll`) and then yields it:
 *   IndexedDB transactions end when the event loop turns, so a cursor cannot be held across the consumer's
 *   awaits. IndexedDB orders string keys by UTF-16 code units; for the ASCII keys the sync engine writes this is
 *   the same order as the byte order `LmdbStorage` gives.
 */
import { StorageError } from '../errors.js';
import type { Storage, StorageBatchOp } from './types.js';

export interface IndexedDbStorageOptions {
  /** Database name. Default `async-state-sync`. */
  name?: string;
  /** The IndexedDB factory (default `globalThis.indexedDB`); lets tests pass a polyfill. */
  indexedDB?: IDBFactory;
}

const STORE = 'kv';

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** The smallest string greater than every string starting with `prefix` (undefined: no upper bound). */
function prefixEnd(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xffff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return undefined;
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new StorageError('storage keys are non-empty strings');
  return key;
}

function checkValue(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new StorageError('storage values are Uint8Array');
  return v;
}

export class IndexedDbStorage implements Storage {
  readonly name: string;
  private readonly factory: IDBFactory | undefined;
  private db: Promise<IDBDatabase> | undefined;
  private closed = false;

  constructor(options: IndexedDbStorageOptions = {}) {
    this.name = options.name ?? 'async-state-sync';
    this.factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  }

  private open(): Promise<IDBDatabase> {
    if (this.closed) return Promise.reject(new StorageError('storage is closed'));
    if (!this.factory) return Promise.reject(new StorageError('IndexedDB is not available here'));
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const r = this.factory!.open(this.name, 1);
      r.onupgradeneeded = () => {
        if (!r.result.objectStoreNames.contains(STORE)) r.result.createObjectStore(STORE);
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(new StorageError(`cannot open IndexedDB ${this.name}: ${String(r.error)}`));
      r.onblocked = () => reject(new StorageError(`IndexedDB ${this.name} is blocked by another connection`));
    }).catch((e) => {
      this.db = undefined;
      throw e;
    });
    return this.db;
  }

  private async write(fn: (store: IDBObjectStore) => void): Promise<void> {
    const db = await this.open();
    let tx: IDBTransaction;
    try {
      tx = (db.transaction as (s: string, m: IDBTransactionMode, o?: { durability: string }) => IDBTransaction)(STORE, 'readwrite', {
        durability: 'strict',
      });
    } catch (e) {
      throw new StorageError(`IndexedDB transaction failed: ${String(e)}`, { cause: e });
    }
    const finished = done(tx);
    try {
      fn(tx.objectStore(STORE));
    } catch (e) {
      tx.abort();
      await finished.catch(() => {});
      throw new StorageError(`IndexedDB write failed: ${String(e)}`, { cause: e });
    }
    try {
      await finished;
    } catch (e) {
      throw new StorageError(`IndexedDB write failed: ${String(e)}`, { cause: e });
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    const db = await this.open();
    const v = await req(db.transaction(STORE, 'readonly').objectStore(STORE).get(key));
    return v instanceof Uint8Array ? v : undefined;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    checkKey(key);
    const v = checkValue(value);
    // store a copy that owns its buffer (a view into a larger buffer would clone the whole buffer)
    const copy = v.slice();
    await this.write((s) => s.put(copy, key));
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.write((s) => s.delete(key));
  }

  async batch(ops: StorageBatchOp[]): Promise<void> {
    if (!Array.isArray(ops)) throw new StorageError('batch takes an array of operations');
    const prepared = ops.map((op) => {
      if (!op || (op.type !== 'put' && op.type !== 'del')) throw new StorageError(`bad batch op type ${String(op?.type)}`);
      return { type: op.type, key: checkKey(op.key), value: op.type === 'put' ? checkValue(op.value).slice() : undefined };
    });
    if (prepared.length === 0) return;
    await this.write((s) => {
      for (const op of prepared) {
        if (op.type === 'put') s.put(op.value, op.key);
        else s.delete(op.key);
      }
    });
  }

  async *entries(prefix = ''): AsyncIterable<[string, Uint8Array]> {
    const db = await this.open();
    const store = db.transaction(STORE, 'readonly').objectStore(STORE);
    const end = prefix ? prefixEnd(prefix) : undefined;
    const range = prefix ? (end !== undefined ? IDBKeyRange.bound(prefix, end, false, true) : IDBKeyRange.lowerBound(prefix)) : undefined;
    const [keys, values] = await Promise.all([req(store.getAllKeys(range)), req(store.getAll(range))]);
    for (let i = 0; i < keys.length; i++) {
      const v = values[i];
      if (typeof keys[i] !== 'string' || !(v instanceof Uint8Array)) throw new StorageError('corrupt record in IndexedDB');
      yield [keys[i] as string, v];
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const db = await this.db?.catch(() => undefined);
    db?.close();
  }
}
