import { describe, expect, it } from 'vitest';
import { SecretMask } from './secret-mask.ts';

/** Feed `text` in the given pieces, then flush: what the log would hold. */
function masked(values: string[], pieces: string[]): string {
  const m = new SecretMask(values);
  let out = '';
  for (const p of pieces) out += m.push(Buffer.from(p)).toString();
  return out + m.flush().toString();
}

describe('SecretMask', () => {
  it('replaces every occurrence, whatever the chunking', () => {
    const text = 'key=hunter2, again hunter2hunter2 and hunter and hunter22\n';
    const want = 'key=***, again ****** and hunter and ***2\n';
    expect(masked(['hunter2'], [text])).toBe(want);
    for (let a = 0; a <= text.length; a++) {
      for (let b = a; b <= text.length; b++) {
        expect(masked(['hunter2'], [text.slice(0, a), text.slice(a, b), text.slice(b)])).toBe(want);
      }
    }
  });

  it('byte by byte, with several secrets, the longest winning where they overlap', () => {
    const text = 'abc abcdef xabcdefx abc';
    expect(masked(['abc', 'abcdef'], [...text])).toBe('*** *** x***x ***');
    expect(masked(['abcdef', 'abc'], [text])).toBe('*** *** x***x ***');
  });

  it('holds back only what could begin a secret, and gives it back at the end', () => {
    const m = new SecretMask(['secret']);
    expect(m.push(Buffer.from('plain sec')).toString()).toBe('plain ');
    expect(m.carry.toString()).toBe('sec');
    expect(m.push(Buffer.from('ond')).toString()).toBe('second');
    expect(m.push(Buffer.from('the end: secre')).toString()).toBe('the end: ');
    expect(m.flush().toString()).toBe('secre');
  });

  it('picks up a carry recorded before a restart', () => {
    const m = new SecretMask(['secret'], Buffer.from('sec'));
    expect(m.push(Buffer.from('ret!')).toString()).toBe('***!');
  });

  it('keeps bytes that are not UTF-8 as they are', () => {
    const m = new SecretMask(['pw']);
    const out = Buffer.concat([m.push(Buffer.from([0xff, 0x70])), m.push(Buffer.from([0x77, 0xfe])), m.flush()]);
    expect([...out]).toEqual([0xff, 0x2a, 0x2a, 0x2a, 0xfe]);
  });
});
