/**
 * Our adapters: ORMap (`setLWW` of the whole VM record, or a nested ORMap per VM with LWW fields) and ORSet, on the
 * wasm kernels (the default) or the pure-TS kernels. A sync point is a `takeDelta()` (the delta is dropped);
 * the update since it is `takeDelta().encode()`; a receiver `decode`s each update and `merge`s it.
 */
import { ORMap, ORSet } from '../../../src/crdt/index.js';
import { ensureBackend, type BackendName } from '../kernel.js';
import type { BenchVM } from '../vm.js';
import { fingerprint, type MapReplica, type MapSystem, type SetReplica, type SetSystem } from './types.js';

const EMPTY = new Uint8Array(0);

class OurMapReplica implements MapReplica {
  constructor(
    private readonly map: ORMap<unknown>,
    private readonly nested: boolean,
  ) {}
  write(vms: readonly BenchVM[], fields?: readonly (keyof BenchVM)[]): void {
    const map = this.map;
    if (!this.nested) {
      for (const vm of vms) map.setLWW(vm.id, vm);
      return;
    }
    for (const vm of vms) {
      const m = map.map(vm.id);
      if (fields && m.size > 0) for (const f of fields) m.setLWW(f, vm[f]);
      else for (const [k, v] of Object.entries(vm)) m.setLWW(k, v);
    }
  }
  mark(): void {
    this.map.takeDelta();
  }
  exportSinceMark(): Uint8Array {
    return this.map.takeDelta()?.encode() ?? EMPTY;
  }
  importAll(updates: readonly Uint8Array[]): void {
    for (const u of updates) if (u.byteLength > 0) this.map.merge(ORMap.decode(u, 'wire'));
  }
  encodeState(): Uint8Array {
    return this.map.encode();
  }
  probe(key: string): string | undefined {
    const v = this.map.get(key);
    if (v instanceof ORMap) return fingerprint({ status: v.get('status'), updatedAt: v.get('updatedAt') });
    return fingerprint(v as BenchVM | undefined);
  }
  size(): number {
    return this.map.size;
  }
  free(): void {}
}

function ourMap(backend: BackendName, nested: boolean): MapSystem {
  return {
    name: nested ? `ours (${backend}, nested)` : `ours (${backend})`,
    variant: nested ? 'ORMap, nested ORMap per VM, setLWW changed fields' : 'ORMap, setLWW whole VM record',
    setup: () => ensureBackend(backend),
    empty: (i) => new OurMapReplica(new ORMap(`r${i}`), nested),
    load: (snapshot, i) => new OurMapReplica(ORMap.decode(snapshot, `r${i}`), nested),
  };
}

export const ourMapSystems: Record<string, MapSystem> = {
  'ours-wasm': ourMap('wasm', false),
  'ours-js': ourMap('js', false),
  'ours-nested': ourMap('wasm', true),
};

class OurSetReplica implements SetReplica {
  constructor(private readonly set: ORSet<string>) {}
  add(xs: readonly string[]): void {
    for (const x of xs) this.set.add(x);
  }
  remove(xs: readonly string[]): void {
    for (const x of xs) this.set.remove(x);
  }
  encodeState(): Uint8Array {
    return this.set.encode();
  }
  importAll(updates: readonly Uint8Array[]): void {
    for (const u of updates) this.set.merge(ORSet.decode<string>(u, 'wire'));
  }
  has(x: string): boolean {
    return this.set.has(x);
  }
  size(): number {
    return this.set.size;
  }
  free(): void {}
}

function ourSet(backend: BackendName): SetSystem {
  return {
    name: `ours (${backend})`,
    variant: 'ORSet (dots + causal context)',
    setup: () => ensureBackend(backend),
    empty: (i) => new OurSetReplica(new ORSet<string>(`r${i}`)),
  };
}

export const ourSetSystems: Record<string, SetSystem> = {
  'ours-wasm': ourSet('wasm'),
  'ours-js': ourSet('js'),
};
