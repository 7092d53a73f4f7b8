// RaftNode: one member of one Raft group, running. It owns the pure core (RawNode), the clock that
// ticks it, the LMDB log, the gRPC transport and the application's StateMachine, and turns the
// core's Ready into I/O in the order the contract demands: persist (one LMDB transaction), send,
// restore/apply in log order, advance (a leader sends while it persists: see handleReady).
// Proposals and messages that arrive while a Ready is being handled land in the next Ready, which
// is where batching (and throughput) comes from.
//
// It never decides anything Raft decides (who leads, what commits): that is the core's. It never
// lets a caller's promise hang forever: every proposal resolves, or rejects with a RaftError.
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import type { RootDatabase } from 'lmdb';
import {
  ConfChangeRejectedError as CoreConfChangeRejectedError,
  NotLeaderError as CoreNotLeaderError,
  RawNode,
  decodeConfChange,
  type RaftStatus,
} from './core/raw-node.js';
import {
  ClosedError,
  ConfChangeRejectedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalOutcomeUnknownError,
  ProposalTimeoutError,
  RaftError,
  RemovedFromGroupError,
} from './errors.js';
import type { StateMachine } from './state-machine.js';
import { LmdbLogStorage, type Durability } from './storage/lmdb-log-storage.js';
import { RaftPeers } from './transport/peers.js';
import { registerRaftService } from './transport/server.js';
import {
  ConfChangeType,
  EntryType,
  NO_NODE,
  Role,
  type ConfChange,
  type ConfState,
  type Message,
  type NodeId,
  type Ready,
} from './types.js';

export interface RaftTiming {
  /** Milliseconds per logical tick. Default 100. */
  tickMs: number;
  /** Ticks without a leader before a follower campaigns. Default 10. */
  electionTick: number;
  /** Ticks between a leader's heartbeats. Default 1. */
  heartbeatTick: number;
}

export interface RaftNodeOptions<Result> {
  id: NodeId;
  /** The log's home: a directory of its own, or an LMDB environment shared with the state machine. */
  storage: { dir: string } | { env: RootDatabase; prefix?: string };
  /**
   * The members of a brand-new group, with their addresses. Used only when the storage is empty; a
   * node joining an existing group passes nothing and waits for the leader to reach it.
   */
  bootstrap?: ConfState;
  /**
   * Addresses of the group's members as known before this node has any membership of its own: a node
   * joining an existing group needs them to answer the leader. Superseded by the group's own
   * membership as soon as this node has one.
   */
  peers?: Record<number, string>;
  stateMachine: StateMachine<Result>;
  /** Default 'fsync'. Must match the shared environment's flags (see openRaftEnvironment). */
  durability?: Durability;
  /** Where to host the Raft service; omit (with no peers) for a single-node group with no network. */
  server?: grpc.Server;
  /** The cluster token of every Raft call (required with `server`). */
  token?: string;
  /** The group id carried on the wire. Default 0. */
  group?: number;
  timing?: Partial<RaftTiming>;
  /** Take a state machine snapshot (and compact the log) every this many applied entries. Default 10,000. */
  snapshotEvery?: number;
  /**
   * Entries kept behind a snapshot so slightly lagging followers catch up without one. Default
   * 5,000; none while this node is alone in its group.
   */
  compactionMargin?: number;
  /** Default deadline of propose(), readBarrier() and membership changes. Default 10,000 ms. */
  defaultTimeoutMs?: number;
  /** Largest size of one append message, in bytes. Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Append messages in flight to one follower. Default 256. */
  maxInflightMsgs?: number;
  /** Randomness for election timeouts (tests pass a seeded one). Default Math.random. */
  random?: () => number;
  /**
   * Fault injection: an outgoing message for which this returns false is dropped, as a lossy or
   * partitioned network would. For tests and chaos runs only.
   */
  deliverable?: (m: Message) => boolean;
}

export interface RaftNodeStatus {
  id: NodeId;
  role: Role;
  leader: NodeId;
  leaderAddress?: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  snapshotIndex: number;
  firstIndex: number;
  lastIndex: number;
  conf: ConfState;
  removed: boolean;
}

