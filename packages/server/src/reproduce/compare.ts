import type { ArtifactFile, Comparison, EnvPackage, Environment, RunInputView } from '@builder/protocol';
import type { RunRow } from '../store/rows.ts';
import { baseSummary } from '../store/environments.ts';

/** One run as compared: its row, where it ran (null: not reported) and its files. */
export interface RunSide {
  run: RunRow;
  environment: Environment | null;
  artifacts: ArtifactFile[];
  /** The files it built from ($BUILDER_INPUT). */
  inputs: RunInputView[];
}

/** What differs between two runs: parameters, commit, script, the base's packages and the files made. */
export function compareRuns(a: RunSide, b: RunSide): Comparison {
  const names = [...new Set([...Object.keys(a.run.params), ...Object.keys(b.run.params)])].sort();
  const changedParams = names
    .map((name) => ({ name, a: a.run.params[name] ?? null, b: b.run.params[name] ?? null }))
    .filter((p) => p.a !== p.b);
  const artifacts = compareArtifacts(a.artifacts, b.artifacts);
  return {
    job: a.run.job,
    a: side(a),
    b: side(b),
    commit: { same: a.run.commit === b.run.commit },
    script: { same: a.run.script === b.run.script, a: a.run.script, b: b.run.script },
    params: { same: changedParams.length === 0, changed: changedParams },
    inputs: compareInputs(a.inputs, b.inputs),
    environment: comparePackages(a.environment, b.environment),
    artifacts,
    reproducible: isReproducible(artifacts),
  };
}

/** By name: an input whose SHA-256 differs, or that only one run had. */
function compareInputs(a: RunInputView[], b: RunInputView[]): Comparison['inputs'] {
  const shaA = new Map(a.map((i) => [i.name, i.sha256]));
  const shaB = new Map(b.map((i) => [i.name, i.sha256]));
  const changed = [...new Set([...shaA.keys(), ...shaB.keys()])]
    .sort()
    .map((name) => ({ name, a: shaA.get(name) ?? null, b: shaB.get(name) ?? null }))
    .filter((i) => i.a !== i.b);
  return { same: changed.length === 0, changed };
}

export function isReproducible(d: Comparison['artifacts']): boolean {
  return d.same.length > 0 && d.changed.length === 0 && d.added.length === 0 && d.removed.length === 0;
}

function side(s: RunSide): Comparison['a'] {
  const base = s.environment?.base;
  return {
    number: s.run.number,
    state: s.run.state,
    platform: s.run.platform,
    worker: s.run.worker,
    commit: s.run.commit,
    base: base ? baseSummary(base) : null,
    packagesSha256: base?.packagesSha256 ?? null,
  };
}

/** By path: the same SHA-256, another one, only in B (added), only in A (removed). */
export function compareArtifacts(a: ArtifactFile[], b: ArtifactFile[]): Comparison['artifacts'] {
  const inB = new Map(b.map((f) => [f.path, f]));
  const inA = new Set(a.map((f) => f.path));
  const out: Comparison['artifacts'] = { same: [], changed: [], added: [], removed: [] };
  for (const fa of a) {
    const fb = inB.get(fa.path);
    if (!fb) out.removed.push(file(fa));
    else if (fb.sha256 === fa.sha256) out.same.push(file(fa));
    else out.changed.push({ path: fa.path, a: file(fa), b: file(fb) });
  }
  for (const fb of b) if (!inA.has(fb.path)) out.added.push(file(fb));
  return out;
}

function file(f: ArtifactFile): ArtifactFile {
  return { path: f.path, sha256: f.sha256, size: f.size };
}

function comparePackages(a: Environment | null, b: Environment | null): Comparison['environment'] {
  const none = { same: false, added: [], removed: [], changed: [] };
  if (!a || !b) return { known: false, ...none };
  if (!a.base || !b.base) return { known: !a.base && !b.base, ...none, same: !a.base && !b.base };
  const key = (p: EnvPackage) => `${p.name}\0${p.arch}`;
  const inB = new Map(b.base.packages.map((p) => [key(p), p]));
  const inA = new Set(a.base.packages.map(key));
  const out: Omit<Comparison['environment'], 'known' | 'same'> = { added: [], removed: [], changed: [] };
  for (const pa of a.base.packages) {
    const pb = inB.get(key(pa));
    if (!pb) out.removed.push(pa);
    else if (pb.version !== pa.version)
      out.changed.push({ name: pa.name, arch: pa.arch, a: pa.version, b: pb.version });
  }
  for (const pb of b.base.packages) if (!inA.has(key(pb))) out.added.push(pb);
  const same = out.added.length === 0 && out.removed.length === 0 && out.changed.length === 0;
  return { known: true, same, ...out };
}
