/**
 * An incremental HTTP/1.1 parser for one direction of a connection, fed the chunks a tap sees.
 * It keeps only a message head (bounded) and a chunk-size line; bodies are handed on as they
 * arrive and never buffered here. How a body is framed is decided per message by the owner
 * (a response's framing depends on its request: HEAD, 1xx, 204, 304, 101, CONNECT).
 */

/** A request line or status line, and the header fields in order. */
export interface MessageHead {
  /** Request: method, target, version. Response: version, status code, reason. */
  readonly line: readonly [string, string, string]
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** Bytes of the head on the wire, blank line included. */
  readonly size: number
}

/**
 * How the body after a head is framed: none, a fixed length, chunked, until the peer closes,
 * or not HTTP any more (an upgrade: the rest of the stream is raw bytes).
 */
export type BodyFraming = { kind: 'none' } | { kind: 'length', length: number } | { kind: 'chunked' } | { kind: 'until-close' } | { kind: 'raw' }

/** What the parser reports. `head` returns the framing of the message's body. */
export interface ParserSink {
  head (head: MessageHead, at: number): BodyFraming
  body (chunk: Buffer): void
  /** The message is complete (its body ended). */
  end (at: number): void
  /** Bytes after an upgrade. */
  raw (chunk: Buffer, at: number): void
}

/** A head or chunk line over this is not HTTP we can follow. */
export const MAX_HEAD_BYTES = 64 * 1024
const MAX_LINE_BYTES = 4096

/** The bytes cannot be HTTP/1.1 (or exceed the parser's limits); recording stops for the connection. */
export class HttpParseError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'HttpParseError'
  }
}

const enum State { Head, Fixed, ChunkSize, ChunkData, ChunkDataEnd, Trailers, UntilClose, Raw }

const CRLF2 = Buffer.from('\r\n\r\n')

/** Parses one direction of an HTTP/1.1 connection incrementally; the sink decides each body's framing. */
export class HttpMessageParser {
  readonly #sink: ParserSink
  #state = State.Head
  /** A head, or a chunk-size/trailer line, not yet complete. */
  #pending: Buffer = Buffer.alloc(0)
  #remaining = 0

  constructor (sink: ParserSink) {
    this.#sink = sink
  }

