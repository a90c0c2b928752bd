import {
  packageListSha256,
  sortPackages,
  type BaseIdentity,
  type EnvPackage,
  type Environment,
} from '@builder/protocol';
import type { Db } from './db.ts';

/**
 * Where runs ran. The environment is a small JSON on the run; its base's package list (thousands of
 * lines) is stored once per distinct list, keyed by its SHA-256, which the server computes itself.
 */
export class EnvironmentStore {
  private readonly setRun;
  private readonly getRun;
  private readonly putPackages;
  private readonly getPackages;

  constructor(db: Db) {
    this.setRun = db.prepare('UPDATE runs SET environment = ? WHERE id = ?');
    this.getRun = db.prepare<[string], { environment: string | null }>('SELECT environment FROM runs WHERE id = ?');
    this.putPackages = db.prepare('INSERT OR IGNORE INTO environment_packages (sha256, packages) VALUES (?, ?)');
    this.getPackages = db.prepare<[string], { packages: string }>(
      'SELECT packages FROM environment_packages WHERE sha256 = ?',
    );
  }

  /** Inside a batch (with the `started` it came with). */
  record(runId: string, env: Environment): void {
    const stored: Environment = { ...env };
    if (env.base) {
      const packages = sortPackages(env.base.packages);
      const sha256 = packageListSha256(packages);
      this.putPackages.run(sha256, JSON.stringify(packages.map((p) => [p.name, p.version, p.arch])));
      stored.base = { ...env.base, packagesSha256: sha256, packages: [] };
    }
    this.setRun.run(JSON.stringify(stored), runId);
  }

  /** The run's environment with its base's packages; null when its worker did not report one. */
  forRun(runId: string): Environment | null {
    const raw = this.getRun.get(runId)?.environment;
    if (!raw) return null;
    const env = JSON.parse(raw) as Environment;
    if (env.base) env.base = { ...env.base, packages: this.packages(env.base.packagesSha256) };
    return env;
  }

  packages(sha256: string): EnvPackage[] {
    const row = this.getPackages.get(sha256);
    if (!row) return [];
    return (JSON.parse(row.packages) as [string, string, string][]).map(([name, version, arch]) => ({
      name,
      version,
      arch,
    }));
  }
}

/** What the run page and the provenance say of a base besides its packages. */
export function baseSummary(base: BaseIdentity): string {
  const parts = [base.suite ?? base.os ?? base.path];
  if (base.created) parts.push(`created ${base.created}`);
  if (base.refreshed) parts.push(`refreshed ${base.refreshed}`);
  return parts.join(', ');
}
