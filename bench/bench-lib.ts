// What the rewrite benchmarks share: timing a pipeline of processes with their peak RSS, and the
// seed's key change on every node of a bench sandbox, checked in etcd. Used by bench/rewrite.ts.
import {execFile, execFileSync, spawn} from 'node:child_process'
import {createCipheriv, randomBytes} from 'node:crypto'
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import {Etcd3} from 'etcd3'

import type {ApiResource, KubeCluster} from '../src/kube/types.js'
import {
  aescbcConfig,
  ENC_CONFIG,
  MANIFEST,
  type TestKey,
  withEncryptionFlag,
} from '../test/e2e/helpers/encryption-setup.js'
import {etcdFlags} from '../test/sandbox/etcd-flags.js'

export interface Measured {
  seconds: number
  /** 1-minute load average before and after */
  load: string
  peakRssMiB: number
  /** user+sys CPU seconds of all processes (last reading, polled every 20 ms until each exits) */
  cpuSeconds: number
  code: number | null
  stdout: string
  stderr: string
}

/** user+sys CPU seconds of a process so far (/proc/<pid>/stat utime+stime, at 100 ticks/s); 0 once gone. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the fields after the command name, which may hold spaces: 14 utime and 15 stime are [11], [12]
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / 100
  } catch {
    return 0
  }
}

/**
 * CPU seconds so far of a sandbox's servers, all on this machine: its kube-apiservers by their
 * --advertise-address (a node's IP), its etcd by its command line naming the state dir.
 */
export function serverCpu(sandbox: {stateDir: string; nodeIps: string[]}): {apiservers: number; etcd: number} {
  const stateDir = sandbox.stateDir
  const apiserverFlags = sandbox.nodeIps.map((ip) => `--advertise-address=${ip}\0`)
  const out = {apiservers: 0, etcd: 0}
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch {
      continue
    }
    const exe = path.basename(cmdline.split('\0')[0] ?? '')
    if (exe === 'kube-apiserver' && apiserverFlags.some((f) => cmdline.includes(f)))
      out.apiservers += cpuSeconds(Number(pid))
    else if (exe === 'etcd' && cmdline.includes(stateDir)) out.etcd += cpuSeconds(Number(pid))
  }
  return out
}

/**
 * CPU time of the whole machine so far, all cores, in ticks (/proc/stat): `busy` is everything but
 * idle and iowait. Over a run, busy / total says how much of the machine was left.
 */
export function machineCpuTicks(): {busy: number; total: number} {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number) as number[]
  const busy = user! + nice! + system! + irq! + softirq! + (steal ?? 0)
  return {busy, total: busy + idle! + iowait!}
}

/**
 * The servers' CPU rate (seconds per second) over `ms` with no bench work running: the sandbox's own
 * background (readiness probes, leases, node status, controllers' lists), which every run pays for
 * as long as it lasts. Subtracted, a slower run is not charged more per object for it.
 */
export async function quietServerRate(
  sandbox: {stateDir: string; nodeIps: string[]},
  ms = 5000,
): Promise<{apiservers: number; etcd: number}> {
  const before = serverCpu(sandbox)
  const start = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const after = serverCpu(sandbox)
  const seconds = (performance.now() - start) / 1000
  return {apiservers: (after.apiservers - before.apiservers) / seconds, etcd: (after.etcd - before.etcd) / seconds}
}

/**
 * Requests the sandbox's apiservers have served on `resource`, per verb (apiserver_request_total,
 * summed over the apiservers, each read at its own address): the difference over a run shows what
 * a rewriter asked besides its updates.
 */
export async function requestsOn(
  env: NodeJS.ProcessEnv,
  nodeIps: string[],
  resource: string,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for (const ip of nodeIps) {
    const metrics = await sh(env, 'kubectl', ['--server', `https://${ip}:6443`, 'get', '--raw', '/metrics'])
    for (const line of metrics.split('\n')) {
      if (!line.startsWith('apiserver_request_total{') || !line.includes(`resource="${resource}"`)) continue
      const verb = /verb="([^"]*)"/.exec(line)?.[1] ?? '?'
      counts.set(verb, (counts.get(verb) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)))
    }
  }
  return counts
}

