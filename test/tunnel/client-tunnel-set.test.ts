/**
 * Client.setTunnels (issue 15, the library side of a client reload) through a real relay and
 * TLS on loopback: the diff by name (diffTunnels, sameTunnel), then a live client whose tunnel
 * list changes while a visitor connection of an unchanged tunnel stays open: added tunnels
 * open, removed ones close on the relay (their port refuses), a changed one is replaced on its
 * old port with its new options, the relay's tunnel list matches, and the lease store moves
 * (the new one saved with the live names only, the old one discarded). Duplicate names are
 * refused and change nothing. A tunnel removed while the client is disconnected is closed on
 * the relay (its lease still holds it) right after the reconnect. An http tunnel with a random
 * name, changed (basic auth added), keeps its name and asks visitors for the password.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import t from 'tap'
import { diffTunnels, idsFromStoredLease, sameTunnel } from '../../src/tunnel/client-tunnel-set.js'
import { LeaseFile } from '../../src/tunnel/client-lease-store.js'
import { cleanup, tmpDir } from '../helpers/spawn.js'
import type { LeaseStore, StoredLease } from '../../src/index.js'
import { InvalidConfigError } from '../../src/errors.js'
import { connectTo, makeClient, roundTrip, startEcho, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { request, startUpstream } from '../helpers/http-fixtures.js'
import { sha256 } from '../helpers/digest.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

const BOUND_MS = 30_000

t.teardown(cleanup)

t.test('diffTunnels: by name; any difference in a spec is a change', async t => {
  const base = tcpSpec(5555, { name: 'adb' })
  for (const [field, value] of [['localHost', '10.0.0.2'], ['localPort', 5556], ['remotePort', 45555], ['kind', 'http'], ['subdomain', 'x'], ['hostname', 'h.example'],
    ['basicAuth', 'a:b'], ['allowIp', ['127.0.0.1']], ['denyIp', ['10.0.0.0/8']], ['proxyProtocol', 2]] as const) {
    t.notOk(sameTunnel(base, { ...base, [field]: value }), `${field} differs: changed`)
  }
  t.ok(sameTunnel(base, { ...base }), 'a copy is the same')
  t.ok(sameTunnel(base, { ...base, kind: 'tcp', allowIp: [] }), 'an explicit tcp kind and an empty list are the defaults')
  t.same(diffTunnels([tcpSpec(1, { name: 'a' }), tcpSpec(2, { name: 'c' }), tcpSpec(3, { name: 'd' })], [tcpSpec(1, { name: 'a' }), tcpSpec(4, { name: 'b' }), tcpSpec(5, { name: 'c' })]),
    { added: ['b'], removed: ['d'], changed: ['c'], unchanged: ['a'] })
  t.throws(() => diffTunnels([], [tcpSpec(1, { name: 'x' }), tcpSpec(2, { name: 'x' })]), InvalidConfigError, 'two new tunnels with one name')
})

t.test('idsFromStoredLease: the ids the relay\'s lease knows, new ones above them, stale ones to close', async t => {
  // After a reload replaced c (id 2 → 5) and added b (4), and d (3) was dropped from the file before the restart.
  const stored = { a: { id: 1, port: 30001 }, b: { id: 4, port: 30004 }, c: { id: 5, port: 30002 }, d: { id: 3, port: 30003 } }
  t.same(idsFromStoredLease(['a', 'b', 'c', 'e'], stored), { ids: [1, 4, 5, 6], stale: [3], next: 7 })
  t.same(idsFromStoredLease(['x', 'y'], {}), { ids: [1, 2], stale: [], next: 3 }, 'nothing stored: numbered from 1')
  t.same(idsFromStoredLease(['a', 'b'], { a: { id: 2 }, b: { id: 2 } }), { ids: [2, 3], stale: [], next: 4 }, 'a damaged file with one id twice: the second gets a new one')
  t.same(idsFromStoredLease(['a'], { a: { port: 30001 } }), { ids: [1], stale: [], next: 2 }, 'a lease file from before ids were stored')

  const file = LeaseFile.for('127.0.0.1:7835', [], { dir: tmpDir() })
  await file.save({ ticket: { id: 'i', secret: 's' }, tunnels: { a: { id: 4, port: 30001 }, site: { id: 7, subdomain: 'brave-otter' } } })
  t.same(await file.load(), { ticket: { id: 'i', secret: 's' }, tunnels: { a: { id: 4, port: 30001 }, site: { id: 7, subdomain: 'brave-otter' } } }, 'LeaseFile keeps the ids')
  await file.discard()
  t.equal(await file.load(), undefined, 'discard() removes the file')
})

/** A LeaseStore in memory that records what it was given. */
function memoryStore (): LeaseStore & { saved: StoredLease[], discarded: number } {
  const store = {
    saved: [] as StoredLease[],
    discarded: 0,
    load: () => Promise.resolve(undefined),
    save: (lease: StoredLease) => { store.saved.push(structuredClone(lease)); return Promise.resolve() },
    discard: () => { store.discarded++; return Promise.resolve() },
  }
  return store
}

