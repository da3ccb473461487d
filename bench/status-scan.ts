/**
 * `kubectl encryption status --scan` over N ~1 KiB aescbc Secrets in the sandbox's etcd, through the
 * built plugin, over each etcd transport (direct gRPC, etcdctl through pods/exec, etcdctl over SSH)
 * in one run: wall seconds and values/s of the whole command, its CPU seconds (user+sys), and peak
 * RSS (VmHWM via /usr/bin/time). The Secrets are written straight into etcd (aescbc, as an apiserver
 * would store them with the config below) to keep set-up short; the scan reads them as any cluster's.
 * Every run's counts must equal every other's at the same size (the table says so). Prints a table;
 * not a timed test.
 *
 *   npm run sandbox -- --state-dir .sandbox-bench --detach
 *   npx tsx bench/status-scan.ts [--state-dir .sandbox-bench] [--sizes 5000,50000]
 *       [--transports direct,exec,ssh] [--builds .,/tmp/old-build] [--repeat 1] [--cpu-prof DIR]
 *
 * --builds: package roots to run (`<root>/bin/run.js`), e.g. a copy of an older build's bin/, dist/,
 * package.json and oclif.manifest.json, so that before and after are measured in the same run.
 */
import {execFile, execFileSync} from 'node:child_process'
import {createCipheriv, randomBytes} from 'node:crypto'
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {basename, join, resolve} from 'node:path'
import {promisify} from 'node:util'

import {Etcd3} from 'etcd3'

import {formatTable} from '../src/output/render.js'

const run = promisify(execFile)
const repo = new URL('..', import.meta.url).pathname
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1]! : fallback
}
const stateDir = resolve(arg('state-dir', process.env.SANDBOX_STATE_DIR ?? join(repo, '.sandbox')))
const sizes = arg('sizes', '5000,50000').split(',').map(Number)
const transports = arg('transports', 'direct,exec,ssh').split(',')
const builds = arg('builds', repo)
  .split(',')
  .map((b) => resolve(b))
const repeat = Number(arg('repeat', '1'))
const cpuProf = process.argv.includes('--cpu-prof') ? resolve(arg('cpu-prof', 'cpu-prof')) : undefined

const env: Record<string, string> = {}
for (const line of readFileSync(join(stateDir, 'env'), 'utf8').split('\n')) {
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
  const body = Buffer.concat([
    Buffer.from('6b3873000a0c0a0276311206536563726574', 'hex'),
    Buffer.from([0x12, 0xe8, 0x07]),
    randomBytes(1000),
    Buffer.from('1a002200', 'hex'),
  ])
  const iv = randomBytes(16)
  const cipher = createCipheriv('aes-256-cbc', key, iv)
  return Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key1:'), iv, cipher.update(body), cipher.final()])
}

const etcd = new Etcd3({
  hosts: env.ETCDCTL_ENDPOINTS!.split(','),
  credentials: {
    rootCertificate: readFileSync(env.ETCDCTL_CACERT!),
    certChain: readFileSync(env.ETCDCTL_CERT!),
    privateKey: readFileSync(env.ETCDCTL_KEY!),
  },
})

const PREFIX = '/registry/secrets/bench/'
let filled = 0
/** Grows the bench Secrets to `count` (sizes run in increasing order). */
async function fill(count: number): Promise<void> {
  if (filled === 0 || count < filled) {
    await etcd.delete().prefix(PREFIX)
    filled = 0
  }
  for (let i = filled; i < count; i += 500) {
    await Promise.all(
      Array.from({length: Math.min(500, count - i)}, (_, j) =>
        etcd.put(`${PREFIX}s-${String(i + j).padStart(6, '0')}`).value(storedValue()),
      ),
    )
  }
  filled = count
}

interface Scan {
  seconds: number
  cpuSeconds: number
  rssMiB: number
  values: number
  counts: string
  load: string
}

