/**
 * A data dir that held a replica and comes back with an empty database (its file deleted or replaced) must
 * not start as a new replica: it would issue again the dots its peers hold for its old writes, and merging
 * the new writes would delete the peers' entries. `node.id` records the replica; on an empty database the
 * node recovers from a peer before its local writes (see checkHeldReplica and the engine's restart recovery).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, ensureCli, killAll, mesh, startNode, waitConverged } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ass-cli-held-'));

beforeAll(async () => {
  await ensureCli();
}, 120_000);

afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

const vm = (id: string) => ({ id, status: 'running', nodeId: 'held-a', cpuCores: 2, memoryMB: 1024 });

describe('a data dir whose database was lost', () => {
  it('recovers from its peer before writing, so the peer keeps every VM and the new writes land', async () => {
    const dataA = join(dir, 'a');
    const b = await startNode({ id: 'held-b', region: 'eu-west', dataDir: join(dir, 'b') });
    let a = await startNode({ id: 'held-a', region: 'us-east', dataDir: dataA });
    expect(readFileSync(join(dataA, 'node.id'), 'utf8').trim()).toBe('held-a');
    await mesh([a, b]);
    for (let i = 0; i < 20; i++) expect((await api(a.http, 'PUT', `/vms/vm-${i}`, vm(`vm-${i}`))).status).toBe(204);
    await waitConverged([a, b], 20);
    a.proc.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    rmSync(join(dataA, 'lmdb'), { recursive: true, force: true }); // the database is gone, node.id stays
    expect(existsSync(join(dataA, 'node.id'))).toBe(true);
    a = await startNode({ id: 'held-a', region: 'us-east', dataDir: dataA, port: a.port, peers: [{ id: 'held-b', address: b.address }] });
    expect(a.log.some((l) => l.includes('the database is empty but this data dir held a replica'))).toBe(true);
    for (let i = 0; i < 5; i++) expect((await api(a.http, 'PUT', `/vms/new-${i}`, vm(`new-${i}`))).status).toBe(204);
    await waitConverged([a, b], 25);
    const state = (await api(b.http, 'GET', '/state')).body as { vms: Array<{ id: string }> };
    const ids = state.vms.map((v) => v.id).sort();
    for (let i = 0; i < 20; i++) expect(ids).toContain(`vm-${i}`);
    for (let i = 0; i < 5; i++) expect(ids).toContain(`new-${i}`);
  }, 90_000);

  it('logs a node id that differs from the one the data dir held', async () => {
    const data = join(dir, 'c');
    const c = await startNode({ id: 'held-c', region: 'us-east', dataDir: data });
    c.proc.kill('SIGTERM');
    expect(await c.exited).toEqual({ code: 0, signal: null });
    const d = await startNode({ id: 'held-d', region: 'us-east', dataDir: data });
    expect(d.log.some((l) => l.includes('data dir held another node id') && l.includes('held-c'))).toBe(true);
    d.proc.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
