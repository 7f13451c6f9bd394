#!/usr/bin/env node
/** mport-relay: yargs options → Relay; signal handling. No protocol logic here. */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
// The relay's own modules, not the package index (which would also load the client side).
import { startRelayService } from 'mport-relay'
import { defaultDataDir, parsePortRange, DEFAULT_CONTROL_PORT } from 'mport/relay'
import { createPrinter, oneLine, ExitCode, formatBytes, lastValueWins, packageVersion, explainUsage, explainListenError, shownNumber, strayReporter } from 'mport/cli'
import { RateLimitedLog } from 'mport/limits'
import { loadConfigFile, checkKnownKeys } from 'mport/config'
import { InvalidConfigError, MportError } from 'mport/errors'
import { tuneGcForForwarding } from 'mport/gc-tuning'

// `mport-relay users …` (account tasks on the store) has its own parser (packages/mport-relay/src/cli/relay-users.ts).
if (process.argv[2] === 'users') {
  const { relayUsers } = await import('mport-relay')
  process.exit(await relayUsers(process.argv.slice(2)))
}

// A process of its own: set the forwarding GC tuning (process-wide V8 flags, see the module);
// its read meter goes to the data path through the options.
const gc = tuneGcForForwarding()

const env = process.env
/** At most one "refused" line per tunnel and reason per this many ms. */
const REFUSED_LOG_INTERVAL_MS = 10_000

/** A bad flag: one line on stderr, exit 2. */
function usageExit (msg: string): never {
  process.stderr.write(`mport-relay: ${msg} (see mport-relay --help)\n`)
  process.exit(ExitCode.Usage)
}

/** A repeated flag: the last one wins. */
const lastWins = lastValueWins()

/** The flags (kept apart from yargs so an unknown one can be matched against them). */
const OPTIONS = {
  host: { type: 'string', default: '0.0.0.0', describe: 'Address the control listener binds to' },
  port: { type: 'number', default: DEFAULT_CONTROL_PORT, describe: 'Control port clients connect to (TLS)' },
  'public-host': { type: 'string', describe: 'Host name clients and visitors use to reach this relay (env MPORT_PUBLIC_HOST; default: this machine\'s host name)' },
  'bind-host': { type: 'string', default: '0.0.0.0', describe: 'Address public tunnel ports bind to' },
  ports: { type: 'string', describe: 'Range of public ports tunnels may use (env MPORT_PORTS; default 20000-29999)' },
  'data-dir': { type: 'string', describe: 'Where the generated certificate and token live (env MPORT_DATA_DIR; default ~/.mport)' },
  cert: { type: 'string', describe: 'TLS certificate (PEM) instead of the generated self-signed one' },
  key: { type: 'string', describe: 'TLS private key (PEM) for --cert' },
  token: { type: 'string', describe: 'Access token clients must present (env MPORT_TOKEN; default: generated and stored in the data dir)' },
  'lease-grace': { type: 'number', default: 120, describe: 'Seconds a disconnected client\'s ports are held for it' },
  'drain-timeout': { type: 'number', default: 10, describe: 'Seconds open connections may drain on SIGTERM/SIGINT' },
  json: { type: 'boolean', default: false, describe: 'Print one JSON object per event' },
  verbose: { type: 'boolean', default: false, describe: 'Also print every visitor connection (costs CPU under heavy load)' },
  domain: { type: 'string', describe: 'Base domain for http/tls tunnels (<name>.<domain>; wildcard DNS pointing here)' },
  'http-port': { type: 'number', describe: 'Shared HTTP port for http tunnels (e.g. 80)' },
  'https-port': { type: 'number', describe: 'Shared HTTPS port: SNI routing for tls tunnels, TLS termination for http tunnels (e.g. 443)' },
  'https-cert': { type: 'string', describe: 'Certificate (PEM, usually *.<domain>) for http tunnels on the HTTPS port (default: self-signed, in the data dir)' },
  'https-key': { type: 'string', describe: 'Private key (PEM) for --https-cert' },
  database: { type: 'string', describe: 'postgres://… or a SQLite file for users, tokens and usage (env MPORT_DATABASE; default mport.db in the data dir)' },
  'api-port': { type: 'number', describe: 'Serve the REST API (OpenAPI at /openapi.json, docs at /docs) on this port' },
  'api-host': { type: 'string', default: '127.0.0.1', describe: 'Address the REST API binds to' },
  'open-signup': { type: 'boolean', default: false, describe: 'Let anyone create an account through the API' },
  'plan-tunnels': { type: 'number', describe: 'Default plan: tunnels per user (user accounts only; unset: unlimited)' },
  'plan-connections': { type: 'number', describe: 'Default plan: concurrent visitor connections per user' },
  'plan-monthly-gb': { type: 'number', describe: 'Default plan: GB (10^9 bytes) per user per month' },
  'plan-bandwidth-mbps': { type: 'number', describe: 'Default plan: megabits per second per user, shaped' },
  'plan-connections-per-minute': { type: 'number', describe: 'Default plan: new connections per minute per tunnel' },
  'connections-per-ip-per-minute': { type: 'number', describe: 'New connections per minute from one visitor address, per tunnel' },
  config: { type: 'string', describe: 'Config file (.yaml, .yml or .json): every flag is a key in snake_case (data_dir; the flag\'s own data-dir works too); token_file / token_env and database_file / database_env read those secrets from a file (trimmed) or a named environment variable' },
} as const

