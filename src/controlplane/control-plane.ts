import {KUBEADM_ETCDCTL_CERTS, type EtcdctlTarget} from '../etcd/etcdctl-reader.js'
import type {ApiResource, KubeObject, ObjectClient} from '../kube/types.js'
import {parseCommandFlags, parseGoBool} from './command-flags.js'

export const NODES: ApiResource = {group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false}
export const PODS: ApiResource = {group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true}

export const CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane'
const LEGACY_MASTER_LABEL = 'node-role.kubernetes.io/master'
export const APISERVER_ENDPOINT_ANNOTATION = 'kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint'
export const ETCD_CLIENT_URLS_ANNOTATION = 'kubeadm.kubernetes.io/etcd.advertise-client-urls'
export const CONFIG_HASH_ANNOTATION = 'kubernetes.io/config.hash'

interface Container {
  name: string
  command?: string[]
  args?: string[]
  volumeMounts?: Array<{name: string; mountPath: string; readOnly?: boolean}>
}

interface PodShape {
  metadata: KubeObject['metadata']
  spec?: {nodeName?: string; containers?: Container[]; volumes?: Array<{name: string; hostPath?: {path: string}}>}
  status?: {phase?: string; conditions?: Array<{type: string; status: string}>}
}

export interface ApiServerPod {
  name: string
  namespace: string
  node: string
  phase: string
  ready: boolean
  /** `kubernetes.io/config.hash`: changes whenever the kubelet picks up a new manifest. */
  configHash?: string
  /** `host:port` to reach this apiserver directly (kubeadm's advertise-address annotation, else flags). */
  endpoint?: string
  encryption: {
    /** --encryption-provider-config, or undefined when unset (encryption off). */
    configPath?: string
    automaticReload: boolean
    /** Whether a volumeMount makes the config path visible in the container (Kubernetes issue 53867). */
    configPathMounted?: boolean
  }
  flags: Record<string, string>
}

export interface EtcdPod {
  name: string
  namespace: string
  node: string
  phase: string
  ready: boolean
  container: string
  /** The client URL etcdctl should use from inside the pod (loopback first). */
  endpoint?: string
}

export interface ControlPlaneNode {
  name: string
  internalIP?: string
  /** The node's Ready condition. */
  ready: boolean
  /** Mirror pods on this node: usually one; a stray `kube-apiserver.yaml.bak` makes two. */
  apiservers: ApiServerPod[]
  etcd?: EtcdPod
}

function podReady(pod: PodShape): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
}

function mainContainer(pod: PodShape, preferred: string): Container | undefined {
  const containers = pod.spec?.containers ?? []
  return containers.find((c) => c.name === preferred) ?? containers[0]
}

/** What every mirror pod summary starts with. */
function podBasics(pod: KubeObject) {
  const shape = pod as unknown as PodShape
  return {
    name: pod.metadata.name,
    namespace: pod.metadata.namespace ?? 'kube-system',
    node: shape.spec?.nodeName ?? '',
    phase: shape.status?.phase ?? 'Unknown',
    ready: podReady(shape),
  }
}

function isUnder(path: string, mount: string): boolean {
  const base = mount.endsWith('/') ? mount : `${mount}/`
  return path === mount || path.startsWith(base)
}

export function apiServerFromPod(pod: KubeObject): ApiServerPod {
  const shape = pod as unknown as PodShape
  const container = mainContainer(shape, 'kube-apiserver')
  const flags = parseCommandFlags([...(container?.command ?? []), ...(container?.args ?? [])])
  const configPath = flags.get('encryption-provider-config') || undefined
  const annotations = pod.metadata.annotations ?? {}
  const advertise = flags.get('advertise-address')
  const endpoint =
    annotations[APISERVER_ENDPOINT_ANNOTATION] ||
    (advertise
      ? `${advertise.includes(':') ? `[${advertise}]` : advertise}:${flags.get('secure-port') ?? '6443'}`
      : undefined)
  return {
    ...podBasics(pod),
    configHash: annotations[CONFIG_HASH_ANNOTATION],
    endpoint,
    encryption: {
      configPath,
      automaticReload: parseGoBool(flags.get('encryption-provider-config-automatic-reload')) ?? false,
      configPathMounted:
        configPath === undefined
          ? undefined
          : (container?.volumeMounts ?? []).some((m) => isUnder(configPath, m.mountPath)),
    },
    flags: Object.fromEntries(flags),
  }
}

