/**
 * The inspector: records every HTTP exchange of the client's http tunnels into a bounded
 * ring, in memory only. `inspector.tap` is what ClientOptions.onHttpVisitor takes; viewers
 * (the API's live feed, the status screen) listen to 'exchange'.
 */
import { EventEmitter } from 'node:events'
import type { HttpVisitorTap } from 'mport/client'
import { ConnectionRecorder } from './connection-recorder.js'
import { ExchangeRing } from './exchange-ring.js'
import type { Exchange } from './exchange.js'

/** How much the inspector keeps, and its clock. */
export interface InspectorOptions {
  /** Bytes kept of each request and response body; the rest is counted (default 1 MiB). */
  bodyLimit?: number
  /** Exchanges kept, newest win (default 1000). */
  maxExchanges?: number
  /** Bytes kept over all exchanges, bodies included (default 128 MiB). */
  maxBytes?: number
  /** The clock for the exchanges' times, ms since the epoch (default Date.now). */
  now?: () => number
}

/** Defaults of InspectorOptions. */
export const INSPECTOR_DEFAULTS = { bodyLimit: 1024 * 1024, maxExchanges: 1000, maxBytes: 128 * 1024 * 1024 } as const

/** The events an Inspector emits. */
export interface InspectorEvents {
  /** An exchange was recorded or changed in a way a viewer shows (response head, end, abort). */
  exchange: [exchange: Exchange]
}

/** Records the HTTP exchanges of http tunnels (see the module comment). */
export class Inspector extends EventEmitter<InspectorEvents> {
  readonly #ring: ExchangeRing
  readonly #now: () => number
  readonly bodyLimit: number
  #nextId = 1
  #nextConnection = 1

  constructor (opts: InspectorOptions = {}) {
    super()
    this.bodyLimit = opts.bodyLimit ?? INSPECTOR_DEFAULTS.bodyLimit
    this.#now = opts.now ?? Date.now
    const maxBytes = opts.maxBytes ?? INSPECTOR_DEFAULTS.maxBytes
    // Room for at least one exchange with both bodies at the cap.
    this.#ring = new ExchangeRing({ maxExchanges: opts.maxExchanges ?? INSPECTOR_DEFAULTS.maxExchanges, maxBytes: Math.max(maxBytes, 2 * this.bodyLimit + 256 * 1024) })
  }

  /** Starts recording one visitor connection (give this to ClientOptions.onHttpVisitor). */
  readonly tap = (tap: HttpVisitorTap): void => {
    new ConnectionRecorder({
      now: this.#now,
      nextId: () => this.#nextId++,
      bodyLimit: this.bodyLimit,
      added: e => { this.#ring.add(e); this.emit('exchange', e) },
      grew: e => { this.#ring.update(e) },
      changed: e => { if (this.#ring.update(e)) this.emit('exchange', e) },
    }, tap, this.#nextConnection++)
  }

  /** The clock exchanges are timed with. */
  now (): number { return this.#now() }

  /** A new exchange id (for an exchange recorded outside a tap: a replay). */
  nextId (): number { return this.#nextId++ }

  /** Adds an exchange recorded elsewhere (a replay), or records that one changed. */
  record (e: Exchange): void {
    if (this.#ring.get(e.id) === undefined) this.#ring.add(e)
    else this.#ring.update(e)
    this.emit('exchange', e)
  }

  get (id: number): Exchange | undefined { return this.#ring.get(id) }

  /** Every exchange kept, newest first. */
  list (): Exchange[] { return this.#ring.newestFirst() }

  /** How full the ring is. */
  get usage (): { exchanges: number, bytes: number, maxExchanges: number, maxBytes: number } {
    return { exchanges: this.#ring.size, bytes: this.#ring.bytes, ...this.#ring.limits }
  }

  clear (): void { this.#ring.clear() }
}
