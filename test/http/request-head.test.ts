// RequestHeadParser and rewriteHead: exact bytes written by node:http and undici (fetch)
// captured on a recording front door, every split point, limits, malformed heads → typed
// errors with the status the relay answers, and the X-Forwarded-* rewrite.
import http from 'node:http'
import t from 'tap'
import { BadRequestError, HeadersTooLargeError } from '../../src/errors.js'
import {
  MAX_HEAD_SIZE, MAX_HEADERS, RequestHeadParser, isDnsName, parseHostHeader, parseRequestHead, rewriteHead,
  type RequestHead,
} from '../../src/http/request-head.js'
import { withTimeout } from '../helpers/wait.js'
import { request, startFrontDoor, startUpstream } from '../helpers/http-fixtures.js'

/** All heads in `bytes`, skipping bodies by their framing (Content-Length or chunked, simply). */
function headsOf (bytes: Buffer, split: number[] = []): RequestHead[] {
  const parser = new RequestHeadParser()
  const heads: RequestHead[] = []
  const pieces: Buffer[] = []
  let last = 0
  for (const s of [...split, bytes.length]) { pieces.push(bytes.subarray(last, s)); last = s }
  let pending: Buffer = Buffer.alloc(0)
  let skip = 0
  let chunked = false
  for (const piece of pieces) {
    let rest: Buffer = Buffer.concat([pending, piece])
    pending = Buffer.alloc(0)
    while (rest.length > 0) {
      if (skip > 0) { const n = Math.min(skip, rest.length); skip -= n; rest = rest.subarray(n); continue }
      if (chunked) {
        // test inputs carry small chunked bodies: skip to the terminating 0-chunk
        const end = rest.indexOf('0\r\n\r\n')
        if (end < 0) { pending = rest; break }
        rest = rest.subarray(end + 5)
        chunked = false
        continue
      }
      const r = parser.push(rest)
      if (r === undefined) break
      heads.push(r.head)
      rest = r.rest
      if (r.head.body.kind === 'length') skip = r.head.body.length
      if (r.head.body.kind === 'chunked') chunked = true
    }
  }
  return heads
}

// Capture what real clients write: node:http with a keep-alive agent, and undici's fetch.
const upstream = await startUpstream()
const front = await startFrontDoor(upstream.port)
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
await withTimeout((async () => {
  await request({ port: front.port, path: '/one?x=1', agent, headers: { 'X-Forwarded-For': '6.6.6.6', Forwarded: 'for=6.6.6.6', 'X-Real-IP': '6.6.6.6' } })
  await request({ port: front.port, path: '/upload', method: 'POST', agent, headers: { 'content-length': 11 } }, Buffer.from('hello world'))
  await request({ port: front.port, path: '/chunked', method: 'PUT', agent }, [Buffer.from('abc'), Buffer.from('defgh')])
  await request({ port: front.port, path: '/last', agent, headers: { Host: 'App.Example.TEST:8080' } })
})(), { what: 'node:http requests through the recording front door' })
agent.destroy()
const fetchRes = await withTimeout(fetch(`http://127.0.0.1:${front.port}/fetched`, {
  method: 'POST', body: 'from undici', headers: { 'x-forwarded-proto': 'gopher' },
}), { what: 'fetch through the recording front door' })
await fetchRes.text()
await front.close()
await upstream.close()
const nodeBytes = Buffer.concat(front.captured[0] ?? [])
const fetchBytes = Buffer.concat(front.captured[1] ?? [])

t.test('real node:http keep-alive bytes: four heads, bodies skipped', async t => {
  t.equal(front.captured.length, 2, 'node:http reused one connection; fetch opened another')
  const heads = headsOf(nodeBytes)
  t.same(heads.map(h => `${h.method} ${h.target}`), ['GET /one?x=1', 'POST /upload', 'PUT /chunked', 'GET /last'])
  t.same(heads.map(h => h.body), [{ kind: 'none' }, { kind: 'length', length: 11 }, { kind: 'chunked' }, { kind: 'none' }])
  t.ok(heads.every(h => h.version === '1.1' && h.keepAlive), 'HTTP/1.1 keep-alive')
  t.equal(heads[0]!.host, '127.0.0.1')
  t.equal(heads[0]!.port, front.port)
  t.equal(heads[0]!.authority, `127.0.0.1:${front.port}`)
  t.equal(heads[3]!.host, 'app.example.test', 'lowercased, port stripped')
  t.equal(heads[3]!.port, 8080)
  t.equal(heads[3]!.authority, 'App.Example.TEST:8080', 'authority as sent')
  t.same(heads[0]!.headers.find(h => h[0] === 'X-Forwarded-For'), ['X-Forwarded-For', '6.6.6.6'], 'raw header names and values kept')
  t.equal(heads.reduce((n, h) => n + h.size, 0) + 11 + nodeBytes.toString('latin1').split('PUT /chunked')[1]!.split('\r\n\r\n').slice(1).join('\r\n\r\n').indexOf('0\r\n\r\n') + 5, nodeBytes.length, 'head sizes add up')
})

