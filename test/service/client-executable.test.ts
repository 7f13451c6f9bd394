/**
 * The Linux x64 executable (GET /dl/mport-connect-linux-x64): a real relay service on loopback
 * makes it from this machine's own Node on the first request (once, however many ask at once),
 * lists it in connect-info and SHA256SUMS, and the user runs connect-info's own command line
 * — curl, chmod, run — with a PATH that has no node on it, and reaches a real TCP service
 * through the tunnel. A build that fails answers a typed 404 and is tried again only after a
 * pause (an injected clock). Needs a linux-x64 host: elsewhere it skips with a line saying so.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startRelayService, ClientDownloads, ClientExecutable, CLIENT_EXECUTABLE, executableUnsupported } from '../../packages/mport-relay/src/index.js'
import { VERSION } from '../../src/version.js'
import { bundleClient } from '../../scripts/bundle-client.js'
import { runCommand as run } from '../helpers/run-command.js'
import { cleanup, spawnBin } from '../helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'
import { startApi } from '../api/fixtures/api.js'

t.teardown(cleanup)

const unsupported = executableUnsupported()
if (unsupported !== undefined) {
  if (process.env.CI === 'true') throw new Error(`the client executable test needs a linux-x64 host under CI: ${unsupported}`)
  t.comment(`skipped: ${unsupported}`)
  process.exit(0)
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mport-exe-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

/** A folder of symlinks to just these commands: a PATH on which there is no node. */
function pathWithOnly (commands: string[]): string {
  const dir = path.join(tmp, 'bin-no-node')
  mkdirSync(dir)
  for (const c of commands) symlinkSync(`/usr/bin/${c}`, path.join(dir, c))
  return dir
}


