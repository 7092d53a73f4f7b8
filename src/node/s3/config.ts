// S3 connection settings: where the server is, which region, which credentials. Read from the standard
// AWS environment variables with explicit overrides winning. It only reads and validates settings; it
// never talks to the network and never logs secrets.
import { StoreError } from './object-store.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ConnectionSettings {
  /** A custom endpoint such as http://127.0.0.1:7480; undefined means AWS itself. */
  endpoint?: string;
  region: string;
  /** undefined: the SDK's default credential chain (environment, profile files, instance roles). */
  credentials?: S3Credentials;
}

export const DEFAULT_REGION = 'us-east-1';

/**
 * Settings from AWS_ENDPOINT_URL, AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; every field of `overrides` that is not undefined wins.
 * Throws StoreError 'invalid' for an endpoint that is not an http(s) URL or half a key pair.
 */
export function s3SettingsFromEnv(
  overrides: Partial<S3ConnectionSettings> = {},
  env: NodeJS.ProcessEnv = process.env,
): S3ConnectionSettings {
  const endpoint = overrides.endpoint ?? nonEmpty(env.AWS_ENDPOINT_URL);
  if (endpoint !== undefined) checkEndpoint(endpoint);
  const region = overrides.region ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? DEFAULT_REGION;
  const credentials = overrides.credentials ?? credentialsFromEnv(env);
  return { endpoint, region, credentials };
}

function credentialsFromEnv(env: NodeJS.ProcessEnv): S3Credentials | undefined {
  const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (accessKeyId === undefined && secretAccessKey === undefined) return undefined;
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    const missing = accessKeyId === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
    throw new StoreError('invalid', `S3 credentials are incomplete: ${missing} is not set`);
  }
  const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN);
  return sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
}

function checkEndpoint(endpoint: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new StoreError('invalid', `S3 endpoint "${endpoint}" is not a URL (expected e.g. http://127.0.0.1:7480)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StoreError('invalid', `S3 endpoint "${endpoint}" must start with http:// or https://`);
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
