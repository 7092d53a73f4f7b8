// One vitest run covers unit, property, integration and chaos tests. The global setup starts the
// local S3 server (scripts/local-s3) once for the whole run and stops it at the end if it started it.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/local-s3.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
