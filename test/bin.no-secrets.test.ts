/**
 * No secret in any log line: a full run through the real bins with every kind of secret in
 * play, at debug level, in both formats, then every line of every process's stdout and stderr
 * is searched for each secret's value, for the token shapes and for private-key markers.
 *
 * In play: the relay's own token (token_file, no `mpt_` prefix so only the logger's knowledge
 * of it can hide it), a PostgreSQL URL with a password (database_file), the REST API with a
 * signup, logins, a password change, a wrong password and a created API token, a client using
 * that token, an http tunnel with basic auth (basic_auth_file) whose visitors send right and
 * wrong `Authorization` headers and cookies, a wrong token, a kill -9 and restart of a client
 * (its lease ticket from the lease file), and a relay restart (text format) the client
 * reconnects to with its ticket.
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { cleanup, runBin, spawnBin, tmpDir, type BinProcess } from './helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from './helpers/tunnel.js'
import { closedPort, listen } from './helpers/ports.js'
import { postgresTestOptions, startPostgres } from './helpers/postgres.js'
import { sha256 } from './helpers/digest.js'
import { waitFor } from './helpers/wait.js'

t.teardown(cleanup)

const hex = (n: number): string => randomBytes(n).toString('hex')

/** A request to `port` with a Host header and extra headers; resolves with the status. */
function request (port: number, host: string, headers: Record<string, string>, body?: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: body === undefined ? 'GET' : 'POST', path: '/', headers: { host, ...headers } }, res => {
      let text = ''
      res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.once('error', reject)
    req.end(body)
  })
}

/** A JSON call to the relay's REST API. */
async function api (port: number, method: string, url: string, body?: unknown, bearer?: string): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  return { status: res.status, json: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
}

