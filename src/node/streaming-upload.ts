// A multipart upload that runs while a big file is still being written: each part is uploaded as
// soon as the file has grown past it, so that by the time the writer calls fsync (or closes) most
// of the file is already in the bucket. A write into a part already uploaded marks it stale; it is
// uploaded again when the upload finishes. It only moves bytes: the write-back decides when to
// start, finish or abort, and records the outcome in the log.
import type { InodeId } from '../inode/types.js';
import type { ContentReader } from './content-reader.js';
import { sendPart } from './part-upload.js';
import type { CompletedPart, ObjectStore } from './s3/object-store.js';

interface PartState {
  etag?: string;
  /** Written to since (or while) it was uploaded. */
  stale: boolean;
  pending?: Promise<void>;
}

export class StreamingUpload {
  private readonly parts = new Map<number, PartState>();
  private failure: unknown;

  constructor(
    readonly ino: InodeId,
    readonly key: string,
    readonly uploadId: string,
    readonly partSize: number,
    private readonly objects: ObjectStore,
    private readonly reader: ContentReader,
    private readonly concurrency: number,
  ) {}

  noteWrite(offset: number, length: number): void {
    const first = Math.floor(offset / this.partSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / this.partSize);
    for (let p = first; p <= last; p++) {
      const part = this.parts.get(p);
      if (part) part.stale = true;
    }
  }

  /** Start uploading the parts that lie wholly below `size` and are not uploaded yet. */
  pump(size: number): void {
    const full = Math.floor(size / this.partSize);
    for (let p = 0; p < full && this.inFlight() < this.concurrency; p++) {
      const part = this.parts.get(p);
      if (!part) this.upload(p, this.partSize);
    }
  }

  /**
   * Upload every part of a `size`-byte file that is missing or stale, wait for all of them, and
   * return the list to complete the upload with. Throws if any part failed. Parts a writer keeps
   * dirtying are re-sent a few times only: the caller's version check tells whether the object it
   * completes is the file's latest content or an earlier one (which is still a consistent base).
   */
  async finish(size: number): Promise<CompletedPart[]> {
    const count = Math.max(1, Math.ceil(size / this.partSize));
    for (let round = 0; ; round++) {
      await Promise.all([...this.parts.values()].map((p) => p.pending));
      if (this.failure !== undefined) throw this.failure;
      const missing: number[] = [];
      for (let p = 0; p < count; p++) {
        const part = this.parts.get(p);
        if (!part?.etag || (part.stale && round < 3)) missing.push(p);
      }
      if (missing.length === 0) break;
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(this.concurrency, missing.length) }, async () => {
          while (next < missing.length) {
            const p = missing[next++]!;
            await this.upload(p, Math.min(this.partSize, size - p * this.partSize));
          }
        }),
      );
    }
    return Array.from({ length: count }, (_, p) => ({ partNumber: p + 1, etag: this.parts.get(p)!.etag! }));
  }

  async abort(): Promise<void> {
    await Promise.allSettled([...this.parts.values()].map((p) => p.pending));
    await this.objects.abortMultipart(this.key, this.uploadId).catch(() => undefined);
  }

  private inFlight(): number {
    let n = 0;
    for (const part of this.parts.values()) if (part.pending) n++;
    return n;
  }

  private upload(p: number, length: number): Promise<void> {
    const part: PartState = this.parts.get(p) ?? { stale: false };
    part.stale = false;
    this.parts.set(p, part);
    const run = (async () => {
      const sent = await sendPart(this.objects, this.reader, this.ino, this, p + 1, p * this.partSize, length);
      part.etag = sent.part.etag;
    })()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        if (part.pending === run) part.pending = undefined;
      });
    part.pending = run;
    return run;
  }
}
