/**
 * Client: the private side. Keeps one TLS connection to the relay (reconnecting with
 * exponential backoff and jitter, forever by default), runs the handshake on each
 * (client-handshake.ts), asks for its tunnels and follows what the relay says about them; the
 * visitor streams the relay opens go to the local services through client-dialer.ts.
 */
import { EventEmitter } from 'node:events'
import { errorFromWire, InvalidMessageError, MportError, SessionClosedError } from '../errors.js'
import type { MuxConfig } from '../mux/config.js'
import { Session } from '../mux/session.js'
import { TransportMemory } from '../transport/transport-memory.js'
import type { KnownRelays } from '../transport/known-relays.js'
import { LocalDialer } from './client-dialer.js'
import { HealthChecks, type HealthResult, type HealthTimer } from './client-health.js'
import type { ClientEvents, TunnelStatus } from './client-events.js'
import { DEFAULT_FASTER_CHECK_INTERVAL, dialRelay, FasterTransportCheck, relayDialOptions, type ClientTransportOptions } from './client-transport.js'
import type { HttpVisitorTap } from './client-tap.js'
import { handshakeRelay } from './client-handshake.js'
import { memoryOnlyLeaseStore, type LeaseStore, type RememberedTunnel } from './client-lease-store.js'
import { TunnelRetries, type TunnelRetryOptions } from './client-retries.js'
import { diffTunnels, idsFromStoredLease, type TunnelChanges } from './client-tunnel-set.js'
import { DEFAULT_CONTROL_PORT } from './constants.js'
import type { ControlChannel } from './control.js'
import type { ClientMessage, LeaseTicket, OpenRequest, RelayMessage } from './messages.js'
import type { FreshReadMeter } from './proxy.js'
import { parseHostPort, type TunnelSpec } from './spec.js'

/** What a Client is given: the relay, the token, the tunnels, how to trust the relay, and how to retry. */
export interface ClientOptions extends ClientTransportOptions {
  /** Relay address, `host[:port]` (default port 7835). */
  relay: string
  /**
   * Other relays of the same cluster (`host[:port]`, sharing its certificate and store): after
   * `relay` drops the connection or cannot be reached, the next one is tried, and so on in turn.
   * The lease moves with the client, so its ports and names come back on the node it reaches.
   */
  fallbackRelays?: readonly string[]
  /** The access token; only its id and an HMAC proof go on the wire, never the token itself. */
  token: string
  /** The tunnels to open, in order (their ids are 1, 2, …; setTunnels changes the list later). */
  tunnels: TunnelSpec[]
  /** Pin the relay's certificate (`sha256:<hex>`, as the relay prints it). */
  fingerprint?: string
  /** Extra CA certificates to trust (PEM). */
  ca?: string | Buffer
  /** Accept any certificate. For development only. */
  insecure?: boolean
  /** Trust-on-first-use store for self-signed relays. */
  knownRelays?: KnownRelays
  /** TLS server name (default: the relay host). */
  servername?: string
  /** Reconnect after a drop (default true); the first connection is retried only with retryInitial. */
  reconnect?: boolean
  /** Keep retrying when the very first connection fails with a network error (default false). */
  retryInitial?: boolean
  /** Reconnect delays in ms: full jitter up to `initial` × 2^(attempt−1), capped at `max` (defaults 500 and 30 000). */
  backoff?: { initial?: number, max?: number }
  /** Budget for TLS + hello + auth (default 10 s). */
  handshakeTimeout?: number
  /** Budget for dialing the local service (default 10 s). */
  localConnectTimeout?: number
  /** Multiplexer settings for the relay connection, over the client's defaults (keepalive every 5 s, 10 s timeout). */
  mux?: Partial<MuxConfig>
  /** Told the size of every socket read that arrived in a new Buffer (`mport/gc-tuning`'s meter); default: nothing. */
  onFreshRead?: FreshReadMeter
  /**
   * Where the lease ticket and each tunnel's last public address outlive the process, so a
   * restarted client gets its ports and names back (LeaseFile keeps them on disk); default:
   * in memory only, for the life of this Client.
   */
  leaseStore?: LeaseStore
  /**
   * A tunnel refused because its address is taken or held waits and is asked for again: after
   * `initial` ms, doubling up to `max` (jittered; defaults 1000 and 30 000). false: it stays refused.
   */
  tunnelRetry?: TunnelRetryOptions | false
  /** Given a read-only tap on each visitor connection of an http tunnel (the inspector); default: none. */
  onHttpVisitor?: (tap: HttpVisitorTap) => void
  /** The timer the health checks are paced by (tests pass a manual clock's); default: real time. */
  healthTimer?: HealthTimer
}

