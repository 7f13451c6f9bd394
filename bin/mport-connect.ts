#!/usr/bin/env node
/** mport-connect: yargs options (and an optional config file) → Client; status output. */
import { readFileSync } from 'node:fs'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
// Only the client's entry points: a client never loads the relay, the store or the API.
import { Client, KnownRelays, LeaseFile, parseProxyUrl, parseTunnelSpec, relayAddress, TRANSPORT_CHOICES, TransportMemory, type ProxyConfig, type TransportChoice, type TunnelSpec } from 'mport/client'
import { parseFingerprint } from 'mport/transport'
import { loadConfigFile, Secret } from 'mport/config'
import { IpFilter, riskyPortHint, parseBasicAuthValue } from 'mport/access'
import { createLogger, LOG_LEVELS, oneLine, formatBytes, packageVersion, ExitCode, lastValueWins, explainUsage, strayReporter, type LogLevel } from 'mport/cli'
import { InvalidConfigError, MportError } from 'mport/errors'
import { tuneGcForForwarding } from 'mport/gc-tuning'
import { connectAccount, loginForRelay, validateClientConfig, reloadLine, restartLine, type ClientFileConfig, type LoginForRelay } from 'mport-connect'
import { INSPECT_FLAGS, inspectSettings, createInspector, serveInspector, StatusDisplay, type InspectSettings } from 'mport-connect'

// Account commands (login, logout, tokens) go to the REST API; forget edits known_relays.json (packages/mport-connect).
const ACCOUNT_COMMANDS = ['login', 'logout', 'tokens', 'forget']

const env = process.env

class UsageError extends Error {}

/**
 * `fn()`, with an InvalidConfigError turned into a UsageError about `what` (a flag, an
 * argument, or a key of the config file): "invalid config" is for files.
 */
function checked<T> (what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof InvalidConfigError) throw new UsageError(`${what}: ${err.message.replace(/^invalid config "[^"]*": /, '')} [${err.code}]`)
    throw err
  }
}

/** A bad flag or config: one line on stderr, exit 2. */
function usageExit (msg: string): never {
  process.stderr.write(`mport-connect: ${msg} (see mport-connect --help)\n`)
  process.exit(ExitCode.Usage)
}

/** A repeated flag: the last one wins, except for the lists. */
const lastWins = lastValueWins('tunnels', 'allow-ip', 'allowIp', 'deny-ip', 'denyIp')

