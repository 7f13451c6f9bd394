/**
 * A config reload (SIGHUP, POST /v1/admin/reload): the file re-read with the same code as at
 * start (relay-settings.ts; the command line's flags still win), compared with the running
 * settings, and the changed live keys applied to the service; changed restart-only keys are
 * named, not applied. A file that fails validation throws InvalidConfigError and nothing changes.
 */
import type { RelayService } from '../service/relay-service.js'
import type { RelayReload, RelayReloadResult } from '../service/relay-reload.js'
import { isLive, loadRelaySettings, planDefaults, SETTING_NAMES, shownValue, snakeKey, type NamedTokenSetting, type RelaySettings, type SettingName } from './relay-settings.js'

/** Where a reload reads from: the config file, the flags the command line gave, the environment. */
export interface ReloadSource {
  file: string
  flags: Partial<Record<SettingName, unknown>>
  env: NodeJS.ProcessEnv
}

/** What a reload did. */
export interface ReloadOutcome {
  /** The settings now in force: the changed live keys from the file, the rest as before. */
  settings: RelaySettings
  /** Live keys applied (snake_case). */
  changed: string[]
  /** Keys changed in the file that apply at the next restart (snake_case). */
  restartNeeded: string[]
  result: RelayReloadResult
  /** One line for the log: what changed (secrets as ***), what ended, what needs a restart. */
  line: string
}

/**
 * Re-reads `source.file` and applies what changed against `running` to `service`. Throws
 * InvalidConfigError (the reason) for a file that fails validation; the running config stays.
 */
export async function reloadSettings (service: Pick<RelayService, 'reload'>, running: RelaySettings, source: ReloadSource): Promise<ReloadOutcome> {
  const next = await loadRelaySettings(source)
  const live: SettingName[] = []
  const restart: SettingName[] = []
  for (const n of SETTING_NAMES) {
    if (JSON.stringify(running[n]) === JSON.stringify(next[n])) continue
    if (isLive(n)) live.push(n)
    else restart.push(n)
  }
  const result = await service.reload(reloadOf(next, new Set(live)))
  const settings: Record<string, unknown> = { ...running }
  for (const n of live) settings[n] = next[n]
  const changes = live.map(n => `${snakeKey(n)} ${shown(n, running[n])} → ${shown(n, next[n])}`)
  const ended = [
    result.sessionsEnded > 0 ? `${result.sessionsEnded} client session${result.sessionsEnded === 1 ? '' : 's'} ended` : '',
    result.tunnelsClosed > 0 ? `${result.tunnelsClosed} tunnel${result.tunnelsClosed === 1 ? '' : 's'} closed` : '',
  ].filter(Boolean)
  const line = [
    `config reloaded from ${source.file}: ${changes.length > 0 ? changes.join(', ') : 'nothing to apply'}`,
    ...(ended.length > 0 ? [ended.join(', ')] : []),
    ...(restart.length > 0 ? [`changed but applied only at the next restart: ${restart.map(snakeKey).join(', ')}`] : []),
  ].join('; ')
  return { settings: settings as RelaySettings, changed: live.map(snakeKey), restartNeeded: restart.map(snakeKey), result, line }
}

/** The service's reload for the changed live keys (the bin applies `verbose`, `log_level` and `drain_timeout` itself). */
function reloadOf (s: RelaySettings, changed: ReadonlySet<SettingName>): RelayReload {
  const any = (...names: SettingName[]): boolean => names.some(n => changed.has(n))
  return {
    ...(any('plan-tunnels', 'plan-connections', 'plan-monthly-gb', 'plan-bandwidth-mbps', 'plan-connections-per-minute') ? { planDefaults: planDefaults(s) } : {}),
    ...(any('connections-per-ip-per-minute') ? { connectionsPerIpPerMinute: s['connections-per-ip-per-minute'] ?? null } : {}),
    ...(any('lease-grace') ? { leaseGrace: s['lease-grace'] * 1000 } : {}),
    ...(any('tokens') ? { tokens: s.tokens.map(t => ({ name: t.name, token: t.token })) } : {}),
    ...(any('reserved-names') ? { reservedNames: s['reserved-names'] } : {}),
    ...(any('client-allow-ip', 'client-deny-ip') ? { clientIpFilter: { allow: s['client-allow-ip'], deny: s['client-deny-ip'] } } : {}),
  }
}

/** A value for the reload line: secrets as ***, tokens by name, lists in brackets, unset as "unset". */
function shown (n: SettingName, v: unknown): string {
  if (v === undefined) return 'unset'
  if (n === 'tokens') return `[${(v as NamedTokenSetting[]).map(t => `${t.name}=***`).join(', ')}]`
  const s = shownValue(n, v)
  return Array.isArray(s) ? `[${s.join(', ')}]` : String(s)
}
