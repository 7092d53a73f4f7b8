// Retrying transient failures: capped exponential backoff with full jitter. It owns only the loop and
// the delays; which failures are transient is the caller's decision, and it never wraps or hides an
// error (the last one is rethrown as is, so the caller can tell "gave up" from "not retryable").
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  /** Attempts in total, the first one included (1 = never retry). */
  maxAttempts: number;
  /** Upper bound of the delay before the first retry; it doubles for every further retry. */
  baseDelayMs: number;
  /** No delay is ever longer than this. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 5_000 };

/** The delay before retry number `retry` (1-based): uniform in [0, min(max, base * 2^(retry-1))]. */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * cap);
}

export interface RetryHooks {
  random?: () => number;
  wait?: (ms: number) => Promise<unknown>;
}

/**
 * Runs `attempt` until it succeeds, fails with an error `isTransient` rejects, or `maxAttempts`
 * attempts have failed; in the last two cases the last error is rethrown unchanged.
 */
export async function retryTransient<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  isTransient: (error: unknown) => boolean,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  const wait = hooks.wait ?? sleep;
  for (let attemptNumber = 1; ; attemptNumber++) {
    try {
      return await attempt(attemptNumber);
    } catch (error) {
      if (attemptNumber >= policy.maxAttempts || !isTransient(error)) throw error;
      await wait(backoffDelayMs(attemptNumber, policy, hooks.random));
    }
  }
}
