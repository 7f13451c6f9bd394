/**
 * `mport-connect login | logout | tokens …`: a user's account tasks through the relay's REST
 * API (the same routes as any other API client). `login` keeps the session token in
 * `$XDG_CONFIG_HOME/mport/credentials.json` (else `~/.config/mport/credentials.json`), a 0600
 * file written atomically, keyed by API address; `tokens` uses that session, or an API token
 * from `--api-token` / `MPORT_API_TOKEN`. Passwords and stored tokens are never printed; a
 * created token is printed once.
 */
import { mkdir, readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import yargs from 'yargs'
import { InvalidConfigError, RelayUnreachableError } from 'mport/errors'
import { UnauthenticatedError } from 'mport/errors'
import { writeAtomic } from 'mport/transport'
import { packageVersion } from 'mport/cli'
import { relayAddress } from 'mport/client'
import { forgetRelay } from './forget.js'
import { ApiCallError, describeFailure, formatTable, formatTime, lastWins, obtainPassword, processIo, runAccountCommand, UsageError, type CliIo } from 'mport/cli'

const PREFIX = 'mport-connect'
const ONCE = 'This token is shown only now: it is not stored and cannot be shown again.'
/** Longest wait for one API answer. */
const REQUEST_TIMEOUT_MS = 30_000

interface ApiUser { id: string, name: string, role: string }
interface ApiToken { id: string, name: string, tokenId: string, createdAt: number, lastUsedAt: number | null, revokedAt: number | null }

/** One stored login. */
export interface StoredSession {
  /** The session's bearer token for the API (the file is mode 0600). */
  token: string
  /** Who logged in: id, name and role, as the API answered. */
  user: ApiUser
  /** When the API stops accepting `token`, in ms since the epoch. */
  expiresAt: number
  /** ISO 8601 time of the login. */
  loggedInAt: string
  /** The tunnel token login created for the API's relay, used by `mport-connect <port>` without --token. */
  tunnel?: StoredTunnelToken
}

/** A tunnel token kept with a login: for which relay, and the API token that it is. */
export interface StoredTunnelToken {
  /** The relay's control address as the API named it, `host:port` (see relayAddress). */
  relay: string
  /** The token itself (mpt_…); never printed. */
  token: string
  /** Its id on the API (tok_…), to revoke it on logout. */
  id: string
  /** Its name on the API. */
  name: string
}

/** The stored login whose tunnel token is for `relay`, as `mport-connect <port>` uses it. */
export interface LoginForRelay {
  /** The API the login is on. */
  api: string
  /** Who logged in. */
  user: string
  /** The stored tunnel token. */
  tunnel: StoredTunnelToken
  /** The credentials file it came from. */
  file: string
}

/**
 * The stored login with a tunnel token for `relay` (any `host[:port]` form; compared as
 * relayAddress gives it), the most recent first; undefined when there is none. Throws
 * InvalidConfigError for a damaged credentials file.
 */
export async function loginForRelay (relay: string, env: NodeJS.ProcessEnv = process.env): Promise<LoginForRelay | undefined> {
  const want = relayAddress(relay)
  const file = credentialsPath(env)
  const creds = await readCredentials(file)
  const matches = Object.entries(creds.sessions)
    .filter(([, s]) => s.tunnel !== undefined && s.tunnel.relay === want)
    .sort(([a, x], [b, y]) => (a === creds.default ? -1 : b === creds.default ? 1 : y.loggedInAt.localeCompare(x.loggedInAt)))
  const [api, s] = matches[0] ?? []
  return api !== undefined && s?.tunnel !== undefined ? { api, user: s.user.name, tunnel: s.tunnel, file } : undefined
}

/** credentials.json: logins by API address, and the address of the last one. */
export interface CredentialsFile {
  /** File format version. */
  version: 1
  /** The API address of the last login, used when no --api or MPORT_API is given. */
  default?: string
  /** Logins keyed by API base address. */
  sessions: Record<string, StoredSession>
}

/** `$XDG_CONFIG_HOME/mport/credentials.json`, else `~/.config/mport/credentials.json`. */
export function credentialsPath (env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.config')
  return path.join(base, 'mport', 'credentials.json')
}

/** The stored logins; an absent file is empty, a damaged one an error (never silently reset). */
export async function readCredentials (file: string): Promise<CredentialsFile> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, sessions: {} }
    throw new InvalidConfigError('credentials', `cannot read ${file}: ${(err as Error).message}`)
  }
  const damaged = (why: string): InvalidConfigError => new InvalidConfigError('credentials', `${file} is damaged (${why}); fix or delete it, then log in again`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw damaged((err as Error).message)
  }
  const f = parsed as Partial<CredentialsFile> | null
  if (typeof f !== 'object' || f === null || typeof f.sessions !== 'object' || f.sessions === null || Array.isArray(f.sessions)) throw damaged('no "sessions" object')
  const sessions: Record<string, StoredSession> = {}
  for (const [api, s] of Object.entries(f.sessions)) {
    if (typeof s?.token !== 'string' || typeof s.user?.name !== 'string' || typeof s.expiresAt !== 'number') throw damaged(`the entry for ${api} is incomplete`)
    const tt = s.tunnel
    if (tt !== undefined && (typeof tt?.relay !== 'string' || typeof tt.token !== 'string' || typeof tt.id !== 'string')) throw damaged(`the tunnel token for ${api} is incomplete`)
    sessions[api] = s
  }
  return { version: 1, ...(typeof f.default === 'string' ? { default: f.default } : {}), sessions }
}

