/**
 * Feeds the metrics from a Relay: its events (visitors, refusals, failed handshakes and
 * logins, refused tunnels, quota cuts, ping round trips) as they happen, and its live state
 * (sessions, tunnels by kind) at each scrape. Every label value is an error code or plan limit
 * name from a fixed set, so none of these series can multiply.
 */
import { MportError, QuotaExceededError } from 'mport/errors'
import type { Relay } from 'mport/relay'
import type { RelayMetrics } from './metrics.js'

/** The `reason` label of a failed handshake: its error code, or `tls` for a TLS-level failure (Node's own errors). */
export function handshakeReason (err: Error): string {
  return err instanceof MportError ? err.code : 'tls'
}

const KINDS = ['tcp', 'http', 'tls'] as const

/** Subscribes the metrics to the relay's events and state; returns how to unsubscribe. */
export function observeRelay (relay: Relay, m: RelayMetrics): () => void {
  const quota = (err: Error): void => {
    if (err instanceof QuotaExceededError) m.quotaHits.inc({ limit: err.limit })
  }
  const listeners = {
    connection: () => m.visitorConnections.inc(),
    'visitor-refused': (_info: unknown, err: MportError) => { m.visitorRefusals.inc({ reason: err.code }); quota(err) },
    'auth-failed': (_addr: string, err: MportError) => m.authFailures.inc({ reason: err.code }),
    'handshake-failed': (_addr: string, err: Error) => m.handshakeFailures.inc({ reason: handshakeReason(err) }),
    'tunnel-refused': (_info: unknown, err: MportError) => { m.tunnelRefusals.inc({ reason: err.code }); quota(err) },
    'quota-exceeded': (_principal: string, err: MportError) => quota(err),
    rtt: (_client: unknown, rttMs: number) => m.rtt.observe(rttMs / 1000),
  }
  for (const [event, fn] of Object.entries(listeners)) relay.on(event as 'connection', fn as () => void)
  let on = true
  m.beforeScrape(() => {
    if (!on) return
    m.sessions.set(relay.clientCount)
    const byKind = { tcp: 0, http: 0, tls: 0 }
    for (const t of relay.tunnels) byKind[t.kind]++
    for (const kind of KINDS) m.tunnels.set({ kind }, byKind[kind])
  })
  return () => {
    on = false
    for (const [event, fn] of Object.entries(listeners)) relay.off(event as 'connection', fn as () => void)
  }
}
