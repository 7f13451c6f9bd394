/**
 * Output for the bins: a Printer (src/cli/log.ts) over human or JSON lines, the one-line
 * rendering of errors (never a stack trace for an error a user can cause), status lines.
 */
import { createLogger, oneLine, type LoggerOptions, type Printer } from './log.js'
import { VERSION } from '../version.js'
import type { TunnelStatus } from '../tunnel/client-events.js'

export { oneLine, type Printer }

/** How a Printer renders: the LoggerOptions other than the streams and the format. */
export type PrinterOptions = Omit<LoggerOptions, 'out' | 'errOut' | 'format'>

/**
 * A Printer writing to `out` (events) and `errOut` (errors); `json` picks JSON lines (see
 * createLogger). Write errors on either stream (a reader that went away) are ignored.
 */
export function createPrinter (json: boolean, out: NodeJS.WritableStream = process.stdout, errOut: NodeJS.WritableStream = process.stderr, opts: PrinterOptions = {}): Printer {
  return createLogger({ ...opts, format: json ? 'json' : 'text', out, errOut })
}

/** Bytes in binary units for humans: `512 B`, `1.5 MiB`. */
export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

/**
 * The one-line status summary mport-connect prints on a terminal: per tunnel its public
 * address (or why it is not up), open connections and the bytes of finished connections.
 * `status: 8080 tcp://relay:30001 (2 open, 1.5 MiB in, 20.0 KiB out) | ssh offline`
 */
export function formatStatus (tunnels: ReadonlyArray<Pick<TunnelStatus, 'name' | 'url' | 'online' | 'connections' | 'bytesIn' | 'bytesOut' | 'error' | 'waitingFor'>>): string {
  const parts = tunnels.map(t => {
    if (t.waitingFor !== undefined) return `${t.name} waiting for ${t.waitingFor}`
    if (t.error !== undefined) return `${t.name} refused [${t.error.code}]`
    if (!t.online || t.url === undefined) return `${t.name} offline`
    return `${t.name} ${t.url} (${t.connections} open, ${formatBytes(t.bytesIn)} in, ${formatBytes(t.bytesOut)} out)`
  })
  return `status: ${parts.length === 0 ? 'no tunnels' : parts.join(' | ')}`
}

/** The version of the mport packages. */
export function packageVersion (): string {
  return VERSION
}

/** Documented exit codes of both bins. */
export const ExitCode = {
  /** Stopped by a signal or finished normally. */
  Ok: 0,
  /** A runtime failure: wrong token, certificate mismatch, relay gone for good. */
  Failure: 1,
  /** Bad flags or config. */
  Usage: 2,
  /** The relay could not be reached at start. */
  Unreachable: 3,
} as const

/**
 * yargs middleware: a repeated flag's last value wins (yargs would make an array of it),
 * except for the options in `lists`, which are meant to repeat.
 */
export function lastValueWins (...lists: string[]): (argv: Record<string, unknown>) => void {
  return argv => {
    for (const [k, v] of Object.entries(argv)) if (Array.isArray(v) && k !== '_' && !lists.includes(k)) argv[k] = v[v.length - 1]
  }
}

/** What a stray-frame line needs of the session's report (`mport/mux`'s StrayFrame). */
interface StrayReport { header: { streamId: number, length: number }, reason: 'closed' | 'never-opened', reset: boolean }

/**
 * Prints dropped stray frames as `stray` events (level debug, with `fields` such as the
 * `session`), at most one line per `intervalMs` (default
 * 10 s) with the count held back since the last one: a peer spraying frames is visible without
 * one line per frame. (Not `mport/limits`' RateLimitedLog: the client loads nothing from the
 * relay-side limits, and one key with no timers needs only these few lines.)
 */
export function strayReporter (out: Printer, intervalMs = 10_000, now: () => number = Date.now): (who: string, frame: StrayReport, fields?: Record<string, unknown>) => void {
  let last = -Infinity
  let held = 0
  return (who, frame, fields = {}) => {
    if (now() - last < intervalMs) { held++; return }
    last = now()
    const more = held > 0 ? ` (and ${held} more since the last line)` : ''
    const { streamId, length } = frame.header
    const what = frame.reason === 'closed' ? 'a closed stream' : 'a stream never opened'
    out.log('debug', 'stray', `${who}: dropped a frame for ${what} (stream ${streamId}, ${length} B)${frame.reset ? ', answered with a reset' : ''}${more}`,
      { ...fields, streamId, reason: frame.reason, length, reset: frame.reset, suppressed: held })
    held = 0
  }
}