/** `after` less `before`, as "PUT 2000, LIST 5" (verbs with none left out). */
export function requestsBetween(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .map(([verb, n]) => [verb, n - (before.get(verb) ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([verb, n]) => `${verb} ${n}`)
    .join(', ')
}

export function peak(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : 0
  } catch {
    return 0
  }
}

/** Runs a pipeline of processes (stdout -> stdin) and measures wall time and each one's peak RSS. */
export async function measure(
  commands: Array<[string, string[]]>,
  env: NodeJS.ProcessEnv,
  timeoutSeconds = 0,
): Promise<Measured & {peaks: number[]; stopped: boolean; firstOutput?: number}> {
  const loadBefore = loadavg()[0]!
  const started = performance.now()
  const children = commands.map(([cmd, args]) => spawn(cmd, args, {env, stdio: ['pipe', 'pipe', 'pipe']}))
  for (let i = 0; i + 1 < children.length; i++) children[i]!.stdout!.pipe(children[i + 1]!.stdin!)
  children[0]!.stdin!.end()
  const peaks = children.map(() => 0)
  const cpus = children.map(() => 0)
  const poll = setInterval(() => {
    for (const [i, c] of children.entries()) {
      peaks[i] = Math.max(peaks[i]!, peak(c.pid))
      cpus[i] = Math.max(cpus[i]!, cpuSeconds(c.pid))
    }
  }, 20)
  let stderr = ''
  let stdout = ''
  let stopped = false
  const timer =
    timeoutSeconds > 0
      ? setTimeout(() => {
          stopped = true
          for (const c of children) c.kill('SIGTERM')
        }, timeoutSeconds * 1000)
      : undefined
  for (const c of children) c.stderr!.on('data', (d) => (stderr += d))
  let firstOutput: number | undefined
  children.at(-1)!.stdout!.on('data', (d) => {
    firstOutput ??= (performance.now() - started) / 1000
    stdout += d
  })
  const codes = await Promise.all(
    children.map(
      (c) =>
        new Promise<number | null>((resolve) =>
          c.on('exit', (code) => {
            peaks[children.indexOf(c)] = Math.max(peaks[children.indexOf(c)]!, peak(c.pid))
            resolve(code)
          }),
        ),
    ),
  )
  clearInterval(poll)
  clearTimeout(timer)
  const load = `${loadBefore.toFixed(1)}→${loadavg()[0]!.toFixed(1)}`
  return {
    firstOutput,
    stopped,
    load,
    seconds: (performance.now() - started) / 1000,
    peakRssMiB: Math.max(...peaks),
    peaks,
    cpuSeconds: cpus.reduce((a, b) => a + b, 0),
    code: codes.find((c) => c !== 0) ?? 0,
    stdout,
    stderr,
  }
}

export function sh(env: NodeJS.ProcessEnv, cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {env})
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`)),
    )
    child.stdin.end(input ?? '')
  })
}

/**
 * The seed's procedure on a bench sandbox: `setKeys` writes the config on each node, restarts its
 * API server and waits until it is ready; `countUnder` counts the bench Secrets (namespaces
 * `bench-*`) in etcd and those under `key`.
 */
export function benchControlPlane(sandbox: {nodes: string[]}, env: NodeJS.ProcessEnv, cluster: KubeCluster) {
  const ssh = (node: string, command: string, input?: string) =>
    sh(env, 'ssh', ['-F', env.SANDBOX_SSH_CONFIG!, node, command], input)
  const writeNode = (node: string, file: string, content: string) => {
    const tmp = `${path.dirname(file)}/.${path.basename(file)}.tmp`
    return ssh(
      node,
      `sudo -n sh -c 'mkdir -p ${path.dirname(file)} && cat > ${tmp} && chmod 0600 ${tmp} && mv ${tmp} ${file}'`,
      content,
    )
  }
  const hash = async (node: string) => {
    const pod = await cluster.objects.get(
      {group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true},
      `kube-apiserver-${node}`,
      'kube-system',
    )
    const ready = ((pod.status as {conditions?: Array<{type: string; status: string}>})?.conditions ?? []).some(
      (c) => c.type === 'Ready' && c.status === 'True',
    )
    return {hash: pod.metadata.annotations?.['kubernetes.io/config.hash'], ready}
  }
  /** The seed's procedure, node by node: write the config, restart the API server, wait until ready. */
  async function setKeys(keys: TestKey[]) {
    for (const node of sandbox.nodes) {
      const before = (await hash(node)).hash
      await writeNode(node, ENC_CONFIG, aescbcConfig(keys))
      const manifest = await ssh(node, `sudo -n cat ${MANIFEST}`)
      await writeNode(
        node,
        MANIFEST,
        manifest.includes('--encryption-provider-config=')
          ? manifest.replace(/^# restarted .*\n/m, '') + `# restarted ${Date.now()}\n`
          : withEncryptionFlag(manifest),
      )
      for (const deadline = Date.now() + 120_000; ; ) {
        const now = await hash(node).catch(() => undefined)
        if (now && now.hash !== before && now.ready) break
        if (Date.now() > deadline) throw new Error(`${node} did not come back`)
        await new Promise((r) => setTimeout(r, 300))
      }
    }
  }
  async function countUnder(key: string): Promise<{total: number; current: number}> {
    const keys = (await sh(env, 'etcdctl', ['get', '--prefix', '/registry/secrets/', '--keys-only']))
      .split('\n')
      .filter((l) => l.startsWith('/registry/secrets/bench-'))
    let current = 0
    // values in pages: etcdctl json, base64 values; only the 30-byte prefix matters
    const out = JSON.parse(await sh(env, 'etcdctl', ['get', '--prefix', '/registry/secrets/bench-', '-w', 'json'])) as {
      kvs?: Array<{value: string}>
    }
    for (const kv of out.kvs ?? [])
      if (Buffer.from(kv.value, 'base64').subarray(0, 30).toString('latin1').startsWith(`k8s:enc:aescbc:v1:${key}:`))
        current++
    return {total: keys.length, current}
  }

  return {setKeys, countUnder}
}

