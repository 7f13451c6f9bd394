/**
 * The dashboard's session cookie and CSRF token over real HTTP: what the cookie says
 * (HttpOnly, SameSite=Strict, Secure behind a TLS proxy), that a cookie-authenticated
 * state-changing request needs the CSRF token and a Bearer one does not, that logging in never
 * keeps a session planted before (fixation), logout, and that the cookie gives a user no more
 * than their Bearer token would (admin routes, other users' tunnels).
 */
import t from 'tap'
import { csrfMatches, csrfToken, sessionFromCookie } from '../../packages/mport-relay/src/dashboard/cookie-session.js'
import { PASSWORD, startApi, type ApiFixture } from '../api/fixtures/api.js'

/** Logs in into a cookie; the cookie's value, its Set-Cookie line and the CSRF token. */
async function cookieLogin (api: ApiFixture, name: string, headers: Record<string, string> = {}): Promise<{ cookie: string, setCookie: string, csrf: string }> {
  const r = await api.call('POST', '/v1/session', { body: { name, password: PASSWORD }, headers })
  if (r.status !== 200) throw new Error(`login as ${name}: ${r.status} ${JSON.stringify(r.body)}`)
  const setCookie = r.headers.get('set-cookie') ?? ''
  const value = sessionFromCookie(setCookie.split(';')[0])
  if (value === undefined) throw new Error(`no session cookie in ${setCookie}`)
  return { cookie: `mport_session=${value}`, setCookie, csrf: r.body.csrf }
}

t.test('the cookie: HttpOnly, SameSite=Strict, a fresh mps_ session; the page reads its CSRF token', async t => {
  const api = await startApi(t)
  const s = await cookieLogin(api, 'alice')
  t.match(s.setCookie, /^mport_session=mps_[\w-]+; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/, 'no Secure over plain HTTP')
  const me = await api.call('GET', '/v1/me', { headers: { cookie: s.cookie } })
  t.equal(me.status, 200)
  t.equal(me.body.user.name, 'alice')
  const state = await api.call('GET', '/v1/session', { headers: { cookie: s.cookie } })
  t.equal(state.status, 200)
  t.equal(state.body.csrf, s.csrf, 'the same CSRF token on reload')
  t.equal(state.body.signup, false)
  t.equal((await api.call('GET', '/v1/session', { token: api.users.alice.session })).status, 401, 'a Bearer caller has no cookie session')
  t.equal((await api.call('GET', '/v1/session')).status, 401)
  t.equal((await api.call('GET', '/v1/me', { headers: { cookie: 'mport_session=<script>; other=1' } })).status, 401, 'a malformed cookie is no session')
  const wrong = await api.call('POST', '/v1/session', { body: { name: 'alice', password: 'wrong password' } })
  t.equal(wrong.status, 401)
  t.equal(wrong.headers.get('set-cookie'), null, 'no cookie for a failed login')
})

t.test('Secure when the page came over TLS through a trusted proxy', async t => {
  const api = await startApi(t, { trustProxy: true })
  const s = await cookieLogin(api, 'alice', { 'x-forwarded-proto': 'https' })
  t.match(s.setCookie, /; HttpOnly; SameSite=Strict; Secure$/)
  const out = await api.call('DELETE', '/v1/session', { headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, 'x-forwarded-proto': 'https' } })
  t.match(out.headers.get('set-cookie'), /^mport_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict; Secure$/)
})

t.test('CSRF: a cookie needs the token on every state-changing request; Bearer does not', async t => {
  const api = await startApi(t)
  const alice = await cookieLogin(api, 'alice')
  const bob = await cookieLogin(api, 'bob')
  const attempts: Array<[string, string, unknown]> = [
    ['POST', '/v1/tokens', { name: 'stolen' }],
    ['PUT', '/v1/me/password', { current: PASSWORD, password: 'attacker-chosen-password' }],
    ['POST', '/v1/reservations', { kind: 'subdomain', value: 'csrf' }],
    ['DELETE', '/v1/session', undefined],
    ['POST', '/v1/logout', undefined],
  ]
  for (const [method, url, body] of attempts) {
    for (const [why, headers] of [['no token', {}], ['a wrong token', { 'x-csrf-token': 'x'.repeat(43) }], ['another session\'s token', { 'x-csrf-token': bob.csrf }]] as const) {
      const r = await api.call(method, url, { headers: { cookie: alice.cookie, ...headers }, ...(body !== undefined ? { body } : {}) })
      t.equal(r.status, 403, `${method} ${url} with ${why} → 403`)
      t.equal(r.body.error.code, 'MPORT_ERR_FORBIDDEN')
    }
  }
  t.same((await api.call('GET', '/v1/tokens', { token: api.users.alice.session })).body, [], 'no token was made')
  t.equal((await api.call('GET', '/v1/me', { headers: { cookie: alice.cookie } })).status, 200, 'the session is still alive')
  t.equal((await api.store.checkPassword('alice', PASSWORD))?.name, 'alice', 'the password is unchanged')

  const made = await api.call('POST', '/v1/tokens', { headers: { cookie: alice.cookie, 'x-csrf-token': alice.csrf }, body: { name: 'laptop' } })
  t.equal(made.status, 201, 'with the token it works')
  const bearer = await api.call('POST', '/v1/tokens', { token: api.users.alice.session, body: { name: 'ci' } })
  t.equal(bearer.status, 201, 'a Bearer request needs no CSRF token')
  t.equal((await api.call('GET', '/v1/tokens', { headers: { cookie: alice.cookie } })).status, 200, 'reads need none')
  t.notOk(csrfMatches('mps_a', csrfToken('mps_b')), 'tokens are per session')
})

