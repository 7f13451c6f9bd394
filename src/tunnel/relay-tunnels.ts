/**
 * The relay's tunnel registry: opening a client's tunnels (a public TCP port bound in the
 * relay's range, or a subdomain or hostname claimed on the shared HTTP(S) ports), the URLs
 * clients are told, and closing tunnels again: by the client, by the operator, when a quota
 * runs out, or with their lease.
 */
import type net from 'node:net'
import { BasicAuthChecker, hashPassword, parseBasicAuthValue } from '../access/basic-auth.js'
import { IpFilter } from '../access/cidr.js'
import type { Route } from '../http/names.js'
import { DuplicateTunnelError, InvalidMessageError, MportError, NameTakenError, PortInUseError, PortNotAllowedError, ReservedNameError, TunnelLimitError } from '../errors.js'
import type { Account, Accounts } from './accounts.js'
import type { ControlChannel } from './control.js'
import type { FrontTarget } from './http-front.js'
import type { Lease, PublicTunnel } from './lease.js'
import type { ClientMessage, OpenRequest, RelayMessage } from './messages.js'
import { bindPublicPort } from './ports.js'
import { tunnelInfo, type RelayEmitter } from './relay-events.js'
import type { LeaseTable } from './relay-leases.js'
import type { ResolvedRelayOptions } from './relay-options.js'
import { RouteTable } from './routes.js'
import { TunnelGroup, TunnelGroups, type GroupAddress, type GroupInfo } from './tunnel-group.js'
import type { TunnelHolder, VisitorForwarder } from './visitor-forwarder.js'

/** What the registry uses of the client connection holding a lease. */
export interface TunnelOwner extends TunnelHolder {
  readonly control: ControlChannel<ClientMessage>
  readonly lease: Lease<TunnelOwner>
  readonly account: Account
  /** The connection's id and address, to name it to another client of the same user. */
  readonly info: { readonly id: string, readonly remoteAddress: string }
  /** The client's software, from its hello. */
  readonly agent?: string
}

/** The shared HTTP(S) ports' addresses, once they listen. */
export interface SharedPorts {
  http: net.AddressInfo | undefined
  https: net.AddressInfo | undefined
}

export type OpenedMessage = Extract<RelayMessage, { t: 'opened' }>

export interface TunnelRegistryOptions {
  opts: Pick<ResolvedRelayOptions, 'bindHost' | 'portRange' | 'maxTunnelsPerClient' | 'publicHost' | 'httpPort' | 'httpsCert' | 'policy' | 'domain' | 'cluster'>
  leases: LeaseTable<TunnelOwner>
  accounts: Accounts
  visitors: VisitorForwarder
  sharedPorts (): SharedPorts
  events: RelayEmitter
}

export class TunnelRegistry {
  readonly #opts: TunnelRegistryOptions['opts']
  readonly #leases: LeaseTable<TunnelOwner>
  readonly #accounts: Accounts
  readonly #visitors: VisitorForwarder
  readonly #sharedPorts: () => SharedPorts
  readonly #events: RelayEmitter
  readonly #routes: RouteTable<FrontTarget>
  /** Load-balancing groups (tunnel-group.ts): they hold their ports and names, not a lease. */
  readonly #groups = new TunnelGroups<TunnelOwner>()
  /** The group of each member tunnel (it holds the public port or names; the tunnel's `server` is unset). */
  readonly #groupOf = new WeakMap<PublicTunnel, TunnelGroup<TunnelOwner>>()
  #stopped = false

  constructor (o: TunnelRegistryOptions) {
    this.#opts = o.opts
    this.#leases = o.leases
    this.#accounts = o.accounts
    this.#visitors = o.visitors
    this.#sharedPorts = o.sharedPorts
    this.#events = o.events
    this.#routes = new RouteTable(o.opts.domain)
  }

  /** The load-balancing group a tunnel is a member of, as listings show it. */
  groupInfo (t: PublicTunnel): GroupInfo | undefined {
    return this.#groupOf.get(t)?.info()
  }

  /** Where the shared HTTP(S) front sends a visitor for a name. */
  lookup (route: Route): FrontTarget | undefined {
    return this.#routes.lookup(route)
  }

  /** Opens no tunnel from now on (the relay is shutting down). */
  stop (): void {
    this.#stopped = true
  }

