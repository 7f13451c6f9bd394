/** Relay + client through the public API on loopback: data paths, half-close, backpressure, errors. */
import t from 'tap'
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { connectTo, isClosed, makeClient, roundTrip, startEcho, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('a tunnel carries 16 MiB both ways, checksummed', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec(echo.port)])
  t.teardown(async () => { await client.close(); await relay.close(100); await echo.close() })
  const [status] = await client.start()
  t.ok(status?.remotePort, 'relay assigned a public port')
  t.match(status?.url, /^tcp:\/\/127\.0\.0\.1:\d+$/)
  const data = randomBytes(16 * 1024 * 1024)
  const back = await roundTrip(await connectTo(status!.remotePort!), data)
  t.equal(back.length, data.length)
  t.equal(sha(back), sha(data), 'echoed bytes are identical')
  await waitFor(() => client.tunnels[0]!.bytesIn === data.length, { what: 'client byte counters' })
  t.equal(client.tunnels[0]!.bytesOut, data.length)
})

t.test('200 concurrent connections through one tunnel', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec(echo.port)])
  t.teardown(async () => { await client.close(); await relay.close(100); await echo.close() })
  const [status] = await client.start()
  const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const data = randomBytes(8192 + i)
    const back = await roundTrip(await connectTo(status!.remotePort!), data)
    return back.equals(data)
  }))
  t.equal(results.filter(Boolean).length, 200, 'every connection echoed its own bytes')
  await waitFor(() => relay.tunnels[0]?.connections === 0, { what: 'relay connections to drain' })
})

t.test('half-close: the visitor ends, the service answers after seeing EOF', async t => {
  // The service reads until EOF, then replies with the byte count and closes.
  const server = net.createServer({ allowHalfOpen: true }, s => {
    let n = 0
    s.on('data', (c: Buffer) => { n += c.length })
    s.on('end', () => s.end(`got ${n}`))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec((server.address() as net.AddressInfo).port)])
  t.teardown(async () => { await client.close(); await relay.close(100); server.close() })
  const [status] = await client.start()
  const back = await roundTrip(await connectTo(status!.remotePort!), Buffer.alloc(100_000, 1))
  t.equal(back.toString(), 'got 100000')
})

t.test('a visitor that stops reading slows the service; nothing buffers without bound', async t => {
  let serviceSocket: net.Socket | undefined
  let written = 0
  let sawBackpressure = false
  const server = net.createServer(s => {
    serviceSocket = s
    s.on('error', () => {})
    const chunk = Buffer.alloc(64 * 1024)
    const pump = (): void => {
      // Bounded: at most 256 MiB, far more than every buffer on the path together.
      while (written < 256 * 1024 * 1024) {
        written += chunk.length
        if (!s.write(chunk)) { sawBackpressure = true; s.once('drain', pump); return }
      }
    }
    pump()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec((server.address() as net.AddressInfo).port)])
  t.teardown(async () => { serviceSocket?.destroy(); await client.close(); await relay.close(100); server.close() })
  const [status] = await client.start()
  const visitor = await connectTo(status!.remotePort!)
  visitor.pause() // never reads
  await waitFor(() => sawBackpressure, { what: 'the local service to see backpressure', timeoutMs: 30_000 })
  // Let the path settle, then check that the service stays stopped.
  let last = -1
  await waitFor(async () => {
    const stable = written === last
    last = written
    await new Promise(resolve => setTimeout(resolve, 200))
    return stable && written === last
  }, { what: 'the service to stay blocked', timeoutMs: 30_000, intervalMs: 1 })
  // Socket buffers (kernel + user space) and one 256 KiB-16 MiB window on each hop: far below 256 MiB.
  t.ok(written < 64 * 1024 * 1024, `service wrote only ${(written / 1048576).toFixed(1)} MiB while the visitor read nothing`)
  visitor.destroy()
})

t.test('several tunnels in one client, a fixed public port, and port errors', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const takenPort = await freePortInRange()
  const taken = net.createServer()
  await new Promise<void>(resolve => taken.listen(takenPort, '127.0.0.1', resolve))
  const free = await freePortInRange()
  const client = makeClient(relay, [
    tcpSpec(echo.port, { name: 'a' }),
    tcpSpec(echo.port, { name: 'fixed', remotePort: free }),
    tcpSpec(echo.port, { name: 'outside', remotePort: 1000 }),
    tcpSpec(echo.port, { name: 'taken', remotePort: takenPort }),
  ])
  t.teardown(async () => { await client.close(); await relay.close(100); await echo.close(); taken.close() })
  const tunnels = await client.start()
  const byName = Object.fromEntries(tunnels.map(x => [x.name, x]))
  t.ok(byName.a?.remotePort, 'tunnel a is up')
  t.equal(byName.fixed?.remotePort, free, 'fixed port granted')
  t.equal(byName.outside?.error?.code, 'MPORT_ERR_PORT_NOT_ALLOWED')
  t.equal(byName.taken?.error?.code, 'MPORT_ERR_PORT_IN_USE')
  const back = await roundTrip(await connectTo(free), Buffer.from('hello'))
  t.equal(back.toString(), 'hello')
})

async function freePortInRange (): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 30000 + Math.floor(Math.random() * 30000)
    const s = net.createServer()
    const ok = await new Promise<boolean>(resolve => {
      s.once('error', () => resolve(false))
      s.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (ok) { await new Promise(resolve => s.close(resolve)); return port }
  }
  throw new Error('no free port found in 50 tries')
}

t.test('local service refusing: the visitor is closed promptly and the client reports it', async t => {
  const dead = net.createServer()
  await new Promise<void>(resolve => dead.listen(0, '127.0.0.1', resolve))
  const deadPort = (dead.address() as net.AddressInfo).port
  await new Promise(resolve => dead.close(resolve))
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec(deadPort)])
  t.teardown(async () => { await client.close(); await relay.close(100) })
  const [status] = await client.start()
  const closed = nextEvent<[unknown, { error?: { code?: string } }]>(client, 'connection-closed', { what: 'client to report the refused dial' })
  const visitor = await connectTo(status!.remotePort!)
  const reset = withTimeout(new Promise<string | undefined>(resolve => { visitor.on('error', (e: NodeJS.ErrnoException) => resolve(e.code)); visitor.on('end', () => resolve('end')); visitor.resume() }), { what: 'visitor to be closed' })
  const [, stats] = await closed
  t.equal(stats.error?.code, 'MPORT_ERR_LOCAL_UNREACHABLE')
  t.equal(await reset, 'ECONNRESET', 'the visitor sees a reset, as if it had dialled a closed port')
})

t.test('close() releases every socket: the public port stops listening', async t => {
  const echo = await startEcho()
  const relay = await startRelay()
  const client = makeClient(relay, [tcpSpec(echo.port)])
  const [status] = await client.start()
  const visitor = await connectTo(status!.remotePort!)
  visitor.on('error', () => {})
  await roundTrip(await connectTo(status!.remotePort!), Buffer.from('x'))
  await client.close()
  await relay.close(100)
  t.ok(await isClosed(status!.remotePort!), 'public port closed')
  t.ok(await isClosed(relay.address.port), 'control port closed')
  await withTimeout(new Promise(resolve => { if (visitor.readableEnded || visitor.destroyed) resolve(undefined); else { visitor.on('end', resolve); visitor.on('close', resolve); visitor.resume() } }), { what: 'open visitor to be closed' })
  await echo.close()
})
