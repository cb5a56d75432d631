/**
 * One node per data directory: a second node process on a `--data-dir` in use exits 1 with a clear error; a
 * clean stop removes the lock; a lock left by a dead process (crash, SIGKILL) is taken over.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../../src/cli/lock.js';
import { BIN, api, ensureCli, killAll, startNode } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ass-cli-lock-'));

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

beforeAll(async () => {
  await ensureCli();
}, 120_000);

afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('data dir lock (node processes)', () => {
  it('refuses a second node on a data dir in use, and frees it on a clean stop', async () => {
    const data = join(dir, 'shared');
    const a = await startNode({ id: 'lock-a', region: 'us-east', dataDir: data });
    expect(readFileSync(join(data, LOCK_FILE), 'utf8').trim()).toBe(String(a.proc.pid));

    const second = startNode({ id: 'lock-b', region: 'us-west', dataDir: data });
    await expect(second).rejects.toThrow(/exited \(1\) before listening[\s\S]*in use by another node \(pid \d+\)/);
    expect((await api(a.http, 'GET', '/healthz')).status).toBe(200); // the first one is untouched
    expect(readFileSync(join(data, LOCK_FILE), 'utf8').trim()).toBe(String(a.proc.pid));

    a.proc.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(join(data, LOCK_FILE))).toBe(false);
    const b = await startNode({ id: 'lock-a', region: 'us-east', dataDir: data });
    b.proc.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null }); // even right after `listening`
  });

  it('says why it cannot start on stderr too (the log is JSON on stdout), exit code 1', () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const r = spawnSync(process.execPath, [BIN, 'node', '--id', 'bad-dir', '--region', 'r', '--listen', '127.0.0.1:0', '--data-dir', file], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^async-state-sync node: cannot start: /);
    expect(r.stdout).toContain('"msg":"cannot start"');
  });

  it('a data dir that cannot be made fails fast with the system error (Node\'s recursive mkdir hangs under /proc)', () => {
    const bad = process.platform === 'linux' ? '/proc/async-state-sync-nope/data' : join(dir, 'not-a-dir-2', 'data');
    if (process.platform !== 'linux') writeFileSync(join(dir, 'not-a-dir-2'), 'x');
    const r = spawnSync(process.execPath, [BIN, 'node', '--id', 'bad-dir', '--region', 'r', '--listen', '127.0.0.1:0', '--data-dir', bad], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^async-state-sync node: cannot start: E[A-Z]+/);
  });

  it('makeDirs makes missing levels, accepts an existing directory, refuses a file in the way', async () => {
    const { makeDirs } = await import('../../src/storage/dirs.js');
    const deep = join(dir, 'mk', 'a', 'b', 'c');
    makeDirs(deep);
    expect(existsSync(deep)).toBe(true);
    makeDirs(deep);
    makeDirs(join(dir, 'mk', 'a'));
    writeFileSync(join(dir, 'mk', 'file'), 'x');
    expect(() => makeDirs(join(dir, 'mk', 'file'))).toThrow(/EEXIST/);
    expect(() => makeDirs(join(dir, 'mk', 'file', 'sub'))).toThrow(/ENOTDIR/);
  });

  it('takes over the lock of a process that died', async () => {
    const data = join(dir, 'stale');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, LOCK_FILE), `${deadPid()}\n`);
    const a = await startNode({ id: 'lock-s', region: 'us-east', dataDir: data });
    expect(readFileSync(join(data, LOCK_FILE), 'utf8').trim()).toBe(String(a.proc.pid));
    a.proc.kill('SIGKILL'); // leaves its lock behind
    await a.exited;
    expect(readFileSync(join(data, LOCK_FILE), 'utf8').trim()).toBe(String(a.proc.pid));
    const b = await startNode({ id: 'lock-s', region: 'us-east', dataDir: data });
    expect(readFileSync(join(data, LOCK_FILE), 'utf8').trim()).toBe(String(b.proc.pid));
    b.proc.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
  });
});

describe('lockDataDir', () => {
  it('is exclusive within a process too, and release is idempotent', () => {
    const data = join(dir, 'in-process');
    mkdirSync(data, { recursive: true });
    const lock = lockDataDir(data);
    expect(() => lockDataDir(data)).toThrow(DataDirLockedError);
    expect(() => lockDataDir(join(data, '.'))).toThrow(DataDirLockedError); // same dir spelled otherwise
    lock.release();
    lock.release();
    expect(existsSync(join(data, LOCK_FILE))).toBe(false);
    lockDataDir(data).release();
  });

  it('refuses a lock held by another live process', async () => {
    const data = join(dir, 'live');
    mkdirSync(data, { recursive: true });
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(data, LOCK_FILE), `${other.pid}\n`);
      let err: unknown;
      try {
        lockDataDir(data);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DataDirLockedError);
      expect((err as DataDirLockedError).pid).toBe(other.pid);
      expect((err as Error).message).toContain(`in use by another node (pid ${other.pid})`);
      expect(readFileSync(join(data, LOCK_FILE), 'utf8').trim()).toBe(String(other.pid)); // left alone
    } finally {
      const gone = new Promise((r) => other.once('exit', r));
      other.kill('SIGKILL');
      await gone;
    }
  });

  it('takes over a stale lock: a dead pid, our own pid not held (a container restart), an old garbled file', () => {
    const data = join(dir, 'stale-kinds');
    mkdirSync(data, { recursive: true });
    const file = join(data, LOCK_FILE);
    for (const content of [`${deadPid()}\n`, `${process.pid}\n`, 'garbage']) {
      writeFileSync(file, content);
      if (content === 'garbage') utimesSync(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const lock = lockDataDir(data);
      expect(readFileSync(file, 'utf8').trim(), content).toBe(String(process.pid));
      lock.release();
      expect(existsSync(file)).toBe(false);
    }
  });

  it('treats a just-created empty lock as held (its owner is about to write its pid)', () => {
    const data = join(dir, 'fresh-empty');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, LOCK_FILE), '');
    expect(() => lockDataDir(data)).toThrow(/pid not yet written/);
  });
});
