// The Raft protocol as a deterministic state machine (after etcd-io/raft): roles, terms and votes,
// log replication with flow control, commitment, read-index and lease reads, single-step membership
// changes and leadership transfer. It owns the protocol state in memory and queues the messages and
// read states that RawNode hands out in a Ready. It must never do I/O, read a clock, use
// Math.random or await anything: time is tick(), randomness is config.random.
import {
  ConfChangeType,
  EntryType,
  MessageType,
  NO_NODE,
  Role,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type LogStorage,
  type Message,
  type NodeId,
  type ReadState,
  type Ready,
  type Snapshot,
  type SoftState,
} from '../types.js';
import { applyConfChange, changesBuilding, cloneConfState, decodeConfChange, encodeConfChange, isMember } from './conf-change.js';
import { ConfChangeRejectedError, NotLeaderError, RaftInvariantError } from './errors.js';
import { RaftLog, type TermAt } from './log.js';
import { Progress, ProgressState } from './progress.js';
import { VoteResult, majority, quorumValue, voteResult } from './quorum.js';
import { ReadRounds, decodeReadRound, encodeReadRound, type ReadRequest } from './read-only.js';

export interface RaftConfig {
  id: NodeId;
  /** Read side of the log; the driver does all writes. */
  storage: LogStorage;
  /** Index already applied by the state machine (0 at first start; at least the storage's snapshot index). */
  applied: number;
  /** Election timeout in ticks; each node draws its timeout from [electionTick, 2 * electionTick). */
  electionTick: number;
  /** Heartbeat interval in ticks (less than electionTick). */
  heartbeatTick: number;
  /** Bytes of entry data per append message (at least one entry per message). */
  maxSizePerMsg: number;
  /** Append messages in flight per follower in replicate state. */
  maxInflightMsgs: number;
  /** The leader steps down when it has not heard from a quorum for an election timeout. */
  checkQuorum: boolean;
  preVote: boolean;
  /**
   * 'safe': every read index is confirmed by a heartbeat round. 'lease': the leader answers from
   * its lease while it holds one (requires checkQuorum; assumes tick rates differ by less than a
   * tick per election timeout), falling back to a heartbeat round otherwise.
   */
  readOnly: 'safe' | 'lease';
  /** Uniform in [0, 1), seeded by the caller (election timeout jitter). */
  random: () => number;
  /** A learner is promoted only if its match index is within this many entries of the leader's last index (default 16). */
  maxLearnerLag?: number;
  /** Bytes of entry data handed out in one Ready's committedEntries (default 64 MiB; at least one entry). */
  maxCommittedSizePerReady?: number;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  isLearner: boolean;
  /** Append messages sent and not yet acknowledged. */
  inflight: number;
  /** In Snapshot state: index of the snapshot being sent. */
  pendingSnapshot: number;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  leader: NodeId;
  role: Role;
  /** Membership as of the applied index (what a snapshot taken at `applied` must record). */
  conf: ConfState;
  /** Target of a leadership transfer under way (NO_NODE when none). */
  leadTransferee: NodeId;
  /** Replication progress of every member, keyed by node id; on the leader only (empty elsewhere). */
  progress: Record<number, ProgressStatus>;
}

/** Context of a vote request that a leadership transfer started: voters grant it despite their lease. */
const TRANSFER_CONTEXT = new TextEncoder().encode('campaign-transfer');
const EMPTY = new Uint8Array(0);
/** Page size when scanning the log for membership changes (startup replay, before campaigning). */
const SCAN_PAGE_BYTES = 1 << 20;
/** Ticks the leader gives up from its lease, for a follower's clock counting a little faster. */
const LEASE_SAFETY_TICKS = 1;
const DEFAULT_MAX_LEARNER_LAG = 16;
export const DEFAULT_MAX_COMMITTED_SIZE_PER_READY = 64 * 1024 * 1024;

