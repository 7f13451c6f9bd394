/**
 * Both bins as real processes, spawned from source: help and version, bad flags (exit 2 with
 * one line), config files, a smoke tunnel through the printed connect command, --json output,
 * typed failures as one line with their exit codes, and signals. The token must never appear
 * in a client's output.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import { formatStatus } from '../src/cli/output.js'
import { InvalidConfigError, PortNotAllowedError } from '../src/index.js'
import { cleanup, REPO_ROOT, relayArgs, runBin, spawnBin, tmpDir, type BinProcess } from './helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from './helpers/tunnel.js'
import { sha256 } from './helpers/digest.js'
import { closedPort } from './helpers/ports.js'
import { oneStderrLine, STACK_LINE } from './helpers/bin-output.js'

t.teardown(cleanup)

const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** The client never echoes the token, whatever happened. */
function noToken (tt: Test, proc: BinProcess, token: string): void {
  tt.notOk(proc.output.includes(token), `${proc.name} output does not contain the token`)
}

/** Runs `fn` over `items` with at most `limit` at once (keeps a 2-core machine responsive). */
async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

interface RelayProc { proc: BinProcess, port: number, fingerprint: string, token: string, dataDir: string }

/** A relay in --json mode on a fresh data dir; its token comes from the data dir. */
async function startJsonRelay (extra: string[] = []): Promise<RelayProc> {
  const dataDir = path.join(tmpDir(), 'data')
  const proc = spawnBin('mport-relay', relayArgs(dataDir, ['--json', '--verbose', ...extra]))
  const ev = await proc.waitEvent('listening')
  const token = readFileSync(path.join(dataDir, 'token'), 'utf8').trim()
  return { proc, port: ev.port as number, fingerprint: ev.fingerprint as string, token, dataDir }
}

async function stopRelay (tt: Test, relay: RelayProc): Promise<void> {
  relay.proc.signal('SIGTERM')
  const exit = await relay.proc.waitExit()
  tt.equal(exit.code, 0, 'relay exits 0 on SIGTERM')
}

t.test('--help and --version', async t => {
  const [relay, connect, relayVersion, connectVersion] = await Promise.all([
    runBin('mport-relay', ['--help']),
    runBin('mport-connect', ['--help']),
    runBin('mport-relay', ['--version']),
    runBin('mport-connect', ['--version']),
  ])
  t.equal(relay.code, 0, 'mport-relay --help exits 0')
  const flat = (s: string): string => s.replace(/\s+/g, ' ') // yargs wraps long lines
  for (const opt of ['--host', '--port', '--public-host', '--bind-host', '--ports', '--data-dir', '--cert', '--key', '--token', '--json', 'Exit codes', '2 bad flags']) {
    t.ok(flat(relay.stdout).includes(opt), `mport-relay --help mentions ${opt}`)
  }
  t.equal(relay.stderr, '', 'nothing on stderr')
  t.equal(connect.code, 0, 'mport-connect --help exits 0')
  for (const opt of ['--relay', '--token', '--fingerprint', '--config', '--json', '--insecure', 'MPORT_TOKEN', 'Exit codes', '2 bad flags', '3 relay unreachable']) {
    t.ok(flat(connect.stdout).includes(opt), `mport-connect --help mentions ${opt}`)
  }
  t.equal(connect.stderr, '', 'nothing on stderr')
  t.equal(relayVersion.code, 0)
  t.equal(relayVersion.stdout.trim(), VERSION, 'mport-relay --version prints the package version')
  t.equal(connectVersion.code, 0)
  t.equal(connectVersion.stdout.trim(), VERSION, 'mport-connect --version prints the package version')
})

