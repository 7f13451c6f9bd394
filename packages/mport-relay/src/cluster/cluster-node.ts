/**
 * One relay as a node of a cluster: the ClusterHooks the relay core calls, over the Redis
 * registry (registry.ts) and the links to the other nodes (node-link.ts).
 *
 * - A tunnel going up here claims its port or names, and a place in its user's tunnel count,
 *   in one script; a refusal is the same typed error a single relay gives.
 * - Every `refresh` (a third of the TTL) the node writes its keys again: its link address,
 *   its leases and its tunnels' claims. A key another node took over (the client moved there)
 *   closes the tunnel or lease here; a key Redis lost is written back.
 * - The same round lists the ports other nodes hold and opens a forwarding listener for each
 *   on this node's address (port-mirrors.ts); names are looked up when a visitor asks for one.
 */
import { randomBytes } from 'node:crypto'
import type net from 'node:net'
import os from 'node:os'
import type { MuxStream, Session } from 'mport/mux'
import type { ClusterHooks, ClusterLease, FrontTarget, Lease, LocalTunnels, PublicTunnel } from 'mport/relay'
import type { Route } from 'mport/http'
import { NameTakenError, PortInUseError, QuotaExceededError, UnavailableError } from 'mport/errors'
import { forwardTo, remoteTarget, serveForwarded } from './forwarding.js'
import { NodeLinks, type ForwardHeader } from './node-link.js'
import { PortMirrors } from './port-mirrors.js'
import { RedisRegistry, type RouteRecord, type TunnelClaim } from './registry.js'

/** Where a node finds the registry and the other nodes, and what it proves to them. */
export interface ClusterNodeOptions {
  /** `redis://…`: the shared routing registry. */
  redis: string
  /** The shared secret nodes prove to each other on their links. */
  clusterKey: string
  /** This node's id (default: host name and a random suffix, new each start). */
  node?: string
  /** The link listener, and the address other nodes dial it at (`host:port`; default: `advertiseHost` and the bound port). */
  link: { host: string, port: number, advertiseHost: string }
  /** Certificate and key of the link listener. */
  cert: string | Buffer
  key: string | Buffer
  /** Address this node's tcp tunnels bind to: forwarding listeners for other nodes' ports bind it too. */
  bindHost: string
  /** How long a key outlives its holder (default 15 s); refreshed every third of it. */
  ttlMs?: number
  /** How long a lease outlives its node (the relay's lease grace). */
  leaseTtlMs: number
  /** Redis key prefix (default `mport:`). */
  prefix?: string
  onWarning (err: Error): void
}

const LEASE_MOVED = 'its client moved to another relay of the cluster'

/** How long a name looked up in the registry is trusted before it is asked again. */
const TARGET_CACHE_MS = 2_000

/** A relay as one node of a cluster: claims, leases and forwarding through the Redis registry and the node links. */
export class ClusterNode implements ClusterHooks {
  readonly id: string
  readonly registry: RedisRegistry
  readonly #o: ClusterNodeOptions
  readonly #links: NodeLinks
  readonly #mirrors: PortMirrors
  #local: LocalTunnels | undefined
  readonly #claims = new Map<PublicTunnel, TunnelClaim>()
  readonly #leases = new Map<string, ClusterLease>()
  /** Ports other nodes hold, as the last round listed them. */
  #elsewhere = new Map<number, RouteRecord>()
  readonly #targets = new Map<string, { target: FrontTarget, record: RouteRecord, at: number }>()
  #linkAddress = ''
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #registryDown = false
  #closed = false

  constructor (o: ClusterNodeOptions) {
    this.#o = o
    this.id = o.node ?? `${os.hostname()}-${randomBytes(3).toString('hex')}`
    this.registry = new RedisRegistry({ url: o.redis, ttlMs: o.ttlMs ?? 15_000, ...(o.prefix !== undefined ? { prefix: o.prefix } : {}), onError: err => this.#registryError(err) })
    this.#links = new NodeLinks({
      node: this.id,
      clusterKey: o.clusterKey,
      cert: o.cert,
      key: o.key,
      host: o.link.host,
      port: o.link.port,
      onStream: (header, stream) => this.#inbound(header, stream),
      onWarning: err => o.onWarning(err),
    })
    this.#mirrors = new PortMirrors(o.bindHost, (port, socket) => this.#forwardPort(port, socket))
  }

