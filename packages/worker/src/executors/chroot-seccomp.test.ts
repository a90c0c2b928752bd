/**
 * The hand-written syscall tables against the kernel's own headers (Debian's linux-libc-dev, when
 * installed), and the shape of the assembled program. That the filter refuses what it lists in a
 * real sandbox is tested in chroot-escapes.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AARCH64, I386, seccompFilter, X86_64 } from './chroot-seccomp.ts';

const HEADERS = {
  x86_64: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h',
  i386: '/usr/include/x86_64-linux-gnu/asm/unistd_32.h',
  generic: '/usr/include/asm-generic/unistd.h',
};

function numbers(file: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const m of readFileSync(file, 'utf8').matchAll(/^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$/gm)) {
    found.set(m[1] as string, Number(m[2]));
  }
  return found;
}

describe('seccomp filter', () => {
  it.each([
    ['x86_64', X86_64, HEADERS.x86_64],
    ['i386', I386, HEADERS.i386],
    ['aarch64 (asm-generic)', AARCH64, HEADERS.generic],
  ])('%s numbers are the kernel headers’', (_name, table, header) => {
    if (!existsSync(header)) {
      console.warn(`skipped: ${header} not installed (apt-get install linux-libc-dev)`);
      return;
    }
    const nr = numbers(header);
    for (const [name, n] of Object.entries(table.deny)) expect([name, nr.get(name)]).toEqual([name, n]);
    expect(nr.get('clone')).toBe(table.clone);
    expect(nr.get('clone3')).toBe(table.clone3);
  });

  it('is a whole number of 8-byte instructions, starting by loading the architecture', () => {
    const prog = seccompFilter();
    expect(prog.length % 8).toBe(0);
    expect(prog.length / 8).toBeLessThan(4096); // BPF_MAXINSNS
    expect(prog.readUInt16LE(0)).toBe(0x20); // ld [k]
    expect(prog.readUInt32LE(4)).toBe(4); // k = offsetof(struct seccomp_data, arch)
    // the last instruction returns: nothing falls off the end
    expect(prog.readUInt16LE(prog.length - 8)).toBe(0x06);
  });
});
