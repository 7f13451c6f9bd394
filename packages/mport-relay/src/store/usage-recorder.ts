/**
 * UsageRecorder: counts bytes, connections and active time per (user, tunnel) in memory and
 * writes them to the store every `flushIntervalMs` (default 10 s) in one transaction, and on
 * close. Nothing touches the database per packet. If the process dies, at most the counts
 * since the last flush are lost; a failed flush keeps its counts for the next one.
 */
import type { Store, UsageDelta } from './types.js'
import { HOUR, MINUTE } from './time.js'

/** How often UsageRecorder flushes and rolls up, and where its failures go. */
export interface UsageRecorderOptions {
  /** Flush period in ms (default 10000). */
  flushIntervalMs?: number
  /** Also run store.rollup() after a flush once per this many ms (default 1 h; 0 = never). */
  rollupIntervalMs?: number
  /** Called with flush and rollup failures (the counts are kept and retried). */
  onError?: (err: Error) => void
  /** Clock (tests). */
  now?: () => number
}

interface Active {
  userId: string
  tunnel: string
  /** Tunnels of this key currently up (the same name may be up twice, e.g. across a reconnect). */
  count: number
  /** Time up to which active time has been counted. */
  since: number
  /** Counted ms not yet whole seconds. */
  carryMs: number
}

/** Counts usage in memory and writes it to the store in one transaction per flush. */
export class UsageRecorder {
  readonly #store: Store
  readonly #now: () => number
  readonly #onError: (err: Error) => void
  readonly #rollupEvery: number
  readonly #timer: NodeJS.Timeout
  #pending = new Map<string, UsageDelta>()
  readonly #active = new Map<string, Active>()
  #flushing: Promise<void> | undefined
  #lastRollup: number
  #closed = false

  constructor (store: Store, options: UsageRecorderOptions = {}) {
    this.#store = store
    this.#now = options.now ?? Date.now
    this.#onError = options.onError ?? (() => {})
    this.#rollupEvery = options.rollupIntervalMs ?? HOUR
    this.#lastRollup = this.#now()
    this.#timer = setInterval(() => { void this.flush() }, options.flushIntervalMs ?? 10_000)
    this.#timer.unref()
  }

  /** Adds counters for `tunnel` of `userId` to the current minute. */
  add (userId: string, tunnel: string, counts: { bytesIn?: number, bytesOut?: number, connections?: number, activeSeconds?: number }): void {
    if (this.#closed) return
    const d = this.#bucket(userId, tunnel, this.#now())
    d.bytesIn += counts.bytesIn ?? 0
    d.bytesOut += counts.bytesOut ?? 0
    d.connections += counts.connections ?? 0
    d.activeSeconds += counts.activeSeconds ?? 0
  }

  /** The tunnel is up: its active time counts until tunnelDown(). */
  tunnelUp (userId: string, tunnel: string): void {
    const key = JSON.stringify([userId, tunnel])
    const a = this.#active.get(key)
    if (a !== undefined) { a.count++; return }
    this.#active.set(key, { userId, tunnel, count: 1, since: this.#now(), carryMs: 0 })
  }

  tunnelDown (userId: string, tunnel: string): void {
    const key = JSON.stringify([userId, tunnel])
    const a = this.#active.get(key)
    if (a === undefined) return
    this.#accrue(a, this.#now())
    if (--a.count === 0) this.#active.delete(key)
  }

  /** Counts not yet written (for tests and metrics). */
  get pending (): number {
    return this.#pending.size
  }

  /** Writes everything counted so far; concurrent calls share one write. */
  flush (): Promise<void> {
    if (this.#flushing !== undefined) return this.#flushing.then(() => this.flush())
    const now = this.#now()
    for (const a of this.#active.values()) this.#accrue(a, now)
    if (this.#pending.size === 0 && !this.#rollupDue(now)) return Promise.resolve()
    const batch = this.#pending
    this.#pending = new Map()
    this.#flushing = this.#write(batch, now).finally(() => { this.#flushing = undefined })
    return this.#flushing
  }

  /** Stops the timer, counts active time up to now and flushes. */
  async close (): Promise<void> {
    if (this.#closed) return
    clearInterval(this.#timer)
    await this.flush()
    this.#closed = true
  }

  async #write (batch: Map<string, UsageDelta>, now: number): Promise<void> {
    try {
      await this.#store.addUsage([...batch.values()])
    } catch (err) {
      // Keep the counts: merge them back for the next flush.
      for (const d of batch.values()) {
        const p = this.#bucket(d.userId, d.tunnel, d.at)
        p.bytesIn += d.bytesIn; p.bytesOut += d.bytesOut; p.connections += d.connections; p.activeSeconds += d.activeSeconds
      }
      this.#onError(err as Error)
      return
    }
    if (this.#rollupDue(now)) {
      this.#lastRollup = now
      await this.#store.rollup(now).catch((err: Error) => this.#onError(err))
    }
  }

  #rollupDue (now: number): boolean {
    return this.#rollupEvery > 0 && now - this.#lastRollup >= this.#rollupEvery
  }

  #bucket (userId: string, tunnel: string, at: number): UsageDelta {
    const start = at - (at % MINUTE)
    const key = JSON.stringify([userId, tunnel, start])
    let d = this.#pending.get(key)
    if (d === undefined) {
      d = { userId, tunnel, at: start, bytesIn: 0, bytesOut: 0, connections: 0, activeSeconds: 0 }
      this.#pending.set(key, d)
    }
    return d
  }

  #accrue (a: Active, now: number): void {
    const ms = a.carryMs + Math.max(0, now - a.since)
    a.since = now
    const seconds = Math.floor(ms / 1000)
    a.carryMs = ms - seconds * 1000
    if (seconds > 0) this.#bucket(a.userId, a.tunnel, now).activeSeconds += seconds
  }
}
