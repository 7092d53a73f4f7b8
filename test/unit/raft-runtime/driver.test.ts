// RaftNode end to end inside one process: a single-node group (no network), restart and replay from
// disk, snapshots and compaction, and a 3-node group over real gRPC on 127.0.0.1 (followers refuse
// proposals with the leader's address, read barriers, membership changes, timeouts, close).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftNode, type RaftNodeOptions } from '../../../src/raft/driver.js';
import { ClosedError, NotLeaderError, ProposalDroppedError, ProposalTimeoutError, RemovedFromGroupError } from '../../../src/raft/errors.js';
import type { StateMachine } from '../../../src/raft/state-machine.js';
import { RAFT_SERVER_OPTIONS } from '../../../src/raft/transport/server.js';
import { Role, nodeId, type Entry, type Message, type NodeId } from '../../../src/raft/types.js';

const TOKEN = 'driver-test-token';
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A state machine kept in memory: the list of applied payloads. Its durable index is its last restore. */
class ListMachine implements StateMachine<number> {
  items: string[] = [];
  applies = 0;
  restores: number[] = [];
  private restoredAt = 0;
  private lastApplied = 0;

  apply(entry: Entry): number {
    this.applies++;
    if (entry.index <= this.lastApplied) throw new Error(`entry ${entry.index} applied twice`);
    this.lastApplied = entry.index;
    if (entry.data.byteLength > 0) this.items.push(new TextDecoder().decode(entry.data));
    return entry.index;
  }

  appliedIndex(): number {
    return this.restoredAt;
  }

  async snapshot(): Promise<Uint8Array> {
    return encode(JSON.stringify(this.items));
  }

  async restore(data: Uint8Array, index: number): Promise<void> {
    this.items = data.byteLength > 0 ? (JSON.parse(new TextDecoder().decode(data)) as string[]) : [];
    this.restoredAt = index;
    this.lastApplied = index;
    this.restores.push(index);
  }
}

/** A state machine that survives restarts by itself (standing in for one kept in LMDB). */
class PersistentListMachine implements StateMachine<number> {
  readonly persistent = true;
  items: string[] = [];
  images = 0;
  restores = 0;
  /** appliedIndex() at each sync(). */
  syncedAt: number[] = [];
  private lastApplied = 0;

  async sync(): Promise<void> {
    this.syncedAt.push(this.lastApplied);
  }

  apply(entry: Entry): number {
    if (entry.index <= this.lastApplied) throw new Error(`entry ${entry.index} applied twice`);
    this.lastApplied = entry.index;
    if (entry.data.byteLength > 0) this.items.push(new TextDecoder().decode(entry.data));
    return entry.index;
  }

  appliedIndex(): number {
    return this.lastApplied;
  }

  async snapshot(): Promise<Uint8Array> {
    this.images++;
    return encode(JSON.stringify(this.items));
  }

  async restore(): Promise<void> {
    this.restores++;
  }
}

const dirs: string[] = [];
const nodes: RaftNode<number>[] = [];
const servers: grpc.Server[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tidefs-raft-driver-'));
  dirs.push(dir);
  return dir;
}

async function open(options: Omit<RaftNodeOptions<number>, 'durability'> & { durability?: 'fsync' | 'process' }): Promise<RaftNode<number>> {
  const node = await RaftNode.open<number>({ durability: 'process', ...options });
  nodes.push(node);
  return node;
}

async function until(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function boundServer(): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server(RAFT_SERVER_OPTIONS);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  servers.push(server);
  return { server, address: `127.0.0.1:${port}` };
}

afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
  for (const server of servers.splice(0)) server.forceShutdown();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const single = (id = 1): { voters: NodeId[]; learners: NodeId[]; addresses: Record<number, string> } => ({
  voters: [nodeId(id)],
  learners: [],
  addresses: {},
});