t.test('a full run: no secret in any line of any process', postgresTestOptions(), async t => {
  const pg = await startPostgres()
  t.teardown(() => pg.stop())
  const dir = tmpDir()
  const write = (name: string, text: string): string => { const f = path.join(dir, name); writeFileSync(f, text, { mode: 0o600 }); return f }

  const relayToken = `owner-secret-${hex(16)}`
  const dbPassword = `db-Pass-${hex(12)}`
  const firstPassword = `first password ${hex(8)}`
  const secondPassword = `second password ${hex(8)}`
  const wrongPassword = `wrong password ${hex(8)}`
  const basicPassword = `basic-${hex(10)}`
  const wrongBasic = `wrong-basic-${hex(6)}`
  const wrongToken = `mpt_wrong${hex(12)}`
  // The cluster trusts loopback, so any password works; the relay still holds this one in its URL.
  const dbUrl = (await pg.createDatabase()).replace('postgres://postgres@', `postgres://postgres:${dbPassword}@`)

  const dataDir = path.join(dir, 'data')
  const controlPort = await closedPort()
  const config = write('relay.yaml', [
    'host: 127.0.0.1',
    `port: ${controlPort}`,
    'bind_host: 127.0.0.1',
    'public_host: 127.0.0.1',
    'ports: 30000-60999',
    `data_dir: ${JSON.stringify(dataDir)}`,
    `token_file: ${JSON.stringify(write('relay.token', `${relayToken}\n`))}`,
    `database_file: ${JSON.stringify(write('database.url', `${dbUrl}\n`))}`,
    'domain: tunnels.test',
    'http_port: 0',
    'api_port: 0',
    'open_signup: true',
    'verbose: true',
    'log_level: debug',
    '',
  ].join('\n'))
  const procs: BinProcess[] = []
  const spawned = (p: BinProcess): BinProcess => { procs.push(p); t.teardown(() => p.kill()); return p }

  // The relay, piped: JSON lines (the default), debug.
  const relay = spawned(spawnBin('mport-relay', ['--config', config]))
  const listening = await relay.waitEvent('listening', () => true, 90_000)
  const apiPort = listening.apiPort as number
  const httpPort = listening.httpPort as number
  t.ok(apiPort > 0 && httpPort > 0, 'the API and the shared HTTP port are up')

  // The REST API: signup, login, a password change, a wrong password, an API token.
  t.equal((await api(apiPort, 'POST', '/v1/signup', { name: 'alice', password: firstPassword })).status, 201, 'signup')
  const login1 = await api(apiPort, 'POST', '/v1/login', { name: 'alice', password: firstPassword })
  const session1 = login1.json.token as string
  t.match(session1, /^mps_/, 'a session token')
  t.equal((await api(apiPort, 'PUT', '/v1/me/password', { current: firstPassword, password: secondPassword }, session1)).status < 300, true, 'password changed')
  t.equal((await api(apiPort, 'POST', '/v1/login', { name: 'alice', password: wrongPassword })).status, 401, 'a wrong password is refused')
  const session2 = (await api(apiPort, 'POST', '/v1/login', { name: 'alice', password: secondPassword })).json.token as string
  const created = await api(apiPort, 'POST', '/v1/tokens', { name: 'laptop' }, session2)
  const apiToken = created.json.token as string
  t.match(apiToken, /^mpt_/, 'an API token for alice')

  // Client A: a tcp tunnel with alice's token (from the environment), JSON, verbose; its lease file in a HOME of its own.
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const homeA = tmpDir('mport-home-a-')
  const envA = { HOME: homeA, XDG_CONFIG_HOME: path.join(homeA, '.config'), MPORT_TOKEN: apiToken }
  const argsA = [`ssh=${echo.port}`, '--relay', `127.0.0.1:${controlPort}`, '--fingerprint', listening.fingerprint as string, '--log-format', 'json', '--verbose']
  const clientA = spawned(spawnBin('mport-connect', argsA, { env: envA }))
  const tunnelA = await clientA.waitEvent('tunnel', () => true, 60_000)
  const portA = tunnelA.remotePort as number
  for (let i = 0; i < 3; i++) {
    const data = randomBytes(32 * 1024)
    t.equal(sha256(await roundTrip(await connectTo(portA), data)), sha256(data), `tcp round trip ${i + 1}`)
  }

  // Client B: an http tunnel with basic auth, from a config file with token_file and basic_auth_file; text lines, verbose.
  const web = http.createServer((req, res) => { res.end(`hello ${req.headers.cookie === undefined ? '' : 'with a cookie'}`) })
  const webPort = await listen(web)
  t.teardown(() => new Promise<void>(resolve => web.close(() => resolve())))
  const clientConfig = write('client.yaml', [
    `relay: 127.0.0.1:${controlPort}`,
    `token_file: ${JSON.stringify(write('client.token', relayToken))}`,
    `fingerprint: ${listening.fingerprint as string}`,
    'tunnels:',
    `  - { name: shop, kind: http, local: ${webPort}, subdomain: shop, basic_auth_file: ${JSON.stringify(write('basic', `alice:${basicPassword}\n`))} }`,
    '',
  ].join('\n'))
  const clientB = spawned(spawnBin('mport-connect', ['--config', clientConfig, '--verbose']))
  await clientB.waitLine(/shop\.tunnels\.test/, 'the http tunnel line', 60_000)
  const host = 'shop.tunnels.test'
  const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
  t.equal((await request(httpPort, host, {})).status, 401, 'no credentials: 401')
  t.equal((await request(httpPort, host, { authorization: basic('alice', wrongBasic) })).status, 401, 'wrong basic auth: 401')
  t.equal((await request(httpPort, host, { authorization: `Bearer ${apiToken}`, cookie: `session=${session2}` })).status, 401, 'a bearer token is not basic auth: 401')
  const ok = await request(httpPort, host, { authorization: basic('alice', basicPassword), cookie: `session=${session2}` }, 'a body')
  t.equal(ok.status, 200, 'right basic auth: 200')
  t.equal(ok.body, 'hello with a cookie', 'the request reached the local service')

  // A wrong token.
  const wrong = await runBin('mport-connect', [String(echo.port), '--relay', `127.0.0.1:${controlPort}`, '--fingerprint', listening.fingerprint as string, '--no-reconnect'], { env: { MPORT_TOKEN: wrongToken } })
  procs.push(wrong.proc)
  t.equal(wrong.code, 1, 'a wrong token: exit 1')
  await relay.waitEvent('auth-failed')

  // Client A killed hard and restarted: it presents the lease ticket from its lease file.
  await clientA.kill()
  const clientA2 = spawned(spawnBin('mport-connect', argsA, { env: envA }))
  const resumed = await clientA2.waitEvent('connected', () => true, 60_000)
  t.equal(resumed.resumed, true, 'the restarted client took up its lease (ticket from the lease file)')
  const again = await clientA2.waitEvent('tunnel')
  t.equal(again.remotePort, portA, 'same public port')
  const data = randomBytes(16 * 1024)
  t.equal(sha256(await roundTrip(await connectTo(portA), data)), sha256(data), 'tcp round trip after the restart')
  const leaseDir = path.join(homeA, '.config', 'mport', 'leases')
  const leaseText = readdirSync(leaseDir).map(f => readFileSync(path.join(leaseDir, f), 'utf8')).join('\n')
  const leaseSecrets = [...leaseText.matchAll(/"secret"\s*:\s*"([^"]+)"/g)].map(m => m[1]!)
  t.ok(leaseSecrets.length >= 1, 'the lease file holds a ticket secret to look for')

  // The relay restarts in text format on the same port; client A reconnects with its ticket.
  relay.signal('SIGTERM')
  t.equal((await relay.waitExit(60_000)).code, 0, 'the relay stops')
  await clientA2.waitEvent('reconnecting', () => true, 60_000)
  const relay2 = spawned(spawnBin('mport-relay', ['--config', config, '--log-format', 'text']))
  await relay2.waitLine(/ mport relay listening on /, 'the second relay', 60_000)
  await waitFor(() => clientA2.jsonLines().filter(e => e.event === 'tunnel').length >= 2, { what: 'client A\'s tunnel on the second relay', timeoutMs: 120_000, intervalMs: 100 })
  const tunnels2 = clientA2.jsonLines().filter(e => e.event === 'tunnel')
  const port2 = tunnels2.at(-1)!.remotePort as number
  const data2 = randomBytes(8 * 1024)
  t.equal(sha256(await roundTrip(await connectTo(port2), data2)), sha256(data2), 'tcp round trip through the second relay')
  await relay2.waitLine(/closed \(8\.0 KiB in, 8\.0 KiB out\)$/, 'the second relay\'s connection line')

  for (const p of [clientA2, clientB]) p.signal('SIGINT')
  relay2.signal('SIGTERM')
  for (const p of [clientA2, clientB, relay2]) await p.waitExit(60_000)

  // What the run printed.
  const keyPem = readFileSync(path.join(dataDir, 'key.pem'), 'utf8')
  const keyBody = keyPem.split('\n').filter(l => l !== '' && !l.startsWith('-----'))
  const secrets: Record<string, string> = {
    'the relay token': relayToken,
    'the database password': dbPassword,
    'the first password': firstPassword,
    'the second password': secondPassword,
    'the wrong password': wrongPassword,
    'the first session token': session1,
    'the second session token': session2,
    'the API token': apiToken,
    'the wrong token': wrongToken,
    'the basic-auth password': basicPassword,
    'the wrong basic-auth password': wrongBasic,
    'the right Authorization header': Buffer.from(`alice:${basicPassword}`).toString('base64'),
    'the wrong Authorization header': Buffer.from(`alice:${wrongBasic}`).toString('base64'),
    ...Object.fromEntries(leaseSecrets.map((s, i) => [`lease ticket secret ${i + 1}`, s])),
    'the relay key, first line of its body': keyBody[0]!,
    'the relay key, last line of its body': keyBody.at(-1)!,
  }
  const lines = procs.flatMap(p => p.output.split('\n').filter(l => l !== '').map(line => ({ who: `${p.name} ${p.args.slice(0, 2).join(' ')}`, line })))
  const leaks: string[] = []
  for (const { who, line } of lines) {
    for (const [name, value] of Object.entries(secrets)) if (line.includes(value)) leaks.push(`${who}: ${name} in: ${line}`)
    if (/\bmp[ts]_(?!\*\*\*)[A-Za-z0-9_-]+/.test(line)) leaks.push(`${who}: a token-shaped string in: ${line}`)
    if (/PRIVATE KEY/.test(line)) leaks.push(`${who}: a private key marker in: ${line}`)
  }
  t.same(leaks, [], `no secret in any of ${lines.length} lines of ${procs.length} processes`)

  // The check above means something only if the run logged a lot, of every kind.
  const events = (p: BinProcess): string[] => p.jsonLines().map(o => o.event as string)
  const count = (list: string[], e: string): number => list.filter(x => x === e).length
  const r1 = events(relay)
  t.ok(r1.length >= 25, `the JSON relay wrote ${r1.length} lines`)
  for (const e of ['listening', 'client', 'tunnel-up', 'connection', 'connection-closed', 'auth-failed', 'client-closed', 'stopping']) t.ok(count(r1, e) >= 1, `the relay logged ${e} (${count(r1, e)})`)
  t.ok(count(r1, 'connection') >= 5, 'a debug line per visitor connection')
  const apiLines = relay.jsonLines().filter(o => o.event === 'api-request')
  t.ok(apiLines.length >= 6, `a line per API request (${apiLines.length})`)
  t.match(apiLines.find(o => o.route === '/v1/me/password'), { method: 'PUT', status: 204, user: 'alice', level: 'debug' }, 'the password change, by route, without its body')
  t.match(apiLines.find(o => o.route === '/v1/login' && o.status === 401), { level: 'info' }, 'the wrong password as a 401, at info')
  t.ok(r1.length === relay.jsonLines().length && relay.jsonLines().every(o => o.level !== undefined), 'every relay line is a log object')
  const a = [...events(clientA), ...events(clientA2)]
  for (const e of ['connected', 'tunnel', 'connection', 'connection-closed', 'reconnecting']) t.ok(count(a, e) >= 1, `client A logged ${e} (${count(a, e)})`)
  t.ok(clientB.lines().length >= 4, `client B (text) wrote ${clientB.lines().length} lines`)
  t.ok(clientB.lines().some(l => /shop: 127\.0\.0\.1:\d+ closed/.test(l)), 'client B logged its visitor connections')
  t.ok(relay2.lines().length >= 5, `the text relay wrote ${relay2.lines().length} lines`)
  t.ok(wrong.stderr.includes('MPORT_ERR_AUTH_FAILED'), 'the wrong-token client said why it failed')
})
