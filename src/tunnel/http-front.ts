/**
 * The relay's shared HTTP and HTTPS ports: many tunnels behind two ports, routed by name.
 *
 * HTTP: the first request head picks the tunnel by its Host; every request head on the
 * connection is then rewritten (X-Forwarded-*) while bodies stream through with backpressure.
 * HTTPS: the ClientHello's SNI picks the tunnel; `tls` tunnels get the encrypted bytes untouched
 * (the relay never sees plaintext), `http` tunnels are terminated here with the relay's
 * certificate and then served like HTTP. Visitors get a small page for every refusal.
 */
import net from 'node:net'
import tls from 'node:tls'
import { Duplex, type Transform } from 'node:stream'
import type { IpFilter } from '../access/cidr.js'
import type { BasicAuthChecker } from '../access/basic-auth.js'
import { acmeChallengeResponse, acmeChallengeToken, type AcmeChallengeResponder, type CertificateSource } from '../http/certificates.js'
import { routeHost, type Route } from '../http/names.js'
import { errorResponse, type ErrorStatus } from '../http/pages.js'
import { RequestHeadParser, type RequestHead } from '../http/request-head.js'
import { HttpRequestStream } from '../http/request-stream.js'
import { ClientHelloParser } from '../http/sni.js'
import { ExchangeMeter, type ExchangeRecord } from '../http/exchange-meter.js'
import { HttpError, MportError } from '../errors.js'
import { proxy, type FreshReadMeter } from './proxy.js'

/** A visitor connection's addresses: where it came from and which relay address it reached. */
export interface Visitor {
  addr: string
  port: number
  /** The relay address and port the visitor reached. */
  daddr: string
  dport: number
}

/** How the shared HTTP(S) front reaches one http or tls tunnel: its filter and auth, and how to open a visitor stream to it. */
export interface FrontTarget {
  readonly kind: 'http' | 'tls'
  readonly filter: IpFilter
  readonly auth: BasicAuthChecker | undefined
  /**
   * Opens a visitor stream towards the client (header sent); undefined while the tunnel is
   * offline or the visitor is refused. `counters` is kept up to date as bytes flow (usage and
   * quotas read it while the connection lasts). A load-balancing group answers once a member
   * has acknowledged the stream.
   */
  connect (visitor: Visitor, socket: net.Socket, counters: { aToB: number, bToA: number }): Duplex | undefined | Promise<Duplex | undefined>
  /** Bandwidth shaping for one connection (visitor → service, service → visitor), if the plan limits it. */
  shaping (): { up?: Transform, down?: Transform }
  /** The visitor's address is not allowed by `filter` (reported like the other refusals). */
  filtered (visitor: Visitor): void
  /** The visitor connection ended; bytes are visitor → service and back. */
  finished (socket: net.Socket, stats: { bytesIn: number, bytesOut: number, error?: Error }): void
  /** Where each HTTP exchange's metadata goes (method, path, status, duration, sizes); undefined: nobody records them, so none are read. */
  exchanges? (): ((visitor: Visitor, r: ExchangeRecord) => void) | undefined
}

export interface HttpFrontOptions {
  /** Base domain for subdomain routing (`<name>.<domain>`). */
  domain: string | undefined
  /** Finds the tunnel for a host name. */
  lookup (route: Route): FrontTarget | undefined
  /** Asked when `lookup` finds nothing: one of several relays asks the cluster which node holds the name. */
  findTarget?: ((route: Route) => Promise<FrontTarget | undefined>) | undefined
  /** Certificate for terminating TLS of http tunnels; without it the HTTPS port only passes `tls` tunnels through. */
  secureContext: tls.SecureContext | undefined
  /** Asked first, on every handshake the relay terminates, for a certificate by SNI; `secureContext` is the fallback. */
  certificates?: CertificateSource | undefined
  /** Answers `/.well-known/acme-challenge/<token>` on the HTTP port before any tunnel is looked up. */
  acmeChallenges?: AcmeChallengeResponder | undefined
  /** A visitor must send its first request head (or ClientHello) within this time. */
  headersTimeout: number // ms
  /** Told the size of each visitor socket read (each a new Buffer), if given. */
  onFreshRead?: FreshReadMeter | undefined
  /** Takes the requests it matches (the client WebSocket transport's endpoint) before any tunnel is routed. */
  upgrade?: UpgradeRoute | undefined
  onWarning (err: Error): void
}

/** A route on the shared ports ahead of the tunnels, by request (relay-websocket.ts). */
export interface UpgradeRoute {
  matches (head: RequestHead): boolean
  /** Takes over the connection: `io` carries it (plain or TLS-terminated), `rest` is what followed the head. */
  accept (io: Duplex, socket: net.Socket, head: RequestHead, rest: Buffer): void
}

