// Write-back: makes the bucket catch up with the namespace. For each dirty inode it writes the
// object at every key the inode maps to (PutObject, multipart upload whose unchanged parts are
// copied server-side from the previous object, or a whole server-side copy when only the key or
// the attributes changed), bracketed by BeginFlush / FinishFlush commands so a
// crash in between is recovered; it deletes objects that tombstones name once nothing needs them.
// Flushes happen on fsync, a delay after the last close, when dirty data gets old, under cache
// pressure, and for everything at unmount. One flush per inode and one operation per key at a time.
import type { BucketKeys } from '../inode/bucket-keys.js';
import type { ChunkStore } from '../inode/chunk-store.js';
import { FsError } from '../inode/errors.js';
import type { MetadataStore } from '../inode/metadata-store.js';
import { InodeKind, isDirty, type InodeId, type InodeRecord } from '../inode/types.js';
import type { ContentReader } from './content-reader.js';
import type { InodeLog } from './inode-log.js';
import { toObjectMetadata } from './object-metadata.js';
import { MAX_DELETE_BATCH, StoreError, handOver, type CompletedPart, type ObjectStore } from './s3/object-store.js';
import { sendPart } from './part-upload.js';
import { StreamingUpload } from './streaming-upload.js';

export interface WriteBackOptions {
  chunkSize: number;
  /** Parts uploaded in parallel for one multipart upload. */
  uploadConcurrency: number;
  /** Inodes flushed in parallel by the background loop. */
  flushConcurrency: number;
  /** Flush a closed file this long after its last close. */
  closeDelayMs: number;
  /** Flush anything dirty for longer than this, open or not. */
  maxDirtyAgeMs: number;
  scanIntervalMs: number;
  /** Dirty bytes in the cache above which the oldest dirty inodes are flushed. */
  dirtyHighWatermark: number;
}

/** What the write-back needs to know about open files (owned by the Filesystem). */
export interface OpenFiles {
  openCount(ino: InodeId): number;
  lastClosed(ino: InodeId): number | undefined;
}

const MIN_PART = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 30_000;
const DELETE_CONCURRENCY = 8;
/** How long after the last filesystem operation background write-back keeps to one at a time. */
const FOREGROUND_QUIET_MS = 250;

export class WriteBack {
  private readonly flushing = new Map<InodeId, Promise<void>>();
  private readonly keyLocks = new Map<string, Promise<unknown>>();
  private readonly failures = new Map<InodeId, { count: number; retryAt: number }>();
  /** Multipart uploads running while their file is still being written. */
  private readonly streams = new Map<InodeId, StreamingUpload>();
  private timer: NodeJS.Timeout | undefined;
  private scanning = false;
  private deleting: Promise<number> | undefined;
  private lastDeleteError: unknown;
  /** Inodes due for a flush, oldest first; refilled by scan(), drained by pump(). */
  private queue: InodeId[] = [];
  private lastForeground = 0;

