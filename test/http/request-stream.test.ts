// HttpRequestStream between real clients (node:http, undici fetch) and a real node:http server:
// every request head on a keep-alive connection rewritten, chunked and Content-Length bodies
// streamed byte-exact, 100 MiB through it with bounded buffering, Upgrade → raw bytes, the
// confirm mode, refusals from onRequest, and chunked framing at every split point.
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import type net from 'node:net'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { BadRequestError } from '../../src/errors.js'
import { HttpRequestStream, MAX_CHUNK_LINE } from '../../src/http/request-stream.js'
import { MAX_HEAD_SIZE } from '../../src/http/request-head.js'
import { mulberry32, randInt } from '../helpers/naive-codec.js'
import { withTimeout } from '../helpers/wait.js'
import { request, startFrontDoor, startUpstream } from '../helpers/http-fixtures.js'

const MiB = 1024 * 1024

/** Runs `input` pieces through a fresh HttpRequestStream; resolves with the output bytes. */
async function through (pieces: Buffer[], opts: Partial<ConstructorParameters<typeof HttpRequestStream>[0]> = {}): Promise<Buffer> {
  const s = new HttpRequestStream({ forwardedFor: '10.0.0.1', proto: 'http', ...opts })
  const out: Buffer[] = []
  s.on('data', (d: Buffer) => out.push(d))
  await pipeline(Readable.from(pieces), s)
  return Buffer.concat(out)
}

const FWD = 'X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n'

t.test('keep-alive: every request on one connection is rewritten, forged headers dropped', async t => {
  const upstream = await startUpstream()
  const streams: HttpRequestStream[] = []
  const front = await startFrontDoor(upstream.port, (v: net.Socket) => {
    const s = new HttpRequestStream({ forwardedFor: v.remoteAddress!, proto: 'https' })
    streams.push(s)
    return s
  })
  t.teardown(async () => { await front.close(); await upstream.close() })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const forged = { 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Host': 'evil.example', Forwarded: 'for=6.6.6.6' }
  const results = await withTimeout((async () => {
    const r = []
    for (let i = 0; i < 5; i++) r.push(await request({ port: front.port, path: `/r${i}`, agent, headers: forged }))
    r.push(await request({ port: front.port, path: '/post', method: 'POST', agent, headers: { ...forged, 'content-length': 5 } }, Buffer.from('12345')))
    r.push(await request({ port: front.port, path: '/chunked', method: 'POST', agent, headers: forged }, [Buffer.from('ab'), Buffer.from('cde')]))
    r.push(await request({ port: front.port, path: '/after', agent, headers: forged }))
    return r
  })(), { what: 'eight keep-alive requests' })
  t.equal(front.captured.length, 1, 'one visitor connection')
  t.equal(upstream.connections, 1, 'one upstream connection')
  t.equal(streams[0]?.requests, 8)
  for (const r of results) {
    t.equal(r.status, 200)
    t.equal(r.json?.headers['x-forwarded-for'], '127.0.0.1', `${r.json?.url}: XFF is the visitor (IPv4-mapped folded)`)
    t.equal(r.json?.headers['x-forwarded-proto'], 'https')
    t.equal(r.json?.headers['x-forwarded-host'], `127.0.0.1:${front.port}`)
    t.equal(r.json?.headers.forwarded, undefined)
  }
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
  t.equal(results[5]?.json?.bodySha256, sha('12345'))
  t.equal(results[6]?.json?.bodySha256, sha('abcde'))
  t.equal(results[6]?.json?.headers['transfer-encoding'], 'chunked')
  t.same(front.errors, [])
})

t.test('undici fetch with a streamed body through the stream', async t => {
  const upstream = await startUpstream()
  const front = await startFrontDoor(upstream.port, (v: net.Socket) => new HttpRequestStream({ forwardedFor: v.remoteAddress!, proto: 'http' }))
  t.teardown(async () => { await front.close(); await upstream.close() })
  const parts = Array.from({ length: 20 }, (_, i) => Buffer.alloc(10_000 + i, i))
  const hash = createHash('sha256')
  for (const p of parts) hash.update(p)
  const body = new ReadableStream<Uint8Array>({
    start (c) { for (const p of parts) c.enqueue(new Uint8Array(p)); c.close() },
  })
  const res = await withTimeout(fetch(`http://127.0.0.1:${front.port}/fetch`, { method: 'PUT', body, duplex: 'half' } as RequestInit), { what: 'fetch' })
  const json = await res.json() as { bodySha256: string, bodyLength: number, headers: Record<string, string> }
  t.equal(json.bodyLength, parts.reduce((n, p) => n + p.length, 0))
  t.equal(json.bodySha256, hash.digest('hex'))
  t.equal(json.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(json.headers['transfer-encoding'], 'chunked', 'undici streams a chunked body')
})

t.test('100 MiB upload through real sockets: checksum matches, buffering stays bounded', async t => {
  const upstream = await startUpstream()
  let stream: HttpRequestStream | undefined
  let maxQueued = 0
  const front = await startFrontDoor(upstream.port, (v: net.Socket) => {
    stream = new HttpRequestStream({ forwardedFor: v.remoteAddress!, proto: 'http' })
    stream.on('data', () => { maxQueued = Math.max(maxQueued, stream!.writableLength + stream!.readableLength) })
    return stream
  })
  t.teardown(async () => { await front.close(); await upstream.close() })
  for (const mode of ['content-length', 'chunked'] as const) {
    const total = 100 * MiB
    const piece = Buffer.alloc(64 * 1024)
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 31 + 7) & 0xff
    const hash = createHash('sha256')
    const heapBefore = process.memoryUsage().heapUsed
    const headers = mode === 'content-length' ? { 'content-length': total } : {}
    const res = await withTimeout(new Promise<{ bodySha256: string, bodyLength: number }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: front.port, method: 'POST', path: `/big-${mode}`, headers, agent: false }, r => {
        const c: Buffer[] = []
        r.on('data', (d: Buffer) => c.push(d))
        r.on('end', () => resolve(JSON.parse(Buffer.concat(c).toString()) as { bodySha256: string, bodyLength: number }))
      })
      req.on('error', reject)
      let sent = 0
      const pump = (): void => {
        while (sent < total) {
          const p = piece.subarray(0, Math.min(piece.length, total - sent))
          p[0] = sent / piece.length & 0xff // vary the content per piece
          hash.update(p)
          sent += p.length
          if (!req.write(p)) return void req.once('drain', pump)
        }
        req.end()
      }
      pump()
    }), { timeoutMs: 120_000, what: `100 MiB ${mode} upload` })
    const heapAfter = process.memoryUsage().heapUsed
    t.equal(res.bodyLength, total, `${mode}: all bytes arrived`)
    t.equal(res.bodySha256, hash.digest('hex'), `${mode}: checksum`)
    t.ok(stream !== undefined && stream.maxHeld <= MAX_HEAD_SIZE, `${mode}: held at most one head itself (${stream?.maxHeld} bytes)`)
    t.ok(maxQueued <= 4 * MiB, `${mode}: at most ${maxQueued} bytes queued in the stream`)
    t.ok(heapAfter - heapBefore < 64 * MiB, `${mode}: heap grew by ${Math.round((heapAfter - heapBefore) / MiB)} MiB, far less than the body`)
  }
})

