// A directory of 100,000 objects created directly in the bucket (SDK, parallel batches): readdir
// through the mount returns every name exactly once, in reasonable time, and a second readdir is
// served from the loaded namespace. TIDEFS_BIG_DIR_OBJECTS changes the count (default 100,000).
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestClient, s3TestStore, type TestBucket } from '../../support/s3.js';

const OBJECTS = Number(process.env.TIDEFS_BIG_DIR_OBJECTS ?? 100_000);
const PUTS_IN_FLIGHT = 64;
/** Creating the objects is bound by the S3 server: ~100-150 PUT/s measured on this shared 2-core machine. */
const CREATE_TIMEOUT_MS = 30 * 60_000;
/** Generous for a 2-core machine that also runs the S3 server: listing 100 pages and loading them. */
const FIRST_READDIR_LIMIT_MS = 60_000;
const SECOND_READDIR_LIMIT_MS = 10_000;

const nameOf = (i: number): string => `object-${String(i).padStart(6, '0')}`;

describe(`a directory of ${OBJECTS} objects made in the bucket`, () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let mount: MountHandle;

  beforeAll(async () => {
    bucket = await createTestBucket('mount-bigdir');
    store = s3TestStore(bucket.name, { maxSockets: PUTS_IN_FLIGHT });
    const began = Date.now();
    let next = 0;
    let failed = false;
    await Promise.all(
      Array.from({ length: PUTS_IN_FLIGHT }, async () => {
        try {
          for (let i = next++; i < OBJECTS && !failed; i = next++) await store.put(`big/${nameOf(i)}`, Buffer.from(String(i)));
        } catch (err) {
          // Stop every worker, so cleanup does not race with PUTs still going on.
          failed = true;
          throw err;
        }
      }),
    );
    const createMs = Date.now() - began;
    console.log(`created ${OBJECTS} objects in ${createMs} ms (${Math.round(OBJECTS / (createMs / 1000))} PUT/s)`);
    mount = await startMount({ bucket: bucket.name });
  }, CREATE_TIMEOUT_MS);

  afterAll(async () => {
    await stopAllMounts();
    // Many keys: delete whatever is there, 1,000 per request, before the key-by-key cleanup of destroy().
    if (bucket) {
      const client = s3TestClient();
      try {
        for (;;) {
          const page = await store.list('big/', { maxKeys: 1000 });
          if (page.objects.length === 0) break;
          await client.send(
            new DeleteObjectsCommand({ Bucket: bucket.name, Delete: { Objects: page.objects.map((o) => ({ Key: o.key })), Quiet: true } }),
          );
        }
      } finally {
        client.destroy();
      }
    }
    store?.close();
    await bucket?.destroy();
  }, 600_000);

  it('readdir returns every object exactly once, in reasonable time, and faster the second time', async () => {
    const dir = path.join(mount.mountpoint, 'big');
    let began = Date.now();
    const first = await fsp.readdir(dir);
    const firstMs = Date.now() - began;
    began = Date.now();
    const second = await fsp.readdir(dir);
    const secondMs = Date.now() - began;
    console.log(`readdir of ${OBJECTS} entries: ${firstMs} ms listing the bucket, ${secondMs} ms from the loaded namespace`);

    expect(first.length).toBe(OBJECTS);
    expect(new Set(first).size).toBe(OBJECTS);
    const expected = Array.from({ length: OBJECTS }, (_, i) => nameOf(i));
    expect([...first].sort()).toEqual(expected);
    expect([...second].sort()).toEqual(expected);
    expect(firstMs).toBeLessThan(FIRST_READDIR_LIMIT_MS);
    expect(secondMs).toBeLessThan(SECOND_READDIR_LIMIT_MS);

    // Entries are real: sizes and content of a few, from either end and the middle.
    for (const i of [0, Math.floor(OBJECTS / 2), OBJECTS - 1]) {
      const file = path.join(dir, nameOf(i));
      expect((await fsp.stat(file)).size).toBe(String(i).length);
      expect(await fsp.readFile(file, 'utf8')).toBe(String(i));
    }
  });
});
