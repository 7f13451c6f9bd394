/**
 * What the API's modules share: its options, the caller a request carries, the auth level a
 * route declares, and the context route modules receive from createApi. Types only: app.ts and
 * the route modules all import it, so none of them imports another.
 */
import type { FastifyRequest } from 'fastify'
import type { ExchangeRecord } from 'mport/http'
import type { FailureLimiter } from 'mport/relay'
import type { Store, User } from '../store/types.js'
import type { ClientDownloads } from '../downloads/client-downloads.js'

/** A live tunnel as the relay reports it. */
export interface LiveTunnel {
  /** Handle for DELETE /v1/tunnels/:id, unique across the relay. */
  id: string
  name: string
  /** The owner: Principal.id, which StoreAuthenticator sets to the user id. */
  userId: string
  userName?: string
  port?: number
  url?: string
  online?: boolean
  connections?: number
  bytesIn?: number
  bytesOut?: number
  kind?: 'tcp' | 'http' | 'tls'
  /** The address of the client machine holding the tunnel (absent while it is away). */
  clientAddress?: string
  /** The client's software and version (`mport-connect/0.1.0`), while it is connected. */
  clientAgent?: string
  /** When the tunnel came up (ms since the epoch). */
  since?: number
  /** A load-balancing group's member: the group and all its members. */
  group?: LiveTunnelGroup
  /** When the tunnel's client was last connected (ms since the epoch): now while it is, else when it left. */
  lastSeen?: number
  /** The client's visitor filter in one line. */
  filter?: string
  /** The client gave an allow list (so "allow my IP" grants matter). */
  restricted?: boolean
  /** Addresses let through the allow list until a time (ms since the epoch). */
  grants?: Array<{ address: string, until: number }>
}

/** One recent visitor connection of a tunnel: metadata only. */
export interface RecentVisitor {
  /** When it finished or was refused (ms since the epoch). */
  at: number
  address: string
  bytesIn: number
  bytesOut: number
  /** The error code it was refused with, if it was. */
  refused?: string
}

/** One recent HTTP request of an http tunnel: mport/http's ExchangeRecord (metadata only) and the visitor's address. */
export type RecentRequest = ExchangeRecord & { address: string }

/** The relay's health for the admin page: from the metrics when the relay has them (same series as /metrics). */
export interface RelayHealth {
  sessions: number
  tunnels: number
  /** Visitor connections open now (each one mux stream). */
  streams: number
  memory: { rss: number, heapUsed: number }
  eventLoopLagSeconds: number | null
  store: { calls: number, p50Seconds: number | null, p99Seconds: number | null }
}

/** A load-balancing group as GET /v1/tunnels shows it (the relay's GroupInfo). */
export interface LiveTunnelGroup {
  name: string
  policy: 'roundrobin' | 'leastconn'
  /** Other users' tunnels may join with the group's key. */
  keyed: boolean
  members: Array<{
    /** The member's lease id. */
    client: string
    /** The client connection holding it now (absent while the client is away). */
    session?: string
    remoteAddress?: string
    /** The client's software and version. */
    agent?: string
    state: 'ready' | 'draining' | 'unhealthy' | 'gone'
    connections: number
    healthDetail?: string
  }>
}

