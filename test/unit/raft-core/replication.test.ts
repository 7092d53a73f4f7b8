// Scenario tests: log replication (batching, pipelining), repair of a follower's conflicting log with
// fast backtracking, and the rule that a leader commits only entries of its own term by counting
// replicas (the Figure 8 scenario of the Raft paper).
import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { RawNode } from '../../../src/raft/core/raw-node.js';
import { EntryType, MessageType, Role, nodeId, type Entry, type LogStorage } from '../../../src/raft/types.js';
import { TestCluster, encode } from './cluster.js';

describe('log replication', () => {
  it('batches the proposals made between two Readys into one append per follower', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const before = c.deliveredOf(MessageType.App).length;
    for (let i = 0; i < 50; i++) c.raw(1).propose(encode(`e${i}`));
    c.stabilize();
    const apps = c.deliveredOf(MessageType.App).slice(before);
    const withEntries = apps.filter((m) => m.entries.length > 0);
    expect(withEntries).toHaveLength(2);
    expect(withEntries.map((m) => m.entries.length)).toEqual([50, 50]);
    for (const n of [1, 2, 3]) expect(c.node(n).applied.size).toBe(50);
  });

  it('splits by maxSizePerMsg and pipelines up to maxInflightMsgs appends per follower', () => {
    const c = new TestCluster([1, 2], { maxSizePerMsg: 10, maxInflightMsgs: 3 });
    c.elect(1);
    const inFlight: number[] = [];
    c.intercept = (m) => {
      if (m.type === MessageType.App && m.entries.length > 0) inFlight.push(m.entries.length);
      return true;
    };
    for (let i = 0; i < 20; i++) c.raw(1).propose(encode('12345')); // 5 bytes each: 2 per message
    // The leader's next Ready carries the appends it sends before hearing back from the follower.
    const rd = c.raw(1).ready();
    const sent = rd.messages.filter((m) => m.type === MessageType.App).map((m) => m.entries.length);
    expect(sent).toEqual([2, 2, 2]);
    c.node(1).storage.append(rd.entries);
    c.raw(1).advance(rd);
    for (const m of rd.messages) c.raw(m.to).step(m);
    c.stabilize();
    expect(inFlight.reduce((a, b) => a + b, 0)).toBe(14);
    expect(c.node(2).applied.size).toBe(20);
  });

  it('repairs a follower whose log diverged, skipping a whole term per round trip', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    for (let i = 0; i < 30; i++) c.raw(1).propose(encode(`stale${i}`)); // never committed
    c.stabilize();
    c.elect(2);
    for (let i = 0; i < 10; i++) c.raw(2).propose(encode(`new${i}`));
    c.stabilize();
    c.heal();
    c.run(3);
    expect(c.raw(1).status()).toMatchObject({ role: Role.Follower, leader: 2 });
    expect(c.logTerms(1)).toEqual(c.logTerms(2));
    expect([...c.node(1).applied.values()]).toEqual([...c.node(2).applied.values()]);
    expect([...c.node(1).applied.values()].some((v) => v.startsWith('stale'))).toBe(false);
    const rejections = c.deliveredOf(MessageType.AppResp, { from: 1 }).filter((m) => m.reject);
    expect(rejections.length).toBeLessThanOrEqual(2);
  });
});

describe('messages it cannot use', () => {
  it('ignores misaddressed, malformed, unknown-sender and stale messages', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.raw(1).propose(encode('a'));
    c.stabilize();
    const before = c.raw(2).status();
    const app = c.deliveredOf(MessageType.App, { from: 1, to: 2 }).at(-1)!;
    const entry = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: encode('junk') });
    const last = before.lastIndex;
    const logTerm = c.node(2).storage.term(last);
    for (const m of [
      { ...app, to: nodeId(3) }, // not for node 2
      { ...app, from: nodeId(2) }, // from itself
      { ...app, index: last, logTerm, entries: [entry(last + 2, before.term)] }, // a gap
      { ...app, index: last, logTerm, entries: [entry(last + 1, before.term + 5)] }, // a term from the future
      { ...app, term: 0, index: last, logTerm, entries: [entry(last + 1, 0)] }, // a stale term
      { ...app, type: MessageType.Snap }, // a snapshot message without a snapshot
      { ...app, type: MessageType.HeartbeatResp, context: encode('not a round') },
    ]) {
      c.raw(2).step(m);
    }
    c.raw(1).step({ ...app, type: MessageType.AppResp, from: nodeId(9), to: nodeId(1), index: 1000 });
    c.stabilize();
    expect(c.raw(2).status()).toMatchObject({ lastIndex: before.lastIndex, commit: before.commit, term: before.term, leader: 1 });
    expect(c.raw(1).status().progress[9]).toBeUndefined();
    expect(c.raw(1).status().commit).toBe(before.commit);
  });
});

