/**
 * A read-only view of one visitor connection of an http tunnel, handed to ClientOptions.onHttpVisitor
 * (the inspector records exchanges from it). Only plaintext tunnels get one: a `tls` tunnel's
 * bytes are the visitor's own encryption.
 */
import type { Readable } from 'node:stream'
import type { VisitorInfo } from './client-events.js'

/**
 * One http visitor connection, both directions. The proxy already moves the bytes: a tap adds
 * 'data' (and 'end'/'close') listeners only, never pauses, reads or writes, and copies what it
 * keeps (a mux stream's buffers are reused once the local socket took them).
 */
export interface HttpVisitorTap {
  /** The tunnel's name and the visitor's address. */
  readonly info: VisitorInfo
  /** The local service, `host:port` (where a replay goes). */
  readonly local: string
  /** Bytes from the visitor (through the relay) towards the local service. */
  readonly fromVisitor: Readable
  /** Bytes from the local service back to the visitor. */
  readonly fromLocal: Readable
}
