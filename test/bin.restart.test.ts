/**
 * Restart-proof addresses through the real bins: a client killed with SIGKILL during a transfer
 * and started again with the same command (same home, so the same lease file) gets its random
 * port, fixed port, subdomain and one-tunnel plan back at once; the relay replaces the dead
 * session rather than counting it twice. A tunnel refused because another live client of the
 * same user holds its port says which client, waits, and comes up when the holder leaves;
 * --no-retry exits instead. Times from the new process's start to its tunnel are printed
 * (t.comment), with only a generous bound asserted.
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { cleanup, relayArgs, runBin, spawnBin, tmpDir, type BinProcess } from './helpers/spawn.js'
import { request, startUpstream } from './helpers/http-fixtures.js'
import { connectTo, roundTrip, startEcho } from './helpers/tunnel.js'
import { waitFor } from './helpers/wait.js'

t.teardown(cleanup)

/** Generous: the bins run from source through tsx on a shared 2-core machine. */
const RESTART_BOUND_MS = 30_000
const DOMAIN = 'mport.test'

interface RelayProc { proc: BinProcess, port: number, fingerprint: string, token: string, httpPort?: number }

/** A relay in --json mode; `token` given, else the generated one from the data dir. */
async function startRelay (dataDir: string, extra: string[] = [], token?: string): Promise<RelayProc> {
  const proc = spawnBin('mport-relay', relayArgs(dataDir, ['--json', ...extra]))
  const ev = await proc.waitEvent('listening')
  return {
    proc,
    port: ev.port as number,
    fingerprint: ev.fingerprint as string,
    token: token ?? readFileSync(path.join(dataDir, 'token'), 'utf8').trim(),
    ...(typeof ev.httpPort === 'number' ? { httpPort: ev.httpPort } : {}),
  }
}

