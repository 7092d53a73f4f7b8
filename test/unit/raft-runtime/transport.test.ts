// The Raft transport over real gRPC on 127.0.0.1: token refusal, malformed input, batching, bounded
// queues, chunked snapshot streaming, and reconnecting to a peer that restarted on the same port.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import * as wire from '../../../src/gen/raft.js';
import { RaftPeers } from '../../../src/raft/transport/peers.js';
import { RAFT_SERVER_OPTIONS, registerRaftService } from '../../../src/raft/transport/server.js';
import { encodeMessageBatch, messageToWire } from '../../../src/raft/transport/wire.js';
import { EntryType, MessageType, nodeId, type Message } from '../../../src/raft/types.js';

const TOKEN = 'test-cluster-token';
const SEND = '/tidefs.raft.RaftTransport/Send';
const SEND_SNAPSHOT = '/tidefs.raft.RaftTransport/SendSnapshot';
const STREAM = '/tidefs.raft.RaftTransport/Stream';
const identity = (b: Buffer): Buffer => b;

function heartbeat(from: number, to: number, term = 1): Message {
  return {
    type: MessageType.Heartbeat,
    from: nodeId(from),
    to: nodeId(to),
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(),
  };
}

function append(from: number, to: number, index: number, count: number): Message {
  const entries = Array.from({ length: count }, (_, k) => ({
    term: 1,
    index: index + k + 1,
    type: EntryType.Normal,
    data: new TextEncoder().encode(`entry ${index + k + 1}`),
  }));
  return { ...heartbeat(from, to), type: MessageType.App, index, logTerm: 1, entries };
}

interface Received {
  batches: Message[][];
  snapshots: Message[];
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const servers: grpc.Server[] = [];
const peerSets: RaftPeers[] = [];
const clients: grpc.Client[] = [];

async function startServer(port = 0, options: grpc.ServerOptions = RAFT_SERVER_OPTIONS): Promise<{ port: number; received: Received; server: grpc.Server }> {
  const received: Received = { batches: [], snapshots: [] };
  const server = new grpc.Server(options);
  registerRaftService(server, {
    token: TOKEN,
    group: 7,
    deliver: (messages) => received.batches.push(messages),
    deliverSnapshot: (message) => received.snapshots.push(message),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  servers.push(server);
  return { port: bound, received, server };
}

function rawClient(port: number): grpc.Client {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  clients.push(client);
  return client;
}

function metadata(token?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('x-tidefs-token', token);
  return md;
}

function rawSend(client: grpc.Client, body: Buffer, md: grpc.Metadata): Promise<grpc.status> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(SEND, identity, identity, body, md, {}, (error) => resolve(error ? error.code : grpc.status.OK)),
  );
}

function rawStream(client: grpc.Client, bodies: Buffer[], md: grpc.Metadata): Promise<grpc.status> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(STREAM, identity, identity, md, {}, (error) => resolve(error ? error.code : grpc.status.OK));
    for (const body of bodies) call.write(body);
    call.end();
  });
}

function rawSnapshot(client: grpc.Client, chunks: wire.SnapshotChunk[], md: grpc.Metadata): Promise<grpc.status> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(SEND_SNAPSHOT, identity, identity, md, {}, (error) =>
      resolve(error ? error.code : grpc.status.OK),
    );
    for (const chunk of chunks) call.write(Buffer.from(wire.SnapshotChunk.encode(chunk).finish()));
    call.end();
  });
}

function peers(self: number, events: { unreachable: number[]; snapshots: [number, boolean][] }, extra: Partial<ConstructorParameters<typeof RaftPeers>[0]> = {}): RaftPeers {
  const p = new RaftPeers({
    self: nodeId(self),
    token: TOKEN,
    group: 7,
    onUnreachable: (id) => events.unreachable.push(id),
    onSnapshotSent: (id, ok) => events.snapshots.push([id, ok]),
    ...extra,
  });
  peerSets.push(p);
  return p;
}

afterEach(() => {
  for (const p of peerSets.splice(0)) p.close();
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.forceShutdown();
});

