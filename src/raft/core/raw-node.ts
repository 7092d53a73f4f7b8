// The core's public face: a Raft node driven by tick()/step()/propose(), whose every effect comes
// out as a Ready (what to persist, send and apply) that the driver acts on before advance(). It owns
// the Ready bookkeeping (what changed since the last one, which one is outstanding) and nothing
// else: it never does I/O, keeps no clock and does not retry anything by itself.
//
// One Ready at a time: after ready(), hasReady() is false and ready() throws until advance(rd).
import type { ConfChange, HardState, Message, NodeId, Ready, SoftState } from '../types.js';
import { RaftInvariantError } from './errors.js';
import type { TermAt } from './log.js';
import { DEFAULT_MAX_COMMITTED_SIZE_PER_READY, Raft, type RaftConfig, type RaftStatus } from './raft.js';

export type { RaftConfig, RaftStatus, ProgressStatus } from './raft.js';
export type { TermAt } from './log.js';
export { ProgressState } from './progress.js';
export { NotLeaderError, ConfChangeRejectedError, RaftCoreError, RaftInvariantError } from './errors.js';
export { encodeConfChange, decodeConfChange } from './conf-change.js';

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export class RawNode {
  private readonly raft: Raft;
  private readonly maxCommittedSizePerReady: number;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private outstanding: Ready | undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.maxCommittedSizePerReady = config.maxCommittedSizePerReady ?? DEFAULT_MAX_COMMITTED_SIZE_PER_READY;
    this.previousSoftState = this.raft.softState();
    this.previousHardState = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Feeds one message from the network; stale, misaddressed or unexpected messages are ignored. */
  step(m: Message): void {
    this.raft.step(m);
  }

  /** Starts an election now (a single-voter group elects itself at once). */
  campaign(): void {
    this.raft.campaign();
  }

  /** Appends `data` to the log; throws NotLeaderError (also while a leadership transfer is under way). */
  propose(data: Uint8Array): TermAt {
    return this.raft.propose(data);
  }

  /** Proposes a membership change; throws NotLeaderError or ConfChangeRejectedError. */
  proposeConfChange(cc: ConfChange): TermAt {
    return this.raft.proposeConfChange(cc);
  }

  /**
   * Asks for a linearizable read point; the answer is a Ready.readStates entry carrying `context`.
   * A follower forwards the request to its leader; throws NotLeaderError when no leader is known.
   */
  readIndex(context: Uint8Array): void {
    this.raft.readIndex(context);
  }

  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const raft = this.raft;
    raft.flushBroadcasts();
    return (
      !sameSoftState(raft.softState(), this.previousSoftState) ||
      !sameHardState(raft.hardState(), this.previousHardState) ||
      raft.msgs.length > 0 ||
      raft.readStates.length > 0 ||
      raft.log.hasUnstableEntries() ||
      raft.log.pendingSnapshot() !== undefined ||
      raft.log.hasNextCommittedEntries()
    );
  }

  ready(): Ready {
    if (this.outstanding) throw new RaftInvariantError('ready() called again before advance() of the previous Ready');
    const raft = this.raft;
    raft.flushBroadcasts();
    const softState = raft.softState();
    const hardState = raft.hardState();
    const hardStateChanged = !sameHardState(hardState, this.previousHardState);
    const entries = raft.log.unstableEntries();
    const snapshot = raft.log.pendingSnapshot();
    const rd: Ready = {
      entries,
      committedEntries: raft.log.nextCommittedEntries(this.maxCommittedSizePerReady),
      messages: raft.msgs,
      readStates: raft.readStates,
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hardState.term !== this.previousHardState.term ||
        hardState.vote !== this.previousHardState.vote,
    };
    if (!sameSoftState(softState, this.previousSoftState)) rd.softState = softState;
    if (hardStateChanged) rd.hardState = hardState;
    if (snapshot) rd.snapshot = snapshot;
    raft.msgs = [];
    raft.readStates = [];
    this.previousSoftState = softState;
    this.previousHardState = hardState;
    this.outstanding = rd;
    return rd;
  }

  /** The driver persisted, sent and applied `rd` (the Ready last returned by ready()). */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new RaftInvariantError('advance() called with a Ready that is not the outstanding one');
    this.outstanding = undefined;
    this.raft.advance(rd);
  }

  status(): RaftStatus {
    return this.raft.status();
  }
}
