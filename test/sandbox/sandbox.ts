// startSandbox(): the whole local control plane of docs/architecture.md §5, for `npm run sandbox` and for the
// end-to-end tests' global setup. See test/sandbox/README.md for what is real and what stands in.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {DenyUpdateWebhook} from './admission-webhook.js'
import {SandboxApiClient, isStatus, probeHttp} from './api-client.js'
import {makeClusterPki, writeKubeconfigs, type ClusterPki} from './cluster-pki.js'
import {etcdHealthy, startEtcd} from './etcd-process.js'
import {ensureKubeBinaries, type KubeBinaries} from './kube-binaries.js'
import {defaultStateDir, layoutFor, repoRoot, subnetFor, type SandboxLayout} from './layout.js'
import {TcpLoadBalancer} from './load-balancer.js'
import {clusterConfiguration, etcdManifest, kubeApiserverManifest, kubeControllerManagerManifest} from './manifests.js'
import {spawnLogged, stopGroup, type Supervised} from './processes.js'
import {setUpSsh} from './ssh-setup.js'
import {readState, stopRecorded, writeState, type RecordedProcess} from './state.js'

export interface SandboxOptions {
  stateDir?: string
  nodeCount?: number
  /** kubelet crash-loop back-off cap (kubelet config crashLoopBackOff.maxContainerRestartPeriod); default 300 s */
  maxBackoffMs?: number
  /** how long to wait for the API (all nodes ready); default 180 s */
  readyTimeoutMs?: number
  log?: (message: string) => void
  /** written into state.json; `--down` only signals a PID whose command line contains it */
  ownerMarker?: string
}

export interface SandboxHandle {
  layout: SandboxLayout
  /** the variables also written to <stateDir>/env */
  env: Record<string, string>
  nodes: string[]
  /** milliseconds from start until ready */
  startupMs: number
  /** wait until every node's API server answers /readyz and its mirror pods are reported */
  waitReady(timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** the admission webhook listens on the load balancer's address */
const WEBHOOK_PORT = 9443

function checkPrerequisites(): void {
  if (process.getuid?.() !== 0)
    throw new Error(
      'the sandbox needs root (it bind-mounts /etc/kubernetes per node and runs sshd); run as root or via sudo',
    )
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].filter(Boolean)
  const missing = ['openssl', 'unshare', 'mount', 'ssh-keygen', 'ssh', 'sudo', 'useradd', 'visudo'].filter(
    (c) => !dirs.some((d) => existsSync(path.join(d, c))),
  )
  if (!existsSync('/usr/sbin/sshd')) missing.push('sshd')
  if (missing.length > 0)
    throw new Error(
      `missing tools: ${missing.join(', ')}; run ./scripts/bootstrap.sh (installs openssh-server sudo util-linux openssl)`,
    )
  try {
    execFileSync('unshare', ['--mount', '--propagation', 'private', 'true'], {stdio: 'pipe'})
  } catch (error) {
    throw new Error(
      `cannot create a mount namespace (unshare --mount): ${String((error as {stderr?: Buffer}).stderr ?? (error as Error).message).trim()}. The sandbox needs CAP_SYS_ADMIN; it does not fall back to shared mounts.`,
    )
  }
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, host, () => s.close(() => resolve(true)))
  })
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

async function pickLayout(stateDir: string, nodeCount: number): Promise<SandboxLayout> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const subnet = subnetFor(stateDir, attempt)
    const base = layoutFor(stateDir, subnet, nodeCount)
    const checks = [
      canListen(base.lbIp, base.apiPort),
      canListen(base.lbIp, WEBHOOK_PORT),
      canListen(base.etcdIp, base.etcdPort),
      ...base.nodes.flatMap((n) => [canListen(n.ip, base.apiPort), canListen(n.ip, base.etcdPort)]),
    ]
    if (!(await Promise.all(checks)).every(Boolean)) continue
    // sshd on :22 as on a real node, unless a host sshd holds 0.0.0.0:22; the port is in the ssh config.
    for (const sshPort of [22, 2022, 20022]) {
      if ((await Promise.all(base.nodes.map((n) => canListen(n.ip, sshPort)))).every(Boolean))
        return layoutFor(stateDir, subnet, nodeCount, sshPort)
    }
  }
  throw new Error('no free loopback /24 found for the sandbox (20 tried)')
}

