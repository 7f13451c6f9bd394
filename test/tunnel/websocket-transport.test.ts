/**
 * The WebSocket transport through the public API on loopback: ws on the relay's shared HTTP
 * port, wss on its shared HTTPS port, a relay behind a real nginx that terminates TLS with its
 * own certificate (the client still verifies the relay's control certificate inside), `auto`
 * falling back when the control port is unreachable, and a slow visitor over ws that holds
 * back only its own stream, with memory bounded.
 */
import t from 'tap'
import net from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fingerprint, generateSelfSigned, KnownRelays, TransportMemory } from '../../src/index.js'
import { startDigestSink, sendChecksummed } from '../helpers/digest-sink.js'
import { closedPort } from '../helpers/ports.js'
import { proxyTestOptions, startNginx } from '../helpers/proxies.js'
import { certFingerprint, connectTo, makeClient, roundTrip, startEcho, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'
import { relayWithSharedPorts, sharedPorts, startClient, type Connected } from '../helpers/shared-ports.js'

t.setTimeout(300_000)

for (const transport of ['ws', 'wss'] as const) {
  t.test(`${transport}: the tunnel carries 16 MiB checksummed, over the relay's own certificate`, async t => {
    const relay = await relayWithSharedPorts(t)
    const sink = await startDigestSink()
    t.teardown(() => sink.close())
    const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(sink.port)], { transport, relayPorts: sharedPorts(relay) }))
    t.equal(info.transport, transport, 'connected names the transport')
    t.equal(info.trust, 'pinned')
    t.equal(info.fingerprint, certFingerprint, 'the inner TLS is the relay\'s control certificate')
    const { sent, received } = await sendChecksummed(port, 16)
    t.equal(received, sent, 'the sink got exactly what was sent')
  })
}

t.test('a malformed upgrade to the endpoint gets 400 and the relay keeps serving', async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const bad = await connectTo(relay.httpAddress!.port)
  const answer = await roundTrip(bad, Buffer.from('GET /_mport/v1/connect HTTP/1.1\r\nHost: anything.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'))
  t.match(answer.toString('latin1'), /^HTTP\/1\.1 400 /, 'no Sec-WebSocket-Key: 400')
  const plain = await roundTrip(await connectTo(relay.httpAddress!.port), Buffer.from('GET /_mport/v1/connect HTTP/1.1\r\nHost: nothing.mport.test\r\nConnection: close\r\n\r\n'))
  t.match(plain.toString('latin1'), /^HTTP\/1\.1 404 /, 'without Upgrade the path is an ordinary request for the tunnels (none is named so)')
  const { port } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { transport: 'ws', relayPorts: sharedPorts(relay) }))
  t.equal((await roundTrip(await connectTo(port), Buffer.from('after the bad one'))).toString(), 'after the bad one')
})

t.test('wss: a pin for another certificate fails with CertificateMismatchError (the relay is authenticated inside the WebSocket)', async t => {
  const relay = await relayWithSharedPorts(t)
  const other = await generateSelfSigned(['someone-else.test'])
  const otherFingerprint = fingerprint(other.cert)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = makeClient(relay, [tcpSpec(echo.port)], { transport: 'wss', relayPorts: sharedPorts(relay), fingerprint: otherFingerprint })
  t.teardown(() => client.close())
  await t.rejects(client.start(), { code: 'MPORT_ERR_CERT_MISMATCH', actual: certFingerprint, expected: otherFingerprint })
})

t.test('trust on first use is one entry per relay, whatever the transport', async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-ws-tofu-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const knownRelays = new KnownRelays(path.join(dir, 'known_relays.json'))
  const trusts: string[] = []
  for (const transport of ['ws', 'tls', 'wss'] as const) {
    const { info, port } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { transport, relayPorts: sharedPorts(relay), fingerprint: undefined, knownRelays }))
    trusts.push(`${info.transport}:${info.trust}`)
    const back = await roundTrip(await connectTo(port), Buffer.from(`via ${transport}`))
    t.equal(back.toString(), `via ${transport}`)
  }
  t.same(trusts, ['ws:tofu-new', 'tls:tofu-known', 'wss:tofu-known'])
  t.same(Object.keys(await knownRelays.list()), [`127.0.0.1:${relay.address.port}`], 'remembered under the control address')
})

