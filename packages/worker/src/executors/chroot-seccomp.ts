/**
 * The sandbox's seccomp filter, as the classic BPF program bubblewrap loads with `--seccomp FD`.
 * Hand-assembled here so the worker needs no compiler and no libseccomp binding: it is a list of
 * syscall numbers compared one by one, the shape of the default profiles of Docker and Podman
 * (refuse what no build needs and what widens the kernel's attack surface most), not a
 * general-purpose policy engine.
 *
 * Refused with EPERM: the kernel keyring, module loading, kexec, bpf, userfaultfd, perf events,
 * io_uring, every mount call (old and new API), new namespaces (unshare, setns, clone with a
 * CLONE_NEW* flag), file handles (open_by_handle_at reads any inode of a file system), swap,
 * reboot, clocks, accounting, quotas, syslog, iopl/ioperm. clone3 gets ENOSYS: its flags are in
 * memory a filter cannot read, and libc then falls back to clone, whose flags it can.
 * ptrace and process_vm_readv/writev stay allowed: the pid namespace already hides every process outside the sandbox, and
 * sanitizers and debuggers in test suites need it.
 */

/** The syscall numbers of one architecture (from the kernel's unistd headers). */
interface SyscallTable {
  /** AUDIT_ARCH_* as seccomp_data.arch reports it. */
  readonly arch: number;
  readonly deny: Readonly<Record<string, number>>;
  readonly clone: number;
  readonly clone3: number;
  /** x86_64: syscall numbers with this bit set are the x32 ABI, which nothing here uses. */
  readonly x32Bit?: number;
}

/** Shared by every architecture that has them (asm-generic numbering from 424 on). */
const NEW_API = {
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  mount_setattr: 442,
  quotactl_fd: 443,
};

export const X86_64: SyscallTable = {
  arch: 0xc000003e,
  clone: 56,
  clone3: 435,
  x32Bit: 0x40000000,
  // prettier-ignore
  deny: {
    ...NEW_API,
    syslog: 103, uselib: 134, ustat: 136, sysfs: 139, pivot_root: 155, _sysctl: 156, acct: 163,
    settimeofday: 164, mount: 165, umount2: 166, swapon: 167, swapoff: 168, reboot: 169, iopl: 172,
    ioperm: 173, create_module: 174, init_module: 175, delete_module: 176, get_kernel_syms: 177,
    query_module: 178, quotactl: 179, nfsservctl: 180, lookup_dcookie: 212, clock_settime: 227,
    kexec_load: 246, add_key: 248, request_key: 249, keyctl: 250, unshare: 272, perf_event_open: 298,
    fanotify_init: 300, name_to_handle_at: 303, open_by_handle_at: 304, clock_adjtime: 305, setns: 308,
    finit_module: 313, kexec_file_load: 320, bpf: 321, userfaultfd: 323,
  },
};

/** 32-bit programs on an x86_64 kernel (int 0x80): their own numbers, or they would bypass the list. */
export const I386: SyscallTable = {
  arch: 0x40000003,
  clone: 120,
  clone3: 435,
  // prettier-ignore
  deny: {
    ...NEW_API,
    mount: 21, umount: 22, stime: 25, acct: 51, umount2: 52, ustat: 62, settimeofday: 79, uselib: 86,
    swapon: 87, reboot: 88, ioperm: 101, syslog: 103, iopl: 110, vm86old: 113, swapoff: 115,
    create_module: 127, init_module: 128, delete_module: 129, get_kernel_syms: 130, quotactl: 131,
    sysfs: 135, _sysctl: 149, vm86: 166, query_module: 167, nfsservctl: 169, pivot_root: 217,
    lookup_dcookie: 253, clock_settime: 264, kexec_load: 283, add_key: 286, request_key: 287,
    keyctl: 288, unshare: 310, perf_event_open: 336, fanotify_init: 338, name_to_handle_at: 341,
    open_by_handle_at: 342, clock_adjtime: 343, setns: 346, finit_module: 350, bpf: 357, userfaultfd: 374, clock_settime64: 404,
    clock_adjtime64: 405,
  },
};

