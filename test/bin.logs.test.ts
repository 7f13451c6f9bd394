/**
 * Structured logs through the real bins (docs/LOGGING.md): a piped relay writes JSON lines by
 * default, each with time, level, msg and event, and the session and connection ids that let
 * its lines be joined with the client's; --log-format text keeps the human lines; the levels
 * filter; the client's --log-format json carries the same ids.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { cleanup, relayArgs, runBin, spawnBin, tmpDir, type BinProcess } from './helpers/spawn.js'
import { connectTo, isClosed, roundTrip, startEcho } from './helpers/tunnel.js'
import { oneStderrLine } from './helpers/bin-output.js'
import { closedPort } from './helpers/ports.js'
import { sha256 } from './helpers/digest.js'
import { waitFor } from './helpers/wait.js'

t.teardown(cleanup)

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const LEVELS = ['error', 'warn', 'info', 'debug']
/** Bound for a bin to start and answer (tsx compiles it first; the machine is shared and slow). */
const START_MS = 90_000

/** The relay's loopback flags without the text format the helper adds: the default (auto) in a pipe. */
function defaultFormatArgs (dataDir: string, extra: string[]): string[] {
  const args = relayArgs(dataDir, extra)
  const i = args.indexOf('--log-format')
  if (i !== -1 && !extra.includes('--log-format')) args.splice(i, 2)
  return args
}

/** Every complete line of `text` parsed as JSON, failing the test with the line that is not a log object. */
function logObjects (t: Test, text: string, what: string): Array<Record<string, unknown>> {
  const lines = text.split('\n').filter(l => l !== '')
  const objects: Array<Record<string, unknown>> = []
  for (const l of lines) {
    let o: unknown
    try {
      o = JSON.parse(l)
    } catch {
      t.fail(`${what}: not a JSON line: ${l}`)
      continue
    }
    objects.push(o as Record<string, unknown>)
  }
  const bad = objects.filter(o => typeof o.time !== 'string' || !ISO_TIME.test(o.time) || !LEVELS.includes(o.level as string) || typeof o.msg !== 'string' || typeof o.event !== 'string')
  t.same(bad, [], `${what}: every one of ${objects.length} lines has an ISO time, a level, msg and event`)
  return objects
}

/** A relay's token from its data dir. */
const tokenOf = (dataDir: string): string => readFileSync(path.join(dataDir, 'token'), 'utf8').trim()

async function roundTripOnce (port: number, size: number): Promise<void> {
  const data = randomBytes(size)
  const back = await roundTrip(await connectTo(port), data)
  if (sha256(back) !== sha256(data)) throw new Error(`echo mismatch through port ${port}`)
}

async function stop (p: BinProcess): Promise<void> {
  p.signal('SIGINT')
  await p.waitExit()
}

