/**
 * Bytes per second from a growing total: samples (time, total) kept over a short window, the
 * rate is the growth across it. The caller samples (on each redraw); the clock is the caller's.
 */
export class RateMeter {
  readonly #windowMs: number
  readonly #samples: Array<{ at: number, total: number }> = []

  constructor (windowMs = 5000) {
    this.#windowMs = windowMs
  }

  /** Records the total at `at` (ms) and returns the rate in bytes/s over the window. */
  sample (at: number, total: number): number {
    this.#samples.push({ at, total })
    while (this.#samples.length > 2 && at - this.#samples[1]!.at >= this.#windowMs) this.#samples.shift()
    const first = this.#samples[0]!
    const dt = at - first.at
    return dt <= 0 ? 0 : Math.max(0, (total - first.total) * 1000 / dt)
  }
}