t.test('bad flags: exit 2 with one line on stderr', async t => {
  const dir = tmpDir()
  const token = 'mpt_bad-flags-token-never-printed'
  const relayBase = relayArgs(path.join(dir, 'data'))
  const connectBase = ['--relay', '127.0.0.1:1', '--token', token]
  const cases: Array<{ name: string, bin: 'mport-relay' | 'mport-connect', args: string[], re: RegExp }> = [
    { name: 'relay: unknown flag', bin: 'mport-relay', args: [...relayBase, '--bogus'], re: /^mport-relay: Unknown argument: bogus/ },
    { name: 'relay: --cert without --key', bin: 'mport-relay', args: [...relayBase, '--cert', path.join(dir, 'c.pem')], re: /--cert and --key go together/ },
    { name: 'relay: reversed --ports', bin: 'mport-relay', args: [...relayBase, '--ports', '5000-4000'], re: /"5000-4000" is not a port range/ },
    { name: 'relay: word --ports', bin: 'mport-relay', args: [...relayBase, '--ports', 'many'], re: /"many" is not a port range/ },
    { name: 'relay: --port out of range', bin: 'mport-relay', args: [...relayBase, '--port', '70000'], re: /--port 70000 is not a port number/ },
    { name: 'relay: unreadable --cert', bin: 'mport-relay', args: [...relayBase, '--cert', path.join(dir, 'none.pem'), '--key', path.join(dir, 'none.key')], re: /cannot read --cert .*ENOENT/ },
    { name: 'connect: unknown flag', bin: 'mport-connect', args: ['5555', ...connectBase, '--bogus'], re: /^mport-connect: Unknown argument: bogus/ },
    { name: 'connect: no relay', bin: 'mport-connect', args: ['5555', '--token', token], re: /no relay given/ },
    { name: 'connect: no token', bin: 'mport-connect', args: ['5555', '--relay', '127.0.0.1:1'], re: /no token given/ },
    { name: 'connect: no tunnel', bin: 'mport-connect', args: connectBase, re: /no tunnel given/ },
    { name: 'connect: bad tunnel spec', bin: 'mport-connect', args: ['5555:abc', ...connectBase], re: /"abc" is not a port number.*MPORT_ERR_INVALID_CONFIG/ },
    { name: 'connect: tunnel port too big', bin: 'mport-connect', args: ['70000', ...connectBase], re: /"70000" is not a port number/ },
    { name: 'connect: bad fingerprint', bin: 'mport-connect', args: ['5555', ...connectBase, '--fingerprint', 'md5:abcd'], re: /unsupported digest "md5"/ },
    { name: 'connect: missing config file', bin: 'mport-connect', args: ['--config', path.join(dir, 'none.yaml')], re: /cannot read config file: no such file/ },
  ]
  const results = await mapLimit(cases, 3, c => runBin(c.bin, c.args))
  cases.forEach((c, i) => {
    const r = results[i]!
    t.equal(r.code, 2, `${c.name}: exit code 2`)
    oneStderrLine(t, r.stderr, c.re, c.name)
    t.equal(r.stdout, '', `${c.name}: nothing on stdout`)
    if (c.bin === 'mport-connect') noToken(t, r.proc, token)
  })
})

