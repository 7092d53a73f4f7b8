// The newest entries of a log, kept in memory so the hot reads (terms to match appends, committed
// entries to apply) do not go back to LMDB for what was just written. A cache only: LMDB is the
// truth. It holds a contiguous run of entries ending at the log's last index, or nothing; any write
// it cannot follow empties it. It never reads or writes storage itself.
import type { Entry } from '../types.js';

export class RecentEntries {
  private run: Entry[] = [];
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  /** Index of the oldest entry held (Infinity when empty). */
  firstIndex(): number {
    return this.run.length > 0 ? this.run[0]!.index : Infinity;
  }

  get(index: number): Entry | undefined {
    return this.run[index - this.firstIndex()];
  }

  /** Entries [lo, hi) (all held: lo >= firstIndex(), hi <= last + 1), at least one, within maxBytes. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const first = this.firstIndex();
    const result: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.run[i - first]!;
      bytes += entry.data.byteLength;
      if (result.length > 0 && bytes > maxBytes) break;
      result.push(entry);
    }
    return result;
  }

  /** `fresh` (consecutive) was written, replacing the log from fresh[0].index on. */
  written(fresh: Entry[]): void {
    if (fresh.length === 0) return;
    const first = this.firstIndex();
    const from = fresh[0]!.index;
    if (this.run.length > 0 && (from < first || from > first + this.run.length)) this.clear();
    if (this.run.length > 0) this.dropFrom(from);
    for (const entry of fresh) {
      this.run.push(entry);
      this.bytes += entry.data.byteLength;
    }
    let evict = 0;
    while (this.run.length - evict > this.maxEntries || (this.bytes > this.maxBytes && this.run.length - evict > 1)) {
      this.bytes -= this.run[evict]!.data.byteLength;
      evict++;
    }
    if (evict > 0) this.run.splice(0, evict);
  }

  /** The log no longer holds entries up to `index` (compaction, snapshot). */
  forgetThrough(index: number): void {
    const drop = Math.min(this.run.length, Math.max(0, index - this.firstIndex() + 1));
    for (let k = 0; k < drop; k++) this.bytes -= this.run[k]!.data.byteLength;
    if (drop > 0) this.run.splice(0, drop);
  }

  clear(): void {
    this.run = [];
    this.bytes = 0;
  }

  private dropFrom(index: number): void {
    const keep = index - this.firstIndex();
    for (let k = keep; k < this.run.length; k++) this.bytes -= this.run[k]!.data.byteLength;
    this.run.length = keep;
  }
}
