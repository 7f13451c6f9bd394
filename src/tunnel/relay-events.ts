/**
 * What the relay reports: its events, the info objects they carry, and the helpers that build
 * those objects from a lease and one of its tunnels.
 */
import type { EventEmitter } from 'node:events'
import type net from 'node:net'
import type { MportError } from '../errors.js'
import type { Principal } from './auth.js'
import type { Visitor } from './http-front.js'
import type { Lease, PublicTunnel } from './lease.js'

/** A client connection the relay accepted: its id, who it authenticated as, from where, and whether it took up its old lease. */
export interface ClientInfo {
  id: string
  principal: Principal
  remoteAddress: string
  resumed: boolean
}

/** A tunnel as relay events name it: its lease (`client`), owner, id, name and public port. */
export interface TunnelInfo {
  client: string
  principal: string
  id: number
  name: string
  port: number
}

/** A visitor connection: its tunnel and the visitor's address. */
export interface ConnectionInfo {
  tunnel: TunnelInfo
  remoteAddress: string
  remotePort: number
}

/** Bytes of one finished visitor connection: visitor → service (in) and back (out). */
export interface ConnectionStats { bytesIn: number, bytesOut: number, error?: Error }

/** The events a Relay emits, with their arguments. */
export interface RelayEvents {
  listening: [address: net.AddressInfo]
  client: [info: ClientInfo]
  'client-closed': [info: ClientInfo, err?: Error]
  'tunnel-up': [info: TunnelInfo]
  'tunnel-down': [info: TunnelInfo, reason: string]
  connection: [info: ConnectionInfo]
  'connection-closed': [info: ConnectionInfo, stats: ConnectionStats]
  'auth-failed': [remoteAddress: string, err: MportError]
  /** A visitor was refused by a rate limit or the user's plan. */
  'visitor-refused': [info: ConnectionInfo, err: MportError]
  /** Something went wrong with one client or visitor; the relay goes on serving the rest. */
  warning: [err: Error]
}

/** Where the relay's parts report: the relay itself, which emits these events to its users. */
export type RelayEmitter = Pick<EventEmitter<RelayEvents>, 'emit'>

export function tunnelInfo (lease: Lease<unknown>, t: PublicTunnel): TunnelInfo {
  return { client: lease.id, principal: lease.principal.name, id: t.id, name: t.name, port: t.port }
}

export function connectionInfo (lease: Lease<unknown>, tunnel: PublicTunnel, visitor: Visitor): ConnectionInfo {
  return { tunnel: tunnelInfo(lease, tunnel), remoteAddress: visitor.addr || 'unknown', remotePort: visitor.port }
}
