/**
 * Relay: the public side. Accepts clients over TLS (ALPN mport/1) and puts together the parts
 * that serve them: client connections (relay-clients.ts), the lease table (relay-leases.ts),
 * tunnels and their public ports and names (relay-tunnels.ts), accounting and revocation
 * (relay-accounting.ts), visitors (visitor-forwarder.ts) and the shared HTTP(S) front.
 */
import { EventEmitter } from 'node:events'
import type net from 'node:net'
import tls from 'node:tls'
import { SessionClosedError } from '../errors.js'
import { chainCertificates } from '../http/certificates.js'
import { routeHost } from '../http/names.js'
import { listenTls, type TlsListener } from '../transport/tls.js'
import { IpFilter, type IpGrant } from '../access/cidr.js'
import { Accounts } from './accounts.js'
import { FailureLimiter } from './auth.js'
import { HttpFront } from './http-front.js'
import { RelayAccounting } from './relay-accounting.js'
import { RelayClients, type ClientConn } from './relay-clients.js'
import { tunnelInfo, type RelayEvents, type TunnelInfo } from './relay-events.js'
import type { GroupInfo } from './tunnel-group.js'
import { LeaseTable } from './relay-leases.js'
import { resolveRelayOptions, type RelayOptions, type ResolvedRelayOptions } from './relay-options.js'
import type { RelayReconfiguration, RelayReconfigured } from './relay-reconfigure.js'
import { TunnelRegistry } from './relay-tunnels.js'
import { RelayWebSocketRoute } from './relay-websocket.js'
import { SelfSignedNames } from './self-signed-names.js'
import { VisitorForwarder } from './visitor-forwarder.js'
import type { LocalTunnels } from './cluster-hooks.js'

/** A live tunnel as `Relay.tunnels` lists it. */
export type TunnelListing = TunnelInfo & {
  key: string, principalId: string, kind: 'tcp' | 'http' | 'tls', url: string | undefined, connections: number, bytesIn: number, bytesOut: number, online: boolean
  /** The client's visitor filter in one line (`allow 10.0.0.0/8`, or `open to every address`). */
  filter: string
  /** True when the client gave an allow list (so grants matter). */
  restricted: boolean
  /** Addresses let through the allow list until a time (grantVisitor). */
  grants: IpGrant[]
  /** A load-balancing group's member: the group, with every member (this one included). */
  group?: GroupInfo
}

function groupOf (group: GroupInfo | undefined): { group?: GroupInfo } {
  return group === undefined ? {} : { group }
}

/** The public side of mport: accepts clients over TLS and gives their tunnels public ports and names. */
export class Relay extends EventEmitter<RelayEvents> {
  readonly #opts: ResolvedRelayOptions
  readonly #accounts: Accounts
  readonly #accounting: RelayAccounting
  readonly #visitors: VisitorForwarder
  readonly #leases = new LeaseTable<ClientConn>()
  readonly #tunnels: TunnelRegistry
  readonly #clients: RelayClients
  #front: HttpFront | undefined
  /** Where the shared ports actually listen (after listen()). */
  #httpAddress: net.AddressInfo | undefined
  #httpsAddress: net.AddressInfo | undefined
  #listener: TlsListener | undefined
  #listening: Promise<net.AddressInfo> | undefined
  #closing = false

