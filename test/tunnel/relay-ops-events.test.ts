/**
 * The relay events that feed its metrics: a failed handshake (TLS garbage, no ALPN, a client
 * that never says hello), a refused tunnel, and the keepalive round-trip time of each session.
 * Real TLS on loopback through the public API.
 */
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import type { MportError } from '../../src/errors.js'
import { makeClient, startEcho, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { nextEvent, waitFor } from '../helpers/wait.js'

t.test('handshake-failed: bytes that are not TLS, a TLS client without mport/1, a client that never says hello', async t => {
  const relay = await startRelay({ handshakeTimeout: 300 })
  t.teardown(() => relay.close(0))
  const failures: Array<{ addr: string, err: Error }> = []
  relay.on('handshake-failed', (addr, err) => failures.push({ addr, err }))

  const raw = net.connect(relay.address.port, '127.0.0.1')
  raw.on('error', () => {})
  raw.write('GET / HTTP/1.1\r\n\r\n')
  await waitFor(() => failures.length === 1, { what: 'a handshake failure for plain HTTP', timeoutMs: 30_000 })
  t.equal(failures[0]!.addr, '127.0.0.1')
  t.notOk('code' in failures[0]!.err && String((failures[0]!.err as MportError).code).startsWith('MPORT_'), 'a TLS-level error, not a typed mport one')

  const noAlpn = tls.connect({ port: relay.address.port, host: '127.0.0.1', rejectUnauthorized: false })
  noAlpn.on('error', () => {})
  await waitFor(() => failures.length === 2, { what: 'a handshake failure without ALPN', timeoutMs: 30_000 })
  t.match(failures[1]!.err.message, /ALPN/)

  const silent = tls.connect({ port: relay.address.port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['mport/1'] })
  silent.on('error', () => {})
  await waitFor(() => failures.length === 3, { what: 'a handshake timeout', timeoutMs: 30_000 })
  t.equal((failures[2]!.err as MportError).code, 'MPORT_ERR_HANDSHAKE_TIMEOUT', 'a client that opens no control stream is reported as a timeout')
  raw.destroy(); noAlpn.destroy(); silent.destroy()
})

t.test('tunnel-refused: a second tunnel over the per-client tunnel limit', async t => {
  const echo = await startEcho()
  const relay = await startRelay({ maxTunnelsPerClient: 1 })
  const client = makeClient(relay, [tcpSpec(echo.port), tcpSpec(echo.port, { name: 'second' })])
  t.teardown(async () => { await client.close(); await relay.close(0); await echo.close() })
  const refused = nextEvent<[{ name: string, kind: string, principal: string }, MportError]>(relay, 'tunnel-refused', { what: 'a tunnel-refused event', timeoutMs: 30_000 })
  void client.start().catch(() => {})
  const [info, err] = await refused
  t.equal(info.kind, 'tcp')
  t.equal(err.code, 'MPORT_ERR_TUNNEL_LIMIT', 'the per-client tunnel limit refused it')
})

t.test('rtt: every answered keepalive ping of a session is reported with its client', async t => {
  const echo = await startEcho()
  const relay = await startRelay({ mux: { keepAliveInterval: 100 } })
  const client = makeClient(relay, [tcpSpec(echo.port)])
  t.teardown(async () => { await client.close(); await relay.close(0); await echo.close() })
  const rtts: Array<{ id: string, rtt: number }> = []
  relay.on('rtt', (c, rtt) => rtts.push({ id: c.id, rtt }))
  const [welcomed] = await Promise.all([nextEvent<[{ id: string }]>(relay, 'client', { what: 'the client', timeoutMs: 30_000 }), client.start()])
  await waitFor(() => rtts.length >= 3, { what: 'three keepalive round trips', timeoutMs: 30_000 })
  t.ok(rtts.every(r => r.id === welcomed[0].id), 'each names the client session')
  t.ok(rtts.every(r => Number.isFinite(r.rtt) && r.rtt >= 0), 'each is a measured time in ms')
})
