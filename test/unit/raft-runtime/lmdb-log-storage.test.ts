// LmdbLogStorage: what the core reads back after the driver's writes, across reopen, truncation,
// snapshots and compaction, plus the durability rules and the shared-environment mode.
import { mkdtemp, readdir, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RootDatabase } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LmdbLogStorage,
  LogStorageError,
  openRaftEnvironment,
} from '../../../src/raft/storage/lmdb-log-storage.js';
import { PayloadSegments } from '../../../src/raft/storage/payload-segments.js';
import { CompactedError, EntryType, UnavailableError, nodeId, type Entry, type Snapshot } from '../../../src/raft/types.js';

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

function entries(from: number, to: number, term: number): Entry[] {
  const list: Entry[] = [];
  for (let i = from; i <= to; i++) list.push(entry(i, term));
  return list;
}

const text = (e: Entry): string => new TextDecoder().decode(e.data);

const conf = { voters: [nodeId(1), nodeId(2)], learners: [], addresses: { 1: '127.0.0.1:1', 2: '127.0.0.1:2' } };

describe('LmdbLogStorage', () => {
  let dir: string;
  let storage: LmdbLogStorage;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tidefs-raft-storage-'));
    storage = LmdbLogStorage.open(dir, { durability: 'process' });
  });

  afterEach(async () => {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty', () => {
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(0);
    expect(storage.term(0)).toBe(0);
    expect(storage.initialState().hardState).toEqual({ term: 0, vote: 0, commit: 0 });
    expect(storage.snapshot().meta.index).toBe(0);
    expect(() => storage.term(1)).toThrow(UnavailableError);
  });

  it('round-trips entries and hard state, and keeps them across a reopen', async () => {
    await storage.write({
      entries: [...entries(1, 3, 1), { index: 4, term: 2, type: EntryType.ConfChange, data: new Uint8Array([7, 8]) }],
      hardState: { term: 2, vote: nodeId(2), commit: 3 },
    });
    const check = (s: LmdbLogStorage): void => {
      expect(s.firstIndex()).toBe(1);
      expect(s.lastIndex()).toBe(4);
      expect(s.term(3)).toBe(1);
      expect(s.term(4)).toBe(2);
      const read = s.entries(1, 5);
      expect(read.map((e) => [e.index, e.term, e.type])).toEqual([
        [1, 1, EntryType.Normal],
        [2, 1, EntryType.Normal],
        [3, 1, EntryType.Normal],
        [4, 2, EntryType.ConfChange],
      ]);
      expect(text(read[1]!)).toBe('e2');
      expect([...read[3]!.data]).toEqual([7, 8]);
      expect(s.initialState().hardState).toEqual({ term: 2, vote: 2, commit: 3 });
    };
    check(storage);
    await storage.close();
    storage = LmdbLogStorage.open(dir, { durability: 'process' });
    check(storage);
  });

  it('returns entries that stay valid after later reads', async () => {
    await storage.append(entries(1, 50, 1));
    const first = storage.entries(1, 3);
    storage.entries(10, 50);
    storage.term(40);
    expect(first.map(text)).toEqual(['e1', 'e2']);
  });

  it('limits entries() by bytes but always returns at least one entry', async () => {
    await storage.append([entry(1, 1, 'x'.repeat(100)), entry(2, 1, 'y'.repeat(100)), entry(3, 1, 'z'.repeat(100))]);
    expect(storage.entries(1, 4, 150).map((e) => e.index)).toEqual([1]);
    expect(storage.entries(1, 4, 10).map((e) => e.index)).toEqual([1]);
    expect(storage.entries(1, 4, 200).map((e) => e.index)).toEqual([1, 2]);
    expect(storage.entries(1, 4).map((e) => e.index)).toEqual([1, 2, 3]);
    expect(() => storage.entries(1, 5)).toThrow(UnavailableError);
  });

  it('truncates a conflicting suffix on append', async () => {
    await storage.append(entries(1, 10, 1));
    await storage.append([entry(6, 2, 'new6'), entry(7, 2, 'new7')]);
    expect(storage.lastIndex()).toBe(7);
    expect(storage.entries(5, 8).map((e) => [e.index, e.term, text(e)])).toEqual([
      [5, 1, 'e5'],
      [6, 2, 'new6'],
      [7, 2, 'new7'],
    ]);
    expect(() => storage.term(8)).toThrow(UnavailableError);
    await storage.close();
    storage = LmdbLogStorage.open(dir, { durability: 'process' });
    expect(storage.lastIndex()).toBe(7);
  });

  it('refuses an append that leaves a gap, and writes nothing of it', async () => {
    await storage.append(entries(1, 3, 1));
    await expect(storage.write({ entries: entries(5, 6, 1), hardState: { term: 9, vote: nodeId(1), commit: 0 } })).rejects.toThrow(
      LogStorageError,
    );
    expect(storage.lastIndex()).toBe(3);
    expect(storage.initialState().hardState.term).toBe(0);
  });

  it('keeps the log after a snapshot that matches it, and drops a log that does not', async () => {
    await storage.append(entries(1, 10, 1));
    const matching: Snapshot = { meta: { index: 5, term: 1, conf }, data: new Uint8Array([1, 2, 3]) };
    await storage.applySnapshot(matching);
    expect(storage.firstIndex()).toBe(6);
    expect(storage.lastIndex()).toBe(10);
    expect(storage.term(5)).toBe(1);
    expect(() => storage.term(4)).toThrow(CompactedError);
    expect(() => storage.entries(5, 7)).toThrow(CompactedError);
    expect(storage.entries(6, 11)).toHaveLength(10 - 5);
    expect([...storage.snapshot().data]).toEqual([1, 2, 3]);
    expect(storage.initialState().confState).toEqual(conf);

    const ahead: Snapshot = { meta: { index: 20, term: 3, conf }, data: new Uint8Array([9]) };
    await storage.applySnapshot(ahead);
    expect(storage.firstIndex()).toBe(21);
    expect(storage.lastIndex()).toBe(20);
    expect(storage.term(20)).toBe(3);
    await storage.append(entries(21, 22, 3));

    await storage.close();
    storage = LmdbLogStorage.open(dir, { durability: 'process' });
    expect(storage.firstIndex()).toBe(21);
    expect(storage.lastIndex()).toBe(22);
    expect(storage.snapshot().meta).toEqual(ahead.meta);
    expect([...storage.snapshot().data]).toEqual([9]);
  });

  it('drops the whole log for a snapshot whose term differs at its index', async () => {
    await storage.append(entries(1, 10, 1));
    await storage.applySnapshot({ meta: { index: 8, term: 2, conf }, data: new Uint8Array() });
    expect(storage.firstIndex()).toBe(9);
    expect(storage.lastIndex()).toBe(8);
    expect(storage.term(8)).toBe(2);
  });

  it('saves a local snapshot without dropping the log, compacts only up to it, and answers the term at the compaction point', async () => {
    await storage.append(entries(1, 10, 1));
    expect(() => storage.compact(3)).toThrow(LogStorageError);
    expect(() => storage.saveSnapshot({ meta: { index: 8, term: 2, conf }, data: new Uint8Array() })).toThrow(LogStorageError);
    storage.saveSnapshot({ meta: { index: 8, term: 1, conf }, data: new Uint8Array([4]) });
    expect(storage.lastIndex()).toBe(10);
    expect(storage.firstIndex()).toBe(1);
    expect(storage.snapshot().meta.index).toBe(8);
    await storage.append(entries(11, 12, 2));
    storage.compact(6);
    expect(storage.firstIndex()).toBe(7);
    expect(storage.term(6)).toBe(1);
    expect(() => storage.term(5)).toThrow(CompactedError);
    storage.compact(8);
    expect(storage.firstIndex()).toBe(9);
    expect(storage.term(8)).toBe(1);
    expect(storage.entries(9, 13).map((e) => e.index)).toEqual([9, 10, 11, 12]);
    expect(() => storage.compact(9)).toThrow(LogStorageError);
  });

  it('keeps the data file bounded under a steady write load with compaction', async () => {
    const payload = 'p'.repeat(1000);
    const perWrite = 200;
    const keep = 2_000;
    const writes = 1_000; // 200k entries of 1 KB: ~200 MB through a log that holds ~2 MB
    const dataFile = path.join(dir, 'data.mdb');
    let index = 0;
    let sizeAfterWarmup = 0;
    for (let w = 0; w < writes; w++) {
      const batch: Entry[] = [];
      for (let i = 0; i < perWrite; i++) batch.push(entry(++index, 1, payload));
      await storage.write({ entries: batch, hardState: { term: 1, vote: nodeId(1), commit: index } });
      if (index > keep) {
        storage.saveSnapshot({ meta: { index, term: 1, conf }, data: new Uint8Array(64) });
        storage.compact(index - keep);
      }
      if (w === writes / 10) sizeAfterWarmup = (await stat(dataFile)).size;
    }
    const finalSize = (await stat(dataFile)).size;
    expect(storage.firstIndex()).toBe(index - keep + 1);
    expect(sizeAfterWarmup).toBeGreaterThan(0);
    // 200 MB went through the log; the file must stay near the live size, not grow with the load.
    expect(finalSize).toBeLessThan(32 * 1024 * 1024);
    expect(finalSize).toBeLessThanOrEqual(sizeAfterWarmup * 1.5);
  });

  it('keeps big entry data in payload segments: across a reopen, through compaction, and deletes what compaction passed', async () => {
    await storage.close();
    const reopen = async (): Promise<void> => {
      await storage.close();
      storage = LmdbLogStorage.open(dir, { durability: 'process', segmentBytes: 8192 });
    };
    await reopen();
    const big = (index: number, term = 1): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(3000).fill(index) });
    const payloadsDir = path.join(dir, 'raft.payloads');
    // 2 big entries per 8 KiB segment, small ones in LMDB.
    await storage.append([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => (i % 2 === 0 ? entry(i, 1) : big(i))));
    expect(await readdir(payloadsDir)).toHaveLength(3);
    await reopen();
    const bytesOf = (e: Entry): number | string => (e.data.byteLength === 3000 ? e.data[1]! : text(e));
    expect(storage.entries(1, 11).map(bytesOf)).toEqual([1, 'e2', 3, 'e4', 5, 'e6', 7, 'e8', 9, 'e10']);

    // After the reopen the store still knows which entries each segment holds: [1, 3] [5, 7] [9].
    storage.saveSnapshot({ meta: { index: 7, term: 1, conf }, data: new Uint8Array() });
    storage.compact(5);
    expect(storage.entries(6, 11).map(bytesOf)).toEqual(['e6', 7, 'e8', 9, 'e10']);
    await vi.waitFor(async () => expect(await readdir(payloadsDir)).toEqual(['seg-0000000002', 'seg-0000000003']));
    storage.compact(7);
    await vi.waitFor(async () => expect(await readdir(payloadsDir)).toEqual(['seg-0000000003']));

    // A conflicting suffix is replaced; a reopen drops the segment nothing points into any more.
    await storage.append([big(9, 2), big(10, 2)]);
    await storage.append([entry(10, 3)]);
    expect(await readdir(payloadsDir)).toEqual(['seg-0000000003', 'seg-0000000004']);
    await reopen();
    expect(storage.entries(8, 11).map(bytesOf)).toEqual(['e8', 9, 'e10']);
    expect(storage.term(9)).toBe(2);
    expect(await readdir(payloadsDir)).toEqual(['seg-0000000004']);
  });

  it('never gives a new payload segment the number of one a live entry points into, even when its file is gone', async () => {
    const big = (index: number, fill: number): Entry => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(3000).fill(fill) });
    await storage.append([big(1, 0xaa)]);
    await storage.close();
    await rm(path.join(dir, 'raft.payloads', 'seg-0000000001'));
    storage = LmdbLogStorage.open(dir, { durability: 'process' });
    await storage.append([big(2, 0xbb)]);
    expect(await readdir(path.join(dir, 'raft.payloads'))).toEqual(['seg-0000000002']);
    expect(() => storage.entries(1, 2)).toThrow(/entry 1 is missing from payload segment 1/);
    expect(storage.entries(2, 3)[0]!.data[0]).toBe(0xbb);
  });

  it("deletes compacted payload segments in 'fsync' mode only once the compaction is on disk", async () => {
    await storage.close();
    storage = LmdbLogStorage.open(dir, { durability: 'fsync', segmentBytes: 4096 });
    const big = (index: number): Entry => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(3000).fill(index) });
    await storage.append([big(1), big(2), big(3)]);
    const payloadsDir = path.join(dir, 'raft.payloads');
    expect(await readdir(payloadsDir)).toHaveLength(3);
    storage.saveSnapshot({ meta: { index: 2, term: 1, conf }, data: new Uint8Array() });
    storage.compact(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await readdir(payloadsDir)).toHaveLength(3);
    await storage.sync();
    await vi.waitFor(async () => expect(await readdir(payloadsDir)).toEqual(['seg-0000000003']));
    expect(storage.entries(3, 4)[0]!.data[0]).toBe(3);
  });

  it('says which entry lost its data when a payload segment is damaged', async () => {
    await storage.append([{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(5000) }]);
    await storage.close();
    await truncate(path.join(dir, 'raft.payloads', 'seg-0000000001'), 100);
    storage = LmdbLogStorage.open(dir, { durability: 'process' });
    expect(() => storage.entries(1, 2)).toThrow(/entry 1 is missing from payload segment 1/);
  });

  it("puts payloads on the disk before the entries that point to them in 'fsync' mode", async () => {
    await storage.close();
    storage = LmdbLogStorage.open(dir, { durability: 'fsync' });
    const order: string[] = [];
    const env = (storage as unknown as { env: RootDatabase }).env;
    const commit = env.transactionSync.bind(env);
    vi.spyOn(env, 'transactionSync').mockImplementation((action, flags) => {
      order.push('entries committed');
      return commit(action, flags);
    });
    const syncPayloads = PayloadSegments.prototype.sync;
    vi.spyOn(PayloadSegments.prototype, 'sync').mockImplementation(function (this: PayloadSegments) {
      order.push('payloads synced');
      return syncPayloads.call(this);
    });
    try {
      await storage.write({ entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(4000) }] });
    } finally {
      vi.restoreAllMocks();
    }
    // The second sync is the flush of the whole write (LMDB's own commit included).
    expect(order).toEqual(['payloads synced', 'entries committed', 'payloads synced']);
    expect(storage.entries(1, 2)[0]!.data.byteLength).toBe(4000);
  });

  it("flushes a new vote in 'process' mode, and only a new vote", async () => {
    const sync = vi.spyOn(storage, 'sync');
    await storage.write({ entries: entries(1, 2, 1), hardState: { term: 1, vote: 0 as never, commit: 0 } });
    expect(sync).not.toHaveBeenCalled();
    await storage.write({ hardState: { term: 2, vote: nodeId(1), commit: 0 } });
    expect(sync).toHaveBeenCalledTimes(1);
    await storage.write({ entries: entries(3, 3, 2), hardState: { term: 2, vote: nodeId(1), commit: 2 } });
    expect(sync).toHaveBeenCalledTimes(1);
    await storage.write({ hardState: { term: 3, vote: nodeId(2), commit: 2 } });
    expect(sync).toHaveBeenCalledTimes(2);
  });

  it("flushes every write that must sync in 'fsync' mode", async () => {
    await storage.close();
    storage = LmdbLogStorage.open(dir, { durability: 'fsync' });
    const sync = vi.spyOn(storage, 'sync');
    await storage.write({ entries: entries(1, 2, 1) });
    await storage.write({ hardState: { term: 0, vote: 0 as never, commit: 1 }, mustSync: false });
    expect(sync).toHaveBeenCalledTimes(1);
    expect(storage.lastIndex()).toBe(2);
  });
});

describe('LmdbLogStorage in a shared environment', () => {
  it('lives next to the state machine and leaves the environment open on close', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tidefs-raft-shared-'));
    const env = openRaftEnvironment(dir, 'process');
    try {
      const state = env.openDB<string, string>('kv', {});
      const storage = LmdbLogStorage.inEnvironment(env, { durability: 'process', prefix: 'g1' });
      await storage.append(entries(1, 3, 1));
      await state.put('k', 'v');
      await storage.close();
      expect(state.get('k')).toBe('v');
      const again = LmdbLogStorage.inEnvironment(env, { durability: 'process', prefix: 'g1' });
      expect(again.lastIndex()).toBe(3);
      const other = LmdbLogStorage.inEnvironment(env, { durability: 'process', prefix: 'g2' });
      expect(other.lastIndex()).toBe(0);
      await again.close();
      await other.close();
    } finally {
      await env.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses 'fsync' durability on an environment that never syncs", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tidefs-raft-shared-'));
    const env = openRaftEnvironment(dir, 'process');
    try {
      expect(() => LmdbLogStorage.inEnvironment(env, { durability: 'fsync' })).toThrow(LogStorageError);
    } finally {
      await env.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
