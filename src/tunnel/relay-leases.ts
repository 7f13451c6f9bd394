/**
 * The relay's lease table: every lease by id, whether its client is connected or away. A client
 * takes up a lease in its handshake (its old one back when its ticket proves it, a new one
 * otherwise); a lease whose client stays away past the grace period is released by the caller's
 * hook. The tunnels on a lease are the tunnel registry's (relay-tunnels.ts).
 */
import type { Principal } from './auth.js'
import type { ClusterLease } from './cluster-hooks.js'
import { Lease } from './lease.js'
import type { LeaseTicket } from './messages.js'

/** A lease a client has just taken up, and the ticket to send it in the welcome. */
export interface TakenLease<Conn> {
  lease: Lease<Conn>
  ticket: LeaseTicket
  /** True when the ticket proved an existing lease: its tunnels are still there. */
  resumed: boolean
}

export class LeaseTable<Conn> {
  readonly #leases = new Map<string, Lease<Conn>>()

  /** The lease a ticket proves for `principal`, or a new one (then in the table) when it proves none. */
  take (ticket: LeaseTicket | undefined, principal: Principal): TakenLease<Conn> {
    const held = ticket === undefined ? undefined : this.#leases.get(ticket.id)
    if (held !== undefined && ticket !== undefined && held.matches(ticket, principal)) return { lease: held, ticket, resumed: true }
    const created = Lease.create<Conn>(principal)
    this.#leases.set(created.lease.id, created.lease)
    return { ...created, resumed: false }
  }

  /** Takes over a lease another node of the cluster issued (its client moved here); take() then finds it. */
  adopt (found: ClusterLease, principal: Principal): void {
    if (!this.#leases.has(found.id)) this.#leases.set(found.id, Lease.adopt<Conn>(found.id, found.secretHash, principal))
  }

  get (id: string): Lease<Conn> | undefined {
    return this.#leases.get(id)
  }

  values (): IterableIterator<Lease<Conn>> {
    return this.#leases.values()
  }

  /** The leases of one user. */
  * of (principalId: string): Generator<Lease<Conn>> {
    for (const lease of this.#leases.values()) if (lease.principal.id === principalId) yield lease
  }

  /** The holder left: `release` runs after `graceMs` unless a client takes the lease up again. */
  detach (lease: Lease<Conn>, graceMs: number, release: () => void): void {
    lease.detach(graceMs, release)
  }

  /** No lease expires from now on (the relay is shutting down and releases them all itself). */
  cancelExpiries (): void {
    for (const lease of this.#leases.values()) lease.cancelExpiry()
  }

  /** Forgets a lease whose tunnels have been closed. */
  delete (lease: Lease<Conn>): void {
    lease.cancelExpiry()
    this.#leases.delete(lease.id)
  }
}
