/**
 * Plans enforced end to end through real tunnels, with user accounts in a real SQLite store:
 * bandwidth shaped to the plan, new-connection rate, tunnel count, a monthly quota reached
 * mid-transfer, and a revoked token cutting its live session.
 *
 * Bandwidth is checked without a wall clock: the plan's bucket is checked on the Account the
 * relay keeps (rate, burst, live re-rating), the Throttle's rate on a manual clock in
 * test/limits/throttle.tcp.test.ts, and end to end a plan so tight (16 KiB/s) that only its
 * burst can pass while the test runs: the relay accounts for what reached the sink, holds back
 * the rest at the visitor by backpressure, and lets it all through once the plan is lifted.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { openStore, StoreAuthenticator, StoreRelayPolicy, UsageRecorder, type SqlStore } from '../../packages/mport-relay/src/store/index.js'
import { AnyAuthenticator, StaticTokens, type Relay, type RelayOptions } from '../../src/index.js'
import { Account, UNLIMITED } from '../../src/tunnel/accounts.js'
import { sha256 } from '../helpers/digest.js'
import { listen } from '../helpers/ports.js'
import { connectTo, isClosed, makeClient, startEcho, startRelay, tcpSpec, TOKEN } from '../helpers/tunnel.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'
import { tokenId } from '../../src/tunnel/auth.js'

const KiB = 1024
const MiB = 1024 * KiB
/** A plan tight enough that, while a test runs, only its burst can pass. */
const TIGHT = 16 * KiB
/** The Account's burst: a quarter second of the rate, at least 16 KiB. */
const burstOf = (rate: number): number => Math.max(16 * KiB, Math.round(rate / 4))
/** What a visitor tries to move through a tight plan: at 16 KiB/s it would take over half an hour. */
const BIG = 32 * MiB

interface World {
  store: SqlStore
  relay: Relay
  usage: UsageRecorder
  token: string
  userId: string
  /** How many times the relay has re-checked the user's token (every 5th accounting round, traffic or not). */
  checks (): number
  close (): Promise<void>
}

async function world (t: { teardown (fn: () => unknown): void }, limits: Record<string, number | null>, relayOpts: Partial<RelayOptions> = {}): Promise<World> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-quota-'))
  const store = await openStore({ dataDir: dir })
  const user = await store.createUser({ name: 'alice', password: 'correct horse battery' })
  await store.setLimitOverrides(user.id, limits)
  const { raw } = await store.createToken(user.id, 'laptop')
  const usage = new UsageRecorder(store, { flushIntervalMs: 200 })
  const storeAuth = new StoreAuthenticator(store)
  const policy = new StoreRelayPolicy(store, usage, storeAuth, [tokenId(TOKEN)])
  let checks = 0
  const stillValid = policy.stillValid.bind(policy)
  policy.stillValid = async id => { checks++; return stillValid(id) }
  const relay = await startRelay({
    authenticator: new AnyAuthenticator(new StaticTokens([{ token: TOKEN }]), storeAuth),
    policy,
    accountingInterval: 100,
    ...relayOpts,
  })
  const w: World = {
    store, relay, usage, token: raw, userId: user.id, checks: () => checks,
    close: async () => { await relay.close(100); await usage.close(); await store.close(); rmSync(dir, { recursive: true, force: true }) },
  }
  t.teardown(() => w.close())
  return w
}

/** A sink that counts what it receives (and hashes it, to compare with what was sent). */
async function startSink (): Promise<{ port: number, received (): number, digest (): string, close (): void }> {
  let n = 0
  const chunks: Buffer[] = []
  const server = net.createServer(s => { s.on('data', (c: Buffer) => { n += c.length; chunks.push(c) }); s.on('error', () => {}) })
  const port = await listen(server)
  return { port, received: () => n, digest: () => sha256(Buffer.concat(chunks)), close: () => server.close() }
}

/** What the relay has accounted to the user so far (in + out), once the recorder has flushed. */
async function accounted (w: World): Promise<number> {
  await w.usage.flush()
  return w.store.monthBytes(w.userId)
}

/** Token re-checks (each five accounting rounds of 100 ms) a tight plan must hold through: a second of relay time. */
const HELD_CHECKS = 2
/**
 * What may arrive by then: the burst, then 16 KiB a second. Rounds can run late on a busy
 * machine, so the bound is what the plan passes in two minutes, far beyond any wait here.
 */
const HELD_BOUND = 2 * MiB

/**
 * Waits (bounded) until the burst has arrived, the relay has then run HELD_CHECKS rounds of
 * token checks, and it has accounted for what arrived. The rounds are the relay's own progress,
 * waited for and never timed: an unshaped tunnel moves megabytes meanwhile.
 */
async function holdThroughRounds (w: World, arrived: () => number, what: string): Promise<void> {
  const burst = burstOf(TIGHT)
  await waitFor(() => arrived() >= burst / 2, { what: `the plan's burst to arrive at ${what} (${arrived()} B)` })
  const from = w.checks()
  await waitFor(async () => w.checks() - from >= HELD_CHECKS && await accounted(w) >= arrived(),
    { what: `${HELD_CHECKS} token checks while holding ${what} (${w.checks() - from} so far, ${arrived()} B arrived)` })
}

/** Writes `data` in 64 KiB chunks, waiting for 'drain' whenever write() says so. */
function pumpInto (socket: net.Socket, data: Buffer): { written: () => number } {
  let off = 0
  const pump = (): void => {
    while (off < data.length && !socket.destroyed) {
      const chunk = data.subarray(off, off + 64 * KiB)
      off += chunk.length
      if (!socket.write(chunk)) { socket.once('drain', pump); return }
    }
  }
  pump()
  return { written: () => off }
}

