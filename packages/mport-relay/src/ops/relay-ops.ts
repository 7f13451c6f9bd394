/**
 * The relay service's operations side in one object: the metrics and what feeds them (the
 * relay's events, a metered policy, a timed store view), readiness, and the ops listener.
 * The service creates it first, routes its store and policy through it, attaches the relay
 * once listening, drains it first on shutdown and closes its listener last.
 */
import type { AddressInfo } from 'node:net'
import type { Relay, RelayPolicy } from 'mport/relay'
import { MeteredPolicy } from './metered-policy.js'
import { RelayMetrics, type RelayMetricsOptions } from './metrics.js'
import { startOpsServer, type OpsServer } from './ops-server.js'
import { Readiness } from './readiness.js'
import { observeRelay } from './relay-observer.js'
import { timedStore } from './timed-store.js'

/** The ops listener's address, the series bounds, and the store check's timing. */
export interface RelayOpsOptions extends RelayMetricsOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  /** A store check that has not answered by then makes /readyz 503 (default 2000 ms). */
  storeCheckTimeoutMs?: number
  /** A store check is reused for this long (default 1500 ms). */
  storeCheckCacheMs?: number
}

/** Metrics, readiness and the ops listener of one relay service. */
export class RelayOps {
  readonly metrics: RelayMetrics
  readonly readiness: Readiness
  readonly #o: RelayOpsOptions
  #store: { ping (): Promise<void> } | undefined
  #server: OpsServer | undefined
  #unobserve: (() => void) | undefined

  constructor (options: RelayOpsOptions) {
    this.#o = options
    this.metrics = new RelayMetrics(options)
    this.readiness = new Readiness({
      pingStore: async () => {
        if (this.#store === undefined) throw new Error('the store is not open')
        await this.#store.ping()
      },
      ...(options.storeCheckTimeoutMs !== undefined ? { timeoutMs: options.storeCheckTimeoutMs } : {}),
      ...(options.storeCheckCacheMs !== undefined ? { cacheMs: options.storeCheckCacheMs } : {}),
      gauges: { storeUp: this.metrics.storeUp, ready: this.metrics.ready },
    })
  }

  /** The store everyone should use: each call timed; readiness pings it. */
  store<S extends { ping (): Promise<void> }> (store: S): S {
    const timed = timedStore(store, this.metrics.storeDuration)
    this.#store = timed
    return timed
  }

  /** The policy the relay should use: usage bytes counted on the way. */
  policy (inner: RelayPolicy): RelayPolicy {
    return new MeteredPolicy(inner, this.metrics)
  }

  /** Starts the ops listener (readiness says "starting" until {@link serve}). */
  async listen (): Promise<AddressInfo> {
    this.#server ??= await startOpsServer({ host: this.#o.host, port: this.#o.port, metrics: this.metrics, readiness: this.readiness })
    return this.#server.address
  }

  /** The relay listens: its events and state feed the metrics, and the service is ready. */
  serve (relay: Relay): void {
    this.#unobserve ??= observeRelay(relay, this.metrics)
    this.readiness.started()
  }

  /** Shutdown began: /readyz answers 503 from now on; the listener stays up. */
  drain (): void {
    this.readiness.drain()
  }

  /** Closes the ops listener (last, after the relay has drained). */
  async close (): Promise<void> {
    this.#unobserve?.()
    await this.#server?.close()
  }
}
