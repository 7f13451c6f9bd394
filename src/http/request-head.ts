/**
 * The head of a visitor's HTTP/1.x request: what the relay needs to route it (a validated
 * Host), to forward it (body framing, keep-alive, Upgrade) and to tell the local service who
 * the visitor is (X-Forwarded-* added, client-supplied ones dropped).
 *
 * RequestHeadParser is incremental: it scans pushed bytes for the blank line that ends the
 * head without re-copying them (a slow client sending one byte at a time costs O(n)), holds at
 * most `maxHeadSize` bytes, and returns the head plus the bytes after it. Parsing is strict in
 * the ways that matter for a proxy (RFC 9112): CRLF line ends only, no obsolete line folding,
 * no whitespace before a header's colon, one Host, no Transfer-Encoding with Content-Length,
 * so the relay and the local service can never disagree about where a request ends.
 * Header bytes are kept as latin1 strings, so a head is forwarded byte for byte.
 */
import { formatIp, normalizeIp, parseIp } from '../access/cidr.js'
import { BadRequestError, HeadersTooLargeError } from '../errors.js'

/** Largest request head accepted (request line, headers and the blank line). */
export const MAX_HEAD_SIZE = 32 * 1024
/** Most header fields accepted in one request head. */
export const MAX_HEADERS = 100

export type BodyFraming =
  /** No body: the next request head follows at once. */
  | { kind: 'none' }
  /** Exactly `length` body bytes follow (Content-Length). */
  | { kind: 'length', length: number }
  /** A chunked body follows (Transfer-Encoding: chunked). */
  | { kind: 'chunked' }

/** One parsed HTTP/1.x request head, as RequestHeadParser returns it. */
export interface RequestHead {
  /** The request method as sent (a token, case kept). */
  method: string
  /** The request target as sent (origin-form `/path?q`, absolute-form, `*`). */
  target: string
  /** HTTP version of the request line. */
  version: '1.0' | '1.1'
  /** Header fields in order, names and values as sent (latin1), values without surrounding whitespace. */
  headers: Array<[name: string, value: string]>
  /** Validated host name: lowercase, no port, no trailing dot (IPv6 literals without brackets). */
  host: string | undefined
  /** Port from the Host header (or absolute-form target), if any. */
  port: number | undefined
  /** The Host authority as sent (for X-Forwarded-Host). */
  authority: string | undefined
  /** Lowercase tokens of all Connection headers. */
  connection: string[]
  /** The Upgrade header when Connection lists `upgrade` (the connection switches protocols if the server agrees). */
  upgrade: string | undefined
  /** Whether the client expects the connection to stay open after this request. */
  keepAlive: boolean
  /** How the body after this head is framed, so the next request is found. */
  body: BodyFraming
  /** Size in bytes of the head as received, including the blank line (and any empty lines before it). */
  size: number
}

/** Limits of one request head; over either one the parser raises HeadersTooLargeError. */
export interface HeadLimits {
  /** Largest head in bytes, blank line included (default MAX_HEAD_SIZE, 32 KiB). */
  maxHeadSize?: number
  /** Most header fields (default MAX_HEADERS, 100). */
  maxHeaders?: number
}

export interface ParsedHead {
  head: RequestHead
  /** Bytes received after the head (body, or the next request). */
  rest: Buffer
}

const CR = 0x0d
const LF = 0x0a
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/
// eslint-disable-next-line no-control-regex
const BAD_TARGET = /[\x00-\x20\x7f]/

/** Finds the end of one request head after another in a byte stream. */
export class RequestHeadParser {
  readonly #maxHeadSize: number
  readonly #maxHeaders: number
  #chunks: Buffer[] = []
  #length = 0
  /** Leading CR/LF bytes skipped before the request line (RFC 9112 §2.2). */
  #skipped = 0
  /** How much of CR LF CR LF has been matched at the end of what was scanned. */
  #matched = 0

  constructor (limits: HeadLimits = {}) {
    this.#maxHeadSize = limits.maxHeadSize ?? MAX_HEAD_SIZE
    this.#maxHeaders = limits.maxHeaders ?? MAX_HEADERS
  }

  /** Bytes of an unfinished head held so far. */
  get buffered (): number {
    return this.#length
  }

  /** True when no byte of a next head has been seen. */
  get idle (): boolean {
    return this.#length === 0 && this.#skipped === 0
  }

