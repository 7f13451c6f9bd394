/**
 * The account commands of both bins as real processes against a real API: `mport-relay users
 * add/list/disable/enable/token` on the store the API serves (checked with the store and
 * StoreAuthenticator), `mport-connect login/logout` (credentials file, mode 0600) and
 * `mport-connect tokens list/create/revoke` over HTTP on loopback. The main flows spawn the
 * bins; argument and error matrices call the same entry points in-process (`relayUsers`,
 * `connectAccount` with their own stdin/stdout/stderr/env) to keep the file fast. No password,
 * and no token other than the one a run just created, may ever appear in any output.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { createApi, type ApiOptions } from '../packages/mport-relay/src/api/index.js'
import { formatTable, promptSecret, readStdinSecret } from '../src/cli/account-io.js'
import { connectAccount, credentialsPath, normalizeApi, readCredentials } from '../packages/mport-connect/src/account-commands.js'
import { relayUsers } from '../packages/mport-relay/src/cli/relay-users.js'
import { openStore, StoreAuthenticator, type SqlStore } from '../packages/mport-relay/src/store/index.js'
import { tokenId, tokenKey } from '../src/tunnel/auth.js'
import { cleanEnv, cleanup, REPO_ROOT, tmpDir, type BinName } from './helpers/spawn.js'
import { withTimeout } from './helpers/wait.js'

t.teardown(cleanup)

const PASSWORD = 'correct-horse-battery'
const OTHER_PASSWORD = 'another-long-secret'
const STACK_LINE = /^ {4}at /m

/** Every secret the tests know of: no output may contain one, except a token its own run created. */
const secrets = new Set<string>([PASSWORD, OTHER_PASSWORD])

interface Run { code: number | null, stdout: string, stderr: string }

const children = new Set<ReturnType<typeof spawn>>()
t.teardown(() => { for (const c of children) c.kill('SIGKILL') })

/** Runs a bin from source with `stdin` piped in (bounded); the output is checked for secrets. */
async function run (tt: Test, name: BinName, args: string[], opts: { stdin?: string, env?: Record<string, string>, allow?: string } = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', `bin/${name}.ts`, ...args], { cwd: REPO_ROOT, env: cleanEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  child.stdin.on('error', () => {}) // the bin may exit without reading stdin
  child.stdin.end(opts.stdin ?? '')
  const code = await withTimeout(new Promise<number | null>(resolve => child.once('close', c => resolve(c))), {
    what: `${name} ${args.join(' ')} to exit`, timeoutMs: 60_000,
  }).finally(() => children.delete(child))
  checkOutput(tt, `${name} ${args.slice(0, 2).join(' ')}`, stdout, stderr, opts.allow)
  return { code, stdout, stderr }
}

function checkOutput (tt: Test, what: string, stdout: string, stderr: string, allow?: string): void {
  for (const s of secrets) if (s !== allow && (stdout + stderr).includes(s)) tt.fail(`${what}: a secret appears in the output`)
  tt.notMatch(stderr, STACK_LINE, `${what}: no stack trace`)
}

/**
 * The same command in this process (`relayUsers` / `connectAccount`) with its own streams and
 * an environment that points the data dir and the config dir at temp dirs unless given.
 */
async function call (tt: Test, name: BinName, args: string[], opts: { stdin?: string, env?: Record<string, string>, allow?: string } = {}): Promise<Run> {
  const stdin = new PassThrough()
  stdin.end(opts.stdin ?? '')
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (b: Buffer) => { out += b.toString() })
  stderr.on('data', (b: Buffer) => { err += b.toString() })
  const env = { MPORT_DATA_DIR: tmpDir('mport-data-'), XDG_CONFIG_HOME: path.join(tmpDir('mport-cfg-'), 'config'), ...opts.env }
  const main = name === 'mport-relay' ? relayUsers : connectAccount
  const code = await withTimeout(main(args, { stdin, stdout, stderr, env }), { what: `${name} ${args.join(' ')} (in-process)`, timeoutMs: 30_000 })
  checkOutput(tt, `${name} ${args.slice(0, 2).join(' ')} (in-process)`, out, err, opts.allow)
  return { code, stdout: out, stderr: err }
}

