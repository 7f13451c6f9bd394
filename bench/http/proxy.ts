/**
 * The plain HTTP reverse proxy of the HTTP bench (no tunnel): what http-proxy does, in a few
 * lines of node:http. Every request is parsed, its hop-by-hop headers dropped and
 * X-Forwarded-For/-Proto/-Host added (as mport's relay does), then sent to the origin over a
 * keep-alive `http.Agent` pool; the response head is copied back and the body piped.
 * Prints {"port": N}.
 *   node --import tsx bench/http/proxy.ts <originPort>
 */
import http from 'node:http'

const originPort = Number(process.argv[2])
if (!Number.isInteger(originPort) || originPort <= 0) throw new Error('usage: proxy.ts <originPort>')

const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: 1024, maxFreeSockets: 1024, noDelay: true })
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'])

function strip (h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v
  return out
}

const server = http.createServer({ noDelay: true, keepAlive: true }, (req, res) => {
  const headers = strip(req.headers)
  const prior = req.headers['x-forwarded-for']
  headers['x-forwarded-for'] = prior === undefined ? req.socket.remoteAddress ?? '' : `${String(prior)}, ${req.socket.remoteAddress ?? ''}`
  headers['x-forwarded-proto'] = 'http'
  if (req.headers.host !== undefined) headers['x-forwarded-host'] = req.headers.host
  const up = http.request({ host: '127.0.0.1', port: originPort, method: req.method, path: req.url, headers, agent }, ures => {
    res.writeHead(ures.statusCode ?? 502, strip(ures.headers))
    ures.pipe(res)
  })
  up.on('error', err => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
    res.end(`bad gateway: ${err.message}\n`)
  })
  req.pipe(up)
})
server.keepAliveTimeout = 120_000
server.headersTimeout = 121_000
server.listen({ host: '127.0.0.1', port: 0 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`)
})
process.on('SIGTERM', () => process.exit(0))
