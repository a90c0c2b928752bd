/** A one-line progress bar on stderr, drawn only on a terminal and at most ten times a second. */
export interface Progress {
  update(done: number): void;
  finish(): void;
}

export function progressBar(
  stream: { write(text: string): unknown; isTTY?: boolean; columns?: number },
  label: string,
  total: number,
  now: () => number = Date.now,
): Progress {
  if (!stream.isTTY) return { update: () => undefined, finish: () => undefined };
  const started = now();
  let last = 0;
  let current = 0;
  const draw = () => {
    const secs = Math.max((now() - started) / 1000, 0.001);
    const ratio = total > 0 ? Math.min(current / total, 1) : 1;
    const width = 24;
    const filled = Math.round(ratio * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const rate = `${(current / secs / 1024 / 1024).toFixed(1)} MiB/s`;
    const text = `${label.slice(0, Math.max(10, (stream.columns ?? 80) - 50))} [${bar}] ${Math.floor(ratio * 100)}% ${rate}`;
    stream.write(`\r\x1b[2K${text}`);
  };
  return {
    update(done: number) {
      current = done;
      const t = now();
      if (t - last < 100) return;
      last = t;
      draw();
    },
    finish() {
      draw();
      stream.write('\n');
    },
  };
}
