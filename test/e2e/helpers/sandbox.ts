// Helpers for end-to-end tests against the shared sandbox: the real kubectl, ssh and etcdctl with
// the sandbox's environment. Everything runs as a child process; nothing is mocked.
import {probeHttp} from '../../sandbox/api-client.js'
import {spawn} from 'node:child_process'
import {inject} from 'vitest'
import type {SandboxInfo} from '../global-setup.js'

export function sandbox(): SandboxInfo {
  return inject('sandbox')
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export function run(
  command: string,
  args: string[],
  options: {input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number} = {},
): Promise<RunResult> {
  const env = {...process.env, ...sandbox().env, ...options.env}
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {env, stdio: ['pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      })
    })
    // A command that exits without reading its input (etcdctl get) closes the pipe: EPIPE here is
    // not a failure, its exit code says what happened.
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}

/** Raw stdout bytes (for hexdump-style checks). */
export function runBytes(command: string, args: string[]): Promise<Buffer> {
  const env = {...process.env, ...sandbox().env}
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => (err += c))
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err}`)),
    )
  })
}

export async function ok(command: string, args: string[], options?: Parameters<typeof run>[2]): Promise<string> {
  const r = await run(command, args, options)
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

export const kubectl = (args: string[], options?: Parameters<typeof run>[2]) => run('kubectl', args, options)

/** kubectl against one node's API server instead of the load balancer. */
export const kubectlOnNode = (node: string, args: string[], options?: Parameters<typeof run>[2]) =>
  run('kubectl', [`--server=https://${sandbox().nodeIps[node]}:6443`, ...args], options)

/** Runs a shell command on a node over real ssh with the generated client config. */
export const ssh = (node: string, command: string, input?: string) =>
  run('ssh', ['-F', sandbox().env.SANDBOX_SSH_CONFIG!, node, command], {input})

export async function sshOk(node: string, command: string, input?: string): Promise<string> {
  const r = await ssh(node, command, input)
  if (r.code !== 0) throw new Error(`ssh ${node} ${command} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

/** Writes a root-owned file on a node atomically (dot-temp beside it, then rename), content over stdin. */
export async function writeNodeFile(node: string, file: string, content: string, mode = '0600'): Promise<void> {
  const dir = file.slice(0, file.lastIndexOf('/'))
  const tmp = `${dir}/.${file.slice(dir.length + 1)}.tmp`
  await sshOk(
    node,
    `sudo -n sh -c 'mkdir -p ${dir} && cat > ${tmp} && chmod ${mode} ${tmp} && mv ${tmp} ${file}'`,
    content,
  )
}

export const readNodeFile = (node: string, file: string) => sshOk(node, `sudo -n cat ${file}`)

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v) return v
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      )
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export interface MirrorPod {
  metadata: {name: string; annotations: Record<string, string>; labels: Record<string, string>}
  spec: {nodeName: string; containers: Array<{command: string[]}>}
  status: {
    phase: string
    conditions?: Array<{type: string; status: string}>
    containerStatuses?: Array<{ready: boolean; restartCount: number; state: Record<string, {reason?: string}>}>
  }
}

export async function mirrorPod(name: string): Promise<MirrorPod | undefined> {
  const r = await kubectl(['get', 'pod', '-n', 'kube-system', name, '-o', 'json'])
  return r.code === 0 ? (JSON.parse(r.stdout) as MirrorPod) : undefined
}

export const isReady = (pod: MirrorPod | undefined) =>
  pod?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true

/** Waits until the node's kube-apiserver mirror pod shows a config hash other than `oldHash` and is Ready. */
/**
 * Waits until the node's kube-apiserver runs with a new config hash and is Ready, or, with
 * `until: 'serving'`, answers /livez (an API server that cannot fill its caches, e.g. because a
 * stored Secret is unreadable with its config, serves requests but never becomes Ready).
 */
export async function waitForApiserverRestart(
  node: string,
  oldHash: string,
  timeoutMs = 90_000,
  until: 'ready' | 'serving' = 'ready',
): Promise<MirrorPod> {
  return waitFor(
    `kube-apiserver-${node} to restart with a new config hash and ${until === 'ready' ? 'become ready' : 'answer /livez'}`,
    async () => {
      const pod = await mirrorPod(`kube-apiserver-${node}`)
      if (!pod || pod.metadata.annotations['kubernetes.io/config.hash'] === oldHash) return undefined
      if (until === 'ready') return isReady(pod) ? pod : undefined
      return (await probeHttp(`https://${sandbox().nodeIps[node]}:6443/livez`, 2000)).ok ? pod : undefined
    },
    timeoutMs,
  )
}
