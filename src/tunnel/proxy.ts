/**
 * Pipes two Duplexes both ways with half-close and backpressure, counting bytes. Either side
 * failing tears both down; each direction ends on its own (a FIN crosses as a FIN).
 *
 * Not stream.pipe(): a relay holds one of these per visitor, so its cost per connection is
 * what idle visitors cost. The listeners are module functions shared by every connection;
 * they find their connection through one ProxyLink stored on each stream, not through
 * closures, which would cost far more per connection. A direction is three listeners: 'data'
 * (write, pause the source when the destination is full), 'drain' (resume), 'end' (end the
 * destination).
 */
import net from 'node:net'
import type { Duplex, Transform } from 'node:stream'
import { MuxStream } from '../mux/stream.js'

export interface ProxyResult {
  /** Bytes from `a` to `b`. */
  aToB: number
  /** Bytes from `b` to `a`. */
  bToA: number
  error?: Error
}

export interface ProxyCounters { aToB: number, bToA: number }

/** Optional transforms in each direction (bandwidth shaping). */
export interface ProxyShaping { aToB?: Transform, bToA?: Transform }

/**
 * Told once when a proxied connection has finished. An object the caller keeps per connection
 * anyway, where a promise would add two promises, a reaction and a closure per connection.
 */
export interface ProxyDone { proxyDone (result: ProxyResult): void }

/**
 * Told the size of every chunk read from a net.Socket, each a new Buffer (a GC-tuning hook
 * such as `mport/gc-tuning`'s; see tuneGcForForwarding).
 */
export type FreshReadMeter = (bytes: number) => void

const noMeter: FreshReadMeter = () => {}

const kLink = Symbol('mport.proxyLink')

/** A stream taking part in a proxy. */
type Linked = Duplex & { [kLink]?: ProxyLink }

/** One proxied connection: a → (up) → b and b → (down) → a. */
class ProxyLink {
  readonly a: Duplex
  readonly b: Duplex
  readonly up: Transform | undefined
  readonly down: Transform | undefined
  readonly counters: ProxyCounters
  readonly meter: FreshReadMeter
  readonly #done: ProxyDone
  /** Directions still open. */
  open = 2
  done = false
  error: Error | undefined

  constructor (a: Duplex, b: Duplex, counters: ProxyCounters, up: Transform | undefined, down: Transform | undefined, done: ProxyDone, meter: FreshReadMeter) {
    this.#done = done
    this.meter = meter
    this.a = a
    this.b = b
    this.counters = counters
    this.up = up
    this.down = down
  }

  /** Where bytes read from `src` go. */
  next (src: Duplex): Duplex {
    if (src === this.a) return this.up ?? this.b
    if (src === this.b) return this.down ?? this.a
    return src === this.up ? this.b : this.a
  }

  /** Where the bytes written to `dst` come from. */
  prev (dst: Duplex): Duplex {
    if (dst === this.b) return this.up ?? this.a
    if (dst === this.a) return this.down ?? this.b
    return dst === this.up ? this.a : this.b
  }

  finish (): void {
    if (this.done) return
    this.done = true
    const { aToB, bToA } = this.counters
    this.#done.proxyDone(this.error === undefined ? { aToB, bToA } : { aToB, bToA, error: this.error })
  }

  fail (err: Error): void {
    this.error ??= err
    abort(this.a)
    abort(this.b)
    this.up?.destroy()
    this.down?.destroy()
    this.finish()
  }
}

/** An aborted connection must not look like a clean EOF: TCP sockets get an RST. */
function abort (s: Duplex): void {
  if (s instanceof net.Socket && !s.destroyed && !s.connecting) s.resetAndDestroy()
  else s.destroy()
}

function onData (this: Linked, chunk: Buffer): void {
  const link = this[kLink]!
  if (this === link.a) link.counters.aToB += chunk.length
  else if (this === link.b) link.counters.bToA += chunk.length
  const dst = link.next(this)
  if (this instanceof net.Socket) link.meter(chunk.length)
  // A socket's write callback means it let go of the bytes, so a mux stream's chunk may go
  // back to its buffer pool then (MuxStream.writeCallbackFor). Other destinations (a shaping
  // transform) may keep chunks.
  const written = dst instanceof net.Socket && this instanceof MuxStream ? this.writeCallbackFor(chunk) : undefined
  if (!(written === undefined ? dst.write(chunk) : dst.write(chunk, written))) this.pause()
}

function onDrain (this: Linked): void {
  this[kLink]!.prev(this).resume()
}

function onEnd (this: Linked): void {
  const link = this[kLink]!
  const dst = link.next(this)
  dst.end()
  if ((dst === link.a || dst === link.b) && --link.open === 0) link.finish()
}

function onError (this: Linked, err: Error): void {
  this[kLink]!.fail(err)
}

/** A side closed without finishing its read direction is an abort. */
function onClose (this: Linked): void {
  const link = this[kLink]!
  if (!link.done && !this.readableEnded) link.fail(new Error('connection closed before it ended'))
}

/** Moves `src` into the link's next stream until `src` ends, then ends that one. */
function pump (link: ProxyLink, src: Duplex): void {
  src.on('data', onData)
  src.on('end', onEnd) // 'end' fires once; on() skips the wrapper once() allocates
  const dst = link.next(src)
  dst.on('drain', onDrain)
  if (dst.writableNeedDrain) src.pause()
  else src.resume() // also a source read in paused mode first (a stream header)
}

/**
 * Resolves when both directions have finished or either side failed. Never rejects.
 * A MuxStream's chunks that proxy() writes straight to a net.Socket are reported written
 * (MuxStream.writeCallbackFor), so their buffers may be reused after the write: another
 * 'data' listener on that stream must copy what it keeps.
 */
export function proxy (a: Duplex, b: Duplex, counters: ProxyCounters = { aToB: 0, bToA: 0 }, shaping?: ProxyShaping, meter?: FreshReadMeter): Promise<ProxyResult> {
  return new Promise(resolve => { pipeBoth(a, b, counters, shaping, { proxyDone: resolve }, meter) })
}

/** proxy() for callers that hold many connections: `done` is told when it has finished. */
export function pipeBoth (a: Duplex, b: Duplex, counters: ProxyCounters, shaping: ProxyShaping | undefined, done: ProxyDone, meter: FreshReadMeter = noMeter): void {
  const link = new ProxyLink(a, b, counters, shaping?.aToB, shaping?.bToA, done, meter)
  for (const s of [a, b, link.up, link.down]) {
    if (s === undefined) continue
    ;(s as Linked)[kLink] = link
    s.on('error', onError)
    s.on('close', onClose)
  }
  pump(link, a)
  if (link.up !== undefined) pump(link, link.up)
  pump(link, b)
  if (link.down !== undefined) pump(link, link.down)
}
