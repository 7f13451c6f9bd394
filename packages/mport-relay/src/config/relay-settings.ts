/**
 * The relay's settings: one table of every setting ({@link RELAY_SETTINGS}), reading a config
 * file against it, checking values, and turning settings into {@link RelayServiceOptions}.
 * The bin parses flags with it at start, and a reload re-reads the file with the same code.
 *
 * Adding a setting is one line in RELAY_SETTINGS (its flag, config key, type, check, env
 * variable and whether a reload applies it), plus the line in {@link serviceOptions} that
 * hands its value to the service.
 *
 * Precedence: flags, then the environment variables named in the table, then the file, then
 * the table's defaults. Keys are the flags' kebab-case here; a file writes them in snake_case.
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { loadConfigFile, checkKnownKeys } from 'mport/config'
import { InvalidConfigError } from 'mport/errors'
import { defaultDataDir, parsePortRange, DEFAULT_CONTROL_PORT } from 'mport/relay'
import { parseCidr } from 'mport/access'
import { oneLine, shownNumber, LOG_FORMATS, LOG_LEVELS } from 'mport/cli'
import type { RelayServiceOptions } from '../service/relay-service.js'
import { AllowPatterns, parseAllowList } from '../acme/allow-rule.js'

/** One setting: its flag (yargs fields) and how the relay treats it. */
export interface SettingSpec {
  /** `list`: a YAML/JSON list of strings, or one comma-separated string (the flag's form); `tokens`: file only, see {@link NamedTokenSetting}. */
  readonly type: 'string' | 'number' | 'boolean' | 'list' | 'tokens'
  readonly default?: string | number | boolean
  readonly describe: string
  /** A check beyond the type: a port number, a non-negative number, seconds, not empty. */
  readonly check?: 'port' | 'non-negative' | 'seconds' | 'non-empty' | 'cidr' | 'label' | 'choice'
  /** For `check: 'choice'`: the values allowed. */
  readonly choices?: readonly string[]
  /** An environment variable that wins over the file (flags win over both). */
  readonly env?: string
  /** The value when neither flag, variable, file nor `default` gives one (not shown by --help). */
  readonly fallback?: () => string
  /** A secret a file may also give as `<key>_file` (read, trimmed) or `<key>_env`. */
  readonly indirect?: true
  /** How `config print` and reload lines show it: `***`, or a URL with its password as `***`. */
  readonly secret?: 'mask' | 'url'
  /** A reload applies it to the running relay; otherwise it needs a restart. */
  readonly live?: true
}

