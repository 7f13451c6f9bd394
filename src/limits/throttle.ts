/**
 * Bandwidth shaping by backpressure: a pass-through Transform that charges every byte to one or
 * more TokenBuckets (say the tunnel's and the user's, each shared by many connections) and holds
 * the chunk while any of them is in debt. Holding the chunk holds the write callback, so the
 * writer sees `write() === false` and a piped socket pauses — TCP then slows the sender. Nothing
 * is dropped.
 *
 * - Chunks are cut into pieces of at most `maxWaitMs` (100 ms) worth of the slowest bucket, so
 *   one piece never waits long and streams sharing a bucket interleave finely.
 * - Tokens are reserved only when the readable side has room: a stalled consumer does not hold
 *   tokens that other streams could use.
 * - At most one timer, armed only while waiting. A bucket's `setRate` wakes a waiting throttle
 *   at once (it re-computes its wait, and re-cuts its piece if the rate fell).
 * - Memory: `writableLength` ≤ writableHighWaterMark + one chunk and `readableLength` ≤
 *   readableHighWaterMark + one piece.
 * - `destroy()` clears the timer and refunds the tokens of the piece it was waiting for.
 */
import { Transform, type TransformCallback, type TransformOptions } from 'node:stream'
import type { TokenBucket } from './token-bucket.js'

/** Options of {@link Throttle}, plus the usual Transform options (high-water marks in bytes). */
export interface ThrottleOptions extends Omit<TransformOptions, 'transform' | 'flush' | 'objectMode' | 'readableObjectMode' | 'writableObjectMode'> {
  /** Buckets to charge; every byte is charged to each one. Duplicates are charged once. */
  buckets: Iterable<TokenBucket>
  /** A piece is at most this many ms worth of the slowest bucket's rate (default 100). */
  maxWaitMs?: number
  /**
   * Arms the one wait timer and returns a function that disarms it (default: the global
   * setTimeout). Give the same clock as the buckets' `now`, so that a test can move time itself.
   */
  setTimer?: SetTimer
}

/** Calls `fn` once after `ms`; the returned function cancels the call if it has not happened. */
export type SetTimer = (fn: () => void, ms: number) => () => void

const realTimer: SetTimer = (fn, ms) => {
  const timer = setTimeout(fn, ms)
  return () => { clearTimeout(timer) }
}

const DEFAULT_MAX_WAIT_MS = 100

/**
 * A pass-through Transform that limits bandwidth by holding the write callback while any of its
 * buckets (one token per byte) is in debt, so a piped sender slows down instead of losing data.
 */
export class Throttle extends Transform {
  #buckets: TokenBucket[]
  readonly #maxWaitMs: number
  readonly #setTimer: SetTimer
  #bytes = 0

  /** The chunk being passed through and the write callback it holds. */
  #chunk: Buffer | undefined
  #offset = 0
  #callback: TransformCallback | undefined
  /** push() said the readable side is full; resume in _read. */
  #stalled = false

  /** While waiting: the piece, one ticket per bucket, the timer and the rate subscriptions. */
  #piece: Buffer | undefined
  #tickets: number[] = []
  #cancelTimer: (() => void) | undefined
  #unsubscribe: Array<() => void> = []

