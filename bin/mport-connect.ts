#!/usr/bin/env node
/** mport-connect: yargs options (and an optional config file) → Client; status output. */
import { readFileSync } from 'node:fs'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import {
  Client, KnownRelays, parseTunnelSpec, parseFingerprint, loadConfigFile, checkKnownKeys, Secret,
  createPrinter, oneLine, formatBytes, ExitCode, MportError, type TunnelSpec,
} from '../src/index.js'

const CONFIG_KEYS = ['relay', 'token', 'tunnels', 'fingerprint', 'ca', 'insecure', 'json', 'reconnect', 'retry'] as const

const argv = yargs(hideBin(process.argv))
  .scriptName('mport-connect')
  .usage('$0 <tunnel..> [options]\n\nExpose local TCP services through an mport relay.\n\nTunnels: 5555 | web=8080 | 5555:45555 (ask for public port 45555) | 192.168.1.20:5555 | [::1]:22')
  .env('MPORT')
  .command('$0 [tunnels..]', false)
  .positional('tunnels', { type: 'string', array: true, describe: 'Local ports to expose' })
  .options({
    relay: { type: 'string', describe: 'Relay address host[:port] (env MPORT_RELAY)' },
    token: { type: 'string', describe: 'Access token printed by the relay (env MPORT_TOKEN)' },
    fingerprint: { type: 'string', describe: 'Pin the relay certificate: sha256:<hex> as the relay prints it' },
    ca: { type: 'string', describe: 'Trust this CA certificate file (PEM) for the relay' },
    insecure: { type: 'boolean', describe: 'Do not verify the relay certificate (development only!)' },
    tofu: { type: 'boolean', default: true, describe: 'Trust a self-signed relay on first use and remember it (~/.config/mport/known_relays.json)' },
    config: { type: 'string', describe: 'Config file (JSON or YAML) with relay, token, tunnels, …' },
    json: { type: 'boolean', describe: 'Print one JSON object per event' },
    reconnect: { type: 'boolean', default: true, describe: 'Reconnect after the connection drops' },
    retry: { type: 'boolean', default: false, describe: 'Keep retrying when the relay cannot be reached at start' },
  })
  .strict()
  .epilogue('Exit codes: 0 stopped by a signal, 1 runtime failure (wrong token, certificate mismatch), 2 bad flags or config, 3 relay unreachable at start.')
  .fail((msg, err) => {
    process.stderr.write(`mport-connect: ${msg ?? oneLine(err)}\nRun mport-connect --help for usage.\n`)
    process.exit(ExitCode.Usage)
  })
  .version('0.1.0')
  .help()
  .parseSync()

async function settings (): Promise<{ relay: string, token: Secret, tunnels: TunnelSpec[], fingerprint?: string, ca?: string, insecure: boolean, json: boolean, reconnect: boolean, retry: boolean }> {
  let file: Record<string, unknown> = {}
  if (argv.config !== undefined) {
    file = await loadConfigFile(argv.config)
    checkKnownKeys(file, CONFIG_KEYS, argv.config)
  }
  const pick = <T>(flag: T | undefined, key: string): T | undefined => flag ?? (file[key] as T | undefined)
  const relay = pick(argv.relay, 'relay')
  const token = pick(argv.token, 'token')
  const tunnelWords = (argv.tunnels?.length ? argv.tunnels : (file.tunnels as unknown[] | undefined)) ?? []
  if (relay === undefined) throw usage('no relay given: use --relay host[:port] or MPORT_RELAY')
  if (token === undefined) throw usage('no token given: use --token (printed by mport-relay) or MPORT_TOKEN')
  if (tunnelWords.length === 0) throw usage('no tunnel given: name at least one local port, e.g. mport-connect 5555')
  const tunnels = tunnelWords.map(w => parseTunnelSpec(String(w)))
  const fp = pick(argv.fingerprint, 'fingerprint')
  const ca = pick(argv.ca, 'ca')
  return {
    relay: String(relay),
    token: new Secret(String(token)),
    tunnels,
    ...(fp !== undefined ? { fingerprint: parseFingerprint(String(fp)) } : {}),
    ...(ca !== undefined ? { ca: readFileSync(String(ca), 'utf8') } : {}),
    insecure: pick(argv.insecure, 'insecure') === true,
    json: pick(argv.json, 'json') === true,
    reconnect: pick(argv.reconnect, 'reconnect') !== false,
    retry: pick(argv.retry, 'retry') === true,
  }
}

