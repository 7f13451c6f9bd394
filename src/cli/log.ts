/**
 * The bins' logger: pino JSON lines (for journald, docker logs and log shippers) or the human
 * lines a terminal shows, filtered by level, and never a secret (pino `redact` on the secret
 * field names, then a SecretScrubber over every rendered line). Field names are stable and
 * documented in docs/LOGGING.md.
 */
import { pino, type Logger as PinoLogger } from 'pino'
import { MportError } from '../errors.js'
import { MASK, SECRET_FIELDS, SecretScrubber } from './redact.js'

/** The levels, most severe first. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
/** A log level: `error`, `warn`, `info` or `debug` (the per-visitor lines). */
export type LogLevel = typeof LOG_LEVELS[number]
/** How lines are written: `json` (pino), `text` (human lines) or `auto` (text on a terminal, JSON otherwise). */
export type LogFormat = 'auto' | 'json' | 'text'
/** The formats a user may ask for. */
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'text']

/** Where a bin reports: human lines, or JSON lines with `time`, `level`, `msg` and `event`. */
export interface Printer {
  /** An `info` line: the human text, or a JSON object with `event`, `msg` (the text's first line) and the fields. */
  event (event: string, human: string, fields?: Record<string, unknown>): void
  /** A line at `level` (dropped below the logger's level). */
  log (level: LogLevel, event: string, human: string, fields?: Record<string, unknown>): void
  /** Whether lines at `level` are written: check before building an expensive one. */
  enabled (level: LogLevel): boolean
  /** One line on the error stream: `prefix: message [CODE]` (`message; hint [CODE]` with a hint), or a JSON `error` event with `code` (and `hint`). */
  error (err: unknown, prefix?: string, hint?: string): void
  /** Like `error`, at level `warn`: `warning: message [CODE]`, or a JSON `warning` event. */
  warn (err: unknown, prefix?: string): void
  /** Masks `value` in every later line (a token or password this process holds). */
  secret (value: string | undefined): void
  /** From now on, drop lines below `level` (a reload, or --verbose). */
  setLevel (level: LogLevel): void
  /** Fields every later JSON line carries (the client's `session` while connected); replaces the previous ones. */
  setContext (fields: Record<string, unknown>): void
  /**
   * Text only: `human` as it is, not scrubbed: a secret the operator must see once (the token
   * the relay generated on its first start). Nothing in JSON, where lines are kept by a log
   * store: false then, and the caller logs a line without the secret.
   */
  announce (human: string): boolean
}

/** How a Printer writes. */
export interface LoggerOptions {
  /** `json` or `text`; `auto` picks text when `out` is a terminal (default `text`). */
  format?: LogFormat
  /** Lines below this level are dropped (default `info`). */
  level?: LogLevel
  /** Events (default stdout). */
  out?: NodeJS.WritableStream
  /** Errors and warnings (default stderr). */
  errOut?: NodeJS.WritableStream
  /** Text only: start each human line (the first of a multi-line event) with the ISO 8601 time, as a log (the relay's). */
  timestamps?: boolean
  /** The clock for `time` and the timestamps (default: now). */
  now?: () => Date
  /** Secret values to mask in every line (more with `secret()`). */
  secrets?: Iterable<string>
}

const ignore = (): void => {}

/** `auto` resolved against the stream: text on a terminal, JSON otherwise. */
export function resolveLogFormat (format: LogFormat, out: NodeJS.WritableStream = process.stdout): 'json' | 'text' {
  if (format !== 'auto') return format
  return (out as { isTTY?: boolean }).isTTY === true ? 'text' : 'json'
}

/** pino `redact` paths: each secret field at the top level and one level down (`headers.authorization`). */
const REDACT_PATHS = SECRET_FIELDS.flatMap(f => [f, `*.${f}`])

/**
 * A Printer writing events to `out` and errors and warnings to `errOut`. Write errors on
 * either stream (a reader that went away) are ignored, so a relay keeps serving.
 */
export function createLogger (opts: LoggerOptions = {}): Printer {
  const out: NodeJS.WritableStream = opts.out ?? process.stdout
  const errOut: NodeJS.WritableStream = opts.errOut ?? process.stderr
  const now = opts.now ?? (() => new Date())
  const format = resolveLogFormat(opts.format ?? 'text', out)
  let min = LOG_LEVELS.indexOf(opts.level ?? 'info')
  let context: Record<string, unknown> = {}
  const scrubber = new SecretScrubber(opts.secrets)
  // A reader that went away (`mport-relay | head`) must not crash a relay that serves others.
  // (Always our own listener: a pipe's error handler re-throws once it is the last one left.)
  for (const s of new Set([out, errOut])) if (!s.listeners('error').includes(ignore)) s.on('error', ignore)
  const enabled = (level: LogLevel): boolean => LOG_LEVELS.indexOf(level) <= min

  // A human line (the first of a block) starts with the ISO time when asked: a log, not a screen.
  const stamp = (line: string): string => opts.timestamps === true ? `${now().toISOString()} ${line}` : line
  let write: (level: LogLevel, stream: 'out' | 'err', event: string, human: string, fields: Record<string, unknown>) => void
  if (format === 'json') {
    const toPino = (s: NodeJS.WritableStream): PinoLogger<never, boolean> => pino({
      level: 'debug',
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"time":"${now().toISOString()}"`,
      formatters: { level: label => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: MASK },
    }, { write: (line: string) => { s.write(scrubber.scrub(line)) } })
    const loggers = { out: toPino(out), err: out === errOut ? undefined : toPino(errOut) }
    write = (level, stream, event, human, fields) => {
      const l = stream === 'err' ? loggers.err ?? loggers.out : loggers.out
      l[level]({ event, ...context, ...fields }, firstLine(human))
    }
  } else {
    write = (_level, stream, _event, human) => { (stream === 'err' ? errOut : out).write(scrubber.scrub(stamp(human)) + '\n') }
  }

  const problem = (level: 'error' | 'warn', err: unknown, prefix: string, hint?: string): void => {
    if (!enabled(level)) return
    const e = err as Error
    const code = err instanceof MportError ? err.code : (e as NodeJS.ErrnoException)?.code
    const human = `${prefix}: ${hint === undefined ? oneLine(err) : withHint(err, hint)}`
    const fields = { ...(code !== undefined ? { code } : {}), message: e?.message ?? String(err), ...(hint !== undefined ? { hint } : {}) }
    write(level, 'err', level === 'error' ? 'error' : 'warning', format === 'json' ? fields.message : human, fields)
  }

  return {
    event (event, human, fields = {}) { if (enabled('info')) write('info', 'out', event, human, fields) },
    log (level, event, human, fields = {}) { if (enabled(level)) write(level, 'out', event, human, fields) },
    enabled,
    error (err, prefix = 'error', hint) { problem('error', err, prefix, hint) },
    warn (err, prefix = 'warning') { problem('warn', err, prefix) },
    secret (value) { scrubber.add(value) },
    setLevel (level) { min = LOG_LEVELS.indexOf(level) },
    setContext (fields) { context = { ...fields } },
    announce (human) {
      if (format !== 'text') return false
      out.write(stamp(human) + '\n')
      return true
    },
  }
}

function firstLine (s: string): string {
  const i = s.indexOf('\n')
  return i === -1 ? s : s.slice(0, i)
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