/** The flags (kept apart from yargs so an unknown one can be matched against them). */
const OPTIONS = {
  relay: { type: 'string', describe: 'Relay address host[:port] (env MPORT_RELAY)' },
  token: { type: 'string', describe: 'Access token printed by the relay (env MPORT_TOKEN)' },
  fingerprint: { type: 'string', describe: 'Pin the relay certificate: sha256:<hex> as the relay prints it (env MPORT_FINGERPRINT)' },
  ca: { type: 'string', describe: 'Trust this CA certificate file (PEM) for the relay' },
  insecure: { type: 'boolean', describe: 'Do not verify the relay certificate (development only!)' },
  tofu: { type: 'boolean', default: true, describe: 'Trust a self-signed relay on first use and remember it (~/.config/mport/known_relays.json)' },
  config: { type: 'string', describe: 'Config file (JSON or YAML): relay, token (or token_file / token_env), fingerprint, and tunnels, each a spec like "web=8080" or an object with name, kind, local, remote_port, subdomain, hostname, basic_auth[_file|_env], allow_ip, deny_ip, proxy_protocol. SIGHUP re-reads it' },
  json: { type: 'boolean', describe: 'Print one JSON object per event (the same as --log-format json)' },
  'log-format': { type: 'string', choices: ['text', 'json'], describe: 'text (the default: lines for a person) or json (one object per line for a log store; fields in docs/LOGGING.md)' },
  'log-level': { type: 'string', choices: LOG_LEVELS, describe: 'error, warn, info (the default) or debug (every visitor connection, as --verbose)' },
  reconnect: { type: 'boolean', describe: 'Reconnect after the connection drops (default true; --no-reconnect to exit instead)' },
  retry: { type: 'boolean', describe: 'Also keep retrying when the relay cannot be reached at start; --no-retry: exit when a tunnel is refused instead of waiting for its address' },
  'lease-file': { type: 'boolean', default: true, describe: 'Keep the lease and the tunnels\' addresses in ~/.config/mport/leases/ so a restart gets them back (--no-lease-file: forget them on exit)' },
  verbose: { type: 'boolean', default: false, describe: 'Also print every visitor connection (failed ones are always printed)' },
  subdomain: { type: 'string', describe: 'http/tls: the name to ask for under the relay\'s domain (random when omitted)' },
  hostname: { type: 'string', describe: 'http/tls: a custom host name (its DNS must point at the relay)' },
  'basic-auth': { type: 'string', describe: 'http: user:password visitors must give (the relay keeps only a hash)' },
  'allow-ip': { type: 'string', array: true, describe: 'Only these visitor addresses/CIDRs may connect (repeatable)' },
  'deny-ip': { type: 'string', array: true, describe: 'These visitor addresses/CIDRs may not connect (repeatable)' },
  'proxy-protocol': { type: 'number', choices: [1, 2], describe: 'Send a PROXY protocol v1/v2 header to the local service' },
  ...INSPECT_FLAGS,
  transport: { type: 'string', choices: TRANSPORT_CHOICES, describe: 'How to reach the relay: auto (the default: tls, then wss, then ws, a few seconds each; remembers what worked in ~/.config/mport/transports.json), tls (only its control port), wss (WebSocket on its HTTPS port), ws (WebSocket on its HTTP port). The relay\'s certificate is checked the same way over all of them' },
  proxy: { type: 'string', describe: 'Reach the relay through a proxy: http://[user:pass@]host:port (CONNECT; ws goes as a plain HTTP request), socks5://… or socks5h://… (the proxy resolves the name). Prefer env MPORT_PROXY when it has a password: the command line is visible to other users. Default: HTTPS_PROXY, http_proxy, ALL_PROXY and NO_PROXY as curl reads them' },
  'relay-https-port': { type: 'number', describe: 'The relay\'s shared HTTPS port, for wss (default 443)' },
  'relay-http-port': { type: 'number', describe: 'The relay\'s shared HTTP port, for ws (default 80)' },
} as const

// Environment fallbacks are read explicitly (not with yargs .env()): other MPORT_* variables,
// such as the relay's MPORT_DATA_DIR, must not turn into unknown-flag errors here.
const parseArgs = () => yargs(hideBin(process.argv))
  .scriptName('mport-connect')
  .usage('$0 [http|tls] <tunnel..> [options]\n\nExpose local services through an mport relay.\n\nTunnels: 5555 | web=8080 | 5555:45555 (ask for public port 45555) | 192.168.1.20:5555 | [::1]:22\n"http 3000" gets https://<name>.<relay domain>; "tls 8443" routes TLS by SNI to a service that terminates TLS itself.\n\nAccounts: mport-connect login | logout | tokens … --api <relay API URL>\nA relay whose certificate changed on purpose: mport-connect forget <relay>')
  .command('$0 [tunnels..]', false)
  .positional('tunnels', { type: 'string', array: true, describe: 'Local ports to expose' })
  .options(OPTIONS)
  .strict()
  .middleware(lastWins, true)
  .epilogue([
    'Settings come from flags, then MPORT_RELAY / MPORT_TOKEN / MPORT_FINGERPRINT, then --config.',
    'SIGHUP re-reads --config: tunnels added, removed or changed by name, the others untouched; a file that fails the check changes nothing.',
    'Exit codes: 0 stopped by SIGINT/SIGTERM, 1 runtime failure (wrong token, certificate mismatch, no tunnel opened), 2 bad flags or config, 3 relay unreachable at start.',
  ].join('\n'))
  .fail((msg, err) => usageExit(explainUsage(msg ?? oneLine(err), [...Object.keys(OPTIONS), 'help', 'version'], hideBin(process.argv))))
  .version(packageVersion())
  .help()
  .parseSync()