  /** True while between messages (no head or body half read). */
  get idle (): boolean { return this.#state === State.Head && this.#pending.length === 0 }

  /** Feeds the next chunk; throws HttpParseError when the bytes are not HTTP. */
  push (chunk: Buffer, at: number): void {
    let off = 0
    while (off < chunk.length) {
      switch (this.#state) {
        case State.Head: off = this.#head(chunk, off, at); break
        case State.Fixed: {
          const n = Math.min(this.#remaining, chunk.length - off)
          this.#sink.body(chunk.subarray(off, off + n))
          off += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#done(at)
          break
        }
        case State.ChunkSize: {
          const line = this.#line(chunk, off)
          if (line === undefined) return
          off = line.next
          const size = parseInt(line.text.split(';')[0]!.trim(), 16)
          if (!/^[0-9a-fA-F]+$/.test(line.text.split(';')[0]!.trim()) || !Number.isSafeInteger(size)) throw new HttpParseError(`bad chunk size ${JSON.stringify(line.text.slice(0, 40))}`)
          this.#remaining = size
          this.#state = size === 0 ? State.Trailers : State.ChunkData
          break
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, chunk.length - off)
          this.#sink.body(chunk.subarray(off, off + n))
          off += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd
          break
        }
        case State.ChunkDataEnd: {
          const line = this.#line(chunk, off)
          if (line === undefined) return
          if (line.text !== '') throw new HttpParseError('chunk data not followed by CRLF')
          off = line.next
          this.#state = State.ChunkSize
          break
        }
        case State.Trailers: {
          const line = this.#line(chunk, off)
          if (line === undefined) return
          off = line.next
          if (line.text === '') this.#done(at)
          break
        }
        case State.UntilClose:
          this.#sink.body(off === 0 ? chunk : chunk.subarray(off))
          return
        case State.Raw:
          this.#sink.raw(off === 0 ? chunk : chunk.subarray(off), at)
          return
      }
    }
  }

  /** From the end of the current message on, every byte goes to `raw` (after an Upgrade or CONNECT request). */
  toRaw (): void {
    this.#state = State.Raw
  }

  /** Back to HTTP after toRaw() (the upgrade was declined). */
  resume (): void {
    this.#state = State.Head
  }

  /** The stream ended: a body read until close is complete; a message cut short is reported as an error. */
  finish (at: number): void {
    if (this.#state === State.UntilClose) { this.#done(at); return }
    if (this.#state === State.Raw || this.idle) return
    throw new HttpParseError('connection ended inside a message')
  }

  #done (at: number): void {
    this.#state = State.Head
    this.#sink.end(at)
  }

  /** Collects a head; at its end, parses it and switches to the framing the sink picks. */
  #head (chunk: Buffer, off: number, at: number): number {
    // Blank lines between messages are allowed (RFC 9112 §2.2).
    if (this.#pending.length === 0) {
      while (off < chunk.length && (chunk[off] === 0x0d || chunk[off] === 0x0a)) off++
      if (off === chunk.length) return off
    }
    const before = this.#pending.length
    const joined = before === 0 ? chunk.subarray(off) : Buffer.concat([this.#pending, chunk.subarray(off)])
    const endAt = joined.indexOf(CRLF2, Math.max(0, before - 3))
    if (endAt < 0) {
      if (joined.length > MAX_HEAD_BYTES) throw new HttpParseError(`message head over ${MAX_HEAD_BYTES} bytes`)
      this.#pending = Buffer.from(joined) // a copy: the chunk's buffer may be reused
      return chunk.length
    }
    const size = endAt + 4
    if (size > MAX_HEAD_BYTES) throw new HttpParseError(`message head over ${MAX_HEAD_BYTES} bytes`)
    const head = parseHead(joined.subarray(0, endAt).toString('latin1'), size)
    this.#pending = Buffer.alloc(0)
    const framing = this.#sink.head(head, at)
    switch (framing.kind) {
      case 'none': this.#sink.end(at); break
      case 'length':
        if (framing.length === 0) this.#sink.end(at)
        else { this.#state = State.Fixed; this.#remaining = framing.length }
        break
      case 'chunked': this.#state = State.ChunkSize; break
      case 'until-close': this.#state = State.UntilClose; break
      case 'raw': this.#state = State.Raw; this.#sink.end(at); break
    }
    return off + size - before
  }

  /** One CRLF-terminated line (bounded), across chunks; undefined when the chunk ends first. */
  #line (chunk: Buffer, off: number): { text: string, next: number } | undefined {
    const nl = chunk.indexOf(0x0a, off)
    if (nl < 0) {
      if (this.#pending.length + chunk.length - off > MAX_LINE_BYTES) throw new HttpParseError(`line over ${MAX_LINE_BYTES} bytes`)
      this.#pending = Buffer.concat([this.#pending, chunk.subarray(off)])
      return undefined
    }
    const bytes = this.#pending.length === 0 ? chunk.subarray(off, nl) : Buffer.concat([this.#pending, chunk.subarray(off, nl)])
    this.#pending = Buffer.alloc(0)
    if (bytes.length > MAX_LINE_BYTES) throw new HttpParseError(`line over ${MAX_LINE_BYTES} bytes`)
    const text = bytes.toString('latin1')
    return { text: text.endsWith('\r') ? text.slice(0, -1) : text, next: nl + 1 }
  }
}

function parseHead (text: string, size: number): MessageHead {
  const lines = text.split('\r\n')
  const first = lines[0]!
  const a = first.indexOf(' ')
  const b = a < 0 ? -1 : first.indexOf(' ', a + 1)
  if (a <= 0) throw new HttpParseError(`not an HTTP start line: ${JSON.stringify(first.slice(0, 60))}`)
  const line: [string, string, string] = b < 0 ? [first.slice(0, a), first.slice(a + 1), ''] : [first.slice(0, a), first.slice(a + 1, b), first.slice(b + 1)]
  if (!line[0].startsWith('HTTP/') && !line[2].startsWith('HTTP/')) throw new HttpParseError(`not an HTTP start line: ${JSON.stringify(first.slice(0, 60))}`)
  const headers: Array<[string, string]> = []
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!
    const colon = l.indexOf(':')
    if (colon <= 0) throw new HttpParseError(`bad header line ${JSON.stringify(l.slice(0, 60))}`)
    headers.push([l.slice(0, colon).trim(), l.slice(colon + 1).trim()])
  }
  return { line, headers, size }
}

/** The first value of a header (case-insensitive name). */
export function headerValue (head: Pick<MessageHead, 'headers'>, name: string): string | undefined {
  const lower = name.toLowerCase()
  return head.headers.find(([n]) => n.toLowerCase() === lower)?.[1]
}

/** Body framing from Transfer-Encoding / Content-Length; `otherwise` when neither is present. */
export function declaredFraming (head: MessageHead, otherwise: BodyFraming): BodyFraming {
  const te = headerValue(head, 'transfer-encoding')
  if (te !== undefined && te.toLowerCase().split(',').map(s => s.trim()).includes('chunked')) return { kind: 'chunked' }
  const cl = headerValue(head, 'content-length')
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new HttpParseError(`bad Content-Length ${JSON.stringify(cl)}`)
    return { kind: 'length', length: Number(cl) }
  }
  return otherwise
}
