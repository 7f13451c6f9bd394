/**
 * Yamux frame header codec: pure functions, no I/O.
 *
 * Every frame starts with a 12-byte big-endian header (HashiCorp yamux spec.md):
 *
 *   0       1       2               4                               8                              12
 *   +-------+-------+---------------+-------------------------------+-------------------------------+
 *   |version| type  |     flags     |           stream id           |            length             |
 *   +-------+-------+---------------+-------------------------------+-------------------------------+
 */
import { InvalidFrameTypeError, InvalidVersionError } from '../errors.js'

/** Protocol version carried in every header; any other value is fatal. */
export const YAMUX_VERSION = 0
/** Size of every frame header in bytes. */
export const HEADER_LENGTH = 12
/** Both directions of every stream start with this much credit, without any frame (spec: 256 KiB). */
export const INITIAL_STREAM_WINDOW = 256 * 1024
/** Largest value of the 32-bit length field. */
export const MAX_UINT32 = 0xffff_ffff

/** The frame's type byte (header offset 1); any other value is InvalidFrameTypeError. */
export enum FrameType {
  /** Carries `length` bytes of stream payload after the header. */
  Data = 0,
  /** Adds `length` bytes of credit to the receiver's send window (a delta, never an absolute). */
  WindowUpdate = 1,
  /** Liveness and RTT: SYN asks, ACK answers with the same opaque `length` value; stream id is 0. */
  Ping = 2,
  /** Ends the session; `length` holds a GoAwayCode; stream id is 0. */
  GoAway = 3,
}

/** Bits of the 16-bit flags field (header offset 2); several may be set on one frame. */
export enum Flag {
  /** Opens a new stream (on Data or WindowUpdate). */
  SYN = 1,
  /** Acknowledges a new stream, or answers a Ping. */
  ACK = 2,
  /** Half-closes the sender's direction of a stream. */
  FIN = 4,
  /** Resets a stream at once, in both directions. */
  RST = 8,
}

/** Why a GoAway ends the session, carried in its `length` field. */
export enum GoAwayCode {
  /** Normal termination: existing streams may finish. */
  Normal = 0,
  /** The peer broke the protocol. */
  ProtocolError = 1,
  /** The sender failed internally. */
  InternalError = 2,
}

/** A decoded frame header; the version byte is implied (always 0). */
export interface FrameHeader {
  type: FrameType
  /** Bitwise OR of Flag values. */
  flags: number
  /** The stream the frame belongs to; 0 for Ping and GoAway (session frames). */
  streamId: number
  /** Payload size for Data, credit delta for WindowUpdate, opaque value for Ping, code for GoAway. */
  length: number
}

/** Writes `h` into `buf` at `offset` (12 bytes). Does not validate. */
export function writeHeader (buf: Buffer, offset: number, h: FrameHeader): void {
  buf[offset] = YAMUX_VERSION
  buf[offset + 1] = h.type
  buf.writeUInt16BE(h.flags, offset + 2)
  buf.writeUInt32BE(h.streamId, offset + 4)
  buf.writeUInt32BE(h.length, offset + 8)
}

/** Encodes a header into a new 12-byte buffer. */
export function encodeHeader (h: FrameHeader): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LENGTH)
  writeHeader(buf, 0, h)
  return buf
}

/**
 * Decodes the 12 bytes at `offset`. Throws InvalidVersionError or InvalidFrameTypeError:
 * both are fatal to the session because the framing can no longer be trusted.
 */
export function decodeHeader (buf: Buffer, offset = 0): FrameHeader {
  if (buf.length - offset < HEADER_LENGTH) throw new RangeError(`need ${HEADER_LENGTH} bytes, have ${buf.length - offset}`)
  const version = buf[offset]!
  if (version !== YAMUX_VERSION) throw new InvalidVersionError(version)
  const type = buf[offset + 1]!
  if (type > FrameType.GoAway) throw new InvalidFrameTypeError(type)
  return {
    type,
    flags: buf.readUInt16BE(offset + 2),
    streamId: buf.readUInt32BE(offset + 4),
    length: buf.readUInt32BE(offset + 8),
  }
}

/** Flag bits as `SYN|ACK`, or `0` when none is set; unknown bits are shown in hex. */
export function formatFlags (flags: number): string {
  const names: string[] = []
  for (const f of [Flag.SYN, Flag.ACK, Flag.FIN, Flag.RST]) if (flags & f) names.push(Flag[f])
  const unknown = flags & ~0xf
  if (unknown) names.push(`0x${unknown.toString(16)}`)
  return names.length > 0 ? names.join('|') : '0'
}

/** Human-readable header, e.g. `streamID=1 type=Data flag=SYN|ACK length=5`. */
export function formatHeader (h: FrameHeader): string {
  return `streamID=${h.streamId} type=${FrameType[h.type] ?? h.type} flag=${formatFlags(h.flags)} length=${h.length}`
}
