/** Building the page: elements from data (text nodes only, never HTML strings), and number formats. */

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>

/** An element with attributes (`on…` are listeners) and children; strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    if (typeof v === 'function') el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  append(el, children)
  return el
}

export function append (el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c)
  }
}

/** Replaces an element's children. */
export function fill (el: Element, ...children: Child[]): void {
  el.replaceChildren()
  append(el, children)
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
export function bytes (n: number): string {
  let i = 0
  let v = n
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[i]}`
}

export function rate (bytesPerSecond: number): string {
  return `${bytes(Math.round(bytesPerSecond))}/s`
}

export function when (ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—'
  return new Date(ms).toLocaleString()
}

export function ago (ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86400)} d ago`
}

/** A labelled form field. */
export function field (label: string, input: HTMLInputElement | HTMLSelectElement): HTMLLabelElement {
  return h('label', {}, h('span', {}, label), input)
}

/** A status line that screen readers announce. */
export function notice (text: string, kind: 'error' | 'ok' = 'error'): HTMLParagraphElement {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text)
}

/** A token lifetime choice (hours; empty: never), for the token forms. */
export function expirySelect (): HTMLSelectElement {
  return h('select', { name: 'expires' },
    h('option', { value: '' }, 'never'), h('option', { value: '24' }, 'in 1 day'), h('option', { value: '168' }, 'in 7 days'),
    h('option', { value: '720' }, 'in 30 days'), h('option', { value: '2160' }, 'in 90 days'))
}

/** The body of POST /v1/tokens for a name and an expirySelect's value. */
export function tokenBody (name: string, expires: string): { name: string, expiresInHours?: number } {
  return expires === '' ? { name } : { name, expiresInHours: Number(expires) }
}
