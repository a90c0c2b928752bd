import { closeSync, openSync, writeSync } from 'node:fs';

/** A real ENOSPC from the kernel: every write to /dev/full fails with it. */
export function writeToFullDisk(): void {
  const fd = openSync('/dev/full', 'w');
  try {
    writeSync(fd, Buffer.from('x'));
  } finally {
    closeSync(fd);
  }
}
