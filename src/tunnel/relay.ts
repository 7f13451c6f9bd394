/**
 * Relay: the public side. Accepts clients over TLS (ALPN mport/1), authenticates them on a
 * control stream, binds public TCP ports for their tunnels, and turns every visitor
 * connection into one mux stream opened towards the client, its header riding with the SYN.
 */
import { EventEmitter } from 'node:events'
import net from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import { BasicAuthChecker, hashPassword, parseBasicAuthValue } from '../access/basic-auth.js'
import { IpFilter } from '../access/cidr.js'
import {
  AuthFailedError, DuplicateTunnelError, HandshakeTimeoutError, InvalidMessageError, MportError, PortInUseError, PortNotAllowedError, RateLimitedError, SessionClosedError, TunnelLimitError,
} from '../errors.js'
import type { MuxConfig } from '../mux/config.js'
import { Session } from '../mux/session.js'
import type { MuxStream } from '../mux/stream.js'
import { listenTls, type TlsListener } from '../transport/tls.js'
import { FailureLimiter, type Authenticator, type Principal } from './auth.js'
import { ControlChannel } from './control.js'
import { acceptLogin, type Login } from './login.js'
import { Lease, type PublicTunnel } from './lease.js'
import { HttpFront, type FrontTarget, type Visitor } from './http-front.js'
import { encodeStreamHeader, parseClientMessage, type ClientMessage, type OpenRequest } from './messages.js'
import { bindPublicPort, type PortRange } from './ports.js'
import { proxy, type ProxyShaping } from './proxy.js'
import { Accounts, type Account, type LiveCounters, type RelayPolicy } from './accounts.js'
import { Throttle } from '../limits/throttle.js'
import { NameTakenError, RouteTable } from './routes.js'

export const DEFAULT_CONTROL_PORT = 7835
export const DEFAULT_PORT_RANGE: PortRange = { min: 20000, max: 29999 }
export const AGENT = 'mport-relay/0.1.0'

export interface RelayOptions {
  /** PEM certificate and key for the control listener. */
  cert: string | Buffer
  key: string | Buffer
  /** Resolves token ids to principals (StaticTokens for a single-owner relay). */
  authenticator: Authenticator
  /** Control listener address (default 0.0.0.0:7835; port 0 picks one). */
  host?: string
  port?: number
  /** Address the public tunnel ports bind to (default 0.0.0.0). */
  bindHost?: string
  /** Host name shown to clients in tunnel addresses (default: the control host, or localhost). */
  publicHost?: string
  /** Ports tunnels may use (default 20000-29999). */
  portRange?: PortRange
  /** How long a disconnected client's ports are held for it (default 120 s). */
  leaseGrace?: number // ms
  /** Budget for TLS + hello + auth of one client (default 10 s). */
  handshakeTimeout?: number // ms
  maxTunnelsPerClient?: number
  /** Failed authentications allowed per source address per window before refusing. */
  authFailureLimit?: { max: number, windowMs: number }
  /** Base domain for http/tls tunnels (`<name>.<domain>`, wildcard DNS pointing here). */
  domain?: string
  /** Shared HTTP port for http tunnels (undefined: off; 0 picks one). */
  httpPort?: number
  /** Shared HTTPS port: SNI routing for tls tunnels, and http tunnels when `httpsCert` is given. */
  httpsPort?: number
  /** PEM certificate and key (usually a wildcard for `*.<domain>`) to terminate TLS of http tunnels. */
  httpsCert?: string | Buffer
  httpsKey?: string | Buffer
  /** A visitor must send its request head or ClientHello within this time (default 10 s). */
  headersTimeout?: number // ms
  /** Per-user limits and usage accounting (the store's, in production); none: unlimited. */
  policy?: RelayPolicy
  /** New connections per minute from one visitor address, per tunnel (default: unlimited). */
  connectionsPerIpPerMinute?: number
  /** How often usage is sampled, quotas enforced and tokens re-checked (default 2 s). */
  accountingInterval?: number // ms
  mux?: Partial<MuxConfig>
}

export interface ClientInfo {
  id: string
  principal: Principal
  remoteAddress: string
  resumed: boolean
}

export interface TunnelInfo {
  client: string
  principal: string
  id: number
  name: string
  port: number
}