type Flag = Exclude<keyof typeof OPTIONS, 'config'>
/** The flags a config file can set (all but --config). */
const FILE_FLAGS = (Object.keys(OPTIONS) as Array<keyof typeof OPTIONS>).filter((k): k is Flag => k !== 'config')
/** Secrets a config file may also name indirectly: `<name>_file` (read, trimmed) or `<name>_env`. */
const INDIRECT = ['token', 'database'] as const
const INDIRECT_KEYS = INDIRECT.flatMap(n => [`${n}-file`, `${n}-env`])
const snake = (k: string): string => k.replaceAll('-', '_')
/** Every key a config file may hold: snake_case first (the documented spelling, so suggestions use it), then the flags' kebab-case. */
const CONFIG_KEYS = [...[...FILE_FLAGS, ...INDIRECT_KEYS].map(snake), ...[...FILE_FLAGS, ...INDIRECT_KEYS].filter(k => k.includes('-'))]
/** The environment fallbacks; like mport-connect, they win over the config file (flags, then environment, then file). */
const ENV_FALLBACKS: Partial<Record<Flag, string>> = { ports: 'MPORT_PORTS', 'public-host': 'MPORT_PUBLIC_HOST', 'data-dir': 'MPORT_DATA_DIR', token: 'MPORT_TOKEN', database: 'MPORT_DATABASE' }

/**
 * The settings of a config file as flag values (kebab-case keys), checked: unknown keys (with
 * a suggestion), a setting given twice, values of the wrong type, and the secrets' files and
 * variables. Settings whose environment variable is set are left out (the variable wins).
 */
