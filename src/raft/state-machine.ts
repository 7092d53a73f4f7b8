// The contract between a Raft group and the application state it replicates (src/inode, src/txn).
// The driver calls apply() exactly once per committed Normal entry, in log order, on every member.
import type { Entry } from './types.js';

export interface StateMachine<Result = unknown> {
  /**
   * Apply one committed entry. Must be deterministic: every member applying the same entries in
   * the same order reaches the same state and returns the same result. An empty `entry.data` is a
   * leader's no-op and must only advance the applied index. The returned value resolves the
   * proposer's promise on the node that proposed it.
   */
  apply(entry: Entry): Promise<Result> | Result;
  /**
   * The highest index whose effects are durable in the state machine's own storage. After a
   * restart, the driver replays the log from appliedIndex() + 1. A purely in-memory state machine
   * returns the index of the last restored snapshot (0 at first start).
   */
  appliedIndex(): number;
  /** A full image of the state as of appliedIndex(), for compaction and lagging followers. */
  snapshot(): Promise<Uint8Array>;
  /**
   * True when the state machine keeps its state in its own durable storage, committed together
   * with appliedIndex() (e.g. in the same LMDB environment as the log). A group whose only member
   * is this node then compacts its log without taking images: an image is only needed by another
   * member, and is taken before one is added.
   */
  readonly persistent?: boolean;
  /**
   * A persistent state machine whose effects can reach its storage without being flushed: flush
   * them. Called when the group's durability is 'fsync', before the log is compacted behind
   * appliedIndex() without an image. (One that flushes within its own commits, as
   * InodeStateMachine does, needs none.)
   */
  sync?(): Promise<void>;
  /** Replace the whole state with a snapshot image taken at `index`. */
  restore(data: Uint8Array, index: number): Promise<void>;
}
