// How an inode's attributes are stored as S3 user metadata (x-amz-meta-*), in the conventions
// s3fs and rclone use, so other tools read the same modes, owners and times: `mode` (decimal
// st_mode including the file type), `uid`, `gid`, `mtime` and `atime` (seconds, fractional).
// Symlinks are objects whose body is the target and whose mode says S_IFLNK (as s3fs does).
// Extended attributes travel in one `xattrs` entry (JSON of base64 values); only the names
// isStoredXattrName allows are stored or read back.
import { InodeKind, type InodeRecord } from '../inode/types.js';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export function fileTypeBits(kind: InodeKind): number {
  return kind === InodeKind.Dir ? S_IFDIR : kind === InodeKind.Symlink ? S_IFLNK : S_IFREG;
}

/**
 * Whether tidefs keeps an extended attribute of this name: every name outside the security.* and
 * system.* namespaces. The kernel gives those a meaning tidefs does not implement (file
 * capabilities, SELinux labels, POSIX ACLs): storing them would only pretend to (an ACL nobody
 * enforces), or let whoever can write object metadata grant capabilities to programs run from the
 * mount. The FUSE layer answers getxattr for them itself (native/tidefs-fuse.c).
 */
export function isStoredXattrName(name: string): boolean {
  return !name.startsWith('security.') && !name.startsWith('system.');
}

export function toObjectMetadata(rec: InodeRecord): Record<string, string> {
  const meta: Record<string, string> = {
    mode: String(fileTypeBits(rec.kind) | rec.perm),
    uid: String(rec.uid),
    gid: String(rec.gid),
    mtime: (rec.mtime / 1000).toFixed(3),
    atime: (rec.atime / 1000).toFixed(3),
  };
  const xattrs = Object.entries(rec.xattrs ?? {}).filter(([k]) => isStoredXattrName(k));
  if (xattrs.length > 0) {
    meta.xattrs = JSON.stringify(Object.fromEntries(xattrs.map(([k, v]) => [k, Buffer.from(v).toString('base64')])));
  }
  return meta;
}

export interface ParsedObjectMetadata {
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
  atimeMs?: number;
  isSymlink: boolean;
  xattrs: Record<string, Buffer>;
}

/** Attributes found in an object's metadata; anything missing or malformed is left out. */
export function fromObjectMetadata(meta: Record<string, string> | undefined): ParsedObjectMetadata {
  const m = meta ?? {};
  const int = (v: string | undefined): number | undefined => {
    if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  const seconds = (v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    return Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
  };
  const mode = int(m.mode);
  const xattrs: Record<string, Buffer> = {};
  if (m.xattrs) {
    try {
      const parsed = JSON.parse(m.xattrs) as Record<string, unknown>;
      for (const [k, v] of Object.entries(parsed)) {
        if (typeof v === 'string' && isStoredXattrName(k)) xattrs[k] = Buffer.from(v, 'base64');
      }
    } catch {
      // Not ours or damaged: ignore rather than fail the lookup.
    }
  }
  return {
    mode: mode === undefined ? undefined : mode & 0o7777,
    uid: int(m.uid),
    gid: int(m.gid),
    mtimeMs: seconds(m.mtime),
    atimeMs: seconds(m.atime),
    isSymlink: mode !== undefined && (mode & S_IFMT) === S_IFLNK,
    xattrs,
  };
}
