/**
 * The client's lease between processes, through the public API on loopback: LeaseFile (mode
 * bits, round trip, a damaged file or another live owner ignored with a warning), a ticket
 * presented under another principal refused while its owner keeps its tunnel, and remembered
 * ports: asked for again with a new lease, and any port when the remembered one is taken.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { LeaseFile, StaticTokens, type LeaseStore, type StoredLease } from '../../src/index.js'
import { cleanup, tmpDir } from '../helpers/spawn.js'
import { connectTo, makeClient, roundTrip, startEcho, startRelay, tcpSpec, TOKEN } from '../helpers/tunnel.js'
import { nextEvent } from '../helpers/wait.js'

t.teardown(cleanup)

/** A LeaseStore in memory that keeps every save. */
function memoryStore (initial?: StoredLease): LeaseStore & { saved: StoredLease[] } {
  const saved: StoredLease[] = []
  return {
    saved,
    load: () => Promise.resolve(initial),
    save: lease => { saved.push(structuredClone(lease)); return Promise.resolve() },
  }
}

const mode = (p: string): number => statSync(p).mode & 0o777

t.test('LeaseFile: one private file per relay and list of tunnels, written and read back', async t => {
  const dir = path.join(tmpDir(), 'leases')
  const spec = [tcpSpec(5555)]
  const a = LeaseFile.for('Relay.example:7835', spec, { dir })
  t.equal(a.path, LeaseFile.for('relay.example:7835', spec, { dir }).path, 'the relay address is case-insensitive')
  t.not(a.path, LeaseFile.for('relay.example:7836', spec, { dir }).path, 'another relay: another file')
  t.not(a.path, LeaseFile.for('relay.example:7835', [tcpSpec(5555, { remotePort: 40000 })], { dir }).path, 'other tunnels: another file')
  t.equal(await a.load(), undefined, 'nothing stored yet')
  const lease: StoredLease = { ticket: { id: 'lease-id', secret: 'lease-secret' }, tunnels: { t5555: { port: 31234 } } }
  await a.save(lease)
  t.equal(mode(a.path), 0o600, 'the file is 0600')
  t.equal(mode(dir), 0o700, 'its directory is 0700')
  t.same(await a.load(), lease, 'what was saved loads back')
  t.same(await LeaseFile.for('relay.example:7835', spec, { dir }).load(), lease, 'a new process (a new LeaseFile) reads it too')
})

t.test('LeaseFile: a damaged file is ignored with a warning, then replaced', async t => {
  const dir = tmpDir()
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"version": 1, "relay"', /is damaged \(.*JSON/],
    ['an array', '[]', /is damaged \(not a JSON object\)/],
    ['another version', '{"version": 9, "relay": "r", "pid": 1, "tunnels": {}}', /unknown version 9/],
    ['a bad ticket', '{"version": 1, "relay": "r", "pid": 1, "ticket": {"id": 5}, "tunnels": {}}', /a malformed "ticket"/],
    ['a bad port', '{"version": 1, "relay": "r", "pid": 1, "tunnels": {"web": {"port": 70000}}}', /tunnel "web" has a bad port/],
  ]
  for (const [what, text, re] of cases) {
    const file = path.join(dir, `${what.replace(/\W/g, '-')}.json`)
    writeFileSync(file, text)
    const warnings: string[] = []
    const store = new LeaseFile(file, 'r', { onWarning: m => warnings.push(m) })
    t.equal(await store.load(), undefined, `${what}: nothing loaded`)
    t.equal(warnings.length, 1, `${what}: one warning`)
    t.match(warnings[0], re, `${what}: the warning says what is wrong`)
    t.match(warnings[0], file, `${what}: and names the file`)
    await store.save({ tunnels: { web: { port: 31000 } } })
    t.same(await store.load(), { tunnels: { web: { port: 31000 } } }, `${what}: the next save replaces it`)
  }
})

t.test('LeaseFile: a file another live process owns is neither used nor overwritten; a dead owner\'s is', async t => {
  const dir = tmpDir()
  const file = path.join(dir, 'lease.json')
  const doc = (pid: number): string => JSON.stringify({ version: 1, relay: 'r', pid, ticket: { id: 'i', secret: 's' }, tunnels: { web: { port: 31001 } } })
  writeFileSync(file, doc(process.ppid)) // the test runner: alive
  const warnings: string[] = []
  const live = new LeaseFile(file, 'r', { onWarning: m => warnings.push(m) })
  t.equal(await live.load(), undefined, 'another live client\'s lease is not taken')
  t.match(warnings[0], new RegExp(`another client \\(pid ${process.ppid}\\) is using the lease file`), 'with a warning naming its pid')
  await live.save({ tunnels: {} })
  t.equal(readFileSync(file, 'utf8'), doc(process.ppid), 'and its file is left alone')

  writeFileSync(file, doc(2 ** 22 + 12345)) // above Linux's pid_max default: no such process
  const dead = new LeaseFile(file, 'r', { onWarning: m => warnings.push(m) })
  t.same(await dead.load(), { ticket: { id: 'i', secret: 's' }, tunnels: { web: { port: 31001 } } }, 'a dead client\'s lease is taken up')
  t.equal(warnings.length, 1, 'without a warning')
  mkdirSync(path.join(dir, 'unreadable.json'))
  const unreadable = new LeaseFile(path.join(dir, 'unreadable.json'), 'r', { onWarning: m => warnings.push(m) })
  t.equal(await unreadable.load(), undefined, 'an unreadable file: nothing loaded')
  t.match(warnings[1], /cannot read the lease file/, 'with a warning, not a crash')
})

