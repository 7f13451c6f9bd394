/**
 * A clock that moves only when a test moves it: `now` for TokenBuckets (and anything else that
 * takes a `now: () => number`), `setTimer` for Throttles. `advance(ms)` fires the timers that
 * fall due, in order, each with the clock standing at its own due time, so a timer that arms
 * the next one within the same advance sees the right time.
 */
import type { SetTimer } from '../../src/limits/throttle.js'

interface Pending { at: number, seq: number, fn: () => void }

export class ManualClock {
  #now: number
  #seq = 0
  #timers: Pending[] = []

  constructor (start = 1000) {
    this.#now = start
  }

  /** The current time in ms. */
  readonly now = (): number => this.#now

  readonly setTimer: SetTimer = (fn, ms) => {
    const timer: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn }
    this.#timers.push(timer)
    return () => { this.#timers = this.#timers.filter(t => t !== timer) }
  }

  /** Timers armed and not yet fired or cancelled. */
  get pending (): number { return this.#timers.length }

  /** ms until the next timer is due (Infinity when none is armed). */
  get nextDueIn (): number {
    const next = this.#next()
    return next === undefined ? Infinity : next.at - this.#now
  }

  /** Moves the clock forward by `ms`, firing every timer that falls due on the way. */
  advance (ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`a manual clock only moves forward, got ${ms} ms`)
    const end = this.#now + ms
    for (let next = this.#next(); next !== undefined && next.at <= end; next = this.#next()) {
      this.#timers = this.#timers.filter(t => t !== next)
      this.#now = Math.max(this.#now, next.at)
      next.fn()
    }
    this.#now = end
  }

  #next (): Pending | undefined {
    let best: Pending | undefined
    for (const t of this.#timers) if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t
    return best
  }
}
