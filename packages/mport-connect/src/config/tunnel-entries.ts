/**
 * The `tunnels:` list of a client config file (and the tunnel words of the command line):
 * each entry is a short spec (`5555`, `"web=8080"`, `"192.168.1.20:5555"`; a leading `http`,
 * `tls` or `tcp` word sets the kind of the short specs after it) or an object with its own
 * options. Every problem is an InvalidConfigError naming the key and the tunnel.
 */
import { parseTunnelSpec, type TunnelSpec } from 'mport/client'
import { checkKnownKeys } from 'mport/config'
import { IpFilter, parseBasicAuthValue } from 'mport/access'
import { InvalidConfigError } from 'mport/errors'
import { applyGroupKeys, GROUP_KEYS } from './group-entries.js'

/** The keys of a tunnel object, in the order the README documents them. */
export const TUNNEL_KEYS = ['name', 'kind', 'local', 'remote_port', 'subdomain', 'hostname', 'basic_auth', 'basic_auth_file', 'basic_auth_env', 'allow_ip', 'deny_ip', 'proxy_protocol', ...GROUP_KEYS] as const

/** Largest allow or deny list of one tunnel (the relay refuses longer ones: MAX_IP_RULES). */
const MAX_IP_RULES = 64

const KINDS = ['tcp', 'http', 'tls'] as const

/** Where secrets named by a file come from; injected so the validator stays a function of its inputs. */
export interface SecretSources {
  /** Environment variables (for `*_env` keys). */
  env: Readonly<Record<string, string | undefined>>
  /** Reads a file named by a `*_file` key (throws like fs.readFileSync). */
  readFile (file: string): string
}

/**
 * A secret given directly (`key`), in a file (`key_file`, trimmed) or in an environment
 * variable (`key_env`): at most one of the three. Undefined when none is given.
 */
