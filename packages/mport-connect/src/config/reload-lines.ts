/** The lines mport-connect prints for a reload: what changed, and what only a restart applies. */
import type { TunnelChanges } from 'mport/client'

/** `reload: +web -ssh ~api` (added, removed, changed), or `reload: no change`. */
export function reloadLine (changes: TunnelChanges): string {
  const words = [...changes.added.map(n => `+${n}`), ...changes.removed.map(n => `-${n}`), ...changes.changed.map(n => `~${n}`)]
  return `reload: ${words.length > 0 ? words.join(' ') : 'no change'}`
}

/** The one line for settings a running connection cannot take: `reload: relay, token changed: that needs a restart; …`. */
export function restartLine (settings: readonly string[]): string {
  return `reload: ${settings.join(', ')} changed: that needs a restart; the running connection keeps the old value`
}
