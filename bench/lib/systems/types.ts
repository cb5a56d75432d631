/**
 * One interface over our CRDTs and the peer libraries, so every workload runs the same steps on each.
 * A "sync point" is the version a replica last exchanged at: `exportSinceMark()` gives the bytes a peer needs
 * to catch up from there (Yjs: update since a state vector; Automerge: saveSince(heads); Loro: export update
 * from a version vector; ours: takeDelta().encode()). No version/state-vector request travels: every system
 * pushes what changed since its own last sync point, so the wire bytes are the update payloads only.
 */
import type { BenchVM } from '../vm.js';

export interface MapReplica {
  /** One transaction of writes. `fields`: the fields that changed (a field-level variant writes only those). */
  write(vms: readonly BenchVM[], fields?: readonly (keyof BenchVM)[]): void;
  /** Remember the current version as the last sync point. */
  mark(): void;
  /** The update bytes since the last sync point. */
  exportSinceMark(): Uint8Array;
  /** Receive and merge updates from other replicas. */
  importAll(updates: readonly Uint8Array[]): void;
  /** Full encoded state (snapshot). */
  encodeState(): Uint8Array;
  /** (status, updatedAt) of a key, for checking convergence. */
  probe(key: string): string | undefined;
  size(): number;
  /** Release resources (wasm-backed documents). */
  free(): void;
}

export interface MapSystem {
  /** Library name as shown in tables. */
  name: string;
  /** How values are stored, as shown in tables. */
  variant: string;
  /** Called before a batch of replicas is made (ours: selects the kernel backend). */
  setup?(): void;
  /** An empty replica with index i (replica / peer / actor id derived from i). */
  empty(i: number): MapReplica;
  /** A replica loaded from a snapshot (the shared base). */
  load(snapshot: Uint8Array, i: number): MapReplica;
}

export interface SetReplica {
  add(xs: readonly string[]): void;
  remove(xs: readonly string[]): void;
  encodeState(): Uint8Array;
  importAll(updates: readonly Uint8Array[]): void;
  has(x: string): boolean;
  size(): number;
  free(): void;
}

export interface SetSystem {
  name: string;
  variant: string;
  setup?(): void;
  empty(i: number): SetReplica;
}

/** (status, updatedAt) fingerprint used by `probe`. */
export function fingerprint(v: { status?: unknown; updatedAt?: unknown } | undefined | null): string | undefined {
  return v ? `${String(v.status)}@${String(v.updatedAt)}` : undefined;
}
