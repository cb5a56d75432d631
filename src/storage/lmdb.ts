/**
 * `LmdbStorage`: durable storage for Node on LMDB (the `lmdb` package).
 *
 * Design choices:
 * - Keys are stored as UTF-8 bytes (`keyEncoding: 'binary'`), so LMDB's byte order is the key order that
 *   `entries(prefix)` promises; values are stored as raw bytes (`encoding: 'binary'`).
 * - Durability: `put`/`delete`/`batch` resolve once lmdb's write promise (the commit) has resolved and then
 *   `db.flushed` (the commit synced to disk). lmdb batches every write issued in one event turn into one
 *   transaction, so many concurrent writers share one commit and one sync. With `durability: 'committed'`
 *   writes resolve at commit (safe against a process crash, not against a power loss), which is faster.
 * - `batch` runs in one lmdb transaction: all of its writes or none.
 * - The module imports `lmdb` lazily in `open()`, so importing it costs nothing where it is not used.
 */
import { makeDirs } from './dirs.js';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../errors.js';
import type { Storage, StorageBatchOp } from './types.js';

export interface LmdbStorageOptions {
  /** Directory of the LMDB environment (created with its parents when missing); the database is `data.mdb` in it. */
  path: string;
  /** `'flushed'` (default): writes resolve once synced to disk. `'committed'`: once committed. */
  durability?: 'flushed' | 'committed';
  /** LMDB map size in bytes (grows automatically on most platforms). */
  mapSize?: number;
}

interface LmdbDb {
  get(key: Uint8Array): Uint8Array | undefined;
  put(key: Uint8Array, value: Uint8Array): Promise<boolean>;
  remove(key: Uint8Array): Promise<boolean>;
  transaction<T>(fn: () => T): Promise<T>;
  putSync(key: Uint8Array, value: Uint8Array): boolean;
  removeSync(key: Uint8Array): boolean;
  getRange(opts: { start?: Uint8Array; end?: Uint8Array }): Iterable<{ key: Uint8Array; value: Uint8Array }>;
  flushed: Promise<boolean>;
  committed: Promise<boolean>;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** The smallest byte string greater than every string with this prefix (undefined: no upper bound). */
function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

function keyBytes(key: string): Uint8Array {
  if (typeof key !== 'string' || key.length === 0) throw new StorageError('storage keys are non-empty strings');
  const b = enc.encode(key);
  if (b.length > 511) throw new StorageError(`storage key longer than 511 bytes: ${key.slice(0, 40)}...`);
  return b;
}

function valueBytes(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new StorageError('storage values are Uint8Array');
  return v;
}

export class LmdbStorage implements Storage {
  readonly path: string;
  private readonly durability: 'flushed' | 'committed';
  private readonly mapSize: number | undefined;
  private db: LmdbDb | undefined;
  private opening: Promise<LmdbDb> | undefined;
  private closed = false;

  constructor(options: LmdbStorageOptions) {
    if (!options || typeof options.path !== 'string' || options.path.length === 0) throw new StorageError('LmdbStorage needs a path');
    this.path = options.path;
    this.durability = options.durability ?? 'flushed';
    this.mapSize = options.mapSize;
  }

  /** Open the environment (called implicitly by the first operation). */
  async open(): Promise<void> {
    await this.handle();
  }

  private handle(): Promise<LmdbDb> {
    if (this.closed) return Promise.reject(new StorageError('storage is closed'));
    if (this.db) return Promise.resolve(this.db);
    this.opening ??= (async () => {
      try {
        const { open } = await import('lmdb');
        makeDirs(this.path);
        checkDataFile(join(this.path, 'data.mdb'));
        const db = open({
          path: join(this.path, 'data.mdb'),
          encoding: 'binary',
          keyEncoding: 'binary',
          ...(this.mapSize ? { mapSize: this.mapSize } : {}),
        } as never) as unknown as LmdbDb;
        this.db = db;
        return db;
      } catch (e) {
        this.opening = undefined;
        throw new StorageError(`cannot open LMDB at ${this.path}: ${(e as Error).message}`, { cause: e });
      }
    })();
    return this.opening;
  }

