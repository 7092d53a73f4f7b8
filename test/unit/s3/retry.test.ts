// retryTransient and its backoff: how many attempts, which errors stop it at once, which error
// comes out, and delays that stay inside their cap (checked over random policies with fast-check,
// which prints the seed of any failing run so it can be replayed).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, type RetryPolicy, retryTransient } from '../../../src/node/s3/retry.js';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 250 };

class Transient extends Error {}

describe('retryTransient', () => {
  it('returns the first success, waiting a backoff delay between attempts', async () => {
    const waits: number[] = [];
    let attempts = 0;
    const result = await retryTransient(
      async (n) => {
        attempts = n;
        if (n < 3) throw new Transient(`attempt ${n}`);
        return 'done';
      },
      (error) => error instanceof Transient,
      policy,
      { random: () => 0.5, wait: async (ms) => waits.push(ms) },
    );
    expect(result).toBe('done');
    expect(attempts).toBe(3);
    expect(waits).toEqual([50, 100]);
  });

  it('rethrows the last transient error unchanged after maxAttempts', async () => {
    let attempts = 0;
    const failure = retryTransient(
      async (n) => {
        attempts = n;
        throw new Transient(`attempt ${n}`);
      },
      (error) => error instanceof Transient,
      policy,
      { wait: async () => undefined },
    );
    await expect(failure).rejects.toThrow(new Transient('attempt 4'));
    expect(attempts).toBe(4);
  });

  it('stops at the first error that is not transient', async () => {
    let attempts = 0;
    const permanent = new Error('permanent');
    const failure = retryTransient(
      async () => {
        attempts++;
        throw attempts === 1 ? new Transient('first') : permanent;
      },
      (error) => error instanceof Transient,
      policy,
      { wait: async () => undefined },
    );
    await expect(failure).rejects.toBe(permanent);
    expect(attempts).toBe(2);
  });

  it('never retries when maxAttempts is 1', async () => {
    let attempts = 0;
    const failure = retryTransient(
      async () => {
        attempts++;
        throw new Transient('once');
      },
      () => true,
      { ...policy, maxAttempts: 1 },
    );
    await expect(failure).rejects.toThrow('once');
    expect(attempts).toBe(1);
  });
});

describe('backoffDelayMs', () => {
  it('doubles its cap per retry up to maxDelayMs', () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4, 5].map((retry) => backoffDelayMs(retry, { maxAttempts: 9, baseDelayMs: 100, maxDelayMs: 500 }, top))).toEqual([
      99, 199, 399, 499, 499,
    ]);
    expect(backoffDelayMs(3, policy, () => 0)).toBe(0);
  });

  it('stays within [0, min(max, base * 2^(retry-1))] for any policy', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (retry, baseDelayMs, maxDelayMs, random) => {
          const delay = backoffDelayMs(retry, { maxAttempts: 50, baseDelayMs, maxDelayMs }, () => random);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1)));
        },
      ),
    );
  });
});
