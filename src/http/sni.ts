/**
 * Reads the server name (SNI) from a TLS ClientHello, so one public HTTPS port can route TLS
 * connections by name: either to a tunnel whose TLS the relay terminates, or untouched to a
 * client that terminates TLS itself (the relay never sees plaintext).
 *
 * ClientHelloParser is a synchronous push parser: feed it the first bytes of a connection as
 * they arrive and it answers `need-more`, `not-tls` or `done` (with the server name, or
 * undefined when the client sent none). It keeps what it was fed (`buffered`) so the caller
 * can replay the bytes to whoever handles the connection. It buffers at most one maximal TLS
 * record (16 KiB + 5 bytes), checks every length against its bounds, and on malformed input
 * throws only InvalidClientHelloError.
 */
import { InvalidClientHelloError } from '../errors.js'

/** TLS ContentType handshake(22). */
const RECORD_HANDSHAKE = 0x16
/** HandshakeType client_hello(1). */
const HANDSHAKE_CLIENT_HELLO = 0x01
const RECORD_HEADER = 5
/** RFC 8446 §5.1: a record's plaintext is at most 2^14 bytes. */
export const MAX_RECORD_PAYLOAD = 16 * 1024
/** The most the parser ever buffers before it answers. */
export const MAX_CLIENT_HELLO_BUFFER = MAX_RECORD_PAYLOAD + RECORD_HEADER
const EXT_SERVER_NAME = 0
const EXT_ALPN = 16
const NAME_TYPE_HOST = 0

/** The answer of a ClientHello parse: more bytes needed, not TLS, or the server name and ALPN list read. */
export type ClientHelloResult =
  /** Not enough bytes yet: push more. */
  | { state: 'need-more' }
  /** The connection does not start with a TLS handshake record. */
  | { state: 'not-tls' }
  /** A whole ClientHello was read. */
  | { state: 'done', serverName: string | undefined, alpn: string[] | undefined }

/**
 * An incremental parser for the first bytes of a connection on the shared TLS port: push chunks
 * as they arrive until the answer is `done` or `not-tls`, then replay `buffered` to the handler.
 * Buffers at most MAX_CLIENT_HELLO_BUFFER bytes; malformed input throws InvalidClientHelloError.
 */
export class ClientHelloParser {
  #chunks: Buffer[] = []
  #length = 0
  #result: ClientHelloResult = { state: 'need-more' }
  #error: InvalidClientHelloError | undefined

  /** Everything pushed so far, in order (replay it to the connection's handler). */
  get buffered (): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)]
    return this.#chunks[0] ?? Buffer.alloc(0)
  }

  /** The latest answer (`need-more` until a push completes it). */
  get result (): ClientHelloResult {
    return this.#result
  }

  /**
   * Feeds bytes. Once the answer is `done` or `not-tls` it no longer changes and later bytes are
   * only appended to `buffered`. Throws InvalidClientHelloError (and again on every later push)
   * when the handshake is malformed or the ClientHello does not fit in MAX_CLIENT_HELLO_BUFFER.
   */
  push (chunk: Buffer): ClientHelloResult {
    if (this.#error !== undefined) throw this.#error
    if (chunk.length > 0) {
      this.#chunks.push(chunk)
      this.#length += chunk.length
    }
    if (this.#result.state !== 'need-more') return this.#result
    try {
      this.#result = parseClientHello(this.buffered)
      if (this.#result.state === 'need-more' && this.#length >= MAX_CLIENT_HELLO_BUFFER) {
        throw new InvalidClientHelloError(`no complete ClientHello in the first ${MAX_CLIENT_HELLO_BUFFER} bytes`)
      }
    } catch (err) {
      this.#error = err instanceof InvalidClientHelloError ? err : new InvalidClientHelloError(String(err))
      throw this.#error
    }
    return this.#result
  }
}

/**
 * Parses the ClientHello at the start of `buf` (one or more handshake records). Pure; throws
 * InvalidClientHelloError on malformed input.
 */
export function parseClientHello (buf: Buffer): ClientHelloResult {
  if (buf.length === 0) return { state: 'need-more' }
  if (buf[0] !== RECORD_HANDSHAKE) return { state: 'not-tls' }
  if (buf.length >= 2 && buf[1] !== 3) return { state: 'not-tls' }
  // Reject early: the handshake header is usually in the first record's first bytes.
  if (buf.length >= RECORD_HEADER + 4 && buf.readUInt16BE(3) >= 4) {
    if (buf[5] !== HANDSHAKE_CLIENT_HELLO) throw new InvalidClientHelloError(`first handshake message has type ${buf[5]}, not client_hello`)
    const announced = 4 + buf.readUIntBE(6, 3)
    if (announced > MAX_CLIENT_HELLO_BUFFER) throw new InvalidClientHelloError(`ClientHello of ${announced} bytes exceeds ${MAX_CLIENT_HELLO_BUFFER}`)
  }
  // Reassemble the handshake message from as many handshake records as it spans.
  const fragments: Buffer[] = []
  let have = 0
  let need = -1 // total handshake message size (4-byte header + body), once known
  let off = 0
  while (need < 0 || have < need) {
    if (buf.length - off < RECORD_HEADER) return { state: 'need-more' }
    if (buf[off] !== RECORD_HANDSHAKE) {
      if (off === 0) return { state: 'not-tls' }
      throw new InvalidClientHelloError(`record of type ${buf[off]} inside the ClientHello`)
    }
    if (buf[off + 1] !== 3) throw new InvalidClientHelloError(`record version ${buf[off + 1]}.${buf[off + 2]} is not TLS`)
    const len = buf.readUInt16BE(off + 3)
    if (len === 0) throw new InvalidClientHelloError('empty handshake record')
    if (len > MAX_RECORD_PAYLOAD) throw new InvalidClientHelloError(`record length ${len} exceeds ${MAX_RECORD_PAYLOAD}`)
    if (off + RECORD_HEADER + len > MAX_CLIENT_HELLO_BUFFER) {
      throw new InvalidClientHelloError(`ClientHello spans more than ${MAX_CLIENT_HELLO_BUFFER} bytes`)
    }
    if (buf.length - off < RECORD_HEADER + len) return { state: 'need-more' }
    fragments.push(buf.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len))
    have += len
    off += RECORD_HEADER + len
    if (need < 0 && have >= 4) {
      const hs = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments)
      if (hs[0] !== HANDSHAKE_CLIENT_HELLO) throw new InvalidClientHelloError(`first handshake message has type ${hs[0]}, not client_hello`)
      need = 4 + hs.readUIntBE(1, 3)
      if (need > MAX_CLIENT_HELLO_BUFFER) throw new InvalidClientHelloError(`ClientHello of ${need} bytes exceeds ${MAX_CLIENT_HELLO_BUFFER}`)
    }
  }
  const hs = Buffer.concat(fragments)
  return readClientHello(hs.subarray(4, need))
}

