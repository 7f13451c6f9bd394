/**
 * Replay: sends a recorded request to the tunnel's local service again, optionally edited
 * (method, path, headers, body), and records what comes back as a new exchange that names the
 * one it replayed. It goes straight to the local service, not through the relay.
 */
import http from 'node:http'
import { InvalidReplayError, ReplayUnavailableError } from 'mport/errors'
import { CappedBody, type Exchange } from './exchange.js'
import type { Inspector } from './inspector.js'

/** Changes to make before sending the request again. */
export interface ReplayEdits {
  method?: string
  /** The request target, `/path?query`. */
  path?: string
  /** Replaces every header (in order; framing headers are set from the body). */
  headers?: Array<[string, string]>
  /** Replaces the body. */
  body?: string
  /** How `body` is encoded (default utf8). */
  bodyEncoding?: 'utf8' | 'base64'
}

/** Set from the body and the connection, never copied. */
const FRAMING = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'proxy-connection', 'te', 'trailer'])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** The edits checked; throws InvalidReplayError naming the bad field. */
export function checkEdits (raw: unknown): ReplayEdits {
  if (raw === undefined || raw === null) return {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidReplayError('the replay body must be a JSON object (method, path, headers, body)')
  const o = raw as Record<string, unknown>
  const unknown = Object.keys(o).filter(k => !['method', 'path', 'headers', 'body', 'bodyEncoding'].includes(k))
  if (unknown.length > 0) throw new InvalidReplayError(`unknown replay field ${JSON.stringify(unknown[0])}: use method, path, headers, body, bodyEncoding`)
  const edits: ReplayEdits = {}
  if (o.method !== undefined) {
    if (typeof o.method !== 'string' || !TOKEN.test(o.method)) throw new InvalidReplayError('method must be an HTTP method token such as GET')
    edits.method = o.method.toUpperCase()
  }
  if (o.path !== undefined) {
    if (typeof o.path !== 'string' || !/^\/[^\s]*$/.test(o.path)) throw new InvalidReplayError('path must start with / and contain no spaces')
    edits.path = o.path
  }
  if (o.headers !== undefined) {
    if (!Array.isArray(o.headers)) throw new InvalidReplayError('headers must be a list of [name, value] pairs')
    edits.headers = o.headers.map((h: unknown) => {
      if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') throw new InvalidReplayError('headers must be a list of [name, value] pairs')
      if (!TOKEN.test(h[0])) throw new InvalidReplayError(`bad header name ${JSON.stringify(h[0])}`)
      if (/[\r\n\0]/.test(h[1])) throw new InvalidReplayError(`header ${h[0]} must not contain CR, LF or NUL`)
      return [h[0], h[1]] as [string, string]
    })
  }
  if (o.bodyEncoding !== undefined && o.bodyEncoding !== 'utf8' && o.bodyEncoding !== 'base64') throw new InvalidReplayError('bodyEncoding must be utf8 or base64')
  if (o.bodyEncoding !== undefined) edits.bodyEncoding = o.bodyEncoding
  if (o.body !== undefined) {
    if (typeof o.body !== 'string') throw new InvalidReplayError('body must be a string')
    edits.body = o.body
  }
  return edits
}

/** Sends `original` (edited) to its local service and resolves with the new exchange, recorded in `inspector`. */
export function replay (inspector: Inspector, original: Exchange, edits: ReplayEdits, timeoutMs = 30_000): Promise<Exchange> {
  const req = original.request
  if (edits.body === undefined && req.body.truncated) throw new ReplayUnavailableError(`the request body was ${req.body.size} bytes and only ${req.body.kept} were kept: send a body with the replay`)
  const upgrade = req.headers.some(([n]) => n.toLowerCase() === 'upgrade')
  if (req.method === 'CONNECT' || upgrade) throw new ReplayUnavailableError('an Upgrade or CONNECT request cannot be replayed')
  const body = edits.body !== undefined ? Buffer.from(edits.body, edits.bodyEncoding ?? 'utf8') : req.body.bytes()
  const method = edits.method ?? req.method
  const path = edits.path ?? req.url
  const headers = (edits.headers ?? req.headers).filter(([n]) => !FRAMING.has(n.toLowerCase())).map(([n, v]) => [n, v] as [string, string])
  // HTTP/1.1 needs a Host: edited headers without one keep the original's.
  if (!headers.some(([n]) => n.toLowerCase() === 'host')) headers.unshift(['Host', req.headers.find(([n]) => n.toLowerCase() === 'host')?.[1] ?? original.local])
  if (body.length > 0 || req.headers.some(([n]) => n.toLowerCase() === 'content-length')) headers.push(['Content-Length', String(body.length)])
  headers.push(['Connection', 'close'])
  const [host, port] = splitHostPort(original.local)
  const start = inspector.now()
  const e: Exchange = {
    id: inspector.nextId(),
    tunnel: original.tunnel,
    local: original.local,
    visitor: 'replay',
    connection: 0,
    startedAt: start,
    times: { start },
    request: { method, url: path, httpVersion: 'HTTP/1.1', headers, headSize: headers.reduce((n, [k, v]) => n + k.length + v.length + 4, method.length + path.length + 12), body: new CappedBody(inspector.bodyLimit) },
    state: 'pending',
    replayOf: original.id,
  }
  e.request.body.add(body)
  inspector.record(e)
  return new Promise(resolve => {
    const finish = (state: Exchange['state'], error?: string): void => {
      if (e.state !== 'pending') return
      e.state = state
      e.times.end = inspector.now()
      if (error !== undefined) e.error = error
      inspector.record(e)
      resolve(e)
    }
    const r = http.request({ host, port, method, path, headers: headers.flat(), setHost: false, agent: false, timeout: timeoutMs }, res => {
      e.times.firstByte = inspector.now()
      const pairs: Array<[string, string]> = []
      for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!])
      e.response = { status: res.statusCode ?? 0, reason: res.statusMessage ?? '', httpVersion: `HTTP/${res.httpVersion}`, headers: pairs, headSize: pairs.reduce((n, [k, v]) => n + k.length + v.length + 4, 17), body: new CappedBody(inspector.bodyLimit) }
      res.on('data', (chunk: Buffer) => { e.response!.body.add(chunk) })
      res.on('end', () => finish('complete'))
      res.on('error', err => finish('aborted', err.message))
      res.on('close', () => finish('aborted', 'the local service closed the connection before the response ended'))
    })
    r.on('timeout', () => r.destroy(new Error(`no response within ${timeoutMs} ms`)))
    r.on('error', err => finish('aborted', `${original.local}: ${(err as NodeJS.ErrnoException).code ?? err.message}`))
    r.end(body)
  })
}

function splitHostPort (local: string): [string, number] {
  const i = local.lastIndexOf(':')
  const host = local.slice(0, i)
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(local.slice(i + 1))]
}
