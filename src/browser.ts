/**
 * Browser (and bundler) entry. Call `await init()` once to load the wasm kernels (fetched from
 * `release.wasm` beside the bundle with `WebAssembly.compileStreaming`, or pass a URL, Response, bytes or a
 * compiled module). Until then the pure-TS backend serves, so nothing fails for want of wasm.
 */
export * from './index.js';
