// The targets the full bench is held to (the performance issue; README "Measured here"). A figure
// with a target is printed with it and whether its median met it, and `pnpm bench` ends with a
// summary of all of them. Only for the full sizes: --quick runs smaller ones, which these do not fit.

/** figure → [comparison, bound]: each target's first stage (its later ones, 70 % and 1.3×, are in the README). */
export const TARGETS = {
  throughput_share_of_bare_spawn: ['>=', 50],
  // the same after each side has run as many jobs once (README "Measured here")
  throughput_share_of_bare_spawn_warm: ['>=', 50],
  console_200mib_ratio_to_file: ['<=', 1.5],
  console_200mib_server_peak_rss: ['<', 100],
  dispatch_latency_p50: ['<=', 2],
  dispatch_latency_p99: ['<=', 10],
  thousand_workers_server_rss: ['<', 150],
  thousand_workers_server_peak_rss: ['<', 150],
  thousand_workers_dispatch_p50: ['<=', 5],
  thousand_workers_exactly_once: ['=', 1],
  history_site_index_p99: ['<', 50],
  history_site_job_p99: ['<', 50],
  history_site_run_p99: ['<', 50],
  history_rpc_info_p99: ['<', 50],
  history_rpc_runs_p99: ['<', 50],
  history_rpc_runs_of_job_p99: ['<', 50],
};

const holds = { '>=': (v, b) => v >= b, '<=': (v, b) => v <= b, '<': (v, b) => v < b, '=': (v, b) => v === b };

/** The target of a figure as printed ("<= 2"), and whether `value` meets it; undefined without one. */
export function checkTarget(name, value) {
  const target = TARGETS[name];
  if (!target || value === null) return undefined;
  const [op, bound] = target;
  return { target: `${op} ${bound}`, met: holds[op](value, bound) };
}

/** One line per figure with a target, missed ones first: what `pnpm bench` ends with. */
export function summarizeTargets(figures) {
  const checked = figures.flatMap((f) => (f.met === undefined ? [] : [f]));
  if (checked.length === 0) return '';
  const missed = checked.filter((f) => !f.met);
  const line = (f) =>
    `  ${f.met ? 'met   ' : 'MISSED'} ${f.name} ${f.value} ${f.unit} (target ${f.target}; ${f.min}–${f.max})`;
  return [
    `targets: ${checked.length - missed.length} of ${checked.length} met`,
    ...missed.map(line),
    ...checked.filter((f) => f.met).map(line),
  ].join('\n');
}
