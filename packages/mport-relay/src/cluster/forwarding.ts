/**
 * Visitors that reach one node for a tunnel another node holds. The node they reached (B)
 * opens a stream on its link to the holder (A) and splices the visitor into it; A serves the
 * stream like one of its own visitors: the tunnel's filter, rate and the user's plan are
 * checked there, the connection counted there, and its client sees one more visitor stream.
 */
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import { BasicAuthChecker, IpFilter } from 'mport/access'
import type { Session, MuxStream } from 'mport/mux'
import type { FrontTarget, LocalTunnels, Visitor } from 'mport/relay'
import { NodeLinks, type ForwardHeader } from './node-link.js'
import type { RouteRecord } from './registry.js'

/**
 * A forwarded visitor as the holder's forwarder sees it: the fields it reads of a visitor
 * socket (address, port, destroy, reset), over the link stream.
 */
class ForwardedVisitor {
  readonly remoteAddress: string
  readonly remotePort: number
  readonly #stream: MuxStream

  constructor (stream: MuxStream, visitor: Visitor) {
    this.#stream = stream
    this.remoteAddress = visitor.addr
    this.remotePort = visitor.port
  }

  get destroyed (): boolean { return this.#stream.destroyed }
  destroy (): void { this.#stream.destroy() }
  /** A reset crosses the link as an RST, and the forwarding node resets its visitor. */
  resetAndDestroy (): void { this.#stream.destroy(new Error('reset')) }
}

/** On the holder: a stream another node forwarded, served like a local visitor of the tunnel. */
export function serveForwarded (local: LocalTunnels, header: ForwardHeader, stream: MuxStream): void {
  const target = local.target(header.lease, header.tunnel)
  if (target === undefined) { stream.destroy(); return } // moved or closed meanwhile: the other node's visitor is reset
  const visitor: Visitor = { addr: header.addr, port: header.port, daddr: header.daddr, dport: header.dport }
  if (!target.filter.allows(visitor.addr)) {
    target.filtered(visitor)
    stream.destroy()
    return
  }
  // The forwarder keys a visitor by its socket; this object stands for it (see ForwardedVisitor).
  const socket = new ForwardedVisitor(stream, visitor) as unknown as net.Socket
  const counters = { aToB: 0, bToA: 0 }
  // A load-balancing group answers once a member has acknowledged the stream (a promise).
  const opened = target.connect(visitor, socket, counters)
  const pipe = (toClient: Duplex | undefined): void => {
    if (toClient === undefined) { stream.destroy(); return }
    const { up, down } = target.shaping()
    splice(stream, toClient, counters, err => target.finished(socket, { bytesIn: counters.aToB, bytesOut: counters.bToA, ...(err !== undefined ? { error: err } : {}) }), up, down)
  }
  if (opened instanceof Promise) void opened.then(pipe, () => stream.destroy())
  else pipe(opened)
}

/** On the forwarding node: sends a visitor's connection over the link to the node holding its tunnel. */
export function forwardTo (session: Session, record: RouteRecord, visitor: Visitor, io: Duplex, done?: (err?: Error) => void): void {
  const stream = NodeLinks.forward(session, { lease: record.lease, tunnel: record.tunnel, ...visitor })
  splice(io, stream, { aToB: 0, bToA: 0 }, err => done?.(err))
}

/**
 * On the forwarding node: the shared HTTP front's target for a name another node holds. The
 * filter and basic auth are the tunnel's own (from its record), so a refused visitor gets the
 * same page here; the holder checks the filter again, and the rate and plan.
 */
export function remoteTarget (record: RouteRecord, link: () => Session | undefined): FrontTarget {
  return {
    kind: record.kind === 'tls' ? 'tls' : 'http',
    filter: new IpFilter({ allow: record.allow ?? [], deny: record.deny ?? [] }),
    auth: record.auth === undefined || record.auth.length === 0 ? undefined : new BasicAuthChecker(record.auth),
    connect: (visitor) => {
      const session = link()
      return session === undefined ? undefined : NodeLinks.forward(session, { lease: record.lease, tunnel: record.tunnel, ...visitor })
    },
    shaping: () => ({}),
    filtered: () => {},
    finished: () => {},
  }
}

/**
 * Pipes two Duplexes both ways with half-close (a FIN crosses as a FIN); either side failing
 * or being reset tears both down. `counters` counts a → b and b → a; `done` is told once.
 */
export function splice (a: Duplex, b: Duplex, counters: { aToB: number, bToA: number }, done: (err?: Error) => void, up?: Duplex, down?: Duplex): void {
  let finished = false
  let error: Error | undefined
  const end = (err?: Error): void => {
    if (err !== undefined) error ??= err
    if (finished) return
    finished = true
    a.destroy()
    b.destroy()
    up?.destroy()
    down?.destroy()
    done(error)
  }
  a.on('data', (c: Buffer) => { counters.aToB += c.length })
  b.on('data', (c: Buffer) => { counters.bToA += c.length })
  for (const s of [a, b, up, down]) s?.on('error', end)
  // A side that closed after both its directions ended waits for the other; one torn down (a reset) takes the other with it.
  let open = 2
  const onClose = (x: Duplex) => (): void => {
    open--
    if (open === 0 || !(x.readableEnded && x.writableFinished)) end()
  }
  a.on('close', onClose(a))
  b.on('close', onClose(b))
  ;(up !== undefined ? a.pipe(up) : a).pipe(b)
  ;(down !== undefined ? b.pipe(down) : b).pipe(a)
}