class UsageError extends Error {}
function usage (msg: string): UsageError { return new UsageError(msg) }

async function main (): Promise<void> {
  const s = await settings()
  const out = createPrinter(s.json)
  if (s.insecure) out.event('warning', 'WARNING: --insecure: the relay certificate is NOT verified; anyone on the path can read and change this tunnel. Use --fingerprint instead.', { insecure: true })
  const client = new Client({
    relay: s.relay,
    token: s.token.reveal(),
    tunnels: s.tunnels,
    ...(s.fingerprint !== undefined ? { fingerprint: s.fingerprint } : {}),
    ...(s.ca !== undefined ? { ca: s.ca } : {}),
    insecure: s.insecure,
    ...(argv.tofu && !s.insecure && s.fingerprint === undefined ? { knownRelays: KnownRelays.default() } : {}),
    reconnect: s.reconnect,
    retryInitial: s.retry,
  })
  client.on('connected', i => out.event('connected', `connected to ${s.relay}${i.resumed ? ' (lease resumed)' : ''}${i.trust === 'tofu-new' ? ` — first use: trusting certificate ${i.fingerprint}` : ''}`, { relay: s.relay, ...i }))
  client.on('tunnel', t => out.event('tunnel', `${t.url} -> ${t.local}${t.name !== String(t.local.split(':').pop()) ? ` (${t.name})` : ''}`, { name: t.name, url: t.url, local: t.local, remotePort: t.remotePort }))
  client.on('tunnel-error', (t, err) => out.event('tunnel-error', `tunnel ${t.name} (${t.local}) refused: ${oneLine(err)}`, { name: t.name, code: err.code, message: err.message }))
  client.on('disconnected', err => out.event('disconnected', `disconnected: ${oneLine(err)}`, { message: err.message }))
  client.on('reconnecting', r => out.event('reconnecting', `reconnecting in ${(r.delayMs / 1000).toFixed(1)} s (attempt ${r.attempt}): ${oneLine(r.error)}`, { delayMs: r.delayMs, attempt: r.attempt, message: r.error.message }))
  client.on('connection', v => out.event('connection', `${v.tunnel}: connection from ${v.remoteAddress}:${v.remotePort}`, { ...v }))
  client.on('connection-closed', (v, st) => {
    const line = `${v.tunnel}: ${v.remoteAddress}:${v.remotePort} closed (${formatBytes(st.bytesIn)} in, ${formatBytes(st.bytesOut)} out)${st.error ? `: ${oneLine(st.error)}` : ''}`
    out.event('connection-closed', line, { ...v, ...st, error: st.error?.message })
  })
  client.on('error', () => {}) // fatal errors are reported by start()/the exit path below

  const stop = (signal: string): void => {
    out.event('stopping', `${signal}: closing`, { signal })
    client.close().then(() => process.exit(ExitCode.Ok), () => process.exit(ExitCode.Failure))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))

  try {
    await client.start()
  } catch (err) {
    out.error(err, 'mport-connect')
    process.exit(err instanceof MportError && err.code === 'MPORT_ERR_RELAY_UNREACHABLE' ? ExitCode.Unreachable : ExitCode.Failure)
  }
  if (client.tunnels.every(t => t.error !== undefined)) {
    out.error(new Error('no tunnel could be opened'), 'mport-connect')
    await client.close()
    process.exit(ExitCode.Failure)
  }
  client.on('close', () => process.exit(ExitCode.Failure)) // ended by a fatal error after start
}

main().catch(err => {
  process.stderr.write(`mport-connect: ${oneLine(err)}\n`)
  process.exit(err instanceof UsageError || (err instanceof MportError && err.code === 'MPORT_ERR_INVALID_CONFIG') ? ExitCode.Usage : ExitCode.Failure)
})
