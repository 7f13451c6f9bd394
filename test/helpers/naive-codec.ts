/**
 * A deliberately simple yamux header codec, written from the spec alone and sharing no code
 * with src/: one DataView, one field at a time, no validation unless asked. Tests use it to
 * check the real codec and the vector files independently (cf. libp2p-yamux codec.util.ts).
 */

export const NAIVE_HEADER_LENGTH = 12

/** Every field of a header as it is on the wire, version included. */
export interface NaiveHeader {
  version: number
  type: number
  flags: number
  streamId: number
  length: number
}

/** The header fields a sender chooses (the version is always 0). */
export type NaiveFrameHeader = Omit<NaiveHeader, 'version'>

/** Encodes version 0 and the four fields, big-endian, into 12 new bytes. */
export function naiveEncode (h: NaiveFrameHeader): Uint8Array {
  const bytes = new Uint8Array(NAIVE_HEADER_LENGTH)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, 0)
  view.setUint8(1, h.type)
  view.setUint16(2, h.flags, false)
  view.setUint32(4, h.streamId, false)
  view.setUint32(8, h.length, false)
  return bytes
}

/** Reads the 12 bytes at `offset` without judging them. */
export function naiveDecode (bytes: Uint8Array, offset = 0): NaiveHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, NAIVE_HEADER_LENGTH)
  return {
    version: view.getUint8(0),
    type: view.getUint8(1),
    flags: view.getUint16(2, false),
    streamId: view.getUint32(4, false),
    length: view.getUint32(8, false),
  }
}

/**
 * The error code a receiver must raise for this header, or undefined when it is acceptable.
 * Checks in the spec's order: version, then type, then (Data only) length against the limit.
 */
export function naiveCheck (h: NaiveHeader, maxFrameSize = Infinity): string | undefined {
  if (h.version !== 0) return 'MPORT_ERR_INVALID_VERSION'
  if (h.type > 3) return 'MPORT_ERR_INVALID_FRAME_TYPE'
  if (h.type === 0 && h.length > maxFrameSize) return 'MPORT_ERR_FRAME_TOO_LARGE'
  return undefined
}

export interface NaiveFrame {
  header: NaiveFrameHeader
  /** Data frames only: the whole payload. */
  payload?: Uint8Array
}

export interface NaiveParse {
  /** Complete frames, in order. */
  frames: NaiveFrame[]
  /** The Data frame whose payload was cut off by the end of input, with the bytes received so far. */
  partial?: { header: NaiveFrameHeader, received: Uint8Array }
  /** The code of the first bad header; nothing after it is parsed. */
  error?: string
  /** Bytes of an incomplete header at the end of input (0–11). */
  leftover: number
}

/** Parses a whole byte string at once, the slow and obvious way. */
export function naiveParse (bytes: Uint8Array, maxFrameSize = Infinity): NaiveParse {
  const frames: NaiveFrame[] = []
  let off = 0
  while (off + NAIVE_HEADER_LENGTH <= bytes.length) {
    const raw = naiveDecode(bytes, off)
    const error = naiveCheck(raw, maxFrameSize)
    if (error !== undefined) return { frames, error, leftover: 0 }
    off += NAIVE_HEADER_LENGTH
    const header = { type: raw.type, flags: raw.flags, streamId: raw.streamId, length: raw.length }
    if (raw.type !== 0) {
      frames.push({ header })
      continue
    }
    if (off + raw.length > bytes.length) {
      return { frames, partial: { header, received: bytes.slice(off) }, leftover: 0 }
    }
    frames.push({ header, payload: bytes.slice(off, off + raw.length) })
    off += raw.length
  }
  return { frames, leftover: bytes.length - off }
}

/** Lower-case hex of some bytes. */
export function toHex (bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}

/** Bytes of a hex string (even length, no separators). */
export function fromHex (hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`not a hex string: ${hex}`)
  const bytes = new Uint8Array(hex.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return bytes
}

/** mulberry32: a tiny seeded PRNG, so every "random" test input is reproducible from its seed. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Integer in [min, max] from a PRNG. */
export function randInt (rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1))
}

export interface ValidVector { name: string, header: NaiveFrameHeader, hex: string }
export interface InvalidVector { name: string, hex: string, code: string, maxFrameSize?: number, header?: NaiveFrameHeader }
export interface FrameVectors { valid: ValidVector[], invalid: InvalidVector[] }

/** Reads spec/vectors/frames.json and checks its shape, so a malformed entry fails loudly. */
export async function loadFrameVectors (): Promise<FrameVectors> {
  const { readFile } = await import('node:fs/promises')
  const text = await readFile(new URL('../../spec/vectors/frames.json', import.meta.url), 'utf8')
  const data = JSON.parse(text) as FrameVectors
  const uint = (n: unknown, max: number): boolean => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= max
  const checkHeader = (name: string, h: NaiveFrameHeader | undefined): void => {
    if (h === undefined || !uint(h.type, 0xff) || !uint(h.flags, 0xffff) || !uint(h.streamId, 0xffff_ffff) || !uint(h.length, 0xffff_ffff)) {
      throw new Error(`vector "${name}": bad header ${JSON.stringify(h)}`)
    }
  }
  const names = new Set<string>()
  for (const v of [...data.valid, ...data.invalid]) {
    if (typeof v.name !== 'string' || names.has(v.name)) throw new Error(`vector name missing or repeated: ${v.name}`)
    names.add(v.name)
    if (!/^[0-9a-f]{24}$/.test(v.hex)) throw new Error(`vector "${v.name}": hex must be 24 lower-case hex digits`)
  }
  for (const v of data.valid) checkHeader(v.name, v.header)
  for (const v of data.invalid) {
    if (typeof v.code !== 'string') throw new Error(`vector "${v.name}": code missing`)
    if (v.header !== undefined) checkHeader(v.name, v.header)
    if (v.maxFrameSize !== undefined && !uint(v.maxFrameSize, 0xffff_ffff)) throw new Error(`vector "${v.name}": bad maxFrameSize`)
  }
  return data
}
