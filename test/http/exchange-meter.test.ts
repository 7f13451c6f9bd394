/**
 * ExchangeMeter on literal HTTP/1.1 bytes, fed whole and split at every byte: keep-alive and
 * pipelined requests paired with their responses, Content-Length, chunked, HEAD, 204, an
 * interim 100, a close-delimited body, the query string dropped, an upgrade ending the
 * metering, and bytes that are not HTTP stopping it quietly.
 */
import t from 'tap'
import { ExchangeMeter, type ExchangeRecord } from '../../src/http.js'

const b = (s: string): Buffer => Buffer.from(s.replace(/\n/g, '\r\n'))

/** Runs a conversation through a meter, `split` bytes at a time (0: whole), on a clock that ticks 5 ms per push. */
function meter (steps: Array<['v' | 's' | 'end', string]>, split = 0): ExchangeRecord[] {
  const out: ExchangeRecord[] = []
  let now = 1000
  const m = new ExchangeMeter(r => out.push(r), () => (now += 5))
  for (const [dir, text] of steps) {
    if (dir === 'end') { m.serviceEnded(); continue }
    const bytes = b(text)
    const pieces = split === 0 ? [bytes] : Array.from({ length: Math.ceil(bytes.length / split) }, (_, i) => bytes.subarray(i * split, (i + 1) * split))
    for (const p of pieces) {
      if (dir === 'v') m.fromVisitor(p)
      else m.fromService(p)
    }
  }
  return out
}

const simplified = (rs: ExchangeRecord[]): unknown => rs.map(r => [r.method, r.path, r.status, r.requestBytes, r.responseBytes])

t.test('keep-alive, pipelining, framings', async t => {
  const steps: Array<['v' | 's' | 'end', string]> = [
    ['v', 'GET /a?token=secret HTTP/1.1\nHost: x\n\nPOST /b HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello'],
    ['s', 'HTTP/1.1 200 OK\nContent-Length: 3\n\nabcHTTP/1.1 201 Created\nTransfer-Encoding: chunked\n\n4\nwxyz\n0\n\n'],
    ['v', 'HEAD /c HTTP/1.1\nHost: x\n\n'],
    ['s', 'HTTP/1.1 200 OK\nContent-Length: 999\n\n'],
    ['v', 'PUT /d HTTP/1.1\nHost: x\nExpect: 100-continue\nContent-Length: 2\n\nok'],
    ['s', 'HTTP/1.1 100 Continue\n\nHTTP/1.1 204 No Content\n\n'],
    ['v', 'GET /e HTTP/1.1\nHost: x\n\n'],
    ['s', 'HTTP/1.0 200 OK\n\nuntil the end'],
    ['end', ''],
  ]
  const expected = [
    // Request: head + body as sent. Response: head(s, an interim 100 included) + body payload.
    ['GET', '/a', 200, 41, 41], ['POST', '/b', 201, 53, 56], ['HEAD', '/c', 200, 29, 40],
    ['PUT', '/d', 204, 71, 52], ['GET', '/e', 200, 28, 32],
  ]
  for (const split of [0, 1, 3, 7]) {
    const got = meter(steps, split)
    t.same(simplified(got), expected, `split ${split || 'whole'}: each request with its response, the query string dropped`)
    t.ok(got.every(r => r.durationMs >= 0 && r.at >= 1000), 'times from the injected clock')
  }
})

t.test('an upgrade ends the metering after its 101; bytes that are not HTTP stop it quietly', async t => {
  const ws = meter([
    ['v', 'GET /ws HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\n\n\x81\x05hello'],
    ['s', 'HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n\x81\x02ok'],
    ['v', 'GET /not-http-any-more HTTP/1.1\n\n'],
  ])
  t.same(simplified(ws), [['GET', '/ws', 101, 70, 56]], 'the upgrade is one exchange, and what follows is not read as HTTP')
  t.same(meter([['v', 'SSH-2.0-OpenSSH\n'], ['s', 'HTTP/1.1 200 OK\n\n']]), [], 'not HTTP: nothing recorded, nothing thrown')
  t.same(meter([['s', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n']]), [], 'a response without a request: nothing recorded')
})
