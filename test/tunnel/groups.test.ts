/**
 * Load-balancing groups end to end: a real relay, real clients and real HTTP services on
 * loopback. Who answered each visitor is read from the body (each service says its name), so
 * the counts prove the selection; a member leaving (drained, cut, or silenced) costs no new
 * visitor while another member is up; an unhealthy member gets no visitors until it is well.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { StaticTokens, generateSelfSigned, type Client, type ClientOptions, type Relay, type TunnelSpec, type TunnelStatus } from '../../src/index.js'
import { ManualClock } from '../helpers/manual-clock.js'
import { cert, key, makeClient, startRelay, tcpSpec, TOKEN } from '../helpers/tunnel.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

const DOMAIN = 'groups.test'
const OTHER_TOKEN = 'mpt_second-user-token-loopback-only'

/** A local service: answers every request with its name; /health says 200 unless `sick`; /hold sends its name and waits for release(). */
async function startService (name: string): Promise<{ name: string, port: number, sick: boolean, release (): void, close (): Promise<void> }> {
  const held = new Set<http.ServerResponse>()
  const svc = {
    name,
    port: 0,
    sick: false,
    release: () => { for (const r of held) r.end(); held.clear() },
    close: () => new Promise<void>(resolve => { svc.release(); server.closeAllConnections(); server.close(() => resolve()) }),
  }
  const server = http.createServer((req, res) => {
    if (req.url === '/health') { res.statusCode = svc.sick ? 503 : 200; res.end(); return }
    if (req.url === '/hold') { res.write(`${name}\n`); held.add(res); return }
    res.end(name)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  svc.port = (server.address() as net.AddressInfo).port
  return svc
}

/** One visitor: GET `path` on the relay's port (with `host` for http tunnels); resolves with the body (the service's name). */
function visit (port: number, opts: { host?: string, path?: string } = {}): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: opts.path ?? '/', agent: false, headers: opts.host !== undefined ? { host: opts.host } : {} }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString()}`)))
      res.on('error', reject)
    })
    req.on('error', reject)
  }), { what: `visitor on port ${port}`, timeoutMs: 30_000 })
}

/** A visitor that holds its connection open (GET /hold): resolves with who took it once the name arrived. */
function hold (port: number): Promise<{ name: string, req: http.ClientRequest }> {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/hold', agent: false }, res => {
      res.once('data', (c: Buffer) => resolve({ name: c.toString().trim(), req }))
      res.on('error', () => {})
    })
    req.on('error', reject)
  }), { what: `held visitor on port ${port}` })
}

/** `n` visitors, at most `concurrency` at a time; every one must be answered. Returns the answers in order. */
async function visitors (n: number, concurrency: number, go: () => Promise<string>): Promise<string[]> {
  const out: string[] = new Array(n)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++
      out[i] = await go()
    }
  }))
  return out
}

const count = (answers: string[], name: string): number => answers.filter(a => a === name).length

function groupSpec (port: number, extra: Partial<TunnelSpec> = {}): TunnelSpec {
  return { ...tcpSpec(port), name: 'web', group: 'web', ...extra }
}

async function started (client: Client): Promise<TunnelStatus> {
  const [status] = await withTimeout(client.start(), { what: 'client start' })
  if (status === undefined || status.state !== 'online') throw new Error(`tunnel not online: ${status?.state} ${status?.error?.message}`)
  return status
}

/** The relay's listing of the group, from the first member's row. */
function members (relay: Relay): Array<{ client: string, session?: string, state: string, connections: number }> {
  return relay.tunnels.find(x => x.group !== undefined)?.group?.members ?? []
}

/** A TCP forwarder between a client and the relay, so a test can cut (destroy) or silence (stop forwarding) the client's connection. */
async function startCutter (target: number): Promise<{ port: number, cut (): void, drop (): void, silence (): void }> {
  const sockets = new Set<net.Socket>()
  let silent = false
  const server = net.createServer(a => {
    const b = net.connect({ host: '127.0.0.1', port: target })
    for (const s of [a, b]) { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)) }
    a.on('data', c => { if (!silent) b.write(c) })
    b.on('data', c => { if (!silent) a.write(c) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => { if (server.listening) server.close(); for (const s of sockets) s.destroy() },
    /** Destroys the connections but keeps listening: the client reconnects. */
    drop: () => { for (const s of sockets) s.destroy() },
    silence: () => { silent = true; if (server.listening) server.close() },
  }
}

interface Pair {
  relay: Relay
  a: Awaited<ReturnType<typeof startService>>
  b: Awaited<ReturnType<typeof startService>>
  ca: Client
  cb: Client
  /** B's connection to the relay goes through it. */
  cutter: Awaited<ReturnType<typeof startCutter>>
  first: TunnelStatus
  second: TunnelStatus
  port: number
}

/** Members A and B (B through a cutter) of a tcp group on `relay`, both online; everything is closed at the end of `t`. */
async function twoMembers (t: Test, relay: Relay, o: { a?: Partial<TunnelSpec>, b?: Partial<TunnelSpec>, bClient?: Partial<ClientOptions> } = {}): Promise<Pair> {
  const a = await startService('A')
  const b = await startService('B')
  const cutter = await startCutter(relay.address.port)
  const ca = makeClient(relay, [groupSpec(a.port, o.a)])
  const cb = makeClient(relay, [groupSpec(b.port, o.b)], { relay: `127.0.0.1:${cutter.port}`, reconnect: false, ...o.bClient })
  t.teardown(async () => { a.release(); b.release(); await ca.close(); await cb.close(); cutter.cut(); await relay.close(0); await a.close(); await b.close() })
  const first = await started(ca)
  const second = await started(cb)
  return { relay, a, b, ca, cb, cutter, first, second, port: first.remotePort! }
}

t.test('two clients in a tcp group both receive visitors, in turn (round robin)', async t => {
  const { relay, ca, cb, first, second } = await twoMembers(t, await startRelay())
  t.equal(second.remotePort, first.remotePort, 'the second member gets the same public port')
  await waitFor(() => ca.tunnels[0]?.group?.members === 2 && cb.tunnels[0]?.group?.available === 2, { what: 'both clients told of 2 members' })
  const answers = await visitors(20, 1, () => visit(first.remotePort!))
  t.same(answers.slice(0, 4), ['A', 'B', 'A', 'B'], 'sequential visitors alternate')
  t.equal(count(answers, 'A'), 10, 'A answered half')
  t.equal(count(answers, 'B'), 10, 'B answered half')
  const listed = members(relay)
  t.equal(listed.length, 2, 'the relay lists both members')
  t.same(listed.map(m => m.state), ['ready', 'ready'], 'both ready')
  t.ok(relay.tunnels.every(x => x.group?.policy === 'roundrobin'), 'default policy: round robin')
})

t.test('least connections: the idle member takes the next visitors', async t => {
  const { relay, port } = await twoMembers(t, await startRelay(), { a: { groupPolicy: 'leastconn' } })
  const busy = await hold(port)
  t.equal(busy.name, 'A', 'the first visitor (a tie) goes to the first member')
  const conns = (name: string): number => members(relay)[name === 'A' ? 0 : 1]?.connections ?? -1
  const taken: string[] = []
  for (let i = 0; i < 5; i++) {
    taken.push(await visit(port))
    await waitFor(() => conns('B') === 0, { what: 'the relay to see B idle again' })
  }
  t.same(taken, ['B', 'B', 'B', 'B', 'B'], 'while A holds a connection, every new visitor goes to idle B (round robin would alternate)')
  t.equal(conns('A'), 1, 'A still holds its one connection')
  t.equal(relay.tunnels[0]?.group?.policy, 'leastconn', 'the founder set the policy')
})

t.test('a member that drains (graceful stop) loses no new visitor: 200 visitors, all answered', async t => {
  const { relay, ca, cb, port } = await twoMembers(t, await startRelay())
  const before = await visitors(40, 8, () => visit(port))
  t.ok(count(before, 'B') > 0 && count(before, 'A') > 0, 'both served before the drain')
  // Visitors keep coming while B drains.
  const during = visitors(100, 8, () => visit(port))
  const draining = nextEvent(cb, 'draining', { what: 'the relay to acknowledge the drain' })
  const drained = cb.drain(10_000)
  await draining
  t.equal(members(relay).find(m => m.state === 'draining') !== undefined || members(relay).length === 1, true, 'B is draining or gone')
  const answers = await during
  await drained
  t.equal(answers.length, 100, 'every visitor during the drain was answered')
  await waitFor(() => members(relay).length === 1, { what: 'B to leave the group' })
  t.equal(ca.tunnels[0]?.group?.members, 1, 'A is told it is alone')
  const after = await visitors(60, 8, () => visit(port))
  t.equal(count(after, 'A'), 60, 'after the drain, A answers every visitor')
})

t.test('a member whose connection is cut (socket destroyed) loses no new visitor', async t => {
  const { relay, cutter, port } = await twoMembers(t, await startRelay())
  const before = await visitors(50, 10, () => visit(port))
  t.equal(count(before, 'B'), 25, 'B served its turns before the cut')
  cutter.cut()
  const after = await visitors(150, 10, () => visit(port))
  t.equal(after.length, 150, 'every visitor after the cut was answered')
  t.equal(count(after, 'A'), 150, 'all by A')
  await waitFor(() => members(relay).some(m => m.state === 'gone'), { what: 'the relay to list B as gone' })
})

t.test('a member that reconnects takes up its lease and its turns again', async t => {
  const { relay, cutter, cb, port } = await twoMembers(t, await startRelay(), { bClient: { reconnect: true } })
  const connected = nextEvent(cb, 'connected', { what: 'B to reconnect' })
  cutter.drop()
  const during = await visitors(30, 3, () => visit(port))
  t.equal(during.length, 30, 'visitors while B is away are all answered')
  const [info] = await connected as [{ resumed: boolean }]
  t.equal(info.resumed, true, 'B took up its lease again')
  await waitFor(() => members(relay).every(m => m.state === 'ready'), { what: 'B ready again' })
  t.equal(members(relay).length, 2, 'still two members, not three')
  const after = await visitors(20, 1, () => visit(port))
  t.equal(count(after, 'B'), 10, 'B takes its turns again')
})

t.test('a silenced member (no ACK ever comes): its visitors move to the other member once its session dies', async t => {
  // A short keepalive so the relay gives up on the silent session; nothing is asserted about time.
  const { relay, cutter, port } = await twoMembers(t, await startRelay({ mux: { keepAliveInterval: 200, keepAliveTimeout: 400 } }))
  const bLease = members(relay)[1]?.client
  const movedOff: string[] = []
  relay.on('connection-closed', (info, stats) => { if (info.tunnel.client === bLease && stats.error !== undefined) movedOff.push(info.remoteAddress) })
  cutter.silence()
  const answers = await visitors(20, 20, () => visit(port))
  t.equal(count(answers, 'A'), 20, 'all 20 concurrent visitors answered, by A')
  t.ok(movedOff.length >= 1, `visitors first sent to the silent member were moved to A (${movedOff.length})`)
})

t.test('an unhealthy member gets no visitors until it is healthy again', async t => {
  const clock = new ManualClock()
  const check = { type: 'http' as const, path: '/health', intervalMs: 1000 }
  const { relay, b, cb, port } = await twoMembers(t, await startRelay(), { a: { healthCheck: check }, b: { healthCheck: check }, bClient: { healthTimer: clock.setTimer } })
  await waitFor(() => cb.tunnels[0]?.health === 'healthy', { what: "B's first check" })
  b.sick = true
  const unhealthy = nextEvent(cb, 'health', { what: 'B to find its service unhealthy' })
  clock.advance(1000)
  await unhealthy
  t.equal(cb.tunnels[0]?.healthDetail, 'GET /health: HTTP 503', 'the client says why')
  await waitFor(() => members(relay)[1]?.state === 'unhealthy', { what: 'the relay to mark B unhealthy' })
  t.equal((relay.tunnels[0]?.group?.members[1] as { healthDetail?: string } | undefined)?.healthDetail, 'GET /health: HTTP 503', 'the relay lists why')
  const sickAnswers = await visitors(20, 4, () => visit(port))
  t.equal(count(sickAnswers, 'A'), 20, 'A answers everyone while B is unhealthy')
  b.sick = false
  const healthy = nextEvent(cb, 'health', { what: 'B to recover' })
  clock.advance(1000)
  await healthy
  await waitFor(() => members(relay)[1]?.state === 'ready', { what: 'the relay to mark B ready' })
  const wellAnswers = await visitors(20, 1, () => visit(port))
  t.equal(count(wellAnswers, 'B'), 10, 'B takes its turns again')
})

t.test('keys and opt-in: a wrong key is refused with its code, a non-member duplicate as before, another user joins with the key', async t => {
  const relay = await startRelay({ authenticator: new StaticTokens([{ token: TOKEN }, { token: OTHER_TOKEN }]) })
  const a = await startService('A')
  const b = await startService('B')
  const key = 'group-secret-7f3a9c'
  const ca = makeClient(relay, [groupSpec(a.port, { group: 'shared', groupKey: key })])
  const wrong = makeClient(relay, [groupSpec(b.port, { group: 'shared', groupKey: 'not-the-key' })], { tunnelRetry: false })
  const port = (await started(ca)).remotePort!
  const plain = makeClient(relay, [tcpSpec(b.port, { remotePort: port })], { tunnelRetry: false })
  const other = makeClient(relay, [groupSpec(b.port, { group: 'shared', groupKey: key, remotePort: port })], { token: OTHER_TOKEN })
  t.teardown(async () => { await ca.close(); await wrong.close(); await plain.close(); await other.close(); await relay.close(0); await a.close(); await b.close() })
  const [refused] = await wrong.start()
  t.equal(refused?.state, 'refused', 'a wrong key is refused for good')
  t.equal(refused?.error?.code, 'MPORT_ERR_GROUP_KEY', 'with MPORT_ERR_GROUP_KEY')
  const [dup] = await plain.start()
  t.equal(dup?.error?.code, 'MPORT_ERR_PORT_IN_USE', "a tunnel that did not opt in cannot take the group's port")
  const joined = await started(other)
  t.equal(joined.remotePort, port, 'another user with the key joins the group')
  const answers = await visitors(10, 1, () => visit(port))
  t.same([count(answers, 'A'), count(answers, 'B')], [5, 5], "both users' services answer")
  t.notMatch(JSON.stringify(relay.tunnels), key, 'the key is not in the listing')
  t.equal(relay.tunnels[0]?.group?.keyed, true, 'the group is listed as keyed')
  const sameUserNoKey = makeClient(relay, [groupSpec(b.port, { group: 'shared', remotePort: port })], { tunnelRetry: false })
  t.teardown(() => sameUserNoKey.close())
  const [nokey] = await sameUserNoKey.start()
  t.equal(nokey?.error?.code, 'MPORT_ERR_PORT_IN_USE', 'without the key, a keyed group is not joined (its port is taken)')
  const mismatch = makeClient(relay, [groupSpec(b.port, { group: 'shared', groupKey: key, remotePort: port === 65535 ? port - 1 : port + 1 })], { tunnelRetry: false })
  t.teardown(() => mismatch.close())
  const [mis] = await mismatch.start()
  t.equal(mis?.error?.code, 'MPORT_ERR_GROUP_MISMATCH', 'another port than the group\'s is a mismatch')
})

t.test('an http (subdomain) group spreads visitors and survives a member leaving', async t => {
  const wildcard = await generateSelfSigned([`*.${DOMAIN}`, DOMAIN])
  const relay = await startRelay({ domain: DOMAIN, httpPort: 0, httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key })
  const a = await startService('A')
  const b = await startService('B')
  const spec = (port: number): TunnelSpec => groupSpec(port, { kind: 'http', subdomain: 'shop' })
  const cutter = await startCutter(relay.address.port)
  const ca = makeClient(relay, [spec(a.port)])
  const cb = makeClient(relay, [spec(b.port)], { relay: `127.0.0.1:${cutter.port}`, reconnect: false })
  t.teardown(async () => { await ca.close(); await cb.close(); cutter.cut(); await relay.close(0); await a.close(); await b.close() })
  const first = await started(ca)
  const second = await started(cb)
  t.equal(second.url, first.url, 'both members serve the same URL')
  const port = relay.httpAddress!.port
  const host = `shop.${DOMAIN}`
  const answers = await visitors(20, 1, () => visit(port, { host }))
  t.same([count(answers, 'A'), count(answers, 'B')], [10, 10], 'visitors alternate between the members')
  cutter.cut()
  const after = await visitors(60, 6, () => visit(port, { host }))
  t.equal(count(after, 'A'), 60, 'after B is cut, every visitor is answered by A')
  await ca.drain(5000)
  await waitFor(() => relay.tunnels.length === 1, { what: "A's tunnel to leave the group (drained); B's lease waits out its grace" })
  t.same(members(relay).map(m => m.state), ['gone'], 'the group keeps its name while a member (B, away in its lease grace) is left')
  const c = await startService('C')
  const cc = makeClient(relay, [spec(c.port)])
  t.teardown(async () => { await cc.close(); await c.close() })
  t.equal((await started(cc)).url, first.url, 'a new member joins under the same name')
  const later = await visitors(10, 2, () => visit(port, { host }))
  t.equal(count(later, 'C'), 10, 'and takes every visitor while B stays away')
})

/** A TLS service that terminates TLS itself and says its name on every connection. */
async function startTlsService (name: string): Promise<{ port: number, close (): void }> {
  const server = tls.createServer({ cert, key }, s => { s.on('error', () => {}); s.end(name) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, close: () => { server.close() } }
}

/** A TLS visitor through the relay's HTTPS port by SNI; resolves with what the service said. */
function visitTls (port: number, servername: string): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {})
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('end', () => { s.end(); resolve(Buffer.concat(chunks).toString()) })
    s.on('error', reject)
  }), { what: `tls visitor for ${servername}` })
}

t.test('a tls (SNI passthrough) group spreads visitors over its members', async t => {
  const wildcard = await generateSelfSigned([`*.${DOMAIN}`, DOMAIN])
  const relay = await startRelay({ domain: DOMAIN, httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key })
  const a = await startTlsService('A')
  const b = await startTlsService('B')
  const spec = (port: number): TunnelSpec => groupSpec(port, { kind: 'tls', subdomain: 'vault' })
  const ca = makeClient(relay, [spec(a.port)])
  const cb = makeClient(relay, [spec(b.port)])
  t.teardown(async () => { await ca.close(); await cb.close(); await relay.close(0); a.close(); b.close() })
  const first = await started(ca)
  t.equal((await started(cb)).url, first.url, 'one tls:// address for both')
  const answers = await visitors(10, 1, () => visitTls(relay.httpsAddress!.port, `vault.${DOMAIN}`))
  t.same([count(answers, 'A'), count(answers, 'B')], [5, 5], 'the encrypted connections alternate between the members')
})
