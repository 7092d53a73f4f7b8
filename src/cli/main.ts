#!/usr/bin/env -S node --initial-old-space-size=128
// The tidefs command line: dispatches subcommands and turns failures into one-line errors and a
// non-zero exit status. The shebang's node flags are NODE_FLAGS (src/cli/node-flags.ts).
import { UsageError } from './args.js';

// The AWS SDK version is pinned on purpose (later releases need Node 22): its notice about that
// would otherwise greet every mount.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { MOUNT_USAGE, mountCommand } from './mount-command.js';

const USAGE = `usage: tidefs <command> [options]

commands:
  mount s3://BUCKET[/PREFIX] MOUNTPOINT   mount a bucket (tidefs mount --help for options)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'mount') {
    if (rest.includes('--help')) {
      process.stdout.write(MOUNT_USAGE);
      return 0;
    }
    return mountCommand(rest);
  }
  throw new UsageError(`unknown command "${command}"`);
}

// Exit explicitly: whatever a finished command leaves behind (timers, workers) must not keep it alive.
// (stdout and stderr are synchronous for files and pipes on Linux, so nothing written is lost.)
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`tidefs: ${err.message}\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`tidefs: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
