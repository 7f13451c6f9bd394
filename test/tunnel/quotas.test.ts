/**
 * Plans enforced end to end through real tunnels, with user accounts in a real SQLite store:
 * bandwidth shaped to the plan, new-connection rate, tunnel count, a monthly quota reached
 * mid-transfer, and a revoked token cutting its live session.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { openStore, StoreAuthenticator, StoreRelayPolicy, UsageRecorder, type SqlStore } from '../../packages/mport-relay/src/store/index.js'
import { AnyAuthenticator, StaticTokens, type Relay } from '../../src/index.js'
import { connectTo, makeClient, startEcho, startRelay, tcpSpec, TOKEN } from '../helpers/tunnel.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'
import { tokenId } from '../../src/tunnel/auth.js'

interface World { store: SqlStore, relay: Relay, usage: UsageRecorder, token: string, userId: string, close (): Promise<void> }

async function world (t: { teardown (fn: () => unknown): void }, limits: Record<string, number | null>): Promise<World> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-quota-'))
  const store = await openStore({ dataDir: dir })
  const user = await store.createUser({ name: 'alice', password: 'correct horse battery' })
  await store.setLimitOverrides(user.id, limits)
  const { raw } = await store.createToken(user.id, 'laptop')
  const usage = new UsageRecorder(store, { flushIntervalMs: 200 })
  const storeAuth = new StoreAuthenticator(store)
  const relay = await startRelay({
    authenticator: new AnyAuthenticator(new StaticTokens([{ token: TOKEN }]), storeAuth),
    policy: new StoreRelayPolicy(store, usage, storeAuth, [tokenId(TOKEN)]),
    accountingInterval: 100,
  })
  const w: World = {
    store, relay, usage, token: raw, userId: user.id,
    close: async () => { await relay.close(100); await usage.close(); await store.close(); rmSync(dir, { recursive: true, force: true }) },
  }
  t.teardown(() => w.close())
  return w
}

/** A sink that counts what it receives. */
async function startSink (): Promise<{ port: number, received (): number, close (): void }> {
  let n = 0
  const server = net.createServer(s => { s.on('data', (c: Buffer) => { n += c.length }); s.on('error', () => {}) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, received: () => n, close: () => server.close() }
}

t.test('bandwidth is shaped to the plan (within 10%), by backpressure', async t => {
  const RATE = 2 * 1024 * 1024
  const w = await world(t, { bandwidthBytesPerSecond: RATE })
  const sink = await startSink()
  const client = makeClient(w.relay, [tcpSpec(sink.port)], { token: w.token })
  t.teardown(async () => { await client.close(); sink.close() })
  const [status] = await client.start()
  const visitor = await connectTo(status!.remotePort!)
  const chunk = Buffer.alloc(64 * 1024)
  let stop = false
  const pump = (): void => { while (!stop) if (!visitor.write(chunk)) { visitor.once('drain', pump); return } }
  pump()
  // Skip the burst, then measure what the sink receives over a few seconds.
  await waitFor(() => sink.received() > RATE / 2, { what: 'data to flow' })
  const b0 = sink.received()
  const t0 = performance.now()
  await new Promise(resolve => setTimeout(resolve, 3000))
  const rate = (sink.received() - b0) / ((performance.now() - t0) / 1000)
  stop = true
  visitor.destroy()
  t.ok(Math.abs(rate - RATE) / RATE < 0.1, `shaped to ${(rate / 1048576).toFixed(2)} MiB/s for a plan of 2 MiB/s`)
  t.ok(visitor.writableLength <= 16 * 1024 * 1024, 'the visitor was slowed, not buffered without bound')
})

t.test('the new-connection rate is limited; the excess is refused', async t => {
  const w = await world(t, { connectionsPerMinute: 5 })
  const echo = await startEcho()
  const client = makeClient(w.relay, [tcpSpec(echo.port)], { token: w.token })
  t.teardown(async () => { await client.close(); await echo.close() })
  const [status] = await client.start()
  const outcomes: string[] = []
  for (let i = 0; i < 8; i++) {
    outcomes.push(await withTimeout(new Promise<string>(resolve => {
      const s = net.connect(status!.remotePort!, '127.0.0.1', () => s.write('ping'))
      s.on('data', () => { s.destroy(); resolve('served') })
      s.on('error', () => resolve('refused'))
      s.on('end', () => resolve('refused'))
    }), { what: `connection ${i}` }))
  }
  t.same(outcomes.filter(o => o === 'served').length, 5, `five served, the rest refused: ${outcomes.join(',')}`)
})

t.test('the plan\'s tunnel count: the extra tunnel is refused with MPORT_ERR_QUOTA_EXCEEDED', async t => {
  const w = await world(t, { maxTunnels: 1 })
  const echo = await startEcho()
  const client = makeClient(w.relay, [tcpSpec(echo.port, { name: 'one' }), tcpSpec(echo.port, { name: 'two' })], { token: w.token })
  t.teardown(async () => { await client.close(); await echo.close() })
  const tunnels = await client.start()
  t.ok(tunnels[0]?.remotePort)
  t.equal(tunnels[1]?.error?.code, 'MPORT_ERR_QUOTA_EXCEEDED')
})

t.test('a monthly quota reached mid-transfer ends the transfer and tells the client', async t => {
  const QUOTA = 4 * 1024 * 1024
  const w = await world(t, { monthlyBytes: QUOTA })
  const sink = await startSink()
  const client = makeClient(w.relay, [tcpSpec(sink.port)], { token: w.token })
  t.teardown(async () => { await client.close(); sink.close() })
  const [status] = await client.start()
  const told = nextEvent<[unknown, { code: string }]>(client, 'tunnel-error', { what: 'the client to be told about the quota' })
  const visitor = await connectTo(status!.remotePort!)
  visitor.on('error', () => {})
  const ended = withTimeout(new Promise(resolve => visitor.on('close', resolve)), { what: 'the transfer to be cut' })
  const chunk = Buffer.alloc(64 * 1024)
  let sent = 0
  const pump = (): void => { while (sent < 256 * 1024 * 1024 && !visitor.destroyed) { sent += chunk.length; if (!visitor.write(chunk)) { visitor.once('drain', pump); return } } }
  pump()
  await ended
  const [, err] = await told
  t.equal(err.code, 'MPORT_ERR_QUOTA_EXCEEDED')
  t.ok(sink.received() >= QUOTA * 0.5 && sink.received() < 128 * 1024 * 1024, `cut after ${(sink.received() / 1048576).toFixed(1)} MiB for a 4 MiB quota`)
  await w.usage.flush()
  t.ok(await w.store.monthBytes(w.userId) >= QUOTA, 'the usage was recorded in the store')
  await waitFor(async () => (await isRefused(status!.remotePort!)), { what: 'the tunnel to be closed' })
})

function isRefused (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => { s.destroy(); resolve(false) })
    s.on('error', () => resolve(true))
  })
}