t.test('a ticket presented under another principal is refused; its owner keeps the lease', async t => {
  const BOB = 'mpt_bob-token-for-loopback-only'
  const relay = await startRelay({
    authenticator: new StaticTokens([{ token: TOKEN, principal: { id: 'alice', name: 'alice' } }, { token: BOB, principal: { id: 'bob', name: 'bob' } }]),
  })
  const echo = await startEcho()
  t.teardown(async () => { await relay.close(100); await echo.close() })
  const closed: string[] = []
  relay.on('client-closed', c => closed.push(c.principal.name))

  const aliceStore = memoryStore()
  const alice = makeClient(relay, [tcpSpec(echo.port)], { leaseStore: aliceStore })
  t.teardown(() => alice.close())
  const [aliceTunnel] = await alice.start()
  const ticket = aliceStore.saved.at(-1)?.ticket
  t.ok(ticket, 'alice\'s ticket was saved')

  // Bob's client somehow got alice's lease file.
  const bob = makeClient(relay, [tcpSpec(echo.port)], { token: BOB, leaseStore: memoryStore({ ticket: ticket!, tunnels: {} }) })
  t.teardown(() => bob.close())
  const connected = nextEvent<[{ resumed: boolean, principal: string }]>(bob, 'connected', { what: 'bob to connect' })
  const [bobTunnel] = await bob.start()
  const [info] = await connected
  t.equal(info.principal, 'bob', 'bob is bob')
  t.equal(info.resumed, false, 'alice\'s ticket does not resume a lease for bob')
  t.not(bobTunnel!.remotePort, aliceTunnel!.remotePort, 'bob does not get alice\'s port')
  t.ok(alice.connected, 'alice is still connected')
  t.same(closed, [], 'no session was replaced')
  const data = Buffer.from('still alice\n')
  t.same(await roundTrip(await connectTo(aliceTunnel!.remotePort!), data), data, 'alice\'s tunnel still serves')
})

t.test('remembered ports: asked for again under a new lease; any port when the remembered one is taken', async t => {
  const relay = await startRelay({ leaseGrace: 100 })
  const echo = await startEcho()
  const squatter = net.createServer()
  t.teardown(async () => { await relay.close(100); await echo.close(); squatter.close() })
  /** Closes a client and waits until the relay released its lease (after the grace). */
  const closeAndRelease = async (c: { close (): Promise<void> }): Promise<void> => {
    const down = nextEvent(relay, 'tunnel-down', { what: 'the relay to release the lease after its grace' })
    await c.close()
    await down
  }

  // A port in the range, remembered from "a previous process" whose lease the relay no longer has.
  const probe = makeClient(relay, [tcpSpec(echo.port)])
  const [p] = await probe.start()
  const remembered = p!.remotePort!
  await closeAndRelease(probe)

  const again = makeClient(relay, [tcpSpec(echo.port)], { leaseStore: memoryStore({ tunnels: { [`t${echo.port}`]: { port: remembered } } }) })
  const connected = nextEvent<[{ resumed: boolean }]>(again, 'connected', { what: 'the client to connect' })
  const [a] = await again.start()
  t.equal((await connected)[0].resumed, false, 'a new lease')
  t.equal(a!.remotePort, remembered, 'the remembered port again')
  await closeAndRelease(again)

  await new Promise<void>((resolve, reject) => { squatter.once('error', reject); squatter.listen(remembered, '127.0.0.1', resolve) })
  const store = memoryStore({ tunnels: { [`t${echo.port}`]: { port: remembered } } })
  const fallback = makeClient(relay, [tcpSpec(echo.port)], { leaseStore: store })
  t.teardown(() => fallback.close())
  const waiting: unknown[] = []
  fallback.on('tunnel-waiting', (...args) => waiting.push(args))
  const [f] = await fallback.start()
  t.equal(f!.state, 'online', 'a tunnel that did not ask for a fixed port is never refused for its remembered one')
  t.not(f!.remotePort, remembered, 'it got another port')
  t.equal(f!.error, undefined, 'no error')
  t.same(waiting, [], 'and it did not wait')
  t.equal(store.saved.at(-1)?.tunnels[`t${echo.port}`]?.port, f!.remotePort, 'the new port is remembered')
  const data = Buffer.from('new port\n')
  t.same(await roundTrip(await connectTo(f!.remotePort!), data), data, 'and serves')
})