  constructor(
    private readonly store: MetadataStore,
    private readonly keys: BucketKeys,
    private readonly chunks: ChunkStore,
    private readonly objects: ObjectStore,
    private readonly log: InodeLog,
    private readonly reader: ContentReader,
    private readonly open: OpenFiles,
    private readonly options: WriteBackOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.scan(), this.options.scanIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A write landed in the file. Big files get a streaming upload, so that their parts go to the
   * bucket while the rest is still being written.
   */
  noteWrite(ino: InodeId, offset: number, length: number): void {
    const stream = this.streams.get(ino);
    const rec = this.store.inode(ino);
    if (!rec) return;
    if (stream) {
      stream.noteWrite(offset, length);
      stream.pump(rec.size);
      return;
    }
    const partSize = this.partSize(rec.size);
    if (rec.kind !== InodeKind.File || rec.nlink !== 1 || rec.size < 2 * partSize || this.flushing.has(ino)) return;
    const start = this.startStream(ino, rec, partSize).catch(() => undefined);
    this.flushing.set(ino, start);
    void start.finally(() => {
      if (this.flushing.get(ino) === start) this.flushing.delete(ino);
    });
  }

  /** The file was truncated: a streaming upload of it can no longer be finished part by part. */
  noteTruncate(ino: InodeId): void {
    const stream = this.streams.get(ino);
    if (stream) void this.abortStream(stream, this.store.inode(ino)?.version ?? 0).catch(() => undefined);
  }

  private async startStream(ino: InodeId, rec: InodeRecord, partSize: number): Promise<void> {
    const [key] = this.keys.keysOf(ino, rec.kind);
    if (key === undefined || this.store.isObjectReferenced(key)) return;
    const uploadId = await this.objects.createMultipart(key, { metadata: toObjectMetadata(rec) });
    await this.log.run({ $case: 'beginFlush', value: { ino, version: rec.version, keys: [key], uploadId } });
    const stream = new StreamingUpload(ino, key, uploadId, partSize, this.objects, this.reader, this.options.uploadConcurrency);
    this.streams.set(ino, stream);
    stream.pump(this.store.inode(ino)?.size ?? 0);
  }

  private async abortStream(stream: StreamingUpload, version: number): Promise<void> {
    if (this.streams.get(stream.ino) === stream) this.streams.delete(stream.ino);
    await stream.abort();
    await this.log.run({ $case: 'finishFlush', value: { ino: stream.ino, version, keys: [stream.key], etag: '', size: 0 } });
  }

  /** Complete a streaming upload as the inode's flush, if it still fits the inode; false if not. */
  private async finishStream(ino: InodeId, targets: string[]): Promise<boolean> {
    const stream = this.streams.get(ino);
    if (!stream) return false;
    this.streams.delete(ino);
    const rec = this.store.inode(ino);
    if (!rec || rec.orphan || targets.length !== 1 || targets[0] !== stream.key || rec.kind !== InodeKind.File) {
      await this.abortStream(stream, rec?.version ?? 0);
      return false;
    }
    try {
      const version = rec.version;
      const size = rec.size;
      const parts = await stream.finish(size);
      const done = await this.objects.completeMultipart(stream.key, stream.uploadId, parts);
      await this.log.run({ $case: 'finishFlush', value: { ino, version, keys: [stream.key], etag: done.etag, size } });
      return true;
    } catch (err) {
      await this.abortStream(stream, rec.version).catch(() => undefined);
      throw flushFailure(err, stream.key);
    }
  }

  /**
   * Undo what a crash interrupted: abort multipart uploads that never finished, forget flushes
   * that never reported back (the inode stays dirty and is flushed again), drop orphans (nothing
   * has them open after a restart).
   */
  async recover(): Promise<void> {
    for (const { ino } of [...this.store.dirtyInodes()]) {
      const rec = this.store.inode(ino);
      if (rec?.flush) await this.abandonFlush(ino, rec);
    }
    for (const ino of [...this.store.orphanInodes()]) {
      const rec = this.store.inode(ino);
      if (rec?.flush) await this.abandonFlush(ino, rec);
      await this.log.run({ $case: 'dropOrphan', value: { ino } });
    }
  }

  /** Flush the inode now and wait until the bucket holds everything written before the call. */
  async flush(ino: InodeId): Promise<void> {
    for (;;) {
      const running = this.flushing.get(ino);
      if (running) {
        await running.catch(() => undefined);
        continue;
      }
      const rec = this.store.inode(ino);
      if (!rec || !isDirty(rec) || rec.orphan) return;
      await this.startFlush(ino);
      return;
    }
  }

  /** Flush every dirty inode and perform every pending delete (unmount, drain). */
  async drain(): Promise<void> {
    // A flush can leave work behind (a rename's old key becomes deletable only after the moved
    // file is written), so go round until nothing is dirty and nothing is left to delete.
    for (let round = 0; round < 20; round++) {
      const dirty = [...this.store.dirtyInodes()].map((d) => d.ino);
      if (dirty.length === 0 && this.nextDeletable() === undefined) return;
      const errors: unknown[] = [];
      await this.forEachLimited(dirty, this.options.flushConcurrency, (ino) =>
        this.flush(ino).catch((err: unknown) => {
          errors.push(err);
        }),
      );
      if (errors.length > 0) throw errors[0];
      const failures = await this.deleteTombstones();
      if (failures > 0 && round >= 2) {
        throw new FsError('EIO', `${failures} object(s) could not be deleted: ${(this.lastDeleteError as Error)?.message}`);
      }
    }
    throw new FsError('EIO', 'write-back did not settle');
  }

  private async scan(): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    try {
      const now = Date.now();
      const due: Array<{ ino: InodeId; since: number }> = [];
      for (const entry of this.store.dirtyInodes()) {
        if (this.flushing.has(entry.ino)) continue;
        const failure = this.failures.get(entry.ino);
        if (failure && failure.retryAt > now) continue;
        const closed = this.open.lastClosed(entry.ino);
        const idleClosed = this.open.openCount(entry.ino) === 0 && (closed === undefined || now - closed >= this.options.closeDelayMs);
        if (idleClosed || now - entry.since >= this.options.maxDirtyAgeMs) due.push(entry);
      }
      if (due.length === 0 && this.dirtyBytesOver()) {
        const oldest = [...this.store.dirtyInodes()].filter((e) => !this.flushing.has(e.ino)).sort((a, b) => a.since - b.since);
        due.push(...oldest.slice(0, this.options.flushConcurrency));
      }
      for (const stream of [...this.streams.values()]) {
        const rec = this.store.inode(stream.ino);
        if (!rec || rec.orphan) void this.abortStream(stream, rec?.version ?? 0).catch(() => undefined);
      }
      due.sort((a, b) => a.since - b.since);
      this.queue = due.map((d) => d.ino);
      this.pump();
      void this.deleteTombstones();
    } finally {
      this.scanning = false;
    }
  }

