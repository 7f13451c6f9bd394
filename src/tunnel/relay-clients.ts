/**
 * The relay's client connections, from accept to goodbye: each TLS connection becomes a mux
 * session, passes the handshake (relay-handshake.ts), takes up its lease (relay-leases.ts) and
 * has its control stream served (tunnels opened and closed through relay-tunnels.ts) until it
 * leaves; its lease then waits out the grace period for it to come back.
 */
import type { TLSSocket } from 'node:tls'
import { AuthFailedError, InvalidMessageError, MportError, SessionClosedError } from '../errors.js'
import { IpFilter } from '../access/cidr.js'
import type { MuxConfig } from '../mux/config.js'
import { ReceiveBufferPool } from '../mux/receive-buffers.js'
import { Session } from '../mux/session.js'
import type { Account, Accounts } from './accounts.js'
import type { ClusterHooks } from './cluster-hooks.js'
import { RELAY_AGENT } from './constants.js'
import type { ControlChannel } from './control.js'
import type { Lease } from './lease.js'
import type { ClientMessage } from './messages.js'
import type { ClientInfo, RelayEmitter } from './relay-events.js'
import { handshakeClient, hangUpAfterGrace, refuseClient, type ClientHandshakeOptions } from './relay-handshake.js'
import type { LeaseTable } from './relay-leases.js'
import type { FreshReadMeter } from './proxy.js'
import type { TunnelRegistry } from './relay-tunnels.js'
import { RateLimitedLog } from '../limits/rate-limited-log.js'

/**
 * The `refused` notices of one client connection (nothing for a client that did not ask for
 * them): one per tunnel and code per interval, and the count held back when an interval ends.
 */
function refusedNotices (control: ControlChannel<ClientMessage>, session: Session, wanted: boolean): ClientConn['refused'] {
  if (!wanted) return () => {}
  const latest = new Map<string, { id: number, err: MportError }>()
  const log = new RateLimitedLog({
    intervalMs: REFUSED_NOTICE_INTERVAL_MS,
    onHeldBack: (key, count) => {
      const l = latest.get(key)
      if (l !== undefined && !session.closed) control.send({ t: 'refused', id: l.id, code: l.err.code, message: l.err.message, count })
    },
  })
  session.on('close', () => { log.close(); latest.clear() })
  return (id, err) => {
    const key = `${id}\0${err.code}`
    if (latest.size < 1000 || latest.has(key)) latest.set(key, { id, err })
    const a = log.admit(key)
    if (a.print) control.send({ t: 'refused', id, code: err.code, message: err.message, count: a.suppressed + 1 })
  }
}

/** One authenticated client connection: the holder of its lease. */
export interface ClientConn {
  info: ClientInfo
  session: Session
  control: ControlChannel<ClientMessage>
  lease: Lease<ClientConn>
  account: Account
  tokenId: string
  /** The client's software, from its hello. */
  agent: string
  /** Sends `refused` for a visitor of one of its tunnels (when its hello asked for notices), at most one per tunnel and code per interval. */
  refused: (tunnelId: number, err: MportError) => void
}

/** At most one `refused` notice per tunnel and code per this many ms (with the count since the last). */
export const REFUSED_NOTICE_INTERVAL_MS = 10_000

export interface RelayClientsOptions {
  handshake: ClientHandshakeOptions
  mux: Partial<MuxConfig>
  /** Told the size of each TLS record read (each a new Buffer), if given. */
  onFreshRead: FreshReadMeter | undefined
  /** How long a departed client's lease is held for it. */
  leaseGrace: number // ms
  accounts: Accounts
  leases: LeaseTable<ClientConn>
  tunnels: TunnelRegistry
  events: RelayEmitter
  /** The cluster, when this relay is one node of several: a ticket another node issued is adopted. */
  cluster: ClusterHooks | undefined
}

export class RelayClients {
  readonly #o: RelayClientsOptions
  /** Every session, authenticated or still in its handshake. */
  readonly #sessions = new Set<Session>()
  /** Authenticated connections. */
  readonly #conns = new Set<ClientConn>()
  /** One pool for every client session: idle receive buffers are shared, not kept per client. */
  readonly #receiveBuffers = new ReceiveBufferPool()
  #nextClientId = 1
  #stopped = false
  /** Which addresses may open a client session (`client_allow_ip` / `client_deny_ip`). */
  #filter = new IpFilter()

  constructor (options: RelayClientsOptions) {
    this.#o = options
    this.#o.handshake.admit = addr => this.#filter.allows(addr) ? undefined : clientFiltered(addr)
  }

