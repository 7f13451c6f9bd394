/**
 * The client's side of the WebSocket transport: opens `ws://` or `wss://` to the relay's
 * WebSocket endpoint and returns it as a byte stream (WebSocketStream) for mport's TLS to run
 * inside. The outer TLS of `wss` is not what authenticates the relay (a CDN or reverse proxy
 * may terminate it with its own certificate): the inner mport TLS, pinned like a direct
 * connection, does that, so the outer certificate is not verified here.
 */
import net from 'node:net'
import tls from 'node:tls'
import { WebSocket } from 'ws'
import { RelayUnreachableError } from '../errors.js'
import { formatHostPort, setKeepAlive, setNoDelay, timeoutReason, unreachableReason } from './tcp.js'
import { MAX_WEBSOCKET_MESSAGE, WEBSOCKET_PATH, WebSocketStream } from './websocket-stream.js'

/** Options of {@link connectWebSocket}. */
export interface ConnectWebSocketOptions {
  /** `ws`: plain HTTP (the relay's shared HTTP port); `wss`: inside TLS (its shared HTTPS port). */
  scheme: 'ws' | 'wss'
  /** The relay's host name, sent as Host (and SNI for wss). */
  host: string
  /** The relay's shared HTTP or HTTPS port. */
  port: number
  /** The endpoint's path (default `/_mport/v1/connect`). */
  path?: string
  /**
   * An already connected socket to carry the WebSocket (a proxy tunnel, or a plain HTTP proxy
   * itself with `absoluteForm`); default: a new TCP connection to `host:port`.
   */
  socket?: net.Socket
  /** Send the request line in absolute form (`GET ws://host:port/path`), as an HTTP proxy that only forwards plain HTTP requests expects. */
  absoluteForm?: boolean
  /** Extra request headers (a proxy's `Proxy-Authorization` in absolute form). */
  headers?: Record<string, string>
  /** Deadline for the connection and the upgrade, in ms. */
  timeout: number
}

/**
 * Opens the WebSocket and resolves once the relay switched protocols. Rejects with
 * RelayUnreachableError naming the URL: refused, timed out, or an HTTP answer other than 101
 * (a relay without the endpoint, or a proxy that refused the request).
 */
export function connectWebSocket (opts: ConnectWebSocketOptions): Promise<WebSocketStream> {
  const path = opts.path ?? WEBSOCKET_PATH
  const authority = formatHostPort(opts.host, opts.port)
  const url = `${opts.scheme}://${authority}${path}`
  const given = opts.socket
  return new Promise((resolve, reject) => {
    let settled = false
    const ws = new WebSocket(url, {
      perMessageDeflate: false, // TLS records do not compress, and compression would hide backpressure
      maxPayload: MAX_WEBSOCKET_MESSAGE,
      handshakeTimeout: opts.timeout,
      followRedirects: false,
      ...(opts.headers !== undefined ? { headers: opts.headers } : {}),
      ...(given !== undefined || opts.scheme === 'wss'
        ? { createConnection: () => outerSocket(opts.scheme, given, opts.host, opts.port) }
        : {}),
      ...(opts.absoluteForm === true
        ? { finishRequest: (req: { path: string, end (): void }) => { req.path = `http://${authority}${path}`; req.end() } }
        : {}),
    })
    const fail = (reason: string, cause?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      ws.removeAllListeners()
      ws.on('error', () => {})
      ws.terminate()
      given?.destroy()
      reject(new RelayUnreachableError(url, reason, cause === undefined ? undefined : { cause }))
    }
    // ws' own handshakeTimeout covers the request; this also covers a socket given in a bad state.
    const timer = setTimeout(() => fail(timeoutReason(opts.timeout)), opts.timeout)
    ws.once('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0
      res.resume()
      fail(status === 404
        ? `HTTP 404 at ${path}: no WebSocket endpoint there (is this an mport relay with its shared port on?)`
        : `the WebSocket upgrade was answered with HTTP ${status}${res.statusMessage !== undefined && res.statusMessage !== '' ? ` ${res.statusMessage}` : ''}`)
    })
    ws.once('error', (err: Error) => fail(/Opening handshake has timed out/.test(err.message) ? timeoutReason(opts.timeout) : unreachableReason(err), err))
    ws.once('close', () => fail('connection closed during the WebSocket upgrade'))
    ws.once('open', () => {
      if (settled) { ws.terminate(); return }
      settled = true
      clearTimeout(timer)
      ws.removeAllListeners()
      const s = (ws as unknown as { _socket?: net.Socket })._socket
      if (s !== undefined) { setNoDelay(s); setKeepAlive(s) }
      resolve(new WebSocketStream(ws))
    })
  })
}

/** The socket the WebSocket's HTTP request goes over: the given one, wrapped in TLS for wss. */
function outerSocket (scheme: 'ws' | 'wss', given: net.Socket | undefined, host: string, port: number): net.Socket {
  if (scheme === 'ws') {
    // A proxy tunnel comes paused (proxy-reader.ts); the HTTP client reads it through 'data'
    // events, attached in the next tick, and nothing arrives before the request is sent.
    given!.resume()
    return given!
  }
  return tls.connect({
    ...(given !== undefined ? { socket: given } : { host, port }),
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
    ALPNProtocols: ['http/1.1'],
    // Not the relay's authentication (see the module comment): the inner mport TLS is.
    rejectUnauthorized: false,
  })
}
