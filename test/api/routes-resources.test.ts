/** api/routes-resources.ts: health, tokens, tunnels, reservations, usage, audit log; valid, invalid and unauthorised input. */
import t from 'tap'
import { createApi } from '../../packages/mport-relay/src/api/index.js'
import { openStore } from '../../packages/mport-relay/src/store/index.js'
import { tokenId } from '../../src/tunnel/auth.js'
import { PASSWORD, startApi } from './fixtures/api.js'

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

t.test('tokens: created and shown once, listed without secrets, used as bearer, revoked', async t => {
  const { call, users, revoked } = await startApi(t)
  const alice = users.alice.session
  const created = await call('POST', '/v1/tokens', { token: alice, body: { name: 'laptop' } })
  t.equal(created.status, 201)
  t.match(created.body, { token: /^mpt_/, info: { id: /^tok_/, name: 'laptop', tokenId: String, lastUsedAt: null, revokedAt: null } })
  t.equal(created.body.info.tokenId, tokenId(created.body.token))
  const list = await call('GET', '/v1/tokens', { token: alice })
  t.equal(list.body.length, 1)
  t.notMatch(JSON.stringify(list.body), created.body.token, 'the list never shows the token')
  t.notOk('key' in list.body[0])
  t.equal((await call('GET', '/v1/me', { token: created.body.token })).body.user.name, 'alice', 'the token works as a bearer')

  t.equal((await call('POST', '/v1/tokens', { token: alice, body: {} })).status, 400)
  t.equal((await call('POST', '/v1/tokens', { token: alice, body: { name: '' } })).status, 400)
  t.equal((await call('POST', '/v1/tokens', { token: alice, body: { name: '   ' } })).status, 400)
  t.equal((await call('POST', '/v1/tokens', { body: { name: 'x' } })).status, 401)
  t.equal((await call('GET', '/v1/tokens')).status, 401)
  t.equal(created.body.info.expiresAt, null, 'no expiry unless asked')
  const before = Date.now()
  const expiring = await call('POST', '/v1/tokens', { token: alice, body: { name: 'week', expiresInHours: 168 } })
  t.equal(expiring.status, 201)
  t.ok(expiring.body.info.expiresAt >= before + 168 * 3_600_000 && expiring.body.info.expiresAt <= Date.now() + 168 * 3_600_000, 'expires 168 h from now')
  t.equal((await call('POST', '/v1/tokens', { token: alice, body: { name: 'x', expiresInHours: 0 } })).status, 400, 'at least an hour')

  const gone = await call('DELETE', `/v1/tokens/${created.body.info.id}`, { token: alice })
  t.equal(gone.status, 200)
  t.ok(gone.body.revokedAt > 0)
  t.same(revoked, [{ userId: users.alice.id, tokenId: created.body.info.tokenId }])
  t.equal((await call('GET', '/v1/me', { token: created.body.token })).status, 401, 'revoked')
  t.equal((await call('DELETE', '/v1/tokens/tok_nope', { token: alice })).status, 404)
  t.equal((await call('DELETE', `/v1/tokens/${created.body.info.id}`)).status, 401)
})

t.test('tunnels: own list, admins see all, close, 503 when the relay seam is missing', async t => {
  const { call, users, tunnels } = await startApi(t)
  tunnels.push(
    { id: 'c1:1', name: 'web', userId: users.alice.id, userName: 'alice', port: 20001, online: true, connections: 2, bytesIn: 10, bytesOut: 20 },
    { id: 'c2:1', name: 'db', userId: users.bob.id, userName: 'bob', port: 20002 },
  )
  const mine = await call('GET', '/v1/tunnels', { token: users.alice.session })
  t.same(mine.body, [{ id: 'c1:1', name: 'web', userId: users.alice.id, userName: 'alice', port: 20001, online: true, connections: 2, bytesIn: 10, bytesOut: 20 }])
  t.equal((await call('GET', `/v1/tunnels?user=${users.bob.id}`, { token: users.alice.session })).status, 403)
  t.equal((await call('GET', `/v1/tunnels?user=${users.alice.id}`, { token: users.alice.session })).status, 200)
  t.equal((await call('GET', '/v1/tunnels', { token: users.admin.session })).body.length, 2)
  t.same((await call('GET', `/v1/tunnels?user=${users.bob.id}`, { token: users.admin.session })).body.map((x: { id: string }) => x.id), ['c2:1'])
  t.equal((await call('GET', '/v1/tunnels')).status, 401)
  t.equal((await call('GET', '/v1/tunnels?bogus=1', { token: users.alice.session })).status, 400)

  t.equal((await call('DELETE', '/v1/tunnels/c1:1', { token: users.alice.session })).status, 204)
  t.same(tunnels.map(x => x.id), ['c2:1'])
  t.equal((await call('DELETE', '/v1/tunnels/c1:1', { token: users.alice.session })).status, 404, 'already closed')
  t.equal((await call('DELETE', '/v1/tunnels/c2:1', { token: users.admin.session })).status, 204, 'an admin closes anyone\'s')
  t.same(tunnels, [])

  const bare = await startApi(t, { relayInfo: undefined, closeTunnel: undefined })
  const r = await bare.call('GET', '/v1/tunnels', { token: bare.users.alice.session })
  t.equal(r.status, 503)
  t.equal(r.body.error.code, 'MPORT_ERR_UNAVAILABLE')
  t.equal((await bare.call('DELETE', '/v1/tunnels/x', { token: bare.users.alice.session })).status, 503)
})

