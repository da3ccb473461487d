/**
 * Throughput of the value codec and the scan engine: classification alone, a read (decrypt) per
 * provider, and scanValues over a generated etcd. Prints a table; not a timed test.
 *
 *   npx tsx bench/scan.ts [values=20000] [size=1024]
 */
import {randomBytes} from 'node:crypto'

import type {EncryptionConfiguration, ProviderSpec} from '../src/encryption/config/model.js'
import type {KmsService} from '../src/encryption/transform/providers/kms-service.js'
import {ResourceTransformer} from '../src/encryption/transform/resource-transformer.js'
import {classifyValue} from '../src/encryption/storage/value-classifier.js'
import {lenField} from '../src/encryption/storage/protobuf-wire.js'
import {formatTable} from '../src/output/render.js'
import {type ScanEntry, scanValues} from '../src/usecases/scan/scan-engine.js'

const count = Number(process.argv[2] ?? 20_000)
const size = Number(process.argv[3] ?? 1024)

/** A protobuf Secret-shaped plaintext of about `size` bytes: envelope, type meta, opaque raw object. */
const plaintext = Buffer.concat([
  Buffer.from('6b3873000a0c0a0276311206536563726574', 'hex'),
  lenField(2, randomBytes(Math.max(0, size - 26))),
  Buffer.from('1a002200', 'hex'),
])
const secret = (n: number) => randomBytes(n).toString('base64')

const kms: KmsService = {
  decrypt: ({encryptedDEKSource}) => encryptedDEKSource.subarray(0, 32),
  encrypt: (p) => ({ciphertext: Buffer.concat([p, randomBytes(8)]), keyID: 'kek-1'}),
  currentKeyId: () => 'kek-1',
}

const providers: Array<[string, ProviderSpec]> = [
  ['identity', {identity: {}}],
  ['aescbc-256', {aescbc: {keys: [{name: 'k', secret: secret(32)}]}}],
  ['aesgcm-256', {aesgcm: {keys: [{name: 'k', secret: secret(32)}]}}],
  ['secretbox', {secretbox: {keys: [{name: 'k', secret: secret(32)}]}}],
  ['kms v2 (HKDF)', {kms: {apiVersion: 'v2', name: 'k', endpoint: 'unix:///k'}}],
]

function time(fn: () => void): number {
  const start = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - start) / 1e9
}

const rows: Array<Array<string | number>> = []
const rss = () => Math.round(process.memoryUsage().rss / 1e6)
const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en-US')}/s`
const mbps = (bytes: number, s: number) => `${(bytes / s / 1e6).toFixed(1)} MB/s`

for (const [name, spec] of providers) {
  const t = ResourceTransformer.fromProviders([spec], 'secrets', {kms: {k: kms}})
  const keys = Array.from({length: count}, (_, i) => `/registry/secrets/ns/s-${i}`)
  const stored = keys.map((k) => t.write(plaintext, k))
  // warm up (JIT, crypto contexts) before timing
  for (let i = 0; i < Math.min(1000, count); i++) {
    classifyValue(stored[i])
    t.read(stored[i], keys[i])
  }
  const classify = time(() => {
    for (const v of stored) classifyValue(v)
  })
  const read = time(() => {
    for (let i = 0; i < stored.length; i++) t.read(stored[i], keys[i])
  })
  rows.push([name, `classify ${rate(count, classify)}`, `read ${rate(count, read)}`, mbps(count * size, read)])
}

// scanValues over a mixed etcd: 4 resources, pages of 500, orphans and stale values included.
const config: EncryptionConfiguration = {
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: [{resources: ['secrets', 'configmaps'], providers: [providers[2][1], providers[1][1], {identity: {}}]}],
}
const writers = [providers[2][1], providers[1][1], providers[0][1]].map((p) =>
  ResourceTransformer.fromProviders([p], undefined),
)
const entries: ScanEntry[] = Array.from({length: count}, (_, i) => {
  const key = `/registry/${i % 2 ? 'secrets' : 'configmaps'}/ns-${i % 50}/o-${i}`
  return {key, value: writers[i % 3].write(plaintext, key), modRevision: i}
})
async function* pages() {
  for (let i = 0; i < entries.length; i += 500) yield entries.slice(i, i + 500)
}
const namespaces = new Set(Array.from({length: 45}, (_, i) => `ns-${i}`))
const start = process.hrtime.bigint()
const result = await scanValues({pages: pages(), config, namespaces})
const seconds = Number(process.hrtime.bigint() - start) / 1e9
rows.push([
  'scanValues (gcm/cbc/plain mix)',
  `${result.keys} keys in ${seconds.toFixed(2)} s`,
  rate(result.keys, seconds),
  mbps(result.bytes, seconds),
])

console.log(
  `values: ${count}, plaintext size: ${plaintext.length} bytes, node ${process.version}, ${process.arch}, rss ${rss()} MB`,
)
console.log(formatTable(['provider', 'classify', 'read (decrypt)', 'throughput'], rows))
