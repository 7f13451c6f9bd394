/** A loopback TCP connection for the load generators, bounded and with TCP_NODELAY. */
import net from 'node:net'

export function connect (port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true })
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect to ${port} timed out`)) }, timeoutMs)
    s.once('connect', () => { clearTimeout(timer); s.off('error', reject); resolve(s) })
    s.once('error', err => { clearTimeout(timer); reject(err) })
  })
}
