/**
 * Automerge adapters (@automerge/automerge 3, Rust compiled to wasm). A VM record is a nested map (Automerge's
 * only way to hold an object); an update sets the changed fields in one `change` per batch. Updates travel as
 * `saveSince(doc, headsAtLastSync)`; a receiver concatenates what it got and calls `loadIncremental` once
 * (measured faster than one call per update, and than getChanges/applyChanges).
 */
import * as A from '@automerge/automerge';
import type { BenchVM } from '../vm.js';
import { fingerprint, type MapReplica, type MapSystem, type SetReplica, type SetSystem } from './types.js';

type VmDoc = { vms: Record<string, BenchVM> };
type SetDoc = { set: Record<string, boolean> };

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

function actor(i: number): string {
  return (1000 + i).toString(16).padStart(32, '0');
}

class AutomergeMapReplica implements MapReplica {
  private heads: A.Heads;
  constructor(private doc: A.Doc<VmDoc>) {
    this.heads = A.getHeads(doc);
  }
  write(vms: readonly BenchVM[], fields?: readonly (keyof BenchVM)[]): void {
    this.doc = A.change(this.doc, (d) => {
      if (!d.vms) d.vms = {};
      for (const vm of vms) {
        const cur = d.vms[vm.id];
        if (cur && fields) {
          for (const f of fields) (cur as unknown as Record<string, unknown>)[f] = vm[f];
        } else {
          d.vms[vm.id] = structuredClone(vm);
        }
      }
    });
  }
  mark(): void {
    this.heads = A.getHeads(this.doc);
  }
  exportSinceMark(): Uint8Array {
    return A.saveSince(this.doc, this.heads);
  }
  importAll(updates: readonly Uint8Array[]): void {
    // saveSince chunks concatenate; one loadIncremental of the batch is faster than one per update
    this.doc = A.loadIncremental(this.doc, concat(updates));
  }
  encodeState(): Uint8Array {
    return A.save(this.doc);
  }
  probe(key: string): string | undefined {
    return fingerprint(this.doc.vms?.[key]);
  }
  size(): number {
    return this.doc.vms ? Object.keys(this.doc.vms).length : 0;
  }
  free(): void {
    A.free(this.doc);
  }
}

export const automergeMap: MapSystem = {
  name: 'Automerge',
  variant: 'nested map per VM, set changed fields',
  empty: (i) => new AutomergeMapReplica(A.init<VmDoc>({ actor: actor(i) })),
  load: (snapshot, i) => new AutomergeMapReplica(A.load<VmDoc>(snapshot, { actor: actor(i) })),
};

class AutomergeSetReplica implements SetReplica {
  constructor(private doc: A.Doc<SetDoc>) {}
  add(xs: readonly string[]): void {
    this.doc = A.change(this.doc, (d) => {
      if (!d.set) d.set = {};
      for (const x of xs) d.set[x] = true;
    });
  }
  remove(xs: readonly string[]): void {
    this.doc = A.change(this.doc, (d) => {
      for (const x of xs) delete d.set[x];
    });
  }
  encodeState(): Uint8Array {
    return A.save(this.doc);
  }
  importAll(updates: readonly Uint8Array[]): void {
    this.doc = A.loadIncremental(this.doc, concat(updates));
  }
  has(x: string): boolean {
    return this.doc.set?.[x] === true;
  }
  size(): number {
    return this.doc.set ? Object.keys(this.doc.set).length : 0;
  }
  free(): void {
    A.free(this.doc);
  }
}

export const automergeSet: SetSystem = {
  name: 'Automerge',
  variant: 'map key -> true, removed keys deleted',
  empty: (i) => new AutomergeSetReplica(A.init<SetDoc>({ actor: actor(i) })),
};
