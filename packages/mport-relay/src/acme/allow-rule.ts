/**
 * Which names the relay may ask a CA for: names a live tunnel or a reservation holds (checked by
 * the caller), or names that match the operator's `acme_allow` patterns. Anything else, such as
 * the SNI a stranger sends, never starts an order: CAs rate-limit per account and per domain,
 * and an order for a name we do not serve can only fail.
 */
import { InvalidConfigError } from 'mport/errors'

/** Operator patterns: `app.example.org` (exactly that name) or `*.example.org` (any name below it, at any depth). */
export class AllowPatterns {
  readonly #exact = new Set<string>()
  readonly #suffixes: string[] = []

  constructor (patterns: readonly string[]) {
    for (const raw of patterns) {
      const p = raw.trim().toLowerCase().replace(/\.$/, '')
      const name = p.startsWith('*.') ? p.slice(2) : p
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/.test(name)) {
        throw new InvalidConfigError('acme_allow', `"${raw}" is not a host name or *.<domain> pattern`)
      }
      if (p.startsWith('*.')) this.#suffixes.push('.' + name)
      else this.#exact.add(name)
    }
  }

  matches (name: string): boolean {
    return this.#exact.has(name) || this.#suffixes.some(s => name.endsWith(s))
  }
}

/** `acme_allow` as written in a flag or config file: comma- or space-separated patterns. */
export function parseAllowList (text: string): string[] {
  return text.split(/[\s,]+/).filter(s => s !== '')
}
