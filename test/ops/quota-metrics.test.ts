/**
 * The monthly quota through the relay service with metrics: a user's transfer is cut when the
 * quota runs out, mport_quota_hits_total{limit="monthlyBytes"} counts that cut once (not every
 * later accounting round that finds the user still over quota), and the user's byte counters
 * equal what the store recorded for the month, byte for byte (both are fed by the same usage
 * reports). Real sockets and TLS on loopback through the library.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { Client, fingerprint } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { listen } from '../helpers/ports.js'
import { cert, connectTo, key, tcpSpec } from '../helpers/tunnel.js'
import { sampleValue } from '../helpers/prom-text.js'
import { nextEvent, sleep, waitFor, withTimeout } from '../helpers/wait.js'

t.test('a monthly quota cut is one quota hit, and the user\'s bytes match the store', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-ops-quota-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, accountingInterval: 100, usageFlushInterval: 100, ops: { host: '127.0.0.1', port: 0 },
  })
  t.teardown(async () => { await service.close(100); rmSync(dir, { recursive: true, force: true }) })
  const QUOTA = 2 * 1024 * 1024
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  await service.store.setLimitOverrides(alice.id, { monthlyBytes: QUOTA })
  const { raw } = await service.store.createToken(alice.id, 'laptop')
  const sink = net.createServer(s => { s.on('data', () => {}); s.on('error', () => {}) })
  const sinkPort = await listen(sink)
  t.teardown(() => sink.close())
  const client = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: raw, tunnels: [tcpSpec(sinkPort, { name: 'up' })], fingerprint: fingerprint(cert), backoff: { initial: 50, max: 200 } })
  client.on('error', () => {})
  t.teardown(() => client.close())
  const [status] = await client.start()
  const told = nextEvent<[unknown, { code: string }]>(client, 'tunnel-error', { what: 'the client to be told about the quota', timeoutMs: 30_000 })
  const cut = nextEvent(service.relay, 'quota-exceeded', { what: 'the relay to cut the user', timeoutMs: 60_000 })

  const visitor = await connectTo(status!.remotePort!)
  visitor.on('error', () => {})
  const ended = withTimeout(new Promise(resolve => visitor.on('close', resolve)), { what: 'the transfer to be cut', timeoutMs: 60_000 })
  const chunk = Buffer.alloc(64 * 1024)
  let sent = 0
  const pump = (): void => { while (sent < 256 * 1024 * 1024 && !visitor.destroyed) { sent += chunk.length; if (!visitor.write(chunk)) { visitor.once('drain', pump); return } } }
  pump()
  await Promise.all([ended, cut])
  t.equal((await told)[1].code, 'MPORT_ERR_QUOTA_EXCEEDED')

  const ops = `http://127.0.0.1:${service.opsAddress!.port}/metrics`
  // Rounds go on every 100 ms and keep finding alice over quota; none of them is a new hit.
  await sleep(1000)
  await waitFor(async () => await service.store.monthBytes(alice.id) >= QUOTA, { what: 'the usage to reach the store', timeoutMs: 30_000 })
  const text = await (await fetch(ops)).text()
  t.equal(sampleValue(text, 'mport_quota_hits_total', { limit: 'monthlyBytes' }), 1, 'one cut, one hit')
  const inBytes = sampleValue(text, 'mport_user_bytes_total', { user: 'alice', direction: 'in' }) ?? 0
  const outBytes = sampleValue(text, 'mport_user_bytes_total', { user: 'alice', direction: 'out' }) ?? 0
  t.ok(inBytes >= QUOTA, `alice's bytes in (${inBytes}) reached the quota`)
  t.equal(inBytes + outBytes, await service.store.monthBytes(alice.id), 'the metrics and the store agree byte for byte')
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'alice', tunnel: 'up', direction: 'in' }), inBytes, 'per tunnel too')
  t.equal(sampleValue(text, 'mport_tunnels', { kind: 'tcp' }), 0, 'the tunnel was closed')
})