t.test('setTunnels on a live client: added, removed, changed, unchanged (its open visitor connection undisturbed)', async t => {
  const relay = await startRelay()
  t.teardown(() => relay.close())
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const first = memoryStore()
  const client = makeClient(relay, [tcpSpec(echo.port, { name: 'keep' }), tcpSpec(echo.port, { name: 'change' }), tcpSpec(echo.port, { name: 'drop' })], { leaseStore: first })
  t.teardown(() => client.close())
  await withTimeout(client.start(), { what: 'the client to start', timeoutMs: BOUND_MS })
  const portOf = (name: string): number => client.tunnels.find(x => x.name === name)!.remotePort!
  const [keep, change, drop] = [portOf('keep'), portOf('change'), portOf('drop')]

  // A visitor connection of "keep" stays open across the change: half its bytes before, half after.
  const visitor = await connectTo(keep)
  const received: Buffer[] = []
  visitor.on('data', (d: Buffer) => received.push(d))
  const ended = new Promise<void>(resolve => visitor.once('end', resolve))
  const data = randomBytes(2 * 1024 * 1024)
  visitor.write(data.subarray(0, data.length / 2))
  await waitFor(() => received.reduce((n, b) => n + b.length, 0) >= data.length / 2, { what: 'the first half echoed', timeoutMs: BOUND_MS })

  const moved = memoryStore()
  const opened = new Map<string, number>()
  client.on('tunnel', s => opened.set(s.name, s.remotePort!))
  const changes = client.setTunnels([tcpSpec(echo.port, { name: 'keep' }), tcpSpec(echo.port, { name: 'add' }), tcpSpec(echo.port, { name: 'change', allowIp: ['10.0.0.0/8'] })], { leaseStore: moved })
  t.same(changes, { added: ['add'], removed: ['drop'], changed: ['change'], unchanged: ['keep'] }, 'what changed, by name')
  t.same(client.tunnels.map(x => x.name), ['keep', 'add', 'change'], 'the status list follows the new order')
  await waitFor(() => opened.has('add') && opened.has('change'), { what: 'the added and the changed tunnel to open', timeoutMs: BOUND_MS })
  t.equal(opened.get('change'), change, 'the changed tunnel asked for its old port and got it')
  t.notOk(opened.has('keep'), 'the unchanged tunnel was not asked for again')
  await waitFor(() => relay.tunnels.map(x => x.name).sort().join() === 'add,change,keep', { what: 'the relay to hold keep, add and change', timeoutMs: BOUND_MS, diag: () => JSON.stringify(relay.tunnels) })
  t.pass('the relay holds exactly keep, add and change')

  const probe = randomBytes(8 * 1024)
  t.equal(sha256(await roundTrip(await connectTo(opened.get('add')!), probe)), sha256(probe), 'the added tunnel serves')
  /** 'served' when `probe` comes back through `port`; 'refused' when the connection is refused, reset or ends empty. */
  const serves = (port: number): Promise<string> => connectTo(port).then(s => roundTrip(s, probe)).then(r => r.length === 0 ? 'refused' : 'served', () => 'refused')
  t.equal(await serves(drop), 'refused', 'the removed tunnel\'s port no longer serves')
  t.equal(await serves(change), 'refused', 'the changed tunnel has its new allow list (127.0.0.1 is not in 10.0.0.0/8)')
  t.equal(await serves(keep), 'served', 'the unchanged tunnel serves new visitors too')

  visitor.end(data.subarray(data.length / 2))
  await withTimeout(ended, { what: 'the long visitor connection to end', timeoutMs: BOUND_MS })
  t.equal(sha256(Buffer.concat(received)), sha256(data), 'the unchanged tunnel\'s open connection carried all its bytes across the change')

  await waitFor(() => moved.saved.length > 0 && first.discarded === 1, { what: 'the lease to move to the new store', timeoutMs: BOUND_MS })
  t.same(Object.keys(moved.saved.at(-1)!.tunnels).sort(), ['add', 'change', 'keep'], 'the new store holds the live tunnels only')
  t.ok(moved.saved.at(-1)!.ticket, 'and the lease ticket')
  t.equal(first.discarded, 1, 'the old store was discarded')

  const before = client.tunnels.map(x => x.id)
  t.throws(() => client.setTunnels([tcpSpec(echo.port, { name: 'x' }), tcpSpec(echo.port, { name: 'x' })]), InvalidConfigError, 'duplicate names are refused')
  t.same(client.tunnels.map(x => x.id), before, 'and change nothing')
})

