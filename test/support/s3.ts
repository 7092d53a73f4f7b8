// Helpers for tests that need a real bucket: the S3 settings of the test run, a raw SDK client, an
// S3ObjectStore tuned for tests, and throwaway buckets. The settings come from process.env, which the
// global setup (test/setup/local-s3.ts) fills in before any worker starts: vitest hands the setup's
// process.env to its workers, so no provide/inject is needed. A test that runs without that setup
// needs AWS_ENDPOINT_URL (or AWS credentials) in its environment.
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { type S3ConnectionSettings, s3SettingsFromEnv } from '../../src/node/s3/config.js';
import { StoreError } from '../../src/node/s3/object-store.js';
import { S3ObjectStore, type S3ObjectStoreConfig } from '../../src/node/s3/s3-object-store.js';
import { WorkerObjectStore } from '../../src/node/s3/worker-object-store.js';

export function s3TestSettings(): S3ConnectionSettings {
  const settings = s3SettingsFromEnv();
  if (settings.endpoint === undefined && settings.credentials === undefined) {
    throw new Error(
      'no S3 server for tests: run them through vitest.config.ts (its global setup starts scripts/local-s3) ' +
        'or export AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    );
  }
  return settings;
}

/** A raw SDK client for the test S3 server (the caller destroys it). */
export function s3TestClient(): S3Client {
  const { endpoint, region, credentials } = s3TestSettings();
  return new S3Client({
    endpoint,
    region,
    credentials,
    forcePathStyle: endpoint !== undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * An S3ObjectStore on `bucket` of the test server with a small retry budget (4 attempts, 10-100 ms),
 * so a test that provokes failures gets its answer quickly. The caller closes it.
 */
export function s3TestStore(bucket: string, overrides: Partial<S3ObjectStoreConfig> = {}): S3ObjectStore {
  return new S3ObjectStore(testStoreConfig(bucket, overrides));
}

function testStoreConfig(bucket: string, overrides: Partial<S3ObjectStoreConfig>): S3ObjectStoreConfig {
  return { ...s3TestSettings(), bucket, retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 100 }, ...overrides };
}

/** The compiled worker entry: tests run from the TypeScript sources, the worker only from dist/. */
export const OBJECT_STORE_WORKER = new URL('../../dist/src/node/s3/object-store-worker.js', import.meta.url);

/** Like s3TestStore, but the S3ObjectStore runs in a worker thread, as in a mount. */
export function workerTestStore(bucket: string, overrides: Partial<S3ObjectStoreConfig> = {}): WorkerObjectStore {
  return new WorkerObjectStore(testStoreConfig(bucket, overrides), { workerUrl: OBJECT_STORE_WORKER });
}

export interface TestBucket {
  name: string;
  /** Deletes every object, aborts every unfinished multipart upload, deletes the bucket. Idempotent. */
  destroy(): Promise<void>;
}

/** Creates a bucket named `<prefix>-<time>-<random>` on the test server. */
export async function createTestBucket(prefix = 'test'): Promise<TestBucket> {
  const cleanPrefix = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'test';
  const name = `${cleanPrefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const client = s3TestClient();
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return { name, destroy: () => destroyBucket(name) };
}

async function destroyBucket(bucket: string): Promise<void> {
  const client = s3TestClient();
  // The store lists URL-encoded and deletes key by key, so keys with control characters (which a
  // DeleteObjects XML body cannot carry) go too.
  const store = s3TestStore(bucket);
  try {
    let token: string | undefined;
    do {
      const page = await store.list('', { token });
      for (let i = 0; i < page.objects.length; i += 64) {
        await Promise.all(page.objects.slice(i, i + 64).map((object) => store.delete(object.key)));
      }
      token = page.nextToken;
    } while (token !== undefined);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const upload of page.Uploads ?? []) {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if (!(error instanceof StoreError && error.kind === 'no-such-bucket') && (error as { name?: string }).name !== 'NoSuchBucket') {
      throw error;
    }
  } finally {
    store.close();
    client.destroy();
  }
}
