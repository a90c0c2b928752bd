/**
 * A real worker runs jobs that write `$BUILDER_SUMMARY`: the summary reaches the run page (and
 * not the artifacts), a summary over the limit is cut with a note, and the run's CPU time and
 * peak memory, measured by the worker, are in the run's JSON.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';

describe("the job's summary and cost, through a real worker", () => {
  let c: Cluster;
  const json = async (path: string) => (await fetch(`${c.url}/api${path}`)).json();

  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1');
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('shows what the job wrote to $BUILDER_SUMMARY and what it cost', async () => {
    await c.schedule(
      'summarised',
      [
        'echo built > "$BUILDER_OUTPUT/out.txt"',
        'printf "# Done\\n\\nSee [out](out.txt)\\n" > "$BUILDER_SUMMARY"',
        // CPU in the job's own shell (30–50 ms here), over before the first /proc sample (at
        // 250 ms, also on a busy machine): counted from the figures the kernel hands over when the
        // worker reaps the job
        'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done',
      ].join('\n'),
    );
    expect((await c.client(['execute', 'summarised', '--follow'])).code).toBe(0);
    const data = await json('/job/summarised/run/1');
    expect(data.summary).toMatchObject({ markdown: '# Done\n\nSee [out](out.txt)\n', truncated: false });
    expect(data.summary.html).toContain('<a href="/job/summarised/run/1/artifacts/out.txt">out</a>');
    // the summary file is the page's text, not an artifact
    expect(data.artifacts.map((f: { path: string }) => f.path)).toEqual(['out.txt']);
    expect(data.usage.source).toBe('proc');
    expect(data.usage.cpuMs).toBeGreaterThan(20);
    // no /proc sample found it running: no memory figure rather than a guess
    expect(data.usage.peakMemoryBytes).toBeNull();
    const page = await (await fetch(`${c.url}/job/summarised/run/1`)).text();
    expect(page).toContain('<h3>Done</h3>');
    expect(page).toContain('id="run-cpu"');
  });

  it('cuts a summary over 64 KiB and says so; a run without one has none', async () => {
    await c.schedule('long-summary', 'head -c 70000 /dev/zero | tr "\\0" "a" > "$BUILDER_SUMMARY"');
    expect((await c.client(['execute', 'long-summary', '--follow'])).code).toBe(0);
    const data = await json('/job/long-summary/run/1');
    expect(data.summary.truncated).toBe(true);
    expect(data.summary.markdown).toHaveLength(64 * 1024);
    const page = await (await fetch(`${c.url}/job/long-summary/run/1`)).text();
    expect(page).toContain('only its beginning is shown');
    const log = await (await fetch(`${c.url}/job/long-summary/run/1/console.txt`)).text();
    expect(log).toContain('$BUILDER_SUMMARY is over 64 KiB');

    await c.schedule('no-summary', 'true');
    expect((await c.client(['execute', 'no-summary', '--follow'])).code).toBe(0);
    expect((await json('/job/no-summary/run/1')).summary).toBeNull();
  });

  it('refuses a summary that is a symlink (it could point anywhere on the worker)', async () => {
    await c.schedule('linked', 'ln -s /etc/passwd "$BUILDER_SUMMARY"');
    expect((await c.client(['execute', 'linked', '--follow'])).code).toBe(0);
    expect((await json('/job/linked/run/1')).summary).toBeNull();
    const log = await (await fetch(`${c.url}/job/linked/run/1/console.txt`)).text();
    expect(log).toContain('$BUILDER_SUMMARY is not a regular file');
  });
});
