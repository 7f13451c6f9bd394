/**
 * The packages install and run the way a user gets them: a real npm registry on loopback
 * (verdaccio) receives `npm publish` of mport, mport-connect and mport-relay; then, in empty
 * folders with fresh HOMEs, `npx --registry … mport-relay` and `npx --registry … mport-connect`
 * carry bytes end to end. Each install's size and package count is measured and bounded: the
 * client must stay small and bring no database driver or web framework.
 *
 * Needs the npm registry for the third-party dependencies (verdaccio proxies it). Every step is
 * bounded; the sizes are printed as test comments.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { REPO_ROOT, spawnBin, cleanup, type BinProcess } from '../helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'
import { closedPort } from '../helpers/ports.js'
import { waitFor } from '../helpers/wait.js'

t.setTimeout(900_000)

const VERDACCIO = '6.8.0'
const PACKAGES = ['mport', 'mport-connect', 'mport-relay'] as const
/** The client's install must stay under this (node_modules of the npx install, bytes on disk). */
const CLIENT_MAX_BYTES = 15 * 1024 * 1024
/** Packages a client never needs. */
const SERVER_ONLY = ['fastify', '@fastify/swagger', '@fastify/swagger-ui', 'kysely', 'libsql', 'pg', 'acme-client', 'prom-client']

const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'packages/mport/package.json'), 'utf8')) as { version: string }).version
const tmp = path.join(os.tmpdir(), `mport-registry-${process.pid}`)
const children = new Set<ChildProcess>()

t.teardown(async () => {
  for (const c of children) c.kill('SIGKILL')
  await cleanup()
  rmSync(tmp, { recursive: true, force: true })
})

/** npm's own variables from the tap run would point the child npm at this repo. */
function npmEnv (home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|NPM_|INIT_CWD$|MPORT_|TAP|_TAPJS|NODE_OPTIONS$|NODE_V8_COVERAGE$)/.test(k)) continue
    env[k] = v
  }
  return {
    ...env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    npm_config_cache: path.join(home, '.npm'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    NO_COLOR: '1',
  }
}

interface Result { code: number | null, stdout: string, stderr: string }

/** Runs a command to its end; on timeout kills it and rejects with what it printed. */
function run (file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out after ${timeoutMs} ms: ${file} ${args.join(' ')} (in ${cwd})\n--- stdout ---\n${stdout}--- stderr ---\n${stderr}`))
    }, timeoutMs)
    child.once('error', err => { clearTimeout(timer); children.delete(child); reject(err) })
    child.once('close', code => { clearTimeout(timer); children.delete(child); resolve({ code, stdout, stderr }) })
  })
}

function mustSucceed (r: Result, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`)
}

/** verdaccio, installed once into node_modules/.cache (it pins node-fetch 2.7.0 to run on Node 20). */
async function installVerdaccio (): Promise<string> {
  const dir = path.join(REPO_ROOT, 'node_modules', '.cache', `mport-verdaccio-${VERDACCIO}`)
  const bin = path.join(dir, 'node_modules', 'verdaccio', 'bin', 'verdaccio')
  if (existsSync(bin)) return bin
  mkdirSync(dir, { recursive: true })
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({
    name: 'mport-test-registry', private: true, dependencies: { verdaccio: VERDACCIO }, overrides: { 'node-fetch': '2.7.0' },
  }, null, 2))
  const home = path.join(tmp, 'home-verdaccio-install')
  mkdirSync(home, { recursive: true })
  mustSucceed(await run('npm', ['install', '--no-package-lock', '--omit=dev'], dir, npmEnv(home), 300_000), 'npm install verdaccio')
  return bin
}

interface Registry { url: string, port: number }

