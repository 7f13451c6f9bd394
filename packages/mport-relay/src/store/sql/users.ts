/** Users: accounts with a role, an scrypt password hash and a disabled flag. */
import type { Selectable } from 'kysely'
import { NotFoundError, UserExistsError } from 'mport/errors'
import { dummyHash, hashPassword, verifyPassword, type ScryptParams } from '../password.js'
import type { UsersTable } from '../schema.js'
import type { Role, Store, User } from '../types.js'
import { checkPassword, checkRole, checkUserName } from '../validate.js'
import { isUniqueViolation, newId, toTime, type SqlContext } from './common.js'

export class SqlUsers implements Pick<Store, 'createUser' | 'getUser' | 'getUserByName' | 'listUsers' | 'countUsers' | 'updateUser' | 'checkPassword'> {
  readonly #ctx: SqlContext
  readonly #scrypt: ScryptParams

  constructor (ctx: SqlContext, scrypt: ScryptParams) {
    this.#ctx = ctx
    this.#scrypt = scrypt
  }

  async createUser (input: { name: string, password: string, role?: Role }): Promise<User> {
    checkUserName(input.name)
    checkPassword(input.password)
    const role = input.role ?? 'user'
    checkRole(role)
    const row: UsersTable = {
      id: newId('usr'),
      name: input.name,
      role,
      password_hash: await hashPassword(input.password, this.#scrypt),
      created_at: this.#ctx.now(),
      disabled_at: null,
    }
    try {
      await this.#ctx.db.insertInto('users').values(row).execute()
    } catch (err) {
      if (isUniqueViolation(err)) throw new UserExistsError(input.name)
      throw err
    }
    return toUser(row)
  }

  async getUser (id: string): Promise<User | undefined> {
    const row = await this.#ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toUser(row)
  }

  /** Throws NotFoundError unless `id` is a user (enabled or not). */
  async requireUser (id: string): Promise<User> {
    const user = await this.getUser(id)
    if (user === undefined) throw new NotFoundError('user', id)
    return user
  }

  async getUserByName (name: string): Promise<User | undefined> {
    const row = await this.#ctx.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst()
    return row && toUser(row)
  }

  async listUsers (): Promise<User[]> {
    const rows = await this.#ctx.db.selectFrom('users').selectAll().orderBy('created_at').orderBy('name').execute()
    return rows.map(toUser)
  }

  async countUsers (): Promise<number> {
    const row = await this.#ctx.db.selectFrom('users').select(eb => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
    return Number(row.n)
  }

  /** Updates the user row only; SqlStore ends the sessions of a user it disables. */
  async updateUser (id: string, change: { role?: Role, disabled?: boolean, password?: string }): Promise<User> {
    const set: Partial<UsersTable> = {}
    if (change.role !== undefined) { checkRole(change.role); set.role = change.role }
    if (change.password !== undefined) { checkPassword(change.password); set.password_hash = await hashPassword(change.password, this.#scrypt) }
    const current = await this.requireUser(id)
    if (change.disabled !== undefined && change.disabled !== (current.disabledAt !== null)) set.disabled_at = change.disabled ? this.#ctx.now() : null
    if (Object.keys(set).length > 0) await this.#ctx.db.updateTable('users').set(set).where('id', '=', id).execute()
    return (await this.getUser(id))!
  }

  async checkPassword (name: string, password: string): Promise<User | undefined> {
    const row = await this.#ctx.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst()
    // An unknown name still costs one scrypt run, so timing does not tell which names exist.
    const ok = await verifyPassword(password, row?.password_hash ?? await dummyHash(this.#scrypt))
    return row !== undefined && ok && row.disabled_at === null ? toUser(row) : undefined
  }
}

function toUser (r: Selectable<UsersTable>): User {
  return { id: r.id, name: r.name, role: r.role, createdAt: Number(r.created_at), disabledAt: toTime(r.disabled_at) }
}
