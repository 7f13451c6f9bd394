/**
 * The inspector page's files (assets/inspect/), read from the installed package. The
 * single-file client bundle (scripts/bundle-client.ts) has no package folder beside it: there
 * this module is replaced by one that holds the same files inline.
 */
import { readFileSync } from 'node:fs'

const ASSETS = new URL('../../assets/inspect/', import.meta.url)

/** The named files of assets/inspect/, by name. */
export function readInspectAssets (names: readonly string[]): Map<string, Buffer> {
  return new Map(names.map(name => [name, readFileSync(new URL(name, ASSETS))]))
}
