/** What the client reports: its events, a tunnel's status and a visitor's description. */
import type { MportError } from '../errors.js'
import type { StrayFrame } from '../mux/stray.js'
import type { TransportName } from '../transport/transport-memory.js'

/** Where a tunnel is: see TunnelStatus.state. */
export type TunnelState = 'opening' | 'online' | 'waiting' | 'refused'

/** One tunnel as the client sees it: its public address once opened, whether it is up, its counters. */
export interface TunnelStatus {
  /** The tunnel's id in the control protocol (1, 2, … in the order of the client's tunnels; one added or replaced by setTunnels gets the next number). */
  id: number
  /** The tunnel's name (from the spec; default the local port). */
  name: string
  /** The local service, `host:port`. */
  local: string
  /** Public address on the relay, once opened. */
  remoteHost?: string
  /** Public port on the relay; for http/tls tunnels, the relay's shared port. */
  remotePort?: number
  /** What visitors use: `tcp://host:port`, or the `http://`, `https://` or `tls://` URL of a named tunnel. */
  url?: string
  /** Why the relay refused it, if it did. */
  error?: MportError
  /** Open on the relay right now (false while reconnecting). */
  online: boolean
  /**
   * `opening` (asked for, or reconnecting), `online`, `waiting` (refused because its address
   * is taken or held: asked for again with backoff) or `refused` (for good).
   */
  state: TunnelState
  /** While `waiting`: the address it waits for (`port 19755`, `name myapp`, `a free port`). */
  waitingFor?: string
  /** Visitor connections open now. */
  connections: number
  /** Visitor connections since the client started. */
  totalConnections: number
  /** Bytes from visitors to the local service, over finished connections. */
  bytesIn: number
  /** Bytes from the local service back to visitors, over finished connections. */
  bytesOut: number
  /** A load-balancing group tunnel: the relay's latest word on its group (members, and how many take visitors). */
  group?: { name: string, members: number, available: number }
  /** With a health check: the local service's last result, and why it failed. */
  health?: 'healthy' | 'unhealthy'
  healthDetail?: string
}

/**
 * A visitor of a tunnel, as the relay described it in the visitor stream's header: the tunnel's
 * name and the visitor's address and port; and the stream's id.
 */
export interface VisitorInfo {
  tunnel: string
  remoteAddress: string
  remotePort: number
  /** The visitor's mux stream id (the relay's logs name the same connection by it: `conn`). */
  conn?: number
}

/**
 * Bytes of one finished visitor connection: visitor → local service (in) and back (out), and
 * the error that ended it, if any.
 */
export interface VisitorStats { bytesIn: number, bytesOut: number, error?: Error }

/** The events a Client emits, with their arguments. */
export interface ClientEvents {
  /** Dialing the relay; `attempt` counts from 1 since the last successful connection. */
  connecting: [attempt: number]
  /**
   * Authenticated: `resumed` when the relay kept the old lease (same public ports), `trust` how
   * the certificate was accepted (a TrustMode), `principal` the name the token belongs to,
   * `transport` what carries the connection (tls, wss, ws), `proxy` the proxy it goes through,
   * `session` the relay's id of this connection (as its logs name it; absent from older relays).
   */
  connected: [info: { resumed: boolean, trust: string, fingerprint: string, principal: string, transport: TransportName, proxy?: string, session?: string }]
  /** Under `auto`: a faster transport than the `current` one works again; the next connection uses it (this one is not moved). */
  'faster-transport': [info: { transport: TransportName, current: TransportName }]
  /** A tunnel is open on the relay (again, after a reconnect); `status.url` is its public address. */
  tunnel: [status: TunnelStatus]
  /** The relay refused a tunnel (`err`, e.g. PortNotAllowedError); the other tunnels are unaffected. */
  'tunnel-error': [status: TunnelStatus, err: MportError]
  /**
   * The relay refused a tunnel because its address is taken or held (`err`: PortInUseError,
   * NameTakenError); it is asked for again in `delayMs` (`attempt` counts the refusals).
   */
  'tunnel-waiting': [status: TunnelStatus, err: MportError, retry: { attempt: number, delayMs: number }]
  /**
   * The relay refused visitors of a tunnel (`err`: VisitorFilteredError, RateLimitedError, a
   * plan limit); `count` of them since the last such event for this tunnel and code (the relay
   * sends at most one per tunnel and code per 10 s).
   */
  'visitor-refused': [status: TunnelStatus, err: MportError, count: number]
  /** The session dropped a frame from the relay for a stream that is not open (the session goes on). */
  stray: [frame: StrayFrame]
  /** Something went wrong that does not stop the client (the lease store could not be read or written). */
  warning: [err: Error]
  /** An established connection to the relay ended; `reconnecting` follows unless the client stops. */
  disconnected: [err: Error]
  /** Waiting `delayMs` (exponential backoff with full jitter) before the next attempt; `error` is why the last one failed. */
  reconnecting: [info: { delayMs: number, attempt: number, error: Error }]
  /** A visitor connected and the local service accepted the connection. */
  connection: [info: VisitorInfo]
  /**
   * A visitor connection finished, with its byte counts; also (with 0 bytes and a
   * LocalUnreachableError, without a `connection` before it) when the local service refused it.
   */
  'connection-closed': [info: VisitorInfo, stats: VisitorStats]
  /** A group tunnel's group changed (`status.group`: members, and how many take visitors). */
  'tunnel-group': [status: TunnelStatus]
  /** A group tunnel's health check changed its result (`status.health`, `status.healthDetail`); the relay is told. */
  health: [status: TunnelStatus]
  /** drain(): the relay sends this client no new visitors from now on; open connections may finish. */
  draining: []
  /** A fatal error: the client stopped (wrong token, certificate mismatch, version mismatch). */
  error: [err: MportError]
  /** close() has finished: the relay connection and every proxied connection are closed. */
  close: []
}
