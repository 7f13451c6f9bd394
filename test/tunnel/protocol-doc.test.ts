/**
 * PROTOCOL.md's "Tunnel layer" section against the code, so the two cannot drift apart:
 * the constants in the tunnel limits table, the message types and member limits of the
 * field tables (checked through the parsers, starting from spec/vectors/control.json), the
 * authentication formulas as written (recomputed with node:crypto, and the TLS binding on a
 * real loopback TLS 1.3 connection), the authentication example, and the hex dumps.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { decodeHeader, Flag, FrameType } from '../../src/mux/frame.js'
import {
  ALPN_PROTOCOL, AUTH_BINDING_LABEL, AUTH_BINDING_LENGTH, connectTls, DEFAULT_HANDSHAKE_TIMEOUT, exportAuthBinding, listenTls,
} from '../../src/transport/tls.js'
import { authProof, generateToken, tokenId, tokenKey, verifyProof } from '../../src/tunnel/auth.js'
import { CONTROL_VERSION, DEFAULT_CONTROL_PORT } from '../../src/tunnel/constants.js'
import {
  MAX_CONTROL_MESSAGE, MAX_STREAM_HEADER, parseClientMessage, parseRelayMessage, parseStreamHeader,
} from '../../src/tunnel/messages.js'
import { DEFAULT_PORT_RANGE } from '../../src/tunnel/relay-options.js'
import { cert, certFingerprint, key, TOKEN } from '../helpers/tunnel.js'
import { withTimeout } from '../helpers/wait.js'

// ---- The documents ----

const read = (rel: string): string => readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8')

type Json = Record<string, unknown>
interface Vector { name: string, message: Json, hex: string }
interface Vectors {
  client: Vector[]
  relay: Vector[]
  streamHeaders: Array<{ name: string, header: Json, hex: string }>
  limits: { maxControlMessage: number, maxStreamHeader: number }
}
const vectors = JSON.parse(read('../../spec/vectors/control.json')) as Vectors

/** Lines of `## Tunnel layer`, up to the next `## ` heading. */
function tunnelSection (markdown: string): string[] {
  const lines = markdown.split('\n')
  const start = lines.findIndex(l => l.trim() === '## Tunnel layer')
  if (start < 0) throw new Error('PROTOCOL.md has no "## Tunnel layer" heading')
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '))
  return lines.slice(start, end < 0 ? undefined : end)
}
const doc = tunnelSection(read('../../PROTOCOL.md'))

