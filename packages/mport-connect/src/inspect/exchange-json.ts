/**
 * What the inspector's JSON API says about exchanges: a summary per exchange for the list and
 * the live feed, the full detail (headers, bodies as text or base64) for one, and the list's
 * filters. The page and the status screen read the same shapes.
 */
import type { CappedBody, Exchange, RecordedMessage } from './exchange.js'
import { headerValue } from 'mport/client'

/** One exchange in the list and the live feed. */
export interface ExchangeSummary {
  id: number
  tunnel: string
  connection: number
  visitor: string
  method: string
  url: string
  /** The response status, once its head arrived. */
  status?: number
  state: Exchange['state']
  startedAt: string
  /** Time to the first byte of the response, ms. */
  ttfbMs?: number
  /** Start of the request to the end of the response, ms. */
  durationMs?: number
  requestBytes: number
  responseBytes: number
  websocket?: { framesIn: number, framesOut: number }
  replayOf?: number
  error?: string
}

/** A body in the detail view: text when it is text, else base64; `truncated` when only the first `kept` bytes were kept. */
export interface BodyJson {
  size: number
  kept: number
  truncated: boolean
  contentType?: string
  encoding: 'utf8' | 'base64'
  data: string
}

/** A request or response in the detail view. */
export interface MessageJson {
  httpVersion: string
  headers: Array<[string, string]>
  body: BodyJson
}

/** One exchange in full. */
export interface ExchangeDetail extends ExchangeSummary {
  local: string
  request: MessageJson & { method: string, url: string }
  response?: MessageJson & { status: number, reason: string }
  times: { requestEndMs?: number, firstByteMs?: number, endMs?: number }
  websocketFrames?: Array<{ direction: 'in' | 'out', opcode: string, length: number, fin: boolean, masked: boolean, atMs: number }>
}

/** The list's and the live feed's view of an exchange. */
export function summarize (e: Exchange): ExchangeSummary {
  const t = e.times
  return {
    id: e.id,
    tunnel: e.tunnel,
    connection: e.connection,
    visitor: e.visitor,
    method: e.request.method,
    url: e.request.url,
    ...(e.response !== undefined ? { status: e.response.status } : {}),
    state: e.state,
    startedAt: new Date(e.startedAt).toISOString(),
    ...(t.firstByte !== undefined ? { ttfbMs: t.firstByte - t.start } : {}),
    ...(t.end !== undefined ? { durationMs: t.end - t.start } : {}),
    requestBytes: e.request.body.size,
    responseBytes: e.response?.body.size ?? 0,
    ...(e.websocket !== undefined ? { websocket: { framesIn: e.websocket.framesIn, framesOut: e.websocket.framesOut } } : {}),
    ...(e.replayOf !== undefined ? { replayOf: e.replayOf } : {}),
    ...(e.error !== undefined ? { error: e.error } : {}),
  }
}

/** The full view of an exchange: headers, bodies (text or base64), times, frames. */
export function detail (e: Exchange): ExchangeDetail {
  const t = e.times
  const rel = (x: number | undefined): number | undefined => x === undefined ? undefined : x - t.start
  const times: ExchangeDetail['times'] = {}
  if (t.requestEnd !== undefined) times.requestEndMs = rel(t.requestEnd)
  if (t.firstByte !== undefined) times.firstByteMs = rel(t.firstByte)
  if (t.end !== undefined) times.endMs = rel(t.end)
  return {
    ...summarize(e),
    local: e.local,
    request: { method: e.request.method, url: e.request.url, ...messageJson(e.request) },
    ...(e.response !== undefined ? { response: { status: e.response.status, reason: e.response.reason, ...messageJson(e.response) } } : {}),
    times,
    ...(e.websocket !== undefined ? { websocketFrames: e.websocket.recent.map(f => ({ direction: f.direction, opcode: f.opcode, length: f.length, fin: f.fin, masked: f.masked, atMs: f.at - t.start })) } : {}),
  }
}

function messageJson (m: RecordedMessage): MessageJson {
  return { httpVersion: m.httpVersion, headers: m.headers.map(([n, v]) => [n, v]), body: bodyJson(m.body, headerValue(m, 'content-type')) }
}

/** Content types shown as text; other bodies are text only when they decode as UTF-8 without control bytes. */
const TEXT_TYPE = /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded|x-ndjson|graphql)\b)/i

function bodyJson (body: CappedBody, contentType: string | undefined): BodyJson {
  const bytes = body.bytes()
  const text = isText(bytes, contentType)
  return {
    size: body.size,
    kept: body.kept,
    truncated: body.truncated,
    ...(contentType !== undefined ? { contentType } : {}),
    encoding: text ? 'utf8' : 'base64',
    data: bytes.toString(text ? 'utf8' : 'base64'),
  }
}

function isText (bytes: Buffer, contentType: string | undefined): boolean {
  if (contentType !== undefined && TEXT_TYPE.test(contentType)) return true
  if (contentType !== undefined && /^(image|audio|video|font)\/|octet-stream|zip|gzip|pdf/i.test(contentType)) return false
  // Control bytes other than tab, CR, LF mean binary; so does invalid UTF-8 (round trip differs).
  for (const b of bytes.subarray(0, 4096)) if (b < 0x20 && b !== 9 && b !== 10 && b !== 13) return false
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes)
}

/** The list's filters: `status` (`404`, `4xx`), `method` (case-insensitive), `path` (a substring of the URL), `tunnel`. */
export interface ExchangeFilter { status?: string, method?: string, path?: string, tunnel?: string }

/** A filter from a query string; a bad `status` is a usage error the API answers with 400. */
export function parseFilter (query: URLSearchParams): ExchangeFilter {
  const f: ExchangeFilter = {}
  const status = query.get('status')
  if (status !== null && status !== '') {
    if (!/^[1-5]([0-9]{2}|xx)$/i.test(status)) throw new RangeError(`status must be like 404 or 4xx, not ${JSON.stringify(status)}`)
    f.status = status.toLowerCase()
  }
  for (const key of ['method', 'path', 'tunnel'] as const) {
    const v = query.get(key)
    if (v !== null && v !== '') f[key] = v
  }
  return f
}

/** True when `e` passes every filter in `f`. */
export function matches (e: Exchange, f: ExchangeFilter): boolean {
  if (f.method !== undefined && e.request.method.toUpperCase() !== f.method.toUpperCase()) return false
  if (f.path !== undefined && !e.request.url.includes(f.path)) return false
  if (f.tunnel !== undefined && e.tunnel !== f.tunnel) return false
  if (f.status !== undefined) {
    const s = e.response?.status
    if (s === undefined) return false
    if (f.status.endsWith('xx') ? Math.floor(s / 100) !== Number(f.status[0]) : s !== Number(f.status)) return false
  }
  return true
}