/** What createApi needs: the store, the relay's seams, and login and sign-up settings. */
export interface ApiOptions {
  store: Store
  /** Live tunnels of the relay (all users); without it, the tunnel routes answer 503. */
  relayInfo?: () => LiveTunnel[] | Promise<LiveTunnel[]>
  /**
   * Calls `changed` whenever a tunnel comes or goes or a client connects or leaves (the
   * dashboard's push channel); returns the unsubscribe. Without it, the channel only ticks.
   */
  watchTunnels?: (changed: () => void) => () => void
  /** Lets an address through a live tunnel's allow list until a time; the tunnel's grants, or undefined when it is gone. Without it POST /v1/tunnels/:id/allow answers 503. */
  grantVisitor?: (id: string, address: string, until: number) => Array<{ address: string, until: number }> | undefined
  /** A live tunnel's recent visitors, newest first (GET /v1/tunnels/:id/visitors); without it the route answers 503. */
  tunnelVisitors?: (id: string) => RecentVisitor[]
  /** A live http tunnel's recent requests, newest first (GET /v1/tunnels/:id/requests); without it that route answers 503. */
  tunnelRequests?: (id: string) => RecentRequest[]
  /** The relay's health (GET /v1/admin/health); without it the route answers 503. */
  relayHealth?: () => Promise<RelayHealth>
  /** Closes a live tunnel; false when it is not there. Without it, DELETE /v1/tunnels/:id answers 503. */
  closeTunnel?: (id: string) => boolean | Promise<boolean>
  /** Lets anyone create an account with POST /v1/signup (default false). */
  openSignup?: boolean
  /** Called after a token is revoked or a user disabled, so the relay can drop their live sessions at once. */
  onRevoke?: (event: { userId: string, tokenId?: string }) => void
  /** Login session lifetime (default 12 h). */
  sessionTtlMs?: number
  /** Failed logins (and sign-ups) allowed per client address per window (default 5 per 60 s). */
  loginLimit?: { max: number, windowMs: number }
  /** Trust X-Forwarded-For from a reverse proxy (default false). */
  trustProxy?: boolean
  /** Fastify logger option (default off). */
  logger?: boolean
  /** Told of every answered request (the relay's log): route pattern, never the raw URL, headers or body. */
  onResponse?: (r: ApiRequestLog) => void
  /** Shown in the OpenAPI document and in /v1/health. */
  version?: string
  /** The control address clients connect to (`host:port`), shown in /v1/health so `mport-connect login` can say which relay its tunnel token is for. */
  relayAddress?: string
  /** The control certificate: its fingerprint (`sha256:…`, what `mport-connect --fingerprint` takes) and whether it is the relay's self-signed one (then clients must pin it). Shown in GET /v1/connect-info. */
  relayCertificate?: { fingerprint: string, selfSigned: boolean }
  /** The client files of GET /dl/… (default: the bundle in the package's dist/dl/, no executable). */
  downloads?: ClientDownloads
  /**
   * Re-reads the relay's config file and applies it (POST /v1/admin/reload); rejects with
   * InvalidConfigError (422) when the file fails validation. Without it the route answers 503.
   */
  reload?: () => Promise<{ line: string, changed: string[], restartNeeded: string[] }>
}

/** One answered API request as the relay logs it: bounded fields, nothing a caller sent. */
export interface ApiRequestLog {
  method: string
  /** The route's pattern (`/v1/tokens/:id`), or `unmatched`. */
  route: string
  status: number
  /** Time to answer, in ms. */
  ms: number
  remoteAddress: string
  /** The authenticated user, if any. */
  user?: string
}

/** The authenticated user of a request, and how they authenticated. */
export interface Caller {
  user: User
  /** How the caller authenticated. */
  via: 'session' | 'token'
  /** The bearer credential (to log out a session). */
  raw: string
  /** The session came in the dashboard's cookie (so a state-changing request needed the CSRF token). */
  cookie?: boolean
}

/** Who may call a route: anyone, any signed-in user, or admins only. */
export type AuthLevel = 'public' | 'user' | 'admin'

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthLevel
  }
  interface FastifyRequest {
    caller: Caller | null
  }
}

/** What route modules share. */
export interface ApiContext {
  opts: Required<Pick<ApiOptions, 'sessionTtlMs' | 'openSignup' | 'version'>> & ApiOptions
  store: Store
  loginLimiter: FailureLimiter
  /** The authenticated caller (routes with auth 'user' or 'admin' always have one). */
  caller (req: FastifyRequest): Caller
  /** Writes an audit entry for a mutating call. */
  audit (req: FastifyRequest, action: string, target?: string | null, details?: Record<string, unknown>): Promise<void>
}
