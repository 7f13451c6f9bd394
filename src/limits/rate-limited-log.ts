/**
 * At most one log line per key (e.g. tunnel and reason) per interval, so a flood of refused
 * visitors is visible without one line per packet: the first event prints, the ones after it
 * within the interval are counted, and the next line that prints carries that count.
 */

/** How often a key may print, and the clock (injected in tests). */
export interface RateLimitedLogOptions {
  /** At most one line per key per this many ms (default 10 000). */
  intervalMs?: number
  /** The clock, in ms (default Date.now). */
  now?: () => number
  /** Keys remembered at most (default 1000): the oldest is dropped, so a key flood stays bounded. */
  maxKeys?: number
}

/** The answer for one event: print it, with how many events of its key were held back before it. */
export type Admission = { print: true, suppressed: number } | { print: false }

/** Per-key rate limit for log lines; see the module comment. */
export class RateLimitedLog {
  readonly #interval: number
  readonly #now: () => number
  readonly #maxKeys: number
  /** Per key: when it last printed, and the events held back since. */
  readonly #keys = new Map<string, { at: number, suppressed: number }>()

  constructor (opts: RateLimitedLogOptions = {}) {
    this.#interval = opts.intervalMs ?? 10_000
    this.#now = opts.now ?? Date.now
    this.#maxKeys = opts.maxKeys ?? 1000
  }

  /** Whether an event of `key` may be printed now. */
  admit (key: string): Admission {
    const now = this.#now()
    const k = this.#keys.get(key)
    if (k !== undefined && now - k.at < this.#interval) {
      k.suppressed++
      return { print: false }
    }
    const suppressed = k?.suppressed ?? 0
    this.#keys.delete(key) // re-inserted last: Map order is the age order
    this.#keys.set(key, { at: now, suppressed: 0 })
    if (this.#keys.size > this.#maxKeys) this.#keys.delete(this.#keys.keys().next().value!)
    return { print: true, suppressed }
  }
}
