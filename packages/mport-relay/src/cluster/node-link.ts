/**
 * Links between the nodes of a cluster: one mux session over TLS from each node to each other
 * node it forwards visitors to, the same multiplexer the clients use. Every visitor another
 * node forwards is one stream, its first bytes a small header naming the lease and tunnel it is
 * for and the visitor's address.
 *
 * Authentication: both ends prove the cluster key with an HMAC over the TLS connection's
 * exported keying material (exportAuthBinding), the dialer first. The certificate is not what
 * is trusted, so nodes may run self-signed; a man in the middle holds two TLS connections with
 * different keying material and can pass neither proof along. A stream opened before the
 * dialer's proof verified is reset.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { Session, type MuxStream } from 'mport/mux'
import { connectTls, exportAuthBinding, listenTls, type TlsListener } from 'mport/transport'
import { AuthFailedError, HandshakeTimeoutError, InvalidMessageError, MessageTooLargeError } from 'mport/errors'

/** The first bytes of a forwarded visitor stream, or of a request to let a lease go (`op: 'drop'`, its client moved to the dialer). */
export interface ForwardHeader {
  op?: 'drop'
  lease: string
  tunnel: number
  /** The visitor's address and port, and the node address it reached. */
  addr: string
  port: number
  daddr: string
  dport: number
}

/** Largest link header or proof message (after its 2-byte length). */
const MAX_LINK_MESSAGE = 1024
/** A link's proofs, or a forwarded stream's header, must arrive within this time. */
const LINK_HANDSHAKE_MS = 5_000

export interface NodeLinksOptions {
  /** This node's id (told to the nodes it dials, for their logs). */
  node: string
  /** The shared cluster key. */
  clusterKey: string
  /** Certificate and key of the link listener (the relay's control certificate serves). */
  cert: string | Buffer
  key: string | Buffer
  host: string
  port: number
  /** A visitor forwarded to this node, after its header. */
  onStream (header: ForwardHeader, stream: MuxStream): void
  onWarning (err: Error): void
}

export class NodeLinks {
  readonly #o: NodeLinksOptions
  readonly #key: Buffer
  /** Established outgoing links by node id, and the ones being dialed. */
  readonly #out = new Map<string, Session>()
  readonly #dialing = new Map<string, Promise<Session>>()
  readonly #in = new Set<Session>()
  #listener: TlsListener | undefined
  #closed = false

  constructor (o: NodeLinksOptions) {
    this.#o = o
    this.#key = Buffer.from(o.clusterKey, 'utf8')
  }