  /** Stops accepting visitors on every tcp tunnel's public port. */
  closeListeners (): void {
    for (const lease of this.#leases.values()) for (const t of lease.tunnels.values()) (t.server ?? this.#groupOf.get(t)?.address.server)?.close()
  }

  /** Opens the tunnel a client asks for and answers with `opened` or `closed`. */
  async open (conn: TunnelOwner, msg: OpenRequest): Promise<void> {
    const lease = conn.lease
    const kind = msg.kind ?? 'tcp'
    const existing = lease.tunnels.get(msg.id)
    if (existing !== undefined && existing.name === msg.name && existing.kind === kind &&
      (msg.port === 0 || msg.port === existing.port) && (msg.subdomain === undefined || msg.subdomain.toLowerCase() === existing.subdomain)) {
      // Reclaimed after a reconnect: the same listener or name, the same port.
      conn.control.send(this.opened(existing))
      const group = this.#groupOf.get(existing)
      const member = group?.member(lease, existing.id)
      if (member !== undefined) {
        // A new connection starts afresh: not draining, healthy until its client reports otherwise.
        member.draining = false
        member.healthy = true
        group!.notify()
      }
      this.#events.emit('tunnel-up', tunnelInfo(lease, existing))
      return
    }
    if (existing !== undefined) this.close(lease, msg.id, 'replaced')
    let tunnel: PublicTunnel | undefined
    try {
      for (const t of lease.tunnels.values()) if (t.name === msg.name) throw new DuplicateTunnelError(msg.name)
      if (lease.tunnels.size >= this.#opts.maxTunnelsPerClient) throw new TunnelLimitError(this.#opts.maxTunnelsPerClient)
      conn.account.checkTunnel()
      const filter = new IpFilter({ allow: msg.allowIp ?? [], deny: msg.denyIp ?? [] })
      if (msg.basicAuth !== undefined && kind !== 'http') throw new InvalidMessageError('basic auth needs an http tunnel')
      const auth = msg.basicAuth === undefined ? undefined : new BasicAuthChecker(hashPassword(...userPass(msg.basicAuth)))
      tunnel = { id: msg.id, name: msg.name, kind, port: 0, filter, auth, rate: conn.account.rateLimiter(), connections: new Set(), bytesIn: 0, bytesOut: 0, totalConnections: 0 }
      const t = tunnel
      if (msg.group !== undefined) await this.#joinGroup(lease, t, { ...msg, group: msg.group })
      else {
        if (kind === 'tcp') {
          t.server = await this.#bindPort(lease, msg.port, socket => this.#visitors.accept(lease, t, socket))
          t.port = (t.server.address() as net.AddressInfo).port
        } else this.#claimNames(lease, lease, this.#visitors.frontTarget(lease, t), t, msg)
        // One of several relays: the port or names, and the user's tunnel count, across all of
        // them. A load-balancing group is one node's (docs/CLUSTER.md): its members are not claimed.
        await this.#opts.cluster?.claim(lease, t, conn.account.limits.maxTunnels)
      }
      if (this.#stopped || lease.holder !== conn) {
        this.#release(lease, t)
        return
      }
      lease.tunnels.set(msg.id, t)
      this.#groupOf.get(t)?.add(lease, t)
      conn.account.tunnels++
      this.#opts.policy?.tunnelUp(lease.principal, t.name)
      conn.control.send(this.opened(t))
      this.#events.emit('tunnel-up', tunnelInfo(lease, t))
    } catch (err) {
      if (tunnel !== undefined) this.#release(lease, tunnel)
      if (!(err instanceof MportError)) this.#events.emit('warning', err as Error)
      const e = err instanceof MportError ? err : new InvalidMessageError(`cannot open tunnel: ${(err as Error).message}`)
      conn.control.send({ t: 'closed', id: msg.id, code: e.code, message: e.message })
      this.#events.emit('tunnel-refused', { client: lease.id, principal: lease.principal.name, name: msg.name, kind }, e)
    }
  }

  /** Binds a tcp tunnel's (or group's) public port: the one asked for, or a free one in the range; never one another user reserved. */
  async #bindPort (lease: Lease<TunnelOwner>, requested: number, onVisitor: (socket: net.Socket) => void): Promise<net.Server> {
    const owner = lease.principal.id
    const reservedByOther = (port: number): boolean => { const u = this.#accounts.reservedBy('port', port); return u !== undefined && u !== owner }
    if (requested !== 0 && reservedByOther(requested)) throw new PortInUseError(requested, `port ${requested} is reserved by another user`)
    const cluster = this.#opts.cluster
    if (requested !== 0) await cluster?.freePort(requested) // this node's forwarding listener for it, if any
    const skip = cluster === undefined ? reservedByOther : (port: number): boolean => reservedByOther(port) || cluster.heldElsewhere(port)
    try {
      return await bindPublicPort(this.#opts.bindHost, requested, this.#opts.portRange, onVisitor, skip)
    } catch (err) {
      const by = err instanceof PortInUseError && requested !== 0 ? this.#heldBy(lease, x => x.kind === 'tcp' && x.port === requested) : undefined
      throw by === undefined ? err : new PortInUseError(requested, `port ${requested} is already in use by ${by}`)
    }
  }

  /**
   * Makes `t` a member of the group `msg` names: founds it (binding its port or claiming its
   * names, which the group then holds) or joins it (key and address checked). The member is
   * added once the tunnel is up.
   */
  async #joinGroup (lease: Lease<TunnelOwner>, t: PublicTunnel, msg: OpenRequest & { group: string }): Promise<void> {
    const scope = TunnelGroups.scopeOf(msg, lease.principal.id)
    let group = this.#groups.get(scope)
    if (group === undefined) {
      const address: GroupAddress = { kind: t.kind, port: 0, filter: t.filter, auth: t.auth }
      const founded = new TunnelGroup<TunnelOwner>(scope, msg.group, msg.groupPolicy ?? 'roundrobin', msg.groupKey, address)
      if (t.kind === 'tcp') {
        address.server = await this.#bindPort(lease, msg.port, socket => this.#visitors.acceptGroup(founded, socket))
        address.port = (address.server.address() as net.AddressInfo).port
      } else {
        try {
          this.#claimNames(lease, founded, this.#visitors.groupFrontTarget(founded), address, msg)
        } catch (err) {
          this.#routes.release(founded, address.subdomain, address.hostname) // a hostname claimed before the subdomain failed
          throw err
        }
      }
      group = this.#groups.get(scope)
      if (group === undefined) {
        group = founded
        this.#groups.set(founded)
      } else {
        // Another member founded it while the port was bound: join that one.
        address.server?.close()
      }
    }
    group.checkKey(msg.groupKey)
    group.checkMatches(msg)
    const a = group.address
    t.port = a.port
    if (a.subdomain !== undefined) t.subdomain = a.subdomain
    if (a.hostname !== undefined) t.hostname = a.hostname
    this.#groupOf.set(t, group)
  }

  /**
   * Claims the subdomain and/or hostname of an http or tls tunnel (or group: `owner`) on the
   * shared ports, for `target`; sets them and the shared port on `t`.
   */
  #claimNames (lease: Lease<TunnelOwner>, owner: object, target: FrontTarget, t: Pick<PublicTunnel, 'kind' | 'port' | 'subdomain' | 'hostname'>, msg: OpenRequest): void {
    const shared = this.#sharedPorts()
    const port = t.kind === 'tls' || this.#opts.httpPort === undefined ? shared.https?.port : shared.http?.port
    if (port === undefined) throw new PortNotAllowedError(0, `no shared ${t.kind === 'tls' ? 'HTTPS' : 'HTTP'} port on this relay`)
    t.port = port
    const holder = msg.subdomain === undefined ? undefined : this.#accounts.reservedBy('subdomain', msg.subdomain)
    if (holder !== undefined && holder !== lease.principal.id) throw new NameTakenError(`${msg.subdomain!.toLowerCase()} (reserved by another user)`)
    try {
      if (msg.hostname !== undefined) t.hostname = this.#routes.claimHostname(msg.hostname, owner, target)
      if (msg.subdomain !== undefined || msg.hostname === undefined) t.subdomain = this.#routes.claimSubdomain(msg.subdomain, owner, target)
    } catch (err) {
      if (!(err instanceof NameTakenError)) throw err
      const sub = msg.subdomain?.toLowerCase()
      const host = msg.hostname?.toLowerCase()
      const by = this.#heldBy(lease, x => (sub !== undefined && x.subdomain === sub) || (host !== undefined && x.hostname === host))
      throw by === undefined ? err : new NameTakenError(err.hostname, by)
    }
  }

  /**
   * Which other client of the same user holds a tunnel matching `held`, for the refusal: its
   * connection id and address, or that its lease waits for it to come back. Undefined when
   * none does (then it is someone else, and the refusal names nobody).
   */
  #heldBy (lease: Lease<TunnelOwner>, held: (t: PublicTunnel) => boolean): string | undefined {
    for (const other of this.#leases.of(lease.principal.id)) {
      if (other === lease || ![...other.tunnels.values()].some(held)) continue
      const h = other.holder
      return h === undefined
        ? 'another client of yours that disconnected (its lease holds it until the grace period ends, or until that client comes back)'
        : `another client of yours: ${h.info.id} connected from ${h.info.remoteAddress}`
    }
    return undefined
  }

