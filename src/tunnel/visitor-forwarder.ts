/**
 * The relay's visitor path. Every visitor connection, from a tcp tunnel's public port or the
 * shared HTTP(S) front, is checked against the tunnel's filter and rate and the user's plan,
 * then becomes one mux stream opened towards the client (its header riding with the SYN),
 * proxied and counted. This runs once per connection: keep its allocations to what it needs.
 */
import type net from 'node:net'
import { RateLimitedError, VisitorFilteredError, type MportError } from '../errors.js'
import { Throttle } from '../limits/throttle.js'
import type { Session } from '../mux/session.js'
import type { MuxStream } from '../mux/stream.js'
import type { Account, LiveConnection, LiveCounters, RelayPolicy } from './accounts.js'
import type { ExchangeRecord } from '../http/exchange-meter.js'
import type { FrontTarget, Visitor } from './http-front.js'
import type { Lease, PublicTunnel } from './lease.js'
import { encodeStreamHeader } from './messages.js'
import { pipeBoth, type FreshReadMeter, type ProxyDone, type ProxyResult, type ProxyShaping } from './proxy.js'
import { connectionInfo, type ConnectionInfo, type ConnectionStats } from './relay-events.js'
import { openInGroup } from './group-visitor.js'
import type { GroupHolder, TunnelGroup } from './tunnel-group.js'

/** What the forwarder uses of the client connection holding a lease. */
export interface TunnelHolder {
  readonly session: Session
  /** The client connection's id, named in the relay's events (`session` in its logs). */
  readonly info?: { readonly id: string }
  readonly account: Account
  /** Tells the client that a visitor of its tunnel `tunnelId` was refused (rate-limited by the holder). */
  refused?: (tunnelId: number, err: MportError) => void
}

/** Where the forwarder reports; the relay turns these into its events of the same names. */
export interface VisitorEvents {
  onConnection (info: ConnectionInfo): void
  onConnectionClosed (info: ConnectionInfo, stats: ConnectionStats): void
  /** Not allowed by the tunnel's IP filter, or over a rate limit or the user's plan. */
  onRefused (info: ConnectionInfo, err: MportError): void
  onWarning (err: Error): void
  /** An http tunnel's exchange finished; only asked for while `wantsExchanges()` (someone records them). */
  onExchange? (info: ConnectionInfo, r: ExchangeRecord): void
  wantsExchanges? (): boolean
}

export class VisitorForwarder {
  readonly #policy: RelayPolicy | undefined
  readonly #events: VisitorEvents
  readonly #onFreshRead: FreshReadMeter | undefined
  /** Each visitor connection's usage record, until it finishes. */
  readonly #tracked = new WeakMap<net.Socket, TrackedVisitor>()
  #stopped = false

  /** `onFreshRead` is told the size of each visitor socket read (each a new Buffer). */
  constructor (policy: RelayPolicy | undefined, events: VisitorEvents, onFreshRead?: FreshReadMeter) {
    this.#policy = policy
    this.#events = events
    this.#onFreshRead = onFreshRead
  }

  /** Refuses every visitor from now on (the relay is shutting down). */
  stop (): void {
    this.#stopped = true
  }

  /** Bytes of `tunnel`'s open connections so far (visitor → service, back), so listings move while a long connection lasts. */
  openBytes (tunnel: PublicTunnel): { bytesIn: number, bytesOut: number } {
    let bytesIn = 0
    let bytesOut = 0
    for (const socket of tunnel.connections) {
      const c = this.#tracked.get(socket)?.counters
      if (c !== undefined) { bytesIn += c.aToB; bytesOut += c.bToA }
    }
    return { bytesIn, bytesOut }
  }