t.test('relay first start: smoke tunnel through the printed connect command', async t => {
  const dataDir = path.join(tmpDir(), 'data')
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = spawnBin('mport-relay', relayArgs(dataDir, ['--verbose']))
  const cmdLine = await relay.waitLine(/^\s+npx mport-connect /, 'the connect command')
  const head = relay.lines()
  const listening = head.find(l => /^\d{4}-\d\d-\d\dT[\d:.]+Z mport relay listening on /.test(l)) // issue 14: log lines carry the time
  const controlPort = Number(/listening on 127\.0\.0\.1:(\d+) /.exec(listening ?? '')?.[1])
  t.ok(controlPort > 0, `the first line names the control address: ${listening}`)
  const fingerprint = /fingerprint (sha256:[0-9a-f]{64})$/.exec(head.find(l => l.includes('certificate:')) ?? '')?.[1]
  t.ok(fingerprint, 'the certificate line carries the fingerprint')
  t.match(head.find(l => l.includes('certificate:')) ?? '', /self-signed \(new\)/, 'a new self-signed certificate')
  const token = /^\s+token:\s+(\S+)$/.exec(head.find(l => /^\s+token:/.test(l)) ?? '')?.[1] ?? ''
  t.equal(token, readFileSync(path.join(dataDir, 'token'), 'utf8').trim(), 'the printed token is the stored one')
  t.match(token, /^mpt_/)

  const words = cmdLine.trim().split(/\s+/)
  t.same(words, ['npx', 'mport-connect', '5555', '--relay', `127.0.0.1:${controlPort}`, '--token', token, '--fingerprint', fingerprint], 'the exact connect command')
  const args = words.slice(2)
  args[0] = String(echo.port)
  args.push('--verbose') // per-connection lines are opt-in
  const client = spawnBin('mport-connect', args)
  t.teardown(() => client.kill())
  const tunnelLine = await client.waitLine(/^tcp:\/\//, 'the tunnel line')
  const m = new RegExp(`^tcp://127\\.0\\.0\\.1:(\\d+) -> 127\\.0\\.0\\.1:${echo.port}$`).exec(tunnelLine)
  t.ok(m, `tunnel line names the public address and the local port: ${tunnelLine}`)
  const publicPort = Number(m?.[1])
  t.ok(publicPort >= 30000 && publicPort <= 60999, 'public port in the relay range')
  t.match(client.lines()[0] ?? '', new RegExp(`^connected to 127\\.0\\.0\\.1:${controlPort}$`), 'first line: connected (the pinned certificate needs no TOFU note)')

  const data = randomBytes(1024 * 1024)
  const echoed = await roundTrip(await connectTo(publicPort), data)
  t.equal(echoed.length, data.length, '1 MiB came back')
  t.equal(sha256(echoed), sha256(data), 'checksum matches')
  await client.waitLine(/closed \(1\.0 MiB in, 1\.0 MiB out\)$/, 'the connection-closed line with byte counts')
  await relay.waitLine(/closed \(1\.0 MiB in, 1\.0 MiB out\)$/, 'the relay connection-closed line')
  t.ok(relay.lines().some(l => l.includes(`: connection from 127.0.0.1:`)), 'the relay logs the connection')

  client.signal('SIGINT')
  t.equal((await client.waitExit()).code, 0, 'mport-connect exits 0 on SIGINT')
  t.match(client.stdout, /SIGINT: closing/)
  t.notMatch(client.stdout, /disconnected/, 'its own close is not reported as a disconnect')
  t.equal(client.stderr, '', 'nothing on the client stderr')
  noToken(t, client, token)
  t.notOk(client.output.includes('HOME'), 'sanity: output is plain')

  relay.signal('SIGTERM')
  t.equal((await relay.waitExit()).code, 0, 'mport-relay exits 0 on SIGTERM')
  t.equal(relay.stderr, '', 'nothing on the relay stderr')

  t.test('second start with the same data dir', async t => {
    const [human, json] = [spawnBin('mport-relay', relayArgs(dataDir)), spawnBin('mport-relay', relayArgs(dataDir, ['--json']))]
    const cmd2 = await human.waitLine(/^\s+npx mport-connect /, 'the connect command')
    const ev = await json.waitEvent('listening')
    t.equal(ev.fingerprint, fingerprint, 'the JSON listening event has the same fingerprint')
    t.ok(human.stdout.includes(`fingerprint ${fingerprint}`), 'the certificate is reused: same fingerprint')
    t.notMatch(human.stdout, /\(new\)/, 'not a new certificate')
    for (const p of [human, json]) t.notOk(p.output.includes(token), `${p.args.includes('--json') ? 'JSON' : 'human'} output does not contain the token in full`)
    t.match(human.stdout, new RegExp(`token:\\s+\\(in ${path.join(dataDir, 'token').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`, 'm'), 'the token line names the file')
    t.notMatch(human.stdout, /mpt_/, 'and no part of the token (no log line carries one)')
    t.match(cmd2, /--token \$\(cat .*token\)/, 'the connect command reads the token file')
    t.equal(ev.tokenFile, path.join(dataDir, 'token'))
    human.signal('SIGTERM')
    json.signal('SIGTERM')
    t.equal((await human.waitExit()).code, 0)
    t.equal((await json.waitExit()).code, 0)
    t.same(json.jsonLines().map(o => o.event), ['listening', 'stopping', 'stopped'], 'the JSON relay printed only JSON events')
  })
})

t.test('a relay on a given port (not 0) listens on it, once', async t => {
  // The default is a fixed port (7835); a given port must be bound exactly once. Port 0, used
  // everywhere else here, would hide a second bind on another random port.
  const port = await closedPort()
  const relay = spawnBin('mport-relay', relayArgs(path.join(tmpDir(), 'data'), ['--json']).map((a, i, all) => all[i - 1] === '--port' ? String(port) : a))
  const ev = await relay.waitEvent('listening')
  t.equal(ev.port, port, 'listening on the given port')
  const alpn = await new Promise<string | false>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['mport/1'], rejectUnauthorized: false }, () => { resolve(s.alpnProtocol ?? false); s.destroy() })
    s.once('error', reject)
  })
  t.equal(alpn, 'mport/1', 'the relay answers there')
  relay.signal('SIGTERM')
  t.equal((await relay.waitExit()).code, 0, 'exits 0')
  t.equal(relay.stderr, '', 'no error (no second bind: EADDRINUSE)')
})

