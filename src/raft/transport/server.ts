// The receiving side of the Raft transport: the RaftTransport gRPC service, registered on a
// grpc.Server the node process owns (it hosts its other services on the same server). It checks the
// cluster token (UNAUTHENTICATED), decodes and validates every message (INVALID_ARGUMENT), refuses
// messages for another group (FAILED_PRECONDITION), reassembles streamed snapshots, and hands
// messages to the driver. Nothing a peer sends can throw out of a handler.
import * as grpc from '@grpc/grpc-js';
import type { Message } from '../types.js';
import { ClusterToken } from './cluster-token.js';
import {
  SEND_PATH,
  SEND_SNAPSHOT_PATH,
  STREAM_PATH,
  WireFormatError,
  bytesOf,
  decodeMessageBatch,
  decodeSnapshotChunk,
  messageFromWire,
} from './wire.js';

/** Enough for any batch RaftPeers sends and any single large message the core may emit. */
export const RAFT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024;

/** Options for the grpc.Server that hosts the Raft service (message size limits). */
export const RAFT_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': RAFT_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': RAFT_MAX_MESSAGE_BYTES,
  'grpc-node.max_session_memory': 256,
};

export interface RaftServiceOptions {
  /** The cluster token every call must carry. */
  token: string;
  /** The Raft group this node serves; batches for another group are refused. Default 0. */
  group?: number;
  /** Largest snapshot accepted, in bytes (default 4 GiB - 1). */
  maxSnapshotBytes?: number;
  /** Called with every batch of (validated) messages, in arrival order. */
  deliver(messages: Message[]): void;
  /** Called with a Snap message whose `snapshot.data` holds the whole reassembled image. */
  deliverSnapshot(message: Message): void;
}

const identity = (bytes: Buffer): Buffer => bytes;
const EMPTY_ACK = Buffer.alloc(0);

