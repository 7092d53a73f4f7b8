// Writing back a big file that changed in one place: the multipart upload sends only the parts
// holding changed bytes and copies the others server-side from the previous object (nothing is
// read back or fetched for them). Observed through the S3 fault proxy's request log.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { type FaultProxy, type ProxiedRequest, startFaultProxy } from '../../fixtures/s3-fault-proxy/index.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';

const MiB = 1024 * 1024;
/** With 1 MiB chunks the write-back uses S3's smallest part size. */
const PART = 5 * MiB;

describe('write-back of a big file changed in one place', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let proxy: FaultProxy;
  let mount: MountHandle;

  beforeAll(async () => {
    bucket = await createTestBucket('part-copy');
    store = s3TestStore(bucket.name);
    proxy = await startFaultProxy({ target: process.env.AWS_ENDPOINT_URL as string });
    // Only fsync writes back, so each fsync is one flush.
    const args = ['--endpoint', proxy.url, '--chunk-size', '1MiB', '--close-delay', '1h', '--max-dirty-age', '1h'];
    mount = await startMount({ bucket: bucket.name, args });
  });

  afterAll(async () => {
    await stopAllMounts();
    await proxy?.stop();
    store?.close();
    await bucket?.destroy();
  });

  /** The UploadPart and UploadPartCopy requests sent since `from`. */
  const partRequests = (from: number): { uploads: ProxiedRequest[]; copies: ProxiedRequest[] } => {
    const parts = proxy.requests.slice(from).filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url));
    return { uploads: parts.filter((r) => r.copySource === undefined), copies: parts.filter((r) => r.copySource !== undefined) };
  };

  it('uploads the changed part and copies the others; the object holds exactly the file', async () => {
    const file = path.join(mount.mountpoint, 'model.bin');
    const content = randomBytes(3 * PART + 300_000);
    const fh = await fsp.open(file, 'w');
    try {
      await fh.write(content, 0, content.length, 0);
      await fh.sync();
      expect(partRequests(0).copies, 'a new file has nothing to copy from').toHaveLength(0);

      const patch = randomBytes(4096);
      const at = PART + 12_345;
      patch.copy(content, at);
      const before = proxy.requests.length;
      await fh.write(patch, 0, patch.length, at);
      await fh.sync();
      const { uploads, copies } = partRequests(before);
      expect(uploads.map((r) => r.contentLength), 'only the changed part is sent').toEqual([PART]);
      expect(copies.map((r) => new URLSearchParams(r.url.split('?')[1]).get('partNumber')).sort()).toEqual(['1', '3', '4']);

      // Growing the file: its old parts are copied, the new bytes uploaded.
      const tail = randomBytes(2 * PART);
      const grown = proxy.requests.length;
      await fh.write(tail, 0, tail.length, content.length);
      await fh.sync();
      const growth = partRequests(grown);
      const all = Buffer.concat([content, tail]);
      expect(growth.copies, 'the three parts wholly inside the old object are copied').toHaveLength(3);
      expect(growth.uploads.reduce((n, r) => n + r.contentLength, 0), 'everything else is sent').toBe(all.length - 3 * PART);
      const stored = await store.getRange('model.bin', 0, all.length + 1);
      expect(stored.length).toBe(all.length);
      expect(stored.equals(all), 'the object holds exactly the file').toBe(true);
    } finally {
      await fh.close();
    }
  });

  it('never copies from an object replaced behind its back: those parts are sent from the cache', async () => {
    const file = path.join(mount.mountpoint, 'replaced.bin');
    const content = randomBytes(3 * PART);
    const fh = await fsp.open(file, 'w');
    try {
      await fh.write(content, 0, content.length, 0);
      await fh.sync();
      // Someone else replaces the object; the mount does not know yet (its metadata TTL is 30 s).
      await store.put('replaced.bin', randomBytes(3 * PART));
      const patch = randomBytes(100);
      patch.copy(content, 2 * PART + 7);
      const before = proxy.requests.length;
      await fh.write(patch, 0, patch.length, 2 * PART + 7);
      await fh.sync();
      expect(partRequests(before).copies.length, 'copies were tried').toBeGreaterThan(0);
      const stored = await store.getRange('replaced.bin', 0, content.length + 1);
      expect(stored.equals(content), 'the object is this file, not a mix with the other version').toBe(true);
    } finally {
      await fh.close();
    }
  });
});