/** Every setting of the relay, in --help's order. */
export const RELAY_SETTINGS = {
  host: { type: 'string', default: '0.0.0.0', describe: 'Address the control listener binds to' },
  port: { type: 'number', default: DEFAULT_CONTROL_PORT, check: 'port', describe: 'Control port clients connect to (TLS)' },
  'public-host': { type: 'string', env: 'MPORT_PUBLIC_HOST', fallback: () => os.hostname(), describe: 'Host name clients and visitors use to reach this relay (env MPORT_PUBLIC_HOST; default: this machine\'s host name)' },
  'bind-host': { type: 'string', default: '0.0.0.0', describe: 'Address public tunnel ports bind to' },
  ports: { type: 'string', env: 'MPORT_PORTS', fallback: () => '20000-29999', describe: 'Range of public ports tunnels may use (env MPORT_PORTS; default 20000-29999)' },
  'data-dir': { type: 'string', env: 'MPORT_DATA_DIR', fallback: defaultDataDir, describe: 'Where the generated certificate and token live (env MPORT_DATA_DIR; default ~/.mport)' },
  cert: { type: 'string', describe: 'TLS certificate (PEM) instead of the generated self-signed one' },
  key: { type: 'string', describe: 'TLS private key (PEM) for --cert' },
  token: { type: 'string', env: 'MPORT_TOKEN', indirect: true, secret: 'mask', check: 'non-empty', describe: 'Access token clients must present (env MPORT_TOKEN; default: generated and stored in the data dir)' },
  'lease-grace': { type: 'number', default: 120, check: 'seconds', live: true, describe: 'Seconds a disconnected client\'s ports are held for it' },
  'drain-timeout': { type: 'number', default: 10, check: 'seconds', live: true, describe: 'Seconds open connections may drain on SIGTERM/SIGINT' },
  json: { type: 'boolean', default: false, describe: 'Print one JSON object per event (the same as --log-format json)' },
  verbose: { type: 'boolean', default: false, live: true, describe: 'Also print every visitor connection (--log-level debug; costs CPU under heavy load)' },
  'log-format': { type: 'string', default: 'auto', check: 'choice', choices: LOG_FORMATS, describe: 'auto (readable lines on a terminal, JSON lines otherwise), json or text; fields in docs/LOGGING.md' },
  'log-level': { type: 'string', default: 'info', check: 'choice', choices: LOG_LEVELS, live: true, describe: 'error, warn, info or debug (every visitor connection)' },
  domain: { type: 'string', describe: 'Base domain for http/tls tunnels (<name>.<domain>; wildcard DNS pointing here)' },
  'http-port': { type: 'number', check: 'port', describe: 'Shared HTTP port for http tunnels (e.g. 80)' },
  'https-port': { type: 'number', check: 'port', describe: 'Shared HTTPS port: SNI routing for tls tunnels, TLS termination for http tunnels (e.g. 443)' },
  'https-cert': { type: 'string', describe: 'Certificate (PEM, usually *.<domain>) for http tunnels on the HTTPS port (default: self-signed, in the data dir)' },
  'https-key': { type: 'string', describe: 'Private key (PEM) for --https-cert' },
  'acme-directory': { type: 'string', describe: 'Get certificates for tunnel names from this ACME CA (https URL; Let\'s Encrypt: https://acme-v02.api.letsencrypt.org/directory); see docs/CERTIFICATES.md' },
  'acme-email': { type: 'string', describe: 'Contact address given to the ACME CA (expiry notices)' },
  'acme-ca-file': { type: 'string', describe: 'CA (PEM) to trust for the ACME directory\'s own TLS, such as a test CA\'s (pebble)' },
  'acme-allow': { type: 'string', describe: 'Names ACME may order although no tunnel or reservation holds them: app.example.org, *.example.org (comma-separated)' },
  'acme-dns-hook': { type: 'string', describe: 'Command for DNS-01, run as <hook> add|remove <fqdn> <value>: with it the base domain gets a *.<domain> certificate' },
  'acme-rate-per-hour': { type: 'number', check: 'non-negative', describe: 'Most ACME orders placed per hour (default 20)' },
  database: { type: 'string', env: 'MPORT_DATABASE', indirect: true, secret: 'url', describe: 'postgres://… or a SQLite file for users, tokens and usage (env MPORT_DATABASE; default mport.db in the data dir)' },
  'api-port': { type: 'number', check: 'port', describe: 'Serve the REST API (OpenAPI at /openapi.json, docs at /docs) on this port' },
  'api-host': { type: 'string', default: '127.0.0.1', describe: 'Address the REST API binds to' },
  'open-signup': { type: 'boolean', default: false, describe: 'Let anyone create an account through the API' },
  'recent-requests': { type: 'number', default: 50, check: 'non-negative', describe: 'HTTP requests kept per http tunnel for the dashboard\'s tunnel page (method, path without its query, status, duration, sizes; 0: none, and no exchange is read)' },
  'ops-port': { type: 'number', check: 'port', describe: 'Serve /metrics (Prometheus), /healthz and /readyz on this port (0: a free one; see docs/METRICS.md)' },
  'ops-host': { type: 'string', default: '127.0.0.1', describe: 'Address the ops listener binds to' },
  'plan-tunnels': { type: 'number', check: 'non-negative', live: true, describe: 'Default plan: tunnels per user (user accounts only; unset: unlimited)' },
  'plan-connections': { type: 'number', check: 'non-negative', live: true, describe: 'Default plan: concurrent visitor connections per user' },
  'plan-monthly-gb': { type: 'number', check: 'non-negative', live: true, describe: 'Default plan: GB (10^9 bytes) per user per month' },
  'plan-bandwidth-mbps': { type: 'number', check: 'non-negative', live: true, describe: 'Default plan: megabits per second per user, shaped' },
  'plan-connections-per-minute': { type: 'number', check: 'non-negative', live: true, describe: 'Default plan: new connections per minute per tunnel' },
  'connections-per-ip-per-minute': { type: 'number', check: 'non-negative', live: true, describe: 'New connections per minute from one visitor address, per tunnel' },
  'reserved-names': { type: 'list', check: 'label', live: true, describe: 'Subdomains nobody may take besides the built-in www, api, admin…, comma-separated (a live tunnel on a newly reserved one closes on reload)' },
  'client-allow-ip': { type: 'list', check: 'cidr', live: true, describe: 'Only these addresses or networks (comma-separated CIDRs) may open a client session on the control port' },
  'client-deny-ip': { type: 'list', check: 'cidr', live: true, describe: 'These addresses or networks may never open a client session (deny wins over allow)' },
  'cluster-redis': { type: 'string', env: 'MPORT_CLUSTER_REDIS', indirect: true, secret: 'url', describe: 'Run as one node of a cluster: redis://… of the shared routing registry (env MPORT_CLUSTER_REDIS; needs --cluster-key and a postgres:// --database; see docs/CLUSTER.md)' },
  'cluster-key': { type: 'string', env: 'MPORT_CLUSTER_KEY', indirect: true, secret: 'mask', check: 'non-empty', describe: 'The secret every node of the cluster shares to authenticate its links (env MPORT_CLUSTER_KEY)' },
  'cluster-node': { type: 'string', check: 'non-empty', describe: 'This node\'s id in the cluster (default: the host name and a random suffix)' },
  'cluster-link-host': { type: 'string', default: '0.0.0.0', describe: 'Address the link listener (visitors forwarded by other nodes, TLS) binds to' },
  'cluster-link-port': { type: 'number', default: 7838, check: 'port', describe: 'Port of the link listener (0: a free one)' },
  'cluster-advertise': { type: 'string', describe: 'Host other nodes dial this node\'s link at (default: --public-host)' },
  workers: { type: 'number', default: 1, check: 'non-negative', describe: 'Relay processes on this host sharing its control and HTTP(S) ports (node:cluster), each a node of the cluster: needs --cluster-redis' },
  'cluster-ttl': { type: 'number', default: 15, check: 'seconds', describe: 'Seconds a dead node\'s ports, names and leases stay in the registry (refreshed every third of it)' },
  tokens: { type: 'tokens', live: true, secret: 'mask', describe: 'Config file only: more static tokens besides the owner\'s, a list of { name, token_file } or { name, token_env }; each name is its own principal' },
} as const satisfies Record<string, SettingSpec>

