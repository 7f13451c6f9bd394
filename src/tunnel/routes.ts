/**
 * Names of http and tls tunnels on the relay's shared ports: subdomains under the relay's
 * domain and custom hostnames. A name belongs to one lease at a time, so it survives the
 * client's reconnects and is free again when the lease is released.
 */
import { NameTakenError, ReservedNameError, TunnelError } from '../errors.js'
import { randomName, validateHostname, validateSubdomain, type Route } from '../http/names.js'

export class RouteTable<T> {
  readonly #domain: string | undefined
  readonly #subdomains = new Map<string, { owner: object, target: T }>()
  readonly #hostnames = new Map<string, { owner: object, target: T }>()
  /** Subdomains the operator reserved (`reserved_names`), besides the built-in RESERVED_NAMES. */
  #reserved: ReadonlySet<string> = new Set()

  constructor (domain: string | undefined) {
    this.#domain = domain?.toLowerCase().replace(/\.$/, '')
  }

  /** The operator's reserved subdomains from now on (lowercased); held ones are not released here. */
  setReserved (names: Iterable<string>): void {
    this.#reserved = new Set([...names].map(n => n.trim().toLowerCase()))
  }

  /** Is `label` one of the operator's reserved subdomains? */
  isReserved (label: string): boolean {
    return this.#reserved.has(label.toLowerCase())
  }

  /**
   * Claims a subdomain (validated; a random one when undefined) for `owner`. Throws
   * InvalidHostnameError, ReservedNameError or NameTakenError. Returns the label.
   */
  claimSubdomain (requested: string | undefined, owner: object, target: T): string {
    if (this.#domain === undefined) throw new TunnelError('MPORT_ERR_INVALID_HOSTNAME', 'this relay has no --domain: http and tls tunnels need one, or a --hostname')
    if (requested === undefined) {
      for (let i = 0; i < 20; i++) {
        const label = randomName()
        if (!this.#subdomains.has(label) && !this.#reserved.has(label)) {
          this.#subdomains.set(label, { owner, target })
          return label
        }
      }
      throw new NameTakenError('(random)')
    }
    const label = validateSubdomain(requested)
    if (this.#reserved.has(label)) throw new ReservedNameError(label)
    const held = this.#subdomains.get(label)
    if (held !== undefined && held.owner !== owner) throw new NameTakenError(`${label}.${this.#domain}`)
    this.#subdomains.set(label, { owner, target })
    return label
  }

  claimHostname (requested: string, owner: object, target: T): string {
    const name = validateHostname(requested, this.#domain)
    const held = this.#hostnames.get(name)
    if (held !== undefined && held.owner !== owner) throw new NameTakenError(name)
    this.#hostnames.set(name, { owner, target })
    return name
  }

  release (owner: object, subdomain: string | undefined, hostname: string | undefined): void {
    if (subdomain !== undefined && this.#subdomains.get(subdomain)?.owner === owner) this.#subdomains.delete(subdomain)
    if (hostname !== undefined && this.#hostnames.get(hostname)?.owner === owner) this.#hostnames.delete(hostname)
  }

  lookup (route: Route): T | undefined {
    if (route.kind === 'subdomain') return this.#subdomains.get(route.label)?.target
    if (route.kind === 'hostname') return this.#hostnames.get(route.hostname)?.target
    return undefined
  }

  /** `label.domain` for a subdomain label. */
  fqdn (label: string): string {
    return `${label}.${this.#domain ?? ''}`
  }
}
