/**
 * The relay's health as the dashboard shows it, read from the same series /metrics exposes
 * (after the same refresh a scrape does): client sessions, tunnels, event-loop lag, memory and
 * store latency quantiles estimated from the histogram's buckets, as Prometheus'
 * histogram_quantile would.
 */
import type { MetricValue } from 'prom-client'
import type { RelayMetrics } from './metrics.js'

export interface HealthSummary {
  sessions: number
  tunnels: number
  /** p99 of the event-loop delay since start (mport_nodejs_eventloop_lag_p99_seconds). */
  eventLoopLagSeconds: number | null
  memory: { rss: number, heapUsed: number }
  /** Over every store call since start. */
  store: { calls: number, p50Seconds: number | null, p99Seconds: number | null }
}

async function values (m: RelayMetrics, name: string): Promise<Array<MetricValue<string>>> {
  const metric = m.registry.getSingleMetric(name)
  return metric === undefined ? [] : (await metric.get()).values
}

async function sum (m: RelayMetrics, name: string): Promise<number | null> {
  const v = await values(m, name)
  return v.length === 0 ? null : v.reduce((a, x) => a + x.value, 0)
}

/** Quantile `q` from cumulative bucket counts (linear within a bucket); null without observations. */
export function bucketQuantile (q: number, buckets: Array<{ le: number, count: number }>): number | null {
  const sorted = [...buckets].sort((a, b) => a.le - b.le)
  const total = sorted.at(-1)?.count ?? 0
  if (total === 0) return null
  const rank = q * total
  let prevLe = 0
  let prevCount = 0
  for (const b of sorted) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe // past the last finite bucket: its upper bound
      return prevLe + (b.le - prevLe) * (b.count === prevCount ? 0 : (rank - prevCount) / (b.count - prevCount))
    }
    prevLe = b.le
    prevCount = b.count
  }
  return prevLe
}

export async function healthSummary (m: RelayMetrics): Promise<HealthSummary> {
  await m.refresh()
  // One histogram per operation: add their buckets up (same bounds) for the store as a whole.
  const byLe = new Map<number, number>()
  for (const v of await values(m, 'mport_store_operation_duration_seconds')) {
    // A histogram's get() lists its _bucket, _sum and _count values together.
    if ((v as { metricName?: string }).metricName !== 'mport_store_operation_duration_seconds_bucket') continue
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le)
    byLe.set(le, (byLe.get(le) ?? 0) + v.value)
  }
  const buckets = [...byLe].map(([le, count]) => ({ le, count }))
  return {
    sessions: await sum(m, 'mport_sessions') ?? 0,
    tunnels: await sum(m, 'mport_tunnels') ?? 0,
    eventLoopLagSeconds: await sum(m, 'mport_nodejs_eventloop_lag_p99_seconds'),
    memory: { rss: await sum(m, 'mport_process_resident_memory_bytes') ?? 0, heapUsed: await sum(m, 'mport_nodejs_heap_size_used_bytes') ?? 0 },
    store: { calls: buckets.find(b => b.le === Infinity)?.count ?? 0, p50Seconds: bucketQuantile(0.5, buckets), p99Seconds: bucketQuantile(0.99, buckets) },
  }
}
