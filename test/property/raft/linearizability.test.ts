// The checker itself must accept linearizable histories and reject the classic violations, or the
// simulation's verdicts mean nothing.
import { describe, expect, it } from 'vitest';
import { checkLinearizable, checkRegister, type RegisterOp } from './linearizability.js';

const INF = Number.POSITIVE_INFINITY;
const write = (value: string, invokedAt: number, returnedAt: number, key = 'k'): RegisterOp => ({ key, kind: 'write', value, invokedAt, returnedAt });
const read = (value: string | null, invokedAt: number, returnedAt: number, key = 'k'): RegisterOp => ({ key, kind: 'read', value, invokedAt, returnedAt });

describe('linearizability checker', () => {
  it('accepts sequential and overlapping histories that have a linearization', () => {
    expect(checkRegister([write('a', 1, 2), read('a', 3, 4)], null)).toBe(true);
    // The read overlaps the write: it may see either value.
    expect(checkRegister([write('a', 1, 4), read(null, 2, 3)], null)).toBe(true);
    expect(checkRegister([write('a', 1, 4), read('a', 2, 3)], null)).toBe(true);
    // Two overlapping writes, reads that pin down their order.
    expect(checkRegister([write('a', 1, 5), write('b', 2, 6), read('a', 7, 8)], null)).toBe(true);
  });

  it('rejects a stale read after an acknowledged write', () => {
    expect(checkRegister([write('a', 1, 2), read(null, 3, 4)], null)).toBe(false);
    expect(checkRegister([write('a', 1, 2), write('b', 3, 4), read('a', 5, 6)], null)).toBe(false);
  });

  it('rejects a read of a value never written, and reads that go back in time', () => {
    expect(checkRegister([read('x', 1, 2)], null)).toBe(false);
    // Each write takes effect once: after reads saw b and then a, the register cannot show b again.
    expect(checkRegister([write('a', 1, 10), write('b', 1, 10), read('b', 2, 3), read('a', 4, 5), read('b', 6, 7)], null)).toBe(false);
  });

  it('lets an unknown-outcome write take effect late or never', () => {
    expect(checkRegister([write('a', 1, INF), read(null, 2, 3), read('a', 4, 5)], null)).toBe(true);
    expect(checkRegister([write('a', 1, INF), read(null, 2, 3)], null)).toBe(true);
    // ...but not before it was invoked.
    expect(checkRegister([read('a', 1, 2), write('a', 3, INF)], null)).toBe(false);
    // ...and not twice.
    expect(checkRegister([write('a', 1, INF), read('a', 2, 3), write('b', 4, 5), read('a', 6, 7)], null)).toBe(false);
  });

  it('reports the offending key across independent registers', () => {
    const verdict = checkLinearizable([write('a', 1, 2, 'x'), read('a', 3, 4, 'x'), write('b', 1, 2, 'y'), read(null, 3, 4, 'y')]);
    expect(verdict).toMatchObject({ ok: false, key: 'y' });
  });
});

describe('linearizability checker at scale', () => {
  it('checks a long, concurrent history quickly and still finds a planted stale read', () => {
    // 8 clients, 8,000 operations on one register: writes of unique values and reads of the
    // value current at some point inside each read's interval.
    const history: RegisterOp[] = [];
    let time = 0;
    let current: string | null = null;
    for (let i = 0; i < 1_000; i++) {
      const invoked = Array.from({ length: 8 }, () => time++);
      for (let client = 0; client < 8; client++) {
        if ((i + client) % 2 === 0) {
          current = `v${i}-${client}`;
          history.push(write(current, invoked[client]!, time++));
        } else {
          history.push(read(current, invoked[client]!, time++));
        }
      }
    }
    const started = performance.now();
    expect(checkRegister(history, null)).toBe(true);
    expect(performance.now() - started).toBeLessThan(2_000);
    const stale = history.findIndex((op, i) => i > 4_000 && op.kind === 'read');
    history[stale] = { ...history[stale]!, value: 'v0-0' };
    expect(checkRegister(history, null)).toBe(false);
  });
});
