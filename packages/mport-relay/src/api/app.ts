/**
 * The REST API: a fastify app on its own listener. Every route has a JSON schema (validated
 * requests, serialised responses, OpenAPI 3 at /openapi.json, Swagger UI at /docs). Callers
 * authenticate with `Authorization: Bearer <token>`: a session token from POST /v1/login
 * (`mps_…`) or an API token (`mpt_…`). Every 4xx/5xx is `{ error: { code, message } }`.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { MportError, RateLimitedError } from 'mport/errors'
import { FailureLimiter } from 'mport/relay'
import type { Store } from '../store/types.js'
import type { ApiContext, ApiOptions, AuthLevel, Caller } from './context.js'
import { ForbiddenError, UnauthenticatedError } from 'mport/errors'
import { BEARER, COOKIE, sharedSchemas } from './schemas.js'
import { toHttpError } from './status.js'
import { CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrfMatches, sessionFromCookie } from '../dashboard/cookie-session.js'
import { accountRoutes } from './routes-account.js'
import { resourceRoutes } from './routes-resources.js'
import { adminRoutes } from './routes-admin.js'
import { sessionRoutes } from '../dashboard/session-routes.js'
import { eventsRoute } from '../dashboard/events-route.js'
import { pageRoutes } from '../dashboard/page-routes.js'
import { TunnelFeed } from '../dashboard/tunnel-feed.js'
import { downloadRoutes } from './routes-download.js'

export type { ApiContext, ApiOptions, ApiRequestLog, AuthLevel, Caller, LiveTunnel, LiveTunnelGroup, RelayHealth, RecentRequest, RecentVisitor } from './context.js'

/** Builds the REST API's fastify app (routes, auth, OpenAPI, Swagger UI); the caller listens on it. */
export async function createApi (options: ApiOptions): Promise<FastifyInstance> {
  const opts = { sessionTtlMs: 12 * 3_600_000, openSignup: false, version: '0.1.0', ...options }
  const limit = options.loginLimit ?? { max: 5, windowMs: 60_000 }
  const app = Fastify({
    logger: options.logger ?? false,
    trustProxy: options.trustProxy ?? false,
    bodyLimit: 64 * 1024,
    // Unknown body fields are an error, not silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false, allowUnionTypes: true } },
  })
  app.decorateRequest('caller', null)
  const onResponse = options.onResponse
  if (onResponse !== undefined) {
    app.addHook('onResponse', async (req, reply) => {
      const user = req.caller?.user.name
      onResponse({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime), remoteAddress: req.ip, ...(user !== undefined ? { user } : {}) })
    })
  }
  for (const s of sharedSchemas) app.addSchema(s)

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'mport relay API', version: opts.version, description: 'Accounts, tokens, tunnels, reservations, usage and audit log of an mport relay.' },
      components: {
        securitySchemes: {
          [BEARER]: { type: 'http', scheme: 'bearer', description: 'A session token from POST /v1/login (mps_…) or an API token (mpt_…).' },
          [COOKIE]: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The dashboard\'s session cookie from POST /v1/session; POST, PUT, PATCH and DELETE with it also need the X-CSRF-Token header.' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  const ctx: ApiContext = {
    opts,
    store: options.store,
    loginLimiter: new FailureLimiter(limit.max, limit.windowMs),
    caller (req) {
      if (req.caller === null) throw new UnauthenticatedError()
      return req.caller
    },
    async audit (req, action, target = null, details) {
      const c = req.caller
      await options.store.audit({ actorId: c?.user.id ?? null, actorName: c?.user.name ?? null, action, target, address: req.ip, details: details ?? null })
    },
  }

  app.addHook('onRequest', async req => {
    const level = req.routeOptions.config.auth ?? 'public'
    if (level === 'public') return
    req.caller = await authenticate(options.store, req)
    if (level === 'admin' && req.caller.user.role !== 'admin') throw new ForbiddenError()
  })

  app.setErrorHandler((err: FastifyError | MportError, req: FastifyRequest, reply: FastifyReply) => {
    const { status, code, message } = toHttpError(err)
    if (status >= 500) req.log.error({ err }, 'request failed')
    if (err instanceof RateLimitedError && err.retryAfterMs !== undefined) void reply.header('retry-after', Math.ceil(err.retryAfterMs / 1000))
    void reply.code(status).send({ error: { code, message } })
  })
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'MPORT_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } })
  })

  const routes: Array<{ method: string, url: string, auth: AuthLevel }> = []
  app.addHook('onRoute', r => {
    if (!r.url.startsWith('/v1/') && !r.url.startsWith('/dl/')) return
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, auth: r.config?.auth ?? 'public' })
  })
  routeTables.set(app, routes)

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  const relayInfo = options.relayInfo
  const feed = relayInfo === undefined ? undefined : new TunnelFeed({ listing: relayInfo, watch: options.watchTunnels })
  app.addHook('onClose', async () => feed?.close())
  await app.register(async scope => {
    accountRoutes(scope, ctx); resourceRoutes(scope, ctx); adminRoutes(scope, ctx)
    downloadRoutes(scope, ctx)
    sessionRoutes(scope, ctx); eventsRoute(scope, ctx, feed); pageRoutes(scope)
  })
  return app
}

const routeTables = new WeakMap<FastifyInstance, ReadonlyArray<{ method: string, url: string, auth: AuthLevel }>>()

/** Every /v1 and /dl route of an app made by createApi, with its auth level (for docs and tests). */
export function apiRoutes (app: FastifyInstance): ReadonlyArray<{ method: string, url: string, auth: AuthLevel }> {
  return routeTables.get(app) ?? []
}

async function authenticate (store: Store, req: FastifyRequest): Promise<Caller> {
  const header = req.headers.authorization
  if (header === undefined) return await cookieCaller(store, req)
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (m === null) throw new UnauthenticatedError('the Authorization header must be "Bearer <token>"')
  const raw = m[1]!
  if (raw.startsWith('mps_')) {
    const s = await store.resolveSession(raw)
    if (s !== undefined) return { user: s.user, via: 'session', raw }
    throw new UnauthenticatedError('the session has expired or was ended: log in again')
  }
  if (raw.startsWith('mpt_')) {
    const r = await store.resolveToken(raw)
    if (r !== undefined) {
      await store.touchToken(r.token.id)
      return { user: r.user, via: 'token', raw }
    }
  }
  throw new UnauthenticatedError('unknown or revoked token')
}

/**
 * The dashboard's caller: the session in its cookie. A cookie rides along with any request the
 * browser makes, so a state-changing one must also prove it came from our page (the CSRF
 * token); a Bearer caller chose to send its credential and needs none.
 */
async function cookieCaller (store: Store, req: FastifyRequest): Promise<Caller> {
  const raw = sessionFromCookie(req.headers.cookie)
  if (raw === undefined) throw new UnauthenticatedError()
  const s = await store.resolveSession(raw)
  if (s === undefined) throw new UnauthenticatedError('the session has expired or was ended: log in again')
  if (!SAFE_METHODS.has(req.method) && !csrfMatches(raw, req.headers[CSRF_HEADER])) {
    throw new ForbiddenError(`a request with the session cookie must carry the page's ${CSRF_HEADER} header`)
  }
  return { user: s.user, via: 'session', raw, cookie: true }
}
