// The ObjectStore over a real S3 server (AWS, radosgw, ...) through @aws-sdk/client-s3 (ranged
// reads from a custom endpoint through HttpRangeReader, which reads into the caller's buffer).
// It owns the HTTP connection pool, how requests are signed (object data unsigned by default), the
// retry loop (the SDK's own retries are off so the behaviour is explicit) and the translation of
// every failure into a StoreError. It never decides what a failure means for the filesystem, never
// adds a key prefix, and never logs object data or credentials.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { S3ConnectionSettings } from './config.js';
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
} from './object-store.js';
import { HttpRangeReader } from './http-range-reader.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, retryTransient } from './retry.js';
import { classifyS3Failure, describeS3Failure, IncompleteBodyError, type S3Failure } from './s3-errors.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3 allows at most this many parts in one multipart upload. */
const MAX_PARTS = 10_000;
/** Requests whose body is object data. */
const DATA_UPLOADS = new Set(['PutObjectCommand', 'UploadPartCommand']);

/**
 * Has `client` send object data (the bodies of PutObject and UploadPart) as UNSIGNED-PAYLOAD, as
 * the SDK itself sends a streamed body: the request, its length included, stays signed. Hashing a
 * body costs as much CPU as sending it, twice (the server checks the hash). On https:// TLS
 * protects the body; on http:// nothing protects it against tampering, as nothing protects a
 * downloaded body, which is never signed.
 */
export function sendDataUnsigned(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => (args) => {
      if (DATA_UPLOADS.has(context.commandName ?? '') && hasHeaders(args.request)) {
        args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'tidefsUnsignedPayload' },
  );
}
/** Characters a key may hold that an S3 XML request body cannot carry as they are. */
const NOT_XML_SAFE = /[\u0000-\u001f\u007f\ufffe\uffff]/;

export interface S3ObjectStoreConfig extends S3ConnectionSettings {
  bucket: string;
  /** Defaults to DEFAULT_RETRY_POLICY (6 attempts, 100 ms doubling up to 5 s, full jitter). */
  retry?: Partial<RetryPolicy>;
  /** An attempt fails (and is retried) when its connection shows no progress for this long. Default 30 s. */
  requestTimeoutMs?: number;
  /** An attempt fails (and is retried) when connecting takes longer. Default 5 s. */
  connectTimeoutMs?: number;
  /** Connections kept open to the server; parallel ranged GETs each need one. Default 64. */
  maxSockets?: number;
  /** Larger objects are copied with UploadPartCopy. Default 5 GiB, S3's CopyObject limit. */
  maxSingleCopyBytes?: number;
  /** Part size of a multipart copy (raised when the object needs more than 10,000 parts). Default 512 MiB. */
  copyPartBytes?: number;
  /** UploadPartCopy requests in flight during a multipart copy. Default 4. */
  copyConcurrency?: number;
  /**
   * Sign upload bodies: SHA-256 over every byte, computed here and again by the server. Default
   * false: bodies go as UNSIGNED-PAYLOAD (the request itself, its length included, stays signed).
   */
  signPayloads?: boolean;
}

/** The store's description ("s3://bucket at http://127.0.0.1:7480"); throws StoreError 'invalid' for an unusable config. */
export function describeS3Store(config: S3ObjectStoreConfig): string {
  if (config.bucket === '') throw new StoreError('invalid', 'S3 bucket name is empty');
  return `s3://${config.bucket} at ${serverOf(config)}`;
}

