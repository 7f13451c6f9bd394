// Error codes: PROTOCOL.md's "Error codes" table and ErrorCodes in src/errors.ts must not drift
// apart in either direction, and every error class must use a listed code (fastify errors.test.js).
import { readFile } from 'node:fs/promises'
import t from 'tap'
import * as errors from '../src/errors.js'
import { ErrorCodes, MportError, ProtocolError } from '../src/errors.js'
import { GoAwayCode } from '../src/mux/frame.js'

interface Row { code: string, className: string, layer: string, goAway: string, meaning: string, line: number }

/** Rows of the Markdown table under `## Error codes`, up to the next `## ` heading. */
function parseErrorTable (markdown: string): Row[] {
  const lines = markdown.split('\n')
  const start = lines.findIndex(l => l.trim() === '## Error codes')
  if (start < 0) throw new Error('PROTOCOL.md has no "## Error codes" heading')
  const rows: Row[] = []
  let header: string[] | undefined
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line.startsWith('## ')) break
    if (!line.startsWith('|')) continue
    const cells = line.replace(/^\|/, '').replace(/\|$/, '').split('|').map(c => c.trim())
    if (header === undefined) {
      header = cells
      continue
    }
    if (cells.every(c => /^:?-+:?$/.test(c))) continue // the separator row
    const [code, className, layer, goAway, meaning] = cells
    rows.push({
      code: /^`([^`]+)`$/.exec(code ?? '')?.[1] ?? `(not a backticked code: ${code})`,
      className: (className ?? '').replace(/`/g, ''),
      layer: layer ?? '',
      goAway: goAway ?? '',
      meaning: meaning ?? '',
      line: i + 1,
    })
  }
  if (header === undefined) throw new Error('no table under "## Error codes"')
  if (header.join('|') !== 'Code|Class|Layer|GoAway sent|Meaning') {
    throw new Error(`unexpected columns under "## Error codes": ${header.join(' | ')}`)
  }
  return rows
}

const protocol = await readFile(new URL('../PROTOCOL.md', import.meta.url), 'utf8')
const rows = parseErrorTable(protocol)
const documented = rows.map(r => r.code)
const listed: readonly string[] = ErrorCodes

/** Every exported class that is MportError or extends it. */
const errorClasses = Object.entries(errors).filter((e): e is [string, typeof MportError] =>
  typeof e[1] === 'function' && (e[1] === MportError || e[1].prototype instanceof MportError))

type Ctor = new (...args: unknown[]) => MportError

/**
 * Arguments that build each class; classes not listed are built with SENTINEL first, which
 * also tells a base class (whose code is its first argument) from one with a fixed code.
 */
const SENTINEL = 'MPORT_ERR_TEST_SENTINEL'
const sampleArgs: Record<string, unknown[]> = {
  InvalidVersionError: [1],
  InvalidFrameTypeError: [4],
  FrameTooLargeError: [17, 16],
  InvalidStreamIdError: [0, 'test'],
  UnknownStreamError: [9],
  DuplicateStreamError: [3],
  RecvWindowExceededError: [1, 10, 5],
  WindowOverflowError: [1],
  PingFloodError: [1000],
  ControlBacklogError: [65536],
  RemoteGoAwayError: [1],
  KeepAliveTimeoutError: [10_000],
  StreamResetError: [1],
  StreamLimitError: [8],
  InvalidConfigError: ['key', 'test'],
}

/** Instances of every exported error class that has a fixed code, by class name. */
const fixed = new Map<string, MportError>()
const bases: string[] = []
for (const [name, C] of errorClasses) {
  const instance = new (C as unknown as Ctor)(...(sampleArgs[name] ?? [SENTINEL, 'test message']))
  if ((instance.code as string) === SENTINEL) bases.push(name)
  else fixed.set(name, instance)
}

t.test('ErrorCodes itself is well-formed', async t => {
  t.ok(listed.length > 0)
  t.same(listed.filter((c, i) => listed.indexOf(c) !== i), [], 'no code is listed twice')
  for (const code of listed) t.match(code, /^MPORT_ERR_[A-Z0-9_]+$/, `${code} has the MPORT_ERR_ form`)
})

t.test('every code in ErrorCodes has a row in PROTOCOL.md', async t => {
  const missing = listed.filter(c => !documented.includes(c))
  t.same(missing, [], `add a row to PROTOCOL.md "## Error codes" for: ${missing.join(', ') || 'nothing'}`)
})

t.test('every row in PROTOCOL.md is a code in ErrorCodes', async t => {
  const unknown = rows.filter(r => !listed.includes(r.code)).map(r => `${r.code} (line ${r.line})`)
  t.same(unknown, [], `remove from PROTOCOL.md or add to ErrorCodes: ${unknown.join(', ') || 'nothing'}`)
  t.same(documented.filter((c, i) => documented.indexOf(c) !== i), [], 'no code has two rows')
})

t.test('the table lists the codes in the order of ErrorCodes', async t => {
  t.same(documented.filter(c => listed.includes(c)), listed.filter(c => documented.includes(c)))
})

t.test('every row is filled in', async t => {
  for (const r of rows) {
    t.ok(r.className !== '', `${r.code}: Class`)
    t.match(r.layer, /^(mux|tunnel)$/, `${r.code}: Layer is mux or tunnel`)
    t.match(r.goAway, /^(—|[0-2]\b)/, `${r.code}: GoAway sent is a code or —`)
    t.ok(r.meaning.length >= 10, `${r.code}: Meaning`)
  }
})

t.test('every exported error class with a fixed code uses a code in ErrorCodes', async t => {
  t.ok(fixed.size >= 15, `found ${fixed.size} classes with a fixed code`)
  t.ok(bases.includes('MportError') && bases.includes('ProtocolError'), `base classes take their code: ${bases.join(', ')}`)
  for (const [name, err] of fixed) {
    t.ok(listed.includes(err.code), `${name} uses ${err.code}, which is in ErrorCodes`)
    t.equal(err.name, name, `${name}: name is the class name`)
    t.ok(err instanceof Error && err.message.length > 0, `${name}: is an Error with a message`)
  }
})

t.test('the Class column names the class that raises the code', async t => {
  for (const r of rows) {
    if (r.className === '—' || r.className === '-') continue
    const err = fixed.get(r.className)
    if (err === undefined) {
      t.ok(bases.includes(r.className), `${r.code}: ${r.className} is an exported error class of src/errors.ts`)
      continue
    }
    t.equal(err.code, r.code, `${r.className} raises ${r.code}`)
  }
})

t.test('ProtocolError subclasses send GoAway 1, as the table says', async t => {
  let count = 0
  for (const [name, err] of fixed) {
    if (!(err instanceof ProtocolError)) continue
    count++
    t.equal(err.goAway, GoAwayCode.ProtocolError, `${name}.goAway === 1`)
    t.equal(errors.goAwayCodeFor(err), GoAwayCode.ProtocolError, `goAwayCodeFor(${name}) === 1`)
    const row = rows.find(r => r.code === err.code)
    t.match(row?.goAway ?? '', /^1\b/, `${err.code}: GoAway sent column says 1`)
  }
  t.ok(count >= 10, `${count} protocol errors checked`)
  t.equal(errors.goAwayCodeFor(new errors.KeepAliveTimeoutError(1)), GoAwayCode.InternalError, 'keepalive timeout sends 2')
  t.equal(errors.goAwayCodeFor(new Error('x')), GoAwayCode.InternalError, 'anything else sends 2')
})