async function writeCredentials (file: string, creds: CredentialsFile): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  await writeAtomic(file, JSON.stringify(creds, null, 2) + '\n', 0o600)
}

/**
 * The API base URL: `http(s)://host[:port][/prefix]` without a trailing slash; a bare
 * `host:port` means https.
 */
export function normalizeApi (value: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new UsageError(`--api ${JSON.stringify(value)} is not a URL (e.g. https://relay.example.com:7836)`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--api must be an http:// or https:// URL, not ${url.protocol}`)
  if (url.username !== '' || url.password !== '') throw new UsageError('--api must not carry a user name or password')
  if (url.search !== '' || url.hash !== '') throw new UsageError('--api must not have a query or fragment')
  return url.origin + url.pathname.replace(/\/+$/, '')
}

function isLoopback (api: string): boolean {
  const host = new URL(api).hostname
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host)
}

/** One JSON call to the API; non-2xx answers become ApiCallError with the API's code. */
async function call<T> (api: string, method: string, route: string, opts: { bearer?: string, body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(api + route, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      redirect: 'error',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
  } catch (err) {
    const e = err as Error & { cause?: { code?: string, message?: string } }
    const reason = e.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : e.cause?.code ?? e.cause?.message ?? e.message
    throw new RelayUnreachableError(`API ${api}`, reason, { cause: err })
  }
  const text = await res.text()
  let body: unknown
  try {
    body = text === '' ? undefined : JSON.parse(text)
  } catch {
    if (res.ok) throw new ApiCallError(res.status, undefined, `the answer from ${api}${route} is not JSON: is --api the relay's API address?`)
  }
  if (!res.ok) {
    const error = (body as { error?: { code?: unknown, message?: unknown } } | undefined)?.error
    const code = typeof error?.code === 'string' ? error.code : undefined
    const message = typeof error?.message === 'string' ? error.message : `HTTP ${res.status} ${res.statusText} from ${api}${route}`
    const retry = Number(res.headers.get('retry-after'))
    throw new ApiCallError(res.status, code, message, res.status === 429 && retry > 0 ? retry : undefined)
  }
  return body as T
}

interface Common { json: boolean, api?: string }

type Picked = { common: Common, run: (c: Resolved) => Promise<void> }
interface Resolved { json: boolean, file: string, out: (human: string, data: unknown) => void }

/** Runs `mport-connect login|logout|tokens|forget …` (`args` start with the command); returns the exit code. */
export async function connectAccount (args: string[], io: CliIo = processIo()): Promise<number> {
  return await runAccountCommand(io, PREFIX, PREFIX, async () => {
    let picked: Picked | undefined
    const common = (a: Record<string, unknown>): Common => ({ json: a.json === true, ...(typeof a.api === 'string' ? { api: a.api } : {}) })
    const apiOption = { api: { type: 'string', describe: 'The relay\'s API address, e.g. https://relay.example.com:7836 (env MPORT_API; default: the last login)' } } as const
    const jsonOption = { json: { type: 'boolean', default: false, describe: 'Print JSON instead of lines and tables' } } as const
    const tokenOption = { 'api-token': { type: 'string', describe: 'Use this API token (mpt_…) instead of the stored login (env MPORT_API_TOKEN)' } } as const
    await yargs(args)
      .scriptName('mport-connect')
      .usage('$0 login | logout | tokens | forget\n\nAccount tasks on a relay\'s REST API, and forgetting a relay\'s remembered certificate.')
      .command('login', 'Log in with your user name and password; the session is kept in ~/.config/mport/credentials.json', y => y
        .options({
          ...apiOption,
          ...jsonOption,
          user: { type: 'string', demandOption: true, describe: 'Your user name' },
          'password-stdin': { type: 'boolean', describe: 'Read the password from stdin (otherwise it is asked for on the terminal)' },
        }), a => {
        picked = { common: common(a), run: c => login(io, c, apiOf(io, a.api, true), a.user, a['password-stdin'] === true) }
      })
      .command('logout', 'End the stored session and forget it', y => y.options({ ...apiOption, ...jsonOption }), a => {
        picked = { common: common(a), run: c => logout(io, c, a.api) }
      })
      .command('tokens', 'List, create or revoke your API/tunnel tokens', y => y
        .options({ ...apiOption, ...tokenOption, ...jsonOption })
        .command(['list', '$0'], 'List your tokens (the tokens themselves are never shown again)', {}, a => {
          picked = { common: common(a), run: c => tokensList(io, c, tokenArgs(a)) }
        })
        .command('create <name>', 'Create a token; it is printed once', y => y.positional('name', { type: 'string', demandOption: true }), a => {
          picked = { common: common(a), run: c => tokensCreate(io, c, tokenArgs(a), a.name) }
        })
        .command('revoke <token>', 'Revoke a token by its id (tok_…) or its name; tunnels using it are disconnected', y => y.positional('token', { type: 'string', demandOption: true }), a => {
          picked = { common: common(a), run: c => tokensRevoke(io, c, tokenArgs(a), a.token) }
        })
        .strict())
      .command('forget <relay>', 'Forget the remembered certificate of a relay (host[:port]) after it was changed on purpose', y => y
        .positional('relay', { type: 'string', demandOption: true, describe: 'The relay address, as given to --relay' })
        .options(jsonOption), a => {
        picked = { common: common(a), run: async c => { const r = await forgetRelay(a.relay); c.out(r.human, r.data) } }
      })
      .demandCommand(1, 'give a command: login, logout, tokens or forget')
      .strict()
      .middleware(lastWins, true)
      .epilogue('Exit codes: 0 done, 1 failure (the line ends with the API\'s error code, e.g. [MPORT_ERR_UNAUTHENTICATED]), 2 bad arguments, 3 the API cannot be reached.')
      .exitProcess(false)
      .fail((msg, err) => { throw new UsageError(msg ?? err?.message ?? 'bad arguments') })
      .version(packageVersion())
      .help()
      .parseAsync()
    if (picked === undefined) return undefined
    const { common: c, run } = picked
    const file = credentialsPath(io.env)
    const resolved: Resolved = {
      json: c.json,
      file,
      out: (human, data) => io.stdout.write((c.json ? JSON.stringify(data) : human) + '\n'),
    }
    return { json: c.json, run: () => run(resolved) }
  })
}

interface TokenArgs { api?: string, 'api-token'?: string }

/** --api and --api-token, declared on `tokens` (yargs does not carry their types into the sub-commands). */
function tokenArgs (a: Record<string, unknown>): TokenArgs {
  return { ...(typeof a.api === 'string' ? { api: a.api } : {}), ...(typeof a['api-token'] === 'string' ? { 'api-token': a['api-token'] } : {}) }
}

/** The API address from the flag, MPORT_API, or (unless `required`) nothing yet. */
function apiOf (io: CliIo, flag: string | undefined, required: boolean): string | undefined {
  const v = flag ?? (io.env.MPORT_API || undefined)
  if (v === undefined) {
    if (required) throw new UsageError('give the relay\'s API address with --api (or MPORT_API)')
    return undefined
  }
  return normalizeApi(v)
}

async function login (io: CliIo, c: Resolved, api: string | undefined, user: string, stdinFlag: boolean): Promise<void> {
  if (user === '') throw new UsageError('--user is empty')
  const base = api!
  const password = await obtainPassword(io, { stdinFlag, hint: 'pipe it with --password-stdin, or run on a terminal to be asked', prompt: `Password for ${user} at ${base}: ` })
  if (new URL(base).protocol === 'http:' && !isLoopback(base)) io.stderr.write(`warning: ${base} is plain http: the password and the session travel unencrypted\n`)
  const r = await call<{ token: string, expiresAt: number, user: ApiUser }>(base, 'POST', '/v1/login', { body: { name: user, password } })
  const creds = await readCredentials(c.file)
  const previous = creds.sessions[base]
  const tunnel = await tunnelTokenFor(io, base, r.token)
  creds.sessions[base] = {
    token: r.token, user: { id: r.user.id, name: r.user.name, role: r.user.role }, expiresAt: r.expiresAt, loggedInAt: new Date().toISOString(),
    ...(tunnel !== undefined ? { tunnel } : {}),
  }
  creds.default = base
  await writeCredentials(c.file, creds)
  // The previous login's tunnel token is replaced: revoke it (best effort, with the new session).
  if (previous?.tunnel !== undefined && previous.user.id === r.user.id) await call(base, 'DELETE', `/v1/tokens/${encodeURIComponent(previous.tunnel.id)}`, { bearer: r.token }).catch(() => {})
  const forTunnels = tunnel !== undefined ? `; tunnels to ${tunnel.relay} use its tunnel token "${tunnel.name}" when no --token is given` : ''
  c.out(`logged in to ${base} as ${r.user.name} (${r.user.role}); the session lasts until ${formatTime(r.expiresAt)}${forTunnels} and is kept in ${c.file}`,
    { api: base, user: r.user, expiresAt: r.expiresAt, credentials: c.file, ...(tunnel !== undefined ? { relay: tunnel.relay, tunnelToken: { id: tunnel.id, name: tunnel.name } } : {}) })
}

/**
 * A tunnel token for the relay whose API this is (POST /v1/tokens with the new session), when
 * /v1/health names the relay's control address; an API without a relay gets none.
 */
async function tunnelTokenFor (io: CliIo, api: string, session: string): Promise<StoredTunnelToken | undefined> {
  const health = await call<{ relay?: unknown }>(api, 'GET', '/v1/health').catch(() => undefined)
  if (typeof health?.relay !== 'string') return undefined
  let relay: string
  try {
    relay = relayAddress(health.relay)
  } catch {
    return undefined
  }
  const name = `mport-connect login (${os.hostname()})`.slice(0, 64)
  try {
    const t = await call<{ token: string, info: ApiToken }>(api, 'POST', '/v1/tokens', { bearer: session, body: { name } })
    return { relay, token: t.token, id: t.info.id, name: t.info.name }
  } catch (err) {
    io.stderr.write(`warning: no tunnel token for ${relay}: ${describeFailure(err).line}; give --token to mport-connect instead\n`)
    return undefined
  }
}

async function logout (io: CliIo, c: Resolved, flag: string | undefined): Promise<void> {
  const creds = await readCredentials(c.file)
  const api = apiOf(io, flag, false) ?? creds.default
  const s = api !== undefined ? creds.sessions[api] : undefined
  if (api === undefined || s === undefined) {
    c.out(`not logged in${api !== undefined ? ` to ${api}` : ''}`, { api: api ?? null, loggedOut: false })
    return
  }
  // Forget it locally even when the server no longer knows it (expired, relay gone).
  let ended = true
  let revoked = false
  if (s.tunnel !== undefined) {
    try {
      await call(api, 'DELETE', `/v1/tokens/${encodeURIComponent(s.tunnel.id)}`, { bearer: s.token })
      revoked = true
    } catch (err) {
      if (err instanceof ApiCallError && err.status === 404) revoked = true // already revoked
    }
  }
  try {
    await call(api, 'POST', '/v1/logout', { bearer: s.token })
  } catch (err) {
    if (!(err instanceof ApiCallError && err.status === 401)) ended = false
  }
  delete creds.sessions[api]
  if (creds.default === api) delete creds.default
  await writeCredentials(c.file, creds)
  const tunnelNote = s.tunnel === undefined ? '' : revoked ? `; its tunnel token for ${s.tunnel.relay} is revoked` : `; its tunnel token for ${s.tunnel.relay} could not be revoked (revoke "${s.tunnel.name}" with mport-connect tokens revoke when the API is back)`
  c.out(`logged out of ${api}${ended ? '' : ' (the API could not be told; the session ends when it expires)'}${tunnelNote}`,
    { api, loggedOut: true, ended, ...(s.tunnel !== undefined ? { tunnelTokenRevoked: revoked } : {}) })
}

/** The bearer credential for `tokens`: --api-token, MPORT_API_TOKEN, else the stored session. */
async function auth (io: CliIo, c: Resolved, a: TokenArgs): Promise<{ api: string, bearer: string, session?: StoredSession }> {
  const given = a['api-token'] ?? (io.env.MPORT_API_TOKEN || undefined)
  if (given === '') throw new UsageError('--api-token is empty')
  const creds = await readCredentials(c.file)
  const api = apiOf(io, a.api, false) ?? creds.default
  if (api === undefined) throw new UsageError('give the relay\'s API address with --api (or log in first with mport-connect login)')
  if (given !== undefined) return { api, bearer: given }
  const s = creds.sessions[api]
  if (s === undefined) throw new UnauthenticatedError(`not logged in to ${api}: run mport-connect login --api ${api} --user <name>, or give --api-token`)
  if (s.expiresAt <= Date.now()) throw new UnauthenticatedError(`the session for ${api} expired at ${formatTime(s.expiresAt)}: run mport-connect login --api ${api} --user ${s.user.name}`)
  return { api, bearer: s.token, session: s }
}

/** A 401 with a stored session: say how to get a new one. */
async function withSession<T> (who: { api: string, session?: StoredSession }, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof ApiCallError && err.status === 401 && who.session !== undefined) {
      throw new ApiCallError(401, err.code, `${err.message} (run mport-connect login --api ${who.api} --user ${who.session.user.name})`)
    }
    throw err
  }
}

