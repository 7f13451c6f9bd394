/**
 * Loopback ports for tests: listen on port 0 and learn the port, or find one that nothing
 * listens on (for "connection refused" cases).
 */
import net from 'node:net'

/** Listens on 127.0.0.1 port 0 and resolves with the port the system chose. */
export function listen (server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve((server.address() as net.AddressInfo).port)
    })
  })
}

/** A loopback port nothing listens on (bound, then closed). */
export async function closedPort (): Promise<number> {
  const server = net.createServer()
  const port = await listen(server)
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}
