// ChunkStore keeps small chunks inside LMDB and bigger ones in files: whatever the representation,
// and across the move from one to the other, reads return exactly what was written or filled,
// zeros past the end, and the space accounting follows. In 'fsync' durability, what a transaction
// did to files and directories is flushed before it commits.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RootDatabase } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChunkStore, INLINE_LIMIT } from '../../../src/inode/chunk-store.js';
import { openRaftEnvironment } from '../../../src/raft/storage/lmdb-log-storage.js';
import type { InodeId } from '../../../src/inode/types.js';

const CHUNK = 4 * INLINE_LIMIT;
const INO = 7 as InodeId;

describe('ChunkStore', () => {
  let dir: string;
  let env: RootDatabase;
  let store: ChunkStore;

  const read = async (chunk: number, offset: number, length: number): Promise<Buffer> => {
    const out = Buffer.alloc(length, 0xee);
    expect(await store.read(INO, chunk, offset, length, out, 0)).toBe(true);
    return out;
  };
  const files = (): string[] => fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.includes('.'));

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidefs-chunks-'));
    // Opened as a node opens it (writable map, no sync per commit).
    env = openRaftEnvironment(path.join(dir, 'meta'), 'process', 8);
    store = new ChunkStore(path.join(dir, 'chunks'), CHUNK, env, 'process');
  });

  afterEach(async () => {
    store.close();
    await env.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a small chunk inline, moves it to a file when it outgrows the limit, and reads the same bytes', async () => {
    store.writeSync(INO, 0, 10, Buffer.from('hello'));
    expect(files().filter((f) => f.startsWith('chunks/') && !f.startsWith('chunks/tmp'))).toEqual([]);
    // Inline, a chunk takes a whole LMDB page per piece of up to 1,920 bytes.
    expect(store.usedBytes()).toBe(4096);
    expect((await read(0, 8, 9)).toString('latin1')).toBe('\0\0hello\0\0');

    const big = Buffer.alloc(INLINE_LIMIT, 0x41);
    store.writeSync(INO, 0, 12, big);
    expect(store.usedBytes()).toBe(12 + INLINE_LIMIT);
    const all = await read(0, 0, 12 + INLINE_LIMIT + 4);
    expect(all.subarray(0, 10).equals(Buffer.alloc(10))).toBe(true);
    expect(all.subarray(10, 12).toString('latin1')).toBe('he');
    expect(all.subarray(12, 12 + INLINE_LIMIT).equals(big)).toBe(true);
    expect(all.subarray(12 + INLINE_LIMIT).equals(Buffer.alloc(4))).toBe(true);

    store.truncateSync(INO, 0, 11);
    expect(store.usedBytes()).toBe(11);
    expect((await read(0, 9, 4)).toString('latin1')).toBe('\0h\0\0');
    store.removeSync(INO, 0);
    expect(store.usedBytes()).toBe(0);
    expect(store.exists(INO, 0)).toBe(false);
  });

  it('keeps an inline chunk in pieces: reads across them, truncation drops the pieces past the end and never brings their bytes back', async () => {
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    store.writeSync(INO, 4, 0, bytes);
    expect(store.usedBytes()).toBe(3 * 4096);
    expect((await read(4, 1900, 100)).equals(bytes.subarray(1900, 2000))).toBe(true);
    expect((await read(4, 0, 5000)).equals(bytes)).toBe(true);
    store.truncateSync(INO, 4, 2000);
    expect(store.usedBytes()).toBe(2 * 4096);
    store.writeSync(INO, 4, 4900, Buffer.from('end'));
    const after = await read(4, 0, 4903);
    expect(after.subarray(0, 2000).equals(bytes.subarray(0, 2000))).toBe(true);
    expect(after.subarray(2000, 4900).equals(Buffer.alloc(2900))).toBe(true);
    expect(after.subarray(4900).toString('latin1')).toBe('end');
    store.removeSync(INO, 4);
    expect(store.usedBytes()).toBe(0);
  });

  it('takes over inline chunks an earlier version stored as single values, every one of them', async () => {
    store.close();
    const whole = env.openDB<Buffer, [number, number]>({ name: 'local.chunkData', encoding: 'binary' });
    const index = env.openDB({ name: 'local.chunks' });
    const count = 3000;
    // Sizes up to the inline limit: single values of up to 16 overflow pages, as the old layout had.
    const bytesOf = (chunk: number): Buffer => Buffer.alloc(((chunk + 1) * 7919) % (INLINE_LIMIT + 1), chunk % 251);
    env.transactionSync(() => {
      for (let chunk = 0; chunk < count; chunk++) {
        whole.putSync([INO, chunk], bytesOf(chunk));
        index.putSync([INO, chunk], { holds: '', bytes: bytesOf(chunk).length, inline: true });
      }
    });
    store = new ChunkStore(path.join(dir, 'chunks'), CHUNK, env, 'process');
    for (let chunk = 0; chunk < count; chunk++) {
      const expected = bytesOf(chunk);
      expect((await read(chunk, 0, expected.length)).equals(expected), `chunk ${chunk}`).toBe(true);
    }
    expect(whole.getKeysCount()).toBe(0);
  });

  it('never reads pieces past the chunk\'s size (left by a process killed between storing pieces and the entry)', async () => {
    store.writeSync(INO, 5, 0, Buffer.alloc(100, 0x11));
    const pieces = env.openDB<Buffer, [number, number, number]>({ name: 'local.chunkPieces', encoding: 'binary' });
    await pieces.put([INO, 5, 1], Buffer.alloc(1920, 0xee));
    await pieces.put([INO, 6, 0], Buffer.alloc(1920, 0xee));
    store.writeSync(INO, 5, 5000, Buffer.from('end'));
    const got = await read(5, 0, 5003);
    expect(got.subarray(0, 100).equals(Buffer.alloc(100, 0x11))).toBe(true);
    expect(got.subarray(100, 5000).equals(Buffer.alloc(4900))).toBe(true);
    store.writeSync(INO, 6, 10, Buffer.from('x'));
    expect((await read(6, 0, 11)).equals(Buffer.concat([Buffer.alloc(10), Buffer.from('x')]))).toBe(true);
  });

  it('fills gaps around written bytes, inline and in files, and records the version it holds', async () => {
    store.writeSync(INO, 1, 4, Buffer.from('WW'));
    store.fillSync(INO, 1, 'etag-1', Buffer.from('bbbbbbbbbb'), [0, 4, 6, 10]);
    expect(store.holds(INO, 1)).toBe('etag-1');
    expect((await read(1, 0, 12)).toString('latin1')).toBe('bbbbWWbbbb\0\0');

    const base = Buffer.alloc(2 * INLINE_LIMIT, 0x62);
    store.fillSync(INO, 1, 'etag-2', base, [0, 4, 6, base.length]);
    const got = await read(1, 0, base.length);
    expect(got.subarray(0, 4).toString('latin1')).toBe('bbbb');
    expect(got.subarray(4, 6).toString('latin1')).toBe('WW');
    expect(got.subarray(6).equals(base.subarray(6))).toBe(true);
    expect(store.holds(INO, 1)).toBe('etag-2');
  });

  it('adopts a prepared replacement of either size', async () => {
    const small = Buffer.from('small base bytes');
    store.adoptSync(INO, 2, 'e-small', await store.prepareReplacement(INO, 2, small), small.length);
    expect((await read(2, 0, small.length)).equals(small)).toBe(true);
    const large = Buffer.alloc(3 * INLINE_LIMIT, 0x5a);
    store.adoptSync(INO, 2, 'e-large', await store.prepareReplacement(INO, 2, large), 2 * INLINE_LIMIT);
    expect(store.holds(INO, 2)).toBe('e-large');
    expect(store.usedBytes()).toBe(2 * INLINE_LIMIT);
    const got = await read(2, 0, 2 * INLINE_LIMIT + 8);
    expect(got.subarray(0, 2 * INLINE_LIMIT).equals(large.subarray(0, 2 * INLINE_LIMIT))).toBe(true);
    expect(got.subarray(2 * INLINE_LIMIT).equals(Buffer.alloc(8))).toBe(true);
  });

  it('a file left at a new chunk\'s path (a removal a power cut undid) never shows through', async () => {
    // A chunk written, then removed (its inode dropped): the index forgets it, the file goes.
    store.writeSync(INO, 5, 0, Buffer.alloc(2 * INLINE_LIMIT, 0x77));
    const leftover = store.pathOf(INO, 5);
    const before = fs.readFileSync(leftover);
    store.removeSync(INO, 5);
    // ...but after the power cut the directory still had it.
    fs.writeFileSync(leftover, before);
    // A new chunk there, written past the inline limit but not from its start.
    const data = Buffer.alloc(1000, 0x31);
    store.writeSync(INO, 5, INLINE_LIMIT + 100, data);
    const got = await read(5, 0, INLINE_LIMIT + 1100);
    expect(got.subarray(0, INLINE_LIMIT + 100).equals(Buffer.alloc(INLINE_LIMIT + 100))).toBe(true);
    expect(got.subarray(INLINE_LIMIT + 100).equals(data)).toBe(true);
  });

  it('a leftover file never shows through a fill of a new chunk either', async () => {
    store.writeSync(INO, 5, 0, Buffer.alloc(2 * INLINE_LIMIT, 0x77));
    const data = Buffer.alloc(2 * INLINE_LIMIT, 0x42);
    // Removed and filled in one transaction: the fill finds the old file still there.
    store.transaction(() => {
      store.removeSync(INO, 5);
      store.fillSync(INO, 5, 'etag', data, [INLINE_LIMIT + 10, INLINE_LIMIT + 20]);
    });
    const got = await read(5, 0, INLINE_LIMIT + 20);
    expect(got.subarray(0, INLINE_LIMIT + 10).equals(Buffer.alloc(INLINE_LIMIT + 10))).toBe(true);
    expect(got.subarray(INLINE_LIMIT + 10).equals(data.subarray(INLINE_LIMIT + 10, INLINE_LIMIT + 20))).toBe(true);
  });

  it('a failed transaction takes back the files it made, keeps those it was to remove, and the space count', async () => {
    store.writeSync(INO, 1, 0, Buffer.alloc(2 * INLINE_LIMIT, 1));
    const used = store.usedBytes();
    expect(() =>
      store.transaction(() => {
        store.writeSync(INO, 2, 0, Buffer.alloc(2 * INLINE_LIMIT, 2));
        store.removeSync(INO, 1);
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(fs.existsSync(store.pathOf(INO, 2))).toBe(false);
    expect(store.exists(INO, 2)).toBe(false);
    expect((await read(1, 0, 2 * INLINE_LIMIT)).equals(Buffer.alloc(2 * INLINE_LIMIT, 1))).toBe(true);
    expect(store.usedBytes()).toBe(used);
    // The chunk made in the failed transaction starts empty when made again.
    store.writeSync(INO, 2, INLINE_LIMIT + 5, Buffer.alloc(5, 3));
    expect((await read(2, 0, INLINE_LIMIT + 10)).equals(Buffer.concat([Buffer.alloc(INLINE_LIMIT + 5), Buffer.alloc(5, 3)]))).toBe(true);
  });

  it('forgets a chunk whose file went missing: it reads as not stored, and its space is free', async () => {
    store.writeSync(INO, 3, 0, Buffer.alloc(2 * INLINE_LIMIT, 1));
    const used = store.usedBytes();
    fs.rmSync(store.pathOf(INO, 3));
    store.close(); // drop the open descriptor, as a restart would
    expect(await store.read(INO, 3, 0, 10, Buffer.alloc(10), 0)).toBe(false);
    expect(store.exists(INO, 3)).toBe(false);
    expect(store.usedBytes()).toBe(used - 2 * INLINE_LIMIT);
  });

  it("in 'fsync' durability, flushes the files and directories a transaction changed before it commits", async () => {
    store.close();
    await env.close();
    env = openRaftEnvironment(path.join(dir, 'meta-fsync'), 'fsync', 8);
    store = new ChunkStore(path.join(dir, 'chunks-fsync'), CHUNK, env, 'fsync');
    const events: string[] = [];
    const where = (fd: number): string => path.relative(dir, fs.readlinkSync(`/proc/self/fd/${fd}`));
    vi.spyOn(fs, 'fdatasyncSync').mockImplementation((fd) => void events.push(`datasync ${where(fd)}`));
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => void events.push(`fsync ${where(fd)}`));
    const transactionSync = env.transactionSync.bind(env);
    // The last thing inside an outermost transaction's callback comes right before its commit (a
    // nested one runs inline, inside the outer transaction).
    let depth = 0;
    env.transactionSync = ((callback: () => unknown, flags: number) =>
      transactionSync(() => {
        depth++;
        try {
          const result = callback();
          // 'fsync' commits are plain synchronous ones (no NO_SYNC_FLUSH, 0x10000).
          if (depth === 1) events.push(flags & 0x10000 ? 'commit, not waiting for the disk' : 'commit');
          return result;
        } finally {
          depth--;
        }
      }, flags)) as typeof env.transactionSync;
    const file = path.relative(dir, store.pathOf(INO, 6));
    const shard = path.dirname(file);
    /** The flushes since the last look (in any order), all before one commit that waits for the disk. */
    const flushedThenCommitted = (): string[] => {
      const since = events.splice(0);
      expect(since.at(-1)).toBe('commit');
      return since.slice(0, -1).sort();
    };
    try {
      store.writeSync(INO, 6, 0, Buffer.alloc(2 * INLINE_LIMIT, 1));
      // A new file in a new shard directory: its bytes, its name, the shard's name.
      expect(flushedThenCommitted()).toEqual([`datasync ${file}`, `fsync chunks-fsync`, `fsync ${shard}`]);
      store.writeSync(INO, 6, 100, Buffer.alloc(10, 2));
      expect(flushedThenCommitted()).toEqual([`datasync ${file}`]);
      store.truncateSync(INO, 6, INLINE_LIMIT + 1);
      expect(flushedThenCommitted()).toEqual([`datasync ${file}`]);
      store.fillSync(INO, 6, 'etag', Buffer.alloc(2 * INLINE_LIMIT, 4), [INLINE_LIMIT + 1, 2 * INLINE_LIMIT]);
      expect(flushedThenCommitted()).toEqual([`datasync ${file}`]);

      // A removal flushes nothing: the file goes once the commit is made, so that the index (even
      // one a power cut took back) never names a missing file.
      store.transaction(() => {
        store.removeSync(INO, 6);
        expect(fs.existsSync(path.join(dir, file))).toBe(true);
      });
      expect(flushedThenCommitted()).toEqual([]);
      expect(fs.existsSync(path.join(dir, file))).toBe(false);

      // A fetched chunk put in place: its bytes and its new name.
      const replacement = await store.prepareReplacement(INO, 6, Buffer.alloc(2 * INLINE_LIMIT, 3));
      store.adoptSync(INO, 6, 'etag', replacement, 2 * INLINE_LIMIT);
      expect(flushedThenCommitted()).toEqual([`datasync ${file}`, `fsync ${shard}`]);

      // Several changes in one transaction (as in an apply): one flush each, then the one commit.
      const inline = path.relative(dir, store.pathOf(INO, 9));
      store.transaction(() => {
        store.writeSync(INO, 9, 0, Buffer.alloc(100, 5));
        store.writeSync(INO, 9, 100, Buffer.alloc(2 * INLINE_LIMIT, 6)); // outgrows inline: a file
        store.writeSync(INO, 6, 0, Buffer.alloc(10, 7));
      });
      expect(flushedThenCommitted()).toEqual([`datasync ${file}`, `datasync ${inline}`, `fsync ${path.dirname(inline)}`].sort());

      // A change that fails is rolled back: it flushes and removes nothing, and leaves nothing to flush later.
      expect(() =>
        store.transaction(() => {
          store.writeSync(INO, 6, 0, Buffer.alloc(10, 8));
          store.removeSync(INO, 9);
          throw new Error('rejected');
        }),
      ).toThrow('rejected');
      expect(events.splice(0)).toEqual([]);
      expect(fs.existsSync(path.join(dir, inline))).toBe(true);
      expect(store.exists(INO, 9)).toBe(true);
      store.truncateSync(INO, 9, INLINE_LIMIT + 1);
      expect(flushedThenCommitted()).toEqual([`datasync ${inline}`]);
    } finally {
      vi.restoreAllMocks();
      env.transactionSync = transactionSync;
    }
  });

  it("in 'process' durability, flushes nothing: the page cache keeps it for a killed process", () => {
    const flushes = [vi.spyOn(fs, 'fdatasyncSync'), vi.spyOn(fs, 'fsyncSync')];
    try {
      store.writeSync(INO, 6, 0, Buffer.alloc(2 * INLINE_LIMIT, 1));
      store.truncateSync(INO, 6, INLINE_LIMIT + 1);
      store.removeSync(INO, 6);
      for (const flush of flushes) expect(flush).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });
});
