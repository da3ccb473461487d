// The sandbox's "container runtime": how the kubelet runs a static pod's container on a node.
//   kube-apiserver, kube-controller-manager
//                  -> the real binary of that name (built from the release source, see
//                     ../kube-binaries.ts) with the manifest's arguments, in a nested mount namespace in
//                     which /etc/kubernetes shows only what the pod's volumeMounts mount (a file that is
//                     not mounted cannot be read, as in a real container; Kubernetes issue 53867).
//   etcd           -> the sandbox's one shared etcd process; this container only stands for it.
import {spawn} from 'node:child_process'
import {createWriteStream, existsSync, mkdirSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {createInterface} from 'node:readline'
import type {ContainerSpec, StaticPod} from './static-pod.js'

export interface ContainerExit {
  exitCode: number
  reason: string
  message?: string
}

export interface ContainerProcess {
  readonly pid?: number
  readonly exited: Promise<ContainerExit>
  stop(): Promise<void>
}

/** A failure before the process starts; `reason` is the kubelet's waiting reason. */
export class ContainerCreateError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

export interface RuntimeContext {
  nodeName: string
  /** Where this node's /etc/kubernetes lives on the host (it is bind-mounted at /etc/kubernetes). */
  nodeEtcKubernetes: string
  repoRoot: string
  /** where the real binaries are (KubeBinaries.binDir) */
  binDir: string
  log: (message: string) => void
}

const ETC_K8S = '/etc/kubernetes'
const runnable = new Set(['kube-apiserver', 'kube-controller-manager'])

export function startContainer(
  ctx: RuntimeContext,
  pod: StaticPod,
  container: ContainerSpec,
  restartCount: number,
): ContainerProcess {
  const binary = container.command?.[0] ?? ''
  const name = path.basename(binary)
  if (name === 'etcd') return sharedEtcd()
  if (runnable.has(name)) return startProcess(ctx, pod, container, restartCount, path.join(ctx.binDir, name))
  throw new ContainerCreateError(
    'CreateContainerError',
    `sandbox runtime: no executable for command "${binary}" (only kube-apiserver, kube-controller-manager and etcd static pods run here)`,
  )
}

function sharedEtcd(): ContainerProcess {
  let stop!: () => void
  const exited = new Promise<ContainerExit>((resolve) => (stop = () => resolve({exitCode: 0, reason: 'Completed'})))
  return {exited, stop: async () => stop()}
}

interface Bind {
  source: string
  target: string
  readOnly: boolean
  isFile: boolean
}

/** hostPath type checks as the kubelet does them, then the bind list for the container. */
export function planVolumes(ctx: RuntimeContext, pod: StaticPod, container: ContainerSpec): Bind[] {
  const volumes = new Map((pod.manifest.spec.volumes ?? []).map((v) => [v.name, v]))
  const binds: Bind[] = []
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.get(mount.name)!
    if (!volume.hostPath)
      throw new ContainerCreateError(
        'CreateContainerConfigError',
        `volume "${mount.name}": only hostPath volumes are supported in the sandbox`,
      )
    const hostPath = volume.hostPath.path
    const type = volume.hostPath.type ?? ''
    const exists = existsSync(hostPath)
    const failedMount = (what: string) =>
      new ContainerCreateError(
        'ContainerCreating',
        `MountVolume.SetUp failed for volume "${mount.name}" : hostPath type check failed: ${hostPath} ${what}`,
      )
    switch (type) {
      case 'DirectoryOrCreate':
        if (!exists) mkdirSync(hostPath, {recursive: true, mode: 0o755})
        else if (!statSync(hostPath).isDirectory()) throw failedMount('is not a directory')
        break
      case 'Directory':
        if (!exists || !statSync(hostPath).isDirectory()) throw failedMount('is not a directory')
        break
      case 'FileOrCreate':
        if (!exists) writeFileSync(hostPath, '', {mode: 0o644})
        else if (!statSync(hostPath).isFile()) throw failedMount('is not a file')
        break
      case 'File':
        if (!exists || !statSync(hostPath).isFile()) throw failedMount('is not a file')
        break
      default:
        if (!exists)
          throw new ContainerCreateError(
            'CreateContainerError',
            `failed to create containerd container: failed to mount ${hostPath}: no such file or directory`,
          )
    }
    const source =
      hostPath === ETC_K8S || hostPath.startsWith(`${ETC_K8S}/`)
        ? path.join(ctx.nodeEtcKubernetes, path.relative(ETC_K8S, hostPath))
        : hostPath
    binds.push({
      source,
      target: mount.mountPath,
      readOnly: mount.readOnly === true,
      isFile: statSync(hostPath).isFile(),
    })
  }
  return binds.sort((a, b) => a.target.split('/').length - b.target.split('/').length)
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * The shell run as pid 1 of the nested namespaces: name the host as the node (each apiserver then has
 * its own identity lease, apiserver-<hash of hostname>, as on separate machines), hide
 * /etc/kubernetes, mount the volumes, exec.
 */
export function containerScript(binds: Bind[], hostname: string): string {
  const lines = [
    'set -e',
    `hostname ${q(hostname)}`,
    `mount -t tmpfs -o mode=0755,size=16m container-etc-kubernetes ${ETC_K8S}`,
  ]
  for (const b of binds) {
    // Paths outside /etc/kubernetes are the host's own; a same-path mount changes nothing there.
    if (b.source === b.target && !(b.target === ETC_K8S || b.target.startsWith(`${ETC_K8S}/`))) continue
    lines.push(b.isFile ? `mkdir -p ${q(path.dirname(b.target))} && touch ${q(b.target)}` : `mkdir -p ${q(b.target)}`)
    lines.push(`mount --bind ${q(b.source)} ${q(b.target)}`)
    if (b.readOnly) lines.push(`mount -o remount,bind,ro ${q(b.target)}`)
  }
  lines.push('exec "$@"')
  return lines.join('\n')
}

function startProcess(
  ctx: RuntimeContext,
  pod: StaticPod,
  container: ContainerSpec,
  restartCount: number,
  executable: string,
): ContainerProcess {
  if (!existsSync(executable))
    throw new ContainerCreateError(
      'CreateContainerError',
      `executable ${executable} not found (the sandbox builds it at start)`,
    )
  const binds = planVolumes(ctx, pod, container)
  const args = [...(container.command ?? []).slice(1), ...(container.args ?? [])]
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
  }
  for (const e of container.env ?? []) env[e.name] = e.value ?? ''
  const logPath = path.join(
    '/var/log/pods',
    `${pod.namespace}_${pod.mirrorName}_${pod.hash}`,
    container.name,
    `${restartCount}.log`,
  )
  mkdirSync(path.dirname(logPath), {recursive: true})
  const log = createWriteStream(logPath, {flags: 'a', mode: 0o640})
  const child = spawn(
    'unshare',
    [
      '--mount',
      '--uts',
      '--propagation',
      'private',
      'sh',
      '-c',
      containerScript(binds, ctx.nodeName),
      'container',
      executable,
      ...args,
    ],
    {cwd: ctx.repoRoot, env, stdio: ['ignore', 'pipe', 'pipe']},
  )
  const tail: string[] = []
  for (const [stream, name] of [
    [child.stdout!, 'stdout'],
    [child.stderr!, 'stderr'],
  ] as const) {
    createInterface({input: stream}).on('line', (line) => {
      // CRI log format, as containerd writes /var/log/pods/...
      log.write(`${new Date().toISOString()} ${name} F ${line}\n`)
      tail.push(line)
      if (tail.length > 80) tail.shift()
    })
  }
  const exited = new Promise<ContainerExit>((resolve) => {
    child.once('error', (error) => resolve({exitCode: 128, reason: 'StartError', message: error.message}))
    // 'close' comes after the process exited and its output was read: the container's last words are
    // in its log file before its exit is reported (a test reading the log after a crash finds them).
    child.once('close', (code, signal) => {
      const exitCode = code ?? (signal === 'SIGKILL' ? 137 : 143)
      const message =
        container.terminationMessagePolicy === 'FallbackToLogsOnError' && exitCode !== 0
          ? tail.join('\n').slice(-2048)
          : undefined
      log.end(() => resolve({exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', message}))
    })
  })
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  return {pid: child.pid, exited, stop}
}
