/**
 * What the account commands of both bins share (`mport-relay users …`, `mport-connect login`,
 * `mport-connect tokens …`): where they read and write, secrets from stdin or a hidden prompt,
 * tables, and the run skeleton that turns a bad flag into exit 2 and any failure into one line
 * with its code and exit 1 (3 when the API cannot be reached). Nothing here prints a secret.
 */
import type { Readable, Writable } from 'node:stream'
import { MportError } from '../errors.js'
import { ExitCode, lastValueWins } from './output.js'

/** The streams and environment a command uses, so tests can run it without a process. */
export interface CliIo {
  /** Where secrets are read; a TTY gets a hidden prompt (raw mode), a pipe is read to EOF. */
  stdin: Readable & { isTTY?: boolean, setRawMode?: (mode: boolean) => unknown }
  /** Where results, tables and JSON go. */
  stdout: Writable
  /** Where errors and prompts go. */
  stderr: Writable
  /** Read for MPORT_* fallbacks of flags and for XDG_CONFIG_HOME/HOME. */
  env: NodeJS.ProcessEnv
}

/** The real process's stdin, stdout, stderr and environment. */
export function processIo (): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }
}

/** A bad flag or argument: exit 2 with one line. */
export class UsageError extends Error {}

/** A failed REST API call, with the API's stable error code (or none when the answer had none). */
export class ApiCallError extends Error {
  constructor (readonly status: number, readonly code: string | undefined, message: string, readonly retryAfterSeconds?: number) {
    super(message)
    this.name = 'ApiCallError'
  }
}

/** Longest secret accepted on stdin (the store's passwords are at most 1024 characters). */
const MAX_STDIN_SECRET = 64 * 1024

/**
 * The secret piped to stdin (`--password-stdin`): everything up to EOF without one trailing
 * newline, the way `docker login --password-stdin` reads it.
 */
export async function readStdinSecret (stdin: Readable, what = 'password'): Promise<string> {
  let text = ''
  for await (const chunk of stdin) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8')
    if (text.length > MAX_STDIN_SECRET) throw new UsageError(`the ${what} on stdin is longer than ${MAX_STDIN_SECRET} characters`)
  }
  text = text.replace(/\r?\n$/, '')
  if (text === '') throw new UsageError(`--password-stdin: no ${what} on stdin`)
  if (/[\r\n]/.test(text)) throw new UsageError(`--password-stdin: the ${what} on stdin has more than one line`)
  return text
}

/**
 * Reads one line from a terminal without echoing it (raw mode), the prompt on `out`.
 * Enter ends it, Backspace deletes, Ctrl-C and Ctrl-D abort with a UsageError.
 */
export async function promptSecret (stdin: CliIo['stdin'], out: Writable, prompt: string): Promise<string> {
  out.write(prompt)
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === 'function'
  if (raw) stdin.setRawMode!(true)
  stdin.setEncoding('utf8')
  let line = ''
  try {
    return await new Promise<string>((resolve, reject) => {
      const done = (err?: Error): void => {
        stdin.off('data', onData)
        stdin.off('end', onEnd)
        stdin.pause()
        out.write('\n')
        if (err) reject(err); else resolve(line)
      }
      const onEnd = (): void => done(new UsageError('no password given'))
      const onData = (s: string): void => {
        for (const ch of s) {
          if (ch === '\r' || ch === '\n') return done()
          if (ch === '\u0003' || ch === '\u0004') return done(new UsageError('cancelled'))
          if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1)
          else if (ch >= ' ') line += ch
          if (line.length > MAX_STDIN_SECRET) return done(new UsageError('the password is too long'))
        }
      }
      stdin.on('data', onData)
      stdin.once('end', onEnd)
      stdin.resume()
    })
  } finally {
    if (raw) stdin.setRawMode!(false)
  }
}

/**
 * The password from `--password-stdin`, else a hidden prompt on a terminal; without either a
 * UsageError naming `hint`. `confirm` asks twice (for new passwords).
 */
export async function obtainPassword (io: CliIo, opts: { stdinFlag: boolean, hint: string, confirm?: boolean, prompt?: string }): Promise<string> {
  if (opts.stdinFlag) return await readStdinSecret(io.stdin)
  if (io.stdin.isTTY !== true) throw new UsageError(`no password: ${opts.hint}`)
  const first = await promptSecret(io.stdin, io.stderr, opts.prompt ?? 'Password: ')
  if (first === '') throw new UsageError('no password given')
  if (opts.confirm === true && await promptSecret(io.stdin, io.stderr, 'Repeat it: ') !== first) throw new UsageError('the two passwords differ')
  return first
}

/** Left-aligned columns separated by two spaces, header first. */
export function formatTable (head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}

/** `2026-03-01 14:05Z`, or `-` for null. */
export function formatTime (ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-'
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + 'Z'
}

/** yargs middleware: a repeated flag's last value wins. */
export const lastWins = lastValueWins()

/** The one-line form of a failure, `message [CODE]` (plus the HTTP status for API errors). */
export function describeFailure (err: unknown): { line: string, code?: string, status?: number } {
  if (err instanceof ApiCallError) {
    const retry = err.retryAfterSeconds !== undefined ? ` (retry after ${err.retryAfterSeconds} s)` : ''
    return { line: `${err.message}${retry} [${err.code ?? `HTTP ${err.status}`}]`, ...(err.code !== undefined ? { code: err.code } : {}), status: err.status }
  }
  if (err instanceof MportError) return { line: `${err.message} [${err.code}]`, code: err.code }
  const e = err as NodeJS.ErrnoException
  const first = (e instanceof Error ? e.message : String(err)).split('\n')[0]!
  return { line: e?.code !== undefined ? `${first} [${e.code}]` : first, ...(e?.code !== undefined ? { code: e.code } : {}) }
}

/**
 * Runs an account command: `parse` turns the arguments into the work to do (undefined after
 * --help/--version), throwing UsageError for bad ones; `run` failures become one line on stderr
 * (a JSON object with --json). Returns the exit code.
 */
export async function runAccountCommand (
  io: CliIo,
  prefix: string,
  helpCmd: string,
  parse: () => Promise<{ json: boolean, run: () => Promise<void> } | undefined>,
): Promise<number> {
  let work: { json: boolean, run: () => Promise<void> } | undefined
  try {
    work = await parse()
    if (work === undefined) return ExitCode.Ok
    await work.run()
    return ExitCode.Ok
  } catch (err) {
    if (err instanceof UsageError) {
      // yargs spreads some messages over lines ("Invalid values:\n  Argument: …"): keep one.
      io.stderr.write(`${prefix}: ${err.message.trim().replace(/\s*\n\s*/g, ' ')} (see ${helpCmd} --help)\n`)
      return ExitCode.Usage
    }
    const { line, code, status } = describeFailure(err)
    if (work?.json === true) io.stderr.write(JSON.stringify({ time: new Date().toISOString(), event: 'error', code, status, message: line }) + '\n')
    else io.stderr.write(`${prefix}: ${line}\n`)
    return (err as MportError).code === 'MPORT_ERR_RELAY_UNREACHABLE' ? ExitCode.Unreachable : ExitCode.Failure
  } finally {
    // Let piped output reach the reader before the bin calls process.exit.
    await new Promise<void>(resolve => io.stdout.write('', () => resolve()))
  }
}
