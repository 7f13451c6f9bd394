/**
 * Ping bookkeeping: RTT measurement, keepalive and ping-flood accounting for one session.
 * One ping is outstanding at a time (libp2p-yamux aborts on an ACK it did not ask for).
 */
import { performance } from 'node:perf_hooks'
import { KeepAliveTimeoutError, PingFloodError, SessionClosedError } from '../errors.js'

export interface PingerOptions {
  /** Send Ping|SYN with this opaque value. */
  send (value: number): void
  /** The peer is gone: no ACK and no other frame within the keepalive timeout. */
  onDead (err: KeepAliveTimeoutError): void
  keepAliveInterval: number // ms, 0 = off
  keepAliveTimeout: number // ms
  maxPingsPerSecond: number
  /** Told each measured round-trip time in ms (every answered ping, keepalive ones too). */
  onRtt?: (rttMs: number) => void
}

interface Outstanding {
  value: number
  sentAt: number
  promise: Promise<number>
  resolve (rtt: number): void
  reject (err: Error): void
}

/** Largest ping value handed out: V8's small-integer range on 64-bit, though the wire field is 32 bits. */
export const MAX_PING_VALUE = 0x7fff_ffff

/**
 * The value after `v`, wrapping to 1. Kept a small integer: the value goes into a frame header
 * object, and one non-small-integer `length` changes the hidden class every header shares,
 * which deoptimises the whole frame path (see BENCHMARKS.md, the client's re-warm).
 */
export function nextPingValue (v: number): number {
  return v >= MAX_PING_VALUE ? 1 : v + 1
}

export class Pinger {
  readonly #opts: PingerOptions
  #outstanding: Outstanding | undefined
  #nextValue = 1
  #rtt = 0
  #lastActivity = performance.now()
  #interval: NodeJS.Timeout | undefined
  #deadline: NodeJS.Timeout | undefined
  #floodWindowStart = 0
  #floodCount = 0
  #stopped = false

  constructor (opts: PingerOptions) {
    this.#opts = opts
    if (opts.keepAliveInterval > 0) {
      this.#interval = setInterval(() => this.#keepAlive(), opts.keepAliveInterval)
      this.#interval.unref()
    }
  }

  /** Latest round-trip time in ms (0 until the first ACK). */
  get rtt (): number { return this.#rtt }

  /** Sends a ping (or joins the outstanding one) and resolves with the RTT in ms. */
  ping (): Promise<number> {
    if (this.#stopped) return Promise.reject(new SessionClosedError())
    if (this.#outstanding !== undefined) return this.#outstanding.promise
    let resolve!: (rtt: number) => void
    let reject!: (err: Error) => void
    const promise = new Promise<number>((res, rej) => { resolve = res; reject = rej })
    promise.catch(() => {}) // keepalive pings have no caller to handle a rejection
    const value = this.#nextValue
    this.#nextValue = nextPingValue(value)
    this.#outstanding = { value, sentAt: performance.now(), promise, resolve, reject }
    this.#opts.send(value)
    return promise
  }

  /** A Ping|ACK arrived. ACKs we did not ask for are ignored (hashicorp does the same). */
  onAck (value: number): void {
    const o = this.#outstanding
    if (o === undefined || o.value !== value) return
    this.#outstanding = undefined
    this.#rtt = performance.now() - o.sentAt
    if (this.#deadline !== undefined) { clearTimeout(this.#deadline); this.#deadline = undefined }
    this.#opts.onRtt?.(this.#rtt)
    o.resolve(this.#rtt)
  }

  /** A Ping|SYN arrived: throws PingFloodError past the per-second limit. */
  onPing (): void {
    const now = performance.now()
    if (now - this.#floodWindowStart >= 1000) {
      this.#floodWindowStart = now
      this.#floodCount = 0
    }
    if (++this.#floodCount > this.#opts.maxPingsPerSecond) throw new PingFloodError(this.#opts.maxPingsPerSecond)
  }

  /** Any frame from the peer proves it is alive. */
  onActivity (): void {
    this.#lastActivity = performance.now()
  }

  stop (err: Error): void {
    this.#stopped = true
    clearInterval(this.#interval)
    clearTimeout(this.#deadline)
    const o = this.#outstanding
    this.#outstanding = undefined
    o?.reject(err)
  }

  #keepAlive (): void {
    if (this.#stopped) return
    const started = this.#outstanding === undefined
    const sentAt = this.#outstanding?.sentAt ?? performance.now()
    if (started) void this.ping()
    if (this.#deadline !== undefined) return
    this.#deadline = setTimeout(() => {
      this.#deadline = undefined
      // Alive if the ping was answered or anything else arrived since it was sent.
      if (this.#stopped || this.#outstanding === undefined || this.#lastActivity > sentAt) return
      this.#opts.onDead(new KeepAliveTimeoutError(this.#opts.keepAliveTimeout))
    }, this.#opts.keepAliveTimeout)
    this.#deadline.unref()
  }
}
