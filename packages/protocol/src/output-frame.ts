import { ErrorCode, ProtocolError } from './errors.ts';
import { validate } from './codec.ts';
import { LIMITS } from './limits.ts';
import { type OutputHeader, OutputHeaderSchema } from './worker-messages.ts';

/**
 * Console output, worker → server, as one binary WebSocket frame:
 *
 *     uint32 big-endian N | N bytes: UTF-8 JSON header (OutputHeaderSchema) | payload: the raw bytes
 *
 * The payload is the job's output exactly as it was written (not necessarily valid UTF-8), at most
 * LIMITS.maxChunkBytes. Text frames stay JSON; only output is binary.
 */
export interface OutputFrame {
  header: OutputHeader;
  payload: Buffer;
}

const LENGTH_BYTES = 4;
/** The shortest JSON object, `{}`. */
const MIN_HEADER_BYTES = 2;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One frame, ready for `ws.send` (one copy of the payload). The header is not validated here: the
 * receiver does that; `seq`, `ts` etc. come from the sender's own bookkeeping.
 */
export function encodeOutputFrame(header: OutputHeader, payload: Buffer | Uint8Array): Buffer {
  const { type, runId, attempt, seq, ts, stream } = header;
  // Only the header fields, in a fixed order (a caller's extra properties do not travel).
  const json = JSON.stringify({ type, runId, attempt, seq, ts, stream });
  const headerBytes = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(LENGTH_BYTES + headerBytes + payload.length);
  frame.writeUInt32BE(headerBytes, 0);
  frame.write(json, LENGTH_BYTES, 'utf8');
  frame.set(payload, LENGTH_BYTES + headerBytes);
  return frame;
}

/**
 * Bytes a sender leaves free in front of a payload so `encodeOutputFrameInPlace` can write the
 * header there: a header is about 130 bytes (a UUID, three numbers, the stream).
 */
export const OUTPUT_FRAME_HEADROOM = 256;

/**
 * Like encodeOutputFrame, without copying the payload: the length and header are written into the
 * `headroom` bytes right before `payload` in its ArrayBuffer, which the caller owns and keeps free
 * for this (the worker builds each batch at OUTPUT_FRAME_HEADROOM into its buffer). The frame is a
 * view from there to the payload's end. Writing it again (a resend) writes the same bytes as long
 * as the header is the same. A header longer than the room falls back to the copying encode.
 */
export function encodeOutputFrameInPlace(header: OutputHeader, payload: Buffer, headroom: number): Buffer {
  const { type, runId, attempt, seq, ts, stream } = header;
  const json = JSON.stringify({ type, runId, attempt, seq, ts, stream });
  const headerBytes = Buffer.byteLength(json);
  const start = payload.byteOffset - LENGTH_BYTES - headerBytes;
  if (LENGTH_BYTES + headerBytes > headroom || start < 0) return encodeOutputFrame(header, payload);
  const frame = Buffer.from(payload.buffer, start, LENGTH_BYTES + headerBytes + payload.length);
  frame.writeUInt32BE(headerBytes, 0);
  frame.write(json, LENGTH_BYTES, 'utf8');
  return frame;
}

/**
 * Parse and validate one output frame. Throws ProtocolError BAD_MESSAGE on a buffer too short for
 * its header, a header length out of range, a header that is not UTF-8 JSON or not of the schema,
 * and a payload over LIMITS.maxChunkBytes. The payload is a view of `raw`, not a copy.
 */
export function decodeOutputFrame(raw: Buffer | ArrayBuffer | Buffer[]): OutputFrame {
  const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  if (buf.length < LENGTH_BYTES) {
    throw new ProtocolError(
      ErrorCode.BadMessage,
      `output frame of ${buf.length} bytes is shorter than its header length`,
    );
  }
  const n = buf.readUInt32BE(0);
  if (n < MIN_HEADER_BYTES || n > LIMITS.maxOutputHeaderBytes || n > buf.length - LENGTH_BYTES) {
    throw new ProtocolError(
      ErrorCode.BadMessage,
      `output frame header length ${n} out of range (${MIN_HEADER_BYTES}..${Math.min(LIMITS.maxOutputHeaderBytes, buf.length - LENGTH_BYTES)})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(buf.subarray(LENGTH_BYTES, LENGTH_BYTES + n)));
  } catch {
    throw new ProtocolError(ErrorCode.BadMessage, 'output frame header is not UTF-8 JSON');
  }
  const header = validate(OutputHeaderSchema, value, 'output frame header');
  const payload = buf.subarray(LENGTH_BYTES + n);
  if (payload.length > LIMITS.maxChunkBytes) {
    throw new ProtocolError(
      ErrorCode.BadMessage,
      `output chunk of ${payload.length} bytes is over ${LIMITS.maxChunkBytes}`,
    );
  }
  return { header, payload };
}