/** A setting's name: its flag without the dashes (`data-dir`); the file key is its snake_case (`data_dir`). */
export type SettingName = keyof typeof RELAY_SETTINGS

/** One entry of `tokens` as the relay uses it: the name (its principal) and the token read from `token_file` or `token_env`. */
export interface NamedTokenSetting { readonly name: string, readonly token: string }

type ValueOf<S> = S extends { type: 'number' } ? number : S extends { type: 'boolean' } ? boolean
  : S extends { type: 'list' } ? readonly string[] : S extends { type: 'tokens' } ? readonly NamedTokenSetting[] : string
/** Settings as given: each value, or undefined when nothing set one and it has no default. */
export type SettingValues = { [K in SettingName]: (typeof RELAY_SETTINGS)[K] extends { default: unknown } | { fallback: unknown } | { type: 'list' | 'tokens' } ? ValueOf<(typeof RELAY_SETTINGS)[K]> : ValueOf<(typeof RELAY_SETTINGS)[K]> | undefined }

/** The relay's resolved settings: every value after flags, environment, file and defaults. */
export type RelaySettings = Readonly<SettingValues>

/** A setting's `config print` form: the documented file key. */
export const snakeKey = (k: string): string => k.replaceAll('-', '_')

const SPECS: Record<string, SettingSpec> = RELAY_SETTINGS
/** Every setting name. */
export const SETTING_NAMES = Object.keys(RELAY_SETTINGS) as SettingName[]
const INDIRECT = SETTING_NAMES.filter(n => SPECS[n]!.indirect === true)
const INDIRECT_KEYS = INDIRECT.flatMap(n => [`${n}-file`, `${n}-env`])
/** Every key a config file may hold: snake_case first (the documented spelling, so suggestions use it), then the flags' kebab-case. */
const CONFIG_KEYS = [...[...SETTING_NAMES, ...INDIRECT_KEYS].map(snakeKey), ...[...SETTING_NAMES, ...INDIRECT_KEYS].filter(k => k.includes('-'))]

/** Settings a config file alone can give (no flag): lists of objects. */
export const FILE_ONLY_SETTINGS = SETTING_NAMES.filter(n => SPECS[n]!.type === 'tokens')
/** List settings: a repeated flag adds to the list rather than replacing it (for `lastValueWins`). */
export const LIST_SETTINGS = SETTING_NAMES.filter(n => SPECS[n]!.type === 'list')

