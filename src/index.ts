/**
 * async-state-sync: the public API, the same in every environment. The entry files pick how the wasm kernels
 * load: `node.ts` (synchronously on import), `browser.ts` (`await init()`), `slim.ts` (the application calls
 * `init`/`initSync`), `js.ts` (pure-TS kernels only). Until the wasm is loaded the pure-TS backend serves.
 */
export {
  CrdtError,
  DecodeError,
  AuthError,
  ClockSkewError,
  TransportError,
  StorageError,
  TimeoutError,
  NotInitializedError,
  ValidationError,
} from './errors.js';

// kernels and backend selection
export { init, initSync, useBackend, backend, isWasmReady, type BackendName, type Kernel } from './kernel/index.js';

// CRDTs
export {
  CODEC_VERSION,
  CRDT_TYPE,
  type Crdt,
  GCounter,
  PNCounter,
  GSet,
  TwoPSet,
  ORSet,
  LWWRegister,
  type LWWRegisterOptions,
  MVRegister,
  ORMap,
  type ORMapOptions,
  type NestedCrdt,
  RGA,
  type RgaOp,
  type RgaInsertOp,
  type RgaDeleteOp,
  CausalContext,
  decodeCrdt,
  createCrdt,
  type AnyCrdt,
} from './crdt/index.js';

// clocks
export {
  VectorClock,
  type ClockOrder,
  HLC,
  type HLCOptions,
  type Timestamp,
  CausalBuffer,
  type CausalEvent,
  type CausalBufferOptions,
} from './clock/index.js';

// user-value codec (canonical msgpack)
export { encodeValue, decodeValue } from './codec/value.js';

// time
export { RealScheduler, VirtualScheduler, Random, type Scheduler, type TimerHandle } from './time/index.js';

// transports
export type { Transport, MessageHandler } from './transport/types.js';
export { MemoryNetwork, MemoryTransport, type MemoryNetworkOptions } from './transport/memory.js';
export { WebSocketTransport, type WebSocketTransportOptions, type SharedHttpServer } from './transport/websocket.js';

// storage
export type { Storage, StorageBatchOp } from './storage/types.js';
export { MemoryStorage } from './storage/memory.js';
export { IndexedDbStorage, type IndexedDbStorageOptions } from './storage/indexeddb.js';

// sync engine
export {
  SyncEngine,
  type SyncEngineOptions,
  type UpdateOptions,
  type ReadOptions,
  type WriteLevel,
  type ReadLevel,
  type ChangeEvent,
  type SyncEvent,
  type SyncStats,
  type Logger,
} from './sync/index.js';

// cluster metadata (the seed system's API)
export {
  NovaCronIntegration,
  type NovaCronIntegrationOptions,
  type ClusterStats,
  type IntegrationStats,
  ClusterMetadata,
  type ClusterState,
  type ClusterOverview,
  type ClusterSummary,
  validateVMState,
  validateNodeStatus,
  type VMState,
  type NodeStatus,
  type ClusterSnapshot,
  type TimeInput,
  type VMStateInput,
  type NodeStatusInput,
  type WriteOptions,
} from './cluster/index.js';