export interface ConnectionInfo {
  tunnel: TunnelInfo
  remoteAddress: string
  remotePort: number
}

export interface RelayEvents {
  listening: [address: net.AddressInfo]
  client: [info: ClientInfo]
  'client-closed': [info: ClientInfo, err?: Error]
  'tunnel-up': [info: TunnelInfo]
  'tunnel-down': [info: TunnelInfo, reason: string]
  connection: [info: ConnectionInfo]
  'connection-closed': [info: ConnectionInfo, stats: { bytesIn: number, bytesOut: number, error?: Error }]
  'auth-failed': [remoteAddress: string, err: MportError]
  /** A visitor was refused by a rate limit or the user's plan. */
  'visitor-refused': [info: ConnectionInfo, err: MportError]
  /** Something went wrong with one client or visitor; the relay goes on serving the rest. */
  warning: [err: Error]
}

/** One authenticated client connection. */
interface ClientConn {
  info: ClientInfo
  session: Session
  control: ControlChannel<ClientMessage>
  lease: Lease<ClientConn>
  account: Account
  tokenId: string
}

export class Relay extends EventEmitter<RelayEvents> {
  readonly #opts: Required<Omit<RelayOptions, 'mux' | 'publicHost' | 'domain' | 'httpPort' | 'httpsPort' | 'httpsCert' | 'httpsKey' | 'policy' | 'connectionsPerIpPerMinute'>> & Pick<RelayOptions, 'domain' | 'httpPort' | 'httpsPort' | 'httpsCert' | 'httpsKey' | 'policy' | 'connectionsPerIpPerMinute'> & { mux: Partial<MuxConfig>, publicHost: string }
  readonly #accounts: Accounts
  #accountingTimer: NodeJS.Timeout | undefined
  /** Ends the usage tracking of a visitor connection. */
  readonly #untrack = new WeakMap<net.Socket, () => void>()
  readonly #routes: RouteTable<FrontTarget>
  #front: HttpFront | undefined
  /** Where the shared ports actually listen (after listen()). */
  #httpAddress: net.AddressInfo | undefined
  #httpsAddress: net.AddressInfo | undefined
  readonly #limiter: FailureLimiter
  readonly #leases = new Map<string, Lease<ClientConn>>()
  readonly #sessions = new Set<Session>()
  readonly #conns = new Set<ClientConn>()
  #listener: TlsListener | undefined
  #closing = false
  #nextClientId = 1

