/** Bad credentials, bad peers, cut links and restarts: each ends with its typed error or recovers. */
import t from 'tap'
import net from 'node:net'
import tls from 'node:tls'
import { Session, Relay } from '../../src/index.js'
import { encodeMessage, parseRelayMessage, type RelayMessage } from '../../src/tunnel/messages.js'
import { connectTo, isClosed, makeClient, roundTrip, startEcho, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

t.test('wrong token: MPORT_ERR_AUTH_FAILED, and the relay keeps serving others', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const good = makeClient(relay, [tcpSpec(echo.port)])
  t.teardown(async () => { await good.close(); await relay.close(100); await echo.close() })
  const [status] = await good.start()
  const bad = makeClient(relay, [tcpSpec(echo.port)], { token: 'mpt_wrong' })
  await t.rejects(bad.start(), { code: 'MPORT_ERR_AUTH_FAILED' })
  await bad.close()
  const back = await roundTrip(await connectTo(status!.remotePort!), Buffer.from('still here'))
  t.equal(back.toString(), 'still here')
})

t.test('failed logins are rate-limited per source address', async t => {
  const relay = await startRelay({ authFailureLimit: { max: 2, windowMs: 60_000 } })
  t.teardown(() => relay.close(100))
  for (let i = 0; i < 2; i++) {
    const c = makeClient(relay, [tcpSpec(1)], { token: 'mpt_wrong' })
    await t.rejects(c.start(), { code: 'MPORT_ERR_AUTH_FAILED' })
    await c.close()
  }
  const c = makeClient(relay, [tcpSpec(1)])
  await t.rejects(c.start(), { code: 'MPORT_ERR_RATE_LIMITED' }, 'even the right token waits once the limit is hit')
  await c.close()
})

t.test('wrong fingerprint: MPORT_ERR_CERT_MISMATCH', async t => {
  const relay = await startRelay()
  t.teardown(() => relay.close(100))
  const c = makeClient(relay, [tcpSpec(1)], { fingerprint: 'sha256:' + '0'.repeat(64) })
  await t.rejects(c.start(), { code: 'MPORT_ERR_CERT_MISMATCH' })
  await c.close()
})

/** A raw TLS + mux connection to the relay, to speak the control protocol by hand. */
async function rawControl (relay: Relay): Promise<{ session: Session, send (b: Buffer): void, next (): Promise<RelayMessage>, closed: Promise<void> }> {
  const socket = await withTimeout(new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: relay.address.port, ALPNProtocols: ['mport/1'], rejectUnauthorized: false }, () => resolve(s))
    s.once('error', reject)
  }), { what: 'raw TLS connect' })
  const session = new Session(socket, { client: true })
  const stream = session.open()
  const chunks: Buffer[] = []
  let waiting: (() => void) | undefined
  stream.on('data', (c: Buffer) => { chunks.push(c); waiting?.() })
  stream.on('error', () => {})
  const closed = new Promise<void>(resolve => session.once('close', () => resolve()))
  return {
    session,
    send: b => stream.write(b),
    closed,
    next: () => withTimeout((async () => {
      for (;;) {
        const all = Buffer.concat(chunks)
        if (all.length >= 4 && all.length >= 4 + all.readUInt32BE(0)) {
          const len = all.readUInt32BE(0)
          chunks.splice(0, chunks.length, all.subarray(4 + len))
          return parseRelayMessage(all.subarray(4, 4 + len))
        }
        await new Promise<void>(resolve => { waiting = resolve })
      }
    })(), { what: 'a control message from the relay' }),
  }
}

