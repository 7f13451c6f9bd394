/**
 * The relay hands out its own client (GET /dl/…, GET /v1/connect-info): the bundle is built
 * with the real build (scripts/bundle-client.ts), served by a real relay service on loopback,
 * downloaded over HTTP, checked against SHA256SUMS (with sha256sum itself) and its headers,
 * then run the way connect-info tells a user to — curl, then node, in an empty folder with an
 * empty HOME and no node_modules anywhere above — and a real TCP service is reached through the
 * tunnel it opens. A relay without the bundle answers a typed 404 and keeps serving.
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startRelayService, ClientDownloads, CLIENT_BUNDLE } from '../../packages/mport-relay/src/index.js'
import { VERSION } from '../../src/version.js'
import { bundleClient } from '../../scripts/bundle-client.js'
import { runCommand as run } from '../helpers/run-command.js'
import { cleanup, REPO_ROOT, spawnBin } from '../helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'
import { startApi } from '../api/fixtures/api.js'

t.teardown(cleanup)

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mport-dl-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

/** No node_modules folder in `dir` or any folder above it: nothing but the one file can be loaded. */
function noNodeModulesAbove (dir: string): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'node_modules'))) return false
    if (path.dirname(d) === d) return true
  }
}

/** An environment with nothing of this process in it: PATH (for node and curl), an empty HOME. */
function bareEnv (home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), NO_COLOR: '1', ...extra }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('download the bundle from the relay, verify it, run it with node alone, tunnel through it', async t => {
  const dlDir = path.join(tmp, 'dl')
  const built = await bundleClient(dlDir)
  t.comment(`bundle: ${built.bytes} bytes (${(built.bytes / 1024).toFixed(0)} KiB)`)
  t.ok(built.bytes < 1024 * 1024, `the bundle stays under 1 MiB (${built.bytes} bytes)`)

  // A self-signed relay (no cert given): clients must pin its fingerprint.
  const dataDir = path.join(tmp, 'relay-data')
  const service = await startRelayService({
    dataDir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    api: { host: '127.0.0.1', port: 0, downloads: new ClientDownloads({ dir: dlDir }) },
  })
  const echo = await startEcho()
  t.teardown(async () => { await echo.close(); await service.close(100) })
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const login = await (await fetch(`${api}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'alice', password: 'correct horse battery' }) })).json() as { token: string }
  const auth = { authorization: `Bearer ${login.token}` }

  // connect-info: users only; then everything a client needs.
  const anon = await fetch(`${api}/v1/connect-info`)
  t.equal(anon.status, 401, 'connect-info needs a signed-in user')
  t.match(await anon.json(), { error: { code: 'MPORT_ERR_UNAUTHENTICATED' } })
  t.equal((await fetch(`${api}/v1/connect-info?port=70000`, { headers: auth })).status, 400, 'a port out of range is refused')
  const infoRes = await fetch(`${api}/v1/connect-info?port=${echo.port}`, { headers: auth })
  t.equal(infoRes.status, 200)
  const info = await infoRes.json() as {
    version: string, relay: string, fingerprint: string, pinFingerprint: boolean, sha256sums: string, executable?: unknown,
    downloads: Array<{ name: string, url: string, size: number, sha256: string, runsOn: string }>, commands: { npx: string, download: string, verify: string }
  }
  t.equal(info.version, VERSION)
  t.equal(info.relay, `127.0.0.1:${service.relay.address.port}`, 'the control address clients connect to')
  t.equal(info.fingerprint, service.fingerprint, 'the control certificate\'s fingerprint')
  t.match(info.fingerprint, /^sha256:[0-9a-f]{64}$/, 'in the form --fingerprint takes')
  t.equal(info.pinFingerprint, true, 'a self-signed certificate must be pinned')
  t.equal(info.sha256sums, `${api}/dl/SHA256SUMS`)
  t.notOk('executable' in info, 'no executable offered by this relay')
  const args = `${echo.port} --relay ${info.relay} --fingerprint ${info.fingerprint}`
  t.equal(info.commands.npx, `npx mport-connect ${args}`)
  t.equal(info.commands.download, `curl -fsSLO ${api}/dl/${CLIENT_BUNDLE} && node ${CLIENT_BUNDLE} ${args}`)
  t.equal(info.commands.verify, `curl -fsSLO ${api}/dl/SHA256SUMS && sha256sum -c --ignore-missing SHA256SUMS`)
  t.notMatch(JSON.stringify(info), /mpt_|mps_|--token/, 'no token in connect-info')

  // The download itself, with the headers a user (and a cache) checks.
  const res = await fetch(`${api}/dl/${CLIENT_BUNDLE}`)
  t.equal(res.status, 200)
  const body = Buffer.from(await res.arrayBuffer())
  const digest = sha256(body)
  t.equal(digest, sha256(readFileSync(built.file)), 'the bytes served are the bundle built')
  t.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8')
  t.equal(res.headers.get('content-length'), String(body.length))
  t.equal(res.headers.get('x-content-sha256'), digest, 'x-content-sha256 is the SHA-256 of the body')
  t.equal(res.headers.get('etag'), `"sha256-${digest}"`)
  t.equal(res.headers.get('cache-control'), 'public, no-cache')
  t.equal(res.headers.get('x-mport-version'), VERSION)
  t.same(info.downloads, [{ name: CLIENT_BUNDLE, url: `${api}/dl/${CLIENT_BUNDLE}`, size: body.length, sha256: digest, runsOn: 'Node >= 20.19' }], 'connect-info lists the bundle with its size and SHA-256')
  const again = await fetch(`${api}/dl/${CLIENT_BUNDLE}`, { headers: { 'if-none-match': `"sha256-${digest}"` } })
  t.equal(again.status, 304, 'a cached copy that matches is not sent again')
  t.equal((await again.arrayBuffer()).byteLength, 0)
  const head = await fetch(`${api}/dl/${CLIENT_BUNDLE}`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('x-content-sha256'), digest, 'HEAD gives the checksum without the body')
  t.equal(head.headers.get('content-length'), String(body.length), 'and the size')
  t.equal((await head.arrayBuffer()).byteLength, 0)

  const sums = await fetch(`${api}/dl/SHA256SUMS`)
  t.equal(sums.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(await sums.text(), `${digest}  ${CLIENT_BUNDLE}\n`, 'SHA256SUMS in sha256sum\'s format')

  // As a user would: an empty folder with an empty HOME, connect-info's own command lines.
  const home = path.join(tmp, 'home')
  const cwd = path.join(tmp, 'machine-behind-nat')
  mkdirSync(home)
  mkdirSync(cwd)
  t.ok(noNodeModulesAbove(cwd), `no node_modules in ${cwd} or above it`)
  const verify = await run('bash', ['-c', `${info.commands.download.split(' && ')[0]!} && ${info.commands.verify}`], cwd, bareEnv(home))
  t.equal(verify.code, 0, `curl and sha256sum -c succeed: ${verify.stderr}`)
  t.equal(verify.stdout.trim(), `${CLIENT_BUNDLE}: OK`, 'sha256sum -c checks the download against SHA256SUMS')
  const version = await run('node', [CLIENT_BUNDLE, '--version'], cwd, bareEnv(home))
  t.equal(version.stdout.trim(), VERSION, 'node mport-connect.mjs --version matches the relay')

  // The tunnel token from the API (what the dashboard creates), through the environment.
  const created = await (await fetch(`${api}/v1/tokens`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'nat-box' }) })).json() as { token: string }
  // The inspector is on (--inspect) to show the page's files came inside the one file.
  const client = spawnBin('mport-connect', [], {
    command: { file: 'bash', args: ['-c', `${info.commands.download} --json --inspect --inspect-addr 127.0.0.1:0`], cwd, env: bareEnv(home, { MPORT_TOKEN: created.token }) },
    detached: true,
  })
  const tunnel = await client.waitEvent('tunnel')
  t.match(tunnel, { url: /^tcp:\/\/127\.0\.0\.1:\d+$/ }, 'the downloaded client opens a tunnel')
  const data = randomBytes(256 * 1024)
  const echoed = await roundTrip(await connectTo(tunnel.remotePort as number), data)
  t.ok(echoed.equals(data), '256 KiB through the tunnel to the TCP service behind it came back intact')
  const inspect = await client.waitEvent('inspect')
  const page = await fetch(String(inspect.url))
  t.equal(page.status, 200)
  t.equal(await page.text(), readFileSync(path.join(REPO_ROOT, 'packages/mport-connect/assets/inspect/index.html'), 'utf8'), 'the inspector page is inside the bundle')
  t.notOk(client.output.includes(created.token), 'the client never prints the token')
  t.same(readdirSync(cwd).sort(), [CLIENT_BUNDLE, 'SHA256SUMS'].sort(), 'nothing but the two downloads in the folder')

  client.signalGroup('SIGTERM')
  await client.waitExit()
  t.match(client.jsonLines().at(-1), { event: 'stopping', signal: 'SIGTERM' }, 'it stops on SIGTERM')
})

t.test('a relay without the bundle answers a typed 404 saying how to build it, and keeps serving', async t => {
  const empty = path.join(tmp, 'not-built')
  mkdirSync(empty)
  const { call, base, users } = await startApi(t, {
    downloads: new ClientDownloads({ dir: empty }),
    relayAddress: '127.0.0.1:7835',
    relayCertificate: { fingerprint: `sha256:${'ab'.repeat(32)}`, selfSigned: false },
  })
  const missing = await call('GET', `/dl/${CLIENT_BUNDLE}`)
  t.equal(missing.status, 404)
  t.match(missing.body, { error: { code: 'MPORT_ERR_DOWNLOAD_MISSING', message: /npm run build/ } }, 'typed, with how to build it')
  const exe = await call('GET', '/dl/mport-connect-linux-x64')
  t.match(exe.body, { error: { code: 'MPORT_ERR_DOWNLOAD_MISSING', message: /does not offer the executable/ } })
  t.equal((await call('GET', '/dl/SHA256SUMS')).body, undefined, 'SHA256SUMS is empty: nothing to check')
  const info = await call('GET', '/v1/connect-info', { token: users.alice.session })
  t.equal(info.status, 200)
  t.same(info.body.downloads, [])
  t.same(Object.keys(info.body.commands), ['npx'], 'only the npx command without a bundle')
  t.equal(info.body.commands.npx, 'npx mport-connect 5555 --relay 127.0.0.1:7835', 'a CA-verified certificate is not pinned in the command')
  t.equal(info.body.pinFingerprint, false)
  t.equal((await call('GET', '/v1/health')).status, 200, 'the API keeps serving')

  // The bundle built later is served without a restart.
  writeFileSync(path.join(empty, CLIENT_BUNDLE), 'console.log("late build")\n')
  const late = await fetch(`${base}/dl/${CLIENT_BUNDLE}`)
  t.equal(late.status, 200)
  t.equal(await late.text(), 'console.log("late build")\n')
})

t.test('connect-info on an API without a relay answers 503', async t => {
  const { call, users } = await startApi(t)
  const r = await call('GET', '/v1/connect-info', { token: users.alice.session })
  t.equal(r.status, 503)
  t.match(r.body, { error: { code: 'MPORT_ERR_UNAVAILABLE' } })
})