export function indirectSecret (obj: Record<string, unknown>, key: string, where: string, sources: SecretSources): string | undefined {
  const given = [key, `${key}_file`, `${key}_env`].filter(k => obj[k] !== undefined && obj[k] !== null)
  if (given.length > 1) throw new InvalidConfigError(given[1]!, `give only one of ${given.map(k => `"${k}"`).join(', ')} in ${where}`)
  const k = given[0]
  if (k === undefined) return undefined
  const v = obj[k]
  if (typeof v !== 'string' || v === '') throw new InvalidConfigError(k, `"${k}" in ${where} must be a non-empty string, not ${JSON.stringify(v)}`)
  if (k === key) return v
  if (k.endsWith('_env')) {
    const value = sources.env[v]
    if (value === undefined || value === '') throw new InvalidConfigError(k, `"${k}" in ${where} names ${v}, which is not set or empty`)
    return value
  }
  let text: string
  try {
    text = sources.readFile(v).trim()
  } catch (err) {
    throw new InvalidConfigError(k, `cannot read "${k}" ${v} in ${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (text === '') throw new InvalidConfigError(k, `"${k}" ${v} in ${where} is empty`)
  return text
}

/** `fn()`, with the InvalidConfigError it throws re-keyed to `key` and said to be about `where`. */
function rekeyed<T> (key: string, where: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof InvalidConfigError) throw new InvalidConfigError(key, `"${key}" in ${where}: ${err.message.replace(/^invalid config "[^"]*": /, '')}`)
    throw err
  }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A list of strings (a lone string is a list of one). */
function stringList (obj: Record<string, unknown>, key: string, where: string): string[] | undefined {
  const v = obj[key]
  if (v === undefined || v === null) return undefined
  const list = typeof v === 'string' ? [v] : v
  if (!Array.isArray(list) || list.some(x => typeof x !== 'string')) throw new InvalidConfigError(key, `"${key}" in ${where} must be a list of addresses or CIDRs, like ["127.0.0.1", "10.0.0.0/8"]`)
  if (list.length > MAX_IP_RULES) throw new InvalidConfigError(key, `"${key}" in ${where} has ${list.length} entries; at most ${MAX_IP_RULES}`)
  return list as string[]
}

/**
 * One tunnel object (`{ name, kind, local, … }`) at `tunnels[index]` of `file`: a TunnelSpec
 * with every option checked against the tunnel's kind.
 */
export function parseTunnelObject (obj: Record<string, unknown>, index: number, file: string, sources: SecretSources): TunnelSpec {
  const name = typeof obj.name === 'string' ? obj.name : undefined
  const at = (n: string | undefined): string => `tunnel ${n !== undefined ? `"${n}"` : `tunnels[${index}]`} in ${file}`
  checkKnownKeys(obj, TUNNEL_KEYS, at(name))
  if (obj.name !== undefined && typeof obj.name !== 'string') throw new InvalidConfigError('name', `"name" of ${at(undefined)} must be a string, not ${JSON.stringify(obj.name)}`)
  const local = obj.local
  if (local === undefined || local === null) throw new InvalidConfigError('local', `${at(name)} needs "local": the local port or host:port to expose, like 5555 or "192.168.1.20:5555"`)
  if ((typeof local !== 'string' && typeof local !== 'number') || String(local).includes('=')) {
    throw new InvalidConfigError('local', `"local" of ${at(name)} must be a port or host:port, like 5555 or "[::1]:22", not ${JSON.stringify(local)}`)
  }
  if (name !== undefined) rekeyed('name', at(name), () => parseTunnelSpec(`${name}=1`))
  const spec: TunnelSpec = rekeyed('local', at(name), () => ({ ...parseTunnelSpec(String(local)), ...(name !== undefined ? { name } : {}) }))
  if (spec.remotePort !== 0) throw new InvalidConfigError('local', `"local" of ${at(name)} is "${local}": give the public port as "remote_port", not in "local"`)
  const where = at(spec.name)

  let kind: TunnelSpec['kind'] = 'tcp'
  if (obj.kind !== undefined && obj.kind !== null) {
    if (!KINDS.includes(obj.kind as never)) throw new InvalidConfigError('kind', `"kind" of ${where} must be tcp, http or tls, not ${JSON.stringify(obj.kind)}`)
    kind = obj.kind as TunnelSpec['kind']
  }
  if (kind !== 'tcp') spec.kind = kind
  const only = (key: string, kinds: string, why: string): never => {
    throw new InvalidConfigError(key, `"${key}" of ${where} is for ${kinds} tunnels, and this one is ${kind}: ${why}`)
  }

  if (obj.remote_port !== undefined && obj.remote_port !== null) {
    if (kind !== 'tcp') only('remote_port', 'tcp', `${kind} tunnels share the relay's HTTP(S) ports; use "subdomain" or "hostname"`)
    const p = obj.remote_port
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 65535) throw new InvalidConfigError('remote_port', `"remote_port" of ${where} must be a port number (1-65535, or 0 for any), not ${JSON.stringify(p)}`)
    spec.remotePort = p
  }
  for (const key of ['subdomain', 'hostname'] as const) {
    const v = obj[key]
    if (v === undefined || v === null) continue
    if (kind === 'tcp') only(key, 'http and tls', 'a tcp tunnel gets a public port; set "kind: http" for a name')
    if (typeof v !== 'string' || v === '') throw new InvalidConfigError(key, `"${key}" of ${where} must be a name, not ${JSON.stringify(v)}`)
    spec[key] = v
  }
  const auth = indirectSecret(obj, 'basic_auth', where, sources)
  if (auth !== undefined) {
    const key = ['basic_auth', 'basic_auth_file', 'basic_auth_env'].find(k => obj[k] !== undefined && obj[k] !== null)!
    if (kind !== 'http') only(key, 'http', 'the relay asks for a password only on http tunnels')
    // Never the value in the message: only what is wrong with it.
    rekeyed(key, where, () => parseBasicAuthValue(auth, key))
    spec.basicAuth = auth
  }
  const allow = stringList(obj, 'allow_ip', where)
  const deny = stringList(obj, 'deny_ip', where)
  rekeyed('allow_ip', where, () => new IpFilter({ allow: allow ?? [] }))
  rekeyed('deny_ip', where, () => new IpFilter({ deny: deny ?? [] }))
  if (allow !== undefined) spec.allowIp = allow
  if (deny !== undefined) spec.denyIp = deny
  if (obj.proxy_protocol !== undefined && obj.proxy_protocol !== null) {
    if (obj.proxy_protocol !== 1 && obj.proxy_protocol !== 2) throw new InvalidConfigError('proxy_protocol', `"proxy_protocol" of ${where} must be 1 or 2, not ${JSON.stringify(obj.proxy_protocol)}`)
    spec.proxyProtocol = obj.proxy_protocol
  }
  applyGroupKeys(obj, spec, where, indirectSecret(obj, 'group_key', where, sources))
  return spec
}

/**
 * The tunnels of a `tunnels` value (a list, or one short spec) from `file`: short specs and
 * objects mixed, names unique. Throws InvalidConfigError naming the key and the tunnel.
 */
export function parseTunnelList (value: unknown, file: string, sources: SecretSources): TunnelSpec[] {
  let words: unknown[]
  if (Array.isArray(value)) words = [...value]
  else if (typeof value === 'string' || typeof value === 'number') words = [value]
  else throw new InvalidConfigError('tunnels', `"tunnels" in ${file} must be a list like [5555, "web=8080", { name: ssh, local: 22, allow_ip: [203.0.113.7] }]`)
  // A leading "http", "tls" or "tcp" sets the kind of the short specs after it (as on the command line).
  let kind: TunnelSpec['kind']
  if (KINDS.includes(words[0] as never)) kind = words.shift() as TunnelSpec['kind']
  if (words.length === 0) throw new InvalidConfigError('tunnels', `no tunnel in "tunnels" of ${file}: name at least one, like [5555]`)
  const specs = words.map((w, i): TunnelSpec => {
    if (isObject(w)) return parseTunnelObject(w, i, file, sources)
    if (typeof w !== 'string' && typeof w !== 'number') throw new InvalidConfigError('tunnels', `tunnels[${i}] in ${file} must be a port, a spec like "web=8080" or an object with "local", not ${JSON.stringify(w)}`)
    const spec: TunnelSpec = rekeyed('tunnels', `tunnel ${JSON.stringify(w)} in ${file}`, () => ({ ...parseTunnelSpec(String(w)) }))
    if (kind !== undefined && kind !== 'tcp') {
      if (spec.remotePort !== 0) throw new InvalidConfigError('tunnels', `tunnel ${JSON.stringify(w)} in ${file}: ${kind} tunnels use the relay's shared ports: drop ":${spec.remotePort}"`)
      spec.kind = kind
    }
    return spec
  })
  const seen = new Set<string>()
  for (const s of specs) {
    if (seen.has(s.name)) throw new InvalidConfigError('name', `two tunnels in ${file} are named "${s.name}": give each a "name" of its own`)
    seen.add(s.name)
  }
  return specs
}
