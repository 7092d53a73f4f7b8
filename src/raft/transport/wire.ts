// The one place where Raft messages cross between src/raft/types.ts and the generated wire types
// (src/gen/raft.ts). Everything read from the network is checked here: a message that would not make
// sense to the core (unknown type, zero ids, non-integer numbers, entries that are not consecutive)
// is refused with a WireFormatError, never passed on. Snapshot data travels separately (chunks), so
// a Snap message carries only its metadata here.
import * as wire from '../../gen/raft.js';
import {
  EntryType,
  MessageType,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type SnapshotMeta,
} from '../types.js';

/** Bytes from the network that are not a valid Raft message. */
export class WireFormatError extends Error {
  constructor(message: string) {
    super(`raft wire: ${message}`);
    this.name = 'WireFormatError';
  }
}

// A Buffer is a Uint8Array at run time, and the generated encoders only read bytes fields as one.
// These two casts bridge @types/node 20's Buffer and TypeScript 5.9's generic Uint8Array without
// copying or re-wrapping every entry's data (which showed up in profiles).
function bufferOf(bytes: Uint8Array): Buffer {
  return bytes as unknown as Buffer;
}

export function bytesOf(buffer: Buffer): Uint8Array {
  return buffer as unknown as Uint8Array;
}

function count(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new WireFormatError(`${what} ${value} is not a count`);
  return value;
}

function member(value: number, what: string): NodeId {
  if (!Number.isSafeInteger(value) || value <= 0) throw new WireFormatError(`${what} ${value} is not a node id`);
  return value as NodeId;
}

const MESSAGE_TYPES = new Set<number>(Object.values(MessageType).filter((v): v is number => typeof v === 'number'));

// ---- outgoing ----

function confStateToWire(conf: ConfState): wire.ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners], addresses: { ...conf.addresses } };
}

function snapshotMetaToWire(meta: SnapshotMeta): wire.SnapshotMeta {
  return { index: meta.index, term: meta.term, conf: confStateToWire(meta.conf) };
}

function entryToWire(entry: Entry): wire.Entry {
  return { term: entry.term, index: entry.index, type: entry.type, data: bufferOf(entry.data) };
}

/** The wire form of a message; a Snap message keeps its metadata and leaves its data behind. */
export function messageToWire(m: Message): wire.Message {
  return {
    type: m.type,
    from: m.from,
    to: m.to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryToWire),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: bufferOf(m.context),
    snapshotMeta: m.snapshot ? snapshotMetaToWire(m.snapshot.meta) : undefined,
  };
}

// ---- incoming (validated) ----

function confStateFromWire(conf: wire.ConfState): ConfState {
  const voters = conf.voters.map((id) => member(id, 'voter'));
  const learners = conf.learners.map((id) => member(id, 'learner'));
  const addresses: Record<number, string> = {};
  for (const [key, address] of Object.entries(conf.addresses)) {
    addresses[member(Number(key), 'address key')] = address;
  }
  return { voters, learners, addresses };
}

function snapshotMetaFromWire(meta: wire.SnapshotMeta): SnapshotMeta {
  if (!meta.conf) throw new WireFormatError('snapshot metadata without a conf state');
  return { index: count(meta.index, 'snapshot index'), term: count(meta.term, 'snapshot term'), conf: confStateFromWire(meta.conf) };
}

function entryFromWire(e: wire.Entry): Entry {
  if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) {
    throw new WireFormatError(`entry ${e.index} has unknown type ${e.type}`);
  }
  return { term: count(e.term, 'entry term'), index: count(e.index, 'entry index'), type: e.type, data: bytesOf(e.data) };
}

/**
 * A checked message. A Snap message comes back with its metadata and empty data: the caller fills
 * in the data it reassembled from the chunks.
 */
export function messageFromWire(m: wire.Message): Message {
  if (!MESSAGE_TYPES.has(m.type)) throw new WireFormatError(`unknown message type ${m.type}`);
  const message: Message = {
    type: m.type as MessageType,
    from: member(m.from, 'from'),
    to: member(m.to, 'to'),
    term: count(m.term, 'term'),
    logTerm: count(m.logTerm, 'log term'),
    index: count(m.index, 'index'),
    entries: m.entries.map(entryFromWire),
    commit: count(m.commit, 'commit'),
    reject: m.reject,
    rejectHint: count(m.rejectHint, 'reject hint'),
    context: bytesOf(m.context),
  };
  message.entries.forEach((entry, k) => {
    if (entry.index !== message.index + k + 1) {
      throw new WireFormatError(`entry ${entry.index} at position ${k} does not follow index ${message.index}`);
    }
  });
  if (m.type === MessageType.Snap) {
    if (!m.snapshotMeta) throw new WireFormatError('snapshot message without snapshot metadata');
    message.snapshot = { meta: snapshotMetaFromWire(m.snapshotMeta), data: new Uint8Array(0) };
  }
  return message;
}

/** Decodes and checks a batch of messages (never a Snap: those travel on the snapshot stream). */
export function decodeMessageBatch(bytes: Buffer): { group: number; messages: Message[] } {
  let batch: wire.MessageBatch;
  try {
    batch = wire.MessageBatch.decode(bytesOf(bytes));
  } catch (error) {
    throw new WireFormatError(`undecodable message batch: ${(error as Error).message}`);
  }
  const messages = batch.messages.map(messageFromWire);
  if (messages.some((m) => m.type === MessageType.Snap)) {
    throw new WireFormatError('snapshot messages must use the snapshot stream');
  }
  return { group: count(batch.group, 'group'), messages };
}

export function decodeSnapshotChunk(bytes: Buffer): wire.SnapshotChunk {
  try {
    return wire.SnapshotChunk.decode(bytesOf(bytes));
  } catch (error) {
    throw new WireFormatError(`undecodable snapshot chunk: ${(error as Error).message}`);
  }
}

/** A real Buffer over the encoder's output (gRPC calls Buffer methods on what it sends). */
function encoded(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeMessageBatch(group: number, messages: Message[]): Buffer {
  return encoded(wire.MessageBatch.encode({ group, messages: messages.map(messageToWire) }).finish());
}

export function encodeSnapshotChunk(chunk: wire.SnapshotChunk): Buffer {
  return encoded(wire.SnapshotChunk.encode(chunk).finish());
}

/** The gRPC method paths of the RaftTransport service (proto/raft.proto). */
export const SEND_PATH = wire.RaftTransportService.send.path;
export const STREAM_PATH = wire.RaftTransportService.stream.path;
export const SEND_SNAPSHOT_PATH = wire.RaftTransportService.sendSnapshot.path;

