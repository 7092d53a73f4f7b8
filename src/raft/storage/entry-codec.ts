// How one Raft log entry is laid out as an LMDB value (the index is the key, so it is not repeated):
// byte 0 = EntryType, bytes 1..8 = term (float64, exact for every safe integer), then either the
// data itself or, when byte 0 has its high bit set, where the data was stored instead (a
// PayloadRef: segment u32, offset float64, length u32). Pure byte shuffling: no I/O; the caller
// reads a payload stored elsewhere.
import { EntryType, type Entry } from '../types.js';
import type { PayloadRef } from './payload-segments.js';

const HEADER_BYTES = 9;
const STORED_ELSEWHERE = 0x80;
const REF_BYTES = 16;

export function encodeEntryValue(entry: Entry): Buffer {
  const value = header(entry, 0, entry.data.byteLength);
  value.set(entry.data, HEADER_BYTES);
  return value;
}

/** An entry whose data is at `ref`. */
export function encodeEntryRef(entry: Entry, ref: PayloadRef): Buffer {
  const value = header(entry, STORED_ELSEWHERE, REF_BYTES);
  value.writeUInt32BE(ref.segment, HEADER_BYTES);
  value.writeDoubleBE(ref.offset, HEADER_BYTES + 4);
  value.writeUInt32BE(ref.length, HEADER_BYTES + 12);
  return value;
}

/**
 * `value` must be a buffer the caller owns (not one lmdb reuses): inline data is a view into it.
 * `readPayload` fetches data stored elsewhere.
 */
export function decodeEntryValue(index: number, value: Buffer, readPayload: (ref: PayloadRef) => Uint8Array): Entry {
  const type = value.readUInt8(0) & ~STORED_ELSEWHERE;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
    throw new RangeError(`raft log: entry ${index} has unknown type ${type}`);
  }
  const ref = payloadRefOf(value);
  const data = ref ? readPayload(ref) : new Uint8Array(value.buffer, value.byteOffset + HEADER_BYTES, value.byteLength - HEADER_BYTES);
  return { index, term: value.readDoubleBE(1), type, data };
}

export function termOfEntryValue(value: Buffer): number {
  return value.readDoubleBE(1);
}

/** Where the entry's data is, if it is not in the value itself. */
export function payloadRefOf(value: Buffer): PayloadRef | undefined {
  if ((value.readUInt8(0) & STORED_ELSEWHERE) === 0) return undefined;
  return {
    segment: value.readUInt32BE(HEADER_BYTES),
    offset: value.readDoubleBE(HEADER_BYTES + 4),
    length: value.readUInt32BE(HEADER_BYTES + 12),
  };
}

function header(entry: Entry, flags: number, bodyBytes: number): Buffer {
  const value = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes);
  value.writeUInt8(entry.type | flags, 0);
  value.writeDoubleBE(entry.term, 1);
  return value;
}