/** The S3 service, for messages: the custom endpoint, or AWS and the region. */
const serverOf = (config: S3ConnectionSettings): string => config.endpoint ?? `AWS ${config.region}`;

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly bucket: string;
  private readonly server: string;
  private readonly client: S3Client;
  /** Ranged reads from a custom endpoint; undefined (AWS's endpoints): through the SDK. */
  private readonly ranges: HttpRangeReader | undefined;
  private readonly retry: RetryPolicy;
  private readonly maxSingleCopyBytes: number;
  private readonly copyPartBytes: number;
  private readonly copyConcurrency: number;

  constructor(config: S3ObjectStoreConfig) {
    this.description = describeS3Store(config);
    const { endpoint, region, credentials } = config;
    this.bucket = config.bucket;
    this.server = serverOf(config);
    this.retry = { ...DEFAULT_RETRY_POLICY, ...config.retry };
    this.maxSingleCopyBytes = config.maxSingleCopyBytes ?? 5 * GiB;
    this.copyPartBytes = config.copyPartBytes ?? 512 * MiB;
    this.copyConcurrency = config.copyConcurrency ?? 4;
    const agentOptions = { keepAlive: true, maxSockets: config.maxSockets ?? 64 };
    this.client = new S3Client({
      region,
      endpoint,
      forcePathStyle: endpoint !== undefined,
      credentials,
      maxAttempts: 1,
      // Resolve each command's middleware stack once, not on every request (no command here adds
      // middleware of its own): a measurable share of the SDK's CPU per small request.
      cacheMiddleware: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        httpAgent: new http.Agent(agentOptions),
        httpsAgent: new https.Agent(agentOptions),
        connectionTimeout: config.connectTimeoutMs ?? 5_000,
        socketTimeout: config.requestTimeoutMs ?? 30_000,
      },
    });
    if (!config.signPayloads) sendDataUnsigned(this.client);
    const url = endpoint === undefined ? undefined : new URL(endpoint);
    if (url && HttpRangeReader.serves(url)) {
      this.ranges = new HttpRangeReader({
        endpoint: url,
        bucket: this.bucket,
        signer: () => this.client.config.signer(),
        clock: this.client.config,
        connectTimeoutMs: config.connectTimeoutMs ?? 5_000,
        requestTimeoutMs: config.requestTimeoutMs ?? 30_000,
      });
    }
  }

  recycle(buffer: Buffer): void {
    this.ranges?.recycle(buffer);
  }

  /** Closes the kept-alive connections. The store must not be used afterwards. */
  close(): void {
    this.ranges?.close();
    this.client.destroy();
  }

  async checkAccess(): Promise<void> {
    try {
      await this.call('ListObjectsV2', undefined, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 })),
      );
    } catch (error) {
      throw this.accessError(error as StoreError);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const out = await this.call('HeadObject', key, () =>
      unlessFailure(this.headObject(key), (failure) => failure.kind === 'not-found', undefined),
    );
    if (out === undefined) return undefined;
    return {
      key,
      size: out.ContentLength ?? 0,
      etag: unquote(out.ETag),
      mtime: out.LastModified ?? new Date(0),
      metadata: out.Metadata ?? {},
    };
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const out = await this.call('ListObjectsV2', prefix, () =>
      this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix === '' ? undefined : prefix,
          Delimiter: options.delimiter,
          ContinuationToken: options.token,
          StartAfter: options.startAfter,
          MaxKeys: options.maxKeys,
          // Keys may hold characters XML 1.0 cannot carry (control characters): have them URL-encoded.
          EncodingType: 'url',
        }),
      ),
    );
    const objects: ObjectInfo[] = [];
    for (const entry of out.Contents ?? []) {
      if (entry.Key === undefined) continue;
      objects.push({
        key: decodeListedKey(entry.Key),
        size: entry.Size ?? 0,
        etag: unquote(entry.ETag),
        mtime: entry.LastModified ?? new Date(0),
      });
    }
    const prefixes = (out.CommonPrefixes ?? []).flatMap((entry) =>
      entry.Prefix === undefined ? [] : [decodeListedKey(entry.Prefix)],
    );
    const nextToken = out.IsTruncated ? out.NextContinuationToken : undefined;
    return nextToken === undefined ? { objects, prefixes } : { objects, prefixes, nextToken };
  }

  async getRange(key: string, offset: number, length: number, etag?: string): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0) this.rejectArgument('GetObject', key, `offset ${offset}`);
    if (!Number.isSafeInteger(length) || length < 0) this.rejectArgument('GetObject', key, `length ${length}`);
    return length === 0 ? this.noBytesOf(key, etag) : this.readRange(key, `bytes=${offset}-${offset + length - 1}`, etag);
  }

  async getTail(key: string, length: number, etag?: string): Promise<Buffer> {
    if (!Number.isSafeInteger(length) || length < 0) this.rejectArgument('GetObject', key, `length ${length}`);
    return length === 0 ? this.noBytesOf(key, etag) : this.readRange(key, `bytes=-${length}`, etag);
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<{ etag: string }> {
    const out = await this.call('PutObject', key, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          Metadata: options.metadata,
          ContentType: options.contentType,
        }),
      ),
    );
    return { etag: await this.etagOrHead(key, out.ETag) };
  }

  async createMultipart(key: string, options: PutOptions = {}): Promise<string> {
    const out = await this.call('CreateMultipartUpload', key, () =>
      this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          Metadata: options.metadata,
          ContentType: options.contentType,
        }),
      ),
    );
    if (out.UploadId === undefined) {
      throw new StoreError('unavailable', `S3 CreateMultipartUpload ${this.location(key)}: reply has no UploadId`, key);
    }
    return out.UploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<CompletedPart> {
    const out = await this.call('UploadPart', key, () =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      ),
    );
    return { partNumber, etag: unquote(out.ETag) };
  }

  async uploadPartCopy(key: string, uploadId: string, partNumber: number, source: PartSource): Promise<CompletedPart> {
    const { offset, length } = source;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 1) {
      this.rejectArgument('UploadPartCopy', key, `source range ${offset}+${length}`);
    }
    const out = await this.call('UploadPartCopy', key, () =>
      this.client.send(
        new UploadPartCopyCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: this.copySource(source.key),
          CopySourceRange: `bytes=${offset}-${offset + length - 1}`,
          CopySourceIfMatch: quote(source.etag),
        }),
      ),
    );
    // Some servers (radosgw among them) ignore x-amz-copy-source-if-match here: check that the
    // source is still that version now that its bytes are copied.
    const now = await this.head(source.key);
    if (now?.etag !== source.etag) {
      const what = now ? `is now version ${now.etag}` : 'is gone';
      throw new StoreError(now ? 'changed' : 'not-found', `S3 UploadPartCopy ${this.location(key)}: source ${source.key} ${what}, not ${source.etag}`, key);
    }
    return { partNumber, etag: unquote(out.CopyPartResult?.ETag) };
  }

  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<{ etag: string }> {
    // S3 refuses parts out of order (InvalidPartOrder); radosgw silently sorts them. Refuse them here
    // so every server behaves the same.
    for (let i = 1; i < parts.length; i++) {
      if (parts[i].partNumber <= parts[i - 1].partNumber) {
        this.rejectArgument('CompleteMultipartUpload', key, `part order (${parts[i - 1].partNumber} before ${parts[i].partNumber})`);
      }
    }
    try {
      const out = await this.call('CompleteMultipartUpload', key, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: quote(part.etag) })) },
          }),
        ),
      );
      return { etag: await this.etagOrHead(key, out.ETag) };
    } catch (error) {
      if (!(error instanceof StoreError) || (error.kind !== 'unavailable' && error.kind !== 'not-found')) throw error;
      return this.settleVanishedUpload(key, uploadId, parts, error);
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    await this.call('AbortMultipartUpload', key, () =>
      unlessFailure(
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })),
        (failure) => failure.kind === 'not-found',
        undefined,
      ),
    );
  }

  async copy(sourceKey: string, destKey: string, options: CopyOptions = {}): Promise<{ etag: string }> {
    const { sourceEtag, ...putOptions } = options;
    const replaceMetadata = putOptions.metadata !== undefined || putOptions.contentType !== undefined;
    // S3 refuses this for CopyObject but not for a multipart copy: refuse it for every size.
    if (sourceKey === destKey && !replaceMetadata) {
      this.rejectArgument('CopyObject', destKey, 'copy of an object onto itself without new metadata');
    }
    const source = await this.call('HeadObject', sourceKey, () => this.headObject(sourceKey));
    const currentEtag = unquote(source.ETag);
    if (sourceEtag !== undefined && currentEtag !== sourceEtag) {
      throw new StoreError('changed', `S3 CopyObject ${this.location(sourceKey)}: source is no longer version ${sourceEtag}`, sourceKey);
    }
    const size = source.ContentLength ?? 0;
    if (size > this.maxSingleCopyBytes) {
      const destOptions = replaceMetadata ? putOptions : { metadata: source.Metadata, contentType: source.ContentType };
      return this.copyInParts(sourceKey, currentEtag, size, destKey, destOptions);
    }
    const out = await this.call('CopyObject', destKey, () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: destKey,
          CopySource: this.copySource(sourceKey),
          CopySourceIfMatch: sourceEtag === undefined ? undefined : quote(sourceEtag),
          ...(replaceMetadata
            ? { MetadataDirective: 'REPLACE', Metadata: putOptions.metadata, ContentType: putOptions.contentType }
            : {}),
        }),
      ),
    );
    return { etag: await this.etagOrHead(destKey, out.CopyObjectResult?.ETag) };
  }

  async delete(key: string): Promise<void> {
    await this.call('DeleteObject', key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
    );
  }

  async deleteMany(keys: string[]): Promise<Map<string, StoreError>> {
    checkDeleteBatch(keys);
    const failed = new Map<string, StoreError>();
    // A DeleteObjects body is XML, which cannot carry most control characters (and servers differ
    // on how they read an escaped CR or LF): such keys are deleted one request each.
    const alone = keys.filter((key) => NOT_XML_SAFE.test(key));
    const batch = keys.filter((key) => !NOT_XML_SAFE.test(key));
    await Promise.all(alone.map((key) => this.delete(key).catch((error: StoreError) => failed.set(key, error))));
    if (batch.length === 0) return failed;
    const out = await this.call('DeleteObjects', undefined, () =>
      this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      ),
    );
    for (const error of out.Errors ?? []) {
      if (error.Key === undefined || error.Code === 'NoSuchKey') continue;
      const failure = classifyS3Failure({ Code: error.Code, message: error.Message ?? error.Code });
      failed.set(error.Key, new StoreError(failure.kind, `S3 DeleteObjects ${this.location(error.Key)}: ${describeS3Failure(failure)}`, error.Key));
    }
    return failed;
  }

  /** One S3 operation with retries of transient failures; every failure leaves as a StoreError. */
  private async call<T>(operation: string, key: string | undefined, attempt: () => Promise<T>): Promise<T> {
    try {
      return await retryTransient(attempt, (error) => classifyS3Failure(error).transient, this.retry);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      const failure = classifyS3Failure(error);
      const gaveUp = failure.transient ? ` (gave up after ${this.retry.maxAttempts} attempts)` : '';
      const message = `S3 ${operation} ${this.location(key)}: ${describeS3Failure(failure)}${gaveUp}`;
      throw new StoreError(failure.kind, message, key, { cause: error });
    }
  }

  private headObject(key: string): Promise<HeadObjectCommandOutput> {
    return this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  private async readRange(key: string, range: string, etag: string | undefined): Promise<Buffer> {
    const body = await this.call('GetObject', key, async () => {
      if (this.ranges) return this.ranges.read(key, range, etag);
      const request = this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range, IfMatch: etag === undefined ? undefined : quote(etag) }),
      );
      const out = await unlessFailure(request, (failure) => failure.status === 416, undefined);
      return out === undefined ? undefined : readBody(out.Body as Readable | undefined, out.ContentLength);
    });
    if (body !== undefined) return body;
    // 416: the range starts at or past the end (every range of an empty object does). The server may
    // answer that before it checks If-Match, so the version is checked separately.
    return etag === undefined ? Buffer.alloc(0) : this.noBytesOf(key, etag);
  }

  /** An empty read: no range to ask for, but the object must exist (and be version `etag`). */
  private async noBytesOf(key: string, etag: string | undefined): Promise<Buffer> {
    const current = await this.head(key);
    if (current === undefined) throw new StoreError('not-found', `S3 GetObject ${this.location(key)}: NoSuchKey`, key);
    if (etag !== undefined && current.etag !== etag) {
      throw new StoreError('changed', `S3 GetObject ${this.location(key)}: object is no longer version ${etag}`, key);
    }
    return Buffer.alloc(0);
  }

  private async etagOrHead(key: string, etag: string | undefined): Promise<string> {
    const unquoted = unquote(etag);
    if (unquoted !== '') return unquoted;
    // radosgw answers CompleteMultipartUpload with an empty ETag; HEAD has the real one.
    const info = await this.head(key);
    if (info === undefined) {
      throw new StoreError('not-found', `S3 HeadObject ${this.location(key)}: object vanished right after it was written`, key);
    }
    return info.etag;
  }

  /**
   * CompleteMultipartUpload failed and the upload may be gone: radosgw answers 500 (not 404
   * NoSuchUpload) for an unknown upload, and an earlier attempt may have completed it before its
   * reply was lost. Settled by asking whether the upload still exists and, if not, whether the object
   * is the one these parts make (its ETag is derived from the parts' ETags).
   */
  private async settleVanishedUpload(
    key: string,
    uploadId: string,
    parts: CompletedPart[],
    failure: StoreError,
  ): Promise<{ etag: string }> {
    const uploadExists = await this.call('ListParts', key, () =>
      unlessFailure(
        this.client
          .send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MaxParts: 1 }))
          .then(() => true),
        (listFailure) => listFailure.kind === 'not-found',
        false,
      ),
    );
    if (uploadExists) throw failure;
    const expected = multipartEtag(parts);
    const current = await this.head(key);
    if (expected !== undefined && current?.etag === expected) return { etag: current.etag };
    throw new StoreError(
      'not-found',
      `S3 CompleteMultipartUpload ${this.location(key)}: upload ${uploadId} no longer exists`,
      key,
      { cause: failure },
    );
  }

  private async copyInParts(
    sourceKey: string,
    sourceEtag: string,
    size: number,
    destKey: string,
    options: PutOptions,
  ): Promise<{ etag: string }> {
    const partBytes = Math.max(this.copyPartBytes, Math.ceil(size / MAX_PARTS));
    const partCount = Math.ceil(size / partBytes);
    const uploadId = await this.createMultipart(destKey, options);
    try {
      const parts = await mapConcurrently(partCount, this.copyConcurrency, async (index) => {
        const offset = index * partBytes;
        const length = Math.min(size, offset + partBytes) - offset;
        return this.uploadPartCopy(destKey, uploadId, index + 1, { key: sourceKey, etag: sourceEtag, offset, length });
      });
      return await this.completeMultipart(destKey, uploadId, parts);
    } catch (error) {
      // The copy's own failure is what matters; a leftover upload is only storage to reclaim.
      await this.abortMultipart(destKey, uploadId).catch(() => undefined);
      throw error;
    }
  }

  private copySource(key: string): string {
    return `${this.bucket}/${encodeURIComponent(key)}`;
  }

  private accessError(error: StoreError): StoreError {
    const detail = describeS3Failure(classifyS3Failure(error.cause));
    switch (error.kind) {
      case 'no-such-bucket':
        return new StoreError(error.kind, `bucket "${this.bucket}" does not exist at ${this.server}`, undefined, { cause: error });
      case 'access-denied':
        return new StoreError(
          error.kind,
          `${this.server} refused access to bucket "${this.bucket}" (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): ${detail}`,
          undefined,
          { cause: error },
        );
      case 'unavailable':
        return new StoreError(error.kind, `cannot reach S3 at ${this.server}: ${detail}`, undefined, { cause: error });
      default:
        return error;
    }
  }

  private rejectArgument(operation: string, key: string, what: string): never {
    throw new StoreError('invalid', `S3 ${operation} ${this.location(key)}: invalid ${what}`, key);
  }

  private location(key: string | undefined): string {
    return key === undefined ? `s3://${this.bucket}` : `s3://${this.bucket}/${key}`;
  }
}

