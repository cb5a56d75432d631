export { RealScheduler, ScopedScheduler } from './scheduler.js';
export type { Scheduler, TimerHandle } from './scheduler.js';
export { VirtualScheduler } from './virtual.js';
export { Random, hashString } from './random.js';
