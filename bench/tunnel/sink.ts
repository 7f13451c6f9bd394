/**
 * The local service every contestant forwards to, on 127.0.0.1 port 0 (prints {"port": N}).
 * The first byte of a connection picks the mode:
 * - 'D' + 8-byte big-endian length: discard that many bytes, then answer one byte 'K'
 *   (the load generator's clock stops on that acknowledgement of the last byte);
 * - 'E': echo every byte back.
 */
import net from 'node:net'

const ACK = Buffer.from('K')

const server = net.createServer({ noDelay: true }, socket => {
  socket.on('error', () => {})
  let mode: 'new' | 'discard-head' | 'discard' | 'echo' = 'new'
  let head = Buffer.alloc(0)
  let remaining = 0
  const onData = (chunk: Buffer): void => {
    if (mode === 'new') {
      const first = chunk[0]
      chunk = chunk.subarray(1)
      if (first === 0x45) { // 'E'
        mode = 'echo'
        socket.off('data', onData)
        if (chunk.length > 0) socket.write(chunk)
        socket.pipe(socket)
        return
      }
      if (first !== 0x44) { socket.destroy(); return } // not 'D'
      mode = 'discard-head'
    }
    if (mode === 'discard-head') {
      head = Buffer.concat([head, chunk])
      if (head.length < 8) return
      remaining = Number(head.readBigUInt64BE(0))
      chunk = head.subarray(8)
      mode = 'discard'
    }
    remaining -= chunk.length
    if (remaining <= 0 && mode === 'discard') {
      mode = 'echo' // done: ignore the rest, answer once
      socket.write(ACK)
    }
  }
  socket.on('data', onData)
})
server.maxConnections = 100_000
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const addr = server.address() as net.AddressInfo
  process.stdout.write(JSON.stringify({ port: addr.port }) + '\n')
})
process.on('SIGTERM', () => process.exit(0))
