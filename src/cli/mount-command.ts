// `tidefs mount s3://BUCKET[/PREFIX] MOUNTPOINT`: checks the bucket, starts a local node, mounts
// it, and serves until SIGINT/SIGTERM or an unmount from outside; then writes every dirty file
// back to the bucket and exits. Without --foreground it runs itself in the background and returns
// once the mount is ready (or prints why it failed).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FuseMount } from '../fuse/mount.js';
import { normalisePrefix } from '../inode/bucket-keys.js';
import { LocalNode, type NodeConfig } from '../node/local-node.js';
import { s3SettingsFromEnv } from '../node/s3/config.js';
import { WorkerObjectStore } from '../node/s3/worker-object-store.js';
import { StoreError } from '../node/s3/object-store.js';
import { parseArgs, parseBucketUrl, parseDuration, parseSize, UsageError } from './args.js';
import { NODE_FLAGS } from './node-flags.js';

export const MOUNT_USAGE = `tidefs mount s3://BUCKET[/PREFIX] MOUNTPOINT [options]

Mount a bucket (or a prefix of it). S3 settings come from the standard AWS environment
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) or the options below.

  --data-dir DIR        local state and chunk cache (default /var/lib/tidefs/BUCKET[_PREFIX] as root,
                        ~/.local/share/tidefs/... otherwise)
  --cache-size SIZE     local disk used for chunks (default 10GiB)
  --chunk-size SIZE     unit of caching and of ranged GETs (default 16MiB, or what the data
                        directory was created with)
  --metadata-ttl TIME   bucket changes made outside tidefs show after at most this (default 30s)
  --close-delay TIME    write a closed file back this long after its last close (default 2s)
  --max-dirty-age TIME  write back anything dirty for longer than this, open or not (default 30s)
  --read-ahead N        chunks fetched ahead of a sequential reader (default 4)
  --endpoint URL        S3 endpoint (default: AWS_ENDPOINT_URL)
  --region REGION       S3 region (default: AWS_REGION or us-east-1)
  --durability MODE     process (default): the log survives a killed process without an fsync per
                        write; fsync: every log write is fsynced (survives power loss)
  --busy-poll TIME      after answering the kernel, look this long for its next request before
                        sleeping: less latency per operation, some CPU (default 50us; 0: never)
  --sign-payloads       sign upload bodies (SHA-256 of every byte, checked by the server); by
                        default they go unsigned: on http:// nothing guards them against
                        tampering, as nothing guards downloads
  --trust-data-dir      use a data directory that --durability process left when the machine went
                        down (refused otherwise: it may be damaged); only after a clean shutdown
  --no-allow-other      only the mounting user may use the mount (default when not root)
  --foreground          stay in the foreground (logs to stderr)
`;

const VALUE_FLAGS = [
  'data-dir',
  'cache-size',
  'chunk-size',
  'metadata-ttl',
  'close-delay',
  'max-dirty-age',
  'read-ahead',
  'endpoint',
  'region',
  'durability',
  'busy-poll',
] as const;
const SWITCH_FLAGS = ['foreground', 'allow-other', 'sign-payloads', 'trust-data-dir'] as const;
/** The kernel's attribute and lookup caches live at most this long (and at most half the TTL). */
const MAX_KERNEL_CACHE_MS = 1000;

interface MountPlan {
  node: NodeConfig;
  mountpoint: string;
  /** How long the kernel caches attributes and lookups; part of the metadata TTL. */
  kernelCacheMs: number;
  busyPollUs: number;
  signPayloads: boolean;
  allowOther: boolean;
  foreground: boolean;
  endpoint: string | undefined;
  region: string | undefined;
}

function plan(argv: string[]): MountPlan {
  const args = parseArgs(argv, VALUE_FLAGS, SWITCH_FLAGS);
  if (args.positionals.length !== 2) throw new UsageError('expected s3://BUCKET[/PREFIX] and MOUNTPOINT');
  const { bucket, prefix } = parseBucketUrl(args.positionals[0]!);
  const mountpoint = path.resolve(args.positionals[1]!);
  const root = process.getuid?.() === 0;
  const chunkFlag = args.values.get('chunk-size');
  const chunkSize = chunkFlag === undefined ? undefined : parseSize(chunkFlag, '--chunk-size');
  if (chunkSize !== undefined && (chunkSize < 64 * 1024 || chunkSize > 1024 ** 3 || chunkSize % 4096 !== 0)) {
    throw new UsageError('--chunk-size must be a multiple of 4KiB between 64KiB and 1GiB');
  }
  const cacheSize = parseSize(args.values.get('cache-size') ?? '10GiB', '--cache-size');
  const readAhead = Number(args.values.get('read-ahead') ?? '4');
  if (!Number.isInteger(readAhead) || readAhead < 0 || readAhead > 64) throw new UsageError('--read-ahead must be 0..64');
  const durability = args.values.get('durability') ?? 'process';
  if (durability !== 'process' && durability !== 'fsync') throw new UsageError('--durability must be process or fsync');
  const endpoint = args.values.get('endpoint') ?? process.env.AWS_ENDPOINT_URL;
  // A change in the bucket can wait out a listing and then the kernel's cache of what it showed:
  // together they stay within the TTL.
  const metadataTtlMs = parseDuration(args.values.get('metadata-ttl') ?? '30s', '--metadata-ttl');
  const kernelCacheMs = Math.min(MAX_KERNEL_CACHE_MS, metadataTtlMs / 2);
  const busyPollMs = parseDuration(args.values.get('busy-poll') ?? '50us', '--busy-poll');
  if (busyPollMs > 10) throw new UsageError('--busy-poll must be at most 10ms');
  const dataDir = path.resolve(args.values.get('data-dir') ?? defaultDataDir(bucket, prefix, root));
  if (dataDir === mountpoint || dataDir.startsWith(mountpoint + path.sep)) {
    throw new UsageError('--data-dir cannot be inside the mount point');
  }
  return {
    node: {
      bucket,
      prefix: normalisePrefix(prefix),
      endpoint: endpoint ?? 'aws',
      dataDir,
      cacheSize,
      chunkSize,
      metadataTtlMs: metadataTtlMs - kernelCacheMs,
      closeDelayMs: parseDuration(args.values.get('close-delay') ?? '2s', '--close-delay'),
      maxDirtyAgeMs: parseDuration(args.values.get('max-dirty-age') ?? '30s', '--max-dirty-age'),
      readAheadChunks: readAhead,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      durability,
      trustAfterCrash: args.switches.get('trust-data-dir') ?? false,
    },
    mountpoint,
    kernelCacheMs,
    busyPollUs: busyPollMs * 1000,
    signPayloads: args.switches.get('sign-payloads') ?? false,
    allowOther: args.switches.get('allow-other') ?? root,
    foreground: args.switches.get('foreground') ?? false,
    endpoint,
    region: args.values.get('region'),
  };
}

