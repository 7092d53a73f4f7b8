// A deterministic simulation of a Raft group: RawNodes over MemoryStorage, each run by a simulated
// driver (persist a Ready after a random delay, send, apply to a KV state machine, snapshot and
// compact), over a simulated network that drops, duplicates, reorders and delays messages, with
// partitions, crashes and restarts, client puts/gets, membership changes and leadership transfers.
// It checks Raft's safety properties as it goes and throws SimulationViolation at the first breach;
// it records the client history for the linearizability check. Every choice comes from the seed.
import { ConfChangeRejectedError, NotLeaderError, RawNode } from '../../../src/raft/core/raw-node.js';
import { isMember } from '../../../src/raft/core/conf-change.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import {
  ConfChangeType,
  MessageType,
  NO_NODE,
  Role,
  nodeId,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
} from '../../../src/raft/types.js';
import { KvStateMachine, encodePut } from './kv-state-machine.js';
import { checkLinearizable, type RegisterOp } from './linearizability.js';
import { makeRng, type Rng } from './prng.js';

export interface SimConfig {
  seed: number;
  /** Nodes 1..poolSize exist; nodes 1..initialVoters form the group at first. */
  poolSize: number;
  initialVoters: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** readOnly 'lease' (only when checkQuorum is on). */
  lease: boolean;
  electionTick: number;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
  /** Take a snapshot every this many applied entries, then compact keeping up to compactionMargin entries. */
  snapshotEvery: number;
  compactionMargin: number;
  dropRate: number;
  duplicateRate: number;
  /** Message delay in steps is uniform in [1, maxDelay] (and rarely much longer). */
  maxDelay: number;
  /** A Ready is persisted 0..persistDelayMax steps after the driver takes it. */
  persistDelayMax: number;
  /** Number of clients; each idle one starts an operation with probability clientRate per step. */
  clients: number;
  clientRate: number;
}

export type SimAction =
  | { kind: 'run'; steps: number }
  | { kind: 'crash'; node: number }
  | { kind: 'restart'; node: number }
  | { kind: 'partition'; sides: number }
  /** Cut a leader off, alone or with `minority` (a bit set) of the other nodes. */
  | { kind: 'isolateLeader'; minority: number }
  | { kind: 'crashLeader' }
  | { kind: 'heal' }
  | { kind: 'addLearner'; node: number }
  | { kind: 'addVoter'; node: number }
  | { kind: 'remove'; node: number }
  | { kind: 'transfer'; node: number };

export class SimulationViolation extends Error {
  constructor(message: string, trace: readonly string[]) {
    super(`${message}\n--- last events ---\n${trace.join('\n')}`);
    this.name = 'SimulationViolation';
  }
}

export interface SimReport {
  steps: number;
  elections: number;
  acknowledgedWrites: number;
  reads: number;
  snapshotsSent: number;
  livenessTicks: number;
}

const STEPS_PER_TICK = 4;
/** A client gives up on an operation after this many steps (writes then have an unknown outcome). */
const CLIENT_TIMEOUT_STEPS = 60;
const LONG_DELAY_RATE = 0.01;
const LIVENESS_ELECTION_TIMEOUTS = 40;
/** A generous round trip in the liveness phase's prompt network (2-step delays, 1-step disks). */
const CATCH_UP_TICKS_PER_ENTRY = 2;
const TRACE_LINES = 80;
const KEYS = ['k0', 'k1', 'k2'];
/** The client id of the liveness phase's probe puts. */
const LIVENESS_CLIENT = -1;

interface PendingPut {
  id: number;
  client: number;
  key: string;
  value: string;
  invokedAt: number;
  deadline: number;
  node: SimNode;
  index: number;
  outcome?: 'acknowledged' | 'failed' | 'unknown';
}

interface PendingRead {
  id: number;
  client: number;
  key: string;
  invokedAt: number;
  deadline: number;
  node: SimNode;
  readIndex?: number;
}

interface InFlight {
  m: Message;
  deliverAt: number;
}

