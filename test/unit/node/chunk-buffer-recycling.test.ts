// Fetched chunk buffers go back to the object store once nothing can use them (ContentReader's
// leases): a store that poisons every buffer handed back (as reusing it for the next read would)
// must never make a read return anything but the object's bytes. A 320 MiB object in 16 MiB
// chunks passes the 256 MiB of recently fetched chunks kept in memory, so buffers do come back;
// readers run concurrently, through the kernel's path (views) and through chunks with written
// bytes (assembled across awaits). The node is in-process, over an in-memory bucket.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalNode } from '../../../src/node/local-node.js';
import { memoryObjectStore, type MemoryObjectStore } from '../../../src/node/s3/memory-object-store.js';
import { ROOT_INO, type InodeId } from '../../../src/inode/types.js';

const MiB = 1024 * 1024;
const CHUNK = 16 * MiB;
const SIZE = 20 * CHUNK;
const POISON = 0xee;

/** Bytes that differ from POISON everywhere and tell their offset apart. */
function objectBytes(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) out.writeUInt32LE((i / 4) * 2654435761 % 0xeeeeeeee, i);
  for (let i = 0; i < size; i++) if (out[i] === POISON) out[i] = 0x11;
  return out;
}

describe('recycling fetched chunk buffers', () => {
  let dir: string;
  let node: LocalNode;
  let store: MemoryObjectStore & { recycle?: (b: Buffer) => void };
  let recycled = 0;
  const data = objectBytes(SIZE);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tidefs-recycle-'));
    store = memoryObjectStore();
    await store.put('model.bin', data);
    store.recycle = (buffer: Buffer) => {
      recycled++;
      buffer.fill(POISON);
    };
    node = await LocalNode.start(
      {
        bucket: 'memory-bucket',
        prefix: '',
        endpoint: 'memory',
        dataDir: dir,
        cacheSize: 4 * SIZE,
        chunkSize: CHUNK,
        metadataTtlMs: 60_000,
        closeDelayMs: 3_600_000,
        maxDirtyAgeMs: 3_600_000,
        readAheadChunks: 4,
        uid: 0,
        gid: 0,
        durability: 'process',
      },
      store,
      (error) => {
        throw error;
      },
    );
  });

  afterAll(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('never lets a read see a buffer after it went back, however reads interleave', async () => {
    const fs = node.fs;
    const ino = (await fs.lookup(ROOT_INO, 'model.bin')) as InodeId;
    await fs.open(ino);
    // Written bytes in a few chunks: their reads assemble the fetched base around them, across awaits.
    const written = new Map<number, Buffer>();
    for (const chunk of [3, 9, 17]) {
      const at = chunk * CHUNK + 12_345;
      const bytes = Buffer.alloc(1000, 0x42);
      await fs.write(ino, at, bytes);
      written.set(at, bytes);
    }
    const expected = Buffer.from(data);
    for (const [at, bytes] of written) bytes.copy(expected, at);

    // Four readers a few MiB apart, like the kernel's read-ahead, 1 MiB requests (answered with
    // views of the fetched chunks); a reader across every chunk boundary (two chunks assembled into
    // one buffer); and an fsync, whose write-back reads the written chunks for upload meanwhile.
    let mismatches = 0;
    const check = (got: Buffer, offset: number): void => {
      if (!got.equals(expected.subarray(offset, offset + got.length)) || got.length === 0) mismatches++;
    };
    const sequential = async (start: number): Promise<void> => {
      for (let offset = start; offset < SIZE; offset += 4 * MiB) check(await fs.read(ino, offset, MiB), offset);
    };
    const boundaries = async (): Promise<void> => {
      for (let chunk = 1; chunk * CHUNK < SIZE; chunk++) {
        const offset = chunk * CHUNK - MiB;
        check(await fs.read(ino, offset, 2 * MiB), offset);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await Promise.all([sequential(0), sequential(MiB), sequential(2 * MiB), sequential(3 * MiB), boundaries(), fs.fsync(ino)]);
    expect(mismatches).toBe(0);
    expect(recycled, 'buffers went back to the store').toBeGreaterThan(0);
    // The bucket got the file as written (the write-back read it while buffers were recycled).
    expect((await store.getRange('model.bin', 0, SIZE)).equals(expected)).toBe(true);
    await fs.release(ino);
  });
});
