/**
 * Times in cluster records (src/cluster/types.ts) as the seed system's Go API sends them: `time.Time`
 * serialises to an RFC 3339 string (`2024-05-01T12:00:00Z`, with nanoseconds when it has them). Strict
 * ISO-8601 date-times are accepted and stored as epoch ms; anything looser is a ValidationError. A Date inside
 * `metadata` or a resource value stays refused, with a message that says why.
 */
import { describe, expect, it } from 'vitest';
import { NovaCronIntegration } from '../../src/cluster/integration.js';
import { checkResourceValue, checkWriteOptions, MAX_TIMEOUT_MS, parseIsoDateTime, validateNodeStatus, validateVMState } from '../../src/cluster/types.js';
import { ValidationError } from '../../src/errors.js';
import type { Transport } from '../../src/transport/types.js';

const transport: Transport = { id: 't', address: 'mem://t', send: () => true, onMessage() {}, start: async () => {}, stop: async () => {} };

describe('ISO-8601 times in cluster records', () => {
  it('accepts RFC 3339 date-times with a zone and stores epoch ms', () => {
    const cases: Array<[string, number]> = [
      ['2024-05-01T12:00:00Z', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01T12:00:00.5Z', Date.UTC(2024, 4, 1, 12, 0, 0, 500)],
      ['2024-05-01T12:00:00.123456789Z', Date.UTC(2024, 4, 1, 12, 0, 0, 123)], // Go's nanoseconds: cut to ms
      ['2024-05-01T14:30:00+02:30', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01T07:00:00-05:00', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01t12:00:00z', Date.UTC(2024, 4, 1, 12)], // RFC 3339 allows lower case
      ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
      ['1970-01-01T00:00:00Z', 0],
    ];
    for (const [s, ms] of cases) {
      expect(parseIsoDateTime(s), s).toBe(ms);
      const vm = validateVMState('vm-1', { id: 'vm-1', status: 'running', createdAt: s, updatedAt: s });
      expect(vm.createdAt, s).toBe(ms);
      expect(vm.updatedAt, s).toBe(ms);
    }
    expect(validateNodeStatus({ id: 'n', region: 'r', status: 'healthy', lastHeartbeat: '2024-05-01T12:00:00Z' }).lastHeartbeat).toBe(Date.UTC(2024, 4, 1, 12));
    // what existed before still works: epoch ms and Date
    expect(validateVMState('vm-1', { status: 'x', createdAt: 5, updatedAt: new Date(7) })).toMatchObject({ createdAt: 5, updatedAt: 7 });
  });

  it('rejects anything looser or impossible', () => {
    const bad = [
      '2024-05-01', // date only
      '2024-05-01T12:00:00', // no zone: local time would differ between nodes
      '2024-05-01 12:00:00Z',
      '2024-05-01T12:00Z',
      '2024-5-1T12:00:00Z',
      '2024-02-30T00:00:00Z', // Date.parse takes it (as March 1st)
      '2023-02-29T00:00:00Z',
      '2024-04-31T00:00:00Z',
      '2024-05-01T24:00:00Z', // Date.parse takes it
      '2024-05-01T12:60:00Z',
      '2024-05-01T12:00:60Z',
      '2024-05-01T12:00:00+24:00',
      '2024-05-01T12:00:00.Z',
      '2024-05-01T12:00:00.1234567890Z',
      '1969-12-31T23:59:59Z', // before 1970, like a negative epoch
      ' 2024-05-01T12:00:00Z',
      '2024-05-01T12:00:00Z\n',
      'May 1, 2024',
      '1714564800000',
      '',
    ];
    for (const s of bad) {
      expect(() => validateVMState('vm-1', { status: 'x', createdAt: s }), JSON.stringify(s)).toThrow(ValidationError);
      expect(() => validateNodeStatus({ id: 'n', region: 'r', status: 'ok', lastHeartbeat: s }), JSON.stringify(s)).toThrow(ValidationError);
    }
    expect(() => validateVMState('vm-1', { status: 'x', updatedAt: 'yesterday' })).toThrow(/updatedAt must be epoch milliseconds or an ISO-8601 date-time/);
  });

  it('migrates a Go-serialised snapshot', async () => {
    const node = new NovaCronIntegration({ nodeId: 'm', region: 'us-east', transport });
    await node.start();
    try {
      await node.migrateFrom({
        vms: [{ id: 'vm-go', status: 'running', createdAt: '2024-05-01T12:00:00Z', updatedAt: '2024-05-02T08:15:30.250000001Z' } as never],
        nodes: [{ id: 'n-go', region: 'us-east', status: 'healthy', lastHeartbeat: '2024-05-02T08:15:30Z' } as never],
      });
      expect(node.getVMState('vm-go')).toMatchObject({ createdAt: Date.UTC(2024, 4, 1, 12), updatedAt: Date.UTC(2024, 4, 2, 8, 15, 30, 250) });
      expect(node.getNodeStatus('n-go')?.lastHeartbeat).toBe(Date.UTC(2024, 4, 2, 8, 15, 30));
    } finally {
      await node.stop();
    }
  });
});

describe('JSON-only values', () => {
  it('say why a Date in metadata or a resource value is refused', () => {
    expect(() => validateVMState('vm-1', { status: 'x', metadata: { bootedAt: new Date() } })).toThrow(
      /metadata\.bootedAt holds a Date: only JSON-like values are allowed here .*epoch milliseconds or an ISO-8601 string/,
    );
    expect(() => checkResourceValue({ at: [new Date()] })).toThrow(/resource value\.at\[0\] holds a Date/);
    expect(() => checkResourceValue(new Map())).toThrow(/resource value holds a Map: only JSON-like values/);
  });
});

describe('write options', () => {
  it('bound timeoutMs at 2^31-1 ms, the longest timer Node keeps', () => {
    expect(MAX_TIMEOUT_MS).toBe(2 ** 31 - 1);
    expect(checkWriteOptions({ write: 'majority', timeoutMs: MAX_TIMEOUT_MS })).toEqual({ write: 'majority', timeoutMs: MAX_TIMEOUT_MS });
    expect(() => checkWriteOptions({ write: 'majority', timeoutMs: MAX_TIMEOUT_MS + 1 })).toThrow(ValidationError);
    expect(() => checkWriteOptions({ timeoutMs: 1e20 })).toThrow(/timeoutMs must be <= 2147483647/);
  });
});
