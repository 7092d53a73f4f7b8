// Scenario tests: linearizable reads. Read-index (a heartbeat round confirms leadership, only after
// the leader committed an entry of its term; followers forward to the leader) and the leader lease
// (answered at once while a quorum acknowledged a heartbeat less than an election timeout ago).
import { describe, expect, it } from 'vitest';
import { MessageType, Role, nodeId } from '../../../src/raft/types.js';
import { TestCluster, decode, encode } from './cluster.js';

const contexts = (c: TestCluster, n: number) => c.node(n).readStates.map((rs) => decode(rs.context));

describe('read index', () => {
  it('the leader answers after a heartbeat round that a quorum acknowledged', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.raw(1).propose(encode('a'));
    c.stabilize();
    const heartbeatsBefore = c.deliveredOf(MessageType.Heartbeat).length;
    c.raw(1).readIndex(encode('r1'));
    c.processReady(c.node(1));
    expect(c.node(1).readStates).toEqual([]); // not before the round
    c.stabilize();
    expect(c.deliveredOf(MessageType.Heartbeat).length).toBeGreaterThan(heartbeatsBefore);
    expect(c.node(1).readStates).toEqual([{ index: c.raw(1).status().commit, context: encode('r1') }]);
  });

  it('reads that arrive together share one heartbeat round', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    const before = c.deliveredOf(MessageType.Heartbeat).length;
    for (let i = 0; i < 10; i++) c.raw(1).readIndex(encode(`r${i}`));
    c.stabilize();
    expect(c.deliveredOf(MessageType.Heartbeat).length - before).toBe(2);
    expect(contexts(c, 1)).toHaveLength(10);
  });

  it('a follower forwards the request and gets the leader`s read index back', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.raw(1).propose(encode('a'));
    c.stabilize();
    c.raw(3).readIndex(encode('from-3'));
    c.stabilize();
    expect(c.deliveredOf(MessageType.ReadIndex, { from: 3, to: 1 })).toHaveLength(1);
    expect(c.node(3).readStates).toEqual([{ index: c.raw(1).status().commit, context: encode('from-3') }]);
  });

  it('throws NotLeaderError where no leader is known', () => {
    const c = new TestCluster([1, 2, 3]);
    expect(() => c.raw(2).readIndex(encode('x'))).toThrow(/no leader is known/);
  });

  it('a leader cut off from the quorum never confirms a read', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    c.raw(1).readIndex(encode('stale'));
    c.run(30);
    expect(c.node(1).readStates).toEqual([]);
    expect(c.raw(1).status().role).toBe(Role.Leader); // it does not even know it is stale
  });

  it('a new leader answers only once it has committed an entry of its own term', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    c.raw(1).propose(encode('a'));
    c.stabilize();
    // Node 2 wins, but its appends (and so its no-op) do not get through for now.
    c.intercept = (m) => !(m.type === MessageType.App && m.from === 2);
    c.elect(2);
    expect(c.raw(2).status().role).toBe(Role.Leader);
    c.raw(2).readIndex(encode('early'));
    c.run(3);
    expect(c.node(2).readStates).toEqual([]);
    c.intercept = () => true;
    c.run(2);
    const status = c.raw(2).status();
    expect(c.node(2).readStates).toHaveLength(1);
    expect(c.node(2).readStates[0]!.index).toBeGreaterThanOrEqual(status.lastIndex);
  });
});

describe('lease reads', () => {
  const leaseCluster = () => {
    const c = new TestCluster([1, 2, 3], { checkQuorum: true, readOnly: 'lease' });
    c.passStartupLease();
    c.elect(1);
    c.run(2); // heartbeats acknowledged: the lease starts
    return c;
  };

  it('the leader answers from its lease, without a heartbeat round', () => {
    const c = leaseCluster();
    const heartbeatsBefore = c.deliveredOf(MessageType.Heartbeat).length;
    c.raw(1).readIndex(encode('r'));
    c.processReady(c.node(1));
    expect(contexts(c, 1)).toEqual(['r']);
    c.stabilize();
    expect(c.deliveredOf(MessageType.Heartbeat).length).toBe(heartbeatsBefore);
  });

  it('the lease ends before any other node could be elected', () => {
    const c = leaseCluster();
    c.isolate(1);
    // Node 2 campaigns every tick; node 3 refuses while it is in the lease it gave node 1.
    const answeredWhileOthersLed: string[] = [];
    let newLeaderAt = 0;
    for (let tick = 1; tick <= 15; tick++) {
      c.tick(1);
      if (c.node(2).role() !== Role.Leader) c.raw(2).campaign();
      c.raw(1).readIndex(encode(`t${tick}`));
      c.stabilize();
      if (c.node(2).role() === Role.Leader && newLeaderAt === 0) newLeaderAt = tick;
      if (newLeaderAt > 0) answeredWhileOthersLed.push(...contexts(c, 1).filter((context) => context === `t${tick}`));
    }
    expect(newLeaderAt).toBeGreaterThan(0);
    expect(contexts(c, 1).length).toBeGreaterThan(0); // the lease did serve reads
    expect(answeredWhileOthersLed).toEqual([]);
    expect(c.raw(1).status().role).toBe(Role.Leader); // and node 1 still believes it leads
  });

  it('needs check-quorum', () => {
    expect(() => new TestCluster([1], { readOnly: 'lease', checkQuorum: false })).toThrow(RangeError);
  });

  it('a leader stops answering from its lease once it asked another node to take over', () => {
    const c = leaseCluster();
    c.isolate(3);
    c.raw(1).propose(encode('a'));
    c.stabilize();
    c.heal();
    c.intercept = (m) => m.type !== MessageType.TimeoutNow; // the transfer target never acts
    c.raw(1).transferLeadership(nodeId(3));
    c.stabilize();
    expect(c.deliveredOf(MessageType.TimeoutNow)).toEqual([]);
    c.run(12); // the transfer times out; node 1 is still leader
    expect(c.raw(1).status()).toMatchObject({ role: Role.Leader, leadTransferee: 0 });
    const heartbeatsBefore = c.deliveredOf(MessageType.Heartbeat).length;
    c.raw(1).readIndex(encode('after'));
    c.processReady(c.node(1));
    expect(contexts(c, 1)).toEqual([]); // a heartbeat round is needed now
    c.stabilize();
    expect(contexts(c, 1)).toEqual(['after']);
    expect(c.deliveredOf(MessageType.Heartbeat).length).toBeGreaterThan(heartbeatsBefore);
  });
});
