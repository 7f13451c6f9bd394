#!/usr/bin/env node
/** mport-relay: yargs options → Relay; signal handling. No protocol logic here. */
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
// The relay's own modules, not the package index (which would also load the client side).
import { startRelayService, logRelayEvents, logApiRequests, relaySecrets, settingFlags, readSettingsFile, settingProblem, resolveSettings, printableSettings, serviceOptions, SETTING_ENV, LIST_SETTINGS, SETTING_NAMES, isLive, snakeKey, flagValues, fileOnlyValues, givenFlags, reloadSettings, type FileSettings, type RelayServiceOptions, type RelaySettings, type ReloadOutcome } from 'mport-relay'
import { DEFAULT_CONTROL_PORT } from 'mport/relay'
import { createLogger, oneLine, ExitCode, lastValueWins, packageVersion, explainUsage, explainListenError, type LogFormat, type LogLevel } from 'mport/cli'
import { InvalidConfigError, MportError, UnavailableError } from 'mport/errors'
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
const lastWins = lastValueWins(...LIST_SETTINGS)

/** The flags: the settings table (packages/mport-relay/src/config/relay-settings.ts) plus --config. */
const OPTIONS = {
  ...settingFlags(),
  config: { type: 'string', describe: 'Config file (.yaml, .yml or .json): every flag is a key in snake_case (data_dir; the flag\'s own data-dir works too); token_file / token_env and database_file / database_env read those secrets from a file (trimmed) or a named environment variable' },
} as const

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
let fileSettings: FileSettings | undefined
if (configFile !== undefined) {
  try {
    fileSettings = await readSettingsFile(configFile, env)
  } catch (err) {
    if (err instanceof MportError && err.code === 'MPORT_ERR_INVALID_CONFIG') usageExit(oneLine(err))
    throw err
  }
}
const argv = yargs(args)
  .scriptName('mport-relay')
  .usage('$0 [options]\n\nRun an mport relay: clients connect to it over TLS and get public ports for their local services.\n\nAccounts: mport-relay users add|list|disable|enable|token … (see mport-relay users --help)\nThe effective config (flags, environment and --config), secrets as ***: mport-relay config print [--config file] [flags] [--json]')
  .options(OPTIONS)
  .config(flagValues(fileSettings))
  .strict()
  .middleware(lastWins, true)
  .check(a => {
    const problem = settingProblem(a, { args, ...(fileSettings !== undefined ? { file: fileSettings } : {}) }, env)
    if (problem !== undefined) throw new Error(problem.message)
    return true
  })
  .epilogue([
    `Settings come from flags, then ${SETTING_ENV.join(' / ')}, then --config.`,
    `Reload: SIGHUP (or POST /v1/admin/reload, admins only) re-reads --config and applies ${SETTING_NAMES.filter(isLive).map(snakeKey).join(', ')} to the running relay without dropping what is still allowed; every other key (ports, host, port, data_dir, database, certificates, domain…) applies at the next restart, and the reload line names it. A file that fails validation is rejected whole; the running config stays.`,
    'Exit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime failure (e.g. the port is taken), 2 bad flags or config.',
  ].join('\n'))
  .fail((msg, err) => usageExit(explainUsage(msg ?? oneLine(err), [...Object.keys(OPTIONS), 'help', 'version'], args)))
  .version(packageVersion())
  .help()
  .parseSync()

const settings = resolveSettings({ ...argv, ...fileOnlyValues(fileSettings) }, env)
const { ports, 'public-host': publicHost, token: givenToken } = settings

