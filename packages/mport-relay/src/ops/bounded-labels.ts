/**
 * Bounded label values for series per tunnel or per user. The first `max` distinct keys seen
 * keep a series of their own for the life of the process; every later key shares one series
 * labelled {@link OTHER}. First come, first kept: a counter's series must not move between
 * labels (rates would jump), so a key is never evicted, and the bound holds however many
 * users and tunnels come and go.
 */

/** The label value shared by keys past the bound; no user or tunnel name can start with `_`. */
export const OTHER = '_other'

/** Maps keys to label values, at most `max` distinct ones plus {@link OTHER}. */
export class BoundedLabels<V> {
  readonly #max: number
  readonly #kept = new Map<string, V>()
  readonly #other: V

  /** `other` is the value every key past the first `max` gets. */
  constructor (max: number, other: V) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`series bound must be a non-negative integer, not ${max}`)
    this.#max = max
    this.#other = other
  }

  /** The value for `key`: `make()` for one of the first `max` keys (kept), else the shared one. */
  get (key: string, make: () => V): V {
    const kept = this.#kept.get(key)
    if (kept !== undefined) return kept
    if (this.#kept.size >= this.#max) return this.#other
    const v = make()
    this.#kept.set(key, v)
    return v
  }

  /** How many keys have a series of their own. */
  get size (): number { return this.#kept.size }
}