t.test('--json: one JSON object per line with event fields', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = await startJsonRelay()
  const listening = relay.proc.jsonLines()[0]!
  t.equal(listening.event, 'listening')
  t.match(listening, { address: '127.0.0.1', port: relay.port, fingerprint: /^sha256:[0-9a-f]{64}$/, ports: '30000-60999' })
  t.ok(typeof listening.time === 'string' && !Number.isNaN(Date.parse(listening.time)), 'a time field')
  const readToken = `$(cat ${path.join(relay.dataDir, 'token')})`
  t.ok((listening.connect as string).includes(`--token ${readToken} `), 'the connect command reads the new token from its file: a log line never holds a token')
  // What the shell makes of it.
  const words = (listening.connect as string).replace(readToken, relay.token).split(/\s+/)
  t.same(words.slice(0, 3), ['npx', 'mport-connect', '5555'])
  const args = [String(echo.port), ...words.slice(3), '--json', '--verbose']

  const client = spawnBin('mport-connect', args)
  t.teardown(() => client.kill())
  const tunnel = await client.waitEvent('tunnel')
  t.match(tunnel, { name: String(echo.port), local: `127.0.0.1:${echo.port}`, url: /^tcp:\/\/127\.0\.0\.1:\d+$/ })
  const connected = client.jsonLines()[0]!
  t.match(connected, { event: 'connected', relay: `127.0.0.1:${relay.port}`, trust: 'pinned', fingerprint: relay.fingerprint, resumed: false })
  await relay.proc.waitEvent('client')
  const up = await relay.proc.waitEvent('tunnel-up')
  t.equal(up.port, tunnel.remotePort, 'relay and client agree on the public port')

  const data = randomBytes(64 * 1024)
  const echoed = await roundTrip(await connectTo(tunnel.remotePort as number), data)
  t.equal(sha256(echoed), sha256(data), '64 KiB echoed intact')
  const closed = await client.waitEvent('connection-closed')
  t.match(closed, { tunnel: String(echo.port), remoteAddress: '127.0.0.1', bytesIn: data.length, bytesOut: data.length })
  t.match(await client.waitEvent('connection'), { tunnel: String(echo.port), remoteAddress: '127.0.0.1', remotePort: Number })
  t.match(await relay.proc.waitEvent('connection'), { tunnel: String(echo.port), port: tunnel.remotePort, remoteAddress: '127.0.0.1' })
  t.match(await relay.proc.waitEvent('connection-closed'), { bytesIn: data.length, bytesOut: data.length })

  client.signal('SIGINT')
  t.equal((await client.waitExit()).code, 0, 'SIGINT: exit 0')
  const events = client.jsonLines().map(o => o.event)
  t.same(events, ['connected', 'tunnel', 'connection', 'connection-closed', 'stopping'], 'client events, every line JSON, no status lines')
  t.ok(client.jsonLines().every(o => typeof o.time === 'string'), 'every event has a time')
  noToken(t, client, relay.token)
  await relay.proc.waitEvent('client-closed')
  await stopRelay(t, relay)
  t.ok(relay.proc.jsonLines().every(o => typeof o.event === 'string'), 'every relay line is a JSON event')
})