t.test('real bytes at every split point give the same heads', async t => {
  const whole = JSON.stringify(headsOf(nodeBytes))
  let bad = 0
  for (let cut = 0; cut <= nodeBytes.length; cut++) if (JSON.stringify(headsOf(nodeBytes, [cut])) !== whole) bad++
  t.equal(bad, 0, `${nodeBytes.length + 1} splits`)
  const fetchHeads = headsOf(fetchBytes)
  t.equal(fetchHeads.length, 1, `one head in ${JSON.stringify(fetchBytes.toString('latin1').slice(0, 300))}`)
  t.equal(fetchHeads[0]!.host, '127.0.0.1', 'fetch does not let a caller set Host')
  t.same(fetchHeads[0]!.body, { kind: 'length', length: 11 }, 'undici sends a string body with Content-Length')
  let fetchBad = 0
  for (let cut = 0; cut <= fetchBytes.length; cut++) if (JSON.stringify(headsOf(fetchBytes, [cut])) !== JSON.stringify(fetchHeads)) fetchBad++
  t.equal(fetchBad, 0, 'undici bytes at every split')
})

t.test('one byte at a time, and leading empty lines', async t => {
  const raw = Buffer.from('\r\n\r\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\nNEXT')
  const p = new RequestHeadParser()
  let got
  let i = 0
  for (; i < raw.length && got === undefined; i++) got = p.push(raw.subarray(i, i + 1))
  t.equal(i, raw.length - 4, 'complete exactly at the blank line')
  t.equal(got?.head.host, 'a.example')
  t.equal(got?.head.size, raw.length - 4, 'size counts the skipped empty lines')
  t.ok(p.idle)
  const again = p.push(Buffer.from('GET /2 HTTP/1.0\r\n\r\n'))
  t.equal(again?.head.version, '1.0')
  t.equal(again?.head.host, undefined, 'HTTP/1.0 may omit Host')
  t.equal(again?.head.keepAlive, false, 'HTTP/1.0 closes by default')
})

t.test('head fields: Connection, Upgrade, keep-alive, absolute-form, IPv6 Host', async t => {
  const h = (s: string): RequestHead => parseRequestHead(Buffer.from(s.replace(/\n/g, '\r\n') + '\r\n\r\n', 'latin1'))
  const ws = h('GET /chat HTTP/1.1\nHost: ws.example\nConnection: keep-alive, Upgrade\nUpgrade: websocket')
  t.equal(ws.upgrade, 'websocket')
  t.same(ws.connection, ['keep-alive', 'upgrade'])
  t.equal(h('GET / HTTP/1.1\nHost: a\nUpgrade: websocket').upgrade, undefined, 'Upgrade without Connection: upgrade is ignored')
  t.equal(h('GET / HTTP/1.1\nHost: a\nConnection: close').keepAlive, false)
  t.equal(h('GET / HTTP/1.0\nConnection: Keep-Alive').keepAlive, true)
  const abs = h('GET http://Real.Example:81/p HTTP/1.1\nHost: ignored.example')
  t.equal(abs.host, 'real.example', 'absolute-form wins over Host')
  t.equal(abs.port, 81)
  t.same(parseHostHeader('[::1]:8080'), { host: '::1', port: 8080 })
  t.same(parseHostHeader('[2001:DB8::1]'), { host: '2001:db8::1', port: undefined })
  t.same(parseHostHeader('example.com.'), { host: 'example.com', port: undefined })
  t.same(parseHostHeader('example.com:'), { host: 'example.com', port: undefined })
  t.same(parseHostHeader('127.0.0.1:80'), { host: '127.0.0.1', port: 80 })
  t.same(h('POST / HTTP/1.1\nHost: a\nContent-Length: 5\nContent-Length: 5').body, { kind: 'length', length: 5 }, 'identical repeated Content-Length')
  t.same(h('POST / HTTP/1.1\nHost: a\nContent-Length: 0').body, { kind: 'none' })
  t.same(h('POST / HTTP/1.1\nHost: a\nTransfer-Encoding: gzip, chunked').body, { kind: 'chunked' })
  t.same(h('GET / HTTP/1.1\nHost: a\nX-Empty:\nX-Spaces:   v  ').headers, [['Host', 'a'], ['X-Empty', ''], ['X-Spaces', 'v']])
  t.ok(isDnsName('a-b.c0') && !isDnsName('-a.b') && !isDnsName('a_b') && !isDnsName('a'.repeat(64)) && !isDnsName(''))
})

