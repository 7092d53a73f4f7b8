// Brings the bucket's view of the namespace into the inode state machine, lazily: a directory is
// listed (ListObjectsV2 with a delimiter, page by page) the first time it is looked into, again
// once its listing is older than the metadata TTL, and at once when a read found a file's object
// changed or gone; an entry's attributes are read from its object metadata (HEAD) the first time
// they are asked for, with the entries after it in the directory read ahead. Results go into the
// log as commands; this module never writes the tables itself. Concurrent callers share one
// listing / HEAD.
import { FsError } from '../inode/errors.js';
import type { BucketKeys } from '../inode/bucket-keys.js';
import type { MetadataStore } from '../inode/metadata-store.js';
import { InodeKind, type InodeId, type InodeRecord } from '../inode/types.js';
import type { InodeLog } from './inode-log.js';
import { fromObjectMetadata } from './object-metadata.js';
import { StoreError, type ObjectStore } from './s3/object-store.js';

const LIST_PAGE = 1000;
/** Entries after one whose attributes were missing that are loaded ahead... */
const ATTRIBUTE_READ_AHEAD = 32;
/** ...with at most this many of those HEADs in flight (across directories). */
const ATTRIBUTE_READS_AHEAD_IN_FLIGHT = 64;

export class NamespaceLoader {
  private readonly listings = new Map<InodeId, Promise<void>>();
  private readonly heads = new Map<InodeId, Promise<void>>();
  private readingAhead = 0;

  constructor(
    private readonly store: MetadataStore,
    private readonly keys: BucketKeys,
    private readonly objects: ObjectStore,
    private readonly log: InodeLog,
    /** The state machine's applied index: a listing's generation. */
    private readonly appliedIndex: () => number,
    private readonly ttlMs: number,
  ) {}

  /** Make sure the directory's entries reflect the bucket as of at most ttlMs ago. */
  ensureListed(dir: InodeId): Promise<void> {
    const rec = this.store.inode(dir);
    if (!rec || rec.kind !== InodeKind.Dir || rec.orphan) return Promise.resolve();
    if (rec.listedAt !== undefined && Date.now() - rec.listedAt < this.ttlMs) return Promise.resolve();
    return this.listShared(dir);
  }

  /**
   * How much longer (ms) the directory's listing stays current: what it says about the entries may
   * be cached that long without outliving the TTL. 0 when the directory is not listed.
   */
  listingFreshMs(dir: InodeId): number {
    const listedAt = this.store.inode(dir)?.listedAt;
    return listedAt === undefined ? 0 : Math.max(0, listedAt + this.ttlMs - Date.now());
  }

  /**
   * A read found the inode's object (ETag `etag`) changed or gone in the bucket: its directories
   * are listed again now, so that the file shows the bucket's current object (or is gone) for the
   * next open. Waiting for a lookup is not enough: the kernel keeps a name, and does not ask for
   * it again, while its directory's listing is current.
   */
  async objectVanished(ino: InodeId, etag: string): Promise<void> {
    await this.log.run({ $case: 'objectVanished', value: { ino, etag } });
    await Promise.all(Array.from(this.store.links(ino), (link) => this.relist(link.parent)));
  }

  /** Lists the directory anew, after the listing already running (if any), which may predate what changed. */
  private async relist(dir: InodeId): Promise<void> {
    await this.listings.get(dir)?.catch(() => undefined);
    const rec = this.store.inode(dir);
    if (rec?.kind === InodeKind.Dir && !rec.orphan) await this.listShared(dir);
  }

  /** The directory's listing: the one running, or a new one. */
  private listShared(dir: InodeId): Promise<void> {
    return shareRunning(this.listings, dir, () => this.list(dir));
  }

  /** List a directory and every directory below it (before a directory is renamed). */
  async ensureSubtreeListed(dir: InodeId): Promise<void> {
    await this.ensureListed(dir);
    const subdirs: InodeId[] = [];
    for (const child of this.store.children(dir)) {
      if (this.store.inode(child.ino)?.kind === InodeKind.Dir) subdirs.push(child.ino);
    }
    for (const sub of subdirs) await this.ensureSubtreeListed(sub);
  }

  /**
   * The inode's record with its attributes known (read once from its object's metadata), or
   * undefined if there is no such inode. When they were not known, the next entries of its
   * directory are read ahead too: whoever stats one entry of a listed directory (`ls -l`, a loader
   * walking a model directory) usually stats the next ones.
   */
  async loadedRecord(ino: InodeId): Promise<InodeRecord | undefined> {
    const rec = this.store.inode(ino);
    if (!rec || rec.metaLoaded) return rec;
    const pending = this.loadAttributesOnce(ino);
    this.readAttributesAhead(ino);
    await pending;
    return this.store.inode(ino);
  }

