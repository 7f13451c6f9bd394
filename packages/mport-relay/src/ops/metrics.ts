/**
 * The relay's Prometheus metrics: one registry, every metric defined here (names with base
 * units and `_total` for counters, prefix `mport_`, labels bounded), and Node's own process
 * metrics (event-loop lag, heap, CPU) from prom-client's default collectors under the same
 * prefix. docs/METRICS.md is the table of them; what feeds each is in relay-observer.ts,
 * metered-policy.ts, timed-store.ts, readiness.ts and certificate-expiry.ts.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { BoundedLabels, OTHER } from './bounded-labels.js'
import { CertificateExpiry } from './certificate-expiry.js'

/** Default bound on per-tunnel series (user and tunnel name pairs); the rest share `_other`. */
export const DEFAULT_MAX_TUNNEL_SERIES = 100
/** Default bound on per-user series; the rest share `_other`. */
export const DEFAULT_MAX_USER_SERIES = 100

/** Bounds on label cardinality. */
export interface RelayMetricsOptions {
  /** Distinct (user, tunnel) pairs with their own byte series (default 100). */
  maxTunnelSeries?: number
  /** Distinct users with their own byte series (default 100). */
  maxUserSeries?: number
}

/**
 * Bytes each way of one tunnel or user: counters bound to their labels, and what was added
 * since the last scrape. Adding is two additions; the counters are moved once per scrape.
 */
interface ByteSeries { in: { inc (n: number): void }, out: { inc (n: number): void }, pendingIn: number, pendingOut: number }

/** Every metric of the relay, in one registry. */
export class RelayMetrics {
  readonly registry = new Registry()
  readonly sessions: Gauge
  readonly tunnels: Gauge<'kind'>
  readonly groupMembers: Gauge<'state'>
  readonly visitorConnections: Counter
  readonly visitorRefusals: Counter<'reason'>
  readonly tunnelBytes: Counter<'user' | 'tunnel' | 'direction'>
  readonly userBytes: Counter<'user' | 'direction'>
  readonly handshakeFailures: Counter<'reason'>
  readonly authFailures: Counter<'reason'>
  readonly tunnelRefusals: Counter<'reason'>
  readonly quotaHits: Counter<'limit'>
  readonly rtt: Histogram
  readonly storeDuration: Histogram<'operation'>
  readonly storeUp: Gauge
  readonly ready: Gauge
  /** The certificates' expiry times: call `certificates.set(name, pem)` for each one served. */
  readonly certificates: CertificateExpiry
  readonly #tunnelSeries: BoundedLabels<ByteSeries>
  readonly #userSeries: BoundedLabels<ByteSeries>
  readonly #beforeScrape: Array<() => void | Promise<void>> = []
  /** Byte series with bytes not yet in their counters. */
  readonly #pending = new Set<ByteSeries>()

