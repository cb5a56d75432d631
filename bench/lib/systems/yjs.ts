/**
 * Yjs adapters. Two ways to hold a VM record in a Y.Map:
 * - `value`: the record is a plain value (ContentAny) under its key; an update replaces it.
 * - `nested`: each record is a nested Y.Map; an update sets only the changed fields.
 * Updates travel as `encodeStateAsUpdate(doc, stateVectorAtLastSync)` (diff updates); receivers apply them
 * inside one transaction.
 */
import * as Y from 'yjs';
import type { BenchVM } from '../vm.js';
import { fingerprint, type MapReplica, type MapSystem, type SetReplica, type SetSystem } from './types.js';

function newDoc(i: number): Y.Doc {
  const doc = new Y.Doc({ gc: true });
  doc.clientID = 1000 + i;
  return doc;
}

class YMapReplica implements MapReplica {
  private sv: Uint8Array;
  private readonly map: Y.Map<unknown>;
  constructor(
    private readonly doc: Y.Doc,
    private readonly nested: boolean,
  ) {
    this.map = doc.getMap('vms');
    this.sv = Y.encodeStateVector(doc);
  }
  write(vms: readonly BenchVM[], fields?: readonly (keyof BenchVM)[]): void {
    this.doc.transact(() => {
      for (const vm of vms) {
        if (!this.nested) {
          this.map.set(vm.id, vm);
          continue;
        }
        const cur = this.map.get(vm.id) as Y.Map<unknown> | undefined;
        if (cur && fields) {
          for (const f of fields) cur.set(f, vm[f]);
        } else {
          const m = new Y.Map<unknown>();
          for (const [k, v] of Object.entries(vm)) m.set(k, v);
          this.map.set(vm.id, m);
        }
      }
    });
  }
  mark(): void {
    this.sv = Y.encodeStateVector(this.doc);
  }
  exportSinceMark(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc, this.sv);
  }
  importAll(updates: readonly Uint8Array[]): void {
    this.doc.transact(() => {
      for (const u of updates) Y.applyUpdate(this.doc, u);
    });
  }
  encodeState(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc);
  }
  probe(key: string): string | undefined {
    const v = this.map.get(key);
    if (v instanceof Y.Map) return fingerprint({ status: v.get('status'), updatedAt: v.get('updatedAt') });
    return fingerprint(v as BenchVM | undefined);
  }
  size(): number {
    return this.map.size;
  }
  free(): void {
    this.doc.destroy();
  }
}

function yjsMap(nested: boolean): MapSystem {
  return {
    name: 'Yjs',
    variant: nested ? 'nested Y.Map per VM, set changed fields' : 'Y.Map, VM object as value, replace value',
    empty: (i) => new YMapReplica(newDoc(i), nested),
    load: (snapshot, i) => {
      const doc = newDoc(i);
      Y.applyUpdate(doc, snapshot);
      return new YMapReplica(doc, nested);
    },
  };
}

export const yjsValueMap = yjsMap(false);
export const yjsNestedMap = yjsMap(true);

class YSetReplica implements SetReplica {
  private readonly map: Y.Map<boolean>;
  constructor(private readonly doc: Y.Doc) {
    this.map = doc.getMap('set');
  }
  add(xs: readonly string[]): void {
    this.doc.transact(() => {
      for (const x of xs) this.map.set(x, true);
    });
  }
  remove(xs: readonly string[]): void {
    this.doc.transact(() => {
      for (const x of xs) this.map.delete(x);
    });
  }
  encodeState(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc);
  }
  importAll(updates: readonly Uint8Array[]): void {
    this.doc.transact(() => {
      for (const u of updates) Y.applyUpdate(this.doc, u);
    });
  }
  has(x: string): boolean {
    return this.map.has(x);
  }
  size(): number {
    return this.map.size;
  }
  free(): void {
    this.doc.destroy();
  }
}

export const yjsSet: SetSystem = {
  name: 'Yjs',
  variant: 'Y.Map key -> true, removed keys deleted',
  empty: (i) => new YSetReplica(newDoc(i)),
};