/** Clear the state dir, refusing to delete a directory that is not a sandbox's. */
function resetStateDir(dir: string): void {
  if (existsSync(dir)) {
    const entries = readdirSync(dir)
    const ours =
      entries.length === 0 ||
      entries.includes('layout.json') ||
      entries.includes('state.json') ||
      entries.includes('pki')
    if (!ours) throw new Error(`${dir} exists and is not a sandbox state dir; choose another --state-dir`)
    rmSync(dir, {recursive: true, force: true})
  }
  mkdirSync(dir, {recursive: true, mode: 0o755})
}

function envFor(layout: SandboxLayout, pki: ClusterPki, bin: KubeBinaries): Record<string, string> {
  return {
    // the release's etcdctl and etcdutl first, as on a control-plane node
    PATH: `${bin.binDir}:${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
    SANDBOX_BIN_DIR: bin.binDir,
    SANDBOX_KUBE_VERSION: bin.release.version,
    KUBECONFIG: layout.kubeconfig,
    ETCDCTL_ENDPOINTS: `https://${layout.etcdIp}:${layout.etcdPort}`,
    ETCDCTL_CACERT: pki.etcdCa.cert,
    ETCDCTL_CERT: pki.etcdClient.cert,
    ETCDCTL_KEY: pki.etcdClient.key,
    SANDBOX_NODES: layout.nodes.map((n) => n.name).join(' '),
    SANDBOX_SSH_CONFIG: layout.sshConfig,
    SANDBOX_VIEWER_KUBECONFIG: layout.restrictedKubeconfig,
    SANDBOX_STATE_DIR: layout.stateDir,
  }
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]*$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)

