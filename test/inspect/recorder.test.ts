/**
 * The recorder on literal HTTP/1.1 bytes, fed through a tap split at every byte offset and in
 * seeded random chunks: keep-alive, Content-Length, chunked, HEAD, 1xx, 204, until-close,
 * Upgrade with WebSocket frames, a declined upgrade, a parse failure, bodies over the cap, and
 * the ring's bounds. The real-traffic tests are in inspect-api.test.ts.
 */
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { Inspector } from '../../packages/mport-connect/src/inspect/inspector.js'
import type { Exchange } from '../../packages/mport-connect/src/inspect/exchange.js'
import { ManualClock } from '../helpers/manual-clock.js'

interface Tap { visitor: PassThrough, local: PassThrough }

function tapped (inspector: Inspector): Tap {
  const visitor = new PassThrough()
  const local = new PassThrough()
  inspector.tap({ info: { tunnel: 'web', remoteAddress: '127.0.0.1', remotePort: 5000 }, local: '127.0.0.1:3000', fromVisitor: visitor, fromLocal: local })
  // Something must consume the streams, as the proxy does.
  visitor.resume()
  local.resume()
  return { visitor, local }
}

/** Writes `bytes` in the given chunk sizes (cycled). */
function writeSplit (s: PassThrough, bytes: Buffer, sizes: number[]): void {
  let off = 0
  let i = 0
  while (off < bytes.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]!)
    s.write(bytes.subarray(off, off + n))
    off += n
  }
}

const flush = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

const REQUESTS = Buffer.from([
  'POST /api/items?x=1 HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"name":"ab"}',
  'PUT /upload HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n',
  'HEAD /head HTTP/1.1\r\nHost: a.test\r\n\r\n',
  'GET /empty HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\n\r\n',
  'GET /last HTTP/1.1\r\nHost: a.test\r\n\r\n',
].join(''))
const RESPONSES = Buffer.from([
  'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"id":7}',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
  'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end',
].join(''))

function checkKeepAlive (t: Test, list: Exchange[]): void {
  const byUrl = new Map(list.map(e => [e.request.url, e]))
  t.equal(list.length, 5, 'five exchanges')
  const post = byUrl.get('/api/items?x=1')!
  t.equal(post.request.method, 'POST')
  t.same(post.request.headers.find(h => h[0] === 'Content-Type'), ['Content-Type', 'application/json'])
  t.equal(post.request.body.bytes().toString(), '{"name":"ab"}')
  t.equal(post.response?.status, 201)
  t.equal(post.response?.body.bytes().toString(), '{"id":7}')
  const put = byUrl.get('/upload')!
  t.equal(put.request.body.bytes().toString(), 'hello world', 'chunked request body decoded')
  t.equal(put.response?.body.bytes().toString(), 'abc')
  const head = byUrl.get('/head')!
  t.equal(head.response?.status, 200)
  t.equal(head.response?.body.size, 0, 'a response to HEAD has no body despite its Content-Length')
  t.equal(byUrl.get('/empty')!.response?.status, 204, 'the final response after 100 Continue')
  const last = byUrl.get('/last')!
  t.equal(last.response?.body.bytes().toString(), 'until the end', 'a body read until the connection closed')
  for (const e of list) {
    t.equal(e.state, 'complete', `${e.request.url} complete`)
    t.equal(e.connection, list[0]!.connection, 'one connection')
  }
}

t.test('keep-alive exchanges, split at every offset', async t => {
  for (let split = 1; split <= 40; split++) {
    const inspector = new Inspector()
    const { visitor, local } = tapped(inspector)
    writeSplit(visitor, REQUESTS, [split])
    visitor.end()
    writeSplit(local, RESPONSES, [split])
    local.end()
    await flush()
    if (split === 1 || split === 40) t.test(`split ${split}`, async t => checkKeepAlive(t, inspector.list().reverse()))
    else t.equal(inspector.list().filter(e => e.state === 'complete').length, 5, `split ${split}: five complete`)
  }
})

