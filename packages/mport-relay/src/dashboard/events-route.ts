/**
 * GET /v1/events: the push channel as server-sent events. The first event is the caller's
 * live tunnels; then the same `tunnels` event whenever they change and once a second. Works
 * with the session cookie (EventSource) and with a Bearer token.
 */
import type { FastifyInstance } from 'fastify'
import type { ApiContext } from '../api/context.js'
import { errors, secured } from '../api/schemas.js'
import type { TunnelFeed } from './tunnel-feed.js'

export function eventsRoute (app: FastifyInstance, ctx: ApiContext, feed: TunnelFeed | undefined): void {
  app.get<{ Querystring: { all?: boolean } }>('/v1/events', {
    config: { auth: 'user' },
    schema: {
      tags: ['tunnels'],
      summary: 'Server-sent events: `tunnels` ({ at, tunnels: Tunnel[] }) at once, on every change and every second. Admins get every user\'s with ?all=true. At most 8 open per user.',
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { all: { type: 'boolean' } } },
      response: { 200: { description: 'text/event-stream', type: 'string' }, ...errors(401, 429, 503) },
    },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    if (feed === undefined) {
      return reply.code(503).send({ error: { code: 'MPORT_ERR_UNAVAILABLE', message: 'live tunnels are not available on this API' } })
    }
    const res = reply.raw
    const sub = {
      userId: c.user.id,
      all: c.user.role === 'admin' && req.query.all === true,
      send: (event: string, data: unknown): boolean => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
      onDrain: (resume: () => void): void => { res.once('drain', resume) },
    }
    feed.admit(c.user.id) // before the stream starts, so a refused tab gets a plain 429
    reply.hijack()
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    res.write('retry: 2000\n\n')
    const unsubscribe = feed.subscribe(sub)
    req.raw.once('close', unsubscribe)
  })
}