export async function startSandbox(options: SandboxOptions = {}): Promise<SandboxHandle> {
  const t0 = Date.now()
  const rawLog = options.log ?? (() => undefined)
  const log = (m: string) => rawLog(`${((Date.now() - t0) / 1000).toFixed(1)}s ${m}`)
  const stateDir = path.resolve(options.stateDir ?? defaultStateDir)
  const nodeCount = options.nodeCount ?? 3
  checkPrerequisites()
  const bin = await ensureKubeBinaries(log)

  const stateFile = path.join(stateDir, 'state.json')
  const previous = readState(stateFile)
  if (previous) {
    const {isOurs} = await import('./state.js')
    if (isOurs(previous.ownerPid, previous.ownerMarker) && previous.ownerPid !== process.pid) {
      throw new Error(
        `a sandbox is already running from ${stateDir} (pid ${previous.ownerPid}); stop it with \`npm run sandbox -- --down\` or use another --state-dir`,
      )
    }
    await stopRecorded(stateFile, log) // leftovers of a sandbox whose owner was killed
  }
  resetStateDir(stateDir)
  const layout = await pickLayout(stateDir, nodeCount)
  log(`sandbox ${layout.subnet}.0/24 in ${stateDir}`)
  for (const dir of [
    layout.logDir,
    ...layout.nodes.flatMap((n) => [path.join(n.etcKubernetes, 'manifests'), n.varLogPods, n.kubeletDir]),
  ]) {
    mkdirSync(dir, {recursive: true})
  }
  mkdirSync('/etc/kubernetes', {recursive: true}) // mount point for the nodes' own directories

  const children: Supervised[] = []
  const recorded: RecordedProcess[] = []
  const state = {
    ownerPid: process.pid,
    ownerMarker: options.ownerMarker ?? process.argv[1] ?? 'node',
    startedAt: new Date().toISOString(),
    subnet: layout.subnet,
    processes: recorded,
  }
  const record = (s: Supervised, marker: string) => {
    children.push(s)
    if (s.child.pid) recorded.push({name: s.name, pid: s.child.pid, marker})
    writeState(stateFile, state)
  }
  let lb: TcpLoadBalancer | undefined
  let webhook: DenyUpdateWebhook | undefined
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    rmSync(layout.envFile, {force: true})
    await Promise.all(
      children.filter((c) => c.name !== 'etcd').map((c) => (c.child.pid ? stopGroup(c.child.pid) : undefined)),
    )
    await lb?.stop()
    await webhook?.stop()
    const etcd = children.find((c) => c.name === 'etcd')
    if (etcd?.child.pid) await stopGroup(etcd.child.pid)
    rmSync(stateFile, {force: true})
    log('sandbox stopped')
  }

  const startNodes = () => {
    for (const node of layout.nodes) {
      const nodeConfig = path.join(node.kubeletDir, 'node.json')
      writeFileSync(
        nodeConfig,
        JSON.stringify({
          layout,
          node,
          repoRoot,
          maxBackoffMs: options.maxBackoffMs ?? 300_000,
          binDir: bin.binDir,
          kubernetesVersion: bin.release.version,
          hostMountNamespace: readlinkSync('/proc/self/ns/mnt'),
        }),
      )
      const child = spawnLogged(
        node.name,
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          process.execPath,
          '--import',
          'tsx',
          path.join(repoRoot, 'test', 'sandbox', 'node', 'node-main.ts'),
          nodeConfig,
        ],
        path.join(layout.logDir, `${node.name}.log`),
        {cwd: repoRoot},
      )
      record(child, nodeConfig)
    }
  }
  let pki: ClusterPki
  try {
    writeState(stateFile, state)
    // etcd starts as soon as its certificate exists; the nodes (sshd, kubelet) once ssh and every
    // certificate are there (the kubelet's exec server exits if its serving certificate is missing);
    // the static-pod manifests are written only once etcd is healthy, so no API server starts without it.
    ;[pki] = await Promise.all([
      makeClusterPki(layout, (ca, server) => record(startEtcd(layout, bin.etcd, ca, server), layout.etcdDataDir)),
      setUpSsh(layout),
    ])
    startNodes()
    writeKubeconfigs(layout, pki)
    log('certificates, keys and ssh set up')
    lb = new TcpLoadBalancer(
      layout.lbIp,
      layout.apiPort,
      layout.nodes.map((n) => ({host: n.ip, port: layout.apiPort})),
    )
    await lb.start()
    webhook = new DenyUpdateWebhook(layout.lbIp, WEBHOOK_PORT, pki.webhook)
    await webhook.start()
    const deadline = Date.now() + 20_000
    while (!(await etcdHealthy(layout))) {
      const dead = children.find((c) => c.child.exitCode !== null)
      if (dead)
        throw new Error(
          `${dead.name} exited during start-up (exit ${dead.child.exitCode}); see ${path.join(layout.logDir, `${dead.name}.log`)}`,
        )
      if (Date.now() > deadline)
        throw new Error(`etcd did not become healthy in 20 s; see ${path.join(layout.logDir, 'etcd.log')}`)
      await sleep(100)
    }
    log('etcd healthy')
    for (const node of layout.nodes) {
      const manifests = path.join(node.etcKubernetes, 'manifests')
      mkdirSync(path.join(node.etcKubernetes, 'tmp'), {recursive: true, mode: 0o700})
      writeFileSync(path.join(manifests, 'etcd.yaml'), etcdManifest(layout, node), {mode: 0o600})
      writeFileSync(path.join(manifests, 'kube-apiserver.yaml'), kubeApiserverManifest(layout, node), {mode: 0o600})
      writeFileSync(path.join(manifests, 'kube-controller-manager.yaml'), kubeControllerManagerManifest(node), {
        mode: 0o600,
      })
    }
    writeFileSync(path.join(stateDir, 'layout.json'), `${JSON.stringify(layout, null, 2)}\n`)
    // Each node is up once its sshd accepts connections (it starts after the bind mounts).
    for (const node of layout.nodes) {
      while (!(await canConnect(node.ip, node.sshPort))) {
        const dead = children.find((c) => c.child.exitCode !== null)
        if (dead)
          throw new Error(
            `${dead.name} exited during start-up (exit ${dead.child.exitCode}); see ${path.join(layout.logDir, `${dead.name}.log`)}`,
          )
        if (Date.now() > deadline)
          throw new Error(
            `sshd of ${node.name} did not start in 20 s; see ${path.join(layout.logDir, `${node.name}.log`)}`,
          )
        await sleep(100)
      }
    }
    log('nodes up (sshd listening)')
  } catch (error) {
    await stop()
    throw error
  }

  const env = envFor(layout, pki, bin)
  const admin = new SandboxApiClient({
    server: `https://${layout.lbIp}:${layout.apiPort}`,
    ca: pki.kubeCa.cert,
    cert: pki.admin.cert,
    key: pki.admin.key,
  })

  const waitReady = async (timeoutMs = options.readyTimeoutMs ?? 180_000) => {
    const until = Date.now() + timeoutMs
    let missing = 'API servers'
    for (;;) {
      const dead = children.find((c) => c.child.exitCode !== null)
      if (dead)
        throw new Error(
          `${dead.name} exited (exit ${dead.child.exitCode}); see ${path.join(layout.logDir, `${dead.name}.log`)}`,
        )
      missing = await notReady(layout, admin)
      if (!missing) return
      if (Date.now() > until)
        throw new Error(
          `sandbox not ready after ${Math.round(timeoutMs / 1000)} s: ${missing}; logs in ${layout.logDir}`,
        )
      await sleep(200)
    }
  }

  try {
    const until = Date.now() + (options.readyTimeoutMs ?? 180_000)
    while (!(await probeHttp(`https://${layout.lbIp}:${layout.apiPort}/readyz`, 1000)).ok) {
      if (Date.now() > until) throw new Error(`no API server became ready; logs in ${layout.logDir}`)
      await sleep(100)
    }
    await bootstrapObjects(layout, admin, webhook!.configuration(readFileSync(pki.kubeCa.cert, 'utf8')))
    await waitReady(Math.max(1000, until - Date.now()))
    await markControlPlane(layout, admin)
    log('API ready')
    writeFileSync(
      layout.envFile,
      Object.entries(env)
        .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
        .join(''),
      {mode: 0o644},
    )
  } catch (error) {
    admin.close()
    await stop()
    throw error
  }
  return {
    layout,
    env,
    nodes: layout.nodes.map((n) => n.name),
    startupMs: Date.now() - t0,
    waitReady,
    stop: async () => {
      admin.close()
      await stop()
    },
  }
}

