/**
 * failureStreakLog: a heartbeat that keeps failing logs the first failure of a streak at once, then at most one
 * line a minute with the failures since and the latest error, and the streak's end; a new streak after a
 * recovery is logged at once again.
 */
import { describe, expect, it } from 'vitest';
import { failureStreakLog } from '../../src/cli/node.js';

describe('failureStreakLog', () => {
  it('logs streaks, not attempts', () => {
    let t = 0;
    const lines: [string, string, Record<string, unknown>][] = [];
    const log = { warn: (msg: string, f: Record<string, unknown> = {}) => void lines.push(['warn', msg, f]), info: (msg: string, f: Record<string, unknown> = {}) => void lines.push(['info', msg, f]) };
    const s = failureStreakLog(log as never, 'heartbeat', () => t);
    s.ok(); // nothing to say
    s.failed('disk');
    for (t = 1_000; t < 60_000; t += 1_000) s.failed('exhausted'); // 59 more within the minute: counted only
    t = 61_000;
    s.failed('timeout'); // a minute on: one line with the 60 since and the latest error
    s.ok();
    t = 62_000;
    s.failed('again'); // a new streak: at once
    expect(lines.map(([l, m, f]) => [l, m, f.error ?? null, f.failures, f.streak ?? null])).toEqual([
      ['warn', 'heartbeat failed', 'disk', 1, 1],
      ['warn', 'heartbeat failed', 'timeout', 60, 61],
      ['info', 'heartbeat recovered', null, 61, null],
      ['warn', 'heartbeat failed', 'again', 1, 1],
    ]);
  });
});
