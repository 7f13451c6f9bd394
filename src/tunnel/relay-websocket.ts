/**
 * The relay's WebSocket endpoint on its shared HTTP and HTTPS ports (`GET /_mport/v1/connect`
 * on any Host, ahead of the tunnels): the upgrade, then the relay's control TLS inside the
 * WebSocket, then the same client handling as a connection to the control port. Each step has
 * a deadline and runs per connection; a failure closes that connection only.
 */
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import type tls from 'node:tls'
import type { RequestHead } from '../http/request-head.js'
import { acceptTlsOver, acceptWebSocket, controlSecureContext, isWebSocketRequest } from '../transport/websocket-accept.js'
import type { UpgradeRoute } from './http-front.js'

export interface RelayWebSocketOptions {
  /** The relay's control certificate and key (PEM): the inner TLS is the control port's. */
  cert: string | Buffer
  key: string | Buffer
  /** Budget for the inner TLS handshake, as on the control port. */
  handshakeTimeout: number // ms
  /** A client's TLS socket, handed over as the control listener hands over its own. */
  accept (socket: tls.TLSSocket): void
  /** A connection that failed before it was handed over. */
  onClientError (err: Error, remoteAddress: string | undefined): void
}

export class RelayWebSocketRoute implements UpgradeRoute {
  readonly #o: RelayWebSocketOptions
  readonly #context: tls.SecureContext

  constructor (options: RelayWebSocketOptions) {
    this.#o = options
    this.#context = controlSecureContext(options.cert, options.key)
  }

  matches (head: RequestHead): boolean {
    return isWebSocketRequest(head)
  }

  accept (io: Duplex, socket: net.Socket, head: RequestHead, rest: Buffer): void {
    const remoteAddress = socket.remoteAddress
    acceptWebSocket(head, io, rest)
      .then(stream => acceptTlsOver(stream, { secureContext: this.#context, timeout: this.#o.handshakeTimeout, remoteAddress }))
      .then(tlsSocket => {
        // The visitor socket's end is the session's end (the shared port tracks and closes it).
        tlsSocket.once('close', () => socket.destroy())
        this.#o.accept(tlsSocket)
      }, (err: Error) => {
        socket.destroy()
        this.#o.onClientError(err, remoteAddress)
      })
  }
}
