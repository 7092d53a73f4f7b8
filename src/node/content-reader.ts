// Reads file content: each byte comes from the chunk file when it was written locally or is
// cached there, from the inode's bucket object otherwise (fetched a whole chunk at a time with a
// ranged GET, shared by concurrent readers, installed into the chunk file), or is a zero (sparse
// regions, past a truncation). Sequential readers get read-ahead: the next chunks are fetched
// while the current one is consumed. Keeps the chunk cache under its size limit by evicting clean
// chunks; never evicts a chunk with written data, nor those of a pinned inode (whose bytes the
// cache alone holds). Tells the write-back which byte ranges its base object still holds unchanged.
//
// A fetched chunk's buffer goes back to the object store (recycle) once nothing can use it: it has
// left the recently-fetched chunks and no install or read holds a lease on it, checked again an
// event-loop turn later. So a reader given the buffer either uses it before its next await (a
// view for the kernel, a copy) or leases it first.
import type { ChunkStore } from '../inode/chunk-store.js';
import { FsError } from '../inode/errors.js';
import { coversRange, splitRange } from '../inode/intervals.js';
import type { MetadataStore } from '../inode/metadata-store.js';
import type { InodeId, InodeRecord, ObjectVersion } from '../inode/types.js';
import { StoreError, type ObjectStore, type PartSource } from './s3/object-store.js';

export interface ContentReaderOptions {
  chunkSize: number;
  /** Chunks fetched ahead of a sequential reader, at most. */
  readAheadChunks: number;
  /** Fetches in flight at once, read-ahead included. */
  maxFetches: number;
  /** Start evicting clean chunks above this many cached bytes... */
  cacheHighWatermark: number;
  /** ...down to this many. */
  cacheLowWatermark: number;
}

interface SequentialState {
  nextOffset: number;
  window: number;
}

/** How far from the end of the previous read a read may start and still count as sequential. */
const SEQUENTIAL_SLACK = 8 * 1024 * 1024;

/** Bytes of recently fetched chunks kept in memory (at least two chunks), so reads need not wait for the disk. */
const RECENT_BYTES = 256 * 1024 * 1024;

export class ContentReader {
  private readonly fetches = new Map<string, Promise<Buffer>>();
  private readonly recent = new Map<string, Buffer>();
  /** Fetched buffers in use outside `recent` across awaits (an install, an assembling read), and by how many. */
  private readonly leases = new Map<Buffer, number>();
  /** Fetched buffers to be handed back to the store at the next turn of the event loop. */
  private readonly recycling = new Set<Buffer>();
  private recentBytes = 0;
  private readonly sequential = new Map<InodeId, SequentialState>();
  private readonly pinned = new Set<InodeId>();
  private fetchesInFlight = 0;

  constructor(
    private readonly store: MetadataStore,
    private readonly chunks: ChunkStore,
    private readonly objects: ObjectStore,
    private readonly options: ContentReaderOptions,
    /** Told when the object behind a clean inode is gone or changed, so the namespace can be refreshed. */
    private readonly onObjectVanished: (ino: InodeId, etag: string) => void,
  ) {}

  /** Bytes [offset, offset + length) of the file, fewer at its end, in a new buffer the caller owns. */
  async read(ino: InodeId, offset: number, length: number): Promise<Buffer> {
    const rec = this.store.inode(ino);
    if (!rec) throw new FsError('ENOENT', `inode ${ino}`);
    return this.readInto(ino, rec, offset, Math.min(offset + length, rec.size));
  }

  /**
   * The same bytes, possibly as a view of a chunk held in memory (no copy): for a caller that only
   * reads them before its next await, and never changes or hands over the buffer.
   */
  async readShared(ino: InodeId, offset: number, length: number): Promise<Buffer> {
    const rec = this.store.inode(ino);
    if (!rec) throw new FsError('ENOENT', `inode ${ino}`);
    const end = Math.min(offset + length, rec.size);
    const source = end > offset ? this.baseViewSource(ino, rec, offset, end) : undefined;
    if (!source) return this.readInto(ino, rec, offset, end);
    // Read-ahead starts now, not once this read is served.
    this.noteAccess(ino, rec, offset, end);
    const base = await source;
    const chunk = Math.floor(offset / this.options.chunkSize);
    const chunkStart = chunk * this.options.chunkSize;
    // While the chunk was fetched the file may have been written, cut or its object replaced.
    const now = this.store.inode(ino);
    if (!now) return Buffer.alloc(0);
    const unchanged =
      now.object?.etag === rec.object?.etag &&
      this.store.writtenRanges(ino, chunk) === undefined &&
      end - chunkStart <= Math.min(base.length, this.baseEnd(now, chunk)) &&
      end <= now.size;
    if (unchanged) return base.subarray(offset - chunkStart, end - chunkStart);
    return this.readInto(ino, now, offset, Math.min(end, now.size), false);
  }

