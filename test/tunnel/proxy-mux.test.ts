/**
 * proxy() between sockets and mux streams, as the relay and the client run it: a visitor socket
 * joined to a stream of one session, the peer stream of the other session joined to a service
 * socket, the two sessions over a real loopback TCP connection. Bytes in order and counted,
 * each FIN after its data, backpressure that stops the sender through the window with nothing
 * held in the streams beyond it, resets that cross, a second 'data' listener (an inspector's
 * tap) that sees every byte, and many small messages on many streams.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { Session } from '../../src/mux/session.js'
import type { MuxStream } from '../../src/mux/stream.js'
import { pipeBoth, proxy, type ProxyResult } from '../../src/tunnel/proxy.js'
import { socketPair } from '../helpers/socket-pair.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

interface Path {
  /** The outer ends the test drives. */
  visitor: net.Socket
  service: net.Socket
  /** The proxied sockets and streams: visitor ⇄ a ═ relayStream ⇄ TCP ⇄ clientStream ═ b ⇄ service. */
  a: net.Socket
  b: net.Socket
  relayStream: MuxStream
  clientStream: MuxStream
  relayDone: Promise<ProxyResult>
  clientDone: Promise<ProxyResult>
}

/**
 * The relay's side opens a stream per visitor; `beforeProxy` may act on the client's stream
 * before its link exists (a tap attached, a header written).
 */
async function tunnelPath (t: Test, beforeProxy?: (clientStream: MuxStream, relayStream: MuxStream) => void): Promise<Path> {
  const [muxA, muxB] = await socketPair(t)
  const relaySession = new Session(muxA, { client: false, windowAutoTuning: false })
  const clientSession = new Session(muxB, { client: true, windowAutoTuning: false })
  t.teardown(() => { relaySession.destroy(); clientSession.destroy() })
  const [visitor, a] = await socketPair(t)
  const [b, service] = await socketPair(t)
  const relayStream = relaySession.open()
  const accepted = clientSession.accept()
  relayStream.write('hello') // a stream reaches the peer with its first frame
  const clientStream = await withTimeout(accepted, { what: 'accepted stream' })
  const hello = await withTimeout(new Promise<Buffer>(resolve => clientStream.once('data', resolve)), { what: 'first frame' })
  t.equal(hello.toString(), 'hello', 'the stream opened')
  beforeProxy?.(clientStream, relayStream)
  const relayDone = proxy(a, relayStream)
  const clientDone = proxy(clientStream, b)
  return { visitor, service, a, b, relayStream, clientStream, relayDone, clientDone }
}

function collect (s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = []
  s.on('data', (d: Buffer) => parts.push(d))
  return withTimeout(new Promise<Buffer>(resolve => s.once('end', () => resolve(Buffer.concat(parts)))), { what: 'end of stream', timeoutMs: 30_000 })
}

t.test('bytes cross both ways intact, small and large writes, counted; each FIN after its data', async t => {
  const p = await tunnelPath(t)
  const atService = collect(p.service)
  const atVisitor = collect(p.visitor)
  // Many small writes, then large ones: frames that fit one read, and frames split across reads.
  const up = Buffer.concat([...Array.from({ length: 500 }, (_, i) => randomBytes(1 + i % 97)), randomBytes(3 * 1024 * 1024 + 11)])
  for (let off = 0; off < up.length;) {
    const n = off < 30_000 ? 1 + off % 97 : 256 * 1024
    p.visitor.write(up.subarray(off, off + n))
    off += n
  }
  p.visitor.end()
  t.equal(sha(await atService), sha(up), 'upload intact and in order')
  t.notOk(p.service.writableEnded, 'the other direction is still open')
  const down = randomBytes(2 * 1024 * 1024 + 5)
  p.service.end(down)
  t.equal(sha(await atVisitor), sha(down), 'download intact')
  const [relay, client] = await withTimeout(Promise.all([p.relayDone, p.clientDone]), { what: 'proxy results' })
  t.same(relay, { aToB: up.length, bToA: down.length }, 'relay side counted both ways, no error')
  t.same(client, { aToB: up.length, bToA: down.length }, 'client side counted both ways, no error')
})

/**
 * Writes 64 KiB chunks from `writer` until the link stops reading `proxied` (every buffer on the
 * way is full). Returns the bytes written.
 */
async function fillUntilPaused (writer: net.Socket, proxied: net.Socket): Promise<number> {
  const chunk = randomBytes(64 * 1024)
  let sent = 0
  while (!proxied.isPaused() && sent < 512 * 1024 * 1024) {
    sent += chunk.length
    if (!writer.write(chunk)) await waitFor(() => !writer.writableNeedDrain || proxied.isPaused(), { what: 'the writer to drain or the link to pause its socket' })
  }
  return sent
}

/**
 * `reader` stops reading: its sender `writer` must stall through the window, with what the
 * far link holds for `reader` (in `readerSocket`'s write buffer and the receiving stream) a
 * window at most; then every byte arrives once `reader` reads again.
 */
