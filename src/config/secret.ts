/**
 * A string that never prints: logs, util.inspect, JSON.stringify and template strings all
 * show `***` (rathole's MaskedString). Call reveal() at the one place that needs the value.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { inspect } from 'node:util'

const MASK = '***'

/**
 * A string that prints as `***` everywhere (inspect, JSON, templates), so tokens and passwords
 * in config cannot leak into logs; `reveal()` gives the value where it is used.
 */
export class Secret {
  readonly #value: string

  constructor (value: string) {
    if (typeof value !== 'string') throw new TypeError('Secret value must be a string')
    this.#value = value
  }

  /** The secret itself. */
  reveal (): string {
    return this.#value
  }

  /** True when `other` holds the same value; compares in constant time. */
  equals (other: Secret | string): boolean {
    const a = createHash('sha256').update(this.#value).digest()
    const b = createHash('sha256').update(other instanceof Secret ? other.reveal() : other).digest()
    return timingSafeEqual(a, b)
  }

  /** True for the empty string (an unset secret). */
  get isEmpty (): boolean {
    return this.#value.length === 0
  }

  /** `***`, never the value. */
  toString (): string {
    return MASK
  }

  toJSON (): string {
    return MASK
  }

  [Symbol.toPrimitive] (): string {
    return MASK
  }

  [inspect.custom] (): string {
    return MASK
  }
}