/** A client home: its lease file lives under it, so two processes given the same home are "the same command again". */
function clientHome (): Record<string, string> {
  const home = tmpDir('mport-restart-home-')
  return { HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') }
}

function startClient (relay: RelayProc, tunnelArgs: string[], home: Record<string, string>, extra: string[] = []): BinProcess {
  return spawnBin('mport-connect', [...tunnelArgs, '--relay', `127.0.0.1:${relay.port}`, '--token', relay.token, '--fingerprint', relay.fingerprint, '--json', ...extra], { env: home })
}

/** A visitor connection that keeps sending (and reading the echo) until it is cut. */
async function transfer (port: number): Promise<{ sent (): number, stop (): void }> {
  const s = await connectTo(port)
  let sent = 0
  s.on('data', () => {})
  s.on('error', () => {})
  const timer = setInterval(() => { if (!s.destroyed) { s.write(Buffer.alloc(16 * 1024, 7)); sent += 16 * 1024 } }, 5)
  return { sent: () => sent, stop: () => { clearInterval(timer); s.destroy() } }
}

/** Relay events of one kind, as parsed JSON lines. */
const relayEvents = (relay: RelayProc, event: string): Array<Record<string, unknown>> => relay.proc.jsonLines().filter(o => o.event === event)

interface RestartCase {
  relayExtra: string[]
  token?: string
  dataDir: string
  tunnelArgs (localPort: number): string[]
  /** Starts a visitor transfer through the tunnel; returns how to stop it. */
  busy (relay: RelayProc, tunnel: Record<string, unknown>): Promise<{ sent (): number, stop (): void }>
  /** Checks the address serves after the restart. */
  serves (tt: Test, relay: RelayProc, tunnel: Record<string, unknown>): Promise<void>
  local: () => Promise<{ port: number, close (): Promise<void> }>
}

/** Start, transfer, SIGKILL, the same command again: the same address back, the old session replaced, nothing counted twice. */
async function killAndRestart (tt: Test, what: string, c: RestartCase): Promise<void> {
  const local = await c.local()
  tt.teardown(() => local.close())
  const relay = await startRelay(c.dataDir, c.relayExtra, c.token)
  const home = clientHome()
  const first = startClient(relay, c.tunnelArgs(local.port), home)
  const before = await first.waitEvent('tunnel')
  const firstClient = await relay.proc.waitEvent('client')
  const busy = await c.busy(relay, before)
  await waitFor(() => busy.sent() > 0, { what: 'the transfer to be under way' })
  await first.kill()
  busy.stop()

  const startedAt = Date.now()
  const second = startClient(relay, c.tunnelArgs(local.port), home)
  const after = await second.waitEvent('tunnel', () => true, RESTART_BOUND_MS)
  const ms = Date.now() - startedAt
  tt.comment(`${what}: ${ms} ms from the new process's start to its tunnel event`)
  tt.ok(ms < RESTART_BOUND_MS, `${what}: back within ${RESTART_BOUND_MS} ms (took ${ms} ms)`)
  tt.equal(after.url, before.url, `${what}: the same address after the restart (${String(before.url)})`)
  const connected = second.jsonLines().find(o => o.event === 'connected')
  tt.equal(connected?.resumed, true, `${what}: the relay resumed the lease from the stored ticket`)
  await c.serves(tt, relay, after)

  // The relay replaced the dead session: it closed it, and the tunnel never went down.
  await relay.proc.waitEvent('client-closed', o => o.id === firstClient.id)
  const clients = relayEvents(relay, 'client')
  tt.equal(clients.length, 2, `${what}: two client connections on the relay`)
  tt.equal(clients[1]?.resumed, true, `${what}: the second took the first one's lease`)
  tt.same(relayEvents(relay, 'tunnel-down'), [], `${what}: the tunnel never went down on the relay`)
  tt.same(second.jsonLines().filter(o => o.event === 'tunnel-error' || o.event === 'tunnel-waiting'), [], `${what}: no refusal`)

  second.signal('SIGTERM')
  tt.equal((await second.waitExit()).code, 0, `${what}: the restarted client exits 0 on SIGTERM`)
  relay.proc.signal('SIGTERM')
  await relay.proc.waitExit()
}

const tcpCase = (tunnelArgs: (p: number) => string[]): Omit<RestartCase, 'dataDir'> => ({
  relayExtra: [],
  tunnelArgs,
  local: startEcho,
  busy: async (_relay, tunnel) => transfer(tunnel.remotePort as number),
  serves: async (tt, _relay, tunnel) => {
    const data = Buffer.from('after the restart\n')
    const echoed = await roundTrip(await connectTo(tunnel.remotePort as number), data)
    tt.same(echoed, data, 'the public port echoes through the restarted client')
  },
})

t.test('kill -9 and the same command again: a random port comes back', async t => {
  await killAndRestart(t, 'random port', { ...tcpCase(p => [String(p)]), dataDir: path.join(tmpDir(), 'data') })
})

t.test('kill -9 and the same command again: a fixed port comes back at once (not "already in use")', async t => {
  const fixed = 30000 + Math.floor(Math.random() * 30000)
  await killAndRestart(t, 'fixed port', { ...tcpCase(p => [`${p}:${fixed}`]), dataDir: path.join(tmpDir(), 'data') })
})

t.test('kill -9 and the same command again: a subdomain comes back', async t => {
  const host = `myapp.${DOMAIN}`
  await killAndRestart(t, 'subdomain', {
    relayExtra: ['--domain', DOMAIN, '--http-port', '0'],
    dataDir: path.join(tmpDir(), 'data'),
    tunnelArgs: p => ['http', String(p), '--subdomain', 'myapp'],
    local: startUpstream,
    busy: async relay => {
      // An upload under way: a request whose body keeps coming.
      const s = await connectTo(relay.httpPort!)
      s.on('error', () => {})
      s.on('data', () => {})
      s.write(`POST /upload HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n`)
      let sent = 0
      const timer = setInterval(() => { if (!s.destroyed) { s.write('4000\r\n' + 'x'.repeat(0x4000) + '\r\n'); sent += 0x4000 } }, 5)
      return { sent: () => sent, stop: () => { clearInterval(timer); s.destroy() } }
    },
    serves: async (tt, relay) => {
      const r = await request({ port: relay.httpPort!, path: '/after', headers: { host } })
      tt.equal(r.status, 200, 'the subdomain serves through the restarted client')
      tt.equal(r.json?.url, '/after', 'the local service got the request')
    },
  })
})

t.test('kill -9 and the same command again: a one-tunnel plan is not refused (the dead session is not counted twice)', async t => {
  const dataDir = path.join(tmpDir(), 'data')
  const add = await runBin('mport-relay', ['users', 'add', 'alice', '--password', 'correct horse battery staple', '--token', 'laptop', '--json', '--data-dir', dataDir])
  t.equal(add.code, 0, `users add exits 0 (${add.stderr})`)
  const token = (JSON.parse(add.stdout) as { token: { token: string } }).token.token
  await killAndRestart(t, 'one-tunnel plan', { ...tcpCase(p => [String(p)]), relayExtra: ['--plan-tunnels', '1'], token, dataDir })
})

t.test('a tunnel waiting for a port another client of the same user holds: named, retried, up when the holder leaves; --no-retry exits', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = await startRelay(path.join(tmpDir(), 'data'), ['--lease-grace', '1'])
  const holder = startClient(relay, [String(echo.port)], clientHome())
  const held = await holder.waitEvent('tunnel')
  const holderId = (await relay.proc.waitEvent('client')).id as string
  const port = held.remotePort as number

  const waiter = startClient(relay, [`${echo.port}:${port}`], clientHome())
  const waiting = await waiter.waitEvent('tunnel-waiting')
  t.equal(waiting.code, 'MPORT_ERR_PORT_IN_USE', 'refused: the port is in use')
  t.equal(waiting.waitingFor, `port ${port}`, 'it says which address it waits for')
  t.match(String(waiting.message), new RegExp(`port ${port} is already in use by another client of yours: ${holderId} connected from 127\\.0\\.0\\.1`), 'the refusal names the client holding the port')

  const giveUp = await runBin('mport-connect', [`${echo.port}:${port}`, '--relay', `127.0.0.1:${relay.port}`, '--token', relay.token, '--fingerprint', relay.fingerprint, '--no-retry'], { env: clientHome() })
  t.equal(giveUp.code, 1, '--no-retry: the refused only tunnel ends the process with 1')
  t.match(giveUp.stderr, /the only tunnel was refused/, '--no-retry: it says so')

  // A plain listener on another port in the range: "in use" with nobody named, waited for too.
  const other = port === 60999 ? port - 1 : port + 1
  const busyOther = await new Promise<net.Server | undefined>(resolve => {
    const s = net.createServer()
    s.once('error', () => resolve(undefined))
    s.listen(other, '127.0.0.1', () => resolve(s))
  })

  t.equal(waiter.exit, undefined, 'the waiting client keeps running')
  holder.signal('SIGTERM')
  await holder.waitExit()
  const startedWaitingAt = Date.now()
  const up = await waiter.waitEvent('tunnel', () => true, RESTART_BOUND_MS)
  t.comment(`waiting tunnel: up ${Date.now() - startedWaitingAt} ms after the holder was told to stop (lease grace 1 s, then the next retry)`)
  t.equal(up.remotePort, port, 'the waiting tunnel got the port once the holder left')
  const data = Buffer.from('finally\n')
  t.same(await roundTrip(await connectTo(port), data), data, 'and it serves')

  if (busyOther !== undefined) {
    const second = startClient(relay, [`${echo.port}:${other}`], clientHome())
    const w = await second.waitEvent('tunnel-waiting')
    t.equal(w.message, `port ${other} is already in use`, 'a port held outside mport names nobody')
    await new Promise<void>(resolve => busyOther.close(() => resolve()))
    const up2 = await second.waitEvent('tunnel', () => true, RESTART_BOUND_MS)
    t.equal(up2.remotePort, other, 'it comes up once the other program let the port go')
  }
  relay.proc.signal('SIGTERM')
  await relay.proc.waitExit()
})