/** The command line, parsed when main() starts (account commands have their own parser). */
let argv: ReturnType<typeof parseArgs>

interface Settings {
  relay: string
  token: Secret
  /** The stored login whose tunnel token is used, when no token was given. */
  login?: LoginForRelay
  tunnels: TunnelSpec[]
  fingerprint?: string
  ca?: string
  insecure: boolean
  json: boolean
  /** Lines below it are dropped: --verbose is debug. */
  logLevel: LogLevel
  reconnect: boolean
  /** true: also retry the first connection; false: do not wait for a refused tunnel's address; undefined: neither. */
  retry: boolean | undefined
  transport: TransportChoice
  /** A proxy, or `env`: HTTPS_PROXY / http_proxy / ALL_PROXY / NO_PROXY. */
  proxy: ProxyConfig | 'env'
  relayPorts: { https?: number, http?: number }
  /** The inspector of http tunnels (on by default when there is one). */
  inspect: InspectSettings
}

/** The config file, checked whole (packages/mport-connect/src/config); {} without --config. */
async function readConfig (): Promise<ClientFileConfig> {
  if (argv.config === undefined) return {}
  return validateClientConfig(await loadConfigFile(argv.config), argv.config, { env, readFile: f => readFileSync(f, 'utf8') })
}

/** The tunnel words of the command line: a leading "http", "tls" or "tcp" sets the kind of every tunnel after it. */
function tunnelsFromArgs (words: string[]): TunnelSpec[] {
  let kind: TunnelSpec['kind']
  if (['http', 'tls', 'tcp'].includes(words[0] ?? '')) kind = words.shift() as TunnelSpec['kind']
  if (words.length === 0) throw new UsageError(`no tunnel given after "${kind}": name a local port, e.g. mport-connect ${kind} 3000`)
  return words.map(w => {
    const spec: TunnelSpec = checked(`argument ${JSON.stringify(w)}`, () => ({ ...parseTunnelSpec(w) }))
    if (kind !== undefined) spec.kind = kind
    if ((kind === 'http' || kind === 'tls') && spec.remotePort !== 0) throw new UsageError(`${kind} tunnels use the relay's shared ports: drop ":${spec.remotePort}" from "${w}"`)
    return spec
  })
}

/** The per-tunnel flags, over what each tunnel (from the arguments or the file) says. */
function withTunnelFlags (specs: TunnelSpec[]): TunnelSpec[] {
  const named = argv.subdomain !== undefined || argv.hostname !== undefined
  if (named && specs.some(x => (x.kind ?? 'tcp') === 'tcp')) throw new UsageError('--subdomain and --hostname need an http or tls tunnel: mport-connect http 3000 --subdomain myapp')
  if (argv['basic-auth'] !== undefined && specs.some(x => x.kind !== 'http')) throw new UsageError('--basic-auth needs an http tunnel: mport-connect http 3000 --basic-auth user:pass')
  if (named && specs.length > 1) throw new UsageError('--subdomain/--hostname name one tunnel: give one local port with them')
  // Check the filters here, so a typo is a usage error rather than a refused tunnel.
  checked('--allow-ip/--deny-ip', () => new IpFilter({ allow: argv['allow-ip']?.map(String) ?? [], deny: argv['deny-ip']?.map(String) ?? [] }))
  if (argv['basic-auth'] !== undefined) checked('--basic-auth', () => parseBasicAuthValue(argv['basic-auth']!))
  return specs.map(x => {
    const spec = { ...x }
    if (argv.subdomain !== undefined) spec.subdomain = argv.subdomain
    if (argv.hostname !== undefined) spec.hostname = argv.hostname
    if (argv['basic-auth'] !== undefined) spec.basicAuth = argv['basic-auth']
    if (argv['allow-ip'] !== undefined) spec.allowIp = argv['allow-ip'].map(String)
    if (argv['deny-ip'] !== undefined) spec.denyIp = argv['deny-ip'].map(String)
    if (argv['proxy-protocol'] !== undefined) spec.proxyProtocol = argv['proxy-protocol'] as 1 | 2
    return spec
  })
}

