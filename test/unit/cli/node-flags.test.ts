// The bin's shebang and NODE_FLAGS must name the same node flags: a mount started as `tidefs`
// and one started by `node main.js` (the background spawn, tests, benches) must run alike.
import { promises as fsp } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../../src/cli/node-flags.js';

describe('node flags', () => {
  it('the shebang of the tidefs bin passes exactly NODE_FLAGS', async () => {
    const source = await fsp.readFile(new URL('../../../src/cli/main.ts', import.meta.url), 'utf8');
    const shebang = source.split('\n', 1)[0]!;
    expect(shebang.split(' ')).toEqual(['#!/usr/bin/env', '-S', 'node', ...NODE_FLAGS]);
  });
});
