/** REST API: health, login/logout/sign-up, bearer auth, the login rate limit, error shape, OpenAPI document. */
import t from 'tap'
import { apiRoutes, createApi } from '../../packages/mport-relay/src/api/index.js'
import { openStore } from '../../packages/mport-relay/src/store/index.js'
import { PASSWORD, startApi } from './fixtures/api.js'

const ERROR = { error: { code: String, message: String } }

t.test('health answers without auth, and 503 when the database does not', async t => {
  const api = await startApi(t)
  api.tunnels.push({ id: 'c1:1', name: 'web', userId: api.users.alice.id })
  const ok = await api.call('GET', '/v1/health')
  t.equal(ok.status, 200)
  t.match(ok.body, { status: 'ok', database: 'sqlite', tunnels: 1, uptimeSeconds: Number, version: String })

  const dead = await openStore({ url: ':memory:' })
  await dead.close()
  const app = await createApi({ store: dead })
  t.teardown(() => app.close())
  const r = await app.inject({ method: 'GET', url: '/v1/health' })
  t.equal(r.statusCode, 503)
  t.match(r.json(), { status: 'unavailable', error: { code: 'MPORT_ERR_DATABASE' } })
})

t.test('login: a session token for the right password; clear 400/401 otherwise', async t => {
  const { call, users, store } = await startApi(t)
  const ok = await call('POST', '/v1/login', { body: { name: 'alice', password: PASSWORD } })
  t.equal(ok.status, 200)
  t.match(ok.body, { token: /^mps_/, expiresAt: Number, user: { id: users.alice.id, name: 'alice', role: 'user', disabled: false } })
  t.notOk('password_hash' in ok.body.user || 'passwordHash' in ok.body.user, 'no hash in the answer')
  const me = await call('GET', '/v1/me', { token: ok.body.token })
  t.equal(me.status, 200)
  t.match(me.body, { user: { name: 'alice' }, via: 'session', monthBytes: 0, limits: { maxTunnels: null } })

  const wrong = await call('POST', '/v1/login', { body: { name: 'alice', password: 'nope-nope' } })
  t.equal(wrong.status, 401)
  t.match(wrong.body, { error: { code: 'MPORT_ERR_UNAUTHENTICATED', message: /wrong user name or password/ } })
  t.equal((await call('POST', '/v1/login', { body: { name: 'nobody', password: PASSWORD } })).status, 401, 'unknown user: same answer')

  for (const body of [{}, { name: 'alice' }, { name: 'alice', password: { x: 1 } }, { name: 'alice', password: PASSWORD, extra: true }, []]) {
    const r = await call('POST', '/v1/login', { body })
    t.equal(r.status, 400, `400 for ${JSON.stringify(body)}`)
    t.match(r.body, { error: { code: 'MPORT_ERR_INVALID_INPUT', message: /invalid request/ } })
  }

  await store.updateUser(users.bob.id, { disabled: true })
  t.equal((await call('POST', '/v1/login', { body: { name: 'bob', password: PASSWORD } })).status, 401, 'a disabled user cannot log in')
})

t.test('bearer auth: missing, malformed, unknown, expired, API tokens', async t => {
  const { call, store, users } = await startApi(t)
  const none = await call('GET', '/v1/me')
  t.equal(none.status, 401)
  t.match(none.body, { error: { code: 'MPORT_ERR_UNAUTHENTICATED', message: /Authorization: Bearer/ } })
  t.equal((await call('GET', '/v1/me', { headers: { authorization: 'Basic YWxpY2U6eA==' } })).status, 401)
  t.equal((await call('GET', '/v1/me', { token: 'mps_nope' })).status, 401)
  t.equal((await call('GET', '/v1/me', { token: 'mpt_nope' })).status, 401)
  t.equal((await call('GET', '/v1/me', { token: 'something-else' })).status, 401)

  const short = await store.createSession(users.alice.id, -1)
  t.match((await call('GET', '/v1/me', { token: short.raw })).body, { error: { code: 'MPORT_ERR_UNAUTHENTICATED', message: /expired/ } })

  const { raw } = await store.createToken(users.alice.id, 'cli')
  const viaToken = await call('GET', '/v1/me', { token: raw })
  t.equal(viaToken.status, 200)
  t.equal(viaToken.body.via, 'token')
  t.not((await store.listTokens(users.alice.id))[0]?.lastUsedAt, null, 'bearer use recorded')
})