function tokenStatus (t: ApiToken): string {
  return t.revokedAt === null ? 'active' : `revoked ${formatTime(t.revokedAt)}`
}

async function tokensList (io: CliIo, c: Resolved, a: TokenArgs): Promise<void> {
  const who = await auth(io, c, a)
  const tokens = await withSession(who, () => call<ApiToken[]>(who.api, 'GET', '/v1/tokens', { bearer: who.bearer }))
  const human = tokens.length === 0
    ? 'no tokens yet: create one with mport-connect tokens create <name>'
    : formatTable(['ID', 'NAME', 'CREATED', 'LAST USED', 'STATUS'], tokens.map(t => [t.id, t.name, formatTime(t.createdAt), formatTime(t.lastUsedAt), tokenStatus(t)]))
  c.out(human, tokens)
}

async function tokensCreate (io: CliIo, c: Resolved, a: TokenArgs, name: string): Promise<void> {
  if (name.trim() === '' || name.length > 64) throw new UsageError('the token name must be 1-64 characters and not blank')
  const who = await auth(io, c, a)
  const r = await withSession(who, () => call<{ token: string, info: ApiToken }>(who.api, 'POST', '/v1/tokens', { bearer: who.bearer, body: { name } }))
  c.out(`created token "${r.info.name}" (id ${r.info.id}):\n  ${r.token}\n${ONCE}\nUse it with: mport-connect <port> --relay <relay> --token <token>`, r)
}

async function tokensRevoke (io: CliIo, c: Resolved, a: TokenArgs, which: string): Promise<void> {
  const who = await auth(io, c, a)
  let id = which
  if (!which.startsWith('tok_')) {
    // A name: it must name exactly one active token.
    const tokens = await withSession(who, () => call<ApiToken[]>(who.api, 'GET', '/v1/tokens', { bearer: who.bearer }))
    const matches = tokens.filter(t => t.name === which && t.revokedAt === null)
    if (matches.length === 0) throw new ApiCallError(404, 'MPORT_ERR_NOT_FOUND', `no active token named ${JSON.stringify(which)}`)
    if (matches.length > 1) throw new UsageError(`${matches.length} active tokens are named ${JSON.stringify(which)}: revoke one by its id (${matches.map(t => t.id).join(', ')})`)
    id = matches[0]!.id
  }
  const t = await withSession(who, () => call<ApiToken>(who.api, 'DELETE', `/v1/tokens/${encodeURIComponent(id)}`, { bearer: who.bearer }))
  c.out(`revoked token "${t.name}" (id ${t.id}); tunnels logged in with it are disconnected`, t)
}
