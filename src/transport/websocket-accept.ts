/**
 * The relay's side of the WebSocket transport: completes the upgrade of a request already read
 * from a shared HTTP(S) port, then runs the relay's own TLS (its control certificate, ALPN
 * `mport/1`, TLS 1.3) inside the WebSocket, so a client reaching it this way verifies the same
 * certificate as over the direct TLS port, whoever terminated the outer connection.
 */
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { WebSocketServer, type WebSocket } from 'ws'
import { HandshakeTimeoutError } from '../errors.js'
import { ALPN_PROTOCOL, CIPHER_SUITES } from './tls.js'
import { MAX_WEBSOCKET_MESSAGE, WEBSOCKET_PATH, WebSocketStream } from './websocket-stream.js'

/** A request head as the shared ports parse it (method, target, headers in order). */
export interface UpgradeRequest {
  method: string
  target: string
  headers: ReadonlyArray<readonly [name: string, value: string]>
}

// No server of its own: upgrades arrive on sockets the shared ports already accepted.
const server = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_WEBSOCKET_MESSAGE, clientTracking: false })

/** True for a request to the WebSocket endpoint (`GET /_mport/v1/connect`, on any Host) that asks for an upgrade. */
export function isWebSocketRequest (req: UpgradeRequest): boolean {
  const q = req.target.indexOf('?')
  const path = q < 0 ? req.target : req.target.slice(0, q)
  return path === WEBSOCKET_PATH && req.headers.some(([k, v]) => k.toLowerCase() === 'upgrade' && v.toLowerCase().includes('websocket'))
}

/**
 * Answers the upgrade on `socket` (`rest`: bytes read after the request head) and resolves
 * with the WebSocket as a byte stream. A malformed upgrade gets ws' 400 and the socket closes;
 * the promise then rejects.
 */
export function acceptWebSocket (req: UpgradeRequest, socket: Duplex, rest: Buffer): Promise<WebSocketStream> {
  const headers: Record<string, string> = {}
  for (const [k, v] of req.headers) headers[k.toLowerCase()] = v
  // ws reads only method, url and headers of the request (and socket, for verifyClient, unused).
  const incoming = { method: req.method, url: req.target, headers, socket }
  return new Promise((resolve, reject) => {
    const onClose = (): void => reject(new Error('the WebSocket upgrade failed'))
    socket.once('close', onClose)
    server.handleUpgrade(incoming as never, socket as never, rest, (ws: WebSocket) => {
      socket.off('close', onClose)
      resolve(new WebSocketStream(ws))
    })
    socket.resume() // the shared port paused it while routing
  })
}

/** Options of {@link acceptTlsOver}. */
export interface AcceptTlsOverOptions {
  /** The relay's control certificate and key ({@link controlSecureContext}). */
  secureContext: tls.SecureContext
  /** The TLS handshake must complete within this many ms. */
  timeout: number
  /** Reported as the TLS socket's remoteAddress (the inner socket has no address of its own). */
  remoteAddress: string | undefined
}

/**
 * Runs the relay's TLS on `stream` as the server; resolves with the TLS socket once the
 * handshake completed with ALPN `mport/1`, as the control listener hands its sockets over.
 */
export function acceptTlsOver (stream: Duplex, opts: AcceptTlsOverOptions): Promise<tls.TLSSocket> {
  const socket = new tls.TLSSocket(stream, {
    isServer: true,
    secureContext: opts.secureContext,
    ALPNProtocols: [ALPN_PROTOCOL],
  })
  // The session layer and the relay's limiter read remoteAddress; name the visitor's end.
  Object.defineProperty(socket, 'remoteAddress', { value: opts.remoteAddress, configurable: true })
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      clearTimeout(timer)
      socket.off('secure', onSecure)
      socket.on('error', () => {})
      socket.destroy()
      stream.destroy()
      reject(err)
    }
    const timer = setTimeout(() => fail(new HandshakeTimeoutError(opts.timeout, 'TLS handshake over WebSocket')), opts.timeout)
    const onError = (err: Error): void => fail(err)
    const onSecure = (): void => {
      clearTimeout(timer)
      socket.off('error', onError)
      socket.on('error', () => {}) // the owner listens for 'close'; see listenTls
      if (socket.alpnProtocol !== ALPN_PROTOCOL) { fail(new Error(`client did not negotiate ALPN "${ALPN_PROTOCOL}"`)); return }
      resolve(socket)
    }
    socket.once('secure', onSecure)
    socket.once('error', onError)
  })
}

/** The secure context of the relay's control TLS (as listenTls sets it up), for {@link acceptTlsOver}. */
export function controlSecureContext (cert: string | Buffer, key: string | Buffer): tls.SecureContext {
  return tls.createSecureContext({ cert, key, minVersion: 'TLSv1.3', ciphers: CIPHER_SUITES })
}