t.test('the relay makes the executable on first request; it runs without Node and carries a tunnel', async t => {
  const dlDir = path.join(tmp, 'dl')
  await bundleClient(dlDir, 'esm')
  const { file: source } = await bundleClient(dlDir, 'cjs')
  const dataDir = path.join(tmp, 'relay-data')
  const log: string[] = []
  const executable = new ClientExecutable({ dir: path.join(dataDir, 'downloads'), version: VERSION, source, log: l => log.push(l) })
  const service = await startRelayService({
    dataDir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    api: { host: '127.0.0.1', port: 0, downloads: new ClientDownloads({ dir: dlDir, executable }) },
  })
  const echo = await startEcho()
  t.teardown(async () => { await echo.close(); await service.close(100) })
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const { raw: token } = await service.store.createToken(alice.id, 'no-node-box')
  const session = (await service.store.createSession(alice.id, 3_600_000)).raw
  type Info = { downloads: Array<{ name: string, size: number, sha256: string }>, executable?: { name: string, url: string, ready: boolean }, commands: { executable: string } }
  const connectInfo = async (): Promise<Info> => await (await fetch(`${api}/v1/connect-info?port=${echo.port}`, { headers: { authorization: `Bearer ${session}` } })).json() as Info

  const before = await connectInfo()
  t.same(before.executable, { name: CLIENT_EXECUTABLE, url: `${api}/dl/${CLIENT_EXECUTABLE}`, ready: false }, 'offered, not made yet')
  t.notOk(before.downloads.some(d => d.name === CLIENT_EXECUTABLE), 'not listed with a checksum before it exists')
  t.equal(before.commands.executable, `curl -fsSLO ${api}/dl/${CLIENT_EXECUTABLE} && chmod +x ${CLIENT_EXECUTABLE} && ./${CLIENT_EXECUTABLE} ${echo.port} --relay 127.0.0.1:${service.relay.address.port} --fingerprint ${service.fingerprint}`)

  // Two users at once: one build, both answered with the same file.
  const started = Date.now()
  const [a, b] = await Promise.all([1, 2].map(() => fetch(`${api}/dl/${CLIENT_EXECUTABLE}`, { method: 'HEAD', signal: AbortSignal.timeout(300_000) })))
  const buildMs = Date.now() - started
  t.equal(a!.status, 200)
  t.equal(b!.status, 200)
  t.equal(log.filter(l => l.includes('making')).length, 1, 'one build for two requests')
  const sha = a!.headers.get('x-content-sha256')
  t.equal(b!.headers.get('x-content-sha256'), sha)
  t.equal(a!.headers.get('content-type'), 'application/octet-stream')
  const size = Number(a!.headers.get('content-length'))
  t.comment(`executable: ${size} bytes (${(size / 1024 / 1024).toFixed(1)} MiB), made in ${(buildMs / 1000).toFixed(1)} s`)
  t.ok(size > 50 * 1024 * 1024, 'Node is inside it')

  const after = await connectInfo()
  t.equal(after.executable?.ready, true, 'connect-info says it is ready')
  t.same(after.downloads.find(d => d.name === CLIENT_EXECUTABLE), { name: CLIENT_EXECUTABLE, url: `${api}/dl/${CLIENT_EXECUTABLE}`, size, sha256: sha, runsOn: 'Linux x64' }, 'listed with size and SHA-256')
  const sums = await (await fetch(`${api}/dl/SHA256SUMS`)).text()
  t.match(sums, new RegExp(`^[0-9a-f]{64}  mport-connect\\.mjs\\n${sha}  ${CLIENT_EXECUTABLE}\\n$`), 'SHA256SUMS lists both files')

  // A machine without Node: only bash, curl, chmod and sha256sum on the PATH.
  const home = path.join(tmp, 'home')
  const cwd = path.join(tmp, 'machine-without-node')
  mkdirSync(home)
  mkdirSync(cwd)
  const env = { PATH: pathWithOnly(['bash', 'curl', 'chmod', 'sha256sum']), HOME: home, NO_COLOR: '1' }
  t.equal((await run('/usr/bin/bash', ['-c', 'command -v node || echo none'], cwd, env)).stdout.trim(), 'none', 'no node on this PATH')
  const client = spawnBin('mport-connect', [], {
    command: { file: '/usr/bin/bash', args: ['-c', `${after.commands.executable} --json`], cwd, env: { ...env, MPORT_TOKEN: token } },
    detached: true,
  })
  const tunnel = await client.waitEvent('tunnel', () => true, 180_000)
  const data = randomBytes(256 * 1024)
  t.ok((await roundTrip(await connectTo(tunnel.remotePort as number), data)).equals(data), '256 KiB through the executable\'s tunnel came back intact')
  t.notOk(client.output.includes(token), 'the token is never printed')
  t.notMatch(client.stderr, /Warning/, 'no runtime warnings (experimental SEA, embedded require)')
  client.signalGroup('SIGTERM')
  await client.waitExit()

  const check = await run('/usr/bin/bash', ['-c', `curl -fsSLO ${api}/dl/SHA256SUMS && sha256sum -c --ignore-missing SHA256SUMS`], cwd, env)
  t.equal(check.stdout.trim(), `${CLIENT_EXECUTABLE}: OK`, 'sha256sum -c checks the executable')
  const version = await run(path.join(cwd, CLIENT_EXECUTABLE), ['--version'], cwd, env)
  t.equal(version.stdout.trim(), VERSION, '--version matches the relay')
  t.equal(statSync(path.join(cwd, CLIENT_EXECUTABLE)).size, size)
  t.same(readdirSync(path.join(dataDir, 'downloads')).length, 1, 'one executable kept in the data dir, no build leftovers')

  // A restart of the relay (a new ClientExecutable over the same data dir) serves it without a build.
  const again = new ClientExecutable({ dir: path.join(dataDir, 'downloads'), version: VERSION, source })
  t.equal(await again.ready(), await executable.ready(), 'found on disk after a restart')
})

t.test('a build that fails answers a typed 404, keeps serving, and is tried again only after a pause', async t => {
  const dlDir = path.join(tmp, 'dl-broken')
  await bundleClient(dlDir, 'esm')
  const { file: source } = await bundleClient(dlDir, 'cjs')
  let now = 0
  const log: string[] = []
  // A "node" that writes no blob: the injection step fails.
  const executable = new ClientExecutable({ dir: path.join(tmp, 'broken-downloads'), version: VERSION, source, node: '/usr/bin/true', now: () => now, log: l => log.push(l) })
  const { call } = await startApi(t, { downloads: new ClientDownloads({ dir: dlDir, executable }) })
  const first = await call('GET', `/dl/${CLIENT_EXECUTABLE}`)
  t.equal(first.status, 404)
  t.match(first.body, { error: { code: 'MPORT_ERR_DOWNLOAD_MISSING', message: /making it on the relay host failed/ } })
  t.equal((await call('GET', '/dl/mport-connect.mjs')).status, 200, 'the bundle is still served')
  now += 60_000
  t.match((await call('GET', `/dl/${CLIENT_EXECUTABLE}`)).body, { error: { code: 'MPORT_ERR_DOWNLOAD_MISSING' } })
  t.equal(log.filter(l => l.includes('making')).length, 1, 'not tried again within the pause')
  now += 10 * 60_000
  await call('GET', `/dl/${CLIENT_EXECUTABLE}`)
  t.equal(log.filter(l => l.includes('making')).length, 2, 'tried again after it')
  t.same(readdirSync(path.join(tmp, 'broken-downloads')), [], 'failed builds leave nothing behind')
})