t.test('a piped relay logs JSON lines with ids both sides share; the client with --log-format json too', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const dataDir = path.join(tmpDir(), 'data')
  const relay = spawnBin('mport-relay', defaultFormatArgs(dataDir, ['--log-level', 'debug']))
  t.teardown(() => relay.kill())
  const listening = await relay.waitEvent('listening', () => true, START_MS)
  t.match(listening, { level: 'info', msg: /^mport relay listening on 127\.0\.0\.1:\d+ /, port: Number, fingerprint: /^sha256:/ }, 'the start line, as JSON without --json')
  t.notMatch(relay.stdout, /mpt_/, 'the generated token is not in a JSON log (its file is named instead)')
  t.match(listening.connect, new RegExp(`--token \\$\\(cat ${path.join(dataDir, 'token').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`), 'the connect command reads the token file')

  const client = spawnBin('mport-connect', [`web=${echo.port}`, '--relay', `127.0.0.1:${listening.port as number}`, '--token', tokenOf(dataDir), '--fingerprint', listening.fingerprint as string, '--log-format', 'json', '--log-level', 'debug'])
  t.teardown(() => client.kill())
  const tunnel = await client.waitEvent('tunnel', () => true, START_MS)
  const port = tunnel.remotePort as number
  for (let i = 0; i < 3; i++) await roundTripOnce(port, 64 * 1024)
  await client.waitEvent('connection-closed', () => client.jsonLines().filter(o => o.event === 'connection-closed').length >= 3, START_MS)
  await relay.waitEvent('connection-closed', () => relay.jsonLines().filter(o => o.event === 'connection-closed').length >= 3, START_MS)
  await stop(client)
  await relay.waitEvent('client-closed', () => true, START_MS)
  await stop(relay)

  const r = logObjects(t, relay.stdout, 'relay stdout')
  const c = logObjects(t, client.stdout, 'client stdout')
  t.equal(relay.stderr, '', 'nothing on the relay stderr')
  t.equal(client.stderr, '', 'nothing on the client stderr')

  const session = r.find(o => o.event === 'client')?.session
  t.match(session, /^c\d+$/, 'the relay names the client connection: session')
  t.match(c.find(o => o.event === 'connected'), { session, level: 'info' }, 'the client learned the same session id')
  t.ok(c.filter(o => o.event !== 'stopping').slice(1).every(o => o.session === session), 'every client line after connecting carries the session')
  t.match(r.find(o => o.event === 'tunnel-up'), { level: 'info', session, tunnel: 'web', port, lease: String, principal: 'owner' }, 'tunnel-up: session, tunnel, port, lease, principal')

  const relayConns = r.filter(o => o.event === 'connection')
  const clientConns = c.filter(o => o.event === 'connection')
  t.equal(relayConns.length, 3, 'three visitor connections on the relay (debug)')
  t.equal(clientConns.length, 3, 'and on the client')
  for (const o of [...relayConns, ...r.filter(o => o.event === 'connection-closed')]) t.match(o, { level: 'debug', session, conn: Number, tunnel: 'web', port, remoteAddress: '127.0.0.1' }, `relay ${o.event as string}: session, conn, tunnel, port`)
  t.same(relayConns.map(o => o.conn).sort(), clientConns.map(o => o.conn).sort(), 'the relay and the client name each visitor connection by the same conn')
  t.match(r.filter(o => o.event === 'connection-closed'), [{ bytesIn: 65536, bytesOut: 65536 }, { bytesIn: 65536 }, { bytesIn: 65536 }], 'byte counts per connection')
  t.match(r.find(o => o.event === 'client-closed'), { session, level: 'info' })
})

t.test('--log-format text: the human lines with their times, no JSON', async t => {
  const dataDir = path.join(tmpDir(), 'data')
  const relay = spawnBin('mport-relay', relayArgs(dataDir, ['--log-format', 'text']))
  t.teardown(() => relay.kill())
  const first = await relay.waitLine(/ mport relay listening on /, 'the start line', START_MS)
  t.match(first, /^\d{4}-\d\d-\d\dT[\d:.]+Z mport relay listening on 127\.0\.0\.1:\d+ /, 'a time, then the text')
  await relay.waitLine(/^\s+npx mport-connect /, 'the connect command')
  const token = tokenOf(dataDir)
  t.ok(relay.stdout.includes(`token:       ${token}`), 'a new token is shown once, on the text banner (the operator must learn it)')
  await stop(relay)
  relay.lines().forEach((l, i) => t.throws(() => JSON.parse(l), `line ${i + 1} is not JSON`))
  t.match(relay.lines().at(-1), /^\S+Z relay stopped$/)
})

