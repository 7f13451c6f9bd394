/**
 * A RelayPolicy that counts visitor bytes into the metrics on their way to the real policy.
 * The relay reports usage as deltas while data flows (each accounting round) and the last
 * delta when a connection ends, so the counters follow live transfers and are exact, byte for
 * byte, once a connection has finished. Every principal is counted, the relay's own token too.
 */
import type { PlanLimits, Principal, RelayPolicy, UsageCounts } from 'mport/relay'
import type { RelayMetrics } from './metrics.js'

/** Passes every call through to `inner`; `record` also adds the bytes to the metrics. */
export class MeteredPolicy implements RelayPolicy {
  readonly #inner: RelayPolicy
  readonly #metrics: RelayMetrics

  constructor (inner: RelayPolicy, metrics: RelayMetrics) {
    this.#inner = inner
    this.#metrics = metrics
  }

  limits (p: Principal): Promise<PlanLimits> { return this.#inner.limits(p) }
  monthBytes (p: Principal): Promise<number> { return this.#inner.monthBytes(p) }
  stillValid (tokenId: string): Promise<boolean> { return this.#inner.stillValid(tokenId) }
  tunnelUp (p: Principal, tunnel: string): void { this.#inner.tunnelUp(p, tunnel) }
  tunnelDown (p: Principal, tunnel: string): void { this.#inner.tunnelDown(p, tunnel) }
  reservations (): ReturnType<RelayPolicy['reservations']> { return this.#inner.reservations() }

  record (p: Principal, tunnel: string, counts: UsageCounts): void {
    if ((counts.bytesIn ?? 0) > 0 || (counts.bytesOut ?? 0) > 0) this.#metrics.addBytes(p.name, tunnel, counts.bytesIn ?? 0, counts.bytesOut ?? 0)
    this.#inner.record(p, tunnel, counts)
  }
}