t.test('behind nginx terminating TLS with its own certificate', proxyTestOptions('nginx'), async t => {
  const relay = await relayWithSharedPorts(t)
  const web = await generateSelfSigned(['nginx-front.test'])
  const webFingerprint = fingerprint(web.cert)
  const nginx = await startNginx({ upstreamPort: relay.httpAddress!.port, cert: web.cert, key: web.key })
  t.teardown(() => nginx.stop())
  const sink = await startDigestSink()
  t.teardown(() => sink.close())

  const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(sink.port)], { transport: 'wss', relayPorts: { https: nginx.port } }))
  t.equal(info.transport, 'wss')
  t.equal(info.trust, 'pinned')
  t.equal(info.fingerprint, certFingerprint, 'the client verified the relay, not nginx')
  t.not(info.fingerprint, webFingerprint)
  const { sent, received } = await sendChecksummed(port, 16)
  t.equal(received, sent, '16 MiB through nginx, checksummed')

  t.test('nginx in front of another relay cannot pass for this one', async t => {
    const impostorKeys = await generateSelfSigned(['impostor.test'])
    const impostor = await startRelay({ httpPort: 0, cert: impostorKeys.cert, key: impostorKeys.key })
    t.teardown(() => impostor.close(100))
    const front = await startNginx({ upstreamPort: impostor.httpAddress!.port, cert: web.cert, key: web.key })
    t.teardown(() => front.stop())
    const client = makeClient(relay, [tcpSpec(sink.port)], { transport: 'wss', relayPorts: { https: front.port } })
    t.teardown(() => client.close())
    await t.rejects(client.start(), { code: 'MPORT_ERR_CERT_MISMATCH', expected: certFingerprint, actual: fingerprint(impostorKeys.cert) })
  })
})

t.test('auto: the control port unreachable, it falls back to wss and remembers it', async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-ws-auto-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const memory = new TransportMemory(path.join(dir, 'transports.json'))
  const blocked = await closedPort()
  const opts = { relay: `127.0.0.1:${blocked}`, transport: 'auto' as const, relayPorts: sharedPorts(relay), transportMemory: memory }
  const { info, port } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], opts))
  t.equal(info.transport, 'wss')
  t.equal(info.fingerprint, certFingerprint)
  t.equal((await roundTrip(await connectTo(port), Buffer.from('fallback'))).toString(), 'fallback')
  t.match(await new TransportMemory(memory.path).get(`127.0.0.1:${blocked}`), { transport: 'wss' }, 'written to transports.json')

  t.test('with the shared HTTPS port closed too, ws on the HTTP port; a failure names every attempt', async t => {
    const closedHttps = await closedPort()
    const viaWs = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { ...opts, relayPorts: { http: relay.httpAddress!.port, https: closedHttps }, transportMemory: undefined }))
    t.equal(viaWs.info.transport, 'ws')
    const none = makeClient(relay, [tcpSpec(echo.port)], { ...opts, relayPorts: { http: await closedPort(), https: closedHttps }, transportMemory: undefined })
    t.teardown(() => none.close())
    await t.rejects(none.start(), { code: 'MPORT_ERR_RELAY_UNREACHABLE', message: /no transport worked \(tls \(port \d+\): connection refused; wss \(port \d+\): connection refused; ws \(port \d+\): connection refused\)/ })
  })
})

