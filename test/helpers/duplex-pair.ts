/**
 * An in-memory socket pair: two Duplexes where each side's writes become the other side's
 * readable data, so a Session runs over it exactly as over a net.Socket.
 *
 * - Backpressure is real: a write's callback is held while the peer's readable buffer is over
 *   its highWaterMark, so write() returns false and 'drain' follows only when the peer reads.
 * - end() half-closes: the peer sees 'end' after the data already written.
 * - destroy() on either end closes the other end too ('close', like a reset connection).
 * - freeze() stops delivering bytes in both directions (a peer that is alive but neither reads
 *   nor answers); writes are held, so writers see backpressure; thaw() delivers them.
 * - delayMs delivers every write that many ms later (a long, fat link: RTT without a bandwidth
 *   limit; writers are not held back, the mux windows bound what is in flight).
 */
import { Duplex } from 'node:stream'

export interface DuplexPairOptions {
  /** Readable and writable high-water mark of each end, in bytes (default 64 KiB). */
  highWaterMark?: number
  /** Delay every delivery by this many ms (default 0: delivered in the writer's tick). */
  delayMs?: number
  /** Like net.Socket's option: when false (default) an end that reads EOF ends its own writable side. */
  allowHalfOpen?: boolean
}

type Callback = (err?: Error | null) => void
const EOF = null

export class PipeEnd extends Duplex {
  #peer: PipeEnd | undefined
  readonly #delayMs: number
  /** The peer's write callback, held until we read (our readable buffer was full). */
  #heldWriter: Callback | undefined
  /** Writes held while frozen, in order (EOF marks a held end()). */
  #frozenQueue: Array<{ chunk: Buffer | typeof EOF, cb: Callback }> = []
  #frozen = false

  constructor (opts: DuplexPairOptions = {}) {
    const hwm = opts.highWaterMark ?? 64 * 1024
    super({ readableHighWaterMark: hwm, writableHighWaterMark: hwm, allowHalfOpen: opts.allowHalfOpen ?? false })
    this.#delayMs = opts.delayMs ?? 0
  }

  /** @internal */
  link (peer: PipeEnd): void { this.#peer = peer }

  get frozen (): boolean { return this.#frozen }

  /** Stop delivering what this end writes (held writes keep their callbacks). */
  freeze (): void { this.#frozen = true }

  /** Deliver everything held since freeze() and resume normal delivery. */
  thaw (): void {
    this.#frozen = false
    const queue = this.#frozenQueue
    this.#frozenQueue = []
    for (const { chunk, cb } of queue) this.#send(chunk, cb)
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    this.#send(chunk, cb)
  }

  override _final (cb: Callback): void {
    this.#send(EOF, cb)
  }

  override _read (): void {
    const cb = this.#heldWriter
    this.#heldWriter = undefined
    cb?.()
  }

  override _destroy (err: Error | null, cb: Callback): void {
    const held = this.#heldWriter
    this.#heldWriter = undefined
    held?.()
    for (const { cb: c } of this.#frozenQueue.splice(0)) c(new Error('pipe destroyed'))
    const peer = this.#peer
    // Like a reset connection, the other end closes too (without an error of its own).
    if (peer !== undefined && !peer.destroyed) process.nextTick(() => peer.destroy())
    cb(err)
  }

  #send (chunk: Buffer | typeof EOF, cb: Callback): void {
    if (this.#frozen) {
      this.#frozenQueue.push({ chunk, cb })
      return
    }
    if (this.#delayMs > 0) {
      setTimeout(() => this.#peer?.receive(chunk, () => {}), this.#delayMs)
      cb()
      return
    }
    const peer = this.#peer
    if (peer === undefined) return cb(new Error('pipe end is not linked'))
    peer.receive(chunk, cb)
  }

  /** @internal Data (or EOF) from the peer; `cb` runs once our buffer has room. */
  receive (chunk: Buffer | typeof EOF, cb: Callback): void {
    if (this.destroyed || this.readableEnded) return cb()
    if (chunk === EOF) {
      this.push(null)
      return cb()
    }
    if (this.push(chunk)) cb()
    else this.#heldWriter = cb
  }
}

/** A connected pair: whatever `a` writes `b` reads, and the other way round. */
export function duplexPair (opts: DuplexPairOptions = {}): [PipeEnd, PipeEnd] {
  const a = new PipeEnd(opts)
  const b = new PipeEnd(opts)
  a.link(b)
  b.link(a)
  return [a, b]
}
