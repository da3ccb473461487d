/**
 * `kubectl encryption status --scan` over N ~1 KiB aescbc Secrets in the sandbox's etcd, through the
 * built plugin, over each etcd transport (direct gRPC, etcdctl through pods/exec, etcdctl over SSH)
 * in one run: wall seconds and values/s of the whole command, its CPU seconds (user+sys), peak
 * RSS (VmHWM via /usr/bin/time), and beside it the CPU seconds of the sandbox's etcd and apiservers
 * and how busy the machine was (all cores, /proc/stat). The Secrets are written straight into etcd
 * (aescbc, as an apiserver would store them with the config below) to keep set-up short; the scan
 * reads them as any cluster's.
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
import {mkdtempSync, readFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {basename, join, resolve} from 'node:path'

import {formatTable} from '../src/output/render.js'
import {
  aescbcScanValues,
  commitOf,
  etcdClient,
  machineCpuTicks,
  markdownTable,
  SCAN_COLUMNS,
  scanCells,
  serverCpu,
  timedScan,
} from './bench-lib.js'

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

const {configPath, storedValue} = aescbcScanValues(mkdtempSync(join(tmpdir(), 'bench-status-scan-')))
const etcd = etcdClient(env)

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

// The sandbox's apiservers are told apart by their node's IP (bench-lib.ts serverCpu).
const layout = JSON.parse(readFileSync(join(stateDir, 'layout.json'), 'utf8')) as {nodes: Array<{ip: string}>}
const servers = {stateDir, nodeIps: layout.nodes.map((n) => n.ip)}

/**
 * One scan, with what the servers spent beside it and how busy the whole machine was: on 2 cores
 * the plugin, etcd and the apiservers share the same CPUs, so a scan slower than its own CPU would
 * allow shows here as a machine with nothing left.
 */
async function scan(build: string, transport: string, label: string) {
  const [machineBefore, serversBefore] = [machineCpuTicks(), serverCpu(servers)]
  const run = await timedScan({build, transport, env, configPath, label, cpuProf})
  const [machineAfter, serversAfter] = [machineCpuTicks(), serverCpu(servers)]
  const busy = (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)
  return {
    run,
    cells: [
      (serversAfter.etcd - serversBefore.etcd).toFixed(2),
      (serversAfter.apiservers - serversBefore.apiservers).toFixed(2),
      `${Math.round(busy * 100)}%`,
    ],
  }
}

const commit = commitOf(repo)
const buildName = (b: string) => (b === resolve(repo) ? commit : basename(b))
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
        const {run: s, cells} = await scan(build, transport, label)
        const id = `${buildName(build)} ${transport}`
        peaks.set(id, [...(peaks.get(id) ?? []), s.rssMiB])
        const seen = countsBySize.get(count) ?? new Set()
        seen.add(s.counts)
        countsBySize.set(count, seen)
        rows.push([count, buildName(build), transport, ...scanCells(s), ...cells])
        process.stderr.write(`${rows.at(-1)!.join(' | ')}\n`)
      }
    }
  }
}
await etcd.delete().prefix(PREFIX)
etcd.close()
const headers = ['secrets', 'build', 'etcd via', ...SCAN_COLUMNS, 'etcd CPU s', 'apiservers CPU s', 'machine busy']
process.stdout.write(formatTable(headers, rows) + '\n\n')
// The same rows as markdown, for bench/README.md.
process.stdout.write(`${markdownTable(headers, rows)}\n\n`)
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
