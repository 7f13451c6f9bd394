/**
 * The client's dialer: every visitor stream the relay opens starts with a header naming the
 * tunnel and the visitor; the dialer reads it, connects to that tunnel's local service (within
 * a deadline; a refusal resets the stream, so the relay closes the visitor at once), writes a
 * PROXY protocol header when the tunnel asks for one, and pipes both ways.
 */
import net from 'node:net'
import { normalizeIp } from '../access/cidr.js'
import { InvalidMessageError, LocalUnreachableError, MessageTooLargeError } from '../errors.js'
import { encodeProxyHeader } from '../http/proxy-protocol.js'
import type { MuxStream } from '../mux/stream.js'
import type { TunnelStatus, VisitorInfo, VisitorStats } from './client-events.js'
import type { HttpVisitorTap } from './client-tap.js'
import { MAX_STREAM_HEADER, parseStreamHeader, type StreamHeader } from './messages.js'
import { pipeBoth, type FreshReadMeter, type ProxyDone, type ProxyResult } from './proxy.js'
import type { TunnelSpec } from './spec.js'

/** A tunnel the dialer can serve: what to dial, and the status to count its connections in. */
export interface DialTarget {
  spec: TunnelSpec
  status: TunnelStatus
}

export interface LocalDialerOptions {
  /** The tunnel a visitor stream's header names, if the client has it. */
  tunnel (id: number): DialTarget | undefined
  /** Budget for a visitor stream's header to arrive. */
  headerTimeout: number // ms
  /** Budget for dialing the local service. */
  connectTimeout: number // ms
  /** Told the size of each read from a local service (each a new Buffer), if given. */
  onFreshRead: FreshReadMeter | undefined
  onConnection (info: VisitorInfo): void
  onConnectionClosed (info: VisitorInfo, stats: VisitorStats): void
  /** Given each http tunnel's visitor connection once it is piped (ClientOptions.onHttpVisitor). */
  onHttpVisitor?: ((tap: HttpVisitorTap) => void) | undefined
}

export class LocalDialer {
  readonly #o: LocalDialerOptions
  /** Connections to local services, dialing or proxying. */
  readonly #local = new Set<net.Socket>()
  /** Connections being proxied, for the bytes of open connections (openBytes). */
  readonly #proxied = new Set<LocalConnection>()
  /** Visitor streams whose header is still being read. */
  #reading = 0

  constructor (options: LocalDialerOptions) {
    this.#o = options
  }

  /** A visitor stream the relay opened. */
  accept (stream: MuxStream): void {
    stream.on('error', ignore) // reported through proxy()
    this.#reading++
    readStreamHeader(stream, this.#o.headerTimeout).finally(() => { this.#reading-- }).then(header => {
      const target = this.#o.tunnel(header.id)
      if (target === undefined) { stream.destroy(); return }
      const info: VisitorInfo = { tunnel: target.spec.name, remoteAddress: header.addr, remotePort: header.port, conn: stream.id }
      this.#dial(stream, target.spec, target.status, info, header)
    }, () => stream.destroy())
  }

  /** Bytes so far of `status`'s open connections, visitor → service (in) and back (out). */
  openBytes (status: TunnelStatus): { bytesIn: number, bytesOut: number } {
    let bytesIn = 0
    let bytesOut = 0
    for (const c of this.#proxied) {
      if (c.status !== status) continue
      bytesIn += c.counters.aToB
      bytesOut += c.counters.bToA
    }
    return { bytesIn, bytesOut }
  }

  /** Visitor connections in hand: headers being read, local services being dialed or proxied. */
  get busy (): number { return this.#reading + this.#local.size }

  /** Ends every connection to a local service (the client is closing). */
  destroyAll (): void {
    for (const sock of this.#local) sock.destroy()
  }

  #dial (stream: MuxStream, spec: TunnelSpec, status: TunnelStatus, info: VisitorInfo, header: StreamHeader): void {
    const local = net.connect({ host: spec.localHost, port: spec.localPort, noDelay: true, allowHalfOpen: true })
    this.#local.add(local)
    const timer = setTimeout(() => local.destroy(new Error(`timed out after ${this.#o.connectTimeout} ms`)), this.#o.connectTimeout)
    const onConnectError = (err: Error): void => {
      clearTimeout(timer)
      this.#local.delete(local)
      stream.destroy() // RST: the relay closes the visitor at once
      const e = new LocalUnreachableError(`${spec.localHost}:${spec.localPort}`, (err as NodeJS.ErrnoException).code ?? err.message, { cause: err })
      this.#o.onConnectionClosed(info, { bytesIn: 0, bytesOut: 0, error: e })
    }
    local.once('error', onConnectError)
    local.once('connect', () => {
      clearTimeout(timer)
      local.off('error', onConnectError)
      this.#proxy(stream, local, spec, status, info, header)
    })
  }

  /** Kept out of #dial so that the connection's closures do not hold its dial timer. */
  #proxy (stream: MuxStream, local: net.Socket, spec: TunnelSpec, status: TunnelStatus, info: VisitorInfo, header: StreamHeader): void {
    if (spec.proxyProtocol !== undefined) local.write(proxyHeader(spec.proxyProtocol, header))
    status.connections++
    status.totalConnections++
    this.#o.onConnection(info)
    const c = new LocalConnection(local, status, info, this.#done)
    this.#proxied.add(c)
    pipeBoth(stream, local, c.counters, undefined, c, this.#o.onFreshRead)
    // Tapped after pipeBoth: its listeners move the bytes first, the tap only watches.
    if (spec.kind === 'http') this.#o.onHttpVisitor?.({ info, local: `${spec.localHost}:${spec.localPort}`, fromVisitor: stream, fromLocal: local })
  }

  /** A visitor's connection to the local service has finished (one function for all of them). */
  readonly #done = (c: LocalConnection, result: ProxyResult): void => {
    this.#local.delete(c.local)
    this.#proxied.delete(c)
    c.status.connections = Math.max(0, c.status.connections - 1)
    c.status.bytesIn += result.aToB
    c.status.bytesOut += result.bToA
    this.#o.onConnectionClosed(c.info, { bytesIn: result.aToB, bytesOut: result.bToA, ...(result.error ? { error: result.error } : {}) })
  }
}

/** A visitor's connection to the local service, told by pipeBoth when it has finished: no closure per connection. */
class LocalConnection implements ProxyDone {
  readonly local: net.Socket
  readonly status: TunnelStatus
  readonly info: VisitorInfo
  /** Kept up to date by pipeBoth while the connection lasts. */
  readonly counters = { aToB: 0, bToA: 0 }
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
