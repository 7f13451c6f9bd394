/**
 * Output for the bins: human lines on a terminal or line-per-event JSON (--json), and the
 * one-line rendering of errors (never a stack trace for an error a user can cause).
 */
import { MportError } from '../errors.js'
import { VERSION } from '../version.js'
import type { TunnelStatus } from '../tunnel/client-events.js'

/** Where a bin reports: human lines, or JSON lines with `time` and `event` under --json. */
export interface Printer {
  /** A human line, or a JSON object with `event` and the fields. */
  event (event: string, human: string, fields?: Record<string, unknown>): void
  /** One line on the error stream: `prefix: message [CODE]` (`message; hint [CODE]` with a hint), or a JSON `error` event with `code` (and `hint`). */
  error (err: unknown, prefix?: string, hint?: string): void
}

/** How a Printer renders human lines. */
export interface PrinterOptions {
  /** Start each human line (the first of a multi-line event) with the ISO 8601 time, as a log (the relay's). */
  timestamps?: boolean
  /** The clock for `time` and the timestamps (default: now). */
  now?: () => Date
}

const ignore = (): void => {}

/**
 * A Printer writing to `out` (events) and `errOut` (errors); `json` picks JSON lines. Write
 * errors on either stream (a reader that went away) are ignored, so a relay keeps serving.
 */
export function createPrinter (json: boolean, out: NodeJS.WritableStream = process.stdout, errOut: NodeJS.WritableStream = process.stderr, opts: PrinterOptions = {}): Printer {
  const now = opts.now ?? (() => new Date())
  // A human line (the first of a block) starts with the ISO time when asked: a log, not a screen.
  const stamp = (line: string): string => opts.timestamps === true ? `${now().toISOString()} ${line}` : line
  // A reader that went away (`mport-relay | head`) must not crash a relay that serves others.
  // (Always our own listener: a pipe's error handler re-throws once it is the last one left.)
  for (const s of new Set([out, errOut])) if (!s.listeners('error').includes(ignore)) s.on('error', ignore)
  return {
    event (event, human, fields = {}) {
      if (json) out.write(JSON.stringify({ time: now().toISOString(), event, ...fields }) + '\n')
      else out.write(stamp(human) + '\n')
    },
    error (err, prefix = 'error', hint) {
      const e = err as Error
      const code = err instanceof MportError ? err.code : (e as NodeJS.ErrnoException)?.code
      if (json) errOut.write(JSON.stringify({ time: now().toISOString(), event: 'error', code, message: e?.message ?? String(err), ...(hint !== undefined ? { hint } : {}) }) + '\n')
      else errOut.write(stamp(`${prefix}: ${hint === undefined ? oneLine(err) : withHint(err, hint)}`) + '\n')
    },
  }
}

/** `message; hint [CODE]`: the hint before the code, so the line still ends with it. */
function withHint (err: unknown, hint: string): string {
  const line = oneLine(err)
  const code = /( \[[A-Z0-9_]+\])$/.exec(line)?.[1] ?? ''
  return `${line.slice(0, line.length - code.length)}; ${hint}${code}`
}

/** `message [CODE]` on one line. */
export function oneLine (err: unknown): string {
  if (err instanceof MportError) return `${err.message} [${err.code}]`
  if (err instanceof Error) return err.message.split('\n')[0]!
  return String(err)
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
 * Prints dropped stray frames as `stray` events, at most one line per `intervalMs` (default
 * 10 s) with the count held back since the last one: a peer spraying frames is visible without
 * one line per frame. (Not `mport/limits`' RateLimitedLog: the client loads nothing from the
 * relay-side limits, and one key with no timers needs only these few lines.)
 */
export function strayReporter (out: Printer, intervalMs = 10_000, now: () => number = Date.now): (who: string, frame: StrayReport) => void {
  let last = -Infinity
  let held = 0
  return (who, frame) => {
    if (now() - last < intervalMs) { held++; return }
    last = now()
    const more = held > 0 ? ` (and ${held} more since the last line)` : ''
    const { streamId, length } = frame.header
    const what = frame.reason === 'closed' ? 'a closed stream' : 'a stream never opened'
    out.event('stray', `${who}: dropped a frame for ${what} (stream ${streamId}, ${length} B)${frame.reset ? ', answered with a reset' : ''}${more}`,
      { streamId, reason: frame.reason, length, reset: frame.reset, suppressed: held })
    held = 0
  }
}
