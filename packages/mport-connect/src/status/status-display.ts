/**
 * The terminal status screen of `mport-connect` on a TTY, like ngrok's: it follows the
 * client's events and, when given, the inspector's exchanges, and redraws (TerminalScreen)
 * once a second for the rates and whenever something changed. Event lines the bin would print
 * go to `log` and appear in the screen's Events area instead of scrolling it away.
 */
import { Writable } from 'node:stream'
import type { Client, ClientEvents } from 'mport/client'
import type { Inspector } from '../inspect/inspector.js'
import { RateMeter } from './rate-meter.js'
import { renderStatus, type ScreenRequest, type StatusModel } from './status-screen.js'
import { TerminalScreen, type ScreenOutput, type TerminalScreenOptions } from './terminal-screen.js'

/** What the status display shows and where it draws. */
export interface StatusDisplayOptions extends TerminalScreenOptions {
  /** The relay as the user named it. */
  relay: string
  version: string
  /** How the client reaches the relay, when it can say (a transport other than plain TLS, a proxy). */
  transport?: () => string | undefined
  inspector?: Inspector
  /** The inspector's page, once it listens. */
  inspectUrl?: () => string | undefined
  out: ScreenOutput
  /** HTTP requests shown (default 10). */
  requests?: number
  /** Event lines shown (default 4). */
  events?: number
  /** How often the rates are refreshed, ms (default 1000). */
  tickMs?: number
}

/** The status screen of a running client (see the module comment). */
export class StatusDisplay {
  readonly #o: StatusDisplayOptions
  readonly #screen: TerminalScreen
  readonly #now: () => number
  /** Per tunnel: its bytes at the last tick (open connections included) and the rates from them. */
  readonly #rates = new Map<string, { in: RateMeter, out: RateMeter, bytesIn: number, bytesOut: number, rateIn: number, rateOut: number }>()
  readonly #events: string[] = []
  #session: StatusModel['session'] = 'connecting'
  #timer: NodeJS.Timeout | undefined
  readonly #unsubscribe: Array<() => void> = []
  #client: Client | undefined

  /** Lines written here (a Printer's output) show in the Events area. */
  readonly log: Writable

  constructor (options: StatusDisplayOptions) {
    this.#o = options
    this.#now = options.now ?? Date.now
    this.#screen = new TerminalScreen(options.out, options)
    let partial = ''
    this.log = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        const text = partial + chunk.toString('utf8')
        const lines = text.split('\n')
        partial = lines.pop() ?? ''
        for (const l of lines) if (l.trim() !== '') this.#event(l)
        cb()
      },
    })
  }

  /** Shows the screen and follows `client` (created after this display: its lines already go to `log`). */
  start (client: Client): void {
    if (this.#client !== undefined) return
    this.#client = client
    const c = client
    // Every handler here ignores the event's arguments: it only notes that something changed.
    const events = c as unknown as { on (e: string, fn: () => void): void, off (e: string, fn: () => void): void }
    const on = (event: keyof ClientEvents, fn: () => void): void => {
      events.on(event, fn)
      this.#unsubscribe.push(() => events.off(event, fn))
    }
    on('connected', () => { this.#session = 'online'; this.#redraw() })
    on('disconnected', () => { this.#session = 'reconnecting'; this.#redraw() })
    on('reconnecting', () => { this.#session = 'reconnecting'; this.#redraw() })
    on('close', () => { this.#session = 'stopped'; this.#redraw() })
    for (const e of ['tunnel', 'tunnel-error', 'tunnel-waiting', 'tunnel-group', 'health', 'connection', 'connection-closed'] as const) on(e, () => this.#redraw())
    if (this.#o.inspector !== undefined) {
      const inspector = this.#o.inspector
      const fn = (): void => this.#redraw()
      inspector.on('exchange', fn)
      this.#unsubscribe.push(() => inspector.off('exchange', fn))
    }
    if (c.connected) this.#session = 'online'
    this.#screen.start()
    this.#tick()
    this.#timer = setInterval(() => this.#tick(), this.#o.tickMs ?? 1000)
    this.#timer.unref()
  }

  /**
   * Restores the terminal and prints the latest event lines there, so the reason for an exit
   * stays visible (call it on exit; writes to a TTY are synchronous).
   */
  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    for (const u of this.#unsubscribe.splice(0)) u()
    if (!this.#screen.active) return
    this.#screen.stop()
    if (this.#events.length > 0) this.#o.out.write(this.#events.join('\n') + '\n')
  }

  #event (line: string): void {
    this.#events.push(line)
    if (this.#events.length > (this.#o.events ?? 4)) this.#events.shift()
    this.#redraw()
  }

  /** Samples the byte counters for the rates, then redraws. */
  #tick (): void {
    const at = this.#now()
    for (const t of this.#client?.tunnels ?? []) {
      let r = this.#rates.get(t.name)
      if (r === undefined) { r = { in: new RateMeter(), out: new RateMeter(), bytesIn: 0, bytesOut: 0, rateIn: 0, rateOut: 0 }; this.#rates.set(t.name, r) }
      const bytes = this.#client!.bytesSoFar(t)
      r.bytesIn = bytes.bytesIn
      r.bytesOut = bytes.bytesOut
      r.rateIn = r.in.sample(at, bytes.bytesIn)
      r.rateOut = r.out.sample(at, bytes.bytesOut)
    }
    this.#redraw()
  }

  #redraw (): void {
    if (this.#client !== undefined) this.#screen.show(renderStatus(this.model()))
  }

  /** What the screen shows now. */
  model (): StatusModel {
    const c = this.#client
    if (c === undefined) throw new Error('the status display has not started')
    const transport = this.#o.transport?.()
    const inspectUrl = this.#o.inspectUrl?.()
    const requests: ScreenRequest[] = (this.#o.inspector?.list() ?? []).slice(0, this.#o.requests ?? 10).map(e => ({
      time: new Date(e.startedAt).toTimeString().slice(0, 8),
      method: e.request.method,
      url: e.request.url,
      ...(e.response !== undefined ? { status: e.response.status } : {}),
      state: e.state,
      ...(e.times.end !== undefined ? { durationMs: e.times.end - e.times.start } : {}),
    }))
    return {
      version: this.#o.version,
      relay: this.#o.relay,
      ...(transport !== undefined ? { transport } : {}),
      session: this.#session,
      rttMs: c.rtt,
      ...(inspectUrl !== undefined ? { inspectUrl } : {}),
      tunnels: c.tunnels.map(t => {
        const r = this.#rates.get(t.name)
        return {
          name: t.name,
          ...(t.url !== undefined ? { url: t.url } : {}),
          local: t.local,
          online: t.online,
          ...(t.waitingFor !== undefined ? { waitingFor: t.waitingFor } : {}),
          ...(t.state === 'refused' && t.error !== undefined ? { refused: t.error.code } : {}),
          ...(t.group !== undefined ? { group: { ...t.group, ...(t.health !== undefined ? { health: t.health } : {}) } } : {}),
          connections: t.connections,
          totalConnections: t.totalConnections,
          bytesIn: Math.max(t.bytesIn, r?.bytesIn ?? 0),
          bytesOut: Math.max(t.bytesOut, r?.bytesOut ?? 0),
          rateIn: r?.rateIn ?? 0,
          rateOut: r?.rateOut ?? 0,
        }
      }),
      requests,
      events: [...this.#events],
    }
  }
}