/** etcd's client URL to use from inside its own pod (host network): loopback first, as kubeadm lists it. */
export function etcdEndpointFromPod(pod: KubeObject): string | undefined {
  const container = mainContainer(pod as unknown as PodShape, 'etcd')
  const flags = parseCommandFlags([...(container?.command ?? []), ...(container?.args ?? [])])
  const listen = (flags.get('listen-client-urls') ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
  const loopback = listen.find((u) => /\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(u))
  const advertised = (
    pod.metadata.annotations?.[ETCD_CLIENT_URLS_ANNOTATION] ??
    flags.get('advertise-client-urls') ??
    ''
  )
    .split(',')[0]
    ?.trim()
  return loopback ?? (advertised || listen[0])
}

export function etcdFromPod(pod: KubeObject): EtcdPod {
  const shape = pod as unknown as PodShape
  return {
    ...podBasics(pod),
    container: mainContainer(shape, 'etcd')?.name ?? 'etcd',
    endpoint: etcdEndpointFromPod(pod),
  }
}

/** etcdctl inside the etcd pod, with kubeadm's certificate paths unless overridden. */
export function etcdctlTargetForPod(pod: EtcdPod, overrides: Partial<EtcdctlTarget> = {}): EtcdctlTarget {
  return {
    endpoint: overrides.endpoint ?? pod.endpoint ?? 'https://127.0.0.1:2379',
    cacert: overrides.cacert ?? KUBEADM_ETCDCTL_CERTS.cacert,
    cert: overrides.cert ?? KUBEADM_ETCDCTL_CERTS.cert,
    key: overrides.key ?? KUBEADM_ETCDCTL_CERTS.key,
    binary: overrides.binary,
    commandTimeoutSeconds: overrides.commandTimeoutSeconds,
  }
}

async function listAll(
  objects: ObjectClient,
  resource: ApiResource,
  options: {namespace?: string; labelSelector?: string},
): Promise<KubeObject[]> {
  const items: KubeObject[] = []
  let continueToken: string | undefined
  do {
    const page = await objects.list(resource, {...options, limit: 500, continueToken})
    items.push(...page.items)
    continueToken = page.continueToken
  } while (continueToken)
  return items
}

function internalIP(node: KubeObject): string | undefined {
  const addresses =
    (node as unknown as {status?: {addresses?: Array<{type: string; address: string}>}}).status?.addresses ?? []
  return addresses.find((a) => a.type === 'InternalIP')?.address
}

function nodeReady(node: KubeObject): boolean {
  const conditions =
    (node as unknown as {status?: {conditions?: Array<{type: string; status: string}>}}).status?.conditions ?? []
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True')
}

/**
 * The control plane as the API shows it: nodes with the control-plane role (or the legacy master
 * role) plus any node that runs a kube-apiserver mirror pod, each with its apiserver and etcd pods.
 * Sorted by node name so results are stable.
 */
export async function discoverControlPlane(objects: ObjectClient): Promise<ControlPlaneNode[]> {
  const [roleNodes, legacyNodes, apiserverPods, etcdPods] = await Promise.all([
    listAll(objects, NODES, {labelSelector: CONTROL_PLANE_LABEL}),
    listAll(objects, NODES, {labelSelector: LEGACY_MASTER_LABEL}),
    listAll(objects, PODS, {namespace: 'kube-system', labelSelector: 'component=kube-apiserver'}),
    listAll(objects, PODS, {namespace: 'kube-system', labelSelector: 'component=etcd'}),
  ])
  const nodes = new Map<string, ControlPlaneNode>()
  for (const node of [...roleNodes, ...legacyNodes]) {
    if (!nodes.has(node.metadata.name))
      nodes.set(node.metadata.name, {
        name: node.metadata.name,
        internalIP: internalIP(node),
        ready: nodeReady(node),
        apiservers: [],
      })
  }
  for (const pod of apiserverPods.map(apiServerFromPod)) {
    const node = nodes.get(pod.node) ?? {name: pod.node, ready: false, apiservers: []}
    node.apiservers.push(pod)
    nodes.set(pod.node, node)
  }
  for (const pod of etcdPods.map(etcdFromPod)) {
    const node = nodes.get(pod.node)
    if (node && !node.etcd) node.etcd = pod
  }
  for (const node of nodes.values()) node.apiservers.sort((a, b) => a.name.localeCompare(b.name))
  return [...nodes.values()].sort((a, b) => a.name.localeCompare(b.name))
}
