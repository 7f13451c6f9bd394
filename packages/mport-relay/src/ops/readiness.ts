/**
 * Whether the relay should be sent clients (`/readyz`): not before it listens, not once it
 * drains on shutdown (readiness drops first, before any listener closes, so a load balancer
 * stops sending clients while open connections finish), and not while its store does not
 * answer. The store check is a cheap round trip (`select 1`), bounded by a timeout and cached
 * for a moment, so a burst of probes costs one query.
 */
import type { Gauge } from 'prom-client'

/** Why the relay is not ready: still starting, draining on shutdown, or its store not answering. */
export type NotReadyReason = 'starting' | 'draining' | 'store-unreachable'

/** The answer of a readiness check. */
export type ReadyState = { ready: true } | { ready: false, reason: NotReadyReason, message: string }

/** How readiness checks the store, and what it reports to. */
export interface ReadinessOptions {
  /** A cheap round trip to the store; rejects (or does not settle) when the store is unreachable. */
  pingStore (): Promise<void>
  /** A store check is reused for this long (default 1500 ms). */
  cacheMs?: number
  /** A store check that has not answered by then counts as unreachable (default 2000 ms). */
  timeoutMs?: number
  /** Clock for the cache (tests). */
  now?: () => number
  /** Set to 1/0 with each store check and each readiness answer. */
  gauges?: { storeUp: Gauge, ready: Gauge }
}

/** Readiness of the relay: started, not draining, store reachable. */
export class Readiness {
  readonly #o: Required<Omit<ReadinessOptions, 'gauges'>> & Pick<ReadinessOptions, 'gauges'>
  #started = false
  #draining = false
  #store: { at: number, error: string | undefined } | undefined
  #checking: Promise<string | undefined> | undefined

  constructor (options: ReadinessOptions) {
    this.#o = { cacheMs: 1500, timeoutMs: 2000, now: Date.now, ...options }
  }

  /** The relay listens: ready from now on (while the store answers). */
  started (): void { this.#started = true }

  /** Shutdown began: not ready from now on, whatever else holds. */
  drain (): void {
    this.#draining = true
    this.#o.gauges?.ready.set(0)
  }

  /** True once drain() was called. */
  get draining (): boolean { return this.#draining }

  /** Checks readiness now (the store through the cache). */
  async check (): Promise<ReadyState> {
    const state = await this.#state()
    this.#o.gauges?.ready.set(state.ready ? 1 : 0)
    return state
  }

  /** The store's state: undefined when it answered, else why not (cached for `cacheMs`). */
  async #storeError (): Promise<string | undefined> {
    const cached = this.#store
    if (cached !== undefined && this.#o.now() - cached.at < this.#o.cacheMs) return cached.error
    this.#checking ??= this.#pingStore().then(error => {
      this.#store = { at: this.#o.now(), error }
      this.#checking = undefined
      this.#o.gauges?.storeUp.set(error === undefined ? 1 : 0)
      return error
    })
    return await this.#checking
  }

  async #state (): Promise<ReadyState> {
    if (this.#draining) return { ready: false, reason: 'draining', message: 'the relay is shutting down; open connections are draining' }
    if (!this.#started) return { ready: false, reason: 'starting', message: 'the relay is not listening yet' }
    const error = await this.#storeError()
    if (this.#draining) return { ready: false, reason: 'draining', message: 'the relay is shutting down; open connections are draining' }
    if (error !== undefined) return { ready: false, reason: 'store-unreachable', message: error }
    return { ready: true }
  }

  /** One bounded store round trip: undefined, or what went wrong. */
  async #pingStore (): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<string>(resolve => {
      timer = setTimeout(() => resolve(`the store did not answer within ${this.#o.timeoutMs} ms`), this.#o.timeoutMs)
    })
    try {
      return await Promise.race([this.#o.pingStore().then(() => undefined, (err: Error) => `the store is unreachable: ${err.message.split('\n')[0]}`), timeout])
    } finally {
      clearTimeout(timer)
    }
  }
}
