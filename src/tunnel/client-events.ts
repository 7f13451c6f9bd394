/** What the client reports: its events, a tunnel's status and a visitor's description. */
import type { MportError } from '../errors.js'

/** One tunnel as the client sees it: its public address once opened, whether it is up, its counters. */
export interface TunnelStatus {
  id: number
  name: string
  local: string
  /** Public address on the relay, once opened. */
  remoteHost?: string
  remotePort?: number
  url?: string
  /** Why the relay refused it, if it did. */
  error?: MportError
  /** Open on the relay right now (false while reconnecting). */
  online: boolean
  connections: number
  totalConnections: number
  bytesIn: number
  bytesOut: number
}

/** A visitor of a tunnel, as the relay described it in the visitor stream's header. */
export interface VisitorInfo { tunnel: string, remoteAddress: string, remotePort: number }

/** Bytes of one finished visitor connection: visitor → local service (in) and back (out). */
export interface VisitorStats { bytesIn: number, bytesOut: number, error?: Error }

/** The events a Client emits, with their arguments. */
export interface ClientEvents {
  connecting: [attempt: number]
  connected: [info: { resumed: boolean, trust: string, fingerprint: string, principal: string }]
  tunnel: [status: TunnelStatus]
  'tunnel-error': [status: TunnelStatus, err: MportError]
  disconnected: [err: Error]
  reconnecting: [info: { delayMs: number, attempt: number, error: Error }]
  connection: [info: VisitorInfo]
  'connection-closed': [info: VisitorInfo, stats: VisitorStats]
  /** A fatal error: the client stopped (wrong token, certificate mismatch, version mismatch). */
  error: [err: MportError]
  close: []
}
