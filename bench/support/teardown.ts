// Undoing what a benchmark started (mount processes, buckets, temp dirs, the S3 lease), also when
// it fails or is interrupted: steps run last-registered first, every step runs even if another
// failed, and SIGINT/SIGTERM/SIGHUP run them before the process exits. It never decides what to
// clean up; the code that starts something registers how to stop it.

interface TeardownStep {
  what: string;
  run: () => Promise<void>;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const SIGNAL_NUMBERS: Record<(typeof SIGNALS)[number], number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

export class Teardown {
  private readonly steps: TeardownStep[] = [];
  private running: Promise<Error[]> | undefined;

  /**
   * Registers `run` as the way to undo something. Returns a function that runs the step now (once)
   * and removes it, for undoing early; its errors go to the caller.
   */
  add(what: string, run: () => Promise<void>): () => Promise<void> {
    const step: TeardownStep = { what, run };
    this.steps.push(step);
    return async () => {
      const at = this.steps.indexOf(step);
      if (at < 0) return;
      this.steps.splice(at, 1);
      await step.run();
    };
  }

  /** Runs every registered step, newest first; returns the failures (each also logged). */
  runAll(): Promise<Error[]> {
    this.running ??= (async () => {
      const failures: Error[] = [];
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.run();
        } catch (error) {
          const failure = new Error(`cleanup "${step.what}" failed: ${(error as Error).message}`, { cause: error });
          process.stderr.write(`${failure.message}\n`);
          failures.push(failure);
        }
      }
      return failures;
    })();
    return this.running;
  }
}

/**
 * Runs `body` with a Teardown that is run when the body ends (success or failure) or the process
 * gets SIGINT/SIGTERM/SIGHUP (then the process exits with 128 + the signal number). A cleanup that
 * fails after a successful body fails the whole run, so leftovers never go unnoticed.
 */
export async function withTeardown<T>(body: (teardown: Teardown) => Promise<T>): Promise<T> {
  const teardown = new Teardown();
  const onSignal = (signal: (typeof SIGNALS)[number]): void => {
    process.stderr.write(`${signal}: cleaning up before exiting\n`);
    void teardown.runAll().finally(() => process.exit(128 + SIGNAL_NUMBERS[signal]));
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    let result: T;
    try {
      result = await body(teardown);
    } catch (error) {
      await teardown.runAll();
      throw error;
    }
    const failures = await teardown.runAll();
    if (failures.length > 0) throw new AggregateError(failures, `${failures.length} cleanup step(s) failed`);
    return result;
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}