export interface RaftNodeEvents {
  /** The leader this node knows changed (NO_NODE: none known right now). */
  leaderChange: [leader: NodeId, term: number];
  /** A committed membership change removed this node: it refuses callers, and stops once it has handed over. */
  removed: [];
  /** The node stopped on an I/O failure (storage or state machine). Unhandled, it crashes the process. */
  error: [error: Error];
}

export interface CallOptions {
  timeoutMs?: number;
}

/** Something waiting for the entry at an index to be applied. */
interface PendingEntry {
  term: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** A readBarrier waiting first for its read index, then for the applied index to reach it. */
interface PendingRead {
  index: number | undefined;
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

const DEFAULT_TIMING: RaftTiming = { tickMs: 100, electionTick: 10, heartbeatTick: 1 };

export class RaftNode<Result = unknown> extends EventEmitter<RaftNodeEvents> {
  readonly id: NodeId;
  private readonly sm: StateMachine<Result>;
  private readonly raw: RawNode;
  private readonly peers: RaftPeers | undefined;
  /** Addresses to use until this node has a membership of its own (RaftNodeOptions.peers). */
  private readonly joinPeers: Record<number, string>;
  private readonly timing: RaftTiming;
  private readonly defaultTimeoutMs: number;
  private readonly snapshotEvery: number;
  private readonly compactionMargin: number;
  private readonly deliverable: ((m: Message) => boolean) | undefined;
  private readonly pendingEntries = new Map<number, PendingEntry>();
  private readonly pendingReads = new Map<number, PendingRead>();
  private nextReadId = 1;
  private leader: NodeId = NO_NODE;
  private role: Role = Role.Follower;
  private applied: number;
  private addresses: Record<number, string> = {};
  private wakeLoop: (() => void) | undefined;
  private readonly tickTimer: NodeJS.Timeout;
  private readonly loopDone: Promise<void>;
  private unregisterService: (() => void) | undefined;
  private stopped = false;
  /** Whether the stored snapshot carries a state machine image (see takeSnapshot). */
  private snapshotHasImage: boolean;
  private removed = false;
  private removedAt = 0;
  private awaitingSoleVoterElection = false;
  /** The commit index found on disk: open() resolves once the state machine has caught up to it. */
  private readonly replayTarget: number;
  private replay: { done: boolean; resolve(): void; reject(error: Error): void };
  private readonly replayed: Promise<void>;

  /**
   * Opens the node: loads its log (or bootstraps a new group), brings the state machine up to the
   * stored snapshot, joins the transport and starts ticking. Entries committed but not yet applied
   * by the state machine are replayed through the normal apply path before open() resolves; a
   * group whose only voter is this node is led by it by then.
   */
  static async open<Result>(options: RaftNodeOptions<Result>): Promise<RaftNode<Result>> {
    const durability = options.durability ?? 'fsync';
    const storage =
      'dir' in options.storage
        ? LmdbLogStorage.open(options.storage.dir, { durability })
        : LmdbLogStorage.inEnvironment(options.storage.env, { durability, prefix: options.storage.prefix });
    try {
      const isEmpty =
        storage.lastIndex() === 0 && storage.hardState().term === 0 && storage.initialState().confState.voters.length === 0;
      if (isEmpty && options.bootstrap) {
        await storage.applySnapshot({ meta: { index: 0, term: 0, conf: options.bootstrap }, data: new Uint8Array(0) });
      }
      const sm = options.stateMachine;
      if (sm.appliedIndex() < storage.snapshotMeta().index) {
        const snapshot = storage.snapshot();
        await sm.restore(snapshot.data, snapshot.meta.index);
      }
      const node = new RaftNode(options, storage, sm.appliedIndex());
      await node.replayed.catch(async (error: unknown) => {
        await node.close();
        throw error;
      });
      return node;
    } catch (error) {
      await storage.close();
      throw error;
    }
  }