  /**
   * Which addresses may open a client session from now on; sessions from addresses it refuses
   * end (the client told why), the others are untouched. Returns how many ended.
   */
  setClientFilter (filter: IpFilter): number {
    this.#filter = filter
    let ended = 0
    for (const conn of [...this.#conns]) {
      if (filter.allows(conn.info.remoteAddress)) continue
      refuseClient(conn.session, conn.control, clientFiltered(conn.info.remoteAddress))
      hangUpAfterGrace(conn.session)
      ended++
    }
    return ended
  }

  /** How long a departed client's lease is held, for clients that leave from now on. */
  setLeaseGrace (ms: number): void {
    this.#o.leaseGrace = ms
  }

  /** Authenticated client connections. */
  get conns (): ReadonlySet<ClientConn> { return this.#conns }

  /** Connected clients, counting those still in their handshake. */
  get sessionCount (): number { return this.#sessions.size }

  /** A new TLS connection from a client. */
  accept (socket: TLSSocket): void {
    const remoteAddress = socket.remoteAddress ?? 'unknown'
    if (this.#stopped) { socket.destroy(); return }
    const session = new Session(socket, { client: false, keepAliveInterval: 15_000, keepAliveTimeout: 10_000, ...this.#o.mux, receiveBuffers: this.#receiveBuffers })
    this.#sessions.add(session)
    const meter = this.#o.onFreshRead
    if (meter !== undefined) socket.on('data', (chunk: Buffer) => meter(chunk.length)) // each TLS record read is a new Buffer
    session.on('close', () => this.#sessions.delete(session))
    this.#serve(session, socket, remoteAddress).catch((err: Error) => {
      if (!(err instanceof MportError)) {
        this.#o.events.emit('warning', err)
        session.destroy(err)
        return
      }
      // The typed error was sent before the GoAway; hang up even if the client lingers.
      hangUpAfterGrace(session)
    })
  }

  /**
   * Graceful shutdown: no new clients, and no lease held for a client that leaves; every control
   * stream ends (the client ends its side, then nothing holds the session), and the sessions get
   * `graceMs` to drain before they are destroyed.
   */
  async close (graceMs: number): Promise<void> {
    this.#stopped = true
    for (const conn of this.#conns) conn.control.end()
    const sessions = [...this.#sessions]
    const drained = Promise.all(sessions.map(s => s.close()))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([drained, new Promise<void>(resolve => { timer = setTimeout(resolve, graceMs) })])
    clearTimeout(timer)
    for (const s of sessions) s.destroy()
  }

  /** Handshake, then the client takes up its lease (a new one, or its old one back) and is served. */
  async #serve (session: Session, socket: TLSSocket, remoteAddress: string): Promise<void> {
    const { control, login } = await handshakeClient(session, socket, remoteAddress, this.#o.handshake)
    const { hello, principal, tokenId } = login
    const account = await this.#o.accounts.for(principal)
    if (session.closed) throw new SessionClosedError('client left during the handshake')

    // A ticket another node issued: its client moved here (that node died or dropped it); take the lease over.
    const cluster = this.#o.cluster
    if (cluster !== undefined && hello.lease !== undefined && this.#o.leases.get(hello.lease.id) === undefined) {
      const found = await cluster.findLease(hello.lease).catch((err: Error) => { this.#o.events.emit('warning', err); return undefined })
      if (session.closed) throw new SessionClosedError('client left during the handshake')
      if (found !== undefined && found.principalId === principal.id) this.#o.leases.adopt(found, principal)
    }
    // Reclaim the lease if the ticket proves it, replacing a stale connection still holding it.
    const { lease, ticket, resumed } = this.#o.leases.take(hello.lease, principal)
    cluster?.leaseHeld({ id: lease.id, principalId: principal.id, secretHash: lease.secretHash })
    const stale = lease.holder
    const conn: ClientConn = {
      info: { id: `c${this.#nextClientId++}`, principal, remoteAddress, resumed, agent: hello.agent },
      session,
      control,
      lease,
      account,
      tokenId,
      agent: hello.agent,
      refused: refusedNotices(control, session, hello.notices === true),
    }
    lease.attach(conn)
    if (stale !== undefined) stale.session.destroy()
    this.#conns.add(conn)
    session.on('close', err => { this.#conns.delete(conn); this.#gone(conn, err) })
    control.send({ t: 'welcome', lease: ticket, resumed, principal: principal.name, agent: RELAY_AGENT, session: conn.info.id })
    session.on('stray', frame => this.#o.events.emit('stray', conn.info, frame))
    session.on('rtt', rtt => this.#o.events.emit('rtt', conn.info, rtt))
    this.#o.events.emit('client', conn.info)
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
        case 'open': await this.#o.tunnels.open(conn, msg); break
        case 'close': this.#o.tunnels.close(conn.lease, msg.id, 'closed by client'); break
        case 'drain':
          // Acknowledged after the members stop being picked: a stream opened to this client before it arrives first.
          this.#o.tunnels.drain(conn.lease)
          conn.control.send({ t: 'draining' })
          break
        case 'health': this.#o.tunnels.health(conn.lease, msg.id, msg.healthy, msg.detail); break
        case 'hello':
        case 'auth':
          refuseClient(conn.session, conn.control, new InvalidMessageError(`unexpected "${msg.t}" after the handshake`))
          return
        default: assertNever(msg)
      }
    }
  }

  #gone (conn: ClientConn, err: Error | undefined): void {
    this.#o.events.emit('client-closed', conn.info, err)
    const lease = conn.lease
    if (lease.holder !== conn) return // replaced by a newer connection
    if (this.#stopped) return
    this.#o.leases.detach(lease, this.#o.leaseGrace, () => this.#o.tunnels.releaseLease(lease, 'client did not come back'))
    this.#o.tunnels.holderChanged(lease)
  }
}

/** The refusal of a client whose address the relay's client IP filter does not allow (final for the client, like a wrong token). */
function clientFiltered (addr: string): AuthFailedError {
  return new AuthFailedError(`${addr} may not open a client session on this relay (client_allow_ip / client_deny_ip)`)
}

function assertNever (x: never): never {
  throw new InvalidMessageError(`unhandled message ${JSON.stringify(x)}`)
}
