/**
 * Usage: counters per (user, tunnel) in minute buckets, rolled up into hour rows once the hour
 * is complete and into day rows after the hour retention. Queries add the finer rows in, so an
 * answer is the same before and after a rollup.
 */
import { sql, type ExpressionBuilder, type Kysely, type OnConflictDatabase, type OnConflictTables } from 'kysely'
import type { Database } from '../schema.js'
import { DAY, HOUR, MINUTE } from '../time.js'
import type { RollupResult, Store, UsageBucket, UsageDelta, UsageQuery } from '../types.js'
import type { SqlContext } from './common.js'

const COUNTERS = ['bytes_in', 'bytes_out', 'connections', 'active_seconds'] as const
const USAGE_KEY = ['user_id', 'granularity', 'bucket_start', 'tunnel'] as const

export class SqlUsage implements Pick<Store, 'addUsage' | 'rollup' | 'queryUsage' | 'monthBytes'> {
  readonly #ctx: SqlContext
  readonly #hourRetention: number

  /** `hourRetentionMs`: hour rows older than this move into day rows at rollup. */
  constructor (ctx: SqlContext, hourRetentionMs: number) {
    this.#ctx = ctx
    this.#hourRetention = hourRetentionMs
  }

  async addUsage (deltas: readonly UsageDelta[]): Promise<void> {
    // Merge deltas that land in the same bucket, so one row is written once per flush.
    const merged = new Map<string, UsageDelta>()
    for (const d of deltas) {
      const start = d.at - mod(d.at, MINUTE)
      const key = JSON.stringify([d.userId, d.tunnel, start])
      const m = merged.get(key)
      if (m === undefined) merged.set(key, { ...d, at: start })
      else { m.bytesIn += d.bytesIn; m.bytesOut += d.bytesOut; m.connections += d.connections; m.activeSeconds += d.activeSeconds }
    }
    if (merged.size === 0) return
    await this.#ctx.db.transaction().execute(async trx => {
      for (const d of merged.values()) {
        await trx.insertInto('usage').values({
          user_id: d.userId, tunnel: d.tunnel, granularity: 'minute', bucket_start: d.at,
          bytes_in: d.bytesIn, bytes_out: d.bytesOut, connections: d.connections, active_seconds: d.activeSeconds,
        }).onConflict(oc => oc.columns(USAGE_KEY).doUpdateSet(addCounters)).execute()
      }
    })
  }

  async rollup (now = this.#ctx.now()): Promise<RollupResult> {
    const hourCut = now - mod(now, HOUR)
    const dayCut = (now - this.#hourRetention) - mod(now - this.#hourRetention, DAY)
    return await this.#ctx.db.transaction().execute(async trx => {
      const minutes = await move(trx, 'minute', 'hour', HOUR, hourCut)
      const hours = await move(trx, 'hour', 'day', DAY, dayCut)
      return { minutes, hours }
    })
  }

  async queryUsage (q: UsageQuery): Promise<UsageBucket[]> {
    const size = q.granularity === 'hour' ? HOUR : DAY
    const from = q.from - mod(q.from, size)
    let query = this.#ctx.db.selectFrom('usage').selectAll()
      .where('bucket_start', '>=', from).where('bucket_start', '<', q.to)
      // Hour buckets are answered from minute and hour rows; day buckets from all three.
      .where('granularity', 'in', q.granularity === 'hour' ? ['minute', 'hour'] : ['minute', 'hour', 'day'])
    if (q.userId !== undefined) query = query.where('user_id', '=', q.userId)
    if (q.tunnel !== undefined) query = query.where('tunnel', '=', q.tunnel)
    const rows = await query.execute()
    const buckets = new Map<string, UsageBucket>()
    for (const r of rows) {
      const start = Number(r.bucket_start) - mod(Number(r.bucket_start), size)
      const key = JSON.stringify([start, r.user_id, r.tunnel])
      let b = buckets.get(key)
      if (b === undefined) {
        b = { start, userId: r.user_id, tunnel: r.tunnel, bytesIn: 0, bytesOut: 0, connections: 0, activeSeconds: 0 }
        buckets.set(key, b)
      }
      b.bytesIn += Number(r.bytes_in)
      b.bytesOut += Number(r.bytes_out)
      b.connections += Number(r.connections)
      b.activeSeconds += Number(r.active_seconds)
    }
    return [...buckets.values()].sort((a, b) => a.start - b.start || cmp(a.userId, b.userId) || cmp(a.tunnel, b.tunnel))
  }

  async monthBytes (userId: string, now = this.#ctx.now()): Promise<number> {
    const d = new Date(now)
    const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
    const row = await this.#ctx.db.selectFrom('usage')
      .select(eb => [eb.fn.sum<number>('bytes_in').as('i'), eb.fn.sum<number>('bytes_out').as('o')])
      .where('user_id', '=', userId).where('bucket_start', '>=', monthStart)
      .executeTakeFirstOrThrow()
    return Number(row.i ?? 0) + Number(row.o ?? 0)
  }
}

/** ON CONFLICT: add the incoming row's counters to the stored ones. */
function addCounters (eb: ExpressionBuilder<OnConflictDatabase<Database, 'usage'>, OnConflictTables<'usage'>>) {
  return {
    bytes_in: eb('usage.bytes_in', '+', eb.ref('excluded.bytes_in')),
    bytes_out: eb('usage.bytes_out', '+', eb.ref('excluded.bytes_out')),
    connections: eb('usage.connections', '+', eb.ref('excluded.connections')),
    active_seconds: eb('usage.active_seconds', '+', eb.ref('excluded.active_seconds')),
  }
}

/** Adds rows of `from` granularity older than `cut` into `to` rows of `size` ms, then deletes them. */
async function move (trx: Kysely<Database>, from: 'minute' | 'hour', to: 'hour' | 'day', size: number, cut: number): Promise<number> {
  // `size` is one of two constants, never a caller's value: a literal keeps GROUP BY and SELECT identical.
  const start = sql<number>`bucket_start - (bucket_start % ${sql.lit(size)})`
  await trx.insertInto('usage')
    .columns(['user_id', 'tunnel', 'granularity', 'bucket_start', ...COUNTERS])
    .expression(eb => eb.selectFrom('usage')
      .select(['user_id', 'tunnel'])
      .select([
        sql.lit(to).as('granularity'),
        start.as('bucket_start'),
        ...COUNTERS.map(c => eb.fn.sum<number>(c).as(c)),
      ])
      .where('granularity', '=', from)
      .where('bucket_start', '<', cut)
      .groupBy(['user_id', 'tunnel', start]))
    .onConflict(oc => oc.columns(USAGE_KEY).doUpdateSet(addCounters))
    .execute()
  const r = await trx.deleteFrom('usage').where('granularity', '=', from).where('bucket_start', '<', cut).executeTakeFirst()
  return Number(r.numDeletedRows)
}

function mod (a: number, b: number): number {
  return ((a % b) + b) % b
}

function cmp (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
