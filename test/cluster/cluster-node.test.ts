/**
 * ClusterNode in process: relays from the library, each with a ClusterNode on one real Redis
 * (its own key prefix per test). What the three-process test does not reach: a lease moving
 * while its old node is alive, claims refused across nodes, the links' authentication, and a
 * tls (SNI pass-through) name forwarded to the node that holds it.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import tls from 'node:tls'
import crypto, { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { Client, generateSelfSigned, type Relay } from '../../src/index.js'
import { ClusterNode } from '../../packages/mport-relay/src/cluster/index.js'
import { NodeLinks } from '../../packages/mport-relay/src/cluster/node-link.js'
import { redisTestOptions, startRedis, type RedisServer } from '../helpers/redis.js'
import { cert, certFingerprint, key, roundTrip, connectTo, startEcho, startRelay, TOKEN } from '../helpers/tunnel.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

const KEY = randomBytes(24).toString('base64url')
let prefixes = 0

const { skip } = redisTestOptions()

t.test('cluster nodes in process', skip !== undefined ? { skip } : {}, async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const echo = await startEcho()
  t.teardown(() => echo.close())

  await t.test('a lease moves to another node while the old one is alive: the old node lets go, the port follows', async t => {
    const prefix = `mport:t${++prefixes}:`
    const [n1, r1] = await startNode(t, redis, prefix, 'one', '127.0.0.1')
    const [n2, r2] = await startNode(t, redis, prefix, 'two', '127.0.0.1')
    // The client reaches node one through a forwarder the test can cut: a network blip, not a dead node.
    const blip = await forwarder(r1.address.port)
    t.teardown(() => blip.close())
    const client = new Client({
      relay: `127.0.0.1:${blip.port}`, fallbackRelays: [`127.0.0.1:${r2.address.port}`], token: TOKEN, fingerprint: certFingerprint,
      backoff: { initial: 50, max: 200 }, tunnelRetry: { initial: 100, max: 300 },
      tunnels: [{ name: 'echo', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }],
    })
    client.on('error', () => {})
    t.teardown(() => client.close())
    const [status] = await client.start()
    const port = status!.remotePort!
    t.equal(r1.tunnels.length, 1, 'the tunnel is on node one')
    const leaseId = r1.tunnels[0]!.client
    blip.cut()
    await waitFor(() => r2.tunnels.length === 1 && client.tunnels[0]!.online, { what: 'the tunnel up on node two', timeoutMs: 30_000 })
    t.equal(client.tunnels[0]!.remotePort, port, 'the same port on node two')
    t.equal(r1.tunnels.length, 0, 'node one closed its copy of the lease (it saw node two take it)')
    t.equal(r2.tunnels[0]!.client, leaseId, 'node two adopted the lease node one issued')
    t.equal(String(await roundTrip(await connectTo(port), Buffer.from('moved'))), 'moved', 'visitors reach it on node two')
    t.ok(n1.id !== n2.id)
  })

  await t.test('a port or name held on another node is refused with the usual typed error', async t => {
    const prefix = `mport:t${++prefixes}:`
    const [, r1] = await startNode(t, redis, prefix, 'one', '127.0.0.1')
    const [, r2] = await startNode(t, redis, prefix, 'two', '::1') // another address: the bind succeeds, the claim decides
    const first = clientOf(r1, [{ name: 'a', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }, { name: 'w', kind: 'http', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0, subdomain: 'orchard' }])
    t.teardown(() => first.close())
    const [a] = await first.start()
    const second = clientOf(r2, [{ name: 'b', localHost: '127.0.0.1', localPort: echo.port, remotePort: a!.remotePort! }, { name: 'w2', kind: 'http', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0, subdomain: 'orchard' }], { tunnelRetry: false })
    t.teardown(() => second.close())
    const [b, w2] = await second.start()
    t.equal(b?.error?.code, 'MPORT_ERR_PORT_IN_USE')
    t.match(b?.error?.message, /another relay of the cluster \(one\)/)
    t.equal(w2?.error?.code, 'MPORT_ERR_NAME_TAKEN')
    t.match(w2?.error?.message, /orchard.*another relay of the cluster \(one\)/)
  })

  await t.test('a node that does not know the cluster key cannot open a link', async t => {
    const prefix = `mport:t${++prefixes}:`
    const [n1] = await startNode(t, redis, prefix, 'one', '127.0.0.1')
    const warnings: Error[] = []
    const intruder = new NodeLinks({ node: 'intruder', clusterKey: 'not the key', cert, key, host: '127.0.0.1', port: 0, onStream: s => s, onWarning: err => warnings.push(err) })
    t.teardown(() => intruder.close())
    await t.rejects(intruder.session('one', n1.linkAddress), { code: 'MPORT_ERR_AUTH_FAILED' }, 'the dial is refused')
  })

  await t.test('Redis away: live tunnels keep serving, a new one is refused with MPORT_ERR_UNAVAILABLE, then allowed again', async t => {
    const prefix = `mport:t${++prefixes}:`
    const warnings: Error[] = []
    const [, r1] = await startNode(t, redis, prefix, 'one', '127.0.0.1', err => warnings.push(err))
    const up = clientOf(r1, [{ name: 'a', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }])
    t.teardown(() => up.close())
    const [a] = await up.start()
    await redis.stop()
    t.teardown(() => redis.restart()) // for the tests after this one
    t.equal(String(await roundTrip(await connectTo(a!.remotePort!), Buffer.from('still'))), 'still', 'the live tunnel keeps serving')
    const late = clientOf(r1, [{ name: 'b', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }], { tunnelRetry: false })
    t.teardown(() => late.close())
    const [b] = await late.start()
    t.equal(b?.error?.code, 'MPORT_ERR_UNAVAILABLE', 'a new tunnel cannot be claimed')
    t.match(b?.error?.message, /cluster registry/)
    await waitFor(() => warnings.length > 0, { what: 'a warning about the registry' })
    await redis.restart()
    const again = clientOf(r1, [{ name: 'c', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }])
    t.teardown(() => again.close())
    const [c] = await again.start()
    t.equal(c?.state, 'online', 'with Redis back, tunnels open again')
  })

  await t.test('a tls (SNI pass-through) name held on node one is reached through node two\'s HTTPS port, still end-to-end encrypted', async t => {
    const prefix = `mport:t${++prefixes}:`
    const wildcard = await generateSelfSigned(['*.cluster.test', 'cluster.test'])
    const https = { httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key }
    const [, r1] = await startNode(t, redis, prefix, 'one', '127.0.0.1', undefined, https)
    const [, r2] = await startNode(t, redis, prefix, 'two', '::1', undefined, https)
    // The service terminates TLS itself with its own certificate: the relays never hold its key.
    const service = tls.createServer({ cert, key }, s => { s.on('error', () => {}); s.once('data', (c: Buffer) => s.end(`vault says ${String(c)}`)) })
    await new Promise<void>(resolve => service.listen(0, '127.0.0.1', resolve))
    t.teardown(() => service.close())
    const c = clientOf(r1, [{ name: 'v', kind: 'tls', localHost: '127.0.0.1', localPort: (service.address() as net.AddressInfo).port, remotePort: 0, subdomain: 'vault' }])
    t.teardown(() => c.close())
    await c.start()
    const visit = (host: string, port: number): Promise<{ text: string, fingerprint: string }> => withTimeout(new Promise((resolve, reject) => {
      const s = tls.connect({ host, port, servername: 'vault.cluster.test', rejectUnauthorized: false }, () => s.write('hello'))
      const chunks: Buffer[] = []
      s.on('data', (b: Buffer) => chunks.push(b))
      s.on('end', () => { resolve({ text: String(Buffer.concat(chunks)), fingerprint: s.getPeerCertificate().fingerprint256 }); s.end() })
      s.on('error', reject)
    }), { what: 'a tls visitor of vault.cluster.test', timeoutMs: 20_000 })
    const direct = await visit('127.0.0.1', r1.httpsAddress!.port)
    t.equal(direct.text, 'vault says hello', 'on the holding node')
    const forwarded = await visit('::1', r2.httpsAddress!.port)
    t.equal(forwarded.text, 'vault says hello', 'through the other node')
    t.equal(forwarded.fingerprint, direct.fingerprint, 'the visitor saw the service\'s own certificate, not a relay\'s')
    t.not(forwarded.fingerprint, new crypto.X509Certificate(wildcard.cert).fingerprint256, 'and not the relays\' wildcard')
  })

  await t.test('a released tunnel leaves nothing in the registry', async t => {
    const prefix = `mport:t${++prefixes}:`
    const [, r1] = await startNode(t, redis, prefix, 'one', '127.0.0.1')
    const c = clientOf(r1, [{ name: 'a', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }])
    const [a] = await c.start()
    const probe = new Redis(redis.url)
    t.teardown(() => probe.disconnect())
    t.ok(await probe.get(`${prefix}route:port:${a!.remotePort!}`), 'the port is registered')
    await c.close()
    await r1.close(100)
    await waitFor(async () => (await probe.keys(`${prefix}route:*`)).length === 0 && (await probe.keys(`${prefix}lease:*`)).length === 0, { what: 'the node\'s keys to go', timeoutMs: 10_000 })
    t.pass('no route or lease key left')
  })
})

/** A relay on loopback with a ClusterNode on `redis` under `prefix`. */
async function startNode (t: Test, redis: RedisServer, prefix: string, id: string, bindHost: string, onWarning: (err: Error) => void = () => {},
  https: { httpsPort: number, httpsCert: string, httpsKey: string } | Record<string, never> = {}): Promise<[ClusterNode, Relay]> {
  const node = new ClusterNode({
    redis: redis.url, clusterKey: KEY, node: id, prefix, ttlMs: 1500, leaseTtlMs: 60_000,
    link: { host: '127.0.0.1', port: 0, advertiseHost: '127.0.0.1' }, cert, key, bindHost, onWarning,
  })
  const relay = await startRelay({ cluster: node, bindHost, domain: 'cluster.test', httpPort: 0, ...https })
  await node.start()
  t.teardown(async () => { await relay.close(100); await node.close() })
  return [node, relay]
}

function clientOf (relay: Relay, tunnels: ConstructorParameters<typeof Client>[0]['tunnels'], extra: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client {
  const c = new Client({ relay: `127.0.0.1:${relay.address.port}`, token: TOKEN, fingerprint: certFingerprint, backoff: { initial: 50, max: 200 }, tunnels, ...extra })
  c.on('error', () => {})
  return c
}

/** A TCP forwarder to `port`; cut() drops every connection through it (and it keeps refusing new ones). */
async function forwarder (port: number): Promise<{ port: number, cut (): void, close (): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  let open = true
  const server = net.createServer(s => {
    if (!open) { s.destroy(); return }
    const up = net.connect({ host: '127.0.0.1', port })
    sockets.add(s).add(up)
    s.pipe(up).pipe(s)
    s.on('error', () => up.destroy())
    up.on('error', () => s.destroy())
    s.on('close', () => { up.destroy(); sockets.delete(s) })
    up.on('close', () => { s.destroy(); sockets.delete(up) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => { open = false; for (const s of sockets) s.destroy() },
    close: () => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }),
  }
}

