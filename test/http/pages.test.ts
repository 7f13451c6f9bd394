// Error pages: full HTTP/1.1 responses that a real node:http client parses, HTML for browsers
// and plain text for curl, escaping, 401 challenge, 503 Retry-After, HEAD without a body.
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { errorResponse, escapeHtml, prefersHtml, type ErrorStatus } from '../../src/http/pages.js'
import { withTimeout } from '../helpers/wait.js'

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'
const STATUSES: ErrorStatus[] = [400, 401, 403, 404, 408, 431, 502, 503]
const now = new Date(Date.UTC(2026, 0, 2, 3, 4, 5))

function split (res: Buffer): { head: string, body: string } {
  const i = res.indexOf('\r\n\r\n')
  return { head: res.subarray(0, i).toString('latin1'), body: res.subarray(i + 4).toString('utf8') }
}

t.test('prefersHtml: browsers yes, curl and scripts no', async t => {
  t.equal(prefersHtml(BROWSER), true, 'Firefox/Chrome Accept')
  t.equal(prefersHtml('text/html'), true)
  t.equal(prefersHtml(undefined), false, 'no Accept')
  t.equal(prefersHtml('*/*'), false, 'curl')
  t.equal(prefersHtml('application/json'), false)
  t.equal(prefersHtml('text/plain, text/html;q=0.5'), false, 'plain ranked higher')
  t.equal(prefersHtml('text/html;q=0.5, text/plain;q=0.9'), false)
  t.equal(prefersHtml('text/*;q=0.3, text/html;q=0.7'), true, 'specific html over text/*')
  t.equal(prefersHtml('text/html;q=0'), false, 'q=0 means not acceptable')
  t.equal(prefersHtml('TEXT/HTML'), true, 'case-insensitive')
  t.equal(prefersHtml('garbage,,;;'), false)
})

t.test('every status: a parseable response with Connection: close', async t => {
  for (const status of STATUSES) {
    for (const accept of [BROWSER, '*/*']) {
      const res = errorResponse(status, { accept, now })
      const { head, body } = split(res)
      const html = accept === BROWSER
      t.match(head, new RegExp(`^HTTP/1\\.1 ${status} [A-Za-z ]+\\r\\n`), `${status} status line`)
      t.match(head, /\r\nConnection: close(\r\n|$)/)
      t.match(head, /\r\nDate: Fri, 02 Jan 2026 03:04:05 GMT/)
      t.match(head, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(body)}(\\r\\n|$)`), 'Content-Length is the body size in bytes')
      t.match(head, html ? /Content-Type: text\/html; charset=utf-8/ : /Content-Type: text\/plain; charset=utf-8/)
      if (html) t.match(body, /^<!doctype html>/)
      else t.match(body, new RegExp(`^${status} [A-Za-z ]+: .+\\n$`))
      t.equal(/WWW-Authenticate/.test(head), status === 401, `${status}: WWW-Authenticate only on 401`)
      t.equal(/Retry-After/.test(head), status === 503, `${status}: Retry-After only on 503 by default`)
    }
  }
  t.throws(() => errorResponse(418 as ErrorStatus), RangeError)
})

t.test('specific pages', async t => {
  const p404 = split(errorResponse(404, { accept: '*/*', detail: 'Unknown name: ghost.tunnels.example.com' })).body
  t.match(p404, /No tunnel is registered under this name.*ghost\.tunnels\.example\.com/)
  const p503 = split(errorResponse(503, { retryAfter: 2.2 }))
  t.match(p503.head, /Retry-After: 3/)
  t.match(p503.body, /offline or its client is reconnecting/)
  t.match(split(errorResponse(502, {})).body, /refused the connection or is not running/)
  t.match(split(errorResponse(401, { realm: 'my "app"\r\n' })).head, /WWW-Authenticate: Basic realm="my app", charset="UTF-8"/, 'realm sanitised')
  t.match(split(errorResponse(408, { retryAfter: 1 })).head, /Retry-After: 1/)
})

t.test('details are escaped in HTML and flattened to one line', async t => {
  const evil = '<script>alert("x")</script>\r\nSet-Cookie: a=b'
  const html = errorResponse(404, { accept: BROWSER, detail: evil }).toString()
  t.notMatch(html, /<script>/)
  t.match(html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/)
  t.notMatch(split(Buffer.from(html)).head, /Set-Cookie/, 'no header injection')
  const text = split(errorResponse(404, { detail: evil })).body
  t.equal(text.split('\n').length, 2, 'one line of text')
  t.equal(escapeHtml(`&<>"'`), '&amp;&lt;&gt;&quot;&#39;')
})

t.test('HEAD: headers only, Content-Length of the GET body', async t => {
  const get = errorResponse(404, { accept: '*/*', now })
  const head = errorResponse(404, { accept: '*/*', now, method: 'head' })
  t.ok(get.subarray(0, head.length).equals(head))
  t.ok(head.toString().endsWith('\r\n\r\n'))
})

t.test('a real node:http client reads each page', async t => {
  for (const status of STATUSES) {
    const server = net.createServer(sock => {
      sock.once('data', (d: Buffer) => {
        const accept = /\r\naccept: ([^\r]*)/i.exec(d.toString())?.[1]
        sock.end(errorResponse(status, { accept, detail: 'détail ✓' }))
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as net.AddressInfo).port
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { accept: BROWSER }, agent: false })
    const [res] = await withTimeout(once(req, 'response'), { what: `response ${status}` }) as [http.IncomingMessage]
    const chunks: Buffer[] = []
    res.on('data', (d: Buffer) => chunks.push(d))
    await withTimeout(once(res, 'end'), { what: 'body' })
    server.close()
    t.equal(res.statusCode, status)
    t.equal(res.headers.connection, 'close')
    t.equal(Number(res.headers['content-length']), Buffer.concat(chunks).length)
    t.match(Buffer.concat(chunks).toString('utf8'), /détail ✓/, 'UTF-8 body')
    if (status === 401) t.match(res.headers['www-authenticate'], /^Basic realm=/)
    if (status === 503) t.equal(res.headers['retry-after'], '5')
  }
})
