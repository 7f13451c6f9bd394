/**
 * The client's waiting tunnels: a tunnel refused because its address is taken or held is asked
 * for again after a delay that doubles with each refusal (1 s to 30 s by default, equal
 * jitter). Timers are unref'd, paused while the connection is down and cleared on close.
 */

/** Retry delays in ms, and the timers to use (default the global ones; tests may inject theirs). */
export interface TunnelRetryOptions {
  /** First delay (default 1000). */
  initial?: number
  /** Longest delay (default 30 000). */
  max?: number
  timers?: { setTimeout (fn: () => void, ms: number): unknown, clearTimeout (handle: unknown): void }
  /** Uniform in [0, 1) (default Math.random), for the jitter. */
  random?: () => number
}

/** The shortest wait, whatever the options say. */
const MIN_DELAY = 50 // ms

interface Waiting { handle: unknown, attempt: number, delayMs: number }

export class TunnelRetries {
  readonly #o: TunnelRetryOptions
  readonly #fire: (id: number) => void
  readonly #waiting = new Map<number, Waiting>()

  /** `fire(id)` asks for tunnel `id` again. */
  constructor (options: TunnelRetryOptions, fire: (id: number) => void) {
    this.#o = options
    this.#fire = fire
  }

  /** Tunnel `id` was refused once more: its attempt count and the delay before it is asked for again. */
  refused (id: number): { attempt: number, delayMs: number } {
    const w = this.#waiting.get(id) ?? { handle: undefined, attempt: 0, delayMs: 0 }
    w.attempt++
    const ceiling = Math.min(this.#o.max ?? 30_000, (this.#o.initial ?? 1000) * 2 ** Math.min(w.attempt - 1, 20))
    w.delayMs = Math.max(MIN_DELAY, Math.round(ceiling / 2 + (this.#o.random ?? Math.random)() * ceiling / 2))
    this.#waiting.set(id, w)
    return { attempt: w.attempt, delayMs: w.delayMs }
  }

  /** Starts the timer of tunnel `id` (of every waiting tunnel when `id` is undefined). */
  schedule (id?: number): void {
    for (const [key, w] of this.#waiting) {
      if (id !== undefined && key !== id) continue
      this.#cancel(w)
      const timers = this.#o.timers
      const fire = (): void => { w.handle = undefined; this.#fire(key) }
      if (timers !== undefined) w.handle = timers.setTimeout(fire, w.delayMs)
      else {
        const timer = setTimeout(fire, w.delayMs)
        timer.unref()
        w.handle = timer
      }
    }
  }

  /** Tunnel `id` is up or refused for good. */
  clear (id: number): void {
    const w = this.#waiting.get(id)
    if (w !== undefined) this.#cancel(w)
    this.#waiting.delete(id)
  }

  /** Stops every timer; `keepAttempts` (the connection dropped) keeps the backoff for the next connection. */
  stop (keepAttempts = false): void {
    for (const w of this.#waiting.values()) this.#cancel(w)
    if (!keepAttempts) this.#waiting.clear()
  }

  #cancel (w: Waiting): void {
    if (w.handle === undefined) return
    if (this.#o.timers !== undefined) this.#o.timers.clearTimeout(w.handle)
    else clearTimeout(w.handle as NodeJS.Timeout)
    w.handle = undefined
  }
}
