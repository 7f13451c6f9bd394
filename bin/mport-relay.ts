#!/usr/bin/env node
/** mport-relay: yargs options → Relay; signal handling. No protocol logic here. */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import {
  Relay, StaticTokens, prepareRelayData, defaultDataDir, parsePortRange, fingerprint as certFingerprint,
  createPrinter, oneLine, ExitCode, DEFAULT_CONTROL_PORT, formatBytes,
} from '../src/index.js'

const argv = yargs(hideBin(process.argv))
  .scriptName('mport-relay')
  .usage('$0 [options]\n\nRun an mport relay: clients connect to it over TLS and get public ports for their local services.')
  .env('MPORT')
  .options({
    host: { type: 'string', default: '0.0.0.0', describe: 'Address the control listener binds to' },
    port: { type: 'number', default: DEFAULT_CONTROL_PORT, describe: 'Control port clients connect to (TLS)' },
    'public-host': { type: 'string', describe: 'Host name clients and visitors use to reach this relay (default: this machine\'s host name)' },
    'bind-host': { type: 'string', default: '0.0.0.0', describe: 'Address public tunnel ports bind to' },
    ports: { type: 'string', default: '20000-29999', describe: 'Range of public ports tunnels may use' },
    'data-dir': { type: 'string', describe: 'Where the generated certificate and token live (default ~/.mport, or $MPORT_DATA_DIR)' },
    cert: { type: 'string', describe: 'TLS certificate (PEM) instead of the generated self-signed one' },
    key: { type: 'string', describe: 'TLS private key (PEM) for --cert' },
    token: { type: 'string', describe: 'Access token clients must present (default: generated and stored in the data dir)' },
    'lease-grace': { type: 'number', default: 120, describe: 'Seconds a disconnected client\'s ports are held for it' },
    'drain-timeout': { type: 'number', default: 10, describe: 'Seconds open connections may drain on SIGTERM/SIGINT' },
    json: { type: 'boolean', default: false, describe: 'Print one JSON object per event' },
  })
  .strict()
  .check(a => {
    if ((a.cert === undefined) !== (a.key === undefined)) throw new Error('--cert and --key go together')
    parsePortRange(a.ports)
    if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port ${a.port} is not a port number`)
    return true
  })
  .epilogue('Exit codes: 0 stopped by a signal, 1 runtime failure, 2 bad flags.')
  .fail((msg, err, y) => {
    process.stderr.write(`${y.help === undefined ? '' : ''}mport-relay: ${msg ?? oneLine(err)}\nRun mport-relay --help for usage.\n`)
    process.exit(ExitCode.Usage)
  })
  .version('0.1.0')
  .help()
  .parseSync()

const out = createPrinter(argv.json)

async function main (): Promise<void> {
  const publicHost = argv['public-host'] ?? os.hostname()
  const dataDir = argv['data-dir'] ?? defaultDataDir()
  const data = await prepareRelayData(dataDir, [publicHost])
  const cert = argv.cert !== undefined ? readFileSync(argv.cert, 'utf8') : data.cert
  const key = argv.key !== undefined ? readFileSync(argv.key, 'utf8') : data.key
  const token = argv.token ?? data.token
  const fp = certFingerprint(cert)

  const relay = new Relay({
    host: argv.host,
    port: argv.port,
    bindHost: argv['bind-host'],
    publicHost,
    portRange: parsePortRange(argv.ports),
    cert,
    key,
    authenticator: new StaticTokens([{ token, principal: { id: 'owner', name: 'owner' } }]),
    leaseGrace: argv['lease-grace'] * 1000,
  })
  relay.on('client', c => out.event('client', `client ${c.id} connected from ${c.remoteAddress}${c.resumed ? ' (resumed its lease)' : ''}`, { ...c, principal: c.principal.name }))
  relay.on('client-closed', (c, err) => out.event('client-closed', `client ${c.id} disconnected${err ? `: ${oneLine(err)}` : ''}`, { id: c.id, error: err?.message }))
  relay.on('tunnel-up', t => out.event('tunnel-up', `tunnel ${t.name} up on port ${t.port}`, { ...t }))
  relay.on('tunnel-down', (t, reason) => out.event('tunnel-down', `tunnel ${t.name} on port ${t.port} down: ${reason}`, { ...t, reason }))
  relay.on('auth-failed', (addr, err) => out.event('auth-failed', `authentication failed from ${addr}: ${err.message}`, { remoteAddress: addr, code: err.code }))
  relay.on('connection-closed', (c, s) => {
    if (s.error !== undefined) out.event('connection-error', `connection from ${c.remoteAddress} on ${c.tunnel.name} ended: ${oneLine(s.error)} (${formatBytes(s.bytesIn)} in, ${formatBytes(s.bytesOut)} out)`, { tunnel: c.tunnel.name, remoteAddress: c.remoteAddress, error: s.error.message })
  })
  relay.on('warning', err => out.error(err, 'warning'))

  const addr = await relay.listen()
  const controlAddr = `${publicHost}${addr.port === DEFAULT_CONTROL_PORT ? '' : `:${addr.port}`}`
  const shownToken = data.tokenCreated || argv.token !== undefined ? token : `${token.slice(0, 6)}… (in ${data.tokenFile})`
  const connectCmd = `npx mport-connect 5555 --relay ${controlAddr} --token ${data.tokenCreated ? token : `$(cat ${data.tokenFile})`}${argv.cert === undefined ? ` --fingerprint ${fp}` : ''}`
  out.event('listening', [
    `mport relay listening on ${addr.address}:${addr.port} (public ports ${argv.ports} on ${argv['bind-host']})`,
    `  certificate: ${argv.cert !== undefined ? argv.cert : `self-signed${data.certCreated ? ' (new)' : ''} in ${data.dir}`}, fingerprint ${fp}`,
    `  token:       ${shownToken}`,
    '  connect a local port with:',
    `    ${connectCmd}`,
  ].join('\n'), { address: addr.address, port: addr.port, fingerprint: fp, dataDir: data.dir, connect: data.tokenCreated ? connectCmd : undefined })

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) process.exit(ExitCode.Ok) // a second signal: do not wait
    stopping = true
    out.event('stopping', `${signal}: closing, letting open connections drain for up to ${argv['drain-timeout']} s (again to force)`, { signal })
    relay.close(argv['drain-timeout'] * 1000).then(() => process.exit(ExitCode.Ok), () => process.exit(ExitCode.Failure))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main().catch(err => {
  out.error(err, 'mport-relay')
  process.exit(ExitCode.Failure)
})
