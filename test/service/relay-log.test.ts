/**
 * The relay's log helpers on their own: which secrets its settings hold (masked by the logger
 * in every line), a database URL's password, and the API request lines' levels and fields.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/cli/log.js'
import { databasePassword, logApiRequests, relaySecrets } from '../../packages/mport-relay/src/log/relay-log.js'

t.test('the secrets of the settings: token, database password, static tokens', async t => {
  t.same(relaySecrets({ token: 'owner-token-1', database: 'postgres://mport:p%40ss-word@db:5432/mport', tokens: [{ token: 'ci-token-22' }, { token: 'bot-token-333' }] }),
    ['owner-token-1', 'p@ss-word', 'ci-token-22', 'bot-token-333'])
  t.same(relaySecrets({ database: '/var/lib/mport/mport.db' }), [], 'a SQLite file holds none')
  t.equal(databasePassword('postgres://mport@db/mport'), undefined, 'no password in the URL')
  t.equal(databasePassword(undefined), undefined)
  t.equal(databasePassword('postgres://u:%zz@h/db'), undefined, 'a URL that does not decode is not guessed at')
})

t.test('api-request lines: debug below 400, info for a 4xx, warn for a 5xx; the route, never the URL', async t => {
  const lines: Array<Record<string, unknown>> = []
  const out = createLogger({ format: 'json', level: 'debug', out: new Writable({ write (c: Buffer, _e, cb) { lines.push(JSON.parse(String(c)) as Record<string, unknown>); cb() } }) })
  const log = logApiRequests(out)
  log({ method: 'GET', route: '/v1/me', status: 200, ms: 3, remoteAddress: '127.0.0.1', user: 'alice' })
  log({ method: 'POST', route: '/v1/login', status: 401, ms: 5, remoteAddress: '127.0.0.1' })
  log({ method: 'GET', route: '/v1/usage', status: 500, ms: 9, remoteAddress: '127.0.0.1', user: 'bob' })
  t.match(lines, [
    { level: 'debug', event: 'api-request', method: 'GET', route: '/v1/me', status: 200, ms: 3, user: 'alice', msg: 'api: GET /v1/me 200 (3 ms) as alice' },
    { level: 'info', route: '/v1/login', status: 401, msg: 'api: POST /v1/login 401 (5 ms)' },
    { level: 'warn', route: '/v1/usage', status: 500 },
  ])
  const quiet: string[] = []
  logApiRequests(createLogger({ format: 'text', out: new Writable({ write (c: Buffer, _e, cb) { quiet.push(String(c)); cb() } }) }))({ method: 'GET', route: '/v1/me', status: 200, ms: 1, remoteAddress: '127.0.0.1' })
  t.same(quiet, [], 'at info, a successful request writes nothing')
})
