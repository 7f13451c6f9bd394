/** Routes for accounts: login/logout/sign-up, the caller, users (admin) and plan limits. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { RateLimitedError } from 'mport/errors'
import { InvalidInputError, NotFoundError } from 'mport/errors'
import type { LimitOverrides, Role, User } from '../store/types.js'
import { MAX_PASSWORD } from '../store/validate.js'
import type { ApiContext } from './context.js'
import { ForbiddenError, UnauthenticatedError } from 'mport/errors'
import { errors, idParams, ref, secured } from './schemas.js'

/** API form of a user. */
export function userView (u: User): { id: string, name: string, role: Role, createdAt: number, disabled: boolean } {
  return { id: u.id, name: u.name, role: u.role, createdAt: u.createdAt, disabled: u.disabledAt !== null }
}

export const credentialsBody = {
  type: 'object',
  required: ['name', 'password'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 64 },
    password: { type: 'string', minLength: 1, maxLength: MAX_PASSWORD },
  },
} as const

const sessionReply = {
  type: 'object',
  required: ['token', 'expiresAt', 'user'],
  properties: { token: { type: 'string', description: 'Session token (mps_…): send it as "Authorization: Bearer <token>".' }, expiresAt: { type: 'integer' }, user: ref('User') },
} as const

/** Refuses a client address over the failure limit with a clear 429. */
function checkLimiter (ctx: ApiContext, req: FastifyRequest): void {
  const wait = ctx.loginLimiter.retryAfter(req.ip)
  if (wait > 0) throw new RateLimitedError(`too many failed attempts from ${req.ip}: retry in ${Math.ceil(wait / 1000)} s`, wait)
}

/** A new login session: always a fresh token (so a session planted before login is never the one logged in). */
export type NewSession = { raw: string, expiresAt: number, user: User }

/** Checks name and password (rate-limited per address, audited) and opens a session. */
export async function logIn (ctx: ApiContext, req: FastifyRequest, name: string, password: string): Promise<NewSession> {
  checkLimiter(ctx, req)
  const user = await ctx.store.checkPassword(name, password)
  if (user === undefined) {
    ctx.loginLimiter.fail(req.ip)
    await ctx.audit(req, 'login.failed', name)
    throw new UnauthenticatedError('wrong user name or password, or the account is disabled')
  }
  ctx.loginLimiter.succeed(req.ip)
  const { session, raw } = await ctx.store.createSession(user.id, ctx.opts.sessionTtlMs, req.ip)
  req.caller = { user, via: 'session', raw }
  await ctx.audit(req, 'login', user.id)
  return { raw, expiresAt: session.expiresAt, user }
}

/** Creates an account when the relay allows open sign-up, and opens its session. */
export async function signUp (ctx: ApiContext, req: FastifyRequest, name: string, password: string): Promise<NewSession> {
  if (!ctx.opts.openSignup) throw new ForbiddenError('sign-up is closed on this relay: ask its operator for an account')
  checkLimiter(ctx, req)
  // Every sign-up counts against the address, so one address cannot mass-create accounts.
  ctx.loginLimiter.fail(req.ip)
  const user = await ctx.store.createUser({ name, password, role: 'user' })
  const { session, raw } = await ctx.store.createSession(user.id, ctx.opts.sessionTtlMs, req.ip)
  req.caller = { user, via: 'session', raw }
  await ctx.audit(req, 'signup', user.id)
  return { raw, expiresAt: session.expiresAt, user }
}

