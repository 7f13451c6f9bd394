/** How a tunnel reads on the pages: its state, its public address, and a copy button. */
import type { Tunnel } from './api.js'
import { h } from './dom.js'

/** up: its client is connected; reconnecting: the relay holds its address while the client is away. */
export function state (t: Tunnel): 'up' | 'reconnecting' {
  return t.online === false ? 'reconnecting' : 'up'
}

/** The address visitors use: the URL of an http/tls tunnel, else host:port on the relay. */
export function publicAddress (t: Tunnel): string {
  return t.url ?? `${location.hostname}:${t.port ?? 0}`
}

/** A button that copies `text` to the clipboard, saying so. */
export function copyButton (text: string, label = 'Copy'): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'copy', 'aria-label': `${label}: ${text}` }, label)
  b.addEventListener('click', () => {
    void navigator.clipboard?.writeText(text).then(() => { b.textContent = 'Copied'; setTimeout(() => { b.textContent = label }, 1500) }, () => { b.textContent = 'Select and copy' })
  })
  return b
}
