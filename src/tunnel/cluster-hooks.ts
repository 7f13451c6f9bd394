/**
 * The seam between one relay and a cluster of relays (mport-relay's cluster/: a Redis routing
 * registry and links between nodes). The relay core stays single-node: it calls these hooks
 * where a cluster has to know or decide something, and a relay without them behaves as before.
 */
import type { MportError } from '../errors.js'
import type { Route } from '../http/names.js'
import type { FrontTarget } from './http-front.js'
import type { Lease, PublicTunnel } from './lease.js'
import type { LeaseTicket } from './messages.js'

/** A lease as the cluster publishes it: enough for another node to adopt it when its client moves there. */
export interface ClusterLease {
  id: string
  principalId: string
  /** SHA-256 of the ticket's secret (the secret itself never leaves the node). */
  secretHash: Buffer
}

/** What a relay asks of the cluster it is one node of (mport-relay's ClusterNode implements it). */
export interface ClusterHooks {
  /** Called once by the relay it is given to: how the cluster reaches this relay's tunnels. */
  attach (local: LocalTunnels): void
  /**
   * A tunnel is about to go up on this node: claim its port or names and count it against the
   * user's `maxTunnels` across the cluster. Throws PortInUseError, NameTakenError or
   * QuotaExceededError when another node holds them or the user's limit is reached.
   */
  claim (lease: Lease<unknown>, tunnel: PublicTunnel, maxTunnels: number | null): Promise<void>
  /** The tunnel is down on this node: its claims go (unless another node took them over). */
  release (lease: Lease<unknown>, tunnel: PublicTunnel): void
  /** About to bind `port` for a local tunnel: the cluster frees its forwarding listener on it, if it has one. */
  freePort (port: number): Promise<void>
  /** True when another node holds `port` (a tunnel choosing a free port skips it). */
  heldElsewhere (port: number): boolean
  /** A lease was taken up on this node (new, resumed or adopted). */
  leaseHeld (lease: ClusterLease): void
  /** A lease was released on this node. */
  leaseReleased (lease: ClusterLease): void
  /** A ticket this node does not know: the lease as another node published it, to adopt. */
  findLease (ticket: LeaseTicket): Promise<ClusterLease | undefined>
  /** No local tunnel has this name: a target forwarding to the node that holds it (cached from `findTarget`). */
  cachedTarget (route: Route): FrontTarget | undefined
  /** No local tunnel has this name: asks the registry which node holds it. */
  findTarget (route: Route): Promise<FrontTarget | undefined>
}

/** What the cluster may do on this relay: reach a local tunnel for a visitor another node forwarded. */
export interface LocalTunnels {
  /** The front target of a tunnel held here (by lease id and tunnel id), undefined when it is not (any more). */
  target (leaseId: string, tunnelId: number): FrontTarget | undefined
  /** Every tunnel held here, to publish again (after the registry lost its state). */
  held (): Iterable<{ lease: Lease<unknown>, tunnel: PublicTunnel }>
  /** Every lease held here (connected or within its grace), to publish again. */
  leases (): Iterable<ClusterLease>
  /** Closes one tunnel held here and tells its client why (another node took its port or name). */
  close (leaseId: string, tunnelId: number, err: MportError): void
  /** Another node took the lease over (its client moved there): its tunnels close here; resolves once their listeners have. */
  drop (leaseId: string, reason: string): Promise<void>
}

