/** Routes for the relay's operator (admin only): reloading the config file. */
import type { FastifyInstance } from 'fastify'
import { UnavailableError } from 'mport/errors'
import type { ApiContext } from './context.js'
import { errors, secured } from './schemas.js'

export function adminRoutes (app: FastifyInstance, ctx: ApiContext): void {
  const { opts } = ctx

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