/** A method of the service that passes bytes through untouched: decoding happens in the handlers. */
function rawMethod(path: string, requestStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

const RAW_RAFT_SERVICE: grpc.ServiceDefinition = {
  send: rawMethod(SEND_PATH, false),
  stream: rawMethod(STREAM_PATH, true),
  sendSnapshot: rawMethod(SEND_SNAPSHOT_PATH, true),
};

function refusal(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

const UNAUTHENTICATED = (): grpc.ServiceError =>
  refusal(grpc.status.UNAUTHENTICATED, 'missing or wrong cluster token');

/** Collects one streamed snapshot: the first chunk names the Snap message, offsets must be contiguous. */
class SnapshotAssembly {
  private message: Message | undefined;
  private readonly chunks: Uint8Array[] = [];
  private received = 0;
  private done = false;

  constructor(
    private readonly group: number,
    private readonly maxBytes: number,
  ) {}

  add(bytes: Buffer): void {
    if (this.done) throw new WireFormatError('chunk after the last one');
    const chunk = decodeSnapshotChunk(bytes);
    if (chunk.group !== this.group) throw new WireFormatError(`snapshot for group ${chunk.group}, this is group ${this.group}`);
    if (this.message === undefined) {
      if (!chunk.message) throw new WireFormatError('first snapshot chunk without its message');
      this.message = messageFromWire(chunk.message);
      if (!this.message.snapshot) throw new WireFormatError('snapshot stream for a message that is not a snapshot');
    } else if (chunk.message) {
      throw new WireFormatError('snapshot message repeated in a later chunk');
    }
    if (chunk.offset !== this.received) {
      throw new WireFormatError(`chunk at offset ${chunk.offset}, expected ${this.received}`);
    }
    this.received += chunk.data.byteLength;
    if (this.received > this.maxBytes) throw new WireFormatError(`snapshot larger than ${this.maxBytes} bytes`);
    if (chunk.data.byteLength > 0) this.chunks.push(bytesOf(chunk.data));
    this.done = chunk.done;
  }

  /** The Snap message with its data, once the last chunk arrived. */
  finish(): Message {
    if (!this.done || !this.message?.snapshot) throw new WireFormatError('stream ended before the last chunk');
    const data = new Uint8Array(this.received);
    let offset = 0;
    for (const chunk of this.chunks) {
      data.set(chunk, offset);
      offset += chunk.byteLength;
    }
    const snapshot = { meta: this.message.snapshot.meta, data };
    return { ...this.message, snapshot };
  }
}

/** Adds the Raft service to `server`; returns a function that removes it again. */
export function registerRaftService(server: grpc.Server, options: RaftServiceOptions): () => void {
  const token = new ClusterToken(options.token);
  const group = options.group ?? 0;
  const maxSnapshotBytes = options.maxSnapshotBytes ?? 2 ** 32 - 1;

  /** Decodes, checks and delivers one batch; the refusal to answer with, if any. */
  const accept = (bytes: Buffer): grpc.ServiceError | undefined => {
    let messages: Message[];
    try {
      const batch = decodeMessageBatch(bytes);
      if (batch.group !== group) {
        return refusal(grpc.status.FAILED_PRECONDITION, `batch for group ${batch.group}, this is group ${group}`);
      }
      messages = batch.messages;
    } catch (error) {
      return refusal(grpc.status.INVALID_ARGUMENT, (error as Error).message);
    }
    try {
      options.deliver(messages);
    } catch (error) {
      return refusal(grpc.status.UNAVAILABLE, (error as Error).message);
    }
    return undefined;
  };

  const send = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void => {
    if (!token.admits(call.metadata)) return callback(UNAUTHENTICATED());
    const refused = accept(call.request);
    if (refused) callback(refused);
    else callback(null, EMPTY_ACK);
  };

  const stream = (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void => {
    const settle = settleOnce(call, callback);
    if (!token.admits(call.metadata)) return settle(UNAUTHENTICATED());
    call.sendMetadata(new grpc.Metadata()); // tells the sender it is admitted
    call.on('data', (bytes: Buffer) => {
      const refused = accept(bytes);
      if (refused) settle(refused);
    });
    call.on('end', () => settle(null));
    call.on('error', () => settle(null));
  };

  const sendSnapshot = (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void => {
    const settle = settleOnce(call, callback);
    if (!token.admits(call.metadata)) return settle(UNAUTHENTICATED());
    const assembly = new SnapshotAssembly(group, maxSnapshotBytes);
    call.on('data', (bytes: Buffer) => {
      try {
        assembly.add(bytes);
      } catch (error) {
        settle(refusal(grpc.status.INVALID_ARGUMENT, (error as Error).message));
      }
    });
    call.on('end', () => {
      let message: Message;
      try {
        message = assembly.finish();
      } catch (error) {
        return settle(refusal(grpc.status.INVALID_ARGUMENT, (error as Error).message));
      }
      try {
        options.deliverSnapshot(message);
      } catch (error) {
        return settle(refusal(grpc.status.UNAVAILABLE, (error as Error).message));
      }
      settle(null);
    });
    call.on('error', () => settle(null)); // the peer went away mid-stream: nothing delivered
  };

  server.addService(RAW_RAFT_SERVICE, { send, stream, sendSnapshot } as grpc.UntypedServiceImplementation);
  return () => server.removeService(RAW_RAFT_SERVICE);
}

/**
 * Answers a client stream at most once and stops reading it after that (later data, an error after
 * a refusal, the end of a stream that was cut off: all ignored).
 */
function settleOnce(
  call: grpc.ServerReadableStream<Buffer, Buffer>,
  callback: grpc.sendUnaryData<Buffer>,
): (error: grpc.ServiceError | null) => void {
  let settled = false;
  return (error) => {
    if (settled) return;
    settled = true;
    call.removeAllListeners('data');
    if (error) callback(error);
    else callback(null, EMPTY_ACK);
  };
}
