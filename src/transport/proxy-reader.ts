/**
 * Reads a proxy's handshake replies off a socket: exactly n bytes (SOCKS5) or up to a
 * delimiter within a size limit (an HTTP response head), then hands the socket back with
 * nothing of ours left on it and any early bytes put back in front.
 */
import type net from 'node:net'

export class ProxyReplyReader {
  readonly #socket: net.Socket
  #buffered: Buffer = Buffer.alloc(0)
  #ended: Error | undefined
  #wake: (() => void) | undefined

  constructor (socket: net.Socket) {
    this.#socket = socket
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
    socket.on('close', this.#onEnd)
    socket.on('error', this.#onError)
  }

  /** The next `n` bytes. */
  async read (n: number): Promise<Buffer> {
    while (this.#buffered.length < n) await this.#more()
    const out = this.#buffered.subarray(0, n)
    this.#buffered = this.#buffered.subarray(n)
    return out
  }

  /** Bytes up to and including `delimiter`; rejects once `max` bytes came without it. */
  async readUntil (delimiter: string, max: number): Promise<Buffer> {
    for (;;) {
      const at = this.#buffered.indexOf(delimiter, 0, 'latin1')
      if (at >= 0) return await this.read(at + delimiter.length)
      if (this.#buffered.length >= max) throw new Error(`reply longer than ${max} bytes`)
      await this.#more()
    }
  }

  /** Stops reading: the socket is paused, with bytes read past the reply put back. */
  release (): net.Socket {
    const s = this.#socket
    s.off('data', this.#onData)
    s.off('end', this.#onEnd)
    s.off('close', this.#onEnd)
    s.off('error', this.#onError)
    s.pause()
    if (this.#buffered.length > 0) s.unshift(this.#buffered)
    this.#buffered = Buffer.alloc(0)
    return s
  }

  #more (): Promise<void> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended)
    return new Promise((resolve, reject) => {
      this.#wake = () => {
        this.#wake = undefined
        if (this.#ended !== undefined) reject(this.#ended)
        else resolve()
      }
    })
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk])
    this.#wake?.()
  }

  readonly #onEnd = (): void => {
    this.#ended ??= new Error('the proxy closed the connection')
    this.#wake?.()
  }

  readonly #onError = (err: Error): void => {
    this.#ended ??= err
    this.#wake?.()
  }
}
