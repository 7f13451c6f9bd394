/**
 * ExchangeMeter: the metadata of each HTTP exchange on one visitor connection, read from the
 * bytes both ways (the relay's record behind the dashboard's recent requests): method, path
 * (no query string: it may carry secrets), status, duration and sizes. Requests pair with
 * responses in order (keep-alive and pipelining). After an upgrade or a CONNECT, or on bytes
 * that are not HTTP/1.1, it stops for that connection. It only reads; the bytes move anyway.
 */
import { declaredFraming, headerValue, HttpMessageParser, type BodyFraming, type MessageHead } from './message-parser.js'

/** One finished exchange. */
export interface ExchangeRecord {
  /** When the request head arrived (ms since the epoch). */
  at: number
  method: string
  /** The request target without its query string, at most 256 characters. */
  path: string
  status: number
  /** From the request head to the end of the response. */
  durationMs: number
  /** Request head and body bytes as the visitor sent them. */
  requestBytes: number
  /** Response head and body bytes as the service sent them. */
  responseBytes: number
}

interface Open { at: number, method: string, path: string, upgrade: boolean, requestBytes: number, status?: number, responseBytes: number }

/** Pipelined requests waiting for their responses; past this the connection is not metered. */
const MAX_OPEN = 100
const MAX_PATH = 256

/** Reads one visitor connection's bytes both ways and reports each finished exchange's metadata. */
export class ExchangeMeter {
  readonly #onExchange: (r: ExchangeRecord) => void
  readonly #now: () => number
  readonly #requests: HttpMessageParser
  readonly #responses: HttpMessageParser
  /** Exchanges whose response has not ended, oldest first. */
  readonly #open: Open[] = []
  #reading: Open | undefined
  /** The connection stops being HTTP after the exchange at the head of #open (an upgrade or CONNECT). */
  #lastExchange = false
  #stopped = false

  constructor (onExchange: (r: ExchangeRecord) => void, now: () => number = Date.now) {
    this.#onExchange = onExchange
    this.#now = now
    this.#requests = new HttpMessageParser({
      head: (h, at) => this.#requestHead(h, at),
      body: chunk => { if (this.#reading !== undefined) this.#reading.requestBytes += chunk.length },
      end: () => this.#requestEnd(),
      raw: () => {},
    })
    this.#responses = new HttpMessageParser({
      head: (h, at) => this.#responseHead(h, at),
      body: chunk => { const e = this.#open[0]; if (e !== undefined) e.responseBytes += chunk.length },
      end: at => this.#responseEnd(at),
      raw: () => {},
    })
  }

  /** Bytes from the visitor (the request direction). */
  fromVisitor (chunk: Buffer): void { this.#guard(() => this.#requests.push(chunk, this.#now())) }
  /** Bytes from the service (the response direction). */
  fromService (chunk: Buffer): void { this.#guard(() => this.#responses.push(chunk, this.#now())) }
  /** The service ended its side: a response framed by the close is complete. */
  serviceEnded (): void { this.#guard(() => this.#responses.finish(this.#now())) }

  #guard (fn: () => void): void {
    if (this.#stopped) return
    try {
      fn()
    } catch {
      this.#stopped = true // not HTTP we can follow: the connection goes on unmetered
    }
  }

  #requestHead (h: MessageHead, at: number): BodyFraming {
    if (this.#open.length >= MAX_OPEN) throw new Error('too many pipelined requests')
    const target = h.line[1]
    const q = target.indexOf('?')
    const e: Open = { at, method: h.line[0], path: (q < 0 ? target : target.slice(0, q)).slice(0, MAX_PATH), upgrade: h.line[0] === 'CONNECT' || headerValue(h, 'upgrade') !== undefined, requestBytes: h.size, responseBytes: 0 }
    this.#open.push(e)
    this.#reading = e
    return declaredFraming(h, { kind: 'none' })
  }

  #requestEnd (): void {
    const e = this.#reading
    this.#reading = undefined
    // What follows an Upgrade or CONNECT request is not read as HTTP here.
    if (e?.upgrade === true) this.#requests.toRaw()
  }

  #responseHead (h: MessageHead, at: number): BodyFraming {
    const status = Number(h.line[1])
    if (!h.line[0].startsWith('HTTP/') || !Number.isInteger(status) || status < 100 || status > 999) throw new Error('not a response')
    const e = this.#open[0]
    if (e === undefined) throw new Error('a response without a request')
    e.responseBytes += h.size
    // 1xx other than 101 is interim (100 Continue, 103 Early Hints): the final response follows.
    if (status < 200 && status !== 101) return { kind: 'none' }
    e.status = status
    if (status === 101 || (e.method === 'CONNECT' && status < 300)) {
      this.#lastExchange = true
      this.#responseEnd(at)
      return { kind: 'raw' }
    }
    if (e.method === 'HEAD' || status === 204 || status === 304) return { kind: 'none' }
    return declaredFraming(h, { kind: 'until-close' })
  }

  #responseEnd (at: number): void {
    const e = this.#open[0]
    if (e === undefined || e.status === undefined) return // the end of an interim (1xx) response
    this.#open.shift()
    this.#onExchange({ at: e.at, method: e.method, path: e.path, status: e.status, durationMs: Math.max(0, at - e.at), requestBytes: e.requestBytes, responseBytes: e.responseBytes })
    if (this.#lastExchange) this.#stopped = true
  }
}