t.test('session fixation: logging in never keeps a session planted before', async t => {
  const api = await startApi(t)
  // An attacker's own real session, planted in the victim's browser.
  const planted = await cookieLogin(api, 'bob')
  const victim = await cookieLogin(api, 'alice', { cookie: planted.cookie })
  t.not(victim.cookie, planted.cookie, 'a new session value')
  t.equal((await api.call('GET', '/v1/me', { headers: { cookie: planted.cookie } })).status, 401, 'the planted session was ended')
  t.equal((await api.call('GET', '/v1/me', { headers: { cookie: victim.cookie } })).body.user.name, 'alice')
  // A made-up value never becomes a session.
  const madeUp = 'mport_session=mps_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
  const after = await cookieLogin(api, 'alice', { cookie: madeUp })
  t.not(after.cookie, madeUp)
  t.equal((await api.call('GET', '/v1/me', { headers: { cookie: madeUp } })).status, 401)
})

t.test('logout ends the session and clears the cookie', async t => {
  const api = await startApi(t)
  const s = await cookieLogin(api, 'alice')
  const out = await api.call('DELETE', '/v1/session', { headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
  t.equal(out.status, 204)
  t.match(out.headers.get('set-cookie'), /^mport_session=; Path=\/; Max-Age=0;/)
  t.equal((await api.call('GET', '/v1/me', { headers: { cookie: s.cookie } })).status, 401, 'the old cookie no longer works')
})

t.test('a non-admin cookie reaches no admin route and no other user\'s data', async t => {
  const api = await startApi(t)
  api.tunnels.push({ id: 'c1:1', name: 'bob-db', userId: api.users.bob.id, userName: 'bob', port: 20001 })
  const alice = await cookieLogin(api, 'alice')
  const headers = { cookie: alice.cookie, 'x-csrf-token': alice.csrf }
  for (const url of ['/v1/users', '/v1/audit', `/v1/users/${api.users.bob.id}/limits`, `/v1/usage?user=${api.users.bob.id}`, `/v1/tunnels?user=${api.users.bob.id}`]) {
    t.equal((await api.call('GET', url, { headers })).status, 403, `GET ${url} → 403`)
  }
  t.equal((await api.call('POST', '/v1/users', { headers, body: { name: 'mallory', password: 'a long password' } })).status, 403)
  t.equal((await api.call('PATCH', `/v1/users/${api.users.bob.id}`, { headers, body: { disabled: true } })).status, 403)
  t.same((await api.call('GET', '/v1/tunnels', { headers })).body, [], 'bob\'s tunnel is not listed')
  t.equal((await api.call('DELETE', '/v1/tunnels/c1:1', { headers })).status, 404)
  const admin = await cookieLogin(api, 'admin')
  t.equal((await api.call('GET', '/v1/users', { headers: { cookie: admin.cookie } })).status, 200, 'an admin\'s cookie does')
})

t.test('sign-up into a cookie only when the relay allows it', async t => {
  const closed = await startApi(t)
  const refused = await closed.call('POST', '/v1/session/signup', { body: { name: 'carol', password: 'a long password' } })
  t.equal(refused.status, 403)
  t.equal(refused.headers.get('set-cookie'), null)
  const open = await startApi(t, { openSignup: true })
  const r = await open.call('POST', '/v1/session/signup', { body: { name: 'carol', password: 'a long password' } })
  t.equal(r.status, 201)
  t.equal(r.body.user.name, 'carol')
  t.equal(r.body.signup, true)
  t.match(r.headers.get('set-cookie'), /^mport_session=mps_/)
})

t.test('the pages: built assets with a strict Content-Security-Policy', async t => {
  const api = await startApi(t)
  const page = await api.call('GET', '/')
  t.equal(page.status, 200, 'the dashboard was built (npm run build)')
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.equal(page.headers.get('content-security-policy'), "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
  t.equal(page.headers.get('x-frame-options'), 'DENY')
  t.match(page.body, /<script type="module" src="\/assets\/dashboard\.js"><\/script>/)
  t.notMatch(page.body, /<script>|<style>| on\w+=/, 'no inline script or style')
  const js = await api.call('GET', '/assets/dashboard.js')
  t.equal(js.status, 200)
  t.match(js.headers.get('content-type'), /^text\/javascript/)
  t.ok(Buffer.byteLength(js.body) < 150 * 1024, `the script is ${Buffer.byteLength(js.body)} bytes, under 150 KB`)
  t.equal((await api.call('GET', '/assets/../package.json')).status, 404)
})
