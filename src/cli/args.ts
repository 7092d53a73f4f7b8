// Command-line parsing for the tidefs CLI: `--flag value`, `--flag=value`, `--switch`,
// `--no-switch`, positionals; sizes like 16MiB / 10G / 512k; durations like 30s / 500ms / 2m.
// Every mistake is a UsageError with a message meant for the person typing.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface ParsedArgs {
  positionals: string[];
  values: Map<string, string>;
  switches: Map<string, boolean>;
}

/** `valueFlags` take a value; `switchFlags` are booleans (each also accepts --no-NAME). */
export function parseArgs(argv: string[], valueFlags: readonly string[], switchFlags: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], values: new Map(), switches: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      if (arg === '--') {
        parsed.positionals.push(...argv.slice(i + 1));
        break;
      }
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (valueFlags.includes(name)) {
      const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      parsed.values.set(name, value);
    } else if (switchFlags.includes(name) && eq < 0) {
      parsed.switches.set(name, true);
    } else if (name.startsWith('no-') && switchFlags.includes(name.slice(3)) && eq < 0) {
      parsed.switches.set(name.slice(3), false);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return parsed;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** "16MiB", "10G", "4096" -> bytes (binary units). */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${what}: cannot read "${text}" as a size (e.g. 16MiB, 10G)`);
  return Math.floor(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, '': 1000, m: 60_000, h: 3_600_000 };

/** "30s", "500ms", "50us", "2m", "5" (seconds) -> milliseconds, to the microsecond. */
export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|)\s*$/.exec(text);
  if (!m) throw new UsageError(`${what}: cannot read "${text}" as a duration (e.g. 30s, 500ms, 2m)`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]! * 1000) / 1000;
}

/** "s3://bucket/some/prefix" -> bucket and prefix (without slashes at either end). */
export function parseBucketUrl(text: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text);
  if (!m) throw new UsageError(`expected s3://BUCKET[/PREFIX], got "${text}"`);
  const bucket = m[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new UsageError(`"${bucket}" is not a valid bucket name`);
  return { bucket, prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}
