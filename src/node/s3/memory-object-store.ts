// An in-memory S3 for unit tests: buckets, objects, multipart uploads and access keys, with the
// behaviour callers can observe on a real server (checked by the same contract tests as
// S3ObjectStore): ETags that change on every write, ranges that stop at the end of the object, paged
// listings with common prefixes in UTF-8 byte order, the multipart rules (part order, part ETags,
// 5 MiB minimum part), 412 on a stale ETag, 1024-byte keys. It never touches the network or disk,
// and it hands out copies, so a caller can never change stored bytes.
import { createHash, randomUUID } from 'node:crypto';
import {
  type CompletedPart,
  checkDeleteBatch,
  type CopyOptions,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type PartSource,
  type PutOptions,
  StoreError,
  type StoreErrorKind,
} from './object-store.js';

const MAX_KEY_BYTES = 1024;
const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PART_NUMBER = 10_000;
const MAX_LIST_KEYS = 1000;

interface StoredObject {
  body: Buffer;
  etag: string;
  mtime: Date;
  metadata: Record<string, string>;
  contentType?: string;
}

interface MultipartUpload {
  bucket: string;
  key: string;
  options: PutOptions;
  parts: Map<number, { body: Buffer; etag: string }>;
}

/** The shared state of one in-memory S3 service; stores made by store() see each other's writes. */
export class MemoryS3 {
  static readonly ACCESS_KEY_ID = 'memory-access-key';
  readonly buckets = new Map<string, Map<string, StoredObject>>();
  readonly uploads = new Map<string, MultipartUpload>();
  /** Completed uploads: completing one again answers with the object if it is still that upload's. */
  readonly completedUploads = new Map<string, { bucket: string; key: string; etag: string }>();
  private writes = 0;

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, new Map());
  }

  /** A client of this service on `bucket` (which may not exist), signing with `accessKeyId`. */
  store(bucket: string, options: { accessKeyId?: string } = {}): MemoryObjectStore {
    return new MemoryObjectStore(this, bucket, options.accessKeyId ?? MemoryS3.ACCESS_KEY_ID);
  }

  /** An ETag never handed out before: S3-shaped (32 hex digits), unique even for equal bodies. */
  freshEtag(content: Buffer): string {
    return createHash('md5').update(String(++this.writes)).update(content).digest('hex');
  }
}

/** A fresh in-memory S3 with one bucket, and a store on it. */
export function memoryObjectStore(bucket = 'memory-bucket'): MemoryObjectStore {
  const s3 = new MemoryS3();
  s3.createBucket(bucket);
  return s3.store(bucket);
}

