/**
 * `mport-relay --workers 2`: two relay processes on one host share the control and HTTP ports
 * (node:cluster), each its own node of the cluster (PostgreSQL and Redis started by the test).
 * The client lands on one worker; visitors the primary hands to the other one are forwarded.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { Redis } from 'ioredis'
import { Client } from '../../src/index.js'
import { startClusterBackends, startClusterRelay } from '../helpers/cluster.js'
import { postgresTestOptions } from '../helpers/postgres.js'
import { redisTestOptions } from '../helpers/redis.js'
import { certFingerprint } from '../helpers/tunnel.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

const skip = postgresTestOptions().skip ?? redisTestOptions().skip

t.test('two workers share the listeners of one relay host', skip !== undefined ? { skip } : {}, async t => {
  const backends = await startClusterBackends('bob')
  t.teardown(() => backends.stop())
  const { redis, token } = backends
  const relay = startClusterRelay(backends, 'host', { domain: 'workers.test', extra: ['--workers', '2'] })
  t.teardown(() => relay.kill())
  await waitFor(() => relay.jsonLines().filter(o => o.event === 'listening').length === 2, { what: 'both workers listening', timeoutMs: 90_000 })
  const listening = relay.jsonLines().filter(o => o.event === 'listening')
  t.equal(listening[0]!.port, listening[1]!.port, 'one control port for both workers')
  t.equal(listening[0]!.httpPort, listening[1]!.httpPort, 'one HTTP port for both workers')
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  t.same((await probe.keys('mport:node:*')).sort(), ['mport:node:host-w1', 'mport:node:host-w2'], 'each worker is a node of its own')

  const web = http.createServer((req, res) => res.end(`served ${req.url ?? ''}`))
  await new Promise<void>(resolve => web.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => web.close(() => resolve())))
  const client = new Client({
    relay: `127.0.0.1:${listening[0]!.port as number}`, token, fingerprint: certFingerprint, backoff: { initial: 50, max: 300 },
    tunnels: [{ name: 'web', kind: 'http', localHost: '127.0.0.1', localPort: (web.address() as net.AddressInfo).port, remotePort: 0, subdomain: 'orchard' }],
  })
  client.on('error', () => {})
  t.teardown(() => client.close())
  await client.start()
  const httpPort = listening[0]!.httpPort as number
  // Each request is a new connection: the primary deals them to both workers in turn.
  const bodies = []
  for (let i = 0; i < 20; i++) bodies.push(await get(httpPort, `/${i}`))
  t.same(bodies, Array.from({ length: 20 }, (_, i) => `200 served /${i}`), 'every visitor reached the service, whichever worker took it')

  await waitFor(async () => (await probe.get('mport:route:sub:orchard')) !== null, { what: 'the name registered' })
  const holder = (JSON.parse((await probe.get('mport:route:sub:orchard'))!) as { node: string }).node
  t.match(holder, /^host-w[12]$/, `the tunnel is held by ${holder}`)

  // kill -9 one worker (the holder or not): the supervisor starts it again; a client that was on it moves to the other.
  const workers = execFileSync('pgrep', ['-P', String(relay.child.pid), '-f', 'mport-relay'], { encoding: 'utf8' }).trim().split('\n').map(Number)
  t.equal(workers.length, 2, 'two worker processes under the supervisor')
  process.kill(workers[0]!, 'SIGKILL')
  await relay.waitEvent('worker-exit')
  await waitFor(() => relay.jsonLines().filter(o => o.event === 'listening').length === 3, { what: 'the worker started again', timeoutMs: 120_000, diag: () => `stdout:\n${relay.stdout.slice(-3000)}\nstderr:\n${relay.stderr.slice(-3000)}` })
  // Until the client (if it was on the killed worker) has reconnected and claimed its name again, a
  // visitor on the restarted worker may find the name still registered to the dead one: wait for
  // ten visitors in a row to be served, bounded.
  let served: string[] = []
  await waitFor(async () => {
    served = []
    for (let i = 0; i < 10; i++) served.push(await get(httpPort, `/later-${i}`).catch((err: Error) => err.message))
    return served.every((x, i) => x === `200 served /later-${i}`)
  }, { what: 'ten visitors in a row served after the restart', timeoutMs: 60_000, diag: () => served.join('; ') })
  t.pass('every visitor served again by the restarted workers')
})

function get (port: number, urlPath: string): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host: 'orchard.workers.test' }, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve(`${res.statusCode ?? 0} ${body}`))
    }).on('error', reject)
  }), { what: `GET ${urlPath}`, timeoutMs: 10_000 })
}