  constructor (options: RelayMetricsOptions = {}) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'mport_' })
    this.sessions = new Gauge({ name: 'mport_sessions', help: 'Client sessions open on the control port (TLS connections past accept, in their handshake or authenticated)', registers })
    this.tunnels = new Gauge({ name: 'mport_tunnels', help: 'Tunnels held by leases, by kind (tcp, http, tls); a lease waiting for its client keeps its tunnels', labelNames: ['kind'], registers })
    this.groupMembers = new Gauge({ name: 'mport_group_members', help: 'Members of load-balancing groups, by state (ready, draining, unhealthy, gone); only ready ones get new visitors', labelNames: ['state'], registers })
    this.visitorConnections = new Counter({ name: 'mport_visitor_connections_total', help: 'Visitor connections forwarded to a client (opened as a mux stream)', registers })
    this.visitorRefusals = new Counter({ name: 'mport_visitor_refusals_total', help: 'Visitor connections refused, by error code (IP filter, rate limit, plan)', labelNames: ['reason'], registers })
    this.tunnelBytes = new Counter({ name: 'mport_tunnel_bytes_total', help: `Visitor bytes through a tunnel: in = visitor to service, out = back; the first ${options.maxTunnelSeries ?? DEFAULT_MAX_TUNNEL_SERIES} (user, tunnel) pairs seen have their own series, later ones share user="${OTHER}", tunnel="${OTHER}"`, labelNames: ['user', 'tunnel', 'direction'], registers })
    this.userBytes = new Counter({ name: 'mport_user_bytes_total', help: `Visitor bytes of all of a user's tunnels; the first ${options.maxUserSeries ?? DEFAULT_MAX_USER_SERIES} users seen have their own series, later ones share user="${OTHER}"`, labelNames: ['user', 'direction'], registers })
    this.handshakeFailures = new Counter({ name: 'mport_handshake_failures_total', help: 'Control connections that failed before authentication for another reason than a wrong token, by error code (tls: a TLS-level failure)', labelNames: ['reason'], registers })
    this.authFailures = new Counter({ name: 'mport_auth_failures_total', help: 'Clients that presented a token the relay does not accept, by error code', labelNames: ['reason'], registers })
    this.tunnelRefusals = new Counter({ name: 'mport_tunnel_refusals_total', help: 'Requests to open a tunnel that were refused, by error code', labelNames: ['reason'], registers })
    this.quotaHits = new Counter({ name: 'mport_quota_hits_total', help: 'Plan limits reached, by limit: maxTunnels (a tunnel refused), maxConnections and monthlyBytes (a visitor refused), monthlyBytes also when the quota cuts live connections', labelNames: ['limit'], registers })
    this.rtt = new Histogram({ name: 'mport_session_rtt_seconds', help: 'Round-trip time of answered pings on client sessions (keepalive pings)', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers })
    this.storeDuration = new Histogram({ name: 'mport_store_operation_duration_seconds', help: 'Time of each store call (users, tokens, usage, limits), by operation', labelNames: ['operation'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers })
    this.storeUp = new Gauge({ name: 'mport_store_up', help: '1 when the last store check answered in time, else 0', registers })
    this.ready = new Gauge({ name: 'mport_ready', help: '1 while /readyz answers 200 (listening, store reachable, not draining), else 0', registers })
    const expiry = new Gauge({ name: 'mport_certificate_expiry_timestamp_seconds', help: 'When a certificate the relay serves expires (Unix time), by certificate', labelNames: ['cert'], registers })
    this.certificates = new CertificateExpiry(expiry)
    this.#tunnelSeries = new BoundedLabels(options.maxTunnelSeries ?? DEFAULT_MAX_TUNNEL_SERIES, this.#bytes({ user: OTHER, tunnel: OTHER }))
    this.#userSeries = new BoundedLabels(options.maxUserSeries ?? DEFAULT_MAX_USER_SERIES, this.#bytes({ user: OTHER }))
  }

  /** Counts visitor bytes of one tunnel of `user`, in its own series or the shared one past the bounds. */
  addBytes (user: string, tunnel: string, bytesIn: number, bytesOut: number): void {
    const t = this.#tunnelSeries.get(`${user}\0${tunnel}`, () => this.#bytes({ user, tunnel }))
    const u = this.#userSeries.get(user, () => this.#bytes({ user }))
    t.pendingIn += bytesIn
    t.pendingOut += bytesOut
    u.pendingIn += bytesIn
    u.pendingOut += bytesOut
    this.#pending.add(t).add(u)
  }

  #bytes (labels: { user: string, tunnel?: string }): ByteSeries {
    if (labels.tunnel !== undefined) {
      const l = { user: labels.user, tunnel: labels.tunnel }
      return { in: this.tunnelBytes.labels({ ...l, direction: 'in' }), out: this.tunnelBytes.labels({ ...l, direction: 'out' }), pendingIn: 0, pendingOut: 0 }
    }
    return { in: this.userBytes.labels({ user: labels.user, direction: 'in' }), out: this.userBytes.labels({ user: labels.user, direction: 'out' }), pendingIn: 0, pendingOut: 0 }
  }

  /** Moves the bytes added since the last scrape into their counters. */
  #flushBytes (): void {
    for (const s of this.#pending) {
      if (s.pendingIn > 0) s.in.inc(s.pendingIn)
      if (s.pendingOut > 0) s.out.inc(s.pendingOut)
      s.pendingIn = 0
      s.pendingOut = 0
    }
    this.#pending.clear()
  }

  /** Runs `fn` before each scrape: gauges that read live state set themselves there. */
  beforeScrape (fn: () => void | Promise<void>): void {
    this.#beforeScrape.push(fn)
  }

  /** The text exposition format, for GET /metrics. */
  async text (): Promise<string> {
    await this.refresh()
    return await this.registry.metrics()
  }

  /** Brings every series up to date, as a scrape does (the dashboard's health reads them after). */
  async refresh (): Promise<void> {
    this.#flushBytes()
    for (const fn of this.#beforeScrape) await fn()
  }

  /** The Content-Type of {@link text}. */
  get contentType (): string { return this.registry.contentType }
}
