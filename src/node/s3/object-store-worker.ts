// Entry point of the worker thread behind WorkerObjectStore: runs one S3ObjectStore (configured by
// workerData) and answers each request with the store's value or its error. Requests run
// concurrently, as they would on the main thread; nothing here interprets them.
import { parentPort, workerData, type TransferListItem } from 'node:worker_threads';
import { S3ObjectStore, type S3ObjectStoreConfig } from './s3-object-store.js';
import { errorToWire, fromWire, STORE_METHODS, toWire, type RecycleMessage, type StoreReply, type StoreRequest } from './object-store-wire.js';

const port = parentPort;
if (!port) throw new Error('object-store-worker runs only as a worker thread');
const store = new S3ObjectStore(workerData as S3ObjectStoreConfig);
const served = new Set<string>(STORE_METHODS);

port.on('message', (request: StoreRequest | RecycleMessage) => {
  if ('recycle' in request) {
    const { buffer, byteOffset, byteLength } = request.recycle;
    store.recycle(Buffer.from(buffer, byteOffset, byteLength));
    return;
  }
  void serve(request).then(({ reply, transfer }) => {
    try {
      port.postMessage(reply, transfer);
    } catch (error) {
      // A value that cannot cross (it never should): the caller gets an error, not a dead worker.
      port.postMessage({ id: request.id, error: errorToWire(new Error(`object store worker: cannot send the reply: ${(error as Error).message}`)) });
    }
  });
});

async function serve({ id, method, args }: StoreRequest): Promise<{ reply: StoreReply; transfer: TransferListItem[] }> {
  const transfer: TransferListItem[] = [];
  try {
    if (!served.has(method)) throw new Error(`object store worker: unknown method ${String(method)}`);
    const call = store[method] as (...a: unknown[]) => Promise<unknown>;
    const value = await call.apply(store, args.map(fromWire));
    return { reply: { id, value: toWire(value, transfer, true) }, transfer };
  } catch (error) {
    return { reply: { id, error: errorToWire(error) }, transfer: [] };
  }
}
