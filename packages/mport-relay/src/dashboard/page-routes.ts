/**
 * The dashboard's pages: one HTML shell and its script and style, built from web/ by esbuild
 * at the package's build (dist/web/) and served from memory by the API listener, with no CDN
 * (a relay may have no internet). A strict Content-Security-Policy: scripts, styles and
 * connections to this origin only, no inline code, no framing.
 */
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const WEB = new URL('../../dist/web/', import.meta.url)

export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const FILES: Record<string, { file: string, type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/assets/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/assets/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
}

/** The built files, read once; undefined when the package was not built. */
function load (): Map<string, { body: Buffer, type: string }> | undefined {
  const out = new Map<string, { body: Buffer, type: string }>()
  try {
    for (const [url, f] of Object.entries(FILES)) out.set(url, { body: readFileSync(new URL(f.file, WEB)), type: f.type })
  } catch {
    return undefined
  }
  return out
}

export function pageRoutes (app: FastifyInstance): void {
  const files = load()
  for (const url of Object.keys(FILES)) {
    app.get(url, { schema: { hide: true } }, async (_req, reply) => {
      const f = files?.get(url)
      if (f === undefined) {
        return reply.code(503).type('text/plain; charset=utf-8').send('the dashboard was not built: run npm run build in the mport-relay package\n')
      }
      return reply
        .header('content-security-policy', DASHBOARD_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('x-frame-options', 'DENY')
        // The shell is small and names its assets; never cache it stale across an upgrade.
        .header('cache-control', 'no-cache')
        .type(f.type)
        .send(f.body)
    })
  }
}
