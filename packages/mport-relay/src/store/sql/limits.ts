/** Plan limits: relay-wide defaults and per-user overrides (a NULL column: the default). */
import type { Store, LimitOverrides, Limits } from '../types.js'
import type { LimitsTable } from '../schema.js'
import { checkLimit } from '../validate.js'
import type { SqlContext } from './common.js'
import type { SqlUsers } from './users.js'

const LIMIT_COLUMNS = {
  maxTunnels: 'max_tunnels',
  maxConnections: 'max_connections',
  monthlyBytes: 'monthly_bytes',
  bandwidthBytesPerSecond: 'bandwidth_bps',
  connectionsPerMinute: 'connections_per_minute',
} as const satisfies Record<keyof Limits, keyof LimitsTable>
const LIMIT_KEYS = Object.keys(LIMIT_COLUMNS) as Array<keyof Limits>

export class SqlLimits implements Pick<Store, 'getLimitOverrides' | 'setLimitOverrides' | 'effectiveLimits' | 'defaultLimits' | 'setDefaultLimits'> {
  #defaults: Limits
  readonly #ctx: SqlContext
  readonly #users: SqlUsers

  /** `defaults`: the relay-wide plan; unset keys are unlimited. Throws InvalidInputError on a bad value. */
  constructor (ctx: SqlContext, users: SqlUsers, defaults: Partial<Limits> = {}) {
    this.#ctx = ctx
    this.#users = users
    this.#defaults = checkedDefaults(defaults)
  }

  /** The relay-wide plan (unset keys: unlimited). */
  get defaultLimits (): Limits { return this.#defaults }

  /** Replaces the relay-wide plan (a reload); throws InvalidInputError on a bad value, leaving the old one. */
  setDefaultLimits (defaults: Partial<Limits>): void {
    this.#defaults = checkedDefaults(defaults)
  }

  async getLimitOverrides (userId: string): Promise<LimitOverrides> {
    const row = await this.#ctx.db.selectFrom('limits').selectAll().where('user_id', '=', userId).executeTakeFirst()
    const out: LimitOverrides = {}
    if (row === undefined) return out
    for (const k of LIMIT_KEYS) {
      const v = row[LIMIT_COLUMNS[k]]
      if (v !== null) out[k] = Number(v)
    }
    return out
  }

  async setLimitOverrides (userId: string, overrides: LimitOverrides): Promise<LimitOverrides> {
    await this.#users.requireUser(userId)
    const merged = { ...await this.getLimitOverrides(userId) }
    for (const k of LIMIT_KEYS) {
      const v = overrides[k]
      if (v === undefined) continue
      checkLimit(k, v)
      if (v === null) delete merged[k]
      else merged[k] = v
    }
    const row: LimitsTable = {
      user_id: userId,
      max_tunnels: merged.maxTunnels ?? null,
      max_connections: merged.maxConnections ?? null,
      monthly_bytes: merged.monthlyBytes ?? null,
      bandwidth_bps: merged.bandwidthBytesPerSecond ?? null,
      connections_per_minute: merged.connectionsPerMinute ?? null,
      updated_at: this.#ctx.now(),
    }
    const { user_id: _key, ...update } = row
    await this.#ctx.db.insertInto('limits').values(row).onConflict(oc => oc.column('user_id').doUpdateSet(update)).execute()
    return merged
  }

  async effectiveLimits (userId: string): Promise<Limits> {
    return { ...this.#defaults, ...await this.getLimitOverrides(userId) }
  }
}

/** Every plan key, unset ones null (unlimited); throws InvalidInputError on a bad value. */
function checkedDefaults (defaults: Partial<Limits>): Limits {
  const limits = Object.fromEntries(LIMIT_KEYS.map(k => [k, defaults[k] ?? null])) as unknown as Limits
  for (const k of LIMIT_KEYS) checkLimit(k, limits[k])
  return limits
}