t.test('100 MiB chunked body in process, slow consumer: the stream never runs ahead', async t => {
  const s = new HttpRequestStream({ forwardedFor: '10.0.0.1', proto: 'http' })
  const rand = mulberry32(7)
  const inHash = createHash('sha256')
  const outHash = createHash('sha256')
  let maxBuffered = 0
  let bodyBytes = 0
  const head = Buffer.from('POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n')
  async function * source (): AsyncGenerator<Buffer> {
    yield head
    const data = Buffer.alloc(256 * 1024)
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff
    while (bodyBytes < 100 * MiB) {
      const n = randInt(rand, 1, data.length)
      const frame = Buffer.concat([Buffer.from(n.toString(16) + '\r\n'), data.subarray(0, n), Buffer.from('\r\n')])
      inHash.update(frame)
      bodyBytes += n
      // split frames at random points so framing lines straddle chunks
      const cut = randInt(rand, 0, frame.length)
      yield frame.subarray(0, cut)
      yield frame.subarray(cut)
      maxBuffered = Math.max(maxBuffered, s.writableLength + s.readableLength)
    }
    const end = Buffer.from('0\r\nX-Trailer: yes\r\n\r\n')
    inHash.update(end)
    yield end
  }
  let seenHead = false
  let outHead = Buffer.alloc(0)
  const sink = new Writable({
    highWaterMark: 16 * 1024,
    write (chunk: Buffer, _e, cb) {
      if (!seenHead) {
        outHead = Buffer.concat([outHead, chunk])
        const end = outHead.indexOf('\r\n\r\n')
        if (end < 0) return void cb()
        seenHead = true
        outHash.update(outHead.subarray(end + 4))
      } else {
        outHash.update(chunk)
      }
      setImmediate(cb) // a slow reader
    },
  })
  await withTimeout(pipeline(source(), s, sink), { timeoutMs: 120_000, what: '100 MiB in-process pipeline' })
  t.equal(outHash.digest('hex'), inHash.digest('hex'), 'chunk framing and data forwarded byte for byte')
  t.match(outHead.toString(), /X-Forwarded-For: 10\.0\.0\.1/)
  t.ok(maxBuffered <= 2 * MiB, `stream buffers stayed at ${maxBuffered} bytes`)
  t.ok(s.maxHeld <= MAX_CHUNK_LINE + MAX_HEAD_SIZE, `held ${s.maxHeld} bytes of framing`)
  t.equal(s.state, 'head', 'ready for the next request')
})

