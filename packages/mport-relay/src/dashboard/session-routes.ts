/**
 * The dashboard's session routes: log in (or sign up) into the session cookie, read the
 * session's CSRF token when a page loads, and log out. The same store sessions as POST
 * /v1/login; only the carrier differs (an HttpOnly cookie the page's script never sees).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { UnauthenticatedError } from 'mport/errors'
import type { ApiContext } from '../api/context.js'
import { credentialsBody, logIn, signUp, userView, type NewSession } from '../api/routes-account.js'
import { COOKIE, errors, ref } from '../api/schemas.js'
import { clearedCookie, csrfToken, sessionCookie, sessionFromCookie } from './cookie-session.js'

const COOKIE_ONLY = [{ [COOKIE]: [] }]

const sessionState = {
  type: 'object',
  required: ['user', 'csrf', 'signup'],
  properties: {
    user: ref('User'),
    csrf: { type: 'string', description: 'Send it as X-CSRF-Token with every POST, PUT, PATCH and DELETE made with the cookie.' },
    expiresAt: { type: 'integer' },
    signup: { type: 'boolean', description: 'Whether this relay allows open sign-up.' },
  },
} as const

/** Secure cookies when the page came over TLS (directly, or from a trusted proxy that says so). */
function secure (req: FastifyRequest): boolean {
  return req.protocol === 'https'
}

export function sessionRoutes (app: FastifyInstance, ctx: ApiContext): void {
  const { store } = ctx

  /** Ends the session a request's cookie names, if any: logging in never keeps a planted one. */
  const dropOld = async (req: FastifyRequest): Promise<void> => {
    const old = sessionFromCookie(req.headers.cookie)
    if (old !== undefined) await store.deleteSession(old)
  }
  const answer = (req: FastifyRequest, reply: FastifyReply, s: NewSession, status: number): FastifyReply =>
    reply.code(status).header('set-cookie', sessionCookie(s.raw, ctx.opts.sessionTtlMs, secure(req)))
      .send({ user: userView(s.user), csrf: csrfToken(s.raw), expiresAt: s.expiresAt, signup: ctx.opts.openSignup })

  app.post<{ Body: { name: string, password: string } }>('/v1/session', {
    config: { auth: 'public' },
    schema: {
      tags: ['auth'],
      summary: 'Log in into a session cookie (the dashboard). A new session every time; one the request\'s cookie named is ended. Rate-limited like /v1/login.',
      body: credentialsBody,
      response: { 200: sessionState, ...errors(400, 401, 429) },
    },
  }, async (req, reply) => {
    await dropOld(req)
    return answer(req, reply, await logIn(ctx, req, req.body.name, req.body.password), 200)
  })

  app.post<{ Body: { name: string, password: string } }>('/v1/session/signup', {
    config: { auth: 'public' },
    schema: {
      tags: ['auth'],
      summary: 'Create an account (when the relay allows open sign-up) and log in into a session cookie.',
      body: credentialsBody,
      response: { 201: sessionState, ...errors(400, 403, 409, 429) },
    },
  }, async (req, reply) => {
    await dropOld(req)
    return answer(req, reply, await signUp(ctx, req, req.body.name, req.body.password), 201)
  })

  app.get('/v1/session', {
    config: { auth: 'user' },
    schema: {
      tags: ['auth'],
      summary: 'The cookie session\'s user and CSRF token (401 without the cookie). The dashboard asks on load.',
      security: COOKIE_ONLY,
      response: { 200: sessionState, ...errors(401) },
    },
  }, async req => {
    const c = ctx.caller(req)
    if (c.cookie !== true) throw new UnauthenticatedError('no session cookie: log in with POST /v1/session')
    return { user: userView(c.user), csrf: csrfToken(c.raw), signup: ctx.opts.openSignup }
  })

  app.delete('/v1/session', {
    config: { auth: 'user' },
    schema: { tags: ['auth'], summary: 'Log out: end the cookie\'s session and clear the cookie (needs X-CSRF-Token).', security: COOKIE_ONLY, response: { 204: { type: 'null' }, ...errors(401, 403) } },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    if (c.via === 'session') await store.deleteSession(c.raw)
    await ctx.audit(req, 'logout', c.user.id)
    return reply.code(204).header('set-cookie', clearedCookie(secure(req))).send()
  })
}