async function stallsThroughWindow (t: Test, writer: net.Socket, writerSocket: net.Socket, sending: MuxStream, receiving: MuxStream, readerSocket: net.Socket, reader: net.Socket): Promise<void> {
  reader.pause()
  const sent = await fillUntilPaused(writer, writerSocket)
  t.ok(writerSocket.isPaused(), `the link stopped reading the writer after ${sent} bytes`)
  await waitFor(() => sending.sendWindow === 0, { what: 'the sending stream\'s window to run out' })
  const held = readerSocket.writableLength + receiving.readableLength
  t.ok(held <= receiving.recvWindowMax + 64 * 1024, `the far link holds ${held} bytes for the reader, within a window`)
  const got = collect(reader)
  reader.resume()
  writer.end()
  t.equal((await got).length, sent, 'every byte arrived once the reader read again')
}

t.test('a service that stops reading stops the visitor\'s sender through the window', async t => {
  const p = await tunnelPath(t)
  await stallsThroughWindow(t, p.visitor, p.a, p.relayStream, p.clientStream, p.b, p.service)
})

t.test('a visitor that stops reading stops the service\'s sender through the window', async t => {
  const p = await tunnelPath(t)
  await stallsThroughWindow(t, p.service, p.b, p.clientStream, p.relayStream, p.a, p.visitor)
})

t.test('a second \'data\' listener on the stream sees every byte, in order, while the proxy moves them', async t => {
  const tapped: Buffer[] = []
  const p = await tunnelPath(t, clientStream => {
    clientStream.on('data', (d: Buffer) => tapped.push(Buffer.from(d)))
  })
  const atService = collect(p.service)
  const up = Buffer.concat(Array.from({ length: 200 }, () => randomBytes(700)))
  for (let i = 0; i < up.length; i += 700) p.visitor.write(up.subarray(i, i + 700))
  p.visitor.end()
  t.equal(sha(await atService), sha(up), 'the service got every byte')
  t.equal(sha(Buffer.concat(tapped)), sha(up), 'the tap saw the same bytes in the same order')
})

t.test('bytes written to the stream before the proxy go first; a tap attached mid-stream sees what follows', async t => {
  const p = await tunnelPath(t, (_clientStream, relayStream) => { relayStream.write('before-') })
  const atService = collect(p.service)
  p.visitor.write('after-')
  await waitFor(() => p.relayStream.sendWindow < 256 * 1024 - 5, { what: 'the first bytes to be sent' })
  const later: Buffer[] = []
  p.clientStream.on('data', (d: Buffer) => later.push(Buffer.from(d)))
  p.visitor.end('tail')
  t.equal((await atService).toString(), 'before-after-tail', 'in the order written')
  t.match(Buffer.concat(later).toString(), /tail$/, 'the late tap saw the last bytes')
})

t.test('the service resetting mid-transfer resets the visitor, and both results carry an error', async t => {
  const p = await tunnelPath(t)
  p.service.once('data', () => p.service.resetAndDestroy())
  p.service.on('error', () => {})
  p.visitor.on('error', () => {})
  p.visitor.write(randomBytes(256 * 1024))
  const closed = nextEvent(p.visitor, 'close', { what: 'visitor closed', timeoutMs: 30_000 })
  const [relay, client] = await withTimeout(Promise.all([p.relayDone, p.clientDone]), { what: 'proxy results' })
  t.ok(client.error, `client side failed: ${client.error?.message}`)
  t.ok(relay.error, `relay side failed: ${relay.error?.message}`)
  await closed
  t.ok(p.relayStream.destroyed && p.clientStream.destroyed, 'both streams are gone')
})

t.test('many small messages each way on many streams at once (a request-response load)', async t => {
  const [muxA, muxB] = await socketPair(t)
  const relaySession = new Session(muxA, { client: false })
  const clientSession = new Session(muxB, { client: true })
  t.teardown(() => { relaySession.destroy(); clientSession.destroy() })
  // An echo service behind the client side.
  const echo = net.createServer(s => { s.on('error', () => {}); s.pipe(s) })
  await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve))
  t.teardown(() => echo.close())
  clientSession.on('stream', stream => {
    const local = net.connect({ host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port })
    local.once('connect', () => pipeBoth(stream, local, { aToB: 0, bToA: 0 }, undefined, { proxyDone () {} }))
  })
  const front = net.createServer({ allowHalfOpen: true }, visitor => pipeBoth(visitor, relaySession.open(), { aToB: 0, bToA: 0 }, undefined, { proxyDone () {} }))
  await new Promise<void>(resolve => front.listen(0, '127.0.0.1', resolve))
  t.teardown(() => front.close())
  const port = (front.address() as net.AddressInfo).port
  const ok = await withTimeout(Promise.all(Array.from({ length: 20 }, async (_, c) => {
    const s = net.connect({ host: '127.0.0.1', port })
    await nextEvent(s, 'connect', { what: 'connect' })
    let echoed = Buffer.alloc(0)
    s.on('data', (d: Buffer) => { echoed = Buffer.concat([echoed, d]) })
    for (let i = 0; i < 50; i++) {
      const msg = Buffer.from(`conn ${c} message ${i};`)
      const want = echoed.length + msg.length
      s.write(msg)
      await waitFor(() => echoed.length >= want, { what: `echo of message ${i} on connection ${c}` })
    }
    s.destroy()
    return echoed.toString() === Array.from({ length: 50 }, (_, i) => `conn ${c} message ${i};`).join('')
  })), { what: '20 connections × 50 round trips', timeoutMs: 60_000 })
  t.equal(ok.filter(Boolean).length, 20, 'every connection got its own messages back, in order')
})