t.test('a revoked token cuts its live session within seconds', async t => {
  const w = await world(t, {})
  const echo = await startEcho()
  const client = makeClient(w.relay, [tcpSpec(echo.port)], { token: w.token })
  t.teardown(async () => { await client.close(); await echo.close() })
  await client.start()
  const gone = nextEvent<[Error & { code?: string }]>(client, 'error', { what: 'the client to be cut off', timeoutMs: 15_000 })
  const [token] = await w.store.listTokens(w.userId)
  await w.store.revokeToken(token!.id)
  const [err] = await gone
  t.equal(err.code, 'MPORT_ERR_AUTH_FAILED')
})

t.test('reservations: a reserved subdomain and port are their owner\'s only', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-reserve-'))
  const store = await openStore({ dataDir: dir })
  const alice = await store.createUser({ name: 'alice', password: 'correct horse battery' })
  const bob = await store.createUser({ name: 'bob', password: 'another long password' })
  const port = 30000 + Math.floor(Math.random() * 30000)
  await store.reserve(alice.id, 'subdomain', 'shop')
  await store.reserve(alice.id, 'port', String(port))
  const usage = new UsageRecorder(store, { flushIntervalMs: 200 })
  const storeAuth = new StoreAuthenticator(store)
  const relay = await startRelay({
    authenticator: storeAuth,
    policy: new StoreRelayPolicy(store, usage, storeAuth),
    domain: 'tunnels.test',
    httpPort: 0,
  })
  const echo = await startEcho()
  t.teardown(async () => { await relay.close(100); await usage.close(); await store.close(); await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  const bobClient = makeClient(relay, [{ ...tcpSpec(echo.port, { name: 'web' }), kind: 'http', subdomain: 'shop' }, tcpSpec(echo.port, { name: 'p', remotePort: port })], { token: (await store.createToken(bob.id, 't')).raw })
  const [bobWeb, bobPort] = await bobClient.start()
  t.equal(bobWeb?.error?.code, 'MPORT_ERR_NAME_TAKEN', 'bob cannot take alice\'s subdomain')
  t.equal(bobPort?.error?.code, 'MPORT_ERR_PORT_IN_USE', 'bob cannot take alice\'s port')
  await bobClient.close()
  const aliceClient = makeClient(relay, [{ ...tcpSpec(echo.port, { name: 'web' }), kind: 'http', subdomain: 'shop' }, tcpSpec(echo.port, { name: 'p', remotePort: port })], { token: (await store.createToken(alice.id, 't')).raw })
  t.teardown(() => aliceClient.close())
  const [aliceWeb, alicePort] = await aliceClient.start()
  t.match(aliceWeb?.url, /^http:\/\/shop\.tunnels\.test:\d+$/)
  t.equal(alicePort?.remotePort, port)
})

t.test('http tunnels are shaped too: a download never beats the plan\'s bandwidth', async t => {
  const RATE = 2 * 1024 * 1024
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-http-shape-'))
  const store = await openStore({ dataDir: dir })
  const user = await store.createUser({ name: 'carol', password: 'correct horse battery' })
  await store.setLimitOverrides(user.id, { bandwidthBytesPerSecond: RATE })
  const usage = new UsageRecorder(store, { flushIntervalMs: 200 })
  const storeAuth = new StoreAuthenticator(store)
  const relay = await startRelay({ authenticator: storeAuth, policy: new StoreRelayPolicy(store, usage, storeAuth), domain: 'tunnels.test', httpPort: 0 })
  const SIZE = 6 * 1024 * 1024
  const origin = http.createServer((_req, res) => { res.setHeader('content-length', SIZE); res.end(Buffer.alloc(SIZE, 1)) })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await relay.close(100); await usage.close(); await store.close(); origin.close(); rmSync(dir, { recursive: true, force: true }) })
  const client = makeClient(relay, [{ ...tcpSpec((origin.address() as net.AddressInfo).port), kind: 'http', subdomain: 'dl' }], { token: (await store.createToken(user.id, 't')).raw })
  t.teardown(() => client.close())
  await client.start()
  const t0 = performance.now()
  const got = await withTimeout(new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: relay.httpAddress!.port, headers: { host: 'dl.tunnels.test' }, agent: false }, res => {
      let n = 0
      res.on('data', (c: Buffer) => { n += c.length })
      res.on('end', () => resolve(n))
    }).on('error', reject)
  }), { what: 'the shaped download', timeoutMs: 60_000 })
  const rate = got / ((performance.now() - t0) / 1000)
  t.equal(got, SIZE)
  // A lower bound on time is robust on a slow machine: shaping can only make it slower.
  t.ok(rate <= RATE * 1.1, `downloaded at ${(rate / 1048576).toFixed(2)} MiB/s with a 2 MiB/s plan`)
})