  async listen (): Promise<AddressInfo> {
    this.#listener = await listenTls({
      host: this.#o.host,
      port: this.#o.port,
      cert: this.#o.cert,
      key: this.#o.key,
      handshakeTimeout: LINK_HANDSHAKE_MS,
      exclusive: true, // each worker of one host its own link listener, never the shared one
      onError: err => this.#o.onWarning(err),
    }, socket => this.#accept(socket))
    return this.#listener.address
  }

  /** An established link to `node` (at `link`, `host:port`), dialing it if there is none. */
  async session (node: string, link: string): Promise<Session> {
    const up = this.#out.get(node)
    if (up !== undefined && !up.closed) return up
    let dialing = this.#dialing.get(node)
    if (dialing === undefined) {
      dialing = this.#dial(node, link).finally(() => this.#dialing.delete(node))
      this.#dialing.set(node, dialing)
    }
    return await dialing
  }

  /** The established link to `node`, if there is one now (a visitor stream is opened on it at once). */
  established (node: string): Session | undefined {
    const s = this.#out.get(node)
    return s === undefined || s.closed ? undefined : s
  }

  /** Opens a visitor stream on `session`, its header riding with the SYN. */
  static forward (session: Session, header: ForwardHeader): MuxStream {
    const stream = session.open()
    stream.write(prefixed(header))
    return stream
  }

  /**
   * Asks the node on `session` to let lease `lease` go (its client is here now) and resolves
   * once it has: its tunnels' listeners are closed, so their ports are free on a shared address.
   */
  static async handOff (session: Session, lease: string, timeoutMs = LINK_HANDSHAKE_MS): Promise<void> {
    const stream = NodeLinks.forward(session, { op: 'drop', lease, tunnel: 0, addr: '', port: 0, daddr: '', dport: 0 })
    stream.on('error', () => {})
    stream.end()
    stream.resume()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      new Promise<void>(resolve => stream.once('close', () => resolve())),
      new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) }),
    ])
    clearTimeout(timer)
    stream.destroy()
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const s of [...this.#out.values(), ...this.#in]) s.destroy()
    await this.#listener?.close()
  }

  async #dial (node: string, link: string): Promise<Session> {
    const i = link.lastIndexOf(':')
    const host = link.slice(0, i).replace(/^\[|\]$/g, '')
    const port = Number(link.slice(i + 1))
    const { socket } = await connectTls({ host, port, insecure: true, timeout: LINK_HANDSHAKE_MS })
    const session = new Session(socket, { client: true, keepAliveInterval: 5_000, keepAliveTimeout: 10_000 })
    session.on('stream', s => s.destroy()) // links carry visitors one way: from the dialer
    try {
      const control = session.open()
      control.on('error', () => {}) // the link ends with its session; the session's close says so
      const binding = exportAuthBinding(socket as TLSSocket)
      control.write(prefixed({ node: this.#o.node, proof: this.#proof('dial', binding) }))
      const answer = await readPrefixed(control).catch((err: Error) => {
        throw new AuthFailedError(`cluster link to ${node}: closed before the other node proved the cluster key (not the same key on both nodes?): ${err.message}`)
      })
      if (typeof answer.proof !== 'string' || !this.#verify('accept', binding, answer.proof)) throw new AuthFailedError(`cluster link to ${node}: the other node does not prove the cluster key`)
      control.on('data', () => {})
    } catch (err) {
      session.destroy()
      throw err
    }
    if (this.#closed) { session.destroy(); throw new AuthFailedError('cluster links are closed') }
    this.#out.set(node, session)
    session.on('close', () => { if (this.#out.get(node) === session) this.#out.delete(node) })
    return session
  }

  #accept (socket: TLSSocket): void {
    const session = new Session(socket, { client: false, keepAliveInterval: 5_000, keepAliveTimeout: 10_000 })
    this.#in.add(session)
    session.on('close', () => this.#in.delete(session))
    let trusted = false
    let first = true
    const binding = exportAuthBinding(socket)
    session.on('stream', (stream: MuxStream) => {
      if (first) {
        first = false
        this.#authenticate(session, stream, binding).then(() => { trusted = true }, () => {}) // refused: reported, session destroyed
        return
      }
      if (!trusted) { stream.destroy(); return }
      stream.on('error', () => {}) // a visitor's reset or a lost link: the splice tears down the other side
      readPrefixed(stream).then(h => this.#o.onStream(forwardHeader(h), stream), () => stream.destroy())
    })
  }

  async #authenticate (session: Session, control: MuxStream, binding: Buffer): Promise<void> {
    control.on('error', () => {}) // the link ends with its session
    try {
      const hello = await readPrefixed(control)
      if (typeof hello.proof !== 'string' || !this.#verify('dial', binding, hello.proof)) throw new AuthFailedError('cluster link: the dialing node does not prove the cluster key')
      control.write(prefixed({ node: this.#o.node, proof: this.#proof('accept', binding) }))
      control.on('data', () => {})
    } catch (err) {
      this.#o.onWarning(err as Error)
      session.destroy()
      throw err
    }
  }

  #proof (role: 'dial' | 'accept', binding: Buffer): string {
    return createHmac('sha256', this.#key).update(`mport-cluster-link/1 ${role}\n`).update(binding).digest('base64url')
  }

  #verify (role: 'dial' | 'accept', binding: Buffer, proof: string): boolean {
    const want = Buffer.from(this.#proof(role, binding))
    const got = Buffer.from(proof)
    return want.length === got.length && timingSafeEqual(want, got)
  }
}

function forwardHeader (o: Record<string, unknown>): ForwardHeader {
  const str = (k: string): string => { const v = o[k]; if (typeof v !== 'string' || v.length > 256) throw new InvalidMessageError(`link header: "${k}" must be a string`); return v }
  const int = (k: string, max: number): number => { const v = o[k]; if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new InvalidMessageError(`link header: "${k}" must be an integer`); return v }
  if (o.op !== undefined && o.op !== 'drop') throw new InvalidMessageError('link header: unknown "op"')
  return { ...(o.op === 'drop' ? { op: 'drop' as const } : {}), lease: str('lease'), tunnel: int('tunnel', 0xffff_ffff), addr: str('addr'), port: int('port', 65535), daddr: str('daddr'), dport: int('dport', 65535) }
}

/** JSON behind a 2-byte big-endian length. */
function prefixed (value: object): Buffer {
  const body = Buffer.from(JSON.stringify(value))
  if (body.length > MAX_LINK_MESSAGE) throw new MessageTooLargeError(body.length, MAX_LINK_MESSAGE)
  const out = Buffer.allocUnsafe(2 + body.length)
  out.writeUInt16BE(body.length, 0)
  body.copy(out, 2)
  return out
}

/** Reads one length-prefixed JSON object; what follows it stays buffered in the stream. */
function readPrefixed (stream: Duplex): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let length: number | undefined
    const done = (err: Error | undefined, value?: Record<string, unknown>): void => {
      clearTimeout(timer)
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('error', onEnd)
      if (err !== undefined) reject(err)
      else resolve(value!)
    }
    const onEnd = (): void => done(new InvalidMessageError('link stream ended before its header'))
    const onReadable = (): void => {
      if (length === undefined) {
        const prefix = stream.read(2) as Buffer | null
        if (prefix === null) return
        length = prefix.readUInt16BE(0)
        if (length > MAX_LINK_MESSAGE) return done(new MessageTooLargeError(length, MAX_LINK_MESSAGE))
      }
      const body = stream.read(length) as Buffer | null
      if (body === null) return
      let v: unknown
      try { v = JSON.parse(body.toString('utf8')) } catch { v = undefined }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return done(new InvalidMessageError('link message is not a JSON object'))
      done(undefined, v as Record<string, unknown>)
    }
    const timer = setTimeout(() => done(new HandshakeTimeoutError(LINK_HANDSHAKE_MS, 'cluster link message')), LINK_HANDSHAKE_MS)
    stream.on('readable', onReadable)
    stream.on('end', onEnd)
    stream.on('error', onEnd)
    onReadable()
  })
}