t.test('config files for mport-connect', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = await startJsonRelay()
  const dir = tmpDir()

  const viaConfig = async (tt: Test, file: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<void> => {
    const client = spawnBin('mport-connect', ['--config', file, '--json', ...extraArgs], { env })
    tt.teardown(() => client.kill())
    const tunnel = await client.waitEvent('tunnel')
    tt.match(tunnel, { name: 'web', local: `127.0.0.1:${echo.port}` }, 'the tunnel from the file is up')
    const data = randomBytes(32 * 1024)
    tt.equal(sha256(await roundTrip(await connectTo(tunnel.remotePort as number), data)), sha256(data), 'echo through it')
    tt.match(client.jsonLines()[0], { event: 'connected', trust: 'pinned' }, 'the fingerprint from the file pinned the relay')
    client.signal('SIGINT')
    tt.equal((await client.waitExit()).code, 0, 'SIGINT: exit 0')
    noToken(tt, client, relay.token)
  }

  t.test('JSON', async t => {
    const file = path.join(dir, 'mport.json')
    writeFileSync(file, JSON.stringify({ relay: `127.0.0.1:${relay.port}`, token: relay.token, tunnels: [`web=${echo.port}`], fingerprint: relay.fingerprint }, null, 2))
    await viaConfig(t, file)
  })

  t.test('YAML', async t => {
    const file = path.join(dir, 'mport.yaml')
    writeFileSync(file, [
      '# mport-connect settings',
      `relay: 127.0.0.1:${relay.port}`,
      `token: ${relay.token}`,
      `fingerprint: ${relay.fingerprint}`,
      'tunnels:',
      `  - web=${echo.port}`,
      '',
    ].join('\n'))
    await viaConfig(t, file)
  })

  t.test('token from MPORT_TOKEN; unrelated MPORT_* variables are not flags', async t => {
    const file = path.join(dir, 'no-token.yml')
    writeFileSync(file, `relay: 127.0.0.1:${relay.port}\nfingerprint: ${relay.fingerprint}\ntunnels: [web=${echo.port}]\n`)
    await viaConfig(t, file, [], { MPORT_TOKEN: relay.token, MPORT_DATA_DIR: path.join(dir, 'relay-data'), MPORT_PORTS: '1-2' })
  })

  t.test('an unknown key: exit 2 naming the key', async t => {
    const file = path.join(dir, 'typo.json')
    writeFileSync(file, JSON.stringify({ relay: `127.0.0.1:${relay.port}`, tokn: relay.token, tunnels: [echo.port] }))
    const r = await runBin('mport-connect', ['--config', file])
    t.equal(r.code, 2, 'exit 2')
    oneStderrLine(t, r.stderr, /unknown key "tokn" in .*typo\.json; did you mean "token"\?/, 'unknown key')
    noToken(t, r.proc, relay.token)
  })

  t.test('a tunnels value of the wrong type: exit 2', async t => {
    const file = path.join(dir, 'bad-tunnels.yaml')
    writeFileSync(file, `relay: 127.0.0.1:${relay.port}\ntoken: ${relay.token}\ntunnels: {web: ${echo.port}}\n`)
    const r = await runBin('mport-connect', ['--config', file])
    t.equal(r.code, 2, 'exit 2')
    oneStderrLine(t, r.stderr, /"tunnels" in .*bad-tunnels\.yaml must be a list/, 'tunnels type')
    noToken(t, r.proc, relay.token)
  })

  t.test('a YAML syntax error: exit 2 with the line', async t => {
    const file = path.join(dir, 'broken.yaml')
    writeFileSync(file, `relay: 127.0.0.1:${relay.port}\ntoken: [${relay.token}\n`)
    const r = await runBin('mport-connect', ['--config', file])
    t.equal(r.code, 2, 'exit 2')
    oneStderrLine(t, r.stderr, /YAML syntax error.*line \d+/, 'YAML syntax')
    noToken(t, r.proc, relay.token)
  })

  await t.test('close the relay', async t => stopRelay(t, relay))
})

