/**
 * What the relay reports: its events, the info objects they carry, and the helpers that build
 * those objects from a lease and one of its tunnels.
 */
import type { EventEmitter } from 'node:events'
import type net from 'node:net'
import type { MportError } from '../errors.js'
import type { ExchangeRecord } from '../http/exchange-meter.js'
import type { StrayFrame } from '../mux/stray.js'
import type { Principal } from './auth.js'
import type { Visitor } from './http-front.js'
import type { Lease, PublicTunnel } from './lease.js'

/** A client connection the relay accepted: its id, who it authenticated as, from where, and whether it took up its old lease. */
export interface ClientInfo {
  /** This connection's id (`c1`, `c2`, …), unique within the relay process. */
  id: string
  /** Who the client's token belongs to. */
  principal: Principal
  /** The client's IP address, as the relay's socket sees it. */
  remoteAddress: string
  /** True when the client took up its lease from before a reconnect (its tunnels keep their ports). */
  resumed: boolean
  /** The client's software as its hello names it (`mport-connect/0.1.0`). */
  agent: string
}

/** A tunnel as relay events name it: its lease (`client`), owner, id, name and public port. */
export interface TunnelInfo {
  /** The id of the lease that holds the tunnel; stable across the client's reconnects. */
  client: string
  /** The name of the tunnel's owner. */
  principal: string
  /** The tunnel's id within its lease. */
  id: number
  name: string
  /** The public TCP port; 0 for http/tls tunnels, which are reached by name on the shared ports. */
  port: number
  /** The client connection holding the lease now (its ClientInfo.id, the logs' `session`); absent while the client is away. */
  session?: string
}

/** A tunnel a client asked for and did not get: its lease, owner, name and kind. */
export interface RefusedTunnelInfo {
  /** The id of the lease the client holds. */
  client: string
  /** The name of the tunnel's would-be owner. */
  principal: string
  name: string
  kind: 'tcp' | 'http' | 'tls'
}

/** A visitor connection: its tunnel and the visitor's address. */
export interface ConnectionInfo {
  tunnel: TunnelInfo
  /** The visitor's IP address (`unknown` if the socket did not say). */
  remoteAddress: string
  remotePort: number
  /** The visitor's mux stream in the client's session (the same id on the client side, the logs' `conn`); absent when refused before one was opened. */
  conn?: number
}

/** Bytes of one finished visitor connection: visitor → service (in) and back (out). */
export interface ConnectionStats { bytesIn: number, bytesOut: number, error?: Error }

/** The events a Relay emits, with their arguments. */
export interface RelayEvents {
  /** The control listener is bound; `address.port` is the actual port when 0 was asked for. */
  listening: [address: net.AddressInfo]
  /** A client authenticated and was welcomed. */
  client: [info: ClientInfo]
  /**
   * A client connection ended, with the session's error if it did not end cleanly; its lease
   * waits for a reconnect for the lease grace period before its tunnels close.
   */
  'client-closed': [info: ClientInfo, err?: Error]
  /** A tunnel was opened (or confirmed again for a resumed lease). */
  'tunnel-up': [info: TunnelInfo]
  /** A tunnel closed: by its client, on revocation, when its lease expired or the relay stops (`reason` says which). */
  'tunnel-down': [info: TunnelInfo, reason: string]
  /** A visitor connected to a tunnel and is being forwarded to its client. */
  connection: [info: ConnectionInfo]
  /** A visitor connection finished, with its byte counts. */
  'connection-closed': [info: ConnectionInfo, stats: ConnectionStats]
  /** An exchange on an http tunnel finished: method, path (no query), status, duration, sizes. Read only while something listens. */
  'http-exchange': [info: ConnectionInfo, exchange: ExchangeRecord]
  /** A client from `remoteAddress` failed to authenticate (counted towards its failure limit). */
  'auth-failed': [remoteAddress: string, err: MportError]
  /**
   * A connection to the control port failed before authentication for another reason than a
   * wrong token: a TLS handshake error or timeout, no `mport/1` ALPN, a bad or late hello, too
   * many failed logins from its address, or the client left.
   */
  'handshake-failed': [remoteAddress: string, err: Error]
  /** A client's request to open a tunnel was refused (its plan, a name or port taken, a bad request); the client was told why. */
  'tunnel-refused': [info: RefusedTunnelInfo, err: MportError]
  /** A user's monthly transfer quota ran out while they held tunnels: their live connections were cut and their tunnels closed (once per cut). */
  'quota-exceeded': [principal: string, err: MportError]
  /** A ping on a client's session was answered (keepalive pings every keepalive interval): its round-trip time in ms. */
  rtt: [client: ClientInfo, rttMs: number]
  /** A visitor was refused by a rate limit or the user's plan. */
  'visitor-refused': [info: ConnectionInfo, err: MportError]
  /** A client's session dropped a frame for a stream that is not open (the session goes on; see PROTOCOL.md). */
  stray: [client: ClientInfo, frame: StrayFrame]
  /** Something went wrong with one client or visitor; the relay goes on serving the rest. */
  warning: [err: Error]
}

/** Where the relay's parts report: the relay itself, which emits these events to its users. */
export type RelayEmitter = Pick<EventEmitter<RelayEvents>, 'emit'>

/** A lease's holder as these helpers see it: the client connection, named by its id. */
type SessionHolder = { readonly info?: { readonly id: string } } | undefined

export function tunnelInfo<C extends SessionHolder> (lease: Lease<C>, t: PublicTunnel): TunnelInfo {
  const session = lease.holder?.info?.id
  return { client: lease.id, principal: lease.principal.name, id: t.id, name: t.name, port: t.port, ...(session !== undefined ? { session } : {}) }
}

export function connectionInfo<C extends SessionHolder> (lease: Lease<C>, tunnel: PublicTunnel, visitor: Visitor, conn?: number): ConnectionInfo {
  return { tunnel: tunnelInfo(lease, tunnel), remoteAddress: visitor.addr || 'unknown', remotePort: visitor.port, ...(conn !== undefined ? { conn } : {}) }
}
