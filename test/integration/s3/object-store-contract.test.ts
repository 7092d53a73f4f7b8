// Runs the ObjectStore contract against the real S3 server (radosgw from the global setup), directly
// and through the worker thread a mount uses, and against the in-memory store. The S3 store copies objects above 8 MiB in 5 MiB parts here, so the
// contract's 12 MiB copy exercises UploadPartCopy without a 5 GiB object.
import { randomBytes } from 'node:crypto';
import { MemoryS3 } from '../../../src/node/s3/memory-object-store.js';
import { createTestBucket, s3TestStore, workerTestStore } from '../../support/s3.js';
import { describeObjectStoreContract } from './object-store-contract.js';

const MiB = 1024 * 1024;

describeObjectStoreContract('S3ObjectStore on the test S3 server', async () => {
  const bucket = await createTestBucket('contract');
  const tuning = { maxSingleCopyBytes: 8 * MiB, copyPartBytes: 5 * MiB };
  const store = s3TestStore(bucket.name, tuning);
  const withBadCredentials = s3TestStore(bucket.name, {
    credentials: { accessKeyId: 'TIDEFSWRONGACCESSKEY', secretAccessKey: 'wrong-secret' },
  });
  const onMissingBucket = s3TestStore(`missing-${randomBytes(6).toString('hex')}`);
  return {
    store,
    withBadCredentials,
    onMissingBucket,
    release: async () => {
      for (const s of [store, withBadCredentials, onMissingBucket]) s.close();
      await bucket.destroy();
    },
  };
});

describeObjectStoreContract('WorkerObjectStore (S3ObjectStore in a worker thread) on the test S3 server', async () => {
  const bucket = await createTestBucket('contract-worker');
  const tuning = { maxSingleCopyBytes: 8 * MiB, copyPartBytes: 5 * MiB };
  const store = workerTestStore(bucket.name, tuning);
  const withBadCredentials = workerTestStore(bucket.name, {
    credentials: { accessKeyId: 'TIDEFSWRONGACCESSKEY', secretAccessKey: 'wrong-secret' },
  });
  const onMissingBucket = workerTestStore(`missing-${randomBytes(6).toString('hex')}`);
  return {
    store,
    withBadCredentials,
    onMissingBucket,
    release: async () => {
      for (const s of [store, withBadCredentials, onMissingBucket]) await s.close();
      await bucket.destroy();
    },
  };
});

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
