// The ObjectStore contract: what every implementation must do, as seen by a caller. One suite, run
// against the real S3 server (S3ObjectStore on radosgw) and against MemoryObjectStore, so the fake
// stays as honest as the real thing. Each test works under its own key prefix in one shared bucket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DELETE_BATCH, type ObjectStore, StoreError, type StoreErrorKind } from '../../../src/node/s3/object-store.js';

export interface ContractBucket {
  /** A store on an empty bucket. */
  store: ObjectStore;
  /** A store on the same bucket whose credentials the server rejects. */
  withBadCredentials: ObjectStore;
  /** A store on a bucket that does not exist. */
  onMissingBucket: ObjectStore;
  release(): Promise<void>;
}

const MiB = 1024 * 1024;

/** Deterministic bytes that differ from seed to seed and never repeat with a short period. */
export function testBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let state = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state & 0xff;
  }
  return out;
}

export async function expectStoreError(promise: Promise<unknown>, kind: StoreErrorKind): Promise<StoreError> {
  const error = await promise.then(
    (value) => {
      throw new Error(`expected a StoreError '${kind}', got a value: ${String(value)}`);
    },
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).kind, (error as StoreError).message).toBe(kind);
  return error as StoreError;
}

export function describeObjectStoreContract(name: string, openBucket: () => Promise<ContractBucket>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let bucket: ContractBucket;
    let store: ObjectStore;
    let testNumber = 0;
    /** A key prefix no other test uses. */
    const fresh = (): string => `contract-${++testNumber}/`;

    beforeAll(async () => {
      bucket = await openBucket();
      store = bucket.store;
    });
    afterAll(async () => {
      await bucket?.release();
    });

    it('accepts the bucket it can use', async () => {
      await expect(store.checkAccess()).resolves.toBeUndefined();
    });

    it('reports a missing bucket as no-such-bucket', async () => {
      const missing = bucket.onMissingBucket;
      await expectStoreError(missing.checkAccess(), 'no-such-bucket');
      await expectStoreError(missing.list(''), 'no-such-bucket');
      await expectStoreError(missing.getRange('k', 0, 1), 'no-such-bucket');
      await expectStoreError(missing.put('k', Buffer.from('x')), 'no-such-bucket');
      await expectStoreError(missing.createMultipart('k'), 'no-such-bucket');
    });

    it('reports rejected credentials as access-denied', async () => {
      const denied = bucket.withBadCredentials;
      await expectStoreError(denied.checkAccess(), 'access-denied');
      await expectStoreError(denied.head('k'), 'access-denied');
      await expectStoreError(denied.list(''), 'access-denied');
      await expectStoreError(denied.getRange('k', 0, 1), 'access-denied');
      await expectStoreError(denied.put('k', Buffer.from('x')), 'access-denied');
      await expectStoreError(denied.deleteMany(['k']), 'access-denied');
    });

    it('puts an object and heads it: size, unquoted ETag, lower-case metadata, mtime', async () => {
      const key = `${fresh()}object`;
      const before = Date.now();
      const { etag } = await store.put(key, testBytes(1000, 1), { metadata: { Color: 'blue' }, contentType: 'text/plain' });
      expect(etag).toMatch(/^[0-9a-f]{32}$/);
      const info = await store.head(key);
      expect(info).toMatchObject({ key, size: 1000, etag, metadata: { color: 'blue' } });
      expect(info!.mtime.getTime()).toBeGreaterThan(before - 5_000);
      expect(info!.mtime.getTime()).toBeLessThan(Date.now() + 5_000);
      const rewritten = await store.put(key, testBytes(1000, 2));
      expect(rewritten.etag).not.toBe(etag);
      expect((await store.head(key))?.metadata).toEqual({});
      expect(await store.head(`${key}-missing`)).toBeUndefined();
    });

    it('reads exactly the bytes asked for, fewer at the end, none past it', async () => {
      const key = `${fresh()}thousand`;
      const data = testBytes(1000, 3);
      await store.put(key, data);
      expect(await store.getRange(key, 0, 1000)).toEqual(data);
      expect(await store.getRange(key, 0, 10)).toEqual(data.subarray(0, 10));
      expect(await store.getRange(key, 990, 10)).toEqual(data.subarray(990));
      expect(await store.getRange(key, 995, 10)).toEqual(data.subarray(995));
      expect(await store.getRange(key, 1000, 10)).toEqual(Buffer.alloc(0));
      expect(await store.getRange(key, 5000, 1)).toEqual(Buffer.alloc(0));
      expect(await store.getTail(key, 10)).toEqual(data.subarray(990));
      expect(await store.getTail(key, 5000)).toEqual(data);
      expect(await store.getRange(key, 10, 0)).toEqual(Buffer.alloc(0));
      expect(await store.getTail(key, 0)).toEqual(Buffer.alloc(0));
      await expectStoreError(store.getRange(key, -1, 1), 'invalid');
      await expectStoreError(store.getRange(key, 0, -1), 'invalid');
      await expectStoreError(store.getTail(key, -1), 'invalid');
      await expectStoreError(store.getRange(`${key}-missing`, 0, 1), 'not-found');
      await expectStoreError(store.getRange(`${key}-missing`, 0, 0), 'not-found');
      await expectStoreError(store.getTail(`${key}-missing`, 1), 'not-found');
    });

    it('reads an empty object as empty', async () => {
      const key = `${fresh()}empty`;
      const { etag } = await store.put(key, Buffer.alloc(0));
      expect((await store.head(key))?.size).toBe(0);
      expect(await store.getRange(key, 0, 10)).toEqual(Buffer.alloc(0));
      expect(await store.getRange(key, 0, 10, etag)).toEqual(Buffer.alloc(0));
      expect(await store.getTail(key, 10)).toEqual(Buffer.alloc(0));
    });

    it('refuses a read of a version that was replaced (changed)', async () => {
      const key = `${fresh()}versioned`;
      const first = await store.put(key, testBytes(100, 4));
      const secondData = testBytes(100, 5);
      const second = await store.put(key, secondData);
      await expectStoreError(store.getRange(key, 0, 4, first.etag), 'changed');
      await expectStoreError(store.getRange(key, 500, 4, first.etag), 'changed');
      await expectStoreError(store.getTail(key, 4, first.etag), 'changed');
      await expectStoreError(store.getRange(key, 0, 0, first.etag), 'changed');
      expect(await store.getRange(key, 0, 4, second.etag)).toEqual(secondData.subarray(0, 4));
      expect(await store.getTail(key, 4, second.etag)).toEqual(secondData.subarray(96));
      expect(await store.getRange(key, 500, 4, second.etag)).toEqual(Buffer.alloc(0));
      await store.delete(key);
      await expectStoreError(store.getRange(key, 0, 4, second.etag), 'not-found');
    });

    it('lists in pages, in key order, with sizes and unquoted ETags', async () => {
      const prefix = fresh();
      const names = ['a', 'b', 'c/x', 'c/y', 'e', 'f/z', 'g'];
      const etags = new Map<string, string>();
      for (const [i, name] of names.entries()) {
        etags.set(`${prefix}${name}`, (await store.put(`${prefix}${name}`, testBytes(i + 1, i))).etag);
      }
      const pages = await listAll(store, prefix, { maxKeys: 2 });
      expect(pages.length).toBe(4);
      const objects = pages.flatMap((page) => page.objects);
      expect(objects.map((o) => o.key)).toEqual(names.map((n) => `${prefix}${n}`));
      for (const [i, object] of objects.entries()) {
        expect(object.size).toBe(i + 1);
        expect(object.etag).toBe(etags.get(object.key));
      }
      expect(pages.flatMap((page) => page.prefixes)).toEqual([]);
      for (const page of pages) expect(page.objects.length).toBeLessThanOrEqual(2);
      const afterCy = await listAll(store, prefix, { startAfter: `${prefix}c/y` });
      expect(afterCy.flatMap((page) => page.objects.map((o) => o.key))).toEqual([`${prefix}e`, `${prefix}f/z`, `${prefix}g`]);
      const nothing = await store.list(`${prefix}zzz`);
      expect(nothing).toMatchObject({ objects: [], prefixes: [] });
      expect(nothing.nextToken).toBeUndefined();
    });

    it('lists with a delimiter in pages that count objects and common prefixes together', async () => {
      const prefix = fresh();
      for (const name of ['a', 'b', 'c/x', 'c/y', 'e', 'f/z', 'f/w/deep', 'g']) {
        await store.put(`${prefix}${name}`, Buffer.from(name));
      }
      const pages = await listAll(store, prefix, { delimiter: '/', maxKeys: 2 });
      const entries = pages.map((page) => [...page.objects.map((o) => o.key), ...page.prefixes].sort());
      expect(entries).toEqual([
        [`${prefix}a`, `${prefix}b`],
        [`${prefix}c/`, `${prefix}e`],
        [`${prefix}f/`, `${prefix}g`],
      ]);
      const inside = await listAll(store, `${prefix}f/`, { delimiter: '/', maxKeys: 1 });
      expect(inside.flatMap((page) => page.objects.map((o) => o.key))).toEqual([`${prefix}f/z`]);
      expect(inside.flatMap((page) => page.prefixes)).toEqual([`${prefix}f/w/`]);
    });

    it('keeps unusual keys intact, up to 1024 bytes; longer keys are invalid', async () => {
      const prefix = fresh();
      const names = ['a b', 'plus+sign', 'per%cent', 'ü-umlaut', 'uni-🚀', 'uni-～', 'q?mark#hash', 'xml&<>"\'', 'sp  ace/x', 'ctl\x01\x7f\t\r\n'];
      for (const name of names) await store.put(`${prefix}${name}`, Buffer.from(name));
      const listed = (await listAll(store, prefix, {})).flatMap((page) => page.objects.map((o) => o.key));
      // S3 orders keys by their UTF-8 bytes (JavaScript's sort would put the emoji first).
      const byUtf8 = names.map((n) => `${prefix}${n}`).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expect(listed).toEqual(byUtf8);
      for (const name of names) expect((await store.getRange(`${prefix}${name}`, 0, 100)).toString()).toBe(name);
      const longest = prefix + 'k'.repeat(1024 - prefix.length);
      await store.put(longest, Buffer.from('x'));
      expect((await store.head(longest))?.size).toBe(1);
      await expectStoreError(store.put(`${longest}k`, Buffer.from('x')), 'invalid');
      await expectStoreError(store.put(prefix + '€'.repeat(400), Buffer.from('x')), 'invalid');
    });

    it('assembles a multipart upload; completing it again answers the same ETag', async () => {
      const key = `${fresh()}multi`;
      const first = testBytes(5 * MiB, 6);
      const second = testBytes(100_000, 7);
      const uploadId = await store.createMultipart(key, { metadata: { origin: 'parts' } });
      const parts = [await store.uploadPart(key, uploadId, 1, first), await store.uploadPart(key, uploadId, 2, second)];
      expect(parts.map((p) => p.partNumber)).toEqual([1, 2]);
      const { etag } = await store.completeMultipart(key, uploadId, parts);
      expect(etag).toMatch(/-2$/);
      expect(await store.head(key)).toMatchObject({ size: first.length + second.length, etag, metadata: { origin: 'parts' } });
      expect(await store.getRange(key, first.length - 10, 20)).toEqual(
        Buffer.concat([first.subarray(first.length - 10), second.subarray(0, 10)]),
      );
      expect(await store.getTail(key, second.length)).toEqual(second);
      expect(await store.completeMultipart(key, uploadId, parts)).toEqual({ etag });
    });

    it('enforces the multipart rules: part size, order, ETags; an aborted upload is gone', async () => {
      const key = `${fresh()}rules`;
      const uploadId = await store.createMultipart(key);
      const small = await store.uploadPart(key, uploadId, 1, testBytes(1024, 8));
      const last = await store.uploadPart(key, uploadId, 2, testBytes(1024, 9));
      await expectStoreError(store.completeMultipart(key, uploadId, [small, last]), 'invalid');
      await expectStoreError(store.completeMultipart(key, uploadId, [{ partNumber: 1, etag: '0'.repeat(32) }]), 'invalid');
      await store.abortMultipart(key, uploadId);
      await store.abortMultipart(key, uploadId);
      await expectStoreError(store.uploadPart(key, uploadId, 3, Buffer.from('x')), 'not-found');
      await expectStoreError(store.completeMultipart(key, uploadId, [last]), 'not-found');
      expect(await store.head(key)).toBeUndefined();

      const ordered = await store.createMultipart(key);
      const one = await store.uploadPart(key, ordered, 1, testBytes(5 * MiB, 10));
      const two = await store.uploadPart(key, ordered, 2, testBytes(10, 11));
      await expectStoreError(store.completeMultipart(key, ordered, [two, one]), 'invalid');
      expect((await store.completeMultipart(key, ordered, [one, two])).etag).toMatch(/-2$/);
    });

    it('copies objects: metadata kept or replaced, source version checked', async () => {
      const prefix = fresh();
      const data = testBytes(3000, 12);
      const source = await store.put(`${prefix}src`, data, { metadata: { kept: 'yes' } });
      const copied = await store.copy(`${prefix}src`, `${prefix}dst`);
      expect(await store.head(`${prefix}dst`)).toMatchObject({ size: 3000, etag: copied.etag, metadata: { kept: 'yes' } });
      expect(await store.getRange(`${prefix}dst`, 0, 3000)).toEqual(data);

      await store.copy(`${prefix}src`, `${prefix}dst2`, { metadata: { fresh: '1' }, sourceEtag: source.etag });
      expect((await store.head(`${prefix}dst2`))?.metadata).toEqual({ fresh: '1' });

      await store.put(`${prefix}src`, testBytes(3000, 13));
      await expectStoreError(store.copy(`${prefix}src`, `${prefix}dst3`, { sourceEtag: source.etag }), 'changed');
      await expectStoreError(store.copy(`${prefix}nothing`, `${prefix}dst4`), 'not-found');
      expect(await store.head(`${prefix}dst3`)).toBeUndefined();

      await expectStoreError(store.copy(`${prefix}dst`, `${prefix}dst`), 'invalid');
      await store.copy(`${prefix}dst`, `${prefix}dst`, { metadata: { renamed: 'in-place' } });
      expect(await store.head(`${prefix}dst`)).toMatchObject({ size: 3000, metadata: { renamed: 'in-place' } });
    });

    it('copies an object larger than one copy request in parts', async () => {
      const prefix = fresh();
      const data = testBytes(12 * MiB + 5, 14);
      await store.put(`${prefix}big`, data, { metadata: { size: 'big' } });
      const { etag } = await store.copy(`${prefix}big`, `${prefix}big-copy`);
      expect(await store.head(`${prefix}big-copy`)).toMatchObject({ size: data.length, etag, metadata: { size: 'big' } });
      expect((await store.getRange(`${prefix}big-copy`, 0, data.length)).equals(data)).toBe(true);
    });

    it('copies byte ranges of an object version into upload parts, mixed with uploaded parts', async () => {
      const prefix = fresh();
      const data = testBytes(11 * MiB, 15);
      const source = await store.put(`${prefix}base`, data);
      const patch = testBytes(5 * MiB, 16);
      const uploadId = await store.createMultipart(`${prefix}patched`);
      const parts = [
        await store.uploadPartCopy(`${prefix}patched`, uploadId, 1, { key: `${prefix}base`, etag: source.etag, offset: 0, length: 5 * MiB }),
        await store.uploadPart(`${prefix}patched`, uploadId, 2, patch),
        await store.uploadPartCopy(`${prefix}patched`, uploadId, 3, { key: `${prefix}base`, etag: source.etag, offset: 10 * MiB, length: MiB }),
      ];
      expect(parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
      await store.completeMultipart(`${prefix}patched`, uploadId, parts);
      const expected = Buffer.concat([data.subarray(0, 5 * MiB), patch, data.subarray(10 * MiB)]);
      expect((await store.getRange(`${prefix}patched`, 0, expected.length + 1)).equals(expected)).toBe(true);

      const copyPart = (etag: string, offset: number, length: number, from = `${prefix}base`) =>
        store.uploadPartCopy(`${prefix}refused`, refused, 1, { key: from, etag, offset, length });
      const refused = await store.createMultipart(`${prefix}refused`);
      await expectStoreError(copyPart(source.etag, 10 * MiB, 2 * MiB), 'invalid');
      await expectStoreError(copyPart(source.etag, 0, MiB, `${prefix}nothing`), 'not-found');
      const replaced = await store.put(`${prefix}base`, testBytes(11 * MiB, 17));
      await expectStoreError(copyPart(source.etag, 0, MiB), 'changed');
      await store.abortMultipart(`${prefix}refused`, refused);
      await expectStoreError(copyPart(replaced.etag, 0, MiB), 'not-found');
    });

    it('deletes objects; deleting a missing key succeeds', async () => {
      const key = `${fresh()}doomed`;
      await store.put(key, Buffer.from('bye'));
      await store.delete(key);
      expect(await store.head(key)).toBeUndefined();
      await store.delete(key);
      await expectStoreError(store.getRange(key, 0, 1), 'not-found');
    });

    it('deletes many keys at once, awkward names and missing keys included, and nothing else', async () => {
      const prefix = fresh();
      const names = ['plain', 'a&b<c>"d\'', 'caf\u00e9 \u{1f600}', 'line\nbreak', 'tab\there', 'ctl\u0001x', 'cr\rx', ...Array.from({ length: 60 }, (_, i) => `n${i}`)];
      for (const name of [...names, 'kept']) await store.put(`${prefix}${name}`, Buffer.from(name));
      const refused = await store.deleteMany([...names.map((name) => `${prefix}${name}`), `${prefix}never-existed`]);
      expect([...refused.keys()]).toEqual([]);
      const left = (await listAll(store, prefix, {})).flatMap((page) => page.objects.map((o) => o.key));
      expect(left).toEqual([`${prefix}kept`]);
      expect(await store.deleteMany([])).toEqual(new Map());
      await expectStoreError(store.deleteMany(Array.from({ length: MAX_DELETE_BATCH + 1 }, (_, i) => `${prefix}${i}`)), 'invalid');
      expect(await store.head(`${prefix}kept`)).toMatchObject({ size: 4 });
    });
  });
}

async function listAll(
  store: ObjectStore,
  prefix: string,
  options: { delimiter?: string; maxKeys?: number; startAfter?: string },
): Promise<Awaited<ReturnType<ObjectStore['list']>>[]> {
  const pages = [];
  let token: string | undefined;
  do {
    const page = await store.list(prefix, { ...options, token });
    pages.push(page);
    token = page.nextToken;
  } while (token !== undefined && pages.length < 100);
  return pages;
}
