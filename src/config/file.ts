/**
 * Config files for the bins: JSON or YAML read into a plain object, errors that name the file
 * and the line, and unknown keys rejected with a suggestion (rathole's deny_unknown_fields).
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { InvalidConfigError } from '../errors.js'

const MAX_ALIASES = 100

/**
 * Reads a `.json`, `.yaml` or `.yml` file whose top level is an object (an empty YAML file is
 * `{}`). Throws InvalidConfigError keyed by the file path for unreadable files, syntax errors
 * (with line and column) and other top-level values.
 */
export async function loadConfigFile (file: string): Promise<Record<string, unknown>> {
  const ext = path.extname(file).toLowerCase()
  if (ext !== '.json' && ext !== '.yaml' && ext !== '.yml') {
    throw new InvalidConfigError(file, `unsupported config file type "${ext || '(none)'}"; use .json, .yaml or .yml`)
  }
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message
    throw new InvalidConfigError(file, `cannot read config file: ${why}`)
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1) // BOM
  // The YAML parser is loaded only for a YAML file, so a client without one never keeps it in memory.
  const value = ext === '.json' ? parseJson(text, file) : parseYaml(text, file, (await import('yaml')).parseDocument)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidConfigError(file, `the top level must be an object of settings, not ${Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value}`)
  }
  return value as Record<string, unknown>
}

/**
 * Throws InvalidConfigError for the first key of `obj` not in `allowed`, suggesting the
 * closest allowed key: `unknown key "tokn" in mport.json; did you mean "token"?`.
 */
export function checkKnownKeys (obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue
    const suggestion = closest(key, allowed)
    const hint = suggestion !== undefined
      ? `; did you mean "${suggestion}"?`
      : allowed.length > 0 ? ` (known keys: ${allowed.join(', ')})` : ''
    throw new InvalidConfigError(key, `unknown key "${key}" in ${where}${hint}`)
  }
}

/** The allowed key nearest to `key` by edit distance, if it is close enough to be a typo. */
export function closest (key: string, allowed: readonly string[]): string | undefined {
  const lower = key.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of allowed) {
    const d = editDistance(lower, candidate.toLowerCase())
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  // A third of the length, at least 1 and at most 3 edits: "tokn" → "token", not "port" → "host".
  const limit = Math.min(3, Math.max(1, Math.floor(key.length / 3)))
  return bestDistance <= limit ? best : undefined
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance (a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[] = new Array<number>(rows * cols).fill(0)
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1)
      d[i * cols + j] = v
    }
  }
  return at(a.length, b.length)
}

function parseYaml (text: string, file: string, parseDocument: typeof import('yaml').parseDocument): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  const first = doc.errors[0]
  if (first !== undefined) {
    // The pretty message is "<what> at line L, column C:\n\n<excerpt>"; keep the first line.
    const line = (first.message.split('\n')[0] ?? first.message).replace(/:$/, '')
    throw new InvalidConfigError(file, `YAML syntax error: ${line}`)
  }
  if (doc.contents === null) return {} // empty or comments only
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES })
  } catch (err) {
    throw new InvalidConfigError(file, `YAML error: ${(err as Error).message}`)
  }
}

function parseJson (text: string, file: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    const where = locateJsonError(text)
    if (where === undefined) throw new InvalidConfigError(file, `JSON syntax error: ${((err as Error).message.split('\n')[0] ?? '')}`)
    const { line, column } = lineColumn(text, where.offset)
    throw new InvalidConfigError(file, `JSON syntax error at line ${line}, column ${column}: ${where.message}`)
  }
}

function lineColumn (text: string, offset: number): { line: number, column: number } {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return { line, column: offset - before.lastIndexOf('\n') }
}

/**
 * Offset and description of the first JSON syntax error in `text` (V8's JSON.parse messages
 * often carry no position). Only called after JSON.parse has failed.
 */
function locateJsonError (text: string): { offset: number, message: string } | undefined {
  let i = 0
  const fail = (message: string): never => { throw Object.assign(new Error(message), { offset: i }) }
  const describe = (): string => i >= text.length ? 'unexpected end of file' : `unexpected ${JSON.stringify(text[i])}`
  const ws = (): void => { while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++ }
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length
    else fail(describe())
  }
  const string = (): void => {
    i++ // opening quote
    while (true) {
      const c = text[i]
      if (c === undefined) fail('unterminated string')
      else if (c === '"') { i++; return } else if (c === '\\') {
        const e = text[i + 1]
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6
        else { i++; fail('invalid escape in string') }
      } else if (c < ' ') fail('control character in string (use \\n, \\t, …)')
      else i++
    }
  }
  const number = (): void => {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i))
    if (m === null) fail(describe())
    else i += m[0].length
  }
  const value = (depth: number): void => {
    if (depth > 512) fail('nesting too deep')
    ws()
    const c = text[i]
    if (c === '{') {
      i++; ws()
      if (text[i] === '}') { i++; return }
      while (true) {
        ws()
        if (text[i] !== '"') fail(`expected a quoted key, found ${describe().replace('unexpected ', '')}`)
        string(); ws()
        if (text[i] !== ':') fail(`expected ":" after a key, found ${describe().replace('unexpected ', '')}`)
        i++
        value(depth + 1); ws()
        if (text[i] === ',') { i++; continue }
        if (text[i] === '}') { i++; return }
        fail(`expected "," or "}", found ${describe().replace('unexpected ', '')}`)
      }
    } else if (c === '[') {
      i++; ws()
      if (text[i] === ']') { i++; return }
      while (true) {
        value(depth + 1); ws()
        if (text[i] === ',') { i++; continue }
        if (text[i] === ']') { i++; return }
        fail(`expected "," or "]", found ${describe().replace('unexpected ', '')}`)
      }
    } else if (c === '"') string()
    else if (c === 't') literal('true')
    else if (c === 'f') literal('false')
    else if (c === 'n') literal('null')
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number()
    else fail(describe())
  }
  try {
    value(0); ws()
    if (i < text.length) fail(`unexpected ${JSON.stringify(text[i])} after the end of the document`)
  } catch (err) {
    const offset = (err as { offset?: number }).offset
    if (typeof offset === 'number') return { offset, message: (err as Error).message }
    throw err
  }
  return undefined
}