  private constructor(
    options: RaftNodeOptions<Result>,
    private readonly storage: LmdbLogStorage,
    smApplied: number,
  ) {
    super();
    this.id = options.id;
    this.sm = options.stateMachine;
    this.joinPeers = options.peers ?? {};
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
    this.snapshotEvery = Math.max(1, options.snapshotEvery ?? 10_000);
    this.compactionMargin = Math.max(0, options.compactionMargin ?? 5_000);
    this.deliverable = options.deliverable;
    // The core hands out committed entries after `applied` (and replays membership changes up to it).
    this.applied = Math.max(storage.snapshotMeta().index, smApplied);
    this.snapshotHasImage = storage.snapshotMeta().index === 0 || storage.snapshot().data.length > 0;
    this.replayTarget = storage.hardState().commit;
    let settleReplay: { resolve(): void; reject(error: Error): void } | undefined;
    this.replayed = new Promise<void>((resolve, reject) => (settleReplay = { resolve, reject }));
    this.replay = { done: false, ...settleReplay! };
    this.raw = new RawNode({
      id: options.id,
      storage,
      applied: this.applied,
      electionTick: this.timing.electionTick,
      heartbeatTick: this.timing.heartbeatTick,
      maxSizePerMsg: options.maxSizePerMsg ?? 1024 * 1024,
      maxInflightMsgs: options.maxInflightMsgs ?? 256,
      checkQuorum: true,
      preVote: true,
      readOnly: 'safe',
      random: options.random ?? Math.random,
    });
    if (options.server) {
      if (!options.token) throw new RangeError('a RaftNode with a server needs a cluster token');
      this.unregisterService = registerRaftService(options.server, {
        token: options.token,
        group: options.group ?? 0,
        deliver: (messages) => this.receive(messages),
        deliverSnapshot: (message) => this.receive([message]),
      });
      this.peers = new RaftPeers({
        self: options.id,
        token: options.token,
        group: options.group ?? 0,
        onUnreachable: (peer) => this.whileRunning(() => this.raw.reportUnreachable(peer)),
        onSnapshotSent: (peer, ok) => this.whileRunning(() => this.raw.reportSnapshot(peer, ok)),
      });
    }
    this.followMembership(this.coreStatus().conf);
    this.campaignIfSoleVoter();
    this.noteReplayProgress();
    this.tickTimer = setInterval(() => {
      this.whileRunning(() => this.raw.tick());
      if (this.removed) this.retireWhenHandedOver();
    }, this.timing.tickMs);
    this.loopDone = this.run();
  }

  // ---- the public API ----

  /**
   * Replicates `data` (which must not be modified afterwards: the log keeps it) and resolves with
   * the state machine's result for it on this node.
   */
  propose(data: Uint8Array, options: CallOptions = {}): Promise<Result> {
    return this.track<Result>(() => this.raw.propose(data), options.timeoutMs);
  }