describe('RaftNode, single node', () => {
  it.each(['fsync', 'process'] as const)('elects itself at once and applies proposals in order, resolving each with its result (%s)', async (durability) => {
    const dir = await tempDir();
    const sm = new ListMachine();
    const started = Date.now();
    const node = await open({ id: nodeId(1), storage: { dir }, bootstrap: single(), stateMachine: sm, durability, timing: { tickMs: 100, electionTick: 10 } });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => node.propose(encode(`p${i}`))));
    expect(Date.now() - started).toBeLessThan(900); // well under one election timeout (1-2 s)
    expect(sm.items).toEqual(Array.from({ length: 200 }, (_, i) => `p${i}`));
    expect(new Set(results).size).toBe(200);
    expect([...results].sort((a, b) => a - b)).toEqual(results);
    const status = node.status();
    expect(status.role).toBe(Role.Leader);
    expect(status.leader).toBe(1);
    expect(status.appliedIndex).toBe(results.at(-1));
    await node.readBarrier();
    await node.sync();
  });

  it('replays the log into a fresh state machine after a restart', async () => {
    const dir = await tempDir();
    const first = new ListMachine();
    const node = await open({ id: nodeId(1), storage: { dir }, bootstrap: single(), stateMachine: first });
    for (let i = 0; i < 30; i++) await node.propose(encode(`a${i}`));
    await node.close();

    const second = new ListMachine();
    const again = await open({ id: nodeId(1), storage: { dir }, stateMachine: second });
    await again.propose(encode('after'));
    expect(second.items).toEqual([...first.items, 'after']);
    expect(again.status().term).toBeGreaterThanOrEqual(1);
  });

  it('skips entries the state machine already holds durably', async () => {
    const dir = await tempDir();
    const node = await open({ id: nodeId(1), storage: { dir }, bootstrap: single(), stateMachine: new ListMachine() });
    for (let i = 0; i < 10; i++) await node.propose(encode(`a${i}`));
    const applied = node.status().appliedIndex;
    await node.close();

    const durable = new ListMachine();
    await durable.restore(encode(JSON.stringify(['restored'])), applied - 3);
    durable.restores = [];
    const again = await open({ id: nodeId(1), storage: { dir }, stateMachine: durable });
    await again.propose(encode('next'));
    expect(durable.items).toEqual(['restored', 'a7', 'a8', 'a9', 'next']);
    expect(durable.restores).toEqual([]);
  });

  it('snapshots and compacts as it goes, and restarts from the snapshot', async () => {
    const dir = await tempDir();
    const sm = new ListMachine();
    const node = await open({ id: nodeId(1), storage: { dir }, bootstrap: single(), stateMachine: sm, snapshotEvery: 50, compactionMargin: 10 });
    for (let i = 0; i < 300; i++) await node.propose(encode(`s${i}`));
    const status = node.status();
    expect(status.snapshotIndex).toBeGreaterThanOrEqual(status.appliedIndex - 50);
    // Alone in its group, nobody lags: no margin is kept behind the snapshot.
    expect(status.firstIndex).toBe(status.snapshotIndex + 1);
    await node.close();

    const fresh = new ListMachine();
    const again = await open({ id: nodeId(1), storage: { dir }, stateMachine: fresh, snapshotEvery: 50, compactionMargin: 10 });
    expect(fresh.restores).toEqual([status.snapshotIndex]);
    await again.propose(encode('tail'));
    expect(fresh.items).toEqual([...sm.items, 'tail']);
  });

  it('compacts behind a persistent state machine without images while alone, and takes one before a member joins', async () => {
    const dir = await tempDir();
    const sm = new PersistentListMachine();
    const node = await open({ id: nodeId(1), storage: { dir }, bootstrap: single(), stateMachine: sm, snapshotEvery: 50, compactionMargin: 10 });
    for (let i = 0; i < 300; i++) await node.propose(encode(`p${i}`));
    const status = node.status();
    expect(status.snapshotIndex).toBeGreaterThanOrEqual(status.appliedIndex - 50);
    expect(status.firstIndex).toBe(status.snapshotIndex + 1);
    expect(sm.images).toBe(0);
    await node.close();

    const again = await open({ id: nodeId(1), storage: { dir }, stateMachine: sm, snapshotEvery: 50, compactionMargin: 10 });
    expect(sm.restores).toBe(0);
    await again.propose(encode('tail'));
    expect(sm.items.at(-1)).toBe('tail');
    await again.addLearner(nodeId(2), '127.0.0.1:1');
    expect(sm.images).toBe(1);
    // 'process' durability: what the state machine wrote survives a killed process unflushed.
    expect(sm.syncedAt).toEqual([]);
  });

  it("flushes a persistent state machine before compacting behind it in 'fsync' mode", async () => {
    const sm = new PersistentListMachine();
    const node = await open({ id: nodeId(1), storage: { dir: await tempDir() }, bootstrap: single(), stateMachine: sm, durability: 'fsync', snapshotEvery: 50 });
    for (let i = 0; i < 120; i++) await node.propose(encode(`f${i}`));
    const { snapshotIndex, firstIndex } = node.status();
    expect(sm.syncedAt.length).toBeGreaterThanOrEqual(2);
    // The log only lost entries whose effects had been flushed: a flush at the snapshot's index.
    expect(sm.syncedAt.at(-1)).toBe(snapshotIndex);
    expect(firstIndex).toBe(snapshotIndex + 1);
  });

  it('rejects what is pending and everything after close with ClosedError', async () => {
    const dir = await tempDir();
    const node = await open({ id: nodeId(1), storage: { dir }, bootstrap: single(), stateMachine: new ListMachine() });
    await node.propose(encode('x'));
    const pending = node.propose(encode('y'));
    await node.close();
    await expect(pending).rejects.toBeInstanceOf(ClosedError);
    await expect(node.propose(encode('z'))).rejects.toBeInstanceOf(ClosedError);
    await expect(node.readBarrier()).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('RaftNode, three nodes over gRPC', () => {
  async function group(
    size: number,
    deliverable?: (m: Message) => boolean,
  ): Promise<{ nodes: RaftNode<number>[]; sms: ListMachine[]; addresses: Record<number, string> }> {
    const hosts = await Promise.all(Array.from({ length: size }, () => boundServer()));
    const addresses: Record<number, string> = {};
    hosts.forEach((h, k) => (addresses[k + 1] = h.address));
    const bootstrap = { voters: hosts.map((_, k) => nodeId(k + 1)), learners: [], addresses };
    const machines = hosts.map(() => new ListMachine());
    const members = await Promise.all(
      hosts.map(async (h, k) =>
        open({
          id: nodeId(k + 1),
          storage: { dir: await tempDir() },
          bootstrap,
          stateMachine: machines[k]!,
          server: h.server,
          token: TOKEN,
          timing: { tickMs: 20, electionTick: 10 },
          ...(deliverable ? { deliverable } : {}),
        }),
      ),
    );
    return { nodes: members, sms: machines, addresses };
  }

  async function leaderOf(members: RaftNode<number>[]): Promise<RaftNode<number>> {
    let leader: RaftNode<number> | undefined;
    await until(() => (leader = members.find((n) => n.status().role === Role.Leader)) !== undefined, 10_000, 'a leader');
    return leader!;
  }

  it('replicates to every member; followers refuse proposals with the leader and its address; leadership transfers', async () => {
    const { nodes: members, sms, addresses } = await group(3);
    const leader = await leaderOf(members);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => leader.propose(encode(`r${i}`))));
    expect(results).toHaveLength(100);
    const follower = members.find((n) => n !== leader)!;
    await until(() => follower.status().leader === leader.id, 5_000, 'follower knows the leader');
    const refusal = await follower.propose(encode('nope')).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(NotLeaderError);
    expect((refusal as NotLeaderError).leader).toBe(leader.id);
    expect((refusal as NotLeaderError).leaderAddress).toBe(addresses[leader.id]);
    await until(() => sms.every((sm) => sm.items.length === 100), 5_000, 'all members applied');
    for (const sm of sms) expect(sm.items).toEqual(Array.from({ length: 100 }, (_, i) => `r${i}`));
    await follower.readBarrier();
    expect(follower.status().appliedIndex).toBeGreaterThanOrEqual(results.at(-1)!);

    await expect(follower.transferLeadership(leader.id)).rejects.toBeInstanceOf(NotLeaderError);
    await leader.transferLeadership(follower.id, { timeoutMs: 5_000 });
    await until(() => follower.status().role === Role.Leader, 5_000, 'the transfer target leads');
    await follower.propose(encode('after the transfer'));
    await until(() => sms.every((sm) => sm.items.at(-1) === 'after the transfer'), 5_000, 'all members applied');
  });

  it('rejects a proposal whose slot a new leader took with ProposalDroppedError, and reports leader changes', async () => {
    let isolated = 0;
    const { nodes: members } = await group(3, (m) => m.from !== isolated && m.to !== isolated);
    const oldLeader = await leaderOf(members);
    await oldLeader.propose(encode('before'));
    const changes: [number, number][] = [];
    oldLeader.on('leaderChange', (leader, term) => changes.push([leader, term]));

    isolated = oldLeader.id;
    const stranded = oldLeader.propose(encode('stranded'), { timeoutMs: 20_000 });
    const others = members.filter((n) => n !== oldLeader);
    let newLeader: RaftNode<number> | undefined;
    await until(() => (newLeader = others.find((n) => n.status().role === Role.Leader)) !== undefined, 10_000, 'a new leader');
    await newLeader!.propose(encode('under the new leader'));

    isolated = 0;
    const outcome = await stranded.catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(ProposalDroppedError);
    await until(() => oldLeader.status().leader === newLeader!.id, 5_000, 'the old leader follows');
    expect(changes.at(-1)![0]).toBe(newLeader!.id);
    expect(changes.at(-1)![1]).toBeGreaterThan(1);
  });

  it('times out a proposal that cannot commit (followers gone)', async () => {
    const { nodes: members } = await group(3);
    const leader = await leaderOf(members);
    await leader.propose(encode('ok'));
    for (const n of members) if (n !== leader) await n.close();
    await expect(leader.propose(encode('stuck'), { timeoutMs: 300 })).rejects.toSatisfy(
      (e: unknown) => e instanceof ProposalTimeoutError || e instanceof NotLeaderError,
    );
  });

  it('adds a voter that catches up from a snapshot and a learner; removed members stop, and a removed leader hands over', async () => {
    const first = await boundServer();
    const node1 = await open({
      id: nodeId(1),
      storage: { dir: await tempDir() },
      bootstrap: { voters: [nodeId(1)], learners: [], addresses: { 1: first.address } },
      stateMachine: new ListMachine(),
      server: first.server,
      token: TOKEN,
      timing: { tickMs: 20, electionTick: 10 },
      snapshotEvery: 20,
      compactionMargin: 5,
    });
    for (let i = 0; i < 60; i++) await node1.propose(encode(`m${i}`));
    expect(node1.status().firstIndex).toBeGreaterThan(1);

    const second = await boundServer();
    const joinerSm = new ListMachine();
    const node2 = await open({
      id: nodeId(2),
      storage: { dir: await tempDir() },
      peers: { 1: first.address },
      stateMachine: joinerSm,
      server: second.server,
      token: TOKEN,
      timing: { tickMs: 20, electionTick: 10 },
    });
    await node1.addVoter(nodeId(2), second.address);
    await node1.propose(encode('after-join'));
    await until(() => joinerSm.items.at(-1) === 'after-join', 10_000, 'the joiner caught up');
    expect(joinerSm.restores.length).toBeGreaterThan(0);
    expect(joinerSm.items).toHaveLength(61);
    expect(node1.status().conf.voters).toEqual([1, 2]);
    // With a follower, compaction keeps the margin behind each snapshot.
    const snapshotAtJoin = node1.status().snapshotIndex;
    for (let i = 0; i < 25; i++) await node1.propose(encode(`two${i}`));
    const withFollower = node1.status();
    expect(withFollower.snapshotIndex).toBeGreaterThan(snapshotAtJoin);
    expect(withFollower.firstIndex).toBe(withFollower.snapshotIndex - 5 + 1);

    // A learner joins, then is removed: it learns of its removal and stops.
    const third = await boundServer();
    const learnerSm = new ListMachine();
    const node3 = await open({
      id: nodeId(3),
      storage: { dir: await tempDir() },
      peers: { 1: first.address, 2: second.address },
      stateMachine: learnerSm,
      server: third.server,
      token: TOKEN,
      timing: { tickMs: 20, electionTick: 10 },
    });
    await node1.addLearner(nodeId(3), third.address);
    await node1.propose(encode('with-learner'));
    await until(() => learnerSm.items.at(-1) === 'with-learner', 10_000, 'the learner caught up');
    expect(node1.status().conf.learners).toEqual([3]);
    const learnerRemoved = new Promise<void>((resolve) => node3.once('removed', () => resolve()));
    await node1.removeNode(nodeId(3));
    await learnerRemoved;
    await expect(node3.propose(encode('x'))).rejects.toBeInstanceOf(RemovedFromGroupError);
    expect(node1.status().conf.learners).toEqual([]);

    // The leader removes itself: it stops once the removal applies; the other member takes over.
    const removed = new Promise<void>((resolve) => node1.once('removed', () => resolve()));
    await node1.removeNode(nodeId(1));
    await removed;
    await expect(node1.propose(encode('x'))).rejects.toBeInstanceOf(RemovedFromGroupError);
    expect(node1.status().removed).toBe(true);
    await until(() => node2.status().role === Role.Leader, 10_000, 'the remaining member leads');
    expect(node2.status().conf.voters).toEqual([2]);
    await node2.propose(encode('alone now'));
    expect(joinerSm.items.at(-1)).toBe('alone now');
  });
});