export class HttpFront {
  readonly #opts: HttpFrontOptions
  readonly #servers: net.Server[] = []
  readonly #sockets = new Set<net.Socket>()
  readonly #meter: FreshReadMeter

  constructor (opts: HttpFrontOptions) {
    this.#opts = opts
    this.#meter = opts.onFreshRead ?? noMeter
  }

  async listenHttp (host: string, port: number): Promise<net.AddressInfo> {
    return await this.#listen(host, port, socket => this.#serveHttp(socket, socket, 'http'))
  }

  async listenHttps (host: string, port: number): Promise<net.AddressInfo> {
    return await this.#listen(host, port, socket => this.#serveTls(socket))
  }

  /** Stops accepting and closes every visitor connection. */
  async close (): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await Promise.all(this.#servers.map(s => new Promise<void>(resolve => s.close(() => resolve()))))
  }

  #listen (host: string, port: number, onSocket: (s: net.Socket) => void): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true }, socket => {
        this.#sockets.add(socket)
        socket.on('close', () => this.#sockets.delete(socket))
        socket.on('error', () => {}) // reported through the pipelines
        onSocket(socket)
      })
      server.once('error', reject)
      server.listen({ host, port }, () => {
        server.off('error', reject)
        server.on('error', err => this.#opts.onWarning(err))
        this.#servers.push(server)
        resolve(server.address() as net.AddressInfo)
      })
    })
  }

  // ---- HTTP ----

  /** Reads the first request head, routes and checks it, then pipes the connection through. */
  #serveHttp (visitorIo: Duplex, socket: net.Socket, proto: 'http' | 'https'): void {
    const visitor = visitorOf(socket)
    const parser = new RequestHeadParser()
    const received: Buffer[] = []
    const timer = setTimeout(() => refuse(408), this.#opts.headersTimeout)
    const refuse = (status: ErrorStatus, head?: RequestHead, detail?: string): void => {
      cleanup()
      visitorIo.end(errorResponse(status, { ...(head?.headers !== undefined ? { accept: header(head, 'accept'), method: head.method } : {}), ...(detail !== undefined ? { detail } : {}) }))
      setTimeout(() => socket.destroy(), 2000).unref() // a visitor that never reads the page
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      visitorIo.off('data', onData)
      visitorIo.off('end', onEnd)
    }
    const onEnd = (): void => { cleanup(); socket.destroy() }
    const onData = (chunk: Buffer): void => {
      received.push(chunk)
      this.#meter(chunk.length)
      let parsed
      try {
        parsed = parser.push(chunk)
      } catch (err) {
        return refuse(err instanceof HttpError ? err.status as ErrorStatus : 400, undefined, (err as Error).message)
      }
      if (parsed === undefined) return
      cleanup()
      const keyAuthorization = proto === 'http' ? this.#acmeChallenge(parsed.head) : undefined
      if (keyAuthorization !== undefined) {
        visitorIo.end(acmeChallengeResponse(keyAuthorization))
        setTimeout(() => socket.destroy(), 2000).unref()
        return
      }
      visitorIo.pause()
      if (this.#opts.upgrade?.matches(parsed.head) === true) return this.#opts.upgrade.accept(visitorIo, socket, parsed.head, parsed.rest)
      this.#route(parsed.head, visitor, proto).then(decision => {
        if ('status' in decision) return refuse(decision.status, parsed.head, decision.detail)
        this.#forwardHttp(visitorIo, socket, Buffer.concat(received), decision.target, visitor, proto, parsed.head)
      }, err => refuse(502, parsed.head, (err as Error).message))
    }
    visitorIo.on('data', onData)
    visitorIo.on('end', onEnd)
  }

  /** The key authorization when the request fetches a pending ACME HTTP-01 challenge. */
  #acmeChallenge (head: RequestHead): string | undefined {
    if (this.#opts.acmeChallenges === undefined || (head.method !== 'GET' && head.method !== 'HEAD')) return undefined
    const token = acmeChallengeToken(head.target)
    return token === undefined ? undefined : this.#opts.acmeChallenges.response(token)
  }

  async #route (head: RequestHead, visitor: Visitor, _proto: string): Promise<{ target: FrontTarget } | { status: ErrorStatus, detail?: string }> {
    if (head.host === undefined) return { status: 400, detail: 'the request has no Host header' }
    const route = routeHost(head.host, this.#opts.domain)
    const target = this.#opts.lookup(route) ?? await this.#opts.findTarget?.(route)
    if (target === undefined || target.kind !== 'http') return { status: 404, detail: `no tunnel is named ${head.host}` }
    if (!target.filter.allows(visitor.addr)) {
      target.filtered(visitor)
      return { status: 403, detail: 'your address may not use this tunnel' }
    }
    if (target.auth !== undefined && !await target.auth.check(header(head, 'authorization'))) return { status: 401 }
    return { target }
  }

  #forwardHttp (visitorIo: Duplex, socket: net.Socket, initial: Buffer, target: FrontTarget, visitor: Visitor, proto: 'http' | 'https', first: RequestHead): void {
    const counters = { aToB: initial.length, bToA: 0 }
    const opened = target.connect(visitor, socket, counters)
    if (opened instanceof Promise) void opened.then(stream => this.#pipeHttp(visitorIo, socket, initial, target, visitor, proto, first, counters, stream))
    else this.#pipeHttp(visitorIo, socket, initial, target, visitor, proto, first, counters, opened)
  }

  #pipeHttp (visitorIo: Duplex, socket: net.Socket, initial: Buffer, target: FrontTarget, visitor: Visitor, proto: 'http' | 'https', first: RequestHead,
    counters: { aToB: number, bToA: number }, stream: Duplex | undefined): void {
    if (stream === undefined) {
      visitorIo.end(errorResponse(503, { accept: header(first, 'accept'), method: first.method, detail: 'the tunnel client is reconnecting' }))
      return
    }
    const firstAuth = header(first, 'authorization')
    const rewriter = new HttpRequestStream({
      forwardedFor: visitor.addr,
      proto,
      // Later requests on this keep-alive connection must stay on this tunnel and keep the
      // credentials that were checked; anything else closes the connection.
      onRequest: head => {
        if (head.host === undefined || this.#opts.lookup(routeHost(head.host, this.#opts.domain)) !== target) {
          throw new HttpError('MPORT_ERR_BAD_REQUEST', 'a keep-alive connection cannot switch tunnels')
        }
        if (target.auth !== undefined && header(head, 'authorization') !== firstAuth) {
          throw new HttpError('MPORT_ERR_BAD_REQUEST', 'credentials changed on a keep-alive connection')
        }
      },
    })
    let failed: Error | undefined
    // Plain pipes, not pipeline(): on a failure the visitor may still get a page.
    const fail = (err: Error): void => {
      if (failed !== undefined) return
      failed = err
      stream.destroy()
      rewriter.destroy()
      if (counters.bToA === 0 && !visitorIo.writableEnded && !visitorIo.destroyed) {
        // Nothing came back yet (the local service refused): a page, not a reset.
        visitorIo.unpipe(rewriter)
        const status = err instanceof HttpError ? err.status as ErrorStatus : 502
        visitorIo.end(errorResponse(status, { accept: header(first, 'accept'), method: first.method, detail: status === 502 ? 'the tunnel client could not reach its local service' : err.message }))
        setTimeout(() => socket.destroy(), 2000).unref()
      } else {
        abort(socket)
      }
    }
    socket.once('close', () => target.finished(socket, { bytesIn: counters.aToB, bytesOut: counters.bToA, ...(failed !== undefined ? { error: failed } : {}) }))
    const record = target.exchanges?.()
    const exchanges = record === undefined ? undefined : new ExchangeMeter(r => record(visitor, r))
    exchanges?.fromVisitor(initial)
    visitorIo.on('data', (c: Buffer) => { counters.aToB += c.length; this.#meter(c.length); exchanges?.fromVisitor(c) })
    stream.on('data', (c: Buffer) => { counters.bToA += c.length; exchanges?.fromService(c) })
    if (exchanges !== undefined) stream.once('end', () => exchanges.serviceEnded())
    visitorIo.on('error', fail)
    rewriter.on('error', fail)
    stream.on('error', fail)
    const { up, down } = target.shaping()
    up?.on('error', fail)
    down?.on('error', fail)
    rewriter.write(initial)
    visitorIo.pipe(rewriter)
    ;(up !== undefined ? rewriter.pipe(up) : rewriter).pipe(stream)
    ;(down !== undefined ? stream.pipe(down) : stream).pipe(visitorIo)
    visitorIo.resume()
  }

  // ---- HTTPS ----

  #serveTls (socket: net.Socket): void {
    const visitor = visitorOf(socket)
    const hello = new ClientHelloParser()
    const timer = setTimeout(() => socket.destroy(), this.#opts.headersTimeout)
    const onData = (chunk: Buffer): void => {
      let result
      try {
        result = hello.push(chunk)
      } catch (err) {
        return fail(err as Error)
      }
      if (result.state === 'need-more') return
      clearTimeout(timer)
      socket.off('data', onData)
      socket.pause()
      if (result.state === 'not-tls') return fail(new HttpError('MPORT_ERR_BAD_REQUEST', 'not a TLS connection on the HTTPS port'))
      const name = result.serverName
      const route = name === undefined ? undefined : routeHost(name, this.#opts.domain)
      const target = route === undefined ? undefined : this.#opts.lookup(route)
      if (target?.kind === 'tls') return this.#passThrough(socket, hello.buffered, target, visitor)
      const findTarget = this.#opts.findTarget
      if (target === undefined && route !== undefined && findTarget !== undefined) {
        // One of several relays: a tls tunnel held on another node is passed through to it.
        findTarget(route).then(remote => {
          if (socket.destroyed) return
          if (remote?.kind === 'tls') this.#passThrough(socket, hello.buffered, remote, visitor)
          else terminate(name)
        }, fail)
        return
      }
      terminate(name)
    }
    // http tunnels, and pages for unknown names, need our certificate.
    const terminate = (name: string | undefined): void => {
      this.#secureContextFor(name).then(secureContext => {
        if (socket.destroyed) return
        if (secureContext === undefined) return fail(new HttpError('MPORT_ERR_BAD_REQUEST', `no tls tunnel named ${name ?? '(no SNI)'}`))
        const plain = new tls.TLSSocket(new Replay(socket, hello.buffered), { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] })
        plain.on('error', () => socket.destroy())
        this.#serveHttp(plain, socket, 'https')
      }, fail)
    }
    const fail = (err: Error): void => {
      clearTimeout(timer)
      if (!(err instanceof MportError)) this.#opts.onWarning(err)
      abort(socket)
    }
    socket.on('data', onData)
  }

  /** The certificate for a name: the source's, else the wildcard fallback (a failing source is reported, not fatal). */
  async #secureContextFor (name: string | undefined): Promise<tls.SecureContext | undefined> {
    const source = this.#opts.certificates
    if (name !== undefined && source !== undefined) {
      try {
        const ctx = await source.contextFor(name)
        if (ctx !== undefined) return ctx
      } catch (err) {
        this.#opts.onWarning(err as Error)
      }
    }
    return this.#opts.secureContext
  }

  #passThrough (socket: net.Socket, hello: Buffer, target: FrontTarget, visitor: Visitor): void {
    if (!target.filter.allows(visitor.addr)) {
      target.filtered(visitor)
      return abort(socket)
    }
    const counters = { aToB: hello.length, bToA: 0 }
    const opened = target.connect(visitor, socket, counters)
    if (opened instanceof Promise) void opened.then(stream => this.#pipeTls(socket, hello, target, counters, stream))
    else this.#pipeTls(socket, hello, target, counters, opened)
  }

  #pipeTls (socket: net.Socket, hello: Buffer, target: FrontTarget, counters: { aToB: number, bToA: number }, stream: Duplex | undefined): void {
    if (stream === undefined) return abort(socket)
    stream.write(hello)
    const { up, down } = target.shaping()
    void proxy(socket, stream, counters, { ...(up !== undefined ? { aToB: up } : {}), ...(down !== undefined ? { bToA: down } : {}) }, this.#meter).then(result => {
      target.finished(socket, { bytesIn: result.aToB, bytesOut: result.bToA, ...(result.error !== undefined ? { error: result.error } : {}) })
    })
  }

}

/**
 * The visitor socket with the bytes already read (the ClientHello) put back in front, as a
 * plain Duplex: node:tls reads a net.Socket's handle directly and would miss them.
 */
class Replay extends Duplex {
  readonly #socket: net.Socket
  constructor (socket: net.Socket, head: Buffer) {
    super()
    this.#socket = socket
    this.push(head)
    socket.on('data', (c: Buffer) => { if (!this.push(c)) socket.pause() })
    socket.on('end', () => this.push(null))
    socket.on('close', () => this.destroy())
  }

  override _read (): void { this.#socket.resume() }
  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void { this.#socket.write(chunk, cb) }
  override _final (cb: (err?: Error | null) => void): void { this.#socket.end(cb) }
  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void { this.#socket.destroy(); cb(err) }
}

function visitorOf (socket: net.Socket): Visitor {
  return { addr: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, daddr: socket.localAddress ?? '', dport: socket.localPort ?? 0 }
}

function header (head: RequestHead, name: string): string | undefined {
  for (const [k, v] of head.headers) if (k.toLowerCase() === name) return v
  return undefined
}

function abort (socket: net.Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy()
}

function noMeter (): void {}