describe('RaftTransport service', () => {
  it('refuses calls without the token or with a wrong one (UNAUTHENTICATED), and delivers nothing', async () => {
    const { port, received } = await startServer();
    const client = rawClient(port);
    const body = encodeMessageBatch(7, [heartbeat(1, 2)]);
    expect(await rawSend(client, body, metadata())).toBe(grpc.status.UNAUTHENTICATED);
    expect(await rawSend(client, body, metadata('test-cluster-tokeX'))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await rawSend(client, body, metadata(''))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await rawStream(client, [body, body], metadata('wrong'))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await rawStream(client, [body], metadata())).toBe(grpc.status.UNAUTHENTICATED);
    const snapMessage = { ...messageToWire({ ...heartbeat(1, 2), type: MessageType.Snap }), snapshotMeta: { index: 5, term: 1, conf: { voters: [1], learners: [], addresses: {} } } };
    expect(await rawSnapshot(client, [{ group: 7, message: snapMessage, offset: 0, data: Buffer.from('abc'), done: true }], metadata('nope'))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(received.batches).toEqual([]);
    expect(received.snapshots).toEqual([]);
    expect(await rawSend(client, body, metadata(TOKEN))).toBe(grpc.status.OK);
    expect(await rawStream(client, [body, body], metadata(TOKEN))).toBe(grpc.status.OK);
    expect(received.batches).toHaveLength(3);
  });

  it('refuses malformed batches (one call or on a stream) with INVALID_ARGUMENT and keeps serving', async () => {
    const { port, received } = await startServer();
    const client = rawClient(port);
    const md = (): grpc.Metadata => metadata(TOKEN);
    const encode = (messages: wire.Message[]): Buffer => Buffer.from(wire.MessageBatch.encode({ group: 7, messages }).finish());
    const good = messageToWire(heartbeat(1, 2));
    const cases: Buffer[] = [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), // not protobuf
      encode([{ ...good, type: 99 }]), // unknown message type
      encode([{ ...good, from: 0 }]), // no sender
      encode([{ ...messageToWire(append(1, 2, 10, 3)), index: 11 }]), // entries do not follow index
      encode([{ ...messageToWire(append(1, 2, 10, 1)), entries: [{ term: 1, index: 11, type: 7, data: Buffer.alloc(0) }] }]), // unknown entry type
      encode([{ ...good, type: MessageType.Snap }]), // a snapshot outside the snapshot stream
    ];
    for (const body of cases) expect(await rawSend(client, body, md())).toBe(grpc.status.INVALID_ARGUMENT);
    const good7 = encodeMessageBatch(7, [heartbeat(1, 2)]);
    for (const body of cases) expect(await rawStream(client, [body, good7], md())).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await rawSend(client, encodeMessageBatch(8, [heartbeat(1, 2)]), md())).toBe(grpc.status.FAILED_PRECONDITION);
    expect(received.batches).toEqual([]);
    expect(await rawStream(client, [good7, cases[0]!, good7], md())).toBe(grpc.status.INVALID_ARGUMENT);
    expect(received.batches).toHaveLength(1); // the batch before the bad one, nothing after it
    received.batches.length = 0;
    expect(await rawSend(client, encodeMessageBatch(7, [append(1, 2, 10, 3)]), md())).toBe(grpc.status.OK);
    expect(received.batches[0]![0]!.entries.map((e) => e.index)).toEqual([11, 12, 13]);
  });

  it('refuses malformed snapshot streams with INVALID_ARGUMENT', async () => {
    const { port, received } = await startServer();
    const client = rawClient(port);
    const snap = {
      ...messageToWire({ ...heartbeat(1, 2), type: MessageType.Snap }),
      snapshotMeta: { index: 5, term: 1, conf: { voters: [1, 2], learners: [], addresses: { 1: 'a:1' } } },
    };
    const chunk = (c: Partial<wire.SnapshotChunk>): wire.SnapshotChunk => ({ group: 7, offset: 0, data: Buffer.alloc(0), done: false, ...c });
    const bad: wire.SnapshotChunk[][] = [
      [chunk({ data: Buffer.from('ab'), done: true })], // no message
      [chunk({ message: snap, data: Buffer.from('ab') }), chunk({ offset: 5, data: Buffer.from('cd'), done: true })], // gap
      [chunk({ message: snap, data: Buffer.from('ab') })], // never done
      [chunk({ message: { ...snap, snapshotMeta: undefined }, done: true })], // snap without metadata
      [chunk({ message: snap, done: true }), chunk({ offset: 0, done: true })], // chunk after the last
    ];
    for (const chunks of bad) expect(await rawSnapshot(client, chunks, metadata(TOKEN))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(received.snapshots).toEqual([]);
  });
});