t.test('logout ends a session; with an API token it is a no-op', async t => {
  const { call, users, store } = await startApi(t)
  t.equal((await call('POST', '/v1/logout', { token: users.alice.session })).status, 204)
  t.equal((await call('GET', '/v1/me', { token: users.alice.session })).status, 401, 'the session is gone')
  t.equal((await call('POST', '/v1/logout')).status, 401)
  const { raw } = await store.createToken(users.bob.id, 'cli')
  t.equal((await call('POST', '/v1/logout', { token: raw })).status, 204)
  t.equal((await call('GET', '/v1/me', { token: raw })).status, 200, 'the API token still works')
})

t.test('login is rate-limited per client address with a clear 429', async t => {
  const { call } = await startApi(t, { loginLimit: { max: 3, windowMs: 60_000 }, trustProxy: true })
  for (let i = 0; i < 3; i++) t.equal((await call('POST', '/v1/login', { body: { name: 'alice', password: `wrong-${i}` } })).status, 401)
  const limited = await call('POST', '/v1/login', { body: { name: 'alice', password: PASSWORD } })
  t.equal(limited.status, 429, 'even the right password is refused while limited')
  t.match(limited.body, { error: { code: 'MPORT_ERR_RATE_LIMITED', message: /too many failed attempts from 127\.0\.0\.1: retry in \d+ s/ } })
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After header')
  const other = await call('POST', '/v1/login', { body: { name: 'alice', password: PASSWORD }, headers: { 'x-forwarded-for': '192.0.2.9' } })
  t.equal(other.status, 200, 'another address is not limited')
  for (let i = 0; i < 2; i++) await call('POST', '/v1/login', { body: { name: 'alice', password: 'bad-password' }, headers: { 'x-forwarded-for': '192.0.2.9' } })
  t.equal((await call('POST', '/v1/login', { body: { name: 'alice', password: PASSWORD }, headers: { 'x-forwarded-for': '192.0.2.9' } })).status, 200, 'a success resets the count')
})

t.test('sign-up: 403 when closed; when open, creates a plain user, rate-limited', async t => {
  const closed = await startApi(t)
  const r = await closed.call('POST', '/v1/signup', { body: { name: 'carol', password: PASSWORD } })
  t.equal(r.status, 403)
  t.match(r.body, { error: { code: 'MPORT_ERR_FORBIDDEN', message: /sign-up is closed/ } })

  const open = await startApi(t, { openSignup: true, loginLimit: { max: 3, windowMs: 60_000 } })
  const ok = await open.call('POST', '/v1/signup', { body: { name: 'carol', password: PASSWORD } })
  t.equal(ok.status, 201)
  t.match(ok.body, { token: /^mps_/, user: { name: 'carol', role: 'user' } })
  t.equal((await open.call('GET', '/v1/me', { token: ok.body.token })).body.user.name, 'carol')
  const dup = await open.call('POST', '/v1/signup', { body: { name: 'carol', password: PASSWORD } })
  t.equal(dup.status, 409)
  t.equal(dup.body.error.code, 'MPORT_ERR_USER_EXISTS')
  t.equal((await open.call('POST', '/v1/signup', { body: { name: 'dave', password: PASSWORD } })).status, 201, 'third attempt')
  const limited = await open.call('POST', '/v1/signup', { body: { name: 'erin', password: PASSWORD } })
  t.equal(limited.status, 429, 'three sign-ups from one address, then 429')
  t.equal(limited.body.error.code, 'MPORT_ERR_RATE_LIMITED')
  const audit = await open.store.listAudit()
  t.ok(audit.entries.some(e => e.action === 'signup' && e.actorName === 'carol'))
})

t.test('sign-up validation', async t => {
  const open = await startApi(t, { openSignup: true })
  const bad = await open.call('POST', '/v1/signup', { body: { name: 'Dave!', password: PASSWORD } })
  t.equal(bad.status, 400)
  t.match(bad.body, { error: { code: 'MPORT_ERR_INVALID_INPUT', message: /user name/ } })
  t.match((await open.call('POST', '/v1/signup', { body: { name: 'dave', password: 'short' } })).body, { error: { code: 'MPORT_ERR_INVALID_INPUT', message: /at least 8/ } })
})