t.test('malformed and oversized control messages end that client with a typed error', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const good = makeClient(relay, [tcpSpec(echo.port)])
  t.teardown(async () => { await good.close(); await relay.close(100); await echo.close() })
  const [status] = await good.start()

  const notJson = await rawControl(relay)
  const body = Buffer.from('{not json')
  const frame = Buffer.alloc(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  body.copy(frame, 4)
  notJson.send(frame)
  t.match(await notJson.next(), { t: 'error', code: 'MPORT_ERR_INVALID_MESSAGE' })

  const wrongFirst = await rawControl(relay)
  wrongFirst.send(encodeMessage({ t: 'auth', tokenId: 'x', proof: 'y' }))
  t.match(await wrongFirst.next(), { t: 'error', code: 'MPORT_ERR_INVALID_MESSAGE' })

  const oldVersion = await rawControl(relay)
  oldVersion.send(encodeMessage({ t: 'hello', version: 99, agent: 'test' }))
  t.match(await oldVersion.next(), { t: 'error', code: 'MPORT_ERR_VERSION_MISMATCH' })

  const huge = await rawControl(relay)
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(10 * 1024 * 1024, 0)
  huge.send(prefix)
  t.match(await huge.next(), { t: 'error', code: 'MPORT_ERR_MESSAGE_TOO_LARGE' })

  for (const c of [notJson, wrongFirst, oldVersion, huge]) {
    await withTimeout(c.closed, { what: 'relay to end the bad client' })
  }
  const back = await roundTrip(await connectTo(status!.remotePort!), Buffer.from('fine'))
  t.equal(back.toString(), 'fine', 'the good client kept working')
})

t.test('streams beyond the control stream are reset before authentication, holding nothing', async t => {
  const relay = await startRelay()
  t.teardown(() => relay.close(100))
  const raw = await rawControl(relay)
  const extra = raw.session.open()
  extra.write(Buffer.alloc(200 * 1024)) // rides with the SYN: must not be buffered by the relay
  const err = await withTimeout(new Promise<Error & { code?: string }>(resolve => extra.on('error', resolve)), { what: 'the extra stream to be reset' })
  t.equal(err.code, 'MPORT_ERR_STREAM_RESET')
  raw.session.destroy()
})

t.test('a client that connects and says nothing is dropped; others connect meanwhile', async t => {
  const echo = await startEcho()
  const relay = await startRelay({ handshakeTimeout: 300 })
  t.teardown(async () => { await relay.close(100); await echo.close() })
  const silent = await withTimeout(new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: relay.address.port, ALPNProtocols: ['mport/1'], rejectUnauthorized: false }, () => resolve(s))
    s.once('error', reject)
  }), { what: 'silent TLS connect' })
  silent.on('error', () => {})
  silent.resume() // read, so the relay's FIN is seen
  const silentClosed = withTimeout(new Promise(resolve => silent.on('close', resolve)), { what: 'silent client to be dropped', timeoutMs: 15_000 })
  const good = makeClient(relay, [tcpSpec(echo.port)])
  const [status] = await good.start()
  t.ok(status?.remotePort, 'good client connected while the silent one was pending')
  await silentClosed
  t.pass('silent client dropped')
  await good.close()
})

/** A TCP forwarder standing in for the network path; cut() drops every connection through it. */
async function startPath (target: number): Promise<{ port: number, cut (): void, blackhole (on: boolean): void, close (): Promise<void> }> {
  const pairs = new Set<[net.Socket, net.Socket]>()
  let dark = false
  const server = net.createServer(a => {
    const b = net.connect(target, '127.0.0.1')
    const pair: [net.Socket, net.Socket] = [a, b]
    pairs.add(pair)
    a.on('error', () => {})
    b.on('error', () => {})
    a.on('data', (c: Buffer) => { if (!dark) b.write(c) })
    b.on('data', (c: Buffer) => { if (!dark) a.write(c) })
    const drop = (): void => { a.destroy(); b.destroy(); pairs.delete(pair) }
    a.on('close', drop)
    b.on('close', drop)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => { for (const [a, b] of pairs) { a.resetAndDestroy(); b.resetAndDestroy() } },
    blackhole: on => { dark = on },
    close: () => new Promise<void>(resolve => { for (const [a, b] of pairs) { a.destroy(); b.destroy() } server.close(() => resolve()) }),
  }
}

t.test('network cut: the client reconnects and gets the same public port (lease resumed)', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const path = await startPath(relay.address.port)
  const client = makeClient(relay, [tcpSpec(echo.port)], { relay: `127.0.0.1:${path.port}` })
  t.teardown(async () => { await client.close(); await relay.close(100); await path.close(); await echo.close() })
  const [status] = await client.start()
  const port = status!.remotePort!
  const reconnected = nextEvent<[{ resumed: boolean }]>(client, 'connected', { what: 'client to reconnect', timeoutMs: 20_000 })
  path.cut()
  const [info] = await reconnected
  t.equal(info.resumed, true, 'lease resumed')
  await waitFor(() => client.tunnels[0]!.online && client.tunnels[0]!.remotePort === port, { what: 'tunnel back up' })
  const back = await roundTrip(await connectTo(port), Buffer.from('after the cut'))
  t.equal(back.toString(), 'after the cut')
  t.equal(relay.tunnels.length, 1, 'no second listener')
})