t.test('reservations: create, conflict, list own, release; validation', async t => {
  const { call, users } = await startApi(t)
  const a = await call('POST', '/v1/reservations', { token: users.alice.session, body: { kind: 'subdomain', value: 'Shop' } })
  t.equal(a.status, 201)
  t.match(a.body, { id: /^res_/, kind: 'subdomain', value: 'shop' })
  const p = await call('POST', '/v1/reservations', { token: users.alice.session, body: { kind: 'port', value: 20022 } })
  t.equal(p.status, 201)
  t.equal(p.body.value, '20022')
  const taken = await call('POST', '/v1/reservations', { token: users.bob.session, body: { kind: 'subdomain', value: 'shop' } })
  t.equal(taken.status, 409)
  t.equal(taken.body.error.code, 'MPORT_ERR_RESERVATION_TAKEN')
  for (const body of [{ kind: 'cname', value: 'x' }, { kind: 'port', value: 70000 }, { kind: 'subdomain', value: 'no_underscores' }, { kind: 'port' }, { kind: 'port', value: 1, extra: 1 }]) {
    t.equal((await call('POST', '/v1/reservations', { token: users.bob.session, body })).status, 400, `400 for ${JSON.stringify(body)}`)
  }
  t.equal((await call('POST', '/v1/reservations', { body: { kind: 'port', value: 1 } })).status, 401)
  t.same((await call('GET', '/v1/reservations', { token: users.alice.session })).body.map((r: { value: string }) => r.value), ['20022', 'shop'])
  t.same((await call('GET', '/v1/reservations', { token: users.bob.session })).body, [])
  t.equal((await call('GET', '/v1/reservations')).status, 401)
  t.equal((await call('DELETE', `/v1/reservations/${a.body.id}`, { token: users.alice.session })).status, 204)
  t.equal((await call('DELETE', `/v1/reservations/${a.body.id}`, { token: users.alice.session })).status, 404)
  t.equal((await call('POST', '/v1/reservations', { token: users.bob.session, body: { kind: 'subdomain', value: 'shop' } })).status, 201, 'free for bob now')
})

t.test('usage: own by hour and day, admins any user or everyone, range checks', async t => {
  const { call, users, store } = await startApi(t)
  const now = Date.now()
  await store.addUsage([
    { userId: users.alice.id, tunnel: 'web', at: now - 5 * 60_000, bytesIn: 100, bytesOut: 200, connections: 3, activeSeconds: 60 },
    { userId: users.alice.id, tunnel: 'ssh', at: now - 2 * 3_600_000, bytesIn: 1, bytesOut: 2, connections: 1, activeSeconds: 5 },
    { userId: users.bob.id, tunnel: 'web', at: now - 60_000, bytesIn: 7, bytesOut: 7, connections: 1, activeSeconds: 1 },
  ])
  const hourly = await call('GET', '/v1/usage', { token: users.alice.session })
  t.equal(hourly.status, 200)
  t.equal(hourly.body.granularity, 'hour')
  t.same(hourly.body.totals, { bytesIn: 101, bytesOut: 202, connections: 4, activeSeconds: 65 })
  t.ok(hourly.body.buckets.every((b: { userId: string }) => b.userId === users.alice.id), 'only her own buckets')
  const daily = await call('GET', `/v1/usage?granularity=day&tunnel=web&from=${new Date(now - 3 * 86_400_000).toISOString()}`, { token: users.alice.session })
  t.same(daily.body.totals, { bytesIn: 100, bytesOut: 200, connections: 3, activeSeconds: 60 })

  t.equal((await call('GET', `/v1/usage?user=${users.bob.id}`, { token: users.alice.session })).status, 403)
  t.equal((await call('GET', '/v1/usage?user=*', { token: users.alice.session })).status, 403)
  t.equal((await call('GET', `/v1/usage?user=${users.bob.id}`, { token: users.admin.session })).body.totals.bytesIn, 7)
  t.equal((await call('GET', '/v1/usage?user=*', { token: users.admin.session })).body.totals.bytesIn, 108)
  t.equal((await call('GET', '/v1/usage', { token: users.admin.session })).body.totals.bytesIn, 0, 'an admin\'s own usage by default')

  const iso = (ms: number): string => new Date(ms).toISOString()
  for (const q of [`from=${iso(now)}&to=${iso(now - 1000)}`, `from=${iso(now - 40 * 86_400_000)}`, 'granularity=minute', 'from=yesterday', 'whatever=1']) {
    const r = await call('GET', `/v1/usage?${q}`, { token: users.alice.session })
    t.equal(r.status, 400, `400 for ${q}`)
    t.equal(r.body.error.code, 'MPORT_ERR_INVALID_INPUT')
  }
  t.equal((await call('GET', '/v1/usage')).status, 401)
})

