/** Every system the peer suites compare, by a stable key (used to name child-process tasks). */
import { automergeMap, automergeSet } from './automerge.js';
import { loroNestedMap, loroSet, loroValueMap } from './loro.js';
import { ourMapSystems, ourSetSystems } from './ours.js';
import type { MapSystem, SetSystem } from './types.js';
import { yjsNestedMap, yjsSet, yjsValueMap } from './yjs.js';

/** Ours first (the reference row is the first one), then the peers. */
export const mapSystems: Record<string, MapSystem> = {
  ...ourMapSystems,
  'yjs-value': yjsValueMap,
  'yjs-nested': yjsNestedMap,
  'loro-value': loroValueMap,
  'loro-nested': loroNestedMap,
  automerge: automergeMap,
};

export const setSystems: Record<string, SetSystem> = {
  ...ourSetSystems,
  yjs: yjsSet,
  loro: loroSet,
  automerge: automergeSet,
};

/** Keys of our own systems (rows that are "us"), the first being the reference for ratios. */
export const OUR_MAP_KEYS = Object.keys(ourMapSystems);
export const OUR_SET_KEYS = Object.keys(ourSetSystems);

export type { MapSystem, SetSystem };
