// One tidefs node on this machine: its data directory (LMDB environment with the Raft log and
// the inode tables, chunk files), its single-member Raft group, and the filesystem services over a
// bucket. Starting it recovers from whatever a crash left; stopping it can first write every dirty
// file back to the bucket.
import fs from 'node:fs';
import path from 'node:path';
import type { RootDatabase } from 'lmdb';
import { ChunkStore } from '../inode/chunk-store.js';
import { BucketKeys } from '../inode/bucket-keys.js';
import { MetadataStore } from '../inode/metadata-store.js';
import { InodeStateMachine } from '../inode/state-machine.js';
import type { ApplyResult } from '../inode/commands.js';
import { RaftNode } from '../raft/driver.js';
import { openRaftEnvironment } from '../raft/storage/lmdb-log-storage.js';
import { nodeId, type ConfState } from '../raft/types.js';
import { ContentReader } from './content-reader.js';
import { lockDataDir } from './data-dir-lock.js';
import { Filesystem } from './filesystem.js';
import { InodeLog } from './inode-log.js';
import { NamespaceLoader } from './namespace-loader.js';
import { OpenFileTable } from './open-files.js';
import type { ObjectStore } from './s3/object-store.js';
import { WriteBack } from './write-back.js';

export interface NodeConfig {
  bucket: string;
  /** Normalised key prefix ('' or 'a/b/'). */
  prefix: string;
  /** Where the bucket is (for the data directory's identity check). */
  endpoint: string;
  dataDir: string;
  /** Bytes of local disk for chunks; clean chunks are evicted above it, writes wait for write-back. */
  cacheSize: number;
  /** Undefined: the data directory's chunk size, or DEFAULT_CHUNK_SIZE for a new one. */
  chunkSize?: number;
  metadataTtlMs: number;
  closeDelayMs: number;
  maxDirtyAgeMs: number;
  readAheadChunks: number;
  /** Owner of entries found in the bucket without tidefs metadata. */
  uid: number;
  gid: number;
  /** 'process': the log survives a killed process (not a power cut) without an fsync per write. */
  durability: 'process' | 'fsync';
  /** Use a data directory that 'process' durability left when the machine went down (data-dir-lock.ts). */
  trustAfterCrash?: boolean;
}

/** What a data directory was created for; reusing it for another bucket or chunk size is refused. */
interface DataDirIdentity {
  format: 1;
  bucket: string;
  prefix: string;
  endpoint: string;
  chunkSize: number;
}

const SINGLE_NODE = nodeId(1);
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
/** Applied entries the log holds at most (128 MiB of 128 KiB writes). */
const LOG_ENTRIES_KEPT = 1024;

export class LocalNode {
  private constructor(
    readonly fs: Filesystem,
    readonly store: MetadataStore,
    private readonly writeBack: WriteBack,
    private readonly raft: RaftNode<ApplyResult>,
    private readonly chunks: ChunkStore,
    private readonly env: RootDatabase,
    private readonly lockFile: string,
  ) {}

