/**
 * ReceiveGather: turns the pieces of one stream's Data frames into fewer, larger chunks.
 *
 * A TLS socket delivers at most 16 KiB per read, so a 64 KiB frame arrives in four or five
 * pieces. Gathered into one chunk, it costs the reader one write to its local socket instead
 * of several. Pieces from a reused read buffer must be copied anyway, and gathering is that
 * copy. Held bytes never wait for the network: they go to the reader when their buffer is
 * full, when the frame is complete, or one non-blocking event-loop turn after they arrived.
 */
import type { ReceiveBufferPool } from './receive-buffers.js'

/** Pieces of one frame are gathered up to this many bytes and handed over as one chunk. */
const GATHER_LIMIT = 64 * 1024
/**
 * Frames larger than this gather into the session's reused buffers; a small frame gets a
 * buffer of its own, since it would pin a whole pooled buffer while it waits to be read.
 */
const POOLED_GATHER_MIN = GATHER_LIMIT / 2
/** A whole frame up to this size that must be copied gets a buffer of its own without gathering. */
export const OWN_COPY_MAX = POOLED_GATHER_MIN

export class ReceiveGather {
  readonly #pool: ReceiveBufferPool
  readonly #deliver: (chunk: Buffer) => void
  /** Sized for the rest of the frame up to GATHER_LIMIT; bytes before #start were delivered. */
  #buf: Buffer | undefined
  #start = 0
  #fill = 0
  /** Bytes of the current frame not arrived yet, as of the last piece. */
  #arriving = 0
  #turnScheduled = false
  /** The held bytes already waited one turn for the rest of their frame. */
  #waited = false

  /** `deliver` hands a chunk to the stream's reader (it may drop it if the stream is done). */
  constructor (pool: ReceiveBufferPool, deliver: (chunk: Buffer) => void) {
    this.#pool = pool
    this.#deliver = deliver
  }

  /** Bytes gathered and not delivered yet: received, but not consumed either. */
  get held (): number { return this.#fill - this.#start }

  /** A frame is being gathered: its next pieces must join it, never overtake it. */
  get busy (): boolean { return this.#buf !== undefined }

  /** Copies `payload`, a piece of the current frame with `arriving` bytes still to come after it. */
  add (payload: Buffer, arriving: number): void {
    this.#arriving = arriving
    let off = 0
    while (off < payload.length) {
      let g = this.#buf
      if (g === undefined) {
        const size = Math.min(payload.length - off + arriving, GATHER_LIMIT)
        g = this.#buf = size > POOLED_GATHER_MIN ? this.#pool.take(size) : Buffer.allocUnsafe(size)
        this.#start = this.#fill = 0
      }
      const n = payload.copy(g, this.#fill, off)
      this.#fill += n
      off += n
      if (this.#fill === g.length) this.flush()
    }
    if (this.#buf !== undefined && !this.#turnScheduled) {
      this.#turnScheduled = true
      setImmediate(ReceiveGather.#onTurnEnd, this)
    }
  }

  /** The frame is complete (or its buffer full, or the turn over): deliver what is held. */
  flush (): void {
    this.#waited = false
    const g = this.#buf
    if (g === undefined || this.#fill === this.#start) return
    const chunk = g.subarray(this.#start, this.#fill)
    // A buffer with room left keeps gathering the rest of its frame after the part delivered.
    const full = this.#fill === g.length
    if (full) {
      this.#buf = undefined
      this.#start = this.#fill = 0
    } else {
      this.#start = this.#fill
    }
    this.#pool.handedOut(chunk)
    if (full) this.#pool.doneFilling(g)
    this.#deliver(chunk)
  }

  static readonly #onTurnEnd = (g: ReceiveGather): void => { g.#turnEnded() }

  #turnEnded (): void {
    this.#turnScheduled = false
    if (this.#buf === undefined || this.#fill === this.#start) return
    if (this.#arriving > 0 && !this.#waited) {
      // A pending immediate makes the next turn poll without blocking: this waits for bytes
      // already in the socket, never for the network.
      this.#waited = true
      this.#turnScheduled = true
      setImmediate(ReceiveGather.#onTurnEnd, this)
      return
    }
    this.flush()
  }
}
