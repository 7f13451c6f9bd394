/**
 * How often the relay may place ACME orders: at most `perHour` in any hour (a sliding window,
 * well under Let's Encrypt's limits), and after a failure a name waits before it is tried again
 * (doubling from `backoffMs`, capped at a day), so a name that cannot validate does not spend
 * the budget of the others. Time comes from an injected clock.
 */
const HOUR = 60 * 60 * 1000
const MAX_BACKOFF = 24 * HOUR

export class IssuanceLimits {
  readonly #perHour: number
  readonly #backoffMs: number
  readonly #now: () => number
  #placed: number[] = []
  readonly #failures = new Map<string, { count: number, until: number }>()

  constructor (o: { perHour: number, backoffMs: number, now: () => number }) {
    this.#perHour = o.perHour
    this.#backoffMs = o.backoffMs
    this.#now = o.now
  }

  /** Why an order for `name` may not be placed now, or undefined when it may (and is then counted). */
  take (name: string): string | undefined {
    const now = this.#now()
    const failed = this.#failures.get(name)
    if (failed !== undefined && now < failed.until) return `${name} failed ${failed.count} time${failed.count === 1 ? '' : 's'}; next try in ${Math.ceil((failed.until - now) / 1000)} s`
    this.#placed = this.#placed.filter(t => t > now - HOUR)
    if (this.#placed.length >= this.#perHour) return `${this.#perHour} orders in the last hour (acme_rate_per_hour)`
    this.#placed.push(now)
    return undefined
  }

  failed (name: string): void {
    const count = (this.#failures.get(name)?.count ?? 0) + 1
    this.#failures.set(name, { count, until: this.#now() + Math.min(MAX_BACKOFF, this.#backoffMs * 2 ** (count - 1)) })
  }

  succeeded (name: string): void {
    this.#failures.delete(name)
  }
}