class SimNode {
  raw: RawNode | undefined;
  kv = new KvStateMachine();
  pending: { rd: Ready; persistAt: number; leaderTerm?: number } | undefined;
  /** When a crashed node comes back by itself (Infinity: only when an action restarts it). */
  restartAt = Number.POSITIVE_INFINITY;
  /** Puts proposed through this node, by log index. */
  readonly puts = new Map<number, PendingPut>();
  /** Reads asked of this node, by context. */
  readonly reads = new Map<string, PendingRead>();

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
  ) {}

  get alive(): boolean {
    return this.raw !== undefined;
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function entryIdentity(entry: Entry): string {
  return `${entry.type}:${decoder.decode(entry.data)}`;
}

export class Simulation {
  private readonly rng: Rng;
  private readonly nodes: SimNode[] = [];
  private now = 0;
  /** Logical clock of the client history: one tick per invocation and per response. */
  private clock = 0;
  private nextOpId = 1;
  private readonly busyClients = new Set<number>();
  private readonly history: RegisterOp[] = [];
  private network: InFlight[] = [];
  private side = new Map<NodeId, number>();
  private healAt = Number.POSITIVE_INFINITY;
  private dropRate: number;
  private duplicateRate: number;
  private maxDelay: number;
  private longDelayRate = LONG_DELAY_RATE;
  private persistDelayMax: number;
  private readonly trace: string[] = [];
  /** Clients stop starting operations in the liveness phase. */
  private clientsActive = true;

  // Safety bookkeeping across all nodes and all time.
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** (index, term) -> identity of the entry and the term of the entry before it. */
  private readonly logRegistry = new Map<string, { identity: string; previousTerm: number }>();
  /** Entry applied at each index, and the state machine fingerprint right after it. */
  private readonly appliedAt: ({ identity: string; fingerprint: string } | undefined)[] = [];
  /** Term of the committed entry at each index (where a node reported it with the entry at hand). */
  private readonly committedTerm: (number | undefined)[] = [];
  /** Highest commit index any node persisted while in each term. */
  private readonly commitByTerm = new Map<number, number>();
  private readonly report: SimReport = { steps: 0, elections: 0, acknowledgedWrites: 0, reads: 0, snapshotsSent: 0, livenessTicks: 0 };

  constructor(private readonly config: SimConfig) {
    this.rng = makeRng(config.seed);
    this.dropRate = config.dropRate;
    this.duplicateRate = config.duplicateRate;
    this.maxDelay = config.maxDelay;
    this.persistDelayMax = config.persistDelayMax;
    const voters = Array.from({ length: Math.min(config.initialVoters, config.poolSize) }, (_, i) => nodeId(i + 1));
    const addresses = Object.fromEntries(voters.map((id) => [id, this.address(id)]));
    for (let n = 1; n <= config.poolSize; n++) {
      const id = nodeId(n);
      const bootstrap: ConfState = voters.includes(id) ? { voters, learners: [], addresses } : { voters: [], learners: [], addresses: {} };
      const node = new SimNode(id, new MemoryStorage(bootstrap));
      this.nodes.push(node);
      this.start(node);
    }
  }

  /** Runs the schedule, then the liveness phase, then the final checks. */
  run(actions: readonly SimAction[]): SimReport {
    for (const action of actions) this.perform(action);
    this.checkLiveness();
    this.finishClients();
    const verdict = checkLinearizable(this.history);
    if (!verdict.ok) {
      const ops = verdict.ops.map((op) => `${op.kind} ${op.value} [${op.invokedAt}, ${op.returnedAt}]`).join('\n');
      this.fail(`history of key ${verdict.key} is not linearizable:\n${ops}`);
    }
    this.report.steps = this.now;
    return this.report;
  }

  // ---- actions ----

  private perform(action: SimAction): void {
    if (action.kind !== 'run') this.note(`action ${JSON.stringify(action)}`);
    switch (action.kind) {
      case 'run':
        for (let i = 0; i < action.steps; i++) this.step();
        return;
      case 'crash':
        this.crash(this.nodeAt(action.node), this.faultDuration());
        return;
      case 'restart': {
        const node = this.nodeAt(action.node);
        if (!node.alive) this.start(node);
        return;
      }
      case 'partition':
        this.partition(new Map(this.nodes.map((node, i) => [node.id, (action.sides >> i) & 1])));
        return;
      case 'heal':
        this.side = new Map();
        return;
      case 'isolateLeader': {
        const leaders = this.leaders();
        if (leaders.length === 0) return;
        const leader = this.rng.pick(leaders);
        const others = this.nodes.filter((node) => node !== leader);
        const cutOff = new Set([leader, ...others.filter((_, i) => (action.minority >> i) & 1).slice(0, Math.floor((this.nodes.length - 1) / 2))]);
        this.partition(new Map(this.nodes.map((node) => [node.id, cutOff.has(node) ? 1 : 0])));
        return;
      }
      case 'crashLeader': {
        const leaders = this.leaders();
        if (leaders.length > 0) this.crash(this.rng.pick(leaders), this.faultDuration());
        return;
      }
      case 'addLearner':
      case 'addVoter':
      case 'remove':
        this.changeMembership(action.kind, this.nodeAt(action.node).id);
        return;
      case 'transfer':
        this.transfer(this.nodeAt(action.node).id);
        return;
    }
  }

  private nodeAt(n: number): SimNode {
    return this.nodes[n % this.nodes.length]!;
  }

  private address(id: NodeId): string {
    return `sim-${id}:7000`;
  }

  private leaders(): SimNode[] {
    return this.nodes.filter((node) => node.raw?.status().role === Role.Leader);
  }

  private clientPut(client: number, key: string): void {
    if (this.busyClients.has(client)) return;
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const node = this.rng.pick(leaders);
    const id = this.nextOpId++;
    const value = `v${id}`;
    const invokedAt = this.clock++;
    let index: number;
    try {
      index = node.raw!.propose(encodePut({ op: id, key, value })).index;
    } catch (error) {
      if (error instanceof NotLeaderError) return;
      throw error;
    }
    this.busyClients.add(client);
    const put: PendingPut = { id, client, key, value, invokedAt, deadline: this.now + CLIENT_TIMEOUT_STEPS, node, index };
    const displaced = node.puts.get(index);
    if (displaced) this.settlePut(displaced, 'unknown');
    node.puts.set(index, put);
  }

  private clientGet(client: number, key: string, viaFollower: boolean): void {
    if (this.busyClients.has(client)) return;
    const candidates = viaFollower ? this.nodes.filter((node) => node.alive) : this.leaders();
    if (candidates.length === 0) return;
    const node = this.rng.pick(candidates);
    const id = this.nextOpId++;
    const context = `read-${id}`;
    const invokedAt = this.clock++;
    try {
      node.raw!.readIndex(encoder.encode(context));
    } catch (error) {
      if (error instanceof NotLeaderError) return;
      throw error;
    }
    this.busyClients.add(client);
    node.reads.set(context, { id, client, key, invokedAt, deadline: this.now + CLIENT_TIMEOUT_STEPS, node });
  }

  private changeMembership(kind: 'addLearner' | 'addVoter' | 'remove', node: NodeId): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const type = kind === 'addLearner' ? ConfChangeType.AddLearner : kind === 'addVoter' ? ConfChangeType.AddVoter : ConfChangeType.RemoveNode;
    try {
      this.rng.pick(leaders).raw!.proposeConfChange({ type, node, address: type === ConfChangeType.RemoveNode ? '' : this.address(node) });
    } catch (error) {
      if (error instanceof NotLeaderError || error instanceof ConfChangeRejectedError) return;
      throw error;
    }
  }

  private transfer(target: NodeId): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const leader = this.rng.pick(leaders);
    if (!leader.raw!.status().conf.voters.includes(target)) return;
    try {
      leader.raw!.transferLeadership(target);
    } catch (error) {
      if (error instanceof NotLeaderError) return;
      throw error;
    }
  }

  /** How long a crash or a partition lasts unless an action ends it first (in steps). */
  private faultDuration(): number {
    return this.rng.int(5, 150);
  }

  private partition(side: Map<NodeId, number>): void {
    this.side = side;
    this.healAt = this.now + this.faultDuration();
  }

  private crash(node: SimNode, restartAfter = Number.POSITIVE_INFINITY): void {
    if (!node.alive) return;
    node.restartAt = this.now + restartAfter;
    node.raw = undefined;
    node.pending = undefined;
    for (const put of node.puts.values()) this.settlePut(put, 'unknown');
    for (const read of node.reads.values()) this.abandonRead(read);
  }

  /** Starts (or restarts) a node from what its storage persisted; its KV restores the last snapshot. */
  private start(node: SimNode): void {
    node.restartAt = Number.POSITIVE_INFINITY;
    const snapshot = node.storage.snapshot();
    node.kv = KvStateMachine.restore(snapshot.data, snapshot.meta.index);
    this.checkFingerprint(node, snapshot.meta.index);
    const random = this.rng.fork();
    node.raw = new RawNode({
      id: node.id,
      storage: node.storage,
      applied: snapshot.meta.index,
      electionTick: this.config.electionTick,
      heartbeatTick: 1,
      maxSizePerMsg: this.config.maxSizePerMsg,
      maxInflightMsgs: this.config.maxInflightMsgs,
      checkQuorum: this.config.checkQuorum,
      preVote: this.config.preVote,
      readOnly: this.config.lease && this.config.checkQuorum ? 'lease' : 'safe',
      random: () => random.next(),
    });
  }

  // ---- time ----

  private step(): void {
    this.now++;
    if (this.now >= this.healAt) {
      this.side = new Map();
      this.healAt = Number.POSITIVE_INFINITY;
    }
    for (const node of this.nodes) if (!node.alive && this.now >= node.restartAt) this.start(node);
    if (this.now % STEPS_PER_TICK === 0) {
      for (const node of this.nodes) node.raw?.tick();
    }
    this.deliverDueMessages();
    for (const node of this.rng.shuffle(this.nodes.slice())) this.drive(node);
    for (const node of this.nodes) {
      const status = node.raw?.status();
      if (status?.role === Role.Leader) this.checkElectionSafety(node.id, status.term);
    }
    this.expireClientOps();
    if (this.clientsActive) this.startClientOps();
  }

  /** Each idle client starts a put or a get on a random key with probability clientRate. */
  private startClientOps(): void {
    for (let client = 0; client < this.config.clients; client++) {
      if (this.busyClients.has(client) || !this.rng.chance(this.config.clientRate)) continue;
      const key = this.rng.pick(KEYS);
      if (this.rng.chance(0.5)) this.clientPut(client, key);
      else this.clientGet(client, key, this.rng.chance(0.3));
    }
  }

  private deliverDueMessages(): void {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const flight of this.network) (flight.deliverAt <= this.now ? due : later).push(flight);
    this.network = later;
    for (const { m } of this.rng.shuffle(due)) this.deliver(m);
  }

  private send(m: Message): void {
    if (m.type === MessageType.Snap) this.report.snapshotsSent++;
    if (this.rng.chance(this.dropRate)) {
      this.lost(m);
      return;
    }
    const copies = this.rng.chance(this.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const long = this.rng.chance(this.longDelayRate);
      const delay = long ? this.rng.int(this.maxDelay, this.maxDelay + 20 * STEPS_PER_TICK) : this.rng.int(1, this.maxDelay);
      this.network.push({ m, deliverAt: this.now + delay });
    }
  }

  private deliver(m: Message): void {
    const target = this.nodes[m.to - 1];
    const cut = (this.side.get(m.from) ?? 0) !== (this.side.get(m.to) ?? 0);
    if (!target?.raw || cut) {
      this.lost(m);
      return;
    }
    target.raw.step(m);
    if (m.type === MessageType.Snap) this.nodes[m.from - 1]!.raw?.reportSnapshot(m.to, true);
  }

  /** What a transport would tell its node about a message it could not deliver. */
  private lost(m: Message): void {
    const sender = this.nodes[m.from - 1]!.raw;
    if (!sender) return;
    if (m.type === MessageType.Snap) sender.reportSnapshot(m.to, false);
    else if (this.rng.chance(0.2)) sender.reportUnreachable(m.to);
  }

  // ---- the simulated driver ----

  private drive(node: SimNode): void {
    for (let round = 0; round < 4 && node.raw; round++) {
      if (node.pending) {
        if (this.now < node.pending.persistAt) return;
        this.completeReady(node);
        continue;
      }
      if (!node.raw.hasReady()) return;
      const rd = node.raw.ready();
      node.pending = { rd, persistAt: this.now + this.rng.int(0, this.persistDelayMax) };
      if (rd.softState?.role === Role.Leader) {
        const term = node.raw.status().term;
        node.pending.leaderTerm = term;
        this.checkElectionSafety(node.id, term);
      }
    }
  }

  /** Persist, send, apply, advance: the Ready contract, in order. */
  private completeReady(node: SimNode): void {
    const { rd, leaderTerm } = node.pending!;
    node.pending = undefined;
    const raw = node.raw!;

    if (rd.snapshot) node.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      node.storage.append(rd.entries);
      this.checkLogMatching(node, rd.entries);
    }
    if (rd.hardState) {
      node.storage.setHardState(rd.hardState);
      this.recordCommit(node, rd.hardState);
    }
    if (leaderTerm !== undefined) this.checkLeaderCompleteness(node, leaderTerm);

    for (const m of rd.messages) this.send(m);

    if (rd.snapshot) {
      const { index } = rd.snapshot.meta;
      node.kv = KvStateMachine.restore(rd.snapshot.data, index);
      this.checkFingerprint(node, index);
      for (const put of node.puts.values()) if (put.index <= index) this.settlePut(put, 'unknown');
    }
    for (const entry of rd.committedEntries) this.apply(node, entry);
    for (const state of rd.readStates) {
      const read = node.reads.get(decoder.decode(state.context));
      if (read) read.readIndex = state.index;
    }
    raw.advance(rd);

    for (const read of node.reads.values()) {
      if (read.readIndex !== undefined && read.readIndex <= node.kv.appliedIndex) this.answerRead(read);
    }
    this.maybeSnapshot(node);
  }

  private apply(node: SimNode, entry: Entry): void {
    const put = node.kv.apply(entry);
    const identity = entryIdentity(entry);
    const fingerprint = node.kv.fingerprint();
    const known = this.appliedAt[entry.index];
    if (!known) {
      this.appliedAt[entry.index] = { identity, fingerprint };
    } else if (known.identity !== identity) {
      this.fail(`state machine safety: node ${node.id} applied ${identity} at ${entry.index}, another node applied ${known.identity}`);
    } else if (known.fingerprint !== fingerprint) {
      this.fail(`state machine safety: node ${node.id} state after ${entry.index} differs from another node's`);
    }
    const waiting = node.puts.get(entry.index);
    if (waiting) this.settlePut(waiting, put?.op === waiting.id ? 'acknowledged' : 'failed');
  }

  private maybeSnapshot(node: SimNode): void {
    const applied = node.kv.appliedIndex;
    if (applied - node.storage.snapshot().meta.index < this.config.snapshotEvery) return;
    node.storage.createSnapshot(applied, node.raw!.status().conf, node.kv.snapshot());
    const compactTo = applied - this.rng.int(0, this.config.compactionMargin);
    if (compactTo >= node.storage.firstIndex()) node.storage.compact(compactTo);
  }

  // ---- clients ----

  private settlePut(put: PendingPut, outcome: 'acknowledged' | 'failed' | 'unknown'): void {
    put.outcome = outcome;
    put.node.puts.delete(put.index);
    this.busyClients.delete(put.client);
    if (outcome === 'failed') return;
    if (outcome === 'acknowledged') this.report.acknowledgedWrites++;
    const returnedAt = outcome === 'acknowledged' ? this.clock++ : Number.POSITIVE_INFINITY;
    this.history.push({ key: put.key, kind: 'write', value: put.value, invokedAt: put.invokedAt, returnedAt });
  }

  private answerRead(read: PendingRead): void {
    read.node.reads.delete(`read-${read.id}`);
    this.busyClients.delete(read.client);
    this.report.reads++;
    this.history.push({ key: read.key, kind: 'read', value: read.node.kv.get(read.key), invokedAt: read.invokedAt, returnedAt: this.clock++ });
  }

  private abandonRead(read: PendingRead): void {
    read.node.reads.delete(`read-${read.id}`);
    this.busyClients.delete(read.client);
  }

  private expireClientOps(): void {
    for (const node of this.nodes) {
      for (const put of node.puts.values()) if (put.deadline <= this.now) this.settlePut(put, 'unknown');
      for (const read of node.reads.values()) if (read.deadline <= this.now) this.abandonRead(read);
    }
  }

  private finishClients(): void {
    for (const node of this.nodes) {
      for (const put of node.puts.values()) this.settlePut(put, 'unknown');
      for (const read of node.reads.values()) this.abandonRead(read);
    }
  }

  // ---- liveness ----

  /**
   * Heals everything, makes the network and disks prompt (a round trip well within the election
   * timeout, as Raft's timing requirement asks), runs the members of the newest membership (see
   * runMembers) and requires a leader to commit a fresh put within a bounded number of ticks.
   */
  private checkLiveness(): void {
    this.note('liveness phase: heal, reliable network, restart members');
    this.clientsActive = false;
    this.side = new Map();
    this.dropRate = 0;
    this.duplicateRate = 0;
    this.maxDelay = Math.min(this.maxDelay, 2);
    this.longDelayRate = 0;
    this.persistDelayMax = Math.min(this.persistDelayMax, 1);
    const [prompt, stale] = [this.network.filter((f) => f.deliverAt <= this.now + this.maxDelay), this.network.filter((f) => f.deliverAt > this.now + this.maxDelay)];
    this.network = prompt;
    for (const { m } of stale) this.lost(m);
    for (const node of this.nodes) if (!node.alive) this.start(node);
    // Time to elect, plus time for the slowest member to catch up on the entries it lacks when it
    // can only get one at a time (maxSizePerMsg 0, one append in flight): a round trip each.
    const statuses = this.nodes.map((node) => node.raw!.status());
    const backlog = Math.max(...statuses.map((s) => s.lastIndex)) - Math.min(...statuses.map((s) => s.commit));
    const bound = LIVENESS_ELECTION_TIMEOUTS * this.config.electionTick + CATCH_UP_TICKS_PER_ENTRY * backlog;
    let probe: PendingPut | undefined;
    for (let tick = 0; tick < bound; tick++) {
      this.runMembers();
      for (let i = 0; i < STEPS_PER_TICK; i++) this.step();
      if (probe?.outcome === 'acknowledged') {
        this.report.livenessTicks = tick + 1;
        return;
      }
      const leader = this.leaders().find((node) => node.raw!.status().leadTransferee === NO_NODE);
      if (leader && (!probe || probe.node !== leader || probe.outcome !== undefined)) {
        const id = this.nextOpId++;
        const value = `liveness-${id}`;
        const invokedAt = this.clock++;
        let index: number;
        try {
          index = leader.raw!.propose(encodePut({ op: id, key: 'liveness', value })).index;
        } catch (error) {
          if (error instanceof NotLeaderError) continue;
          throw error;
        }
        probe = { id, client: LIVENESS_CLIENT, key: 'liveness', value, invokedAt, deadline: Number.POSITIVE_INFINITY, node: leader, index };
        leader.puts.set(index, probe);
      }
    }
    this.fail(`liveness: no put committed within ${bound} ticks after healing`);
  }

  /**
   * The operator: runs every member of the newest applied membership, and shuts down a removed
   * node once every member has applied its removal (not before: the remaining voters may still
   * need its vote to elect a leader that tells them the removal is committed).
   */
  private runMembers(): void {
    let newest: SimNode | undefined;
    for (const node of this.nodes) {
      if (node.alive && (!newest || node.kv.appliedIndex > newest.kv.appliedIndex)) newest = node;
    }
    if (!newest) return;
    const conf = newest.raw!.status().conf;
    const members = this.nodes.filter((node) => isMember(conf, node.id));
    for (const node of members) if (!node.alive) this.start(node);
    const memberConfs = members.map((node) => node.raw!.status().conf);
    for (const node of this.nodes) {
      if (!node.alive || isMember(conf, node.id)) continue;
      if (memberConfs.every((memberConf) => !isMember(memberConf, node.id))) this.crash(node);
    }
  }

  // ---- safety checks ----

  private checkElectionSafety(id: NodeId, term: number): void {
    const existing = this.leaderOfTerm.get(term);
    if (existing === id) return;
    if (existing !== undefined) this.fail(`election safety: nodes ${existing} and ${id} both lead term ${term}`);
    this.report.elections++;
    this.note(`node ${id} leads term ${term}`);
    this.leaderOfTerm.set(term, id);
  }

  /** Log matching: an (index, term) pair names one entry, always preceded by the same term. */
  private checkLogMatching(node: SimNode, entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index < node.storage.firstIndex()) continue;
      const key = `${entry.index}/${entry.term}`;
      const identity = entryIdentity(entry);
      const previousTerm = node.storage.term(entry.index - 1);
      const known = this.logRegistry.get(key);
      if (!known) {
        this.logRegistry.set(key, { identity, previousTerm });
      } else if (known.identity !== identity || known.previousTerm !== previousTerm) {
        this.fail(
          `log matching: node ${node.id} has ${identity} after term ${previousTerm} at ${key}; ` +
            `elsewhere ${known.identity} after term ${known.previousTerm}`,
        );
      }
    }
  }

  private recordCommit(node: SimNode, hardState: HardState): void {
    const best = this.commitByTerm.get(hardState.term) ?? 0;
    if (hardState.commit > best) this.commitByTerm.set(hardState.term, hardState.commit);
    const from = Math.max(node.storage.firstIndex() - 1, 1);
    const to = Math.min(hardState.commit, node.storage.lastIndex());
    for (let index = to; index >= from; index--) {
      const term = node.storage.term(index);
      const known = this.committedTerm[index];
      if (known === undefined) this.committedTerm[index] = term;
      else if (known !== term) this.fail(`committed entry ${index} has term ${term} on node ${node.id}, ${known} elsewhere`);
      else break; // Log matching covers everything below an agreeing entry.
    }
  }

  /** A leader of `term` holds every entry committed in an earlier term (Raft §5.4). */
  private checkLeaderCompleteness(node: SimNode, term: number): void {
    let target = 0;
    for (const [commitTerm, commit] of this.commitByTerm) if (commitTerm < term && commit > target) target = commit;
    const floor = node.storage.firstIndex() - 1;
    for (let index = target; index > floor; index--) {
      const expected = this.committedTerm[index];
      if (expected === undefined) continue;
      const actual = index <= node.storage.lastIndex() ? node.storage.term(index) : undefined;
      if (actual !== expected) {
        this.fail(`leader completeness: leader ${node.id} of term ${term} has term ${actual} at committed index ${index} (term ${expected})`);
      }
      return;
    }
  }

  private checkFingerprint(node: SimNode, index: number): void {
    const known = this.appliedAt[index];
    if (index > 0 && known && known.fingerprint !== node.kv.fingerprint()) {
      this.fail(`state machine safety: node ${node.id} restored a snapshot at ${index} that differs from the applied state`);
    }
  }

  private note(line: string): void {
    this.trace.push(`[step ${this.now}] ${line}`);
    if (this.trace.length > TRACE_LINES) this.trace.shift();
  }

  private fail(message: string): never {
    throw new SimulationViolation(`step ${this.now}: ${message}`, this.trace);
  }
}
