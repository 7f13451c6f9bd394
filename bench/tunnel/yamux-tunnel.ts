/**
 * A tunnel built on @chainsafe/libp2p-yamux over one TCP connection (no TLS): the same
 * relay-opens-a-stream design as mport, with the independent muxer.
 *   relay                     prints {"control": C}; after the client connects, {"port": P}
 *   client <control> <target> connects to the relay; each stream becomes a connection to target
 * Backpressure: a source socket is read only as the stream's sink consumes it (async iteration
 * pulls on demand), and is not read at all while the muxer's outbound queue holds more than
 * QUEUE_HIGH bytes — sendData() only waits for window credit, so without that check the queue
 * (and RSS) grows up to the window of every stream.
 */
import net from 'node:net'
import { once } from 'node:events'
import type { Stream, StreamMuxer } from '@libp2p/interface'
import { libp2pYamuxOverSocket } from '../helpers/libp2p-yamux.js'

const QUEUE_HIGH = 1024 * 1024

interface Queue { readableLength: number, onEmpty: () => Promise<void> }

/** Runs a muxer over the tunnel socket (the bench's shared bridge); returns it and its outbound queue. */
function overSocket (socket: net.Socket, client: boolean, onStream?: (s: Stream) => void): { muxer: StreamMuxer, queue: Queue } {
  const { muxer } = libp2pYamuxOverSocket(socket, client, onStream, { maxInboundStreams: 1_000_000, maxOutboundStreams: 1_000_000 })
  return { muxer, queue: muxer.source as unknown as Queue }
}

/** Joins a TCP socket and a yamux stream both ways, with half-close. */
function join (sock: net.Socket, stream: Stream, queue: Queue): void {
  sock.on('error', () => {})
  async function * fromSocket (): AsyncGenerator<Uint8Array> {
    for await (const chunk of sock as AsyncIterable<Buffer>) {
      yield chunk
      if (queue.readableLength > QUEUE_HIGH) await queue.onEmpty()
    }
  }
  stream.sink(fromSocket()).catch(() => { sock.destroy() })
  void (async () => {
    for await (const list of stream.source) {
      let ok = true
      for (const buf of list) ok = sock.write(buf)
      if (!ok && !sock.destroyed) await once(sock, 'drain')
    }
    sock.end()
  })().catch(() => { sock.destroy(); stream.abort(new Error('socket failed')) })
}

const [role, a1, a2] = process.argv.slice(2)
if (role === 'relay') {
  let tunnel: { muxer: StreamMuxer, queue: Queue } | undefined
  const control = net.createServer({ noDelay: true }, sock => {
    if (tunnel !== undefined) { sock.destroy(); return }
    sock.setNoDelay(true)
    tunnel = overSocket(sock, false)
    const pub = net.createServer({ allowHalfOpen: true, noDelay: true }, visitor => {
      if (tunnel === undefined) { visitor.destroy(); return }
      visitor.setNoDelay(true)
      const { queue } = tunnel
      Promise.resolve(tunnel.muxer.newStream()).then(stream => join(visitor, stream, queue), () => visitor.destroy()) // sync in 7.x
    })
    pub.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      process.stdout.write(JSON.stringify({ port: (pub.address() as net.AddressInfo).port }) + '\n')
    })
  })
  control.listen({ host: '127.0.0.1', port: 0 }, () => {
    process.stdout.write(JSON.stringify({ control: (control.address() as net.AddressInfo).port }) + '\n')
  })
} else if (role === 'client' && a1 !== undefined && a2 !== undefined) {
  const target = Number(a2)
  const sock = net.connect({ host: '127.0.0.1', port: Number(a1), noDelay: true })
  sock.on('error', err => { process.stderr.write(`tunnel connection failed: ${err.message}\n`); process.exit(1) })
  sock.on('close', () => process.exit(1))
  let queue: Queue | undefined
  sock.once('connect', () => {
    queue = overSocket(sock, true, stream => {
      const local = net.connect({ host: '127.0.0.1', port: target, noDelay: true, allowHalfOpen: true })
      join(local, stream, queue as Queue)
    }).queue
    process.stdout.write(JSON.stringify({ connected: true }) + '\n')
  })
} else {
  process.stderr.write('usage: yamux-tunnel.ts relay | client <control port> <target port>\n')
  process.exit(2)
}
process.on('SIGTERM', () => process.exit(0))
