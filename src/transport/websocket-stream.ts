/**
 * A WebSocket as a byte pipe: binary messages in both directions seen as one Node Duplex, for
 * mport's TLS session to run inside (the WebSocket transport). Backpressure holds through it:
 * reading pauses the WebSocket (its socket) while the readable side is full, and writes are
 * acknowledged only while the WebSocket's unsent bytes stay under the writable high-water mark.
 */
import { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'

/** The fixed path of the relay's WebSocket endpoint on its shared HTTP and HTTPS ports. */
export const WEBSOCKET_PATH = '/_mport/v1/connect'
/** The largest WebSocket message either end accepts (TLS writes are far smaller). */
export const MAX_WEBSOCKET_MESSAGE = 1024 * 1024 // bytes
/** Unsent bytes a WebSocketStream lets pile up in the WebSocket before write() returns false. */
export const WEBSOCKET_WRITE_HIGH_WATER = 256 * 1024 // bytes

const OPEN = 1

/**
 * An open WebSocket as a Duplex of bytes. Text messages are a protocol error (closed with
 * 1003); the end of the readable side is the WebSocket's close. A WebSocket has no half-close:
 * ending the writable side closes the WebSocket (TLS's close_notify has said goodbye already).
 */
export class WebSocketStream extends Duplex {
  readonly #ws: WebSocket
  /** A write callback held until the WebSocket has sent enough. */
  #pending: (() => void) | undefined

  constructor (ws: WebSocket) {
    super({ allowHalfOpen: false, writableHighWaterMark: WEBSOCKET_WRITE_HIGH_WATER, readableHighWaterMark: WEBSOCKET_WRITE_HIGH_WATER })
    if (ws.readyState !== OPEN) throw new Error('WebSocketStream needs an open WebSocket')
    this.#ws = ws
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) { ws.close(1003, 'binary messages only'); return }
      if (!this.push(data)) ws.pause()
    })
    ws.once('close', () => {
      this.#release()
      // Bytes still buffered are read first; allowHalfOpen false then ends the writable side.
      this.push(null)
    })
    ws.on('error', (err: Error) => this.destroy(err))
  }

  /** Bytes given to the WebSocket and not yet written to its socket. */
  get bufferedAmount (): number {
    return this.#ws.bufferedAmount
  }

  override _read (): void {
    if (this.#ws.isPaused) this.#ws.resume()
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#ws.readyState !== OPEN) { cb(new Error('the WebSocket is closed')); return }
    let acked = false
    const ack = (): void => {
      if (acked) return
      acked = true
      this.#pending = undefined
      cb()
    }
    // The send callback runs once this message has reached the socket: the moment to take more
    // when the WebSocket holds too much. Errors surface through the WebSocket's 'error'/'close'.
    this.#ws.send(chunk, { binary: true }, () => ack())
    if (this.#ws.bufferedAmount < WEBSOCKET_WRITE_HIGH_WATER) ack()
    else this.#pending = ack
  }

  override _final (cb: (err?: Error | null) => void): void {
    if (this.#ws.readyState === OPEN) this.#ws.close(1000)
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.#release()
    if (this.#ws.readyState === OPEN) {
      if (err === null) this.#ws.close(1000)
      else this.#ws.terminate()
    }
    cb(err)
  }

  #release (): void {
    const p = this.#pending
    this.#pending = undefined
    p?.()
  }
}
