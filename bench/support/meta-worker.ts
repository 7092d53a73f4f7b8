// The metadata benchmark's load, run as its own process so that the process serving a mount is
// never the one doing the file operations: `node meta-worker.js DIR FILES BYTES` makes DIR (which
// must not exist), then times four phases one operation at a time — create FILES files of BYTES
// bytes (open, write, close), stat each, `ls -l DIR` (a child process), unlink each — checks what
// each phase saw, removes DIR, and prints the phase times as one JSON object (MetaPhases) on stdout.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface MetaPhases {
  createMs: number;
  statMs: number;
  lsMs: number;
  unlinkMs: number;
}

async function phase(body: () => Promise<void>): Promise<number> {
  const began = performance.now();
  await body();
  return performance.now() - began;
}

async function main(dir: string, files: number, bytes: number): Promise<MetaPhases> {
  await fsp.mkdir(dir);
  const names = Array.from({ length: files }, (_, i) => path.join(dir, `file-${String(i).padStart(5, '0')}`));
  const content = Buffer.alloc(bytes, 0x5a);
  const createMs = await phase(async () => {
    for (const name of names) await fsp.writeFile(name, content);
  });
  const statMs = await phase(async () => {
    for (const name of names) {
      const stats = await fsp.stat(name);
      if (!stats.isFile() || stats.size !== bytes) throw new Error(`${name}: stat says ${stats.size} bytes, file=${stats.isFile()}`);
    }
  });
  const lsMs = await phase(async () => {
    const { stdout } = await exec('ls', ['-l', dir], { maxBuffer: 64 * 1024 * 1024 });
    const entries = stdout.split('\n').filter((line) => line.startsWith('-')).length;
    if (entries !== files) throw new Error(`ls -l ${dir} listed ${entries} files, expected ${files}`);
  });
  const unlinkMs = await phase(async () => {
    for (const name of names) await fsp.unlink(name);
  });
  const left = await fsp.readdir(dir);
  if (left.length > 0) throw new Error(`${dir} still lists ${left.length} entries after every file was unlinked`);
  await fsp.rmdir(dir);
  return { createMs, statMs, lsMs, unlinkMs };
}

const [dir, files, bytes] = process.argv.slice(2);
if (dir === undefined || !/^\d+$/.test(files ?? '') || !/^\d+$/.test(bytes ?? '')) {
  process.stderr.write('usage: node meta-worker.js DIR FILES BYTES\n');
  process.exit(2);
}
main(path.resolve(dir), Number(files), Number(bytes)).then(
  (phases) => process.stdout.write(`${JSON.stringify(phases)}\n`),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
