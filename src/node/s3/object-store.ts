// The one interface between tidefs and the bucket it caches. Every S3 call the node makes goes
// through an ObjectStore; the AWS SDK appears nowhere else. Keys are full object keys (the mount's
// prefix is already applied). Implementations retry transient faults themselves and surface only
// StoreError, so callers map failures to errno in one place.

const handedOver = new WeakSet<Uint8Array>();

/**
 * Says the caller will never touch `body` again, so a store may take its memory rather than copy
 * it (WorkerObjectStore moves it to its worker thread). Returns `body`.
 */
export function handOver(body: Buffer): Buffer {
  handedOver.add(body);
  return body;
}

export function isHandedOver(value: unknown): boolean {
  return value instanceof Uint8Array && handedOver.has(value);
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** The ETag as the server reports it, quotes stripped. */
  etag: string;
  mtime: Date;
  /** User metadata (x-amz-meta-*), lower-case names without the prefix. Only filled by head(). */
  metadata?: Record<string, string>;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Common prefixes (with their trailing delimiter) when listing with a delimiter. */
  prefixes: string[];
  /** Pass back as `token` to get the next page; absent on the last page. */
  nextToken?: string;
}

export interface ListOptions {
  delimiter?: string;
  token?: string;
  /** Page size, at most 1000. */
  maxKeys?: number;
  /** List keys after this one (ListObjectsV2 StartAfter). */
  startAfter?: string;
}

export interface PutOptions {
  metadata?: Record<string, string>;
  contentType?: string;
}

export interface CopyOptions extends PutOptions {
  /** Copy only this version of the source (else kind 'changed'). */
  sourceEtag?: string;
}

/** Where a part copied server-side comes from: a byte range of one version of an object. */
export interface PartSource {
  key: string;
  etag: string;
  offset: number;
  length: number;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

export type StoreErrorKind =
  /** The key does not exist (404 NoSuchKey). */
  | 'not-found'
  /** The bucket does not exist. */
  | 'no-such-bucket'
  /** Credentials are wrong or lack permission (403, InvalidAccessKeyId, SignatureDoesNotMatch). */
  | 'access-denied'
  /** A conditional request failed: the object changed (412 PreconditionFailed). */
  | 'changed'
  /** The request itself is invalid (400: key too long, bad range, entity too small...). */
  | 'invalid'
  /** Still failing after every retry: 5xx, throttling, timeouts, connection errors. */
  | 'unavailable';

export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
    readonly key?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

export interface ObjectStore {
  /** A short description for logs and errors, e.g. "s3://bucket/prefix at http://127.0.0.1:7480". */
  readonly description: string;
  /** Fails with a StoreError ('no-such-bucket', 'access-denied', 'unavailable') if the bucket cannot be used. */
  checkAccess(): Promise<void>;
  /**
   * undefined when the key does not exist. A HEAD reply carries no error code, so in a bucket that
   * does not exist this is undefined too (checkAccess tells the two apart).
   */
  head(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /**
   * Bytes [offset, offset + length) of the object (fewer at the end of the object, none past it; a
   * negative offset or length is kind 'invalid'). With `etag`, fails with kind 'changed' if the
   * object is no longer that version; a missing object is 'not-found' even when no bytes are asked for.
   */
  getRange(key: string, offset: number, length: number, etag?: string): Promise<Buffer>;
  /**
   * The last `length` bytes of the object (all of it when it is shorter): an HTTP suffix range, for
   * reading a footer without knowing the size. With `etag`, fails with kind 'changed' like getRange.
   */
  getTail(key: string, length: number, etag?: string): Promise<Buffer>;
  /**
   * The caller is done with a buffer getRange returned, and nothing refers to it any more: the
   * store may read a later range into the same memory (a fresh 16 MiB buffer costs its page faults
   * and its share of garbage collection). Optional; the buffer must not be used afterwards.
   */
  recycle?(buffer: Buffer): void;
  put(key: string, body: Buffer, options?: PutOptions): Promise<{ etag: string }>;
  createMultipart(key: string, options?: PutOptions): Promise<string>;
  /** Fails with kind 'not-found' when the upload no longer exists (aborted or completed). */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<CompletedPart>;
  /**
   * Makes part `partNumber` of the upload a server-side copy of bytes [offset, offset + length) of
   * the object at `source.key`, which must still be version `source.etag` (else kind 'changed'; a
   * missing source or upload is 'not-found', a range past the source's end 'invalid').
   */
  uploadPartCopy(key: string, uploadId: string, partNumber: number, source: PartSource): Promise<CompletedPart>;
  /**
   * Returns the final object's ETag (fetched with HEAD when the server's reply lacks it). Completing
   * an upload that is already complete returns the object's ETag if the object is still that upload's
   * result; an upload that was aborted (or replaced since) fails with kind 'not-found'.
   */
  completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<{ etag: string }>;
  /** Succeeds if the upload is already gone. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /**
   * Server-side copy of any size (multipart copy above 5 GiB). The destination gets `metadata` and
   * `contentType` when either is given, else the source's.
   * With `sourceEtag`, fails with kind 'changed' if the source is no longer that version.
   */
  copy(sourceKey: string, destKey: string, options?: CopyOptions): Promise<{ etag: string }>;
  /** Succeeds if the key does not exist. */
  delete(key: string): Promise<void>;
  /**
   * Deletes up to MAX_DELETE_BATCH keys with as few requests as the store allows (S3: one
   * DeleteObjects); a key that does not exist counts as deleted. Resolves with the keys that could
   * not be deleted, each with why; rejects only when the request as a whole failed.
   */
  deleteMany(keys: string[]): Promise<Map<string, StoreError>>;
}

/** Most keys one deleteMany call takes (S3's DeleteObjects limit). */
export const MAX_DELETE_BATCH = 1000;

/** What every deleteMany checks first: kind 'invalid' above MAX_DELETE_BATCH keys. */
export function checkDeleteBatch(keys: string[]): void {
  if (keys.length > MAX_DELETE_BATCH) throw new StoreError('invalid', `deleteMany takes at most ${MAX_DELETE_BATCH} keys, not ${keys.length}`);
}
