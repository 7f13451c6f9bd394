/**
 * A client process loads no relay code. Real processes, from source as the bins run, with a
 * module loader hook (module.register) that writes down the URL of every module loaded: the
 * `mport/client` entry alone, the mport-connect bin serving a tunnel end to end, and the bin's
 * account commands (which load the mport-connect package). None of them may load a relay-side
 * module: the relay's tunnel files, the HTTP front and the visitor path, accounts, limits, the
 * HTTP layer (but the client's PROXY header encoder), packages/mport-relay or its dependencies.
 * A process importing `mport/relay` is checked the same way, so the matcher is known to see them.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { BinProcess, cleanEnv, cleanup, REPO_ROOT, tmpDir } from '../helpers/spawn.js'
import { certFingerprint, connectTo, roundTrip, startEcho, startRelay, TOKEN } from '../helpers/tunnel.js'

t.teardown(cleanup)

/** Relay-side modules, by URL: none of these may appear in a client process. */
const RELAY_SIDE: RegExp[] = [
  /\/src\/relay\.ts$/,
  /\/src\/tunnel\/(relay[^/]*|lease|routes|http-front|visitor-forwarder|accounts|login)\.ts$/,
  /\/src\/limits(\/|\.ts$)/,
  /\/src\/http\.ts$/,
  // The two modules of http/ the client shares with the relay (as .dependency-cruiser.cjs says).
  /\/src\/http\/(?!(proxy-protocol|message-parser)\.ts$)/,
  /\/packages\/mport-relay\//,
  /\/node_modules\/(fastify|@fastify|kysely|libsql|@libsql|pg|pg-[^/]+)\//,
]

const isRelaySide = (url: string): boolean => RELAY_SIDE.some(re => re.test(url))

const HOOKS = `
import { appendFileSync } from 'node:fs'
let out
export function initialize (data) { out = data.out }
export async function load (url, context, next) {
  if (url.startsWith('file:')) appendFileSync(out, url + '\\n')
  return next(url, context)
}
`
const REGISTER = `
import { register } from 'node:module'
register(new URL('./hooks.mjs', import.meta.url), { data: { out: process.env.LOADED_MODULES_OUT } })
`

/** A process run from the repository root with tsx and the recording hook; `loaded()` lists what it loaded. */
function recorded (name: 'mport-connect', args: string[]): { proc: BinProcess, loaded (): string[] } {
  const dir = tmpDir('mport-modules-')
  writeFileSync(path.join(dir, 'hooks.mjs'), HOOKS)
  writeFileSync(path.join(dir, 'register.mjs'), REGISTER)
  const out = path.join(dir, 'loaded.txt')
  writeFileSync(out, '')
  const proc = new BinProcess(name, args, {
    command: { file: process.execPath, args: ['--import', 'tsx', '--import', path.join(dir, 'register.mjs'), ...args], cwd: REPO_ROOT, env: cleanEnv({ LOADED_MODULES_OUT: out }) },
  })
  return { proc, loaded: () => readFileSync(out, 'utf8').split('\n').filter(l => l !== '') }
}

/** The repository-relative paths of the modules of ours among `urls`. */
function ours (urls: string[]): string[] {
  const root = new URL(`file://${REPO_ROOT}`).href
  return urls.filter(u => u.startsWith(root) && !u.includes('/node_modules/')).map(u => u.slice(root.length))
}

/** Just an import, in a process of its own. */
async function importOnly (specifier: string): Promise<string[]> {
  const { proc, loaded } = recorded('mport-connect', ['--input-type=module', '-e', `await import(${JSON.stringify(specifier)})`])
  const exit = await proc.waitExit(60_000)
  if (exit.code !== 0) throw new Error(`importing ${specifier} failed (${exit.code}): ${proc.stderr}`)
  return loaded()
}

t.test('the matcher sees relay modules: a process importing mport/relay loads them', async t => {
  const relaySide = ours(await importOnly('mport/relay')).filter(p => isRelaySide(`/${p}`))
  for (const p of ['src/relay.ts', 'src/tunnel/relay.ts', 'src/tunnel/relay-clients.ts', 'src/tunnel/http-front.ts', 'src/tunnel/accounts.ts', 'src/limits/throttle.ts']) {
    t.ok(relaySide.includes(p), `${p} is seen as relay-side`)
  }
})

t.test('mport/client loads no relay-side module', async t => {
  const loaded = await importOnly('mport/client')
  const mine = ours(loaded)
  for (const p of ['src/client.ts', 'src/tunnel/client.ts', 'src/tunnel/client-handshake.ts', 'src/tunnel/client-dialer.ts', 'src/tunnel/constants.ts', 'src/mux/session.ts']) {
    t.ok(mine.includes(p), `loads ${p} (from source)`)
  }
  t.same(loaded.filter(isRelaySide), [], 'no relay-side module')
  t.same(mine.filter(p => p.includes('/dist/')), [], 'no build output: every module of ours is the source')
})

t.test('mport-connect serving a tunnel loads no relay-side module', async t => {
  const relay = await startRelay()
  const echo = await startEcho()
  t.teardown(async () => { await relay.close(100); await echo.close() })
  const { proc, loaded } = recorded('mport-connect', [
    'bin/mport-connect.ts', String(echo.port), '--relay', `127.0.0.1:${relay.address.port}`, '--token', TOKEN, '--fingerprint', certFingerprint, '--verbose',
  ])
  const line = await proc.waitLine(/^tcp:\/\//, 'the tunnel line', 60_000)
  const publicPort = Number(/:(\d+) -> /.exec(line)?.[1])
  const data = Buffer.alloc(64 * 1024, 7)
  t.equal((await roundTrip(await connectTo(publicPort), data)).length, data.length, 'a visitor went through the tunnel')
  await proc.waitLine(/closed \(/, 'the connection-closed line')
  proc.signal('SIGINT')
  t.equal((await proc.waitExit()).code, 0, 'exits 0 on SIGINT')

  const all = loaded()
  const mine = ours(all)
  for (const p of ['bin/mport-connect.ts', 'src/tunnel/client.ts', 'src/tunnel/client-dialer.ts', 'src/tunnel/proxy.ts', 'src/http/proxy-protocol.ts']) {
    t.ok(mine.includes(p), `loaded ${p}`)
  }
  t.same(all.filter(isRelaySide), [], 'no relay-side module, from start to exit')
  t.same(mine.filter(p => p.includes('/dist/')), [], 'no build output')
})

t.test('mport-connect account commands load no relay-side module', async t => {
  const { proc, loaded } = recorded('mport-connect', ['bin/mport-connect.ts', 'login', '--help'])
  t.equal((await proc.waitExit(60_000)).code, 0, 'login --help exits 0')
  const all = loaded()
  t.ok(ours(all).includes('packages/mport-connect/src/account-commands.ts'), 'loaded the mport-connect package (from source)')
  t.same(all.filter(isRelaySide), [], 'no relay-side module')
})