  /** Where other nodes reach this one's link (after start). */
  get linkAddress (): string { return this.#linkAddress }

  /** Opens the link listener and announces this node; the refresh round starts. */
  async start (): Promise<void> {
    const addr = await this.#links.listen()
    const host = this.#o.link.advertiseHost
    this.#linkAddress = `${host.includes(':') ? `[${host}]` : host}:${addr.port}`
    await this.registry.announce(this.id, this.#linkAddress).catch((err: Error) => this.#registryError(err))
    const every = Math.max(100, Math.floor(this.registry.ttlMs / 3))
    this.#timer = setInterval(() => { void this.refresh() }, every)
    this.#timer.unref()
    await this.refresh()
  }

  attach (local: LocalTunnels): void {
    this.#local = local
  }

  // ---- Tunnels ----

  async claim (lease: Lease<unknown>, tunnel: PublicTunnel, maxTunnels: number | null): Promise<void> {
    const claim: TunnelClaim = { routes: routesOf(tunnel), record: this.#record(lease, tunnel), maxTunnels }
    let result
    try {
      result = await this.registry.claim(claim)
    } catch (err) {
      throw new UnavailableError(`the cluster registry (${(err as Error).message})`)
    }
    if (result.ok) {
      this.#claims.set(tunnel, claim)
      return
    }
    if (result.reason === 'limit') {
      const max = maxTunnels ?? 0
      throw new QuotaExceededError('maxTunnels', max, `your plan allows ${max} tunnel${max === 1 ? '' : 's'} (counted on every relay of the cluster)`)
    }
    if (tunnel.kind === 'tcp') throw new PortInUseError(tunnel.port, `port ${tunnel.port} is already in use on another relay of the cluster (${result.node})`)
    throw new NameTakenError(result.route.slice(result.route.indexOf(':') + 1), `a tunnel on another relay of the cluster (${result.node})`)
  }

  release (_lease: Lease<unknown>, tunnel: PublicTunnel): void {
    const claim = this.#claims.get(tunnel)
    if (claim === undefined) return
    this.#claims.delete(tunnel)
    this.registry.release(claim).catch((err: Error) => this.#registryError(err))
  }

  async freePort (port: number): Promise<void> {
    await this.#mirrors.close(port)
  }

  heldElsewhere (port: number): boolean {
    return this.#elsewhere.has(port)
  }

  // ---- Leases ----

  leaseHeld (lease: ClusterLease): void {
    this.#leases.set(lease.id, lease)
    // The client is here now: the lease is this node's, whoever held it before.
    this.registry.holdLease(lease.id, this.#leaseRecord(lease), this.#o.leaseTtlMs, true).catch((err: Error) => this.#registryError(err))
  }

  leaseReleased (lease: ClusterLease): void {
    this.#leases.delete(lease.id)
    this.registry.releaseLease(lease.id, this.id).catch((err: Error) => this.#registryError(err))
  }

  async findLease (ticket: { id: string }): Promise<ClusterLease | undefined> {
    const rec = await this.registry.lease(ticket.id)
    if (rec === undefined) return undefined
    // The old node may still hold it (the client lost only its connection): it lets go first, so
    // the ports are free when the client asks for them again here, even on a shared address.
    if (rec.node !== this.id) {
      const session = await this.#session(rec.node)
      if (session !== undefined) await NodeLinks.handOff(session, ticket.id)
    }
    return { id: ticket.id, principalId: rec.principal, secretHash: Buffer.from(rec.secretHash, 'hex') }
  }

  // ---- Names held elsewhere ----

  cachedTarget (route: Route): FrontTarget | undefined {
    const key = routeKey(route)
    const hit = key === undefined ? undefined : this.#targets.get(key)
    return hit !== undefined && Date.now() - hit.at < TARGET_CACHE_MS ? hit.target : undefined
  }

  async findTarget (route: Route): Promise<FrontTarget | undefined> {
    const key = routeKey(route)
    if (key === undefined) return undefined
    const record = await this.registry.route(key).catch((err: Error) => { this.#registryError(err); return undefined })
    if (record === undefined || record.node === this.id) return undefined
    const session = await this.#session(record.node)
    if (session === undefined) return undefined
    const cached = this.#targets.get(key)
    // The same object while the record is the same: a keep-alive connection stays on its tunnel.
    const target = cached !== undefined && sameHolder(cached.record, record) ? cached.target : remoteTarget(record, () => this.#links.established(record.node))
    this.#targets.set(key, { target, record, at: Date.now() })
    return target
  }

  // ---- The round ----

  /** Writes this node's keys again, drops what another node took over, and follows other nodes' ports. Rounds never overlap. */
  async refresh (): Promise<void> {
    this.#round ??= this.#refresh().catch((err: Error) => this.#registryError(err)).finally(() => { this.#round = undefined })
    await this.#round
  }

  async #refresh (): Promise<void> {
    if (this.#closed) return
    await this.registry.announce(this.id, this.#linkAddress)
    const local = this.#local
    if (local !== undefined) {
      for (const lease of local.leases()) {
        this.#leases.set(lease.id, lease)
        if (!await this.registry.holdLease(lease.id, this.#leaseRecord(lease), this.#o.leaseTtlMs, false)) {
          this.#leases.delete(lease.id)
          await local.drop(lease.id, LEASE_MOVED)
        }
      }
      for (const { lease, tunnel } of [...local.held()]) {
        const claim = this.#claims.get(tunnel)
        if (claim === undefined) continue
        if (!await this.registry.refresh(claim)) {
          this.#claims.delete(tunnel) // another node or lease holds it now; nothing of it is ours to delete
          local.close(lease.id, tunnel.id, tunnel.kind === 'tcp' ? new PortInUseError(tunnel.port, `port ${tunnel.port} was taken over on another relay of the cluster`) : new NameTakenError(tunnel.subdomain ?? tunnel.hostname ?? tunnel.name, 'a tunnel on another relay of the cluster'))
        }
      }
    }
    this.#registryRecovered()
    await this.#followPorts()
    const now = Date.now()
    for (const [k, v] of this.#targets) if (now - v.at >= TARGET_CACHE_MS) this.#targets.delete(k)
  }

  /** Forwarding listeners for every port another node holds, none for the others. */
  async #followPorts (): Promise<void> {
    const all = await this.registry.ports()
    const elsewhere = new Map<number, RouteRecord>()
    for (const [port, rec] of all) if (rec.node !== this.id) elsewhere.set(port, rec)
    this.#elsewhere = elsewhere
    for (const port of this.#mirrors.ports()) if (!elsewhere.has(port)) await this.#mirrors.close(port)
    const mine = new Set([...this.#claims.values()].filter(c => c.record.kind === 'tcp').map(c => Number(c.routes[0]!.slice('port:'.length))))
    for (const port of elsewhere.keys()) if (!mine.has(port)) await this.#mirrors.open(port)
  }

  /** A stream from another node: a visitor for a tunnel here, or a lease whose client moved there. */
  #inbound (header: ForwardHeader, stream: MuxStream): void {
    const local = this.#local
    if (local === undefined) { stream.destroy(); return }
    if (header.op !== 'drop') { serveForwarded(local, header, stream); return }
    this.#leases.delete(header.lease)
    local.drop(header.lease, LEASE_MOVED).then(() => stream.end(), () => stream.destroy())
    stream.resume()
  }

  #forwardPort (port: number, socket: net.Socket): void {
    socket.on('error', () => {})
    const record = this.#elsewhere.get(port)
    if (record === undefined) { socket.resetAndDestroy(); return }
    socket.pause()
    const visitor = { addr: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, daddr: socket.localAddress ?? '', dport: socket.localPort ?? 0 }
    this.#session(record.node).then(session => {
      if (session === undefined || socket.destroyed) { socket.resetAndDestroy(); return }
      forwardTo(session, record, visitor, socket)
      socket.resume()
    }, () => socket.resetAndDestroy())
  }

  /** The link to `node`, dialing it when needed; undefined when the node is gone from the registry or unreachable. */
  async #session (node: string): Promise<Session | undefined> {
    const up = this.#links.established(node)
    if (up !== undefined) return up
    const link = await this.registry.nodeLink(node).catch(() => undefined)
    if (link === undefined) return undefined
    try {
      return await this.#links.session(node, link)
    } catch (err) {
      this.#o.onWarning(err as Error)
      return undefined
    }
  }

  #record (lease: Lease<unknown>, t: PublicTunnel): RouteRecord {
    const rec: RouteRecord = { node: this.id, lease: lease.id, tunnel: t.id, principal: lease.principal.id, kind: t.kind }
    const rules = t.filter.rules
    if (rules.allow.length > 0) rec.allow = rules.allow
    if (rules.deny.length > 0) rec.deny = rules.deny
    if (t.auth !== undefined) rec.auth = [...t.auth.stored]
    return rec
  }

  #leaseRecord (lease: ClusterLease): { node: string, principal: string, secretHash: string } {
    return { node: this.id, principal: lease.principalId, secretHash: lease.secretHash.toString('hex') }
  }

  #registryError (err: Error): void {
    if (this.#registryDown) return // one warning per outage
    this.#registryDown = true
    this.#o.onWarning(err)
  }

  #registryRecovered (): void {
    this.#registryDown = false
  }

  /** Leaves the cluster: this node's keys go at once (not after their TTL), its links and listeners close. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    await this.#round
    await Promise.all([...this.#claims.values()].map(c => this.registry.release(c).catch(() => {})))
    this.#claims.clear()
    await Promise.all([...this.#leases.keys()].map(id => this.registry.releaseLease(id, this.id).catch(() => {})))
    await this.registry.forget(this.id).catch(() => {})
    await this.#mirrors.closeAll()
    await this.#links.close()
    await this.registry.close()
  }
}

/** The registry's route keys of a tunnel: its port, or its subdomain and/or hostname. */
function routesOf (t: PublicTunnel): string[] {
  if (t.kind === 'tcp') return [`port:${t.port}`]
  const out: string[] = []
  if (t.subdomain !== undefined) out.push(`sub:${t.subdomain}`)
  if (t.hostname !== undefined) out.push(`host:${t.hostname}`)
  return out
}

function routeKey (route: Route): string | undefined {
  if (route.kind === 'subdomain') return `sub:${route.label}`
  if (route.kind === 'hostname') return `host:${route.hostname}`
  return undefined
}

function sameHolder (a: RouteRecord, b: RouteRecord): boolean {
  return a.node === b.node && a.lease === b.lease && a.tunnel === b.tunnel
}
