/** The benchmark suites, in RESULTS.md order. Each module: `export const suite: BenchSuite`. */
export interface BenchSuite {
  name: string;
  title: string;
  run(): Promise<string>;
}

import { suite as crdtOps } from './crdt-ops.js';
import { suite as peers } from './peers.js';
import { suite as memory } from './memory.js';
import { suite as kernels } from './kernels.js';
import { suite as syncSim } from './sync-sim.js';
import { suite as cluster } from './cluster.js';

export const suites: BenchSuite[] = [
  kernels,
  crdtOps,
  peers,
  memory,
  syncSim,
  cluster,
];
