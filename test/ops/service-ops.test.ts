/**
 * The relay service with its ops listener, through the library on loopback: traffic of a known
 * size through a real tunnel shows up byte for byte per tunnel and per user, visitors and
 * sessions and tunnels are counted, keepalive round trips fill the RTT histogram, store calls
 * are timed, the control certificate's expiry is exported; on close, readiness drops first
 * while the ops listener keeps serving, until the open connection has drained.
 */
import { X509Certificate, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { Client, fingerprint } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { cert, connectTo, key, roundTrip, startEcho, tcpSpec, TOKEN } from '../helpers/tunnel.js'
import { sampleValue } from '../helpers/prom-text.js'
import { waitFor } from '../helpers/wait.js'

t.test('metrics and readiness of a live relay service', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-ops-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, token: TOKEN, accountingInterval: 100, mux: { keepAliveInterval: 100 },
    ops: { host: '127.0.0.1', port: 0 },
  })
  const echo = await startEcho()
  let closed = false
  t.teardown(async () => { if (!closed) await service.close(100); await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  t.ok(service.opsAddress !== undefined && service.ops !== undefined, 'the ops listener is on')
  const ops = `http://127.0.0.1:${service.opsAddress!.port}`
  const scrape = async (): Promise<string> => {
    const r = await fetch(`${ops}/metrics`)
    t.equal(r.status, 200, 'GET /metrics')
    return await r.text()
  }
  t.equal((await fetch(`${ops}/readyz`)).status, 200, 'ready once listening with the store reachable')

  const client = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: TOKEN, tunnels: [tcpSpec(echo.port, { name: 'echo' })], fingerprint: fingerprint(cert), backoff: { initial: 50, max: 200 } })
  client.on('error', () => {})
  t.teardown(() => client.close())
  const [status] = await client.start()
  const data = randomBytes(300_000)
  const back = await roundTrip(await connectTo(status!.remotePort!), data)
  t.equal(back.length, data.length, 'the echo came back whole')
  // The last bytes are counted when the relay sees the visitor connection finish.
  await waitFor(async () => sampleValue(await scrape(), 'mport_tunnel_bytes_total', { tunnel: 'echo', direction: 'out' }) === data.length, { what: 'the out bytes to be counted', timeoutMs: 30_000 })
  await waitFor(async () => (sampleValue(await scrape(), 'mport_session_rtt_seconds_count') ?? 0) >= 2, { what: 'keepalive round trips', timeoutMs: 30_000 })
  const text = await scrape()
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'owner', tunnel: 'echo', direction: 'in' }), data.length, 'visitor → service bytes, exactly')
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'owner', tunnel: 'echo', direction: 'out' }), data.length, 'service → visitor bytes, exactly')
  t.equal(sampleValue(text, 'mport_user_bytes_total', { user: 'owner', direction: 'in' }), data.length, 'per user too')
  t.equal(sampleValue(text, 'mport_visitor_connections_total'), 1, 'one visitor connection')
  t.equal(sampleValue(text, 'mport_sessions'), 1, 'one client session')
  t.equal(sampleValue(text, 'mport_tunnels', { kind: 'tcp' }), 1, 'one tcp tunnel')
  t.equal(sampleValue(text, 'mport_tunnels', { kind: 'http' }), 0, 'kinds without tunnels are exported as 0')
  t.ok((sampleValue(text, 'mport_session_rtt_seconds_sum') ?? -1) >= 0, 'the RTT histogram has a sum')
  t.ok((sampleValue(text, 'mport_store_operation_duration_seconds_count', { operation: 'listReservations' }) ?? 0) >= 1, 'the store calls of the accounting are timed')
  t.ok((sampleValue(text, 'mport_store_operation_duration_seconds_count', { operation: 'ping' }) ?? 0) >= 1, 'so is the readiness check')
  t.equal(sampleValue(text, 'mport_certificate_expiry_timestamp_seconds', { cert: 'control' }), Math.floor(Date.parse(new X509Certificate(cert).validTo) / 1000), 'the control certificate expiry')
  t.equal(sampleValue(text, 'mport_ready'), 1)

  // Shutdown with a visitor connection still open: readiness drops at once, the ops listener stays.
  const visitor = await connectTo(status!.remotePort!)
  visitor.on('error', () => {})
  await waitFor(() => service.relay.tunnels[0]?.connections === 1, { what: 'the open visitor connection', timeoutMs: 30_000 })
  closed = true
  const closing = service.close(60_000)
  t.ok(service.ops!.readiness.draining, 'readiness drops in the tick close() is called, before any listener is closed')
  const during = await fetch(`${ops}/readyz`)
  t.equal(during.status, 503, 'not ready while draining')
  t.match(await during.json(), { status: 'not ready', reason: 'draining' })
  t.equal((await fetch(`${ops}/healthz`)).status, 200, 'still healthy (the process serves) while draining')
  t.equal(sampleValue(await scrape(), 'mport_ready'), 0, 'and /metrics says so')
  visitor.destroy()
  await closing
  await t.rejects(fetch(`${ops}/healthz`), 'the ops listener closes last, once drained')
})
