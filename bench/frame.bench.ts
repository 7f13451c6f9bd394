/**
 * Header codec: src/mux/frame.ts (Buffer.readUInt32BE / writeUInt32BE) against a naive
 * DataView codec written here (the shape of libp2p-yamux's codec.util.ts reference).
 *
 * Run alone: npx tsx bench/frame.bench.ts
 */
import { decodeHeader, encodeHeader, Flag, FrameType, HEADER_LENGTH, writeHeader, YAMUX_VERSION, type FrameHeader } from '../src/mux/frame.js'
import { InvalidFrameTypeError, InvalidVersionError } from '../src/errors.js'
import { isMain, runSuite, type CaseResult } from './helpers/suite.js'

/** Naive reference: a fresh ArrayBuffer and DataView per header. */
function naiveEncode (h: FrameHeader): Uint8Array {
  const view = new DataView(new ArrayBuffer(HEADER_LENGTH))
  view.setUint8(0, YAMUX_VERSION)
  view.setUint8(1, h.type)
  view.setUint16(2, h.flags, false)
  view.setUint32(4, h.streamId, false)
  view.setUint32(8, h.length, false)
  return new Uint8Array(view.buffer)
}

/** Naive reference: a DataView per call over the input, with the same validation as decodeHeader. */
function naiveDecode (buf: Uint8Array, off = 0): FrameHeader {
  const view = new DataView(buf.buffer, buf.byteOffset + off, HEADER_LENGTH)
  const version = view.getUint8(0)
  if (version !== YAMUX_VERSION) throw new InvalidVersionError(version)
  const type = view.getUint8(1)
  if (type > FrameType.GoAway) throw new InvalidFrameTypeError(type)
  return { type, flags: view.getUint16(2, false), streamId: view.getUint32(4, false), length: view.getUint32(8, false) }
}

// A handful of realistic headers, cycled so no call site sees a single constant input.
const headers: FrameHeader[] = [
  { type: FrameType.Data, flags: 0, streamId: 1, length: 65_536 },
  { type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 3, length: 0 },
  { type: FrameType.Data, flags: Flag.ACK, streamId: 2_147_483_647, length: 5 },
  { type: FrameType.WindowUpdate, flags: 0, streamId: 64, length: 262_144 },
  { type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 0xffff_ffff },
  { type: FrameType.WindowUpdate, flags: Flag.FIN, streamId: 7, length: 0 },
  { type: FrameType.Data, flags: 0, streamId: 9, length: 1_048_576 },
  { type: FrameType.GoAway, flags: 0, streamId: 0, length: 0 },
]
const MASK = headers.length - 1
const encoded = Buffer.concat(headers.map(h => encodeHeader(h)))

export async function frameBench (): Promise<CaseResult[]> {
  let i = 0
  let sink = 0
  const target = Buffer.allocUnsafe(HEADER_LENGTH * 64)
  const results = await runSuite('frame header codec (12 bytes per op)', [
    { name: 'encode header (frame.ts encodeHeader)', fn: () => { sink += encodeHeader(headers[i++ & MASK]!)[11]! } },
    { name: 'encode header (frame.ts writeHeader, reused buffer)', fn: () => { const at = (i & 63) * HEADER_LENGTH; writeHeader(target, at, headers[i++ & MASK]!); sink += target[at + 11]! } },
    { name: 'encode header (naive DataView)', fn: () => { sink += naiveEncode(headers[i++ & MASK]!)[11]! } },
    { name: 'decode header (frame.ts decodeHeader)', fn: () => { sink += decodeHeader(encoded, (i++ & MASK) * HEADER_LENGTH).length } },
    { name: 'decode header (naive DataView)', fn: () => { sink += naiveDecode(encoded, (i++ & MASK) * HEADER_LENGTH).length } },
  ])
  if (sink === -1) console.log(sink) // keeps the results observable
  return results
}

if (isMain(import.meta.url)) await frameBench()
