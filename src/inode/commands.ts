// Encoding of inode state machine commands (proto/inode.proto) as Raft entry data, and the
// result type apply() returns for them.
import { Command } from '../gen/inode.js';
import type { FsErrorCode } from './errors.js';
import type { InodeId } from './types.js';

export type { Command };
export type CommandOp = NonNullable<Command['op']>;

export function encodeCommand(op: CommandOp, nowMs: number): Uint8Array {
  return Command.encode({ nowMs, op }).finish();
}

export function decodeCommand(data: Uint8Array): Command {
  return Command.decode(data);
}

export type ApplyResult =
  | { ok: true; ino?: InodeId; size?: number }
  | { ok: false; error: FsErrorCode; message: string };

export const OK: ApplyResult = { ok: true };
