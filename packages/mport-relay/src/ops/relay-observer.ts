/**
 * Feeds the metrics from a Relay: its events (visitors, refusals, failed handshakes and
 * logins, refused tunnels, quota cuts, ping round trips) as they happen, and its live state
 * (sessions, tunnels by kind) at each scrape. Every label value is an error code or plan limit
 * name from a fixed set, so none of these series can multiply.
 */
import { MportError, QuotaExceededError } from 'mport/errors'
import type { Relay, RelayEvents } from 'mport/relay'
import type { RelayMetrics } from './metrics.js'

/** The `reason` label of a failed handshake: its error code, or `tls` for a TLS-level failure (Node's own errors). */
export function handshakeReason (err: Error): string {
  return err instanceof MportError ? err.code : 'tls'
}

const KINDS = ['tcp', 'http', 'tls'] as const
const MEMBER_STATES = ['ready', 'draining', 'unhealthy', 'gone'] as const

/** Adds `fn` for `event` and returns how to remove it. */
function subscribe<E extends keyof RelayEvents> (relay: Relay, event: E, fn: (...args: RelayEvents[E]) => void): () => void {
  const listener = fn as (...args: unknown[]) => void // EventEmitter's generic overloads do not narrow inside a generic
  relay.on(event as 'warning', listener)
  return () => { relay.off(event as 'warning', listener) }
}

/** Subscribes the metrics to the relay's events and state; returns how to unsubscribe. */
export function observeRelay (relay: Relay, m: RelayMetrics): () => void {
  const quota = (err: Error): void => {
    if (err instanceof QuotaExceededError) m.quotaHits.inc({ limit: err.limit })
  }
  const unsubscribe = [
    subscribe(relay, 'connection', () => m.visitorConnections.inc()),
    subscribe(relay, 'visitor-refused', (_info, err) => { m.visitorRefusals.inc({ reason: err.code }); quota(err) }),
    subscribe(relay, 'auth-failed', (_addr, err) => m.authFailures.inc({ reason: err.code })),
    subscribe(relay, 'handshake-failed', (_addr, err) => m.handshakeFailures.inc({ reason: handshakeReason(err) })),
    subscribe(relay, 'tunnel-refused', (_info, err) => { m.tunnelRefusals.inc({ reason: err.code }); quota(err) }),
    subscribe(relay, 'quota-exceeded', (_principal, err) => quota(err)),
    subscribe(relay, 'rtt', (_client, rttMs) => m.rtt.observe(rttMs / 1000)),
  ]
  let on = true
  m.beforeScrape(() => {
    if (!on) return
    m.sessions.set(relay.clientCount)
    const byKind = { tcp: 0, http: 0, tls: 0 }
    const byState = { ready: 0, draining: 0, unhealthy: 0, gone: 0 }
    for (const t of relay.tunnels) {
      byKind[t.kind]++
      // Each member's own row counts it once.
      const own = t.group?.members.find(x => x.client === t.client)
      if (own !== undefined) byState[own.state]++
    }
    for (const kind of KINDS) m.tunnels.set({ kind }, byKind[kind])
    for (const state of MEMBER_STATES) m.groupMembers.set({ state }, byState[state])
  })
  return () => {
    on = false
    for (const off of unsubscribe) off()
  }
}
