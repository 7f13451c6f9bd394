/**
 * Three relay processes as one cluster on loopback, sharing one PostgreSQL (users, tokens,
 * plans) and one Redis (the routing registry), all started by the test from Debian packages.
 *
 * Addresses: nodes A and C bind their public ports on 127.0.0.1, node B on ::1, so that a
 * leased tcp port exists on two addresses of this one machine: the holder's, and the other
 * address where a node forwards it (two processes cannot both bind one address and port).
 * Every node has its own shared HTTP port; an http tunnel's name answers on all three.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { Client, type TunnelStatus } from '../../src/index.js'
import { startClusterBackends, startClusterRelay } from '../helpers/cluster.js'
import { postgresTestOptions } from '../helpers/postgres.js'
import { redisTestOptions } from '../helpers/redis.js'
import type { BinProcess } from '../helpers/spawn.js'
import { certFingerprint, startEcho } from '../helpers/tunnel.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

const DOMAIN = 'cluster.test'

interface Node { name: string, bindHost: string, proc: BinProcess, control: number, http: number }

const skip = postgresTestOptions().skip ?? redisTestOptions().skip

t.test('three relays, one PostgreSQL, one Redis', skip !== undefined ? { skip } : {}, async t => {
  // A user account with a plan of two tunnels, in the store every node shares.
  const backends = await startClusterBackends('alice', { maxTunnels: 2 })
  t.teardown(() => backends.stop())
  const { redis, token, userId, clusterKey } = backends

  const startNode = async (name: string, bindHost: string): Promise<Node> => {
    const proc = startClusterRelay(backends, name, { bindHost, domain: DOMAIN, extra: ['--lease-grace', '60'] })
    t.teardown(() => proc.kill())
    const ev = await proc.waitEvent('listening')
    return { name, bindHost, proc, control: ev.port as number, http: ev.httpPort as number }
  }
  const [a, b, c] = await Promise.all([startNode('node-a', '127.0.0.1'), startNode('node-b', '::1'), startNode('node-c', '127.0.0.1')]) as [Node, Node, Node]
  t.notOk(a.proc.output.includes(clusterKey), 'the cluster key is never printed')

  const echo = await startEcho()
  t.teardown(() => echo.close())
  const web = http.createServer((req, res) => res.end(`hello from the service, you asked for ${req.url ?? ''}`))
  await new Promise<void>(resolve => web.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => web.close(() => resolve())))
  const webPort = (web.address() as net.AddressInfo).port

  const client = new Client({
    relay: `127.0.0.1:${a.control}`,
    fallbackRelays: [`127.0.0.1:${b.control}`, `127.0.0.1:${c.control}`],
    token,
    fingerprint: certFingerprint,
    backoff: { initial: 50, max: 300 },
    tunnels: [
      { name: 'echo', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 },
      { name: 'web', kind: 'http', localHost: '127.0.0.1', localPort: webPort, remotePort: 0, subdomain: 'shop' },
    ],
  })
  client.on('error', () => {})
  t.teardown(() => client.close())
  const [tcp, named] = await client.start() as [TunnelStatus, TunnelStatus]
  const port = tcp.remotePort!
  t.ok(port >= 30000, `the tcp tunnel is on port ${port} of node A`)
  t.equal(named.remoteHost, `shop.${DOMAIN}`)

  await t.test('visitors reach the service through every node', async t => {
    t.equal(await echoThrough('127.0.0.1', port), 'ok', 'tcp on the holder (A, 127.0.0.1)')
    await waitFor(async () => await echoThrough('::1', port).catch(() => 'no') === 'ok', { what: `node B forwarding [::1]:${port} to A`, timeoutMs: 20_000 })
    t.pass('tcp through node B ([::1]) forwarded to A')
    for (const n of [a, b, c]) {
      t.match(await httpGet(n.bindHost, n.http, `shop.${DOMAIN}`, `/via-${n.name}`), `hello from the service, you asked for /via-${n.name}`, `http by Host on ${n.name}`)
    }
    t.match(await httpGet(b.bindHost, b.http, `nothing.${DOMAIN}`, '/'), /404|no tunnel/, 'a name nobody holds is a 404 on every node')
  })

  await t.test('kill -9 the client\'s node: the client re-attaches to another with the same port and name', async t => {
    const reconnected = new Promise<void>(resolve => client.on('connected', () => resolve()))
    await a.proc.kill()
    await withTimeout(reconnected, { what: 'the client to re-attach to another node', timeoutMs: 30_000 })
    await waitFor(() => client.tunnels.every(x => x.online), { what: 'both tunnels online again', timeoutMs: 30_000 })
    t.equal(client.tunnels[0]!.remotePort, port, 'the same tcp port')
    t.equal(client.tunnels[1]!.remoteHost, `shop.${DOMAIN}`, 'the same name')
    t.equal(await echoThrough('::1', port), 'ok', 'tcp on the new holder (B, ::1)')
    await waitFor(async () => await echoThrough('127.0.0.1', port).catch(() => 'no') === 'ok', { what: `node C forwarding 127.0.0.1:${port} to B`, timeoutMs: 20_000 })
    t.pass('tcp on 127.0.0.1 through node C forwarded to B')
    for (const n of [b, c]) {
      await waitFor(async () => (await httpGet(n.bindHost, n.http, `shop.${DOMAIN}`, '/').catch(() => '')).includes('hello from the service'), { what: `http through ${n.name} after the move`, timeoutMs: 20_000 })
    }
    t.pass('http by Host on B and C')
  })

  await t.test('the user\'s tunnel limit holds across nodes', async t => {
    const other = new Client({
      relay: `127.0.0.1:${c.control}`,
      token,
      fingerprint: certFingerprint,
      tunnels: [{ name: 'third', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }],
    })
    other.on('error', () => {})
    t.teardown(() => other.close())
    const [third] = await other.start()
    t.equal(third?.state, 'refused', 'a third tunnel on node C is refused: two are up on node B')
    t.equal(third?.error?.code, 'MPORT_ERR_QUOTA_EXCEEDED')
    t.match(third?.error?.message, /2 tunnels/)
  })

  await t.test('Redis restarted: the registry is rebuilt from the holders', async t => {
    const before = new Redis(redis.url)
    const held = JSON.parse(await before.get('mport:route:sub:shop') ?? '{}') as { node?: string }
    before.disconnect()
    t.equal(held.node, 'node-b', 'the name is registered to node B')
    await redis.restart()
    const after = new Redis(redis.url)
    t.teardown(() => after.disconnect())
    t.equal(await after.dbsize(), 0, 'the restarted Redis is empty')
    await waitFor(async () => (await after.get('mport:route:sub:shop')) !== null && (await after.get(`mport:route:port:${port}`)) !== null, { what: 'the holders to write their keys again', timeoutMs: 20_000 })
    t.equal((JSON.parse((await after.get('mport:route:sub:shop'))!) as { node: string }).node, 'node-b')
    t.equal(await after.zcount(`mport:tunnels:${userId}`, Date.now(), '+inf'), 2, 'the user\'s two tunnels are counted again')
    await waitFor(async () => (await httpGet(c.bindHost, c.http, `shop.${DOMAIN}`, '/').catch(() => '')).includes('hello from the service'), { what: 'http through node C after the restart', timeoutMs: 20_000 })
    await waitFor(async () => await echoThrough('127.0.0.1', port).catch(() => 'no') === 'ok', { what: 'tcp through node C after the restart', timeoutMs: 20_000 })
    t.pass('tcp through node C after the restart')
  })
})

/** Echoes one small message through host:port; 'ok' when it came back whole. */
async function echoThrough (host: string, port: number): Promise<string> {
  const data = randomBytes(4096)
  const socket = await withTimeout(new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true })
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  }), { what: `connect to ${host}:${port}` })
  const back = await withTimeout(new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks)))
    socket.end(data)
  }), { what: `echo through ${host}:${port}`, timeoutMs: 10_000 })
  socket.destroy()
  return back.equals(data) ? 'ok' : `got ${back.length} of ${data.length} bytes`
}

function httpGet (host: string, port: number, hostHeader: string, urlPath: string): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, headers: { host: hostHeader }, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve(`${res.statusCode ?? 0} ${body}`))
    })
    req.on('error', reject)
  }), { what: `GET http://${hostHeader}${urlPath} via ${host}:${port}`, timeoutMs: 10_000 })
}
