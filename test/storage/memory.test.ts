import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/storage/memory.js';
import { StorageError } from '../../src/errors.js';

const b = (...xs: number[]) => new Uint8Array(xs);

describe('MemoryStorage', () => {
  it('stores copies: mutating the written or returned buffer changes nothing stored', async () => {
    const s = new MemoryStorage();
    const v = b(1, 2, 3);
    await s.put('k', v);
    v[0] = 9;
    const got = (await s.get('k'))!;
    expect([...got]).toEqual([1, 2, 3]);
    got[1] = 9;
    expect([...(await s.get('k'))!]).toEqual([1, 2, 3]);
    expect(await s.get('missing')).toBeUndefined();
  });

  it('lists entries by prefix in key order, deletes, and batches atomically', async () => {
    const s = new MemoryStorage();
    await s.batch([
      { type: 'put', key: 'd/x/2', value: b(2) },
      { type: 'put', key: 'd/x/1', value: b(1) },
      { type: 'put', key: 'd/y/1', value: b(3) },
      { type: 'put', key: 'm', value: b(4) },
    ]);
    const got: string[] = [];
    for await (const [k] of s.entries('d/x/')) got.push(k);
    expect(got).toEqual(['d/x/1', 'd/x/2']);
    await s.delete('d/x/1');
    expect(await s.get('d/x/1')).toBeUndefined();
    // one bad op: nothing of the batch applies
    await expect(s.batch([{ type: 'del', key: 'm' }, { type: 'put', key: 'z', value: 'nope' as never }])).rejects.toBeInstanceOf(StorageError);
    expect([...(await s.get('m'))!]).toEqual([4]);
    expect(await s.get('z')).toBeUndefined();
    expect(s.size).toBe(3);
  });

  it('refuses use after close until reopened, keeping its data', async () => {
    const s = new MemoryStorage();
    await s.put('a', b(1));
    await s.close();
    await expect(s.get('a')).rejects.toBeInstanceOf(StorageError);
    await expect(s.put('a', b(2))).rejects.toBeInstanceOf(StorageError);
    s.reopen();
    expect([...(await s.get('a'))!]).toEqual([1]);
  });
});
