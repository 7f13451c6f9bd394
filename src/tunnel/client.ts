/**
 * Client: the private side. Keeps one TLS connection to the relay (reconnecting with
 * exponential backoff and jitter, forever by default), asks for its tunnels, and for every
 * visitor stream the relay opens dials the local service and pipes both ways.
 */
import { EventEmitter } from 'node:events'
import net from 'node:net'
import type { TLSSocket } from 'node:tls'
import {
  errorFromWire, InvalidMessageError, LocalUnreachableError, MessageTooLargeError, MportError, SessionClosedError,
} from '../errors.js'
import type { MuxConfig } from '../mux/config.js'
import { Session } from '../mux/session.js'
import type { MuxStream } from '../mux/stream.js'
import { connectTls, exportAuthBinding } from '../transport/tls.js'
import type { KnownRelays } from '../transport/known-relays.js'
import { authProof, tokenId, tokenKey } from './auth.js'
import { ControlChannel } from './control.js'
import { CONTROL_VERSION, MAX_STREAM_HEADER, parseRelayMessage, parseStreamHeader, type LeaseTicket, type RelayMessage, type StreamHeader } from './messages.js'
import { pipeBoth, type ProxyDone, type ProxyResult } from './proxy.js'
import { normalizeIp } from '../access/cidr.js'
import { encodeProxyHeader } from '../http/proxy-protocol.js'
import { DEFAULT_CONTROL_PORT } from './relay.js'
import { parseHostPort, type TunnelSpec } from './spec.js'

export const CLIENT_AGENT = 'mport-connect/0.1.0'

export interface ClientOptions {
  /** Relay address, `host[:port]` (default port 7835). */
  relay: string
  token: string
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
  backoff?: { initial?: number, max?: number }
  /** Budget for TLS + hello + auth (default 10 s). */
  handshakeTimeout?: number
  /** Budget for dialing the local service (default 10 s). */
  localConnectTimeout?: number
  mux?: Partial<MuxConfig>
}

export interface TunnelStatus {
  id: number
  name: string
  local: string
  /** Public address on the relay, once opened. */
  remoteHost?: string
  remotePort?: number
  url?: string
  /** Why the relay refused it, if it did. */
  error?: MportError
  /** Open on the relay right now (false while reconnecting). */
  online: boolean
  connections: number
  totalConnections: number
  bytesIn: number
  bytesOut: number
}

export interface VisitorInfo { tunnel: string, remoteAddress: string, remotePort: number }

export interface ClientEvents {
  connecting: [attempt: number]
  connected: [info: { resumed: boolean, trust: string, fingerprint: string, principal: string }]
  tunnel: [status: TunnelStatus]
  'tunnel-error': [status: TunnelStatus, err: MportError]
  disconnected: [err: Error]
  reconnecting: [info: { delayMs: number, attempt: number, error: Error }]
  connection: [info: VisitorInfo]
  'connection-closed': [info: VisitorInfo, stats: { bytesIn: number, bytesOut: number, error?: Error }]
  /** A fatal error: the client stopped (wrong token, certificate mismatch, version mismatch). */
  error: [err: MportError]
  close: []
}

/** The shortest wait before a reconnect, so a relay that drops clients at once is not hammered. */
const MIN_BACKOFF = 50 // ms

/** Errors after which retrying cannot help. */
const FATAL = new Set(['MPORT_ERR_AUTH_FAILED', 'MPORT_ERR_CERT_MISMATCH', 'MPORT_ERR_CERT_UNTRUSTED', 'MPORT_ERR_VERSION_MISMATCH', 'MPORT_ERR_INVALID_CONFIG'])

export class Client extends EventEmitter<ClientEvents> {
  readonly #opts: ClientOptions
  readonly #relay: { host: string, port: number }
  readonly #tunnels: TunnelStatus[]
  readonly #specs = new Map<number, TunnelSpec>()
  #lease: LeaseTicket | undefined
  #session: Session | undefined
  #control: ControlChannel<RelayMessage> | undefined
  #closing = false
  #running: Promise<void> | undefined
  #sleep: { timer: NodeJS.Timeout, resolve (): void } | undefined
  #local = new Set<net.Socket>()

