/**
 * The client's health checks of the local services behind its load-balancing group tunnels:
 * a TCP connect, or an HTTP GET answered 2xx or 3xx, every interval. A result that differs
 * from the last one is reported (the client sends it to the relay in `health`), and the
 * relay sends no new visitors to an unhealthy member. The timer is injectable (tests move a
 * manual clock); a check still running when the next is due is not started twice.
 */
import http from 'node:http'
import net from 'node:net'
import { InvalidConfigError } from '../errors.js'

/** Arms a timer; returns its cancel function (the shape of a manual clock's setTimer). */
export type HealthTimer = (fn: () => void, ms: number) => () => void

/** How a group tunnel's local service is checked. */
export interface HealthCheckSpec {
  /** `tcp`: the service accepts a connection. `http`: GET `path` is answered with a 2xx or 3xx status. */
  type: 'tcp' | 'http'
  /** http: the path asked for (default `/`). */
  path?: string
  /** Between checks, ms (default 10 000). */
  intervalMs?: number
  /** One check's budget, ms (default 5 000). */
  timeoutMs?: number
}

/** Between two health checks when the spec says nothing, ms. */
export const DEFAULT_HEALTH_INTERVAL = 10_000 // ms
/** One health check's budget when the spec says nothing, ms. */
export const DEFAULT_HEALTH_TIMEOUT = 5_000 // ms

/** `tcp`, `http` or `http:/path` (the `--health-check` value) as a HealthCheckSpec; throws InvalidConfigError. */
export function parseHealthCheck (value: string, intervalMs?: number): HealthCheckSpec {
  const v = value.trim()
  const interval = intervalMs === undefined ? {} : { intervalMs }
  if (intervalMs !== undefined && !(Number.isInteger(intervalMs) && intervalMs >= 100)) throw new InvalidConfigError('health-interval', `${intervalMs} is not a whole number of ms, at least 100`)
  if (v === 'tcp') return { type: 'tcp', ...interval }
  if (v === 'http') return { type: 'http', path: '/', ...interval }
  const m = /^http:(\/[\x21-\x7e]*)$/.exec(v)
  if (m !== null) return { type: 'http', path: m[1]!, ...interval }
  throw new InvalidConfigError('health-check', `"${value}" is not tcp, http or http:/path`)
}

/** One check's result: healthy, or why not. */
export interface HealthResult { healthy: boolean, detail?: string }

const realTimer: HealthTimer = (fn, ms) => {
  const t = setTimeout(fn, ms)
  t.unref()
  return () => clearTimeout(t)
}

/** Runs one check of `host:port`; never rejects. */
export function checkHealth (spec: HealthCheckSpec, host: string, port: number): Promise<HealthResult> {
  const timeoutMs = spec.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT
  return new Promise(resolve => {
    if (spec.type === 'tcp') {
      const s = net.connect({ host, port })
      s.setTimeout(timeoutMs, () => s.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      s.once('connect', () => { s.destroy(); resolve({ healthy: true }) })
      s.once('error', err => resolve({ healthy: false, detail: `tcp ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}` }))
      return
    }
    const path = spec.path ?? '/'
    const req = http.get({ host, port, path, timeout: timeoutMs, headers: { 'user-agent': 'mport-health-check', connection: 'close' } }, res => {
      res.resume()
      const status = res.statusCode ?? 0
      resolve(status >= 200 && status < 400 ? { healthy: true } : { healthy: false, detail: `GET ${path}: HTTP ${status}` })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', err => resolve({ healthy: false, detail: `GET ${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}` }))
  })
}

interface Check {
  spec: HealthCheckSpec
  host: string
  port: number
  last: HealthResult | undefined
  running: boolean
  cancel: (() => void) | undefined
}

export class HealthChecks {
  readonly #setTimer: HealthTimer
  readonly #report: (id: number, result: HealthResult) => void
  readonly #checks = new Map<number, Check>()

  /** `report` is told each result that differs from the tunnel's last one (the first one too). */
  constructor (report: (id: number, result: HealthResult) => void, setTimer: HealthTimer = realTimer) {
    this.#report = report
    this.#setTimer = setTimer
  }

  /** The last result of tunnel `id`'s check, if one ran. */
  last (id: number): HealthResult | undefined {
    return this.#checks.get(id)?.last
  }

  /** True while a check of tunnel `id` runs (a due check is skipped meanwhile). */
  running (id: number): boolean {
    return this.#checks.get(id)?.running === true
  }

  /** Checks tunnel `id`'s local service now and every interval (a running check is replaced). */
  start (id: number, spec: HealthCheckSpec, host: string, port: number): void {
    this.stop(id)
    const c: Check = { spec, host, port, last: undefined, running: false, cancel: undefined }
    this.#checks.set(id, c)
    this.#run(id, c)
  }

  stop (id: number): void {
    this.#checks.get(id)?.cancel?.()
    this.#checks.delete(id)
  }

  stopAll (): void {
    for (const id of [...this.#checks.keys()]) this.stop(id)
  }

  #run (id: number, c: Check): void {
    c.cancel = this.#setTimer(() => this.#run(id, c), c.spec.intervalMs ?? DEFAULT_HEALTH_INTERVAL)
    if (c.running) return
    c.running = true
    void checkHealth(c.spec, c.host, c.port).then(result => {
      c.running = false
      if (this.#checks.get(id) !== c) return
      const changed = c.last === undefined || c.last.healthy !== result.healthy || c.last.detail !== result.detail
      c.last = result
      if (changed) this.#report(id, result)
    })
  }
}
