/**
 * A tunnel object's load-balancing keys in a client config file: `group`, `group_key` (or
 * `group_key_file` / `group_key_env`, so the key stays out of the file), `group_policy`,
 * `health_check` (`tcp`, `http` or `http:/path`) and `health_interval_ms`.
 */
import { parseHealthCheck, type TunnelSpec } from 'mport/client'
import { InvalidConfigError } from 'mport/errors'

/** The keys this module reads, in the order the README documents them. */
export const GROUP_KEYS = ['group', 'group_key', 'group_key_file', 'group_key_env', 'group_policy', 'health_check', 'health_interval_ms'] as const

const POLICIES = ['roundrobin', 'leastconn'] as const

/**
 * Sets `spec`'s group options from `obj` (the tunnel object at `where`; `key`: its group key,
 * already read from whichever of the three keys gives it); throws InvalidConfigError naming the key.
 */
export function applyGroupKeys (obj: Record<string, unknown>, spec: TunnelSpec, where: string, key: string | undefined): void {
  const group = obj.group
  const given = GROUP_KEYS.filter(k => k !== 'group' && obj[k] !== undefined && obj[k] !== null)
  if (group === undefined || group === null) {
    if (given.length > 0) throw new InvalidConfigError(given[0]!, `"${given[0]}" of ${where} needs "group": the load-balancing group to join`)
    return
  }
  if (typeof group !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(group)) throw new InvalidConfigError('group', `"group" of ${where} must be a name (letters, digits, . _ -, at most 64), not ${JSON.stringify(group)}`)
  spec.group = group
  if (key !== undefined) spec.groupKey = key
  const policy = obj.group_policy
  if (policy !== undefined && policy !== null) {
    if (!POLICIES.includes(policy as never)) throw new InvalidConfigError('group_policy', `"group_policy" of ${where} must be roundrobin or leastconn, not ${JSON.stringify(policy)}`)
    spec.groupPolicy = policy as TunnelSpec['groupPolicy'] & string
  }
  const check = obj.health_check
  const interval = obj.health_interval_ms
  if (check === undefined || check === null) {
    if (interval !== undefined && interval !== null) throw new InvalidConfigError('health_interval_ms', `"health_interval_ms" of ${where} needs "health_check"`)
    return
  }
  if (typeof check !== 'string') throw new InvalidConfigError('health_check', `"health_check" of ${where} must be tcp, http or http:/path, not ${JSON.stringify(check)}`)
  if (interval !== undefined && interval !== null && typeof interval !== 'number') throw new InvalidConfigError('health_interval_ms', `"health_interval_ms" of ${where} must be a number of ms`)
  try {
    spec.healthCheck = parseHealthCheck(check, interval ?? undefined)
  } catch (err) {
    if (err instanceof InvalidConfigError) throw new InvalidConfigError(err.key === 'health-interval' ? 'health_interval_ms' : 'health_check', `${where}: ${err.message.replace(/^invalid config "[^"]*": /, '')}`)
    throw err
  }
}
