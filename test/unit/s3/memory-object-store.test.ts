// MemoryObjectStore beyond the shared contract: the properties unit tests elsewhere rely on — fresh
// ETags even for equal bodies, no aliasing between callers' buffers and stored bytes, S3's UTF-8
// byte order in listings, one shared service behind several stores.
import { describe, expect, it } from 'vitest';
import { MemoryS3, memoryObjectStore } from '../../../src/node/s3/memory-object-store.js';

describe('MemoryObjectStore', () => {
  it('gives every write a new ETag, even for the same bytes', async () => {
    const store = memoryObjectStore();
    const body = Buffer.from('same bytes');
    const first = await store.put('k', body);
    const second = await store.put('k', body);
    const copied = await store.copy('k', 'k2');
    expect(new Set([first.etag, second.etag, copied.etag]).size).toBe(3);
    for (const { etag } of [first, second, copied]) expect(etag).toMatch(/^[0-9a-f]{32}$/);
  });

  it('never shares buffers with its callers', async () => {
    const store = memoryObjectStore();
    const body = Buffer.from('original');
    await store.put('k', body);
    body.fill(0);
    const read = await store.getRange('k', 0, 100);
    expect(read.toString()).toBe('original');
    read.fill(0);
    expect((await store.getTail('k', 100)).toString()).toBe('original');

    const uploadId = await store.createMultipart('m');
    const part = Buffer.from('part');
    const done = await store.uploadPart('m', uploadId, 1, part);
    part.fill(0);
    await store.completeMultipart('m', uploadId, [done]);
    expect((await store.getRange('m', 0, 10)).toString()).toBe('part');
  });

  it('lists in UTF-8 byte order, as S3 does (not JavaScript string order)', async () => {
    const store = memoryObjectStore();
    // As JavaScript (UTF-16) strings '😀' < '～'; as UTF-8 bytes, which S3 compares, '～' < '😀'.
    const keys = ['😀', '～', 'a', 'Z'];
    for (const key of keys) await store.put(key, Buffer.from(key));
    expect(['😀', '～'].sort()).toEqual(['😀', '～']);
    const listed = (await store.list('')).objects.map((o) => o.key);
    expect(listed).toEqual(['Z', 'a', '～', '😀']);
  });

  it('serves every store of one MemoryS3 from the same buckets', async () => {
    const s3 = new MemoryS3();
    s3.createBucket('shared');
    const writer = s3.store('shared');
    const reader = s3.store('shared');
    const { etag } = await writer.put('k', Buffer.from('v'));
    expect((await reader.head('k'))?.etag).toBe(etag);
    expect(reader.description).toBe('memory://shared');
  });

  it('refuses a continuation token it did not make', async () => {
    const store = memoryObjectStore();
    await expect(store.list('', { token: 'garbage' })).rejects.toMatchObject({ kind: 'invalid' });
    await expect(store.list('', { maxKeys: 0 })).rejects.toMatchObject({ kind: 'invalid' });
  });
});