t.test('seeded random chunking', async t => {
  let seed = 42
  const rand = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff }
  for (let round = 0; round < 50; round++) {
    const inspector = new Inspector()
    const { visitor, local } = tapped(inspector)
    const sizes = Array.from({ length: 20 }, () => 1 + Math.floor(rand() * 64))
    writeSplit(visitor, REQUESTS, sizes)
    visitor.end()
    writeSplit(local, RESPONSES, sizes.reverse())
    local.end()
    await flush()
    const complete = inspector.list().filter(e => e.state === 'complete')
    t.equal(complete.length, 5, `round ${round}`)
    t.equal(complete.find(e => e.request.url === '/upload')?.request.body.bytes().toString(), 'hello world')
  }
})

t.test('times from the injected clock: start ≤ request end ≤ first byte ≤ end', async t => {
  const clock = new ManualClock(10_000)
  const inspector = new Inspector({ now: clock.now })
  const { visitor, local } = tapped(inspector)
  visitor.write('POST /t HTTP/1.1\r\nContent-Length: 4\r\n\r\nab')
  await flush()
  clock.advance(5)
  visitor.write('cd')
  await flush()
  clock.advance(20)
  local.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no')
  await flush()
  clock.advance(7)
  local.write('k')
  await flush()
  const [e] = inspector.list()
  t.same(e!.times, { start: 10_000, requestEnd: 10_005, firstByte: 10_025, end: 10_032 })
  t.equal(e!.startedAt, 10_000)
})

t.test('bodies over the cap are counted, not kept', async t => {
  const inspector = new Inspector({ bodyLimit: 100 })
  const { visitor, local } = tapped(inspector)
  const body = Buffer.alloc(1000, 0x61)
  visitor.write(`POST /big HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`)
  writeSplit(visitor, body, [33])
  local.write('HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n')
  writeSplit(local, Buffer.alloc(3000, 0x62), [700])
  await flush()
  const [e] = inspector.list()
  t.equal(e!.request.body.size, 1000)
  t.equal(e!.request.body.kept, 100)
  t.ok(e!.request.body.truncated)
  t.equal(e!.response!.body.size, 3000)
  t.equal(e!.response!.body.bytes().length, 100)
  t.equal(e!.state, 'complete')
})

function wsFrame (opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length
  const ext = len < 126 ? Buffer.alloc(0) : len < 65536 ? Buffer.alloc(2) : Buffer.alloc(8)
  if (len >= 126 && len < 65536) ext.writeUInt16BE(len)
  if (len >= 65536) ext.writeBigUInt64BE(BigInt(len))
  const b1 = (mask ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127)
  return Buffer.concat([Buffer.from([0x80 | opcode, b1]), ext, mask ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0), payload])
}

