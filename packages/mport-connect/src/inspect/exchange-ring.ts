/**
 * The recorded exchanges, bounded by count and by bytes: the oldest go first. An exchange
 * still growing (its bodies arriving) is re-measured on every update, so the byte bound
 * holds while it grows, not only when it is added.
 */
import { exchangeBytes, type Exchange } from './exchange.js'

export interface RingLimits {
  /** At most this many exchanges. */
  maxExchanges: number
  /** At most this many bytes (exchangeBytes) over all exchanges. */
  maxBytes: number
}

export class ExchangeRing {
  readonly #limits: RingLimits
  /** In insertion order (a Map iterates that way): the first is the oldest. */
  readonly #byId = new Map<number, { exchange: Exchange, bytes: number }>()
  #bytes = 0

  constructor (limits: RingLimits) {
    this.#limits = limits
  }

  get size (): number { return this.#byId.size }
  get bytes (): number { return this.#bytes }
  get limits (): Readonly<RingLimits> { return this.#limits }

  add (e: Exchange): void {
    const bytes = exchangeBytes(e)
    this.#byId.set(e.id, { exchange: e, bytes })
    this.#bytes += bytes
    this.#evict()
  }

  /** Re-measures an exchange that grew; false when it was evicted already. */
  update (e: Exchange): boolean {
    const entry = this.#byId.get(e.id)
    if (entry === undefined) return false
    const bytes = exchangeBytes(e)
    this.#bytes += bytes - entry.bytes
    entry.bytes = bytes
    this.#evict()
    return this.#byId.has(e.id)
  }

  get (id: number): Exchange | undefined {
    return this.#byId.get(id)?.exchange
  }

  /** Newest first. */
  newestFirst (): Exchange[] {
    return [...this.#byId.values()].reverse().map(x => x.exchange)
  }

  clear (): void {
    this.#byId.clear()
    this.#bytes = 0
  }

  #evict (): void {
    for (const [id, entry] of this.#byId) {
      if (this.#byId.size <= this.#limits.maxExchanges && this.#bytes <= this.#limits.maxBytes) return
      this.#byId.delete(id)
      this.#bytes -= entry.bytes
    }
  }
}
