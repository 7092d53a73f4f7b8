// The leader's view of one follower's replication: how far it matches, what to send next, and the
// flow-control state (probe, replicate with a window of in-flight appends, or waiting on a snapshot).
// It only does bookkeeping; it never reads the log or builds messages (raft.ts does).

export enum ProgressState {
  /** Unsure where the follower's log matches: at most one append in flight until it answers. */
  Probe = 0,
  /** Follower is in sync: appends are pipelined, up to the in-flight window. */
  Replicate = 1,
  /** Follower needs a snapshot; nothing else is sent until it is installed or reported failed. */
  Snapshot = 2,
}

/** A bounded FIFO of the last indexes of appends sent but not yet acknowledged. */
export class Inflights {
  private readonly buffer: number[];
  private start = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.buffer = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this.size;
  }

  full(): boolean {
    return this.size === this.capacity;
  }

  add(lastIndex: number): void {
    if (this.full()) throw new RangeError('raft: in-flight window is full');
    this.buffer[(this.start + this.size) % this.capacity] = lastIndex;
    this.size++;
  }

  /** Frees every in-flight append whose last index is <= `index` (the follower acknowledged it). */
  freeUpTo(index: number): void {
    while (this.size > 0 && this.buffer[this.start]! <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.size--;
    }
  }

  reset(): void {
    this.start = 0;
    this.size = 0;
  }
}

export class Progress {
  state = ProgressState.Probe;
  /**
   * An append probe is out and no answer (or heartbeat answer) came back yet: in Probe state any
   * append, in Replicate state the empty append sent when the in-flight window is full.
   */
  probeSent = false;
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round (always true for the leader itself). */
  recentActive = false;
  /** The highest commit index the follower has reported (in its append and heartbeat answers). */
  knownCommit = 0;
  /** The leader's tick count when it sent the newest heartbeat this follower has acknowledged. */
  leaseAckTick = Number.NEGATIVE_INFINITY;
  readonly inflights: Inflights;

  constructor(
    public match: number,
    public next: number,
    public isLearner: boolean,
    maxInflight: number,
  ) {
    this.inflights = new Inflights(maxInflight);
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** The follower acknowledged its log matches up to `index`. Returns whether match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append whose preceding index was `rejected`; `hint` is where its log
   * may match. Returns false when the rejection is stale (answers an older append).
   */
  maybeDecreaseTo(rejected: number, hint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Bookkeeping after an append carrying entries up to `lastIndex` (undefined: no entries). */
  sentEntries(lastIndex: number | undefined): void {
    if (this.state === ProgressState.Replicate) {
      if (lastIndex !== undefined) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }
}
