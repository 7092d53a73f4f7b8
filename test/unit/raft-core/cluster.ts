// A small in-memory cluster for the core's scenario tests: each node is a RawNode over a
// MemoryStorage, driven by a driver that persists, sends and applies every Ready at once, over a
// network the test controls (cut links, isolate nodes, intercept messages). Deterministic: no
// timers, and every node's randomness is fixed unless the test passes its own.
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { RawNode, type RaftConfig } from '../../../src/raft/core/raw-node.js';
import {
  EntryType,
  MessageType,
  Role,
  nodeId,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
} from '../../../src/raft/types.js';

export type NodeOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'applied'>>;

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
export const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

export class TestNode {
  raw: RawNode;
  /** Data of every applied Normal entry with data, by index. */
  readonly applied = new Map<number, string>();
  readonly readStates: ReadState[] = [];
  /** Snapshots this node installed from its leader. */
  readonly installed: Snapshot[] = [];
  appliedIndex = 0;

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    private readonly options: NodeOptions,
  ) {
    this.raw = this.start();
  }

  /** Loses everything not persisted and starts again from storage (applied = its snapshot). */
  restart(): void {
    this.appliedIndex = this.storage.snapshot().meta.index;
    this.raw = this.start();
  }

  role(): Role {
    return this.raw.status().role;
  }

  private start(): RawNode {
    return new RawNode({
      id: this.id,
      storage: this.storage,
      applied: this.appliedIndex,
      electionTick: 10,
      heartbeatTick: 1,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
      checkQuorum: false,
      preVote: false,
      readOnly: 'safe',
      random: () => 0.99,
      ...this.options,
    });
  }
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Every message the network carried (after `intercept`), in order. */
  readonly delivered: Message[] = [];
  /** Return false to drop a message, or a message to deliver in its place. */
  intercept: (m: Message) => boolean | Message = () => true;
  private readonly cutLinks = new Set<string>();
  private inFlight: Message[] = [];

  /** `options` may differ per node (a function of the node id). */
  constructor(ids: number[], options: NodeOptions | ((id: NodeId) => NodeOptions) = {}, conf?: ConfState) {
    const bootstrap = conf ?? { voters: ids.map(nodeId), learners: [], addresses: {} };
    for (const n of ids) {
      const id = nodeId(n);
      this.nodes.set(id, new TestNode(id, new MemoryStorage(bootstrap), typeof options === 'function' ? options(id) : options));
    }
  }

  /** Adds a node that is not in the group yet (empty storage, empty membership). */
  addNode(n: number, options: NodeOptions = {}): TestNode {
    const node = new TestNode(nodeId(n), new MemoryStorage(), options);
    this.nodes.set(node.id, node);
    return node;
  }

  node(n: number): TestNode {
    const node = this.nodes.get(nodeId(n));
    if (!node) throw new Error(`no node ${n}`);
    return node;
  }

  raw(n: number): RawNode {
    return this.node(n).raw;
  }

  cut(a: number, b: number): void {
    this.cutLinks.add(`${a}-${b}`).add(`${b}-${a}`);
  }

  isolate(n: number): void {
    for (const other of this.nodes.keys()) if (other !== n) this.cut(n, other);
  }

  heal(): void {
    this.cutLinks.clear();
  }

  /** Ticks the given nodes (default: all) `times` times, without delivering anything. */
  tick(times = 1, ids: number[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < times; i++) for (const id of ids) this.raw(id).tick();
  }

  /** Lets a fresh (check-quorum) cluster's startup lease pass, so that votes are granted. */
  passStartupLease(electionTick = 10): void {
    this.tick(electionTick);
  }

  /** Ticks every node once and runs the network until quiet, `times` times. */
  run(times: number): void {
    for (let i = 0; i < times; i++) {
      this.tick();
      this.stabilize();
    }
  }

  /** Term of each entry in node `n`'s log from `from` on (its persisted log). */
  logTerms(n: number, from = 1): number[] {
    const storage = this.node(n).storage;
    const terms: number[] = [];
    for (let i = Math.max(from, storage.firstIndex()); i <= storage.lastIndex(); i++) terms.push(storage.term(i));
    return terms;
  }

  /** Campaigns `n` and runs the network until quiet. */
  elect(n: number): void {
    this.raw(n).campaign();
    this.stabilize();
  }

  /** Campaigns `n` until it leads (a restarted node first applies its log; a vote may be split). */
  electUntilLeader(n: number, attempts = 5): void {
    for (let i = 0; i < attempts && this.node(n).role() !== Role.Leader; i++) this.elect(n);
    if (this.node(n).role() !== Role.Leader) throw new Error(`node ${n} did not become leader`);
  }

  /** Processes every Ready and delivers every message until nothing moves. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const node of this.nodes.values()) moved = this.processReady(node) || moved;
      const batch = this.inFlight;
      this.inFlight = [];
      for (const sent of batch) {
        moved = true;
        if (this.cutLinks.has(`${sent.from}-${sent.to}`)) continue;
        const verdict = this.intercept(sent);
        if (verdict === false) continue;
        const m = verdict === true ? sent : verdict;
        this.delivered.push(m);
        this.nodes.get(m.to)?.raw.step(m);
      }
      if (!moved) return;
    }
    throw new Error('cluster did not settle');
  }

  /** Persists, sends and applies one Ready of `node`; false if it had none. */
  processReady(node: TestNode): boolean {
    if (!node.raw.hasReady()) return false;
    const rd = node.raw.ready();
    if (rd.snapshot) node.storage.applySnapshot(rd.snapshot);
    node.storage.append(rd.entries);
    if (rd.hardState) node.storage.setHardState(rd.hardState);
    this.inFlight.push(...rd.messages);
    if (rd.snapshot) {
      node.installed.push(rd.snapshot);
      node.appliedIndex = rd.snapshot.meta.index;
    }
    for (const entry of rd.committedEntries) this.apply(node, entry);
    node.readStates.push(...rd.readStates);
    node.raw.advance(rd);
    return true;
  }

  /** The node that is leader in the highest term, if any. */
  leader(): TestNode | undefined {
    let best: TestNode | undefined;
    for (const node of this.nodes.values()) {
      const status = node.raw.status();
      if (status.role === Role.Leader && (!best || status.term > best.raw.status().term)) best = node;
    }
    return best;
  }

  /** Messages of `type` the network delivered (optionally only from/to given nodes). */
  deliveredOf(type: MessageType, filter: { from?: number; to?: number } = {}): Message[] {
    return this.delivered.filter(
      (m) => m.type === type && (filter.from === undefined || m.from === filter.from) && (filter.to === undefined || m.to === filter.to),
    );
  }

  private apply(node: TestNode, entry: Entry): void {
    if (entry.index !== node.appliedIndex + 1) {
      throw new Error(`node ${node.id} applied ${entry.index} after ${node.appliedIndex}`);
    }
    node.appliedIndex = entry.index;
    if (entry.type === EntryType.Normal && entry.data.byteLength > 0) node.applied.set(entry.index, decode(entry.data));
  }
}