/** Flags, then MPORT_* variables, then the config file; also what each reload applies. */
async function settings (): Promise<Settings> {
  const file = await readConfig()
  const where = `"%s" in ${argv.config ?? ''}`
  const pick = (flag: string | undefined, envName: string | undefined, fromFile: string | undefined): string | undefined =>
    flag ?? (envName !== undefined && env[envName] ? env[envName] : undefined) ?? fromFile
  const relay = pick(argv.relay, 'MPORT_RELAY', file.relay)
  let token = pick(argv.token, 'MPORT_TOKEN', file.token?.reveal())
  if (relay === undefined || relay === '') throw new UsageError('no relay given: use --relay host[:port] or MPORT_RELAY')
  const relaySource = argv.relay !== undefined ? `--relay ${JSON.stringify(relay)}` : env.MPORT_RELAY ? `MPORT_RELAY ${JSON.stringify(relay)}` : where.replace('%s', 'relay')
  checked(relaySource, () => relayAddress(relay))
  // No token given: the tunnel token a `mport-connect login` stored for this relay.
  let login: LoginForRelay | undefined
  if (token === undefined || token === '') {
    login = await loginForRelay(relay, env)
    token = login?.tunnel.token
  }
  if (token === undefined || token === '') throw new UsageError(`no token given: use --token (printed by mport-relay) or MPORT_TOKEN, or log in first with mport-connect login --api <relay API URL> --user <name> (no stored login for ${relayAddress(relay)})`)
  const fromArgs = argv.tunnels !== undefined && argv.tunnels.length > 0
  const listed = fromArgs ? tunnelsFromArgs(argv.tunnels!.map(String)) : file.tunnels ?? []
  if (listed.length === 0) throw new UsageError('no tunnel given: name at least one local port, e.g. mport-connect 5555')
  const tunnels = withTunnelFlags(listed)
  const fp = pick(argv.fingerprint, 'MPORT_FINGERPRINT', file.fingerprint)
  const fpSource = argv.fingerprint !== undefined ? '--fingerprint' : env.MPORT_FINGERPRINT ? 'MPORT_FINGERPRINT' : where.replace('%s', 'fingerprint')
  const ca = argv.ca ?? file.ca
  let caPem: string | undefined
  if (ca !== undefined) {
    try {
      caPem = readFileSync(ca, 'utf8')
    } catch (err) {
      throw new UsageError(`cannot read CA file ${ca}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`)
    }
  }
  return {
    relay,
    token: new Secret(token),
    ...(login !== undefined ? { login } : {}),
    tunnels,
    ...(fp !== undefined ? { fingerprint: checked(fpSource, () => parseFingerprint(fp)) } : {}),
    ...(caPem !== undefined ? { ca: caPem } : {}),
    insecure: (argv.insecure ?? file.insecure) === true,
    json: jsonLines(argv.json ?? file.json, argv['log-format'] as 'json' | 'text' | undefined ?? file.logFormat),
    logLevel: argv.verbose ? 'debug' : argv['log-level'] as LogLevel | undefined ?? file.logLevel ?? 'info',
    reconnect: (argv.reconnect ?? file.reconnect) !== false,
    retry: argv.retry ?? file.retry,
    ...transportSettings(file),
    inspect: checked('--inspect-addr/--inspect-body-limit', () => inspectSettings({ inspect: argv.inspect ?? file.inspect, addr: argv['inspect-addr'] ?? file.inspectAddr, bodyLimit: argv['inspect-body-limit'] ?? file.inspectBodyLimit }, tunnels)),
  }
}

/**
 * The way to the relay: --transport (or `transport`), the proxy (--proxy, then MPORT_PROXY, then
 * `proxy` in the file, then the environment as curl reads it) and the relay's shared ports.
 */
