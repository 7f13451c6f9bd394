/**
 * Errors a user can act on, for both bins: yargs' messages in one line with a "did you mean"
 * for an unknown flag, the text the user typed instead of `NaN`, and Node's raw `listen`
 * failures (EADDRINUSE, EACCES, EADDRNOTAVAIL) turned into the flag to change and what to do.
 */
import { closest } from '../config/file.js'

/** The value given for `--name` in `args` (`--name v` or `--name=v`), the last one if repeated. */
export function rawFlagValue (args: readonly string[], name: string): string | undefined {
  let found: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === `--${name}`) found = args[i + 1]
    else if (a.startsWith(`--${name}=`)) found = a.slice(name.length + 3)
  }
  return found
}

/** A number flag as the user wrote it: the number, or the quoted text when it did not parse. */
export function shownNumber (args: readonly string[], name: string, value: number): string {
  if (!Number.isNaN(value)) return String(value)
  return JSON.stringify(rawFlagValue(args, name) ?? '')
}

/**
 * A yargs failure message in one line; "Unknown argument: relya" gains "; did you mean
 * --relay?" when one of `flags` (long names without dashes) is close, and "Given: NaN" shows
 * what the user typed.
 */
export function explainUsage (msg: string, flags: readonly string[], args: readonly string[] = []): string {
  let line = msg.trim().replace(/\s*\n\s*/g, ' ')
  // yargs shows a number flag that did not parse as NaN (or null): show what was typed.
  const nan = /Argument: ([\w-]+), Given: (NaN|null)/.exec(line)
  if (nan !== null) line = line.replace(`Given: ${nan[2]}`, `Given: ${shownNumber(args, nan[1]!, NaN)}`)
  const unknown = /^Unknown arguments?: (.+)$/.exec(line)
  if (unknown === null) return line
  const known = flags.filter(f => /^[a-z][a-z0-9-]*$/.test(f))
  // yargs also lists the camelCase twin of a dashed name (lease-grase, leaseGrase): once is enough.
  const given = unknown[1]!.split(', ')
  const names = given.filter(n => !(/[A-Z]/.test(n) && given.includes(n.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`))))
  const hints: string[] = []
  for (const name of names) {
    const c = closest(name.replace(/^-+/, ''), known)
    if (c !== undefined) hints.push(names.length === 1 ? `did you mean --${c}?` : `--${name}: did you mean --${c}?`)
  }
  const head = `Unknown argument${names.length === 1 ? '' : 's'}: ${names.join(', ')}`
  return hints.length === 0 ? head : `${head}; ${hints.join('; ')}`
}

/** A listener a bin opens: the flag that sets its port (and its address), with the values in use. */
export interface ListenFlag {
  /** The port flag, e.g. `--http-port`. */
  flag: string
  /** The port it asked for. */
  port: number | undefined
  /** The address flag beside it, e.g. `--host`. */
  hostFlag?: string
  /** The address it asked for. */
  host?: string
}

/**
 * One line for Node's failure to listen (`listen EADDRINUSE: address already in use …`):
 * which flag set that port and what to do; undefined for any other error.
 */
export function explainListenError (err: unknown, listeners: readonly ListenFlag[]): string | undefined {
  const e = err as NodeJS.ErrnoException & { port?: number, address?: string }
  if (e?.syscall !== 'listen' && e?.syscall !== 'bind') return undefined
  const at = e.port !== undefined ? `${e.address ?? ''}:${e.port}` : e.address ?? ''
  const byPort = listeners.find(l => l.port !== undefined && l.port === e.port)
  switch (e.code) {
    case 'EADDRINUSE':
      return byPort !== undefined
        ? `port ${e.port} (${byPort.flag}) is already in use on ${e.address}: stop the program using it (ss -ltnp 'sport = :${e.port}' shows it) or choose another port with ${byPort.flag} [EADDRINUSE]`
        : `address ${at} is already in use: stop the program using it or choose another port [EADDRINUSE]`
    case 'EACCES':
      return `port ${e.port}${byPort !== undefined ? ` (${byPort.flag})` : ''} needs privileges: ports below 1024 need root or CAP_NET_BIND_SERVICE (sudo setcap cap_net_bind_service=+ep "$(command -v node)"); or choose a port of 1024 or more${byPort !== undefined ? ` with ${byPort.flag}` : ''} [EACCES]`
    case 'EADDRNOTAVAIL': {
      const byHost = listeners.find(l => l.host !== undefined && l.host === e.address && l.hostFlag !== undefined)
      return `address ${e.address} is not an address of this machine${byHost !== undefined ? ` (${byHost.hostFlag})` : ''}: use one of its addresses, or 0.0.0.0 for all [EADDRNOTAVAIL]`
    }
    default:
      return undefined
  }
}
