// vitest global setup: makes a real S3 server available to every test. If AWS_ENDPOINT_URL is set and
// answers, that server is used as is. Otherwise `scripts/local-s3 acquire` starts the local radosgw
// (or joins one another test run already uses) and its settings go into process.env, which vitest
// hands to every worker (checked with vitest 4, forks and threads: the workers start after this
// runs). Teardown releases this run's lease; the script stops the server only when it was started by
// a lease and no live lease remains, so concurrent runs share one server and a server started by hand
// with `scripts/local-s3 start` is left running.
import { localS3, parseExports } from '../fixtures/local-s3/control.js';

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  // The SDK is pinned to a release that supports Node 20 (see environment.md); its warning that later
  // releases will not would otherwise be printed by every worker and every process a test starts.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const configured = process.env.AWS_ENDPOINT_URL;
  if (configured !== undefined && configured !== '') {
    if (await answersHttp(configured)) return undefined;
    process.stderr.write(`local-s3 setup: AWS_ENDPOINT_URL=${configured} does not answer; using the local S3 server\n`);
  }
  const lease = String(process.pid);
  const began = Date.now();
  const outcome = await localS3('acquire', lease);
  Object.assign(process.env, parseExports(await localS3('env')));
  process.stderr.write(`local-s3 setup: ${outcome} the local S3 server at ${process.env.AWS_ENDPOINT_URL} in ${Date.now() - began} ms\n`);
  return async () => {
    await localS3('release', lease);
  };
}

async function answersHttp(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}