export function printTable(rows: string[][]) {
  const headers = [
    'secrets',
    'method',
    'seconds',
    'objects/s',
    'peak RSS MiB',
    'under new key',
    'CPU ms/object',
    'apiservers ms/object',
    'etcd ms/object',
    'less quiet rate: apiservers / etcd',
    'load 1m',
    'note',
  ]
  const all = [headers, ...rows]
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  process.stdout.write(
    '\n' +
      all
        .map((r) =>
          r
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd(),
        )
        .join('\n') +
      '\n',
  )
}

const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}

/**
 * Grows the bench Secrets written through the API server from `from` to `to`: ~1 KiB each (700 random
 * bytes, base64) in `namespaces` namespaces `bench-<n>`, 32 requests in flight. bench/rewrite.ts and
 * bench/kms-scan.ts.
 */
export async function seedSecrets(cluster: KubeCluster, from: number, to: number, namespaces: number): Promise<void> {
  for (let n = 0; n < namespaces && from === 0; n++)
    await cluster.objects
      .create(NAMESPACES, {apiVersion: 'v1', kind: 'Namespace', metadata: {name: `bench-${n}`}})
      .catch(() => undefined)
  let next = from
  await Promise.all(
    Array.from({length: 32}, async () => {
      while (next < to) {
        const i = next++
        await cluster.objects.create(SECRETS, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {name: `s-${String(i).padStart(6, '0')}`, namespace: `bench-${i % namespaces}`},
          data: {pad: randomBytes(700).toString('base64')},
        })
      }
    }),
  )
}

/** One `status --scan` run of a build: wall and CPU seconds, peak RSS, values scanned, its counts. */
export interface ScanRun {
  seconds: number
  cpuSeconds: number
  rssMiB: number
  values: number
  /** resources and totals as JSON: runs over the same data must agree */
  counts: string
  load: string
}

/**
 * `<build>/bin/run.js status --scan --resource secrets --no-ssh --config <configPath> -o json` over
 * one etcd transport, under /usr/bin/time (peak RSS = VmHWM, CPU = user+sys). bench/status-scan.ts and
 * bench/kms-scan.ts.
 */