  /** Keep flushConcurrency flushes going while the queue has inodes. */
  private pump(): void {
    while (this.flushing.size < this.backgroundConcurrency(this.options.flushConcurrency) && this.queue.length > 0) {
      const ino = this.queue.shift()!;
      if (this.flushing.has(ino)) continue;
      this.startFlush(ino)
        .catch(() => undefined)
        .finally(() => this.pump());
    }
  }

  /** Filesystem operations are being served: background write-back steps aside for a moment. */
  noteForeground(): void {
    this.lastForeground = Date.now();
  }

  /** Background work runs one at a time while the filesystem is busy, at full width otherwise. */
  private backgroundConcurrency(full: number): number {
    return Date.now() - this.lastForeground < FOREGROUND_QUIET_MS && !this.dirtyBytesOver() ? 1 : full;
  }

  private dirtyBytesOver(): boolean {
    return this.chunks.usedBytes() > this.options.dirtyHighWatermark && this.store.dirtyCount() > 0;
  }

  private startFlush(ino: InodeId): Promise<void> {
    const run = this.flushInode(ino).then(
      () => {
        this.failures.delete(ino);
      },
      (err: unknown) => {
        const count = (this.failures.get(ino)?.count ?? 0) + 1;
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (count - 1));
        this.failures.set(ino, { count, retryAt: Date.now() + delay });
        throw err;
      },
    );
    const tracked = run.finally(() => this.flushing.delete(ino));
    this.flushing.set(ino, tracked);
    return tracked;
  }

  private async flushInode(ino: InodeId): Promise<void> {
    const rec = this.store.inode(ino);
    if (!rec || !isDirty(rec) || rec.orphan) return;
    const version = rec.version;
    const targets = this.keys.keysOf(ino, rec.kind).filter((k) => k !== '');
    if (targets.length === 0) return;
    await this.withKeys(targets, async () => {
      if (await this.finishStream(ino, targets)) return;
      for (const key of targets) await this.protectReferrers(key, ino);
      const current = this.store.inode(ino);
      if (!current || current.orphan) return;
      const result = await this.writeObjects(ino, current, version, targets);
      await this.log.run({ $case: 'finishFlush', value: { ino, version, keys: targets, etag: result.etag, size: result.size } });
    });
    this.reader.unpin(ino);
  }

  /** Write version `version` of the inode to every key in `targets`; returns the first object's ETag and size. */
  private async writeObjects(
    ino: InodeId,
    rec: InodeRecord,
    version: number,
    targets: string[],
  ): Promise<{ etag: string; size: number }> {
    const metadata = toObjectMetadata(rec);
    const [first, ...others] = targets as [string, ...string[]];
    let written: { etag: string; size: number };
    try {
      if (rec.kind === InodeKind.Dir) {
        await this.log.run({ $case: 'beginFlush', value: { ino, version, keys: targets, uploadId: '' } });
        written = { etag: (await this.objects.put(first, Buffer.alloc(0), { metadata })).etag, size: 0 };
      } else if (rec.kind === InodeKind.Symlink) {
        await this.log.run({ $case: 'beginFlush', value: { ino, version, keys: targets, uploadId: '' } });
        const body = Buffer.from(rec.symlinkTarget ?? '', 'utf8');
        written = { etag: (await this.objects.put(first, body, { metadata })).etag, size: body.length };
      } else {
        written = await this.writeFile(ino, rec, version, targets, metadata);
      }
      for (const key of others) {
        const copied = await this.objects.copy(first, key, { metadata, sourceEtag: written.etag });
        if (copied.etag === '') throw new FsError('EIO', `copy to ${key} returned no ETag`);
      }
    } catch (err) {
      await this.log.run({ $case: 'finishFlush', value: { ino, version, keys: targets, etag: '', size: 0 } }).catch(() => undefined);
      throw flushFailure(err, first);
    }
    return written;
  }

  private async writeFile(
    ino: InodeId,
    rec: InodeRecord,
    version: number,
    targets: string[],
    metadata: Record<string, string>,
  ): Promise<{ etag: string; size: number }> {
    const first = targets[0]!;
    const object = rec.object;
    const unchanged =
      object !== undefined &&
      !this.store.hasDirtyChunks(ino) &&
      rec.baseLimit === rec.size &&
      object.size === rec.size &&
      !this.reader.isPinned(ino);
    const begin = (uploadId: string) => this.log.run({ $case: 'beginFlush', value: { ino, version, keys: targets, uploadId } });
    await begin('');
    if (unchanged) {
      try {
        const copied = await this.objects.copy(object.key, first, { metadata, sourceEtag: object.etag });
        return { etag: copied.etag, size: rec.size };
      } catch (err) {
        if (!(err instanceof StoreError && (err.kind === 'changed' || err.kind === 'not-found'))) throw err;
        // The source changed under us: fall back to uploading what we can read.
      }
    }
    const size = rec.size;
    const partSize = this.partSize(size);
    if (size <= partSize) {
      const body = await this.reader.read(ino, 0, size);
      const bytes = body.length;
      const put = await this.objects.put(first, handOver(body), { metadata });
      return { etag: put.etag, size: bytes };
    }
    const uploadId = await this.objects.createMultipart(first, { metadata });
    try {
      await begin(uploadId);
      const partCount = Math.ceil(size / partSize);
      const parts: CompletedPart[] = new Array(partCount);
      let uploaded = 0;
      await this.forEachLimited(
        Array.from({ length: partCount }, (_, i) => i),
        this.options.uploadConcurrency,
        async (i) => {
          const sent = await sendPart(this.objects, this.reader, ino, { key: first, uploadId }, i + 1, i * partSize, Math.min(partSize, size - i * partSize));
          parts[i] = sent.part;
          uploaded += sent.bytes;
        },
      );
      const done = await this.objects.completeMultipart(first, uploadId, parts);
      return { etag: done.etag, size: uploaded };
    } catch (err) {
      // The failed flush forgets the upload: abort it, or the parts it stored would stay (and cost).
      await this.objects.abortMultipart(first, uploadId).catch(() => undefined);
      throw err;
    }
  }

  private partSize(size: number): number {
    const mib = 1024 * 1024;
    const wanted = Math.max(this.options.chunkSize, MIN_PART, Math.ceil(size / MAX_PARTS));
    return Math.ceil(wanted / mib) * mib;
  }

  /**
   * Before `key` is overwritten, every other inode whose unflushed content still comes from the
   * object at `key` (it was renamed away and not yet written to its new key) gets its content
   * into local chunk files and is pinned there until it is flushed itself.
   */
  private async protectReferrers(key: string, writer: InodeId): Promise<void> {
    for (const other of [...this.store.objectReferrers(key)]) {
      if (other === writer) continue;
      const rec = this.store.inode(other);
      if (!rec?.object || rec.object.key !== key) continue;
      this.reader.pin(other);
      const chunks = Math.ceil(Math.min(rec.baseLimit, rec.size) / this.options.chunkSize);
      for (let chunk = 0; chunk < chunks; chunk++) await this.reader.ensureLocal(other, rec, chunk);
    }
  }

  private async abandonFlush(ino: InodeId, rec: InodeRecord): Promise<void> {
    const flush = rec.flush!;
    if (flush.uploadId !== '' && flush.keys[0] !== undefined) {
      await this.objects.abortMultipart(flush.keys[0], flush.uploadId).catch(() => undefined);
    }
    await this.log.run({ $case: 'finishFlush', value: { ino, version: flush.version, keys: flush.keys, etag: '', size: 0 } });
  }

  /**
   * One pass deleting the objects named by tombstones that nothing maps to or reads from any more
   * (joining the pass already running, if there is one). Resolves with how many deletes failed.
   */
  private deleteTombstones(): Promise<number> {
    this.deleting ??= this.deletePass().finally(() => (this.deleting = undefined));
    return this.deleting;
  }

  private async deletePass(): Promise<number> {
    const keys = [...this.store.pendingDeletes()].filter((key) => this.isDeletable(key));
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += MAX_DELETE_BATCH) batches.push(keys.slice(i, i + MAX_DELETE_BATCH));
    let failures = 0;
    const failed = (count: number, err: unknown): void => {
      failures += count;
      this.lastDeleteError = err;
    };
    await this.forEachLimited(batches, this.backgroundConcurrency(DELETE_CONCURRENCY), async (batch) => {
      try {
        await this.withKeys(batch, async () => {
          const deletable = batch.filter((key) => this.isDeletable(key));
          const refused = await this.objects.deleteMany(deletable);
          for (const err of refused.values()) failed(1, err);
          // One log entry for the whole batch: a deleted object is one of thousands after an `rm -r`.
          const deleted = deletable.filter((key) => !refused.has(key));
          if (deleted.length === 0) return;
          try {
            await this.log.run({ $case: 'forgetTombstone', value: { key: '', keys: deleted } });
          } catch (err) {
            failed(deleted.length, err);
          }
        });
      } catch (err) {
        failed(batch.length, err);
      }
    });
    return failures;
  }

  private nextDeletable(): string | undefined {
    for (const key of this.store.pendingDeletes()) if (this.isDeletable(key)) return key;
    return undefined;
  }

  private isDeletable(key: string): boolean {
    if (this.store.tombstones.get(key) !== 0) return false;
    if (this.keys.inodeAt(key) !== undefined) return false;
    return !this.store.isObjectReferenced(key);
  }

  /** Run `fn` holding the per-key locks of `keys` (acquired in sorted order). */
  private async withKeys<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const releases: Array<() => void> = [];
    for (const key of sorted) {
      for (;;) {
        const held = this.keyLocks.get(key);
        if (!held) break;
        await held.catch(() => undefined);
      }
      let release!: () => void;
      this.keyLocks.set(key, new Promise<void>((resolve) => (release = resolve)));
      releases.push(() => {
        this.keyLocks.delete(key);
        release();
      });
    }
    try {
      return await fn();
    } finally {
      for (const release of releases) release();
    }
  }

  /** Run `fn` over `items` with at most `limit` at once; stops starting new ones after a failure. */
  private async forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
    let next = 0;
    let failed = false;
    const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length && !failed) {
        try {
          await fn(items[next++]!);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    });
    await Promise.all(workers);
  }
}

function flushFailure(err: unknown, key: string): FsError {
  if (err instanceof FsError) return err;
  return new FsError('EIO', `writing ${key}: ${(err as Error).message}`, { cause: err });
}