t.test('levels: --log-level warn keeps warnings only; the client filters the same way', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const dataDir = path.join(tmpDir(), 'data')
  // The start line is info, so this relay does not print its port: give it one.
  const port = await closedPort()
  const relay = spawnBin('mport-relay', relayArgs(dataDir, ['--log-format', 'json', '--log-level', 'warn']).map((a, i, all) => all[i - 1] === '--port' ? String(port) : a))
  t.teardown(() => relay.kill())
  await waitFor(async () => {
    if (relay.exit !== undefined) throw new Error(`the relay exited:\n${relay.output}`)
    return existsSync(path.join(dataDir, 'token')) && !await isClosed(port)
  }, { what: `the relay listening on ${port}`, timeoutMs: START_MS, intervalMs: 100 })
  // No fingerprint: each client trusts the relay on first use (a fresh HOME per process).
  const base = [String(echo.port), '--relay', `127.0.0.1:${port}`]
  const wrong = await runBin('mport-connect', [...base, '--token', 'mpt_wrong-token-for-levels', '--no-reconnect'])
  t.equal(wrong.code, 1, 'a wrong token is refused')
  await relay.waitEvent('auth-failed', () => true, START_MS)
  // A fixed public port (in the relay's range), so its tunnel can be used although it says nothing.
  const warnPort = await closedPort()
  const warnOnly = spawnBin('mport-connect', [`${echo.port}:${warnPort}`, '--relay', `127.0.0.1:${port}`, '--token', tokenOf(dataDir), '--log-format', 'json', '--log-level', 'warn'])
  t.teardown(() => warnOnly.kill())
  const info = spawnBin('mport-connect', [...base, '--token', tokenOf(dataDir), '--log-format', 'json'])
  t.teardown(() => info.kill())
  const tunnel = await info.waitEvent('tunnel', () => true, START_MS)
  await roundTripOnce(tunnel.remotePort as number, 1000) // the relay has seen this client and its tunnel
  await waitFor(async () => !await isClosed(warnPort), { what: `the quiet client's tunnel on ${warnPort}`, timeoutMs: START_MS, intervalMs: 100 })
  await roundTripOnce(warnPort, 1000)
  await stop(warnOnly)
  await stop(info)
  await stop(relay)
  const r = logObjects(t, relay.stdout, 'relay at warn')
  t.ok(r.every(o => o.level === 'warn' || o.level === 'error'), `nothing below warn in ${r.length} line(s)`)
  t.match(r.find(o => o.event === 'auth-failed'), { level: 'warn', code: 'MPORT_ERR_AUTH_FAILED', remoteAddress: '127.0.0.1' })
  t.notOk(r.some(o => o.event === 'client' || o.event === 'tunnel-up'), 'no info lines for the clients that connected')
  t.equal(warnOnly.stdout, '', 'the client at warn printed nothing (its connected and tunnel lines are info)')
  t.ok(logObjects(t, info.stdout, 'client at info').some(o => o.event === 'connected'), 'the same client at info did')
  const both = await runBin('mport-connect', [...base, '--token', 'x', '--json', '--log-format', 'text'])
  t.equal(both.code, 2, '--json with --log-format text: exit 2')
  oneStderrLine(t, both.stderr, /--json is --log-format json: give one of them/, '--json and --log-format text')
})

t.test('bad values and the config file keys', async t => {
  const dir = tmpDir()
  const bad = await runBin('mport-relay', relayArgs(path.join(dir, 'data'), ['--log-format', 'xml']))
  t.equal(bad.code, 2, 'relay --log-format xml: exit 2')
  oneStderrLine(t, bad.stderr, /--log-format "xml" is not one of auto, json, text/, 'relay --log-format xml')
  const level = await runBin('mport-relay', relayArgs(path.join(dir, 'data'), ['--log-level', 'trace']))
  t.equal(level.code, 2, 'relay --log-level trace: exit 2')
  oneStderrLine(t, level.stderr, /--log-level "trace" is not one of error, warn, info, debug/, 'relay --log-level trace')
  const printed = await runBin('mport-relay', ['config', 'print', '--log-format', 'json', '--log-level', 'debug'])
  t.equal(printed.code, 0)
  t.match(printed.stdout, /^log_format: "json"$/m, 'config print shows log_format')
  t.match(printed.stdout, /^log_level: "debug"$/m, 'and log_level')
  const relayFile = path.join(dir, 'relay.yaml')
  writeFileSync(relayFile, 'log_format: json\nlog_level: warn\n')
  const fromFile = await runBin('mport-relay', ['config', 'print', '--config', relayFile])
  t.match(fromFile.stdout, /^log_format: "json"\nlog_level: "warn"$/m, 'the relay reads log_format and log_level from its file')
  const clientFile = path.join(dir, 'client.yaml')
  writeFileSync(clientFile, 'relay: 127.0.0.1:1\ntoken: x\ntunnels: [5555]\nlog_level: loud\n')
  const client = await runBin('mport-connect', ['--config', clientFile])
  t.equal(client.code, 2, 'a client file with log_level: loud: exit 2')
  oneStderrLine(t, client.stderr, /"log_level" in .*client\.yaml must be one of error, warn, info, debug, not "loud"/, 'client log_level: loud')
  writeFileSync(clientFile, 'relay: 127.0.0.1:1\ntoken: x\ntunnels: [5555]\nlog_format: json\n')
  const json = await runBin('mport-connect', ['--config', clientFile])
  t.equal(json.code, 3, 'log_format: json from the file, and the relay is unreachable: exit 3')
  t.match(JSON.parse(json.stderr.trim().split('\n').at(-1) ?? '{}'), { level: 'error', event: 'error', code: 'MPORT_ERR_RELAY_UNREACHABLE' }, 'the failure is a JSON line')
})