t.test('dead link (blackhole): keepalive notices, the stale session is replaced, same port', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const path = await startPath(relay.address.port)
  const client = makeClient(relay, [tcpSpec(echo.port)], {
    relay: `127.0.0.1:${path.port}`,
    mux: { keepAliveInterval: 100, keepAliveTimeout: 400 },
  })
  t.teardown(async () => { await client.close(); await relay.close(100); await path.close(); await echo.close() })
  const [status] = await client.start()
  const port = status!.remotePort!
  const dropped = nextEvent<[Error & { code?: string }]>(client, 'disconnected', { what: 'keepalive to notice the dead link', timeoutMs: 20_000 })
  path.blackhole(true)
  const [err] = await dropped
  t.equal(err.code, 'MPORT_ERR_KEEPALIVE_TIMEOUT')
  path.blackhole(false)
  const [info] = await nextEvent<[{ resumed: boolean }]>(client, 'connected', { what: 'client to reconnect', timeoutMs: 20_000 })
  t.equal(info.resumed, true, 'the relay still held the stale session; it was replaced')
  await waitFor(() => client.tunnels[0]!.online && client.tunnels[0]!.remotePort === port, { what: 'tunnel back up' })
  const back = await roundTrip(await connectTo(port), Buffer.from('replaced'))
  t.equal(back.toString(), 'replaced')
})

t.test('relay restart: the client reconnects and asks for its port again', async t => {
  const echo = await startEcho()
  let relay = await startRelay()
  const controlPort = relay.address.port
  const client = makeClient(relay, [tcpSpec(echo.port)])
  t.teardown(async () => { await client.close(); await relay.close(100); await echo.close() })
  const [status] = await client.start()
  const port = status!.remotePort!
  const reconnected = nextEvent(client, 'connected', { what: 'client to reconnect to the new relay', timeoutMs: 20_000 })
  await relay.close(100)
  relay = await startRelay({ port: controlPort })
  await reconnected
  await waitFor(() => client.tunnels[0]!.online && client.tunnels[0]!.remotePort === port, { what: 'same port after restart', timeoutMs: 20_000 })
  const back = await roundTrip(await connectTo(port), Buffer.from('restarted'))
  t.equal(back.toString(), 'restarted')
})

t.test('a client that does not come back loses its ports after the grace period', async t => {
  const echo = await startEcho()
  const relay = await startRelay({ leaseGrace: 200 })
  const path = await startPath(relay.address.port)
  const client = makeClient(relay, [tcpSpec(echo.port)], { relay: `127.0.0.1:${path.port}`, reconnect: false })
  t.teardown(async () => { await client.close(); await relay.close(100); await path.close(); await echo.close() })
  const [status] = await client.start()
  path.cut()
  await waitFor(() => relay.tunnels.length === 0, { what: 'lease to expire', timeoutMs: 15_000 })
  t.ok(await isClosed(status!.remotePort!), 'public port released')
})