t.test('malformed heads: BadRequestError (400) with a reason', async t => {
  const bad: Array<[string, RegExp]> = [
    ['GET / HTTP/1.1\r\n\r\n', /missing Host/],
    ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', /more than one Host/],
    ['GET / HTTP/1.1\r\nHost: bad_name\r\n\r\n', /invalid Host/],
    ['GET / HTTP/1.1\r\nHost: -a.example\r\n\r\n', /invalid Host/],
    ['GET / HTTP/1.1\r\nHost: a..b\r\n\r\n', /invalid Host/],
    ['GET / HTTP/1.1\r\nHost: \r\n\r\n', /invalid Host/],
    ['GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n', /invalid port/],
    ['GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n', /invalid port/],
    ['GET / HTTP/1.1\r\nHost: [::1\r\n\r\n', /unterminated IPv6/],
    ['GET / HTTP/1.1\r\nHost: [1.2.3.4]\r\n\r\n', /invalid IPv6/],
    ['GET / HTTP/1.1\r\nHost: ' + 'a'.repeat(64) + '.example\r\n\r\n', /invalid Host/],
    ['GET /\r\n\r\n', /malformed request line/],
    ['GET  / HTTP/1.1\r\nHost: a\r\n\r\n', /malformed request line/],
    ['GET / HTTP/2.0\r\nHost: a\r\n\r\n', /unsupported HTTP version 2.0/],
    ['PRI * HTTP/2.0\r\n\r\n', /unsupported HTTP version/],
    ['G(T / HTTP/1.1\r\nHost: a\r\n\r\n', /invalid method/],
    ['GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n', /invalid request target/],
    ['CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n', /CONNECT is not supported/],
    ['GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n', /obsolete line folding/],
    ['GET / HTTP/1.1\r\nHost : a\r\n\r\n', /invalid header name/],
    ['GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n', /without a name/],
    ['GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n', /without a name/],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', /control character in header X/],
    ['GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n', /bare CR or LF/],
    ['GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n', /bare CR or LF/],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', /both Transfer-Encoding and Content-Length/],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', /does not end with chunked/],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', /more than once/],
    ['POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', /HTTP\/1.0/],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n', /conflicting Content-Length/],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n', /invalid Content-Length/],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999\r\n\r\n', /invalid Content-Length/],
  ]
  for (const [raw, msg] of bad) {
    const p = new RequestHeadParser()
    const err = (() => { try { p.push(Buffer.from(raw, 'latin1')); return undefined } catch (e) { return e } })()
    t.ok(err instanceof BadRequestError, `${JSON.stringify(raw.slice(0, 50))} → BadRequestError`)
    t.match(err, { code: 'MPORT_ERR_BAD_REQUEST', status: 400, message: msg })
  }
})

