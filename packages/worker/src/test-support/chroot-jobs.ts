/**
 * Executors and assignments for the chroot tests: one real ChrootExecutor over the shared test
 * rootfs, and run ids with a per-file prefix so that each file's cleanup checks see only its own.
 */
import { type Assignment, silentLogger } from '@builder/protocol';
import { compileChrootOptions, type ChrootOptionsInput } from '../executors/chroot-options.ts';
import { ChrootExecutor } from '../executors/chroot.ts';
import { ROOTFS, TEST_ID_RANGE } from './chroot-root.ts';

export function chrootExecutor(workDir: string, input: ChrootOptionsInput = {}): ChrootExecutor {
  const chroot = compileChrootOptions({
    root: ROOTFS,
    memoryLimit: '256M',
    pidsLimit: 256,
    idRange: TEST_ID_RANGE,
    ...input,
  });
  return new ChrootExecutor({
    workDir,
    platform: 'debian-12',
    log: silentLogger,
    env: { PATH: process.env.PATH },
    chroot,
  });
}

/** Assignments numbered from 1 under `prefix` (the first 8 hex digits of every run id they get). */
export function jobMaker(prefix: string): (script: string, over?: Partial<Assignment>) => Assignment {
  let seq = 0;
  return (script, over = {}) => {
    seq++;
    return {
      runId: `${prefix}-1111-4222-8333-${String(seq).padStart(12, '0')}`,
      attempt: 1,
      job: 'nightly',
      number: 7,
      platform: 'debian-12',
      script,
      params: {},
      timeoutSec: 60,
      killGraceSec: 1,
      attemptSecret: 'a'.repeat(64),
      secrets: {},
      missingSecrets: [],
      ...over,
    };
  };
}