t.test('password change needs the current password', async t => {
  const { call, users } = await startApi(t)
  const wrong = await call('PUT', '/v1/me/password', { token: users.alice.session, body: { current: 'not-it-at-all', password: 'brand new pass' } })
  t.equal(wrong.status, 400)
  t.match(wrong.body, { error: { code: 'MPORT_ERR_INVALID_INPUT', message: /current password/ } })
  t.equal((await call('PUT', '/v1/me/password', { token: users.alice.session, body: { current: PASSWORD, password: 'short' } })).status, 400)
  t.equal((await call('PUT', '/v1/me/password', { body: { current: PASSWORD, password: 'brand new pass' } })).status, 401)
  t.equal((await call('PUT', '/v1/me/password', { token: users.alice.session, body: { current: PASSWORD, password: 'brand new pass' } })).status, 204)
  t.equal((await call('POST', '/v1/login', { body: { name: 'alice', password: 'brand new pass' } })).status, 200)
})

t.test('every error is JSON { error: { code, message } }', async t => {
  const { call, users } = await startApi(t)
  const cases: Array<[string, string, Parameters<typeof call>[2], number, string]> = [
    ['GET', '/v1/nowhere', {}, 404, 'MPORT_ERR_NOT_FOUND'],
    ['POST', '/v1/login', { raw: '{not json', headers: { 'content-type': 'application/json' } }, 400, 'MPORT_ERR_INVALID_INPUT'],
    ['POST', '/v1/login', { raw: 'name=alice', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'MPORT_ERR_INVALID_INPUT'],
    ['POST', '/v1/tokens', { token: users.alice.session, raw: JSON.stringify({ name: 'x'.repeat(70_000) }), headers: { 'content-type': 'application/json' } }, 413, 'MPORT_ERR_INVALID_INPUT'],
    ['GET', '/v1/users', { token: users.alice.session }, 403, 'MPORT_ERR_FORBIDDEN'],
  ]
  for (const [method, url, opts, status, code] of cases) {
    const r = await call(method, url, opts)
    t.equal(r.status, status, `${method} ${url} → ${status}`)
    t.match(r.body, ERROR)
    t.equal(r.body.error.code, code)
  }
})

t.test('the OpenAPI document lists every route, with schemas and security', async t => {
  const store = await openStore({ url: ':memory:' })
  const app = await createApi({ store })
  t.teardown(async () => { await app.close(); await store.close() })
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  t.equal(doc.openapi, '3.0.3')
  t.ok(doc.components.securitySchemes.bearer)
  const routes = apiRoutes(app)
  t.same(routes.map(r => `${r.method} ${r.url}`).sort(), [
    'DELETE /v1/reservations/:id', 'DELETE /v1/tokens/:id', 'DELETE /v1/tunnels/:id',
    'GET /v1/audit', 'GET /v1/health', 'GET /v1/limits', 'GET /v1/me', 'GET /v1/reservations', 'GET /v1/tokens', 'GET /v1/tunnels',
    'GET /v1/usage', 'GET /v1/users', 'GET /v1/users/:id', 'GET /v1/users/:id/limits',
    'PATCH /v1/users/:id',
    'POST /v1/login', 'POST /v1/logout', 'POST /v1/reservations', 'POST /v1/signup', 'POST /v1/tokens', 'POST /v1/users',
    'PUT /v1/me/password', 'PUT /v1/users/:id/limits',
  ], 'the routes the API is meant to have')
  const documented = new Set<string>()
  for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, { summary?: string, security?: unknown[], responses?: Record<string, unknown> }>>)) {
    for (const [m, op] of Object.entries(ops)) {
      documented.add(`${m.toUpperCase()} ${p}`)
      t.ok(op.summary, `${m} ${p} has a summary`)
      t.ok(op.responses && Object.keys(op.responses).some(s => s.startsWith('2')), `${m} ${p} documents its success answer`)
    }
  }
  for (const r of routes) {
    const key = `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`
    t.ok(documented.has(key), `${key} is in the document`)
    const op = doc.paths[r.url.replace(/:(\w+)/g, '{$1}')][r.method.toLowerCase()]
    if (r.auth === 'public') t.notOk(op.security, `${key} is public`)
    else t.same(op.security, [{ bearer: [] }], `${key} needs a bearer token`)
  }
  t.equal(documented.size, routes.length, 'and nothing else')
  const ui = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.body, /swagger/i, 'Swagger UI page')
})