/** Index of the heading line that matches `re` exactly once in the section. */
function heading (re: RegExp): number {
  const found = doc.flatMap((l, i) => /^#{3,6} /.test(l) && re.test(l) ? [i] : [])
  if (found.length !== 1) throw new Error(`expected one heading matching ${String(re)} under "## Tunnel layer", found ${found.length}`)
  return found[0]!
}

/** Cells of the first Markdown table after line `from` (before the next heading); header row first. */
function tableAfter (from: number): string[][] {
  const rows: string[][] = []
  for (let i = from + 1; i < doc.length; i++) {
    const line = doc[i]!.trim()
    if (/^#{1,6} /.test(line)) break
    if (!line.startsWith('|')) {
      if (rows.length > 0) break
      continue
    }
    const cells = line.replace(/^\|/, '').replace(/\|$/, '').split('|').map(c => c.trim())
    if (cells.every(c => /^:?-+:?$/.test(c))) continue
    rows.push(cells)
  }
  if (rows.length < 2) throw new Error(`no table after line "${doc[from]}"`)
  return rows
}

/** Lines of the first fenced code block after line `from`, and the index after it. */
function fenceAfter (from: number): { lines: string[], end: number } {
  const open = doc.findIndex((l, i) => i > from && l.trim().startsWith('```'))
  const close = doc.findIndex((l, i) => i > open && l.trim().startsWith('```'))
  if (open < 0 || close < 0) throw new Error(`no code block after line "${doc[from]}"`)
  return { lines: doc.slice(open + 1, close).map(l => l.trim()), end: close + 1 }
}

const unquote = (cell: string): string => /^`([^`]*)`$/.exec(cell)?.[1] ?? cell

// ---- Field tables ----

type FieldType =
  | { kind: 'tag', value: string }
  | { kind: 'const', value: number }
  | { kind: 'int', min: number, max: number }
  | { kind: 'string', max: number }
  | { kind: 'boolean' }
  | { kind: 'object' }
  | { kind: 'enum', values: string[] }
  | { kind: 'list', maxItems: number, maxLength: number }

interface Field { path: string[], type: FieldType, required: boolean, row: string }

function fieldType (cell: string): FieldType {
  let m: RegExpExecArray | null
  if ((m = /^`"([a-z]+)"`$/.exec(cell)) !== null) return { kind: 'tag', value: m[1]! }
  if ((m = /^integer = (\d+)$/.exec(cell)) !== null) return { kind: 'const', value: Number(m[1]) }
  if ((m = /^integer (\d+)[–-](\d+)$/.exec(cell)) !== null) return { kind: 'int', min: Number(m[1]), max: Number(m[2]) }
  if ((m = /^string ≤ (\d+)$/.exec(cell)) !== null) return { kind: 'string', max: Number(m[1]) }
  if (cell === 'boolean') return { kind: 'boolean' }
  if (cell === 'object') return { kind: 'object' }
  if (/^(`"[a-z]+"`)(, `"[a-z]+"`)* or `"[a-z]+"`$/.test(cell)) return { kind: 'enum', values: [...cell.matchAll(/`"([a-z]+)"`/g)].map(x => x[1]!) }
  if ((m = /^array of ≤ (\d+) strings ≤ (\d+)$/.exec(cell)) !== null) return { kind: 'list', maxItems: Number(m[1]), maxLength: Number(m[2]) }
  throw new Error(`unrecognised Type "${cell}" in a field table (see "Message reference")`)
}

function fieldTable (at: number): Field[] {
  const [header, ...rows] = tableAfter(at)
  if (header?.join('|') !== 'Field|Type|Required|Meaning') throw new Error(`unexpected columns after "${doc[at]}": ${header?.join(' | ')}`)
  return rows.map(cells => {
    const name = /^`([A-Za-z.]+)`$/.exec(cells[0] ?? '')?.[1]
    if (name === undefined) throw new Error(`field name is not a backticked name: ${cells.join(' | ')}`)
    return { path: name.split('.'), type: fieldType(cells[1] ?? ''), required: /^yes\b/.test(cells[2] ?? ''), row: `${name}` }
  })
}

interface DocMessage { t: string, from: 'client' | 'relay', fields: Field[] }

const docMessages: DocMessage[] = doc.flatMap((line, i) => {
  const m = /^#{4,6} `([a-z]+)` \((client|relay) → (relay|client)\)$/.exec(line)
  if (m === null) return []
  if (m[2] === m[3]) throw new Error(`"${line}": a message goes from one side to the other`)
  return [{ t: m[1]!, from: m[2] as 'client' | 'relay', fields: fieldTable(i) }]
})

const parsers = { client: parseClientMessage, relay: parseRelayMessage } as const
const body = (o: unknown): Buffer => Buffer.from(JSON.stringify(o))

function get (o: Json, path: string[]): unknown {
  let v: unknown = o
  for (const k of path) v = (v as Json | undefined)?.[k]
  return v
}
/** A deep copy of `o` with `path` set to `value` (or deleted when value is undefined). */
function withField (o: Json, path: string[], value: unknown): Json {
  const copy = structuredClone(o)
  let parent: Json = copy
  for (const k of path.slice(0, -1)) parent = parent[k] as Json
  const last = path[path.length - 1]!
  if (value === undefined) delete parent[last]
  else parent[last] = value
  return copy
}

/** Keys of `o` and of its nested objects, as dotted paths. */
function paths (o: Json, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? [prefix + k, ...paths(v as Json, `${prefix}${k}.`)] : [prefix + k])
}

/** Exercises one documented field through `parse`, starting from the valid message `base`. */
function checkField (t: Test, parse: (b: Buffer) => unknown, base: Json, f: Field): void {
  const name = f.path.join('.')
  const invalid = { code: 'MPORT_ERR_INVALID_MESSAGE' }
  const accepts = (v: unknown, what: string): void => {
    let parsed: Json
    try {
      parsed = parse(body(withField(base, f.path, v))) as Json
    } catch (err) {
      t.fail(`${name}: accepts ${what}, as PROTOCOL.md says, but the parser refused it: ${(err as Error).message}`)
      return
    }
    t.same(get(parsed, f.path), v, `${name}: accepts ${what}`)
  }
  const refuses = (v: unknown, what: string, code = invalid): void => {
    t.throws(() => parse(body(withField(base, f.path, v))), code, `${name}: refuses ${what}`)
  }
  const type = f.type
  switch (type.kind) {
    case 'tag': break
    case 'const':
      accepts(type.value, String(type.value))
      refuses(type.value + 1, String(type.value + 1), { code: 'MPORT_ERR_VERSION_MISMATCH' })
      refuses(String(type.value), `"${type.value}"`, { code: 'MPORT_ERR_VERSION_MISMATCH' })
      break
    case 'int':
      accepts(type.min, `the minimum ${type.min}`)
      accepts(type.max, `the maximum ${type.max}`)
      refuses(type.min - 1, `${type.min - 1}`)
      refuses(type.max + 1, `${type.max + 1}`)
      refuses(type.min + 0.5, 'a fraction')
      refuses(String(type.min), 'a string')
      break
    case 'string':
      accepts('', 'an empty string')
      accepts('x'.repeat(type.max), `${type.max} characters`)
      refuses('x'.repeat(type.max + 1), `${type.max + 1} characters`)
      refuses(1, 'a number')
      break
    case 'boolean':
      accepts(true, 'true')
      accepts(false, 'false')
      refuses('yes', 'a string')
      break
    case 'object':
      refuses('x', 'a string')
      refuses(null, 'null')
      break
    case 'enum':
      for (const v of type.values) accepts(v, `"${v}"`)
      refuses('other', 'a value not listed')
      refuses(1, 'a number')
      break
    case 'list':
      accepts([], 'an empty list')
      accepts(Array.from({ length: type.maxItems }, () => 'x'.repeat(type.maxLength)), `${type.maxItems} strings of ${type.maxLength} characters`)
      refuses(Array.from({ length: type.maxItems + 1 }, () => 'x'), `${type.maxItems + 1} strings`)
      refuses(['x'.repeat(type.maxLength + 1)], `a string of ${type.maxLength + 1} characters`)
      refuses([1], 'a number in the list')
      refuses('x', 'a string instead of a list')
      break
  }
  if (type.kind === 'tag') return
  if (f.required) {
    refuses(undefined, 'a missing member', type.kind === 'const' ? { code: 'MPORT_ERR_VERSION_MISMATCH' } : invalid)
  } else {
    try {
      const parsed = parse(body(withField(base, f.path, undefined))) as Json
      t.equal(get(parsed, f.path), undefined, `${name}: optional, may be left out`)
    } catch (err) {
      t.fail(`${name}: optional in PROTOCOL.md, but the parser requires it: ${(err as Error).message}`)
    }
  }
}

/** Dotted names of a table's fields, without `t`. */
const docPaths = (fields: Field[]): string[] => fields.map(f => f.path.join('.')).filter(p => p !== 't').sort()

t.test('the field tables list exactly the message types the parsers accept, per direction', async t => {
  for (const from of ['client', 'relay'] as const) {
    const documented = docMessages.filter(m => m.from === from).map(m => m.t).sort()
    const fromVectors = [...new Set(vectors[from].map(v => (parsers[from](Buffer.from(v.hex, 'hex').subarray(4)) as Json).t as string))].sort()
    t.same(documented, fromVectors, `${from} → types in PROTOCOL.md equal the types of the parsed ${from} vectors`)
    const other = from === 'client' ? parsers.relay : parsers.client
    for (const type of documented) {
      t.throws(() => other(body({ t: type })), { code: 'MPORT_ERR_INVALID_MESSAGE', message: /unknown/ }, `"${type}" is not a type of the other direction`)
    }
  }
  t.same(docMessages.filter((m, i) => docMessages.findIndex(n => n.t === m.t) !== i).map(m => m.t), [], 'no type has two tables')
  for (const parse of [parseClientMessage, parseRelayMessage]) {
    t.throws(() => parse(body({ t: 'teleport' })), { code: 'MPORT_ERR_INVALID_MESSAGE' }, 'an unknown t is an error')
    t.throws(() => parse(body({})), { code: 'MPORT_ERR_INVALID_MESSAGE' }, 'a missing t is an error')
  }
})

t.test('every message table: members, types and limits hold in the parser', async t => {
  t.ok(docMessages.length >= 9, `${docMessages.length} message tables found`)
  for (const m of docMessages) {
    await t.test(`${m.t} (${m.from} → ${m.from === 'client' ? 'relay' : 'client'})`, async t => {
      const parse = parsers[m.from]
      const tag = m.fields.find(f => f.row === 't')?.type
      t.same(tag, { kind: 'tag', value: m.t }, 'the table has a `t` row with the type')
      // The richest vector of this type (optional members included, when a vector has them).
      const candidates = vectors[m.from].filter(v => v.message.t === m.t)
      const base = candidates.sort((a, b) => paths(b.message).length - paths(a.message).length)[0]?.message
      if (base === undefined) throw new Error(`spec/vectors/control.json has no ${m.from} vector of type "${m.t}"`)
      const parsed = parse(body(base)) as Json
      t.same(paths(parsed).filter(p => p !== 't').sort(), docPaths(m.fields), 'documented members equal the parsed members')
      for (const f of m.fields) checkField(t, parse, base, f)
      const extra = parse(body({ ...base, futureMember: 1 })) as Json
      t.equal(extra.futureMember, undefined, 'an unlisted member is ignored and dropped')
    })
  }
})

t.test('the visitor stream header table holds in parseStreamHeader', async t => {
  const fields = fieldTable(heading(/^#### Visitor stream header$/))
  // The richest header vector (optional members included).
  const base = [...vectors.streamHeaders].sort((a, b) => paths(b.header as unknown as Json).length - paths(a.header as unknown as Json).length)[0]?.header
  if (base === undefined) throw new Error('spec/vectors/control.json has no streamHeaders')
  t.same(paths(parseStreamHeader(body(base)) as unknown as Json).sort(), docPaths(fields), 'documented members equal the parsed members')
  t.notOk(fields.some(f => f.row === 't'), 'the header has no t')
  for (const f of fields) checkField(t, b => parseStreamHeader(b), base, f)
})

// ---- Limits table ----

/** Exported constants the limits table may name, by name. */
const constants: Record<string, unknown> = {
  CONTROL_VERSION, ALPN_PROTOCOL, DEFAULT_CONTROL_PORT, MAX_CONTROL_MESSAGE, MAX_STREAM_HEADER,
  AUTH_BINDING_LABEL, AUTH_BINDING_LENGTH, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_PORT_RANGE,
}

function documentedValue (cell: string, actual: unknown): unknown {
  if (typeof actual === 'string') return /^`([^`]+)`/.exec(cell)?.[1]
  if (typeof actual === 'number') {
    const n = /^(\d[\d,]*)/.exec(cell)?.[1]
    return n === undefined ? undefined : Number(n.replace(/,/g, ''))
  }
  const range = /^(\d+)[–-](\d+)/.exec(cell)
  return range === null ? undefined : { min: Number(range[1]), max: Number(range[2]) }
}

t.test('the tunnel limits table states the exported constants', async t => {
  const [header, ...rows] = tableAfter(heading(/^### Tunnel limits$/))
  t.same(header, ['Limit', 'Value', 'Constant or option', 'Notes'], 'columns')
  const checked: string[] = []
  for (const [limit, value, constant] of rows) {
    const name = /^`([A-Z][A-Z0-9_]*)`$/.exec(constant ?? '')?.[1]
    if (name === undefined) continue // an option, not a constant
    t.ok(name in constants, `${name} (row "${limit}") is a constant this test knows; add it to \`constants\``)
    if (!(name in constants)) continue
    t.same(documentedValue(value ?? '', constants[name]), constants[name], `${limit}: ${value} is ${name}`)
    checked.push(name)
  }
  for (const required of ['MAX_CONTROL_MESSAGE', 'MAX_STREAM_HEADER', 'CONTROL_VERSION', 'DEFAULT_CONTROL_PORT', 'ALPN_PROTOCOL']) {
    t.ok(checked.includes(required), `the table has a row for ${required}`)
  }
  t.equal(vectors.limits.maxControlMessage, MAX_CONTROL_MESSAGE, 'control.json agrees on the control message limit')
  t.equal(vectors.limits.maxStreamHeader, MAX_STREAM_HEADER, 'control.json agrees on the stream header limit')
})

// ---- Authentication ----

interface DocAuth {
  idLabel: string
  idChars: number
  keyLabel: string
  proofLabel: string
  bindingLabel: string
  bindingContext: string
  bindingLength: number
}

/** The derivation formulas, as written in the code block of "### Authentication". */
function docAuth (): DocAuth {
  const { lines } = fenceAfter(heading(/^### Authentication$/))
  const grab = (re: RegExp, what: string): RegExpExecArray => {
    const m = lines.map(l => re.exec(l)).find(x => x !== null)
    if (m === undefined) throw new Error(`the formula for ${what} is missing or reworded in "### Authentication" (expected ${String(re)})`)
    return m
  }
  const literal = (s: string): string => s.replace(/\\0/g, '\0')
  const id = grab(/^token_id\s*=\s*base64url\(\s*SHA-256\(\s*"([^"]+)"\s*‖\s*token\s*\)\s*\)\[0:(\d+)\]$/, 'token_id')
  const k = grab(/^key\s*=\s*SHA-256\(\s*"([^"]+)"\s*‖\s*token\s*\)$/, 'key')
  const b = grab(/^binding\s*=\s*TLS-Exporter\(\s*label\s*=\s*"([^"]+)",\s*context\s*=\s*"([^"]*)",\s*length\s*=\s*(\d+)\s*\)$/, 'binding')
  const p = grab(/^proof\s*=\s*base64url\(\s*HMAC-SHA256\(\s*key,\s*"([^"]+)"\s*‖\s*nonce\s*‖\s*binding\s*\)\s*\)$/, 'proof')
  return {
    idLabel: literal(id[1]!),
    idChars: Number(id[2]),
    keyLabel: literal(k[1]!),
    bindingLabel: b[1]!,
    bindingContext: b[2]!,
    bindingLength: Number(b[3]),
    proofLabel: literal(p[1]!),
  }
}
const spec = docAuth()

/** The derivations computed from the document alone. */
const fromDoc = {
  tokenId: (token: string): string => createHash('sha256').update(Buffer.from(spec.idLabel + token, 'utf8')).digest('base64url').slice(0, spec.idChars),
  key: (token: string): Buffer => createHash('sha256').update(Buffer.from(spec.keyLabel + token, 'utf8')).digest(),
  proof: (k: Buffer, nonce: Buffer, binding: Buffer): Buffer =>
    createHmac('sha256', k).update(Buffer.concat([Buffer.from(spec.proofLabel, 'utf8'), nonce, binding])).digest(),
}

const bytes = (start: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff))

t.test('the formulas in PROTOCOL.md compute what tokenId, tokenKey and authProof compute', async t => {
  t.equal(spec.idLabel, 'mport-token-id\0', 'token id label (with its zero byte)')
  t.equal(spec.keyLabel, 'mport-token-key\0', 'key label (with its zero byte)')
  const tokens = ['mpt_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX', TOKEN, generateToken(), 'not-an-mpt-token', 'mpt_ünïcødé']
  const inputs = [
    { nonce: bytes(0, 32), binding: bytes(0x20, 32) },
    { nonce: Buffer.alloc(32), binding: Buffer.alloc(32, 0xff) },
    { nonce: randomBytes(32), binding: randomBytes(32) },
  ]
  for (const token of tokens) {
    t.equal(fromDoc.tokenId(token), tokenId(token), `token id of ${JSON.stringify(token)}`)
    t.equal(tokenId(token).length, spec.idChars, `${spec.idChars} characters`)
    t.same(fromDoc.key(token), tokenKey(token), `key of ${JSON.stringify(token)}`)
    for (const { nonce, binding } of inputs) {
      const proof = fromDoc.proof(fromDoc.key(token), nonce, binding)
      t.same(proof, authProof(tokenKey(token), nonce, binding), `proof for ${JSON.stringify(token)}, nonce ${nonce.toString('hex').slice(0, 8)}…`)
      t.ok(verifyProof(tokenKey(token), nonce, binding, proof), 'and verifyProof accepts it')
    }
  }
})

t.test('the authentication example in PROTOCOL.md', async t => {
  const rows = tableAfter(heading(/^#### Authentication example$/)).slice(1)
  const value = (name: string): string => {
    const row = rows.find(r => r[0] === name)
    if (row === undefined) throw new Error(`the authentication example has no row ${name}`)
    return unquote(row[1] ?? '')
  }
  const token = value('`token`')
  const nonce = Buffer.from(value('`nonce`'), 'hex')
  const binding = Buffer.from(value('`binding`'), 'hex')
  const proofBytes = Buffer.from(value('`proof` (bytes)'), 'hex')
  t.match(token, /^mpt_[A-Za-z0-9_-]{32}$/, 'the example token has the documented format')
  t.equal(nonce.length, 32, 'the example nonce is 32 bytes')
  t.equal(binding.length, spec.bindingLength, 'the example binding has the documented length')
  t.equal(value('`nonce` (in `challenge`)'), nonce.toString('base64url'), 'nonce as sent')
  t.equal(value('`token_id`'), tokenId(token), 'token_id is tokenId(token)')
  t.equal(value('`token_id`'), fromDoc.tokenId(token), 'and what the formula gives')
  t.equal(value('`key`'), tokenKey(token).toString('hex'), 'key is tokenKey(token)')
  t.same(proofBytes, authProof(tokenKey(token), nonce, binding), 'proof is authProof(key, nonce, binding)')
  t.same(proofBytes, fromDoc.proof(fromDoc.key(token), nonce, binding), 'and what the formula gives')
  t.equal(value('`proof` (in `auth`)'), proofBytes.toString('base64url'), 'proof as sent')
})

t.test('the TLS binding as documented, on a real loopback TLS 1.3 connection', async t => {
  t.equal(spec.bindingLabel, AUTH_BINDING_LABEL, 'the formula\'s exporter label is AUTH_BINDING_LABEL')
  t.equal(spec.bindingLength, AUTH_BINDING_LENGTH, 'the formula\'s length is AUTH_BINDING_LENGTH')
  const accepted: TLSSocket[] = []
  const waiters: Array<(s: TLSSocket) => void> = []
  const listener = await listenTls({ host: '127.0.0.1', port: 0, cert, key }, socket => {
    const w = waiters.shift()
    if (w !== undefined) w(socket)
    else accepted.push(socket)
  })
  t.teardown(() => listener.close())
  const nextServerSocket = (): Promise<TLSSocket> => withTimeout(new Promise<TLSSocket>(resolve => {
    const s = accepted.shift()
    if (s !== undefined) resolve(s)
    else waiters.push(resolve)
  }), { what: 'the relay side of a loopback TLS connection' })
  const dial = async (): Promise<{ client: TLSSocket, server: TLSSocket }> => {
    const { socket } = await withTimeout(connectTls({ host: '127.0.0.1', port: listener.address.port, fingerprint: certFingerprint }), { what: 'connectTls to the loopback listener' })
    t.teardown(() => { socket.destroy() })
    return { client: socket, server: await nextServerSocket() }
  }

  const a = await dial()
  t.equal(a.client.getProtocol(), 'TLSv1.3', 'TLS 1.3')
  t.equal(a.client.alpnProtocol, ALPN_PROTOCOL, 'ALPN as in the limits table')
  const context = Buffer.from(spec.bindingContext, 'utf8')
  const documented = a.client.exportKeyingMaterial(spec.bindingLength, spec.bindingLabel, context)
  t.equal(documented.length, spec.bindingLength, 'the exporter gives the documented length')
  t.same(exportAuthBinding(a.client), documented, 'client: exportAuthBinding is the documented exporter')
  t.same(exportAuthBinding(a.server), documented, 'relay: the same bytes at the other end')
  // @types/node makes the context mandatory; Node itself allows leaving it out (no context).
  const noContext = Reflect.apply(a.client.exportKeyingMaterial, a.client, [spec.bindingLength, spec.bindingLabel]) as Buffer
  t.same(noContext, documented, 'TLS 1.3: no context equals an empty context')

  const b = await dial()
  t.not(exportAuthBinding(b.client).toString('hex'), documented.toString('hex'), 'another connection has another binding')

  // A proof made by the formulas on the client end verifies on the relay end, and only there.
  const nonce = randomBytes(32)
  const proof = fromDoc.proof(fromDoc.key(TOKEN), nonce, exportAuthBinding(a.client))
  t.ok(verifyProof(tokenKey(TOKEN), nonce, exportAuthBinding(a.server), proof), 'verifies on the same connection')
  t.notOk(verifyProof(tokenKey(TOKEN), nonce, exportAuthBinding(b.server), proof), 'does not verify on another connection')
})

// ---- Worked examples ----

interface Dumped { bytes: Buffer, muxHeader?: Buffer }

/** The hex dump that follows the mention of vector `name`, and the mux header named after it. */
function dumpFor (name: string): Dumped {
  const at = heading(/^### Worked examples$/)
  const mention = doc.findIndex((l, i) => i > at && l.includes(`vector "${name}"`))
  if (mention < 0) throw new Error(`"### Worked examples" does not mention vector "${name}"`)
  const { lines, end } = fenceAfter(mention)
  const out: number[] = []
  for (const line of lines) {
    const m = /^([0-9a-f]{4}) {2}((?:[0-9a-f]{2} )*[0-9a-f]{2}) +\|(.*)\|$/.exec(line)
    if (m === null) throw new Error(`not a hex dump line: "${line}"`)
    if (parseInt(m[1]!, 16) !== out.length) throw new Error(`dump offset ${m[1]} should be ${out.length.toString(16).padStart(4, '0')}`)
    const row = m[2]!.split(' ').map(h => parseInt(h, 16))
    const ascii = row.map(c => c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.').join('')
    if (ascii !== m[3]) throw new Error(`dump line ${m[1]}: the text column should be |${ascii}|`)
    out.push(...row)
  }
  const after = doc.slice(end, end + 6).join(' ')
  const mux = /mux header `((?:[0-9a-f]{2} ){11}[0-9a-f]{2})`/.exec(after)?.[1]
  return { bytes: Buffer.from(out), ...(mux === undefined ? {} : { muxHeader: Buffer.from(mux.replace(/ /g, ''), 'hex') }) }
}

t.test('the worked examples are the vectors of control.json, byte for byte', async t => {
  const hello = vectors.client.find(v => v.message.t === 'hello' && v.message.lease === undefined)
  const visitor = vectors.streamHeaders[0]
  if (hello === undefined || visitor === undefined) throw new Error('control.json lacks a hello or a stream header vector')
  const examples = [
    { name: hello.name, hex: hello.hex, prefix: 4, parse: (b: Buffer) => parseClientMessage(b) as unknown, expected: hello.message },
    { name: visitor.name, hex: visitor.hex, prefix: 2, parse: (b: Buffer) => parseStreamHeader(b) as unknown, expected: visitor.header },
  ]
  for (const ex of examples) {
    const d = dumpFor(ex.name)
    t.equal(d.bytes.toString('hex'), ex.hex, `${ex.name}: the dump is the vector`)
    t.equal(d.bytes.readUIntBE(0, ex.prefix), d.bytes.length - ex.prefix, `${ex.name}: the length prefix counts the body`)
    t.same(ex.parse(d.bytes.subarray(ex.prefix)), ex.expected, `${ex.name}: the body parses to the vector's message`)
    if (d.muxHeader === undefined) throw new Error(`${ex.name}: no "mux header \`…\`" after the dump`)
    const h = decodeHeader(d.muxHeader)
    t.equal(h.type, FrameType.Data, `${ex.name}: rides in a Data frame`)
    t.equal(h.flags, Flag.SYN, `${ex.name}: with SYN`)
    t.equal(h.length, d.bytes.length, `${ex.name}: whose length is the message's`)
    t.equal(h.streamId % 2, ex.prefix === 4 ? 1 : 0, `${ex.name}: on a stream of the opener's parity (client odd, relay even)`)
  }
})
