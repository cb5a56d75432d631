/** Timing, memory and formatting helpers shared by the bench suites. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Full collection (the suites run under `node --expose-gc`); a no-op without it. */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

/**
 * Bytes held by the process that a data structure can own: the JS heap plus `external`, which counts
 * ArrayBuffers, Buffers and WebAssembly memories (a wasm memory counts with its whole byteLength, so the
 * growth of a wasm library's linear memory shows here too). Measured after a full GC.
 */
export function heldBytes(): { held: number; heap: number; external: number; rss: number } {
  gc();
  const m = process.memoryUsage();
  return { held: m.heapUsed + m.external, heap: m.heapUsed, external: m.external, rss: m.rss };
}

/** ms formatted with 3 significant-ish digits. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return 'n/a';
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns >= 100) return `${ns.toFixed(0)} ns`;
  return `${ns.toFixed(1)} ns`;
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return 'n/a';
  if (b >= 10 * 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MB`;
  if (b >= 10 * 1024) return `${(b / 1024).toFixed(1)} KB`;
  return `${Math.round(b)} B`;
}

/** "x.xx×" ratio of a peer's figure to ours (above 1: we use less / are faster). */
export function ratio(theirs: number, ours: number): string {
  if (!Number.isFinite(theirs) || !Number.isFinite(ours) || ours <= 0) return 'n/a';
  const r = theirs / ours;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

/** A markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Wall-clock of one call, ms. */
export function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** Let the event loop breathe (keeps long suites responsive to signals). */
export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
