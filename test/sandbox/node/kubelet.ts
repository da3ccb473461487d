// The sandbox kubelet: one per node, inside the node's mount namespace. Like the real kubelet it
// runs every file in /etc/kubernetes/manifests whose name does not start with a dot, restarts a
// static pod when its file changes (new config hash), crash-loops failed containers with backoff
// (10 s doubling, capped), probes readiness as the manifest says, registers its Node and reports
// mirror pods through the API with a node client certificate (system:node:<name>).
import {randomBytes} from 'node:crypto'
import {existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {isStatus, probeHttp, type SandboxApiClient} from '../api-client.js'
import {
  ContainerCreateError,
  startContainer,
  type ContainerExit,
  type ContainerProcess,
  type RuntimeContext,
} from './containers.js'
import {defaultedSpec, readStaticPod, type ContainerSpec, type Probe, type StaticPod} from './static-pod.js'

export interface KubeletOptions extends RuntimeContext {
  nodeIp: string
  manifestsDir: string
  /** the pods of this node and their containers, for the exec endpoint: {"<ns>/<pod>": ["<container>"]} */
  podsFile: string
  api: SandboxApiClient
  /** crashLoopBackOff.maxContainerRestartPeriod (kubelet config, 1.32): default 300 s */
  maxBackoffMs: number
  kubeletVersion: string
}

interface MirrorPod {
  metadata: {
    name: string
    namespace: string
    uid: string
    deletionTimestamp?: string
    annotations?: Record<string, string>
  }
  spec: {nodeName?: string}
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type ContainerState =
  | {waiting: {reason: string; message?: string}}
  | {running: {startedAt: string}}
  | {
      terminated: {
        exitCode: number
        reason: string
        message?: string
        startedAt: string
        finishedAt: string
        containerID?: string
      }
    }

class PodWorker {
  readonly container: ContainerSpec
  restartCount = 0
  private proc?: ContainerProcess
  private runningSince?: string
  private containerId = ''
  private state: ContainerState = {waiting: {reason: 'ContainerCreating'}}
  private lastState?: ContainerState
  private ready = false
  private everStarted = false
  private probeFailures = 0
  private nextStartAt = 0
  private stopped = false
  private probing = false
  private lastProbeAt = 0
  readonly startTime = now()

  constructor(
    readonly pod: StaticPod,
    private readonly opts: KubeletOptions,
  ) {
    this.container = pod.manifest.spec.containers[0]!
  }

  tick(): void {
    if (this.stopped) return
    if (!this.proc && Date.now() >= this.nextStartAt) this.start()
    const probe = this.container.readinessProbe
    const period = Math.max(1, probe?.periodSeconds ?? 10) * 1000
    if (this.proc && !this.probing && Date.now() - this.lastProbeAt >= Math.min(period, 1000)) void this.probe(probe)
  }

  private start(): void {
    try {
      const proc = startContainer(this.opts, this.pod, this.container, this.restartCount)
      this.proc = proc
      this.everStarted = true
      this.runningSince = now()
      this.containerId = `containerd://${randomBytes(32).toString('hex')}`
      this.state = {running: {startedAt: this.runningSince}}
      this.ready = false
      this.probeFailures = 0
      this.opts.log(
        `started container ${this.container.name} of ${this.pod.mirrorName} (${path.basename(this.pod.file)}, restart ${this.restartCount}, pid ${proc.pid ?? '-'})`,
      )
      void proc.exited.then((exit) => this.onExit(proc, exit))
    } catch (error) {
      const reason = error instanceof ContainerCreateError ? error.reason : 'CreateContainerError'
      const message = (error as Error).message
      const previous = 'waiting' in this.state ? this.state.waiting.message : undefined
      this.state = {waiting: {reason, message}}
      this.nextStartAt = Date.now() + 2000
      if (previous !== message) this.opts.log(`pod ${this.pod.mirrorName}: ${message}`)
    }
  }

  private onExit(proc: ContainerProcess, exit: ContainerExit): void {
    if (this.proc !== proc || this.stopped) return
    this.proc = undefined
    this.ready = false
    const backoff = Math.min(10_000 * 2 ** this.restartCount, this.opts.maxBackoffMs)
    this.lastState = {
      terminated: {
        exitCode: exit.exitCode,
        reason: exit.reason,
        ...(exit.message ? {message: exit.message} : {}),
        startedAt: this.runningSince ?? now(),
        finishedAt: now(),
        containerID: this.containerId,
      },
    }
    this.restartCount++
    this.nextStartAt = Date.now() + backoff
    this.state = {
      waiting: {
        reason: 'CrashLoopBackOff',
        message: `back-off ${Math.round(backoff / 1000)}s restarting failed container=${this.container.name} pod=${this.pod.mirrorName}_${this.pod.namespace}(${this.pod.hash})`,
      },
    }
    this.opts.log(
      `container ${this.container.name} of ${this.pod.mirrorName} exited with ${exit.exitCode}; back-off ${Math.round(backoff / 1000)}s`,
    )
  }

  private async probe(probe: Probe | undefined): Promise<void> {
    this.probing = true
    this.lastProbeAt = Date.now()
    try {
      let ok = true
      if (probe?.httpGet) {
        const g = probe.httpGet
        const scheme = (g.scheme ?? 'HTTP').toLowerCase()
        const result = await probeHttp(`${scheme}://${g.host ?? this.opts.nodeIp}:${g.port}${g.path ?? '/'}`, 2000)
        ok = result.ok
      }
      if (!this.proc) return
      if (ok) {
        this.probeFailures = 0
        this.ready = true
      } else if (++this.probeFailures >= (probe?.failureThreshold ?? 3) || !this.ready) {
        this.ready = false
      }
    } finally {
      this.probing = false
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    const proc = this.proc
    this.proc = undefined
    await proc?.stop()
  }

  isReady(): boolean {
    return this.ready
  }

  status(): Record<string, unknown> {
    const ready = this.ready
    const phase = this.everStarted ? 'Running' : 'Pending'
    const notReady = {reason: 'ContainersNotReady', message: `containers with unready status: [${this.container.name}]`}
    const cond = (type: string, ok: boolean, extra: object = {}) => ({
      type,
      status: ok ? 'True' : 'False',
      lastProbeTime: null,
      lastTransitionTime: this.startTime,
      ...(ok ? {} : extra),
    })
    const ip = this.opts.nodeIp
    return {
      phase,
      conditions: [
        cond('PodReadyToStartContainers', true),
        cond('Initialized', true),
        cond('Ready', ready, notReady),
        cond('ContainersReady', ready, notReady),
        cond('PodScheduled', true),
      ],
      hostIP: ip,
      hostIPs: [{ip}],
      podIP: ip,
      podIPs: [{ip}],
      startTime: this.startTime,
      qosClass: 'Burstable',
      containerStatuses: [
        {
          name: this.container.name,
          image: this.container.image ?? '',
          imageID: '',
          ...(this.containerId ? {containerID: this.containerId} : {}),
          ready,
          started: 'running' in this.state,
          restartCount: this.restartCount,
          state: this.state,
          lastState: this.lastState ?? {},
        },
      ],
    }
  }
}

export class Kubelet {
  private readonly workers = new Map<string, PodWorker>()
  private readonly skipped = new Map<string, string>()
  private running = false
  private nodeUid?: string
  private lastNodeStatusAt = 0
  private readonly pushed = new Map<string, string>()
  private loops: Promise<void>[] = []

  constructor(private readonly opts: KubeletOptions) {}

  start(): void {
    this.running = true
    this.loops = [this.loop(300, () => this.syncManifests()), this.loop(500, () => this.syncApi())]
  }

  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
    await Promise.all([...this.workers.values()].map((w) => w.stop()))
    this.workers.clear()
  }

  private async loop(intervalMs: number, body: () => Promise<void> | void): Promise<void> {
    let lastError = ''
    while (this.running) {
      try {
        await body()
        lastError = ''
      } catch (error) {
        const message = (error as Error).message
        if (message !== lastError) this.opts.log(`error: ${message}`)
        lastError = message
      }
      await sleep(intervalMs)
    }
  }

  /** The file source: every regular file not starting with a dot (kubelet config/file.go). */
  private async syncManifests(): Promise<void> {
    const dir = this.opts.manifestsDir
    const desired = new Map<string, StaticPod>()
    const names = existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => !n.startsWith('.'))
          .sort()
      : []
    for (const name of names) {
      const file = path.join(dir, name)
      try {
        if (!statSync(file).isFile()) continue
        const pod = readStaticPod(file, readFileSync(file, 'utf8'), this.opts.nodeName)
        desired.set(file, pod)
        this.skipped.delete(file)
      } catch (error) {
        const message = (error as Error).message
        if (this.skipped.get(file) !== message) this.opts.log(`Could not process manifest file: ${message}`)
        this.skipped.set(file, message)
      }
    }
    // Two files with one pod name: the sandbox shows each, the later under a distinct mirror name.
    const seen = new Set<string>()
    for (const pod of desired.values()) {
      const key = `${pod.namespace}/${pod.mirrorName}`
      if (seen.has(key)) pod.mirrorName = `${pod.mirrorName}-${pod.hash.slice(0, 8)}`
      seen.add(`${pod.namespace}/${pod.mirrorName}`)
    }
    for (const [file, worker] of this.workers) {
      const next = desired.get(file)
      if (!next || next.hash !== worker.pod.hash) {
        this.opts.log(
          next
            ? `manifest ${file} changed: restarting ${worker.pod.mirrorName}`
            : `manifest ${file} gone: stopping ${worker.pod.mirrorName}`,
        )
        this.workers.delete(file)
        await worker.stop()
      }
    }
    for (const [file, pod] of desired) {
      if (!this.workers.has(file)) this.workers.set(file, new PodWorker(pod, this.opts))
    }
    for (const worker of this.workers.values()) worker.tick()
    this.writePodsFile()
  }

  private podsFileContent = ''

  private writePodsFile(): void {
    const pods = Object.fromEntries(
      [...this.workers.values()].map((w) => [`${w.pod.namespace}/${w.pod.mirrorName}`, [w.container.name]]),
    )
    const content = JSON.stringify(pods)
    if (content === this.podsFileContent) return
    writeFileSync(`${this.opts.podsFile}.tmp`, content)
    renameSync(`${this.opts.podsFile}.tmp`, this.opts.podsFile)
    this.podsFileContent = content
  }

  private async syncApi(): Promise<void> {
    const api = this.opts.api
    if (!this.nodeUid) this.nodeUid = await this.registerNode()
    if (Date.now() - this.lastNodeStatusAt > 10_000) await this.updateNodeStatus()
    const desired = new Map([...this.workers.values()].map((w) => [`${w.pod.namespace}/${w.pod.mirrorName}`, w]))
    // What the API holds for this node, as the kubelet's pod informer sees it: the Node authorizer lets
    // a node list only the pods bound to it (and answers 403, not 404, for any other pod name).
    const namespaces = new Set(['kube-system', ...[...desired.values()].map((w) => w.pod.namespace)])
    const existing = new Map<string, MirrorPod>()
    for (const ns of namespaces) {
      const list = await api.request<{items: MirrorPod[]}>(
        'GET',
        `/api/v1/namespaces/${ns}/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.opts.nodeName}`)}`,
      )
      for (const item of list.items ?? []) existing.set(`${ns}/${item.metadata.name}`, item)
    }
    for (const [key, worker] of desired) await this.syncMirrorPod(worker, existing.get(key))
    // Mirror pods of this node whose static pod is gone.
    for (const [key, item] of existing) {
      if (!item.metadata.annotations?.['kubernetes.io/config.mirror'] || desired.has(key)) continue
      await this.deleteMirrorPod(item)
      this.pushed.delete(key)
      this.opts.log(`deleted orphaned mirror pod ${key}`)
    }
  }

  private async syncMirrorPod(worker: PodWorker, listed: MirrorPod | undefined): Promise<void> {
    const api = this.opts.api
    const {pod} = worker
    const base = `/api/v1/namespaces/${pod.namespace}/pods`
    const key = `${pod.namespace}/${pod.mirrorName}`
    let current: any = listed
    if (
      current &&
      (current.metadata?.annotations?.['kubernetes.io/config.mirror'] !== pod.hash ||
        current.metadata?.deletionTimestamp)
    ) {
      // An outdated mirror pod (the static pod changed): the kubelet deletes and recreates it.
      await this.deleteMirrorPod(current)
      current = undefined
    }
    if (!current) {
      this.pushed.delete(key)
      current = await api.request<any>('POST', base, this.mirrorPod(worker))
      this.opts.log(`created mirror pod ${key} (config.hash ${pod.hash})`)
    }
    const status = worker.status()
    const fingerprint = JSON.stringify(status)
    if (this.pushed.get(key) === fingerprint) return
    const updated = {...current, status}
    await this.putStatus(`${base}/${pod.mirrorName}`, updated)
    this.pushed.set(key, fingerprint)
  }

  /**
   * As the kubelet's mirror client does: grace period 0 (a pod bound to a node is otherwise only marked
   * for deletion, and its name stays taken for 30 s) and the UID as precondition, so a newer mirror pod
   * of the same name is never deleted by mistake.
   */
  private async deleteMirrorPod(pod: MirrorPod): Promise<void> {
    const options = {
      kind: 'DeleteOptions',
      apiVersion: 'v1',
      gracePeriodSeconds: 0,
      preconditions: {uid: pod.metadata.uid},
    }
    await this.opts.api
      .request('DELETE', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, options)
      .catch((e) => {
        if (!isStatus(e, 404) && !isStatus(e, 409)) throw e
      })
  }

  private async putStatus(objectPath: string, object: any): Promise<void> {
    try {
      await this.opts.api.request('PUT', `${objectPath}/status`, object)
    } catch (error) {
      if (isStatus(error, 409)) {
        const fresh = await this.opts.api.request<any>('GET', objectPath)
        await this.opts.api.request('PUT', `${objectPath}/status`, {...fresh, status: object.status})
      } else throw error
    }
  }

  private mirrorPod(worker: PodWorker): Record<string, unknown> {
    const {pod} = worker
    const m = pod.manifest.metadata
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: pod.mirrorName,
        namespace: pod.namespace,
        labels: m.labels ?? {},
        annotations: {
          ...(m.annotations ?? {}),
          'kubernetes.io/config.hash': pod.hash,
          'kubernetes.io/config.mirror': pod.hash,
          'kubernetes.io/config.seen': new Date().toISOString(),
          'kubernetes.io/config.source': 'file',
        },
        ownerReferences: [
          {apiVersion: 'v1', kind: 'Node', name: this.opts.nodeName, uid: this.nodeUid, controller: true},
        ],
      },
      spec: defaultedSpec(pod, this.opts.nodeName),
    }
  }

  private nodeStatus(): Record<string, unknown> {
    const t = now()
    const cond = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      lastHeartbeatTime: t,
      lastTransitionTime: this.startedAt,
      reason,
      message,
    })
    return {
      capacity: {cpu: '2', memory: '24Gi', pods: '110', 'ephemeral-storage': '50Gi'},
      allocatable: {cpu: '2', memory: '23Gi', pods: '110', 'ephemeral-storage': '45Gi'},
      conditions: [
        cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
      ],
      addresses: [
        {type: 'InternalIP', address: this.opts.nodeIp},
        {type: 'Hostname', address: this.opts.nodeName},
      ],
      daemonEndpoints: {kubeletEndpoint: {Port: 10250}},
      nodeInfo: {
        machineID: '',
        systemUUID: '',
        bootID: '',
        kernelVersion: '',
        osImage: 'Debian GNU/Linux (sandbox)',
        containerRuntimeVersion: 'sandbox://1.0',
        kubeletVersion: this.opts.kubeletVersion,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    }
  }

  private readonly startedAt = now()

  private async registerNode(): Promise<string> {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.opts.nodeName,
        labels: {
          'beta.kubernetes.io/arch': 'amd64',
          'beta.kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'kubernetes.io/hostname': this.opts.nodeName,
          'kubernetes.io/os': 'linux',
        },
        annotations: {
          'kubeadm.alpha.kubernetes.io/cri-socket': 'unix:///var/run/containerd/containerd.sock',
          'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        },
      },
      // The control-plane role label and taint are kubeadm's to add (NodeRestriction forbids the node
      // to set node-role labels itself): see markControlPlane in ../sandbox.ts.
      status: this.nodeStatus(),
    }
    try {
      const created = await this.opts.api.request<any>('POST', '/api/v1/nodes', node)
      this.opts.log(`registered node ${this.opts.nodeName}`)
      this.lastNodeStatusAt = 0
      return created.metadata.uid
    } catch (error) {
      if (!isStatus(error, 409)) throw error
      const existing = await this.opts.api.request<any>('GET', `/api/v1/nodes/${this.opts.nodeName}`)
      return existing.metadata.uid
    }
  }

  private async updateNodeStatus(): Promise<void> {
    const path = `/api/v1/nodes/${this.opts.nodeName}`
    const current = await this.opts.api.request<any>('GET', path)
    await this.putStatus(path, {...current, status: this.nodeStatus()})
    this.lastNodeStatusAt = Date.now()
  }
}