/** '' when every node's API server is ready and each node shows Ready with its mirror pods; else what is missing. */
async function notReady(layout: SandboxLayout, admin: SandboxApiClient): Promise<string> {
  const probes = await Promise.all(layout.nodes.map((n) => probeHttp(`https://${n.ip}:${layout.apiPort}/readyz`, 1000)))
  const down = layout.nodes.filter((_, i) => !probes[i]!.ok).map((n) => n.name)
  if (down.length > 0) return `API server not ready on ${down.join(', ')}`
  try {
    const pods = await admin.request<{
      items: Array<{metadata: {name: string}; status?: {conditions?: Array<{type: string; status: string}>}}>
    }>('GET', '/api/v1/namespaces/kube-system/pods')
    const ready = new Set(
      pods.items
        .filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
        .map((p) => p.metadata.name),
    )
    const want = layout.nodes.flatMap((n) => [
      `kube-apiserver-${n.name}`,
      `kube-controller-manager-${n.name}`,
      `etcd-${n.name}`,
    ])
    const missing = want.filter((w) => !ready.has(w))
    return missing.length > 0 ? `mirror pods not ready: ${missing.join(', ')}` : ''
  } catch (error) {
    return `listing mirror pods: ${(error as Error).message}`
  }
}

/** kubeadm's mark-control-plane phase: the role label and taint, set with admin rights once the node registered. */
async function markControlPlane(layout: SandboxLayout, admin: SandboxApiClient): Promise<void> {
  for (const node of layout.nodes) {
    const patch = {
      metadata: {
        labels: {
          'node-role.kubernetes.io/control-plane': '',
          'node.kubernetes.io/exclude-from-external-load-balancers': '',
        },
      },
      spec: {taints: [{effect: 'NoSchedule', key: 'node-role.kubernetes.io/control-plane'}]},
    }
    await admin.request('PATCH', `/api/v1/nodes/${node.name}`, patch, 'application/merge-patch+json')
  }
}

/** What kubeadm init uploads: the kubeadm-config ConfigMap (and the namespaces it lives in). */
async function bootstrapObjects(
  layout: SandboxLayout,
  admin: SandboxApiClient,
  webhookConfiguration: Record<string, unknown>,
): Promise<void> {
  const tolerate409 = (e: unknown) => {
    if (!isStatus(e, 409)) throw e
  }
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    await admin
      .request('POST', '/api/v1/namespaces', {apiVersion: 'v1', kind: 'Namespace', metadata: {name: ns}})
      .catch(tolerate409)
  }
  await admin
    .request('POST', '/api/v1/namespaces/kube-system/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {name: 'kubeadm-config', namespace: 'kube-system'},
      data: {ClusterConfiguration: clusterConfiguration(layout)},
    })
    .catch(tolerate409)
  await admin
    .request('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', webhookConfiguration)
    .catch(tolerate409)
  // The read-only `viewer` user (group sandbox:viewers, --token-auth-file): Kubernetes' own `view`
  // role (every namespaced resource but Secrets) and reading Nodes, as a monitoring account would have.
  const rbac = '/apis/rbac.authorization.k8s.io/v1'
  const subjects = [{kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'sandbox:viewers'}]
  await admin
    .request('POST', `${rbac}/clusterroles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {name: 'sandbox:node-reader'},
      rules: [{apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch']}],
    })
    .catch(tolerate409)
  for (const role of ['view', 'sandbox:node-reader']) {
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: {name: `sandbox:viewers:${role}`},
      roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role},
      subjects,
    }
    await admin.request('POST', `${rbac}/clusterrolebindings`, binding).catch(tolerate409)
  }
}
