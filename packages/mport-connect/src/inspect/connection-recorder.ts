/**
 * Records the exchanges of one visitor connection from a tap on both directions: a request
 * parser on the visitor's bytes, a response parser on the local service's, requests paired
 * with responses in order (keep-alive and pipelining), and WebSocket frames summarised after
 * a 101. It only listens: the bytes are moved by the proxy, never delayed or changed here. A
 * parse failure marks the connection's open exchanges `unparsed` and stops recording it.
 */
import type { Readable } from 'node:stream'
import type { HttpVisitorTap } from 'mport/client'
import { CappedBody, type Exchange, type RecordedMessage } from './exchange.js'
import { declaredFraming, headerValue, HttpMessageParser, HttpParseError, type BodyFraming, type MessageHead } from 'mport/client'
import { WebSocketFrameReader, type FrameSummary } from './websocket-frames.js'

/** What a connection recorder needs from the inspector that owns it. */
export interface RecorderContext {
  /** The clock for times (ms). */
  now (): number
  nextId (): number
  /** Cap on each body kept. */
  readonly bodyLimit: number
  /** A new exchange (its request head arrived). */
  added (e: Exchange): void
  /** An exchange grew (a body chunk): the ring re-measures it. */
  grew (e: Exchange): void
  /** An exchange changed in a way a viewer shows: a response head, its end, an abort. */
  changed (e: Exchange): void
}

/** Bytes after an Upgrade or CONNECT request, held until the response says whether they are HTTP. */
const MAX_HELD = 64 * 1024
/** Latest WebSocket frames kept per exchange. */
const RECENT_FRAMES = 50
/** Pipelined requests waiting for their responses; past this the connection is not recorded (the ring bounds only what it keeps). */
const MAX_OPEN = 1000

export class ConnectionRecorder {
  readonly #ctx: RecorderContext
  readonly #tap: HttpVisitorTap
  readonly #connection: number
  readonly #requests: HttpMessageParser
  readonly #responses: HttpMessageParser
  /** Exchanges whose response has not ended, oldest first. */
  readonly #open: Exchange[] = []
  /** The exchange whose request body is being read. */
  #reading: Exchange | undefined
  /** After an Upgrade/CONNECT request: visitor bytes held until its response decides. */
  #held: Buffer[] | undefined
  #heldBytes = 0
  #wsIn: WebSocketFrameReader | undefined
  #wsOut: WebSocketFrameReader | undefined
  /** The upgraded exchange that frames are counted on. */
  #upgraded: Exchange | undefined
  #stopped = false
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- listeners of several events
  readonly #listeners: Array<[Readable, string, (...args: any[]) => void]> = []

