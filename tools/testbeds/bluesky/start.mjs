// Start an in-memory PLC directory and the reference PDS on 127.0.0.1, for tests and benchmarks.
// Usage: node start.mjs <plc-port> <pds-port> <data-dir>
// Prints one JSON line {"plc": url, "pds": url, "adminPassword": ...} once both answer.
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Database, PlcServer } from '@did-plc/server'

const [plcPort, pdsPort, dataDir] = process.argv.slice(2)
if (!plcPort || !pdsPort || !dataDir) {
  console.error('usage: node start.mjs <plc-port> <pds-port> <data-dir>')
  process.exit(2)
}

const plc = PlcServer.create({ db: Database.mock(), port: Number(plcPort) })
await plc.start()
const plcUrl = `http://127.0.0.1:${plcPort}`

const hex = () => randomBytes(32).toString('hex')
const adminPassword = hex()
mkdirSync(join(dataDir, 'blobs'), { recursive: true })
Object.assign(process.env, {
  PDS_HOSTNAME: 'localhost',
  PDS_PORT: String(pdsPort),
  PDS_DEV_MODE: 'true',
  PDS_DATA_DIRECTORY: dataDir,
  PDS_BLOBSTORE_DISK_LOCATION: join(dataDir, 'blobs'),
  PDS_REPO_SIGNING_KEY_K256_PRIVATE_KEY_HEX: hex(),
  PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: hex(),
  PDS_DPOP_SECRET: hex(),
  PDS_JWT_SECRET: hex(),
  PDS_ADMIN_PASSWORD: adminPassword,
  PDS_DID_PLC_URL: plcUrl,
  PDS_INVITE_REQUIRED: 'false',
  PDS_RATE_LIMITS_ENABLED: 'false',
  PDS_DISABLE_SSRF_PROTECTION: 'true',
  PDS_SERVICE_HANDLE_DOMAINS: '.test',
})

// Imported after the environment is set: the PDS reads some settings at import time.
const { PDS, envToCfg, envToSecrets, readEnv } = await import('@atproto/pds')
const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
await pds.start()

const shutdown = async () => {
  await pds.destroy()
  await plc.destroy()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

console.log(JSON.stringify({ plc: plcUrl, pds: `http://127.0.0.1:${pdsPort}`, adminPassword }))