describe('commit only by counting entries of the current term (Figure 8)', () => {
  it('never commits an old-term entry that a later leader may still overwrite', () => {
    // One entry per append, so the test can let an old entry through and hold back the no-op.
    const c = new TestCluster([1, 2, 3, 4, 5], { maxSizePerMsg: 0 });
    c.elect(1);
    const base = c.raw(1).status().lastIndex;
    const x = base + 1;

    // (a) S1 replicates X to S2 only.
    c.intercept = (m) => !(m.type === MessageType.App && m.from === 1 && m.to !== 2);
    c.raw(1).propose(encode('X'));
    c.stabilize();
    c.intercept = () => true;
    expect(c.logTerms(2, x)).toEqual([1]);

    // (b) S1 goes away; S5 wins with S3 and S4 and writes its no-op at X's index, but keeps it.
    c.isolate(1);
    c.intercept = (m) => !(m.type === MessageType.App && m.from === 5);
    c.elect(5);
    expect(c.raw(5).status().role).toBe(Role.Leader);

    // (c) S5 goes away, S1 restarts and is elected (with S2, S3, S4) in a later term.
    // (d) S1 copies X (of an old term) to S3, but not its own no-op: X is on a majority.
    c.heal();
    c.isolate(5);
    c.intercept = (m) => (m.type === MessageType.App && m.from === 1 ? { ...m, entries: m.entries.filter((e) => e.term === 1) } : true);
    c.node(1).restart();
    c.electUntilLeader(1);
    c.run(2);
    for (const n of [1, 2, 3]) expect(c.logTerms(n, x)[0]).toBe(1);
    expect(c.raw(1).status().commit).toBeLessThan(x);

    // (e) S1 goes away before its no-op spreads; S5 restarts, wins, and overwrites X everywhere.
    c.heal();
    c.isolate(1);
    c.intercept = () => true;
    c.node(5).restart();
    c.electUntilLeader(5);
    expect(c.raw(5).status().role).toBe(Role.Leader);
    c.heal();
    c.run(3);
    for (const node of c.nodes.values()) {
      expect([...node.applied.values()]).not.toContain('X');
      expect(c.logTerms(node.id, x)[0]).toBe(2);
    }
  });

  it('(X commits once an entry of the leader`s own term is replicated after it)', () => {
    const c = new TestCluster([1, 2, 3, 4, 5], { maxSizePerMsg: 0 });
    c.elect(1);
    c.intercept = (m) => !(m.type === MessageType.App && m.from === 1 && m.to !== 2);
    c.raw(1).propose(encode('X'));
    c.stabilize();
    c.isolate(1);
    c.intercept = (m) => !(m.type === MessageType.App && m.from === 5);
    c.elect(5);
    c.heal();
    c.isolate(5);
    c.intercept = () => true;
    c.node(1).restart();
    c.electUntilLeader(1);
    c.run(2);
    expect([...c.node(1).applied.values()]).toContain('X');
  });
});

describe('efficiency', () => {
  /** Counts the entries the core reads from its storage. */
  class CountingStorage implements LogStorage {
    entriesRead = 0;
    constructor(readonly inner: MemoryStorage) {}
    initialState() {
      return this.inner.initialState();
    }
    entries(lo: number, hi: number, maxBytes?: number): Entry[] {
      const entries = this.inner.entries(lo, hi, maxBytes);
      this.entriesRead += entries.length;
      return entries;
    }
    term(i: number) {
      return this.inner.term(i);
    }
    firstIndex() {
      return this.inner.firstIndex();
    }
    lastIndex() {
      return this.inner.lastIndex();
    }
    snapshot() {
      return this.inner.snapshot();
    }
  }

  it('reads and hands out only what is new, however long the log', () => {
    const inner = new MemoryStorage({ voters: [nodeId(1)], learners: [], addresses: {} });
    const long: Entry[] = [];
    for (let i = 1; i <= 50_000; i++) long.push({ index: i, term: 1, type: EntryType.Normal, data: encode(`e${i}`) });
    inner.append(long);
    inner.setHardState({ term: 1, vote: nodeId(1), commit: 50_000 });
    const storage = new CountingStorage(inner);
    const node = new RawNode({
      id: nodeId(1), storage, applied: 50_000, electionTick: 10, heartbeatTick: 1, maxSizePerMsg: 1 << 20,
      maxInflightMsgs: 256, checkQuorum: false, preVote: false, readOnly: 'safe', random: () => 0.5,
    });
    node.campaign();
    // (Starting up reads the log once, replaying membership changes since the snapshot.)
    storage.entriesRead = 0;
    for (let round = 0; round < 100; round++) {
      node.propose(encode(`new${round}`));
      const rd = node.ready();
      expect(rd.entries.length).toBeLessThanOrEqual(2);
      expect(rd.committedEntries.length).toBeLessThanOrEqual(2);
      if (rd.hardState) inner.setHardState(rd.hardState);
      inner.append(rd.entries);
      node.advance(rd);
    }
    expect(storage.entriesRead).toBeLessThan(100);
  });
});
