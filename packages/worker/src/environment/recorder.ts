import { readFileSync } from 'node:fs';
import { machine, release, type as osType, version as osVersion } from 'node:os';
import type { BaseIdentity, Environment } from '@builder/protocol';
import type { Executor } from '../executors/types.ts';

/** The worker package's version, from its package.json (one level above both src/ and dist/). */
export const BUILDER_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** How an executor names its base: a cheap stamp that changes with it, and the full description. */
export interface BaseProbe {
  stamp(): Promise<string>;
  describe(): Promise<BaseIdentity>;
}

export interface EnvironmentRecorderDeps {
  readonly worker: string;
  readonly executor: Executor;
  /** `uname -srvm`, overridable for tests. */
  readonly kernel?: string;
}

/**
 * Says where a run runs. The base's package list is read once per base state: the stamp (inode,
 * size, mtime of the package database; a ZFS snapshot's guid) is checked before every run, and a
 * refreshed or replaced base is described again.
 */
export class EnvironmentRecorder {
  readonly #deps: EnvironmentRecorderDeps;
  readonly #kernel: string;
  #cached: { stamp: string; base: Promise<BaseIdentity> } | undefined;

  constructor(deps: EnvironmentRecorderDeps) {
    this.#deps = deps;
    this.#kernel = deps.kernel ?? `${osType()} ${release()} ${osVersion()} ${machine()}`;
  }

  async environment(): Promise<Environment> {
    const { worker, executor } = this.#deps;
    const env: Environment = { worker, executor: executor.name, kernel: this.#kernel, builderVersion: BUILDER_VERSION };
    const probe = executor.base?.();
    if (probe) env.base = await this.#base(probe);
    return env;
  }

  async #base(probe: BaseProbe): Promise<BaseIdentity> {
    const stamp = await probe.stamp();
    if (this.#cached?.stamp !== stamp) {
      const base = probe.describe();
      this.#cached = { stamp, base };
      // a failed description is not kept: the next run tries again
      base.catch(() => {
        if (this.#cached?.base === base) this.#cached = undefined;
      });
    }
    return this.#cached.base;
  }
}
