/**
 * The origin of the HTTP bench: a plain Node `http` server on 127.0.0.1 answering every
 * request with 200 and the same small body (Content-Length, keep-alive). Prints {"port": N}.
 *   node --import tsx bench/http/origin.ts [bodyBytes]
 */
import http from 'node:http'

const size = Number(process.argv[2] ?? 64)
if (!Number.isInteger(size) || size < 0 || size > 1024 * 1024) throw new Error(`body size ${process.argv[2]} is not 0…1 MiB`)
const body = Buffer.alloc(size, 0x6f)
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) }

const server = http.createServer({ noDelay: true, keepAlive: true }, (req, res) => {
  req.resume() // GETs carry no body; drain whatever comes
  res.writeHead(200, headers)
  res.end(body)
})
// Connections are held across warm-up and measurement: no idle close in between.
server.keepAliveTimeout = 120_000
server.headersTimeout = 121_000
server.listen({ host: '127.0.0.1', port: 0 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`)
})
process.on('SIGTERM', () => process.exit(0))