  private loadAttributesOnce(ino: InodeId): Promise<void> {
    return shareRunning(this.heads, ino, () => this.loadAttributes(ino));
  }

  /** Start loading the attributes of the entries after `ino` in its directory (name order). */
  private readAttributesAhead(ino: InodeId): void {
    const link = this.store.firstLink(ino);
    if (!link) return;
    let looked = 0;
    for (const entry of this.store.children(link.parent, link.name)) {
      if (++looked > ATTRIBUTE_READ_AHEAD || this.readingAhead >= ATTRIBUTE_READS_AHEAD_IN_FLIGHT) return;
      if (this.heads.has(entry.ino) || this.store.inode(entry.ino)?.metaLoaded !== false) continue;
      this.readingAhead++;
      this.loadAttributesOnce(entry.ino)
        .catch(() => {
          // Read ahead only: the entry's own getattr tries again and reports the failure.
        })
        .finally(() => this.readingAhead--);
    }
  }

  private async list(dir: InodeId): Promise<void> {
    const prefix = this.keys.childPrefix(dir);
    if (prefix === undefined) return;
    const generation = this.appliedIndex();
    let token: string | undefined;
    try {
      do {
        const page = await this.objects.list(prefix, { delimiter: '/', token, maxKeys: LIST_PAGE });
        const files = [];
        let hasMarker = false;
        for (const obj of page.objects) {
          const name = obj.key.slice(prefix.length);
          if (name === '') hasMarker = true;
          else if (!name.includes('/')) files.push({ name, size: obj.size, etag: obj.etag, mtimeMs: obj.mtime.getTime() });
        }
        const dirs = page.prefixes.map((p) => p.slice(prefix.length, -1)).filter((n) => n !== '' && !n.includes('/'));
        await this.log.run({ $case: 'mergeListing', value: { dir, generation, files, dirs, hasMarker } });
        token = page.nextToken;
      } while (token);
    } catch (err) {
      throw storeFailure(err, `listing ${prefix}`);
    }
    await this.log.run({ $case: 'finishListing', value: { dir, generation } });
  }

  private async loadAttributes(ino: InodeId): Promise<void> {
    const rec = this.store.inode(ino);
    if (!rec) return;
    const key = rec.kind === InodeKind.Dir ? this.keys.keysOf(ino, InodeKind.Dir)[0] : rec.object?.key;
    let info;
    try {
      info = key && key !== '' ? await this.objects.head(key) : undefined;
    } catch (err) {
      throw storeFailure(err, `reading attributes of ${key}`);
    }
    const meta = fromObjectMetadata(info?.metadata);
    let symlinkTarget: string | undefined;
    if (info && meta.isSymlink && rec.kind === InodeKind.File) {
      try {
        symlinkTarget = (await this.objects.getRange(info.key, 0, Math.min(info.size, 4096), info.etag)).toString('utf8');
      } catch (err) {
        throw storeFailure(err, `reading symlink ${key}`);
      }
    }
    // HEAD's Last-Modified has whole seconds; the listing that found this very object was finer
    // (and a replaced object's time was made to differ from its predecessor's): keep that.
    const listedTime = info !== undefined && rec.kind !== InodeKind.Dir && rec.object?.etag === info.etag;
    await this.log.run({
      $case: 'loadObjectMeta',
      value: {
        ino,
        etag: info?.etag ?? rec.object?.etag ?? '',
        size: info?.size ?? rec.size,
        mtimeMs: meta.mtimeMs ?? (listedTime ? rec.mtime : info?.mtime.getTime()) ?? rec.mtime,
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        atimeMs: meta.atimeMs,
        symlinkTarget,
        xattrs: meta.xattrs,
      },
    });
  }
}

/** The work `running` holds for `key`, or new work from `start`, held there until it settles. */
function shareRunning<K>(running: Map<K, Promise<void>>, key: K, start: () => Promise<void>): Promise<void> {
  let pending = running.get(key);
  if (!pending) {
    pending = start().finally(() => running.delete(key));
    running.set(key, pending);
  }
  return pending;
}

/** A bucket failure while loading metadata, as the errno the operation reports. */
export function storeFailure(err: unknown, what: string): FsError {
  if (err instanceof FsError) return err;
  if (err instanceof StoreError && err.kind === 'access-denied') return new FsError('EACCES', `${what}: ${err.message}`, { cause: err });
  return new FsError('EIO', `${what}: ${(err as Error).message}`, { cause: err });
}