function defaultDataDir(bucket: string, prefix: string, root: boolean): string {
  const name = prefix === '' ? bucket : `${bucket}_${prefix.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  return root ? path.join('/var/lib/tidefs', name) : path.join(os.homedir(), '.local/share/tidefs', name);
}

export async function mountCommand(argv: string[]): Promise<number> {
  const p = plan(argv);
  if (!p.foreground) return runInBackground(argv, p);
  return serve(p);
}

const log = (message: string): void => {
  process.stderr.write(`${new Date().toISOString()} tidefs: ${message}\n`);
};

async function serve(p: MountPlan): Promise<number> {
  const settings = s3SettingsFromEnv({ endpoint: p.endpoint, region: p.region });
  const objects = new WorkerObjectStore({ ...settings, bucket: p.node.bucket, signPayloads: p.signPayloads });
  try {
    await objects.checkAccess();
  } catch (err) {
    throw new Error(`cannot use s3://${p.node.bucket}: ${describeStoreError(err)}`);
  }
  let fatal: ((error: Error) => void) | undefined;
  const node = await LocalNode.start(p.node, objects, (error) => fatal?.(error));
  let mount: FuseMount;
  try {
    mount = await FuseMount.mount(node.fs, {
      mountpoint: p.mountpoint,
      source: `s3://${p.node.bucket}/${p.node.prefix}`,
      allowOther: p.allowOther,
      attrTimeoutSec: p.kernelCacheMs / 1000,
      maxWrite: 1024 * 1024,
      busyPollUs: p.busyPollUs,
      log,
    });
  } catch (err) {
    await node.stop();
    throw new Error(`cannot mount at ${p.mountpoint}: ${(err as Error).message}`);
  }
  log(`mounted s3://${p.node.bucket}/${p.node.prefix} at ${p.mountpoint} (data in ${p.node.dataDir})`);
  process.send?.({ ready: true });
  process.disconnect?.();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (why: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log(`${why}: unmounting and writing back ${node.dirtyCount()} dirty file(s)`);
      await mount.unmount();
      let code = 0;
      try {
        await node.drain();
      } catch (err) {
        code = 1;
        log(`write-back incomplete (${(err as Error).message}); ${node.dirtyCount()} file(s) stay in ${p.node.dataDir} and are written at the next mount`);
      }
      await node.stop();
      await objects.close();
      log('stopped');
      resolve(code);
    };
    fatal = (error) => {
      log(`stopped by a local storage failure: ${error.message}`);
      void mount.unmount().then(() => resolve(1));
    };
    process.on('SIGINT', () => void stop('interrupted'));
    process.on('SIGTERM', () => void stop('terminated'));
    mount.watch(() => void stop('unmounted from outside'));
  });
}

/** Start `tidefs mount ... --foreground` detached, logging to DATA_DIR/tidefs.log; wait until it is mounted. */
async function runInBackground(argv: string[], p: MountPlan): Promise<number> {
  fs.mkdirSync(p.node.dataDir, { recursive: true });
  const logFile = path.join(p.node.dataDir, 'tidefs.log');
  const out = fs.openSync(logFile, 'a');
  const start = fs.statSync(logFile).size;
  const child = spawn(process.execPath, [...NODE_FLAGS, process.argv[1]!, 'mount', ...argv, '--foreground'], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
  });
  fs.closeSync(out);
  return new Promise<number>((resolve) => {
    child.on('message', (msg: { ready?: boolean }) => {
      if (!msg.ready) return;
      child.disconnect();
      child.unref();
      process.stdout.write(`tidefs: mounted at ${p.mountpoint} (pid ${child.pid}, log ${logFile})\n`);
      resolve(0);
    });
    child.on('exit', (code) => {
      const text = fs.readFileSync(logFile, 'utf8').slice(start).trim();
      process.stderr.write(`${text || `tidefs: mount process exited with code ${code}`}\n`);
      resolve(code || 1);
    });
  });
}

function describeStoreError(err: unknown): string {
  if (err instanceof StoreError) {
    switch (err.kind) {
      case 'no-such-bucket':
        return 'the bucket does not exist';
      case 'access-denied':
        return 'access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)';
      case 'unavailable':
        return `the S3 endpoint is unreachable (${err.message})`;
      default:
        return err.message;
    }
  }
  return (err as Error).message;
}
