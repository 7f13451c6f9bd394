// A session's receive buffers: one is reused only after every byte handed out of it was
// reported written (MuxStream.writeCallbackFor, which proxy() passes to the socket's write)
// and the stream stopped gathering into it. The tests through sessions run with released
// buffers poisoned, so a buffer reused while a socket still held it would corrupt bytes on
// the way and fail the checksums.
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { ReceiveBufferPool } from '../../src/mux/receive-buffers.js'
import { Session } from '../../src/mux/session.js'
import type { MuxStream } from '../../src/mux/stream.js'
import { proxy } from '../../src/tunnel/proxy.js'
import { sha256 } from '../helpers/digest.js'
import { tlsTransport } from '../helpers/transports.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'

t.test('a buffer returns only when filled and every handed-out byte is confirmed', async t => {
  const pool = new ReceiveBufferPool(1024, 4)
  const g = pool.take(1000)
  t.equal(g.length, 1000)
  const a = g.subarray(0, 600)
  const b = g.subarray(600, 1000)
  pool.handedOut(a)
  pool.handedOut(b)
  pool.doneFilling(g)
  const doneA = pool.writeCallback(a)!
  const doneB = pool.writeCallback(b)!
  doneA()
  t.equal(pool.stats.free, 0, '400 bytes still out')
  doneB()
  t.equal(pool.stats.free, 1, 'back once all 1000 are confirmed')
  t.equal(pool.take(10).buffer, g.buffer, 'and handed out again')
})

t.test('still gathering, never confirmed, or a failed write: not reused', async t => {
  const pool = new ReceiveBufferPool(1024, 4)
  const filling = pool.take(100)
  pool.handedOut(filling.subarray(0, 50))
  pool.writeCallback(filling.subarray(0, 50))!()
  t.equal(pool.stats.free, 0, 'the stream is still gathering into it')

  const unconfirmed = pool.take(100)
  pool.handedOut(unconfirmed)
  pool.doneFilling(unconfirmed)
  t.equal(pool.stats.free, 0, 'handed out, never written by a socket')

  const failed = pool.take(100)
  pool.handedOut(failed)
  pool.doneFilling(failed)
  pool.writeCallback(failed)!(new Error('EPIPE'))
  t.equal(pool.stats.free, 0, 'a failed write loses the buffer for good')
})

t.test('chunks from elsewhere get no callback; the pool keeps at most maxFree', async t => {
  const pool = new ReceiveBufferPool(1024, 1)
  t.equal(pool.writeCallback(Buffer.alloc(10)), undefined)
  t.equal(pool.writeCallback(Buffer.alloc(1024)), undefined, 'of the pool\'s block size, but not one of its blocks')
  const [x, y] = [pool.take(8), pool.take(8)]
  for (const g of [x, y]) {
    pool.handedOut(g)
    pool.doneFilling(g)
    pool.writeCallback(g)!()
  }
  t.equal(pool.stats.free, 1)
})

t.test('poison overwrites a released buffer', async t => {
  const pool = new ReceiveBufferPool(16, 1)
  pool.poison = true
  const g = pool.take(16).fill(1)
  pool.doneFilling(g)
  t.ok(g.every(v => v === 0xa5))
})

/** A service that answers each connection, at its end, with the sha256 of what it read, reading slowly. */
async function slowHashingService (): Promise<{ port: number, close (): void }> {
  const server = net.createServer({ allowHalfOpen: true }, s => {
    const h = createHash('sha256')
    s.on('error', () => {})
    s.on('data', (c: Buffer) => {
      h.update(c)
      s.pause() // slow: the client's writes to it queue up and hold their buffers
      setImmediate(() => s.resume())
    })
    s.on('end', () => s.end(h.digest('hex')))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() }
}

/**
 * A relay and a client built from the mux alone, over TLS, both proxying the way a tunnel
 * does: the "relay" session turns each connection to a front port into a stream whose first
 * byte names the service; the "client" session proxies each stream to that service. Both
 * sessions share `pool`. Returns one front port per service.
 */
async function muxTunnel (t: Test, pool: ReceiveBufferPool, services: number[]): Promise<number[]> {
  const conn = await tlsTransport().connect()
  const relay = new Session(conn.server, { client: false, receiveBuffers: pool })
  const client = new Session(conn.client, { client: true, receiveBuffers: pool })
  client.on('stream', (stream: MuxStream) => {
    stream.once('readable', () => {
      const header = stream.read(1) as Buffer
      void proxy(stream, net.connect({ host: '127.0.0.1', port: services[header[0]!]!, allowHalfOpen: true }))
    })
  })
  const fronts = services.map((_port, i) => net.createServer({ allowHalfOpen: true }, visitor => {
    const stream = relay.open()
    stream.write(Buffer.from([i]))
    void proxy(visitor, stream)
  }))
  await Promise.all(fronts.map(f => new Promise<void>(resolve => f.listen(0, '127.0.0.1', resolve))))
  t.teardown(async () => {
    for (const f of fronts) f.close()
    client.destroy()
    relay.destroy()
    await conn.close()
  })
  return fronts.map(f => (f.address() as net.AddressInfo).port)
}

t.test('through sessions sharing a poisoned pool: 24 uploads to a slow service and 16 MiB echoed', async t => {
  const pool = new ReceiveBufferPool()
  pool.poison = true
  const service = await slowHashingService()
  const echo = await startEcho()
  t.teardown(async () => { service.close(); await echo.close() })
  const [up, both] = await muxTunnel(t, pool, [service.port, echo.port])
  const payloads = Array.from({ length: 24 }, (_, i) => randomBytes(512 * 1024 + i * 4099))
  const answers = await Promise.all(payloads.map(async p => String(await roundTrip(await connectTo(up!), p))))
  t.same(answers, payloads.map(sha256), 'every upload arrived intact')
  const data = randomBytes(16 * 1024 * 1024)
  t.equal(sha256(await roundTrip(await connectTo(both!), data)), sha256(data), 'the echo came back intact both ways')
  t.ok(pool.stats.reused > 0, `receive buffers were reused (${pool.stats.reused} times)`)
})

t.test('a chunk nobody reports written keeps its buffer: a plain reader never sees it overwritten', async t => {
  const pool = new ReceiveBufferPool()
  pool.poison = true
  const conn = await tlsTransport().connect()
  const a = new Session(conn.client, { client: true, receiveBuffers: pool })
  const b = new Session(conn.server, { client: false, receiveBuffers: pool })
  t.teardown(async () => { a.destroy(); b.destroy(); await conn.close() })
  const data = randomBytes(4 * 1024 * 1024)
  const accepted = b.accept()
  a.open().end(data)
  const stream = await accepted
  const kept: Buffer[] = []
  stream.on('data', (c: Buffer) => kept.push(c))
  await new Promise(resolve => stream.once('end', resolve))
  t.equal(sha256(Buffer.concat(kept)), sha256(data), 'every kept chunk still holds its bytes')
  t.equal(pool.stats.reused, 0, 'no buffer was reused')
})
