/**
 * Client.bytesSoFar, which the status screen's bytes and rates read: an open connection's bytes
 * count while it lasts (TunnelStatus counts finished connections only), through a real relay.
 */
import t from 'tap'
import { connectTo, makeClient, startEcho, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'

t.test('bytes of an open connection count before it ends', async t => {
  const relay = await startRelay()
  const echo = await startEcho()
  const client = makeClient(relay, [tcpSpec(echo.port)])
  t.teardown(async () => { await client.close(); await relay.close(100); await echo.close() })
  const [tunnel] = await client.start()
  const visitor = await connectTo(tunnel!.remotePort!)
  t.teardown(() => visitor.destroy())
  let echoed = 0
  visitor.on('data', (c: Buffer) => { echoed += c.length })
  visitor.write(Buffer.alloc(10_000, 1))
  await waitFor(() => echoed === 10_000, { what: 'the echo of 10,000 bytes', timeoutMs: 30_000 })
  const status = client.tunnels[0]!
  t.same([status.bytesIn, status.bytesOut], [0, 0], 'the status counts finished connections only')
  t.same(client.bytesSoFar(status), { bytesIn: 10_000, bytesOut: 10_000 }, 'the open connection counted')
  visitor.end()
  await waitFor(() => status.bytesIn === 10_000, { what: 'the connection to finish', timeoutMs: 30_000 })
  t.same(client.bytesSoFar(status), { bytesIn: 10_000, bytesOut: 10_000 }, 'not counted twice once it finished')
})
