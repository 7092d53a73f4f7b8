// A file many times larger than the cache, written through a mount with the smallest cache it
// accepts: the cache stays within its size (written data is flushed to the bucket to make room),
// the mount stays up, and the file reads back exactly, through the mount and from the bucket.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';

const MiB = 1024 * 1024;
const CHUNK = MiB;
/** The smallest cache a mount accepts: four chunks. */
const CACHE = 4 * CHUNK;
const FILE = 48 * MiB;

describe('writing a file much larger than the cache', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;

  beforeAll(async () => {
    bucket = await createTestBucket('cache-pressure');
    store = s3TestStore(bucket.name);
    mount = await startMount({ bucket: bucket.name, args: ['--chunk-size', '1MiB', '--cache-size', String(CACHE)] });
  });

  afterAll(async () => {
    await stopAllMounts();
    store?.close();
    await bucket?.destroy();
  });

  it('keeps the mount up and the data exact; the cache stays near its size', async () => {
    const file = path.join(mount.mountpoint, 'big.bin');
    const hash = createHash('sha256');
    let largestCache = 0;
    const fh = await fsp.open(file, 'w');
    try {
      for (let offset = 0; offset < FILE; offset += MiB) {
        const block = randomBytes(MiB);
        hash.update(block);
        await fh.write(block, 0, MiB, offset);
        largestCache = Math.max(largestCache, (await fsp.statfs(mount.mountpoint)).blocks - (await fsp.statfs(mount.mountpoint)).bfree);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    const expected = hash.digest('hex');
    const bsize = (await fsp.statfs(mount.mountpoint)).bsize;
    // Written data waits for its upload to make room, so the cache may run over by the writes in flight.
    expect(largestCache * bsize, 'bytes cached at most').toBeLessThanOrEqual(CACHE + 8 * MiB);
    const back = await fsp.readFile(file);
    expect(createHash('sha256').update(back).digest('hex'), 'read back through the mount').toBe(expected);
    const stored = await store.getRange('big.bin', 0, FILE + 1);
    expect(createHash('sha256').update(stored).digest('hex'), 'the object in the bucket').toBe(expected);
  });
});
