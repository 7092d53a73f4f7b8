// The quickstart's view of the bucket, straight through the S3 API (not through tidefs):
//   node scripts/demo-bucket.mjs seed BUCKET   create the bucket with a small model-like file tree
//   node scripts/demo-bucket.mjs list BUCKET   list every object with its size
// S3 settings come from the environment (scripts/local-s3 env).
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const [command, bucket] = process.argv.slice(2);
const client = new S3Client({
  endpoint: process.env.AWS_ENDPOINT_URL,
  region: process.env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

async function seed() {
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  }
  const files = {
    'models/demo-model/config.json': JSON.stringify({ layers: 12, hidden: 768, vocab: 32000 }, null, 2) + '\n',
    'models/demo-model/weights.bin': randomBytes(64 * 1024 * 1024),
    'models/demo-model/tokenizer.txt': 'hello world tidefs\n'.repeat(1000),
    'datasets/readme.txt': 'Datasets go here.\n',
  };
  for (const [key, body] of Object.entries(files)) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }
}

async function list() {
  let token;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) console.log(`  ${String(o.Size).padStart(10)}  ${o.Key}`);
    token = page.NextContinuationToken;
  } while (token);
}

if (!bucket || (command !== 'seed' && command !== 'list')) {
  console.error('usage: node scripts/demo-bucket.mjs seed|list BUCKET');
  process.exit(2);
}
await (command === 'seed' ? seed() : list());
client.destroy();
