// The command line's readers of durations and sizes: every unit, and a usage error for the rest.
import { describe, expect, it } from 'vitest';
import { UsageError, parseDuration, parseSize } from '../../../src/cli/args.js';

describe('command-line values', () => {
  it('durations in us, ms, s, m, h or bare seconds come out in milliseconds, to the microsecond', () => {
    expect(parseDuration('50us', '--busy-poll')).toBe(0.05);
    expect(parseDuration('1.5us', '--busy-poll')).toBe(0.002);
    expect(parseDuration('0', '--busy-poll')).toBe(0);
    expect(parseDuration('500ms', '--close-delay')).toBe(500);
    expect(parseDuration('30s', '--metadata-ttl')).toBe(30_000);
    expect(parseDuration('5', '--metadata-ttl')).toBe(5_000);
    expect(parseDuration('2m', '--max-dirty-age')).toBe(120_000);
    expect(parseDuration('1h', '--max-dirty-age')).toBe(3_600_000);
  });

  it('anything else is a usage error naming the option', () => {
    for (const text of ['', 'soon', '-1s', '10 days', '1e3ms']) {
      expect(() => parseDuration(text, '--close-delay')).toThrow(UsageError);
      expect(() => parseDuration(text, '--close-delay')).toThrow(/--close-delay/);
    }
  });

  it('sizes in bytes or binary units', () => {
    expect(parseSize('4096', '--cache-size')).toBe(4096);
    expect(parseSize('256KiB', '--chunk-size')).toBe(256 * 1024);
    expect(parseSize('16MiB', '--chunk-size')).toBe(16 * 1024 ** 2);
    expect(parseSize('10GiB', '--cache-size')).toBe(10 * 1024 ** 3);
    expect(() => parseSize('lots', '--cache-size')).toThrow(UsageError);
  });
});
