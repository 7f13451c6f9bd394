/** api/routes-account.ts: login/logout/sign-up with the per-address rate limit, password change, users (admin), plan limits. */
import t from 'tap'
import { PASSWORD, startApi } from './fixtures/api.js'

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

t.test('users: admin only; create, get, disable (ends sessions and tokens), enable', async t => {
  const { call, users, store, revoked } = await startApi(t)
  const admin = users.admin.session
  for (const [method, url, body] of [['GET', '/v1/users'], ['POST', '/v1/users', { name: 'carol', password: PASSWORD }], ['GET', `/v1/users/${users.bob.id}`], ['PATCH', `/v1/users/${users.bob.id}`, { disabled: true }]] as const) {
    t.equal((await call(method, url, { token: users.alice.session, ...(body ? { body } : {}) })).status, 403, `${method} ${url} as a user → 403`)
    t.equal((await call(method, url, body ? { body } : {})).status, 401, `${method} ${url} without auth → 401`)
  }

  const list = await call('GET', '/v1/users', { token: admin })
  t.same(list.body.map((u: { name: string }) => u.name).sort(), ['admin', 'alice', 'bob'])
  const created = await call('POST', '/v1/users', { token: admin, body: { name: 'carol', password: PASSWORD, role: 'admin' } })
  t.equal(created.status, 201)
  t.match(created.body, { id: /^usr_/, name: 'carol', role: 'admin', disabled: false })
  t.equal((await call('POST', '/v1/users', { token: admin, body: { name: 'carol', password: PASSWORD } })).body.error.code, 'MPORT_ERR_USER_EXISTS')
  t.equal((await call('POST', '/v1/users', { token: admin, body: { name: 'carol2', password: PASSWORD, role: 'root' } })).status, 400)
  t.equal((await call('POST', '/v1/users', { token: admin, body: { name: 'carol2' } })).status, 400)
  t.equal((await call('GET', `/v1/users/${created.body.id}`, { token: admin })).body.name, 'carol')
  const missing = await call('GET', '/v1/users/usr_nope', { token: admin })
  t.equal(missing.status, 404)
  t.equal(missing.body.error.code, 'MPORT_ERR_NOT_FOUND')

  const { raw } = await store.createToken(users.bob.id, 'cli')
  const disabled = await call('PATCH', `/v1/users/${users.bob.id}`, { token: admin, body: { disabled: true } })
  t.equal(disabled.status, 200)
  t.equal(disabled.body.disabled, true)
  t.same(revoked, [{ userId: users.bob.id }], 'the relay is told to drop his tunnels')
  t.equal((await call('GET', '/v1/me', { token: users.bob.session })).status, 401, 'his session ended')
  t.equal((await call('GET', '/v1/me', { token: raw })).status, 401, 'his token no longer works')
  t.equal((await call('PATCH', `/v1/users/${users.bob.id}`, { token: admin, body: { disabled: false } })).body.disabled, false)
  t.equal((await call('GET', '/v1/me', { token: raw })).status, 200, 'enabled again')

  t.equal((await call('PATCH', `/v1/users/${users.admin.id}`, { token: admin, body: { disabled: true } })).status, 400, 'no self-lockout')
  t.equal((await call('PATCH', `/v1/users/${users.bob.id}`, { token: admin, body: {} })).status, 400, 'empty change')
  t.equal((await call('PATCH', `/v1/users/${users.bob.id}`, { token: admin, body: { name: 'robert' } })).status, 400, 'unknown field')
  t.equal((await call('PATCH', '/v1/users/usr_nope', { token: admin, body: { disabled: true } })).status, 404)
  t.equal((await call('PATCH', `/v1/users/${users.bob.id}`, { token: admin, body: { password: 'bob new password' } })).status, 200)
  t.equal((await call('POST', '/v1/login', { body: { name: 'bob', password: 'bob new password' } })).status, 200)
  const entry = (await store.listAudit()).entries.find(e => e.action === 'user.update' && e.details?.password !== undefined)
  t.equal(entry?.details?.password, 'changed', 'the audit log never holds a password')
})

t.test('limits: own effective limits; admins set per-user overrides', async t => {
  const { call, users } = await startApi(t)
  const admin = users.admin.session
  const url = `/v1/users/${users.alice.id}/limits`
  t.same((await call('GET', '/v1/limits', { token: users.alice.session })).body, { maxTunnels: null, maxConnections: null, monthlyBytes: null, bandwidthBytesPerSecond: null, connectionsPerMinute: null })
  t.equal((await call('PUT', url, { token: users.alice.session, body: { maxTunnels: 100 } })).status, 403, 'users cannot raise their own limits')
  t.equal((await call('GET', url, { token: users.alice.session })).status, 403)
  t.equal((await call('PUT', url, { body: { maxTunnels: 100 } })).status, 401)
  const set = await call('PUT', url, { token: admin, body: { maxTunnels: 3, bandwidthBytesPerSecond: 1_000_000 } })
  t.equal(set.status, 200)
  t.same(set.body, { maxTunnels: 3, bandwidthBytesPerSecond: 1_000_000 })
  t.same((await call('PUT', url, { token: admin, body: { maxTunnels: null } })).body, { bandwidthBytesPerSecond: 1_000_000 })
  for (const body of [{ maxTunnels: -1 }, { maxTunnels: 1.5 }, { maxTunnels: 'lots' }, { tunnels: 3 }]) {
    t.equal((await call('PUT', url, { token: admin, body })).status, 400, `400 for ${JSON.stringify(body)}`)
  }
  t.equal((await call('PUT', '/v1/users/usr_nope/limits', { token: admin, body: { maxTunnels: 1 } })).status, 404)
  t.equal((await call('GET', '/v1/users/usr_nope/limits', { token: admin })).status, 404)
  const view = await call('GET', url, { token: admin })
  t.match(view.body, { overrides: { bandwidthBytesPerSecond: 1_000_000 }, effective: { bandwidthBytesPerSecond: 1_000_000, maxTunnels: null }, defaults: { bandwidthBytesPerSecond: null } })
  t.equal((await call('GET', '/v1/me', { token: users.alice.session })).body.limits.bandwidthBytesPerSecond, 1_000_000)
})
