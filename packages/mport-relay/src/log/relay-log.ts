/**
 * The relay's log: each Relay event as one line at its level, with the stable fields of
 * docs/LOGGING.md: `session` (the client connection), `conn` (a visitor's stream in it),
 * `lease`, `principal`, `tunnel` (its name), `port`, `kind`, addresses, byte counts and codes.
 * Per-visitor lines are `debug`; a refused visitor is at most one line per tunnel and reason
 * per interval, with the count held back.
 */
import type { Relay, ConnectionInfo, TunnelInfo } from 'mport/relay'
import { formatBytes, oneLine, strayReporter, type Printer } from 'mport/cli'
import { RateLimitedLog } from 'mport/limits'
import type { MportError } from 'mport/errors'
import type { ApiRequestLog } from '../api/index.js'

/** How often the repeated lines (refused visitors, stray frames) may be printed. */
export interface RelayLogOptions {
  /** At most one line per tunnel and reason per this many ms (default 10 s). */
  intervalMs?: number
}

/** The fields naming a tunnel (the lease's current session, when the client is connected). */
function tunnelFields (t: TunnelInfo): Record<string, unknown> {
  return { ...(t.session !== undefined ? { session: t.session } : {}), lease: t.client, principal: t.principal, tunnel: t.name, tunnelId: t.id, port: t.port }
}

/** The fields naming a visitor connection: its tunnel, its stream (`conn`) and the visitor's address. */
function connectionFields (c: ConnectionInfo): Record<string, unknown> {
  return { ...tunnelFields(c.tunnel), ...(c.conn !== undefined ? { conn: c.conn } : {}), remoteAddress: c.remoteAddress, remotePort: c.remotePort }
}