t.test('auto: back on tls at the next connection once the control port works again', async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  // The "control port" the client dials: closed at first (blocked), later forwarding to the relay's.
  const gatePort = await closedPort()
  const client = makeClient(relay, [tcpSpec(echo.port)], { relay: `127.0.0.1:${gatePort}`, transport: 'auto', relayPorts: sharedPorts(relay), fasterCheckInterval: 100 })
  const transports: string[] = []
  client.on('connected', (i: Connected) => transports.push(i.transport))
  const { port } = await startClient(t, client)
  t.same(transports, ['wss'])
  const found = nextEvent<[{ transport: string, current: string }]>(client, 'faster-transport', { what: 'the faster transport to be found', timeoutMs: 60_000 })
  const piped = new Set<net.Socket>()
  const gate = net.createServer(s => {
    const up = net.connect({ host: '127.0.0.1', port: relay.address.port })
    piped.add(s).add(up)
    s.on('error', () => up.destroy())
    up.on('error', () => s.destroy())
    s.pipe(up).pipe(s)
  })
  await new Promise<void>((resolve, reject) => { gate.once('error', reject); gate.listen(gatePort, '127.0.0.1', resolve) })
  t.teardown(() => new Promise<void>(resolve => { for (const p of piped) p.destroy(); gate.close(() => resolve()) }))
  t.same((await found)[0], { transport: 'tls', current: 'wss' })
  t.equal((await roundTrip(await connectTo(port), Buffer.from('still on wss'))).toString(), 'still on wss', 'the live session was not moved')
  t.same(transports, ['wss'])
  const reconnected = nextEvent(client, 'connected', { what: 'the reconnect', timeoutMs: 60_000 })
  relay.disconnect(relay.tunnels[0]!.principalId)
  await reconnected
  t.same(transports, ['wss', 'tls'], 'the next connection went straight to tls')
})

t.test('ws: a visitor that stops reading holds back only its own stream, and memory stays bounded', async t => {
  const relay = await relayWithSharedPorts(t)
  // A local service that writes 256 MiB to each connection, as fast as it is allowed to.
  const TOTAL = 256 * 1024 * 1024
  const block = Buffer.alloc(1024 * 1024, 0x61)
  const written: number[] = []
  let blocked = false
  const service = net.createServer(s => {
    s.on('error', () => {})
    const index = written.push(0) - 1
    const pump = (): void => {
      blocked = false
      while (written[index]! < TOTAL) {
        written[index]! += block.length
        if (!s.write(block)) { blocked = true; s.once('drain', pump); return }
      }
      s.end()
    }
    pump()
  })
  await new Promise<void>(resolve => service.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => service.close(() => resolve())))
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = makeClient(relay, [tcpSpec((service.address() as net.AddressInfo).port, { name: 'flood' }), tcpSpec(echo.port, { name: 'echo' })], { transport: 'ws', relayPorts: sharedPorts(relay) })
  t.teardown(() => client.close())
  const [flood, echoTunnel] = await withTimeout(client.start(), { what: 'the tunnels to open', timeoutMs: 30_000 })

  global.gc?.()
  const rssBefore = process.memoryUsage().rss
  const slow = await connectTo(flood!.remotePort!)
  t.teardown(() => slow.destroy())
  slow.pause() // the slow visitor: reads nothing
  await waitFor(() => blocked, { what: 'the local service to be held back', timeoutMs: 60_000 })
  // While the slow visitor sits, the other tunnel's visitors go through the same WebSocket.
  for (let i = 0; i < 5; i++) {
    const data = Buffer.alloc(1024 * 1024, i)
    t.ok((await roundTrip(await connectTo(echoTunnel!.remotePort!), data)).equals(data), `echo ${i + 1} of 1 MiB while the slow visitor waits`)
  }
  const inFlight = written[0]!
  const rssGrowth = process.memoryUsage().rss - rssBefore
  t.comment(`held back: ${(inFlight / 1048576).toFixed(1)} MiB accepted from the service of ${TOTAL / 1048576} MiB; RSS growth ${(rssGrowth / 1048576).toFixed(1)} MiB`)
  t.ok(blocked, 'the service is still held back after the echoes')
  // Kernel socket buffers on three loopback hops, the 256 KiB stream window and the WebSocket's
  // 256 KiB write mark: far below the 256 MiB the service would write without backpressure.
  t.ok(inFlight <= 48 * 1024 * 1024, `at most 48 MiB accepted from the service (${inFlight} bytes)`)
  t.ok(rssGrowth < 128 * 1024 * 1024, `RSS grew by less than 128 MiB (${rssGrowth} bytes)`)
  // And the slow visitor gets everything once it reads.
  let got = 0
  slow.on('data', (c: Buffer) => { got += c.length })
  slow.resume()
  await waitFor(() => got === TOTAL, { what: `the slow visitor to read all ${TOTAL} bytes`, timeoutMs: 180_000, intervalMs: 50, diag: () => `got ${got}` })
  t.equal(got, TOTAL)
})
