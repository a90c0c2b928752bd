/**
 * The chroot executor's prepare step against the real kernel: root with network first, then the
 * script as the unprivileged user in the same overlay; both steps' output in the one console.
 * Needs root and the test rootfs (see ../test-support/chroot-root.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chrootExecutor, jobMaker } from '../test-support/chroot-jobs.ts';
import { recordingIO } from '../test-support/recording-io.ts';
import { chrootSkipReason, ensureRootfs, REPO, ROOTFS_TIMEOUT_MS } from '../test-support/chroot-root.ts';

const skip = chrootSkipReason();
if (skip) console.warn(`chroot prepare tests skipped: ${skip}`);
const job = jobMaker('5e7a9c01');

describe.skipIf(skip !== undefined)('chroot prepare step', () => {
  let workDir: string;
  beforeAll(async () => {
    await ensureRootfs();
    workDir = mkdtempSync(join(REPO, '.build', 'prepare-test-'));
  }, ROOTFS_TIMEOUT_MS);
  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the prepare step as root, then the script as nobody, output of both in order', async () => {
    const io = recordingIO(500);
    const result = await chrootExecutor(workDir).run(
      job('echo "build $(id -un)"; cat /etc/prepared; echo to-stderr >&2', {
        prepare: 'echo "prepare $(id -un)"; echo yes >/etc/prepared',
      }),
      io.runIO,
    );
    expect(result, io.stdout() + io.stderr() + io.notes.join('\n')).toEqual({ kind: 'exited', code: 0 });
    expect(io.stdout()).toBe('prepare root\nbuild nobody\nyes\n');
    expect(io.stderr()).toBe('to-stderr\n');
    expect(io.started()).toBe(1);
  }, 60_000);
});