t.test('audit: every mutating call is logged with who, what, target and address; admins page through it', async t => {
  const { call, users } = await startApi(t)
  const alice = users.alice.session
  await call('POST', '/v1/login', { body: { name: 'alice', password: 'wrong password' } })
  await call('POST', '/v1/login', { body: { name: 'alice', password: PASSWORD } })
  const tok = await call('POST', '/v1/tokens', { token: alice, body: { name: 'ci' } })
  await call('DELETE', `/v1/tokens/${tok.body.info.id}`, { token: alice })
  const res = await call('POST', '/v1/reservations', { token: alice, body: { kind: 'subdomain', value: 'blog' } })
  await call('DELETE', `/v1/reservations/${res.body.id}`, { token: alice })
  await call('PUT', '/v1/me/password', { token: alice, body: { current: PASSWORD, password: 'another password' } })
  await call('POST', '/v1/users', { token: users.admin.session, body: { name: 'dave', password: PASSWORD } })
  await call('PATCH', `/v1/users/${users.bob.id}`, { token: users.admin.session, body: { role: 'admin' } })
  await call('PUT', `/v1/users/${users.bob.id}/limits`, { token: users.admin.session, body: { maxTunnels: 2 } })
  await call('POST', '/v1/logout', { token: alice })

  t.equal((await call('GET', '/v1/audit', { token: users.alice.session })).status, 401, 'alice logged out')
  t.equal((await call('GET', '/v1/audit', { token: users.bob.session })).status, 200, 'bob is an admin now')
  t.equal((await call('GET', '/v1/audit?limit=0', { token: users.admin.session })).status, 400)
  t.equal((await call('GET', '/v1/audit')).status, 401)
  const all = await call('GET', '/v1/audit?limit=500', { token: users.admin.session })
  t.same(all.body.entries.map((e: { action: string }) => e.action).reverse(), [
    'login.failed', 'login', 'token.create', 'token.revoke', 'reservation.create', 'reservation.delete', 'password.change',
    'user.create', 'user.update', 'limits.set', 'logout',
  ])
  t.match(all.body.entries.at(-1), { action: 'login.failed', actorId: null, target: 'alice', address: '127.0.0.1' })
  t.match(all.body.entries.find((e: { action: string }) => e.action === 'token.create'), { actorId: users.alice.id, actorName: 'alice', target: tok.body.info.id, details: { name: 'ci' } })
  t.notMatch(JSON.stringify(all.body), /another password|password123/, 'no password in the log')

  const pages: string[][] = []
  let before: number | null | undefined
  for (let i = 0; i < 10 && before !== null; i++) {
    const page = await call('GET', `/v1/audit?limit=4${before !== undefined ? `&before=${before}` : ''}`, { token: users.admin.session })
    pages.push(page.body.entries.map((e: { action: string }) => e.action))
    before = page.body.next
  }
  t.same(pages.map(p => p.length), [4, 4, 3], 'pages of 4, then the rest, then next = null')
  t.same(pages.flat(), all.body.entries.map((e: { action: string }) => e.action))
  const byAlice = await call('GET', `/v1/audit?actor=${users.alice.id}`, { token: users.admin.session })
  t.ok(byAlice.body.entries.length >= 6 && byAlice.body.entries.every((e: { actorId: string }) => e.actorId === users.alice.id))
})
