/** The audit log: one row per mutating call, paged newest first by id. */
import type { Selectable } from 'kysely'
import type { AuditLogTable } from '../schema.js'
import type { AuditEntry, AuditInput, Store } from '../types.js'
import type { SqlContext } from './common.js'

export class SqlAudit implements Pick<Store, 'audit' | 'listAudit'> {
  readonly #ctx: SqlContext

  constructor (ctx: SqlContext) {
    this.#ctx = ctx
  }

  async audit (entry: AuditInput): Promise<AuditEntry> {
    const values: Omit<Selectable<AuditLogTable>, 'id'> = {
      at: entry.at ?? this.#ctx.now(),
      actor_id: entry.actorId ?? null,
      actor_name: entry.actorName ?? null,
      action: entry.action,
      target: entry.target ?? null,
      address: entry.address ?? null,
      details: entry.details == null ? null : JSON.stringify(entry.details),
    }
    const row = await this.#ctx.db.insertInto('audit_log').values(values).returning('id').executeTakeFirstOrThrow()
    return toAudit({ ...values, id: Number(row.id) })
  }

  async listAudit (q: { before?: number, limit?: number, actorId?: string } = {}): Promise<{ entries: AuditEntry[], next: number | null }> {
    const limit = Math.max(1, Math.min(q.limit ?? 50, 500))
    let query = this.#ctx.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(limit + 1)
    if (q.before !== undefined) query = query.where('id', '<', q.before)
    if (q.actorId !== undefined) query = query.where('actor_id', '=', q.actorId)
    const rows = await query.execute()
    const entries = rows.slice(0, limit).map(toAudit)
    return { entries, next: rows.length > limit ? entries.at(-1)!.id : null }
  }
}

function toAudit (r: Selectable<AuditLogTable>): AuditEntry {
  return {
    id: Number(r.id),
    at: Number(r.at),
    actorId: r.actor_id,
    actorName: r.actor_name,
    action: r.action,
    target: r.target,
    address: r.address,
    details: r.details === null ? null : JSON.parse(r.details) as Record<string, unknown>,
  }
}