t.test('Ctrl-C, the lease released, the same command again: the remembered random port comes back under a new lease', async t => {
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const relay = await startRelay(path.join(tmpDir(), 'data'), ['--lease-grace', '1'])
  const home = clientHome()
  const first = startClient(relay, [String(echo.port)], home)
  const before = await first.waitEvent('tunnel')
  first.signal('SIGINT')
  t.equal((await first.waitExit()).code, 0, 'the first client exits 0 on SIGINT')
  const down = await relay.proc.waitEvent('tunnel-down')
  t.match(String(down.reason), /did not come back/, 'the relay released the lease after its grace')

  const startedAt = Date.now()
  const second = startClient(relay, [String(echo.port)], home)
  const after = await second.waitEvent('tunnel', () => true, RESTART_BOUND_MS)
  t.comment(`remembered port under a new lease: ${Date.now() - startedAt} ms from the new process's start to its tunnel event`)
  t.equal(second.jsonLines().find(o => o.event === 'connected')?.resumed, false, 'a new lease')
  t.equal(after.remotePort, before.remotePort, 'the same random port as before')
  const data = Buffer.from('same port\n')
  t.same(await roundTrip(await connectTo(after.remotePort as number), data), data, 'and it serves')
  relay.proc.signal('SIGTERM')
  await relay.proc.waitExit()
})