  constructor (options: ClientOptions) {
    super()
    this.#opts = options
    this.#relay = parseHostPort(options.relay, DEFAULT_CONTROL_PORT)
    this.#tunnels = options.tunnels.map((spec, i) => {
      this.#specs.set(i + 1, spec)
      return { id: i + 1, name: spec.name, local: `${spec.localHost}:${spec.localPort}`, online: false, connections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0 }
    })
  }

  get tunnels (): readonly TunnelStatus[] { return this.#tunnels }
  get connected (): boolean { return this.#session !== undefined && !this.#session.closed }

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

  /** Closes the connection and every proxied connection. */
  async close (): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    if (this.#sleep !== undefined) { clearTimeout(this.#sleep.timer); this.#sleep.resolve() }
    this.#control?.end()
    const s = this.#session
    if (s !== undefined) {
      const timer = setTimeout(() => s.destroy(), 2000)
      await s.close()
      clearTimeout(timer)
    }
    for (const sock of this.#local) sock.destroy()
    await this.#running?.catch(() => {})
    this.emit('close')
  }

  async #run (onUp: () => void, onFail: (err: Error) => void): Promise<void> {
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

  /** One connection's life: resolves with the error that ended it after it was up; throws if it never came up. */
  async #connectOnce (onUp: () => void): Promise<Error> {
    const timeout = this.#opts.handshakeTimeout ?? 10_000
    const { socket, input, fingerprint, trust } = await connectTls({
      host: this.#relay.host,
      port: this.#relay.port,
      timeout,
      ...(this.#opts.servername !== undefined ? { servername: this.#opts.servername } : {}),
      ...(this.#opts.ca !== undefined ? { ca: this.#opts.ca } : {}),
      ...(this.#opts.fingerprint !== undefined ? { fingerprint: this.#opts.fingerprint } : {}),
      ...(this.#opts.insecure === true ? { insecure: true } : {}),
      ...(this.#opts.knownRelays !== undefined ? { knownRelays: this.#opts.knownRelays } : {}),
      reuseReadBuffer: true,
    })
    const session = new Session(socket, {
      client: true, keepAliveInterval: 5_000, keepAliveTimeout: 10_000, ...this.#opts.mux, ...(input !== undefined ? { input } : {}),
    })
    this.#session = session
    // Listen before the handshake: the relay may open visitor streams as soon as it welcomed us.
    session.on('stream', s => this.#onVisitor(s))
    const ended = new Promise<Error>(resolve => session.once('close', err => resolve(err ?? new SessionClosedError('relay closed the connection'))))
    try {
      const control = await this.#handshake(session, socket, timeout, { trust, fingerprint })
      this.#control = control
      onUp()
      this.#serveControl(control).catch(() => {})
      const err = await ended
      this.emit('disconnected', err)
      return err
    } catch (err) {
      session.destroy()
      throw err
    } finally {
      for (const t of this.#tunnels) { t.connections = 0; t.online = false }
    }
  }

  async #handshake (session: Session, socket: TLSSocket, timeout: number, tls: { trust: string, fingerprint: string }): Promise<ControlChannel<RelayMessage>> {
    const control = new ControlChannel(session.open(), parseRelayMessage)
    control.send({ t: 'hello', version: CONTROL_VERSION, agent: CLIENT_AGENT, ...(this.#lease !== undefined ? { lease: this.#lease } : {}) })
    const challenge = expect(await control.recvTimeout(timeout, 'relay handshake'), 'challenge')
    const proof = authProof(tokenKey(this.#opts.token), Buffer.from(challenge.nonce, 'base64url'), exportAuthBinding(socket))
    control.send({ t: 'auth', tokenId: tokenId(this.#opts.token), proof: proof.toString('base64url') })
    const welcome = expect(await control.recvTimeout(timeout, 'relay handshake'), 'welcome')
    this.#lease = welcome.lease
    this.emit('connected', { resumed: welcome.resumed, ...tls, principal: welcome.principal })
    for (const t of this.#tunnels) {
      const spec = this.#specs.get(t.id)!
      control.send({
        t: 'open',
        id: t.id,
        name: spec.name,
        port: spec.kind === undefined || spec.kind === 'tcp' ? t.remotePort ?? spec.remotePort : 0,
        ...(spec.kind !== undefined ? { kind: spec.kind } : {}),
        ...(spec.subdomain !== undefined ? { subdomain: spec.subdomain } : {}),
        ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
        ...(spec.basicAuth !== undefined ? { basicAuth: spec.basicAuth } : {}),
        ...(spec.allowIp !== undefined ? { allowIp: spec.allowIp } : {}),
        ...(spec.denyIp !== undefined ? { denyIp: spec.denyIp } : {}),
      })
    }
    let pending = this.#tunnels.length
    while (pending > 0) {
      const msg = await control.recvTimeout(timeout, 'tunnel requests')
      if (this.#handleControl(msg)) pending--
    }
    return control
  }

  async #serveControl (control: ControlChannel<RelayMessage>): Promise<void> {
    try {
      for (;;) this.#handleControl(await control.recv())
    } catch {
      // The relay ended the control stream (it is shutting down) or sent a fatal error: end
      // ours too, so the session can close once the visitor connections finish.
      control.end()
    }
  }

  /** Applies a relay message; returns true when it answered a tunnel request. */
  #handleControl (msg: RelayMessage): boolean {
    switch (msg.t) {
      case 'opened': {
        const t = this.#tunnels.find(x => x.id === msg.id)
        if (t === undefined) return false
        t.remoteHost = msg.host
        t.remotePort = msg.port
        t.url = msg.url ?? `tcp://${msg.host.includes(':') ? `[${msg.host}]` : msg.host}:${msg.port}`
        t.online = true
        delete t.error
        this.emit('tunnel', t)
        return true
      }
      case 'closed': {
        const t = this.#tunnels.find(x => x.id === msg.id)
        if (t === undefined) return false
        t.error = errorFromWire(msg.code, msg.message)
        t.online = false
        delete t.url
        this.emit('tunnel-error', t, t.error)
        return true
      }
      case 'error': throw errorFromWire(msg.code, msg.message)
      default: throw new InvalidMessageError(`unexpected "${msg.t}" from the relay`)
    }
  }

  // ---- Visitors ----

  #onVisitor (stream: MuxStream): void {
    stream.on('error', ignore) // reported through proxy()
    readStreamHeader(stream, this.#opts.handshakeTimeout ?? 10_000).then(header => {
      const spec = this.#specs.get(header.id)
      const status = this.#tunnels.find(t => t.id === header.id)
      if (spec === undefined || status === undefined) { stream.destroy(); return }
      const info: VisitorInfo = { tunnel: spec.name, remoteAddress: header.addr, remotePort: header.port }
      this.#dialLocal(stream, spec, status, info, header)
    }, () => stream.destroy())
  }

  #dialLocal (stream: MuxStream, spec: TunnelSpec, status: TunnelStatus, info: VisitorInfo, header: StreamHeader): void {
    const local = net.connect({ host: spec.localHost, port: spec.localPort, noDelay: true, allowHalfOpen: true })
    this.#local.add(local)
    const timer = setTimeout(() => local.destroy(new Error(`timed out after ${this.#opts.localConnectTimeout ?? 10_000} ms`)), this.#opts.localConnectTimeout ?? 10_000)
    const onConnectError = (err: Error): void => {
      clearTimeout(timer)
      this.#local.delete(local)
      stream.destroy() // RST: the relay closes the visitor at once
      const e = new LocalUnreachableError(`${spec.localHost}:${spec.localPort}`, (err as NodeJS.ErrnoException).code ?? err.message, { cause: err })
      this.emit('connection-closed', info, { bytesIn: 0, bytesOut: 0, error: e })
    }
    local.once('error', onConnectError)
    local.once('connect', () => {
      clearTimeout(timer)
      local.off('error', onConnectError)
      this.#proxyLocal(stream, local, spec, status, info, header)
    })
  }

  /** Kept out of #dialLocal so that the connection's closures do not hold its dial timer. */
  #proxyLocal (stream: MuxStream, local: net.Socket, spec: TunnelSpec, status: TunnelStatus, info: VisitorInfo, header: StreamHeader): void {
    if (spec.proxyProtocol !== undefined) local.write(proxyHeader(spec.proxyProtocol, header))
    status.connections++
    status.totalConnections++
    this.emit('connection', info)
    pipeBoth(stream, local, { aToB: 0, bToA: 0 }, undefined, new LocalConnection(local, status, info, this.#localDone))
  }

  /** A visitor's connection to the local service has finished (one function for all of them). */
  readonly #localDone = (c: LocalConnection, result: ProxyResult): void => {
    this.#local.delete(c.local)
    c.status.connections = Math.max(0, c.status.connections - 1)
    c.status.bytesIn += result.aToB
    c.status.bytesOut += result.bToA
    this.emit('connection-closed', c.info, { bytesIn: result.aToB, bytesOut: result.bToA, ...(result.error ? { error: result.error } : {}) })
  }
}

/** A visitor's connection to the local service, told by pipeBoth when it has finished: no closure per connection. */
class LocalConnection implements ProxyDone {
  readonly local: net.Socket
  readonly status: TunnelStatus
  readonly info: VisitorInfo
  readonly #done: (c: LocalConnection, result: ProxyResult) => void

  constructor (local: net.Socket, status: TunnelStatus, info: VisitorInfo, done: (c: LocalConnection, result: ProxyResult) => void) {
    this.local = local
    this.status = status
    this.info = info
    this.#done = done
  }

  proxyDone (result: ProxyResult): void {
    this.#done(this, result)
  }
}

function ignore (): void {}

/** The PROXY protocol header telling the local service who the visitor is. */
function proxyHeader (version: 1 | 2, h: StreamHeader): Buffer {
  const src = normalizeIp(h.addr)
  const dst = h.daddr === undefined ? undefined : normalizeIp(h.daddr)
  if (src === undefined || dst === undefined || src.includes(':') !== dst.includes(':')) return encodeProxyHeader(version, undefined)
  return encodeProxyHeader(version, { source: { address: src, port: h.port }, destination: { address: dst, port: h.dport ?? 0 } })
}

function expect<T extends RelayMessage['t']> (msg: RelayMessage, t: T): Extract<RelayMessage, { t: T }> {
  if (msg.t === 'error') throw errorFromWire(msg.code, msg.message)
  if (msg.t !== t) throw new InvalidMessageError(`expected "${t}" from the relay, got "${msg.t}"`)
  return msg as Extract<RelayMessage, { t: T }>
}

/** Reads the length-prefixed header at the start of a visitor stream, leaving the rest buffered. */
export function readStreamHeader (stream: MuxStream, timeoutMs: number): Promise<StreamHeader> {
  return new Promise((resolve, reject) => {
    let length = -1
    const done = (err?: Error, h?: StreamHeader): void => {
      clearTimeout(timer)
      stream.off('readable', tryRead)
      stream.off('end', onEnd)
      stream.off('close', onEnd)
      if (err !== undefined) reject(err)
      else resolve(h!)
    }
    const onEnd = (): void => done(new InvalidMessageError('visitor stream ended before its header'))
    const tryRead = (): void => {
      try {
        if (length < 0) {
          const b = stream.read(2) as Buffer | null
          if (b === null) return
          length = b.readUInt16BE(0)
          if (length > MAX_STREAM_HEADER) throw new MessageTooLargeError(length, MAX_STREAM_HEADER)
        }
        const body = stream.read(length) as Buffer | null
        if (body === null) return
        done(undefined, parseStreamHeader(body))
      } catch (err) {
        done(err as Error)
      }
    }
    const timer = setTimeout(() => done(new InvalidMessageError('visitor stream header timed out')), timeoutMs)
    stream.on('readable', tryRead)
    stream.on('end', onEnd)
    stream.on('close', onEnd)
    tryRead()
  })
}