t.test('failures as one line with their exit codes', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = await startJsonRelay()
  const base = ['--relay', `127.0.0.1:${relay.port}`]
  const wrongToken = 'mpt_wrong-token-not-the-relays'
  const wrongFp = `sha256:${'ab'.repeat(32)}`
  const closed = await closedPort()
  const [auth, mismatch, unreachable, notAllowed] = await mapLimit([
    [String(echo.port), ...base, '--token', wrongToken, '--fingerprint', relay.fingerprint],
    [String(echo.port), ...base, '--token', relay.token, '--fingerprint', wrongFp],
    // A repeated flag: the last one wins, so this is the closed port.
    [String(echo.port), ...base, '--relay', `127.0.0.1:${closed}`, '--token', relay.token],
    [`${echo.port}:1000`, ...base, '--token', relay.token, '--fingerprint', relay.fingerprint],
  ], 2, args => runBin('mport-connect', args))

  t.equal(auth!.code, 1, 'wrong token: exit 1')
  oneStderrLine(t, auth!.stderr, /^mport-connect: .*\[MPORT_ERR_AUTH_FAILED\]$/, 'wrong token')
  noToken(t, auth!.proc, wrongToken)
  noToken(t, auth!.proc, relay.token)
  t.match(await relay.proc.waitEvent('auth-failed'), { code: 'MPORT_ERR_AUTH_FAILED', remoteAddress: '127.0.0.1' }, 'the relay reports the failed login')

  t.equal(mismatch!.code, 1, 'wrong fingerprint: exit 1')
  oneStderrLine(t, mismatch!.stderr, new RegExp(`^mport-connect: .*${relay.fingerprint}.*\\[MPORT_ERR_CERT_MISMATCH\\]$`), 'wrong fingerprint')
  t.equal(mismatch!.stdout, '', 'nothing on stdout')
  noToken(t, mismatch!.proc, relay.token)

  t.equal(unreachable!.code, 3, 'relay unreachable: exit 3')
  oneStderrLine(t, unreachable!.stderr, new RegExp(`^mport-connect: cannot reach relay 127\\.0\\.0\\.1:${closed}: no transport worked \\(tls \\(port ${closed}\\): connection refused; wss \\(port 443\\): [^;]+; ws \\(port 80\\): [^)]+\\) \\[MPORT_ERR_RELAY_UNREACHABLE\\]$`), 'unreachable')
  noToken(t, unreachable!.proc, relay.token)

  t.equal(notAllowed!.code, 1, 'the only tunnel refused: exit 1')
  const refused = notAllowed!.stdout.split('\n').filter(l => l.includes('refused'))
  t.equal(refused.length, 1, 'one tunnel-error line')
  t.match(refused[0] ?? '', new RegExp(`^tunnel ${echo.port} \\(127\\.0\\.0\\.1:${echo.port}\\) refused: port 1000 is not allowed.*\\[MPORT_ERR_PORT_NOT_ALLOWED\\]$`))
  oneStderrLine(t, notAllowed!.stderr, /^mport-connect: the only tunnel was refused$/, 'port not allowed')
  t.notMatch(notAllowed!.stdout, /disconnected/, 'its own close is not reported as a disconnect')
  noToken(t, notAllowed!.proc, relay.token)

  t.test('one of two tunnels refused: the other stays up', async t => {
    const client = spawnBin('mport-connect', [`${echo.port}:1000`, `web=${echo.port}`, ...base, '--token', relay.token, '--fingerprint', relay.fingerprint])
    t.teardown(() => client.kill())
    const up = await client.waitLine(/^tcp:\/\/.* \(web\)$/, 'the web tunnel line')
    await client.waitLine(/refused: .*\[MPORT_ERR_PORT_NOT_ALLOWED\]$/, 'the refused tunnel line')
    const port = Number(/:(\d+) ->/.exec(up)?.[1])
    const data = randomBytes(1000)
    t.equal(sha256(await roundTrip(await connectTo(port), data)), sha256(data), 'echo through the tunnel that is up')
    t.equal(client.exit, undefined, 'still running')
    client.signal('SIGINT')
    t.equal((await client.waitExit()).code, 0, 'SIGINT: exit 0')
    noToken(t, client, relay.token)
  })

  t.test('--json failures go to stderr as one JSON line with the code', async t => {
    const r = await runBin('mport-connect', [String(echo.port), ...base, '--token', wrongToken, '--fingerprint', relay.fingerprint, '--json'])
    t.equal(r.code, 1)
    const lines = r.stderr.split('\n').filter(l => l !== '')
    t.equal(lines.length, 1, 'one line on stderr')
    t.match(JSON.parse(lines[0] ?? '{}'), { event: 'error', code: 'MPORT_ERR_AUTH_FAILED' })
    noToken(t, r.proc, wrongToken)
  })

  await t.test('close the relay', async t => stopRelay(t, relay))
})