/** A flag as yargs' `.options()` takes it. */
export interface SettingFlag { type: 'string' | 'number' | 'boolean', default?: string | number | boolean, describe: string }

/** The flags for yargs' `.options()`: type, default and description of each setting that has a flag (a list is a comma-separated string). */
export function settingFlags (): Record<SettingName, SettingFlag> {
  const flags: Record<string, SettingFlag> = {}
  for (const n of SETTING_NAMES) {
    const s = SPECS[n]!
    if (s.type === 'tokens') continue
    flags[n] = { type: s.type === 'list' ? 'string' : s.type, ...(s.default !== undefined ? { default: s.default } : {}), describe: s.describe }
  }
  return flags as Record<SettingName, SettingFlag>
}

/** The file's values yargs may see (`.config()`): all but the file-only settings, which yargs' strict mode would call unknown. */
export function flagValues (file: FileSettings | undefined): Record<string, unknown> {
  const out = { ...file?.values }
  for (const n of FILE_ONLY_SETTINGS) delete out[n]
  return out
}

/** The file-only settings' values (merged after yargs). */
export function fileOnlyValues (file: FileSettings | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const n of FILE_ONLY_SETTINGS) if (file?.values[n] !== undefined) out[n] = file.values[n]
  return out
}

/** Does a reload apply this setting to the running relay (else: at the next restart)? */
export function isLive (name: SettingName): boolean {
  return SPECS[name]!.live === true
}

/** The environment variables that win over the file, in the table's order. */
export const SETTING_ENV = SETTING_NAMES.flatMap(n => SPECS[n]!.env ?? [])

/** The values a config file gave (kebab-case keys, checked for type), with the key as written. */
export interface FileSettings {
  file: string
  values: Record<string, unknown>
  /** Setting → the key as the file wrote it (`data_dir` or `data-dir`). */
  written: Map<string, string>
}

/**
 * The settings of a config file as flag values (kebab-case keys), checked: unknown keys (with
 * a suggestion), a setting given twice, values of the wrong type, and the secrets' files and
 * variables. Settings whose environment variable is set are left out (the variable wins).
 * Throws InvalidConfigError naming the key.
 */
export async function readSettingsFile (file: string, env: NodeJS.ProcessEnv): Promise<FileSettings> {
  const raw = await loadConfigFile(file)
  checkKnownKeys(raw, CONFIG_KEYS, file)
  const values: Record<string, unknown> = {}
  const written = new Map<string, string>()
  for (const [key, v] of Object.entries(raw)) {
    const flag = key.replaceAll('_', '-')
    const prev = written.get(flag)
    if (prev !== undefined) throw new InvalidConfigError(key, `"${prev}" and "${key}" in ${file} are the same setting; give it once`)
    written.set(flag, key)
    if (v === null || v === undefined) continue
    const type = INDIRECT_KEYS.includes(flag) ? 'string' : SPECS[flag]!.type
    if (type === 'list') {
      if (!(typeof v === 'string' || (Array.isArray(v) && v.every(x => typeof x === 'string')))) throw new InvalidConfigError(key, `"${key}" in ${file} must be a list of strings (or one comma-separated string), not ${JSON.stringify(v)}`)
      values[flag] = v
      continue
    }
    if (type === 'tokens') {
      values[flag] = readTokens(key, v, file, env)
      continue
    }
    if (typeof v !== type || (typeof v === 'number' && !Number.isFinite(v))) {
      throw new InvalidConfigError(key, `"${key}" in ${file} must be ${type === 'boolean' ? 'true or false' : `a ${type}`}, not ${JSON.stringify(v)}`)
    }
    values[flag] = v
  }
  for (const name of INDIRECT) {
    const given = [name, `${name}-file`, `${name}-env`].filter(f => values[f] !== undefined)
    if (given.length > 1) throw new InvalidConfigError(written.get(given[1]!) ?? name, `give only one of ${given.map(f => `"${written.get(f) ?? f}"`).join(', ')} in ${file}`)
    const fromFile = values[`${name}-file`]
    const fromEnv = values[`${name}-env`]
    delete values[`${name}-file`]
    delete values[`${name}-env`]
    if (typeof fromFile === 'string') {
      values[name] = readSecretFile(written.get(`${name}-file`) ?? `${name}_file`, fromFile, file)
      written.set(name, written.get(`${name}-file`) ?? `${name}_file`)
    } else if (typeof fromEnv === 'string') {
      const key = written.get(`${name}-env`) ?? `${name}_env`
      const text = env[fromEnv]
      if (text === undefined || text === '') throw new InvalidConfigError(key, `"${key}" in ${file} names ${fromEnv}, which is not set or empty`)
      values[name] = text
      written.set(name, key)
    }
  }
  for (const n of SETTING_NAMES) {
    const name = SPECS[n]!.env
    if (name !== undefined && env[name] !== undefined && env[name] !== '') delete values[n]
  }
  return { file, values, written }
}

