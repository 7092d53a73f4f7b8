// Large Raft entry payloads, kept out of LMDB in append-only segment files. LMDB stores a value
// bigger than about half a page in contiguous "overflow" pages; once a compaction has freed
// thousands of them, every later commit searches a fragmented free list (measured: 128 KiB writes
// fell from ~300 MB/s to 4–14 MB/s after the first compaction). Here a payload is appended to the
// current segment file and LMDB keeps only where it is; a segment is deleted whole once compaction
// has passed the highest entry index stored in it.
//
// Files are named by a sequence number (seg-0000000001). A reopened store never appends to an old
// segment (its tail may hold payloads of a write that never committed): it starts the next one,
// numbered past every segment on disk or still referred to. Dropped segments are deleted only when
// the log storage says the commit that stopped referring to them is safe (removeDropped).
// This module knows nothing of LMDB or of entry layout; the log storage says what is still live.
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const fdatasync = promisify(fs.fdatasync);
const fsync = promisify(fs.fsync);

/** Where one payload is: a byte range of a segment file. */
export interface PayloadRef {
  segment: number;
  offset: number;
  length: number;
}

interface Segment {
  fd: number | undefined;
  /** Highest entry index with a payload here (of the live entries, for segments found on open). */
  maxIndex: number;
}

const NAME = /^seg-(\d{10})$/;

export class PayloadSegments {
  private readonly segments = new Map<number, Segment>();
  private current: { seq: number; size: number } | undefined;
  private nextSeq: number;
  /** Segments written to since the last sync(), and whether a new file's name must reach the disk. */
  private readonly unsynced = new Set<number>();
  private dirUnsynced = false;
  /** Segments nothing refers to any more, not deleted yet. */
  private dropped: Array<{ seq: number; fd: number | undefined }> = [];
  /** The sync() in progress, so that a second one waits for it. */
  private lastSync: Promise<void> = Promise.resolve();

  /**
   * Opens `dir` (creating it). `live` maps each segment that live entries point into to the highest
   * such entry index; every other segment file holds nothing anyone can read again and is deleted.
   * A live segment whose file is missing stays known (reading from it says so) and its number is
   * never given to a new segment.
   */
  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    live: ReadonlyMap<number, number>,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    let highest = 0;
    for (const name of fs.readdirSync(dir)) {
      const match = NAME.exec(name);
      if (!match) continue;
      const seq = Number(match[1]);
      highest = Math.max(highest, seq);
      if (!live.has(seq)) fs.rmSync(path.join(dir, name), { force: true });
    }
    for (const [seq, maxIndex] of live) {
      this.segments.set(seq, { fd: undefined, maxIndex });
      highest = Math.max(highest, seq);
    }
    this.nextSeq = highest + 1;
  }

  /** Appends `data` (the payload of entry `index`) and says where it went. */
  append(index: number, data: Uint8Array): PayloadRef {
    if (!this.current || (this.current.size > 0 && this.current.size + data.byteLength > this.segmentBytes)) this.startSegment();
    const current = this.current!;
    const segment = this.segments.get(current.seq)!;
    let written = 0;
    while (written < data.byteLength) {
      written += fs.writeSync(segment.fd!, data, written, data.byteLength - written, current.size + written);
    }
    const ref = { segment: current.seq, offset: current.size, length: data.byteLength };
    current.size += data.byteLength;
    segment.maxIndex = Math.max(segment.maxIndex, index);
    this.unsynced.add(current.seq);
    return ref;
  }

  /** The payload at `ref`, or undefined if the segment does not hold it (a damaged data directory). */
  read(ref: PayloadRef): Buffer | undefined {
    const segment = this.segments.get(ref.segment);
    if (!segment) return undefined;
    if (segment.fd === undefined) {
      try {
        segment.fd = fs.openSync(this.file(ref.segment), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    }
    const data = Buffer.allocUnsafe(ref.length);
    let done = 0;
    while (done < ref.length) {
      const n = fs.readSync(segment.fd, data, done, ref.length - done, ref.offset + done);
      if (n === 0) return undefined;
      done += n;
    }
    return data;
  }

  /** Forces every payload appended so far to the disk. */
  sync(): Promise<void> {
    const run = this.lastSync.then(() => this.syncNow());
    this.lastSync = run.catch(() => undefined);
    return run;
  }

  private async syncNow(): Promise<void> {
    const pending = [...this.unsynced];
    this.unsynced.clear();
    await Promise.all(pending.map((seq) => this.segments.get(seq)?.fd).filter((fd) => fd !== undefined).map((fd) => fdatasync(fd)));
    if (this.dirUnsynced) {
      this.dirUnsynced = false;
      const dirFd = fs.openSync(this.dir, 'r');
      try {
        await fsync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    }
  }

  /**
   * Forgets every segment holding nothing above `index` (the log no longer reaches below it). Its
   * file stays until removeDropped(): the log's record of the compaction may not be on disk yet.
   */
  dropThrough(index: number): void {
    for (const [seq, segment] of this.segments) {
      if (segment.maxIndex > index) continue;
      this.dropped.push({ seq, fd: segment.fd });
      this.segments.delete(seq);
      this.unsynced.delete(seq);
      if (this.current?.seq === seq) this.current = undefined;
    }
  }

  /** Deletes the segments dropped so far. */
  async removeDropped(): Promise<void> {
    const dropped = this.dropped;
    this.dropped = [];
    if (dropped.length === 0) return;
    // A sync() in progress may still be flushing one of them.
    await this.lastSync;
    for (const { seq, fd } of dropped) {
      if (fd !== undefined) fs.close(fd, () => undefined);
      // Off the event loop: dropping a big file's cached pages takes milliseconds. A file left
      // behind by a failed removal is found unreferenced and removed on the next open.
      fs.rm(this.file(seq), { force: true }, () => undefined);
    }
  }

  /** Closes every file; dropped segments not yet removed are removed on the next open. */
  close(): void {
    for (const segment of [...this.segments.values(), ...this.dropped]) {
      if (segment.fd !== undefined) fs.closeSync(segment.fd);
      segment.fd = undefined;
    }
    this.dropped = [];
    this.current = undefined;
  }

  private startSegment(): void {
    const seq = this.nextSeq++;
    const fd = fs.openSync(this.file(seq), 'wx+');
    this.segments.set(seq, { fd, maxIndex: 0 });
    this.current = { seq, size: 0 };
    this.dirUnsynced = true;
  }

  private file(seq: number): string {
    return path.join(this.dir, `seg-${String(seq).padStart(10, '0')}`);
  }
}
