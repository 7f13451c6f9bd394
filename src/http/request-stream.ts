/**
 * The visitor→service direction of an HTTP tunnel connection. A keep-alive connection carries
 * many requests, and every one of them must have its head rewritten (X-Forwarded-* set by the
 * relay, never by the visitor), so the relay cannot just rewrite the first head and splice.
 *
 * HttpRequestStream is a Transform that parses each request head, passes it through
 * rewriteHead, then streams the body without buffering it: Content-Length bodies and chunked
 * bodies (framing bytes forwarded unchanged) go through as zero-copy slices of the input, and
 * the Transform's own backpressure paces the visitor. It holds at most one unfinished head
 * (MAX_HEAD_SIZE), one chunk-size line or the trailers. After a request with `Upgrade`
 * (WebSocket and friends) everything that follows is passed through raw.
 *
 * With `upgrades: 'confirm'` the stream instead pauses after an Upgrade request until the
 * caller, who sees the response, calls `settleUpgrade(true)` (101 Switching Protocols: raw from
 * now on) or `settleUpgrade(false)` (refused: keep parsing requests). That closes a gap of the
 * default mode: after a refused upgrade, later requests on the connection would otherwise pass
 * unrewritten.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { BadRequestError, HeadersTooLargeError } from '../errors.js'
import { MAX_HEAD_SIZE, RequestHeadParser, rewriteHead, type HeadLimits, type RequestHead } from './request-head.js'

/** Longest chunk-size line (with extensions) accepted in a chunked body. */
export const MAX_CHUNK_LINE = 4096

/** Options of {@link HttpRequestStream}, with the head limits of RequestHeadParser. */
export interface HttpRequestStreamOptions extends HeadLimits {
  /** The visitor's IP address, written as X-Forwarded-For on every request. */
  forwardedFor: string
  /** The scheme the visitor used towards the relay (X-Forwarded-Proto). */
  proto: 'http' | 'https'
  /**
   * Called with every request head before it is forwarded; throw to refuse the request (the
   * stream then fails with that error). Use it to check that the Host still routes to this
   * tunnel, and for access control.
   */
  onRequest?: (head: RequestHead) => void
  /** After an Upgrade request: go raw at once (default), or wait for settleUpgrade(). */
  upgrades?: 'raw' | 'confirm'
  /** Limit for chunked trailers (default MAX_HEAD_SIZE). */
  maxTrailerSize?: number
}

type State =
  | 'head' // reading a request head
  | 'length' // streaming a Content-Length body
  | 'chunk-line' // reading a chunk-size line
  | 'chunk-data' // streaming chunk data
  | 'chunk-crlf' // expecting the CRLF after chunk data
  | 'trailers' // reading trailer lines after the last chunk
  | 'upgrade-wait' // paused until settleUpgrade()
  | 'raw' // after a protocol switch: everything passes through

/**
 * The visitor→service half of an HTTP tunnel connection: rewrites every request head on a
 * keep-alive connection (X-Forwarded-*), streams bodies through unbuffered, and goes raw after
 * an Upgrade. Fails with BadRequestError or HeadersTooLargeError on a malformed or oversized head.
 */
export class HttpRequestStream extends Transform {
  readonly #opts: HttpRequestStreamOptions
  readonly #heads: RequestHeadParser
  readonly #maxTrailer: number
  #state: State = 'head'
  /** Body bytes left in the current Content-Length body or chunk. */
  #remaining = 0
  /** CRLF bytes of the chunk-data terminator already seen (0–1). */
  #crlfSeen = 0
  /** Bytes of the current line (chunk-size or trailer) collected so far. */
  #line: Buffer[] = []
  #lineLength = 0
  #trailerLength = 0
  /** The current request asked to switch protocols once its body is through. */
  #upgradeAfterBody = false
  #pending: { chunk: Buffer, callback: TransformCallback } | undefined
  #requests = 0
  #maxHeld = 0

  constructor (opts: HttpRequestStreamOptions) {
    super()
    this.#opts = opts
    this.#heads = new RequestHeadParser(opts)
    this.#maxTrailer = opts.maxTrailerSize ?? MAX_HEAD_SIZE
  }

  /** Request heads forwarded so far. */
  get requests (): number {
    return this.#requests
  }

  /** Where the parser is: `head`, `length`, `chunk-*`, `trailers`, `upgrade-wait` or `raw`. */
  get state (): State {
    return this.#state
  }

  /** True between requests: no byte of a request is pending (safe to answer with an error page and close). */
  get idle (): boolean {
    return this.#state === 'head' && this.#heads.idle
  }

  /** The most bytes this stream ever held back itself (heads, lines, trailers), for tests and metrics. */
  get maxHeld (): number {
    return this.#maxHeld
  }