export class MemoryObjectStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly s3: MemoryS3,
    private readonly bucket: string,
    private readonly accessKeyId: string,
  ) {
    this.description = `memory://${bucket}`;
  }

  async checkAccess(): Promise<void> {
    this.objects();
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    this.authorize();
    const object = this.s3.buckets.get(this.bucket)?.get(key);
    return object === undefined ? undefined : { ...info(key, object), metadata: { ...object.metadata } };
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const objects = this.objects();
    const limit = options.maxKeys ?? MAX_LIST_KEYS;
    if (!Number.isSafeInteger(limit) || limit < 1) this.fail('invalid', 'InvalidArgument', prefix, `max-keys ${limit}`);
    const resume = options.token === undefined ? { after: options.startAfter } : this.decodeToken(options.token, prefix);
    const after = resume.after === undefined ? undefined : Buffer.from(resume.after);
    const keys = [...objects.keys()]
      .filter((key) => key.startsWith(prefix) && (after === undefined || Buffer.compare(Buffer.from(key), after) > 0))
      .filter((key) => resume.skipPrefix === undefined || !key.startsWith(resume.skipPrefix))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const page: ListPage = { objects: [], prefixes: [] };
    let last: ListToken | undefined;
    for (const key of keys) {
      const commonPrefix = commonPrefixOf(key, prefix, options.delimiter);
      if (commonPrefix !== undefined && commonPrefix === last?.skipPrefix) continue;
      if (page.objects.length + page.prefixes.length === Math.min(limit, MAX_LIST_KEYS)) {
        page.nextToken = Buffer.from(JSON.stringify(last)).toString('base64url');
        break;
      }
      if (commonPrefix === undefined) {
        page.objects.push(info(key, objects.get(key) as StoredObject));
        last = { after: key };
      } else {
        page.prefixes.push(commonPrefix);
        last = { after: commonPrefix, skipPrefix: commonPrefix };
      }
    }
    return page;
  }

  async getRange(key: string, offset: number, length: number, etag?: string): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0) this.fail('invalid', 'InvalidRange', key, `offset ${offset}`);
    if (!Number.isSafeInteger(length) || length < 0) this.fail('invalid', 'InvalidRange', key, `length ${length}`);
    const object = this.version(key, etag);
    return Buffer.from(object.body.subarray(Math.min(offset, object.body.length), offset + length));
  }

  async getTail(key: string, length: number, etag?: string): Promise<Buffer> {
    if (!Number.isSafeInteger(length) || length < 0) this.fail('invalid', 'InvalidRange', key, `length ${length}`);
    const object = this.version(key, etag);
    return Buffer.from(object.body.subarray(object.body.length - Math.min(length, object.body.length)));
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<{ etag: string }> {
    const objects = this.objects();
    this.checkKey(key);
    return { etag: this.write(objects, key, Buffer.from(body), options, this.s3.freshEtag(body)) };
  }

  async createMultipart(key: string, options: PutOptions = {}): Promise<string> {
    this.objects();
    this.checkKey(key);
    const uploadId = randomUUID();
    this.s3.uploads.set(uploadId, { bucket: this.bucket, key, options: copyOptions(options), parts: new Map() });
    return uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<CompletedPart> {
    this.objects();
    const upload = this.upload(key, uploadId);
    if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
      this.fail('invalid', 'InvalidArgument', key, `part number ${partNumber}`);
    }
    const etag = createHash('md5').update(body).digest('hex');
    upload.parts.set(partNumber, { body: Buffer.from(body), etag });
    return { partNumber, etag };
  }

  async uploadPartCopy(key: string, uploadId: string, partNumber: number, source: PartSource): Promise<CompletedPart> {
    this.objects();
    this.upload(key, uploadId);
    const { offset, length } = source;
    const object = this.version(source.key, source.etag);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 1 || offset + length > object.body.length) {
      this.fail('invalid', 'InvalidRange', key, `bytes ${offset}+${length} of ${source.key} (${object.body.length} bytes)`);
    }
    return this.uploadPart(key, uploadId, partNumber, object.body.subarray(offset, offset + length));
  }

  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<{ etag: string }> {
    const objects = this.objects();
    const completed = this.s3.completedUploads.get(uploadId);
    if (completed !== undefined && completed.bucket === this.bucket && completed.key === key) {
      if (objects.get(key)?.etag === completed.etag) return { etag: completed.etag };
    }
    const upload = this.upload(key, uploadId);
    if (parts.length === 0) this.fail('invalid', 'MalformedXML', key, 'no parts');
    const bodies: Buffer[] = [];
    parts.forEach((part, index) => {
      if (index > 0 && part.partNumber <= parts[index - 1].partNumber) this.fail('invalid', 'InvalidPartOrder', key);
      const uploaded = upload.parts.get(part.partNumber);
      if (uploaded === undefined || uploaded.etag !== part.etag) {
        this.fail('invalid', 'InvalidPart', key, `part ${part.partNumber}`);
      }
      if (index < parts.length - 1 && uploaded.body.length < MIN_PART_BYTES) {
        this.fail('invalid', 'EntityTooSmall', key, `part ${part.partNumber} has ${uploaded.body.length} bytes`);
      }
      bodies.push(uploaded.body);
    });
    const body = Buffer.concat(bodies);
    const etag = this.write(objects, key, body, upload.options, `${this.s3.freshEtag(body)}-${parts.length}`);
    this.s3.uploads.delete(uploadId);
    this.s3.completedUploads.set(uploadId, { bucket: this.bucket, key, etag });
    return { etag };
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    this.objects();
    const upload = this.s3.uploads.get(uploadId);
    if (upload !== undefined && upload.bucket === this.bucket && upload.key === key) this.s3.uploads.delete(uploadId);
  }

  async copy(sourceKey: string, destKey: string, options: CopyOptions = {}): Promise<{ etag: string }> {
    const objects = this.objects();
    this.checkKey(destKey);
    const { sourceEtag, ...putOptions } = options;
    const source = this.version(sourceKey, sourceEtag);
    const replaceMetadata = putOptions.metadata !== undefined || putOptions.contentType !== undefined;
    if (sourceKey === destKey && !replaceMetadata) {
      this.fail('invalid', 'InvalidRequest', destKey, 'copying an object to itself needs new metadata');
    }
    const destOptions = replaceMetadata ? putOptions : { metadata: source.metadata, contentType: source.contentType };
    return { etag: this.write(objects, destKey, source.body, destOptions, this.s3.freshEtag(source.body)) };
  }

  async delete(key: string): Promise<void> {
    this.objects().delete(key);
  }

  async deleteMany(keys: string[]): Promise<Map<string, StoreError>> {
    checkDeleteBatch(keys);
    const objects = this.objects();
    for (const key of keys) objects.delete(key);
    return new Map();
  }

  /** The bucket's objects, after the checks S3 makes first: credentials, then the bucket. */
  private objects(): Map<string, StoredObject> {
    this.authorize();
    const objects = this.s3.buckets.get(this.bucket);
    if (objects === undefined) this.fail('no-such-bucket', 'NoSuchBucket');
    return objects;
  }

  private authorize(): void {
    if (this.accessKeyId !== MemoryS3.ACCESS_KEY_ID) this.fail('access-denied', 'InvalidAccessKeyId');
  }

  /** The object under `key`, which must be version `etag` when one is given. */
  private version(key: string, etag: string | undefined): StoredObject {
    const object = this.objects().get(key);
    if (object === undefined) this.fail('not-found', 'NoSuchKey', key);
    if (etag !== undefined && object.etag !== etag) this.fail('changed', 'PreconditionFailed', key);
    return object;
  }

  private upload(key: string, uploadId: string): MultipartUpload {
    const upload = this.s3.uploads.get(uploadId);
    if (upload === undefined || upload.bucket !== this.bucket || upload.key !== key) {
      this.fail('not-found', 'NoSuchUpload', key, `upload ${uploadId}`);
    }
    return upload;
  }

  private write(objects: Map<string, StoredObject>, key: string, body: Buffer, options: PutOptions, etag: string): string {
    const mtime = new Date(Math.floor(Date.now() / 1000) * 1000);
    const { metadata = {}, contentType } = copyOptions(options);
    objects.set(key, contentType === undefined ? { body, etag, mtime, metadata } : { body, etag, mtime, metadata, contentType });
    return etag;
  }

  private checkKey(key: string): void {
    if (key === '') this.fail('invalid', 'InvalidArgument', key, 'empty key');
    const bytes = Buffer.byteLength(key);
    if (bytes > MAX_KEY_BYTES) this.fail('invalid', 'KeyTooLongError', key, `${bytes}-byte key`);
  }

  private decodeToken(token: string, prefix: string): ListToken {
    try {
      const decoded = JSON.parse(Buffer.from(token, 'base64url').toString()) as ListToken;
      if (typeof decoded.after === 'string') return decoded;
    } catch {
      // reported below
    }
    this.fail('invalid', 'InvalidArgument', prefix, 'continuation token');
  }

  private fail(kind: StoreErrorKind, code: string, key?: string, detail?: string): never {
    const where = key === undefined ? `memory://${this.bucket}` : `memory://${this.bucket}/${key}`;
    throw new StoreError(kind, `${where}: ${code}${detail === undefined ? '' : ` (${detail})`}`, key);
  }
}

interface ListToken {
  after?: string;
  /** Set when the page ended with a common prefix: the next page skips every key under it. */
  skipPrefix?: string;
}

function info(key: string, object: StoredObject): ObjectInfo {
  return { key, size: object.body.length, etag: object.etag, mtime: object.mtime };
}

/** The common prefix `key` rolls up into when listing `prefix` with `delimiter`, if any. */
function commonPrefixOf(key: string, prefix: string, delimiter: string | undefined): string | undefined {
  if (delimiter === undefined || delimiter === '') return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  return at < 0 ? undefined : key.slice(0, at + delimiter.length);
}

/** S3 stores metadata names in lower case. */
function copyOptions(options: PutOptions): PutOptions {
  const metadata = Object.fromEntries(Object.entries(options.metadata ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
  return options.contentType === undefined ? { metadata } : { metadata, contentType: options.contentType };
}
