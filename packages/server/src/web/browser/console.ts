/**
 * The run page's live console: follows `console.txt?from=OFFSET&follow=1` and appends what
 * arrives. Console text only ever reaches the DOM as textContent (never as markup).
 */
import { AnsiParser, spanClasses, type Span } from '../ansi.ts';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15_000;
/** Within this many pixels of the bottom counts as "at the bottom": keep scrolling along. */
const STICKY_PX = 40;

interface RunInfo {
  state?: string;
  result?: unknown;
}

const pre = document.getElementById('console');
const statusEl = document.getElementById('console-status');
if (pre instanceof HTMLPreElement) {
  pre.scrollTop = pre.scrollHeight; // the tail is what one comes for
  if (pre.dataset['live'] === '1') void follow(pre);
}

async function follow(pre: HTMLPreElement): Promise<void> {
  const src = pre.dataset['src'] ?? '';
  const api = pre.dataset['api'];
  let offset = Number(pre.dataset['offset'] ?? '0');
  // one decoder and one parser for the whole page: bytes are counted into `offset` as they reach
  // the decoder, so a reconnect resumes exactly where its partial character or escape left off
  const decoder = new TextDecoder('utf-8');
  const parser = new AnsiParser();
  let delay = RETRY_MIN_MS;
  for (;;) {
    try {
      const res = await fetch(`${src}?from=${offset}&follow=1`, { cache: 'no-store' });
      if (res.status === 404) return setStatus('this run no longer exists', true);
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setStatus('running: new output appears as it is printed');
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        offset += value.byteLength;
        append(pre, parser.push(decoder.decode(value, { stream: true })));
        delay = RETRY_MIN_MS;
      }
      // the server ends the stream when the run is finished; make sure it was not a proxy
      const run = await runInfo(api);
      if (run === undefined || isFinished(run.state)) {
        append(pre, [...parser.push(decoder.decode()), ...parser.end()]);
        return finished(run);
      }
    } catch {
      setStatus('connection lost: reconnecting…');
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

function append(pre: HTMLPreElement, spans: Span[]): void {
  if (spans.length === 0) return;
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < STICKY_PX;
  const frag = document.createDocumentFragment();
  for (const s of spans) {
    const cls = spanClasses(s);
    if (s.href === undefined && cls === '') {
      frag.append(document.createTextNode(s.text));
      continue;
    }
    const el = s.href === undefined ? document.createElement('span') : document.createElement('a');
    if (el instanceof HTMLAnchorElement && s.href !== undefined) {
      // the parser only lets http(s), ftp and mailto through
      el.href = s.href;
      el.rel = 'nofollow noopener';
      el.target = '_blank';
    }
    if (cls) el.className = cls;
    el.textContent = s.text;
    frag.append(el);
  }
  pre.append(frag);
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

/** The run's JSON view, if the server has one; undefined when it cannot be had. */
async function runInfo(api: string | undefined): Promise<RunInfo | undefined> {
  if (!api) return undefined;
  try {
    const res = await fetch(api, { headers: { accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) return undefined;
    const body: unknown = await res.json();
    if (typeof body !== 'object' || body === null) return undefined;
    // the run page's JSON may be the run itself or wrap it
    const run = 'run' in body && typeof body.run === 'object' && body.run !== null ? body.run : body;
    return run as RunInfo;
  } catch {
    return undefined;
  }
}

function isFinished(state: string | undefined): boolean {
  return state === undefined || !['queued', 'assigned', 'running'].includes(state);
}

function finished(run: RunInfo | undefined): void {
  if (!run?.state) return setStatus('finished: reload for the result');
  const result = describe(run.result);
  setStatus(`finished: ${run.state}${result ? ` (${result})` : ''}`, run.state !== 'succeeded');
  // the facts above the console were rendered while it ran; artifacts need a reload to appear
  const facts = document.getElementById('run-result');
  if (facts) facts.textContent = `${run.state} ${result} (reload for duration and artifacts)`;
}

/** `exited 3`, `signalled SIGKILL`, `timeout`…: the result as the CLI prints it. */
function describe(result: unknown): string {
  if (typeof result === 'string') return result;
  if (typeof result !== 'object' || result === null || !('kind' in result)) return '';
  const r = result as { kind: string; code?: number; signal?: string; message?: string; reason?: string };
  if (r.kind === 'exited') return `exited ${r.code}`;
  if (r.kind === 'signalled') return `signalled ${r.signal}`;
  if (r.kind === 'error') return `error: ${r.message}`;
  return r.kind;
}

function setStatus(text: string, bad = false): void {
  if (!statusEl) return;
  statusEl.textContent = text;
  statusEl.classList.toggle('failed', bad);
}