/** A bounds-checked cursor: every read past the end throws InvalidClientHelloError. */
class Reader {
  off = 0
  constructor (readonly buf: Buffer, readonly what: string) {}

  get left (): number {
    return this.buf.length - this.off
  }

  #need (n: number, field: string): void {
    if (this.left < n) throw new InvalidClientHelloError(`${this.what}: ${field} runs past the end (${n} bytes needed, ${this.left} left)`)
  }

  u8 (field: string): number {
    this.#need(1, field)
    return this.buf[this.off++]!
  }

  u16 (field: string): number {
    this.#need(2, field)
    const v = this.buf.readUInt16BE(this.off)
    this.off += 2
    return v
  }

  bytes (n: number, field: string): Buffer {
    this.#need(n, field)
    const b = this.buf.subarray(this.off, this.off + n)
    this.off += n
    return b
  }

  /** A sub-reader over a vector with a `lenBytes`-byte length prefix. */
  vector (lenBytes: 1 | 2, field: string): Reader {
    const n = lenBytes === 1 ? this.u8(`${field} length`) : this.u16(`${field} length`)
    return new Reader(this.bytes(n, field), field)
  }
}

function readClientHello (body: Buffer): ClientHelloResult {
  const r = new Reader(body, 'ClientHello')
  const major = r.u8('legacy_version')
  r.u8('legacy_version')
  if (major !== 3) throw new InvalidClientHelloError(`legacy_version major ${major} is not 3`)
  r.bytes(32, 'random')
  const session = r.vector(1, 'legacy_session_id')
  if (session.left > 32) throw new InvalidClientHelloError(`session id of ${session.left} bytes (at most 32)`)
  const suites = r.vector(2, 'cipher_suites')
  if (suites.left === 0 || suites.left % 2 !== 0) throw new InvalidClientHelloError(`cipher_suites of ${suites.left} bytes`)
  const compression = r.vector(1, 'compression_methods')
  if (compression.left === 0) throw new InvalidClientHelloError('no compression methods')
  if (r.left === 0) return { state: 'done', serverName: undefined, alpn: undefined } // no extensions (pre-TLS 1.2 style)
  const exts = r.vector(2, 'extensions')
  if (r.left !== 0) throw new InvalidClientHelloError(`${r.left} bytes after the extensions`)
  let serverName: string | undefined
  let alpn: string[] | undefined
  const seen = new Set<number>()
  while (exts.left > 0) {
    const type = exts.u16('extension type')
    const data = exts.vector(2, `extension ${type}`)
    if (seen.has(type)) throw new InvalidClientHelloError(`extension ${type} appears twice`)
    seen.add(type)
    if (type === EXT_SERVER_NAME) serverName = readServerName(data)
    else if (type === EXT_ALPN) alpn = readAlpn(data)
  }
  return { state: 'done', serverName, alpn }
}

function readServerName (data: Reader): string | undefined {
  if (data.left === 0) return undefined // a server's empty echo; tolerated from clients too
  const list = data.vector(2, 'server_name_list')
  if (data.left !== 0) throw new InvalidClientHelloError('bytes after server_name_list')
  let host: string | undefined
  while (list.left > 0) {
    const type = list.u8('name_type')
    const name = list.vector(2, 'host_name')
    if (type !== NAME_TYPE_HOST) continue
    if (host !== undefined) throw new InvalidClientHelloError('two host_name entries in server_name')
    host = checkHostName(name.buf)
  }
  return host
}

function checkHostName (raw: Buffer): string {
  if (raw.length === 0 || raw.length > 255) throw new InvalidClientHelloError(`host_name of ${raw.length} bytes`)
  for (const c of raw) {
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f
    if (!ok) throw new InvalidClientHelloError(`host_name contains byte 0x${c.toString(16).padStart(2, '0')}`)
  }
  const name = raw.toString('latin1').toLowerCase().replace(/\.$/, '')
  if (name === '' || name.startsWith('.') || name.includes('..')) throw new InvalidClientHelloError('host_name has an empty label')
  return name
}

function readAlpn (data: Reader): string[] {
  const list = data.vector(2, 'protocol_name_list')
  if (data.left !== 0) throw new InvalidClientHelloError('bytes after protocol_name_list')
  const out: string[] = []
  while (list.left > 0) {
    const p = list.vector(1, 'protocol_name')
    if (p.left === 0) throw new InvalidClientHelloError('empty ALPN protocol name')
    out.push(p.buf.toString('latin1'))
  }
  return out
}