/** Writes `relay`'s events to `out` until the relay is gone; returns a function that stops the held-back reports' timers. */
export function logRelayEvents (relay: Relay, out: Printer, opts: RelayLogOptions = {}): () => void {
  const intervalMs = opts.intervalMs ?? 10_000
  relay.on('client', c => out.event('client', `client ${c.id} connected from ${c.remoteAddress}${c.resumed ? ' (resumed its lease)' : ''}`,
    { session: c.id, id: c.id, principal: c.principal.name, remoteAddress: c.remoteAddress, resumed: c.resumed }))
  relay.on('client-closed', (c, err) => out.event('client-closed', `client ${c.id} disconnected${err ? `: ${oneLine(err)}` : ''}`,
    { session: c.id, id: c.id, principal: c.principal.name, ...(err ? { error: err.message, ...codeOf(err) } : {}) }))
  relay.on('tunnel-up', t => out.event('tunnel-up', `tunnel ${t.name} up on port ${t.port}`, { ...tunnelFields(t), client: t.client, id: t.id, name: t.name }))
  relay.on('tunnel-down', (t, reason) => out.event('tunnel-down', `tunnel ${t.name} on port ${t.port} down: ${reason}`, { ...tunnelFields(t), client: t.client, id: t.id, name: t.name, reason }))
  relay.on('tunnel-refused', (t, err) => out.event('tunnel-refused', `tunnel ${t.name} (${t.kind}) of ${t.principal} refused: ${oneLine(err)}`,
    { lease: t.client, principal: t.principal, tunnel: t.name, kind: t.kind, code: err.code, error: err.message }))
  relay.on('auth-failed', (addr, err) => out.log('warn', 'auth-failed', `authentication failed from ${addr}: ${err.message}`, { remoteAddress: addr, code: err.code }))
  // Scanners and health checks also fail the handshake: a line per attempt only when asked for.
  relay.on('handshake-failed', (addr, err) => {
    if (out.enabled('debug')) out.log('debug', 'handshake-failed', `handshake failed from ${addr}: ${oneLine(err)}`, { remoteAddress: addr, ...codeOf(err), error: err.message })
  })
  relay.on('quota-exceeded', (principal, err) => out.log('warn', 'quota-exceeded', `${principal}: ${oneLine(err)}; their connections were cut and tunnels closed`, { principal, code: err.code }))
  relay.on('connection', c => {
    if (out.enabled('debug')) out.log('debug', 'connection', `${c.tunnel.name}: connection from ${c.remoteAddress}:${c.remotePort}`, connectionFields(c))
  })
  relay.on('connection-closed', (c, s) => {
    const level = s.error === undefined ? 'debug' : 'info'
    if (!out.enabled(level)) return
    const line = `${c.tunnel.name}: ${c.remoteAddress}:${c.remotePort} closed (${formatBytes(s.bytesIn)} in, ${formatBytes(s.bytesOut)} out)${s.error ? `: ${oneLine(s.error)}` : ''}`
    out.log(level, 'connection-closed', line, { ...connectionFields(c), bytesIn: s.bytesIn, bytesOut: s.bytesOut, ...(s.error ? { error: s.error.message, ...codeOf(s.error) } : {}) })
  })

  // Refused visitors (IP filter, plan limits): one line per tunnel and reason per interval, with the count held back.
  const latestRefusal = new Map<string, { c: ConnectionInfo, err: MportError }>()
  const refusals = new RateLimitedLog({
    intervalMs,
    onHeldBack: (key, n) => {
      const l = latestRefusal.get(key)
      if (l !== undefined) {
        out.event('visitor-refused', `${l.c.tunnel.name}: ${n} more visitor${n === 1 ? '' : 's'} refused in the last ${intervalMs / 1000} s, the latest: ${oneLine(l.err)}`,
          { ...tunnelFields(l.c.tunnel), code: l.err.code, suppressed: n })
      }
    },
  })
  relay.on('visitor-refused', (c, err) => {
    const key = `${c.tunnel.name}\0${err.code}`
    if (latestRefusal.size < 1000 || latestRefusal.has(key)) latestRefusal.set(key, { c, err })
    const a = refusals.admit(key)
    if (!a.print) return
    const more = a.suppressed > 0 ? ` (and ${a.suppressed} more since the last line)` : ''
    out.event('visitor-refused', `${c.tunnel.name}: refused ${c.remoteAddress}: ${oneLine(err)}${more}`, { ...connectionFields(c), code: err.code, suppressed: a.suppressed })
  })

  const stray = strayReporter(out, intervalMs)
  relay.on('stray', (c, frame) => { if (out.enabled('debug')) stray(`client ${c.id}`, frame, { session: c.id }) })
  relay.on('warning', err => out.warn(err, 'warning'))
  return () => refusals.close()
}

function codeOf (err: Error): { code?: string } {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? { code } : {}
}

/**
 * The REST API's requests as `api-request` lines: debug for answers below 400, info for the
 * 4xx and warn for the 5xx; the route's pattern only (no query, no ids, never a header or body).
 */
export function logApiRequests (out: Printer): (r: ApiRequestLog) => void {
  return r => {
    const level = r.status >= 500 ? 'warn' : r.status >= 400 ? 'info' : 'debug'
    if (out.enabled(level)) out.log(level, 'api-request', `api: ${r.method} ${r.route} ${r.status} (${r.ms} ms)${r.user !== undefined ? ` as ${r.user}` : ''}`, { ...r })
  }
}

/** The secrets a relay's settings hold, for the logger to mask (Printer.secret): its token, the database password, the static tokens. */
export function relaySecrets (s: { readonly token?: string | undefined, readonly database?: string | undefined, readonly tokens?: ReadonlyArray<{ readonly token: string }>, readonly 'cluster-key'?: string | undefined, readonly 'cluster-redis'?: string | undefined }): string[] {
  return [s.token, databasePassword(s.database), ...(s.tokens ?? []).map(t => t.token), s['cluster-key'], databasePassword(s['cluster-redis'])].filter((v): v is string => v !== undefined)
}

/** The password in a database URL (`postgres://user:password@host/db`), to mask in every line; undefined for a file name. */
export function databasePassword (url: string | undefined): string | undefined {
  if (url === undefined || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return undefined
  try {
    const password = decodeURIComponent(new URL(url).password)
    return password === '' ? undefined : password
  } catch {
    return undefined
  }
}