if (printConfig) {
  const shown = printableSettings(settings)
  // Flat scalars only: JSON strings are valid YAML scalars, so no YAML library is needed here.
  process.stdout.write(settings.json ? `${JSON.stringify(shown, null, 2)}\n` : Object.entries(shown).map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`).join(''))
  process.exit(ExitCode.Ok)
}

if (settings.json && settings['log-format'] === 'text') usageExit('--json is --log-format json: give one of them')
// JSON lines when stdout is not a terminal (journald, docker logs); --verbose is --log-level debug.
const out = createLogger({
  format: settings.json ? 'json' : settings['log-format'] as LogFormat,
  level: settings.verbose ? 'debug' : settings['log-level'] as LogLevel,
  timestamps: true,
  secrets: relaySecrets(settings),
})

/** The settings in force: a reload (SIGHUP, POST /v1/admin/reload) replaces the live ones. */
let running: RelaySettings = settings

async function main (): Promise<void> {
  // SIGHUP re-reads --config (its default action would end the process); POST /v1/admin/reload does the same.
  let reload: (() => Promise<ReloadOutcome>) | undefined
  process.on('SIGHUP', () => {
    if (reload === undefined) out.log('warn', 'reload-rejected', `SIGHUP: ${configFile === undefined ? 'started without --config: nothing to reload' : 'still starting: reload ignored'}`, {})
    else reload().catch(() => {}) // logged by reload
  })
  let opts: RelayServiceOptions
  try {
    opts = serviceOptions(settings, { version: packageVersion(), onFreshRead: gc.onFreshRead, onAcmeLog: line => out.event('acme', line, {}), onDownloadsLog: line => out.event('client-executable', line, {}) })
  } catch (err) {
    if (err instanceof MportError && err.code === 'MPORT_ERR_INVALID_CONFIG') usageExit(oneLine(err))
    throw err
  }
  if (opts.api !== undefined) {
    opts.api.reload = async () => {
      if (configFile === undefined) throw new UnavailableError('this relay was started without --config: there is no file to reload')
      if (reload === undefined) throw new UnavailableError('the relay is still starting')
      const { line, changed, restartNeeded } = await reload()
      return { line, changed, restartNeeded }
    }
  }
  if (opts.api !== undefined) opts.api.onResponse = logApiRequests(out) // debug below 400
  const cert = opts.cert
  const service = await startRelayService(opts)
  if (configFile !== undefined) {
    const file = configFile
    reload = async () => {
      try {
        const outcome = await reloadSettings(service, running, { file, flags: givenFlags(argv, args), env })
        running = outcome.settings
        for (const secret of relaySecrets(running)) out.secret(secret) // a token or password the reload brought
        out.setLevel(running.verbose ? 'debug' : running['log-level'] as LogLevel)
        out.event('reloaded', outcome.line, { file, changed: outcome.changed, restartNeeded: outcome.restartNeeded, ...outcome.result })
        return outcome
      } catch (err) {
        const e = err instanceof MportError ? err : new InvalidConfigError(file, oneLine(err))
        out.log('warn', 'reload-rejected', `config reload from ${file} rejected, the running config stays: ${oneLine(e)}`, { file, code: e.code, message: e.message })
        throw e
      }
    }
  }
  const { relay, data, token } = service
  const fp = service.fingerprint
  out.secret(token)
  logRelayEvents(relay, out, { intervalMs: REFUSED_LOG_INTERVAL_MS })

  const addr = relay.address // startRelayService has started it
  const controlAddr = `${publicHost}${addr.port === DEFAULT_CONTROL_PORT ? '' : `:${addr.port}`}`
  // The token is shown in full only when it was just generated (the operator has to learn it);
  // after that it stays in its file, and a token from a flag or the environment is never echoed.
  const showToken = data.tokenCreated && givenToken === undefined
  const tokenLine = givenToken !== undefined ? `(given with --token, MPORT_TOKEN or ${configFile ?? '--config'})` : showToken ? token : `(in ${data.tokenFile})`
  const tokenArg = showToken ? token : givenToken !== undefined ? '$MPORT_TOKEN' : `$(cat ${data.tokenFile})`
  const connectCmd = `npx mport-connect 5555 --relay ${controlAddr} --token ${tokenArg}${cert === undefined ? ` --fingerprint ${fp}` : ''}`
  // A generated token is shown once, on the operator's screen (text); a log line (JSON) names its file instead.
  const listening = (banner: string[], fields: Record<string, unknown>): void => {
    if (showToken && out.announce(banner.join('\n'))) return
    const hide = (s: string): string => showToken ? s.replace(`token:       ${token}`, `token:       (new, in ${data.tokenFile})`).replaceAll(token, `$(cat ${data.tokenFile})`) : s
    out.event('listening', hide(banner.join('\n')), { ...fields, connect: hide(connectCmd) })
  }
  listening([
    `mport relay listening on ${addr.address}:${addr.port} (public ports ${ports} on ${settings['bind-host']})`,
    `  certificate: ${settings.cert ?? `self-signed${data.certCreated ? ' (new)' : ''} in ${data.dir}`}, fingerprint ${fp}`,
    `  token:       ${tokenLine}`,
    ...(relay.httpAddress !== undefined || relay.httpsAddress !== undefined ? [`  web:         ${settings.domain} on ${[relay.httpAddress !== undefined ? `HTTP ${relay.httpAddress.port}` : '', relay.httpsAddress !== undefined ? `HTTPS ${relay.httpsAddress.port}` : ''].filter(Boolean).join(', ')}`] : []),
    ...(service.apiAddress !== undefined ? [`  api:         http://${service.apiAddress.address}:${service.apiAddress.port}/docs`] : []),
    ...(service.opsAddress !== undefined ? [`  ops:         http://${service.opsAddress.address}:${service.opsAddress.port}/metrics (and /healthz, /readyz)`] : []),
    '  connect a local port with:',
    `    ${connectCmd}`,
  ], { address: addr.address, port: addr.port, publicHost, ports, fingerprint: fp, dataDir: data.dir, tokenFile: data.tokenFile, connect: connectCmd, ...(relay.httpAddress !== undefined ? { httpPort: relay.httpAddress.port } : {}), ...(relay.httpsAddress !== undefined ? { httpsPort: relay.httpsAddress.port } : {}), ...(service.apiAddress !== undefined ? { apiPort: service.apiAddress.port } : {}), ...(service.opsAddress !== undefined ? { opsHost: service.opsAddress.address, opsPort: service.opsAddress.port } : {}) })

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) process.exit(ExitCode.Ok) // a second signal: do not wait
    stopping = true
    out.event('stopping', `${signal}: closing, letting open connections drain for up to ${running['drain-timeout']} s (again to force)`, { signal })
    service.close(running['drain-timeout'] * 1000).then(() => {
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
    { flag: '--port', port: settings.port, hostFlag: '--host', host: settings.host },
    { flag: '--http-port', port: settings['http-port'], hostFlag: '--bind-host', host: settings['bind-host'] },
    { flag: '--https-port', port: settings['https-port'], hostFlag: '--bind-host', host: settings['bind-host'] },
    { flag: '--api-port', port: settings['api-port'], hostFlag: '--api-host', host: settings['api-host'] },
    { flag: '--ops-port', port: settings['ops-port'], hostFlag: '--ops-host', host: settings['ops-host'] },
  ])
  out.error(listenLine !== undefined ? new Error(listenLine) : err, 'mport-relay')
  process.exit(ExitCode.Failure)
})
