/**
 * Leases: a client's public tunnels outlive its connection. A reconnecting client presents
 * its lease ticket and gets the same listeners (so the same public ports) back at once; a
 * stale connection still holding the lease is replaced. A lease whose client does not come
 * back within the grace period is released with its ports.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type net from 'node:net'
import type { BasicAuthChecker } from '../access/basic-auth.js'
import type { IpFilter } from '../access/cidr.js'
import type { ConnectionRateLimiter } from '../limits/rate-limiter.js'
import type { Principal } from './auth.js'
import type { LeaseTicket } from './messages.js'

/** One tunnel bound to a lease: a public TCP listener, or a name on the shared HTTP(S) ports. */
export interface PublicTunnel {
  /** The client's handle for the tunnel. */
  id: number
  name: string
  kind: 'tcp' | 'http' | 'tls'
  /** The public port (for http/tls tunnels, the shared port). */
  port: number
  /** tcp tunnels only. */
  server?: net.Server
  /** http/tls tunnels: the claimed subdomain label and/or custom hostname. */
  subdomain?: string
  hostname?: string
  filter: IpFilter
  auth: BasicAuthChecker | undefined
  /** New-connection rate per the plan and per visitor address; undefined when unlimited. */
  rate: ConnectionRateLimiter | undefined
  /** Visitor sockets currently open. */
  connections: Set<net.Socket>
  bytesIn: number
  bytesOut: number
  totalConnections: number
}

/** A client's hold on its tunnels, by id and ticket secret; `holder` is its connection while connected. */
export class Lease<Conn> {
  readonly id: string
  readonly principal: Principal
  readonly tunnels = new Map<number, PublicTunnel>()
  /** The client connection holding the lease, undefined while it is away. */
  holder: Conn | undefined
  readonly #secretHash: Buffer
  #expiry: NodeJS.Timeout | undefined

  private constructor (id: string, secretHash: Buffer, principal: Principal) {
    this.id = id
    this.#secretHash = secretHash
    this.principal = principal
  }

  /** A new lease, and the ticket (with its secret) to give the client. */
  static create<C> (principal: Principal): { lease: Lease<C>, ticket: LeaseTicket } {
    const id = randomBytes(12).toString('base64url')
    const secret = randomBytes(24).toString('base64url')
    return { lease: new Lease<C>(id, hash(secret), principal), ticket: { id, secret } }
  }

  /** A lease another relay of the cluster issued, taken over here with the same id and secret. */
  static adopt<C> (id: string, secretHash: Buffer, principal: Principal): Lease<C> {
    return new Lease<C>(id, secretHash, principal)
  }

  /** SHA-256 of the ticket's secret: what a cluster publishes so another node can adopt the lease. */
  get secretHash (): Buffer { return this.#secretHash }

  /** True when `ticket` proves this lease and was issued to the same principal. */
  matches (ticket: LeaseTicket, principal: Principal): boolean {
    const h = hash(ticket.secret)
    return ticket.id === this.id && principal.id === this.principal.id && timingSafeEqual(h, this.#secretHash)
  }

  /** The holder left: release everything after `graceMs` unless someone reclaims it. */
  detach (graceMs: number, release: () => void): void {
    this.holder = undefined
    clearTimeout(this.#expiry)
    this.#expiry = setTimeout(release, graceMs)
    this.#expiry.unref()
  }

  attach (holder: Conn): void {
    clearTimeout(this.#expiry)
    this.#expiry = undefined
    this.holder = holder
  }

  cancelExpiry (): void {
    clearTimeout(this.#expiry)
  }
}

/** SHA-256 of a ticket's secret. */
function hash (secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}