function transportSettings (file: ClientFileConfig): Pick<Settings, 'transport' | 'proxy' | 'relayPorts'> {
  const proxyText = argv.proxy ?? (env.MPORT_PROXY ? env.MPORT_PROXY : undefined)
  const proxySource = argv.proxy !== undefined ? '--proxy' : 'MPORT_PROXY'
  const ports: { https?: number, http?: number } = {}
  for (const [flag, key, value] of [['--relay-https-port', 'https', argv['relay-https-port'] ?? file.relayHttpsPort], ['--relay-http-port', 'http', argv['relay-http-port'] ?? file.relayHttpPort]] as const) {
    if (value === undefined) continue
    if (!Number.isInteger(value) || value < 1 || value > 65535) throw new UsageError(`${flag}: ${value} is not a port number (1-65535)`)
    ports[key] = value
  }
  return {
    transport: argv.transport as TransportChoice | undefined ?? file.transport ?? 'auto',
    proxy: proxyText !== undefined ? checked(proxySource, () => parseProxyUrl(proxyText, proxySource)) : file.proxy ?? 'env',
    relayPorts: ports,
  }
}

/** " over wss via proxy http://…" for the connected line (never the proxy's password); nothing for the direct TLS port. */
function overTransport (i: { transport: string, proxy?: string }): string {
  return `${i.transport !== 'tls' ? ` over ${i.transport}` : ''}${i.proxy !== undefined ? ` via proxy ${i.proxy}` : ''}`
}

/** Whether to print JSON lines: --json (or `json`) and --log-format json (or `log_format`) say the same; text and json together is a usage error. */
function jsonLines (json: boolean | undefined, format: 'json' | 'text' | undefined): boolean {
  if (json === true && format === 'text') throw new UsageError('--json is --log-format json: give one of them')
  return json === true || format === 'json'
}

/** What the user can do about a failure, when there is something: a changed certificate says where the pinned value lives. */
function hintFor (err: unknown, s: Settings): string | undefined {
  if (!(err instanceof MportError) || err.code !== 'MPORT_ERR_CERT_MISMATCH') return undefined
  if (s.fingerprint !== undefined) return 'the expected fingerprint is the one given with --fingerprint, MPORT_FINGERPRINT or the config: ask the relay\'s operator for the new one'
  return `the remembered fingerprint is in ${KnownRelays.default().path}: if the relay's certificate was changed on purpose, run mport-connect forget ${relayAddress(s.relay)}; if not, someone may be intercepting the connection`
}

