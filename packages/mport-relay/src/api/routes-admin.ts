/** Routes for the relay's operator (admin only): reloading the config file. */
import type { FastifyInstance } from 'fastify'
import { UnavailableError } from 'mport/errors'
import type { ApiContext } from './context.js'
import { errors, secured } from './schemas.js'

const seconds = { type: ['number', 'null'], description: 'seconds; null: not measured (the relay runs without its ops listener)' } as const

export function adminRoutes (app: FastifyInstance, ctx: ApiContext): void {
  const { opts } = ctx

  app.get('/v1/admin/health', {
    config: { auth: 'admin' },
    schema: {
      tags: ['relay'],
      summary: 'The relay\'s health (admin): client sessions, tunnels, open visitor streams, memory, event-loop lag and store latency, from the same series as /metrics.',
      security: secured,
      response: {
        200: {
          type: 'object',
          required: ['sessions', 'tunnels', 'streams', 'memory', 'eventLoopLagSeconds', 'store'],
          properties: {
            sessions: { type: 'integer' },
            tunnels: { type: 'integer' },
            streams: { type: 'integer' },
            memory: { type: 'object', required: ['rss', 'heapUsed'], properties: { rss: { type: 'integer' }, heapUsed: { type: 'integer' } } },
            eventLoopLagSeconds: { ...seconds, description: 'p99 event-loop delay' },
            store: { type: 'object', required: ['calls', 'p50Seconds', 'p99Seconds'], properties: { calls: { type: 'integer' }, p50Seconds: seconds, p99Seconds: seconds } },
          },
        },
        ...errors(401, 403, 503),
      },
    },
  }, async () => {
    if (opts.relayHealth === undefined) throw new UnavailableError('relay health')
    return await opts.relayHealth()
  })

  app.post('/v1/admin/reload', {
    config: { auth: 'admin' },
    schema: {
      tags: ['relay'],
      summary: 'Re-read the relay\'s config file and apply it to the live relay (admin), as SIGHUP does. A file that fails validation is rejected whole (422, with the reason) and the running config stays.',
      security: secured,
      response: {
        200: {
          type: 'object',
          required: ['line', 'changed', 'restartNeeded'],
          properties: {
            line: { type: 'string', description: 'The one line the relay logged: what changed (secrets as ***), what was ended, and which changed keys need a restart.' },
            changed: { type: 'array', items: { type: 'string' }, description: 'Keys applied to the live relay (snake_case).' },
            restartNeeded: { type: 'array', items: { type: 'string' }, description: 'Keys changed in the file that apply at the next restart.' },
          },
        },
        ...errors(401, 403, 422, 503),
      },
    },
  }, async req => {
    if (opts.reload === undefined) throw new UnavailableError('this relay has no config file to reload (started without --config)')
    const outcome = await opts.reload()
    await ctx.audit(req, 'relay.reload', null, { changed: outcome.changed, restartNeeded: outcome.restartNeeded })
    return outcome
  })
}
