/**
 * The HTTP handler in process, with requests built by hand: what a real socket cannot show from loopback
 * (a non-loopback client without a token is refused) and the dashboard script's syntax.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NovaCronIntegration } from '../../src/cluster/integration.js';
import { canonicalJson, createHttpHandler, isLoopback, type HttpContext } from '../../src/cli/http.js';
import { dashboardHtml } from '../../src/dashboard/page.js';
import type { Transport } from '../../src/transport/types.js';

const transport: Transport = { id: 'h', address: 'mem://h', send: () => true, onMessage() {}, start: async () => {}, stop: async () => {} };

async function call(ctx: HttpContext, method: string, url: string, remote: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const handler = createHttpHandler(ctx);
  const req = Readable.from(body === undefined ? [] : [Buffer.from(JSON.stringify(body))]) as unknown as import('node:http').IncomingMessage;
  Object.assign(req, { method, url, headers, socket: { remoteAddress: remote } });
  return await new Promise((resolve) => {
    let status = 0;
    const res = {
      headersSent: false,
      writeHead(s: number) {
        status = s;
        res.headersSent = true;
        return res;
      },
      end(b?: string) {
        resolve({ status, body: b ?? '' });
      },
    };
    handler(req, res as unknown as import('node:http').ServerResponse);
  });
}

async function context(apiToken?: string): Promise<HttpContext> {
  const cluster = new NovaCronIntegration({ nodeId: 'h', region: 'us-east', transport });
  await cluster.start();
  return { nodeId: 'h', region: 'us-east', cluster, apiToken, metrics: () => '', admin: { addPeer() {}, partition() {}, heal() {} } };
}

describe('HTTP handler', () => {
  it('accepts writes without a token from loopback only', async () => {
    const ctx = await context();
    const vm = { id: 'vm-1', status: 'running' };
    expect((await call(ctx, 'PUT', '/vms/vm-1', '10.1.2.3', vm)).status).toBe(403);
    expect((await call(ctx, 'POST', '/admin/heal', '192.168.0.9', {})).status).toBe(403);
    expect(ctx.cluster.getVMState('vm-1')).toBeUndefined();
    expect((await call(ctx, 'GET', '/state', '10.1.2.3')).status).toBe(200); // reads are open
    expect((await call(ctx, 'PUT', '/vms/vm-1', '::ffff:127.0.0.1', vm)).status).toBe(204);
    expect(ctx.cluster.getVMState('vm-1')?.status).toBe('running');
    await ctx.cluster.stop();
  });

  it('with a token, requires it from everywhere, loopback included', async () => {
    const ctx = await context('s3cret-token-value');
    const vm = { id: 'vm-2', status: 'running' };
    expect((await call(ctx, 'PUT', '/vms/vm-2', '127.0.0.1', vm)).status).toBe(401);
    expect((await call(ctx, 'PUT', '/vms/vm-2', '10.0.0.1', vm, { authorization: 'Bearer s3cret-token-valuX' })).status).toBe(401);
    expect((await call(ctx, 'PUT', '/vms/vm-2', '10.0.0.1', vm, { authorization: 'Basic s3cret-token-value' })).status).toBe(401);
    expect((await call(ctx, 'PUT', '/vms/vm-2', '10.0.0.1', vm, { authorization: 'Bearer s3cret-token-value' })).status).toBe(204);
    expect((await call(ctx, 'PUT', '/vms/vm%ZZ', '10.0.0.1', vm, { authorization: 'Bearer s3cret-token-value' })).status).toBe(400);
    await ctx.cluster.stop();
  });

  it('serves the overview: counts per region and the latest VMs without listing them all', async () => {
    const ctx = await context();
    await ctx.cluster.updateNodeStatus({ id: 'n-eu', status: 'healthy', region: 'eu-west' });
    for (let i = 0; i < 30; i++) {
      await ctx.cluster.updateVMState(`vm-${i}`, { id: `vm-${i}`, status: 'running', nodeId: i % 3 === 0 ? 'n-eu' : 'n-gone', updatedAt: 5000 + i, ...(i % 3 === 1 ? { metadata: { region: 'ap-south' } } : {}) });
    }
    await ctx.cluster.incrementCounter('deploys', 4);
    const res = await call(ctx, 'GET', '/overview', '10.1.2.3');
    expect(res.status).toBe(200);
    const o = JSON.parse(res.body);
    expect(o).toMatchObject({ nodeId: 'h', region: 'us-east', vms: 30, regions: { 'ap-south': 10, 'eu-west': 10, unknown: 10 }, counters: { deploys: 4 } });
    expect(o.recent.map((v: { id: string }) => v.id)).toEqual(Array.from({ length: 25 }, (_, k) => `vm-${29 - k}`));
    expect(o.nodes.map((n: { id: string }) => n.id)).toEqual(['n-eu']);
    expect(JSON.parse((await call(ctx, 'GET', '/overview?recent=2', '10.1.2.3')).body).recent.map((v: { id: string }) => v.id)).toEqual(['vm-29', 'vm-28']);
    for (const bad of ['x', '-1', '1.5', '1001', '99999999999']) expect((await call(ctx, 'GET', `/overview?recent=${bad}`, '10.1.2.3')).status, bad).toBe(400);
    expect((await call(ctx, 'POST', '/overview', '127.0.0.1', {})).status).toBe(405);
    await ctx.cluster.stop();
  });

  it('classifies loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a), a).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', 'fe80::1', '', undefined]) expect(isLoopback(a), String(a)).toBe(false);
  });

  it('hashes state canonically (key order does not matter)', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }] })).toBe(canonicalJson({ a: [{ c: null, d: 2 }], b: 1 }));
    expect(canonicalJson({ a: 1, u: undefined })).toBe('{"a":1}');
  });
});

describe('dashboard page', () => {
  it('is self-contained, escapes its title and carries a script that parses', () => {
    const html = dashboardHtml({ nodeId: '<img src=x onerror=alert(1)>', region: 'eu-west' });
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=/); // no external assets
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1];
    expect(() => new Function(script)).not.toThrow();
    expect(script).toContain('textContent');
    expect(script).not.toContain('innerHTML');
  });
});
