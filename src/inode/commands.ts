// Encoding of inode state machine commands (proto/inode.proto) as Raft entry data, and the
// result type apply() returns for them. Write commands carry the file's bytes, so they have a
// path of their own that copies those bytes once when encoding and not at all when decoding; it
// produces exactly the bytes of the generated encoder, and reads anything that encoder writes.
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { Command, Write } from '../gen/inode.js';
import type { FsErrorCode } from './errors.js';
import type { InodeId } from './types.js';

export type { Command };
export type CommandOp = NonNullable<Command['op']>;

// Protobuf tags (field number << 3 | wire type) the write path reads and writes itself.
const NOW_MS_TAG = (1 << 3) | 1; // Command.now_ms, 64-bit
const WRITE_TAG = (11 << 3) | 2; // Command.write, length-delimited
const WRITE_DATA_TAG = (3 << 3) | 2; // Write.data, length-delimited
const WRITE_INO_TAG = (1 << 3) | 0; // Write.ino, varint
const WRITE_OFFSET_TAG = (2 << 3) | 0; // Write.offset, varint
const NO_DATA = Buffer.alloc(0);

export function encodeCommand(op: CommandOp, nowMs: number): Uint8Array {
  if (op.$case === 'write' && op.value.data.length > 0) return encodeWrite(op.value, nowMs);
  return Command.encode({ nowMs, op }).finish();
}

/** `data` must stay unchanged while the command is in use: a write's bytes are a view into it. */
export function decodeCommand(data: Uint8Array): Command {
  return decodeWrite(data) ?? Command.decode(data);
}

/** Everything but the data through the generated encoder, then the data copied once behind it. */
function encodeWrite(write: Write, nowMs: number): Uint8Array {
  const head = Write.encode({ ino: write.ino, offset: write.offset, data: NO_DATA }).finish();
  const dataBytes = write.data.length;
  const dataHead = new BinaryWriter().uint32(WRITE_DATA_TAG).uint32(dataBytes).finish();
  const writer = new BinaryWriter();
  if (nowMs !== 0) writer.uint32(NOW_MS_TAG).double(nowMs);
  const prefix = writer
    .uint32(WRITE_TAG)
    .uint32(head.length + dataHead.length + dataBytes)
    .raw(head)
    .raw(dataHead)
    .finish();
  // Every byte is set below: no need to zero the (often 1 MiB) buffer first.
  const out = Buffer.allocUnsafe(prefix.length + dataBytes);
  out.set(prefix, 0);
  out.set(write.data, prefix.length);
  return out;
}

/** A write command with its data as a view into `data`; undefined for any other command. */
function decodeWrite(data: Uint8Array): Command | undefined {
  const reader = new BinaryReader(data);
  let nowMs = 0;
  let write: Write | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === NOW_MS_TAG) nowMs = reader.double();
    else if (tag === WRITE_TAG) write = readWrite(reader);
    else return undefined;
  }
  return write ? { nowMs, op: { $case: 'write', value: write } } : undefined;
}

/** A Write message's fields (a repeated one replaces the earlier, as the generated decoder does). */
function readWrite(reader: BinaryReader): Write {
  const end = reader.uint32() + reader.pos;
  const write: Write = { ino: 0, offset: 0, data: NO_DATA };
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag === WRITE_INO_TAG) write.ino = safeNumber(reader.uint64());
    else if (tag === WRITE_OFFSET_TAG) write.offset = safeNumber(reader.uint64());
    else if (tag === WRITE_DATA_TAG) {
      const bytes = reader.bytes();
      write.data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } else reader.skip(tag & 7, tag >>> 3);
  }
  if (reader.pos !== end) throw new RangeError('write command: message overruns its length');
  return write;
}

function safeNumber(value: bigint | string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`write command: ${value} is not a safe integer`);
  return n;
}

export type ApplyResult =
  | { ok: true; ino?: InodeId; size?: number }
  | { ok: false; error: FsErrorCode; message: string };

export const OK: ApplyResult = { ok: true };