  /** In `confirm` mode: the response to the Upgrade request was 101 (true) or something else (false). */
  settleUpgrade (accepted: boolean): void {
    if (this.#state !== 'upgrade-wait') throw new Error(`settleUpgrade() while ${this.#state}, not after an Upgrade request`)
    this.#state = accepted ? 'raw' : 'head'
    const p = this.#pending
    this.#pending = undefined
    if (p !== undefined) this.#run(p.chunk, p.callback)
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#run(chunk, callback)
  }

  #run (input: Buffer, callback: TransformCallback): void {
    try {
      let chunk = input
      while (chunk.length > 0) {
        switch (this.#state) {
          case 'head': {
            const parsed = this.#heads.push(chunk)
            this.#held(this.#heads.buffered)
            if (parsed === undefined) return callback()
            this.#startRequest(parsed.head)
            chunk = parsed.rest
            break
          }
          case 'length': {
            const n = Math.min(this.#remaining, chunk.length)
            this.push(chunk.subarray(0, n))
            chunk = chunk.subarray(n)
            this.#remaining -= n
            if (this.#remaining === 0) this.#endBody()
            break
          }
          case 'chunk-line':
          case 'trailers': {
            const lf = chunk.indexOf(0x0a)
            const piece = lf < 0 ? chunk : chunk.subarray(0, lf + 1)
            chunk = chunk.subarray(piece.length)
            this.#collectLine(piece)
            if (lf >= 0) this.#endLine()
            break
          }
          case 'chunk-data': {
            const n = Math.min(this.#remaining, chunk.length)
            this.push(chunk.subarray(0, n))
            chunk = chunk.subarray(n)
            this.#remaining -= n
            if (this.#remaining === 0) {
              this.#state = 'chunk-crlf'
              this.#crlfSeen = 0
            }
            break
          }
          case 'chunk-crlf': {
            const want = this.#crlfSeen === 0 ? 0x0d : 0x0a
            if (chunk[0] !== want) throw new BadRequestError('chunk data not followed by CRLF')
            this.push(chunk.subarray(0, 1))
            chunk = chunk.subarray(1)
            if (++this.#crlfSeen === 2) this.#state = 'chunk-line'
            break
          }
          case 'upgrade-wait':
            this.#pending = { chunk, callback }
            return
          case 'raw':
            this.push(chunk)
            chunk = chunk.subarray(chunk.length)
            break
        }
      }
      callback()
    } catch (err) {
      callback(err as Error)
    }
  }

  #startRequest (head: RequestHead): void {
    this.#opts.onRequest?.(head)
    this.push(rewriteHead(head, { forwardedFor: this.#opts.forwardedFor, proto: this.#opts.proto }))
    this.#requests++
    this.#upgradeAfterBody = head.upgrade !== undefined
    switch (head.body.kind) {
      case 'none':
        this.#endBody()
        break
      case 'length':
        this.#state = 'length'
        this.#remaining = head.body.length
        break
      case 'chunked':
        this.#state = 'chunk-line'
        this.#lineLength = 0
        this.#line = []
        break
    }
  }

  #endBody (): void {
    if (this.#upgradeAfterBody) {
      this.#upgradeAfterBody = false
      this.#state = this.#opts.upgrades === 'confirm' ? 'upgrade-wait' : 'raw'
    } else {
      this.#state = 'head'
    }
  }

  #collectLine (piece: Buffer): void {
    this.#lineLength += piece.length
    if (this.#state === 'chunk-line' && this.#lineLength > MAX_CHUNK_LINE) {
      throw new BadRequestError(`chunk-size line longer than ${MAX_CHUNK_LINE} bytes`)
    }
    if (this.#state === 'trailers' && this.#trailerLength + this.#lineLength > this.#maxTrailer) {
      throw new HeadersTooLargeError(this.#maxTrailer, 'chunked trailers')
    }
    this.#line.push(piece)
    this.#held(this.#lineLength)
  }

  #endLine (): void {
    const line = Buffer.concat(this.#line, this.#lineLength)
    this.#line = []
    this.#lineLength = 0
    if (line.length < 2 || line[line.length - 2] !== 0x0d) throw new BadRequestError('bare LF in chunked framing')
    const text = line.toString('latin1', 0, line.length - 2)
    if (this.#state === 'chunk-line') {
      // chunk-size [ BWS ";" chunk-ext ], size in hex; 13 digits keep it below 2^53.
      const m = /^([0-9a-fA-F]{1,13})[ \t]*(;[^\r\n]*)?$/.exec(text)
      if (m === null) throw new BadRequestError(`invalid chunk-size line ${JSON.stringify(text.slice(0, 40))}`)
      this.push(line)
      const size = parseInt(m[1]!, 16)
      if (size > 0) {
        this.#state = 'chunk-data'
        this.#remaining = size
      } else {
        this.#state = 'trailers'
        this.#trailerLength = 0
      }
      return
    }
    // A trailer line, or the empty line that ends the message.
    // eslint-disable-next-line no-control-regex
    if (text !== '' && (/[\x00-\x08\x0a-\x1f\x7f]/.test(text) || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(text))) {
      throw new BadRequestError('invalid trailer field')
    }
    this.#trailerLength += line.length
    this.push(line)
    if (text === '') this.#endBody()
  }

  #held (n: number): void {
    if (n > this.#maxHeld) this.#maxHeld = n
  }
}
