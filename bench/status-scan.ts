/**
 * `kubectl encryption status --scan` over 5,000 and 50,000 Secrets in the sandbox, through the
 * built plugin: objects per second and peak RSS per run, and the RSS ratio (goal: at most 1.5x).
 * The Secrets are written straight into the sandbox's etcd (aescbc, as the stand-in would store
 * them with the config below) to keep set-up short; the scan reads them as any cluster's.
 * Prints a table; not a timed test.
 *
 *   npm run sandbox -- --detach && npx tsx bench/status-scan.ts [small=5000] [large=50000] [transport=exec]
 */
import {execFile} from 'node:child_process'
import {createCipheriv, randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {Etcd3} from 'etcd3'

import {formatTable} from '../src/output/render.js'

const run = promisify(execFile)
const small = Number(process.argv[2] ?? 5000)
const large = Number(process.argv[3] ?? 50_000)
const transport = process.argv[4] ?? 'exec'
const repo = new URL('..', import.meta.url).pathname

const env: Record<string, string> = {}
for (const line of readFileSync(join(repo, '.sandbox', 'env'), 'utf8').split('\n')) {
  const m = /^export (\w+)=(.*)$/.exec(line)
  if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1')
}

const key = randomBytes(32)
const dir = mkdtempSync(join(tmpdir(), 'bench-status-scan-'))
const configPath = join(dir, 'enc.yaml')
writeFileSync(
  configPath,
  `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n              secret: ${key.toString('base64')}\n      - identity: {}\n`,
  {mode: 0o600},
)

/** A ~1 KiB protobuf-shaped Secret, aescbc-encrypted with key1 (docs/kubernetes-behaviour.md §3.2). */
function storedValue(): Buffer {
  const body = Buffer.concat([Buffer.from('6b3873000a0c0a0276311206536563726574', 'hex'), Buffer.from([0x12, 0xe8, 0x07]), randomBytes(1000), Buffer.from('1a002200', 'hex')])
  const iv = randomBytes(16)
  const cipher = createCipheriv('aes-256-cbc', key, iv)
  return Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key1:'), iv, cipher.update(body), cipher.final()])
}

const etcd = new Etcd3({
  hosts: env.ETCDCTL_ENDPOINTS!.split(','),
  credentials: {rootCertificate: readFileSync(env.ETCDCTL_CACERT!), certChain: readFileSync(env.ETCDCTL_CERT!), privateKey: readFileSync(env.ETCDCTL_KEY!)},
})

async function fill(count: number): Promise<void> {
  await etcd.delete().prefix('/registry/secrets/bench/')
  for (let i = 0; i < count; i += 200) {
    await Promise.all(Array.from({length: Math.min(200, count - i)}, (_, j) => etcd.put(`/registry/secrets/bench/s-${String(i + j).padStart(6, '0')}`).value(storedValue())))
  }
}

async function scan(): Promise<{seconds: number; rssMiB: number; values: number}> {
  const args = [join(repo, 'bin', 'run.js'), 'status', '--scan', '--resource', 'secrets', '--no-ssh', '--config', configPath, '-o', 'json', '--etcd-via', transport, '--page-size', '500']
  if (transport === 'direct') args.push('--etcd-endpoints', env.ETCDCTL_ENDPOINTS!, '--etcd-cacert', env.ETCDCTL_CACERT!, '--etcd-cert', env.ETCDCTL_CERT!, '--etcd-key', env.ETCDCTL_KEY!)
  const started = process.hrtime.bigint()
  const result = await run('/usr/bin/time', ['-f', 'MAXRSS_KB=%M', process.execPath, ...args], {env: {...process.env, ...env}, maxBuffer: 64 * 1024 * 1024}).catch((e: {stdout: string; stderr: string}) => e)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const rss = Number(/MAXRSS_KB=(\d+)/.exec(result.stderr)?.[1] ?? 0) / 1024
  const doc = JSON.parse(result.stdout) as {scan?: {keys: number}}
  return {seconds, rssMiB: rss, values: doc.scan?.keys ?? 0}
}

const rows: Array<Array<string | number>> = []
const peaks: number[] = []
for (const count of [small, large]) {
  await fill(count)
  const r = await scan()
  peaks.push(r.rssMiB)
  rows.push([count, transport, r.values, r.seconds.toFixed(1), Math.round(r.values / r.seconds), r.rssMiB.toFixed(0)])
}
await etcd.delete().prefix('/registry/secrets/bench/')
etcd.close()
process.stdout.write(formatTable(['secrets', 'etcd via', 'values scanned', 'seconds', 'values/s', 'peak RSS MiB'], rows) + '\n')
process.stdout.write(`peak RSS ${large} vs ${small}: ${(peaks[1] / peaks[0]).toFixed(2)}x (goal <= 1.5x)\n`)
