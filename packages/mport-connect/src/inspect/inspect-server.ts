/**
 * The inspector's local web UI and JSON API (node:http, no framework):
 *
 *   GET  /                              the page (assets/inspect/*, served from the package)
 *   GET  /api/tunnels                   the client's tunnels, and whether each can be inspected
 *   GET  /api/requests?status=&method=&path=&tunnel=   summaries, newest first
 *   GET  /api/requests/:id              one exchange in full
 *   GET  /api/requests/:id/body/(request|response)     a body's kept bytes (images on the page)
 *   POST /api/requests/:id/replay       send it again (JSON edits: method, path, headers, body)
 *   GET  /api/events                    server-sent events: every new or changed exchange
 *
 * Bound to loopback unless told otherwise. Every request must name this server in Host (a
 * loopback name or the bound address), so a page on another site cannot reach it through DNS
 * rebinding; a POST must also come from this origin (or from no browser at all).
 */
import http from 'node:http'
import type net from 'node:net'
import { InvalidReplayError, MportError, ReplayUnavailableError } from 'mport/errors'
import { detail, matches, parseFilter, summarize } from './exchange-json.js'
import type { Inspector } from './inspector.js'
import { checkEdits, replay } from './replay.js'
import { readInspectAssets } from './inspect-assets.js'

/** A tunnel as the page lists it. */
export interface InspectedTunnel {
  name: string
  kind: 'tcp' | 'http' | 'tls'
  local: string
  url?: string
  /** Why its traffic is not shown, when it is not: tls tunnels carry the visitor's own encryption. */
  notInspected?: string
}

/** What the inspector's server serves and where it listens. */
export interface InspectServerOptions {
  inspector: Inspector
  /** The tunnels now (called per request: URLs appear once tunnels open). */
  tunnels: () => InspectedTunnel[]
  /** Address to bind (default 127.0.0.1). */
  host?: string
  /** Port to try first (default 4040; 0 for any). */
  port?: number
  /** When the port is taken, try the next ones, up to this many (default 10; 0: fail). */
  tryNext?: number
}

const FILES: Record<string, { file: string, type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/inspect.js': { file: 'inspect.js', type: 'text/javascript; charset=utf-8' },
  '/inspect.css': { file: 'inspect.css', type: 'text/css; charset=utf-8' },
}

/** Scripts and styles from this origin only; images from here or data: (the page shows bodies). */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]'])
const MAX_REPLAY_BODY = 16 * 1024 * 1024
/** Bytes of live-feed events a tab may leave unread. */
const MAX_FEED_BACKLOG = 1024 * 1024

/** The inspector's HTTP server (see the module comment). */
export class InspectServer {
  readonly #o: InspectServerOptions
  readonly #server: http.Server
  readonly #feeds = new Set<http.ServerResponse>()
  readonly #assets = readInspectAssets(Object.values(FILES).map(f => f.file))
  #allowedHosts = new Set<string>()
  #address: { host: string, port: number } | undefined

