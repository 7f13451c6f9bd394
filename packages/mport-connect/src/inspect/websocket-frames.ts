/**
 * WebSocket frames summarised after an upgrade (RFC 6455 §5.2): opcode, length, FIN and mask
 * per frame, payloads skipped (never kept). Only a frame header (at most 14 bytes) is held
 * between chunks.
 */

/** One frame as the inspector shows it. */
export interface FrameSummary {
  /** `in`: visitor → local service; `out`: local service → visitor. */
  readonly direction: 'in' | 'out'
  readonly opcode: 'continuation' | 'text' | 'binary' | 'close' | 'ping' | 'pong' | `reserved-${number}`
  readonly length: number
  readonly fin: boolean
  readonly masked: boolean
  /** When its header arrived (the inspector's clock). */
  readonly at: number
}

const OPCODES: Record<number, FrameSummary['opcode']> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' }

/** Splits one direction's bytes into frames and reports each header. */
export class WebSocketFrameReader {
  readonly #direction: 'in' | 'out'
  readonly #onFrame: (frame: FrameSummary) => void
  #header = Buffer.alloc(0)
  /** Payload bytes of the current frame still to skip. */
  #skip = 0

  constructor (direction: 'in' | 'out', onFrame: (frame: FrameSummary) => void) {
    this.#direction = direction
    this.#onFrame = onFrame
  }

  push (chunk: Buffer, at: number): void {
    let off = 0
    while (off < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - off)
        this.#skip -= n
        off += n
        continue
      }
      const take = Math.min(14 - this.#header.length, chunk.length - off)
      const header = Buffer.concat([this.#header, chunk.subarray(off, off + take)])
      const parsed = parseFrameHeader(header)
      if (parsed === undefined) { this.#header = header; off += take; continue }
      off += parsed.headerLength - this.#header.length
      this.#header = Buffer.alloc(0)
      this.#skip = parsed.length
      this.#onFrame({ direction: this.#direction, opcode: OPCODES[parsed.opcode] ?? `reserved-${parsed.opcode}`, length: parsed.length, fin: parsed.fin, masked: parsed.masked, at })
    }
  }
}

function parseFrameHeader (b: Buffer): { fin: boolean, opcode: number, masked: boolean, length: number, headerLength: number } | undefined {
  if (b.length < 2) return undefined
  const fin = (b[0]! & 0x80) !== 0
  const opcode = b[0]! & 0x0f
  const masked = (b[1]! & 0x80) !== 0
  let length = b[1]! & 0x7f
  let n = 2
  if (length === 126) {
    if (b.length < 4) return undefined
    length = b.readUInt16BE(2)
    n = 4
  } else if (length === 127) {
    if (b.length < 10) return undefined
    length = Number(b.readBigUInt64BE(2))
    n = 10
  }
  if (masked) n += 4
  if (b.length < n) return undefined
  return { fin, opcode, masked, length, headerLength: n }
}
