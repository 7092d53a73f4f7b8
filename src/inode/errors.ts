// The one error type of the filesystem boundary: every failure a filesystem operation can report
// is an FsError carrying its POSIX error name. src/fuse maps the names to errno numbers.

export type FsErrorCode =
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EINVAL'
  | 'ENAMETOOLONG'
  | 'EIO'
  | 'EPERM'
  | 'EACCES'
  | 'EXDEV'
  | 'ENOSPC'
  | 'ENODATA'
  | 'ERANGE'
  | 'E2BIG'
  | 'EBADF'
  | 'EFBIG'
  | 'EROFS'
  | 'ENOTSUP';

export class FsError extends Error {
  constructor(
    readonly code: FsErrorCode,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ? `${code}: ${message}` : code, options);
    this.name = 'FsError';
  }
}

export const fsError = (code: FsErrorCode, message?: string): FsError => new FsError(code, message);
