// WorkerObjectStore's own behaviour, with stand-in workers (test/fixtures/store-workers): values and
// errors survive the trip between threads, the caller's buffers are never taken from it unless
// handed over, and a worker that dies fails the calls in flight without taking the store down. The
// contract suite runs it against the real S3 server.
import { afterEach, describe, expect, it } from 'vitest';
import { StoreError, handOver } from '../../../src/node/s3/object-store.js';
import { WorkerObjectStore } from '../../../src/node/s3/worker-object-store.js';

const config = { bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };
const worker = (name: string): URL => new URL(`../../fixtures/store-workers/${name}.mjs`, import.meta.url);

describe('WorkerObjectStore', () => {
  const stores: WorkerObjectStore[] = [];
  const open = (name: string): WorkerObjectStore => {
    const store = new WorkerObjectStore(config, { workerUrl: worker(name) });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  it('describes itself like the S3 store and refuses an empty bucket name', () => {
    expect(open('echo').description).toBe('s3://b at http://127.0.0.1:1');
    expect(() => new WorkerObjectStore({ ...config, bucket: '' })).toThrow(StoreError);
  });

  it('moves buffers both ways without taking the caller\'s', async () => {
    const store = open('echo');
    const backing = Buffer.alloc(3 * 1024 * 1024, 7);
    for (const body of [Buffer.from('small'), Buffer.alloc(2 * 1024 * 1024, 9), backing.subarray(1024, 1024 + 1024 * 1024)]) {
      const before = Buffer.from(body);
      const echoed = (await store.put('k', body)) as unknown as Buffer;
      expect(Buffer.isBuffer(echoed)).toBe(true);
      expect(echoed.equals(before)).toBe(true);
      expect(body.equals(before)).toBe(true);
    }
    expect(backing.length).toBe(3 * 1024 * 1024);
  });

  it('moves a handed-over body to the worker instead of copying it, unless it is a view into a bigger buffer', async () => {
    const store = open('echo');
    const body = Buffer.alloc(2 * 1024 * 1024, 5);
    const echoed = (await store.put('k', handOver(body))) as unknown as Buffer;
    expect(echoed.equals(Buffer.alloc(2 * 1024 * 1024, 5))).toBe(true);
    expect(body.buffer.byteLength).toBe(0);

    const backing = Buffer.alloc(2 * 1024 * 1024, 6);
    const view = backing.subarray(0, 1024 * 1024);
    await store.put('k', handOver(view));
    expect(backing.buffer.byteLength).toBe(2 * 1024 * 1024);
    expect(view.equals(Buffer.alloc(1024 * 1024, 6))).toBe(true);
  });

  it('keeps the kind and key of StoreErrors, inside deleteMany\'s answer too', async () => {
    const store = open('echo');
    const error = await store.head('missing').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ kind: 'not-found', key: 'missing', message: 'no missing' });
    const refused = await store.deleteMany(['a', 'b']);
    expect([...refused.keys()]).toEqual(['a', 'b']);
    expect(refused.get('b')).toBeInstanceOf(StoreError);
    expect(refused.get('b')).toMatchObject({ kind: 'access-denied', key: 'b' });
  });

  it('fails the calls of a worker that dies as unavailable and starts another for the next call', async () => {
    const store = open('dying');
    for (let i = 0; i < 2; i++) {
      const error = await store.head('k').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ kind: 'unavailable' });
      expect((error as Error).message).toContain('exited with code 3');
    }
  });

  it('refuses arguments that cannot cross to the worker, and stays usable', async () => {
    const store = open('echo');
    const options = { metadata: { bad: (() => 'x') as unknown as string } };
    await expect(store.put('k', Buffer.from('x'), options)).rejects.toMatchObject({ kind: 'invalid' });
    expect(((await store.put('k', Buffer.from('fine'))) as unknown as Buffer).toString()).toBe('fine');
  });

  it('refuses calls once closed', async () => {
    const store = open('echo');
    await store.close();
    await expect(store.head('k')).rejects.toMatchObject({ kind: 'unavailable' });
  });
});
