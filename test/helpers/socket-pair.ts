/** A connected pair of TCP sockets on 127.0.0.1, closed at the test's end. */
import net from 'node:net'
import type { Test } from 'tap'
import { nextEvent } from './wait.js'

/** [the end we dial, the end the server accepted], both allowing half-open. */
export async function socketPair (t: Test): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const accepted = nextEvent<[net.Socket]>(server, 'connection', { what: 'accepted connection' })
  const dialed = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, allowHalfOpen: true })
  const [inner] = await accepted
  if (dialed.connecting) await nextEvent(dialed, 'connect', { what: 'connect' })
  server.close()
  t.teardown(() => { dialed.destroy(); inner.destroy() })
  return [dialed, inner]
}
