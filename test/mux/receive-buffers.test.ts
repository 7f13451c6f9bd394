// The streams' receive buffers: one is reused only after every byte handed out of it was
// confirmed written by a socket's write callback and the stream stopped gathering into it.
// The tunnel tests below run with released buffers poisoned, so a buffer reused while a socket
// still held it would corrupt bytes on the way and fail the checksums.
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { ReceiveBufferPool, receiveBuffers } from '../../src/mux/receive-buffers.js'
import { connectTo, makeClient, roundTrip, startRelay, tcpSpec } from '../helpers/tunnel.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

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

t.test('through a tunnel with poisoned reuse: 24 uploads to a slow service and 16 MiB echoed', async t => {
  receiveBuffers.poison = true
  t.teardown(() => { receiveBuffers.poison = false })
  const before = receiveBuffers.stats.reused
  const service = await slowHashingService()
  const echo = net.createServer({ allowHalfOpen: true }, s => { s.on('error', () => {}); s.pipe(s) })
  await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve))
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec(service.port), tcpSpec((echo.address() as net.AddressInfo).port)])
  t.teardown(async () => { await client.close(); await relay.close(100); service.close(); echo.close() })
  const [up, both] = await client.start()
  const payloads = Array.from({ length: 24 }, (_, i) => randomBytes(512 * 1024 + i * 4099))
  const answers = await Promise.all(payloads.map(async p => String(await roundTrip(await connectTo(up!.remotePort!), p))))
  t.same(answers, payloads.map(sha), 'every upload arrived intact')
  const data = randomBytes(16 * 1024 * 1024)
  t.equal(sha(await roundTrip(await connectTo(both!.remotePort!), data)), sha(data), 'the echo came back intact both ways')
  t.ok(receiveBuffers.stats.reused > before, `receive buffers were reused (${receiveBuffers.stats.reused - before} times)`)
})
