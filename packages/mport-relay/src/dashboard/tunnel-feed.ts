/**
 * The dashboard's push channel: every open tab gets the live tunnels it may see (the same
 * listing GET /v1/tunnels answers) as server-sent events, within a moment of a tunnel coming or
 * going and once a second while it is open, so counters and rates move. One timer and one
 * listing per round serve all tabs; the number of tabs is bounded per user and in all, and a
 * tab that does not read is skipped (never buffered for) until its socket drains.
 */
import { RateLimitedError } from 'mport/errors'
import type { LiveTunnel } from '../api/context.js'

/** One open tab: whose it is, and how to send it an event (false: its socket is full). */
export interface FeedSubscriber {
  userId: string
  /** Admins may ask for every user's tunnels. */
  all: boolean
  send (event: string, data: unknown): boolean
  /** Called once when the socket wants more again after send() returned false. */
  onDrain (resume: () => void): void
}

export interface TunnelFeedOptions {
  listing: () => LiveTunnel[] | Promise<LiveTunnel[]>
  watch?: ((changed: () => void) => () => void) | undefined
  /** How often open tabs get the listing when nothing came or went (default 1 s). */
  tickMs?: number
  /** A change is pushed this soon after it happened, many changes at once (default 50 ms). */
  settleMs?: number
  maxPerUser?: number
  maxTotal?: number
  /** Time source for the snapshot's `at` (tests may inject one). */
  now?: () => number
}

/** The listing pushed to tabs: when it was taken, and the tunnels. */
export interface FeedSnapshot { at: number, tunnels: LiveTunnel[] }

export class TunnelFeed {
  readonly #o: Required<Omit<TunnelFeedOptions, 'watch'>> & Pick<TunnelFeedOptions, 'watch'>
  readonly #subs = new Set<FeedSubscriber>()
  readonly #paused = new WeakSet<FeedSubscriber>()
  #timer: NodeJS.Timeout | undefined
  #soon: NodeJS.Timeout | undefined
  #unwatch: (() => void) | undefined
  #pushing = false

  constructor (opts: TunnelFeedOptions) {
    this.#o = { tickMs: 1000, settleMs: 50, maxPerUser: 8, maxTotal: 256, now: Date.now, ...opts }
  }

  get size (): number { return this.#subs.size }

  /** Adds a tab and sends it the listing at once; throws RateLimitedError past the bounds. Returns the unsubscribe. */
  subscribe (sub: FeedSubscriber): () => void {
    this.admit(sub.userId)
    this.#subs.add(sub)
    if (this.#subs.size === 1) this.#start()
    void this.#push([sub])
    return () => {
      if (!this.#subs.delete(sub)) return
      if (this.#subs.size === 0) this.#stop()
    }
  }

  /** Throws RateLimitedError when one more tab for `userId` would pass the bounds. */
  admit (userId: string): void {
    if (this.#subs.size >= this.#o.maxTotal) throw new RateLimitedError(`the relay serves at most ${this.#o.maxTotal} live dashboard tabs: close some`)
    let mine = 0
    for (const s of this.#subs) if (s.userId === userId) mine++
    if (mine >= this.#o.maxPerUser) throw new RateLimitedError(`at most ${this.#o.maxPerUser} live dashboard tabs per user: close some`)
  }

  close (): void {
    this.#subs.clear()
    this.#stop()
  }

  #start (): void {
    this.#timer = setInterval(() => { void this.#push([...this.#subs]) }, this.#o.tickMs)
    this.#timer.unref()
    this.#unwatch = this.#o.watch?.(() => this.#changed())
  }

  #stop (): void {
    clearInterval(this.#timer)
    clearTimeout(this.#soon)
    this.#timer = this.#soon = undefined
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  #changed (): void {
    if (this.#soon !== undefined) return
    this.#soon = setTimeout(() => { this.#soon = undefined; void this.#push([...this.#subs]) }, this.#o.settleMs)
    this.#soon.unref()
  }

  async #push (subs: FeedSubscriber[]): Promise<void> {
    if (this.#pushing && subs.length > 1) return // a slow listing: the next round brings the news
    this.#pushing = true
    try {
      const at = this.#o.now()
      const all = await this.#o.listing()
      for (const sub of subs) {
        if (!this.#subs.has(sub) || this.#paused.has(sub)) continue
        const snapshot: FeedSnapshot = { at, tunnels: sub.all ? all : all.filter(t => t.userId === sub.userId) }
        if (!sub.send('tunnels', snapshot)) {
          this.#paused.add(sub)
          sub.onDrain(() => this.#paused.delete(sub))
        }
      }
    } finally {
      this.#pushing = false
    }
  }
}
