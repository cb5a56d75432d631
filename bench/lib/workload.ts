/**
 * The peer-comparison workloads, written once against `MapSystem` / `SetSystem` so each library does the same
 * steps. Setup (loading the shared base, local writes) is outside the timed part; the timed part is the exchange:
 * every replica exports its update since the last sync point and every replica merges the other replicas'.
 */
import { makeVMs, updatedVM, UPDATED_FIELDS, type BenchVM } from './vm.js';
import { prng, shuffled } from './prng.js';
import type { MapReplica, MapSystem, SetSystem } from './systems/types.js';

export interface ExchangeConfig {
  vms: number;
  replicas: number;
  updatesPerReplica: number;
}

export const DEFAULT_EXCHANGE: ExchangeConfig = { vms: 1000, replicas: 5, updatesPerReplica: 200 };

export interface ExchangeRun {
  /** Time for all replicas to export their updates (encode), ms. */
  exportMs: number;
  /** Time for all replicas to decode and merge the others' updates, ms. */
  mergeMs: number;
  /** Total bytes on the wire: each update is sent to every other replica. */
  wireBytes: number;
  /** Sum of the update sizes (each counted once). */
  updateBytes: number;
  /** Encoded full state of replica 0 after the exchange. */
  stateBytes: number;
}

export interface ExchangePlan {
  base: BenchVM[];
  /** updates[r]: the new values replica r writes (distinct VMs across replicas). */
  updates: BenchVM[][];
}

export function exchangePlan(cfg: ExchangeConfig = DEFAULT_EXCHANGE, seed = 7): ExchangePlan {
  const base = makeVMs(cfg.vms, seed);
  const order = shuffled(
    base.map((_, i) => i),
    prng(seed + 1),
  );
  const updates: BenchVM[][] = [];
  for (let r = 0; r < cfg.replicas; r++) {
    updates.push(order.slice(r * cfg.updatesPerReplica, (r + 1) * cfg.updatesPerReplica).map((i) => updatedVM(base[i]!, r, 0)));
  }
  return { base, updates };
}

/** The shared base: one replica writes every VM, its full state is the snapshot all replicas start from. */
export function baseSnapshot(sys: MapSystem, plan: ExchangePlan): Uint8Array {
  const seedReplica = sys.empty(99);
  seedReplica.write(plan.base);
  const snap = seedReplica.encodeState();
  seedReplica.free();
  return snap;
}

/** Replicas loaded from the base, each with its local writes done (untimed setup). */
export function preparedReplicas(sys: MapSystem, plan: ExchangePlan, snapshot: Uint8Array): MapReplica[] {
  const reps: MapReplica[] = [];
  for (let r = 0; r < plan.updates.length; r++) {
    const rep = sys.load(snapshot, r);
    rep.mark();
    rep.write(plan.updates[r]!, UPDATED_FIELDS);
    reps.push(rep);
  }
  return reps;
}

/** The timed exchange on prepared replicas. */
export function exchange(reps: MapReplica[]): ExchangeRun {
  const t0 = performance.now();
  const out = reps.map((r) => r.exportSinceMark());
  const t1 = performance.now();
  for (let r = 0; r < reps.length; r++) reps[r]!.importAll(out.filter((_, j) => j !== r));
  const t2 = performance.now();
  const updateBytes = out.reduce((s, u) => s + u.byteLength, 0);
  return {
    exportMs: t1 - t0,
    mergeMs: t2 - t1,
    updateBytes,
    wireBytes: updateBytes * (reps.length - 1),
    stateBytes: 0,
  };
}

/** Throws unless every replica holds every VM with every replica's update (the bench measured real work). */
export function checkConverged(sys: MapSystem, reps: MapReplica[], plan: ExchangePlan): void {
  const want = new Map<string, string>();
  for (const ups of plan.updates) for (const vm of ups) want.set(vm.id, `${vm.status}@${vm.updatedAt}`);
  reps.forEach((rep, r) => {
    if (rep.size() !== plan.base.length) throw new Error(`${sys.name}: replica ${r} has ${rep.size()} VMs, want ${plan.base.length}`);
    for (const [id, fp] of want) {
      const got = rep.probe(id);
      if (got !== fp) throw new Error(`${sys.name} (${sys.variant}): replica ${r} ${id} is ${got}, want ${fp}`);
    }
  });
}

/** Build a map of n VMs in one transaction; returns its full state. */
export function buildMap(sys: MapSystem, vms: readonly BenchVM[]): { rep: MapReplica; ms: number } {
  const rep = sys.empty(0);
  const t0 = performance.now();
  rep.write(vms);
  return { rep, ms: performance.now() - t0 };
}

/** The OR-Set workload's elements: n ids, the removed half chosen by a seeded shuffle. */
export function setPlan(n: number, seed = 11): { added: string[]; removed: string[] } {
  const added = Array.from({ length: n }, (_, i) => `vm-${String(i).padStart(6, '0')}`);
  const removed = shuffled(added, prng(seed)).slice(0, n >> 1);
  return { added, removed };
}

export type { SetSystem };
