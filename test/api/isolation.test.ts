/** A user can never see or touch another user's tokens, tunnels, reservations or usage. */
import t from 'tap'
import { startApi } from './fixtures/api.js'

t.test('alice cannot see or touch anything of bob\'s', async t => {
  const { call, users, store, tunnels } = await startApi(t)
  const alice = users.alice.session
  const bob = users.bob.session
  const bobToken = (await call('POST', '/v1/tokens', { token: bob, body: { name: 'bob-laptop' } })).body
  const bobRes = (await call('POST', '/v1/reservations', { token: bob, body: { kind: 'subdomain', value: 'bobsite' } })).body
  tunnels.push({ id: 'c9:1', name: 'bob-web', userId: users.bob.id, userName: 'bob', port: 20009 })
  await store.addUsage([{ userId: users.bob.id, tunnel: 'bob-web', at: Date.now(), bytesIn: 999, bytesOut: 999, connections: 1, activeSeconds: 1 }])
  const secrets = [users.bob.id, bobToken.info.id, bobToken.info.tokenId, bobToken.token, bobRes.id, 'bobsite', 'c9:1', 'bob-web', 'bob-laptop']

  // Everything alice can read says nothing about bob.
  for (const url of ['/v1/me', '/v1/tokens', '/v1/tunnels', '/v1/reservations', '/v1/usage', '/v1/usage?granularity=day', '/v1/limits']) {
    const r = await call('GET', url, { token: alice })
    t.equal(r.status, 200, `GET ${url}`)
    for (const s of secrets) t.notMatch(JSON.stringify(r.body), s, `GET ${url} does not reveal ${s}`)
  }

  // Reading bob's things directly is refused.
  for (const url of [`/v1/usage?user=${users.bob.id}`, `/v1/tunnels?user=${users.bob.id}`, `/v1/users/${users.bob.id}`, `/v1/users/${users.bob.id}/limits`, '/v1/users', '/v1/audit']) {
    const r = await call('GET', url, { token: alice })
    t.equal(r.status, 403, `GET ${url} → 403`)
    for (const s of secrets) t.notMatch(JSON.stringify(r.body), s)
  }

  // Touching them is "not found", exactly like something that does not exist.
  for (const url of [`/v1/tokens/${bobToken.info.id}`, `/v1/reservations/${bobRes.id}`, '/v1/tunnels/c9:1']) {
    const r = await call('DELETE', url, { token: alice })
    t.equal(r.status, 404, `DELETE ${url} → 404`)
    const missing = await call('DELETE', url.replace(/[^/]+$/, 'does-not-exist'), { token: alice })
    t.same(Object.keys(r.body.error), Object.keys(missing.body.error), 'same shape as a missing id')
  }
  t.equal((await call('PATCH', `/v1/users/${users.bob.id}`, { token: alice, body: { disabled: true } })).status, 403)
  t.equal((await call('PUT', `/v1/users/${users.bob.id}/limits`, { token: alice, body: { maxTunnels: 0 } })).status, 403)
  t.equal((await call('POST', '/v1/reservations', { token: alice, body: { kind: 'subdomain', value: 'bobsite' } })).status, 409, 'bob\'s name stays bob\'s')

  // And bob's things are all still there and working.
  t.equal((await call('GET', '/v1/me', { token: bobToken.token })).status, 200, 'bob\'s token works')
  t.equal((await call('GET', '/v1/me', { token: bob })).body.user.disabled, false)
  t.equal((await call('GET', '/v1/reservations', { token: bob })).body.length, 1)
  t.same(tunnels.map(x => x.id), ['c9:1'])
  t.equal((await call('GET', '/v1/usage', { token: bob })).body.totals.bytesIn, 999)
  t.equal((await store.listAudit({ actorId: users.alice.id })).entries.length, 0, 'refused calls changed nothing')
})