t.test('Upgrade: websocket echo of raw bytes after the head (which must not be rewritten)', async t => {
  const upstream = await startUpstream()
  const streams: HttpRequestStream[] = []
  const front = await startFrontDoor(upstream.port, (v: net.Socket) => {
    const s = new HttpRequestStream({ forwardedFor: v.remoteAddress!, proto: 'http' })
    streams.push(s)
    return s
  })
  t.teardown(async () => { await front.close(); await upstream.close() })
  const req = http.request({
    host: '127.0.0.1', port: front.port, path: '/ws',
    headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'X-Forwarded-For': '6.6.6.6' },
  })
  req.end()
  const [res, socket] = await withTimeout(once(req, 'upgrade'), { what: '101 response' }) as [http.IncomingMessage, net.Socket]
  t.teardown(() => socket.destroy())
  t.equal(res.statusCode, 101)
  // bytes that look like an HTTP request with a forged header must pass raw
  const payload = Buffer.concat([
    Buffer.from('GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n'),
    Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0, 0xff, 0x0d, 0x0a]),
  ])
  const echoed: Buffer[] = []
  let got = 0
  const done = new Promise<void>(resolve => socket.on('data', (d: Buffer) => { echoed.push(d); got += d.length; if (got >= payload.length) resolve() }))
  socket.write(payload)
  await withTimeout(done, { what: 'echo of raw bytes' })
  t.ok(Buffer.concat(echoed).equals(payload), 'echoed unchanged')
  t.equal(streams[0]?.state, 'raw')
  t.equal(streams[0]?.requests, 1, 'the smuggled head was not parsed')
  t.equal(upstream.seen[0]?.headers['x-forwarded-for'], '127.0.0.1', 'the upgrade request itself was rewritten')
})

t.test('confirm mode: paused after an Upgrade request until settled', async t => {
  const upgradeReq = 'GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'
  const next = 'GET /next HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n'
  for (const accepted of [true, false]) {
    const s = new HttpRequestStream({ forwardedFor: '10.0.0.1', proto: 'http', upgrades: 'confirm' })
    const out: Buffer[] = []
    s.on('data', (d: Buffer) => out.push(d))
    s.write(Buffer.from(upgradeReq + next))
    await new Promise(resolve => setImmediate(resolve))
    t.equal(s.state, 'upgrade-wait')
    t.equal(Buffer.concat(out).toString(), upgradeReq.replace('\r\n\r\n', '\r\n' + FWD + 'X-Forwarded-Host: a.example\r\n\r\n'), 'only the upgrade request went out')
    s.settleUpgrade(accepted)
    s.end()
    await withTimeout(once(s, 'end'), { what: 'end' })
    const text = Buffer.concat(out).toString()
    if (accepted) t.ok(text.endsWith(next), 'accepted: the rest passes raw')
    else t.ok(text.endsWith('GET /next HTTP/1.1\r\nHost: a.example\r\n' + FWD + 'X-Forwarded-Host: a.example\r\n\r\n'), 'refused: the next request is rewritten')
    t.throws(() => s.settleUpgrade(true), /not after an Upgrade request/)
  }
})

t.test('onRequest sees every head and can refuse one', async t => {
  const hosts: string[] = []
  const s = new HttpRequestStream({
    forwardedFor: '10.0.0.1',
    proto: 'http',
    onRequest: h => {
      hosts.push(h.host ?? '')
      if (h.host !== 'mine.example') throw new BadRequestError(`host ${h.host} is not this tunnel`)
    },
  })
  const out: Buffer[] = []
  s.on('data', (d: Buffer) => out.push(d))
  s.write(Buffer.from('GET / HTTP/1.1\r\nHost: mine.example\r\n\r\nGET / HTTP/1.1\r\nHost: other.example\r\n\r\n'))
  const [err] = await withTimeout(once(s, 'error').catch((e: unknown) => [e]), { what: 'error' }) as [Error]
  t.match(err, { code: 'MPORT_ERR_BAD_REQUEST', status: 400, message: /other\.example/ })
  t.same(hosts, ['mine.example', 'other.example'])
  t.equal(s.requests, 1, 'the refused head was not forwarded')
  t.notMatch(Buffer.concat(out).toString(), /other\.example/)
})

