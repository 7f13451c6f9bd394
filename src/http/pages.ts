/**
 * What a visitor sees when the relay itself answers instead of the tunnelled service: unknown
 * name, tunnel offline, local service refusing, malformed request, auth needed. A browser gets
 * a small self-contained HTML page, curl and scripts get one line of plain text. Every answer
 * is a complete HTTP/1.1 response with `Connection: close`, ready to write to the socket.
 */

export type ErrorStatus = 400 | 401 | 403 | 404 | 408 | 431 | 502 | 503

interface PageText { reason: string, title: string, text: string }

const PAGES: Record<ErrorStatus, PageText> = {
  400: { reason: 'Bad Request', title: 'Bad request', text: 'The relay could not understand this request.' },
  401: { reason: 'Unauthorized', title: 'Sign-in required', text: 'This tunnel is protected: sign in with the user name and password its owner gave you.' },
  403: { reason: 'Forbidden', title: 'Access denied', text: 'Your address is not allowed to reach this tunnel.' },
  404: { reason: 'Not Found', title: 'No tunnel here', text: 'No tunnel is registered under this name. Check the address, or ask its owner to start it.' },
  408: { reason: 'Request Timeout', title: 'Request timeout', text: 'The request headers did not arrive in time.' },
  431: { reason: 'Request Header Fields Too Large', title: 'Headers too large', text: 'The request headers are too large for the relay.' },
  502: { reason: 'Bad Gateway', title: 'Local service unavailable', text: 'The tunnel is up, but the service behind it refused the connection or is not running.' },
  503: { reason: 'Service Unavailable', title: 'Tunnel offline', text: 'The tunnel is offline or its client is reconnecting. Try again in a few seconds.' },
}

export interface ErrorResponseOptions {
  /** The request's Accept header: HTML only when it prefers text/html over text/plain. */
  accept?: string
  /** One more sentence for the visitor (the host name, the reason); escaped in HTML. */
  detail?: string
  /** The request method: a HEAD gets the headers without the body. */
  method?: string
  /** Seconds for Retry-After (503 default: 5; other statuses only when given). */
  retryAfter?: number
  /** Realm of the WWW-Authenticate challenge on 401 (default "mport tunnel"). */
  realm?: string
  /** Clock for the Date header (tests). */
  now?: Date
}

/** The full response bytes for `status`, body chosen by content negotiation. */
export function errorResponse (status: ErrorStatus, opts: ErrorResponseOptions = {}): Buffer {
  const page = PAGES[status]
  if (page === undefined) throw new RangeError(`no error page for status ${String(status)}`)
  const html = prefersHtml(opts.accept)
  const detail = opts.detail === undefined ? undefined : oneLine(opts.detail)
  const body = Buffer.from(html ? htmlPage(status, page, detail) : textBody(status, page, detail), 'utf8')
  const retryAfter = opts.retryAfter ?? (status === 503 ? 5 : undefined)
  const headers = [
    `HTTP/1.1 ${status} ${page.reason}`,
    `Date: ${(opts.now ?? new Date()).toUTCString()}`,
    `Content-Type: ${html ? 'text/html' : 'text/plain'}; charset=utf-8`,
    `Content-Length: ${body.length}`,
    'Cache-Control: no-store',
    'X-Content-Type-Options: nosniff',
    'Connection: close',
  ]
  if (status === 401) headers.push(`WWW-Authenticate: Basic realm="${quote(opts.realm ?? 'mport tunnel')}", charset="UTF-8"`)
  if (retryAfter !== undefined) headers.push(`Retry-After: ${Math.max(0, Math.ceil(retryAfter))}`)
  const head = Buffer.from(headers.join('\r\n') + '\r\n\r\n', 'latin1')
  return opts.method?.toUpperCase() === 'HEAD' ? head : Buffer.concat([head, body])
}

/**
 * True when the Accept header ranks text/html above text/plain (browsers), false for a
 * missing header, `*\/*` alone (curl) or anything preferring plain text.
 */
export function prefersHtml (accept: string | undefined): boolean {
  if (accept === undefined) return false
  const ranges = accept.split(',').map(parseRange).filter((r): r is MediaRange => r !== undefined)
  const q = (type: string, sub: string): number => {
    let best: MediaRange | undefined
    for (const r of ranges) {
      const matches = (r.type === type && (r.sub === sub || r.sub === '*')) || (r.type === '*' && r.sub === '*')
      if (!matches) continue
      if (best === undefined || r.specificity > best.specificity) best = r
    }
    return best?.q ?? 0
  }
  const htmlQ = q('text', 'html')
  return htmlQ > 0 && htmlQ > q('text', 'plain')
}

interface MediaRange { type: string, sub: string, q: number, specificity: number }

function parseRange (part: string): MediaRange | undefined {
  const [range, ...params] = part.split(';').map(s => s.trim())
  const m = /^([a-z0-9!#$&^_.+-]+|\*)\/([a-z0-9!#$&^_.+-]+|\*)$/i.exec(range ?? '')
  if (m === null) return undefined
  let q = 1
  for (const p of params) {
    const qm = /^q=([01](\.\d{0,3})?)$/i.exec(p)
    if (qm !== null) q = Math.min(1, Number(qm[1]))
  }
  const type = m[1]!.toLowerCase()
  const sub = m[2]!.toLowerCase()
  return { type, sub, q, specificity: type === '*' ? 0 : sub === '*' ? 1 : 2 }
}

function textBody (status: number, page: PageText, detail: string | undefined): string {
  return `${status} ${page.reason}: ${page.text}${detail === undefined ? '' : ' ' + detail}\n`
}

function htmlPage (status: number, page: PageText, detail: string | undefined): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${status} ${escapeHtml(page.title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}small{color:#777}</style>
</head><body>
<h1>${escapeHtml(page.title)}</h1>
<p>${escapeHtml(page.text)}</p>
${detail === undefined ? '' : `<p>${escapeHtml(detail)}</p>\n`}<p><small>${status} ${escapeHtml(page.reason)} · mport relay</small></p>
</body></html>
`
}

export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

function oneLine (s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 500)
}

function quote (s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f"\\]/g, '').replace(/[^\x20-\x7e]/g, '?')
}
