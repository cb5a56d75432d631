/**
 * The bench workload's value: a VM record shaped like DESIGN's `VMState` (src/cluster), with numbers for times
 * (epoch ms) so every library stores the same plain JSON-like object.
 */
import { prng, randInt } from './prng.js';

export interface BenchVM {
  id: string;
  status: string;
  nodeId: string;
  cpuCores: number;
  memoryMB: number;
  diskGB: number;
  ipAddress: string;
  createdAt: number;
  updatedAt: number;
  metadata: { region: string; owner: string; tier: string; image: string };
}

const STATUSES = ['running', 'stopped', 'migrating', 'paused', 'provisioning'];
const REGIONS = ['us-east', 'us-west', 'eu-west', 'eu-central', 'ap-south'];
const TIERS = ['gold', 'silver', 'bronze'];
const IMAGES = ['ubuntu-24.04', 'debian-12', 'rocky-9', 'alpine-3.20'];
const T0 = 1_764_000_000_000;

export function vmId(i: number): string {
  return `vm-${String(i).padStart(6, '0')}`;
}

/** VM number i of the workload with this seed (each VM has its own PRNG stream, so ranges can be made lazily). */
export function makeVM(i: number, seed = 1): BenchVM {
  const rnd = prng(seed * 1_000_003 + i * 7919);
  const region = REGIONS[randInt(rnd, REGIONS.length)]!;
  const created = T0 + randInt(rnd, 86_400_000);
  return {
    id: vmId(i),
    status: STATUSES[randInt(rnd, STATUSES.length)]!,
    nodeId: `node-${region}-${1 + randInt(rnd, 20)}`,
    cpuCores: 1 << randInt(rnd, 6),
    memoryMB: 1024 << randInt(rnd, 6),
    diskGB: 20 * (1 + randInt(rnd, 50)),
    ipAddress: `10.${randInt(rnd, 256)}.${randInt(rnd, 256)}.${randInt(rnd, 256)}`,
    createdAt: created,
    updatedAt: created,
    metadata: { region, owner: `team-${randInt(rnd, 40)}`, tier: TIERS[randInt(rnd, TIERS.length)]!, image: IMAGES[randInt(rnd, IMAGES.length)]! },
  };
}

/** VMs [start, start + n), the same for a given seed. */
export function makeVMs(n: number, seed = 1, start = 0): BenchVM[] {
  const out: BenchVM[] = [];
  for (let i = start; i < start + n; i++) out.push(makeVM(i, seed));
  return out;
}

/** The workload's update: a status change with a new updatedAt (a new value object). */
export function updatedVM(vm: BenchVM, replica: number, round: number): BenchVM {
  return { ...vm, status: STATUSES[(STATUSES.indexOf(vm.status) + 1 + replica) % STATUSES.length]!, updatedAt: vm.updatedAt + 1000 * (round + 1) + replica };
}

/** Fields that `updatedVM` changes (what a field-level update writes). */
export const UPDATED_FIELDS = ['status', 'updatedAt'] as const;
