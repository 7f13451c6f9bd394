/* The mport inspector page: the list from /api/requests, live updates from /api/events (SSE),
 * a detail view and Replay. Everything from the API is put in the page as text nodes, never as
 * HTML: bodies are what visitors sent. */
/* global document, window, fetch, EventSource, URLSearchParams, atob */
'use strict'

const $ = sel => document.querySelector(sel)
const rows = new Map() // id → summary
let renderTimer
let selected

function el (tag, attrs, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k === 'class') e.className = v
    else if (k === 'text') e.textContent = v
    else e.setAttribute(k, v)
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c)
  return e
}

function filters () {
  const f = new URLSearchParams()
  for (const name of ['status', 'method', 'path']) {
    const v = $(`#filters [name=${name}]`).value.trim()
    if (v !== '') f.set(name, v)
  }
  return f
}

function matches (s, f) {
  if (f.has('method') && s.method.toUpperCase() !== f.get('method').toUpperCase()) return false
  if (f.has('path') && !s.url.includes(f.get('path'))) return false
  if (f.has('status')) {
    const want = f.get('status').toLowerCase()
    if (s.status === undefined) return false
    if (want.endsWith('xx') ? String(s.status)[0] !== want[0] : String(s.status) !== want) return false
  }
  return true
}

function size (n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

function statusCell (s) {
  if (s.status !== undefined) return el('td', { class: `status s${String(s.status)[0]}`, text: String(s.status) })
  return el('td', { class: `status ${s.state}`, text: s.state })
}

function row (s) {
  const tr = el('tr', { 'data-id': String(s.id) },
    el('td', { text: new Date(s.startedAt).toLocaleTimeString() }),
    el('td', { class: 'method', text: s.method }),
    el('td', { class: 'path', text: s.url + (s.replayOf !== undefined ? `  (replay of #${s.replayOf})` : ''), title: s.url }),
    statusCell(s),
    el('td', { text: s.durationMs !== undefined ? `${s.durationMs} ms` : '…' }),
    el('td', { text: size(s.responseBytes) }))
  if (s.id === selected) tr.classList.add('selected')
  tr.addEventListener('click', () => show(s.id))
  return tr
}

function render () {
  const f = filters()
  const body = $('#requests tbody')
  const list = [...rows.values()].filter(s => matches(s, f)).sort((a, b) => b.id - a.id)
  body.replaceChildren(...list.map(row))
  $('#empty').hidden = list.length > 0
}

async function api (path, init) {
  const res = await fetch(path, init)
  const json = await res.json()
  if (!res.ok) throw new Error(json.error ?? `HTTP ${res.status}`)
  return json
}

async function loadTunnels () {
  const { tunnels } = await api('/api/tunnels')
  $('#tunnels').replaceChildren(...tunnels.map(t => el('li', { class: t.notInspected ? 'off' : '', title: t.notInspected ?? '' },
    `${t.url ?? '(opening)'} → ${t.local}`, t.notInspected ? ` — not inspected: ${t.notInspected}` : '')))
}

async function loadList () {
  const { requests } = await api('/api/requests')
  for (const s of requests) rows.set(s.id, s)
  render()
}

function live () {
  const feed = new EventSource('/api/events')
  feed.addEventListener('open', () => { $('#live').textContent = 'live'; $('#live').classList.add('on') })
  feed.addEventListener('error', () => { $('#live').textContent = 'reconnecting…'; $('#live').classList.remove('on') })
  feed.addEventListener('exchange', ev => {
    const s = JSON.parse(ev.data)
    rows.set(s.id, s)
    // Under heavy traffic many events arrive together: one redraw for them, not one each.
    if (renderTimer === undefined) renderTimer = window.setTimeout(() => { renderTimer = undefined; render() }, 100)
    if (s.id === selected && s.state !== 'pending') show(s.id, true)
  })
}

function bytesOf (body) {
  if (body.encoding === 'utf8') return null
  const bin = atob(body.data)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

function hexDump (bytes) {
  const lines = []
  for (let off = 0; off < bytes.length && off < 64 * 1024; off += 16) {
    const slice = bytes.subarray(off, off + 16)
    const hex = [...slice].map(b => b.toString(16).padStart(2, '0')).join(' ')
    const ascii = [...slice].map(b => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('')
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`)
  }
  if (bytes.length > 64 * 1024) lines.push(`… ${bytes.length - 64 * 1024} more bytes`)
  return lines.join('\n')
}

/** The body as the page shows it: JSON pretty-printed, a form as a table, text, an image, or hex. */
function bodyView (id, which, body) {
  const wrap = el('div', { class: 'body-view' })
  if (body.size === 0) { wrap.append(el('p', { class: 'muted', text: 'no body' })); return wrap }
  const type = (body.contentType ?? '').split(';')[0].trim().toLowerCase()
  const note = body.truncated ? el('p', { class: 'note', text: `showing the first ${size(body.kept)} of ${size(body.size)} (the rest was counted, not kept)` }) : null
  if (type.startsWith('image/')) {
    wrap.append(el('img', { class: 'body', alt: `${which} body`, src: `/api/requests/${id}/body/${which}` }))
  } else if (body.encoding === 'utf8' && (type.includes('json') || /^\s*[[{]/.test(body.data))) {
    let text = body.data
    try { text = JSON.stringify(JSON.parse(body.data), null, 2) } catch { /* not complete JSON: as text */ }
    wrap.append(el('pre', { class: 'body json', text }))
  } else if (body.encoding === 'utf8' && type === 'application/x-www-form-urlencoded') {
    const dl = el('dl', { class: 'headers form' })
    for (const [k, v] of new URLSearchParams(body.data)) dl.append(el('dt', { text: k }), el('dd', { text: v }))
    wrap.append(dl)
  } else if (body.encoding === 'utf8') {
    wrap.append(el('pre', { class: 'body text', text: body.data }))
  } else {
    wrap.append(el('pre', { class: 'body hex', text: hexDump(bytesOf(body)) }))
  }
  if (note) wrap.prepend(note)
  return wrap
}

function headersView (headers) {
  const dl = el('dl', { class: 'headers' })
  for (const [k, v] of headers) dl.append(el('dt', { text: k }), el('dd', { text: v }))
  return dl
}

function exchangeView (d, label) {
  const box = el('div', { class: 'exchange', 'data-id': String(d.id) }, el('h3', { text: label }))
  box.append(el('p', { class: 'summary', text: `${d.method} ${d.url} → ${d.response ? `${d.response.status} ${d.response.reason}` : d.state}` +
    `${d.ttfbMs !== undefined ? ` · first byte ${d.ttfbMs} ms` : ''}${d.durationMs !== undefined ? ` · total ${d.durationMs} ms` : ''}` }))
  if (d.error) box.append(el('p', { class: 'note', text: d.error }))
  box.append(el('h3', { text: 'Request headers' }), headersView(d.request.headers))
  box.append(el('h3', { text: `Request body (${size(d.request.body.size)})` }), bodyView(d.id, 'request', d.request.body))
  if (d.response) {
    box.append(el('h3', { text: 'Response headers' }), headersView(d.response.headers))
    box.append(el('h3', { text: `Response body (${size(d.response.body.size)})` }), bodyView(d.id, 'response', d.response.body))
  }
  if (d.websocketFrames) {
    box.append(el('h3', { text: `WebSocket frames (${d.websocket.framesIn} in, ${d.websocket.framesOut} out; latest shown)` }),
      el('pre', { class: 'body frames', text: d.websocketFrames.map(f => `${f.direction === 'in' ? '→' : '←'} ${f.opcode} ${f.length} B`).join('\n') }))
  }
  return box
}

let current
async function show (id, keepReplay) {
  selected = id
  for (const tr of document.querySelectorAll('#requests tbody tr')) tr.classList.toggle('selected', Number(tr.dataset.id) === id)
  const d = await api(`/api/requests/${id}`)
  current = d
  $('#detail-pane').hidden = false
  $('#detail-title').textContent = `#${d.id} ${d.method} ${d.url}`
  $('#original').replaceChildren(exchangeView(d, d.replayOf !== undefined ? `Replay of #${d.replayOf}` : 'Original'))
  if (!keepReplay) { $('#replayed').hidden = true; $('#replayed').replaceChildren(); $('#replay-error').textContent = '' }
  const form = $('#replay-form')
  form.method.value = d.method
  form.path.value = d.url
  form.headers.value = d.request.headers.map(([k, v]) => `${k}: ${v}`).join('\n')
  form.body.value = d.request.body.encoding === 'utf8' ? d.request.body.data : ''
}

async function replay (edits) {
  $('#replay-error').textContent = ''
  try {
    const d = await api(`/api/requests/${current.id}/replay`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(edits ?? {}) })
    rows.set(d.id, d)
    render()
    $('#replayed').hidden = false
    $('#replayed').replaceChildren(exchangeView(d, `Replay #${d.id}`))
  } catch (err) {
    $('#replay-error').textContent = `Replay failed: ${err.message}`
  }
}

$('#replay').addEventListener('click', () => replay())
$('#edit-replay').addEventListener('click', () => { $('#replay-form').hidden = !$('#replay-form').hidden })
$('#replay-form').addEventListener('submit', ev => {
  ev.preventDefault()
  const form = ev.target
  const headers = form.headers.value.split('\n').map(l => l.trim()).filter(l => l !== '').map(l => {
    const i = l.indexOf(':')
    return [l.slice(0, i).trim(), l.slice(i + 1).trim()]
  })
  const edits = { method: form.method.value.trim(), path: form.path.value.trim(), headers }
  if (current.request.body.encoding === 'utf8' || form.body.value !== '') edits.body = form.body.value
  replay(edits)
})
for (const input of document.querySelectorAll('#filters input, #filters select')) input.addEventListener('input', render)
$('#clear').addEventListener('click', async () => {
  await api('/api/requests', { method: 'DELETE' })
  rows.clear()
  render()
})

window.addEventListener('DOMContentLoaded', () => {
  loadTunnels().catch(err => { $('#filter-error').textContent = err.message })
  loadList().then(live, err => { $('#filter-error').textContent = err.message })
  window.setInterval(() => { loadTunnels().catch(() => {}) }, 5000)
})
