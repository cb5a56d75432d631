/** Sync engine: gossip, anti-entropy, causal delivery, membership. */
export { SyncEngine } from './engine.js';
export type { SyncEngineOptions, UpdateOptions, ReadOptions, WriteLevel, ReadLevel, ChangeEvent, SyncEvent, SyncStats, Logger } from './engine.js';
export { isKeyed, hash64, KeyTree, type KeyedCrdt, type TreeNode } from './digest.js';
export { encodeEnvelope, decodeEnvelope, makeSigner, MSG, ENVELOPE_VERSION, type Envelope } from './envelope.js';
export { SeenCache } from './seen-cache.js';
export { PeerTable, type PeerState } from './peers.js';
export { sha256, hmacSha256 } from './hmac.js';
export { Simulation, bytesEqual, type SimulationOptions, type SimNode, type SimNodeContext } from './simulation.js';
