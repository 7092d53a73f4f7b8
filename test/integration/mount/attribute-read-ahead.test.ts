// Attribute read-ahead: statting one entry of a freshly listed directory also loads the attributes
// (object metadata: one HEAD each) of the entries after it, so `ls -l` on a directory of objects
// does not wait for one HEAD per file in turn. Observed through the S3 fault proxy's request count.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { type FaultProxy, startFaultProxy } from '../../fixtures/s3-fault-proxy/index.js';
import { startMount, stopAllMounts, type MountHandle } from '../../support/mount.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { waitUntil } from './mount-test-tools.js';

const FILES = 40;
const READ_AHEAD = 32;
const MODE = 0o640;

describe('attributes of the next entries are read ahead', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;
  let proxy: FaultProxy;
  let mount: MountHandle;
  const at = (...parts: string[]): string => path.join(mount.mountpoint, ...parts);

  beforeAll(async () => {
    bucket = await createTestBucket('attr-ahead');
    store = s3TestStore(bucket.name);
    const metadata = { mode: String(0o100000 | MODE) };
    for (let i = 0; i < FILES; i++) await store.put(`dir/f${String(i).padStart(2, '0')}`, Buffer.from(`file ${i}`), { metadata });
    proxy = await startFaultProxy({ target: process.env.AWS_ENDPOINT_URL as string });
    mount = await startMount({ bucket: bucket.name, args: ['--endpoint', proxy.url] });
  });

  afterAll(async () => {
    await stopAllMounts();
    await proxy?.stop();
    store?.close();
    await bucket?.destroy();
  });

  it('one stat sends the HEADs of the next entries too, and every object is read once', async () => {
    const names = (await fsp.readdir(at('dir'))).sort();
    expect(names).toHaveLength(FILES);
    const before = proxy.requestCount;
    expect((await fsp.stat(at('dir', names[0]!))).mode & 0o7777).toBe(MODE);
    // With no further stat: the entry's own HEAD and one for each entry read ahead.
    await waitUntil('the read-ahead HEADs were sent', async () => proxy.requestCount - before >= 1 + READ_AHEAD, 30_000, 20);
    for (const name of names.slice(1)) expect((await fsp.stat(at('dir', name))).mode & 0o7777, name).toBe(MODE);
    expect(proxy.requestCount - before, 'one HEAD per object, none twice').toBe(FILES);
  });
});
