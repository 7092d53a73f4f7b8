// S3ObjectStore under injected faults (test/fixtures/s3-fault-proxy in front of the test S3 server):
// bounded runs of 5xx, throttling, resets and slow answers are retried through; faults that persist
// end in 'unavailable' after the retry budget, quickly; 4xx answers are never retried (except 408/429).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../../src/node/s3/s3-object-store.js';
import { type FaultProxy, startFaultProxy } from '../../fixtures/s3-fault-proxy/index.js';
import { createTestBucket, s3TestStore, type TestBucket } from '../../support/s3.js';
import { expectStoreError, testBytes } from './object-store-contract.js';

describe('S3ObjectStore through the fault proxy', () => {
  let bucket: TestBucket;
  let proxy: FaultProxy;
  let store: S3ObjectStore;
  const data = testBytes(64 * 1024, 99);

  beforeAll(async () => {
    bucket = await createTestBucket('faults');
    proxy = await startFaultProxy({ target: process.env.AWS_ENDPOINT_URL as string });
    store = s3TestStore(bucket.name, {
      endpoint: proxy.url,
      retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50 },
      requestTimeoutMs: 300,
    });
    await store.put('object', data);
  });
  afterEach(() => {
    proxy.failNext(0);
    proxy.resetNext(0);
    proxy.delayMs(0);
  });
  afterAll(async () => {
    store?.close();
    await proxy?.stop();
    await bucket?.destroy();
  });

  /** Runs `action` and returns how many requests reached the proxy meanwhile. */
  async function requestsDuring(action: () => Promise<unknown>): Promise<number> {
    const before = proxy.requestCount;
    await action();
    return proxy.requestCount - before;
  }

  it('passes requests through unchanged when no fault is set', async () => {
    expect(await requestsDuring(async () => expect(await store.getRange('object', 0, data.length)).toEqual(data))).toBe(1);
  });

  it('retries through a bounded run of 503 SlowDown', async () => {
    proxy.failNext(3);
    const requests = await requestsDuring(async () => {
      const { etag } = await store.put('slowdown', data);
      expect((await store.head('slowdown'))?.etag).toBe(etag);
    });
    expect(requests).toBe(5);
  });

  it('retries 500, 429 and 408', async () => {
    for (const status of [500, 429, 408]) {
      proxy.failNext(2, status);
      expect(await requestsDuring(async () => expect((await store.head('object'))?.size).toBe(data.length))).toBe(3);
    }
  });

  it('retries through connection resets', async () => {
    proxy.resetNext(2);
    const requests = await requestsDuring(async () =>
      expect(await store.getRange('object', 100, 10)).toEqual(data.subarray(100, 110)),
    );
    expect(requests).toBe(3);
  });

  it('retries an answer cut short in its body, and gets every byte', async () => {
    proxy.cutNext(2, 1000);
    const requests = await requestsDuring(async () => {
      expect((await store.getRange('object', 10, data.length)).equals(data.subarray(10))).toBe(true);
    });
    expect(requests).toBe(3);
  });

  it('retries an answer slower than the request timeout', async () => {
    proxy.delayMs(1_000, 1);
    const requests = await requestsDuring(async () => expect(await store.getTail('object', 10)).toEqual(data.subarray(-10)));
    expect(requests).toBe(2);
  });

  it('reports unavailable after the retry budget when 503s persist, quickly', async () => {
    proxy.failNext(1_000);
    const started = Date.now();
    let message = '';
    const requests = await requestsDuring(async () => {
      message = (await expectStoreError(store.put('never', data), 'unavailable')).message;
    });
    expect(requests).toBe(4);
    expect(message).toContain('SlowDown (HTTP 503)');
    expect(message).toContain('gave up after 4 attempts');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports unavailable when resets or slowness persist', async () => {
    proxy.resetNext(1_000);
    expect(await requestsDuring(() => expectStoreError(store.head('object'), 'unavailable'))).toBe(4);
    proxy.resetNext(0);
    proxy.delayMs(1_000);
    const started = Date.now();
    expect(await requestsDuring(() => expectStoreError(store.getRange('object', 0, 1), 'unavailable'))).toBe(4);
    expect(Date.now() - started).toBeLessThan(4 * 300 + 1_000);
  });

  it('never retries other 4xx answers', async () => {
    const expected = [
      [400, 'invalid'],
      [403, 'access-denied'],
      [404, 'not-found'],
    ] as const;
    for (const [status, kind] of expected) {
      proxy.failNext(1, status);
      expect(await requestsDuring(() => expectStoreError(store.getRange('object', 0, 1), kind))).toBe(1);
    }
  });

  it('settles a multipart completion whose replies were all lost', async () => {
    const key = 'completed-behind-our-back';
    const uploadId = await store.createMultipart(key);
    const part = await store.uploadPart(key, uploadId, 1, data);
    const direct = s3TestStore(bucket.name);
    const { etag } = await direct.completeMultipart(key, uploadId, [part]);
    direct.close();
    // Every attempt of the completion fails; the store then finds the upload gone and the object
    // being the one these parts make.
    proxy.failNext(4, 500);
    expect(await store.completeMultipart(key, uploadId, [part])).toEqual({ etag });
  });
});