t.test('signals: SIGTERM to the relay with a client connected, then SIGINT to the client', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = await startJsonRelay(['--drain-timeout', '5'])
  const client = spawnBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${relay.port}`, '--token', relay.token, '--fingerprint', relay.fingerprint])
  t.teardown(() => client.kill())
  await client.waitLine(/^tcp:\/\//, 'the tunnel line')
  await relay.proc.waitEvent('tunnel-up')

  relay.proc.signal('SIGTERM')
  const exit = await relay.proc.waitExit()
  t.equal(exit.code, 0, 'the relay exits 0')
  t.match(relay.proc.jsonLines().map(o => o.event), ['listening', 'client', 'tunnel-up', 'stopping'], 'relay events up to stopping')
  t.ok(relay.proc.jsonLines().some(o => o.event === 'stopped'), 'the relay reports it stopped')

  const disconnected = await client.waitLine(/^disconnected: /, 'the disconnected line')
  t.notMatch(disconnected, STACK_LINE)
  await client.waitLine(/^reconnecting in \d+\.\d s \(attempt 1\): /, 'the reconnecting line')
  t.equal(client.exit, undefined, 'the client keeps trying')

  client.signal('SIGINT')
  t.equal((await client.waitExit()).code, 0, 'SIGINT while reconnecting: exit 0')
  t.equal(client.stderr, '', 'nothing on stderr')
  noToken(t, client, relay.token)
})

t.test('status line (the TTY display) formatting', async t => {
  const base = { connections: 0, bytesIn: 0, bytesOut: 0 }
  t.equal(formatStatus([]), 'status: no tunnels')
  t.equal(formatStatus([{ ...base, name: '8080', url: 'tcp://relay.example:30001', online: true, connections: 2, bytesIn: 1536 * 1024, bytesOut: 20 * 1024 }]),
    'status: 8080 tcp://relay.example:30001 (2 open, 1.5 MiB in, 20.0 KiB out)')
  t.equal(formatStatus([
    { ...base, name: 'web', url: 'tcp://r:30001', online: true, bytesIn: 100 },
    { ...base, name: 'ssh', online: false },
    { ...base, name: 'db', online: false, error: new PortNotAllowedError(1000, '30000-60999') },
  ]), 'status: web tcp://r:30001 (0 open, 100 B in, 0 B out) | ssh offline | db refused [MPORT_ERR_PORT_NOT_ALLOWED]')
  t.equal(formatStatus([{ ...base, name: 'x', url: 'tcp://r:1', online: false }]), 'status: x offline', 'offline while reconnecting even with a remembered url')
  t.notMatch(formatStatus([{ ...base, name: 'x', online: false, error: new InvalidConfigError('k', 'm') }]), /\n/, 'one line')
})

t.test('a reader that goes away (mport-relay | head) does not crash the relay', async t => {
  const relay = spawnBin('mport-relay', relayArgs(path.join(tmpDir(), 'data')))
  t.teardown(() => relay.kill())
  await relay.waitLine(/^\S+Z mport relay listening/, 'the listening line')
  relay.child.stdout!.destroy() // the pipe's reader is gone: the next write gets EPIPE
  relay.signal('SIGTERM') // stopping prints a line into the closed pipe
  const exit = await relay.waitExit(30_000)
  t.equal(exit.code, 0, 'graceful exit')
  t.notMatch(relay.stderr, /EPIPE|^\s+at /m, 'no crash, no stack trace')
})
