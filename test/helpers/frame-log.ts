/**
 * Reads the raw side of a connection as yamux frames: every header a session wrote, in order,
 * with Data payloads skipped but counted per stream. For tests that check what went on the wire.
 */
import type { Readable } from 'node:stream'
import { decodeHeader, Flag, FrameType, HEADER_LENGTH, type FrameHeader } from '../../src/mux/frame.js'

export class FrameLog {
  readonly frames: FrameHeader[] = []
  /** Data payload bytes seen, per stream id. */
  readonly dataBytes = new Map<number, number>()
  /** The raw side ended (the session closed its end). */
  ended = false
  #buf: Buffer = Buffer.alloc(0)
  #payloadLeft = 0
  #payloadStream = 0

  constructor (raw: Readable) {
    raw.on('data', (c: Buffer) => this.#push(c))
    raw.on('end', () => { this.ended = true })
  }

  /** GoAway codes sent, in order. */
  goAways (): number[] {
    return this.frames.filter(h => h.type === FrameType.GoAway).map(h => h.length)
  }

  /** Stream ids that got a frame with RST, in order. */
  resets (): number[] {
    return this.frames.filter(h => (h.flags & Flag.RST) !== 0).map(h => h.streamId)
  }

  /** Opaque values of the ping ACKs sent, in order. */
  pingAcks (): number[] {
    return this.frames.filter(h => h.type === FrameType.Ping && (h.flags & Flag.ACK) !== 0).map(h => h.length)
  }

  #push (chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    while (true) {
      if (this.#payloadLeft > 0) {
        const n = Math.min(this.#payloadLeft, this.#buf.length)
        if (n === 0) return
        this.#payloadLeft -= n
        this.dataBytes.set(this.#payloadStream, (this.dataBytes.get(this.#payloadStream) ?? 0) + n)
        this.#buf = this.#buf.subarray(n)
        continue
      }
      if (this.#buf.length < HEADER_LENGTH) return
      const h = decodeHeader(this.#buf)
      this.#buf = this.#buf.subarray(HEADER_LENGTH)
      this.frames.push(h)
      if (h.type === FrameType.Data) {
        this.#payloadLeft = h.length
        this.#payloadStream = h.streamId
      }
    }
  }
}
