// `npm run bench -- NAME [--json]`: runs the benchmark in bench/NAME.ts (its exported run()). With
// --json a benchmark prints exactly one JSON object on stdout (progress goes to stderr); without it,
// a human-readable summary. This file only dispatches: it never measures anything itself.

export interface BenchArgs {
  json: boolean;
}

interface BenchModule {
  run(args: BenchArgs): Promise<void>;
}

const USAGE = 'usage: npm run bench -- NAME [--json]   (NAME is a file bench/NAME.ts, e.g. raft)';

async function main(): Promise<number> {
  const [name, ...flags] = process.argv.slice(2);
  const unknown = flags.filter((flag) => flag !== '--json');
  if (!name || !/^[a-z][a-z0-9-]*$/.test(name) || name === 'main' || unknown.length > 0) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const location = new URL(`./${name}.js`, import.meta.url);
  let module: Partial<BenchModule>;
  try {
    module = (await import(location.href)) as Partial<BenchModule>;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && (error as Error).message.includes(location.pathname);
    if (!missing) throw error;
    process.stderr.write(`no benchmark named "${name}"\n${USAGE}\n`);
    return 2;
  }
  if (typeof module.run !== 'function') {
    process.stderr.write(`bench/${name}.ts does not export run()\n`);
    return 2;
  }
  await module.run({ json: flags.includes('--json') });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