async function readConfig (file: string): Promise<Record<string, string | number | boolean>> {
  const raw = await loadConfigFile(file)
  checkKnownKeys(raw, CONFIG_KEYS, file)
  const values: Record<string, string | number | boolean> = {}
  const written = new Map<string, string>() // flag → the key as written
  for (const [key, v] of Object.entries(raw)) {
    const flag = key.replaceAll('_', '-')
    const prev = written.get(flag)
    if (prev !== undefined) throw new InvalidConfigError(key, `"${prev}" and "${key}" in ${file} are the same setting; give it once`)
    written.set(flag, key)
    if (v === null || v === undefined) continue
    const type = INDIRECT_KEYS.includes(flag) ? 'string' : OPTIONS[flag as Flag].type
    if (typeof v !== type || (typeof v === 'number' && !Number.isFinite(v))) {
      throw new InvalidConfigError(key, `"${key}" in ${file} must be ${type === 'boolean' ? 'true or false' : `a ${type}`}, not ${JSON.stringify(v)}`)
    }
    values[flag] = v as string | number | boolean
  }
  for (const name of INDIRECT) {
    const given = [name, `${name}-file`, `${name}-env`].filter(f => values[f] !== undefined)
    if (given.length > 1) throw new InvalidConfigError(written.get(given[1]!) ?? name, `give only one of ${given.map(f => `"${written.get(f) ?? f}"`).join(', ')} in ${file}`)
    const fromFile = values[`${name}-file`]
    const fromEnv = values[`${name}-env`]
    delete values[`${name}-file`]
    delete values[`${name}-env`]
    if (typeof fromFile === 'string') {
      const key = written.get(`${name}-file`) ?? `${name}_file`
      let text: string
      try {
        text = readFileSync(fromFile, 'utf8').trim()
      } catch (err) {
        throw new InvalidConfigError(key, `cannot read "${key}" ${fromFile} in ${file}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`)
      }
      if (text === '') throw new InvalidConfigError(key, `"${key}" ${fromFile} in ${file} is empty`)
      values[name] = text
    } else if (typeof fromEnv === 'string') {
      const key = written.get(`${name}-env`) ?? `${name}_env`
      const text = env[fromEnv]
      if (text === undefined || text === '') throw new InvalidConfigError(key, `"${key}" in ${file} names ${fromEnv}, which is not set or empty`)
      values[name] = text
    }
  }
  for (const [flag, name] of Object.entries(ENV_FALLBACKS)) {
    if (env[name] !== undefined && env[name] !== '') delete values[flag]
  }
  return values
}

/** A check's message about `--<flag>` says so when the value came from the config file, not a flag. */
function fromFile (msg: string): string {
  const flag = /^--([a-z-]+)\b/.exec(msg)?.[1]
  if (flag === undefined || configFile === undefined || fileValues[flag] === undefined) return msg
  if (args.some(a => a === `--${flag}` || a.startsWith(`--${flag}=`) || a === `--no-${flag}`)) return msg
  return `${msg} (from "${snake(flag)}" in ${configFile})`
}

/** The file named by the last --config (or --config=…) in `argv`, if any. */
function configArg (argv: readonly string[]): string | undefined {
  let file: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') break
    if (a === '--config') {
      const next = argv[i + 1]
      if (next === undefined || next.startsWith('-')) usageExit('--config needs a file')
      file = next
      i++
    } else if (a.startsWith('--config=')) file = a.slice('--config='.length)
  }
  return file
}

