/**
 * The store suite on a real PostgreSQL server (a throwaway cluster, one database per test).
 * Skips with the reason when PostgreSQL is not installed locally; under CI it fails instead.
 */
import t from 'tap'
import { openStore, SCHEMA_VERSION } from '../../packages/mport-relay/src/store/index.js'
import { findPostgres, postgresTestOptions, startPostgres } from '../helpers/postgres.js'
import { storeSuite, TEST_SCRYPT } from './fixtures/suite.js'

t.test('without PostgreSQL: skip with the reason locally, never under CI', async t => {
  t.match(findPostgres('/nonexistent'), { missing: /PostgreSQL is not installed .*apt-get install -y postgresql/ })
  t.match(postgresTestOptions({}, '/nonexistent'), { skip: /PostgreSQL is not installed/ })
  t.same(postgresTestOptions({ CI: 'true' }, '/nonexistent'), {}, 'under CI the test runs, and fails in startPostgres()')
})

t.test('store suite (PostgreSQL)', postgresTestOptions(), async t => {
  const server = await startPostgres()
  t.teardown(() => server.stop())

  storeSuite(t, async options => openStore({ ...options, url: await server.createDatabase() }))

  t.test('two relays migrating the same database at once apply each migration once', async t => {
    const url = await server.createDatabase()
    const stores = await Promise.all([1, 2, 3].map(() => openStore({ url, scrypt: TEST_SCRYPT })))
    t.teardown(() => Promise.all(stores.map(s => s.close())))
    const rows = await stores[0]!.db.selectFrom('schema_migrations').selectAll().execute()
    t.equal(rows.length, SCHEMA_VERSION)
    t.equal(stores[0]!.dialect, 'postgres')
  })

  t.test('a wrong server is a DatabaseError with the password masked', async t => {
    await t.rejects(openStore({ url: `postgres://postgres:s3cret@127.0.0.1:${server.port}/no_such_db` }), {
      code: 'MPORT_ERR_DATABASE',
      message: /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/no_such_db/,
    })
  })
})