/** drain()'s default bound on waiting for open visitor connections to finish. */
export const DEFAULT_DRAIN_TIMEOUT = 30_000 // ms

/** The shortest wait before a reconnect, so a relay that drops clients at once is not hammered. */
const MIN_BACKOFF = 50 // ms

/** Refusals of a tunnel that can end by themselves: the address is taken or held by someone else. */
const ADDRESS_HELD = new Set(['MPORT_ERR_PORT_IN_USE', 'MPORT_ERR_NAME_TAKEN', 'MPORT_ERR_RESERVATION_TAKEN'])

/** Errors after which retrying cannot help. */
const FATAL = new Set(['MPORT_ERR_AUTH_FAILED', 'MPORT_ERR_PROXY_AUTH_FAILED', 'MPORT_ERR_CERT_MISMATCH', 'MPORT_ERR_CERT_UNTRUSTED', 'MPORT_ERR_VERSION_MISMATCH', 'MPORT_ERR_INVALID_CONFIG'])

/** The private side of mport: exposes local services through a relay, over one TLS connection it keeps up. */
export class Client extends EventEmitter<ClientEvents> {
  readonly #opts: ClientOptions
  /** `relay` and the fallback relays; the next is tried after each failed or dropped connection. */
  readonly #relays: ReadonlyArray<{ host: string, port: number }>
  #relayIndex = 0
  #tunnels: TunnelStatus[]
  readonly #specs = new Map<number, TunnelSpec>()
  /** The id the next tunnel added by setTunnels gets: ids are never reused, so a late answer or visitor stream for a closed tunnel finds nothing. */
  #nextId: number
  /** Tunnels asked for on this connection and not answered for good yet. */
  readonly #awaiting = new Set<number>()
  /** The control channel while the first answers are awaited (before #control is set). */
  #opening: ControlChannel<RelayMessage> | undefined
  /** Tunnels removed while no connection was up: closed on the relay (their lease may hold them) on the next one. */
  readonly #closeOnConnect = new Set<number>()
  readonly #dialer: LocalDialer
  #lease: LeaseTicket | undefined
  #session: Session | undefined
  #control: ControlChannel<RelayMessage> | undefined
  #closing = false
  #running: Promise<void> | undefined
  #sleep: { timer: NodeJS.Timeout, resolve (): void } | undefined
  #store: LeaseStore
  /** The last public address of each tunnel, by name: asked for again by tunnels that did not ask for a fixed one. */
  #remembered: Record<string, RememberedTunnel> = Object.create(null) as Record<string, RememberedTunnel>
  /** Tunnels whose remembered address was taken: they ask for any address until they have one. */
  readonly #forget = new Set<number>()
  /** Refused tunnels waiting for their address. */
  readonly #retries: TunnelRetries
  /** What `auto` found working, when no transportMemory was given: kept for this Client's reconnects. */
  readonly #transports = new TransportMemory(undefined)
  /** Health checks of group tunnels' local services. */
  readonly #health: HealthChecks
  /** Resolves drain()'s wait for the relay's `draining`. */
  #drainAcked: (() => void) | undefined

