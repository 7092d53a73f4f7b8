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
    // Most of these are answers, not faults (ENOENT for a lookup, ENODATA for the xattr the kernel
    // asks about on every write): no stack trace is taken for them. A cause keeps its own.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ? `${code}: ${message}` : code, options);
    Error.stackTraceLimit = limit;
    this.name = 'FsError';
  }
}

export const fsError = (code: FsErrorCode, message?: string): FsError => new FsError(code, message);
