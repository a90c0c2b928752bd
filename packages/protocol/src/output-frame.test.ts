import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  LIMITS,
  OUTPUT_FRAME_HEADROOM,
  type OutputHeader,
  ProtocolError,
  decodeOutputFrame,
  encodeOutputFrame,
  encodeOutputFrameInPlace,
} from './index.ts';

const header: OutputHeader = {
  type: 'output',
  runId: '0f8fad5b-d9cb-469f-a165-70867728950e',
  attempt: 2,
  seq: 17,
  ts: 1_700_000_000_123.25,
  stream: 'err',
};

/** A frame with an arbitrary header text (and header length field). */
function frame(headerText: string | Buffer, payload: Buffer = Buffer.alloc(0), n?: number): Buffer {
  const h = Buffer.isBuffer(headerText) ? headerText : Buffer.from(headerText);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(n ?? h.length);
  return Buffer.concat([len, h, payload]);
}

function refusal(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('output frames', () => {
  it('builds the same frame in place, around a payload with room before it, without copying it', () => {
    const payload = Buffer.from('built in place\n');
    const buf = Buffer.alloc(OUTPUT_FRAME_HEADROOM + payload.length, 0xee);
    payload.copy(buf, OUTPUT_FRAME_HEADROOM);
    const view = buf.subarray(OUTPUT_FRAME_HEADROOM);
    const frame = encodeOutputFrameInPlace(header, view, OUTPUT_FRAME_HEADROOM);
    expect(frame.equals(encodeOutputFrame(header, payload))).toBe(true);
    expect(frame.buffer).toBe(buf.buffer); // the payload was not copied
    expect(decodeOutputFrame(frame).payload.equals(payload)).toBe(true);
    // sent again (a resend): the same bytes, the payload untouched
    expect(encodeOutputFrameInPlace(header, view, OUTPUT_FRAME_HEADROOM).equals(frame)).toBe(true);
    expect(view.equals(payload)).toBe(true);
  });

  it('copies into a new frame when the room before the payload is too small for the header', () => {
    const buf = Buffer.alloc(40 + 3, 0xee);
    buf.write('abc', 40);
    const view = buf.subarray(40);
    const frame = encodeOutputFrameInPlace(header, view, 40);
    expect(frame.buffer).not.toBe(buf.buffer);
    expect(buf.subarray(0, 40).every((b) => b === 0xee)).toBe(true); // nothing written before it
    expect(decodeOutputFrame(frame)).toEqual({ header, payload: Buffer.from('abc') });
    expect(encodeOutputFrameInPlace(header, Buffer.from('abc'), 0).equals(frame)).toBe(true);
  });

  it('round-trips header and payload', () => {
    const payload = Buffer.from('hello, wörld €\n');
    const buf = encodeOutputFrame(header, payload);
    const n = buf.readUInt32BE(0);
    expect(JSON.parse(buf.toString('utf8', 4, 4 + n))).toEqual(header);
    expect(buf.length).toBe(4 + n + payload.length);
    const decoded = decodeOutputFrame(buf);
    expect(decoded.header).toEqual(header);
    expect(decoded.payload.equals(payload)).toBe(true);
  });

  it('round-trips an empty payload and one of exactly maxChunkBytes', () => {
    expect(decodeOutputFrame(encodeOutputFrame(header, Buffer.alloc(0))).payload.length).toBe(0);
    const max = Buffer.alloc(LIMITS.maxChunkBytes, 0x61);
    expect(decodeOutputFrame(encodeOutputFrame(header, max)).payload.equals(max)).toBe(true);
  });

  it('accepts what ws hands over: a Buffer, an ArrayBuffer or fragments', () => {
    const buf = encodeOutputFrame(header, Buffer.from('abc'));
    const ab = new Uint8Array(buf).buffer; // a copy: an ArrayBuffer of exactly the frame
    expect(decodeOutputFrame(ab).payload.toString()).toBe('abc');
    expect(decodeOutputFrame([buf.subarray(0, 7), buf.subarray(7)]).payload.toString()).toBe('abc');
  });

  it('carries a binary payload with invalid UTF-8 byte-exact', () => {
    const payload = Buffer.from([
      0xff, 0xfe, 0x6f, 0x6b, 0x0a, 0xe2, 0x82, 0x00, 0x80, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82,
    ]);
    const decoded = decodeOutputFrame(encodeOutputFrame(header, payload));
    expect([...decoded.payload]).toEqual([...payload]);
  });

  it('sends only the header fields, whatever else the object holds', () => {
    const buf = encodeOutputFrame({ ...header, data: 'nope' } as OutputHeader, Buffer.from('x'));
    expect(Object.keys(JSON.parse(buf.toString('utf8', 4, 4 + buf.readUInt32BE(0))))).toEqual([
      'type',
      'runId',
      'attempt',
      'seq',
      'ts',
      'stream',
    ]);
  });

  describe('refuses with BAD_MESSAGE', () => {
    const good = JSON.stringify(header);
    it.each<[string, () => Buffer, RegExp]>([
      ['an empty buffer', () => Buffer.alloc(0), /shorter/],
      ['a buffer shorter than the length field', () => Buffer.from([0, 0, 0]), /shorter/],
      ['a header length of 0', () => frame('', Buffer.from('x')), /out of range/],
      [
        'a header length past the end of the buffer',
        () => frame(good, Buffer.alloc(0), good.length + 1),
        /out of range/,
      ],
      ['a header length of 2^32-1', () => frame(good, Buffer.alloc(0), 0xffffffff), /out of range/],
      [
        'a header length over maxOutputHeaderBytes',
        () => frame(' '.repeat(LIMITS.maxOutputHeaderBytes + 1)),
        /out of range/,
      ],
      ['a header that is not JSON', () => frame('{"type":"output",'), /not UTF-8 JSON/],
      ['a header that is not UTF-8', () => frame(Buffer.from([0x22, 0xff, 0x22])), /not UTF-8 JSON/],
      ['a header that is not an object', () => frame('42'), /invalid output frame header/],
      ['a header of another type', () => frame(JSON.stringify({ ...header, type: 'started' })), /type/],
      ['a header with a bad run id', () => frame(JSON.stringify({ ...header, runId: 'not-a-uuid' })), /runId/],
      ['a header with seq 0', () => frame(JSON.stringify({ ...header, seq: 0 })), /seq/],
      ['a header with an unknown stream', () => frame(JSON.stringify({ ...header, stream: 'weird' })), /stream/],
      ['a header without ts', () => frame(JSON.stringify({ ...header, ts: undefined })), /ts/],
      ['a payload over maxChunkBytes', () => encodeOutputFrame(header, Buffer.alloc(LIMITS.maxChunkBytes + 1)), /over/],
    ])('%s', (_what, make, message) => {
      const err = refusal(() => decodeOutputFrame(make()));
      expect(err.code).toBe(ErrorCode.BadMessage);
      expect(err.message).toMatch(message);
    });
  });
});
