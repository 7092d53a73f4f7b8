// The one place where failures become errno values for the kernel: an FsError carries its POSIX
// name; anything else is a bug or an unexpected fault and becomes EIO (and is logged once here).
import os from 'node:os';
import { FsError } from '../inode/errors.js';

const EIO = -(os.constants.errno.EIO);

export function toErrno(err: unknown, log: (message: string) => void): number {
  if (err instanceof FsError) {
    const n = os.constants.errno[err.code as keyof typeof os.constants.errno];
    if (err.code === 'EIO') log(err.message);
    return n === undefined ? EIO : -n;
  }
  log(`unexpected failure: ${(err as Error)?.stack ?? String(err)}`);
  return EIO;
}
