/** Routes for the caller's resources: tokens, live tunnels, reservations, usage; health; audit log (admin). */
import type { FastifyInstance } from 'fastify'
import { InvalidInputError, MportError, NotFoundError } from 'mport/errors'
import { DAY, HOUR } from '../store/time.js'
import type { ApiToken, ReservationKind } from '../store/types.js'
import type { ApiContext, LiveTunnel } from './context.js'
import { ForbiddenError, UnavailableError } from 'mport/errors'
import { errors, idParams, ref, secured } from './schemas.js'

/** Longest range per granularity, so one query stays small. */
const MAX_RANGE = { hour: 31 * DAY, day: 400 * DAY } as const

function tokenView (t: ApiToken): Omit<ApiToken, 'userId'> {
  return { id: t.id, name: t.name, tokenId: t.tokenId, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt, revokedAt: t.revokedAt, expiresAt: t.expiresAt }
}

export function resourceRoutes (app: FastifyInstance, ctx: ApiContext): void {
  const { store, opts } = ctx
  const started = Date.now()

  app.get('/v1/health', {
    config: { auth: 'public' },
    schema: {
      tags: ['relay'],
      summary: 'Relay health: the database answers, and the number of live tunnels when known.',
      response: {
        200: { type: 'object', required: ['status', 'version', 'database', 'uptimeSeconds'], properties: { status: { type: 'string', enum: ['ok'] }, version: { type: 'string' }, database: { type: 'string' }, uptimeSeconds: { type: 'integer' }, tunnels: { type: 'integer' }, relay: { type: 'string', description: 'The control address clients connect to (host:port), when the API is served by a relay.' } } },
        503: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['unavailable'] }, database: { type: 'string' }, error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } },
      },
    },
  }, async (req, reply) => {
    try {
      await store.ping()
    } catch (err) {
      req.log.error({ err }, 'health: database unreachable')
      return reply.code(503).send({ status: 'unavailable', database: store.dialect, error: { code: 'MPORT_ERR_DATABASE', message: 'the database does not answer' } })
    }
    const tunnels = opts.relayInfo ? (await opts.relayInfo()).length : undefined
    return { status: 'ok', version: opts.version, database: store.dialect, uptimeSeconds: Math.floor((Date.now() - started) / 1000), ...(tunnels !== undefined ? { tunnels } : {}), ...(opts.relayAddress !== undefined ? { relay: opts.relayAddress } : {}) }
  })

  // ---- Tokens ----

  app.get('/v1/tokens', {
    config: { auth: 'user' },
    schema: { tags: ['tokens'], summary: 'The caller\'s API tokens (never the tokens themselves).', security: secured, response: { 200: { type: 'array', items: ref('Token') }, ...errors(401) } },
  }, async req => (await store.listTokens(ctx.caller(req).user.id)).map(tokenView))

  app.post<{ Body: { name: string, expiresInHours?: number } }>('/v1/tokens', {
    config: { auth: 'user' },
    schema: {
      tags: ['tokens'],
      summary: 'Create an API token, optionally expiring. The token itself is in this answer only: it is not stored and cannot be shown again.',
      security: secured,
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 64 },
          expiresInHours: { type: 'integer', minimum: 1, maximum: 24 * 3660, description: 'the token stops working this many hours from now (its tunnels are cut within seconds); absent: never' },
        },
      },
      response: {
        201: { type: 'object', required: ['token', 'info'], properties: { token: { type: 'string', description: 'mpt_…: use it with mport-connect --token, or as a bearer token.' }, info: ref('Token') } },
        ...errors(400, 401),
      },
    },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    const expiresAt = req.body.expiresInHours === undefined ? null : Date.now() + req.body.expiresInHours * HOUR
    const { token, raw } = await store.createToken(c.user.id, req.body.name, { expiresAt })
    await ctx.audit(req, 'token.create', token.id, { name: token.name, tokenId: token.tokenId, ...(expiresAt !== null ? { expiresAt } : {}) })
    return reply.code(201).send({ token: raw, info: tokenView(token) })
  })

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', {
    config: { auth: 'user' },
    schema: { tags: ['tokens'], summary: 'Revoke one of the caller\'s tokens; tunnels logged in with it are disconnected.', security: secured, params: idParams, response: { 200: ref('Token'), ...errors(401, 404) } },
  }, async req => {
    const c = ctx.caller(req)
    const token = await store.revokeToken(req.params.id, c.user.id)
    await ctx.audit(req, 'token.revoke', token.id, { name: token.name, tokenId: token.tokenId })
    opts.onRevoke?.({ userId: c.user.id, tokenId: token.tokenId })
    return tokenView(token)
  })

  // ---- Live tunnels ----

  const visibleTunnels = async (userId: string, admin: boolean, filterUser?: string): Promise<LiveTunnel[]> => {
    if (opts.relayInfo === undefined) throw new UnavailableError('the list of live tunnels')
    const all = await opts.relayInfo()
    if (!admin) return all.filter(t => t.userId === userId)
    return filterUser === undefined ? all : all.filter(t => t.userId === filterUser)
  }

  app.get<{ Querystring: { user?: string } }>('/v1/tunnels', {
    config: { auth: 'user' },
    schema: {
      tags: ['tunnels'],
      summary: 'Live tunnels with their stats: the caller\'s own; admins see all (or one user\'s with ?user=).',
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { user: { type: 'string', maxLength: 128 } } },
      response: { 200: { type: 'array', items: ref('Tunnel') }, ...errors(401, 403, 503) },
    },
  }, async req => {
    const c = ctx.caller(req)
    const admin = c.user.role === 'admin'
    if (!admin && req.query.user !== undefined && req.query.user !== c.user.id) throw new ForbiddenError('only admins can list other users\' tunnels')
    return await visibleTunnels(c.user.id, admin, req.query.user)
  })

  app.delete<{ Params: { id: string } }>('/v1/tunnels/:id', {
    config: { auth: 'user' },
    schema: { tags: ['tunnels'], summary: 'Close a live tunnel (the caller\'s own; admins any).', security: secured, params: idParams, response: { 204: { type: 'null' }, ...errors(401, 404, 503) } },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    if (opts.closeTunnel === undefined) throw new UnavailableError('closing tunnels')
    const tunnel = (await visibleTunnels(c.user.id, c.user.role === 'admin')).find(t => t.id === req.params.id)
    // Someone else's tunnel is "not found", exactly like a missing one.
    if (tunnel === undefined || !await opts.closeTunnel(tunnel.id)) throw new NotFoundError('tunnel', req.params.id)
    await ctx.audit(req, 'tunnel.close', tunnel.id, { name: tunnel.name, owner: tunnel.userId })
    return reply.code(204).send()
  })

  app.post<{ Params: { id: string }, Body: { hours: number, address?: string } }>('/v1/tunnels/:id/allow', {
    config: { auth: 'user' },
    schema: {
      tags: ['tunnels'],
      summary: 'Let an address (default: the caller\'s own) through a live tunnel\'s allow list for some hours: "allow my current IP". The caller\'s own tunnel; admins any. A tunnel without an allow list lets everyone in anyway; a denied address stays denied; grants last while the tunnel does.',
      security: secured,
      params: idParams,
      body: {
        type: 'object',
        required: ['hours'],
        additionalProperties: false,
        properties: { hours: { type: 'integer', minimum: 1, maximum: 168 }, address: { type: 'string', maxLength: 64, description: 'an IP address or CIDR; default: the address this request came from' } },
      },
      response: { 200: { type: 'object', required: ['grants'], properties: { grants: { type: 'array', items: ref('Grant') } } }, ...errors(400, 401, 404, 503) },
    },
  }, async req => {
    const c = ctx.caller(req)
    if (opts.grantVisitor === undefined) throw new UnavailableError('allowing addresses')
    const tunnel = (await visibleTunnels(c.user.id, c.user.role === 'admin')).find(t => t.id === req.params.id)
    if (tunnel === undefined) throw new NotFoundError('tunnel', req.params.id)
    const address = req.body.address ?? req.ip
    const until = Date.now() + req.body.hours * HOUR
    let grants: Array<{ address: string, until: number }> | undefined
    try {
      grants = opts.grantVisitor(tunnel.id, address, until)
    } catch (err) {
      if (err instanceof MportError && err.code === 'MPORT_ERR_INVALID_CONFIG') throw new InvalidInputError(`not an IP address or CIDR: ${address}`, 'address')
      throw err
    }
    if (grants === undefined) throw new NotFoundError('tunnel', req.params.id)
    await ctx.audit(req, 'tunnel.allow', tunnel.id, { name: tunnel.name, address, until })
    return { grants }
  })

  /** GET /v1/tunnels/:id/<what>: a bounded ring of a live tunnel's recent entries, newest first (the caller's own tunnel; admins any). */
  const recent = (what: string, summary: string, item: { required: string[], properties: Record<string, unknown> }, entries: ((id: string) => unknown[]) | undefined): void => {
    app.get<{ Params: { id: string } }>(`/v1/tunnels/:id/${what}`, {
      config: { auth: 'user' },
      schema: { tags: ['tunnels'], summary, security: secured, params: idParams, response: { 200: { type: 'array', items: { type: 'object', ...item } }, ...errors(401, 404, 503) } },
    }, async req => {
      const c = ctx.caller(req)
      if (entries === undefined) throw new UnavailableError(`recent ${what}`)
      const tunnel = (await visibleTunnels(c.user.id, c.user.role === 'admin')).find(t => t.id === req.params.id)
      if (tunnel === undefined) throw new NotFoundError('tunnel', req.params.id)
      return entries(tunnel.id)
    })
  }
  recent('visitors', 'A live tunnel\'s recent visitor connections, newest first (the caller\'s own tunnel; admins any): address, time, bytes, and the refusal code of a refused one. Metadata only, a bounded ring per tunnel.', {
    required: ['at', 'address', 'bytesIn', 'bytesOut'],
    properties: { at: { type: 'integer' }, address: { type: 'string' }, bytesIn: { type: 'integer' }, bytesOut: { type: 'integer' }, refused: { type: 'string', description: 'MPORT_ERR_* code' } },
  }, opts.tunnelVisitors)
  recent('requests', 'A live http tunnel\'s recent requests, newest first (the caller\'s own tunnel; admins any): method, path without its query string, status, duration, sizes and the visitor\'s address. Metadata only, never headers or bodies; a bounded ring per tunnel, none when the relay keeps none (RelayServiceOptions api.recentRequests: 0).', {
    required: ['at', 'method', 'path', 'status', 'durationMs', 'requestBytes', 'responseBytes', 'address'],
    properties: {
      at: { type: 'integer', description: 'when the request head arrived (ms since the Unix epoch)' },
      method: { type: 'string' },
      path: { type: 'string', description: 'the request target without its query string (it may carry secrets), at most 256 characters' },
      status: { type: 'integer' },
      durationMs: { type: 'integer', description: 'from the request head to the end of the response' },
      requestBytes: { type: 'integer', description: 'request head and body as the visitor sent them' },
      responseBytes: { type: 'integer', description: 'response head(s) and body payload as the service sent them' },
      address: { type: 'string', description: 'the visitor\'s address' },
    },
  }, opts.tunnelRequests)

  // ---- Reservations ----

  app.get('/v1/reservations', {
    config: { auth: 'user' },
    schema: { tags: ['reservations'], summary: 'The caller\'s reserved subdomains and ports.', security: secured, response: { 200: { type: 'array', items: ref('Reservation') }, ...errors(401) } },
  }, async req => await store.listReservations(ctx.caller(req).user.id))

  app.post<{ Body: { kind: ReservationKind, value: string | number } }>('/v1/reservations', {
    config: { auth: 'user' },
    schema: {
      tags: ['reservations'],
      summary: 'Reserve a subdomain or a TCP port for the caller.',
      security: secured,
      body: {
        type: 'object',
        required: ['kind', 'value'],
        additionalProperties: false,
        properties: { kind: { type: 'string', enum: ['subdomain', 'port'] }, value: { type: ['string', 'integer'], maxLength: 63 } },
      },
      response: { 201: ref('Reservation'), ...errors(400, 401, 409) },
    },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    const r = await store.reserve(c.user.id, req.body.kind, String(req.body.value))
    await ctx.audit(req, 'reservation.create', r.id, { kind: r.kind, value: r.value })
    return reply.code(201).send(r)
  })

  app.delete<{ Params: { id: string } }>('/v1/reservations/:id', {
    config: { auth: 'user' },
    schema: { tags: ['reservations'], summary: 'Release one of the caller\'s reservations.', security: secured, params: idParams, response: { 204: { type: 'null' }, ...errors(401, 404) } },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    const r = await store.release(req.params.id, c.user.id)
    await ctx.audit(req, 'reservation.delete', r.id, { kind: r.kind, value: r.value })
    return reply.code(204).send()
  })

  // ---- Usage ----

  app.get<{ Querystring: { from?: string, to?: string, granularity?: 'hour' | 'day', tunnel?: string, user?: string } }>('/v1/usage', {
    config: { auth: 'user' },
    schema: {
      tags: ['usage'],
      summary: 'Usage buckets (bytes, connections, active seconds) per tunnel: the caller\'s own; admins any user\'s with ?user=, or everyone\'s with ?user=*.',
      security: secured,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          from: { type: 'string', format: 'date-time', description: 'default: 24 h (hour) or 30 days (day) before `to`' },
          to: { type: 'string', format: 'date-time', description: 'default: now' },
          granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour' },
          tunnel: { type: 'string', maxLength: 128 },
          user: { type: 'string', maxLength: 128 },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['granularity', 'from', 'to', 'buckets', 'totals'],
          properties: {
            granularity: { type: 'string' },
            from: { type: 'integer' },
            to: { type: 'integer' },
            buckets: { type: 'array', items: ref('UsageBucket') },
            totals: { type: 'object', properties: { bytesIn: { type: 'integer' }, bytesOut: { type: 'integer' }, connections: { type: 'integer' }, activeSeconds: { type: 'integer' } } },
          },
        },
        ...errors(400, 401, 403),
      },
    },
  }, async req => {
    const c = ctx.caller(req)
    const q = req.query
    const granularity = q.granularity ?? 'hour'
    const to = q.to !== undefined ? Date.parse(q.to) : Date.now()
    const from = q.from !== undefined ? Date.parse(q.from) : to - (granularity === 'hour' ? DAY : 30 * DAY)
    if (!(from < to)) throw new InvalidInputError('"from" must be before "to"', 'from')
    if (to - from > MAX_RANGE[granularity]) throw new InvalidInputError(`a ${granularity} query spans at most ${MAX_RANGE[granularity] / DAY} days`, 'from')
    let userId: string | undefined = c.user.id
    if (q.user !== undefined && q.user !== c.user.id) {
      if (c.user.role !== 'admin') throw new ForbiddenError('only admins can read other users\' usage')
      userId = q.user === '*' ? undefined : q.user
    }
    const buckets = await store.queryUsage({ userId, from, to, granularity, ...(q.tunnel !== undefined ? { tunnel: q.tunnel } : {}) })
    const totals = { bytesIn: 0, bytesOut: 0, connections: 0, activeSeconds: 0 }
    for (const b of buckets) { totals.bytesIn += b.bytesIn; totals.bytesOut += b.bytesOut; totals.connections += b.connections; totals.activeSeconds += b.activeSeconds }
    return { granularity, from: from - (from % (granularity === 'hour' ? HOUR : DAY)), to, buckets, totals }
  })

  // ---- Audit log ----

  app.get<{ Querystring: { before?: number, limit?: number, actor?: string } }>('/v1/audit', {
    config: { auth: 'admin' },
    schema: {
      tags: ['relay'],
      summary: 'The audit log, newest first (admin). Pass `next` back as `before` for the next page.',
      security: secured,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { before: { type: 'integer', minimum: 1 }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }, actor: { type: 'string', maxLength: 128 } },
      },
      response: {
        200: { type: 'object', required: ['entries', 'next'], properties: { entries: { type: 'array', items: ref('AuditEntry') }, next: { type: ['integer', 'null'] } } },
        ...errors(400, 401, 403),
      },
    },
  }, async req => await store.listAudit({
    ...(req.query.before !== undefined ? { before: req.query.before } : {}),
    ...(req.query.limit !== undefined ? { limit: req.query.limit } : {}),
    ...(req.query.actor !== undefined ? { actorId: req.query.actor } : {}),
  }))
}