  constructor (options: RelayOptions) {
    super()
    const host = options.host ?? '0.0.0.0'
    this.#opts = {
      host,
      port: options.port ?? DEFAULT_CONTROL_PORT,
      bindHost: options.bindHost ?? '0.0.0.0',
      publicHost: options.publicHost ?? (host === '0.0.0.0' || host === '::' ? 'localhost' : host),
      portRange: options.portRange ?? DEFAULT_PORT_RANGE,
      leaseGrace: options.leaseGrace ?? 120_000,
      handshakeTimeout: options.handshakeTimeout ?? 10_000,
      maxTunnelsPerClient: options.maxTunnelsPerClient ?? 64,
      authFailureLimit: options.authFailureLimit ?? { max: 10, windowMs: 60_000 },
      headersTimeout: options.headersTimeout ?? 10_000,
      accountingInterval: options.accountingInterval ?? 2_000,
      policy: options.policy,
      connectionsPerIpPerMinute: options.connectionsPerIpPerMinute,
      domain: options.domain,
      httpPort: options.httpPort,
      httpsPort: options.httpsPort,
      httpsCert: options.httpsCert,
      httpsKey: options.httpsKey,
      cert: options.cert,
      key: options.key,
      authenticator: options.authenticator,
      mux: options.mux ?? {},
    }
    this.#limiter = new FailureLimiter(this.#opts.authFailureLimit.max, this.#opts.authFailureLimit.windowMs)
    this.#routes = new RouteTable(options.domain)
    this.#accounts = new Accounts(options.policy, options.connectionsPerIpPerMinute ?? null)
  }

  /** The shared HTTP port's address, when it is on. */
  get httpAddress (): net.AddressInfo | undefined { return this.#httpAddress }
  /** The shared HTTPS port's address, when it is on. */
  get httpsAddress (): net.AddressInfo | undefined { return this.#httpsAddress }

  /** The control listener's address (after listen()). */
  get address (): net.AddressInfo {
    if (this.#listener === undefined) throw new SessionClosedError('relay is not listening')
    return this.#listener.address
  }

  /** Live tunnels, with their owner and counters; `key` (`<lease>:<id>`) names one for closeTunnel(). */
  get tunnels (): Array<TunnelInfo & { key: string, principalId: string, url: string | undefined, connections: number, bytesIn: number, bytesOut: number, online: boolean }> {
    const out = []
    for (const lease of this.#leases.values()) {
      for (const t of lease.tunnels.values()) {
        out.push({
          ...this.#tunnelInfo(lease, t),
          key: `${lease.id}:${t.id}`,
          principalId: lease.principal.id,
          url: this.#openedMessage(t).url,
          connections: t.connections.size,
          bytesIn: t.bytesIn,
          bytesOut: t.bytesOut,
          online: lease.holder !== undefined,
        })
      }
    }
    return out
  }

  /** Closes one tunnel (named by the `key` of `tunnels`) and tells its client. */
  closeTunnel (key: string, reason = 'closed by the relay operator'): boolean {
    const [leaseId, id] = key.split(':')
    const lease = this.#leases.get(leaseId ?? '')
    const tid = Number(id)
    if (lease === undefined || !lease.tunnels.has(tid)) return false
    lease.holder?.control.send({ t: 'closed', id: tid, code: 'MPORT_ERR_SESSION_CLOSED', message: reason })
    this.#closeTunnel(lease, tid, reason)
    return true
  }

  /** Checks the user's live sessions against the policy now (after a token was revoked). */
  async revalidate (principalId: string): Promise<void> {
    const policy = this.#opts.policy
    if (policy === undefined) return
    for (const conn of [...this.#conns]) {
      if (conn.lease.principal.id === principalId && !await policy.stillValid(conn.tokenId)) this.disconnect(principalId, conn.tokenId)
    }
  }

  /** Ends the live sessions of a user (all, or those authenticated with `tokenId`): revocation. */
  disconnect (principalId: string, tokenId?: string): number {
    let n = 0
    for (const conn of [...this.#conns]) {
      if (conn.lease.principal.id !== principalId || (tokenId !== undefined && conn.tokenId !== tokenId)) continue
      n++
      this.#refuse(conn.session, conn.control, new AuthFailedError('the token was revoked or its user disabled'))
      setTimeout(() => conn.session.destroy(), 1000).unref()
    }
    return n
  }

  /** Number of connected clients. */
  get clientCount (): number {
    return this.#sessions.size
  }

  async listen (): Promise<net.AddressInfo> {
    this.#listener = await listenTls({
      host: this.#opts.host,
      port: this.#opts.port,
      cert: this.#opts.cert,
      key: this.#opts.key,
      handshakeTimeout: this.#opts.handshakeTimeout,
      onError: err => this.emit('warning', err),
    }, socket => this.#onClient(socket))
    if (this.#opts.httpPort !== undefined || this.#opts.httpsPort !== undefined) {
      const o = this.#opts
      this.#front = new HttpFront({
        domain: o.domain,
        lookup: route => this.#routes.lookup(route),
        secureContext: o.httpsCert !== undefined && o.httpsKey !== undefined ? tls.createSecureContext({ cert: o.httpsCert, key: o.httpsKey }) : undefined,
        headersTimeout: o.headersTimeout,
        onWarning: err => this.emit('warning', err),
      })
      if (o.httpPort !== undefined) this.#httpAddress = await this.#front.listenHttp(o.bindHost, o.httpPort)
      if (o.httpsPort !== undefined) this.#httpsAddress = await this.#front.listenHttps(o.bindHost, o.httpsPort)
    }
    await this.#accounts.refreshReservations(err => this.emit('warning', err))
    this.#accountingTimer = setInterval(() => { void this.#accountingRound() }, this.#opts.accountingInterval)
    this.#accountingTimer.unref()
    this.emit('listening', this.#listener.address)
    return this.#listener.address
  }

  /**
   * Graceful shutdown: stop accepting clients and visitors, send GoAway to every client, let
   * open connections drain for up to `graceMs`, then close everything.
   */
  async close (graceMs = 10_000): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    clearInterval(this.#accountingTimer)
    const listener = this.#listener
    listener?.server.close()
    for (const lease of this.#leases.values()) {
      lease.cancelExpiry()
      for (const t of lease.tunnels.values()) t.server?.close()
    }
    for (const conn of this.#conns) conn.control.end() // the client ends its side, then nothing holds the session
    const sessions = [...this.#sessions]
    const drained = Promise.all(sessions.map(s => s.close()))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([drained, new Promise<void>(resolve => { timer = setTimeout(resolve, graceMs) })])
    clearTimeout(timer)
    for (const s of sessions) s.destroy()
    for (const lease of this.#leases.values()) this.#releaseLease(lease, 'relay shutting down')
    await this.#front?.close()
    await listener?.close()
    this.#accounts.sampleAll() // the last counts
  }

  // ---- Client connections ----

  #onClient (socket: TLSSocket): void {
    const remoteAddress = socket.remoteAddress ?? 'unknown'
    if (this.#closing) { socket.destroy(); return }
    const session = new Session(socket, { client: false, keepAliveInterval: 15_000, keepAliveTimeout: 10_000, ...this.#opts.mux })
    this.#sessions.add(session)
    session.on('close', () => this.#sessions.delete(session))
    // The first stream the client opens is the control stream; any other is refused at once,
    // before it can hold a byte of an unauthenticated client's data.
    const control = new Promise<MuxStream>(resolve => {
      session.on('stream', s => {
        if (!controlTaken) { controlTaken = true; resolve(s) } else s.destroy()
      })
    })
    let controlTaken = false
    this.#handshake(session, socket, remoteAddress, control).catch((err: Error) => {
      if (!(err instanceof MportError)) {
        this.emit('warning', err)
        session.destroy(err)
        return
      }
      // Let the typed error reach the client before the GoAway, then hang up even if it lingers.
      setTimeout(() => session.destroy(), 1000).unref()
    })
  }

  async #handshake (session: Session, socket: TLSSocket, remoteAddress: string, controlStream: Promise<MuxStream>): Promise<void> {
    // The whole handshake is bounded; other clients are accepted meanwhile.
    const deadline = setTimeout(() => {
      if (control === undefined) session.destroy()
      else this.#refuse(session, control, new HandshakeTimeoutError(this.#opts.handshakeTimeout, 'hello and authentication'))
    }, this.#opts.handshakeTimeout)
    deadline.unref()
    let control: ControlChannel<ClientMessage> | undefined
    let login: Login
    try {
      const stream = await Promise.race([controlStream, new Promise<never>((_resolve, reject) => session.once('close', () => reject(new SessionClosedError('client left before opening the control stream'))))])
      control = new ControlChannel(stream, parseClientMessage)
      login = await acceptLogin(control, socket, remoteAddress, this.#opts.authenticator, this.#limiter)
    } catch (err) {
      if (err instanceof AuthFailedError) this.emit('auth-failed', remoteAddress, err)
      if (control !== undefined) this.#refuse(session, control, err as Error)
      throw err
    } finally {
      clearTimeout(deadline)
    }
    const { hello, principal, tokenId } = login
    const account = await this.#accounts.for(principal)
    if (session.closed) throw new SessionClosedError('client left during the handshake')

    // Reclaim the lease if the ticket proves it, replacing a stale connection still holding it.
    let lease = hello.lease === undefined ? undefined : this.#leases.get(hello.lease.id)
    let ticket = hello.lease
    const resumed = lease !== undefined && ticket !== undefined && lease.matches(ticket, principal)
    if (!resumed) {
      const created = Lease.create<ClientConn>(principal)
      lease = created.lease
      ticket = created.ticket
      this.#leases.set(lease.id, lease)
    }
    const stale = lease!.holder
    const conn: ClientConn = {
      info: { id: `c${this.#nextClientId++}`, principal, remoteAddress, resumed },
      session,
      control,
      lease: lease!,
      account,
      tokenId,
    }
    lease!.attach(conn)
    if (stale !== undefined) stale.session.destroy()
    this.#conns.add(conn)
    session.on('close', err => { this.#conns.delete(conn); this.#onClientGone(conn, err) })
    control.send({ t: 'welcome', lease: ticket!, resumed, principal: principal.name, agent: AGENT })
    this.emit('client', conn.info)
    await this.#serveControl(conn)
  }

  /** Sends a typed error as the last control message; returns it for throwing. */
  /**
   * Sends a typed error as the last control message, then GoAway once it is on the wire (a
   * GoAway queued earlier would overtake it). Returns the error for throwing.
   */
  #refuse (session: Session, control: ControlChannel<ClientMessage>, err: Error): Error {
    const code = err instanceof MportError ? err.code : 'MPORT_ERR_INVALID_MESSAGE'
    void control.endFlushed({ t: 'error', code, message: err.message }).then(() => session.close())
    return err
  }

  async #serveControl (conn: ClientConn): Promise<void> {
    for (;;) {
      let msg: ClientMessage
      try {
        msg = await conn.control.recv()
      } catch (err) {
        // Bad or oversized messages end this client with a typed error; a closed stream ends it quietly.
        if (err instanceof MportError && err.code !== 'MPORT_ERR_SESSION_CLOSED') this.#refuse(conn.session, conn.control, err)
        else { conn.control.end(); void conn.session.close() } // open visitor connections may finish
        return
      }
      switch (msg.t) {
        case 'open': await this.#openTunnel(conn, msg); break
        case 'close': this.#closeTunnel(conn.lease, msg.id, 'closed by client'); break
        case 'hello':
        case 'auth':
          this.#refuse(conn.session, conn.control, new InvalidMessageError(`unexpected "${msg.t}" after the handshake`))
          return
        default: assertNever(msg)
      }
    }
  }

  async #openTunnel (conn: ClientConn, msg: OpenRequest): Promise<void> {
    const lease = conn.lease
    const kind = msg.kind ?? 'tcp'
    const existing = lease.tunnels.get(msg.id)
    if (existing !== undefined && existing.name === msg.name && existing.kind === kind &&
      (msg.port === 0 || msg.port === existing.port) && (msg.subdomain === undefined || msg.subdomain.toLowerCase() === existing.subdomain)) {
      // Reclaimed after a reconnect: the same listener or name, the same port.
      conn.control.send(this.#openedMessage(existing))
      this.emit('tunnel-up', this.#tunnelInfo(lease, existing))
      return
    }
    if (existing !== undefined) this.#closeTunnel(lease, msg.id, 'replaced')
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
      if (kind === 'tcp') {
        const owner = lease.principal.id
        const reservedByOther = (port: number): boolean => { const u = this.#accounts.reservedBy('port', port); return u !== undefined && u !== owner }
        if (msg.port !== 0 && reservedByOther(msg.port)) throw new PortInUseError(msg.port, `port ${msg.port} is reserved by another user`)
        t.server = await bindPublicPort(this.#opts.bindHost, msg.port, this.#opts.portRange, socket => this.#onVisitor(lease, t, socket), reservedByOther)
        t.port = (t.server.address() as net.AddressInfo).port
      } else {
        this.#claimNames(lease, t, msg)
      }
      if (this.#closing || lease.holder !== conn) {
        this.#releaseTunnel(lease, t)
        return
      }
      lease.tunnels.set(msg.id, t)
      conn.account.tunnels++
      this.#opts.policy?.tunnelUp(lease.principal, t.name)
      conn.control.send(this.#openedMessage(t))
      this.emit('tunnel-up', this.#tunnelInfo(lease, t))
    } catch (err) {
      if (tunnel !== undefined) this.#releaseTunnel(lease, tunnel)
      if (!(err instanceof MportError)) this.emit('warning', err as Error)
      const e = err instanceof MportError ? err : new InvalidMessageError(`cannot open tunnel: ${(err as Error).message}`)
      conn.control.send({ t: 'closed', id: msg.id, code: e.code, message: e.message })
    }
  }

  /** Claims the subdomain and/or hostname of an http or tls tunnel on the shared ports. */
  #claimNames (lease: Lease<ClientConn>, t: PublicTunnel, msg: OpenRequest): void {
    const port = t.kind === 'tls' || this.#opts.httpPort === undefined ? this.#httpsAddress?.port : this.#httpAddress?.port
    if (port === undefined) throw new PortNotAllowedError(0, `no shared ${t.kind === 'tls' ? 'HTTPS' : 'HTTP'} port on this relay`)
    t.port = port
    const target: FrontTarget = {
      kind: t.kind === 'tls' ? 'tls' : 'http',
      filter: t.filter,
      auth: t.auth,
      connect: (visitor, socket, counters) => this.#openVisitorStream(lease, t, socket, visitor, counters),
      shaping: () => {
        const bucket = lease.holder?.account.bucket
        return bucket === undefined ? {} : { up: new Throttle({ buckets: [bucket] }), down: new Throttle({ buckets: [bucket] }) }
      },
      finished: (socket, stats) => this.#visitorFinished(lease, t, socket, stats),
    }
    const holder = msg.subdomain === undefined ? undefined : this.#accounts.reservedBy('subdomain', msg.subdomain)
    if (holder !== undefined && holder !== lease.principal.id) throw new NameTakenError(`${msg.subdomain!.toLowerCase()} (reserved by another user)`)
    if (msg.hostname !== undefined) t.hostname = this.#routes.claimHostname(msg.hostname, lease, target)
    if (msg.subdomain !== undefined || msg.hostname === undefined) t.subdomain = this.#routes.claimSubdomain(msg.subdomain, lease, target)
  }

  #openedMessage (t: PublicTunnel): Extract<import('./messages.js').RelayMessage, { t: 'opened' }> {
    const host = t.subdomain !== undefined ? this.#routes.fqdn(t.subdomain) : t.hostname ?? this.#opts.publicHost
    if (t.kind === 'tcp') return { t: 'opened', id: t.id, port: t.port, host }
    const https = t.kind === 'tls' || (this.#httpsAddress !== undefined && this.#opts.httpsCert !== undefined)
    const scheme = t.kind === 'tls' ? 'tls' : https ? 'https' : 'http'
    const port = https ? this.#httpsAddress?.port : this.#httpAddress?.port
    const defaultPort = scheme === 'http' ? 80 : 443
    return { t: 'opened', id: t.id, port: port ?? t.port, host, url: `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}` }
  }

  #releaseTunnel (lease: Lease<ClientConn>, t: PublicTunnel): void {
    t.server?.close()
    this.#routes.release(lease, t.subdomain, t.hostname)
  }

  #closeTunnel (lease: Lease<ClientConn>, id: number, reason: string): void {
    const t = lease.tunnels.get(id)
    if (t === undefined) return
    lease.tunnels.delete(id)
    this.#releaseTunnel(lease, t)
    for (const s of t.connections) s.destroy()
    const account = this.#accounts.get(lease.principal.id)
    if (account !== undefined) account.tunnels--
    this.#opts.policy?.tunnelDown(lease.principal, t.name)
    this.emit('tunnel-down', this.#tunnelInfo(lease, t), reason)
  }

  #onClientGone (conn: ClientConn, err: Error | undefined): void {
    this.emit('client-closed', conn.info, err)
    const lease = conn.lease
    if (lease.holder !== conn) return // replaced by a newer connection
    if (this.#closing) return
    lease.detach(this.#opts.leaseGrace, () => this.#releaseLease(lease, 'client did not come back'))
  }

  #releaseLease (lease: Lease<ClientConn>, reason: string): void {
    lease.cancelExpiry()
    for (const id of [...lease.tunnels.keys()]) this.#closeTunnel(lease, id, reason)
    this.#leases.delete(lease.id)
  }

  // ---- Visitors ----

  #onVisitor (lease: Lease<ClientConn>, tunnel: PublicTunnel, socket: net.Socket): void {
    const visitor: Visitor = { addr: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, daddr: socket.localAddress ?? '', dport: socket.localPort ?? 0 }
    const counters = { aToB: 0, bToA: 0 }
    const stream = tunnel.filter.allows(visitor.addr) ? this.#openVisitorStream(lease, tunnel, socket, visitor, counters) : undefined
    if (stream === undefined) {
      socket.on('error', ignore) // a late error from a refused visitor must not crash the relay
      socket.resetAndDestroy() // filtered, over a limit, or the client is reconnecting: refuse like a closed port
      return
    }
    // The user's bandwidth, shaped in both directions by holding data (backpressure), never dropping it.
    const bucket = lease.holder?.account.bucket
    const shaping: ProxyShaping | undefined = bucket === undefined ? undefined : { aToB: new Throttle({ buckets: [bucket] }), bToA: new Throttle({ buckets: [bucket] }) }
    void proxy(socket, stream, counters, shaping).then(result => {
      this.#visitorFinished(lease, tunnel, socket, { bytesIn: result.aToB, bytesOut: result.bToA, ...(result.error ? { error: result.error } : {}) })
    })
  }

  /**
   * Opens the mux stream for one visitor, its header riding with the SYN. Undefined while the
   * client is away, or when the visitor is over the tunnel's connection rate or the user's plan.
   */
  #openVisitorStream (lease: Lease<ClientConn>, tunnel: PublicTunnel, socket: net.Socket, visitor: Visitor, counters: LiveCounters): MuxStream | undefined {
    const conn = lease.holder
    if (conn === undefined || this.#closing) return undefined
    try {
      const verdict = tunnel.rate?.check(visitor.addr)
      if (verdict !== undefined && !verdict.ok) throw new RateLimitedError(verdict.message, verdict.retryAfterMs)
      conn.account.checkConnection()
    } catch (err) {
      this.emit('visitor-refused', this.#connectionInfo(lease, tunnel, visitor), err as MportError)
      return undefined
    }
    let stream: MuxStream
    try {
      stream = conn.session.open()
    } catch (err) {
      this.emit('warning', err as Error)
      return undefined
    }
    // Written in the same tick as open(): the header rides with the SYN, no extra round trip.
    stream.write(encodeStreamHeader({ id: tunnel.id, addr: visitor.addr, port: visitor.port, daddr: visitor.daddr, dport: visitor.dport }))
    tunnel.connections.add(socket)
    tunnel.totalConnections++
    this.#untrack.set(socket, conn.account.track(tunnel.name, counters, () => {
      if (!socket.destroyed) socket.resetAndDestroy()
      stream.destroy()
    }, this.#opts.policy))
    this.emit('connection', this.#connectionInfo(lease, tunnel, visitor))
    return stream
  }

  #visitorFinished (lease: Lease<ClientConn>, tunnel: PublicTunnel, socket: net.Socket, stats: { bytesIn: number, bytesOut: number, error?: Error }): void {
    tunnel.connections.delete(socket)
    tunnel.bytesIn += stats.bytesIn
    tunnel.bytesOut += stats.bytesOut
    this.#untrack.get(socket)?.()
    this.#untrack.delete(socket)
    const visitor: Visitor = { addr: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0, daddr: '', dport: 0 }
    this.emit('connection-closed', this.#connectionInfo(lease, tunnel, visitor), stats)
  }

  // ---- Accounts: limits, usage, revocation ----

  /** Every accounting interval: usage counted, quotas enforced; every 5th: revoked tokens cut, plans refreshed. */
  async #accountingRound (): Promise<void> {
    await this.#accounts.round({
      sessions: () => [...this.#conns].map(conn => ({
        tokenId: conn.tokenId,
        revoke: () => {
          this.#refuse(conn.session, conn.control, new AuthFailedError('the token was revoked or its user disabled'))
          setTimeout(() => conn.session.destroy(), 1000).unref()
        },
      })),
      quotaExceeded: (principal, err) => this.#closeTunnelsOf(principal, err),
      warn: err => this.emit('warning', err),
    })
  }

  /** The user's quota is used up: every tunnel of theirs closes, and their clients are told why. */
  #closeTunnelsOf (principal: Principal, err: MportError): void {
    for (const lease of this.#leases.values()) {
      if (lease.principal.id !== principal.id) continue
      for (const [id] of [...lease.tunnels]) {
        lease.holder?.control.send({ t: 'closed', id, code: err.code, message: err.message })
        this.#closeTunnel(lease, id, err.message)
      }
    }
  }

  #connectionInfo (lease: Lease<ClientConn>, tunnel: PublicTunnel, visitor: Visitor): ConnectionInfo {
    return { tunnel: this.#tunnelInfo(lease, tunnel), remoteAddress: visitor.addr || 'unknown', remotePort: visitor.port }
  }

  #tunnelInfo (lease: Lease<ClientConn>, t: PublicTunnel): TunnelInfo {
    return { client: lease.id, principal: lease.principal.name, id: t.id, name: t.name, port: t.port }
  }
}

function ignore (): void {}

function userPass (value: string): [string, string] {
  const c = parseBasicAuthValue(value)
  return [c.user, c.pass]
}

function assertNever (x: never): never {
  throw new InvalidMessageError(`unhandled message ${JSON.stringify(x)}`)
}
