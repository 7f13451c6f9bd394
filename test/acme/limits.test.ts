/** The ACME allow patterns, issuance limits and the handshake refusal cache, on a manual clock. */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { AcmeCertificates } from '../../packages/mport-relay/src/acme/index.js'
import { AllowPatterns, parseAllowList } from '../../packages/mport-relay/src/acme/allow-rule.js'
import { IssuanceLimits } from '../../packages/mport-relay/src/acme/issuance-limits.js'
import { ManualClock } from '../helpers/manual-clock.js'

t.test('allow patterns: exact names and *.suffix at any depth, nothing else', async t => {
  const allow = new AllowPatterns(parseAllowList('app.example.org, *.shop.example.net\n  Static.Example.com.'))
  t.ok(allow.matches('app.example.org'))
  t.notOk(allow.matches('x.app.example.org'), 'an exact name covers no name below it')
  t.ok(allow.matches('a.shop.example.net'))
  t.ok(allow.matches('a.b.shop.example.net'), '*. covers any depth')
  t.notOk(allow.matches('shop.example.net'), '*. does not cover the name itself')
  t.notOk(allow.matches('evilshop.example.net'), 'a suffix match is on a label boundary')
  t.ok(allow.matches('static.example.com'), 'lowercased, trailing dot dropped')
  t.throws(() => new AllowPatterns(['*']), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new AllowPatterns(['*.com.*']), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new AllowPatterns(['localhost']), { code: 'MPORT_ERR_INVALID_CONFIG' }, 'one label is not a name a CA issues for')
})

t.test('issuance limits: an hourly budget over a sliding window, a doubling backoff per failed name', async t => {
  const clock = new ManualClock(0)
  const limits = new IssuanceLimits({ perHour: 2, backoffMs: 1000, now: clock.now })
  t.equal(limits.take('a.example'), undefined)
  t.equal(limits.take('b.example'), undefined)
  t.match(limits.take('c.example'), /2 orders in the last hour/)
  clock.advance(60 * 60 * 1000 - 1)
  t.match(limits.take('c.example'), /2 orders in the last hour/, 'still within the hour')
  clock.advance(1)
  t.equal(limits.take('c.example'), undefined, 'the first order left the window')
  limits.failed('c.example')
  t.match(limits.take('c.example'), /c\.example failed 1 time; next try in 1 s/)
  clock.advance(1000)
  t.equal(limits.take('c.example'), undefined, 'after the backoff (and within the budget: b is an hour old too)')
  limits.failed('c.example')
  clock.advance(1999)
  t.match(limits.take('c.example'), /failed 2 times/, 'the backoff doubled')
  clock.advance(1)
  clock.advance(60 * 60 * 1000)
  t.equal(limits.take('c.example'), undefined)
  limits.succeeded('c.example')
  limits.failed('c.example')
  t.match(limits.take('c.example'), /failed 1 time;/, 'a success starts the backoff over')
})

t.test('strangers\' SNI: one allow check per name per minute, however many handshakes; a tunnel coming up asks again', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-acme-refused-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const clock = new ManualClock(0)
  const asked: string[] = []
  // The directory is never contacted: nothing here is allowed, so no order is placed.
  const acme = new AcmeCertificates({ dataDir: dir, directoryUrl: 'https://127.0.0.1:9/dir', domain: 'tunnels.test', held: name => { asked.push(name); return false }, log: () => {}, clock })
  await acme.start()
  t.teardown(() => acme.close())
  t.equal(acme.contextFor('scan.example.net'), undefined, 'the fallback is served')
  await acme.settled()
  for (let i = 0; i < 49; i++) acme.contextFor('scan.example.net')
  await acme.settled()
  t.same(asked, ['scan.example.net'], 'asked once for 50 handshakes')
  t.equal(acme.stats.refused, 50, 'each handshake counted as refused')
  t.equal(acme.stats.orders, 0)
  clock.advance(60_000)
  acme.contextFor('scan.example.net')
  await acme.settled()
  t.equal(asked.length, 2, 'asked again a minute later')
  await acme.request('scan.example.net')
  t.equal(asked.length, 3, 'a tunnel coming up with the name is asked about at once')
  t.equal(acme.stats.orders, 0, 'and still no order')
})