t.test('limits: 32 KiB head, 100 headers → HeadersTooLargeError (431)', async t => {
  t.equal(MAX_HEAD_SIZE, 32 * 1024)
  t.equal(MAX_HEADERS, 100)
  const line = (i: number): string => `X-H${i}: ${'v'.repeat(10)}\r\n`
  const exact = (n: number): Buffer => Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n' + Array.from({ length: n - 1 }, (_, i) => line(i)).join('') + '\r\n')
  t.equal(new RequestHeadParser().push(exact(100))?.head.headers.length, 100, '100 headers pass')
  t.throws(() => new RequestHeadParser().push(exact(101)), { code: 'MPORT_ERR_HEADERS_TOO_LARGE', status: 431 })
  // exactly at the size limit passes; one byte more fails, also when fed in pieces
  const prefix = 'GET / HTTP/1.1\r\nHost: a\r\nX-Pad: '
  const fill = MAX_HEAD_SIZE - prefix.length - 4
  t.ok(new RequestHeadParser().push(Buffer.from(prefix + 'p'.repeat(fill) + '\r\n\r\n')), 'a head of exactly 32 KiB')
  const over = Buffer.from(prefix + 'p'.repeat(fill + 1) + '\r\n\r\n')
  const p = new RequestHeadParser()
  let err: unknown
  for (let off = 0; off < over.length && err === undefined; off += 1000) {
    try { p.push(over.subarray(off, off + 1000)) } catch (e) { err = e }
  }
  t.ok(err instanceof HeadersTooLargeError, 'one byte over fails')
  t.ok(p.buffered <= MAX_HEAD_SIZE, 'never holds more than the limit')
  // a head that never ends fails as soon as it passes the limit, without waiting for CRLFCRLF
  const endless = new RequestHeadParser()
  t.throws(() => endless.push(Buffer.alloc(MAX_HEAD_SIZE + 1, 'a')), HeadersTooLargeError)
  t.throws(() => new RequestHeadParser().push(Buffer.alloc(MAX_HEAD_SIZE + 1, '\n')), HeadersTooLargeError, 'endless blank lines')
  t.throws(() => new RequestHeadParser({ maxHeadSize: 64 }).push(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX: ' + 'v'.repeat(64) + '\r\n\r\n')), HeadersTooLargeError, 'configurable')
})

t.test('rewriteHead: drops client-supplied forwarding headers, adds the relay\'s', async t => {
  const head = headsOf(nodeBytes)[0]!
  const out = rewriteHead(head, { forwardedFor: '::ffff:203.0.113.9', proto: 'https' }).toString('latin1')
  t.match(out, /^GET \/one\?x=1 HTTP\/1\.1\r\n/)
  t.notMatch(out, /6\.6\.6\.6/, 'forged X-Forwarded-For, Forwarded and X-Real-IP are gone')
  t.match(out, /\r\nX-Forwarded-For: 203\.0\.113\.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: 127\.0\.0\.1:\d+\r\n\r\n$/)
  t.equal(out.match(/^x-forwarded-for:/gim)?.length, 1)
  // every other header is kept byte for byte, in order
  const kept = head.headers.filter(([n]) => !/^(x-forwarded-|forwarded$|x-real-ip$)/i.test(n)).map(([n, v]) => `${n}: ${v}\r\n`).join('')
  t.ok(out.includes(kept), 'other headers unchanged and in order')
  const fetchHead = headsOf(fetchBytes)[0]!
  const out2 = rewriteHead(fetchHead, { forwardedFor: '2001:db8::1', proto: 'http', host: 'override.example' }).toString('latin1')
  t.notMatch(out2, /gopher/)
  t.match(out2, /X-Forwarded-For: 2001:db8::1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: override\.example\r\n\r\n$/)
  const h10 = parseRequestHead(Buffer.from('GET / HTTP/1.0\r\n\r\n'))
  t.equal(rewriteHead(h10, { forwardedFor: '1.2.3.4', proto: 'http' }).toString(), 'GET / HTTP/1.0\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: http\r\n\r\n', 'no Host, no X-Forwarded-Host')
  const latin = parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-Bytes: caf\xe9\xff\r\n\r\n', 'latin1'))
  t.ok(rewriteHead(latin, { forwardedFor: '1.2.3.4', proto: 'http' }).includes(Buffer.from('X-Bytes: caf\xe9\xff\r\n', 'latin1')), 'non-ASCII header bytes pass unchanged')
  t.throws(() => rewriteHead(h10, { forwardedFor: 'not-an-ip', proto: 'http' }), TypeError)
  t.throws(() => rewriteHead(h10, { forwardedFor: '1.2.3.4', proto: 'ftp' as 'http' }), TypeError)
  t.throws(() => rewriteHead(h10, { forwardedFor: '1.2.3.4', proto: 'http', host: 'a\r\nX-Evil: 1' }), TypeError, 'no header injection through host')
})
