/**
 * An exclusive lock on a node's data directory, so two node processes never run on one `--data-dir` (LMDB
 * itself allows several processes; two nodes writing one store under one replica id would issue the same dots
 * twice).
 *
 * The lock is a file `<dir>/node.lock` created with the `wx` flag (fails if it exists) holding the owner's
 * pid. It is removed on a clean stop, and on `process.exit` from a synchronous exit handler. A lock left by a
 * process that died (its pid no longer alive, or our own pid without this process holding it: a container
 * restarts with the same pid) is stale and taken over: it is renamed away first (atomic, so of two processes
 * taking over one stale lock only one moves it), checked to be the stale file it was read as, and deleted;
 * then the `wx` create is retried.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const LOCK_FILE = 'node.lock';

/** Another live process holds the data directory. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`data dir ${dir} is in use by another node (${pid > 0 ? `pid ${pid}` : 'pid not yet written'}); stop it first, or remove ${join(dir, LOCK_FILE)} if that process is not a node`);
  }
}

/** Lock files this process holds (so a second node in this process is refused, and our own pid read from a stale file is not). */
const held = new Set<string>();

/** Is a process with this pid alive (EPERM: it exists, under another user)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const n = Number(text.trim());
  return text.trim() !== '' && Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** Is the lock (file `path`, read as held by `pid`; 0: empty or garbled) held by a live process? */
function liveOwner(file: string, path: string, pid: number): boolean {
  if (pid === process.pid) return held.has(file);
  if (pid > 0) return pidAlive(pid);
  // empty or garbled: just created by a process about to write its pid (live), or left by one that died
  // between create and write, or not ours (stale once it is older than a moment)
  try {
    return Date.now() - statSync(path).mtimeMs < 2000;
  } catch {
    return false;
  }
}

export interface DirLock {
  readonly file: string;
  /** Remove the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** Take the lock on `dir` (which must exist). Throws `DataDirLockedError` when a live process holds it. */
export function lockDataDir(dir: string): DirLock {
  const file = join(resolve(dir), LOCK_FILE);
  if (held.has(file)) throw new DataDirLockedError(dir, process.pid);
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = readPid(file);
      if (pid === undefined) continue; // removed meanwhile: try again
      if (liveOwner(file, file, pid)) throw new DataDirLockedError(dir, pid);
      takeOverStale(file, pid, dir);
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    held.add(file);
    const onExit = () => release();
    process.on('exit', onExit);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      process.off('exit', onExit);
      held.delete(file);
      try {
        if (readPid(file) === process.pid) unlinkSync(file);
      } catch {
        /* gone or unreadable: nothing of ours to remove */
      }
    };
    return { file, release };
  }
  throw new Error(`cannot take the lock ${file}: it keeps changing`);
}

/** Move a stale lock (read as held by dead `pid`) out of the way, unless it changed hands since it was read. */
function takeOverStale(file: string, pid: number, dir: string): void {
  const aside = `${file}.stale-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // another process moved it first
    throw e;
  }
  const moved = readPid(aside);
  if (moved === undefined || moved === pid || !liveOwner(file, aside, moved)) {
    unlinkSync(aside);
    return;
  }
  // between our read and our rename a live process took the lock over: put its file back
  try {
    linkSync(aside, file);
  } finally {
    unlinkSync(aside);
  }
  throw new DataDirLockedError(dir, moved);
}
