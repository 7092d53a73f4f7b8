// One benchmark run's surroundings: the settings from the environment, the local S3 server (lease),
// a fresh bucket, a private work directory on the local disk, and mounts of that bucket — all undone
// when the run ends, fails or is interrupted. A directory is only ever removed when nothing is
// mounted inside it, so a stuck mount can never make the cleanup delete files in the bucket.
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSize } from '../../src/cli/args.js';
import { mountsUnder, startMount, type MountProcess } from './mount.js';
import { createBenchBucket, fullStoreNote, openBenchS3, type BenchS3 } from './s3.js';
import { withTeardown, type Teardown } from './teardown.js';

export interface BenchSettings {
  /** Measurements of each kind; medians are reported. */
  runs: number;
  /** Size of the big file of the read and write benchmarks. */
  fileBytes: number;
  /** Files of the metadata benchmark. */
  files: number;
  /** Extra `tidefs mount` options (to try a setting without editing the benchmark). */
  mountArgs: string[];
}

/** TIDEFS_BENCH_RUNS (3), TIDEFS_BENCH_FILE_SIZE (1GiB), TIDEFS_BENCH_FILES (2000), TIDEFS_BENCH_MOUNT_ARGS (''). */
function benchSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const count = (name: string, fallback: number): number => {
    const value = Number(env[name] ?? fallback);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
    return value;
  };
  return {
    runs: count('TIDEFS_BENCH_RUNS', 3),
    fileBytes: parseSize(env.TIDEFS_BENCH_FILE_SIZE ?? '1GiB', 'TIDEFS_BENCH_FILE_SIZE'),
    files: count('TIDEFS_BENCH_FILES', 2000),
    mountArgs: (env.TIDEFS_BENCH_MOUNT_ARGS ?? '').split(/\s+/).filter((arg) => arg !== ''),
  };
}

export interface BenchSession {
  settings: BenchSettings;
  teardown: Teardown;
  s3: BenchS3;
  bucket: string;
  /** A private directory on the local disk (temp files, data dirs, mount points). */
  workDir: string;
  /** Mounts the bucket at workDir/`name` with the given data directory. */
  mount(name: string, dataDir: string): Promise<MountProcess>;
  /** Removes a directory under workDir; refuses if anything is mounted inside it. */
  removeDir(dir: string): Promise<void>;
}

export async function withBenchSession<T>(purpose: string, body: (session: BenchSession) => Promise<T>): Promise<T> {
  const settings = benchSettings();
  return withTeardown(async (teardown) => {
    const s3 = await openBenchS3(teardown);
    const workDir = await fsp.mkdtemp(path.join(os.tmpdir(), `tidefs-bench-${purpose}-`));
    const removeDir = async (dir: string): Promise<void> => {
      if (dir !== workDir && !dir.startsWith(`${workDir}/`)) throw new Error(`${dir} is not inside ${workDir}`);
      const mounted = await mountsUnder(dir);
      if (mounted.length > 0) throw new Error(`not removing ${dir}: ${mounted.join(', ')} still mounted`);
      await fsp.rm(dir, { recursive: true, force: true });
    };
    teardown.add(`remove ${workDir}`, () => removeDir(workDir));
    const bucket = await createBenchBucket(s3, teardown, purpose);
    const mount = (name: string, dataDir: string): Promise<MountProcess> =>
      startMount({ bucket, mountpoint: path.join(workDir, name), dataDir, env: s3.env, args: settings.mountArgs }, teardown);
    try {
      return await body({ settings, teardown, s3, bucket, workDir, mount, removeDir });
    } catch (error) {
      const note = await fullStoreNote().catch(() => undefined);
      if (note) throw new Error(`${(error as Error).message}\n(${note})`, { cause: error });
      throw error;
    }
  });
}
