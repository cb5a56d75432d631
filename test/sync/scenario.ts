/**
 * One seeded chaos scenario for the convergence tests: 3-15 nodes, 0-40% loss, duplication, reordering,
 * random partitions that later heal, crash/restart of a minority (restart from MemoryStorage), random
 * updates to all nine CRDT types. After heal plus a bounded quiet period every replica's encode() must be
 * identical and a model of the expected values must hold. Returns a description of what failed, or null.
 */
import { GCounter } from '../../src/crdt/g-counter.js';
import { GSet } from '../../src/crdt/g-set.js';
import { LWWRegister } from '../../src/crdt/lww-register.js';
import { MVRegister } from '../../src/crdt/mv-register.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { ORSet } from '../../src/crdt/or-set.js';
import { PNCounter } from '../../src/crdt/pn-counter.js';
import { RGA } from '../../src/crdt/rga.js';
import { TwoPSet } from '../../src/crdt/two-p-set.js';
import { Random } from '../../src/time/random.js';
import { Simulation, bytesEqual } from '../../src/sync/simulation.js';
import type { SyncEngine } from '../../src/sync/engine.js';

export const NAMES = ['gc', 'pn', 'gs', 'tp', 'ors', 'lww', 'mv', 'map', 'rga'] as const;

export interface ScenarioResult {
  seed: number;
  nodes: number;
  updates: number;
  acked: number;
  crashes: number;
  partitions: number;
  convergedAfterMs: number;
  failure: string | null;
  maxSeen: number;
  maxQueue: number;
  maxCausal: number;
}

interface Op {
  node: string;
  acked: boolean;
}

