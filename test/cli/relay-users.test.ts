/**
 * `mport-relay users add/list/disable/enable/token` as real processes and in-process
 * (`relayUsers`) on the store a real API serves, checked with the store and StoreAuthenticator:
 * the flows, --database and MPORT_DATABASE, and the usage errors. No password, and no token
 * other than the one a run just created, may appear in any output.
 */
import path from 'node:path'
import t from 'tap'
import { openStore, StoreAuthenticator } from '../../packages/mport-relay/src/store/index.js'
import { tokenId, tokenKey } from '../../src/tunnel/auth.js'
import { cleanup, tmpDir } from '../helpers/spawn.js'
import { call, createdToken, killChildren, oneLine, OTHER_PASSWORD, PASSWORD, run, secrets, startApi } from './fixtures/accounts.js'

t.teardown(cleanup)
t.teardown(killChildren)

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
