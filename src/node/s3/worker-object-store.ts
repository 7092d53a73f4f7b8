// The ObjectStore a mount uses: an S3ObjectStore running in a worker thread. Building, signing and
// parsing S3 requests costs the SDK milliseconds of CPU per request, and receiving a chunk means
// handling its bytes; on the thread that also serves FUSE that work delays every file operation.
// Here it runs beside it: calls are forwarded as messages, results come back with their buffers
// moved, not copied, and errors keep their StoreError kind. If the worker dies, the calls in flight
// fail as 'unavailable' and the next call starts a new worker.
import { Worker, type TransferListItem } from 'node:worker_threads';
import {
  type CompletedPart,
  type CopyOptions,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type PartSource,
  type PutOptions,
  StoreError,
  isHandedOver,
} from './object-store.js';
import { errorFromWire, fromWire, toWire, type RecycleMessage, type StoreMethod, type StoreReply, type StoreRequest } from './object-store-wire.js';
import { describeS3Store, type S3ObjectStoreConfig } from './s3-object-store.js';

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export interface WorkerObjectStoreOptions {
  /**
   * The compiled worker entry (object-store-worker.js). Defaults to the one next to this module,
   * which is right when running from dist/; code run from the TypeScript sources passes dist's.
   */
  workerUrl?: URL;
}

export class WorkerObjectStore implements ObjectStore {
  readonly description: string;
  private readonly workerUrl: URL;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly config: S3ObjectStoreConfig,
    options: WorkerObjectStoreOptions = {},
  ) {
    this.description = describeS3Store(config);
    this.workerUrl = options.workerUrl ?? new URL('./object-store-worker.js', import.meta.url);
  }

  checkAccess(): Promise<void> {
    return this.call('checkAccess', []);
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.call('head', [key]);
  }

  list(prefix: string, options?: ListOptions): Promise<ListPage> {
    return this.call('list', [prefix, options]);
  }

  getRange(key: string, offset: number, length: number, etag?: string): Promise<Buffer> {
    return this.call('getRange', [key, offset, length, etag]);
  }

  getTail(key: string, length: number, etag?: string): Promise<Buffer> {
    return this.call('getTail', [key, length, etag]);
  }

  /** Moves the buffer back to the worker, if it is one the worker made (it owns all its memory). */
  recycle(buffer: Buffer): void {
    const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength && buffer.byteLength > 0;
    if (!this.worker || this.closed || !whole) return;
    const message: RecycleMessage = { recycle: new Uint8Array(buffer.buffer) };
    this.worker.postMessage(message, [buffer.buffer as ArrayBuffer]);
  }

  put(key: string, body: Buffer, options?: PutOptions): Promise<{ etag: string }> {
    return this.call('put', [key, body, options]);
  }

  createMultipart(key: string, options?: PutOptions): Promise<string> {
    return this.call('createMultipart', [key, options]);
  }

  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<CompletedPart> {
    return this.call('uploadPart', [key, uploadId, partNumber, body]);
  }

  uploadPartCopy(key: string, uploadId: string, partNumber: number, source: PartSource): Promise<CompletedPart> {
    return this.call('uploadPartCopy', [key, uploadId, partNumber, source]);
  }

  completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<{ etag: string }> {
    return this.call('completeMultipart', [key, uploadId, parts]);
  }

  abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.call('abortMultipart', [key, uploadId]);
  }

  copy(sourceKey: string, destKey: string, options?: CopyOptions): Promise<{ etag: string }> {
    return this.call('copy', [sourceKey, destKey, options]);
  }

  delete(key: string): Promise<void> {
    return this.call('delete', [key]);
  }

  deleteMany(keys: string[]): Promise<Map<string, StoreError>> {
    return this.call('deleteMany', [keys]);
  }

  /** Stops the worker; calls still in flight fail. The store must not be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failPending('the object store was closed');
    await worker?.terminate();
  }

  private call<T>(method: StoreMethod, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('unavailable', `${this.description}: the object store was closed`));
    const worker = this.worker ?? this.startWorker();
    const id = this.nextId++;
    const transfer: TransferListItem[] = [];
    const request: StoreRequest = { id, method, args: args.map((arg) => toWire(arg, transfer, isHandedOver(arg))) };
    return new Promise<T>((resolve, reject) => {
      try {
        worker.postMessage(request, transfer);
      } catch (error) {
        reject(new StoreError('invalid', `${this.description}: cannot pass ${method}'s arguments to the S3 worker: ${(error as Error).message}`));
        return;
      }
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      // Keep the process alive only while something waits on the worker.
      if (this.pending.size === 1) worker.ref();
    });
  }

  private startWorker(): Worker {
    const worker = new Worker(this.workerUrl, { workerData: this.config });
    worker.unref();
    worker.on('message', (reply: StoreReply) => this.settle(reply));
    worker.on('error', (error) => this.workerGone(worker, `the S3 worker failed: ${error.message}`));
    worker.on('exit', (code) => this.workerGone(worker, `the S3 worker exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private settle(reply: StoreReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if ('error' in reply) pending.reject(errorFromWire(reply.error));
    else pending.resolve(fromWire(reply.value));
  }

  private workerGone(worker: Worker, why: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.failPending(why);
  }

  private failPending(why: string): void {
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) call.reject(new StoreError('unavailable', `${this.description}: ${why}`));
  }
}
