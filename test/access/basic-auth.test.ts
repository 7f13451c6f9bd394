// Basic auth: hashed storage (no password kept), constant-time verification of real
// Authorization headers (also as node:http sends them), CLI value parsing, the accept cache.
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import {
  BasicAuthChecker, basicAuthHeader, hashPassword, isStoredHash, parseAuthorization, parseBasicAuthValue,
  SCRYPT_PARAMS, verifyBasicAuth,
} from '../../src/access/basic-auth.js'
import { withTimeout } from '../helpers/wait.js'

const stored = hashPassword('alice', 's3cret:with:colons')

t.test('hashPassword: self-describing, salted, no password inside', async t => {
  t.match(stored, /^alice:\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
  t.notMatch(stored, /s3cret/)
  t.not(hashPassword('alice', 'x'), hashPassword('alice', 'x'), 'a fresh salt each time')
  t.ok(isStoredHash(stored))
  t.same(SCRYPT_PARAMS, { ln: 14, r: 8, p: 1 })
  t.throws(() => hashPassword('', 'x'), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => hashPassword('a:b', 'x'), { code: 'MPORT_ERR_INVALID_CONFIG' })
})

t.test('verifyBasicAuth: right and wrong credentials', async t => {
  t.equal(await verifyBasicAuth(basicAuthHeader('alice', 's3cret:with:colons'), stored), true)
  t.equal(await verifyBasicAuth(basicAuthHeader('alice', 's3cret:with:colon'), stored), false, 'wrong password')
  t.equal(await verifyBasicAuth(basicAuthHeader('bob', 's3cret:with:colons'), stored), false, 'wrong user')
  t.equal(await verifyBasicAuth(basicAuthHeader('Alice', 's3cret:with:colons'), stored), false, 'user is case-sensitive')
  t.equal(await verifyBasicAuth(undefined, stored), false, 'no header')
  t.equal(await verifyBasicAuth('', stored), false)
  t.equal(await verifyBasicAuth('Bearer abc', stored), false, 'other scheme')
  t.equal(await verifyBasicAuth('Basic !!!', stored), false, 'not base64')
  t.equal(await verifyBasicAuth('Basic ' + Buffer.from('alice').toString('base64'), stored), false, 'no colon')
  t.equal(await verifyBasicAuth('Basic ' + 'A'.repeat(5000), stored), false, 'oversized header')
  t.equal(await verifyBasicAuth('basic   ' + basicAuthHeader('alice', 's3cret:with:colons').slice(6), stored), true, 'scheme is case-insensitive')
  await t.rejects(verifyBasicAuth(basicAuthHeader('alice', 'x'), 'alice:plaintext'), { code: 'MPORT_ERR_INVALID_CONFIG' })
})

t.test('UTF-8 passwords (RFC 7617)', async t => {
  const line = hashPassword('jürgen', 'pässwörd✓')
  t.equal(await verifyBasicAuth(basicAuthHeader('jürgen', 'pässwörd✓'), line), true)
  t.equal(await verifyBasicAuth(basicAuthHeader('jürgen', 'passwörd✓'), line), false)
})

t.test('malformed or hostile stored lines are refused before hashing', async t => {
  const [user, , params, salt, key] = stored.split('$') as [string, string, string, string, string]
  t.ok(isStoredHash(`${user}$scrypt$${params}$${salt}$${key}`), 'the pieces reassemble into a valid line')
  const variants = [
    `${user}$scrypt$ln=30,r=8,p=1$${salt}$${key}`, // 2^30 would need 1 GiB
    `${user}$scrypt$ln=20,r=32,p=1$${salt}$${key}`, // 4 GiB
    `${user}$scrypt$ln=14,r=8,p=99$${salt}$${key}`,
    `${user}$scrypt$ln=0,r=8,p=1$${salt}$${key}`,
    `${user}$bcrypt$${params}$${salt}$${key}`,
    `${user}$scrypt$${params}$${salt}$`,
    `:$scrypt$${params}$${salt}$${key}`,
    '',
  ]
  for (const v of variants) t.equal(isStoredHash(v), false, v.slice(0, 40))
  t.throws(() => new BasicAuthChecker([]), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new BasicAuthChecker('alice:plain'), { code: 'MPORT_ERR_INVALID_CONFIG' })
})

t.test('parseAuthorization', async t => {
  t.same(parseAuthorization('Basic ' + Buffer.from('u:p:q').toString('base64')), { user: 'u', pass: 'p:q' })
  t.same(parseAuthorization('Basic ' + Buffer.from(':').toString('base64')), { user: '', pass: '' })
  t.equal(parseAuthorization('Basic'), undefined)
  t.equal(parseAuthorization('Digest x'), undefined)
})

t.test('parseBasicAuthValue: clear errors that never echo the password', async t => {
  t.same(parseBasicAuthValue('admin:hunter2'), { user: 'admin', pass: 'hunter2' })
  t.same(parseBasicAuthValue('admin:pa:ss'), { user: 'admin', pass: 'pa:ss' }, 'the password may contain ":"')
  const bad: Array<[string, RegExp]> = [
    ['adminhunter2', /expected user:password/],
    [':hunter2', /user name before ":" is empty/],
    ['admin:', /password for user "admin" is empty/],
    ['ad\nmin:hunter2', /user name contains control characters/],
    ['admin:hun\tter2', /password for user "admin" contains control characters/],
    ['admin:' + 'x'.repeat(2000), /longer than 1024/],
  ]
  for (const [value, msg] of bad) {
    const err = (() => { try { parseBasicAuthValue(value); return undefined } catch (e) { return e as Error & { code: string, key: string } } })()
    t.ok(err, `${JSON.stringify(value.slice(0, 20))} throws`)
    t.equal(err?.code, 'MPORT_ERR_INVALID_CONFIG')
    t.equal(err?.key, 'basic-auth')
    t.match(err?.message, msg)
    t.notMatch(err?.message ?? '', /hunter|hun\tter|xxxx/, 'the password is not in the message')
  }
})

t.test('BasicAuthChecker: several users, remembers accepted headers, bounded', async t => {
  const checker = new BasicAuthChecker([stored, hashPassword('bob', 'pw')], { cacheSize: 2 })
  t.equal(await checker.check(basicAuthHeader('bob', 'pw'), 1000), true)
  t.equal(await checker.check(basicAuthHeader('alice', 's3cret:with:colons'), 1000), true)
  t.equal(checker.cached, 2)
  t.equal(await checker.check(basicAuthHeader('bob', 'nope'), 1000), false)
  t.equal(checker.cached, 2, 'failures are not remembered')
  t.equal(await checker.check(undefined), false)
  // a third accepted header evicts the oldest
  const carol = new BasicAuthChecker([hashPassword('c', '1'), hashPassword('d', '2'), hashPassword('e', '3')], { cacheSize: 2, cacheTtlMs: 50 })
  for (const [u, p] of [['c', '1'], ['d', '2'], ['e', '3']] as const) t.equal(await carol.check(basicAuthHeader(u, p), 0), true)
  t.equal(carol.cached, 2)
  t.equal(await carol.check(basicAuthHeader('e', '3'), 10), true, 'cached hit')
  t.equal(await carol.check(basicAuthHeader('e', '3'), 1000), true, 'expired entries are verified again')
})

t.test('the header node:http sends for user:pass@ URLs verifies', async t => {
  const server = http.createServer((req, res) => {
    void verifyBasicAuth(req.headers.authorization, stored).then(ok => {
      res.writeHead(ok ? 200 : 401).end(ok ? 'ok' : 'no')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const get = async (auth: string): Promise<number> => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', auth, agent: false })
    const [res] = await withTimeout(once(req, 'response'), { what: 'HTTP response' }) as [http.IncomingMessage]
    res.resume()
    return res.statusCode ?? 0
  }
  t.equal(await get('alice:s3cret:with:colons'), 200)
  t.equal(await get('alice:wrong'), 401)
})