  /** Resolves when a linearizable read of the state machine is safe on this node. */
  readBarrier(options: CallOptions = {}): Promise<void> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const readId = this.nextReadId++;
    try {
      this.raw.readIndex(readContext(readId));
    } catch (error) {
      return Promise.reject(this.translate(error));
    }
    this.wake();
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingReads.delete(readId);
        reject(new ProposalTimeoutError(timeoutMs, 'read barrier'));
      }, timeoutMs);
      this.pendingReads.set(readId, { index: undefined, resolve, reject, timer });
    });
  }

  async addVoter(id: NodeId, address: string, options: CallOptions = {}): Promise<void> {
    await this.ensureImage();
    return this.changeMembership({ type: ConfChangeType.AddVoter, node: id, address }, options);
  }

  async addLearner(id: NodeId, address: string, options: CallOptions = {}): Promise<void> {
    await this.ensureImage();
    return this.changeMembership({ type: ConfChangeType.AddLearner, node: id, address }, options);
  }

  removeNode(id: NodeId, options: CallOptions = {}): Promise<void> {
    return this.changeMembership({ type: ConfChangeType.RemoveNode, node: id, address: '' }, options);
  }

  /** Asks the leader (this node) to hand leadership to `id`; resolves once this node sees `id` lead. */
  async transferLeadership(id: NodeId, options: CallOptions = {}): Promise<void> {
    const refusal = this.refusal();
    if (refusal) throw refusal;
    if (this.role !== Role.Leader) throw this.notLeader();
    try {
      this.raw.transferLeadership(id);
    } catch (error) {
      throw this.translate(error);
    }
    this.wake();
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('leaderChange', onChange);
        reject(new ProposalTimeoutError(timeoutMs, 'leadership transfer'));
      }, timeoutMs);
      const onChange = (leader: NodeId): void => {
        if (leader !== id) return;
        clearTimeout(timer);
        this.off('leaderChange', onChange);
        resolve();
      };
      this.on('leaderChange', onChange);
    });
  }

  status(): RaftNodeStatus {
    const hardState = this.storage.hardState();
    const leaderAddress = this.addresses[this.leader];
    return {
      id: this.id,
      role: this.role,
      leader: this.leader,
      ...(leaderAddress ? { leaderAddress } : {}),
      term: hardState.term,
      commitIndex: hardState.commit,
      appliedIndex: this.applied,
      snapshotIndex: this.storage.snapshotMeta().index,
      firstIndex: this.storage.firstIndex(),
      lastIndex: this.storage.lastIndex(),
      conf: this.coreStatus().conf,
      removed: this.removed,
    };
  }

  /** In 'process' durability: forces everything written so far to the disk. */
  sync(): Promise<void> {
    return this.storage.sync();
  }

  /** Stops ticking and serving, rejects whatever is pending with ClosedError, closes the log. */
  async close(): Promise<void> {
    if (!this.stopped) this.stop(new ClosedError());
    await this.loopDone;
    await this.storage.close();
  }

  // ---- inside ----

  private coreStatus(): RaftStatus {
    return this.raw.status();
  }

  private refusal(): RaftError | undefined {
    if (this.removed) return new RemovedFromGroupError();
    if (this.stopped) return new ClosedError();
    return undefined;
  }

  private notLeader(leader: NodeId = this.leader): NotLeaderError {
    return new NotLeaderError(leader, this.addresses[leader]);
  }

  /** The core's refusals, as the RaftErrors callers see; anything else is a broken invariant. */
  private translate(error: unknown): RaftError {
    if (error instanceof CoreNotLeaderError) return this.notLeader(error.leader);
    if (error instanceof CoreConfChangeRejectedError) return new ConfChangeRejectedError(error.message.replace(/^raft core: /, ''));
    this.fail(error as Error);
    return new ClosedError();
  }

  /** Runs `submit` (which appends an entry on the core) and waits for that entry to apply. */
  private track<T>(submit: () => { index: number; term: number }, timeoutMs = this.defaultTimeoutMs): Promise<T> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    let position: { index: number; term: number };
    try {
      position = submit();
    } catch (error) {
      return Promise.reject(this.translate(error));
    }
    this.wake();
    // An earlier proposal still waiting at this index lost its slot to a leader's truncation.
    const displaced = this.pendingEntries.get(position.index);
    if (displaced) this.settle(position.index, displaced, new ProposalDroppedError(position.index, displaced.term));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingEntries.delete(position.index);
        reject(new ProposalTimeoutError(timeoutMs));
      }, timeoutMs);
      this.pendingEntries.set(position.index, { term: position.term, resolve: resolve as (v: unknown) => void, reject, timer });
    });
  }

  private changeMembership(change: ConfChange, options: CallOptions): Promise<void> {
    return this.track<void>(() => this.raw.proposeConfChange(change), options.timeoutMs);
  }

  /** Messages from the transport. The core ignores what it cannot use; a throw is a broken invariant. */
  private receive(messages: Message[]): void {
    if (this.stopped) throw new ClosedError();
    this.whileRunning(() => {
      for (const m of messages) if (m.to === this.id) this.raw.step(m);
    });
  }

  /** Moves the core (tick, step, transport reports) unless stopped, then lets the loop look. */
  private whileRunning(action: () => void): void {
    if (this.stopped) return;
    try {
      action();
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    this.wake();
  }

  private wake(): void {
    const wake = this.wakeLoop;
    this.wakeLoop = undefined;
    wake?.();
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        if (!this.raw.hasReady()) {
          await new Promise<void>((resolve) => (this.wakeLoop = resolve));
          continue;
        }
        await this.handleReady(this.raw.ready());
      }
    } catch (error) {
      this.fail(error as Error);
    }
  }

  /** An I/O failure or a broken invariant: stop for good (fail-stop) and say why. */
  private fail(error: Error): void {
    if (this.stopped) return;
    this.stop(new ClosedError());
    if (!this.replay.done) {
      this.replay.done = true;
      this.replay.reject(error);
    } else {
      // Outside the loop, so that an unhandled 'error' crashes the process rather than the loop.
      process.nextTick(() => this.emit('error', error));
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.noteSoftState(rd.softState.leader, rd.softState.role, rd.hardState?.term);
    // A leader may send while its own write is still going to disk (Raft thesis §10.2.1): its
    // messages only ask followers to store entries, and nothing that counts this node's unwritten
    // entries is revealed (commit index in a message, a result to a caller) before the next Ready,
    // which this loop takes only after this write. A term or vote is always written before sending.
    const stored = this.storage.hardState();
    const sendFirst =
      this.role === Role.Leader && (!rd.hardState || (rd.hardState.term === stored.term && rd.hardState.vote === stored.vote));
    if (sendFirst) this.send(rd.messages);
    if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
      await this.storage.write({
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
        entries: rd.entries,
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        mustSync: rd.mustSync,
      });
    }
    if (this.stopped) return;
    if (!sendFirst) this.send(rd.messages);
    if (rd.snapshot && rd.snapshot.meta.index > this.applied) {
      await this.sm.restore(rd.snapshot.data, rd.snapshot.meta.index);
      this.applied = rd.snapshot.meta.index;
      for (const [index, pending] of this.pendingEntries) {
        if (index <= this.applied) this.settle(index, pending, new ProposalOutcomeUnknownError(index));
      }
      this.followMembership(rd.snapshot.meta.conf);
    }
    let membershipChanged = false;
    let removedSelf = false;
    for (const entry of rd.committedEntries) {
      // Membership changes are the core's; only Normal entries reach the state machine. A state
      // machine that answers synchronously is not awaited, so a whole batch applies in one turn.
      let outcome: unknown;
      if (entry.type === EntryType.Normal) {
        outcome = this.sm.apply(entry);
        if (outcome instanceof Promise) outcome = await outcome;
      } else {
        membershipChanged = true;
        const change = decodeConfChange(entry.data);
        if (change.type === ConfChangeType.RemoveNode && change.node === this.id) removedSelf = true;
      }
      this.applied = entry.index;
      const pending = this.pendingEntries.get(entry.index);
      if (pending) {
        this.settle(entry.index, pending, pending.term === entry.term ? undefined : new ProposalDroppedError(entry.index, pending.term), outcome);
      }
    }
    for (const readState of rd.readStates) {
      const pending = this.pendingReads.get(readContextId(readState.context));
      if (pending) pending.index = readState.index;
    }
    this.raw.advance(rd);
    if (this.awaitingSoleVoterElection) this.campaignIfSoleVoter();
    this.releaseReads();
    if (membershipChanged) this.followMembership(this.coreStatus().conf);
    if (removedSelf && !this.removed) {
      this.removed = true;
      this.removedAt = Date.now();
      for (const [index, pending] of this.pendingEntries) this.settle(index, pending, new RemovedFromGroupError());
      this.emit('removed');
    }
    if (this.removed) {
      this.retireWhenHandedOver();
      if (this.stopped) return;
    }
    if (this.applied - this.storage.snapshotMeta().index >= this.snapshotEvery) await this.takeSnapshot();
    this.noteReplayProgress();
  }

  private noteReplayProgress(): void {
    if (this.replay.done || this.applied < this.replayTarget || this.awaitingSoleVoterElection) return;
    this.replay.done = true;
    this.replay.resolve();
  }

  private send(messages: Message[]): void {
    const deliverable = this.deliverable ? messages.filter(this.deliverable) : messages;
    if (deliverable.length > 0) this.peers?.send(deliverable);
  }

  private settle(index: number, pending: PendingEntry, error: Error | undefined, value?: unknown): void {
    clearTimeout(pending.timer);
    this.pendingEntries.delete(index);
    if (error) pending.reject(error);
    else pending.resolve(value);
  }

  private releaseReads(): void {
    for (const [readId, pending] of this.pendingReads) {
      if (pending.index !== undefined && pending.index <= this.applied) {
        clearTimeout(pending.timer);
        this.pendingReads.delete(readId);
        pending.resolve();
      }
    }
  }

  private noteSoftState(leader: NodeId, role: Role, term: number | undefined): void {
    const leaderChanged = leader !== this.leader;
    this.role = role;
    this.leader = leader;
    if (!leaderChanged) return;
    // Read requests sent to the old leader will never be answered.
    for (const [readId, pending] of this.pendingReads) {
      if (pending.index === undefined) {
        clearTimeout(pending.timer);
        this.pendingReads.delete(readId);
        pending.reject(this.notLeader(leader));
      }
    }
    this.emit('leaderChange', leader, term ?? this.storage.hardState().term);
  }

  /**
   * A group whose only voter is this node elects it at once instead of after an election timeout.
   * On a restart the core refuses until the replay has applied the membership, so this is retried
   * after every Ready until it is leader or the group turns out to have other voters.
   */
  private campaignIfSoleVoter(): void {
    const { voters } = this.coreStatus().conf;
    const soleVoter = voters.length === 1 && voters[0] === this.id;
    if (soleVoter && this.role !== Role.Leader) this.raw.campaign();
    this.awaitingSoleVoterElection = soleVoter && this.coreStatus().role !== Role.Leader;
  }

  private followMembership(conf: ConfState): void {
    this.addresses = conf.voters.length > 0 ? { ...conf.addresses } : { ...this.joinPeers };
    this.peers?.setAddresses(this.addresses);
  }

  private async takeSnapshot(): Promise<void> {
    const index = this.applied;
    const conf = this.coreStatus().conf;
    // A persistent state machine alone in its group needs no image to compact behind: its own
    // storage holds the state, and nobody else will ever ask for it (ensureImage covers joins).
    const alone = conf.learners.length === 0 && conf.voters.length === 1 && conf.voters[0] === this.id;
    const imageless = this.sm.persistent === true && alone;
    if (imageless && this.storage.durability === 'fsync') await this.sm.sync?.();
    const data = imageless ? new Uint8Array(0) : await this.sm.snapshot();
    if (this.stopped) return;
    this.storage.saveSnapshot({ meta: { index, term: this.storage.term(index), conf }, data });
    this.snapshotHasImage = !imageless;
    // Nobody can lag behind a member alone in its group.
    const compactTo = index - (alone ? 0 : this.compactionMargin);
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
  }

  /** Before another member joins, the stored snapshot must carry an image it can install. */
  private async ensureImage(): Promise<void> {
    if (this.snapshotHasImage || this.storage.snapshotMeta().index === 0) return;
    const index = this.applied;
    const data = await this.sm.snapshot();
    if (this.stopped) return;
    this.storage.saveSnapshot({ meta: { index, term: this.storage.term(index), conf: this.coreStatus().conf }, data });
    this.snapshotHasImage = true;
  }

  /**
   * A removed node keeps running (refusing callers) until it has handed leadership over, and
   * then for two election timeouts more, answering votes, so the remaining members are never left
   * without the messages that let them elect a leader. It stops after ten election timeouts at most.
   */
  private retireWhenHandedOver(): void {
    const electionMs = this.timing.electionTick * this.timing.tickMs;
    const since = Date.now() - this.removedAt;
    if ((this.role !== Role.Leader && since >= 2 * electionMs) || since >= 10 * electionMs) {
      this.stop(new RemovedFromGroupError());
    }
  }

  /** Stops everything that moves; rejects every waiting caller with `reason`. */
  private stop(reason: RaftError): void {
    this.stopped = true;
    clearInterval(this.tickTimer);
    this.unregisterService?.();
    this.unregisterService = undefined;
    // A removed node still owes its peers what it queued (the commit that removed it, for one).
    if (reason instanceof RemovedFromGroupError) this.peers?.drain();
    else this.peers?.close();
    for (const [index, pending] of this.pendingEntries) this.settle(index, pending, reason);
    for (const pending of this.pendingReads.values()) {
      clearTimeout(pending.timer);
      pending.reject(reason);
    }
    this.pendingReads.clear();
    this.wake();
  }
}

function readContext(readId: number): Uint8Array {
  const context = new Uint8Array(8);
  new DataView(context.buffer).setFloat64(0, readId);
  return context;
}

function readContextId(context: Uint8Array): number {
  if (context.byteLength !== 8) return 0;
  return new DataView(context.buffer, context.byteOffset, 8).getFloat64(0);
}