t.test('chunked framing: extensions, trailers, every split point, errors', async t => {
  const head = 'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'
  const body = '5;ext=1\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n'
  const follow = 'GET /after HTTP/1.1\r\nHost: a\r\n\r\n'
  const input = Buffer.from(head + body + follow)
  const expected = (head.replace('\r\n\r\n', '\r\n' + FWD + 'X-Forwarded-Host: a\r\n\r\n') + body +
    follow.replace('\r\n\r\n', '\r\n' + FWD + 'X-Forwarded-Host: a\r\n\r\n'))
  let bad = 0
  for (let cut = 0; cut <= input.length; cut++) {
    for (const cut2 of [cut, Math.min(input.length, cut + 3)]) {
      const out = await through([input.subarray(0, cut), input.subarray(cut, cut2), input.subarray(cut2)])
      if (out.toString() !== expected) bad++
    }
  }
  t.equal(bad, 0, `all ${2 * (input.length + 1)} splits give the same bytes`)
  const errs: Array<[string, RegExp]> = [
    ['zz\r\n', /invalid chunk-size line/],
    ['5\r\nhelloXX', /not followed by CRLF/],
    ['5\nhello\r\n', /bare LF/],
    ['12345678901234\r\n', /invalid chunk-size/],
    ['-1\r\n', /invalid chunk-size/],
    [' 5\r\n', /invalid chunk-size/],
    ['0\r\nBad Trailer\r\n\r\n', /invalid trailer/],
    ['1' + ';'.repeat(MAX_CHUNK_LINE) + '\r\n', /longer than 4096/],
  ]
  for (const [b, msg] of errs) {
    await t.rejects(through([Buffer.from(head + b)]), { code: 'MPORT_ERR_BAD_REQUEST', message: msg }, JSON.stringify(b.slice(0, 20)))
  }
  await t.rejects(through([Buffer.from(head + '0\r\n' + ('X-T: ' + 'v'.repeat(100) + '\r\n').repeat(400))]), { code: 'MPORT_ERR_HEADERS_TOO_LARGE' }, 'trailers are bounded')
})

t.test('Content-Length bodies that look like requests are not parsed', async t => {
  const smuggle = 'GET /evil HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n'
  const input = `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${smuggle.length}\r\n\r\n${smuggle}GET /2 HTTP/1.1\r\nHost: a\r\n\r\n`
  const out = (await through([Buffer.from(input)])).toString()
  t.ok(out.includes(smuggle), 'the body passes untouched')
  t.equal(out.match(/X-Forwarded-For: 10\.0\.0\.1/g)?.length, 2, 'two real requests rewritten')
})

t.test('seeded random request sequences at random splits round-trip', async t => {
  const rand = mulberry32(42)
  for (let round = 0; round < 200; round++) {
    let input = ''
    let expected = ''
    const n = randInt(rand, 1, 5)
    for (let i = 0; i < n; i++) {
      const kind = randInt(rand, 0, 2)
      const bodyText = 'x'.repeat(randInt(rand, 1, 40))
      const h = kind === 0
        ? `GET /${i} HTTP/1.1\r\nHost: h${i}.example\r\nX-Real-IP: 9.9.9.9\r\n\r\n`
        : kind === 1
          ? `PUT /${i} HTTP/1.1\r\nHost: h${i}.example\r\nContent-Length: ${bodyText.length}\r\n\r\n`
          : `PUT /${i} HTTP/1.1\r\nHost: h${i}.example\r\nTransfer-Encoding: chunked\r\n\r\n`
      const b = kind === 0 ? '' : kind === 1 ? bodyText : `${bodyText.length.toString(16)}\r\n${bodyText}\r\n0\r\n\r\n`
      input += h + b
      expected += h.replace('X-Real-IP: 9.9.9.9\r\n', '').replace(/\r\n\r\n$/, `\r\n${FWD}X-Forwarded-Host: h${i}.example\r\n\r\n`) + b
    }
    const bytes = Buffer.from(input)
    const cuts = Array.from({ length: randInt(rand, 0, 6) }, () => randInt(rand, 0, bytes.length)).sort((a, b) => a - b)
    const pieces: Buffer[] = []
    let last = 0
    for (const c of [...cuts, bytes.length]) { pieces.push(bytes.subarray(last, c)); last = c }
    const out = (await through(pieces)).toString()
    if (out !== expected) {
      t.equal(out, expected, `round ${round}`)
      break
    }
  }
  t.pass('200 sequences')
})
