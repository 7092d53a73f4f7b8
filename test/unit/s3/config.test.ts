// s3SettingsFromEnv: the standard AWS variables, explicit overrides winning, and clear refusals.
import { describe, expect, it } from 'vitest';
import { DEFAULT_REGION, s3SettingsFromEnv } from '../../../src/node/s3/config.js';

describe('s3SettingsFromEnv', () => {
  it('reads endpoint, region and keys from the environment', () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:7480',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AK',
      AWS_SECRET_ACCESS_KEY: 'SK',
      AWS_SESSION_TOKEN: 'TOKEN',
    };
    expect(s3SettingsFromEnv({}, env)).toEqual({
      endpoint: 'http://127.0.0.1:7480',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOKEN' },
    });
  });

  it('defaults to AWS itself, us-east-1 and the SDK credential chain', () => {
    expect(s3SettingsFromEnv({}, {})).toEqual({ endpoint: undefined, region: DEFAULT_REGION, credentials: undefined });
    expect(s3SettingsFromEnv({}, { AWS_DEFAULT_REGION: 'ap-south-1', AWS_REGION: '' }).region).toBe('ap-south-1');
  });

  it('lets explicit settings win, and ignores overrides that are undefined', () => {
    const env = { AWS_ENDPOINT_URL: 'http://env:1', AWS_REGION: 'env-region', AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK' };
    const settings = s3SettingsFromEnv(
      { endpoint: 'https://s3.example.com', region: undefined, credentials: { accessKeyId: 'X', secretAccessKey: 'Y' } },
      env,
    );
    expect(settings).toEqual({
      endpoint: 'https://s3.example.com',
      region: 'env-region',
      credentials: { accessKeyId: 'X', secretAccessKey: 'Y' },
    });
  });

  it('refuses half a key pair and endpoints that are not http(s) URLs', () => {
    expect(() => s3SettingsFromEnv({}, { AWS_ACCESS_KEY_ID: 'AK' })).toThrow(/AWS_SECRET_ACCESS_KEY is not set/);
    expect(() => s3SettingsFromEnv({}, { AWS_SECRET_ACCESS_KEY: 'SK' })).toThrow(/AWS_ACCESS_KEY_ID is not set/);
    expect(() => s3SettingsFromEnv({ endpoint: 'localhost:7480' }, {})).toThrow(/must start with http/);
    expect(() => s3SettingsFromEnv({ endpoint: '127.0.0.1:7480' }, {})).toThrow(/is not a URL/);
    expect(() => s3SettingsFromEnv({ endpoint: 'ftp://x' }, {})).toThrow(
      expect.objectContaining({ name: 'StoreError', kind: 'invalid' }),
    );
  });
});
