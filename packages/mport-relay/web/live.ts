/**
 * The tab's one push channel (GET /v1/events, server-sent events): the live tunnels as the
 * relay lists them. Pages subscribe while shown; the channel stays open across pages, so a tab
 * never holds more than one. EventSource reconnects by itself after a drop.
 */
import type { Tunnel } from './api.js'

export interface Snapshot { at: number, tunnels: Tunnel[] }
type Listener = (s: Snapshot) => void

let source: EventSource | undefined
let last: Snapshot | undefined
const listeners = new Set<Listener>()
const stateListeners = new Set<(up: boolean) => void>()

export function openLive (all: boolean): void {
  if (source !== undefined) return
  source = new EventSource(all ? '/v1/events?all=true' : '/v1/events')
  source.addEventListener('tunnels', e => {
    last = JSON.parse((e as MessageEvent<string>).data) as Snapshot
    for (const l of listeners) l(last)
  })
  source.addEventListener('open', () => { for (const l of stateListeners) l(true) })
  source.addEventListener('error', () => { for (const l of stateListeners) l(false) })
}

export function closeLive (): void {
  source?.close()
  source = undefined
  last = undefined
}

/** Calls `l` with every snapshot (and the latest one at once); returns the unsubscribe. */
export function onSnapshot (l: Listener): () => void {
  listeners.add(l)
  if (last !== undefined) l(last)
  return () => listeners.delete(l)
}

export function onLiveState (l: (up: boolean) => void): void {
  stateListeners.add(l)
}
