/**
 * `mport-connect login/logout` (credentials file, mode 0600) and `mport-connect tokens
 * list/create/revoke` over HTTP on loopback against a real API, as real processes and
 * in-process (`connectAccount`); 401/404/429, an unreachable API, a damaged credentials file,
 * and API addresses. No password, and no token other than the one a run just created, may
 * appear in any output.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { credentialsPath, normalizeApi, readCredentials } from '../../packages/mport-connect/src/account-commands.js'
import { closedPort } from '../helpers/ports.js'
import { cleanup, tmpDir } from '../helpers/spawn.js'
import { call, createdToken, killChildren, oneLine, OTHER_PASSWORD, PASSWORD, run, secrets, startApi } from './fixtures/accounts.js'

t.teardown(cleanup)
t.teardown(killChildren)

t.test('mport-connect login: session stored 0600; wrong password and rate limit are one line with the code', async t => {
  const api = await startApi(t, { loginLimit: { max: 2, windowMs: 60_000 } })
  await api.store.createUser({ name: 'alice', password: PASSWORD })
  const config = path.join(tmpDir('mport-cfg-'), 'config')
  const env = { XDG_CONFIG_HOME: config }
  const file = path.join(config, 'mport', 'credentials.json')
  t.equal(credentialsPath({ XDG_CONFIG_HOME: config }), file)

  const ok = await run(t, 'mport-connect', ['login', '--api', api.base, '--user', 'alice', '--password-stdin'], { stdin: PASSWORD + '\n', env })
  t.equal(ok.code, 0, `login exits 0 (${ok.stderr})`)
  t.match(ok.stdout, new RegExp(`^logged in to ${api.base} as alice \\(user\\); the session lasts until .* and is kept in ${file.replace(/[.]/g, '\\.')}\n$`))
  t.equal(statSync(file).mode & 0o777, 0o600, 'credentials.json has mode 0600')
  t.equal(statSync(path.dirname(file)).mode & 0o777, 0o700, 'its directory has mode 0700')
  const creds = await readCredentials(file)
  t.equal(creds.default, api.base)
  const session = creds.sessions[api.base]?.token ?? ''
  t.match(session, /^mps_/)
  secrets.add(session)
  t.equal((await api.store.resolveSession(session))?.user.name, 'alice', 'the stored session is a live API session of alice')
  t.notOk(readFileSync(file, 'utf8').includes(PASSWORD), 'the password is not stored')

  // A wrong password: 401 with the API's code; the stored session stays.
  const wrong = await run(t, 'mport-connect', ['login', '--api', api.base + '/', '--user', 'alice', '--password-stdin'], { stdin: 'wrong-password-1\n', env })
  t.equal(wrong.code, 1, 'a wrong password exits 1')
  oneLine(t, wrong.stderr, /^mport-connect: wrong user name or password, or the account is disabled \[MPORT_ERR_UNAUTHENTICATED\]$/, 'wrong password')
  t.equal((await readCredentials(file)).sessions[api.base]?.token, session, 'the stored session is untouched')

  // The second failure reaches the limit: the next attempt is refused with 429 before checking.
  t.equal((await call(t, 'mport-connect', ['login', '--api', api.base, '--user', 'alice', '--password-stdin'], { stdin: 'wrong-password-2\n', env })).code, 1)
  const limited = await run(t, 'mport-connect', ['login', '--api', api.base, '--user', 'alice', '--password-stdin', '--json'], { stdin: PASSWORD + '\n', env })
  t.equal(limited.code, 1, 'rate-limited login exits 1')
  const err = JSON.parse(limited.stderr) as { event: string, code: string, status: number, message: string }
  t.match(err, { event: 'error', code: 'MPORT_ERR_RATE_LIMITED', status: 429, message: /too many failed attempts .*retry after \d+ s/ })

  // No password source and no terminal, no API address, a bad one: usage errors, nothing sent.
  const cases: Array<{ args: string[], stdin?: string, re: RegExp }> = [
    { args: ['login', '--api', api.base, '--user', 'alice'], re: /no password: pipe it with --password-stdin/ },
    { args: ['login', '--user', 'alice', '--password-stdin'], stdin: PASSWORD, re: /give the relay's API address with --api \(or MPORT_API\)/ },
    { args: ['login', '--api', 'ftp://x', '--user', 'alice', '--password-stdin'], stdin: PASSWORD, re: /--api must be an http:\/\/ or https:\/\/ URL/ },
    { args: ['login', '--api', api.base, '--password-stdin'], stdin: PASSWORD, re: /Missing required argument: user/ },
    { args: ['login', '--api', api.base, '--user', 'alice', '--bogus'], re: /Unknown argument: bogus/ },
    { args: [], re: /give a command: login, logout, tokens or forget/ },
  ]
  for (const c of cases) {
    const r = await call(t, 'mport-connect', c.args, { env, ...(c.stdin !== undefined ? { stdin: c.stdin } : {}) })
    t.equal(r.code, 2, `${c.args.join(' ')}: exit 2`)
    oneLine(t, r.stderr, /^mport-connect: .*\(see mport-connect --help\)$/, c.args.join(' '))
    t.match(r.stderr, c.re)
  }
})

t.test('mport-connect tokens create/list/revoke with the stored session, an API token, and errors', async t => {
  const api = await startApi(t)
  const alice = await api.store.createUser({ name: 'alice', password: PASSWORD })
  const bob = await api.store.createUser({ name: 'bob', password: OTHER_PASSWORD })
  const config = path.join(tmpDir('mport-cfg-'), 'config')
  const env = { XDG_CONFIG_HOME: config }
  const login = await run(t, 'mport-connect', ['login', '--api', api.base, '--user', 'alice', '--password-stdin', '--json'], { stdin: PASSWORD, env })
  t.equal(login.code, 0, `login exits 0 (${login.stderr})`)
  t.match(JSON.parse(login.stdout), { api: api.base, user: { name: 'alice', role: 'user' }, expiresAt: Number })
  const session = (await readCredentials(credentialsPath(env))).sessions[api.base]!.token
  secrets.add(session)

  // create: the token once; --api is optional after login (the last login is the default)
  const created = await run(t, 'mport-connect', ['tokens', 'create', 'laptop'], { env })
  t.equal(created.code, 0, `tokens create exits 0 (${created.stderr})`)
  const laptop = createdToken(t, created.stdout)
  t.match(created.stdout, /created token "laptop" \(id tok_\S+\):\n {2}mpt_\S+\nThis token is shown only now: it is not stored and cannot be shown again\./)
  t.equal((await api.store.resolveToken(laptop))?.user.id, alice.id, 'the new token belongs to alice')
  const createdJson = await call(t, 'mport-connect', ['tokens', 'create', 'ci', '--api', api.base, '--json'], { env })
  const ci = JSON.parse(createdJson.stdout) as { token: string, info: { id: string, name: string } }
  secrets.add(ci.token)
  t.match(ci, { token: /^mpt_/, info: { name: 'ci', id: /^tok_/ } })

  // list: table and JSON, never a token
  const [list, listJson] = await Promise.all([
    run(t, 'mport-connect', ['tokens'], { env }),
    call(t, 'mport-connect', ['tokens', 'list', '--json'], { env }),
  ])
  t.equal(list.code, 0, `tokens (list) exits 0 (${list.stderr})`)
  const rows = list.stdout.trimEnd().split('\n')
  t.match(rows[0], /^ID\s+NAME\s+CREATED\s+LAST USED\s+STATUS$/)
  t.equal(rows.length, 3, 'header and two tokens')
  t.match(rows[1], /^tok_\S+\s+laptop\s+.*\s+active$/)
  const tokens = JSON.parse(listJson.stdout) as Array<{ id: string, name: string, revokedAt: number | null }>
  t.same(tokens.map(x => x.name), ['laptop', 'ci'])

  // revoke by id (spawned) and by name (in-process)
  const byId = await run(t, 'mport-connect', ['tokens', 'revoke', ci.info.id], { env })
  t.equal(byId.code, 0, `revoke by id exits 0 (${byId.stderr})`)
  t.match(byId.stdout, new RegExp(`^revoked token "ci" \\(id ${ci.info.id}\\)`))
  t.equal(await api.store.resolveToken(ci.token), undefined, 'the revoked token no longer resolves')
  const byName = await call(t, 'mport-connect', ['tokens', 'revoke', 'laptop', '--json'], { env })
  t.equal(byName.code, 0, `revoke by name exits 0 (${byName.stderr})`)
  t.match(JSON.parse(byName.stdout), { name: 'laptop', revokedAt: Number })
  t.equal(await api.store.resolveToken(laptop), undefined)
  const after = await call(t, 'mport-connect', ['tokens', 'list'], { env })
  t.equal(after.stdout.split('\n').filter(l => /\srevoked /.test(l)).length, 2, 'both listed as revoked')

  // 404s: an unknown id, a name with no active token, another user's token
  const bobs = await api.store.createToken(bob.id, 'bobs')
  secrets.add(bobs.raw)
  const notFound = await Promise.all([
    run(t, 'mport-connect', ['tokens', 'revoke', 'tok_nope'], { env }),
    call(t, 'mport-connect', ['tokens', 'revoke', 'laptop'], { env }),
    call(t, 'mport-connect', ['tokens', 'revoke', bobs.token.id], { env }),
  ])
  for (const r of notFound) {
    t.equal(r.code, 1, '404 exits 1')
    oneLine(t, r.stderr, /^mport-connect: (token "tok_\S+" not found|no active token named "laptop") \[MPORT_ERR_NOT_FOUND\]$/, 'not found')
  }
  t.ok(await api.store.resolveToken(bobs.raw), 'bob\'s token was not touched')

  // An API token instead of the session: MPORT_API_TOKEN (spawned), --api-token (in-process)
  const [withEnv, withFlag] = await Promise.all([
    run(t, 'mport-connect', ['tokens', 'list', '--json'], { env: { MPORT_API: api.base, MPORT_API_TOKEN: bobs.raw } }),
    call(t, 'mport-connect', ['tokens', 'list', '--json', '--api', api.base, '--api-token', bobs.raw]),
  ])
  for (const r of [withFlag, withEnv]) {
    t.equal(r.code, 0, `API token list exits 0 (${r.stderr})`)
    t.same((JSON.parse(r.stdout) as Array<{ name: string }>).map(x => x.name), ['bobs'], 'bob sees only his own tokens')
  }

  // 401s: an unknown API token, no login at all, a session ended on the server
  const bogus = 'mpt_thisTokenDoesNotExistAnywhere00'
  secrets.add(bogus)
  const [badToken, notLoggedIn] = await Promise.all([
    call(t, 'mport-connect', ['tokens', '--api', api.base, '--api-token', bogus], { env }),
    run(t, 'mport-connect', ['tokens', '--api', api.base], { env: { XDG_CONFIG_HOME: path.join(tmpDir('mport-cfg-'), 'config') } }),
  ])
  t.equal(badToken.code, 1)
  oneLine(t, badToken.stderr, /^mport-connect: unknown or revoked token \[MPORT_ERR_UNAUTHENTICATED\]$/, 'unknown API token')
  t.equal(notLoggedIn.code, 1)
  oneLine(t, notLoggedIn.stderr, /not logged in to .*: run mport-connect login .* \[MPORT_ERR_UNAUTHENTICATED\]$/, 'not logged in')
  await api.store.deleteSession(session)
  const ended = await run(t, 'mport-connect', ['tokens'], { env })
  t.equal(ended.code, 1)
  oneLine(t, ended.stderr, /session has expired or was ended.*\(run mport-connect login --api \S+ --user alice\) \[MPORT_ERR_UNAUTHENTICATED\]$/, 'ended session')

  // usage errors
  for (const args of [['tokens', 'create'], ['tokens', 'revoke', 'a', 'b'], ['tokens', 'create', ' '], ['tokens', 'list', '--api-token', '']]) {
    const r = await call(t, 'mport-connect', args, { env })
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    oneLine(t, r.stderr, /^mport-connect: .*\(see mport-connect --help\)$/, args.join(' '))
  }
})

t.test('mport-connect logout ends the session on the server and forgets it', async t => {
  const api = await startApi(t)
  await api.store.createUser({ name: 'alice', password: PASSWORD })
  const env = { XDG_CONFIG_HOME: path.join(tmpDir('mport-cfg-'), 'config') }
  t.equal((await call(t, 'mport-connect', ['login', '--api', api.base, '--user', 'alice', '--password-stdin'], { stdin: PASSWORD, env })).code, 0)
  const file = credentialsPath(env)
  const session = (await readCredentials(file)).sessions[api.base]!.token
  secrets.add(session)
  const out = await run(t, 'mport-connect', ['logout'], { env })
  t.equal(out.code, 0, `logout exits 0 (${out.stderr})`)
  t.equal(out.stdout, `logged out of ${api.base}\n`)
  t.equal(await api.store.resolveSession(session), undefined, 'the session is gone on the server')
  t.same((await readCredentials(file)).sessions, {}, 'and from the file')
  t.equal(statSync(file).mode & 0o777, 0o600, 'still mode 0600 after the rewrite')
  const again = await call(t, 'mport-connect', ['logout', '--api', api.base], { env })
  t.equal(again.code, 0)
  t.equal(again.stdout, `not logged in to ${api.base}\n`)
})

t.test('mport-connect: an API that cannot be reached exits 3; a damaged credentials file is named', async t => {
  const port = await closedPort()
  const env = { XDG_CONFIG_HOME: path.join(tmpDir('mport-cfg-'), 'config') }
  const r = await run(t, 'mport-connect', ['login', '--api', `http://127.0.0.1:${port}`, '--user', 'alice', '--password-stdin'], { stdin: PASSWORD, env })
  t.equal(r.code, 3, 'unreachable API exits 3')
  oneLine(t, r.stderr, new RegExp(`^mport-connect: cannot reach relay API http://127\\.0\\.0\\.1:${port}: ECONNREFUSED \\[MPORT_ERR_RELAY_UNREACHABLE\\]$`), 'unreachable')

  const file = credentialsPath(env)
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, '{"sessions": [')
  const damaged = await call(t, 'mport-connect', ['tokens', '--api', `http://127.0.0.1:${port}`], { env })
  t.equal(damaged.code, 1)
  oneLine(t, damaged.stderr, /credentials\.json is damaged .*fix or delete it.*\[MPORT_ERR_INVALID_CONFIG\]$/, 'damaged file')
})

t.test('API addresses: a scheme added, a trailing slash dropped, credentials and queries refused', async t => {
  t.equal(normalizeApi('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080')
  t.equal(normalizeApi('relay.example.com:7836'), 'https://relay.example.com:7836', 'no scheme means https')
  t.equal(normalizeApi('https://example.com/mport/api//'), 'https://example.com/mport/api', 'a path prefix is kept')
  t.throws(() => normalizeApi('ftp://example.com'), /http:\/\/ or https:\/\//)
  t.throws(() => normalizeApi('http://u:p@example.com'), /must not carry a user name or password/)
  t.throws(() => normalizeApi('http://example.com/?x=1'), /query/)
})