async function scan(build: string, transport: string, label: string): Promise<Scan> {
  const args = [
    join(build, 'bin', 'run.js'),
    'status',
    '--scan',
    '--resource',
    'secrets',
    '--no-ssh',
    '--config',
    configPath,
    '-o',
    'json',
    '--etcd-via',
    transport,
    '--page-size',
    '500',
  ]
  if (transport === 'direct')
    args.push(
      '--etcd-endpoints',
      env.ETCDCTL_ENDPOINTS!,
      '--etcd-cacert',
      env.ETCDCTL_CACERT!,
      '--etcd-cert',
      env.ETCDCTL_CERT!,
      '--etcd-key',
      env.ETCDCTL_KEY!,
    )
  if (transport === 'ssh') args.push('--ssh-config', env.SANDBOX_SSH_CONFIG!)
  const nodeArgs: string[] = []
  if (cpuProf) {
    mkdirSync(cpuProf, {recursive: true})
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', `${label}.cpuprofile`)
  }
  const load1 = loadavg()[0]
  const started = process.hrtime.bigint()
  const result = await run('/usr/bin/time', ['-f', 'MAXRSS_KB=%M CPU=%U+%S', process.execPath, ...nodeArgs, ...args], {
    env: {...process.env, ...env},
    maxBuffer: 64 * 1024 * 1024,
  }).catch((e: {stdout: string; stderr: string}) => e)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const rss = Number(/MAXRSS_KB=(\d+)/.exec(result.stderr)?.[1] ?? 0) / 1024
  const cpu = /CPU=([\d.]+)\+([\d.]+)/.exec(result.stderr)
  let doc: {scan?: {keys: number; resources: unknown; totals: unknown}}
  try {
    doc = JSON.parse(result.stdout)
  } catch {
    throw new Error(`${label}: no JSON on stdout; stderr: ${result.stderr}`)
  }
  return {
    seconds,
    cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN,
    rssMiB: rss,
    values: doc.scan?.keys ?? 0,
    counts: JSON.stringify([doc.scan?.resources, doc.scan?.totals]),
    load: `${load1.toFixed(1)}→${loadavg()[0].toFixed(1)}`,
  }
}

const commit = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], {encoding: 'utf8'}).trim()
const dirty = execFileSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no'], {
  encoding: 'utf8',
}).trim()
  ? '+dirty'
  : ''
const buildName = (b: string) => (b === resolve(repo) ? `${commit}${dirty}` : basename(b))
process.stdout.write(
  `status --scan bench, ${new Date().toISOString()}, ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}\n`,
)

const rows: Array<Array<string | number>> = []
const peaks = new Map<string, number[]>()
const countsBySize = new Map<number, Set<string>>()
for (const count of sizes) {
  await fill(count)
  for (let r = 0; r < repeat; r++) {
    for (const transport of transports) {
      for (const build of builds) {
        const label = `${buildName(build)}-${transport}-${count}-${r}`
        const s = await scan(build, transport, label)
        const id = `${buildName(build)} ${transport}`
        peaks.set(id, [...(peaks.get(id) ?? []), s.rssMiB])
        const seen = countsBySize.get(count) ?? new Set()
        seen.add(s.counts)
        countsBySize.set(count, seen)
        rows.push([
          count,
          buildName(build),
          transport,
          s.values,
          s.seconds.toFixed(2),
          Math.round(s.values / s.seconds),
          s.cpuSeconds.toFixed(2),
          Math.round(s.values / s.cpuSeconds),
          s.rssMiB.toFixed(0),
          s.load,
        ])
        process.stderr.write(`${rows.at(-1)!.join(' | ')}\n`)
      }
    }
  }
}
await etcd.delete().prefix(PREFIX)
etcd.close()
const headers = [
  'secrets',
  'build',
  'etcd via',
  'values scanned',
  'seconds',
  'values/s',
  'CPU s',
  'values/CPU-s',
  'peak RSS MiB',
  'load 1m',
]
process.stdout.write(formatTable(headers, rows) + '\n\n')
// The same rows as markdown, for bench/README.md.
process.stdout.write(
  [headers, headers.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n') + '\n\n',
)
for (const [id, list] of peaks) {
  const small = list.slice(0, repeat)
  const large = list.slice(-repeat)
  const max = (xs: number[]) => Math.max(...xs)
  process.stdout.write(
    `peak RSS ${sizes.at(-1)} vs ${sizes[0]}, ${id}: ${(max(large) / max(small)).toFixed(2)}x (goal <= 1.2x)\n`,
  )
}
for (const [count, seen] of countsBySize)
  process.stdout.write(
    `counts at ${count}: ${seen.size === 1 ? 'identical in every run' : `DIFFER (${seen.size} variants)`}\n`,
  )
