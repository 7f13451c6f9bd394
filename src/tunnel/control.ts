/**
 * ControlChannel: length-prefixed messages over one mux stream, with a bounded buffer and
 * receive timeouts for the handshake (a silent peer never holds anything but its own stream).
 */
import type { Duplex } from 'node:stream'
import { HandshakeTimeoutError, MessageTooLargeError, MportError, SessionClosedError } from '../errors.js'
import { encodeMessage, MAX_CONTROL_MESSAGE, type ClientMessage, type RelayMessage } from './messages.js'

/** Parsed messages held before the stream is paused. */
const QUEUE_LIMIT = 16

export class ControlChannel<In> {
  readonly #stream: Duplex
  readonly #parse: (body: Buffer) => In
  #buffered: Buffer[] = []
  #bufferedBytes = 0
  #queue: In[] = []
  #waiters: Array<{ resolve (m: In): void, reject (e: Error): void }> = []
  #ended: Error | undefined

  constructor (stream: Duplex, parse: (body: Buffer) => In) {
    this.#stream = stream
    this.#parse = parse
    stream.on('data', (chunk: Buffer) => this.#onData(chunk))
    stream.on('end', () => this.#fail(new SessionClosedError('control stream ended')))
    stream.on('error', (err: Error) => this.#fail(err instanceof MportError ? err : new SessionClosedError(`control stream failed: ${err.message}`, { cause: err })))
    stream.on('close', () => this.#fail(new SessionClosedError('control stream closed')))
  }

  /** Why the channel ended, once it has. */
  get ended (): Error | undefined { return this.#ended }

  send (msg: ClientMessage | RelayMessage): void {
    // The receive side may have failed (a bad message); replies, such as the error, still go out.
    if (this.#stream.writable) this.#stream.write(encodeMessage(msg))
  }

  /** The next message; rejects when the channel ends or fails. */
  recv (): Promise<In> {
    const m = this.#queue.shift()
    if (this.#queue.length < QUEUE_LIMIT && this.#stream.isPaused()) this.#stream.resume()
    if (m !== undefined) return Promise.resolve(m)
    if (this.#ended !== undefined) return Promise.reject(this.#ended)
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  /** recv() bounded by `ms`; on timeout the channel fails with HandshakeTimeoutError. */
  async recvTimeout (ms: number, what: string): Promise<In> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = new HandshakeTimeoutError(ms, what)
        this.#fail(err)
        reject(err)
      }, ms)
    })
    try {
      return await Promise.race([this.recv(), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Sends a last message, half-closes, and resolves once it has been handed to the session (at most `boundMs`). */
  endFlushed (msg: ClientMessage | RelayMessage, boundMs = 1000): Promise<void> {
    return new Promise(resolve => {
      const timer = setTimeout(resolve, boundMs)
      const done = (): void => { clearTimeout(timer); resolve() }
      if (this.#stream.writableFinished || this.#stream.destroyed) return done()
      this.#stream.once('finish', done)
      this.#stream.once('close', done)
      this.end(msg)
    })
  }

  /** Sends a last message (if any) and half-closes. */
  end (msg?: ClientMessage | RelayMessage): void {
    if (msg !== undefined) this.send(msg)
    this.#stream.end()
  }

  #onData (chunk: Buffer): void {
    if (this.#ended !== undefined) return
    this.#buffered.push(chunk)
    this.#bufferedBytes += chunk.length
    try {
      while (this.#bufferedBytes >= 4) {
        const all = this.#buffered.length === 1 ? this.#buffered[0]! : Buffer.concat(this.#buffered)
        const length = all.readUInt32BE(0)
        if (length > MAX_CONTROL_MESSAGE) throw new MessageTooLargeError(length, MAX_CONTROL_MESSAGE)
        if (all.length < 4 + length) {
          this.#buffered = [all]
          return
        }
        const msg = this.#parse(all.subarray(4, 4 + length))
        const rest = all.subarray(4 + length)
        this.#buffered = rest.length > 0 ? [rest] : []
        this.#bufferedBytes = rest.length
        const w = this.#waiters.shift()
        if (w !== undefined) w.resolve(msg)
        else if (this.#queue.push(msg) >= QUEUE_LIMIT) this.#stream.pause() // backpressure on a peer that outruns us
      }
    } catch (err) {
      this.#fail(err as Error)
    }
  }

  #fail (err: Error): void {
    if (this.#ended !== undefined) return
    this.#ended = err
    this.#buffered = []
    for (const w of this.#waiters.splice(0)) w.reject(err)
  }
}
