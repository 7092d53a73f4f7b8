// Runs the ObjectStore contract against the real S3 server (radosgw from the global setup), directly
// and through the worker thread a mount uses, and against the in-memory store. The S3 stores copy
// objects above 8 MiB in 5 MiB parts here, so the contract's 12 MiB copy exercises UploadPartCopy
// without a 5 GiB object.
import { randomBytes } from 'node:crypto';
import { MemoryS3 } from '../../../src/node/s3/memory-object-store.js';
import type { ObjectStore } from '../../../src/node/s3/object-store.js';
import type { S3ObjectStoreConfig } from '../../../src/node/s3/s3-object-store.js';
import { createTestBucket, s3TestStore, workerTestStore } from '../../support/s3.js';
import { type ContractBucket, describeObjectStoreContract } from './object-store-contract.js';

const MiB = 1024 * 1024;

type OpenStore = (bucket: string, overrides?: Partial<S3ObjectStoreConfig>) => ObjectStore & { close(): unknown };

/** A fresh bucket on the test server, with stores opened by `open`: good, bad credentials, missing bucket. */
function onTestServer(bucketPrefix: string, open: OpenStore): () => Promise<ContractBucket> {
  return async () => {
    const bucket = await createTestBucket(bucketPrefix);
    const store = open(bucket.name, { maxSingleCopyBytes: 8 * MiB, copyPartBytes: 5 * MiB });
    const withBadCredentials = open(bucket.name, {
      credentials: { accessKeyId: 'TIDEFSWRONGACCESSKEY', secretAccessKey: 'wrong-secret' },
    });
    const onMissingBucket = open(`missing-${randomBytes(6).toString('hex')}`);
    return {
      store,
      withBadCredentials,
      onMissingBucket,
      release: async () => {
        for (const s of [store, withBadCredentials, onMissingBucket]) await s.close();
        await bucket.destroy();
      },
    };
  };
}

describeObjectStoreContract('S3ObjectStore on the test S3 server', onTestServer('contract', s3TestStore));

describeObjectStoreContract(
  'WorkerObjectStore (S3ObjectStore in a worker thread) on the test S3 server',
  onTestServer('contract-worker', workerTestStore),
);

describeObjectStoreContract('MemoryObjectStore', async () => {
  const s3 = new MemoryS3();
  s3.createBucket('contract');
  return {
    store: s3.store('contract'),
    withBadCredentials: s3.store('contract', { accessKeyId: 'wrong' }),
    onMissingBucket: s3.store('missing'),
    release: async () => undefined,
  };
});