/**
 * `tokens`: a list of `{ name, token_file }` or `{ name, token_env }`, each read now (so a reload
 * picks up a rotated file). Names are unique, not "owner" (the relay's own token), and short.
 */
function readTokens (key: string, v: unknown, file: string, env: NodeJS.ProcessEnv): NamedTokenSetting[] {
  if (!Array.isArray(v)) throw new InvalidConfigError(key, `"${key}" in ${file} must be a list of { name, token_file } or { name, token_env }, not ${JSON.stringify(v)}`)
  const out: NamedTokenSetting[] = []
  for (const [i, entry] of v.entries()) {
    const at = `${key}[${i}]`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new InvalidConfigError(at, `"${at}" in ${file} must be { name, token_file } or { name, token_env }`)
    const e = entry as Record<string, unknown>
    checkKnownKeys(e, ['name', 'token_file', 'token_env'], `"${at}" in ${file}`)
    const name = e.name
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new InvalidConfigError(at, `"${at}.name" in ${file} must be a name of letters, digits, ".", "_" or "-" (at most 64), not ${JSON.stringify(name)}`)
    if (name === 'owner') throw new InvalidConfigError(at, `"${at}.name" in ${file}: "owner" is the relay's own token (token / token_file); pick another name`)
    if (out.some(t => t.name === name)) throw new InvalidConfigError(at, `"${at}" in ${file}: the name "${name}" is given twice`)
    if ((e.token_file === undefined) === (e.token_env === undefined)) throw new InvalidConfigError(at, `"${at}" in ${file} needs exactly one of token_file, token_env`)
    let token: string
    if (e.token_file !== undefined) {
      if (typeof e.token_file !== 'string') throw new InvalidConfigError(at, `"${at}.token_file" in ${file} must be a string`)
      token = readSecretFile(`${at}.token_file`, e.token_file, file)
    } else {
      const variable = e.token_env
      if (typeof variable !== 'string') throw new InvalidConfigError(at, `"${at}.token_env" in ${file} must be a string`)
      const text = env[variable]
      if (text === undefined || text === '') throw new InvalidConfigError(at, `"${at}.token_env" in ${file} names ${variable}, which is not set or empty`)
      token = text
    }
    out.push({ name, token })
  }
  return out
}

/** A list setting's entries: a list as it is, a comma-separated string split, blanks dropped. */
function listOf (v: unknown): string[] {
  const items = Array.isArray(v) ? v.flatMap(x => String(x).split(',')) : typeof v === 'string' ? v.split(',') : []
  return items.map(x => x.trim()).filter(x => x !== '')
}

/** A secret named by `<key>_file`: the file's text, trimmed; unreadable or empty is an error naming the key. */
function readSecretFile (key: string, path: string, file: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8').trim()
  } catch (err) {
    throw new InvalidConfigError(key, `cannot read "${key}" ${path} in ${file}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`)
  }
  if (text === '') throw new InvalidConfigError(key, `"${key}" ${path} in ${file} is empty`)
  return text
}

/** What a check found wrong: the setting and a message that starts with its flag (`--port 70000 is not …`). */
export interface SettingProblem { key: SettingName, message: string }

/** Where the values being checked came from, so a message can name the file's key. */
export interface SettingSources {
  /** The command line, for showing what was typed and telling flags from file values. */
  args?: readonly string[]
  file?: FileSettings
}

/**
 * The first problem with merged values (flags over file over defaults, before the
 * environment), or undefined. A message about a value from the file says so:
 * `--port 70000 is not a port number (0-65535) (from "port" in relay.yaml)`.
 */
