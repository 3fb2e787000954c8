// Start the full AT Protocol dev network (in-memory PLC, PDS, AppView, moderation) from
// @atproto/dev-env, for tests that need what only an AppView serves (notifications).
// Usage: DB_POSTGRES_URL=postgres://... REDIS_HOST=127.0.0.1 node start-network.mjs <schema>
// <schema> is a fresh PostgreSQL schema name (letters and underscores): the AppView, bsync and
// moderation services each create their tables under a prefix of it.
// Prints one JSON line {"pds": url, "plc": url, "appview": url} once everything answers, then
// keeps the AppView indexing what the PDS emits until SIGTERM.
import { TestNetwork } from '@atproto/dev-env'

const [schema] = process.argv.slice(2)
if (!schema || !/^[a-z_]+$/.test(schema)) {
  console.error('usage: node start-network.mjs <schema of letters and underscores>')
  process.exit(2)
}

const network = await TestNetwork.create({ dbPostgresSchema: schema })

// The dev AppView indexes on demand: keep it caught up, one pass at a time.
let stopping = false
const indexing = (async () => {
  while (!stopping) {
    try {
      await network.processAll()
    } catch (error) {
      console.error('indexing pass failed:', error)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
})()

const shutdown = async () => {
  stopping = true
  await indexing
  await network.close()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

console.log(
  JSON.stringify({ pds: network.pds.url, plc: network.plc.url, appview: network.bsky.url }),
)