export async function runScenario(seed: number): Promise<ScenarioResult> {
  const rng = new Random(seed);
  const n = 3 + rng.int(13);
  const ids = Array.from({ length: n }, (_, i) => `n${i}`);
  const loss = rng.float() * 0.4;
  const gossipMs = 200 + rng.int(800);
  const aeMs = 1000 + rng.int(2000);
  const sim = new Simulation({
    seed,
    nodes: ids,
    latencyMs: [1 + rng.int(10), 20 + rng.int(80)],
    loss,
    duplicate: rng.float() * 0.2,
    reorder: rng.float() * 0.3,
    engine: {
      gossip: { fanout: 1 + rng.int(3), intervalMs: gossipMs, seenCacheSize: 64 + rng.int(256), maxPending: 32, rounds: 2 },
      antiEntropy: { intervalMs: aeMs },
      liveness: { probeIntervalMs: gossipMs },
      causalBufferSize: 16,
      checkpointMs: 500,
      snapshotEvery: 8,
    },
    setup: (e, ctx) => {
      e.register('gc', new GCounter(ctx.id));
      e.register('pn', new PNCounter(ctx.id));
      e.register('gs', new GSet<string>(ctx.id));
      e.register('tp', new TwoPSet<string>(ctx.id));
      e.register('ors', new ORSet<string>(ctx.id));
      e.register('lww', new LWWRegister<string>(ctx.id, { clock: ctx.clock }));
      e.register('mv', new MVRegister<string>(ctx.id));
      e.register('map', new ORMap<number>(ctx.id, { clock: ctx.clock }));
      e.register('rga', new RGA<string>(ctx.id));
    },
  });
  await sim.start();

  // ---- the model ---------------------------------------------------------------------------------------
  const gc: (Op & { n: number })[] = [];
  const pn: (Op & { n: number })[] = [];
  const gs: (Op & { x: string })[] = [];
  const tpAdd: (Op & { x: string })[] = [];
  const tpRemoved = new Set<string>(); // attempted removes
  const tpRemAcked = new Set<string>();
  const orsAdd: (Op & { x: string })[] = [];
  const orsRemoved = new Set<string>();
  const lww: (Op & { ts: number; writer: string; v: string })[] = [];
  const mv: (Op & { v: string })[] = [];
  const mapW: (Op & { k: string; ts: number; v: number })[] = [];
  const mapDeleted = new Set<string>();
  const rgaIns: (Op & { v: string })[] = [];
  const rgaDeleted = new Set<string>();
  let updates = 0;
  let crashes = 0;
  let partitions = 0;
  let maxSeen = 0;
  let maxQueue = 0;
  let maxCausal = 0;

  const track = <T extends Op>(list: T[] | null, op: T, p: Promise<void>): void => {
    list?.push(op);
    p.then(
      () => void (op.acked = true),
      () => undefined,
    );
  };

  const doUpdate = (): void => {
    const up = sim.upNodes();
    if (!up.length) return;
    const node = rng.pick(up);
    const e: SyncEngine = node.engine;
    const id = node.id;
    const tag = `${id}.${updates}`;
    updates++;
    const which = rng.pick(NAMES);
    const op: Op = { node: id, acked: false };
    switch (which) {
      case 'gc': {
        const k = 1 + rng.int(5);
        return track(gc, { ...op, n: k }, e.update<GCounter>('gc', (c) => c.increment(k)));
      }
      case 'pn': {
        const k = rng.int(11) - 5;
        return track(pn, { ...op, n: k }, e.update<PNCounter>('pn', (c) => c.increment(k)));
      }
      case 'gs':
        return track(gs, { ...op, x: tag }, e.update<GSet<string>>('gs', (s) => void s.add(tag)));
      case 'tp': {
        const s = e.get<TwoPSet<string>>('tp')!;
        const present = s.values();
        if (present.length && rng.chance(0.3)) {
          const x = rng.pick(present);
          tpRemoved.add(x);
          const p = e.update<TwoPSet<string>>('tp', (t) => void t.remove(x));
          p.then(() => tpRemAcked.add(x), () => undefined);
          return;
        }
        return track(tpAdd, { ...op, x: tag }, e.update<TwoPSet<string>>('tp', (t) => void t.add(tag)));
      }
      case 'ors': {
        const x = `e${rng.int(8)}`;
        if (rng.chance(0.35)) {
          orsRemoved.add(x);
          track(null, op, e.update<ORSet<string>>('ors', (s) => void s.remove(x)));
          return;
        }
        const rec = { ...op, x };
        return track(orsAdd, rec, e.update<ORSet<string>>('ors', (s) => s.add(x)));
      }
      case 'lww': {
        // the write's fields are read inside fn: a write may wait (a restart recovering from a peer) and
        // run after later events
        const rec = { ...op, ts: 0, writer: id, v: tag };
        const p = e.update<LWWRegister<string>>('lww', (r) => {
          r.set(tag);
          rec.ts = r.timestamp;
        });
        return track(lww, rec, p);
      }
      case 'mv':
        return track(mv, { ...op, v: tag }, e.update<MVRegister<string>>('mv', (r) => r.set(tag)));
      case 'map': {
        const k = `k${rng.int(6)}`;
        const m = e.get<ORMap<number>>('map')!;
        if (rng.chance(0.15) && m.has(k)) {
          mapDeleted.add(k);
          track(null, op, e.update<ORMap<number>>('map', (mm) => void mm.delete(k)));
          return;
        }
        const v = updates;
        const rec = { ...op, k, ts: 0, v };
        const p = e.update<ORMap<number>>('map', (mm) => {
          mm.setLWW(k, v);
          rec.ts = mm.timestamp(k)!;
        });
        return track(mapW, rec, p);
      }
      case 'rga': {
        const r = e.get<RGA<string>>('rga')!;
        if (r.length > 0 && rng.chance(0.25)) {
          const i = rng.int(r.length);
          rgaDeleted.add(r.get(i)!);
          track(
            null,
            op,
            e.update<RGA<string>>('rga', (x) => {
              if (i >= x.length) return;
              rgaDeleted.add(x.get(i)!); // what the index names when the write runs (see 'lww')
              x.delete(i);
            }),
          );
          return;
        }
        const i = rng.int(r.length + 1);
        return track(rgaIns, { ...op, v: tag }, e.update<RGA<string>>('rga', (x) => void x.insert(Math.min(i, x.length), tag)));
      }
    }
  };

  const sampleBounds = (): void => {
    for (const nd of sim.upNodes()) {
      const s = nd.engine.internals();
      if (s.seenCache > s.seenCapacity) throw new Error(`seen-cache ${s.seenCache} > ${s.seenCapacity}`);
      if (s.queue > s.maxQueue) throw new Error(`gossip queue ${s.queue} > ${s.maxQueue}`);
      if (s.causalPending > s.causalMax) throw new Error(`causal buffer ${s.causalPending} > ${s.causalMax}`);
      maxSeen = Math.max(maxSeen, s.seenCache);
      maxQueue = Math.max(maxQueue, s.queue);
      maxCausal = Math.max(maxCausal, s.causalPending);
    }
  };

  // ---- chaos phase ---------------------------------------------------------------------------------------
  const chaosMs = 5000 + rng.int(15000);
  const end = sim.scheduler.now() + chaosMs;
  const minority = Math.floor((n - 1) / 2);
  while (sim.scheduler.now() < end) {
    await sim.run(20 + rng.int(300));
    const r = rng.float();
    if (r < 0.8) doUpdate();
    else if (r < 0.85) {
      const shuffled = rng.shuffle(ids.slice());
      const cut = 1 + rng.int(n - 1);
      sim.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      partitions++;
    } else if (r < 0.9) sim.heal();
    else if (r < 0.95) {
      const down = ids.filter((id) => !sim.node(id).up).length;
      if (down < minority) {
        sim.crash(rng.pick(sim.upNodes()).id);
        crashes++;
      }
    } else {
      const down = ids.filter((id) => !sim.node(id).up);
      if (down.length) await sim.restart(rng.pick(down));
    }
    sampleBounds();
  }

  // ---- heal and quiet period ------------------------------------------------------------------------------
  sim.heal();
  for (const id of ids) if (!sim.node(id).up) await sim.restart(id);
  const quietStart = sim.scheduler.now();
  const quietLimit = 40 * aeMs + 60_000;
  let converged = false;
  while (sim.scheduler.now() - quietStart < quietLimit) {
    await sim.run(250);
    sampleBounds();
    if (sim.converged()) {
      converged = true;
      break;
    }
  }
  const convergedAfterMs = sim.scheduler.now() - quietStart;
  const result: ScenarioResult = {
    seed,
    nodes: n,
    updates,
    acked: [gc, pn, gs, tpAdd, orsAdd, lww, mv, mapW, rgaIns].reduce((s, l) => s + l.filter((o) => o.acked).length, 0),
    crashes,
    partitions,
    convergedAfterMs,
    failure: null,
    maxSeen,
    maxQueue,
    maxCausal,
  };
  await sim.stop();
  if (!converged) {
    // name the objects that differ, for the failure message
    const ref0 = sim.upNodes()[0].engine;
    const names = NAMES.filter((name) =>
      sim.upNodes().some((nd) => !bytesEqual(nd.engine.get(name)!.encode(), ref0.get(name)!.encode())),
    );
    return { ...result, failure: `not converged within ${quietLimit} ms of quiet (differing: ${names.join(', ')})` };
  }

  // every replica's encode() identical
  const ref = sim.upNodes()[0].engine;
  for (const nd of sim.upNodes()) {
    for (const name of NAMES) {
      if (!bytesEqual(nd.engine.get(name)!.encode(), ref.get(name)!.encode())) return { ...result, failure: `${name} differs on ${nd.id}` };
    }
  }

  // ---- the model check -------------------------------------------------------------------------------------
  const fail = (msg: string): ScenarioResult => ({ ...result, failure: msg });
  const sum = (l: { n: number; acked: boolean }[], f: (o: { n: number; acked: boolean }) => boolean): number => l.filter(f).reduce((s, o) => s + o.n, 0);
  const gcv = ref.get<GCounter>('gc')!.value();
  if (gcv < sum(gc, (o) => o.acked) || gcv > sum(gc, () => true)) return fail(`gc ${gcv} outside [${sum(gc, (o) => o.acked)}, ${sum(gc, () => true)}]`);
  const pnv = ref.get<PNCounter>('pn')!.value();
  const pnLo = sum(pn, (o) => o.acked || o.n < 0);
  const pnHi = sum(pn, (o) => o.acked || o.n > 0);
  if (pnv < pnLo || pnv > pnHi) return fail(`pn ${pnv} outside [${pnLo}, ${pnHi}]`);
  const gsv = new Set(ref.get<GSet<string>>('gs')!.values());
  for (const o of gs) if (o.acked && !gsv.has(o.x)) return fail(`gs lost ${o.x}`);
  for (const x of gsv) if (!gs.some((o) => o.x === x)) return fail(`gs invented ${x}`);
  const tpv = ref.get<TwoPSet<string>>('tp')!;
  for (const o of tpAdd) if (o.acked && !tpRemoved.has(o.x) && !tpv.has(o.x)) return fail(`tp lost ${o.x}`);
  for (const x of tpRemAcked) if (tpv.has(x)) return fail(`tp resurrected ${x}`);
  const orsv = new Set(ref.get<ORSet<string>>('ors')!.values());
  for (const x of orsv) if (!orsAdd.some((o) => o.x === x)) return fail(`ors invented ${x}`);
  for (const o of orsAdd) if (o.acked && !orsRemoved.has(o.x) && !orsv.has(o.x)) return fail(`ors lost ${o.x}`);
  const reg = ref.get<LWWRegister<string>>('lww')!;
  const ackedLww = lww.filter((o) => o.acked);
  if (ackedLww.length) {
    const best = ackedLww.reduce((a, b) => (b.ts > a.ts || (b.ts === a.ts && b.writer > a.writer) ? b : a));
    if (reg.timestamp < best.ts) return fail(`lww lost the write at ${best.ts}`);
    const w = lww.find((o) => o.ts === reg.timestamp && o.writer === reg.writer);
    if (!w || w.v !== reg.get()) return fail(`lww holds ${reg.get()} at ${reg.timestamp}, not a write made then`);
  }
  const mvv = ref.get<MVRegister<string>>('mv')!.values();
  for (const v of mvv) if (!mv.some((o) => o.v === v)) return fail(`mv invented ${v}`);
  if (mv.some((o) => o.acked) && mvv.length === 0) return fail('mv lost every value');
  const map = ref.get<ORMap<number>>('map')!;
  for (const k of new Set(mapW.map((o) => o.k))) {
    if (mapDeleted.has(k)) continue;
    const acked = mapW.filter((o) => o.k === k && o.acked);
    if (!acked.length) continue;
    if (!map.has(k)) return fail(`map lost ${k}`);
    const ts = map.timestamp(k)!;
    const maxTs = Math.max(...acked.map((o) => o.ts));
    if (ts < maxTs) return fail(`map ${k} at ${ts} older than acked ${maxTs}`);
    const cands = mapW.filter((o) => o.k === k && o.ts === ts).map((o) => o.v);
    if (!cands.includes(map.get(k) as number)) return fail(`map ${k} = ${String(map.get(k))}, not written at ${ts}`);
  }
  const arr = ref.get<RGA<string>>('rga')!.toArray();
  const inserted = new Set(rgaIns.map((o) => o.v));
  if (new Set(arr).size !== arr.length) return fail('rga holds a value twice');
  for (const v of arr) if (!inserted.has(v)) return fail(`rga invented ${v}`);
  for (const o of rgaIns) if (o.acked && !rgaDeleted.has(o.v) && !arr.includes(o.v)) return fail(`rga lost ${o.v}`);
  return result;
}

/** Seeds for a test file: SEED=<n> replays one; otherwise `count` seeds from `base` (LONG=1 raises it). */
export function seedsFor(base: number, count: number, longCount: number): number[] {
  if (process.env.SEED !== undefined) return [Number(process.env.SEED)];
  const k = process.env.LONG ? longCount : count;
  return Array.from({ length: k }, (_, i) => base + i);
}
