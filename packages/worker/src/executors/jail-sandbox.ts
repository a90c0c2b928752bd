import { join } from 'node:path';
import type { JailOptions } from './jail-options.ts';

/** `builder-<first 8 of the run id>-<attempt>`: jail(8) names allow no dots; the only names cleanup() touches. */
export const JAIL_NAME = /^builder-[0-9a-f]{8}-\d+$/;

/** What exists of one job's jail; teardown undoes exactly that, in reverse. */
export interface Sandbox {
  readonly name: string;
  /** The jail's root on the host: `<--jail-root>/<name>`. */
  readonly path: string;
  /** The clone's dataset (ZFS mode): a sibling of the base dataset. */
  readonly dataset: string | undefined;
  readonly address: string | undefined;
  cloned: boolean;
  copied: boolean;
  devfs: boolean;
  alias: boolean;
  jail: boolean;
}

export function sandbox(o: JailOptions, name: string, address: string | undefined): Sandbox {
  return {
    name,
    path: join(o.root, name),
    dataset: o.base.kind === 'zfs' ? `${o.base.parent}/${name}` : undefined,
    address,
    cloned: false,
    copied: false,
    devfs: false,
    alias: false,
    jail: false,
  };
}
