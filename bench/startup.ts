// Startup benchmark (a script, not a timed test): `npm run bench:startup [-- --runs N]`.
//
// Runs each command N times, round-robin in the same run so machine noise hits all of them alike,
// and prints median / p90 wall time and the ratio to a baseline:
//   - the npm install path (`node bin/run.cjs --help|--version`, package.json's bin) against
//     `node -e 0` (issue 18's goal: median at most 2×; issue 2's was 2.5×);
//   - the packaged binary through kubectl (`kubectl encryption --help`, a `kubectl-encryption`
//     on PATH as krew installs it) against `kubectl version --client` (issue 18: at most 2×; issue 7: 3×),
//     when `npm run package` has built the binary for this machine; with the two parts of it that
//     are not the plugin's: the executable's node starting empty (`node 22.x -e 0`) and kubectl
//     dispatching to a plugin that does nothing (`kubectl true`, /bin/true).
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {hostPlatform, NODE_VERSION} from '../scripts/platforms.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const runsArg = process.argv.indexOf('--runs')
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20
const warmup = 2

interface Case {
  name: string
  cmd: string
  args: string[]
  env?: NodeJS.ProcessEnv
  /** Name of the case this one is compared with. */
  baseline?: string
  goal?: number
}

const cases: Case[] = [
  {name: 'node -e 0', cmd: process.execPath, args: ['-e', '0']},
  {
    name: 'bin/run.cjs --help',
    cmd: process.execPath,
    args: [join(root, 'bin/run.cjs'), '--help'],
    baseline: 'node -e 0',
    goal: 2,
  },
  {
    name: 'bin/run.cjs --version',
    cmd: process.execPath,
    args: [join(root, 'bin/run.cjs'), '--version'],
    baseline: 'node -e 0',
    goal: 2,
  },
]

// --also DIR[,DIR]: other builds' `bin/run.js --help` in the same run (e.g. a copy of an older build's
// bin/, dist/, package.json and oclif.manifest.json), to compare before and after under the same load;
// and their packaged executable, when DIR/build has one (below).
const alsoArg = process.argv.indexOf('--also')
for (const dir of alsoArg > 0 ? process.argv[alsoArg + 1]!.split(',') : []) {
  const bin = existsSync(join(dir, 'bin/run.cjs')) ? 'bin/run.cjs' : 'bin/run.js'
  cases.push({
    name: `${dir}: ${bin} --help`,
    cmd: process.execPath,
    args: [join(dir, bin), '--help'],
    baseline: 'node -e 0',
  })
}

const host = hostPlatform()
const packaged = host && join(root, 'build', `kubectl-encryption-${host.os}-${host.arch}`, 'kubectl-encryption')
let binDir: string | undefined
const alsoDirs: string[] = []
if (packaged && existsSync(packaged) && which('kubectl')) {
  // As krew installs it: a symlink named kubectl-encryption in a bin dir on PATH.
  binDir = mkdtempSync(join(tmpdir(), 'bench-startup-'))
  symlinkSync(packaged, join(binDir, 'kubectl-encryption'))
  // kubectl's own part of `kubectl encryption`: finding a plugin on PATH and exec'ing it, with a
  // plugin that does nothing (/bin/true).
  symlinkSync('/bin/true', join(binDir, 'kubectl-true'))
  const env = {...process.env, PATH: `${binDir}${delimiter}${process.env.PATH}`}
  // The node inside the executable (scripts/package.ts keeps the official binary in build/.node).
  const node = join(root, 'build', '.node', `${host.nodePackage}-${NODE_VERSION}`, host.nodePathInTarball)
  const nodeName = `node ${NODE_VERSION} -e 0`
  if (existsSync(node)) cases.push({name: nodeName, cmd: node, args: ['-e', '0']})
  cases.push(
    {name: 'kubectl version --client', cmd: 'kubectl', args: ['version', '--client'], env},
    {name: 'kubectl true (/bin/true)', cmd: 'kubectl', args: ['true'], env, baseline: 'kubectl version --client'},
    {name: 'packaged --help', cmd: packaged, args: ['--help'], baseline: existsSync(node) ? nodeName : 'node -e 0'},
    {
      name: 'kubectl encryption --help',
      cmd: 'kubectl',
      args: ['encryption', '--help'],
      env,
      baseline: 'kubectl version --client',
      goal: 2,
    },
    {
      name: 'kubectl encryption --version',
      cmd: 'kubectl',
      args: ['encryption', '--version'],
      env,
      baseline: 'kubectl version --client',
      goal: 2,
    },
  )
  // --also DIR: an older build's packaged executable too (DIR/build/kubectl-encryption-<os>-<arch>/).
  for (const dir of alsoArg > 0 ? process.argv[alsoArg + 1]!.split(',') : []) {
    const older = join(dir, 'build', `kubectl-encryption-${host.os}-${host.arch}`, 'kubectl-encryption')
    if (!existsSync(older)) continue
    const olderBin = mkdtempSync(join(tmpdir(), 'bench-startup-'))
    symlinkSync(older, join(olderBin, 'kubectl-encryption'))
    alsoDirs.push(olderBin)
    cases.push(
      {
        name: `${dir}: packaged --help`,
        cmd: older,
        args: ['--help'],
        baseline: existsSync(node) ? nodeName : 'node -e 0',
      },
      {
        name: `${dir}: kubectl encryption --help`,
        cmd: 'kubectl',
        args: ['encryption', '--help'],
        env: {...process.env, PATH: `${olderBin}${delimiter}${process.env.PATH}`},
        baseline: 'kubectl version --client',
      },
    )
  }
} else {
  console.log('(no packaged binary for this machine in build/: run `npm run package` to include the kubectl rows)')
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], {stdio: 'ignore'}).status === 0
}

function once(c: Case): number {
  const start = process.hrtime.bigint()
  const result = spawnSync(c.cmd, c.args, {env: c.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe']})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (result.status !== 0) throw new Error(`${c.name} exited ${result.status}: ${result.stderr}`)
  return ms
}

const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]))
for (let i = 0; i < warmup + runs; i++) {
  for (const c of cases) {
    const ms = once(c)
    if (i >= warmup) samples.get(c.name)!.push(ms)
  }
}
for (const dir of [binDir, ...alsoDirs]) if (dir) rmSync(dir, {recursive: true, force: true})

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo)
}

const rows = cases.map((c) => {
  const values = samples.get(c.name)!
  const median = quantile(values, 0.5)
  const base = c.baseline ? quantile(samples.get(c.baseline)!, 0.5) : undefined
  const ratio = base ? median / base : undefined
  return {
    command: c.name,
    median: median.toFixed(1),
    p90: quantile(values, 0.9).toFixed(1),
    ratio: ratio ? `${ratio.toFixed(2)}× ${c.baseline}` : '',
    goal: c.goal && ratio ? `${ratio <= c.goal ? 'ok' : 'MISSED'} (≤ ${c.goal}×)` : '',
  }
})

const headers = ['command', 'median ms', 'p90 ms', 'ratio (median)', 'goal'] as const
const table = [headers as readonly string[], ...rows.map((r) => [r.command, r.median, r.p90, r.ratio, r.goal])]
const widths = headers.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
const {loadavg} = await import('node:os')
console.log(
  `startup: ${runs} runs each (+${warmup} warm-up), ${process.version} ${process.platform}-${process.arch}, ${new Date().toISOString()}, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
)
for (const row of table)
  console.log(
    row
      .map((cell, i) => (i === 1 || i === 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  )