/** `size` bytes, each 4 KiB block numbered, so a reordered or lost block changes the digest. */
function numbered (size: number): Buffer {
  const data = Buffer.alloc(size, 0x5a)
  for (let i = 0; i < size; i += 4096) data.writeUInt32BE(i, i)
  return data
}

t.test('a plan\'s bandwidth is one bucket at the plan\'s rate, re-rated live', async t => {
  const RATE = 2 * MiB
  const account = new Account({ id: 'u1', name: 'alice' }, null)
  account.update(UNLIMITED, 0)
  t.equal(account.bucket, undefined, 'an unlimited plan has no bucket: nothing is throttled')
  account.update({ ...UNLIMITED, bandwidthBytesPerSecond: RATE }, 0)
  const bucket = account.bucket
  t.equal(bucket?.rate, RATE, 'the bucket runs at the plan\'s rate')
  t.equal(bucket?.burst, RATE / 4, 'a quarter second of burst')
  t.equal(bucket?.tokens, RATE / 4, 'it starts full')
  let woken = 0
  bucket?.onRateChange(() => { woken++ })
  account.update({ ...UNLIMITED, bandwidthBytesPerSecond: RATE / 2 }, 0)
  t.equal(account.bucket, bucket, 'a new plan re-rates the same bucket, shared by the live connections')
  t.equal(bucket?.rate, RATE / 2)
  t.equal(woken, 1, 'waiting throttles are told at once')
  account.update(UNLIMITED, 0)
  t.equal(bucket?.rate, Infinity, 'lifting the limit releases them')
  const slow = new Account({ id: 'u2', name: 'bob' }, null)
  slow.update({ ...UNLIMITED, bandwidthBytesPerSecond: 1000 }, 0)
  t.equal(slow.bucket?.burst, 16 * KiB, 'the burst is at least 16 KiB')
  t.equal(burstOf(TIGHT), 16 * KiB, 'so a 16 KiB/s plan passes 16 KiB at once, then 16 KiB a second')
})

t.test('bandwidth is shaped to the plan by backpressure: the burst passes, the rest waits at the visitor', async t => {
  const w = await world(t, { bandwidthBytesPerSecond: TIGHT })
  const sink = await startSink()
  const client = makeClient(w.relay, [tcpSpec(sink.port)], { token: w.token })
  t.teardown(async () => { await client.close(); sink.close() })
  const [status] = await client.start()
  const visitor = await connectTo(status!.remotePort!)
  visitor.on('error', () => {})
  const data = numbered(BIG)
  const sender = pumpInto(visitor, data)
  await holdThroughRounds(w, sink.received, 'the sink')
  const got = sink.received()
  const counted = await accounted(w)
  t.ok(got < HELD_BOUND, `the sink got ${got} B of ${BIG} over ${HELD_CHECKS * 5} rounds: the plan's burst of ${burstOf(TIGHT)} B and its trickle, under ${HELD_BOUND} B`)
  t.ok(visitor.writableNeedDrain && sender.written() < BIG / 2, `the visitor waits for 'drain' after ${(sender.written() / MiB).toFixed(1)} MiB: slowed by backpressure`)
  t.ok(counted >= got && counted - got <= MiB, `the relay accounted ${counted} B: what it forwarded plus at most its buffers, not what the visitor queued`)
  await w.store.setLimitOverrides(w.userId, { bandwidthBytesPerSecond: null })
  await waitFor(() => sink.received() === BIG, { what: `the rest once the plan is lifted (sink ${sink.received()} of ${BIG} B)`, timeoutMs: 60_000 })
  t.equal(sink.digest(), sha256(data), 'every byte arrived, in order')
  await waitFor(async () => await accounted(w) >= BIG, { what: 'the relay to account for the whole transfer' })
  t.ok(await accounted(w) >= BIG, 'and the whole transfer was accounted')
  visitor.destroy()
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
  await waitFor(async () => (await isClosed(status!.remotePort!)), { what: 'the tunnel to be closed' })
})

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

t.test('http tunnels are shaped too: a download gets the plan\'s burst, the rest once the plan is lifted', async t => {
  const w = await world(t, { bandwidthBytesPerSecond: TIGHT }, { domain: 'tunnels.test', httpPort: 0 })
  const body = numbered(BIG)
  const origin = http.createServer((_req, res) => { res.setHeader('content-length', BIG); res.end(body) })
  const originPort = await listen(origin)
  t.teardown(() => { origin.close() })
  const client = makeClient(w.relay, [{ ...tcpSpec(originPort), kind: 'http', subdomain: 'dl' }], { token: w.token })
  t.teardown(() => client.close())
  await client.start()
  const chunks: Buffer[] = []
  let got = 0
  const done = withTimeout(new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: w.relay.httpAddress!.port, headers: { host: 'dl.tunnels.test' }, agent: false }, res => {
      res.on('data', (c: Buffer) => { got += c.length; chunks.push(c) })
      res.on('end', resolve)
    }).on('error', reject)
  }), { what: `the download (${got} of ${BIG} B)`, timeoutMs: 90_000 })
  done.catch(() => {})
  await holdThroughRounds(w, () => got, 'the download')
  t.ok(got < HELD_BOUND, `the download got ${got} B of ${BIG} over ${HELD_CHECKS * 5} rounds: the plan's burst of ${burstOf(TIGHT)} B and its trickle, under ${HELD_BOUND} B`)
  t.ok(await accounted(w) - got <= 2 * MiB, 'the relay accounted what it forwarded plus at most its buffers')
  await w.store.setLimitOverrides(w.userId, { bandwidthBytesPerSecond: null })
  await done
  t.equal(got, BIG)
  t.equal(sha256(Buffer.concat(chunks)), sha256(body), 'the whole body, intact')
})
