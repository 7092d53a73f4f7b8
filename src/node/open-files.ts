// Which inodes are open on this node, and when each was last closed. The filesystem updates it;
// the write-back reads it to decide when a closed file is due to be flushed.
import type { InodeId } from '../inode/types.js';

export class OpenFileTable {
  private readonly opened = new Map<InodeId, number>();
  private readonly closedAt = new Map<InodeId, number>();

  openCount(ino: InodeId): number {
    return this.opened.get(ino) ?? 0;
  }

  lastClosed(ino: InodeId): number | undefined {
    return this.closedAt.get(ino);
  }

  open(ino: InodeId): void {
    this.opened.set(ino, this.openCount(ino) + 1);
    this.closedAt.delete(ino);
  }

  /** Returns how many opens remain. */
  close(ino: InodeId): number {
    const count = this.openCount(ino) - 1;
    if (count > 0) {
      this.opened.set(ino, count);
      return count;
    }
    this.opened.delete(ino);
    this.closedAt.set(ino, Date.now());
    return 0;
  }

  /** The inode was flushed or removed: nothing to remember about its last close. */
  forget(ino: InodeId): void {
    this.closedAt.delete(ino);
  }
}