  /** The `opened` message for a tunnel: its public host and port, and for http/tls tunnels its URL. */
  opened (t: PublicTunnel): OpenedMessage {
    const shared = this.#sharedPorts()
    const host = t.subdomain !== undefined ? this.#routes.fqdn(t.subdomain) : t.hostname ?? this.#opts.publicHost
    if (t.kind === 'tcp') return { t: 'opened', id: t.id, port: t.port, host }
    const https = t.kind === 'tls' || (shared.https !== undefined && this.#opts.httpsCert !== undefined)
    const scheme = t.kind === 'tls' ? 'tls' : https ? 'https' : 'http'
    const port = https ? shared.https?.port : shared.http?.port
    const defaultPort = scheme === 'http' ? 80 : 443
    return { t: 'opened', id: t.id, port: port ?? t.port, host, url: `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}` }
  }

  /** Closes a tunnel: its port or names are free again, its visitors cut, its user's count lowered. */
  close (lease: Lease<TunnelOwner>, id: number, reason: string): void {
    const t = lease.tunnels.get(id)
    if (t === undefined) return
    lease.tunnels.delete(id)
    this.#release(lease, t)
    for (const s of t.connections) s.destroy()
    const account = this.#accounts.get(lease.principal.id)
    if (account !== undefined) account.tunnels--
    this.#opts.policy?.tunnelDown(lease.principal, t.name)
    this.#events.emit('tunnel-down', tunnelInfo(lease, t), reason)
  }

  /** Closes a tunnel the client did not ask to close, and tells the client why (if it is connected). */
  closeAndTell (lease: Lease<TunnelOwner>, id: number, err: { code: string, message: string }, reason = err.message): void {
    lease.holder?.control.send({ t: 'closed', id, code: err.code, message: err.message })
    this.close(lease, id, reason)
  }

  /**
   * The operator's reserved subdomains from now on; a live tunnel on one of them closes (its
   * client told with ReservedNameError), the others are untouched. Returns how many closed.
   */
  setReservedNames (names: Iterable<string>): number {
    this.#routes.setReserved(names)
    let closed = 0
    for (const lease of this.#leases.values()) {
      for (const [id, t] of [...lease.tunnels]) {
        if (t.subdomain === undefined || !this.#routes.isReserved(t.subdomain)) continue
        this.closeAndTell(lease, id, new ReservedNameError(t.subdomain))
        closed++
      }
    }
    return closed
  }

  /** Every live tunnel's new-connection limiter anew from its account (after its plan or the per-address limit changed). */
  refreshRateLimits (): void {
    for (const lease of this.#leases.values()) {
      const account = this.#accounts.get(lease.principal.id)
      if (account === undefined) continue
      for (const t of lease.tunnels.values()) t.rate = account.rateLimiter()
    }
  }

  /** The user's quota is used up: every tunnel of theirs closes, and their clients are told why. */
  closeAllOf (principalId: string, err: MportError): void {
    for (const lease of this.#leases.of(principalId)) {
      for (const [id] of [...lease.tunnels]) this.closeAndTell(lease, id, err)
    }
  }

  /** Closes every tunnel of a lease and forgets the lease. */
  releaseLease (lease: Lease<TunnelOwner>, reason: string): void {
    lease.cancelExpiry()
    for (const id of [...lease.tunnels.keys()]) this.close(lease, id, reason)
    this.#leases.delete(lease)
    this.#opts.cluster?.leaseReleased({ id: lease.id, principalId: lease.principal.id, secretHash: lease.secretHash })
  }

  /** The client on `lease` is stopping: its group members take no new visitors (the relay answers `draining`). */
  drain (lease: Lease<TunnelOwner>): void {
    for (const t of lease.tunnels.values()) {
      const g = this.#groupOf.get(t)
      const m = g?.member(lease, t.id)
      if (m === undefined || m.draining) continue
      m.draining = true
      g!.notify()
    }
  }

  /** A client's health check of a group tunnel's local service; only group members act on it. */
  health (lease: Lease<TunnelOwner>, id: number, healthy: boolean, detail: string | undefined): void {
    const t = lease.tunnels.get(id)
    const g = t === undefined ? undefined : this.#groupOf.get(t)
    const m = g?.member(lease, id)
    if (m === undefined || (m.healthy === healthy && m.healthDetail === detail)) return
    m.healthy = healthy
    m.healthDetail = healthy ? undefined : detail
    g!.notify()
  }

  /** A lease's client left (or came back): its groups tell their members how many take visitors. */
  holderChanged (lease: Lease<TunnelOwner>): void {
    for (const g of this.#groups.of(lease)) g.notify()
  }

  /** Frees what a tunnel holds on the relay: its listener, its names; a group member leaves its group, the last one frees the group's. */
  #release (lease: Lease<TunnelOwner>, t: PublicTunnel): void {
    const g = this.#groupOf.get(t)
    if (g !== undefined) {
      if (!g.remove(lease, t.id)) return
      g.address.server?.close()
      this.#routes.release(g, g.address.subdomain, g.address.hostname)
      this.#groups.delete(g)
      return
    }
    t.server?.close()
    this.#routes.release(lease, t.subdomain, t.hostname)
    this.#opts.cluster?.release(lease, t)
  }
}

function userPass (value: string): [string, string] {
  const c = parseBasicAuthValue(value)
  return [c.user, c.pass]
}