  constructor (opts: ThrottleOptions) {
    const { buckets, maxWaitMs, setTimer, ...rest } = opts
    super(rest)
    this.#buckets = [...new Set(buckets)]
    this.#setTimer = setTimer ?? realTimer
    this.#maxWaitMs = maxWaitMs ?? DEFAULT_MAX_WAIT_MS
    if (!(this.#maxWaitMs > 0)) throw new RangeError(`maxWaitMs must be > 0, got ${maxWaitMs}`)
  }

  /** Bytes passed through so far. */
  get bytes (): number { return this.#bytes }

  /** True while a piece waits for tokens (a timer or a rate change will release it). */
  get waiting (): boolean { return this.#piece !== undefined }

  /** The buckets charged, without duplicates. */
  get buckets (): readonly TokenBucket[] { return this.#buckets }

  /** Charges these buckets from now on; a piece that was waiting is re-reserved on them. */
  setBuckets (buckets: Iterable<TokenBucket>): void {
    this.#cancelWait(true)
    this.#buckets = [...new Set(buckets)]
    this.#pump()
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#chunk = chunk
    this.#offset = 0
    this.#callback = callback
    this.#pump()
  }

  override _read (size: number): void {
    if (this.#stalled) {
      this.#stalled = false
      this.#pump()
    }
    super._read(size)
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    this.#cancelWait(true)
    this.#chunk = undefined
    this.#callback = undefined
    callback(err)
  }

  /** Passes pieces of the current chunk while tokens and room allow; then releases the chunk. */
  #pump (): void {
    while (this.#chunk !== undefined && this.#piece === undefined && !this.#stalled && !this.destroyed) {
      const chunk = this.#chunk
      if (this.#offset >= chunk.length) {
        const callback = this.#callback
        this.#chunk = undefined
        this.#callback = undefined
        callback?.()
        return
      }
      const piece = chunk.subarray(this.#offset, this.#offset + this.#pieceSize(chunk.length - this.#offset))
      this.#tickets = this.#buckets.map(b => b.reserve(piece.length))
      const wait = this.#wait()
      if (wait > 0) {
        this.#piece = piece
        for (const b of this.#buckets) this.#unsubscribe.push(b.onRateChange(this.#onRateChange))
        this.#arm(wait)
        return
      }
      this.#pass(piece)
    }
  }

  #pass (piece: Buffer): void {
    this.#offset += piece.length
    this.#bytes += piece.length
    if (!this.push(piece) && this.#chunk !== undefined && this.#offset < this.#chunk.length) this.#stalled = true
  }

  /** The largest piece: maxWaitMs worth of the slowest limited bucket, at least one byte. */
  #pieceSize (remaining: number): number {
    let size = remaining
    for (const b of this.#buckets) {
      if (b.rate > 0 && b.rate !== Infinity) size = Math.min(size, Math.max(1, Math.floor((b.rate * this.#maxWaitMs) / 1000)))
    }
    return size
  }

  #wait (): number {
    let wait = 0
    for (let i = 0; i < this.#buckets.length; i++) wait = Math.max(wait, this.#buckets[i]!.msUntil(this.#tickets[i]!))
    return wait
  }

  #arm (wait: number): void {
    this.#disarm()
    // Rate 0 waits for setRate, without a timer.
    if (wait !== Infinity) this.#cancelTimer = this.#setTimer(this.#onTimer, Math.max(1, Math.ceil(wait)))
  }

  #disarm (): void {
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
  }

  #onTimer = (): void => {
    this.#cancelTimer = undefined
    this.#recheck()
  }

  #onRateChange = (): void => {
    const piece = this.#piece
    if (piece === undefined) return
    // The rate fell: re-cut the piece so it again waits at most maxWaitMs worth.
    if (this.#pieceSize(piece.length) < piece.length) {
      this.#cancelWait(true)
      this.#pump()
      return
    }
    this.#recheck()
  }

  #recheck (): void {
    const piece = this.#piece
    if (piece === undefined || this.destroyed) return
    const wait = this.#wait()
    if (wait > 0) {
      this.#arm(wait)
      return
    }
    this.#cancelWait(false)
    this.#pass(piece)
    this.#pump()
  }

  /** Stops waiting; with `refund`, gives the piece's tokens back (it was not passed). */
  #cancelWait (refund: boolean): void {
    this.#disarm()
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
    this.#unsubscribe = []
    const piece = this.#piece
    this.#piece = undefined
    if (refund && piece !== undefined) {
      for (const b of this.#buckets) b.refund(piece.length)
    }
    this.#tickets = []
  }
}
