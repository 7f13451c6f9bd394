/**
 * ReusedReadBuffer: a socket's `onread` option as a ChunkSource. Every read lands in the same
 * buffer, so a TLS socket costs one callback per record and no allocation; the consumer copies
 * what it keeps. Chunks that arrive before a consumer attaches are copied and held for it, and
 * past EARLY_LIMIT the socket is paused until then, as a 'data' socket's buffer would.
 */
import type { Socket } from 'node:net'
import type { ChunkSource } from '../mux/chunk-source.js'

/** A TLS record carries at most 16 KiB; a plain socket may fill all of it. */
const READ_BUFFER_SIZE = 64 * 1024
const EARLY_LIMIT = 256 * 1024

export class ReusedReadBuffer implements ChunkSource {
  /** Pass as the `onread` option of net.connect() or tls.connect(). */
  readonly onread: { buffer: Buffer, callback: (bytes: number, buffer: Buffer) => boolean }
  #socket: Socket | undefined
  #onChunk: ((chunk: Buffer) => void) | undefined
  #early: Buffer[] | undefined = []
  #earlyBytes = 0
  #paused = false

  constructor () {
    const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
    this.onread = { buffer, callback: bytes => this.#deliver(buffer.subarray(0, bytes)) }
  }

  /** The socket created with `onread`, so that an early flood can pause it. */
  bind (socket: Socket): void {
    this.#socket = socket
  }

  attach (onChunk: (chunk: Buffer) => void): void {
    const early = this.#early ?? []
    this.#early = undefined
    this.#onChunk = onChunk
    for (const chunk of early) onChunk(chunk)
    if (this.#paused) {
      this.#paused = false
      this.#socket?.resume()
    }
  }

  detach (): void {
    this.#onChunk = undefined
    this.#early = undefined
  }

  /** Returning false pauses the socket (net.Socket's onread contract). */
  #deliver (chunk: Buffer): boolean {
    if (this.#onChunk !== undefined) {
      this.#onChunk(chunk)
      return true
    }
    if (this.#early === undefined) return true // detached: dropped
    this.#early.push(Buffer.from(chunk))
    this.#earlyBytes += chunk.length
    if (this.#earlyBytes < EARLY_LIMIT) return true
    this.#paused = true
    return false
  }
}
