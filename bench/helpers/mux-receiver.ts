/**
 * Receiver side of bench/stream.bench.ts, run as a child process (node --import tsx) so the
 * sender and the receiver each get a core, as two machines would.
 *
 * It listens on three loopback ports (port 0) and tells the parent over IPC:
 * - raw:    discards a plain TCP stream; on the client's FIN it writes one ack byte and ends.
 * - mport:  a server Session; every stream is drained, and on its FIN answers one byte + FIN.
 * - libp2p: the same over @chainsafe/libp2p-yamux.
 * It answers `{ cmd: 'cpu' }` with process.cpuUsage() and exits when the parent goes away.
 */
import net from 'node:net'
import { Session } from '../../src/mux/session.js'
import { libp2pYamuxOverSocket } from './libp2p-yamux.js'

export interface ReceiverPorts { raw: number, mport: number, libp2p: number }
export type ReceiverMessage = { type: 'ports', ports: ReceiverPorts } | { type: 'cpu', usage: NodeJS.CpuUsage }

const ACK = Buffer.from([1])
const sockets = new Set<net.Socket>()

function listen (onSocket: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    onSocket(socket)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))
  })
}

function rawServer (socket: net.Socket): void {
  let received = 0
  socket.on('data', (chunk: Buffer) => { received += chunk.length })
  socket.on('end', () => { if (received > 0) socket.end(ACK) })
}

function mportServer (socket: net.Socket): void {
  const session = new Session(socket, { client: false })
  session.on('error', () => {})
  session.on('stream', stream => {
    stream.on('error', () => {})
    stream.on('data', () => {})
    stream.on('end', () => stream.end(ACK))
  })
}

function libp2pServer (socket: net.Socket): void {
  libp2pYamuxOverSocket(socket, false, stream => {
    void (async () => {
      for await (const chunk of stream.source) void chunk
      await stream.sink([ACK])
    })().catch(() => stream.abort(new Error('receiver failed')))
  })
}

const ports: ReceiverPorts = {
  raw: await listen(rawServer),
  mport: await listen(mportServer),
  libp2p: await listen(libp2pServer),
}

const send = (m: ReceiverMessage): void => { process.send?.(m) }
process.on('message', (m: { cmd?: string }) => {
  if (m.cmd === 'cpu') send({ type: 'cpu', usage: process.cpuUsage() })
})
process.on('disconnect', () => {
  for (const s of sockets) s.destroy()
  process.exit(0)
})
send({ type: 'ports', ports })