  /**
   * `onFatal` is told if the node stops on its own: the log or the state machine hit an I/O error
   * (a full or failing disk). Nothing more can be written then; the caller should unmount.
   */
  static async start(settings: NodeConfig, objects: ObjectStore, onFatal: (error: Error) => void): Promise<LocalNode> {
    fs.mkdirSync(settings.dataDir, { recursive: true });
    const config = { ...settings, chunkSize: checkIdentity(settings) };
    if (config.cacheSize < 4 * config.chunkSize) {
      throw new Error(`the cache (${config.cacheSize} bytes) must hold at least 4 chunks of ${config.chunkSize} bytes`);
    }
    const lockFile = lockDataDir(config.dataDir, { durability: config.durability, trustAfterCrash: config.trustAfterCrash ?? false });
    let env: RootDatabase | undefined;
    try {
      env = openRaftEnvironment(path.join(config.dataDir, 'meta'), config.durability, 32);
      const store = new MetadataStore(env);
      const chunks = new ChunkStore(path.join(config.dataDir, 'chunks'), config.chunkSize, env, config.durability);
      const sm = new InodeStateMachine(store, chunks, {
        chunkSize: config.chunkSize,
        prefix: config.prefix,
        groupId: 1,
        defaultUid: config.uid,
        defaultGid: config.gid,
        defaultFilePerm: 0o644,
        defaultDirPerm: 0o755,
      });
      const bootstrap: ConfState = { voters: [SINGLE_NODE], learners: [], addresses: { [SINGLE_NODE]: '' } };
      const raft = await RaftNode.open<ApplyResult>({
        id: SINGLE_NODE,
        storage: { env },
        bootstrap,
        stateMachine: sm,
        durability: config.durability,
        // Alone in its group, the node compacts behind a snapshot that costs nothing to take
        // (persistent state machine): frequent compaction keeps the log, and written data held
        // in it, small.
        snapshotEvery: LOG_ENTRIES_KEPT,
      });
      raft.on('error', onFatal);
      const log = new InodeLog(raft);
      const keys = new BucketKeys(store, config.prefix);
      const loader = new NamespaceLoader(store, keys, objects, log, () => sm.appliedIndex(), config.metadataTtlMs);
      const reader = new ContentReader(
        store,
        chunks,
        objects,
        {
          chunkSize: config.chunkSize,
          readAheadChunks: config.readAheadChunks,
          maxFetches: Math.max(2, config.readAheadChunks + 1),
          cacheHighWatermark: Math.floor(config.cacheSize * 0.9),
          cacheLowWatermark: Math.floor(config.cacheSize * 0.75),
        },
        (ino, etag) => void loader.objectVanished(ino, etag).catch(() => undefined),
      );
      const openFiles = new OpenFileTable();
      const writeBack = new WriteBack(store, keys, chunks, objects, log, reader, openFiles, {
        chunkSize: config.chunkSize,
        uploadConcurrency: 4,
        flushConcurrency: 4,
        closeDelayMs: config.closeDelayMs,
        maxDirtyAgeMs: config.maxDirtyAgeMs,
        scanIntervalMs: Math.min(500, Math.max(50, config.closeDelayMs / 2)),
        dirtyHighWatermark: Math.floor(config.cacheSize * 0.75),
      });
      const filesystem = new Filesystem({ store, keys, chunks, log, loader, reader, writeBack, openFiles, cacheSize: config.cacheSize });
      await writeBack.recover();
      writeBack.start();
      return new LocalNode(filesystem, store, writeBack, raft, chunks, env, lockFile);
    } catch (err) {
      await env?.close().catch(() => undefined);
      fs.rmSync(lockFile, { force: true });
      throw err;
    }
  }

  /** Files with changes the bucket does not have yet. */
  dirtyCount(): number {
    return this.store.dirtyCount();
  }

  /** Write every dirty file back to the bucket and perform pending deletes. */
  drain(): Promise<void> {
    return this.writeBack.drain();
  }

  async stop(): Promise<void> {
    this.writeBack.stop();
    await this.raft.close();
    this.chunks.close();
    await this.env.close();
    fs.rmSync(this.lockFile, { force: true });
  }
}

/** Check the data directory is this bucket's (recording it if new); returns the chunk size to use. */
function checkIdentity(config: NodeConfig): number {
  const file = path.join(config.dataDir, 'tidefs.json');
  const wanted: DataDirIdentity = {
    format: 1,
    bucket: config.bucket,
    prefix: config.prefix,
    endpoint: config.endpoint,
    chunkSize: config.chunkSize ?? DEFAULT_CHUNK_SIZE,
  };
  let existing: DataDirIdentity | undefined;
  try {
    existing = JSON.parse(fs.readFileSync(file, 'utf8')) as DataDirIdentity;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!existing) {
    fs.writeFileSync(file, JSON.stringify(wanted, null, 2) + '\n');
    return wanted.chunkSize;
  }
  if (existing.bucket !== wanted.bucket || existing.prefix !== wanted.prefix || existing.endpoint !== wanted.endpoint) {
    throw new Error(
      `data directory ${config.dataDir} belongs to s3://${existing.bucket}/${existing.prefix} at ${existing.endpoint}; use another --data-dir`,
    );
  }
  if (config.chunkSize !== undefined && existing.chunkSize !== config.chunkSize) {
    throw new Error(`data directory ${config.dataDir} uses a chunk size of ${existing.chunkSize} bytes; use the same --chunk-size or another --data-dir`);
  }
  return existing.chunkSize;
}