/** A loopback forwarder to `target` whose connections `cut()` resets: the network path of one client. */
async function cuttablePath (target: number): Promise<{ port: number, cut (): void, close (): Promise<void> }> {
  const open = new Set<net.Socket>()
  const server = net.createServer(inbound => {
    const outbound = net.connect(target, '127.0.0.1')
    for (const s of [inbound, outbound]) {
      open.add(s)
      s.on('error', () => {})
      s.on('close', () => { open.delete(s); inbound.destroy(); outbound.destroy() })
    }
    inbound.pipe(outbound).pipe(inbound)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => { for (const s of open) s.resetAndDestroy() },
    close: () => new Promise<void>(resolve => { for (const s of open) s.destroy(); server.close(() => resolve()) }),
  }
}

t.test('setTunnels while disconnected: the removed tunnel is closed on the relay after the reconnect, the added one opened', async t => {
  const relay = await startRelay()
  t.teardown(() => relay.close(100))
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const path = await cuttablePath(relay.address.port)
  t.teardown(() => path.close())
  const client = makeClient(relay, [tcpSpec(echo.port, { name: 'stay' }), tcpSpec(echo.port, { name: 'gone' })], { relay: `127.0.0.1:${path.port}` })
  t.teardown(() => client.close())
  await withTimeout(client.start(), { what: 'the client to start', timeoutMs: BOUND_MS })
  const gone = client.tunnels.find(x => x.name === 'gone')!.remotePort!
  let changes: unknown
  // Changed in the 'disconnected' listener: no connection is up (the lease on the relay still holds both).
  client.once('disconnected', () => { changes = client.setTunnels([tcpSpec(echo.port, { name: 'stay' }), tcpSpec(echo.port, { name: 'new' })]) })
  const reconnected = nextEvent<[{ resumed: boolean }]>(client, 'connected', { what: 'the client to reconnect', timeoutMs: BOUND_MS })
  path.cut()
  const [info] = await reconnected
  t.equal(info.resumed, true, 'the lease was resumed (it still held "gone")')
  t.same(changes, { added: ['new'], removed: ['gone'], changed: [], unchanged: ['stay'] })
  await waitFor(() => relay.tunnels.map(x => x.name).sort().join() === 'new,stay', { what: 'the relay to hold stay and new only', timeoutMs: BOUND_MS, diag: () => JSON.stringify(relay.tunnels) })
  t.pass('the relay holds stay and new, not gone')
  const probe = randomBytes(4096)
  const served = await connectTo(gone).then(s => roundTrip(s, probe)).then(r => r.length === 0 ? 'refused' : 'served', () => 'refused')
  t.equal(served, 'refused', 'the removed tunnel\'s port is closed')
})

t.test('a changed http tunnel with a random name keeps the name, with its new options', async t => {
  const relay = await startRelay({ domain: 'mport.test', httpPort: 0 })
  t.teardown(() => relay.close(100))
  const app = await startUpstream()
  t.teardown(() => app.close())
  const client = makeClient(relay, [tcpSpec(app.port, { name: 'site', kind: 'http' })])
  t.teardown(() => client.close())
  const [before] = await withTimeout(client.start(), { what: 'the client to start', timeoutMs: BOUND_MS })
  const host = new URL(before!.url!).hostname
  const port = relay.httpAddress!.port
  t.equal((await request({ port, path: '/open', headers: { host }, agent: false })).status, 200, 'before: open to everyone')
  const reopened = nextEvent<[{ url?: string }]>(client, 'tunnel', { what: 'the changed tunnel to open', timeoutMs: BOUND_MS })
  t.same(client.setTunnels([tcpSpec(app.port, { name: 'site', kind: 'http', basicAuth: 'admin:pw' })]), { added: [], removed: [], changed: ['site'], unchanged: [] })
  const [after] = await reopened
  t.equal(after.url, before!.url, `the same random name: ${host}`)
  t.equal((await request({ port, path: '/closed', headers: { host }, agent: false })).status, 401, 'after: a password is asked for')
  const auth = `Basic ${Buffer.from('admin:pw').toString('base64')}`
  t.equal((await request({ port, path: '/in', headers: { host, authorization: auth }, agent: false })).status, 200, 'after: the password lets the visitor in')
})