  private async durable(write: Promise<unknown>, db: LmdbDb): Promise<void> {
    try {
      await write;
      if (this.durability === 'flushed') await db.flushed;
    } catch (e) {
      throw new StorageError(`LMDB write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const k = keyBytes(key);
    const db = await this.handle();
    const v = db.get(k);
    return v === undefined ? undefined : new Uint8Array(v);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const k = keyBytes(key);
    const v = valueBytes(value);
    const db = await this.handle();
    await this.durable(db.put(k, v), db);
  }

  async delete(key: string): Promise<void> {
    const k = keyBytes(key);
    const db = await this.handle();
    await this.durable(db.remove(k), db);
  }

  async batch(ops: StorageBatchOp[]): Promise<void> {
    if (!Array.isArray(ops)) throw new StorageError('batch takes an array of operations');
    // validate everything before anything is written: a bad op leaves the store unchanged
    const prepared = ops.map((op) => {
      if (!op || (op.type !== 'put' && op.type !== 'del')) throw new StorageError(`bad batch op type ${String(op?.type)}`);
      return { type: op.type, key: keyBytes(op.key), value: op.type === 'put' ? valueBytes(op.value) : undefined };
    });
    if (prepared.length === 0) return;
    const db = await this.handle();
    const tx = db.transaction(() => {
      for (const op of prepared) {
        if (op.type === 'put') db.putSync(op.key, op.value!);
        else db.removeSync(op.key);
      }
    });
    await this.durable(tx, db);
  }

  async *entries(prefix = ''): AsyncIterable<[string, Uint8Array]> {
    const db = await this.handle();
    const start = enc.encode(prefix);
    const end = prefixEnd(start);
    const range = db.getRange(start.length ? (end ? { start, end } : { start }) : {});
    for (const { key, value } of range) {
      let k: string;
      try {
        k = dec.decode(key);
      } catch (e) {
        throw new StorageError('corrupt key in LMDB (not UTF-8)', { cause: e });
      }
      yield [k, new Uint8Array(value)];
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const db = this.db ?? (this.opening ? await this.opening.catch(() => undefined) : undefined);
    this.db = undefined;
    if (db) {
      await db.flushed;
      await db.close();
    }
  }
}

/** LMDB's meta page: magic at byte 24, page size (the free DB's md_pad) at 48, last page at 144, txn id at 152. */
const META_MAGIC = 0xbeefc0de;
const META_BYTES = 160;

/**
 * Refuse a damaged `data.mdb` before LMDB maps it: the native open crashes the whole process on a file whose
 * meta pages are zeroed (SIGSEGV) or that is shorter than the pages its meta names (SIGBUS, on first read),
 * where a StorageError lets the caller say what is wrong. A missing or empty file is a new database. Checked:
 * both meta pages carry LMDB's magic, the page size is a power of two from 4 KiB to 64 KiB, and the file
 * holds every page up to the newer meta's last page.
 */
export function checkDataFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return; // no file yet: LMDB creates it
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return;
    const damaged = (why: string) => new StorageError(`${file} is damaged (${why}); move it aside to start empty and recover from peers`);
    const head = Buffer.alloc(META_BYTES);
    if (readSync(fd, head, 0, META_BYTES, 0) < META_BYTES) throw damaged(`${size} bytes, shorter than a meta page`);
    const pageSize = head.readUInt32LE(48);
    if (head.readUInt32LE(24) !== META_MAGIC || pageSize < 4096 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw damaged('first meta page unreadable');
    if (size < 2 * pageSize) throw damaged(`${size} bytes, shorter than its two meta pages`);
    const second = Buffer.alloc(META_BYTES);
    readSync(fd, second, 0, META_BYTES, pageSize);
    if (second.readUInt32LE(24) !== META_MAGIC) throw damaged('second meta page unreadable');
    const newer = second.readBigUInt64LE(152) > head.readBigUInt64LE(152) ? second : head;
    const pages = Number(newer.readBigUInt64LE(144)) + 1;
    if (pages * pageSize > size) throw damaged(`${size} bytes, its meta names ${pages} pages of ${pageSize}`);
  } finally {
    closeSync(fd);
  }
}