export function settingProblem (v: Record<string, unknown>, sources: SettingSources = {}, env: NodeJS.ProcessEnv = {}): SettingProblem | undefined {
  const args = sources.args ?? []
  const found = ((): SettingProblem | undefined => {
    if ((v.cert === undefined) !== (v.key === undefined)) return { key: 'cert', message: '--cert and --key go together' }
    if ((v['https-cert'] === undefined) !== (v['https-key'] === undefined)) return { key: 'https-cert', message: '--https-cert and --https-key go together' }
    const acme = acmeProblem(v)
    if (acme !== undefined) return acme
    if (Number(v.workers ?? 1) > 1 && v['cluster-redis'] === undefined && env.MPORT_CLUSTER_REDIS === undefined) return { key: 'workers', message: '--workers above 1 needs --cluster-redis: the workers find each other\'s tunnels in the registry' }
    if ((v['cluster-redis'] !== undefined || env.MPORT_CLUSTER_REDIS !== undefined) && v['cluster-key'] === undefined && env.MPORT_CLUSTER_KEY === undefined) return { key: 'cluster-redis', message: '--cluster-redis needs --cluster-key (or MPORT_CLUSTER_KEY, cluster_key_file)' }
    if ((v['cluster-redis'] !== undefined || env.MPORT_CLUSTER_REDIS !== undefined) && !/^postgres(ql)?:\/\//.test(String(v.database ?? env.MPORT_DATABASE ?? ''))) return { key: 'cluster-redis', message: '--cluster-redis needs a postgres:// --database every node shares' }
    if ((v['http-port'] !== undefined || v['https-port'] !== undefined) && v.domain === undefined) return { key: v['http-port'] !== undefined ? 'http-port' : 'https-port', message: '--http-port and --https-port need --domain' }
    for (const n of SETTING_NAMES) {
      const check = (SPECS[n] as SettingSpec).check
      const x = v[n]
      if (check === undefined || x === undefined) continue
      if (check === 'cidr' || check === 'label') {
        for (const item of listOf(x)) {
          if (check === 'label' && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(item)) return { key: n, message: `--${n} ${JSON.stringify(item)} is not a subdomain label (letters, digits, hyphens)` }
          if (check === 'cidr') {
            try {
              parseCidr(item, n)
            } catch {
              return { key: n, message: `--${n} ${JSON.stringify(item)} is not an address or network (like 10.0.0.0/8 or ::1)` }
            }
          }
        }
        continue
      }
      if (check === 'non-empty') {
        if (x === '') return { key: n, message: `--${n} is empty` }
        continue
      }
      if (check === 'choice') {
        const choices = (SPECS[n] as SettingSpec).choices ?? []
        if (!choices.includes(String(x))) return { key: n, message: `--${n} ${JSON.stringify(x)} is not one of ${choices.join(', ')}` }
        continue
      }
      const num = x as number
      if (check === 'port' && (!Number.isInteger(num) || num < 0 || num > 65535)) return { key: n, message: `--${n} ${shownNumber(args, n, num)} is not a port number (0-65535)` }
      if (check === 'non-negative' && (!Number.isFinite(num) || num < 0)) return { key: n, message: `--${n} ${shownNumber(args, n, num)} must be a non-negative number` }
      if (check === 'seconds' && (!Number.isFinite(num) || num < 0)) return { key: n, message: `--${n} ${shownNumber(args, n, num)} is not a number of seconds` }
    }
    try {
      parsePortRange((v.ports as string | undefined) ?? env.MPORT_PORTS ?? '20000-29999')
    } catch (err) {
      return { key: 'ports', message: (err as Error).message }
    }
    return undefined
  })()
  if (found === undefined) return undefined
  return { key: found.key, message: fromFile(found.message, sources) }
}

/** A message about `--<flag>` says so when the value came from the config file, not a flag. */
function fromFile (msg: string, { args = [], file }: SettingSources): string {
  const flag = /^--([a-z-]+)\b/.exec(msg)?.[1]
  if (flag === undefined || file === undefined || file.values[flag] === undefined) return msg
  if (args.some(a => a === `--${flag}` || a.startsWith(`--${flag}=`) || a === `--no-${flag}`)) return msg
  return `${msg} (from "${file.written.get(flag) ?? snakeKey(flag)}" in ${file.file})`
}

/** The settings the command line gave explicitly (not defaults, not the file): what a reload keeps. */
export function givenFlags (argv: Record<string, unknown>, args: readonly string[]): Partial<Record<SettingName, unknown>> {
  const given: Partial<Record<SettingName, unknown>> = {}
  for (const n of SETTING_NAMES) {
    if (args.some(a => a === `--${n}` || a.startsWith(`--${n}=`) || a === `--no-${n}`) && argv[n] !== undefined) given[n] = argv[n]
  }
  return given
}

/** Merged values (flags over file over defaults) with the environment and the fallbacks applied. */
export function resolveSettings (v: Record<string, unknown>, env: NodeJS.ProcessEnv): RelaySettings {
  const out: Record<string, unknown> = {}
  for (const n of SETTING_NAMES) {
    const s = SPECS[n]!
    const fromEnv = s.env !== undefined && env[s.env] !== '' ? env[s.env] : undefined
    const value = v[n] ?? fromEnv ?? s.default ?? s.fallback?.()
    out[n] = s.type === 'list' ? listOf(value) : s.type === 'tokens' ? value ?? [] : value
  }
  return out as RelaySettings
}

/**
 * Reads, merges, checks and resolves the settings, as a reload does: `flags` (what the command
 * line gave, which still wins), the environment, then `file`. Throws InvalidConfigError naming
 * the key; nothing is applied by reading.
 */
export async function loadRelaySettings (opts: { file: string, flags?: Partial<Record<SettingName, unknown>>, env: NodeJS.ProcessEnv }): Promise<RelaySettings> {
  const file = await readSettingsFile(opts.file, opts.env)
  const merged: Record<string, unknown> = {}
  for (const n of SETTING_NAMES) merged[n] = opts.flags?.[n] ?? file.values[n] ?? SPECS[n]!.default
  const problem = settingProblem(merged, { file }, opts.env)
  if (problem !== undefined) throw new InvalidConfigError(problem.key, problem.message)
  return resolveSettings(merged, opts.env)
}

/** A database URL with its password (if any) as `***`; a file name as it is. */
export function maskUrlPassword (url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@')
}

/** A setting's value as `config print` and reload lines show it: secrets masked. */
export function shownValue (name: SettingName, value: unknown): unknown {
  const secret = (SPECS[name] as SettingSpec).secret
  if (value === undefined || secret === undefined) return value
  if ((SPECS[name] as SettingSpec).type === 'tokens') return (value as NamedTokenSetting[]).map(t => ({ name: t.name, token: '***' }))
  return secret === 'url' ? maskUrlPassword(String(value)) : '***'
}

/** The settings for `config print`: snake_case keys, secrets masked, unset ones left out. */
export function printableSettings (s: RelaySettings): Record<string, unknown> {
  const shown: Record<string, unknown> = {}
  for (const n of SETTING_NAMES) {
    const v = shownValue(n, s[n])
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) shown[snakeKey(n)] = v
  }
  return shown
}