  /** A refused visitor: the relay's event, and a notice to the client holding the tunnel. */
  #refused (lease: Lease<TunnelHolder>, tunnel: PublicTunnel, visitor: Visitor, err: MportError): void {
    this.#events.onRefused(connectionInfo(lease, tunnel, visitor), err)
    lease.holder?.refused?.(tunnel.id, err)
  }

  /** A visitor connected to a tcp tunnel's public port. */
  accept (lease: Lease<TunnelHolder>, tunnel: PublicTunnel, socket: net.Socket): void {
    const visitor: Visitor = { addr: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, daddr: socket.localAddress ?? '', dport: socket.localPort ?? 0 }
    const counters = { aToB: 0, bToA: 0 }
    const allowed = tunnel.filter.allows(visitor.addr)
    if (!allowed) this.#refused(lease, tunnel, visitor, new VisitorFilteredError(visitor.addr))
    const tracked = allowed ? this.#open(lease, tunnel, socket, visitor, counters) : undefined
    if (tracked === undefined) {
      socket.on('error', ignore) // a late error from a refused visitor must not crash the relay
      socket.resetAndDestroy() // filtered, over a limit, or the client is reconnecting: refuse like a closed port
      return
    }
    // The user's bandwidth, shaped in both directions by holding data (backpressure), never dropping it.
    const bucket = lease.holder?.account.bucket
    const shaping: ProxyShaping | undefined = bucket === undefined ? undefined : { aToB: new Throttle({ buckets: [bucket] }), bToA: new Throttle({ buckets: [bucket] }) }
    pipeBoth(socket, tracked.stream, counters, shaping, tracked, this.#onFreshRead)
  }

  /** A visitor connected to a load-balancing group's public port: it goes to one member (group-visitor.ts). */
  acceptGroup (group: TunnelGroup<TunnelHolder & GroupHolder>, socket: net.Socket): void {
    const visitor: Visitor = { addr: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, daddr: socket.localAddress ?? '', dport: socket.localPort ?? 0 }
    socket.on('error', ignore) // a visitor that leaves while a member is picked must not crash the relay; later errors go through proxy
    const first = group.members[0]
    if (!group.address.filter.allows(visitor.addr)) {
      if (first !== undefined) this.#refused(first.lease, first.tunnel, visitor, new VisitorFilteredError(visitor.addr))
      socket.resetAndDestroy()
      return
    }
    const counters = { aToB: 0, bToA: 0 }
    void this.#openInGroup(group, socket, visitor, counters).then(tracked => {
      if (tracked === undefined) { socket.resetAndDestroy(); return }
      const bucket = tracked.account.bucket
      const shaping: ProxyShaping | undefined = bucket === undefined ? undefined : { aToB: new Throttle({ buckets: [bucket] }), bToA: new Throttle({ buckets: [bucket] }) }
      pipeBoth(socket, tracked.stream, counters, shaping, tracked, this.#onFreshRead)
    })
  }

  /** How the shared HTTP(S) front reaches a load-balancing group of http or tls tunnels. */
  groupFrontTarget (group: TunnelGroup<TunnelHolder & GroupHolder>): FrontTarget {
    const first = (): { lease: Lease<TunnelHolder>, tunnel: PublicTunnel } | undefined => group.members[0]
    return {
      kind: group.address.kind === 'tls' ? 'tls' : 'http',
      filter: group.address.filter,
      auth: group.address.auth,
      connect: (visitor, socket, counters) => this.#openInGroup(group, socket, visitor, counters).then(t => t?.stream),
      shaping: () => {
        // The plan of the member the visitor went to is not known here; a group's members share a user but for keyed groups.
        const bucket = first()?.lease.holder?.account.bucket
        return bucket === undefined ? {} : { up: new Throttle({ buckets: [bucket] }), down: new Throttle({ buckets: [bucket] }) }
      },
      finished: (socket, stats) => {
        const tracked = this.#tracked.get(socket)
        if (tracked !== undefined) this.#finished(tracked.lease, tracked.publicTunnel, socket, stats)
      },
      filtered: visitor => {
        const f = first()
        if (f !== undefined) this.#refused(f.lease, f.tunnel, visitor, new VisitorFilteredError(visitor.addr))
      },
    }
  }

  /**
   * One visitor of a group: admitted (rate, plan) by the first member picked, then its stream
   * opened on members in turn until one acknowledges it; undefined when the visitor is refused
   * or no member is left.
   */
  #openInGroup (group: TunnelGroup<TunnelHolder & GroupHolder>, socket: net.Socket, visitor: Visitor, counters: LiveCounters): Promise<TrackedVisitor | undefined> {
    let admitted = false
    return openInGroup(group, socket, member => {
      const conn = member.lease.holder
      if (conn === undefined || this.#stopped) return undefined
      if (!admitted) {
        if (!this.#admits(conn, member.lease, member.tunnel, visitor)) return 'refused'
        admitted = true
      }
      return this.#openStream(conn, member.lease, member.tunnel, socket, visitor, counters)
    }, (tracked, err) => {
      this.#finished(tracked.lease, tracked.publicTunnel, socket, { bytesIn: 0, bytesOut: 0, error: err })
    })
  }

  /** A tcp tunnel's visitor connection has finished (shared by all of them: no closure per connection). */
  readonly #proxyDone = (tracked: TrackedVisitor, result: ProxyResult): void => {
    this.#finished(tracked.lease, tracked.publicTunnel, tracked.socket, { bytesIn: result.aToB, bytesOut: result.bToA, ...(result.error ? { error: result.error } : {}) })
  }

  /** How the shared HTTP(S) front reaches an http or tls tunnel (it filters and proxies itself). */
  frontTarget (lease: Lease<TunnelHolder>, tunnel: PublicTunnel): FrontTarget {
    return {
      kind: tunnel.kind === 'tls' ? 'tls' : 'http',
      filter: tunnel.filter,
      auth: tunnel.auth,
      connect: (visitor, socket, counters) => this.#open(lease, tunnel, socket, visitor, counters)?.stream,
      shaping: () => {
        const bucket = lease.holder?.account.bucket
        return bucket === undefined ? {} : { up: new Throttle({ buckets: [bucket] }), down: new Throttle({ buckets: [bucket] }) }
      },
      finished: (socket, stats) => this.#finished(lease, tunnel, socket, stats),
      filtered: visitor => this.#refused(lease, tunnel, visitor, new VisitorFilteredError(visitor.addr)),
      exchanges: () => this.#events.wantsExchanges?.() === true ? (visitor, r) => this.#events.onExchange?.(connectionInfo(lease, tunnel, visitor), r) : undefined,
    }
  }

  /**
   * Opens the mux stream for one visitor, its header riding with the SYN. Undefined while the
   * client is away, or when the visitor is over the tunnel's connection rate or the user's plan.
   */
  #open (lease: Lease<TunnelHolder>, tunnel: PublicTunnel, socket: net.Socket, visitor: Visitor, counters: LiveCounters): TrackedVisitor | undefined {
    const conn = lease.holder
    if (conn === undefined || this.#stopped) return undefined
    if (!this.#admits(conn, lease, tunnel, visitor)) return undefined
    return this.#openStream(conn, lease, tunnel, socket, visitor, counters)
  }

  /** The visitor is within the tunnel's connection rate and the user's plan; a refusal is reported. */
  #admits (conn: TunnelHolder, lease: Lease<TunnelHolder>, tunnel: PublicTunnel, visitor: Visitor): boolean {
    try {
      const verdict = tunnel.rate?.check(visitor.addr)
      if (verdict !== undefined && !verdict.ok) throw new RateLimitedError(verdict.message, verdict.retryAfterMs)
      conn.account.checkConnection()
      return true
    } catch (err) {
      this.#refused(lease, tunnel, visitor, err as MportError)
      return false
    }
  }

  /** Opens and tracks the visitor's stream on `conn`'s session; undefined when the session takes no new stream. */
  #openStream (conn: TunnelHolder, lease: Lease<TunnelHolder>, tunnel: PublicTunnel, socket: net.Socket, visitor: Visitor, counters: LiveCounters): TrackedVisitor | undefined {
    let stream: MuxStream
    try {
      stream = conn.session.open()
    } catch (err) {
      this.#events.onWarning(err as Error)
      return undefined
    }
    // Written in the same tick as open(): the header rides with the SYN, no extra round trip.
    stream.write(encodeStreamHeader({ id: tunnel.id, addr: visitor.addr, port: visitor.port, daddr: visitor.daddr, dport: visitor.dport }))
    tunnel.connections.add(socket)
    tunnel.totalConnections++
    const tracked = new TrackedVisitor(conn.account, lease, tunnel, counters, socket, stream, this.#proxyDone)
    conn.account.track(tracked, this.#policy)
    this.#tracked.set(socket, tracked)
    this.#events.onConnection(connectionInfo(lease, tunnel, visitor, stream.id))
    return tracked
  }

  #finished (lease: Lease<TunnelHolder>, tunnel: PublicTunnel, socket: net.Socket, stats: ConnectionStats): void {
    tunnel.connections.delete(socket)
    tunnel.bytesIn += stats.bytesIn
    tunnel.bytesOut += stats.bytesOut
    const tracked = this.#tracked.get(socket)
    if (tracked !== undefined) {
      tracked.account.untrack(tracked, this.#policy)
      this.#tracked.delete(socket)
    }
    const visitor: Visitor = { addr: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0, daddr: '', dport: 0 }
    this.#events.onConnectionClosed(connectionInfo(lease, tunnel, visitor, tracked?.stream.id), stats)
  }
}

/**
 * One visitor connection: its user's account tracks it (usage, abort when the quota runs out)
 * and, on a tcp tunnel, proxy tells it when it has finished. One object, no closures.
 */
class TrackedVisitor implements LiveConnection, ProxyDone {
  reportedIn = 0
  reportedOut = 0
  readonly account: Account
  readonly lease: Lease<TunnelHolder>
  readonly publicTunnel: PublicTunnel
  readonly counters: LiveCounters
  readonly socket: net.Socket
  readonly stream: MuxStream
  readonly #done: (tracked: TrackedVisitor, result: ProxyResult) => void

  constructor (account: Account, lease: Lease<TunnelHolder>, tunnel: PublicTunnel, counters: LiveCounters, socket: net.Socket, stream: MuxStream,
    done: (tracked: TrackedVisitor, result: ProxyResult) => void) {
    this.account = account
    this.lease = lease
    this.publicTunnel = tunnel
    this.counters = counters
    this.socket = socket
    this.stream = stream
    this.#done = done
  }

  get tunnel (): string { return this.publicTunnel.name }

  abort (): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy()
    this.stream.destroy()
  }

  proxyDone (result: ProxyResult): void {
    this.#done(this, result)
  }
}

function ignore (): void {}
