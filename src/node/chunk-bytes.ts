// A chunk's bytes as fetched from the bucket: the pieces the socket delivered, in order, never
// joined into one buffer (copying 16 MiB into freshly allocated memory costs more in page faults
// than the copy itself). Readers copy ranges out of it; the cache writes the pieces to disk as they are.
export class ChunkBytes {
  readonly length: number;
  /** starts[i]: offset of pieces[i] within the chunk. */
  private readonly starts: number[] = [];

  constructor(readonly pieces: readonly Buffer[]) {
    let at = 0;
    for (const piece of pieces) {
      this.starts.push(at);
      at += piece.length;
    }
    this.length = at;
  }

  /** Copies bytes [from, to) (clamped to the length) into `out` at `outOffset`; returns how many. */
  copy(out: Buffer, outOffset: number, from: number, to: number): number {
    const stop = Math.min(to, this.length);
    let copied = 0;
    for (let i = this.pieceAt(from); i < this.pieces.length && from + copied < stop; i++) {
      const piece = this.pieces[i]!;
      const start = from + copied - this.starts[i]!;
      const n = Math.min(piece.length - start, stop - from - copied);
      piece.copy(out, outOffset + copied, start, start + n);
      copied += n;
    }
    return copied;
  }

  /** All the bytes in one buffer (a copy unless there is a single piece). */
  joined(): Buffer {
    return this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces as Buffer[], this.length);
  }

  /** The index of the piece holding offset `at` (binary search over the starts). */
  private pieceAt(at: number): number {
    let lo = 0;
    let hi = this.pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