export const AARCH64: SyscallTable = {
  arch: 0xc00000b7,
  clone: 220,
  clone3: 435,
  // prettier-ignore
  deny: {
    ...NEW_API,
    lookup_dcookie: 18, umount2: 39, mount: 40, pivot_root: 41, nfsservctl: 42, quotactl: 60, acct: 89,
    unshare: 97, kexec_load: 104, init_module: 105, delete_module: 106, clock_settime: 112, syslog: 116,
    reboot: 142, settimeofday: 170, add_key: 217, request_key: 218, keyctl: 219, swapon: 224,
    swapoff: 225, perf_event_open: 241, fanotify_init: 262, name_to_handle_at: 264,
    open_by_handle_at: 265, clock_adjtime: 266, setns: 268, finit_module: 273, bpf: 280, userfaultfd: 282, kexec_file_load: 294,
  },
};

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME. */
export const CLONE_NEW_FLAGS =
  0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80;

const EPERM = 1;
const ENOSYS = 38;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const RET_KILL_PROCESS = 0x80000000;
// classic BPF opcodes (linux/bpf_common.h)
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
// offsets in struct seccomp_data: nr, arch, then args[6] as u64 from 16 (low half first: little endian)
const NR = 0;
const ARCH = 4;
const ARG0_LOW = 16;

type Insn = { code: number; k: number; jt?: string; jf?: string; label?: string };

/**
 * The filter for all three architectures: a 32-bit ARM program or any other ABI the kernel
 * might accept is killed rather than let through unfiltered. Little-endian, as the BPF
 * interpreter reads struct sock_filter in host order and both supported hosts are.
 */
export function seccompFilter(tables: readonly SyscallTable[] = [X86_64, I386, AARCH64]): Buffer {
  const prog: Insn[] = [{ code: LD_W_ABS, k: ARCH }];
  tables.forEach((t, i) => prog.push({ code: JEQ_K, k: t.arch, jt: `arch${i}` }));
  prog.push({ code: RET_K, k: RET_KILL_PROCESS });
  tables.forEach((t, i) => {
    const p = (label: string) => `${label}${i}`;
    prog.push({ code: LD_W_ABS, k: NR, label: p('arch') });
    if (t.x32Bit !== undefined) prog.push({ code: JGE_K, k: t.x32Bit, jt: p('eperm') });
    for (const nr of Object.values(t.deny)) prog.push({ code: JEQ_K, k: nr, jt: p('eperm') });
    prog.push({ code: JEQ_K, k: t.clone3, jt: p('enosys') });
    prog.push({ code: JEQ_K, k: t.clone, jf: p('allow') });
    prog.push({ code: LD_W_ABS, k: ARG0_LOW });
    prog.push({ code: JSET_K, k: CLONE_NEW_FLAGS, jt: p('eperm') });
    prog.push({ code: RET_K, k: RET_ALLOW, label: p('allow') });
    prog.push({ code: RET_K, k: RET_ERRNO | EPERM, label: p('eperm') });
    prog.push({ code: RET_K, k: RET_ERRNO | ENOSYS, label: p('enosys') });
  });
  return assemble(prog);
}

/** Resolve labels to the forward offsets classic BPF jumps take (0…255), 8 bytes per instruction. */
function assemble(prog: readonly Insn[]): Buffer {
  const at = new Map<string, number>();
  prog.forEach((insn, pc) => insn.label && at.set(insn.label, pc));
  const offset = (pc: number, label: string | undefined): number => {
    if (label === undefined) return 0;
    const target = at.get(label);
    const off = target === undefined ? -1 : target - pc - 1;
    if (off < 0 || off > 255) throw new Error(`seccomp filter: jump to ${label} out of range`);
    return off;
  };
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, pc) => {
    out.writeUInt16LE(insn.code, pc * 8);
    out.writeUInt8(offset(pc, insn.jt), pc * 8 + 2);
    out.writeUInt8(offset(pc, insn.jf), pc * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, pc * 8 + 4);
  });
  return out;
}
