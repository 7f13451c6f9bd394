/**
 * A token bucket on a monotonic clock: `ratePerSecond` tokens flow in, at most `burst` are
 * kept. It has no timers; callers ask how long to wait and arm their own.
 *
 * Two ways to spend:
 * - `tryTake(n)` takes n tokens only if they are there now (connection-rate limits: refuse).
 * - `take(n)` / `reserve(n)` always take, letting the level go below zero (a debt); the
 *   answer is how long until the tokens are covered (bandwidth: wait, never drop). Reservations
 *   are served in the order they were made, so streams sharing a bucket share it fairly.
 *
 * A reservation is a ticket: the running total of tokens spent right after it. It is covered
 * once the running total of tokens supplied (the initial burst plus every refill) reaches the
 * ticket. Refills lost to the `burst` cap only happen while nothing is owed, so tickets never
 * lose credit. Both totals are float64: after petabytes the ticket arithmetic is off by a few
 * bytes, which moves a wait by nanoseconds.
 */
import { InvalidConfigError } from '../errors.js'

/** Options of {@link TokenBucket}; tokens are whatever the caller counts (bytes, connections). */
export interface TokenBucketOptions {
  /** Tokens added per second; `Infinity` means unlimited, 0 means paused (until setRate). */
  ratePerSecond: number
  /** The most tokens the bucket holds (and starts with); the largest instant burst. */
  burst: number
  /** Clock in ms; must not go backwards. Default `performance.now`. */
  now?: () => number
}

/** Called with the bucket after each setRate, so a waiter can re-arm its timer. */
export type RateListener = (bucket: TokenBucket) => void

/**
 * A token bucket without timers: `tryTake` refuses when empty, `take`/`reserve` go into debt
 * and answer how many ms to wait. See the module comment for the ticket arithmetic.
 */
export class TokenBucket {
  #rate: number
  #burst: number
  readonly #now: () => number
  /** Tokens available; negative while reservations are outstanding. */
  #level: number
  /** Total tokens ever taken. A ticket is the value of #spent right after a reservation. */
  #spent = 0
  #last: number
  readonly #listeners = new Set<RateListener>()

  constructor (opts: TokenBucketOptions) {
    checkRate(opts.ratePerSecond)
    checkBurst(opts.burst)
    this.#rate = opts.ratePerSecond
    this.#burst = opts.burst
    this.#now = opts.now ?? (() => performance.now())
    this.#level = opts.burst
    this.#last = this.#now()
  }

  /** Tokens per second (`Infinity` = unlimited). */
  get rate (): number { return this.#rate }

  /** The most tokens the bucket holds. */
  get burst (): number { return this.#burst }

  /** Tokens available now; negative while reservations wait to be covered. */
  get tokens (): number {
    this.#refill()
    return this.#level
  }

  /**
   * Takes n tokens, going into debt if they are not there, and returns how many ms until they
   * are covered (0: taken from what was there). Never refuses: the caller waits that long.
   * With rate 0 and not enough tokens the answer is `Infinity` (until setRate).
   */
  take (n: number): number {
    return this.msUntil(this.reserve(n))
  }

  /** Takes n tokens only if they are available now; false leaves the bucket untouched. */
  tryTake (n: number): boolean {
    checkCount(n)
    if (this.#rate === Infinity) return true
    this.#refill()
    if (this.#level < n) return false
    this.#level -= n
    this.#spent += n
    return true
  }

  /** Like take(), but returns the ticket; ask `msUntil(ticket)` again after a rate change. */
  reserve (n: number): number {
    checkCount(n)
    if (this.#rate === Infinity) return -Infinity
    this.#refill()
    this.#level -= n
    this.#spent += n
    return this.#spent
  }

  /** ms until the reservation with this ticket is covered; 0 if it is. */
  msUntil (ticket: number): number {
    if (this.#rate === Infinity) return 0
    this.#refill()
    const missing = ticket - (this.#spent + this.#level)
    if (missing <= 0) return 0
    if (this.#rate === 0) return Infinity
    return (missing / this.#rate) * 1000
  }

  /**
   * Gives back n tokens of a reservation that will not be used (a stream destroyed while
   * waiting); later reservations are covered that much sooner. Capped at `burst`.
   */
  refund (n: number): void {
    checkCount(n)
    if (this.#rate === Infinity) return
    this.#refill()
    this.#level = Math.min(this.#burst, this.#level + n)
  }

  /**
   * Changes the rate (and optionally the burst) from now on: tokens accrued so far count at the
   * old rate. Listeners (waiting throttles) are told at once so they re-arm their timers.
   */
  setRate (ratePerSecond: number, burst?: number): void {
    checkRate(ratePerSecond)
    if (burst !== undefined) checkBurst(burst)
    this.#refill()
    if (this.#rate === Infinity && ratePerSecond !== Infinity) this.#level = burst ?? this.#burst
    this.#rate = ratePerSecond
    if (burst !== undefined) {
      this.#burst = burst
      this.#level = Math.min(this.#level, burst)
    }
    for (const listener of [...this.#listeners]) listener(this)
  }

  /** Calls `listener` after every setRate until the returned function is called. */
  onRateChange (listener: RateListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Number of rate listeners (waiting throttles); for tests and leak checks. */
  get listenerCount (): number { return this.#listeners.size }

  #refill (): void {
    const now = this.#now()
    // A clock that steps back is ignored until it passes the last reading again.
    if (!(now > this.#last)) return
    const elapsed = now - this.#last
    this.#last = now
    if (this.#rate === 0 || this.#rate === Infinity || this.#level >= this.#burst) return
    this.#level = Math.min(this.#burst, this.#level + (elapsed * this.#rate) / 1000)
  }
}

function checkRate (rate: number): void {
  if (!(rate >= 0)) throw new InvalidConfigError('ratePerSecond', `must be a number ≥ 0 or Infinity, got ${rate}`)
}

function checkBurst (burst: number): void {
  if (!(burst > 0) || !Number.isFinite(burst)) throw new InvalidConfigError('burst', `must be a finite number > 0, got ${burst}`)
}

function checkCount (n: number): void {
  if (!(n >= 0) || !Number.isFinite(n)) throw new RangeError(`token count must be a finite number ≥ 0, got ${n}`)
}