  /**
   * Feeds bytes; returns the head once it is complete (then the parser is ready for the next
   * one), else undefined. Throws BadRequestError or HeadersTooLargeError.
   */
  push (chunk: Buffer): ParsedHead | undefined {
    let i = 0
    if (this.#length === 0) {
      // Skip empty lines before the request line (a client's stray CRLF after a body).
      while (i < chunk.length && (chunk[i] === CR || chunk[i] === LF)) i++
      this.#skipped += i
      if (this.#skipped > this.#maxHeadSize) throw new HeadersTooLargeError(this.#maxHeadSize, 'blank lines before the request line')
      if (i === chunk.length) return undefined
    }
    const start = i
    let end = -1
    for (; i < chunk.length; i++) {
      const b = chunk[i]
      if (b === (this.#matched % 2 === 0 ? CR : LF)) {
        if (++this.#matched === 4) { end = i + 1; break }
      } else {
        this.#matched = b === CR ? 1 : 0
      }
    }
    const taken = (end < 0 ? chunk.length : end) - start
    if (this.#length + taken > this.#maxHeadSize) {
      throw new HeadersTooLargeError(this.#maxHeadSize, `request head of more than ${this.#length + taken} bytes`)
    }
    this.#chunks.push(chunk.subarray(start, start + taken))
    this.#length += taken
    if (end < 0) return undefined
    const raw = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length)
    const size = this.#length + this.#skipped
    this.#chunks = []
    this.#length = 0
    this.#skipped = 0
    this.#matched = 0
    const head = parseRequestHead(raw, { maxHeaders: this.#maxHeaders })
    head.size = size
    return { head, rest: chunk.subarray(end) }
  }
}

/** Parses a complete head (request line through the blank line). */
export function parseRequestHead (raw: Buffer, limits: HeadLimits = {}): RequestHead {
  const maxHeaders = limits.maxHeaders ?? MAX_HEADERS
  const text = raw.toString('latin1')
  if (!text.endsWith('\r\n\r\n')) throw new BadRequestError('request head does not end with an empty line')
  const lines = text.slice(0, -4).split('\r\n')
  for (const line of lines) {
    if (line.includes('\r') || line.includes('\n')) throw new BadRequestError('bare CR or LF in the request head')
  }
  const requestLine = lines[0]!
  const m = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/.exec(requestLine)
  if (m === null) throw new BadRequestError(`malformed request line ${JSON.stringify(requestLine.slice(0, 100))}`)
  const [, method, target, major, minor] = m as unknown as [string, string, string, string, string]
  if (!TOKEN.test(method)) throw new BadRequestError('invalid method')
  if (BAD_TARGET.test(target)) throw new BadRequestError('invalid request target')
  if (major !== '1' || (minor !== '0' && minor !== '1')) throw new BadRequestError(`unsupported HTTP version ${major}.${minor}`)
  const version = minor === '0' ? '1.0' : '1.1'
  if (method === 'CONNECT') throw new BadRequestError('CONNECT is not supported: this is not a forward proxy')

  if (lines.length - 1 > maxHeaders) throw new HeadersTooLargeError(maxHeaders, `${lines.length - 1} header fields`)
  const headers: Array<[string, string]> = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    if (line.startsWith(' ') || line.startsWith('\t')) throw new BadRequestError('obsolete line folding in a header')
    const colon = line.indexOf(':')
    if (colon <= 0) throw new BadRequestError(`header line without a name: ${JSON.stringify(line.slice(0, 60))}`)
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) throw new BadRequestError(`invalid header name ${JSON.stringify(name.slice(0, 60))}`)
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')
    if (BAD_VALUE.test(value)) throw new BadRequestError(`control character in header ${name}`)
    headers.push([name, value])
  }

  const values = (n: string): string[] => headers.filter(h => h[0].toLowerCase() === n).map(h => h[1])
  const list = (n: string): string[] => values(n).flatMap(v => v.split(',')).map(v => v.trim().toLowerCase()).filter(v => v !== '')

  // Host: exactly one in HTTP/1.1; an absolute-form target overrides it (RFC 9112 §3.2.2).
  const hosts = values('host')
  if (hosts.length > 1) throw new BadRequestError('more than one Host header')
  if (version === '1.1' && hosts.length === 0) throw new BadRequestError('missing Host header')
  let authority = hosts[0]
  const abs = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target)
  if (abs !== null) authority = abs[1]!.replace(/^[^@]*@/, '')
  let host: string | undefined
  let port: number | undefined
  if (authority !== undefined) ({ host, port } = parseHostHeader(authority))

  const connection = list('connection')
  const upgradeValue = values('upgrade')[0]
  const upgrade = connection.includes('upgrade') && upgradeValue !== undefined && upgradeValue !== '' ? upgradeValue : undefined
  const keepAlive = version === '1.1' ? !connection.includes('close') : connection.includes('keep-alive')

  return { method, target, version, headers, host, port, authority, connection, upgrade, keepAlive, body: bodyFraming(version, list('transfer-encoding'), values('content-length')), size: raw.length }
}

/** RFC 9112 §6.3 for requests, refusing every ambiguous combination. */
function bodyFraming (version: '1.0' | '1.1', codings: string[], lengths: string[]): BodyFraming {
  if (codings.length > 0) {
    if (version === '1.0') throw new BadRequestError('Transfer-Encoding in an HTTP/1.0 request')
    if (lengths.length > 0) throw new BadRequestError('both Transfer-Encoding and Content-Length')
    if (codings[codings.length - 1] !== 'chunked') throw new BadRequestError('Transfer-Encoding does not end with chunked')
    if (codings.filter(c => c === 'chunked').length > 1) throw new BadRequestError('chunked applied more than once')
    return { kind: 'chunked' }
  }
  if (lengths.length === 0) return { kind: 'none' }
  const all = lengths.flatMap(v => v.split(',')).map(v => v.trim())
  if (!all.every(v => /^\d{1,15}$/.test(v))) throw new BadRequestError('invalid Content-Length')
  if (all.some(v => v !== all[0])) throw new BadRequestError('conflicting Content-Length values')
  const length = Number(all[0])
  return length === 0 ? { kind: 'none' } : { kind: 'length', length }
}

/**
 * Validates a Host header value (`name`, `name:port`, `[v6]`, `[v6]:port`): DNS label rules
 * (letters, digits, hyphens; labels of 1–63; at most 253), lowercased, trailing dot dropped.
 */
export function parseHostHeader (value: string): { host: string, port: number | undefined } {
  let name = value
  let portText: string | undefined
  if (value.startsWith('[')) {
    const close = value.indexOf(']')
    if (close < 0) throw new BadRequestError('unterminated IPv6 literal in Host')
    name = value.slice(1, close)
    const after = value.slice(close + 1)
    if (after !== '') {
      if (!after.startsWith(':')) throw new BadRequestError('junk after the IPv6 literal in Host')
      portText = after.slice(1)
    }
    const ip = parseIp(name)
    if (ip === undefined || ip.family !== 6 || name.includes('%')) throw new BadRequestError('invalid IPv6 literal in Host')
    return { host: formatIp(ip), port: parsePort(portText) }
  }
  const colon = value.lastIndexOf(':')
  if (colon >= 0) {
    name = value.slice(0, colon)
    portText = value.slice(colon + 1)
  }
  const host = name.toLowerCase().replace(/\.$/, '')
  if (!isDnsName(host)) throw new BadRequestError(`invalid Host ${JSON.stringify(value.slice(0, 100))}`)
  return { host, port: parsePort(portText) }
}

function parsePort (text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined // "host:" is allowed (RFC 3986 empty port)
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new BadRequestError(`invalid port "${text.slice(0, 10)}" in Host`)
  return Number(text)
}

/** Lowercase DNS name: labels of 1–63 letters, digits and inner hyphens; 253 characters at most. */
export function isDnsName (name: string): boolean {
  if (name.length === 0 || name.length > 253) return false
  return name.split('.').every(l => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l))
}

export interface ForwardingInfo {
  /** The visitor's address (IPv4-mapped IPv6 is written as IPv4). */
  forwardedFor: string
  /** The scheme the visitor used towards the relay. */
  proto: 'http' | 'https'
  /** Value for X-Forwarded-Host; defaults to the request's Host authority. */
  host?: string
}

/**
 * The head to send upstream: the request line and headers as received, minus every
 * client-supplied `Forwarded`, `X-Forwarded-*` and `X-Real-IP` (a visitor must not choose the
 * address the local service sees), plus X-Forwarded-For, -Proto and -Host set by the relay.
 */
export function rewriteHead (head: RequestHead, info: ForwardingInfo): Buffer {
  const ip = normalizeIp(info.forwardedFor)
  if (ip === undefined) throw new TypeError(`forwardedFor is not an IP address: ${JSON.stringify(info.forwardedFor)}`)
  if (info.proto !== 'http' && info.proto !== 'https') throw new TypeError(`proto must be http or https, not ${JSON.stringify(info.proto)}`)
  const fwdHost = info.host ?? head.authority
  if (fwdHost !== undefined && !/^[\x21-\x7e]+$/.test(fwdHost)) throw new TypeError('forwarded host has characters not allowed in a header')
  let out = `${head.method} ${head.target} HTTP/${head.version}\r\n`
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase()
    if (lower === 'forwarded' || lower === 'x-real-ip' || lower.startsWith('x-forwarded-')) continue
    out += `${name}: ${value}\r\n`
  }
  out += `X-Forwarded-For: ${ip}\r\nX-Forwarded-Proto: ${info.proto}\r\n`
  if (fwdHost !== undefined && fwdHost !== '') out += `X-Forwarded-Host: ${fwdHost}\r\n`
  return Buffer.from(out + '\r\n', 'latin1')
}
