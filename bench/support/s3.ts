// The S3 server a benchmark runs against: the local radosgw from scripts/local-s3, started or
// reused through a lease held by this process, plus what a benchmark needs from it — an SDK client,
// its settings as environment variables for child processes, throwaway buckets, garbage collection
// (the server keeps deleted data in RAM until its gc runs) and a check that its RAM-backed store has
// room. Everything it creates is registered with the benchmark's Teardown; it never touches a bucket
// it did not create.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { s3SettingsFromEnv } from '../../src/node/s3/config.js';
import { sendDataUnsigned } from '../../src/node/s3/s3-object-store.js';
import { localS3, parseExports } from '../../test/fixtures/local-s3/control.js';
import type { Teardown } from './teardown.js';

const run = promisify(execFile);
const STATE_DIR = process.env.TIDEFS_LOCAL_S3_DIR ?? '/var/lib/tidefs-local-s3';

export interface BenchS3 {
  client: S3Client;
  /** The same, sending object data unsigned, as a mount does (for reference beside the SDK's default). */
  unsignedClient: S3Client;
  /** AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... of the server, for child processes such as a mount. */
  env: Record<string, string>;
}

export interface StoreRoom {
  usedBytes: number;
  totalBytes: number;
}

/** Starts or joins the local S3 server (released by the teardown) and opens a client to it. */
export async function openBenchS3(teardown: Teardown): Promise<BenchS3> {
  const lease = String(process.pid);
  const began = Date.now();
  const outcome = await localS3('acquire', lease);
  teardown.add('release the local S3 lease', async () => {
    await localS3('release', lease);
  });
  const env = parseExports(await localS3('env'));
  process.stderr.write(`local S3: ${outcome} ${env.AWS_ENDPOINT_URL} (${Date.now() - began} ms)\n`);
  // The SDK is pinned to a release that supports Node 20 on purpose (see environment.md).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { endpoint, region, credentials } = s3SettingsFromEnv({}, env);
  const newClient = (): S3Client =>
    new S3Client({
      endpoint,
      region,
      credentials,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A wedged server (e.g. a full store, which stalls writes and deletes alike) must fail the
      // benchmark, not hang it: no request may sit a minute without a byte moving.
      requestHandler: { connectionTimeout: 5_000, socketTimeout: 60_000 },
    });
  const client = newClient();
  const unsignedClient = newClient();
  sendDataUnsigned(unsignedClient);
  teardown.add('close the S3 clients', async () => {
    client.destroy();
    unsignedClient.destroy();
  });
  return { client, unsignedClient, env };
}

/**
 * Creates a bucket `bench-<purpose>-<time>-<random>`; the teardown empties and deletes it, then
 * collects the garbage so the server's RAM is free for the next run.
 */
export async function createBenchBucket(s3: BenchS3, teardown: Teardown, purpose: string): Promise<string> {
  const name = `bench-${purpose}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  await s3.client.send(new CreateBucketCommand({ Bucket: name }));
  teardown.add(`delete bucket ${name}`, async () => {
    await destroyBucket(s3.client, name);
    await collectGarbage();
  });
  return name;
}

/** Deletes `keys` (missing ones are fine) and frees their space on the server at once. */
export async function deleteObjects(s3: BenchS3, bucket: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const reply = await s3.client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }),
    );
    const failed = reply.Errors ?? [];
    if (failed.length > 0) throw new Error(`could not delete ${failed.length} object(s), e.g. ${failed[0]!.Key}: ${failed[0]!.Message}`);
  }
  await collectGarbage();
}

/** Keys under `prefix` (up to 1000: enough to tell whether anything was left behind). */
export async function listKeys(s3: BenchS3, bucket: string, prefix: string): Promise<string[]> {
  const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((object) => object.Key!);
}

/** radosgw keeps deleted data until its gc runs; run it now (the local server's config allows it). */
async function collectGarbage(): Promise<void> {
  await run('radosgw-admin', ['-c', path.join(STATE_DIR, 'ceph.conf'), 'gc', 'process', '--include-all'], { timeout: 120_000 });
}

/** How full the server's RAM-backed object store is (from the OSD's counters). */
async function storeRoom(): Promise<StoreRoom> {
  const { stdout } = await run('ceph', ['--admin-daemon', path.join(STATE_DIR, 'run', 'osd.0.asok'), 'perf', 'dump'], {
    timeout: 30_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const osd = (JSON.parse(stdout) as { osd?: { stat_bytes?: number; stat_bytes_used?: number } }).osd;
  if (osd?.stat_bytes === undefined || osd.stat_bytes_used === undefined) throw new Error('the OSD reports no stat_bytes counters');
  return { usedBytes: osd.stat_bytes_used, totalBytes: osd.stat_bytes };
}

/** When the store is (nearly) full, a sentence saying so; radosgw then stalls every write and delete. */
export async function fullStoreNote(): Promise<string | undefined> {
  const room = await storeRoom();
  if (room.usedBytes < room.totalBytes * 0.95) return undefined;
  return `the local S3 store is full (${room.usedBytes} of ${room.totalBytes} bytes used): radosgw stalls writes and deletes until space is freed`;
}

/**
 * Fails with advice unless the store has `bytes` free (after collecting garbage): a full memstore
 * makes radosgw fail requests, which would look like a tidefs failure.
 */
export async function requireRoom(bytes: number, purpose: string): Promise<StoreRoom> {
  await collectGarbage();
  const room = await storeRoom();
  const free = room.totalBytes - room.usedBytes;
  if (free < bytes) {
    const gib = (n: number): string => `${(n / 1024 ** 3).toFixed(2)} GiB`;
    throw new Error(
      `the local S3 store has ${gib(free)} free of ${gib(room.totalBytes)}, but ${purpose} needs ${gib(bytes)}: ` +
        'delete leftover buckets, or restart it with a larger TIDEFS_LOCAL_S3_MEM (scripts/local-s3 stop; TIDEFS_LOCAL_S3_MEM=6G scripts/local-s3 start)',
    );
  }
  return room;
}

async function destroyBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (page.Contents ?? []).map((object) => object.Key!);
    if (keys.length === 0) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
  }
  for (;;) {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    const uploads = page.Uploads ?? [];
    if (uploads.length === 0) break;
    for (const upload of uploads) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
    }
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}