async function startRegistry (bin: string): Promise<Registry> {
  const dir = path.join(tmp, 'registry')
  mkdirSync(dir, { recursive: true })
  const upstream = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8', env: npmEnv(os.homedir()) }).stdout.trim() || 'https://registry.npmjs.org/'
  const port = await closedPort() // verdaccio takes a port number, not a listening socket
  // Our packages come only from what the test publishes; everything else from the registry npm uses.
  writeFileSync(path.join(dir, 'config.yaml'), [
    `storage: ${JSON.stringify(path.join(dir, 'storage'))}`,
    'uplinks:',
    '  upstream:',
    `    url: ${JSON.stringify(upstream)}`,
    '    timeout: 60s',
    'packages:',
    "  'mport':",
    '    access: $all',
    '    publish: $anonymous',
    "  'mport-*':",
    '    access: $all',
    '    publish: $anonymous',
    "  '**':",
    '    access: $all',
    '    proxy: upstream',
    'log: { type: stdout, format: pretty, level: warn }',
    `listen: 127.0.0.1:${port}`,
    '',
  ].join('\n'))
  const child = spawn(process.execPath, [bin, '--config', path.join(dir, 'config.yaml')], { cwd: dir, env: npmEnv(path.join(tmp, 'home-verdaccio')), stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { output += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { output += s })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`verdaccio exited ${child.exitCode}:\n${output}`)
    try { return (await fetch(`${url}/-/ping`)).ok } catch { return false }
  }, { what: `verdaccio answering on ${url}/-/ping`, timeoutMs: 60_000, intervalMs: 100 })
  return { url, port }
}

/** Bytes on disk under a folder (file sizes, not blocks). */
function folderBytes (dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) total += folderBytes(p)
    else if (entry.isFile()) total += statSync(p).size
  }
  return total
}

/** Every package installed under node_modules, nested ones included, by name. */
function installedPackages (nodeModules: string): string[] {
  const names: string[] = []
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue
      if (entry.name.startsWith('@')) {
        for (const scoped of readdirSync(path.join(dir, entry.name), { withFileTypes: true })) {
          if (scoped.isDirectory()) visit(path.join(dir, entry.name, scoped.name), `${entry.name}/${scoped.name}`)
        }
      } else visit(path.join(dir, entry.name), entry.name)
    }
  }
  const visit = (pkgDir: string, name: string): void => {
    if (!existsSync(path.join(pkgDir, 'package.json'))) return
    names.push(name)
    walk(path.join(pkgDir, 'node_modules'))
  }
  walk(nodeModules)
  return names
}

interface Install { bytes: number, packages: string[] }

/** The node_modules folder one `npx` installed into under a fresh HOME. */
function npxDir (home: string, pkg: string): string {
  const cache = path.join(home, '.npm', '_npx')
  const dirs = existsSync(cache) ? readdirSync(cache).map(d => path.join(cache, d, 'node_modules')).filter(d => existsSync(path.join(d, pkg))) : []
  if (dirs.length !== 1) throw new Error(`expected one npx install of ${pkg} under ${cache}, found ${dirs.length}`)
  return dirs[0]!
}

/** What one `npx` installed: bytes on disk and every package, nested ones included. */
function npxInstall (home: string, pkg: string): Install {
  const nodeModules = npxDir(home, pkg)
  return { bytes: folderBytes(nodeModules), packages: installedPackages(nodeModules) }
}

/** Every file under a folder, as paths relative to it. */
function filesUnder (dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter(e => e.isFile()).map(e => path.relative(dir, path.join(e.parentPath, e.name)))
}