  constructor (options: InspectServerOptions) {
    this.#o = options
    this.#server = http.createServer((req, res) => this.#handle(req, res))
    this.#server.on('clientError', (_err, socket) => socket.destroy())
    options.inspector.on('exchange', e => {
      if (this.#feeds.size === 0) return
      const line = `event: exchange\ndata: ${JSON.stringify(summarize(e))}\n\n`
      for (const res of this.#feeds) {
        // A tab that stopped reading is dropped rather than buffered without bound; EventSource reconnects.
        if (res.writableLength > MAX_FEED_BACKLOG) { res.destroy(); this.#feeds.delete(res) } else res.write(line)
      }
    })
  }

  /** Where it listens, once listening. */
  get address (): { host: string, port: number } {
    if (this.#address === undefined) throw new Error('the inspector is not listening')
    return this.#address
  }

  /** The page's URL. */
  get url (): string {
    const { host, port } = this.address
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`
  }

  /** Listens on the first free port from `port` on (up to `tryNext` more). */
  async listen (): Promise<{ host: string, port: number }> {
    const host = this.#o.host ?? '127.0.0.1'
    const first = this.#o.port ?? 4040
    const tries = first === 0 ? 0 : this.#o.tryNext ?? 10
    for (let port = first; ; port++) {
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (err: Error): void => reject(err)
          this.#server.once('error', onError)
          this.#server.listen(port, host, () => { this.#server.off('error', onError); resolve() })
        })
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port - first >= tries) throw err
      }
    }
    const addr = this.#server.address() as net.AddressInfo
    this.#address = { host, port: addr.port }
    const bound = host.includes(':') ? `[${host}]` : host
    this.#allowedHosts = new Set([...LOOPBACK_NAMES, bound].map(h => `${h}:${addr.port}`))
    return this.#address
  }

  async close (): Promise<void> {
    for (const res of this.#feeds) res.end()
    this.#feeds.clear()
    this.#server.closeAllConnections()
    await new Promise<void>(resolve => this.#server.close(() => resolve()))
  }

  #handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    res.setHeader('Content-Security-Policy', CSP)
    res.setHeader('X-Content-Type-Options', 'nosniff')
    res.setHeader('Referrer-Policy', 'no-referrer')
    res.setHeader('Cache-Control', 'no-store')
    const hostHeader = (req.headers.host ?? '').toLowerCase()
    if (!this.#allowedHosts.has(hostHeader)) { sendJson(res, 403, { error: `Host ${JSON.stringify(hostHeader)} is not this inspector: open it as ${this.url}` }); return }
    const url = new URL(req.url ?? '/', 'http://inspector')
    const path = url.pathname
    try {
      if (req.method === 'GET' && FILES[path] !== undefined) {
        const { file, type } = FILES[path]!
        res.writeHead(200, { 'Content-Type': type }).end(this.#assets.get(file))
        return
      }
      if (req.method === 'GET' && path === '/api/tunnels') { sendJson(res, 200, { tunnels: this.#o.tunnels(), usage: this.#o.inspector.usage, bodyLimit: this.#o.inspector.bodyLimit }); return }
      if (req.method === 'GET' && path === '/api/requests') {
        const filter = parseFilter(url.searchParams)
        sendJson(res, 200, { requests: this.#o.inspector.list().filter(e => matches(e, filter)).map(summarize) })
        return
      }
      if (req.method === 'DELETE' && path === '/api/requests') {
        if (!this.#sameOrigin(req)) { sendJson(res, 403, { error: 'cross-origin request refused' }); return }
        this.#o.inspector.clear()
        sendJson(res, 200, { cleared: true })
        return
      }
      if (req.method === 'GET' && path === '/api/events') { this.#feed(req, res); return }
      const m = /^\/api\/requests\/(\d+)(\/replay|\/body\/(request|response))?$/.exec(path)
      if (m !== null) {
        const e = this.#o.inspector.get(Number(m[1]))
        if (e === undefined) { sendJson(res, 404, { error: `no request ${m[1]} (it may have left the ring)` }); return }
        if (m[2] === undefined && req.method === 'GET') { sendJson(res, 200, detail(e)); return }
        if (m[3] !== undefined && req.method === 'GET') {
          const message = m[3] === 'request' ? e.request : e.response
          const type = message?.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? ''
          // Only images inline; anything else as bytes, sandboxed, so a body can never run as a page here.
          res.writeHead(200, { 'Content-Type': /^image\/(png|jpeg|gif|webp|avif|bmp|x-icon)$/i.test(type.split(';')[0]!.trim()) ? type : 'application/octet-stream', 'Content-Security-Policy': "default-src 'none'; sandbox" })
          res.end(message?.body.bytes() ?? Buffer.alloc(0))
          return
        }
        if (m[2] === '/replay' && req.method === 'POST') { this.#replay(req, res, e); return }
      }
      sendJson(res, req.method === 'GET' || req.method === 'POST' ? 404 : 405, { error: `no such endpoint: ${req.method} ${path}` })
    } catch (err) {
      sendJson(res, err instanceof RangeError ? 400 : 500, { error: (err as Error).message })
    }
  }

  /** A browser sends Origin on a POST; it must be this server. No Origin: a script or curl, which DNS rebinding cannot be. */
  #sameOrigin (req: http.IncomingMessage): boolean {
    const origin = req.headers.origin
    if (origin === undefined) return true
    try {
      const u = new URL(origin)
      return u.protocol === 'http:' && this.#allowedHosts.has(u.host.toLowerCase())
    } catch {
      return false
    }
  }

  #replay (req: http.IncomingMessage, res: http.ServerResponse, e: ReturnType<Inspector['get']> & object): void {
    if (!this.#sameOrigin(req)) { sendJson(res, 403, { error: 'cross-origin request refused' }); return }
    const parts: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_REPLAY_BODY) { sendJson(res, 413, { error: `replay edits over ${MAX_REPLAY_BODY} bytes` }); req.destroy(); return }
      parts.push(c)
    })
    req.on('end', () => {
      if (res.headersSent) return
      try {
        const text = Buffer.concat(parts).toString('utf8')
        let raw: unknown
        if (text.trim() !== '') {
          if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new InvalidReplayError('send the edits as application/json')
          try { raw = JSON.parse(text) } catch { throw new InvalidReplayError('the replay body is not valid JSON') }
        }
        replay(this.#o.inspector, e, checkEdits(raw)).then(done => sendJson(res, 200, detail(done)), (err: Error) => sendJson(res, 500, { error: err.message }))
      } catch (err) {
        const status = err instanceof InvalidReplayError ? 400 : err instanceof ReplayUnavailableError ? 409 : 500
        sendJson(res, status, { error: (err as Error).message, ...(err instanceof MportError ? { code: err.code } : {}) })
      }
    })
  }

  #feed (req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'keep-alive' })
    res.write(': mport inspector\n\n')
    this.#feeds.add(res)
    req.on('close', () => this.#feeds.delete(res))
  }
}

function sendJson (res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(body))
}
