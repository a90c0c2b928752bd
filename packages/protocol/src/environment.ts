import { createHash } from 'node:crypto';
import { z } from 'zod';
import { NameSchema } from './common.ts';

/** One installed package of a base: dpkg's (Debian, Ubuntu) or pkg's (FreeBSD). */
export const EnvPackageSchema = z.object({
  name: z.string().min(1).max(256),
  version: z.string().max(256),
  arch: z.string().max(64),
});
export type EnvPackage = z.infer<typeof EnvPackageSchema>;

/** Most packages a base may list (a full desktop system has ~4,000). */
export const MAX_ENV_PACKAGES = 20_000;

/** What a sandbox was made from: the base rootfs (chroot) or snapshot (jail). */
export const BaseIdentitySchema = z.object({
  /** The base directory or snapshot name, as the worker was told it. */
  path: z.string().max(2048),
  /** Debian/Ubuntu: the suite from builder-root.json; FreeBSD: `freebsd-version -u` of the base. */
  suite: z.string().max(256).optional(),
  os: z.string().max(256).optional(),
  /** ISO times from the base's record (debian/mkroot): when it was made and last refreshed. */
  created: z.string().max(64).optional(),
  refreshed: z.string().max(64).optional(),
  /** SHA-256 of the package list in canonical form (packageListText), identical lists hash alike. */
  packagesSha256: z.string().regex(/^[0-9a-f]{64}$/),
  packages: z.array(EnvPackageSchema).max(MAX_ENV_PACKAGES),
});
export type BaseIdentity = z.infer<typeof BaseIdentitySchema>;

/** Where a run ran, as its worker reports it with `started`. */
export const EnvironmentSchema = z.object({
  worker: NameSchema,
  executor: z.string().min(1).max(32),
  /** `uname -srvm` of the worker's host (jobs share its kernel, also in a chroot or jail). */
  kernel: z.string().max(512),
  builderVersion: z.string().max(64),
  /** Absent for the host executor: it builds on the host itself, which has no base of record. */
  base: BaseIdentitySchema.optional(),
});
export type Environment = z.infer<typeof EnvironmentSchema>;

/** The canonical text of a package list: sorted by name then arch, one `name version arch` line each. */
export function packageListText(packages: readonly EnvPackage[]): string {
  return sortPackages(packages)
    .map((p) => `${p.name} ${p.version} ${p.arch}\n`)
    .join('');
}

export function sortPackages(packages: readonly EnvPackage[]): EnvPackage[] {
  return [...packages].sort((a, b) =>
    a.name === b.name ? (a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0) : a.name < b.name ? -1 : 1,
  );
}

export function packageListSha256(packages: readonly EnvPackage[]): string {
  return createHash('sha256').update(packageListText(packages)).digest('hex');
}