export async function timedScan(options: {
  build: string
  transport: string
  env: Record<string, string | undefined>
  configPath: string
  label: string
  cpuProf?: string
}): Promise<ScanRun> {
  const {build, transport, env} = options
  const args = [
    path.join(build, 'bin', 'run.js'),
    'status',
    '--scan',
    '--resource',
    'secrets',
    '--no-ssh',
    '--config',
    options.configPath,
    '-o',
    'json',
    '--etcd-via',
    transport,
    '--page-size',
    '500',
  ]
  if (transport === 'direct') args.push(...etcdFlags(env))
  if (transport === 'ssh') args.push('--ssh-config', env.SANDBOX_SSH_CONFIG!)
  const nodeArgs: string[] = []
  if (options.cpuProf) {
    mkdirSync(options.cpuProf, {recursive: true})
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', options.cpuProf, '--cpu-prof-name', `${options.label}.cpuprofile`)
  }
  const load1 = loadavg()[0]!
  const started = process.hrtime.bigint()
  const result = await promisify(execFile)(
    '/usr/bin/time',
    ['-f', 'MAXRSS_KB=%M CPU=%U+%S', process.execPath, ...nodeArgs, ...args],
    {env: {...process.env, ...env}, maxBuffer: 64 * 1024 * 1024},
  ).catch((e: {stdout: string; stderr: string}) => e)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const rss = Number(/MAXRSS_KB=(\d+)/.exec(result.stderr)?.[1] ?? 0) / 1024
  const cpu = /CPU=([\d.]+)\+([\d.]+)/.exec(result.stderr)
  let doc: {scan?: {keys: number; resources: unknown; totals: unknown}}
  try {
    doc = JSON.parse(result.stdout)
  } catch {
    throw new Error(`${options.label}: no JSON on stdout; stderr: ${result.stderr}`)
  }
  return {
    seconds,
    cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : Number.NaN,
    rssMiB: rss,
    values: doc.scan?.keys ?? 0,
    counts: JSON.stringify([doc.scan?.resources, doc.scan?.totals]),
    load: `${load1.toFixed(1)}→${loadavg()[0]!.toFixed(1)}`,
  }
}

/** The columns of a scan row after the caller's own leading ones. */
export const SCAN_COLUMNS = [
  'values scanned',
  'seconds',
  'values/s',
  'CPU s',
  'values/CPU-s',
  'peak RSS MiB',
  'load 1m',
]

export const scanCells = (s: ScanRun): Array<string | number> => [
  s.values,
  s.seconds.toFixed(2),
  Math.round(s.values / s.seconds),
  s.cpuSeconds.toFixed(2),
  Math.round(s.values / s.cpuSeconds),
  s.rssMiB.toFixed(0),
  s.load,
]

/** The rows as a markdown table, for bench/README.md. */
export const markdownTable = (headers: string[], rows: Array<Array<string | number>>) =>
  [headers, headers.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n')

/** `<commit>[+dirty]` of the repository at `repo`. */
export function commitOf(repo: string): string {
  const git = (args: string[]) => execFileSync('git', ['-C', repo, ...args], {encoding: 'utf8'}).trim()
  return `${git(['rev-parse', '--short', 'HEAD'])}${git(['status', '--porcelain', '--untracked-files=no']) ? '+dirty' : ''}`
}

/** The sandbox's etcd, with the client certificate its env names. */
export const etcdClient = (env: Record<string, string | undefined>) =>
  new Etcd3({
    hosts: env.ETCDCTL_ENDPOINTS!.split(','),
    credentials: {
      rootCertificate: readFileSync(env.ETCDCTL_CACERT!),
      certChain: readFileSync(env.ETCDCTL_CERT!),
      privateKey: readFileSync(env.ETCDCTL_KEY!),
    },
  })

/**
 * Values to write straight into etcd as an apiserver with an aescbc config would store them, and
 * that config (0600, in `dir`) for `status --scan --config`: set-up without the API server.
 */
export function aescbcScanValues(dir: string): {configPath: string; storedValue: () => Buffer} {
  const key = randomBytes(32)
  const configPath = path.join(dir, 'enc.yaml')
  writeFileSync(
    configPath,
    `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n              secret: ${key.toString('base64')}\n      - identity: {}\n`,
    {mode: 0o600},
  )
  /** A ~1 KiB protobuf-shaped Secret, aescbc-encrypted with key1 (docs/kubernetes-behaviour.md §3.2). */
  const storedValue = () => {
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
  return {configPath, storedValue}
}