  private async readInto(ino: InodeId, rec: InodeRecord, offset: number, end: number, noteAccess = true): Promise<Buffer> {
    if (end <= offset) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(end - offset);
    const size = this.options.chunkSize;
    const parts: Array<Promise<void>> = [];
    for (let pos = offset; pos < end; ) {
      const chunk = Math.floor(pos / size);
      const stop = Math.min((chunk + 1) * size, end);
      parts.push(this.readChunk(ino, rec, chunk, pos - chunk * size, stop - chunk * size, out, pos - offset));
      pos = stop;
    }
    // Read-ahead starts now, not once this read is served.
    if (noteAccess) this.noteAccess(ino, rec, offset, end);
    // Every part must have stopped writing into `out` before it is returned.
    const settled = await Promise.allSettled(parts);
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    return out;
  }

  /**
   * The fetched chunk (in memory, or being fetched) that holds all of [offset, end) as its object
   * bytes, when nothing of it was written: the read can answer with a view of it, copying nothing.
   */
  private baseViewSource(ino: InodeId, rec: InodeRecord, offset: number, end: number): Promise<Buffer> | undefined {
    const size = this.options.chunkSize;
    const chunk = Math.floor(offset / size);
    const object = rec.object;
    if (!object || Math.floor((end - 1) / size) !== chunk || end - chunk * size > this.baseEnd(rec, chunk)) return undefined;
    if (this.store.writtenRanges(ino, chunk) !== undefined) return undefined;
    const from = offset - chunk * size;
    const to = end - chunk * size;
    if (!this.recent.has(fetchKey(ino, chunk, object.etag)) && !this.needsFetch(ino, rec, chunk, from, to)) return undefined;
    return this.fetch(ino, object, chunk);
  }

  /**
   * Where the file's bytes [offset, offset + length) can be copied from server-side: the same range
   * of its base object, when none of them was written since and all lie below the base's end (no
   * truncation cut into them). undefined when any of them must come from here.
   */
  unchangedBase(ino: InodeId, offset: number, length: number): PartSource | undefined {
    const rec = this.store.inode(ino);
    const object = rec?.object;
    const end = offset + length;
    if (!rec || !object || length <= 0 || end > Math.min(rec.baseLimit, rec.size, object.size)) return undefined;
    if (this.pinned.has(ino)) return undefined; // its base object is being replaced
    const size = this.options.chunkSize;
    for (let chunk = Math.floor(offset / size); chunk * size < end; chunk++) {
      const ranges = this.store.writtenRanges(ino, chunk);
      if (!ranges) continue;
      const from = Math.max(0, offset - chunk * size);
      const to = Math.min(size, end - chunk * size);
      for (const segment of splitRange(ranges, from, to)) if (segment.covered) return undefined;
    }
    return { key: object.key, etag: object.etag, offset, length };
  }

  /** Make sure the base bytes of `chunk` are in the local chunk file (used before uploads too). */
  async ensureLocal(ino: InodeId, rec: InodeRecord, chunk: number): Promise<void> {
    if (!this.needsFetch(ino, rec, chunk)) return;
    await this.fetch(ino, rec.object!, chunk);
  }

  private async readChunk(
    ino: InodeId,
    rec: InodeRecord,
    chunk: number,
    from: number,
    to: number,
    out: Buffer,
    outOffset: number,
  ): Promise<void> {
    const object = rec.object;
    const fetched = object && this.recent.get(fetchKey(ino, chunk, object.etag));
    if (fetched && this.store.writtenRanges(ino, chunk) === undefined) {
      copyBase(fetched, from, to, this.baseEnd(rec, chunk), out, outOffset);
      return;
    }
    for (let attempt = 0; ; attempt++) {
      if (!this.needsFetch(ino, rec, chunk, from, to)) {
        if (!this.chunks.exists(ino, chunk)) {
          out.fill(0, outOffset, outOffset + (to - from));
          return;
        }
        if (await this.chunks.read(ino, chunk, from, to - from, out, outOffset)) return;
        if (attempt > 2) throw new FsError('EIO', `chunk ${chunk} of inode ${ino} keeps disappearing`);
        continue;
      }
      const base = await this.fetch(ino, rec.object!, chunk);
      this.lease(base);
      try {
        await this.assemble(ino, rec, chunk, from, to, base, out, outOffset);
      } finally {
        this.unlease(base);
      }
      return;
    }
  }

