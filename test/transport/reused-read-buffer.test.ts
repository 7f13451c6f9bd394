// ReusedReadBuffer on real loopback sockets: bytes that arrive before a consumer attaches are
// kept (copied) and delivered first, in order; an early flood pauses the socket instead of
// growing memory, and attaching resumes it; after detach nothing is delivered.
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { ReusedReadBuffer } from '../../src/transport/reused-read-buffer.js'
import { sleep, waitFor } from '../helpers/wait.js'

const KiB = 1024
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A loopback server that writes `payload` to each connection and ends it. */
async function sender (t: Test, payload: Buffer): Promise<number> {
  const server = net.createServer(s => { s.on('error', () => {}); s.end(payload) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return (server.address() as net.AddressInfo).port
}

function connect (t: Test, port: number, reader: ReusedReadBuffer): net.Socket {
  const socket = net.connect({ host: '127.0.0.1', port, onread: reader.onread })
  reader.bind(socket)
  t.teardown(() => { socket.destroy() })
  return socket
}

t.test('early bytes are held for the consumer; a flood pauses the socket until it attaches', async t => {
  const payload = randomBytes(1024 * KiB)
  const reader = new ReusedReadBuffer()
  const socket = connect(t, await sender(t, payload), reader)
  let dataEvents = 0
  socket.on('data', () => { dataEvents++ })
  await waitFor(() => socket.bytesRead >= 256 * KiB, { what: 'the first 256 KiB to be read before anyone attached' })
  await sleep(200) // the sender has sent everything; a socket that kept reading would take it all
  t.ok(socket.bytesRead < payload.length, `paused at ${socket.bytesRead} of ${payload.length} bytes while nobody consumed`)
  const got: Buffer[] = []
  reader.attach(chunk => got.push(Buffer.from(chunk)))
  await waitFor(() => got.reduce((n, c) => n + c.length, 0) === payload.length, { what: 'all of the payload after attach' })
  t.equal(sha(Buffer.concat(got)), sha(payload), 'every byte, in order, early ones first')
  t.equal(dataEvents, 0, "the socket emits no 'data' events")
})

t.test('chunks are views of one reused buffer', async t => {
  const payload = randomBytes(512 * KiB)
  const reader = new ReusedReadBuffer()
  const buffers = new Set<ArrayBufferLike>()
  let got = 0
  reader.attach(chunk => { buffers.add(chunk.buffer); got += chunk.length })
  connect(t, await sender(t, payload), reader)
  await waitFor(() => got === payload.length, { what: 'the payload' })
  t.equal(buffers.size, 1, 'every chunk lives in the same buffer')
})

t.test('after detach, bytes are dropped and the socket keeps reading to the end', async t => {
  const payload = randomBytes(512 * KiB)
  const reader = new ReusedReadBuffer()
  let got = 0
  reader.attach(chunk => { got += chunk.length })
  reader.detach()
  const socket = connect(t, await sender(t, payload), reader)
  await waitFor(() => socket.bytesRead === payload.length && socket.readableEnded, { what: 'the socket to read everything and end' })
  t.equal(got, 0, 'nothing delivered')
})