t.test('WebSocket upgrade: frames summarised both ways, split at every offset', async t => {
  const upgradeReq = Buffer.from('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n')
  const framesIn = Buffer.concat([wsFrame(1, Buffer.from('hi'), true), wsFrame(2, Buffer.alloc(300), true), wsFrame(9, Buffer.alloc(0), true)])
  const framesOut = Buffer.concat([wsFrame(1, Buffer.from('hello'), false), wsFrame(2, Buffer.alloc(70_000), false), wsFrame(8, Buffer.from([3, 232]), false)])
  for (const split of [1, 2, 3, 7, 13, 100, 5000]) {
    const inspector = new Inspector()
    const { visitor, local } = tapped(inspector)
    // Frames sent before the 101 arrives are held until it does.
    writeSplit(visitor, Buffer.concat([upgradeReq, framesIn]), [split])
    await flush()
    writeSplit(local, Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'), framesOut]), [split])
    await flush()
    const e = inspector.list()[0]!
    t.equal(e.state, 'upgraded', `split ${split}: upgraded`)
    t.same(e.websocket && { fi: e.websocket.framesIn, fo: e.websocket.framesOut, bi: e.websocket.bytesIn, bo: e.websocket.bytesOut }, { fi: 3, fo: 3, bi: 302, bo: 70_007 }, `split ${split}: frames`)
    t.same(e.websocket!.recent.map(f => `${f.direction} ${f.opcode} ${f.length} ${f.masked ? 'm' : ''}`),
      ['in text 2 m', 'in binary 300 m', 'in ping 0 m', 'out text 5 ', 'out binary 70000 ', 'out close 2 '], `split ${split}: frame list`)
  }
})

t.test('a declined upgrade: the held bytes are the next request', async t => {
  const inspector = new Inspector()
  const { visitor, local } = tapped(inspector)
  visitor.write('GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /next HTTP/1.1\r\n\r\n')
  await flush()
  local.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nnoHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await flush()
  const list = inspector.list().reverse()
  t.same(list.map(e => [e.request.url, e.response?.status, e.state]), [['/ws', 400, 'complete'], ['/next', 200, 'complete']])
})

t.test('bytes that are not HTTP stop recording that connection only', async t => {
  const inspector = new Inspector()
  const bad = tapped(inspector)
  const good = tapped(inspector)
  bad.visitor.write('GET /ok HTTP/1.1\r\n\r\n')
  await flush()
  bad.local.write('HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n')
  good.visitor.write('GET /other HTTP/1.1\r\n\r\n')
  good.local.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
  await flush()
  bad.visitor.write('GET /after HTTP/1.1\r\n\r\n') // not recorded: the connection was given up
  await flush()
  const byUrl = new Map(inspector.list().map(e => [e.request.url, e]))
  t.equal(byUrl.get('/ok')?.state, 'unparsed')
  t.match(byUrl.get('/ok')?.error, /Content-Length/)
  t.equal(byUrl.get('/other')?.state, 'complete')
  t.notOk(byUrl.has('/after'))
  // The tapped stream still flows: the recorder only listened.
  t.equal(bad.visitor.readableFlowing, true)
})

t.test('a connection closed before the response ended: aborted', async t => {
  const inspector = new Inspector()
  const { visitor, local } = tapped(inspector)
  visitor.write('GET /slow HTTP/1.1\r\n\r\n')
  local.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
  await flush()
  local.destroy()
  visitor.destroy()
  await flush()
  const [e] = inspector.list()
  t.equal(e!.state, 'aborted')
  t.equal(e!.response?.body.size, 3)
})

t.test('the ring stays within its count and byte bounds', async t => {
  const inspector = new Inspector({ maxExchanges: 50, maxBytes: 3 * 1024 * 1024, bodyLimit: 1024 * 1024 })
  const { visitor, local } = tapped(inspector)
  let maxCount = 0
  let maxBytes = 0
  inspector.on('exchange', () => {
    maxCount = Math.max(maxCount, inspector.usage.exchanges)
    maxBytes = Math.max(maxBytes, inspector.usage.bytes)
  })
  for (let i = 0; i < 300; i++) {
    const size = i % 10 === 0 ? 1024 * 1024 + 17 : 100
    visitor.write(`POST /n/${i} HTTP/1.1\r\nContent-Length: ${size}\r\n\r\n`)
    visitor.write(Buffer.alloc(size, 1))
    local.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`)
    local.write(Buffer.alloc(size, 2))
    if (i % 20 === 0) await flush()
  }
  await flush()
  t.ok(maxCount <= 50, `at most 50 exchanges (saw ${maxCount})`)
  t.ok(maxBytes <= 3 * 1024 * 1024, `at most 3 MiB (saw ${maxBytes})`)
  t.equal(inspector.list()[0]!.request.url, '/n/299', 'the newest kept')
  t.equal(inspector.list()[0]!.id, 300)
})

t.test('pipelined requests without responses are bounded per connection', async t => {
  const inspector = new Inspector({ maxExchanges: 5000 })
  const { visitor } = tapped(inspector)
  visitor.write(Buffer.from('GET /p HTTP/1.1\r\n\r\n'.repeat(1001)))
  await flush()
  const list = inspector.list()
  t.equal(list.length, 1000, 'the first 1000 recorded')
  t.ok(list.every(e => e.state === 'unparsed'), 'then the connection is given up')
  t.match(list[0]!.error, /over 1000 pipelined requests waiting for responses/)
  t.equal(visitor.readableFlowing, true, 'the bytes still flow')
})