describe('RaftPeers', () => {
  it('delivers in order over one stream, batching what is sent in the same turn', async () => {
    const { port, received } = await startServer();
    const events = { unreachable: [] as number[], snapshots: [] as [number, boolean][] };
    const p = peers(1, events);
    p.setAddresses({ 1: '127.0.0.1:1', 2: `127.0.0.1:${port}` });
    const sent: Message[] = [];
    for (let i = 0; i < 1000; i++) sent.push(heartbeat(1, 2, i + 1));
    p.send(sent);
    p.send([heartbeat(1, 1)]); // to self: never sent
    await until(() => received.batches.flat().length >= 1000);
    const terms = received.batches.flat().map((m) => m.term);
    expect(terms).toEqual(sent.map((m) => m.term));
    expect(received.batches).toHaveLength(1);
    expect(events.unreachable).toEqual([]);
  });

  it('streams a snapshot larger than a gRPC message in ~1 MiB chunks and it reassembles exactly', async () => {
    // The server keeps gRPC's default 4 MiB receive limit: only chunking gets 9 MiB through.
    const { port, received } = await startServer(0, {});
    const events = { unreachable: [] as number[], snapshots: [] as [number, boolean][] };
    const p = peers(1, events);
    p.setAddresses({ 2: `127.0.0.1:${port}` });
    const data = new Uint8Array(randomBytes(9 * 1024 * 1024 + 12345));
    const meta = { index: 42, term: 3, conf: { voters: [nodeId(1), nodeId(2)], learners: [nodeId(3)], addresses: { 1: 'h:1', 2: 'h:2', 3: 'h:3' } } };
    p.send([{ ...heartbeat(1, 2, 3), type: MessageType.Snap, snapshot: { meta, data } }]);
    await until(() => events.snapshots.length === 1);
    expect(events.snapshots).toEqual([[2, true]]);
    expect(received.snapshots).toHaveLength(1);
    const got = received.snapshots[0]!;
    expect(got.type).toBe(MessageType.Snap);
    expect(got.snapshot!.meta).toEqual(meta);
    expect(Buffer.from(got.snapshot!.data).equals(Buffer.from(data))).toBe(true);
  });

  it('reports a failed snapshot stream', async () => {
    const events = { unreachable: [] as number[], snapshots: [] as [number, boolean][] };
    const p = peers(1, events);
    p.setAddresses({ 2: '127.0.0.1:1' });
    const meta = { index: 1, term: 1, conf: { voters: [nodeId(1)], learners: [], addresses: {} } };
    p.send([{ ...heartbeat(1, 2), type: MessageType.Snap, snapshot: { meta, data: new Uint8Array(10) } }]);
    p.send([{ ...heartbeat(1, 3), type: MessageType.Snap, snapshot: { meta, data: new Uint8Array(10) } }]); // unknown peer
    await until(() => events.snapshots.length === 2);
    expect(events.snapshots).toContainEqual([2, false]);
    expect(events.snapshots).toContainEqual([3, false]);
  });

  it('reports an unreachable peer, bounds its queue, and reconnects after it restarts on the same port', async () => {
    const first = await startServer();
    const port = first.port;
    const events = { unreachable: [] as number[], snapshots: [] as [number, boolean][] };
    const p = peers(1, events, { maxQueuedMessages: 100, maxBackoffMs: 200 });
    p.setAddresses({ 2: `127.0.0.1:${port}` });
    p.send([heartbeat(1, 2, 1)]);
    await until(() => first.received.batches.length === 1);

    first.server.forceShutdown();
    p.send([heartbeat(1, 2, 2)]);
    await until(() => events.unreachable.length > 0);
    expect(events.unreachable.every((id) => id === 2)).toBe(true);
    for (let i = 0; i < 5000; i++) p.send([heartbeat(1, 2, 1000 + i)]);
    expect(p.droppedMessages()[2]).toBeGreaterThanOrEqual(4900 - 100);

    const second = await startServer(port);
    p.send([heartbeat(1, 2, 99_999)]);
    await until(() => second.received.batches.flat().some((m) => m.term === 99_999));
    const delivered = second.received.batches.flat();
    expect(delivered.length).toBeLessThanOrEqual(101);
    expect(delivered.at(-1)!.term).toBe(99_999);
  });

  it('follows address changes and refuses to route to removed peers', async () => {
    const a = await startServer();
    const b = await startServer();
    const events = { unreachable: [] as number[], snapshots: [] as [number, boolean][] };
    const p = peers(1, events);
    p.setAddresses({ 2: `127.0.0.1:${a.port}` });
    p.send([heartbeat(1, 2, 1)]);
    await until(() => a.received.batches.length === 1);
    p.setAddresses({ 2: `127.0.0.1:${b.port}` });
    p.send([heartbeat(1, 2, 2)]);
    await until(() => b.received.batches.length === 1);
    p.setAddresses({});
    p.send([heartbeat(1, 2, 3)]);
    expect(events.unreachable).toEqual([2]);
    expect(a.received.batches.flat().map((m) => m.term)).toEqual([1]);
  });
});