async function main (): Promise<void> {
  argv = parseArgs()
  // A process of its own: set the forwarding GC tuning (process-wide V8 flags, see the module);
  // its read meter goes to the data path through the options.
  const gc = tuneGcForForwarding()
  let s: Settings
  try {
    s = await settings()
  } catch (err) {
    if (err instanceof UsageError || (err instanceof MportError && err.code === 'MPORT_ERR_INVALID_CONFIG')) usageExit(oneLine(err))
    throw err
  }
  // The token and basic-auth passwords this process holds are masked in every line.
  // http tunnels' exchanges recorded (served once the client exists); on a terminal, the status screen, which shows the event lines itself.
  const inspector = s.inspect.enabled ? createInspector(s.inspect) : undefined
  let inspectUrl: string | undefined
  /** The way to the relay in use, for the status screen: set on each connection (undefined: straight to the TLS control port). */
  let inUse: string | undefined
  const screen = process.stdout.isTTY === true && !s.json ? new StatusDisplay({ relay: s.relay, version: packageVersion(), transport: () => inUse, inspector, inspectUrl: () => inspectUrl, out: process.stdout }) : undefined
  if (screen !== undefined) process.on('exit', () => screen.stop())
  const out = createLogger({ format: s.json ? 'json' : 'text', level: s.logLevel, ...(screen !== undefined ? { out: screen.log, errOut: screen.log } : {}), secrets: [s.token.reveal(), ...s.tunnels.flatMap(x => x.basicAuth !== undefined ? [x.basicAuth, x.basicAuth.slice(x.basicAuth.indexOf(':') + 1)] : [])] })
  if (s.login !== undefined) {
    const l = s.login
    out.event('login', `using the login of ${l.user} at ${l.api} (tunnel token "${l.tunnel.name}" for ${l.tunnel.relay}, from ${l.file})`, { api: l.api, user: l.user, relay: l.tunnel.relay, tokenId: l.tunnel.id, tokenName: l.tunnel.name, credentials: l.file })
  }
  let leaseFile = argv['lease-file'] ? LeaseFile.for(s.relay, s.tunnels, { onWarning: msg => out.log('warn', 'warning', `warning: ${msg}`, { message: msg }) }) : undefined
  if (s.insecure) out.log('warn', 'warning', 'WARNING: --insecure: the relay certificate is NOT verified; anyone on the path can read and change this tunnel. Use --fingerprint instead.', { insecure: true })
  const client = new Client({
    relay: s.relay,
    token: s.token.reveal(),
    tunnels: s.tunnels,
    ...(s.fingerprint !== undefined ? { fingerprint: s.fingerprint } : {}),
    ...(s.ca !== undefined ? { ca: s.ca } : {}),
    insecure: s.insecure,
    ...(argv.tofu && !s.insecure && s.fingerprint === undefined ? { knownRelays: KnownRelays.default() } : {}),
    reconnect: s.reconnect,
    retryInitial: s.retry === true,
    ...(s.retry === false ? { tunnelRetry: false as const } : {}),
    ...(leaseFile !== undefined ? { leaseStore: leaseFile } : {}),
    onFreshRead: gc.onFreshRead,
    ...(inspector !== undefined ? { onHttpVisitor: inspector.tap } : {}),
    transport: s.transport,
    relayPorts: s.relayPorts,
    proxy: s.proxy,
    ...(s.transport === 'auto' ? { transportMemory: TransportMemory.default() } : {}),
  })
  if (inspector !== undefined) {
    try {
      const running = await serveInspector(inspector, s.inspect, () => ({ statuses: client.tunnels, specs: s.tunnels }))
      inspectUrl = running.url
      out.event('inspect', `inspector: ${running.url}${running.movedFrom !== undefined ? ` (port ${running.movedFrom} was taken)` : ''}`, { url: running.url, ...(running.movedFrom !== undefined ? { movedFrom: running.movedFrom } : {}) })
      if (running.exposed) out.log('warn', 'warning', `warning: the inspector on ${running.url} shows request bodies and can replay requests to anyone who reaches that address`, { url: running.url })
    } catch (err) {
      out.log('warn', 'warning', `warning: the inspector cannot listen on ${s.inspect.host}:${s.inspect.port}: ${oneLine(err)}; the inspector page is off`, { message: (err as Error).message })
    }
  }
  screen?.start(client)
  let started = false
  let stopping = false
  client.on('connected', i => {
    inUse = i.transport === 'tls' && i.proxy === undefined ? undefined : `${i.transport}${i.proxy !== undefined ? ` via proxy ${i.proxy}` : ''}`
    out.setContext(i.session !== undefined ? { session: i.session } : {}) // every line while connected names the relay's session
    out.event('connected', `connected to ${s.relay}${i.resumed ? ' (lease resumed)' : ''}${i.trust === 'tofu-new' ? ` — first use: trusting certificate ${i.fingerprint}` : ''}${overTransport(i)}`, { relay: s.relay, ...i })
  })
  client.on('faster-transport', i => out.event('faster-transport', `the ${i.transport} transport works again (connected over ${i.current}): the next connection uses it`, { ...i }))
  const warned = new Set<string>()
  client.on('tunnel', t => {
    out.event('tunnel', `${t.url} -> ${t.local}${t.name !== String(t.local.split(':').pop()) ? ` (${t.name})` : ''}`, { tunnel: t.name, name: t.name, url: t.url, local: t.local, remotePort: t.remotePort })
    const spec = s.tunnels.find(x => x.name === t.name)
    const hint = spec !== undefined && (spec.kind ?? 'tcp') === 'tcp' && spec.allowIp === undefined ? riskyPortHint(spec.localPort) : undefined
    if (hint !== undefined && !warned.has(t.name)) {
      warned.add(t.name)
      out.log('warn', 'warning', `  note: ${hint}`, { tunnel: t.name, name: t.name, hint })
    }
  })
  client.on('tunnel-error', (t, err) => {
    out.event('tunnel-error', `tunnel ${t.name} (${t.local}) refused: ${oneLine(err)}`, { tunnel: t.name, name: t.name, local: t.local, code: err.code, message: err.message })
    // A tunnel that waited for its address and is now refused for good may leave nothing to do.
    if (started && !stopping && waited.has(t.id)) exitIfHopeless()
  })
  const waited = new Set<number>()
  client.on('tunnel-waiting', (t, err, r) => {
    waited.add(t.id)
    out.event('tunnel-waiting', `tunnel ${t.name} (${t.local}) waiting for ${t.waitingFor}: ${oneLine(err)}; asking again in ${(r.delayMs / 1000).toFixed(1)} s`,
      { tunnel: t.name, name: t.name, local: t.local, waitingFor: t.waitingFor, code: err.code, message: err.message, attempt: r.attempt, delayMs: r.delayMs })
  })
  client.on('visitor-refused', (t, err, count) => out.event('visitor-refused', `tunnel ${t.name} (${t.local}): ${count === 1 ? 'a visitor was' : `${count} visitors were`} refused by the relay: ${oneLine(err)}`,
    { tunnel: t.name, name: t.name, local: t.local, code: err.code, message: err.message, count }))
  const stray = strayReporter(out)
  client.on('stray', frame => { if (out.enabled('debug')) stray('relay', frame) })
  client.on('warning', err => out.log('warn', 'warning', `warning: ${oneLine(err)}`, { message: err.message }))
  client.on('disconnected', err => {
    if (stopping) return // our own close
    out.log('warn', 'disconnected', `disconnected: ${oneLine(err)}`, { code: err instanceof MportError ? err.code : undefined, message: err.message })
    out.setContext({})
    // Without --reconnect this was the last connection; let a fatal 'error' print first.
    if (started && !s.reconnect) setImmediate(() => process.exit(ExitCode.Failure))
  })
  client.on('reconnecting', r => out.event('reconnecting', `reconnecting in ${(r.delayMs / 1000).toFixed(1)} s (attempt ${r.attempt}): ${oneLine(r.error)}`, { delayMs: r.delayMs, attempt: r.attempt, message: r.error.message }))
  client.on('connection', v => { if (out.enabled('debug')) out.log('debug', 'connection', `${v.tunnel}: connection from ${v.remoteAddress}:${v.remotePort}`, { ...v }) })
  client.on('connection-closed', (v, st) => {
    const level = st.error === undefined ? 'debug' : 'info'
    if (!out.enabled(level)) return
    const line = `${v.tunnel}: ${v.remoteAddress}:${v.remotePort} closed (${formatBytes(st.bytesIn)} in, ${formatBytes(st.bytesOut)} out)${st.error ? `: ${oneLine(st.error)}` : ''}`
    out.log(level, 'connection-closed', line, { ...v, ...st, error: st.error?.message })
  })
  client.on('error', err => {
    // Before start() settles, its rejection reports the error; after, it ends the process.
    if (!started || stopping) return
    out.error(err, 'mport-connect', hintFor(err, s))
    process.exit(ExitCode.Failure)
  })

  /** Every tunnel refused for good (none open, none waiting for its address): nothing left to do. */
  const exitIfHopeless = (): void => {
    if (!client.tunnels.every(t => t.state === 'refused')) return
    stopping = true
    out.error(new Error(client.tunnels.length === 1 ? 'the only tunnel was refused' : 'no tunnel could be opened'), 'mport-connect')
    client.close().finally(() => process.exit(ExitCode.Failure))
  }

  const stop = (signal: string): void => {
    if (stopping) process.exit(ExitCode.Ok) // a second signal: do not wait
    stopping = true
    out.event('stopping', `${signal}: closing`, { signal })
    client.close().then(() => process.exit(ExitCode.Ok), () => process.exit(ExitCode.Failure))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))

  /**
   * SIGHUP: the config checked whole again, then its tunnels applied by name (Client.setTunnels);
   * a file that fails the check changes nothing. Settings of the connection itself need a restart.
   */
  const reload = async (): Promise<void> => {
    if (argv.config === undefined) {
      out.log('warn', 'reload-rejected', 'reload: started without --config, nothing to re-read', { reason: 'no config file' })
      return
    }
    let next: Settings
    try {
      next = await settings()
    } catch (err) {
      const reason = err instanceof UsageError ? err.message : oneLine(err)
      out.log('warn', 'reload-rejected', `reload: ${argv.config} rejected, the running tunnels stay: ${reason}`, { file: argv.config, reason })
      return
    }
    // Secrets the new file brings (a token, basic-auth passwords) are masked like the first ones.
    out.secret(next.token.reveal())
    for (const x of next.tunnels) if (x.basicAuth !== undefined) { out.secret(x.basicAuth); out.secret(x.basicAuth.slice(x.basicAuth.indexOf(':') + 1)) }
    // What the running connection was made with; compared as data (a proxy password is never printed, only the key).
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
    const restart = [
      next.relay !== s.relay && 'relay',
      !next.token.equals(s.token) && 'token',
      ...(['fingerprint', 'ca', 'insecure', 'json', 'reconnect', 'retry', 'transport', 'proxy', 'inspect'] as const).map(k => !same(next[k], s[k]) && k),
      !same(next.relayPorts, s.relayPorts) && 'relay_https_port/relay_http_port',
    ].filter((k): k is string => k !== false)
    // The log level is the one setting besides the tunnels that applies live.
    if (next.logLevel !== s.logLevel) { out.setLevel(next.logLevel); s.logLevel = next.logLevel }
    if (restart.length > 0) out.log('warn', 'warning', restartLine(restart), { restartNeeded: restart })
    // The lease file follows the tunnel list, so a restart with this file finds the lease.
    const nextLease = leaseFile === undefined ? undefined : LeaseFile.for(s.relay, next.tunnels, { onWarning: msg => out.log('warn', 'warning', `warning: ${msg}`, { message: msg }) })
    const moved = nextLease !== undefined && nextLease.path !== leaseFile?.path
    const changes = client.setTunnels(next.tunnels, moved ? { leaseStore: nextLease } : {})
    if (moved) leaseFile = nextLease
    s.tunnels = next.tunnels
    out.event('reload', reloadLine(changes), { file: argv.config, ...changes, restartNeeded: restart })
  }
  // One reload at a time, in the order of the signals.
  let reloads = Promise.resolve()
  process.on('SIGHUP', () => {
    reloads = reloads.then(() => stopping ? undefined : reload())
      .catch((err: unknown) => out.log('warn', 'reload-rejected', `reload: failed, the running tunnels stay: ${oneLine(err)}`, { reason: oneLine(err) }))
  })

  try {
    await client.start()
  } catch (err) {
    if (stopping) return
    out.error(err, 'mport-connect', hintFor(err, s))
    process.exit(err instanceof MportError && err.code === 'MPORT_ERR_RELAY_UNREACHABLE' ? ExitCode.Unreachable : ExitCode.Failure)
  }
  started = true
  exitIfHopeless()
}

// No top-level await: the same source also bundles to CommonJS for the single executable (scripts/bundle-client.ts).
const run = ACCOUNT_COMMANDS.includes(process.argv[2] ?? '') ? connectAccount(process.argv.slice(2)).then(code => process.exit(code)) : main()
run.catch(err => {
  process.stderr.write(`mport-connect: ${oneLine(err)}\n`)
  process.exit(ExitCode.Failure)
})
