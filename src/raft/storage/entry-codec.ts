// How one Raft log entry is laid out as an LMDB value (the index is the key, so it is not repeated):
// byte 0 = EntryType, bytes 1..8 = term (float64, exact for every safe integer), then the data.
// Pure byte shuffling: no I/O, no knowledge of where the bytes are stored.
import { EntryType, type Entry } from '../types.js';

const HEADER_BYTES = 9;

export function encodeEntryValue(entry: Entry): Buffer {
  const value = Buffer.allocUnsafe(HEADER_BYTES + entry.data.byteLength);
  value.writeUInt8(entry.type, 0);
  value.writeDoubleBE(entry.term, 1);
  value.set(entry.data, HEADER_BYTES);
  return value;
}

/** `value` must be a buffer the caller owns (not one lmdb reuses): data is a view into it. */
export function decodeEntryValue(index: number, value: Buffer): Entry {
  const type = value.readUInt8(0);
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
    throw new RangeError(`raft log: entry ${index} has unknown type ${type}`);
  }
  const data = new Uint8Array(value.buffer, value.byteOffset + HEADER_BYTES, value.byteLength - HEADER_BYTES);
  return { index, term: value.readDoubleBE(1), type, data };
}

export function termOfEntryValue(value: Buffer): number {
  return value.readDoubleBE(1);
}

