// How getRangePieces' answer crosses between threads: pieces keep their bytes and order; memory of
// their own is moved (once, however many pieces view it), Node's shared pool slabs are copied, and
// nothing is taken from a sender that is not done with its buffers.
import { MessageChannel, type TransferListItem } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { fromWire, toWire } from '../../../src/node/s3/object-store-wire.js';

async function cross(value: unknown, detachable: boolean): Promise<unknown> {
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<unknown>((resolve) => port2.once('message', resolve));
  const transfer: TransferListItem[] = [];
  port1.postMessage(toWire(value, transfer, detachable), transfer);
  const out = fromWire(await received);
  port1.close();
  return out;
}

describe('object store wire: pieces', () => {
  it('moves pieces of their own memory, copies pooled ones, keeps bytes and order', async () => {
    const own = Buffer.alloc(100_000);
    for (let i = 0; i < own.length; i++) own[i] = i % 251;
    const expected = Buffer.concat([own.subarray(10, 60_000), own.subarray(60_000), Buffer.from('pooled')]);
    const pieces = [own.subarray(10, 60_000), own.subarray(60_000), Buffer.from('pooled')];
    const out = (await cross(pieces, true)) as Buffer[];
    expect(out.every((p) => Buffer.isBuffer(p))).toBe(true);
    expect(out.map((p) => p.length)).toEqual([59_990, 40_000, 6]);
    expect(Buffer.concat(out).equals(expected)).toBe(true);
    expect(own.length).toBe(0); // moved: detached here
  });

  it('copies when the sender keeps its buffers', async () => {
    const own = Buffer.alloc(100_000, 5);
    const out = (await cross([own.subarray(0, 50_000), own.subarray(50_000)], false)) as Buffer[];
    expect(Buffer.concat(out).equals(Buffer.alloc(100_000, 5))).toBe(true);
    expect(own.length).toBe(100_000);
  });

  it('leaves other arrays alone', async () => {
    expect(await cross(['a', 'b'], true)).toEqual(['a', 'b']);
    expect(await cross([], true)).toEqual([]);
  });
});