/** Exactly one non-empty stderr line matching `re`. */
function oneLine (tt: Test, stderr: string, re: RegExp, what: string): void {
  const lines = stderr.split('\n').filter(l => l.trim() !== '')
  tt.equal(lines.length, 1, `${what}: one line on stderr, got ${JSON.stringify(stderr)}`)
  tt.match(lines[0] ?? '', re, `${what}: the line says why`)
}

/** The raw `mpt_…` token in a run's output (and it becomes a secret for every later run). */
function createdToken (tt: Test, stdout: string): string {
  const m = /\bmpt_[A-Za-z0-9_-]+/.exec(stdout)
  tt.ok(m, 'a token is printed')
  const raw = m?.[0] ?? 'mpt_missing'
  tt.equal(stdout.split(raw).length - 1, 1, 'the token is printed exactly once')
  secrets.add(raw)
  return raw
}

interface Api { base: string, store: SqlStore, dataDir: string }

/** A real API on 127.0.0.1 port 0 over a SQLite store in a fresh data dir (the bins open the same file). */
async function startApi (tt: Test, options: Partial<ApiOptions> = {}): Promise<Api> {
  const dataDir = tmpDir('mport-accounts-')
  const store = await openStore({ dataDir, scrypt: { N: 1024, r: 8, p: 1 } })
  const app = await createApi({ store, ...options })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const addr = app.server.address() as net.AddressInfo
  tt.teardown(async () => { await app.close(); await store.close() })
  return { base: `http://127.0.0.1:${addr.port}`, store, dataDir }
}