/** A PEM file named by a setting; unreadable is an error naming the flag (`cannot read --cert c.pem: ENOENT`). */
function readPem (flag: SettingName, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new InvalidConfigError(flag, `cannot read --${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`)
  }
}

/**
 * The service's options from the settings (reading the certificate files they name), plus what
 * only the process knows (`extra`: version, GC meter…). Throws InvalidConfigError for an
 * unreadable file.
 */
export function serviceOptions (s: RelaySettings, extra: Partial<RelayServiceOptions> = {}, worker?: number): RelayServiceOptions {
  return {
    dataDir: s['data-dir'],
    host: s.host,
    port: s.port,
    bindHost: s['bind-host'],
    publicHost: s['public-host'],
    portRange: parsePortRange(s.ports),
    ...(s.cert !== undefined && s.key !== undefined ? { cert: readPem('cert', s.cert), key: readPem('key', s.key) } : {}),
    ...(s.token !== undefined ? { token: s.token } : {}),
    ...(s.database !== undefined ? { database: s.database } : {}),
    leaseGrace: s['lease-grace'] * 1000,
    ...(s.domain !== undefined ? { domain: s.domain } : {}),
    ...(s['http-port'] !== undefined ? { httpPort: s['http-port'] } : {}),
    ...(s['https-port'] !== undefined ? { httpsPort: s['https-port'] } : {}),
    ...(s['https-cert'] !== undefined && s['https-key'] !== undefined ? { httpsCert: readPem('https-cert', s['https-cert']), httpsKey: readPem('https-key', s['https-key']) } : {}),
    ...(s['api-port'] !== undefined ? { api: { host: s['api-host'], port: s['api-port'], openSignup: s['open-signup'], recentRequests: s['recent-requests'] } } : {}),
    ...(s['ops-port'] !== undefined ? { ops: { host: s['ops-host'], port: s['ops-port'] } } : {}),
    planDefaults: planDefaults(s),
    ...(s['connections-per-ip-per-minute'] !== undefined ? { connectionsPerIpPerMinute: s['connections-per-ip-per-minute'] } : {}),
    ...(s.tokens.length > 0 ? { tokens: s.tokens.map(t => ({ name: t.name, token: t.token })) } : {}),
    ...(s['reserved-names'].length > 0 ? { reservedNames: s['reserved-names'] } : {}),
    ...(s['client-allow-ip'].length > 0 || s['client-deny-ip'].length > 0 ? { clientIpFilter: { allow: s['client-allow-ip'], deny: s['client-deny-ip'] } } : {}),
    ...(s['acme-directory'] !== undefined ? { acme: acmeOptions(s, s['acme-directory']) } : {}),
    ...(s['cluster-redis'] !== undefined && s['cluster-key'] !== undefined ? { cluster: clusterOptions(s, s['cluster-redis'], s['cluster-key'], worker) } : {}),
    ...extra,
  }
}

