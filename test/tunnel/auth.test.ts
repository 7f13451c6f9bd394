/** Token proofs, the token → principal seam, and the failed-login limiter. */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { authProof, FailureLimiter, generateToken, StaticTokens, tokenId, tokenKey, verifyProof } from '../../src/tunnel/auth.js'

t.test('a proof verifies only for the same token, nonce and channel binding', async t => {
  const token = generateToken()
  t.match(token, /^mpt_[A-Za-z0-9_-]{32}$/)
  const nonce = randomBytes(32)
  const binding = randomBytes(32)
  const proof = authProof(tokenKey(token), nonce, binding)
  t.ok(verifyProof(tokenKey(token), nonce, binding, proof))
  t.notOk(verifyProof(tokenKey(generateToken()), nonce, binding, proof), 'other token')
  t.notOk(verifyProof(tokenKey(token), randomBytes(32), binding, proof), 'replayed against a new nonce')
  t.notOk(verifyProof(tokenKey(token), nonce, randomBytes(32), proof), 'relayed through another TLS session')
  t.notOk(verifyProof(tokenKey(token), nonce, binding, proof.subarray(0, 16)), 'truncated proof')
  t.notOk(verifyProof(tokenKey(token), nonce, binding, Buffer.alloc(0)), 'empty proof')
})

t.test('the token id reveals nothing usable and is stable', async t => {
  const token = generateToken()
  t.equal(tokenId(token), tokenId(token))
  t.not(tokenId(token), tokenId(generateToken()))
  t.notMatch(tokenId(token), token.slice(4, 12))
  t.not(tokenKey(token).toString('base64url').slice(0, 22), tokenId(token), 'id and key are different derivations')
})

t.test('StaticTokens resolves ids to principals', async t => {
  const a = generateToken()
  const auth = new StaticTokens([{ token: a, principal: { id: 'u1', name: 'alice' } }, { token: generateToken() }])
  t.same(auth.resolve(tokenId(a))?.principal, { id: 'u1', name: 'alice', builtin: true }, 'relay tokens are marked built-in (no plan limits)')
  t.ok(auth.resolve(tokenId(a))?.key.equals(tokenKey(a)))
  t.equal(auth.resolve('nope'), undefined)
})

t.test('FailureLimiter: a sliding window per address, bounded memory', async t => {
  const l = new FailureLimiter(3, 1000, 100)
  const now = 1_000_000
  for (let i = 0; i < 3; i++) { t.equal(l.retryAfter('a', now + i), 0); l.fail('a', now + i) }
  t.equal(l.retryAfter('a', now + 10), 990, 'blocked until the oldest failure leaves the window')
  t.equal(l.retryAfter('b', now + 10), 0, 'other addresses unaffected')
  t.equal(l.retryAfter('a', now + 1001), 0, 'window slid past the first failure')
  l.succeed('a')
  t.equal(l.retryAfter('a', now + 20), 0, 'a success clears the address')
  for (let i = 0; i < 1000; i++) l.fail(`10.0.${i >> 8}.${i & 255}`, now)
  t.equal(l.retryAfter('10.0.0.0', now), 0, 'oldest entries were evicted (bounded map)')
})