/** The promise's value, or `fallback` when it fails in a way `accept` recognises. */
async function unlessFailure<T, U>(promise: Promise<T>, accept: (failure: S3Failure) => boolean, fallback: U): Promise<T | U> {
  try {
    return await promise;
  } catch (error) {
    const failure = classifyS3Failure(error);
    if (!failure.transient && accept(failure)) return fallback;
    throw error;
  }
}

/** Reads the whole body into one buffer, preallocated when the length is known. */
async function readBody(body: Readable | undefined, contentLength: number | undefined): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  if (contentLength === undefined) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  const buffer = Buffer.allocUnsafe(contentLength);
  let filled = 0;
  for await (const chunk of body) {
    filled += (chunk as Buffer).copy(buffer, filled);
  }
  if (filled !== contentLength) throw new IncompleteBodyError(contentLength, filled);
  return buffer;
}

/** S3's ETag of a completed multipart upload: md5 of the parts' binary md5s, then "-<count>". */
export function multipartEtag(parts: CompletedPart[]): string | undefined {
  const hash = createHash('md5');
  for (const part of parts) {
    if (!/^[0-9a-f]{32}$/i.test(part.etag)) return undefined;
    hash.update(Buffer.from(part.etag, 'hex'));
  }
  return `${hash.digest('hex')}-${parts.length}`;
}

/**
 * Runs `task(0..count-1)` with at most `limit` in flight; results in index order. After a failure no
 * new task starts, and it rejects (with the first failure) only once the running ones have settled.
 */
async function mapConcurrently<T>(count: number, limit: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < count) {
      const index = next++;
      try {
        results[index] = await task(index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(limit, count) }, worker));
  const failure = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return results;
}

/** A key from a listing made with EncodingType=url (AWS encodes a space as "+", radosgw as "%20"). */
function decodeListedKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

function unquote(etag: string | undefined): string {
  if (etag === undefined) return '';
  return etag.length >= 2 && etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag;
}

function quote(etag: string): string {
  return `"${etag}"`;
}

/** An HTTP request as the SDK's middleware sees it (its type there is unknown). */
function hasHeaders(request: unknown): request is { headers: Record<string, string> } {
  return typeof request === 'object' && request !== null && typeof (request as { headers?: unknown }).headers === 'object';
}
