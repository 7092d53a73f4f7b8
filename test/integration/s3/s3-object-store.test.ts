// What only the real S3ObjectStore does, on the test S3 server: one-line mount-time errors from
// checkAccess (missing bucket, rejected credentials, unreachable server), the multipart ETag it
// derives matching the server's, object data sent unsigned (or signed on request), requests signed
// with the server's time when the host's clock is off, and exact reads of an object far larger
// than a socket buffer.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { multipartEtag, S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { startFaultProxy } from '../../fixtures/s3-fault-proxy/index.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { expectStoreError, testBytes } from './object-store-contract.js';

const MiB = 1024 * 1024;

describe('S3ObjectStore on the test S3 server', () => {
  let bucket: TestBucket;
  let store: S3ObjectStore;

  beforeAll(async () => {
    bucket = await createTestBucket('s3store');
    store = s3TestStore(bucket.name);
  });
  afterAll(async () => {
    store?.close();
    await bucket?.destroy();
  });

  it('describes itself by bucket and endpoint', () => {
    expect(store.description).toBe(`s3://${bucket.name} at ${process.env.AWS_ENDPOINT_URL}`);
  });

  it('explains in one line why a bucket cannot be used', async () => {
    const missing = s3TestStore(`${bucket.name}-missing`);
    const noBucket = await expectStoreError(missing.checkAccess(), 'no-such-bucket');
    expect(noBucket.message).toBe(`bucket "${bucket.name}-missing" does not exist at ${process.env.AWS_ENDPOINT_URL}`);
    missing.close();

    const wrongKey = s3TestStore(bucket.name, { credentials: { accessKeyId: 'NOSUCHKEY', secretAccessKey: 'x' } });
    const denied = await expectStoreError(wrongKey.checkAccess(), 'access-denied');
    expect(denied.message).toContain(`refused access to bucket "${bucket.name}"`);
    expect(denied.message).toContain('InvalidAccessKeyId (HTTP 403)');
    wrongKey.close();

    const wrongSecret = s3TestStore(bucket.name, {
      credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID as string, secretAccessKey: 'wrong' },
    });
    expect((await expectStoreError(wrongSecret.checkAccess(), 'access-denied')).message).toContain('SignatureDoesNotMatch');
    wrongSecret.close();

    for (const message of [noBucket.message, denied.message]) expect(message).not.toContain('\n');
  });

  it('reports an unreachable server as unavailable after its retries, quickly', async () => {
    const closedPort = await unusedPort();
    const nowhere = s3TestStore(bucket.name, { endpoint: `http://127.0.0.1:${closedPort}` });
    const started = Date.now();
    const error = await expectStoreError(nowhere.checkAccess(), 'unavailable');
    expect(error.message).toMatch(new RegExp(`^cannot reach S3 at http://127.0.0.1:${closedPort}: .*ECONNREFUSED`));
    expect(Date.now() - started).toBeLessThan(2_000);
    nowhere.close();
  });

  it('derives the same multipart ETag as the server', async () => {
    const key = 'three-parts';
    const uploadId = await store.createMultipart(key);
    const parts = [];
    for (const [i, size] of [5 * MiB, 5 * MiB, 123].entries()) {
      parts.push(await store.uploadPart(key, uploadId, i + 1, testBytes(size, i)));
    }
    const { etag } = await store.completeMultipart(key, uploadId, parts);
    expect(multipartEtag(parts)).toBe(etag);
  });

  it('sends object data unsigned unless asked to sign it, and the server takes both', async () => {
    const proxy = await startFaultProxy({ target: process.env.AWS_ENDPOINT_URL as string });
    try {
      const data = testBytes(6 * MiB, 7);
      const sha256 = createHash('sha256').update(data).digest('hex');
      for (const signPayloads of [false, true]) {
        const through = s3TestStore(bucket.name, { endpoint: proxy.url, signPayloads });
        try {
          const from = proxy.requests.length;
          const key = `signed-${signPayloads}`;
          await through.put(key, data);
          const uploadId = await through.createMultipart(key);
          const part = await through.uploadPart(key, uploadId, 1, data);
          const { etag } = await through.completeMultipart(key, uploadId, [part]);
          expect((await store.getRange(key, 0, data.length, etag)).equals(data)).toBe(true);
          const sent = proxy.requests.slice(from);
          const dataRequests = sent.filter((r) => r.method === 'PUT');
          expect(dataRequests.map((r) => r.contentLength)).toEqual([data.length, data.length]);
          for (const r of dataRequests) expect(r.payloadHash).toBe(signPayloads ? sha256 : 'UNSIGNED-PAYLOAD');
          // Only object data goes unsigned: the small XML bodies of other requests stay signed.
          const completion = sent.find((r) => r.method === 'POST' && r.url.includes('uploadId='));
          expect(completion?.payloadHash).toMatch(/^[0-9a-f]{64}$/);
        } finally {
          through.close();
        }
      }
    } finally {
      await proxy.stop();
    }
  });

  it("works from a host whose clock is an hour behind the server's: ranged reads and SDK requests alike", async () => {
    const data = testBytes(64 * 1024, 5);
    await store.put('clock', data);
    const proxy = await startFaultProxy({ target: process.env.AWS_ENDPOINT_URL as string });
    const skewed = s3TestStore(bucket.name, { endpoint: proxy.url });
    const sent = (method: string, key: string): number => proxy.requests.filter((r) => r.method === method && r.url.includes(key)).length;
    // Only Date is faked, an hour back, and it keeps running; timers stay real.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 3_600_000, shouldAdvanceTime: true });
    try {
      // The first request (a ranged read) is refused for its time, then sent again with the server's.
      expect((await skewed.getRange('clock', 0, data.length)).equals(data)).toBe(true);
      expect(sent('GET', '/clock')).toBe(2);
      // The SDK's requests use the corrected clock at once.
      await skewed.put('clock-put', data);
      expect(sent('PUT', '/clock-put')).toBe(1);
      expect((await skewed.head('clock-put'))?.size).toBe(data.length);
    } finally {
      vi.useRealTimers();
      skewed.close();
      await proxy.stop();
    }
  });

  it('reads a 40 MiB object back exactly, whole and in ranges', async () => {
    const data = testBytes(40 * MiB + 3, 42);
    const { etag } = await store.put('large', data);
    expect((await store.getRange('large', 0, data.length, etag)).equals(data)).toBe(true);
    const ranges = await Promise.all(
      [0, 1, 2, 3].map((i) => store.getRange('large', i * 10 * MiB, 10 * MiB, etag)),
    );
    expect(Buffer.concat(ranges).equals(data.subarray(0, 40 * MiB))).toBe(true);
  });
});

async function unusedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
