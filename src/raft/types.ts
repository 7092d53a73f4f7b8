// The vocabulary shared by the Raft core, its storage, its transport and its driver.
// Plain data only: nothing here does I/O or keeps state.

/** A member of a Raft group. 0 is never a valid id (it means "none"). */
export type NodeId = number & { readonly __brand: 'NodeId' };
export const NO_NODE = 0 as NodeId;
export const nodeId = (n: number): NodeId => {
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`invalid raft node id ${n}`);
  return n as NodeId;
};

export enum EntryType {
  /** Application data, handed to the StateMachine. Empty data = a leader's no-op for its term. */
  Normal = 0,
  /** A membership change; `data` is an encoded ConfChange (see encodeConfChange). */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be on stable storage before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote: NodeId; // NO_NODE when not voted in `term`
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  /** Transport address (host:port) of every voter and learner, keyed by node id. */
  addresses: Record<number, string>;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  /** Opaque state-machine image (StateMachine.snapshot()). */
  data: Uint8Array;
}

export enum ConfChangeType {
  AddVoter = 0,
  AddLearner = 1,
  RemoveNode = 2,
}

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
  /** Transport address of the node being added (host:port); empty for removals. */
  address: string;
}

export enum MessageType {
  Vote = 0,
  VoteResp = 1,
  PreVote = 2,
  PreVoteResp = 3,
  App = 4,
  AppResp = 5,
  Heartbeat = 6,
  HeartbeatResp = 7,
  /** Install-snapshot. The core sends it whole; the transport streams `snapshot.data` in chunks. */
  Snap = 8,
  /** Leader -> transfer target: start an election now, ignoring leases. */
  TimeoutNow = 9,
  /** Follower -> leader: ask for a read index on behalf of `context`. */
  ReadIndex = 10,
  ReadIndexResp = 11,
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /**
   * App: term of the entry at `index` (the entry preceding `entries`). Vote/PreVote: candidate's
   * last log term. AppResp with reject: term of the follower's entry at `rejectHint` (0 if unknown).
   * VoteResp/PreVoteResp: term of the responder's entry at `commit`.
   */
  logTerm: number;
  /**
   * App: index preceding `entries`. AppResp: the follower's last matching index (or rejected index).
   * Vote: last log index. ReadIndexResp: the read index. Heartbeat: the leader's logical clock
   * when it sent it, echoed in HeartbeatResp (the leader lease is measured from it).
   */
  index: number;
  entries: Entry[];
  /**
   * App/Heartbeat: the leader's commit index. AppResp/HeartbeatResp/VoteResp/PreVoteResp: the
   * responder's commit index.
   */
  commit: number;
  reject: boolean;
  /** AppResp with reject: the follower's hint for where the leader should probe next. */
  rejectHint: number;
  snapshot?: Snapshot;
  /** Opaque request context (read-index id, campaign-transfer flag), echoed in responses. */
  context: Uint8Array;
}

/** A linearizable read is safe once the state machine has applied `index`. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

export enum Role {
  Follower = 0,
  PreCandidate = 1,
  Candidate = 2,
  Leader = 3,
}

export interface SoftState {
  leader: NodeId;
  role: Role;
}

/**
 * Everything the driver must do after the core has moved: persist `hardState`, `entries` and
 * `snapshot` (durably, before sending `messages`), send `messages`, apply `committedEntries`
 * (and restore `snapshot` first if present), then call `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** False when only soft/commit state changed and nothing needs an fsync. */
  mustSync: boolean;
}

/**
 * Read side of a node's log storage, as the core sees it. Reads are synchronous (LMDB reads are);
 * the driver performs every write (append, hard state, snapshot, compaction) outside the core.
 */
export interface LogStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), stopping early once `maxBytes` of data is exceeded (at least one entry). */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of entry i; snapshot index is allowed. Throws CompactedError / UnavailableError. */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot (index 0 when there is none). */
  snapshot(): Snapshot;
}

export class CompactedError extends Error {
  constructor(index: number) {
    super(`raft: entry ${index} has been compacted`);
    this.name = 'CompactedError';
  }
}

export class UnavailableError extends Error {
  constructor(index: number) {
    super(`raft: entry ${index} is not in the log yet`);
    this.name = 'UnavailableError';
  }
}
