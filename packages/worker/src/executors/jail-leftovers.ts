import { readdir } from 'node:fs/promises';
import type { CommandRunner } from './jail-command.ts';
import type { JailOptions } from './jail-options.ts';
import { ipv4 } from './jail-options.ts';
import { type Sandbox, sandbox } from './jail-sandbox.ts';

export interface Leftovers {
  /** One per jail name found running, mounted, cloned or copied. */
  readonly sandboxes: Sandbox[];
  /** Addresses of the range still on --jail-interface. */
  readonly aliases: string[];
}

/**
 * What a crashed worker left behind, found by name: running jails (`jls`), devfs mounts under the
 * jail root (`mount -p`), clones next to the base dataset (`zfs list`) or copies in the jail root,
 * and addresses of the range on the interface (`ifconfig`).
 */
export async function findLeftovers(run: CommandRunner, o: JailOptions, names: RegExp): Promise<Leftovers> {
  const byName = new Map<string, Sandbox>();
  const get = (name: string): Sandbox => {
    let s = byName.get(name);
    if (!s) {
      s = sandbox(o, name, undefined);
      byName.set(name, s);
    }
    return s;
  };

  for (const line of lines(await run(['jls', 'name']))) if (names.test(line)) get(line).jail = true;

  // mount -p prints fstab lines: "devfs /usr/local/builder/jails/builder-…/dev devfs rw 0 0"
  for (const line of lines(await run(['mount', '-p']))) {
    const [, mountpoint = '', fstype] = line.split(/\s+/);
    const prefix = `${o.root}/`;
    if (fstype !== 'devfs' || !mountpoint.startsWith(prefix) || !mountpoint.endsWith('/dev')) continue;
    const name = mountpoint.slice(prefix.length, -'/dev'.length);
    if (names.test(name)) get(name).devfs = true;
  }

  if (o.base.kind === 'zfs') {
    const parent = o.base.parent;
    for (const dataset of lines(await run(['zfs', 'list', '-H', '-o', 'name', '-d', '1', parent]))) {
      const name = dataset.slice(parent.length + 1);
      if (dataset.startsWith(`${parent}/`) && names.test(name)) get(name).cloned = true;
    }
  } else {
    for (const entry of await readdir(o.root)) if (names.test(entry)) get(entry).copied = true;
  }

  const aliases: string[] = [];
  if (o.interface !== undefined) {
    for (const m of (await run(['ifconfig', o.interface, 'inet'])).matchAll(/\binet (\d+\.\d+\.\d+\.\d+)/g)) {
      const address = m[1] as string;
      const n = ipv4(address);
      if (n !== undefined && n >= o.ipFirst && n <= o.ipLast) aliases.push(address);
    }
  }
  return { sandboxes: [...byName.values()], aliases };
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}
