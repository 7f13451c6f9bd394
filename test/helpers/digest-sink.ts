/**
 * Large checksummed transfers without holding them in memory: a local service that hashes
 * what it receives and answers with the SHA-256 and byte count, and a sender that streams a
 * generated payload (1 MiB random blocks, each stamped with its index) with backpressure.
 */
import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import { listen } from './ports.js'
import { withTimeout } from './wait.js'

/** A server that answers each connection, once it ends, with `<sha256 hex> <bytes>\n`. */
export async function startDigestSink (): Promise<{ port: number, close (): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, s => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    const hash = createHash('sha256')
    let bytes = 0
    s.on('data', (c: Buffer) => { hash.update(c); bytes += c.length })
    s.on('end', () => s.end(`${hash.digest('hex')} ${bytes}\n`))
  })
  const port = await listen(server)
  return { port, close: () => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }) }
}

/**
 * Sends `mib` MiB to `port` on 127.0.0.1 (a tunnel's public port in front of a digest sink),
 * ends, and resolves with the digest computed here and the one the sink answered.
 */
export function sendChecksummed (port: number, mib: number, timeoutMs = 240_000): Promise<{ sent: string, received: string }> {
  const block = randomBytes(1024 * 1024)
  const hash = createHash('sha256')
  return withTimeout(new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    let answer = ''
    s.on('data', (c: Buffer) => { answer += c.toString() })
    s.on('error', reject)
    s.on('end', () => resolve({ sent: `${hash.digest('hex')} ${mib * 1024 * 1024}`, received: answer.trim() }))
    let i = 0
    const pump = (): void => {
      while (i < mib) {
        const chunk = Buffer.from(block)
        chunk.writeUInt32BE(i, 0)
        hash.update(chunk)
        i++
        if (!s.write(chunk)) { s.once('drain', pump); return }
      }
      s.end()
    }
    s.once('connect', pump)
  }), { what: `a checksummed ${mib} MiB transfer through port ${port}`, timeoutMs })
}
