/**
 * What the inspector tests share: a real relay with a domain and shared HTTP port, a local
 * node:http service that counts what it serves, a client recording into an Inspector with its
 * API on a free loopback port, and undici visitors that name the tunnel in Host.
 */
import http from 'node:http'
import type net from 'node:net'
import zlib from 'node:zlib'
import { Client as Visitor, type Dispatcher } from 'undici'
import { generateSelfSigned, type Relay, type TunnelSpec, type Client } from '../../src/index.js'
import { InspectServer } from '../../packages/mport-connect/src/inspect/inspect-server.js'
import { inspectedTunnels } from '../../packages/mport-connect/src/inspect/inspected-tunnels.js'
import { Inspector, type InspectorOptions } from '../../packages/mport-connect/src/inspect/inspector.js'
import { makeClient, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { withTimeout } from '../helpers/wait.js'

export const DOMAIN = 'tunnels.test'
const wildcard = await generateSelfSigned([`*.${DOMAIN}`, DOMAIN])

/** A 32×32 PNG, a red and blue checkerboard (made here: no binary fixture needed). */
export function checkerPng (): Buffer {
  const size = 32
  const raw = Buffer.alloc(size * (1 + size * 3))
  for (let y = 0; y < size; y++) {
    raw[y * (1 + size * 3)] = 0
    for (let x = 0; x < size; x++) {
      const o = y * (1 + size * 3) + 1 + x * 3
      const red = ((x >> 3) + (y >> 3)) % 2 === 0
      raw[o] = red ? 220 : 30; raw[o + 1] = 40; raw[o + 2] = red ? 40 : 200
    }
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length)
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(td))
    return Buffer.concat([len, td, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4); ihdr[8] = 8; ihdr[9] = 2
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))])
}

export const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
export const BIG = 1024 * 1024 + 300_000

/** The local service: counts requests per path; a few routes with known bodies. */
export interface App { port: number, server: http.Server, hits: Map<string, number>, bodies: Map<string, Buffer> }

export async function startApp (): Promise<App> {
  const hits = new Map<string, number>()
  const bodies = new Map<string, Buffer>()
  const png = checkerPng()
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      hits.set(path, (hits.get(path) ?? 0) + 1)
      const body = Buffer.concat(chunks)
      bodies.set(path, body)
      res.setHeader('x-served-count', String(hits.get(path)))
      switch (path) {
        case '/json': {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ got: body.length > 0 ? JSON.parse(body.toString()) : null, count: hits.get(path) }))
          return
        }
        case '/binary': res.setHeader('content-type', 'application/octet-stream'); res.end(BINARY); return
        case '/chunked':
          res.setHeader('content-type', 'text/plain')
          res.write('one,')
          setImmediate(() => { res.write('two,'); setImmediate(() => res.end('three')) })
          return
        case '/big': res.setHeader('content-type', 'text/plain'); res.end(Buffer.alloc(BIG, 0x78)); return
        case '/image.png': res.setHeader('content-type', 'image/png'); res.end(png); return
        case '/form': res.setHeader('content-type', 'text/plain'); res.end(`received ${body.length} bytes`); return
        case '/missing': res.statusCode = 404; res.setHeader('content-type', 'text/plain'); res.end('no such thing'); return
        default: res.setHeader('content-type', 'text/plain'); res.end(`ok ${path}`)
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, server, hits, bodies }
}

export interface Setup {
  relay: Relay
  app: App
  client: Client
  inspector: Inspector
  server: InspectServer
  /** The inspector's API origin, `http://127.0.0.1:PORT`. */
  api: string
  /** The host visitors name (`shop.tunnels.test`). */
  host: string
  /** An undici client to the relay's shared HTTP port (keep-alive). */
  visitor: Visitor
  close (): Promise<void>
}

export async function setup (opts: InspectorOptions = {}, extraTunnels: TunnelSpec[] = []): Promise<Setup> {
  const relay = await startRelay({ domain: DOMAIN, httpPort: 0, httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key })
  const app = await startApp()
  const inspector = new Inspector(opts)
  const specs: TunnelSpec[] = [{ ...tcpSpec(app.port), name: 'shop', kind: 'http', subdomain: 'shop' }, ...extraTunnels]
  const client = makeClient(relay, specs, { onHttpVisitor: inspector.tap })
  await client.start()
  const server = new InspectServer({ inspector, tunnels: () => inspectedTunnels(client.tunnels, specs), port: 0 })
  const { port } = await server.listen()
  const visitor = new Visitor(`http://127.0.0.1:${relay.httpAddress!.port}`, { pipelining: 1 })
  return {
    relay, app, client, inspector, server, visitor,
    api: `http://127.0.0.1:${port}`,
    host: `shop.${DOMAIN}`,
    close: async () => {
      await visitor.close()
      await server.close()
      await client.close()
      await relay.close(100)
      app.server.closeAllConnections()
      app.server.close()
    },
  }
}

/** A request through the tunnel; resolves with status, headers and the whole body. */
export async function visit (s: Setup, path: string, init: { method?: string, headers?: Record<string, string>, body?: string | Buffer | AsyncIterable<Buffer> } = {}, via: Dispatcher = s.visitor): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }> {
  return await withTimeout((async () => {
    const res = await via.request({ path, method: (init.method ?? 'GET') as 'GET', headers: { host: s.host, ...init.headers }, body: init.body as string | Buffer | undefined })
    const body = Buffer.from(await res.body.arrayBuffer())
    return { status: res.statusCode, headers: res.headers, body }
  })(), { what: `${init.method ?? 'GET'} http://${s.host}${path} through the relay`, timeoutMs: 30_000 })
}

/** The inspector's JSON API. */
export async function api<T = Record<string, unknown>> (s: Setup, path: string, init: { method?: string, body?: unknown, headers?: Record<string, string> } = {}): Promise<{ status: number, json: T }> {
  return await withTimeout((async () => {
    const res = await fetch(`${s.api}${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    })
    return { status: res.status, json: await res.json() as T }
  })(), { what: `${init.method ?? 'GET'} ${s.api}${path}`, timeoutMs: 30_000 })
}
