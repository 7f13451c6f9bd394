/**
 * Relay: the public side. Accepts clients over TLS (ALPN mport/1), gives each a lease once its
 * handshake (client-handshake.ts) succeeds, and serves its control stream: public ports and
 * names for its tunnels, quotas and revocation. Visitors reach the client through
 * visitor-forwarder.ts.
 */
import { EventEmitter } from 'node:events'
import net from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import { BasicAuthChecker, hashPassword, parseBasicAuthValue } from '../access/basic-auth.js'
import { IpFilter } from '../access/cidr.js'
import {
  AuthFailedError, DuplicateTunnelError, InvalidMessageError, MportError, NameTakenError, PortInUseError, PortNotAllowedError, SessionClosedError, TunnelLimitError,
} from '../errors.js'
import { Session } from '../mux/session.js'
import { listenTls, type TlsListener } from '../transport/tls.js'
import { countFreshReadBytes } from '../transport/gc-tuning.js'
import { FailureLimiter, type Principal } from './auth.js'
import { handshakeClient, refuseClient, type ClientHandshakeOptions } from './client-handshake.js'
import type { ControlChannel } from './control.js'
import { Lease, type PublicTunnel } from './lease.js'
import { HttpFront, type FrontTarget } from './http-front.js'
import type { ClientMessage, OpenRequest } from './messages.js'
import { bindPublicPort } from './ports.js'
import { Accounts, type Account } from './accounts.js'
import { tunnelInfo, type ClientInfo, type RelayEvents, type TunnelInfo } from './relay-events.js'
import { RouteTable } from './routes.js'
import { resolveRelayOptions, type RelayOptions, type ResolvedRelayOptions } from './relay-options.js'
import { VisitorForwarder } from './visitor-forwarder.js'

export type { ClientInfo, ConnectionInfo, RelayEvents, TunnelInfo } from './relay-events.js'
export { DEFAULT_CONTROL_PORT, DEFAULT_PORT_RANGE, type RelayOptions } from './relay-options.js'

export const AGENT = 'mport-relay/0.1.0'

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
  readonly #opts: ResolvedRelayOptions
  readonly #accounts: Accounts
  #accountingTimer: NodeJS.Timeout | undefined
  readonly #handshake: ClientHandshakeOptions
  readonly #visitors: VisitorForwarder
  readonly #routes: RouteTable<FrontTarget>
  #front: HttpFront | undefined
  /** Where the shared ports actually listen (after listen()). */
  #httpAddress: net.AddressInfo | undefined
  #httpsAddress: net.AddressInfo | undefined
  readonly #leases = new Map<string, Lease<ClientConn>>()
  readonly #sessions = new Set<Session>()
  readonly #conns = new Set<ClientConn>()
  #listener: TlsListener | undefined
  #listening: Promise<net.AddressInfo> | undefined
  #closing = false
  #nextClientId = 1

  constructor (options: RelayOptions) {
    super()
    this.#opts = resolveRelayOptions(options)
    this.#handshake = {
      timeout: this.#opts.handshakeTimeout,
      authenticator: this.#opts.authenticator,
      limiter: new FailureLimiter(this.#opts.authFailureLimit.max, this.#opts.authFailureLimit.windowMs),
      onAuthFailed: (remoteAddress, err) => this.emit('auth-failed', remoteAddress, err),
    }
    this.#visitors = new VisitorForwarder(options.policy, {
      onConnection: info => this.emit('connection', info),
      onConnectionClosed: (info, stats) => this.emit('connection-closed', info, stats),
      onRefused: (info, err) => this.emit('visitor-refused', info, err),
      onWarning: err => this.emit('warning', err),
    })
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
          ...tunnelInfo(lease, t),
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
      refuseClient(conn.session, conn.control, new AuthFailedError('the token was revoked or its user disabled'))
      setTimeout(() => conn.session.destroy(), 1000).unref()
    }
    return n
  }

  /** Number of connected clients. */
  get clientCount (): number {
    return this.#sessions.size
  }

  /** Starts listening; calling it again returns the same address (one listener, one timer). */
  listen (): Promise<net.AddressInfo> {
    this.#listening ??= this.#listen().catch((err: unknown) => {
      this.#listening = undefined // a failed listen (port in use) may be retried
      throw err
    })
    return this.#listening
  }

  async #listen (): Promise<net.AddressInfo> {
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
    this.#visitors.stop()
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
    socket.on('data', countTlsRead) // each TLS record read is a new Buffer (gc-tuning.ts)
    session.on('close', () => this.#sessions.delete(session))
    this.#serveClient(session, socket, remoteAddress).catch((err: Error) => {
      if (!(err instanceof MportError)) {
        this.emit('warning', err)
        session.destroy(err)
        return
      }
      // Let the typed error reach the client before the GoAway, then hang up even if it lingers.
      setTimeout(() => session.destroy(), 1000).unref()
    })
  }

  /** Handshake, then the client takes up its lease (a new one, or its old one back) and is served. */
  async #serveClient (session: Session, socket: TLSSocket, remoteAddress: string): Promise<void> {
    const { control, login } = await handshakeClient(session, socket, remoteAddress, this.#handshake)
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

  async #serveControl (conn: ClientConn): Promise<void> {
    for (;;) {
      let msg: ClientMessage
      try {
        msg = await conn.control.recv()
      } catch (err) {
        // Bad or oversized messages end this client with a typed error; a closed stream ends it quietly.
        if (err instanceof MportError && err.code !== 'MPORT_ERR_SESSION_CLOSED') refuseClient(conn.session, conn.control, err)
        else { conn.control.end(); void conn.session.close() } // open visitor connections may finish
        return
      }
      switch (msg.t) {
        case 'open': await this.#openTunnel(conn, msg); break
        case 'close': this.#closeTunnel(conn.lease, msg.id, 'closed by client'); break
        case 'hello':
        case 'auth':
          refuseClient(conn.session, conn.control, new InvalidMessageError(`unexpected "${msg.t}" after the handshake`))
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
      this.emit('tunnel-up', tunnelInfo(lease, existing))
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
        t.server = await bindPublicPort(this.#opts.bindHost, msg.port, this.#opts.portRange, socket => this.#visitors.accept(lease, t, socket), reservedByOther)
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
      this.emit('tunnel-up', tunnelInfo(lease, t))
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
    const target = this.#visitors.frontTarget(lease, t)
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
    this.emit('tunnel-down', tunnelInfo(lease, t), reason)
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

  // ---- Accounts: limits, usage, revocation ----

  /** Every accounting interval: usage counted, quotas enforced; every 5th: revoked tokens cut, plans refreshed. */
  async #accountingRound (): Promise<void> {
    await this.#accounts.round({
      sessions: () => [...this.#conns].map(conn => ({
        tokenId: conn.tokenId,
        revoke: () => {
          refuseClient(conn.session, conn.control, new AuthFailedError('the token was revoked or its user disabled'))
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
}

function countTlsRead (chunk: Buffer): void {
  countFreshReadBytes(chunk.length)
}

function userPass (value: string): [string, string] {
  const c = parseBasicAuthValue(value)
  return [c.user, c.pass]
}

function assertNever (x: never): never {
  throw new InvalidMessageError(`unhandled message ${JSON.stringify(x)}`)
}
