/**
 * proxy(): two real loopback TCP connections joined both ways — bytes and counts, each
 * direction's FIN on its own, backpressure that holds a slow reader's data in the kernel
 * instead of the process, aborts that become RSTs, and shaping transforms in the path.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { proxy, type FreshReadMeter, type ProxyResult } from '../../src/tunnel/proxy.js'
import { socketPair } from '../helpers/socket-pair.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

/**
 * visitor ⇄ a ═proxy═ b ⇄ service: `visitor` and `service` are the outer ends the test drives.
 */
async function joined (t: Test, shaping?: Parameters<typeof proxy>[3], meter?: FreshReadMeter): Promise<{ visitor: net.Socket, service: net.Socket, a: net.Socket, b: net.Socket, done: Promise<ProxyResult> }> {
  const [visitor, a] = await socketPair(t)
  const [b, service] = await socketPair(t)
  const done = proxy(a, b, undefined, shaping, meter)
  return { visitor, service, a, b, done }
}

function collect (s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = []
  s.on('data', (d: Buffer) => parts.push(d))
  return withTimeout(new Promise<Buffer>(resolve => s.once('end', () => resolve(Buffer.concat(parts)))), { what: 'end of stream', timeoutMs: 20_000 })
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('bytes cross both ways intact and are counted; each FIN crosses on its own', async t => {
  const { visitor, service, done } = await joined(t)
  const up = randomBytes(3 * 1024 * 1024 + 17)
  const down = randomBytes(2 * 1024 * 1024 + 5)
  const atService = collect(service)
  const atVisitor = collect(visitor)
  visitor.end(up)
  // The visitor finished sending; the service may still answer on its open direction.
  t.equal(sha(await atService), sha(up), 'upload intact')
  t.notOk(service.writableEnded, 'the other direction is still open')
  service.end(down)
  t.equal(sha(await atVisitor), sha(down), 'download intact')
  const result = await withTimeout(done, { what: 'proxy result' })
  t.same(result, { aToB: up.length, bToA: down.length }, 'counted both ways, no error')
})

t.test('the read meter is told every byte read from either socket', async t => {
  let metered = 0
  const { visitor, service, done } = await joined(t, undefined, bytes => { metered += bytes })
  const atService = collect(service)
  const atVisitor = collect(visitor)
  visitor.end(randomBytes(1024 * 1024 + 3))
  service.end(randomBytes(256 * 1024 + 1))
  await Promise.all([atService, atVisitor])
  const result = await withTimeout(done, { what: 'proxy result' })
  t.equal(metered, result.aToB + result.bToA, 'the meter saw both directions, byte for byte')
})

t.test('a reader that stops stalls its sender without the proxy holding its data', async t => {
  const { visitor, service, a, b, done } = await joined(t)
  service.pause()
  const chunk = Buffer.alloc(64 * 1024, 1)
  let sent = 0
  // Write until the proxy stops reading `a`: the service's and the proxy's kernel buffers are
  // full, and the proxy must leave the rest in the kernel rather than queue it in b's Writable.
  while (!a.isPaused() && sent < 256 * 1024 * 1024) {
    sent += chunk.length
    if (!visitor.write(chunk)) await waitFor(() => a.isPaused() || visitor.writableLength === 0, { what: 'visitor drain or proxy pause' })
  }
  t.ok(a.isPaused(), `the proxy paused its source after ${sent} bytes`)
  t.ok(b.writableLength <= b.writableHighWaterMark + chunk.length, `b holds at most one read past its high-water mark (${b.writableLength} bytes)`)
  t.ok(a.readableLength <= a.readableHighWaterMark + chunk.length, `a's own buffer stays bounded (${a.readableLength} bytes)`)
  // Let it flow again: everything arrives.
  const total = sent
  let got = 0
  service.on('data', (d: Buffer) => { got += d.length })
  service.resume()
  await waitFor(() => got === total, { what: `all ${total} bytes after resume (got ${got})`, timeoutMs: 30_000 })
  visitor.end()
  service.end()
  const result = await withTimeout(done, { what: 'proxy result' })
  t.equal(result.aToB, total)
})

t.test('an abort on one side becomes an RST on the other, and the result carries the error', async t => {
  const { visitor, service, done } = await joined(t)
  visitor.write('hello')
  await nextEvent(service, 'data', { what: 'first bytes' })
  const serviceError = nextEvent<[NodeJS.ErrnoException]>(service, 'error', { what: 'RST at the service' })
  visitor.resetAndDestroy()
  const [err] = await serviceError
  t.equal(err.code, 'ECONNRESET', 'the service sees a reset, not a clean end')
  const result = await withTimeout(done, { what: 'proxy result' })
  t.ok(result.error instanceof Error, 'the abort is reported')
  t.equal(result.aToB, 5)
})

t.test('a side that closes before it ended is an abort, not a clean EOF', async t => {
  const { service, a, done } = await joined(t)
  const serviceError = nextEvent<[NodeJS.ErrnoException]>(service, 'error', { what: 'RST at the service' })
  a.destroy() // no FIN read on a: its read direction never ended
  const result = await withTimeout(done, { what: 'proxy result' })
  t.match(result.error?.message, /closed before it ended/)
  const [err] = await serviceError
  t.equal(err.code, 'ECONNRESET', 'the service sees a reset, not a clean end')
})

t.test('shaping transforms sit in the path each way and are counted before them', async t => {
  const seen = { up: 0, down: 0 }
  const upT = new PassThrough()
  const downT = new PassThrough()
  upT.on('data', (d: Buffer) => { seen.up += d.length })
  downT.on('data', (d: Buffer) => { seen.down += d.length })
  const { visitor, service, done } = await joined(t, { aToB: upT, bToA: downT })
  const up = randomBytes(600_000)
  const down = randomBytes(400_000)
  const atService = collect(service)
  const atVisitor = collect(visitor)
  visitor.end(up)
  service.end(down)
  t.equal(sha(await atService), sha(up))
  t.equal(sha(await atVisitor), sha(down))
  t.same(await withTimeout(done, { what: 'proxy result' }), { aToB: up.length, bToA: down.length })
  t.same(seen, { up: up.length, down: down.length }, 'every byte went through the transforms')
})
