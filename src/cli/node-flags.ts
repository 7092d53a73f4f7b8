// The V8 settings a tidefs process runs with. The bin's shebang (src/cli/main.ts) carries the same
// list, a test keeps the two equal, and whatever starts the CLI with `node` passes NODE_FLAGS.

/**
 * A mount moves file data through short-lived Buffers, and V8 counts their memory against the old
 * generation's limit, which for a heap as small as a mount's (~15 MB) is reached every few MB of
 * I/O. Measured here writing 512 MiB: ~110 full collections and 77 MB/s with V8's defaults; ~20
 * and 98–115 MB/s with the initial limit at 128 MB.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];
