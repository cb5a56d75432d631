/**
 * Typed errors. Every error the library throws on purpose is a `CrdtError` with a stable `code`,
 * except bounds violations, which are the built-in `RangeError`.
 */
export class CrdtError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bytes that are not a valid encoding (truncated, malformed, hostile, wrong version). */
export class DecodeError extends CrdtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_DECODE', message, options);
  }
}

/** A message or request that failed authentication (bad or missing HMAC tag, bad token). */
export class AuthError extends CrdtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_AUTH', message, options);
  }
}

/** A remote hybrid logical clock reading further ahead of local physical time than the allowed drift. */
export class ClockSkewError extends CrdtError {
  readonly driftMs: number;
  constructor(message: string, driftMs: number) {
    super('E_CLOCK_SKEW', message);
    this.driftMs = driftMs;
  }
}

/** A transport failure (peer unreachable, message too large, transport stopped). */
export class TransportError extends CrdtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_TRANSPORT', message, options);
  }
}

/** A storage failure (write not durable, corrupt record, storage closed). */
export class StorageError extends CrdtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_STORAGE', message, options);
  }
}

/** A consistency-level wait (write majority/all, read majority) that did not complete in time. */
export class TimeoutError extends CrdtError {
  constructor(message: string) {
    super('E_TIMEOUT', message);
  }
}

/** Something used before it was initialised (e.g. the wasm backend requested before `init()`). */
export class NotInitializedError extends CrdtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_NOT_INITIALIZED', message, options);
  }
}

/** Input of the wrong shape or type handed to a public API (e.g. a VMState with a string cpuCores). */
export class ValidationError extends CrdtError {
  constructor(message: string) {
    super('E_VALIDATION', message);
  }
}
