// The sending side of the Raft transport: one gRPC client per peer address and, on it, one
// long-lived Stream call that carries MessageBatches in order without waiting for an answer per
// batch. Messages for a peer are queued and written as one batch per event-loop turn, or, while the
// stream pushes back (HTTP/2 flow control), as one batch once it drains. Snap messages are streamed
// with SendSnapshot in ~1 MiB chunks. A failed stream loses what it carried (Raft tolerates loss),
// tells the driver the peer is unreachable, and is reopened after an exponential backoff; while a
// peer is down its queue is bounded and loses its oldest messages.
//
// Never blocks the caller and never throws at it: send() only queues.
import * as grpc from '@grpc/grpc-js';
import { MessageType, type Message, type NodeId } from '../types.js';
import { tokenMetadata } from './cluster-token.js';
import { RAFT_MAX_MESSAGE_BYTES } from './server.js';
import { SEND_SNAPSHOT_PATH, STREAM_PATH, encodeMessageBatch, encodeSnapshotChunk, messageToWire } from './wire.js';

export interface RaftPeersOptions {
  self: NodeId;
  token: string;
  /** The Raft group these messages belong to (must match the receivers'). Default 0. */
  group?: number;
  /** A call to `peer` failed: the driver tells the core (reportUnreachable). */
  onUnreachable(peer: NodeId): void;
  /** A snapshot stream to `peer` finished: the driver tells the core (reportSnapshot). */
  onSnapshotSent(peer: NodeId, ok: boolean): void;
  /** Messages kept per peer while it is busy or down; the oldest are dropped beyond this. Default 10,000. */
  maxQueuedMessages?: number;
  /** Bytes of snapshot data per SendSnapshot chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /** First pause after a failed call; doubles per consecutive failure up to maxBackoffMs. Default 20 ms. */
  initialBackoffMs?: number;
  /** Default 1,000 ms. */
  maxBackoffMs?: number;
}

/** A batch stays under gRPC's default 4 MiB receive limit unless a single message is larger. */
const BATCH_BYTES = 3 * 1024 * 1024;
const MESSAGE_OVERHEAD_BYTES = 64;
/** How long a retired link may keep delivering what was queued before it closes regardless. */
const RETIRE_GRACE_MS = 1_000;
const KEEPALIVE_MS = 5_000;

const identity = (bytes: Buffer): Buffer => bytes;

function approximateBytes(m: Message): number {
  let bytes = MESSAGE_OVERHEAD_BYTES + m.context.byteLength;
  for (const entry of m.entries) bytes += entry.data.byteLength + 24;
  return bytes;
}

type Settings = Required<RaftPeersOptions>;

/** Everything about talking to one peer at one address. */
class PeerLink {
  private readonly client: grpc.Client;
  private queue: Message[] = [];
  private flushScheduled = false;
  private stream: grpc.ClientWritableStream<Buffer> | undefined;
  /**
   * True once the peer has admitted the stream and while the stream takes more: until then messages
   * stay in the queue (so a connection attempt that fails loses nothing), and while the stream
   * pushes back they batch up there.
   */
  private writable = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private snapshotCall: grpc.ClientWritableStream<Buffer> | undefined;
  private closed = false;
  private retireTimer: NodeJS.Timeout | undefined;
  private ending = false;
  dropped = 0;