  /** Whether any byte of [from, to) of the chunk must come from the bucket and is not cached. */
  private needsFetch(ino: InodeId, rec: InodeRecord, chunk: number, from = 0, to = this.options.chunkSize): boolean {
    const object = rec.object;
    if (!object) return false;
    const baseEnd = this.baseEnd(rec, chunk);
    if (from >= baseEnd) return false;
    if (this.chunks.holds(ino, chunk) === object.etag) return false;
    const ranges = this.store.writtenRanges(ino, chunk) ?? [];
    return !coversRange(ranges, from, Math.min(to, baseEnd));
  }

  private baseEnd(rec: InodeRecord, chunk: number): number {
    const size = this.options.chunkSize;
    return Math.max(0, Math.min(rec.baseLimit - chunk * size, size));
  }

  /** Written bytes from the chunk file, base bytes from `base`, zeros elsewhere. */
  private async assemble(
    ino: InodeId,
    rec: InodeRecord,
    chunk: number,
    from: number,
    to: number,
    base: Buffer,
    out: Buffer,
    outOffset: number,
  ): Promise<void> {
    const ranges = this.store.writtenRanges(ino, chunk) ?? [];
    const baseEnd = this.baseEnd(rec, chunk);
    for (const seg of splitRange(ranges, from, to)) {
      const at = outOffset + (seg.start - from);
      if (seg.covered) {
        if (!(await this.chunks.read(ino, chunk, seg.start, seg.end - seg.start, out, at))) {
          throw new FsError('EIO', `written chunk ${chunk} of inode ${ino} is missing`);
        }
        continue;
      }
      copyBase(base, seg.start, seg.end, baseEnd, out, at);
    }
  }

  /** The base bytes of one chunk of `object`, fetched once however many readers want them. */
  private fetch(ino: InodeId, object: ObjectVersion, chunk: number): Promise<Buffer> {
    const key = fetchKey(ino, chunk, object.etag);
    const fetched = this.recent.get(key);
    if (fetched) return Promise.resolve(fetched);
    let pending = this.fetches.get(key);
    if (!pending) {
      pending = this.download(ino, object, chunk).finally(() => this.fetches.delete(key));
      this.fetches.set(key, pending);
    }
    return pending;
  }

  private async download(ino: InodeId, object: ObjectVersion, chunk: number): Promise<Buffer> {
    const size = this.options.chunkSize;
    const start = chunk * size;
    const length = Math.max(0, Math.min(size, object.size - start));
    this.fetchesInFlight++;
    let data: Buffer;
    try {
      data = length === 0 ? Buffer.alloc(0) : await this.objects.getRange(object.key, start, length, object.etag);
      if (data.length !== length) throw new StoreError('unavailable', `${object.key}: ${data.length} bytes came for a ${length}-byte range`);
    } catch (err) {
      if (err instanceof StoreError && (err.kind === 'changed' || err.kind === 'not-found')) {
        this.onObjectVanished(ino, object.etag);
        throw new FsError('EIO', `${object.key} changed or disappeared in the bucket`, { cause: err });
      }
      throw new FsError('EIO', `reading ${object.key}: ${(err as Error).message}`, { cause: err });
    } finally {
      this.fetchesInFlight--;
    }
    this.remember(fetchKey(ino, chunk, object.etag), data);
    this.lease(data);
    void this.install(ino, object, chunk, data)
      .catch(() => {
        // Not cached on disk this time; the next read fetches it again.
      })
      .finally(() => this.unlease(data));
    return data;
  }

  private remember(key: string, data: Buffer): void {
    this.forgetRecent(key);
    this.recent.set(key, data);
    this.recentBytes += data.length;
    for (const old of this.recent.keys()) {
      if (this.recentBytes <= RECENT_BYTES || this.recent.size <= 2) break;
      this.forgetRecent(old);
    }
  }

  private forgetRecent(key: string): void {
    const data = this.recent.get(key);
    if (!data) return;
    this.recent.delete(key);
    this.recentBytes -= data.length;
    this.recycleWhenUnused(data);
  }

  private lease(data: Buffer): void {
    this.leases.set(data, (this.leases.get(data) ?? 0) + 1);
  }

  private unlease(data: Buffer): void {
    const left = (this.leases.get(data) ?? 1) - 1;
    if (left > 0) {
      this.leases.set(data, left);
      return;
    }
    this.leases.delete(data);
    this.recycleWhenUnused(data);
  }