export function accountRoutes (app: FastifyInstance, ctx: ApiContext): void {
  const { store } = ctx

  app.post<{ Body: { name: string, password: string } }>('/v1/login', {
    config: { auth: 'public' },
    schema: {
      tags: ['auth'],
      summary: 'Log in with name and password; returns a session token. Rate-limited per client address.',
      body: credentialsBody,
      response: { 200: sessionReply, ...errors(400, 401, 429) },
    },
  }, async req => {
    const s = await logIn(ctx, req, req.body.name, req.body.password)
    return { token: s.raw, expiresAt: s.expiresAt, user: userView(s.user) }
  })

  app.post('/v1/logout', {
    config: { auth: 'user' },
    schema: { tags: ['auth'], summary: 'End the current session (a no-op for API tokens).', security: secured, response: { 204: { type: 'null' }, ...errors(401) } },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    if (c.via === 'session') await store.deleteSession(c.raw)
    await ctx.audit(req, 'logout', c.user.id)
    return reply.code(204).send()
  })

  app.post<{ Body: { name: string, password: string } }>('/v1/signup', {
    config: { auth: 'public' },
    schema: {
      tags: ['auth'],
      summary: 'Create an account (only when the relay allows open sign-up); returns a session. Rate-limited per client address.',
      body: credentialsBody,
      response: { 201: sessionReply, ...errors(400, 403, 409, 429) },
    },
  }, async (req, reply) => {
    const s = await signUp(ctx, req, req.body.name, req.body.password)
    return reply.code(201).send({ token: s.raw, expiresAt: s.expiresAt, user: userView(s.user) })
  })

  app.get('/v1/me', {
    config: { auth: 'user' },
    schema: {
      tags: ['account'],
      summary: 'The caller, their effective limits and bytes used this month.',
      security: secured,
      response: {
        200: { type: 'object', required: ['user', 'limits', 'monthBytes', 'via'], properties: { user: ref('User'), limits: ref('Limits'), monthBytes: { type: 'integer' }, via: { type: 'string', enum: ['session', 'token'] } } },
        ...errors(401),
      },
    },
  }, async req => {
    const c = ctx.caller(req)
    return { user: userView(c.user), limits: await store.effectiveLimits(c.user.id), monthBytes: await store.monthBytes(c.user.id), via: c.via }
  })

  app.put<{ Body: { current: string, password: string } }>('/v1/me/password', {
    config: { auth: 'user' },
    schema: {
      tags: ['account'],
      summary: 'Change the caller\'s password (needs the current one).',
      security: secured,
      body: { type: 'object', required: ['current', 'password'], additionalProperties: false, properties: { current: { type: 'string', maxLength: MAX_PASSWORD }, password: { type: 'string', maxLength: MAX_PASSWORD } } },
      response: { 204: { type: 'null' }, ...errors(400, 401) },
    },
  }, async (req, reply) => {
    const c = ctx.caller(req)
    if (await store.checkPassword(c.user.name, req.body.current) === undefined) throw new InvalidInputError('the current password is wrong', 'current')
    await store.updateUser(c.user.id, { password: req.body.password })
    await ctx.audit(req, 'password.change', c.user.id)
    return reply.code(204).send()
  })

  app.get('/v1/limits', {
    config: { auth: 'user' },
    schema: { tags: ['account'], summary: 'The caller\'s effective limits.', security: secured, response: { 200: ref('Limits'), ...errors(401) } },
  }, async req => await store.effectiveLimits(ctx.caller(req).user.id))

  // ---- Users (admin) ----

  app.get('/v1/users', {
    config: { auth: 'admin' },
    schema: { tags: ['users'], summary: 'All users (admin).', security: secured, response: { 200: { type: 'array', items: ref('User') }, ...errors(401, 403) } },
  }, async () => (await store.listUsers()).map(userView))

  app.post<{ Body: { name: string, password: string, role?: Role } }>('/v1/users', {
    config: { auth: 'admin' },
    schema: {
      tags: ['users'],
      summary: 'Create a user (admin).',
      security: secured,
      body: {
        type: 'object',
        required: ['name', 'password'],
        additionalProperties: false,
        properties: { name: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: MAX_PASSWORD }, role: { type: 'string', enum: ['admin', 'user'] } },
      },
      response: { 201: ref('User'), ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    const user = await store.createUser(req.body)
    await ctx.audit(req, 'user.create', user.id, { name: user.name, role: user.role })
    return reply.code(201).send(userView(user))
  })

  app.get<{ Params: { id: string } }>('/v1/users/:id', {
    config: { auth: 'admin' },
    schema: { tags: ['users'], summary: 'One user (admin).', security: secured, params: idParams, response: { 200: ref('User'), ...errors(401, 403, 404) } },
  }, async req => {
    const user = await store.getUser(req.params.id)
    if (user === undefined) throw new NotFoundError('user', req.params.id)
    return userView(user)
  })

  app.patch<{ Params: { id: string }, Body: { disabled?: boolean, role?: Role, password?: string } }>('/v1/users/:id', {
    config: { auth: 'admin' },
    schema: {
      tags: ['users'],
      summary: 'Disable or enable a user, change their role or set their password (admin). Disabling ends their sessions and tunnel logins.',
      security: secured,
      params: idParams,
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: { disabled: { type: 'boolean' }, role: { type: 'string', enum: ['admin', 'user'] }, password: { type: 'string', maxLength: MAX_PASSWORD } },
      },
      response: { 200: ref('User'), ...errors(400, 401, 403, 404) },
    },
  }, async req => {
    const c = ctx.caller(req)
    if (req.params.id === c.user.id && (req.body.disabled === true || req.body.role === 'user')) {
      throw new InvalidInputError('an admin cannot disable or demote their own account (ask another admin)')
    }
    const user = await store.updateUser(req.params.id, req.body)
    const { password: _secret, ...shown } = req.body
    await ctx.audit(req, 'user.update', user.id, { ...shown, ...(req.body.password !== undefined ? { password: 'changed' } : {}) })
    if (req.body.disabled === true) ctx.opts.onRevoke?.({ userId: user.id })
    return userView(user)
  })

  app.get<{ Params: { id: string } }>('/v1/users/:id/limits', {
    config: { auth: 'admin' },
    schema: {
      tags: ['users'],
      summary: 'A user\'s limit overrides, the relay defaults and the effective limits (admin).',
      security: secured,
      params: idParams,
      response: {
        200: { type: 'object', required: ['defaults', 'overrides', 'effective'], properties: { defaults: ref('Limits'), overrides: ref('LimitOverrides'), effective: ref('Limits') } },
        ...errors(401, 403, 404),
      },
    },
  }, async req => {
    if (await store.getUser(req.params.id) === undefined) throw new NotFoundError('user', req.params.id)
    return { defaults: store.defaultLimits, overrides: await store.getLimitOverrides(req.params.id), effective: await store.effectiveLimits(req.params.id) }
  })

  app.put<{ Params: { id: string }, Body: LimitOverrides }>('/v1/users/:id/limits', {
    config: { auth: 'admin' },
    schema: {
      tags: ['users'],
      summary: 'Set a user\'s limit overrides (admin): a number overrides the default, null removes the override.',
      security: secured,
      params: idParams,
      body: ref('LimitOverrides'),
      response: { 200: ref('LimitOverrides'), ...errors(400, 401, 403, 404) },
    },
  }, async req => {
    const overrides = await store.setLimitOverrides(req.params.id, req.body)
    await ctx.audit(req, 'limits.set', req.params.id, { ...req.body })
    return overrides
  })
}
