/**
 * Loro adapters (loro-crdt, Rust compiled to wasm). Two ways to hold a VM record in a LoroMap:
 * - `value`: the record is a plain LoroValue under its key; an update replaces it.
 * - `nested`: each record is a child LoroMap container; an update sets only the changed fields.
 * Updates travel as `export({ mode: 'update', from: versionAtLastSync })`; receivers `importBatch` them.
 */
import { LoroDoc, LoroMap, type VersionVector } from 'loro-crdt';
import type { BenchVM } from '../vm.js';
import { fingerprint, type MapReplica, type MapSystem, type SetReplica, type SetSystem } from './types.js';

function newDoc(i: number): LoroDoc {
  const doc = new LoroDoc();
  doc.setPeerId(BigInt(1000 + i));
  return doc;
}

class LoroMapReplica implements MapReplica {
  private vv: VersionVector;
  private readonly map: LoroMap;
  constructor(
    private readonly doc: LoroDoc,
    private readonly nested: boolean,
  ) {
    this.map = doc.getMap('vms');
    this.vv = doc.oplogVersion();
  }
  write(vms: readonly BenchVM[], fields?: readonly (keyof BenchVM)[]): void {
    for (const vm of vms) {
      if (!this.nested) {
        this.map.set(vm.id, vm as never);
        continue;
      }
      const cur = this.map.get(vm.id) as LoroMap | undefined;
      if (cur && fields) {
        for (const f of fields) cur.set(f, vm[f] as never);
      } else {
        const m = this.map.setContainer(vm.id, new LoroMap());
        for (const [k, v] of Object.entries(vm)) m.set(k, v as never);
      }
    }
    this.doc.commit();
  }
  mark(): void {
    this.vv = this.doc.oplogVersion();
  }
  exportSinceMark(): Uint8Array {
    return this.doc.export({ mode: 'update', from: this.vv });
  }
  importAll(updates: readonly Uint8Array[]): void {
    this.doc.importBatch(updates as Uint8Array[]);
  }
  encodeState(): Uint8Array {
    return this.doc.export({ mode: 'snapshot' });
  }
  probe(key: string): string | undefined {
    const v = this.map.get(key);
    if (v instanceof LoroMap) return fingerprint({ status: v.get('status'), updatedAt: v.get('updatedAt') });
    return fingerprint(v as BenchVM | undefined);
  }
  size(): number {
    return this.map.size;
  }
  free(): void {
    this.doc.free();
  }
}

function loroMap(nested: boolean): MapSystem {
  return {
    name: 'Loro',
    variant: nested ? 'child LoroMap per VM, set changed fields' : 'LoroMap, VM object as value, replace value',
    empty: (i) => new LoroMapReplica(newDoc(i), nested),
    load: (snapshot, i) => {
      const doc = newDoc(i);
      doc.import(snapshot);
      return new LoroMapReplica(doc, nested);
    },
  };
}

export const loroValueMap = loroMap(false);
export const loroNestedMap = loroMap(true);

class LoroSetReplica implements SetReplica {
  private readonly map: LoroMap;
  constructor(private readonly doc: LoroDoc) {
    this.map = doc.getMap('set');
  }
  add(xs: readonly string[]): void {
    for (const x of xs) this.map.set(x, true);
    this.doc.commit();
  }
  remove(xs: readonly string[]): void {
    for (const x of xs) this.map.delete(x);
    this.doc.commit();
  }
  encodeState(): Uint8Array {
    return this.doc.export({ mode: 'snapshot' });
  }
  importAll(updates: readonly Uint8Array[]): void {
    this.doc.importBatch(updates as Uint8Array[]);
  }
  has(x: string): boolean {
    return this.map.get(x) !== undefined;
  }
  size(): number {
    return this.map.size;
  }
  free(): void {
    this.doc.free();
  }
}

export const loroSet: SetSystem = {
  name: 'Loro',
  variant: 'LoroMap key -> true, removed keys deleted',
  empty: (i) => new LoroSetReplica(newDoc(i)),
};