  /**
   * Hands a fetched buffer back to the store an event-loop turn after nothing held it, if nothing
   * took it up meanwhile: a reader resumed in this turn with the buffer has used or leased it by then.
   */
  private recycleWhenUnused(data: Buffer): void {
    if (!this.objects.recycle || this.leases.has(data) || this.recycling.has(data)) return;
    this.recycling.add(data);
    setImmediate(() => {
      this.recycling.delete(data);
      if (this.leases.has(data)) return;
      for (const held of this.recent.values()) if (held === data) return;
      this.objects.recycle?.(data);
    });
  }

  /**
   * Put fetched base bytes into the chunk file, if they are still the inode's: a clean chunk gets a
   * new file (written in the background, swapped in only if the chunk is still clean), a chunk with
   * written ranges gets the bytes around them.
   */
  private async install(ino: InodeId, object: ObjectVersion, chunk: number, data: Buffer): Promise<void> {
    const current = (): InodeRecord | undefined => {
      const rec = this.store.inode(ino);
      return rec?.object?.etag === object.etag ? rec : undefined;
    };
    if (!current()) return;
    if (!this.store.writtenRanges(ino, chunk)) {
      const replacement = await this.chunks.prepareReplacement(ino, chunk, data);
      const rec = current();
      if (rec && !this.store.writtenRanges(ino, chunk) && this.chunks.holds(ino, chunk) !== object.etag) {
        this.chunks.adoptSync(ino, chunk, object.etag, replacement, Math.min(this.baseEnd(rec, chunk), data.length));
        this.evictIfNeeded();
        return;
      }
      this.chunks.discardReplacement(replacement);
    }
    const rec = current();
    const ranges = this.store.writtenRanges(ino, chunk);
    if (!rec || !ranges) return;
    const baseEnd = Math.min(this.baseEnd(rec, chunk), data.length);
    const gaps: number[] = [];
    for (const seg of splitRange(ranges, 0, baseEnd)) if (!seg.covered) gaps.push(seg.start, seg.end);
    this.chunks.fillSync(ino, chunk, object.etag, data, gaps);
    this.evictIfNeeded();
  }

  evictIfNeeded(): void {
    if (this.chunks.usedBytes() <= this.options.cacheHighWatermark) return;
    this.chunks.evict(
      this.options.cacheLowWatermark,
      (ino, chunk) => !this.pinned.has(ino) && this.store.writtenRanges(ino, chunk) === undefined,
    );
  }

  /**
   * Keep every cached chunk of the inode until unpin(): its base object is about to be overwritten
   * while the inode still reads from it, so the cache holds the only copy of those bytes.
   */
  pin(ino: InodeId): void {
    this.pinned.add(ino);
  }

  unpin(ino: InodeId): void {
    this.pinned.delete(ino);
  }

  isPinned(ino: InodeId): boolean {
    return this.pinned.has(ino);
  }

  /** Sequential access detection and read-ahead. */
  private noteAccess(ino: InodeId, rec: InodeRecord, offset: number, end: number): void {
    // The kernel's own read-ahead sends several requests at once, so they arrive slightly out of
    // order: a read near where the last one ended still counts as sequential.
    const state = this.sequential.get(ino);
    const sequential = state !== undefined && Math.abs(offset - state.nextOffset) <= SEQUENTIAL_SLACK;
    if (!state || !sequential) {
      this.sequential.set(ino, { nextOffset: end, window: offset === 0 ? 1 : 0 });
      if (offset !== 0) return;
    } else {
      state.nextOffset = Math.max(state.nextOffset, end);
      state.window = Math.min(Math.max(1, state.window * 2), this.options.readAheadChunks);
    }
    if (!rec.object) return;
    const window = this.sequential.get(ino)!.window;
    const size = this.options.chunkSize;
    const current = Math.floor((end - 1) / size);
    const last = Math.floor((Math.min(rec.baseLimit, rec.size) - 1) / size);
    for (let chunk = current + 1; chunk <= Math.min(current + window, last); chunk++) {
      if (this.fetchesInFlight >= this.options.maxFetches) break;
      if (!this.needsFetch(ino, rec, chunk)) continue;
      this.fetch(ino, rec.object, chunk).catch(() => {
        // A failed read-ahead is retried by the read that needs the chunk.
      });
    }
  }


  forget(ino: InodeId): void {
    this.sequential.delete(ino);
  }
}

const fetchKey = (ino: InodeId, chunk: number, etag: string): string => `${ino}:${chunk}:${etag}`;

/** Base bytes [from, to) of a chunk: from `base` below both baseEnd and its length, zeros above. */
function copyBase(base: Buffer, from: number, to: number, baseEnd: number, out: Buffer, outOffset: number): void {
  const stop = Math.max(from, Math.min(to, baseEnd, base.length));
  if (stop > from) base.copy(out, outOffset, from, stop);
  if (stop < to) out.fill(0, outOffset + (stop - from), outOffset + (to - from));
}
