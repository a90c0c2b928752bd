import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from './log.ts';
import { compileServerOptions, compileVacuumPolicy, parseDuration, parseListen, UsageError } from './options.ts';

const compile = (input: Parameters<typeof compileServerOptions>[0] = {}) =>
  compileServerOptions({ logger: silentLogger, ...input });

describe('compileServerOptions', () => {
  it('fills in every default', () => {
    const o = compile();
    expect(o).toMatchObject({
      dataDir: './builder-data',
      host: '127.0.0.1',
      port: 8330,
      leaseMs: 60_000,
      heartbeatMs: 15_000,
      missedGraceMs: 60_000,
      artifacts: { store: undefined, s3Endpoint: undefined, s3Region: 'us-east-1', maxRunBytes: 8 * 2 ** 30 },
      resumeFreeBytes: 64 * 2 ** 20,
      retention: undefined,
      alerts: {
        webhooks: [],
        alertmanagers: [],
        after: [],
        publicUrl: undefined,
        delivery: {
          timeoutMs: 10_000,
          retryBaseMs: 1000,
          maxAttempts: 0,
          retryMaxMs: 300_000,
          maxQueued: 1000,
          resendMs: 60_000,
        },
      },
    });
    expect(typeof o.clock.now()).toBe('number');
    expect(o.logger).toBe(silentLogger);
  });

  it('reads every flag', () => {
    const o = compile({
      dataDir: '/srv/builder',
      listen: '[::1]:0',
      lease: '4s',
      heartbeat: '500ms',
      missedGrace: '5m',
      alertWebhook: ['https://hooks.example/a'],
      alertmanager: ['http://am:9093'],
      alertAfter: ['hooks/after.sh'],
      publicUrl: 'https://ci.example.org/',
      alertTimeout: '2s',
      alertRetryBase: '250ms',
      alertAttempts: '3',
      artifacts: 's3://bucket/prefix',
      s3Endpoint: 'http://minio:9000',
      s3Region: 'eu-west-1',
      artifactLimit: '1.5G',
      retainLatest: '0',
      retainFor: '30d',
      resumeFree: '8M',
    });
    expect(o).toMatchObject({
      dataDir: '/srv/builder',
      host: '::1',
      port: 0,
      leaseMs: 4000,
      heartbeatMs: 500,
      missedGraceMs: 300_000,
      artifacts: { store: 's3://bucket/prefix', s3Endpoint: 'http://minio:9000', s3Region: 'eu-west-1' },
      resumeFreeBytes: 8 * 2 ** 20,
      retention: { keepLatest: 0, olderThanMs: 30 * 86_400_000 },
      alerts: {
        webhooks: ['https://hooks.example/a'],
        alertmanagers: ['http://am:9093'],
        after: [resolve('hooks/after.sh')],
        publicUrl: 'https://ci.example.org',
        delivery: {
          timeoutMs: 2000,
          retryBaseMs: 250,
          maxAttempts: 3,
          retryMaxMs: 300_000,
          maxQueued: 1000,
          resendMs: 60_000,
        },
      },
    });
    expect(o.artifacts.maxRunBytes).toBe(1.5 * 2 ** 30);
  });

  it('derives the heartbeat from the lease: a quarter, at least 100 ms', () => {
    expect(compile({ lease: '8s' }).heartbeatMs).toBe(2000);
    expect(compile({ lease: '200ms' }).heartbeatMs).toBe(100);
  });

  it('keeps retention off unless asked, and takes either half of the policy alone', () => {
    expect(compile({ retainLatest: '3' }).retention).toEqual({ keepLatest: 3, olderThanMs: undefined });
    expect(compile({ retainFor: '1h' }).retention).toEqual({ keepLatest: undefined, olderThanMs: 3_600_000 });
  });

  it.each([
    [{ listen: '8330' }, /--listen must be HOST:PORT, got "8330"/],
    [{ listen: 'host:70000' }, /--listen must be HOST:PORT/],
    [{ lease: 'soon' }, /--lease must be a duration like 60, 60s, 5m or 500ms, got "soon"/],
    [{ heartbeat: '-1s' }, /--heartbeat must be a duration/],
    [{ missedGrace: '1w' }, /--missed-grace must be a duration/],
    [{ alertTimeout: '' }, /--alert-timeout must be a duration/],
    [{ alertRetryBase: 'x' }, /--alert-retry-base must be a duration/],
    [{ alertAttempts: '-1' }, /--alert-attempts must be 0 \(until delivered\) or a positive integer/],
    [{ alertOutboxMax: '0' }, /--alert-outbox-max must be a positive integer/],
    [{ alertmanagerResend: '0s' }, /--alertmanager-resend must be longer than 0/],
    [{ alertAttempts: 'many' }, /--alert-attempts must be a positive integer/],
    [{ publicUrl: 'ci.example.org' }, /--public-url must be an http\(s\) URL, got "ci.example.org"/],
    [{ alertWebhook: ['ftp://nope'] }, /alert URLs must be http\(s\), got "ftp:\/\/nope"/],
    [{ alertmanager: ['am:9093'] }, /alert URLs must be http\(s\)/],
    [{ artifactLimit: 'lots' }, /--artifact-limit must be a size like 500M or 8G, got "lots"/],
    [{ resumeFree: '-5M' }, /--resume-free must be a size/],
    [{ retainLatest: '1.5' }, /--retain-latest must be a whole number of runs, got "1.5"/],
    [{ retainFor: 'forever' }, /--retain-for must be a duration/],
  ])('refuses %j, naming the flag', (input, message) => {
    expect(() => compile(input)).toThrow(UsageError);
    expect(() => compile(input)).toThrow(message);
  });
});

describe('compileVacuumPolicy', () => {
  it('reads the rules, the job and --dry-run', () => {
    expect(compileVacuumPolicy({ keepLatest: '2', olderThan: '30d', job: 'nightly', dryRun: true })).toEqual({
      keepLatest: 2,
      olderThanMs: 30 * 86_400_000,
      job: 'nightly',
      dryRun: true,
    });
    expect(compileVacuumPolicy({ olderThan: '1h' })).toEqual({
      keepLatest: undefined,
      olderThanMs: 3_600_000,
      job: undefined,
      dryRun: false,
    });
  });

  it('needs at least one rule, and names the flag of a bad value', () => {
    expect(() => compileVacuumPolicy({ job: 'x' })).toThrow('give --keep-latest N, --older-than DURATION or both');
    expect(() => compileVacuumPolicy({ keepLatest: 'all' })).toThrow(/--keep-latest must be a whole number/);
    expect(() => compileVacuumPolicy({ olderThan: 'ages' })).toThrow(/--older-than must be a duration/);
  });
});

describe('parseListen and parseDuration', () => {
  it('reads hosts with brackets and durations in every unit', () => {
    expect(parseListen('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListen('[::]:8330')).toEqual({ host: '::', port: 8330 });
    expect(['90', '90s', '1.5m', '2h', '1d', '500ms'].map((t) => parseDuration(t, '--x'))).toEqual([
      90_000, 90_000, 90_000, 7_200_000, 86_400_000, 500,
    ]);
  });
});