  constructor (options: ClientOptions) {
    super()
    this.#opts = options
    this.#relays = [options.relay, ...options.fallbackRelays ?? []].map(r => parseHostPort(r, DEFAULT_CONTROL_PORT))
    this.#nextId = 1
    this.#tunnels = options.tunnels.map(spec => this.#newStatus(spec))
    this.#store = options.leaseStore ?? memoryOnlyLeaseStore
    this.#retries = new TunnelRetries(options.tunnelRetry === false ? {} : options.tunnelRetry ?? {}, id => {
      const control = this.#control
      const t = this.#tunnels.find(x => x.id === id)
      if (control !== undefined && t !== undefined && !this.#closing) this.#request(control, t)
    })
    this.#dialer = new LocalDialer({
      tunnel: id => {
        const spec = this.#specs.get(id)
        const status = this.#tunnels.find(t => t.id === id)
        return spec === undefined || status === undefined ? undefined : { spec, status }
      },
      headerTimeout: options.handshakeTimeout ?? 10_000,
      connectTimeout: options.localConnectTimeout ?? 10_000,
      onFreshRead: options.onFreshRead,
      onConnection: info => this.emit('connection', info),
      onConnectionClosed: (info, stats) => this.emit('connection-closed', info, stats),
      onHttpVisitor: options.onHttpVisitor,
    })
    this.#health = new HealthChecks((id, result) => this.#healthChanged(id, result), options.healthTimer)
  }

  /** Every tunnel's live status, in the order of `options.tunnels` (of the last setTunnels list). */
  get tunnels (): readonly TunnelStatus[] { return this.#tunnels }
  /** True while a connection to the relay is open (from the TLS handshake on, until it drops). */
  get connected (): boolean { return this.#session !== undefined && !this.#session.closed }
  /** Bytes `tunnel` moved so far, its open connections included (its status counts finished ones only): for rates. */
  bytesSoFar (tunnel: TunnelStatus): { bytesIn: number, bytesOut: number } {
    const open = this.#dialer.openBytes(tunnel)
    return { bytesIn: tunnel.bytesIn + open.bytesIn, bytesOut: tunnel.bytesOut + open.bytesOut }
  }

  /** The relay connection's latest mux ping round trip in ms (0 before the first answer or while disconnected). */
  get rtt (): number { return this.connected ? this.#session!.rtt : 0 }

  /**
   * Connects and opens the tunnels; resolves with their status once the relay answered every
   * request. Rejects when the first connection fails (unless retryInitial) or fails fatally.
   */
  start (): Promise<readonly TunnelStatus[]> {
    if (this.#running !== undefined) throw new SessionClosedError('client already started')
    return new Promise((resolve, reject) => {
      let first = true
      this.#running = this.#run(() => { first = false; resolve(this.#tunnels) }, err => {
        if (first) { first = false; reject(err) }
      })
    })
  }

  /**
   * Replaces the tunnel list while the client runs, compared by name: new names are opened,
   * missing ones closed, a tunnel whose spec differs is replaced (closed, then opened; without a
   * fixed address it asks for the one it had), and the rest are not touched, nor are their
   * visitor connections. `leaseStore`: where the lease is kept from now on (the one for the new
   * list); the old store is discarded. Throws InvalidConfigError when two specs share a name.
   */
  setTunnels (specs: readonly TunnelSpec[], options: { leaseStore?: LeaseStore } = {}): TunnelChanges {
    if (this.#closing) throw new SessionClosedError('client closed')
    const changes = diffTunnels(this.#tunnels.map(t => this.#specs.get(t.id)!), specs)
    // Only a live connection: in a 'disconnected' listener the old channel is still set, but dead.
    const control = this.connected ? this.#control ?? this.#opening : undefined
    const kept = new Map(this.#tunnels.filter(t => changes.unchanged.includes(t.name)).map(t => [t.name, t]))
    for (const t of this.#tunnels) {
      if (kept.has(t.name)) continue
      this.#specs.delete(t.id)
      this.#health.stop(t.id)
      this.#retries.clear(t.id)
      this.#forget.delete(t.id)
      this.#awaiting.delete(t.id)
      if (control !== undefined) control.send({ t: 'close', id: t.id })
      else this.#closeOnConnect.add(t.id)
      // A changed tunnel keeps its remembered address; a removed one is forgotten.
      if (changes.removed.includes(t.name)) delete this.#remembered[t.name]
    }
    this.#tunnels = specs.map(spec => kept.get(spec.name) ?? this.#newStatus(spec))
    if (control !== undefined) for (const t of this.#tunnels) if (!kept.has(t.name)) this.#request(control, t)
    const store = options.leaseStore
    if (store === undefined || store === this.#store) this.#saveLease()
    else {
      const old = this.#store
      this.#store = store
      // Loaded first: a LeaseFile another live client uses is left alone; then the lease moves over.
      store.load().catch(() => undefined)
        .then(async () => { this.#saveLease(); await old.discard?.() })
        .catch((err: Error) => this.emit('warning', err))
    }
    return changes
  }

  /** A new tunnel's status (and its spec, under the next id). */
  #newStatus (spec: TunnelSpec): TunnelStatus {
    const id = this.#nextId++
    this.#specs.set(id, spec)
    return { id, name: spec.name, local: `${spec.localHost}:${spec.localPort}`, state: 'opening', online: false, connections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0 }
  }

  /**
   * Leaves gracefully: the relay is told to send no new visitors to this client's group tunnels
   * (their other members take them), the open visitor connections get up to `timeoutMs` to
   * finish, the group tunnels are closed on the relay (the group keeps its address while
   * another member is up), then close(). Without group tunnels or a connection it is close().
   */
  async drain (timeoutMs = DEFAULT_DRAIN_TIMEOUT): Promise<void> {
    const control = this.connected ? this.#control : undefined
    const grouped = this.#tunnels.filter(t => this.#specs.get(t.id)?.group !== undefined)
    if (control !== undefined && grouped.length > 0 && !this.#closing) {
      const deadline = Date.now() + timeoutMs
      const acked = new Promise<void>(resolve => { this.#drainAcked = resolve })
      control.send({ t: 'drain' })
      // After `draining`, no new visitor stream comes: the ones before it are in hand (busy).
      if (await untilOr(acked, () => !this.connected, deadline)) this.emit('draining')
      await untilOr(undefined, () => this.#dialer.busy === 0 || !this.connected, deadline)
      for (const t of grouped) control.send({ t: 'close', id: t.id })
    }
    await this.close()
  }

  /** Closes the connection and every proxied connection. */
  async close (): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    this.#health.stopAll()
    if (this.#sleep !== undefined) { clearTimeout(this.#sleep.timer); this.#sleep.resolve() }
    this.#retries.stop()
    this.#control?.end()
    const s = this.#session
    if (s !== undefined) {
      const timer = setTimeout(() => s.destroy(), 2000)
      await s.close()
      clearTimeout(timer)
    }
    this.#dialer.destroyAll()
    await this.#running?.catch(() => {})
    this.emit('close')
  }

  // ---- The reconnect loop ----

  async #run (onUp: () => void, onFail: (err: Error) => void): Promise<void> {
    await this.#loadLease()
    let attempt = 0
    let everUp = false
    while (!this.#closing) {
      attempt++
      this.emit('connecting', attempt)
      let err: Error
      try {
        err = await this.#connectOnce(() => { everUp = true; attempt = 0; onUp() })
      } catch (e) {
        err = e as Error
      }
      if (this.#closing) break
      const fatal = err instanceof MportError && FATAL.has(err.code)
      const retry = this.#opts.reconnect !== false && (everUp || this.#opts.retryInitial === true)
      if (fatal || !retry) {
        onFail(err)
        if (err instanceof MportError && this.listenerCount('error') > 0) this.emit('error', err)
        this.#closing = true
        break
      }
      this.#relayIndex = (this.#relayIndex + 1) % this.#relays.length // another node of the cluster, if there are several
      const delayMs = this.#backoff(attempt)
      this.emit('reconnecting', { delayMs, attempt, error: err })
      await new Promise<void>(resolve => { this.#sleep = { timer: setTimeout(resolve, delayMs), resolve } })
      this.#sleep = undefined
    }
  }

  /** Exponential backoff with full jitter: uniform in [0, min(max, initial × 2^(attempt−1))]. */
  #backoff (attempt: number): number {
    const initial = this.#opts.backoff?.initial ?? 500
    const max = this.#opts.backoff?.max ?? 30_000
    const ceiling = Math.min(max, initial * 2 ** Math.min(Math.max(attempt - 1, 0), 20))
    // Full jitter: clients of a restarted relay spread out instead of reconnecting at once.
    return Math.max(MIN_BACKOFF, Math.round(Math.random() * ceiling))
  }

  // ---- The lease between processes, and tunnels waiting for their address ----

  async #loadLease (): Promise<void> {
    try {
      const stored = await this.#store.load()
      if (stored === undefined) return
      this.#lease = stored.ticket
      for (const t of this.#tunnels) {
        const had = stored.tunnels[t.name]
        if (had !== undefined) this.#remembered[t.name] = had
      }
      // The ids the stored lease knows the tunnels by (a reload may have renumbered them).
      const { ids, stale, next } = idsFromStoredLease(this.#tunnels.map(t => t.name), stored.tunnels)
      const specs = this.#tunnels.map(t => this.#specs.get(t.id)!)
      this.#specs.clear()
      this.#tunnels.forEach((t, i) => { t.id = ids[i]!; this.#specs.set(t.id, specs[i]!) })
      this.#nextId = Math.max(this.#nextId, next)
      for (const id of stale) this.#closeOnConnect.add(id)
    } catch (err) {
      this.emit('warning', err as Error)
    }
  }

  #saveLease (): void {
    this.#store.save({ ...(this.#lease !== undefined ? { ticket: this.#lease } : {}), tunnels: { ...this.#remembered } })
      .catch((err: Error) => this.emit('warning', err))
  }

  /** Remembers the address a tunnel got, for the next connection or process. */
  #remember (t: TunnelStatus, spec: TunnelSpec): void {
    const tcp = spec.kind === undefined || spec.kind === 'tcp'
    const had: RememberedTunnel = { id: t.id }
    if (tcp && t.remotePort !== undefined) had.port = t.remotePort
    // A random name: the relay's host for it is `<label>.<domain>`.
    else if (!tcp && spec.subdomain === undefined && spec.hostname === undefined && t.remoteHost !== undefined) had.subdomain = t.remoteHost.split('.')[0]!
    const before = this.#remembered[t.name]
    if (before?.id === had.id && before?.port === had.port && before?.subdomain === had.subdomain) return
    this.#remembered[t.name] = had
    this.#saveLease()
  }

  // ---- Health checks of group tunnels ----

  /** A group tunnel with a health check is up: the checks run (from its first opening on), and a new connection's relay hears the last result. */
  #checkHealth (t: TunnelStatus, control: ControlChannel<RelayMessage>): void {
    const spec = this.#specs.get(t.id)!
    if (spec.group === undefined || spec.healthCheck === undefined) return
    const last = this.#health.last(t.id)
    if (last === undefined) this.#health.start(t.id, spec.healthCheck, spec.localHost, spec.localPort)
    else if (!last.healthy) control.send(healthMessage(t.id, last))
  }

  #healthChanged (id: number, result: HealthResult): void {
    const t = this.#tunnels.find(x => x.id === id)
    if (t === undefined) return
    t.health = result.healthy ? 'healthy' : 'unhealthy'
    if (result.detail !== undefined) t.healthDetail = result.detail
    else delete t.healthDetail
    const control = this.connected ? this.#control ?? this.#opening : undefined
    if (t.online && control !== undefined) control.send(healthMessage(id, result))
    this.emit('health', t)
  }

  // ---- One connection ----

  /** One connection's life: resolves with the error that ended it after it was up; throws if it never came up. */
  async #connectOnce (onUp: () => void): Promise<Error> {
    const timeout = this.#opts.handshakeTimeout ?? 10_000
    const dial = relayDialOptions(this.#opts, this.#relays[this.#relayIndex]!, timeout, this.#transports)
    const { socket, input, fingerprint, trust, transport, proxy } = await dialRelay(dial)
    let fasterCheck: FasterTransportCheck | undefined
    const session = new Session(socket, {
      client: true, keepAliveInterval: 5_000, keepAliveTimeout: 10_000, ...this.#opts.mux, ...(input !== undefined ? { input } : {}),
    })
    this.#session = session
    // Listen before the handshake: the relay may open visitor streams as soon as it welcomed us.
    session.on('stream', s => this.#dialer.accept(s))
    session.on('stray', frame => this.emit('stray', frame))
    const ended = new Promise<Error>(resolve => session.once('close', err => resolve(err ?? new SessionClosedError('relay closed the connection'))))
    try {
      const { control, welcome } = await handshakeRelay(session, socket, { token: this.#opts.token, lease: this.#lease, timeout })
      this.#lease = welcome.lease
      this.#saveLease()
      this.emit('connected', { resumed: welcome.resumed, trust, fingerprint, principal: welcome.principal, ...(welcome.session !== undefined ? { session: welcome.session } : {}), transport, ...(proxy !== undefined ? { proxy } : {}) })
      await this.#openTunnels(control, timeout)
      this.#control = control
      this.#retries.schedule()
      onUp()
      if (this.#opts.transport === 'auto' && transport !== 'tls') {
        fasterCheck = new FasterTransportCheck(dial, transport, this.#opts.fasterCheckInterval ?? DEFAULT_FASTER_CHECK_INTERVAL, found => this.emit('faster-transport', { transport: found, current: transport }))
      }
      this.#serveControl(control).catch(() => {})
      const err = await ended
      this.emit('disconnected', err)
      return err
    } catch (err) {
      session.destroy()
      throw err
    } finally {
      fasterCheck?.stop()
      this.#control = undefined
      this.#opening = undefined
      this.#awaiting.clear()
      this.#retries.stop(true)
      for (const t of this.#tunnels) {
        t.connections = 0
        t.online = false
        if (t.state === 'online') t.state = 'opening'
      }
    }
  }

  /** Asks for every tunnel (its old public address again, after a reconnect or restart) and waits for each answer. */
  async #openTunnels (control: ControlChannel<RelayMessage>, timeout: number): Promise<void> {
    for (const id of this.#closeOnConnect) control.send({ t: 'close', id })
    this.#closeOnConnect.clear()
    this.#opening = control
    for (const t of this.#tunnels) this.#request(control, t)
    while (this.#awaiting.size > 0) this.#answered(await control.recvTimeout(timeout, 'tunnel requests'), control)
  }

  /** Applies a relay message; an answer for good ends the wait for that tunnel. */
  #answered (msg: RelayMessage, control: ControlChannel<RelayMessage>): void {
    if (this.#handleControl(msg, control) && 'id' in msg) this.#awaiting.delete(msg.id)
  }

  /** Sends the open request for a tunnel: its fixed address, else the one it had (this process or a previous one), else any. */
  #request (control: ControlChannel<RelayMessage>, t: TunnelStatus): void {
    const spec = this.#specs.get(t.id)!
    const had = this.#forget.has(t.id) ? undefined : this.#remembered[t.name]
    this.#awaiting.add(t.id)
    control.send(openRequest(t, spec, had))
  }

  async #serveControl (control: ControlChannel<RelayMessage>): Promise<void> {
    try {
      for (;;) this.#answered(await control.recv(), control)
    } catch {
      // The relay ended the control stream (it is shutting down) or sent a fatal error: end
      // ours too, so the session can close once the visitor connections finish.
      control.end()
    }
  }

  /** Applies a relay message; returns true when it answered a tunnel request for good (not with a request sent again). */
  #handleControl (msg: RelayMessage, control: ControlChannel<RelayMessage>): boolean {
    switch (msg.t) {
      case 'opened': {
        const t = this.#tunnels.find(x => x.id === msg.id)
        if (t === undefined) return false
        t.remoteHost = msg.host
        t.remotePort = msg.port
        t.url = msg.url ?? `tcp://${msg.host.includes(':') ? `[${msg.host}]` : msg.host}:${msg.port}`
        t.online = true
        t.state = 'online'
        delete t.error
        delete t.waitingFor
        this.#retries.clear(t.id)
        this.#forget.delete(t.id)
        this.#remember(t, this.#specs.get(t.id)!)
        this.#checkHealth(t, control)
        this.emit('tunnel', t)
        return true
      }
      case 'group': {
        const t = this.#tunnels.find(x => x.id === msg.id)
        if (t === undefined) return false
        t.group = { name: msg.name, members: msg.members, available: msg.available }
        this.emit('tunnel-group', t)
        return false
      }
      case 'draining':
        this.#drainAcked?.()
        this.#drainAcked = undefined
        return false
      case 'closed': {
        const t = this.#tunnels.find(x => x.id === msg.id)
        if (t === undefined) return false
        const spec = this.#specs.get(t.id)!
        const err = errorFromWire(msg.code, msg.message)
        t.online = false
        delete t.url
        if (ADDRESS_HELD.has(err.code) && !this.#forget.has(t.id) && !asksFixed(spec) && this.#remembered[t.name] !== undefined) {
          // Its address from before is taken: any address will do for a tunnel that did not ask for one.
          this.#forget.add(t.id)
          this.#request(control, t)
          return false
        }
        t.error = err
        if (ADDRESS_HELD.has(err.code) && this.#opts.tunnelRetry !== false && !this.#closing) {
          t.state = 'waiting'
          t.waitingFor = describeAddress(spec)
          const retry = this.#retries.refused(t.id)
          if (this.#control === control) this.#retries.schedule(t.id)
          this.emit('tunnel-waiting', t, err, retry)
          return true
        }
        t.state = 'refused'
        delete t.waitingFor
        this.#retries.clear(t.id)
        this.emit('tunnel-error', t, err)
        return true
      }
      case 'error': throw errorFromWire(msg.code, msg.message)
      case 'refused': {
        const t = this.#tunnels.find(x => x.id === msg.id)
        if (t !== undefined) this.emit('visitor-refused', t, errorFromWire(msg.code, msg.message), msg.count)
        return false
      }
      default: throw new InvalidMessageError(`unexpected "${msg.t}" from the relay`)
    }
  }
}

function healthMessage (id: number, r: HealthResult): ClientMessage {
  return { t: 'health', id, healthy: r.healthy, ...(r.detail !== undefined ? { detail: r.detail.slice(0, 256) } : {}) }
}

/** Resolves true once `p` settles, or false once `done()` holds (checked every 20 ms) or `deadline` (epoch ms) passes. */
async function untilOr (p: Promise<void> | undefined, done: () => boolean, deadline: number): Promise<boolean> {
  let settled = false
  void p?.then(() => { settled = true })
  while (!settled && !done() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  return settled
}

/** True when a tunnel asked for a fixed address: a port, a subdomain or a hostname. */
function asksFixed (spec: TunnelSpec): boolean {
  return spec.kind === undefined || spec.kind === 'tcp' ? spec.remotePort !== 0 : spec.subdomain !== undefined || spec.hostname !== undefined
}

/** The address a refused tunnel waits for, as a user reads it. */
function describeAddress (spec: TunnelSpec): string {
  if (spec.kind === undefined || spec.kind === 'tcp') return spec.remotePort !== 0 ? `port ${spec.remotePort}` : 'a free port'
  return spec.hostname ?? (spec.subdomain !== undefined ? `name ${spec.subdomain}` : 'a free name')
}

/**
 * The open request for a tunnel: a tcp tunnel asks for its fixed port, else the port it had
 * (`had`, from this process or a stored lease); a named tunnel that asked for a random name
 * asks for the name it had.
 */
function openRequest (t: TunnelStatus, spec: TunnelSpec, had: RememberedTunnel | undefined): OpenRequest {
  const tcp = spec.kind === undefined || spec.kind === 'tcp'
  const subdomain = spec.subdomain ?? (spec.hostname === undefined ? had?.subdomain : undefined)
  return {
    t: 'open',
    id: t.id,
    name: spec.name,
    port: tcp ? (spec.remotePort !== 0 ? spec.remotePort : had?.port ?? 0) : 0,
    ...(spec.kind !== undefined ? { kind: spec.kind } : {}),
    ...(subdomain !== undefined ? { subdomain } : {}),
    ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
    ...(spec.basicAuth !== undefined ? { basicAuth: spec.basicAuth } : {}),
    ...(spec.allowIp !== undefined ? { allowIp: spec.allowIp } : {}),
    ...(spec.denyIp !== undefined ? { denyIp: spec.denyIp } : {}),
    ...(spec.group !== undefined ? { group: spec.group } : {}),
    ...(spec.group !== undefined && spec.groupKey !== undefined ? { groupKey: spec.groupKey } : {}),
    ...(spec.group !== undefined && spec.groupPolicy !== undefined ? { groupPolicy: spec.groupPolicy } : {}),
  }
}