  constructor (ctx: RecorderContext, tap: HttpVisitorTap, connection: number) {
    this.#ctx = ctx
    this.#tap = tap
    this.#connection = connection
    this.#requests = new HttpMessageParser({
      head: (h, at) => this.#requestHead(h, at),
      body: chunk => this.#body(this.#reading, chunk, 'request'),
      end: at => this.#requestEnd(at),
      raw: (chunk, at) => this.#visitorRaw(chunk, at),
    })
    this.#responses = new HttpMessageParser({
      head: (h, at) => this.#responseHead(h, at),
      body: chunk => this.#body(this.#open[0], chunk, 'response'),
      end: at => this.#responseEnd(at),
      raw: (chunk, at) => this.#wsOut?.push(chunk, at),
    })
    this.#listen(tap.fromVisitor, 'data', (chunk: Buffer) => this.#guard(() => this.#requests.push(chunk, ctx.now())))
    this.#listen(tap.fromLocal, 'data', (chunk: Buffer) => this.#guard(() => this.#responses.push(chunk, ctx.now())))
    this.#listen(tap.fromVisitor, 'end', () => this.#guard(() => this.#requests.finish(ctx.now())))
    this.#listen(tap.fromLocal, 'end', () => this.#guard(() => this.#responses.finish(ctx.now())))
    this.#listen(tap.fromVisitor, 'close', () => this.#closed())
    this.#listen(tap.fromLocal, 'close', () => this.#closed())
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as Readable.on takes them
  #listen (s: Readable, event: string, fn: (...args: any[]) => void): void {
    s.on(event, fn)
    this.#listeners.push([s, event, fn])
  }

  /** A failure in the recorder stops recording this connection; the bytes flow on regardless. */
  #guard (fn: () => void): void {
    if (this.#stopped) return
    try {
      fn()
    } catch (err) {
      this.#stop('unparsed', err instanceof HttpParseError ? err.message : `recorder failed: ${(err as Error).message}`)
    }
  }

  #requestHead (h: MessageHead, at: number): BodyFraming {
    if (h.line[0].startsWith('HTTP/')) throw new HttpParseError('a response where a request was expected')
    if (this.#open.length >= MAX_OPEN) throw new HttpParseError(`over ${MAX_OPEN} pipelined requests waiting for responses`)
    const e: Exchange = {
      id: this.#ctx.nextId(),
      tunnel: this.#tap.info.tunnel,
      local: this.#tap.local,
      visitor: `${this.#tap.info.remoteAddress}:${this.#tap.info.remotePort}`,
      connection: this.#connection,
      startedAt: at,
      times: { start: at },
      request: { method: h.line[0], url: h.line[1], httpVersion: h.line[2], headers: h.headers, headSize: h.size, body: new CappedBody(this.#ctx.bodyLimit) },
      state: 'pending',
    }
    this.#reading = e
    this.#open.push(e)
    this.#ctx.added(e)
    return declaredFraming(h, { kind: 'none' })
  }

  #requestEnd (at: number): void {
    const e = this.#reading
    if (e === undefined) return
    e.times.requestEnd = at
    this.#reading = undefined
    // What follows an Upgrade or CONNECT request is HTTP only if the service declines it.
    if (e.request.method === 'CONNECT' || headerValue(e.request, 'upgrade') !== undefined) {
      this.#held = []
      this.#requests.toRaw()
    }
  }

  #visitorRaw (chunk: Buffer, at: number): void {
    if (this.#held !== undefined) this.#hold(chunk)
    else this.#wsIn?.push(chunk, at)
  }

  #hold (chunk: Buffer): void {
    this.#heldBytes += chunk.length
    if (this.#heldBytes > MAX_HELD) throw new HttpParseError(`over ${MAX_HELD} bytes sent before the upgrade was answered`)
    this.#held!.push(Buffer.from(chunk))
  }

  #responseHead (h: MessageHead, at: number): BodyFraming {
    if (!h.line[0].startsWith('HTTP/')) throw new HttpParseError('a request where a response was expected')
    const status = Number(h.line[1])
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new HttpParseError(`bad status ${JSON.stringify(h.line[1])}`)
    const e = this.#open.find(x => x.response === undefined)
    if (e === undefined) throw new HttpParseError('a response without a request')
    // 1xx other than 101 is interim (100 Continue, 103 Early Hints): the final response follows.
    if (status < 200 && status !== 101) return { kind: 'none' }
    e.times.firstByte = at
    e.response = { status, reason: h.line[2], httpVersion: h.line[0], headers: h.headers, headSize: h.size, body: new CappedBody(this.#ctx.bodyLimit) }
    this.#ctx.changed(e)
    const method = e.request.method
    if (status === 101 || (method === 'CONNECT' && status >= 200 && status < 300)) return { kind: 'raw' }
    if (method === 'HEAD' || status === 204 || status === 304) return { kind: 'none' }
    return declaredFraming(h, { kind: 'until-close' })
  }

  #responseEnd (at: number): void {
    const e = this.#open.find(x => x.response !== undefined)
    if (e === undefined) return // an interim response
    const status = e.response!.status
    e.times.end = at
    this.#open.splice(this.#open.indexOf(e), 1)
    if (status === 101 || (e.request.method === 'CONNECT' && status >= 200 && status < 300)) {
      e.state = 'upgraded'
      this.#upgrade(e, at)
    } else {
      e.state = 'complete'
      if (this.#held !== undefined) this.#release(at)
    }
    this.#ctx.changed(e)
  }

  /** After a 101 (or a CONNECT's 2xx): both directions carry frames (or raw bytes) from now on. */
  #upgrade (e: Exchange, at: number): void {
    this.#upgraded = e
    const held = this.#held ?? []
    this.#held = undefined
    // A CONNECT tunnel or another protocol: raw bytes, nothing to summarise.
    if (e.request.method === 'CONNECT' || headerValue(e.request, 'upgrade')?.toLowerCase() !== 'websocket') return
    e.websocket = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, recent: [] }
    const onFrame = (f: FrameSummary): void => this.#frame(f)
    this.#wsIn = new WebSocketFrameReader('in', onFrame)
    this.#wsOut = new WebSocketFrameReader('out', onFrame)
    for (const chunk of held) this.#wsIn.push(chunk, at)
  }

  #frame (f: FrameSummary): void {
    const e = this.#upgraded!
    const ws = e.websocket!
    if (f.direction === 'in') { ws.framesIn++; ws.bytesIn += f.length } else { ws.framesOut++; ws.bytesOut += f.length }
    ws.recent.push(f)
    if (ws.recent.length > RECENT_FRAMES) ws.recent.shift()
    this.#ctx.grew(e)
  }

  /** The upgrade was declined: the held bytes are the next requests. */
  #release (at: number): void {
    const held = this.#held!
    this.#held = undefined
    this.#heldBytes = 0
    this.#requests.resume()
    for (const chunk of held) this.#requests.push(chunk, at)
  }

  #body (e: Exchange | undefined, chunk: Buffer, which: 'request' | 'response'): void {
    if (e === undefined) return
    const message: RecordedMessage | undefined = which === 'request' ? e.request : e.response
    if (message === undefined) return
    message.body.add(chunk)
    this.#ctx.grew(e)
  }

  #closed (): void {
    if (this.#stopped) return
    // Both sides close together; finish on the first, after any 'end' already ran.
    this.#stop('aborted', 'the connection closed before the response ended')
  }

  #stop (state: 'aborted' | 'unparsed', error: string): void {
    this.#stopped = true
    for (const [s, event, fn] of this.#listeners) s.off(event, fn)
    const now = this.#ctx.now()
    for (const e of this.#open) {
      e.state = state
      e.error = error
      e.times.end ??= now
      this.#ctx.changed(e)
    }
    this.#open.length = 0
    if (this.#upgraded !== undefined) { this.#upgraded.times.end = now; this.#ctx.changed(this.#upgraded) }
  }
}
