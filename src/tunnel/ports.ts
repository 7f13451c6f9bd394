/**
 * Public-port allocation: bind a TCP listener on a requested port or on a free one in the
 * relay's range. Random probes first (cheap while the range is sparsely used), then a scan
 * from a random start, so a nearly full range still finds the last free port.
 */
import net from 'node:net'
import { randomInt } from 'node:crypto'
import { PortInUseError, PortNotAllowedError } from '../errors.js'

/** An inclusive range of public ports, e.g. `{ min: 20000, max: 29999 }`. */
export interface PortRange { min: number, max: number }

/** `min-max`, the form parsePortRange reads and error messages show. */
export function formatRange (r: PortRange): string {
  return `${r.min}-${r.max}`
}

/** Parses `20000-29999` (or `20000:29999`); throws RangeError unless 1 ≤ min ≤ max ≤ 65535. */
export function parsePortRange (s: string): PortRange {
  const m = /^(\d{1,5})\s*[-:]\s*(\d{1,5})$/.exec(s.trim())
  const min = Number(m?.[1])
  const max = Number(m?.[2])
  if (m === null || min < 1 || max > 65535 || min > max) throw new RangeError(`"${s}" is not a port range like 20000-29999`)
  return { min, max }
}

const RANDOM_PROBES = 16

/**
 * Binds a listener for `port` (0 = any port in range, except those `skip` says are reserved).
 * Throws PortNotAllowedError outside the range and PortInUseError when the port, or every
 * port in the range, is taken.
 */
export async function bindPublicPort (host: string, port: number, range: PortRange, onConnection: (socket: net.Socket) => void, skip: (port: number) => boolean = () => false): Promise<net.Server> {
  if (port !== 0) {
    if (port < range.min || port > range.max) throw new PortNotAllowedError(port, formatRange(range))
    const server = await tryListen(host, port, onConnection)
    if (server === undefined) throw new PortInUseError(port)
    return server
  }
  const size = range.max - range.min + 1
  for (let i = 0; i < Math.min(RANDOM_PROBES, size); i++) {
    const p = range.min + randomInt(size)
    const server = skip(p) ? undefined : await tryListen(host, p, onConnection)
    if (server !== undefined) return server
  }
  const start = randomInt(size)
  for (let i = 0; i < size; i++) {
    const p = range.min + ((start + i) % size)
    const server = skip(p) ? undefined : await tryListen(host, p, onConnection)
    if (server !== undefined) return server
  }
  throw new PortInUseError(undefined, `no free port left in ${formatRange(range)}`)
}

/** Listens, or resolves undefined when the port is taken; other errors propagate. */
function tryListen (host: string, port: number, onConnection: (socket: net.Socket) => void): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a visitor's FIN travels through the tunnel as a half-close, not a close.
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection)
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(undefined)
      else reject(err)
    })
    server.listen({ host, port, exclusive: true }, () => {
      server.removeAllListeners('error')
      server.on('error', () => {}) // accept errors (EMFILE) are transient; the server keeps listening
      resolve(server)
    })
  })
}
