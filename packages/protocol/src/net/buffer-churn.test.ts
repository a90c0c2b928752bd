import { spawnSync } from 'node:child_process';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { BufferChurn, collectYoung } from './buffer-churn.ts';

describe('BufferChurn', () => {
  it('collects once per everyBytes reported, however the bytes come', () => {
    let collected = 0;
    const churn = new BufferChurn(1000, () => collected++);
    churn.add(999);
    expect(collected).toBe(0);
    churn.add(1);
    expect(collected).toBe(1);
    for (let i = 0; i < 10; i++) churn.add(300);
    expect(collected).toBe(3);
    churn.add(5000);
    expect(collected).toBe(4);
  });

  it('collectYoung runs real young-generation collections and leaves no global gc behind', async () => {
    const kinds: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) kinds.push((e.detail as { kind: number }).kind);
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      for (let i = 0; i < 5; i++) collectYoung();
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      observer.disconnect();
    }
    expect(kinds.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length).toBeGreaterThanOrEqual(5);
    expect(runInNewContext('typeof gc')).toBe('undefined');
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
  });

  it('uses the gc of a process started with --expose-gc and leaves the flag on for new contexts', () => {
    const module = pathToFileURL(new URL('../../dist/net/buffer-churn.js', import.meta.url).pathname).href;
    const script = `import(${JSON.stringify(module)}).then(({ collectYoung }) => {
      collectYoung();
      console.log(typeof gc, require('node:vm').runInNewContext('typeof gc'));
    })`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function function');
  });

  it('does nothing, and throws nothing, where the flag cannot be set at run time', () => {
    const module = pathToFileURL(new URL('../../dist/net/buffer-churn.js', import.meta.url).pathname).href;
    // a runtime ignoring setFlagsFromString: no context ever gets a gc
    const script = `require('node:v8').setFlagsFromString = () => {};
    require('node:module').syncBuiltinESMExports();
    import(${JSON.stringify(module)}).then(({ collectYoung }) => {
      collectYoung();
      collectYoung();
      console.log('still here', typeof gc);
    })`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('still here undefined');
  });
});
