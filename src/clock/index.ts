/** Ordering: vector clocks, hybrid logical clocks, causal delivery. */
export { VectorClock, clockGet, clockEntries, type ClockOrder, type ClockLike } from './vector-clock.js';
export { HLC, hlcPack, hlcWall, hlcLogical, HLC_LOGICAL_BITS, HLC_LOGICAL_MAX, type HLCOptions, type Timestamp } from './hlc.js';
export { CausalBuffer, type CausalEvent, type CausalBufferOptions } from './causal-buffer.js';