type Outgoing = Partial<Omit<Message, 'from'>> & Pick<Message, 'type' | 'to'>;

function isTransferCampaign(context: Uint8Array): boolean {
  return context.byteLength === TRANSFER_CONTEXT.byteLength && context.every((byte, i) => byte === TRANSFER_CONTEXT[i]);
}

/** Entries that follow `index` one by one, in terms that never decrease nor pass the sender's. */
function isWellFormedAppend(m: Message): boolean {
  let previousTerm = m.logTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const entry = m.entries[i]!;
    if (entry.index !== m.index + 1 + i || entry.term < previousTerm || entry.term > m.term) return false;
    previousTerm = entry.term;
  }
  return true;
}

function validateConfig(config: RaftConfig): void {
  const positiveInteger = (name: string, value: number) => {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`raft config: ${name} must be a positive integer, got ${value}`);
  };
  positiveInteger('id', config.id);
  positiveInteger('electionTick', config.electionTick);
  positiveInteger('heartbeatTick', config.heartbeatTick);
  positiveInteger('maxInflightMsgs', config.maxInflightMsgs);
  if (config.heartbeatTick >= config.electionTick) {
    throw new RangeError(`raft config: heartbeatTick (${config.heartbeatTick}) must be less than electionTick (${config.electionTick})`);
  }
  if (!(config.maxSizePerMsg >= 0)) throw new RangeError(`raft config: maxSizePerMsg must be >= 0`);
  if (config.readOnly === 'lease' && !config.checkQuorum) {
    throw new RangeError(`raft config: readOnly 'lease' is only safe with checkQuorum`);
  }
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NO_NODE;
  leader: NodeId = NO_NODE;
  role = Role.Follower;
  readonly log: RaftLog;
  /**
   * The membership the protocol uses, as of `confIndex` (the last applied change, or the snapshot
   * it came from). Ahead of `appliedConf` only between receiving a snapshot and its Ready's advance.
   */
  private conf: ConfState;
  private confIndex: number;
  /** The membership as of the applied index: what the driver stores in the snapshots it takes. */
  private appliedConf: ConfState;
  /** Outgoing messages and read states, taken by RawNode.ready(). */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly maxSizePerMsg: number;
  private readonly maxInflightMsgs: number;
  private readonly maxLearnerLag: number;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly readOnly: 'safe' | 'lease';
  private readonly random: () => number;

  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** This incarnation's logical clock (ticks since it started); stamps heartbeats for the lease. */
  private ticks = 0;
  /**
   * Ticks since this node last heard from a leader. Starts at 0, so a restarted node keeps, for one
   * election timeout, the lease it may have promised before it crashed.
   */
  private leaderContactElapsed = 0;
  private leadTransferee: NodeId = NO_NODE;
  private transferElapsed = 0;
  /** Set once this leader sent TimeoutNow in its term: voters may now ignore its lease. */
  private leaseRevoked = false;
  /** Index of the last membership change this leader proposed (or of its first entry). */
  private pendingConfIndex = 0;
  /**
   * Set when this leader applied its own removal (the index of that change): it takes no more
   * requests and keeps replicating until a voter of the new membership knows the removal is
   * committed, then hands leadership to it and steps down. Stepping down at once could leave the
   * remaining voters unable to learn the commit, hence stuck in the old membership without us.
   */
  private handoffIndex = 0;
  private readRounds = new ReadRounds();
  /** Read requests that arrived before this leader committed an entry of its term. */
  private deferredReads: Omit<ReadRequest, 'index'>[] = [];
  /** New entries or a new commit index await a broadcast (batched until the next Ready). */
  private broadcastPending = false;

  constructor(config: RaftConfig) {
    validateConfig(config);
    this.id = config.id;
    this.electionTimeout = config.electionTick;
    this.heartbeatTimeout = config.heartbeatTick;
    this.maxSizePerMsg = config.maxSizePerMsg;
    this.maxInflightMsgs = config.maxInflightMsgs;
    this.maxLearnerLag = config.maxLearnerLag ?? DEFAULT_MAX_LEARNER_LAG;
    this.checkQuorum = config.checkQuorum;
    this.preVote = config.preVote;
    this.readOnly = config.readOnly;
    this.random = config.random;

    const { hardState, confState } = config.storage.initialState();
    const log = new RaftLog(config.storage);
    this.log = log;
    if (hardState.commit > log.lastIndex()) {
      throw new RaftInvariantError(`stored commit ${hardState.commit} is past the last stored entry ${log.lastIndex()}`);
    }
    log.committed = Math.max(log.committed, hardState.commit);
    const snapshotIndex = log.firstIndex() - 1;
    if (config.applied < snapshotIndex || config.applied > log.lastIndex()) {
      throw new RangeError(
        `raft config: applied ${config.applied} is outside the log [${snapshotIndex}, ${log.lastIndex()}]` +
          ' (restore the state machine from storage.snapshot() first)',
      );
    }
    // The state machine applied it, so it was committed (its commit may not have been persisted).
    log.committed = Math.max(log.committed, config.applied);
    log.applied = config.applied;

    // storage's confState is the membership at its snapshot; replay the changes applied since.
    this.conf = cloneConfState(confState);
    this.confIndex = snapshotIndex;
    this.appliedConf = this.conf;
    log.scan(snapshotIndex + 1, config.applied + 1, SCAN_PAGE_BYTES, (entry) => {
      if (entry.type === EntryType.ConfChange) this.applyConfChangeEntry(entry);
      return false;
    });

    this.becomeFollower(hardState.term, NO_NODE);
    this.vote = hardState.vote;
  }

  // ---- inputs ----

  tick(): void {
    this.ticks++;
    this.leaderContactElapsed++;
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id || m.from === NO_NODE) return;
    if (m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp) this.learnCommit(m.commit, m.logTerm);
    if (m.term > this.term) {
      if ((m.type === MessageType.Vote || m.type === MessageType.PreVote) && !isTransferCampaign(m.context) && this.inLease()) {
        return; // We heard from a leader recently (or are one): do not help depose it.
      }
      if (m.type === MessageType.PreVote || (m.type === MessageType.PreVoteResp && !m.reject)) {
        // A pre-vote never changes terms; a granted pre-vote answer carries the future term.
      } else {
        const fromLeader = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
        this.becomeFollower(m.term, fromLeader ? m.from : NO_NODE);
      }
    } else if (m.term < this.term) {
      if (m.type === MessageType.App || m.type === MessageType.Heartbeat) {
        // A deposed leader: tell it the new term. Waiting for our own campaign to tell it could
        // wait forever (we may not be a voter in our view, and our lease or pre-vote may stop it).
        this.send({ type: MessageType.AppResp, to: m.from });
      } else if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
        // Tell a candidate behind us our term (Raft §5.1), so that it catches up in one round.
        const type = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        this.sendVoteResponse(type, m.from, this.term, true);
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        return;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        return;
      case Role.Follower:
        this.stepFollower(m);
        return;
    }
  }

  /** Starts an election now (a pre-vote first when enabled). No-op on a leader or a non-voter. */
  campaign(): void {
    this.hup(false);
  }

  propose(data: Uint8Array): TermAt {
    this.assertAcceptingProposals();
    const entry = this.appendEntry(EntryType.Normal, data);
    return { index: entry.index, term: entry.term };
  }

  proposeConfChange(cc: ConfChange): TermAt {
    this.assertAcceptingProposals();
    this.validateConfChange(cc);
    const entry = this.appendEntry(EntryType.ConfChange, encodeConfChange(cc));
    this.pendingConfIndex = entry.index;
    return { index: entry.index, term: entry.term };
  }

  readIndex(context: Uint8Array): void {
    if (this.role === Role.Leader) {
      this.assertServing();
      this.handleReadRequest(this.id, context);
      return;
    }
    if (this.leader === NO_NODE) throw new NotLeaderError(NO_NODE);
    this.send({ type: MessageType.ReadIndex, to: this.leader, context });
  }

  transferLeadership(to: NodeId): void {
    if (this.role !== Role.Leader) throw new NotLeaderError(this.leader);
    this.assertServing();
    if (to === this.id) return;
    if (!this.conf.voters.includes(to)) throw new RangeError(`cannot transfer leadership to ${to}: not a voter`);
    if (this.leadTransferee !== NO_NODE) {
      if (this.leadTransferee === to) return;
      this.abortLeaderTransfer();
    }
    this.leadTransferee = to;
    this.transferElapsed = 0;
    if (this.progress.get(to)!.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  reportUnreachable(id: NodeId): void {
    const pr = this.role === Role.Leader ? this.progress.get(id) : undefined;
    if (pr?.state === ProgressState.Replicate) pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.role === Role.Leader ? this.progress.get(id) : undefined;
    if (pr?.state !== ProgressState.Snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat answer) before probing again.
    pr.probeSent = true;
  }

  /** Sends what proposals, commits and read requests since the last Ready left to broadcast. */
  flushBroadcasts(): void {
    if (this.role !== Role.Leader) return;
    if (this.broadcastPending) {
      this.broadcastPending = false;
      this.bcastAppend();
    }
    const round = this.readRounds.takeOpenRound();
    if (round !== undefined) this.bcastHeartbeat(round);
  }

  /** The driver has persisted and applied `rd`: move the stable and applied marks, apply membership. */
  advance(rd: Ready): void {
    if (rd.snapshot) {
      this.log.stableSnapshotTo(rd.snapshot.meta.index);
      this.log.appliedTo(rd.snapshot.meta.index);
      this.appliedConf = cloneConfState(rd.snapshot.meta.conf);
    }
    const lastEntry = rd.entries.at(-1);
    if (lastEntry) this.log.stableTo(lastEntry.index, lastEntry.term);
    for (const entry of rd.committedEntries) {
      if (entry.type === EntryType.ConfChange) this.applyConfChangeEntry(entry);
    }
    const lastApplied = rd.committedEntries.at(-1);
    if (lastApplied) this.log.appliedTo(lastApplied.index);
  }

  softState(): SoftState {
    return { leader: this.leader, role: this.role };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  status(): RaftStatus {
    const progress: Record<number, ProgressStatus> = {};
    for (const [id, pr] of this.progress) {
      progress[id] = {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        recentActive: pr.recentActive,
        isLearner: pr.isLearner,
        inflight: pr.inflights.count,
        pendingSnapshot: pr.pendingSnapshot,
      };
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      leader: this.leader,
      role: this.role,
      conf: cloneConfState(this.appliedConf),
      leadTransferee: this.leadTransferee,
      progress,
    };
  }

  // ---- time ----

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
        for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
      }
    }
    if (this.leadTransferee !== NO_NODE && ++this.transferElapsed >= this.electionTimeout) this.abortLeaderTransfer();
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readRounds.heartbeatRound());
    }
  }

  // ---- roles ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.leader = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    const jitter = Math.min(Math.floor(this.random() * this.electionTimeout), this.electionTimeout - 1);
    this.randomizedElectionTimeout = this.electionTimeout + Math.max(0, jitter);
    this.abortLeaderTransfer();
    this.votes.clear();
    this.progress.clear();
    this.pendingConfIndex = 0;
    this.handoffIndex = 0;
    this.readRounds = new ReadRounds();
    this.deferredReads = [];
    this.leaseRevoked = false;
    this.broadcastPending = false;
  }

  private becomeFollower(term: number, leader: NodeId): void {
    // A deposed leader promised no lease beyond its own leadership: it may vote at once.
    if (this.role === Role.Leader) this.leaderContactElapsed = this.electionTimeout;
    this.reset(term);
    this.role = Role.Follower;
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    this.votes.clear();
    this.role = Role.PreCandidate;
    this.leader = NO_NODE;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.leader = this.id;
    this.role = Role.Leader;
    const last = this.log.lastIndex();
    for (const id of this.conf.voters) this.progress.set(id, this.newProgress(id, id === this.id ? last : 0, false));
    for (const id of this.conf.learners) this.progress.set(id, this.newProgress(id, 0, true));
    const self = this.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    if (last === 0) {
      // A new group's membership is only in its members' storage. Write it into the log, so that
      // a node joining later with empty storage rebuilds it by replaying the log from the start.
      for (const cc of changesBuilding(this.conf)) this.appendEntry(EntryType.ConfChange, encodeConfChange(cc));
    }
    // A leader commits nothing of earlier terms by counting (Raft §5.4.2): commit a no-op of its own.
    this.pendingConfIndex = this.appendEntry(EntryType.Normal, EMPTY).index;
  }

  private newProgress(id: NodeId, match: number, isLearner: boolean): Progress {
    const pr = new Progress(match, this.log.lastIndex() + 1, isLearner, this.maxInflightMsgs);
    pr.recentActive = id === this.id;
    return pr;
  }

  private promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  private inLease(): boolean {
    if (!this.checkQuorum) return false;
    return this.role === Role.Leader || this.leaderContactElapsed < this.electionTimeout;
  }

  // ---- elections ----

  private hup(transfer: boolean): void {
    if (this.role === Role.Leader || !this.promotable() || this.hasUnappliedConfChanges()) return;
    this.campaignFor(this.preVote && !transfer ? 'pre-vote' : 'vote', transfer);
  }

  /** Whether committed membership changes still wait to be applied (our membership may be stale). */
  private hasUnappliedConfChanges(): boolean {
    const log = this.log;
    if (log.committed <= log.applied) return false;
    const lo = Math.max(log.applied + 1, log.firstIndex());
    return log.scan(lo, log.committed + 1, SCAN_PAGE_BYTES, (entry) => entry.type === EntryType.ConfChange);
  }

  private campaignFor(kind: 'pre-vote' | 'vote', transfer: boolean): void {
    let type: MessageType;
    let term: number;
    if (kind === 'pre-vote') {
      this.becomePreCandidate();
      type = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      type = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      if (kind === 'pre-vote') this.campaignFor('vote', false);
      else this.becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    const context = transfer ? TRANSFER_CONTEXT : EMPTY;
    for (const id of this.conf.voters) {
      if (id !== this.id) this.send({ type, to: id, term, index, logTerm, context });
    }
  }

  private poll(from: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return voteResult(this.conf.voters, this.votes);
  }

  private handleVoteRequest(m: Message): void {
    const preVote = m.type === MessageType.PreVote;
    const type = preVote ? MessageType.PreVoteResp : MessageType.VoteResp;
    const canVote =
      this.vote === m.from || (this.vote === NO_NODE && this.leader === NO_NODE) || (preVote && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      if (!preVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
      this.sendVoteResponse(type, m.from, m.term, false);
    } else {
      this.sendVoteResponse(type, m.from, this.term, true);
    }
  }

  /**
   * Vote answers carry our commit index and its term, so that a candidate whose log matches there
   * learns the commit. Without it, a voter left alone by a removed leader that stepped down could
   * wait forever for the vote of that node (whose log may be longer) to learn of its removal.
   */
  private sendVoteResponse(type: MessageType, to: NodeId, term: number, reject: boolean): void {
    const commit = this.log.committed;
    this.send({ type, to, term, reject, commit, logTerm: this.log.term(commit) ?? 0 });
  }

  /** Someone's log has `commit` committed with term `term` there; if ours matches, so is ours. */
  private learnCommit(commit: number, term: number): void {
    if (commit > this.log.committed && term > 0 && this.log.matchTerm(commit, term)) this.log.commitTo(commit);
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
    }
    const pre = this.role === Role.PreCandidate;
    if (m.type !== (pre ? MessageType.PreVoteResp : MessageType.VoteResp)) return;
    switch (this.poll(m.from, !m.reject)) {
      case VoteResult.Won:
        if (pre) this.campaignFor('vote', false);
        else this.becomeLeader();
        return;
      case VoteResult.Lost:
        this.becomeFollower(this.term, NO_NODE);
        return;
      case VoteResult.Pending:
        return;
    }
  }

  // ---- follower ----

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.heardFromLeader(m.from);
        this.log.commitTo(m.commit);
        this.send({ type: MessageType.HeartbeatResp, to: m.from, index: m.index, commit: this.log.committed, context: m.context });
        return;
      case MessageType.Snap:
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        this.hup(true);
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.leaderContactElapsed = 0;
    this.leader = from;
  }

  private handleAppend(m: Message): void {
    if (!isWellFormedAppend(m)) return;
    if (m.index < this.log.committed) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed, commit: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: MessageType.AppResp, to: m.from, index: lastNew, commit: this.log.committed });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({
      type: MessageType.AppResp,
      to: m.from,
      index: m.index,
      commit: this.log.committed,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (!snapshot) return;
    const index = this.restore(snapshot) ? this.log.lastIndex() : this.log.committed;
    this.send({ type: MessageType.AppResp, to: m.from, index, commit: this.log.committed });
  }

  /** Installs a leader's snapshot unless our log already has it; true if installed. */
  private restore(snapshot: Snapshot): boolean {
    const { index, term, conf } = snapshot.meta;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.conf = cloneConfState(conf);
    this.confIndex = index;
    return true;
  }

  // ---- leader ----

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.ReadIndex:
        if (this.handoffIndex === 0) this.handleReadRequest(m.from, m.context);
        return;
      case MessageType.AppResp:
        this.handleAppendResponse(m);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.knownCommit = Math.max(pr.knownCommit, m.commit);
    if (m.reject) {
      const hint = m.logTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.logTerm).index : m.rejectHint;
      if (pr.maybeDecreaseTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
      if (pr.state === ProgressState.Probe) {
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Replicate) {
        pr.inflights.freeUpTo(m.index);
      }
      if (this.maybeCommit()) this.afterCommit();
      while (this.maybeSendAppend(m.from, false));
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    }
    this.maybeHandOff();
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.probeSent = false;
    pr.knownCommit = Math.max(pr.knownCommit, m.commit);
    if (m.index > pr.leaseAckTick) pr.leaseAckTick = m.index;
    if (this.maybeHandOff()) return;
    if (pr.match < this.log.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
    const round = decodeReadRound(m.context);
    if (round === 0) return;
    for (const request of this.readRounds.acknowledge(m.from, round, this.conf.voters, this.id)) this.answerRead(request);
  }

  /** A leader handing off after its removal serves nothing. */
  private assertServing(): void {
    if (this.handoffIndex > 0) {
      throw new NotLeaderError(NO_NODE, 'this leader was removed from the group and is handing off leadership');
    }
  }

  private assertAcceptingProposals(): void {
    if (this.role !== Role.Leader) throw new NotLeaderError(this.leader);
    this.assertServing();
    if (this.leadTransferee !== NO_NODE) {
      throw new NotLeaderError(this.leadTransferee, `leadership is being transferred to ${this.leadTransferee}`);
    }
  }

  private appendEntry(type: EntryType, data: Uint8Array): Entry {
    const entry: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data };
    this.log.append([entry]);
    this.progress.get(this.id)!.maybeUpdate(entry.index);
    if (this.maybeCommit()) this.afterCommit();
    this.broadcastPending = true;
    return entry;
  }

  private maybeCommit(): boolean {
    const index = quorumValue(this.conf.voters, (id) => this.progress.get(id)?.match ?? 0);
    return this.log.maybeCommit(index, this.term);
  }

  private afterCommit(): void {
    this.broadcastPending = true;
    if (this.deferredReads.length === 0) return;
    const reads = this.deferredReads;
    this.deferredReads = [];
    for (const read of reads) this.serveRead(read.from, read.context);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private validateConfChange(cc: ConfChange): void {
    const reject = (reason: string): never => {
      throw new ConfChangeRejectedError(`${ConfChangeType[cc.type]} ${cc.node}: ${reason}`);
    };
    if (!Number.isSafeInteger(cc.node) || cc.node <= 0) reject('invalid node id');
    if (this.pendingConfIndex > this.log.applied) {
      reject(`the change at index ${this.pendingConfIndex} is not applied yet (applied ${this.log.applied})`);
    }
    const isVoter = this.conf.voters.includes(cc.node);
    const isLearner = this.conf.learners.includes(cc.node);
    switch (cc.type) {
      case ConfChangeType.AddVoter: {
        if (isVoter) reject('already a voter');
        const pr = this.progress.get(cc.node);
        if (isLearner && pr && this.log.lastIndex() - pr.match > this.maxLearnerLag) {
          reject(`learner has not caught up (match ${pr.match}, leader's last index ${this.log.lastIndex()})`);
        }
        return;
      }
      case ConfChangeType.AddLearner:
        if (isVoter) reject('is a voter (demotion is not supported)');
        if (isLearner) reject('already a learner');
        return;
      case ConfChangeType.RemoveNode:
        if (!isVoter && !isLearner) reject('not a member');
        if (isVoter && this.conf.voters.length === 1) reject('cannot remove the last voter');
        return;
      default:
        reject('unknown change type');
    }
  }

  /** Applies a committed membership change (skipped by `conf` if a newer snapshot already holds it). */
  private applyConfChangeEntry(entry: Entry): void {
    const cc = decodeConfChange(entry.data);
    this.appliedConf = applyConfChange(this.appliedConf, cc);
    if (entry.index > this.confIndex) this.setConf(applyConfChange(this.conf, cc), entry.index);
  }

  private setConf(conf: ConfState, index: number): void {
    this.conf = conf;
    this.confIndex = index;
    if (this.role === Role.Candidate || this.role === Role.PreCandidate) {
      if (!this.promotable()) this.becomeFollower(this.term, NO_NODE);
      return;
    }
    if (this.role !== Role.Leader) return;
    if (!conf.voters.includes(this.id) && this.handoffIndex === 0) {
      this.handoffIndex = index;
      this.abortLeaderTransfer();
    }
    for (const id of conf.voters) this.syncProgress(id, false);
    for (const id of conf.learners) this.syncProgress(id, true);
    for (const id of this.progress.keys()) {
      if (!isMember(conf, id)) this.progress.delete(id);
    }
    if (this.leadTransferee !== NO_NODE && !conf.voters.includes(this.leadTransferee)) this.abortLeaderTransfer();
    if (this.maybeCommit()) this.afterCommit();
    this.broadcastPending = true;
    this.maybeHandOff();
  }

  /**
   * During a handoff: once a voter of the new membership holds our whole log and knows the removal
   * is committed, tell it to campaign at once and step down. True if we stepped down.
   */
  private maybeHandOff(): boolean {
    if (this.handoffIndex === 0) return false;
    const last = this.log.lastIndex();
    for (const id of this.conf.voters) {
      const pr = this.progress.get(id);
      if (pr && pr.match === last && pr.knownCommit >= this.handoffIndex) {
        this.sendTimeoutNow(id);
        this.becomeFollower(this.term, NO_NODE);
        return true;
      }
    }
    return false;
  }

  private syncProgress(id: NodeId, isLearner: boolean): void {
    const pr = this.progress.get(id);
    if (pr) {
      pr.isLearner = isLearner;
      return;
    }
    const added = this.newProgress(id, 0, isLearner);
    // Give a new member an election timeout to answer before check-quorum counts it as silent.
    added.recentActive = true;
    this.progress.set(id, added);
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.conf.voters) {
      if (id === this.id || this.progress.get(id)?.recentActive) active++;
    }
    return active >= majority(this.conf.voters.length);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NO_NODE;
    this.transferElapsed = 0;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.leaseRevoked = true;
    this.send({ type: MessageType.TimeoutNow, to });
  }

  // ---- reads ----

  private handleReadRequest(from: NodeId, context: Uint8Array): void {
    if (!this.committedEntryInCurrentTerm()) {
      this.deferredReads.push({ from, context });
      return;
    }
    this.serveRead(from, context);
  }

  private serveRead(from: NodeId, context: Uint8Array): void {
    const request: ReadRequest = { from, context, index: this.log.committed };
    const singleVoter = this.conf.voters.length === 1 && this.conf.voters[0] === this.id;
    if (singleVoter || (this.readOnly === 'lease' && this.leaseValid())) this.answerRead(request);
    else this.readRounds.add(request);
  }

  /**
   * Followers refuse votes for an election timeout after hearing from us, counted from when they
   * received a heartbeat, which is after we sent it. So while fewer than electionTimeout ticks have
   * passed since the newest heartbeat a quorum acknowledged, no other leader can exist.
   */
  private leaseValid(): boolean {
    if (!this.checkQuorum || this.leaseRevoked || this.leadTransferee !== NO_NODE) return false;
    const sentAt = quorumValue(this.conf.voters, (id) =>
      id === this.id ? this.ticks : (this.progress.get(id)?.leaseAckTick ?? Number.NEGATIVE_INFINITY),
    );
    return this.ticks - sentAt < this.electionTimeout - LEASE_SAFETY_TICKS;
  }

  private answerRead(request: ReadRequest): void {
    if (request.from === this.id) {
      this.readStates.push({ index: request.index, context: request.context });
    } else {
      this.send({ type: MessageType.ReadIndexResp, to: request.from, index: request.index, context: request.context });
    }
  }

  // ---- sending ----

  private send(fields: Outgoing): void {
    this.msgs.push({
      from: this.id,
      term: this.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      context: EMPTY,
      ...fields,
    });
  }

  /** Sends every follower what it lacks: as many appends as its in-flight window allows. */
  private bcastAppend(): void {
    for (const id of this.progress.keys()) {
      if (id === this.id) continue;
      this.sendAppend(id);
      while (this.maybeSendAppend(id, false));
    }
  }

  private bcastHeartbeat(round: number | undefined): void {
    const context = round === undefined ? EMPTY : encodeReadRound(round);
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // index: our clock at sending, echoed back for the lease. commit: never past what it holds.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: MessageType.Heartbeat, to: id, commit, index: this.ticks, context });
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends `to` the entries it needs next (or a snapshot); false if nothing was sent. With the
   * in-flight window full, it sends (once per heartbeat answer) an empty append instead: if the
   * appends in flight were lost, the follower's rejection of it restarts replication from a probe.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr) return false;
    const last = this.log.lastIndex();
    const windowProbe = pr.state === ProgressState.Replicate && pr.inflights.full();
    if (windowProbe ? !sendIfEmpty || pr.probeSent || pr.match >= last : pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.maybeSendSnapshot(to, pr);
    const entries = !windowProbe && pr.next <= last ? this.log.slice(pr.next, last + 1, this.maxSizePerMsg) : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    if (windowProbe) pr.probeSent = true;
    else pr.sentEntries(entries.at(-1)?.index);
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    if (snapshot.meta.index === 0) return false;
    pr.becomeSnapshot(snapshot.meta.index);
    this.send({ type: MessageType.Snap, to, snapshot });
    return true;
  }
}