/** A loopback port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

t.test('mport-relay users add/list/token/disable/enable on the store', async t => {
  const api = await startApi(t)
  const { store } = api
  const db = ['--data-dir', api.dataDir]
  const auth = new StoreAuthenticator(store)

  // add, password from stdin, with a token, JSON output
  const admin = await run(t, 'mport-relay', ['users', 'add', 'root', '--role', 'admin', '--password-stdin', '--token', 'ops', '--json', ...db], { stdin: PASSWORD + '\n' })
  t.equal(admin.code, 0, `users add exits 0 (${admin.stderr})`)
  const doc = JSON.parse(admin.stdout) as { user: { id: string, name: string, role: string, disabled: boolean }, token: { token: string, info: { id: string, name: string, tokenId: string } } }
  t.match(doc.user, { name: 'root', role: 'admin', disabled: false })
  t.notOk('passwordHash' in doc.user || 'password_hash' in doc.user, 'no hash in the output')
  const adminToken = doc.token.token
  t.match(adminToken, /^mpt_/)
  secrets.add(adminToken)
  t.equal(doc.token.info.tokenId, tokenId(adminToken))
  const cred = await auth.resolve(tokenId(adminToken))
  t.same(cred?.principal, { id: doc.user.id, name: 'root' }, 'the token resolves to the new user through StoreAuthenticator')
  t.ok(cred?.key.equals(tokenKey(adminToken)), 'with the key the token derives')
  t.ok(await store.checkPassword('root', PASSWORD), 'the password from stdin is the one stored')

  // add, password from the flag, human output
  const alice = await run(t, 'mport-relay', ['users', 'add', 'alice', '--password', OTHER_PASSWORD, ...db])
  t.equal(alice.code, 0, `users add alice exits 0 (${alice.stderr})`)
  t.match(alice.stdout, /^created user alice \(role user, id usr_\S+\)\n$/)
  t.match(alice.stderr, /warning: .*--password is visible in the process list/)
  t.ok(await store.checkPassword('alice', OTHER_PASSWORD))

  // the same name again (exit 1 with the code), and a token for alice (printed once with the note)
  const [again, tok] = await Promise.all([
    call(t, 'mport-relay', ['users', 'add', 'alice', '--password-stdin', ...db], { stdin: PASSWORD }),
    run(t, 'mport-relay', ['users', 'token', 'alice', '--name', 'laptop', ...db]),
  ])
  t.equal(again.code, 1, 'an existing name exits 1')
  oneLine(t, again.stderr, /^mport-relay users: a user named "alice" already exists \[MPORT_ERR_USER_EXISTS\]$/, 'user exists')
  t.ok(await store.checkPassword('alice', OTHER_PASSWORD), 'the existing user is unchanged')
  t.equal(tok.code, 0, `users token exits 0 (${tok.stderr})`)
  const aliceToken = createdToken(t, tok.stdout)
  t.match(tok.stdout, /created token "laptop" for alice \(id tok_\S+\)/)
  t.match(tok.stdout, /shown only now: it is not stored and cannot be shown again/)
  t.same((await auth.resolve(tokenId(aliceToken)))?.principal.name, 'alice', 'alice\'s token resolves to alice')
  t.same((await store.listTokens((await store.getUserByName('alice'))!.id)).map(x => x.name), ['laptop'])

  // list: table and JSON
  const [list, listJson] = await Promise.all([run(t, 'mport-relay', ['users', 'list', ...db]), call(t, 'mport-relay', ['users', 'list', '--json', ...db])])
  t.equal(list.code, 0)
  const rows = list.stdout.trimEnd().split('\n')
  t.match(rows[0], /^NAME\s+ROLE\s+STATUS\s+CREATED\s+ID$/)
  t.match(rows.slice(1).join('\n'), /^root\s+admin\s+enabled\s+\S+ \S+\s+usr_\S+\nalice\s+user\s+enabled\s+\S+ \S+\s+usr_\S+$/)
  t.same((JSON.parse(listJson.stdout) as Array<{ name: string }>).map(u => u.name), ['root', 'alice'])

  // disable: the token stops resolving and the API refuses her password; enable brings the token back
  const dis = await run(t, 'mport-relay', ['users', 'disable', 'alice', ...db])
  t.equal(dis.code, 0, `users disable exits 0 (${dis.stderr})`)
  t.match(dis.stdout, /^disabled alice: /)
  t.not((await store.getUserByName('alice'))?.disabledAt, null, 'the store has alice disabled')
  t.equal(await auth.resolve(tokenId(aliceToken)), undefined, 'her token no longer resolves')
  t.equal(await auth.isValid(tokenId(aliceToken)), false, 'the relay\'s poll sees it too')
  const refused = await call(t, 'mport-connect', ['login', '--api', api.base, '--user', 'alice', '--password-stdin'], { stdin: OTHER_PASSWORD })
  t.equal(refused.code, 1, 'a disabled user cannot log in')
  // One at a time in this process: SQLite's busy wait is synchronous, so two in-process stores
  // waiting on each other's write lock would stall the event loop (separate processes do not).
  const disAgain = await call(t, 'mport-relay', ['users', 'disable', 'alice', ...db])
  const listed = await call(t, 'mport-relay', ['users', 'list', ...db])
  t.equal(disAgain.code, 0)
  t.match(disAgain.stdout, /alice was already disabled/)
  t.match(listed.stdout, /^alice\s+user\s+disabled /m)
  const en = await run(t, 'mport-relay', ['users', 'enable', 'alice', '--json', ...db])
  t.equal(en.code, 0)
  t.match(JSON.parse(en.stdout), { name: 'alice', disabled: false })
  t.ok(await auth.resolve(tokenId(aliceToken)), 'enabled again: the token resolves again')

  // unknown user: exit 1 with the code
  const [nobody, nobodyToken] = await Promise.all([
    run(t, 'mport-relay', ['users', 'disable', 'nobody', ...db]),
    call(t, 'mport-relay', ['users', 'token', 'nobody', ...db]),
  ])
  for (const r of [nobody, nobodyToken]) {
    t.equal(r.code, 1, 'an unknown user exits 1')
    oneLine(t, r.stderr, /user "nobody" not found \[MPORT_ERR_NOT_FOUND\]$/, 'unknown user')
  }

  // every change is in the audit log, by the local operator
  const entries = (await store.listAudit({ limit: 50 })).entries.filter(e => e.action !== 'login.failed').reverse()
  const actions = entries.map(e => e.action)
  t.same(actions.slice(0, 2), ['user.create', 'token.create'], 'audit: root and its token')
  t.same(actions.slice(2).sort(), ['token.create', 'user.create', 'user.update', 'user.update'], 'audit: alice, her token, disable, enable')
  t.ok(entries.every(e => /^mport-relay users \(/.test(e.actorName ?? '')), 'the actor is the local operator')
  t.notOk(JSON.stringify(entries).includes(PASSWORD) || JSON.stringify(entries).includes(OTHER_PASSWORD), 'no password in the audit log')
})

t.test('mport-relay users: --database and MPORT_DATABASE select the store', async t => {
  const dir = tmpDir('mport-db-')
  const file = path.join(dir, 'elsewhere.db')
  const add = await run(t, 'mport-relay', ['users', 'add', 'carol', '--password-stdin', '--database', file], { stdin: PASSWORD + '\r\n' })
  t.equal(add.code, 0, `add with --database exits 0 (${add.stderr})`)
  const viaEnv = await call(t, 'mport-relay', ['users', 'list', '--json'], { env: { MPORT_DATABASE: file } })
  t.same((JSON.parse(viaEnv.stdout) as Array<{ name: string }>).map(u => u.name), ['carol'], 'MPORT_DATABASE reads the same file')
  const store = await openStore({ url: file })
  t.teardown(() => store.close())
  t.ok(await store.checkPassword('carol', PASSWORD), 'a CRLF after the piped password is not part of it')
  const empty = await call(t, 'mport-relay', ['users', 'list', '--data-dir', path.join(dir, 'fresh')])
  t.match(empty.stdout, /^no users yet: create the first admin with mport-relay users add <name> --role admin --password-stdin\n$/)
})

t.test('mport-relay users: bad arguments exit 2 with one line, before anything is written', async t => {
  const dataDir = tmpDir('mport-usage-')
  const db = ['--data-dir', dataDir]
  const usage = /^mport-relay users: .*\(see mport-relay users --help\)$/
  const [none, badName, help] = await Promise.all([
    run(t, 'mport-relay', ['users']),
    run(t, 'mport-relay', ['users', 'add', 'Bad Name', '--password-stdin', ...db], { stdin: PASSWORD }),
    run(t, 'mport-relay', ['users', '--help']),
  ])
  t.equal(none.code, 2, 'users without a command: exit 2')
  oneLine(t, none.stderr, usage, 'no command')
  t.match(none.stderr, /give a command: add, list, disable, enable or token/)
  t.equal(badName.code, 2, 'a bad user name: exit 2')
  oneLine(t, badName.stderr, usage, 'bad name')
  t.match(badName.stderr, /user name "Bad Name" must be/)
  t.equal(help.code, 0)
  for (const cmd of ['users add <name>', 'users list', 'users disable <name>', 'users enable <name>', 'users token <user>', '--data-dir', '--database', 'Exit codes']) {
    t.ok(help.stdout.replace(/\s+/g, ' ').includes(cmd), `users --help mentions ${cmd}`)
  }

  const cases: Array<{ args: string[], stdin?: string, re: RegExp }> = [
    { args: ['users', 'bogus', ...db], re: /Unknown argument: bogus/ },
    { args: ['users', 'add', ...db], re: /Not enough non-option arguments/ },
    { args: ['users', 'add', 'dave', '--password-stdin', ...db], stdin: 'short\n', re: /password must have at least 8 characters/ },
    { args: ['users', 'add', 'dave', '--password-stdin', ...db], stdin: '', re: /--password-stdin: no password on stdin/ },
    { args: ['users', 'add', 'dave', '--password-stdin', ...db], stdin: `${PASSWORD}\n${PASSWORD}\n`, re: /more than one line/ },
    { args: ['users', 'add', 'dave', ...db], re: /no password: give it with --password-stdin/ },
    { args: ['users', 'add', 'dave', '--password', PASSWORD, '--password-stdin', ...db], re: /mutually exclusive/ },
    { args: ['users', 'add', 'dave', '--role', 'root', '--password-stdin', ...db], stdin: PASSWORD, re: /Invalid values: Argument: role, Given: "root"/ },
    { args: ['users', 'add', 'dave', '--token', '', '--password-stdin', ...db], stdin: PASSWORD, re: /--token: token name must be 1-64 characters/ },
    { args: ['users', 'token', 'dave', '--name', ' ', ...db], re: /--name: token name must be 1-64 characters/ },
    { args: ['users', 'disable', ...db], re: /Not enough non-option arguments/ },
  ]
  for (const c of cases) {
    const r = await call(t, 'mport-relay', c.args, c.stdin !== undefined ? { stdin: c.stdin } : {})
    const what = c.args.slice(0, 3).join(' ')
    t.equal(r.code, 2, `${what}: exit 2`)
    oneLine(t, r.stderr.replace(/^warning: .*\n/m, ''), usage, what)
    t.match(r.stderr, c.re, `${what}: says why`)
    t.equal(r.stdout, '', `${what}: nothing on stdout`)
  }
  const store = await openStore({ dataDir })
  t.teardown(() => store.close())
  t.equal(await store.countUsers(), 0, 'no user was created')
})

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
    { args: [], re: /give a command: login, logout or tokens/ },
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

t.test('helpers: API addresses, stdin secrets, the hidden prompt, tables', async t => {
  t.equal(normalizeApi('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080')
  t.equal(normalizeApi('relay.example.com:7836'), 'https://relay.example.com:7836', 'no scheme means https')
  t.equal(normalizeApi('https://example.com/mport/api//'), 'https://example.com/mport/api', 'a path prefix is kept')
  t.throws(() => normalizeApi('ftp://example.com'), /http:\/\/ or https:\/\//)
  t.throws(() => normalizeApi('http://u:p@example.com'), /must not carry a user name or password/)
  t.throws(() => normalizeApi('http://example.com/?x=1'), /query/)

  const feed = (s: string): PassThrough => { const p = new PassThrough(); p.end(s); return p }
  t.equal(await readStdinSecret(feed('pw with spaces  \n')), 'pw with spaces  ', 'only the newline is stripped')
  await t.rejects(readStdinSecret(feed('\n')), /no password on stdin/)
  await t.rejects(readStdinSecret(feed('x'.repeat(70_000))), /longer than/)

  // The prompt without a terminal (raw mode is used only on a TTY): Backspace edits, Enter ends.
  const out = new PassThrough()
  let shown = ''
  out.on('data', (b: Buffer) => { shown += b.toString() })
  const input = new PassThrough()
  const answer = promptSecret(input, out, 'Password: ')
  input.write('secreX\u007ft')
  input.write('\r')
  t.equal(await answer, 'secret')
  t.equal(shown, 'Password: \n', 'the typed characters are not echoed')
  const cancelled = new PassThrough()
  const c = promptSecret(cancelled, new PassThrough(), '> ')
  cancelled.write('abc\u0003')
  await t.rejects(c, /cancelled/)

  t.equal(formatTable(['A', 'BB'], [['xxx', 'y'], ['z', 'w']]), 'A    BB\nxxx  y\nz    w')
})
