/** api/app.ts: bearer auth (sessions and API tokens), the error shape every 4xx/5xx has, the OpenAPI document. */
import t from 'tap'
import { apiRoutes, createApi } from '../../packages/mport-relay/src/api/index.js'
import { openStore } from '../../packages/mport-relay/src/store/index.js'
import { startApi } from './fixtures/api.js'

const ERROR = { error: { code: String, message: String } }

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
  t.same(doc.components.securitySchemes.cookie, { type: 'apiKey', in: 'cookie', name: 'mport_session', description: doc.components.securitySchemes.cookie.description })
  const routes = apiRoutes(app)
  t.same(routes.map(r => `${r.method} ${r.url}`).sort(), [
    'DELETE /v1/reservations/:id', 'DELETE /v1/session', 'DELETE /v1/tokens/:id', 'DELETE /v1/tunnels/:id',
    'GET /dl/SHA256SUMS', 'GET /dl/mport-connect-linux-x64', 'GET /dl/mport-connect.mjs',
    'GET /v1/admin/health', 'GET /v1/audit', 'GET /v1/connect-info', 'GET /v1/events', 'GET /v1/health', 'GET /v1/limits', 'GET /v1/me', 'GET /v1/reservations', 'GET /v1/session', 'GET /v1/tokens', 'GET /v1/tunnels', 'GET /v1/tunnels/:id/requests', 'GET /v1/tunnels/:id/visitors',
    'GET /v1/usage', 'GET /v1/users', 'GET /v1/users/:id', 'GET /v1/users/:id/limits',
    'PATCH /v1/users/:id',
    'POST /v1/admin/reload', 'POST /v1/login', 'POST /v1/logout', 'POST /v1/reservations', 'POST /v1/session', 'POST /v1/session/signup', 'POST /v1/signup', 'POST /v1/tokens', 'POST /v1/tunnels/:id/allow', 'POST /v1/users',
    'PUT /v1/me/password', 'PUT /v1/users/:id/limits',
  ], 'the routes the API is meant to have')
  const documented = new Set<string>()
  const heads: string[] = []
  for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, { summary?: string, security?: unknown[], responses?: Record<string, unknown> }>>)) {
    for (const [m, op] of Object.entries(ops)) {
      // HEAD is documented where a route declares it itself (the downloads: size and checksum without the body).
      if (m === 'head') heads.push(p)
      else documented.add(`${m.toUpperCase()} ${p}`)
      t.ok(op.summary, `${m} ${p} has a summary`)
      t.ok(op.responses && Object.keys(op.responses).some(s => s.startsWith('2')), `${m} ${p} documents its success answer`)
    }
  }
  for (const r of routes) {
    const key = `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`
    t.ok(documented.has(key), `${key} is in the document`)
    const op = doc.paths[r.url.replace(/:(\w+)/g, '{$1}')][r.method.toLowerCase()]
    if (r.auth === 'public') t.notOk(op.security, `${key} is public`)
    else if (r.url === '/v1/session') t.same(op.security, [{ cookie: [] }], `${key} needs the dashboard's session cookie`)
    else t.same(op.security, [{ bearer: [] }, { cookie: [] }], `${key} needs a bearer token or the session cookie`)
  }
  t.equal(documented.size, routes.length, 'and nothing else')
  t.same(heads.sort(), ['/dl/mport-connect-linux-x64', '/dl/mport-connect.mjs'], 'HEAD is documented for the two files')
  const ui = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.body, /swagger/i, 'Swagger UI page')
})