  constructor (options: RelayOptions) {
    super()
    const opts = resolveRelayOptions(options)
    this.#opts = opts
    this.#visitors = new VisitorForwarder(options.policy, {
      onConnection: info => this.emit('connection', info),
      onConnectionClosed: (info, stats) => this.emit('connection-closed', info, stats),
      onRefused: (info, err) => this.emit('visitor-refused', info, err),
      onWarning: err => this.emit('warning', err),
      onExchange: (info, r) => this.emit('http-exchange', info, r),
      wantsExchanges: () => this.listenerCount('http-exchange') > 0,
    }, opts.onFreshRead)
    this.#accounts = new Accounts(options.policy, options.connectionsPerIpPerMinute ?? null)
    this.#tunnels = new TunnelRegistry({
      opts,
      leases: this.#leases,
      accounts: this.#accounts,
      visitors: this.#visitors,
      sharedPorts: () => ({ http: this.#httpAddress, https: this.#httpsAddress }),
      events: this,
    })
    this.#clients = new RelayClients({
      handshake: {
        timeout: opts.handshakeTimeout,
        authenticator: opts.authenticator,
        limiter: new FailureLimiter(opts.authFailureLimit.max, opts.authFailureLimit.windowMs),
        onAuthFailed: (remoteAddress, err) => this.emit('auth-failed', remoteAddress, err),
        onFailed: (remoteAddress, err) => this.emit('handshake-failed', remoteAddress, err),
      },
      mux: opts.mux,
      onFreshRead: opts.onFreshRead,
      leaseGrace: opts.leaseGrace,
      accounts: this.#accounts,
      leases: this.#leases,
      tunnels: this.#tunnels,
      events: this,
      cluster: opts.cluster,
    })
    this.#accounting = new RelayAccounting({
      accounts: this.#accounts,
      policy: opts.policy,
      intervalMs: opts.accountingInterval,
      conns: () => this.#clients.conns,
      quotaExceeded: (principal, err) => {
        // Every round finds a user still over quota; only a round that cuts something is news.
        if ((this.#accounts.get(principal.id)?.tunnels ?? 0) > 0) this.emit('quota-exceeded', principal.name, err)
        this.#tunnels.closeAllOf(principal.id, err)
      },
      warn: err => this.emit('warning', err),
    })
    opts.cluster?.attach(localTunnels(this.#leases, this.#visitors, this.#tunnels))
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

  /** Live tunnels, with their owner and counters (bytes include open connections'); `key` (`<lease>:<id>`) names one for closeTunnel(). */
  get tunnels (): TunnelListing[] {
    const out = []
    for (const lease of this.#leases.values()) {
      for (const t of lease.tunnels.values()) {
        const open = this.#visitors.openBytes(t)
        out.push({
          ...tunnelInfo(lease, t),
          key: `${lease.id}:${t.id}`,
          principalId: lease.principal.id,
          kind: t.kind,
          url: this.#tunnels.opened(t).url,
          connections: t.connections.size,
          bytesIn: t.bytesIn + open.bytesIn,
          bytesOut: t.bytesOut + open.bytesOut,
          online: lease.holder !== undefined,
          ...groupOf(this.#tunnels.groupInfo(t)),
          filter: t.filter.describe(),
          restricted: t.filter.allow.length > 0,
          grants: t.filter.grants(),
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
    this.#tunnels.closeAndTell(lease, tid, { code: 'MPORT_ERR_SESSION_CLOSED', message: reason })
    return true
  }

  /**
   * Lets `address` through the allow list of one tunnel (named by the `key` of `tunnels`) until
   * `until` (ms): "allow my current IP for N hours". Returns the tunnel's grants, or undefined
   * when there is no such tunnel. A tunnel without an allow list lets everyone in anyway; a
   * denied address stays denied. InvalidConfigError for a malformed address.
   */
  grantVisitor (key: string, address: string, until: number): IpGrant[] | undefined {
    const [leaseId, id] = key.split(':')
    const t = this.#leases.get(leaseId ?? '')?.tunnels.get(Number(id))
    if (t === undefined) return undefined
    t.filter.grant(address, until)
    return t.filter.grants()
  }

  /** Checks the user's live sessions against the policy now (after a token was revoked). */
  async revalidate (principalId: string): Promise<void> {
    await this.#accounting.revalidate(principalId)
  }

  /** Ends the live sessions of a user (all, or those authenticated with `tokenId`): revocation. */
  disconnect (principalId: string, tokenId?: string): number {
    return this.#accounting.disconnect(principalId, tokenId)
  }

  /**
   * True when an http tunnel holds `name` (a subdomain or custom hostname) on the shared ports,
   * so the relay terminates its TLS; also while its lease waits for the client to come back.
   */
  terminatesName (name: string): boolean {
    return this.#tunnels.lookup(routeHost(name, this.#opts.domain))?.kind === 'http'
  }

  /**
   * Applies a reload to the running relay without dropping what is still allowed: plans re-read
   * (a lower bandwidth shapes running transfers at once), the per-address connection rate, the
   * lease grace, the client IP filter (sessions from refused addresses end) and the reserved
   * subdomains (a live tunnel on one closes). Throws InvalidConfigError for a malformed address
   * before anything changes.
   */
  async reconfigure (changes: RelayReconfiguration): Promise<RelayReconfigured> {
    const filter = changes.clientIpFilter === undefined ? undefined : new IpFilter(changes.clientIpFilter)
    const done: RelayReconfigured = { tunnelsClosed: 0, clientsClosed: 0 }
    if (changes.leaseGrace !== undefined) this.#clients.setLeaseGrace(changes.leaseGrace)
    if (changes.connectionsPerIpPerMinute !== undefined) this.#accounts.setPerIpPerMinute(changes.connectionsPerIpPerMinute)
    if (changes.refreshPlans === true) await this.#accounts.refreshLimits(err => this.emit('warning', err))
    if (changes.connectionsPerIpPerMinute !== undefined || changes.refreshPlans === true) this.#tunnels.refreshRateLimits()
    if (filter !== undefined) done.clientsClosed = this.#clients.setClientFilter(filter)
    if (changes.reservedNames !== undefined) done.tunnelsClosed = this.#tunnels.setReservedNames(changes.reservedNames)
    return done
  }

  /** Number of connected clients. */
  get clientCount (): number {
    return this.#clients.sessionCount
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
      onClientError: (err, remoteAddress) => this.emit('handshake-failed', remoteAddress ?? 'unknown', err),
    }, socket => this.#clients.accept(socket))
    if (this.#opts.httpPort !== undefined || this.#opts.httpsPort !== undefined) {
      const o = this.#opts
      this.#front = new HttpFront({
        domain: o.domain,
        lookup: route => this.#tunnels.lookup(route) ?? o.cluster?.cachedTarget(route),
        findTarget: o.cluster === undefined ? undefined : route => o.cluster!.findTarget(route),
        secureContext: o.httpsCert !== undefined && o.httpsKey !== undefined ? tls.createSecureContext({ cert: o.httpsCert, key: o.httpsKey }) : undefined,
        // A custom hostname never matches the wildcard: without a certificate from `certificates`, a self-signed one for its exact name.
        certificates: chainCertificates(o.certificates, new SelfSignedNames(name => routeHost(name, o.domain).kind === 'hostname' && this.terminatesName(name))),
        acmeChallenges: o.acmeChallenges,
        // The WebSocket transport's endpoint: clients that can reach only these ports.
        upgrade: new RelayWebSocketRoute({
          cert: o.cert,
          key: o.key,
          handshakeTimeout: o.handshakeTimeout,
          accept: socket => this.#clients.accept(socket),
          onClientError: (err, remoteAddress) => this.emit('handshake-failed', remoteAddress ?? 'unknown', err),
        }),
        headersTimeout: o.headersTimeout,
        onFreshRead: o.onFreshRead,
        onWarning: err => this.emit('warning', err),
      })
      if (o.httpPort !== undefined) this.#httpAddress = await this.#front.listenHttp(o.bindHost, o.httpPort)
      if (o.httpsPort !== undefined) this.#httpsAddress = await this.#front.listenHttps(o.bindHost, o.httpsPort)
    }
    await this.#accounting.start()
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
    this.#tunnels.stop()
    this.#visitors.stop()
    this.#accounting.stop()
    const listener = this.#listener
    listener?.server.close()
    this.#leases.cancelExpiries()
    this.#tunnels.closeListeners()
    await this.#clients.close(graceMs)
    for (const lease of this.#leases.values()) this.#tunnels.releaseLease(lease, 'relay shutting down')
    await this.#front?.close()
    await listener?.close()
    this.#accounts.sampleAll() // the last counts
  }
}

/** How a cluster reaches this relay's tunnels (for visitors another node forwards here). */
function localTunnels (leases: LeaseTable<ClientConn>, visitors: VisitorForwarder, tunnels: TunnelRegistry): LocalTunnels {
  return {
    target: (leaseId, tunnelId) => {
      const lease = leases.get(leaseId)
      const t = lease?.tunnels.get(tunnelId)
      return lease === undefined || t === undefined ? undefined : visitors.frontTarget(lease, t)
    },
    close: (leaseId, tunnelId, err) => {
      const lease = leases.get(leaseId)
      if (lease !== undefined) tunnels.closeAndTell(lease, tunnelId, err)
    },
    * held () {
      for (const lease of leases.values()) for (const tunnel of lease.tunnels.values()) yield { lease, tunnel }
    },
    * leases () {
      for (const lease of leases.values()) yield { id: lease.id, principalId: lease.principal.id, secretHash: lease.secretHash }
    },
    drop: async (leaseId, reason) => {
      const lease = leases.get(leaseId)
      if (lease === undefined) return
      const servers = [...lease.tunnels.values()].flatMap(t => t.server?.listening === true ? [t.server] : [])
      const closed = Promise.all(servers.map(s => new Promise<void>(resolve => s.once('close', () => resolve()))))
      tunnels.releaseLease(lease, reason) // closes the listeners and cuts their visitors
      lease.holder?.session.destroy() // a stale connection: the client is on the other node now
      await closed
    },
  }
}