  constructor(
    readonly id: NodeId,
    readonly address: string,
    private readonly settings: Settings,
  ) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': RAFT_MAX_MESSAGE_BYTES,
      'grpc.max_receive_message_length': RAFT_MAX_MESSAGE_BYTES,
      'grpc.initial_reconnect_backoff_ms': settings.initialBackoffMs,
      'grpc.max_reconnect_backoff_ms': settings.maxBackoffMs,
      'grpc-node.max_session_memory': 256,
      // A peer that stops answering without closing the connection (stopped, partitioned) fails
      // the stream within ~10 s, so a process that replaces it at the same address is reached.
      'grpc.keepalive_time_ms': KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_MS,
    });
  }

  enqueue(m: Message): void {
    if (this.closed) return;
    if (m.type === MessageType.Snap) {
      this.streamSnapshot(m);
      return;
    }
    this.queue.push(m);
    if (this.queue.length > this.settings.maxQueuedMessages) {
      const excess = this.queue.length - this.settings.maxQueuedMessages;
      this.queue.splice(0, excess);
      this.dropped += excess;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.pump();
      });
    }
  }

  /** Writes what is queued while the stream takes it (opening the stream if needed). */
  private pump(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    if (this.queue.length === 0) {
      if (this.retireTimer !== undefined) this.finishRetiring();
      return;
    }
    const stream = this.stream ?? this.openStream();
    while (this.writable && this.queue.length > 0) {
      this.writable = stream.write(encodeMessageBatch(this.settings.group, this.takeBatch()));
    }
  }

  private takeBatch(): Message[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      bytes += approximateBytes(this.queue[n]!);
      if (n > 0 && bytes > BATCH_BYTES) break;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private openStream(): grpc.ClientWritableStream<Buffer> {
    const stream = this.client.makeClientStreamRequest<Buffer, Buffer>(
      STREAM_PATH,
      identity,
      identity,
      tokenMetadata(this.settings.token),
      {},
      (error) => {
        if (this.stream !== stream) return;
        this.stream = undefined;
        this.writable = false;
        if (this.closed) return;
        if (error) this.failed();
        else this.pump();
      },
    );
    // The server answers with its headers once it has admitted the stream: the peer is reachable.
    stream.on('metadata', () => {
      if (this.stream !== stream) return;
      this.failures = 0;
      this.writable = true;
      this.pump();
    });
    stream.on('drain', () => {
      if (this.stream !== stream) return;
      this.writable = true;
      this.pump();
    });
    this.stream = stream;
    this.writable = false;
    return stream;
  }

  private failed(): void {
    this.failures++;
    this.settings.onUnreachable(this.id);
    const delay = Math.min(this.settings.initialBackoffMs * 2 ** (this.failures - 1), this.settings.maxBackoffMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
  }

  private streamSnapshot(m: Message): void {
    const data = m.snapshot?.data ?? new Uint8Array(0);
    const chunkBytes = this.settings.snapshotChunkBytes;
    this.snapshotCall?.cancel();
    let finished = false;
    let wake: (() => void) | undefined;
    const call = this.client.makeClientStreamRequest<Buffer, Buffer>(
      SEND_SNAPSHOT_PATH,
      identity,
      identity,
      tokenMetadata(this.settings.token),
      {},
      (error) => {
        finished = true;
        wake?.();
        if (this.snapshotCall === call) this.snapshotCall = undefined;
        if (error) this.settings.onUnreachable(this.id);
        if (!this.closed) this.settings.onSnapshotSent(this.id, !error);
      },
    );
    this.snapshotCall = call;
    call.on('drain', () => wake?.());
    const message = messageToWire(m);
    const writeAll = async (): Promise<void> => {
      let offset = 0;
      do {
        const piece = data.subarray(offset, offset + chunkBytes);
        const done = offset + piece.byteLength >= data.byteLength;
        const chunk = encodeSnapshotChunk({
          group: this.settings.group,
          message: offset === 0 ? message : undefined,
          offset,
          data: Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength),
          done,
        });
        offset += piece.byteLength;
        if (!call.write(chunk) && !finished) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (done) break;
      } while (!finished);
      if (!finished) call.end();
    };
    void writeAll();
  }

  /**
   * Closes once what is already queued has been written and the stream has ended (or after
   * `graceMs`): the last messages to a peer that just left the group tell it the commit index that
   * removed it.
   */
  retire(graceMs: number): void {
    if (this.closed || this.retireTimer !== undefined) return;
    this.retireTimer = setTimeout(() => this.close(), graceMs);
    this.retireTimer.unref();
    this.pump();
  }

  /** Ends the stream; its completion (pump() again, with no stream left) closes the link. */
  private finishRetiring(): void {
    if (!this.stream) return this.close();
    if (!this.ending) {
      this.ending = true;
      this.stream.end();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retireTimer !== undefined) clearTimeout(this.retireTimer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.snapshotCall?.cancel();
    this.stream?.cancel();
    this.stream = undefined;
    this.queue = [];
    this.client.close();
  }
}

export class RaftPeers {
  private readonly settings: Settings;
  private readonly links = new Map<NodeId, PeerLink>();

  constructor(options: RaftPeersOptions) {
    this.settings = {
      self: options.self,
      token: options.token,
      group: options.group ?? 0,
      maxQueuedMessages: options.maxQueuedMessages ?? 10_000,
      snapshotChunkBytes: options.snapshotChunkBytes ?? 1024 * 1024,
      initialBackoffMs: options.initialBackoffMs ?? 20,
      maxBackoffMs: options.maxBackoffMs ?? 1_000,
      onUnreachable: options.onUnreachable,
      onSnapshotSent: options.onSnapshotSent,
    };
  }

  /**
   * Follows the group's membership: opens links to new peers, re-opens moved ones, and retires
   * removed ones (they still deliver what is queued for them, then close).
   */
  setAddresses(addresses: Record<number, string>): void {
    for (const [id, link] of this.links) {
      if (addresses[id] !== link.address) {
        link.retire(RETIRE_GRACE_MS);
        this.links.delete(id);
      }
    }
    for (const [key, address] of Object.entries(addresses)) {
      const id = Number(key) as NodeId;
      if (id === this.settings.self || this.links.has(id) || !address) continue;
      this.links.set(id, new PeerLink(id, address, this.settings));
    }
  }

  /** Queues messages for their peers. A message to a peer with no known address counts as unreachable. */
  send(messages: Message[]): void {
    for (const m of messages) {
      if (m.to === this.settings.self) continue;
      const link = this.links.get(m.to);
      if (link) link.enqueue(m);
      else if (m.type === MessageType.Snap) this.settings.onSnapshotSent(m.to, false);
      else this.settings.onUnreachable(m.to);
    }
  }

  /** Messages dropped so far because a peer's queue was full (per peer). */
  droppedMessages(): Record<number, number> {
    const dropped: Record<number, number> = {};
    for (const [id, link] of this.links) dropped[id] = link.dropped;
    return dropped;
  }

  /** Stops taking messages; what is queued is still delivered (for up to a second), then links close. */
  drain(): void {
    for (const link of this.links.values()) link.retire(RETIRE_GRACE_MS);
    this.links.clear();
  }

  close(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }
}
