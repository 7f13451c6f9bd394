/**
 * The ops listener: plain node:http on its own address, apart from the REST API, so a relay
 * without the API still serves it. GET /metrics (Prometheus text format), /healthz (200
 * while the process serves), /readyz (200 when ready for clients, else 503 with the reason
 * as JSON). HEAD works on each; anything else is 404 or 405, as JSON.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { RelayMetrics } from './metrics.js'
import type { Readiness } from './readiness.js'

/** Where the ops listener binds, and what it serves. */
export interface OpsServerOptions {
  host: string
  /** 0 picks a free port (read it from `address`). */
  port: number
  metrics: RelayMetrics
  readiness: Readiness
}

/** A listening ops server. */
export interface OpsServer {
  /** The bound address, with the actual port when 0 was asked for. */
  readonly address: AddressInfo
  /** Stops listening and ends every connection, idle or not. */
  close (): Promise<void>
}

const ROUTES = ['/metrics', '/healthz', '/readyz'] as const
type Route = typeof ROUTES[number]

function send (res: http.ServerResponse, status: number, body: string, type = 'application/json; charset=utf-8', headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

const json = (v: unknown): string => `${JSON.stringify(v)}\n`

async function serve (o: OpsServerOptions, route: Route, res: http.ServerResponse): Promise<void> {
  switch (route) {
    case '/healthz':
      send(res, 200, json({ status: 'ok' }))
      return
    case '/readyz': {
      const state = await o.readiness.check()
      if (state.ready) send(res, 200, json({ status: 'ready' }))
      else send(res, 503, json({ status: 'not ready', reason: state.reason, message: state.message }))
      return
    }
    case '/metrics':
      await o.readiness.check() // mport_ready and mport_store_up as of this scrape
      send(res, 200, await o.metrics.text(), o.metrics.contentType)
  }
}

/** Starts the ops listener. */
export async function startOpsServer (o: OpsServerOptions): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://ops').pathname
    const route = ROUTES.find(r => r === pathname)
    if (route === undefined) { send(res, 404, json({ error: 'not found', routes: ROUTES })); return }
    if (req.method !== 'GET' && req.method !== 'HEAD') { send(res, 405, json({ error: `${req.method ?? ''} is not allowed here; use GET` }), undefined, { allow: 'GET, HEAD' }); return }
    serve(o, route, res).catch((err: Error) => {
      if (!res.headersSent) send(res, 500, json({ error: err.message }))
      else res.destroy(err)
    })
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => { server.off('error', reject); resolve() })
  })
  return {
    address: server.address() as AddressInfo,
    close: () => new Promise<void>(resolve => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
