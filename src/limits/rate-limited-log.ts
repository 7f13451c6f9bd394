/**
 * At most one log line per key (e.g. tunnel and reason) per interval, so a flood of refused
 * visitors is visible without one line per packet: the first event prints, the ones after it
 * within the interval are counted, and the next line that prints carries that count. With
 * `onHeldBack`, a count still held when the interval ends is reported then (the end of a
 * burst is not lost for want of a later event).
 */
import type { SetTimer } from './throttle.js'

/** How often a key may print, and the clock (injected in tests). */
export interface RateLimitedLogOptions {
  /** At most one line per key per this many ms (default 10 000). */
  intervalMs?: number
  /** The clock, in ms (default Date.now). */
  now?: () => number
  /** Keys remembered at most (default 1000): the oldest is dropped, so a key flood stays bounded. */
  maxKeys?: number
  /**
   * Called when an interval ends with events of `key` held back (`suppressed` of them); that
   * counts as the key's line, so its next event waits for the next interval. Without it, the
   * count waits for the key's next line.
   */
  onHeldBack?: (key: string, suppressed: number) => void
  /** Timers for `onHeldBack` (default: unref'd setTimeout); give the same clock as `now`. */
  setTimer?: SetTimer
}

/** The answer for one event: print it, with how many events of its key were held back before it. */
export type Admission = { print: true, suppressed: number } | { print: false }

interface KeyState { at: number, suppressed: number, cancel?: () => void }

const unrefTimer: SetTimer = (fn, ms) => {
  const timer = setTimeout(fn, ms)
  timer.unref()
  return () => { clearTimeout(timer) }
}

/** Per-key rate limit for log lines; see the module comment. */
export class RateLimitedLog {
  readonly #interval: number
  readonly #now: () => number
  readonly #maxKeys: number
  readonly #onHeldBack: ((key: string, suppressed: number) => void) | undefined
  readonly #setTimer: SetTimer
  /** Per key: when it last printed, the events held back since, and the timer that reports them. */
  readonly #keys = new Map<string, KeyState>()

  constructor (opts: RateLimitedLogOptions = {}) {
    this.#interval = opts.intervalMs ?? 10_000
    this.#now = opts.now ?? Date.now
    this.#maxKeys = opts.maxKeys ?? 1000
    this.#onHeldBack = opts.onHeldBack
    this.#setTimer = opts.setTimer ?? unrefTimer
  }

  /** Whether an event of `key` may be printed now. */
  admit (key: string): Admission {
    const now = this.#now()
    const k = this.#keys.get(key)
    if (k !== undefined && now - k.at < this.#interval) {
      k.suppressed++
      if (this.#onHeldBack !== undefined) k.cancel ??= this.#setTimer(() => this.#heldBack(key), k.at + this.#interval - now)
      return { print: false }
    }
    const suppressed = k?.suppressed ?? 0
    k?.cancel?.()
    this.#keys.delete(key) // re-inserted last: Map order is the age order
    this.#keys.set(key, { at: now, suppressed: 0 })
    if (this.#keys.size > this.#maxKeys) {
      const oldest = this.#keys.keys().next().value!
      this.#keys.get(oldest)?.cancel?.()
      this.#keys.delete(oldest)
    }
    return { print: true, suppressed }
  }

  /** Cancels the pending reports (the log's owner is going away). */
  close (): void {
    for (const k of this.#keys.values()) k.cancel?.()
    this.#keys.clear()
  }

  #heldBack (key: string): void {
    const k = this.#keys.get(key)
    if (k === undefined) return
    delete k.cancel
    const n = k.suppressed
    k.at = this.#now()
    k.suppressed = 0
    if (n > 0) this.#onHeldBack!(key, n)
  }
}