// Environment fallbacks are read explicitly (not with yargs .env()): other MPORT_* variables,
// such as the client's MPORT_RELAY, must not turn into unknown-flag errors here.
// `mport-relay config print [--config file] [flags]`: the effective config, secrets masked.
const printConfig = process.argv[2] === 'config' && process.argv[3] === 'print'
if (process.argv[2] === 'config' && !printConfig) usageExit(`unknown config command ${JSON.stringify(process.argv[3] ?? '')}; use mport-relay config print`)
const args = hideBin(process.argv).slice(printConfig ? 2 : 0)
const configFile = configArg(args)
let fileValues: Record<string, string | number | boolean> = {}
if (configFile !== undefined) {
  try {
    fileValues = await readConfig(configFile)
  } catch (err) {
    if (err instanceof MportError && err.code === 'MPORT_ERR_INVALID_CONFIG') usageExit(oneLine(err))
    throw err
  }
}
const argv = yargs(args)
  .scriptName('mport-relay')
  .usage('$0 [options]\n\nRun an mport relay: clients connect to it over TLS and get public ports for their local services.\n\nAccounts: mport-relay users add|list|disable|enable|token … (see mport-relay users --help)\nThe effective config (flags, environment and --config), secrets as ***: mport-relay config print [--config file] [flags] [--json]')
  .options(OPTIONS)
  .config(fileValues)
  .strict()
  .middleware(lastWins, true)
  .check(a => {
    if ((a.cert === undefined) !== (a.key === undefined)) throw new Error('--cert and --key go together')
    if ((a['https-cert'] === undefined) !== (a['https-key'] === undefined)) throw new Error('--https-cert and --https-key go together')
    if ((a['http-port'] !== undefined || a['https-port'] !== undefined) && a.domain === undefined) throw new Error('--http-port and --https-port need --domain')
    for (const k of ['plan-tunnels', 'plan-connections', 'plan-monthly-gb', 'plan-bandwidth-mbps', 'plan-connections-per-minute', 'connections-per-ip-per-minute'] as const) {
      const v = a[k]
      if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new Error(`--${k} ${shownNumber(args, k, v)} must be a non-negative number`)
    }
    for (const k of ['http-port', 'https-port', 'api-port'] as const) {
      const v = a[k]
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 65535)) throw new Error(`--${k} ${shownNumber(args, k, v)} is not a port number (0-65535)`)
    }
    parsePortRange(a.ports ?? env.MPORT_PORTS ?? '20000-29999')
    if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port ${shownNumber(args, 'port', a.port)} is not a port number (0-65535)`)
    for (const k of ['lease-grace', 'drain-timeout'] as const) {
      if (!Number.isFinite(a[k]) || a[k] < 0) throw new Error(`--${k} ${shownNumber(args, k, a[k])} is not a number of seconds`)
    }
    if (a.token === '') throw new Error('--token is empty')
    return true
  })
  .epilogue([
    'Settings come from flags, then MPORT_PORTS / MPORT_PUBLIC_HOST / MPORT_DATA_DIR / MPORT_TOKEN / MPORT_DATABASE, then --config.',
    'Exit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime failure (e.g. the port is taken), 2 bad flags or config.',
  ].join('\n'))
  .fail((msg, err) => usageExit(fromFile(explainUsage(msg ?? oneLine(err), [...Object.keys(OPTIONS), 'help', 'version'], args))))
  .version(packageVersion())
  .help()
  .parseSync()

const ports = argv.ports ?? env.MPORT_PORTS ?? '20000-29999'
const publicHost = argv['public-host'] ?? env.MPORT_PUBLIC_HOST ?? os.hostname()
const givenToken = argv.token ?? (env.MPORT_TOKEN || undefined)
const database = argv.database ?? (env.MPORT_DATABASE || undefined)
const dataDir = argv['data-dir'] ?? defaultDataDir()

if (printConfig) {
  const resolved: Partial<Record<Flag, unknown>> = { ports, 'public-host': publicHost, 'data-dir': dataDir, token: givenToken !== undefined ? '***' : undefined, database: database !== undefined ? maskUrlPassword(database) : undefined }
  const shown: Record<string, unknown> = {}
  for (const flag of FILE_FLAGS) {
    const v = flag in resolved ? resolved[flag] : argv[flag]
    if (v !== undefined) shown[snake(flag)] = v
  }
  // Flat scalars only: JSON strings are valid YAML scalars, so no YAML library is needed here.
  process.stdout.write(argv.json ? `${JSON.stringify(shown, null, 2)}\n` : Object.entries(shown).map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`).join(''))
  process.exit(ExitCode.Ok)
}

/** A database URL with its password (if any) as `***`; a file name as it is. */
function maskUrlPassword (url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@')
}

const out = createPrinter(argv.json, process.stdout, process.stderr, { timestamps: true })

/** The contents of a file named by a flag; an unreadable file is a bad flag. */
function readFlagFile (flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    return usageExit(`cannot read --${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`)
  }
}