function mib (bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

function npx (registry: Registry, home: string, cwd: string, pkg: string, args: string[], env: Record<string, string> = {}): BinProcess {
  return spawnBin(pkg as 'mport-relay' | 'mport-connect', args, {
    command: { file: 'npx', args: ['--yes', '--registry', registry.url, pkg, ...args], cwd, env: { ...npmEnv(home), ...env } },
    detached: true,
  })
}

t.test('publish to a local registry, then npx mport-relay and npx mport-connect carry a tunnel', async t => {
  mkdirSync(tmp, { recursive: true })
  const registry = await startRegistry(await installVerdaccio())
  t.comment(`registry on ${registry.url}`)

  const publishHome = path.join(tmp, 'home-publish')
  mkdirSync(publishHome, { recursive: true })
  const publishEnv = npmEnv(publishHome)
  for (const pkg of PACKAGES) {
    if (!existsSync(path.join(REPO_ROOT, 'packages', pkg, 'dist', 'index.js'))) throw new Error(`packages/${pkg}/dist is missing: run npm run build (npm install does) before this test`)
  }
  for (const pkg of PACKAGES) {
    const r = await run('npm', ['publish', '-w', pkg, '--registry', registry.url, `--//127.0.0.1:${registry.port}/:_authToken=local-test`], REPO_ROOT, publishEnv, 180_000)
    mustSucceed(r, `npm publish -w ${pkg}`)
    t.pass(`published ${pkg}@${version}`)
  }

  await t.test('the published library has what it promises and nothing else', async tt => {
    const r = await run('npm', ['view', `mport@${version}`, '--json', '--registry', registry.url], tmp, publishEnv, 60_000)
    mustSucceed(r, 'npm view mport')
    const meta = JSON.parse(r.stdout) as { dependencies?: Record<string, string>, license?: string, repository?: unknown, keywords?: string[] }
    tt.same(Object.keys(meta.dependencies ?? {}).sort(), ['pino', 'selfsigned', 'ws', 'yaml'], 'the library depends on pino (logs), selfsigned, ws (the WebSocket transport) and yaml only')
    tt.equal(meta.license, 'MIT')
    tt.ok(meta.repository, 'repository metadata')
    tt.ok((meta.keywords ?? []).length > 0, 'keywords')
  })

  const echo = await startEcho()
  t.teardown(() => echo.close())

  // The relay: an empty folder, a fresh HOME, only npx and the registry.
  const relayHome = path.join(tmp, 'home-relay')
  const relayCwd = path.join(tmp, 'relay-cwd')
  const dataDir = path.join(tmp, 'relay-data')
  mkdirSync(relayHome, { recursive: true })
  mkdirSync(relayCwd, { recursive: true })
  const relay = npx(registry, relayHome, relayCwd, 'mport-relay', [
    '--host', '127.0.0.1', '--port', '0', '--bind-host', '127.0.0.1', '--public-host', '127.0.0.1', '--ports', '30000-60999',
    '--data-dir', dataDir, '--api-port', '0', '--json',
  ])
  const listening = await relay.waitEvent('listening', () => true, 400_000)
  const token = readFileSync(path.join(dataDir, 'token'), 'utf8').trim()
  t.match(listening, { port: Number, fingerprint: /^sha256:[0-9a-f]{64}$/ }, 'npx mport-relay listens')

  // The client, in another empty folder with another fresh HOME; the token through the environment.
  const clientHome = path.join(tmp, 'home-client')
  const clientCwd = path.join(tmp, 'client-cwd')
  mkdirSync(clientHome, { recursive: true })
  mkdirSync(clientCwd, { recursive: true })
  const client = npx(registry, clientHome, clientCwd, 'mport-connect', [
    String(echo.port), '--relay', `127.0.0.1:${listening.port as number}`, '--fingerprint', listening.fingerprint as string, '--json',
  ], { MPORT_TOKEN: token })
  const tunnel = await client.waitEvent('tunnel', () => true, 400_000)
  t.match(tunnel, { url: /^tcp:\/\/127\.0\.0\.1:\d+$/ }, 'npx mport-connect opens a tunnel')

  const data = randomBytes(256 * 1024)
  const echoed = await roundTrip(await connectTo(tunnel.remotePort as number), data)
  t.ok(echoed.equals(data), `256 KiB through the tunnel came back intact (sha256 ${createHash('sha256').update(echoed).digest('hex').slice(0, 16)}…)`)
  t.notOk(client.output.includes(token), 'the client never prints the token')

  await t.test('the installed packages hold their builds, docs and licence, and no sources', async tt => {
    const lib = path.join(npxDir(clientHome, 'mport-connect'), 'mport')
    for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/mux.js', 'dist/relay.d.ts', 'README.md', 'PROTOCOL.md', 'LICENSE']) {
      tt.ok(existsSync(path.join(lib, f)), `mport has ${f}`)
    }
    for (const f of ['src', 'test', 'bench', 'bin', 'tsconfig.json', 'tsconfig.build.json']) {
      tt.notOk(existsSync(path.join(lib, f)), `mport leaves out ${f}`)
    }
    tt.same(filesUnder(lib).filter(f => f.endsWith('.map')), [], 'no source maps pointing at files not shipped')
    for (const pkg of ['mport-connect', 'mport-relay'] as const) {
      const dir = path.join(npxDir(pkg === 'mport-connect' ? clientHome : relayHome, pkg), pkg)
      for (const f of ['package.json', `bin/${pkg}.js`, `dist/bin/${pkg}.js`, 'dist/index.js', 'README.md', 'LICENSE']) tt.ok(existsSync(path.join(dir, f)), `${pkg} has ${f}`)
      tt.notOk(existsSync(path.join(dir, 'src')), `${pkg} leaves out src`)
    }
    const imported = await run(process.execPath, ['--input-type=module', '-e', "import { Relay, Client, Session, MportError } from 'mport'; import { Session as S } from 'mport/mux'; console.log(typeof Relay, typeof Client, typeof Session, typeof MportError, S === Session)"],
      path.dirname(npxDir(clientHome, 'mport-connect')), npmEnv(clientHome), 60_000)
    mustSucceed(imported, 'import from "mport"')
    tt.equal(imported.stdout.trim(), 'function function function function true', 'the library entry points export the library')
  })

  await t.test('the installed relay hands out its client as one file, which runs with node alone', async tt => {
    const relayPkg = path.join(npxDir(relayHome, 'mport-relay'), 'mport-relay')
    tt.ok(existsSync(path.join(relayPkg, 'dist/dl/mport-connect.mjs')), 'the published mport-relay holds dist/dl/mport-connect.mjs')
    const api = `http://127.0.0.1:${listening.apiPort as number}`
    const res = await fetch(`${api}/dl/mport-connect.mjs`, { signal: AbortSignal.timeout(30_000) })
    tt.equal(res.status, 200, 'GET /dl/mport-connect.mjs')
    const bundle = Buffer.from(await res.arrayBuffer())
    const digest = createHash('sha256').update(bundle).digest('hex')
    tt.equal(res.headers.get('x-content-sha256'), digest, 'the header carries the SHA-256 of the body')
    tt.equal(await (await fetch(`${api}/dl/SHA256SUMS`, { signal: AbortSignal.timeout(30_000) })).text(), `${digest}  mport-connect.mjs\n`, 'SHA256SUMS lists it')
    tt.ok(bundle.equals(readFileSync(path.join(relayPkg, 'dist/dl/mport-connect.mjs'))), 'the bytes are the published file')
    tt.comment(`the bundle: ${bundle.length} bytes (${(bundle.length / 1024).toFixed(0)} KiB)`)

    // A third machine: no npm install at all, an empty folder, a fresh HOME, node and the one file.
    const home = path.join(tmp, 'home-download')
    const cwd = path.join(tmp, 'download-cwd')
    mkdirSync(home, { recursive: true })
    mkdirSync(cwd, { recursive: true })
    writeFileSync(path.join(cwd, 'mport-connect.mjs'), bundle)
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, NO_COLOR: '1' }
    const versionRun = await run(process.execPath, ['mport-connect.mjs', '--version'], cwd, env, 60_000)
    mustSucceed(versionRun, 'node mport-connect.mjs --version')
    tt.equal(versionRun.stdout.trim(), version, 'the bundle knows the relay\'s version')
    const downloaded = spawnBin('mport-connect', [], {
      command: { file: process.execPath, args: ['mport-connect.mjs', String(echo.port), '--relay', `127.0.0.1:${listening.port as number}`, '--fingerprint', listening.fingerprint as string, '--json'], cwd, env: { ...env, MPORT_TOKEN: token } },
    })
    const opened = await downloaded.waitEvent('tunnel', () => true, 120_000)
    const payload = randomBytes(64 * 1024)
    tt.ok((await roundTrip(await connectTo(opened.remotePort as number), payload)).equals(payload), '64 KiB through the downloaded client\'s tunnel came back intact')
    downloaded.signal('SIGTERM')
    await downloaded.waitExit()

    // The installed relay makes the Linux executable from its host's Node (postject from its own node_modules).
    if (process.platform === 'linux' && process.arch === 'x64') {
      const exeRes = await fetch(`${api}/dl/mport-connect-linux-x64`, { signal: AbortSignal.timeout(300_000) })
      tt.equal(exeRes.status, 200, 'GET /dl/mport-connect-linux-x64 from the installed relay')
      const exe = Buffer.from(await exeRes.arrayBuffer())
      tt.equal(exeRes.headers.get('x-content-sha256'), createHash('sha256').update(exe).digest('hex'), 'its SHA-256 header matches')
      tt.comment(`the executable: ${exe.length} bytes (${mib(exe.length)})`)
      const exeFile = path.join(cwd, 'mport-connect-linux-x64')
      writeFileSync(exeFile, exe, { mode: 0o755 })
      const exeVersion = await run(exeFile, ['--version'], cwd, { HOME: home, PATH: '/nonexistent' }, 60_000)
      mustSucceed(exeVersion, 'mport-connect-linux-x64 --version')
      tt.equal(exeVersion.stdout.trim(), version, 'the executable runs without node on the PATH and knows the version')
    } else tt.comment(`no executable check: the host is ${process.platform}-${process.arch}, not linux-x64`)
  })

  await t.test('the installed bins answer --help and --version', async tt => {
    const [relayHelp, connectHelp, relayVersion] = await Promise.all([
      run('npx', ['--no-install', 'mport-relay', '--help'], path.dirname(npxDir(relayHome, 'mport-relay')), npmEnv(relayHome), 60_000),
      run('npx', ['--no-install', 'mport-connect', '--help'], path.dirname(npxDir(clientHome, 'mport-connect')), npmEnv(clientHome), 60_000),
      run('npx', ['--no-install', 'mport-relay', '--version'], path.dirname(npxDir(relayHome, 'mport-relay')), npmEnv(relayHome), 60_000),
    ])
    mustSucceed(relayHelp, 'mport-relay --help')
    tt.match(relayHelp.stdout, /mport-relay \[options\]/, 'relay usage text')
    tt.match(relayHelp.stdout, /--ports/)
    mustSucceed(connectHelp, 'mport-connect --help')
    tt.match(connectHelp.stdout, /mport-connect \[http\|tls\] <tunnel\.\.> \[options\]/, 'connect usage text')
    tt.match(connectHelp.stdout, /--relay/)
    mustSucceed(relayVersion, 'mport-relay --version')
    tt.equal(relayVersion.stdout.trim(), version, 'the built bin knows the package version')
  })

  await t.test('each role installs only what it needs', async (tt: Test) => {
    const relayInstall = npxInstall(relayHome, 'mport-relay')
    const clientInstall = npxInstall(clientHome, 'mport-connect')
    tt.comment(`npx mport-connect: ${mib(clientInstall.bytes)} in ${clientInstall.packages.length} packages`)
    tt.comment(`npx mport-relay: ${mib(relayInstall.bytes)} in ${relayInstall.packages.length} packages`)
    tt.ok(clientInstall.bytes < CLIENT_MAX_BYTES, `the client installs under ${mib(CLIENT_MAX_BYTES)} (${mib(clientInstall.bytes)})`)
    for (const name of SERVER_ONLY) {
      tt.notOk(clientInstall.packages.includes(name), `the client does not install ${name}`)
      tt.ok(relayInstall.packages.includes(name), `the relay installs ${name}`)
    }
    tt.ok(clientInstall.packages.includes('mport') && relayInstall.packages.includes('mport'), 'both install the library')
    tt.ok(relayInstall.bytes > clientInstall.bytes, 'the relay brings more than the client')
  })

  // Ctrl-C in a terminal reaches npx and the bin it started: both stop cleanly.
  client.signalGroup('SIGINT')
  await client.waitExit()
  t.match(client.jsonLines().at(-1), { event: 'stopping', signal: 'SIGINT' }, 'mport-connect stops on Ctrl-C')
  relay.signalGroup('SIGINT')
  await relay.waitExit()
  t.ok(relay.jsonLines().some(l => l.event === 'stopping' || l.event === 'stopped'), 'mport-relay stops on Ctrl-C')
})
