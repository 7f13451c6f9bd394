/**
 * The client as one file: bin/mport-connect.ts and everything it imports (the mport library,
 * yargs, yaml, ws, pino…) bundled by esbuild into `mport-connect.mjs`, which needs only Node
 * (no node_modules, no native add-ons). The relay package ships it in dist/dl/ and serves it at
 * GET /dl/mport-connect.mjs, so a machine that cannot reach npm still gets the client.
 *
 *   tsx scripts/bundle-client.ts <outDir>     (the relay package's build runs this)
 *
 * It also writes `mport-connect.cjs`, the same client as CommonJS: not served itself, it is what
 * a linux-x64 relay makes its single executable from (client-executable.ts).
 *
 * The inspector page's files are inlined (inspect-assets.ts is swapped for a module holding
 * them); ws's optional native add-ons stay out (ws uses its JavaScript code without them).
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'
import { VERSION } from '../src/version.js'
import { BUNDLE_MIN_NODE, CLIENT_BUNDLE, EXECUTABLE_SOURCE } from '../packages/mport-relay/src/downloads/client-downloads.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const INSPECT_ASSETS = path.join(ROOT, 'packages/mport-connect/assets/inspect')
const MIN_NODE = BUNDLE_MIN_NODE.split('.').map(Number) as [number, number]

/** Swaps inspect-assets.ts for a module with the page's files inline, so the bundle reads no files of its own. */
const inlineInspectAssets: Plugin = {
  name: 'inline-inspect-assets',
  setup (b) {
    b.onLoad({ filter: /[\\/]inspect[\\/]inspect-assets\.ts$/ }, () => {
      const files = Object.fromEntries(readdirSync(INSPECT_ASSETS).sort().map(f => [f, readFileSync(path.join(INSPECT_ASSETS, f)).toString('base64')]))
      return {
        loader: 'js',
        contents: `const FILES = ${JSON.stringify(files)}
export function readInspectAssets (names) {
  return new Map(names.map(n => { if (FILES[n] === undefined) throw new Error('inspector asset ' + n + ' is not in the bundle'); return [n, Buffer.from(FILES[n], 'base64')] }))
}`,
      }
    })
  },
}

/**
 * ws's optional native add-ons, as modules that fail to load (ws then uses its JavaScript
 * code): the bundle never picks one up from a node_modules near where it was saved, and the
 * executable never asks its embedded `require` for a file (which warns on every start).
 */
const absentAddons: Plugin = {
  name: 'absent-native-addons',
  setup (b) {
    b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, args => ({ path: args.path, namespace: 'absent-addon' }))
    b.onLoad({ filter: /.*/, namespace: 'absent-addon' }, args => ({
      loader: 'js',
      contents: `throw Object.assign(new Error(${JSON.stringify(`${args.path} is not in the mport-connect bundle`)}), { code: 'MODULE_NOT_FOUND' })`,
    }))
  },
}

/** A check that runs before any bundled code: an older Node gets one clear line, not a syntax error from deep inside a dependency. */
const NODE_CHECK = `{const [a,b]=process.versions.node.split('.').map(Number);if(a<${MIN_NODE[0]}||(a===${MIN_NODE[0]}&&b<${MIN_NODE[1]})){process.stderr.write('mport-connect: needs Node >= ${BUNDLE_MIN_NODE}, this is '+process.version+'\\n');process.exit(1)}}`

/**
 * What each format needs besides the check. ESM: a `require` for the CommonJS dependencies' own
 * `require('node:…')` calls. CommonJS (the single executable's input, which Node's SEA requires):
 * an `import.meta.url` for the ES-module dependencies (yargs) that look up their own files.
 */
const FORMATS = {
  esm: {
    file: CLIENT_BUNDLE,
    banner: "import{createRequire as __mportCreateRequire}from'node:module';const require=__mportCreateRequire(import.meta.url);",
    define: {},
  },
  cjs: {
    file: EXECUTABLE_SOURCE,
    banner: "var __mportMetaUrl=require('node:url').pathToFileURL(__filename).href;",
    define: { 'import.meta.url': '__mportMetaUrl' },
  },
} as const

/** Bundles the client into `<outDir>/mport-connect.mjs` (or, as CommonJS, `mport-connect.cjs`); returns the file and its size in bytes. */
export async function bundleClient (outDir: string, format: keyof typeof FORMATS = 'esm'): Promise<{ file: string, bytes: number }> {
  const f = FORMATS[format]
  const file = path.join(outDir, f.file)
  const result = await build({
    entryPoints: [path.join(ROOT, 'bin/mport-connect.ts')],
    outfile: file,
    bundle: true,
    platform: 'node',
    format,
    target: `node${BUNDLE_MIN_NODE}`,
    minify: true,
    legalComments: 'none',
    // The sources, not the packages' builds: the bundle never depends on a stale dist/.
    tsconfig: path.join(ROOT, 'tsconfig.json'),
    banner: { js: [`// mport-connect ${VERSION}: the mport client in one file (Node >= ${BUNDLE_MIN_NODE}). Run: node ${f.file} --help`, NODE_CHECK, f.banner].join('\n') },
    define: f.define,
    // certs.ts resolves selfsigned through import.meta only when generating a certificate, which the client never does.
    logOverride: { 'empty-import-meta': 'silent' },
    plugins: [inlineInspectAssets, absentAddons],
    metafile: true,
    logLevel: 'warning',
  })
  const bytes = Object.values(result.metafile.outputs)[0]!.bytes
  return { file, bytes }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2]
  if (outDir === undefined) {
    process.stderr.write('usage: tsx scripts/bundle-client.ts <outDir>\n')
    process.exit(2)
  }
  const started = Date.now()
  for (const format of ['esm', 'cjs'] as const) {
    const { file, bytes } = await bundleClient(path.resolve(outDir), format)
    process.stdout.write(`bundled ${path.relative(process.cwd(), file)}: ${(bytes / 1024).toFixed(0)} KiB in ${Date.now() - started} ms\n`)
  }
}