async function main (): Promise<void> {
  const cert = argv.cert !== undefined ? readFlagFile('cert', argv.cert) : undefined
  const key = argv.key !== undefined ? readFlagFile('key', argv.key) : undefined
  const service = await startRelayService({
    dataDir,
    host: argv.host,
    port: argv.port,
    bindHost: argv['bind-host'],
    publicHost,
    portRange: parsePortRange(ports),
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
    ...(givenToken !== undefined ? { token: givenToken } : {}),
    ...(database !== undefined ? { database } : {}),
    leaseGrace: argv['lease-grace'] * 1000,
    ...(argv.domain !== undefined ? { domain: argv.domain } : {}),
    ...(argv['http-port'] !== undefined ? { httpPort: argv['http-port'] } : {}),
    ...(argv['https-port'] !== undefined ? { httpsPort: argv['https-port'] } : {}),
    ...(argv['https-cert'] !== undefined && argv['https-key'] !== undefined ? { httpsCert: readFlagFile('https-cert', argv['https-cert']), httpsKey: readFlagFile('https-key', argv['https-key']) } : {}),
    ...(argv['api-port'] !== undefined ? { api: { host: argv['api-host'], port: argv['api-port'], openSignup: argv['open-signup'] } } : {}),
    version: packageVersion(),
    onFreshRead: gc.onFreshRead,
    planDefaults: {
      ...(argv['plan-tunnels'] !== undefined ? { maxTunnels: argv['plan-tunnels'] } : {}),
      ...(argv['plan-connections'] !== undefined ? { maxConnections: argv['plan-connections'] } : {}),
      ...(argv['plan-monthly-gb'] !== undefined ? { monthlyBytes: Math.round(argv['plan-monthly-gb'] * 1e9) } : {}),
      ...(argv['plan-bandwidth-mbps'] !== undefined ? { bandwidthBytesPerSecond: Math.round(argv['plan-bandwidth-mbps'] * 1e6 / 8) } : {}),
      ...(argv['plan-connections-per-minute'] !== undefined ? { connectionsPerMinute: argv['plan-connections-per-minute'] } : {}),
    },
    ...(argv['connections-per-ip-per-minute'] !== undefined ? { connectionsPerIpPerMinute: argv['connections-per-ip-per-minute'] } : {}),
  })
  const { relay, data, token } = service
  const fp = service.fingerprint
  relay.on('client', c => out.event('client', `client ${c.id} connected from ${c.remoteAddress}${c.resumed ? ' (resumed its lease)' : ''}`, { ...c, principal: c.principal.name }))
  relay.on('client-closed', (c, err) => out.event('client-closed', `client ${c.id} disconnected${err ? `: ${oneLine(err)}` : ''}`, { id: c.id, error: err?.message }))
  relay.on('tunnel-up', t => out.event('tunnel-up', `tunnel ${t.name} up on port ${t.port}`, { ...t }))
  relay.on('tunnel-down', (t, reason) => out.event('tunnel-down', `tunnel ${t.name} on port ${t.port} down: ${reason}`, { ...t, reason }))
  relay.on('auth-failed', (addr, err) => out.event('auth-failed', `authentication failed from ${addr}: ${err.message}`, { remoteAddress: addr, code: err.code }))
  if (argv.verbose) relay.on('connection', c => out.event('connection', `${c.tunnel.name}: connection from ${c.remoteAddress}:${c.remotePort}`, { tunnel: c.tunnel.name, port: c.tunnel.port, remoteAddress: c.remoteAddress, remotePort: c.remotePort }))
  // Refused visitors (IP filter, plan limits): one line per tunnel and reason per 10 s, with the count held back.
  const latestRefusal = new Map<string, { tunnel: string, err: MportError }>()
  const refusals = new RateLimitedLog({
    intervalMs: REFUSED_LOG_INTERVAL_MS,
    onHeldBack: (key, n) => {
      const l = latestRefusal.get(key)
      if (l !== undefined) out.event('visitor-refused', `${l.tunnel}: ${n} more visitor${n === 1 ? '' : 's'} refused in the last ${REFUSED_LOG_INTERVAL_MS / 1000} s, the latest: ${oneLine(l.err)}`, { tunnel: l.tunnel, code: l.err.code, suppressed: n })
    },
  })
  relay.on('visitor-refused', (c, err) => {
    const key = `${c.tunnel.name}\0${err.code}`
    if (latestRefusal.size < 1000 || latestRefusal.has(key)) latestRefusal.set(key, { tunnel: c.tunnel.name, err })
    const a = refusals.admit(key)
    if (!a.print) return
    const more = a.suppressed > 0 ? ` (and ${a.suppressed} more since the last line)` : ''
    out.event('visitor-refused', `${c.tunnel.name}: refused ${c.remoteAddress}: ${oneLine(err)}${more}`, { tunnel: c.tunnel.name, remoteAddress: c.remoteAddress, code: err.code, suppressed: a.suppressed })
  })
  relay.on('connection-closed', (c, s) => {
    if (!argv.verbose && s.error === undefined) return
    const line = `${c.tunnel.name}: ${c.remoteAddress}:${c.remotePort} closed (${formatBytes(s.bytesIn)} in, ${formatBytes(s.bytesOut)} out)${s.error ? `: ${oneLine(s.error)}` : ''}`
    out.event('connection-closed', line, { tunnel: c.tunnel.name, port: c.tunnel.port, remoteAddress: c.remoteAddress, remotePort: c.remotePort, bytesIn: s.bytesIn, bytesOut: s.bytesOut, error: s.error?.message })
  })
  const stray = strayReporter(out, REFUSED_LOG_INTERVAL_MS)
  if (argv.verbose) relay.on('stray', (c, frame) => stray(`client ${c.id}`, frame))
  relay.on('warning', err => out.error(err, 'warning'))

  const addr = relay.address // startRelayService has started it
  const controlAddr = `${publicHost}${addr.port === DEFAULT_CONTROL_PORT ? '' : `:${addr.port}`}`
  // The token is shown in full only when it was just generated (the operator has to learn it);
  // after that it stays in its file, and a token from a flag or the environment is never echoed.
  const showToken = data.tokenCreated && givenToken === undefined
  const tokenLine = givenToken !== undefined ? `(given with --token, MPORT_TOKEN or ${configFile ?? '--config'})` : showToken ? token : `${token.slice(0, 6)}… (in ${data.tokenFile})`
  const tokenArg = showToken ? token : givenToken !== undefined ? '$MPORT_TOKEN' : `$(cat ${data.tokenFile})`
  const connectCmd = `npx mport-connect 5555 --relay ${controlAddr} --token ${tokenArg}${cert === undefined ? ` --fingerprint ${fp}` : ''}`
  out.event('listening', [
    `mport relay listening on ${addr.address}:${addr.port} (public ports ${ports} on ${argv['bind-host']})`,
    `  certificate: ${argv.cert ?? `self-signed${data.certCreated ? ' (new)' : ''} in ${data.dir}`}, fingerprint ${fp}`,
    `  token:       ${tokenLine}`,
    ...(relay.httpAddress !== undefined || relay.httpsAddress !== undefined ? [`  web:         ${argv.domain} on ${[relay.httpAddress !== undefined ? `HTTP ${relay.httpAddress.port}` : '', relay.httpsAddress !== undefined ? `HTTPS ${relay.httpsAddress.port}` : ''].filter(Boolean).join(', ')}`] : []),
    ...(service.apiAddress !== undefined ? [`  api:         http://${service.apiAddress.address}:${service.apiAddress.port}/docs`] : []),
    '  connect a local port with:',
    `    ${connectCmd}`,
  ].join('\n'), { address: addr.address, port: addr.port, publicHost, ports, fingerprint: fp, dataDir: data.dir, tokenFile: data.tokenFile, connect: connectCmd, ...(relay.httpAddress !== undefined ? { httpPort: relay.httpAddress.port } : {}), ...(relay.httpsAddress !== undefined ? { httpsPort: relay.httpsAddress.port } : {}) })

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) process.exit(ExitCode.Ok) // a second signal: do not wait
    stopping = true
    out.event('stopping', `${signal}: closing, letting open connections drain for up to ${argv['drain-timeout']} s (again to force)`, { signal })
    service.close(argv['drain-timeout'] * 1000).then(() => {
      out.event('stopped', 'relay stopped', {})
      process.exit(ExitCode.Ok)
    }, err => {
      out.error(err, 'mport-relay')
      process.exit(ExitCode.Failure)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main().catch(err => {
  // Node's raw `listen EADDRINUSE …` becomes the flag that chose the port and what to do.
  const listenLine = explainListenError(err, [
    { flag: '--port', port: argv.port, hostFlag: '--host', host: argv.host },
    { flag: '--http-port', port: argv['http-port'], hostFlag: '--bind-host', host: argv['bind-host'] },
    { flag: '--https-port', port: argv['https-port'], hostFlag: '--bind-host', host: argv['bind-host'] },
    { flag: '--api-port', port: argv['api-port'], hostFlag: '--api-host', host: argv['api-host'] },
  ])
  out.error(listenLine !== undefined ? new Error(listenLine) : err, 'mport-relay')
  process.exit(ExitCode.Failure)
})
