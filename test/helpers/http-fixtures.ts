/**
 * HTTP fixtures for the request-head and request-stream tests: a real node:http server that
 * reports what it received, and a front door on 127.0.0.1 port 0 that passes visitor bytes to
 * it through an optional Transform while recording the exact bytes the visitor wrote.
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'

export interface SeenRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  bodyLength: number
  bodySha256: string
  /** Which upstream connection (1, 2, …) carried the request. */
  connection: number
}

export interface Upstream {
  server: http.Server
  port: number
  seen: SeenRequest[]
  connections: number
  close (): Promise<void>
}

/** A node:http server answering every request with JSON of what it saw; WebSocket-style upgrades echo raw bytes. */
export async function startUpstream (): Promise<Upstream> {
  const seen: SeenRequest[] = []
  const state = { connections: 0 }
  const ids = new WeakMap<net.Socket, number>()
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const hash = createHash('sha256')
    let bodyLength = 0
    req.on('data', (d: Buffer) => { hash.update(d); bodyLength += d.length })
    req.on('end', () => {
      const s: SeenRequest = {
        method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders,
        bodyLength, bodySha256: hash.digest('hex'), connection: ids.get(req.socket) ?? 0,
      }
      seen.push(s)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(s))
    })
  })
  server.on('connection', (sock: net.Socket) => ids.set(sock, ++state.connections))
  server.on('upgrade', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyLength: 0, bodySha256: '', connection: 0 })
    sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    if (head.length > 0) sock.write(head)
    sock.pipe(sock)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    seen,
    get connections () { return state.connections },
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}

export interface FrontDoor {
  port: number
  /** Exact bytes each visitor connection wrote, in connection order. */
  captured: Buffer[][]
  /** Errors the transform raised, per connection. */
  errors: Error[]
  close (): Promise<void>
}

/**
 * A TCP front door to `upstreamPort`: visitor → makeTransform(visitor socket) → upstream, and
 * upstream → visitor unchanged. Without a transform it is a plain recording splice.
 */
export async function startFrontDoor (upstreamPort: number, makeTransform?: (visitor: net.Socket) => Duplex): Promise<FrontDoor> {
  const captured: Buffer[][] = []
  const errors: Error[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer(visitor => {
    const record: Buffer[] = []
    captured.push(record)
    visitor.on('data', (d: Buffer) => record.push(d))
    const upstream = net.connect(upstreamPort, '127.0.0.1')
    sockets.add(visitor).add(upstream)
    const transform = makeTransform?.(visitor)
    if (transform !== undefined) {
      visitor.pipe(transform).pipe(upstream)
      transform.on('error', (err: Error) => { errors.push(err); visitor.destroy(); upstream.destroy() })
    } else {
      visitor.pipe(upstream)
    }
    upstream.pipe(visitor)
    visitor.on('error', () => upstream.destroy())
    upstream.on('error', () => visitor.destroy())
    visitor.on('close', () => { upstream.destroy(); sockets.delete(visitor) })
    upstream.on('close', () => { visitor.destroy(); sockets.delete(upstream) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    captured,
    errors,
    close: () => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }),
  }
}

/** Sends one request with node:http and resolves with the status and the parsed JSON body. */
export function request (opts: http.RequestOptions, body?: Buffer | Buffer[]): Promise<{ status: number, json: SeenRequest | undefined, socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', ...opts }, res => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        let json: SeenRequest | undefined
        try { json = JSON.parse(text) as SeenRequest } catch { json = undefined }
        resolve({ status: res.statusCode ?? 0, json, socket: req.socket as net.Socket })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (Array.isArray(body)) for (const b of body) req.write(b)
    else if (body !== undefined) req.write(body)
    req.end()
  })
}
