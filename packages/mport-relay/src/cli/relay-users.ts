/**
 * `mport-relay users …`: the operator's account tasks, straight on the relay's store (the
 * SQLite file in the data directory, or `--database`), so they work before any admin exists and
 * while the relay is stopped. Passwords are never printed; a created token is printed once.
 * Every change is written to the audit log with the local operator as the actor.
 */
import os from 'node:os'
import yargs from 'yargs'
import { openStore } from '../store/open.js'
import { NotFoundError } from 'mport/errors'
import { checkPassword, checkTokenName, checkUserName } from '../store/validate.js'
import type { ApiToken, Role, Store, User } from '../store/types.js'
import { defaultDataDir } from 'mport/relay'
import { packageVersion } from 'mport/cli'
import { formatTable, formatTime, lastWins, obtainPassword, processIo, runAccountCommand, UsageError, type CliIo } from 'mport/cli'

const PREFIX = 'mport-relay users'
const ONCE = 'This token is shown only now: it is not stored and cannot be shown again.'

interface Common { json: boolean, dataDir?: string, database?: string }

type Work = (store: Store, out: Output) => Promise<void>

interface Output {
  json: boolean
  /** A human line, unless --json. */
  line (s: string): void
  /** The one JSON document of a --json run. */
  data (v: unknown): void
  warn (s: string): void
  audit (action: string, target: string, details?: Record<string, unknown>): Promise<void>
}

/** The API's shape of a user (src/api userView): never the password hash. */
export function userJson (u: User): { id: string, name: string, role: Role, createdAt: number, disabled: boolean } {
  return { id: u.id, name: u.name, role: u.role, createdAt: u.createdAt, disabled: u.disabledAt !== null }
}

function tokenJson (t: ApiToken): Omit<ApiToken, 'userId'> {
  return { id: t.id, name: t.name, tokenId: t.tokenId, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt, revokedAt: t.revokedAt, expiresAt: t.expiresAt }
}

/** Runs `mport-relay users …` (`args` start with "users"); returns the exit code. */
export async function relayUsers (args: string[], io: CliIo = processIo()): Promise<number> {
  return await runAccountCommand(io, PREFIX, PREFIX, async () => {
    let picked: { common: Common, work: Work, prepare?: () => Promise<void> } | undefined
    // The shared options are declared on `users`; yargs does not carry their types into the sub-commands.
    const common = (a: Record<string, unknown>): Common => ({
      json: a.json === true,
      ...(typeof a['data-dir'] === 'string' ? { dataDir: a['data-dir'] } : {}),
      ...(typeof a.database === 'string' ? { database: a.database } : {}),
    })
    await yargs(args)
      .scriptName('mport-relay')
      .usage('$0 users <command>\n\nManage the relay\'s users and their tokens, directly in its database (the relay may be running).')
      .command('users', 'Manage users and tokens', y => y
        .options({
          'data-dir': { type: 'string', describe: 'The relay\'s data directory; its mport.db is the default database (env MPORT_DATA_DIR; default ~/.mport)' },
          database: { type: 'string', describe: 'postgres://… or a SQLite file instead of <data-dir>/mport.db (env MPORT_DATABASE)' },
          json: { type: 'boolean', default: false, describe: 'Print JSON instead of lines and tables' },
        })
        .command('add <name>', 'Create a user', y => y
          .positional('name', { type: 'string', demandOption: true, describe: 'User name: a lower-case letter, then letters, digits, ".", "_" or "-"' })
          .options({
            role: { type: 'string', choices: ['admin', 'user'] as const, default: 'user' as const, describe: 'Role' },
            'password-stdin': { type: 'boolean', describe: 'Read the password from stdin (one line)' },
            password: { type: 'string', describe: 'The password (visible to other local users in the process list: prefer --password-stdin)' },
            token: { type: 'string', describe: 'Also create an API/tunnel token with this name (printed once)' },
          })
          .conflicts('password', 'password-stdin'), a => {
          let password: string | undefined = a.password
          const role = a.role
          const tokenName = a.token
          picked = {
            common: common(a),
            prepare: async () => {
              asUsage(() => checkUserName(a.name))
              if (tokenName !== undefined) asUsage(() => checkTokenName(tokenName), '--token: ')
              if (password !== undefined) io.stderr.write('warning: a password given with --password is visible in the process list; prefer --password-stdin\n')
              password ??= await obtainPassword(io, { stdinFlag: a['password-stdin'] === true, hint: 'give it with --password-stdin (or --password)', confirm: true, prompt: `Password for ${a.name}: ` })
              asUsage(() => checkPassword(password!))
            },
            work: async (store, out) => {
              const user = await store.createUser({ name: a.name, password: password!, role })
              await out.audit('user.create', user.id, { name: user.name, role: user.role })
              out.line(`created user ${user.name} (role ${user.role}, id ${user.id})`)
              let token: { token: string, info: ReturnType<typeof tokenJson> } | undefined
              if (tokenName !== undefined) token = await createToken(store, out, user, tokenName)
              out.data({ user: userJson(user), ...(token !== undefined ? { token } : {}) })
            },
          }
        })
        .command('list', 'List users', {}, a => {
          picked = {
            common: common(a),
            work: async (store, out) => {
              const users = await store.listUsers()
              out.data(users.map(userJson))
              if (users.length === 0) return out.line('no users yet: create the first admin with mport-relay users add <name> --role admin --password-stdin')
              out.line(formatTable(['NAME', 'ROLE', 'STATUS', 'CREATED', 'ID'], users.map(u => [
                u.name, u.role, u.disabledAt === null ? 'enabled' : `disabled ${formatTime(u.disabledAt)}`, formatTime(u.createdAt), u.id,
              ])))
            },
          }
        })
        .command('disable <name>', 'Disable a user: their sessions end and their tokens stop working', y => y
          .positional('name', { type: 'string', demandOption: true }), a => {
          picked = { common: common(a), work: (store, out) => setDisabled(store, out, a.name, true) }
        })
        .command('enable <name>', 'Enable a disabled user again', y => y
          .positional('name', { type: 'string', demandOption: true }), a => {
          picked = { common: common(a), work: (store, out) => setDisabled(store, out, a.name, false) }
        })
        .command('token <user>', 'Create an API/tunnel token for a user (printed once)', y => y
          .positional('user', { type: 'string', demandOption: true })
          .options({ name: { type: 'string', default: 'default', describe: 'Name of the token' } }), a => {
          picked = {
            common: common(a),
            prepare: async () => asUsage(() => checkTokenName(a.name), '--name: '),
            work: async (store, out) => {
              const user = await findUser(store, a.user)
              const token = await createToken(store, out, user, a.name)
              out.data({ user: userJson(user), token })
            },
          }
        })
        .demandCommand(1, 'give a command: add, list, disable, enable or token')
        .strict()
        .epilogue('Exit codes: 0 done, 1 failure (the line ends with its code, e.g. [MPORT_ERR_USER_EXISTS]), 2 bad arguments.'))
      .demandCommand(1, 'give a command: users')
      .strict()
      .middleware(lastWins, true)
      .exitProcess(false)
      .fail((msg, err) => { throw new UsageError(msg ?? err?.message ?? 'bad arguments') })
      .version(packageVersion())
      .help()
      .parseAsync()
    if (picked === undefined) return undefined
    const { common: c, work, prepare } = picked
    return { json: c.json, run: async () => { await prepare?.(); await withStore(io, c, work) } }
  })
}

