// What the rewrite benchmarks share: timing a pipeline of processes with their peak RSS, and the
// seed's key change on every node of a bench sandbox, checked in etcd. Used by bench/rewrite.ts.
import {spawn} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import path from 'node:path'

import type {KubeCluster} from '../src/kube/types.js'
import {
  aescbcConfig,
  ENC_CONFIG,
  MANIFEST,
  type TestKey,
  withEncryptionFlag,
} from '../test/e2e/helpers/encryption-setup.js'

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
