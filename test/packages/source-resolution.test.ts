/**
 * Tests run against the sources, never a stale build: the package names resolve through
 * tsconfig `paths` (tap loads TypeScript with tsx, which reads them) to src/ and packages/…/src.
 */
import t from 'tap'

for (const [specifier, file] of [
  ['mport', /\/src\/index\.ts$/],
  ['mport/relay', /\/src\/relay\.ts$/],
  ['mport/errors', /\/src\/errors\.ts$/],
  ['mport-relay', /\/packages\/mport-relay\/src\/index\.ts$/],
  ['mport-connect', /\/packages\/mport-connect\/src\/index\.ts$/],
] as const) {
  t.match(import.meta.resolve(specifier), file, `${specifier} resolves to its source`)
}