/** A value the store would refuse is a bad argument: exit 2 before anything is asked or written. */
function asUsage (check: () => void, prefix = ''): void {
  try {
    check()
  } catch (err) {
    throw new UsageError(prefix + (err as Error).message)
  }
}

async function findUser (store: Store, name: string): Promise<User> {
  const user = await store.getUserByName(name)
  if (user === undefined) throw new NotFoundError('user', name)
  return user
}

async function createToken (store: Store, out: Output, user: User, name: string): Promise<{ token: string, info: ReturnType<typeof tokenJson> }> {
  const { token, raw } = await store.createToken(user.id, name)
  await out.audit('token.create', token.id, { name: token.name, tokenId: token.tokenId, user: user.name })
  out.line(`created token "${token.name}" for ${user.name} (id ${token.id}):\n  ${raw}\n${ONCE}`)
  if (user.disabledAt !== null) out.warn(`warning: ${user.name} is disabled: the token works only after mport-relay users enable ${user.name}`)
  return { token: raw, info: tokenJson(token) }
}

async function setDisabled (store: Store, out: Output, name: string, disabled: boolean): Promise<void> {
  const before = await findUser(store, name)
  const was = before.disabledAt !== null
  const user = was === disabled ? before : await store.updateUser(before.id, { disabled })
  if (was !== disabled) await out.audit('user.update', user.id, { disabled })
  out.data(userJson(user))
  const word = disabled ? 'disabled' : 'enabled'
  if (was === disabled) return out.line(`${user.name} was already ${word}`)
  out.line(disabled
    ? `disabled ${user.name}: their API sessions have ended, their tokens no longer authenticate, and a relay on this database drops their tunnels at its next check`
    : `enabled ${user.name}: their existing tokens work again`)
}

/** Opens the store, runs `work`, closes the store; prints the JSON document at the end. */
async function withStore (io: CliIo, c: Common, work: Work): Promise<void> {
  const url = c.database ?? (io.env.MPORT_DATABASE || undefined)
  const store = await openStore(url !== undefined ? { url } : { dataDir: c.dataDir ?? (io.env.MPORT_DATA_DIR || defaultDataDir()) })
  let doc: unknown
  const actor = `mport-relay users (${localUser()})`
  const out: Output = {
    json: c.json,
    line: s => { if (!c.json) io.stdout.write(s + '\n') },
    data: v => { doc = v },
    warn: s => { io.stderr.write(s + '\n') },
    audit: async (action, target, details) => { await store.audit({ actorName: actor, action, target, details: details ?? null }) },
  }
  try {
    await work(store, out)
  } finally {
    await store.close()
  }
  if (c.json && doc !== undefined) io.stdout.write(JSON.stringify(doc) + '\n')
}

function localUser (): string {
  try {
    return os.userInfo().username
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`
  }
}
