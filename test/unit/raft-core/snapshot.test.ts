// Scenario tests: a follower that needs entries the leader compacted gets the leader's snapshot,
// installs it and catches up; a failed snapshot is retried; the core keeps working when its
// storage compacts under it.
import { describe, expect, it } from 'vitest';
import { MessageType, nodeId } from '../../../src/raft/types.js';
import { ProgressState } from '../../../src/raft/core/raw-node.js';
import { TestCluster, encode } from './cluster.js';

/** Node 3 misses 10 entries while cut off; the leader then snapshots and compacts them away. */
function laggingFollower(): { c: TestCluster; snapshotIndex: number } {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 10; i++) c.raw(1).propose(encode(`e${i}`));
  c.stabilize();
  const leader = c.node(1);
  const { applied, conf } = leader.raw.status();
  leader.storage.createSnapshot(applied, conf, encode(`image@${applied}`));
  leader.storage.compact(applied);
  return { c, snapshotIndex: applied };
}

describe('snapshots', () => {
  it('a lagging follower installs the leader`s snapshot, then replicates on from it', () => {
    const { c, snapshotIndex } = laggingFollower();
    c.heal();
    c.run(3);
    expect(c.deliveredOf(MessageType.Snap, { from: 1, to: 3 })).toHaveLength(1);
    const installed = c.node(3).installed;
    expect(installed.map((s) => s.meta.index)).toEqual([snapshotIndex]);
    expect(new TextDecoder().decode(installed[0]!.data)).toBe(`image@${snapshotIndex}`);
    expect(c.node(3).storage.firstIndex()).toBe(snapshotIndex + 1);
    expect(c.raw(3).status().conf.voters).toEqual([1, 2, 3]);

    c.raw(1).propose(encode('after'));
    c.stabilize();
    expect(c.node(3).applied.get(snapshotIndex + 1)).toBe('after');
    expect(c.raw(1).status().progress[3]).toMatchObject({ state: ProgressState.Replicate, match: snapshotIndex + 1 });
  });

  it('a snapshot reported as failed is sent again', () => {
    const { c, snapshotIndex } = laggingFollower();
    c.heal();
    c.intercept = (m) => m.type !== MessageType.Snap;
    c.run(2);
    expect(c.raw(1).status().progress[3]!.state).toBe(ProgressState.Snapshot);
    c.raw(1).reportSnapshot(nodeId(3), false);
    c.intercept = () => true;
    c.run(3);
    expect(c.node(3).installed.map((s) => s.meta.index)).toEqual([snapshotIndex]);
  });

  it('keeps working while followers compact their own logs, and after a restart', () => {
    const c = new TestCluster([1, 2, 3]);
    c.elect(1);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 4; i++) c.raw(1).propose(encode(`r${round}e${i}`));
      c.stabilize();
      for (const node of c.nodes.values()) {
        const { applied, conf } = node.raw.status();
        node.storage.createSnapshot(applied, conf, encode(`image@${applied}`));
        node.storage.compact(applied - 1);
      }
    }
    c.node(2).restart();
    c.raw(1).propose(encode('last'));
    c.stabilize();
    expect(c.node(2).storage.firstIndex()).toBeGreaterThan(15);
    expect([...c.node(2).applied.values()].at(-1)).toBe('last');
    expect(c.logTerms(2).length).toBeGreaterThan(0);
  });
});
