/**
 * FrameDecoder: an incremental, synchronous push parser for yamux frames.
 *
 * Feed it socket chunks of any size with push(): it accepts headers split at any byte and
 * many frames per chunk. Data payloads are delivered as views of the incoming chunks (no
 * copy), possibly in several pieces, and only after the sink has accepted the header, so a
 * frame larger than the limit or the stream's window is refused before one payload byte is
 * held.
 */
import { FrameTooLargeError } from '../errors.js'
import { decodeHeader, FrameType, HEADER_LENGTH, type FrameHeader } from './frame.js'

/** Receives decoded frames. Throwing from any method stops the decoder for good. */
export interface FrameSink {
  /** A complete non-Data frame. */
  onFrame (h: FrameHeader): void
  /** A Data header, before any payload: validate it here (window, stream state). */
  onDataHeader (h: FrameHeader): void
  /** A piece of the current Data frame's payload; pieces add up to `h.length`. */
  onDataPayload (h: FrameHeader, payload: Buffer): void
  /** The current Data frame is complete (apply its flags now, after the payload). */
  onDataEnd (h: FrameHeader): void
}

/**
 * Parses a byte stream into yamux frames for a FrameSink, synchronously, across any chunk
 * splits. A Data length over `maxFrameSize` (bytes) throws FrameTooLargeError from the header.
 */
export class FrameDecoder {
  readonly #sink: FrameSink
  readonly #maxFrameSize: number
  /** Partial header carried over between chunks. */
  readonly #headerBuf = Buffer.alloc(HEADER_LENGTH)
  #headerFill = 0
  /** The Data frame whose payload is being received, and how much of it is still to come. */
  #current: FrameHeader | undefined
  #payloadLeft = 0
  #failed: Error | undefined

  constructor (sink: FrameSink, maxFrameSize: number) {
    this.#sink = sink
    this.#maxFrameSize = maxFrameSize
  }

  /** Bytes of a partial header held between chunks (never more than 11). */
  get bufferedBytes (): number { return this.#headerFill }

  /**
   * Feeds the next bytes; the sink is called before push returns. After a throw (the decoder's or
   * the sink's), every later push throws the same error: the stream position is lost.
   */
  push (chunk: Buffer): void {
    if (this.#failed !== undefined) throw this.#failed
    try {
      this.#parse(chunk)
    } catch (err) {
      this.#failed = err as Error
      throw err
    }
  }

  #parse (chunk: Buffer): void {
    let off = 0
    const end = chunk.length
    while (off < end) {
      if (this.#current !== undefined) {
        const n = Math.min(this.#payloadLeft, end - off)
        const h = this.#current
        this.#payloadLeft -= n
        this.#sink.onDataPayload(h, off === 0 && n === end ? chunk : chunk.subarray(off, off + n))
        off += n
        if (this.#payloadLeft === 0) {
          this.#current = undefined
          this.#sink.onDataEnd(h)
        }
        continue
      }
      let h: FrameHeader
      if (this.#headerFill === 0 && end - off >= HEADER_LENGTH) {
        h = decodeHeader(chunk, off)
        off += HEADER_LENGTH
      } else {
        const n = Math.min(HEADER_LENGTH - this.#headerFill, end - off)
        chunk.copy(this.#headerBuf, this.#headerFill, off, off + n)
        this.#headerFill += n
        off += n
        if (this.#headerFill < HEADER_LENGTH) return
        this.#headerFill = 0
        h = decodeHeader(this.#headerBuf, 0)
      }
      if (h.type !== FrameType.Data) {
        this.#sink.onFrame(h)
        continue
      }
      if (h.length > this.#maxFrameSize) throw new FrameTooLargeError(h.length, this.#maxFrameSize)
      this.#sink.onDataHeader(h)
      if (h.length === 0) {
        this.#sink.onDataEnd(h)
      } else {
        this.#current = h
        this.#payloadLeft = h.length
      }
    }
  }
}