/** The `acme_*` settings: the other keys need `acme_directory`, which must be an https URL; `acme_allow` patterns must parse. */
function acmeProblem (v: Record<string, unknown>): SettingProblem | undefined {
  const dir = v['acme-directory']
  const other = (['acme-email', 'acme-ca-file', 'acme-allow', 'acme-dns-hook', 'acme-rate-per-hour'] as const).find(k => v[k] !== undefined)
  if (dir === undefined) return other === undefined ? undefined : { key: other, message: `--${other} needs --acme-directory` }
  let url: URL | undefined
  try { url = new URL(String(dir)) } catch { url = undefined }
  if (url?.protocol !== 'https:') return { key: 'acme-directory', message: `--acme-directory ${JSON.stringify(dir)} is not an https:// URL` }
  if (typeof v['acme-allow'] === 'string') {
    try {
      void new AllowPatterns(parseAllowList(v['acme-allow']))
    } catch (err) {
      return { key: 'acme-allow', message: `--acme-allow: ${(err as Error).message}` }
    }
  }
  return undefined
}

function acmeOptions (s: RelaySettings, directoryUrl: string): NonNullable<RelayServiceOptions['acme']> {
  return {
    directoryUrl,
    ...(s['acme-email'] !== undefined ? { email: s['acme-email'] } : {}),
    ...(s['acme-ca-file'] !== undefined ? { ca: readPem('acme-ca-file', s['acme-ca-file']) } : {}),
    ...(s['acme-allow'] !== undefined ? { allow: parseAllowList(s['acme-allow']) } : {}),
    ...(s['acme-dns-hook'] !== undefined ? { dnsHook: s['acme-dns-hook'] } : {}),
    ...(s['acme-rate-per-hour'] !== undefined ? { ratePerHour: s['acme-rate-per-hour'] } : {}),
  }
}

/** The `cluster_*` settings; worker `i` of `--workers` is node `<id>-w<i>` with link port `cluster_link_port + i` (or a free one for 0). */
function clusterOptions (s: RelaySettings, redis: string, clusterKey: string, worker: number | undefined): NonNullable<RelayServiceOptions['cluster']> {
  const node = s['cluster-node']
  const linkPort = s['cluster-link-port']
  return {
    redis,
    clusterKey,
    ...(node !== undefined ? { node: worker === undefined ? node : `${node}-w${worker}` } : {}),
    link: { host: s['cluster-link-host'], port: worker === undefined || linkPort === 0 ? linkPort : linkPort + worker, advertiseHost: s['cluster-advertise'] ?? s['public-host'] },
    ttlMs: s['cluster-ttl'] * 1000,
  }
}

/** The `plan_*` settings as plan limits (unset ones left out: unlimited). */
export function planDefaults (s: RelaySettings): NonNullable<RelayServiceOptions['planDefaults']> {
  return {
    ...(s['plan-tunnels'] !== undefined ? { maxTunnels: s['plan-tunnels'] } : {}),
    ...(s['plan-connections'] !== undefined ? { maxConnections: s['plan-connections'] } : {}),
    ...(s['plan-monthly-gb'] !== undefined ? { monthlyBytes: Math.round(s['plan-monthly-gb'] * 1e9) } : {}),
    ...(s['plan-bandwidth-mbps'] !== undefined ? { bandwidthBytesPerSecond: Math.round(s['plan-bandwidth-mbps'] * 1e6 / 8) } : {}),
    ...(s['plan-connections-per-minute'] !== undefined ? { connectionsPerMinute: s['plan-connections-per-minute'] } : {}),
  }
}
