/** The CRDT types, their shared contract, the causal context and the type-tag registry. */
export { CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
export { GCounter } from './g-counter.js';
export { PNCounter } from './pn-counter.js';
export { GSet } from './g-set.js';
export { TwoPSet } from './two-p-set.js';
export { ORSet } from './or-set.js';
export { LWWRegister, type LWWRegisterOptions } from './lww-register.js';
export { MVRegister } from './mv-register.js';
export { ORMap, ORMAP_KIND, type ORMapOptions, type NestedCrdt, type KeyHashes } from './or-map.js';
export { RGA, type RgaOp, type RgaInsertOp, type RgaDeleteOp } from './rga.js';
export { CausalContext } from './causal-context.js';
export { decodeCrdt, createCrdt, crdtTypeOf, type AnyCrdt, type CrdtTypeTag } from './registry.js';
