/**
 * etcd key layout (docs/kubernetes-behaviour.md §12): `<root>/<resourcePrefix>[/<namespace>]/<name>`, and the way back from
 * a key to the (group, resource) the encryption config is matched against (docs/kubernetes-behaviour.md §12.4, §8.4).
 */
import type {GroupResource} from '../config/model.js'

export interface EtcdKeyOptions {
  /** `--etcd-prefix`; default `/registry`. */
  prefix?: string
}

export interface EtcdObjectRef extends GroupResource {
  namespace?: string
  name: string
}

export interface ParsedEtcdKey extends GroupResource {
  namespace?: string
  /** Undefined for a key that names a collection rather than an object. */
  name?: string
  /** The etcd path segment(s) between the root and the namespace/name. */
  resourcePrefix: string
  /** False when the first segment is neither a known built-in prefix nor a `<group>` path. */
  known: boolean
}

/** Built-in resources whose etcd prefix is not their plural (docs/kubernetes-behaviour.md §12.2). Keys: `group/resource`. */
const SPECIAL_PREFIXES: Record<string, string> = {
  '/replicationcontrollers': 'controllers',
  '/endpoints': 'services/endpoints',
  '/services': 'services/specs',
  '/nodes': 'minions',
  'networking.k8s.io/ingresses': 'ingress',
  'extensions/ingresses': 'ingress',
}

/**
 * Built-in kube-apiserver resources and their groups (they are stored under their plural, without
 * the group, docs/kubernetes-behaviour.md §12.2). Discovery could tell us more; this table covers Kubernetes 1.26–1.37.
 */
export const BUILT_IN_RESOURCES: Record<string, string[]> = {
  '': [
    'configmaps',
    'endpoints',
    'events',
    'limitranges',
    'namespaces',
    'nodes',
    'persistentvolumeclaims',
    'persistentvolumes',
    'pods',
    'podtemplates',
    'replicationcontrollers',
    'resourcequotas',
    'secrets',
    'serviceaccounts',
    'services',
  ],
  'admissionregistration.k8s.io': [
    'mutatingwebhookconfigurations',
    'validatingwebhookconfigurations',
    'validatingadmissionpolicies',
    'validatingadmissionpolicybindings',
    'mutatingadmissionpolicies',
    'mutatingadmissionpolicybindings',
  ],
  'apiserverinternal.k8s.io': ['storageversions'],
  apps: ['controllerrevisions', 'daemonsets', 'deployments', 'replicasets', 'statefulsets'],
  autoscaling: ['horizontalpodautoscalers'],
  batch: ['cronjobs', 'jobs'],
  'certificates.k8s.io': ['certificatesigningrequests', 'clustertrustbundles', 'podcertificaterequests'],
  'coordination.k8s.io': ['leases', 'leasecandidates'],
  'discovery.k8s.io': ['endpointslices'],
  'flowcontrol.apiserver.k8s.io': ['flowschemas', 'prioritylevelconfigurations'],
  'networking.k8s.io': ['ingresses', 'ingressclasses', 'networkpolicies', 'ipaddresses', 'servicecidrs'],
  'node.k8s.io': ['runtimeclasses'],
  policy: ['poddisruptionbudgets'],
  'rbac.authorization.k8s.io': ['clusterrolebindings', 'clusterroles', 'rolebindings', 'roles'],
  'resource.k8s.io': [
    'deviceclasses',
    'resourceclaims',
    'resourceclaimtemplates',
    'resourceslices',
    'devicetaintrules',
  ],
  'scheduling.k8s.io': ['priorityclasses'],
  'storage.k8s.io': [
    'csidrivers',
    'csinodes',
    'csistoragecapacities',
    'storageclasses',
    'volumeattachments',
    'volumeattributesclasses',
  ],
  'storagemigration.k8s.io': ['storageversionmigrations'],
}

/** etcd prefix (first segments) -> (group, resource), for the way back. */
const PREFIX_TO_GR = new Map<string, GroupResource>()
for (const [group, resources] of Object.entries(BUILT_IN_RESOURCES)) {
  for (const resource of resources) {
    PREFIX_TO_GR.set(SPECIAL_PREFIXES[`${group}/${resource}`] ?? resource, {group, resource})
  }
}
/** Resource-like prefixes that are not API objects (docs/kubernetes-behaviour.md §12.3). */
const NON_OBJECT_PREFIXES = new Map<string, GroupResource>([
  ['ranges/serviceips', {group: '', resource: 'serviceipallocations'}],
  ['ranges/servicenodeports', {group: '', resource: 'servicenodeportallocations'}],
])

/** `--etcd-prefix` normalized as the apiserver does: joined onto `/`, trailing `/` removed (docs/kubernetes-behaviour.md §12.1). */
export function normalizeEtcdRoot(prefix = '/registry'): string {
  const joined = ('/' + prefix).replace(/\/+/g, '/')
  return joined.endsWith('/') ? joined.slice(0, -1) : joined
}

/** The etcd path for a resource's objects (without root): built-ins by plural, others `<group>/<resource>`. */
export function resourcePrefixFor(gr: GroupResource): string {
  const special = SPECIAL_PREFIXES[`${gr.group}/${gr.resource}`]
  if (special) return special
  // events.k8s.io events cohabit with core events (docs/kubernetes-behaviour.md §12.2); extensions shared apps' locations.
  if (gr.group === 'events.k8s.io' && gr.resource === 'events') return 'events'
  if (gr.group === '' || gr.group === 'extensions' || BUILT_IN_RESOURCES[gr.group]?.includes(gr.resource))
    return gr.resource
  return `${gr.group}/${gr.resource}`
}

/** The etcd key of an object (docs/kubernetes-behaviour.md §12.1). */
export function etcdKeyFor(ref: EtcdObjectRef, options: EtcdKeyOptions = {}): string {
  const parts = [normalizeEtcdRoot(options.prefix), resourcePrefixFor(ref)]
  if (ref.namespace) parts.push(ref.namespace)
  parts.push(ref.name)
  return parts.join('/')
}

/** The key prefix listing every object of a resource (optionally one namespace), ending in `/`. */
export function etcdPrefixFor(gr: GroupResource & {namespace?: string}, options: EtcdKeyOptions = {}): string {
  const base = `${normalizeEtcdRoot(options.prefix)}/${resourcePrefixFor(gr)}/`
  return gr.namespace ? `${base}${gr.namespace}/` : base
}

/**
 * Maps a key back to its (group, resource), namespace and name (docs/kubernetes-behaviour.md §12.4): a first segment with a
 * `.` is a group (next segment the resource); otherwise a built-in prefix from the table, where
 * two-segment prefixes (`services/specs`) are tried first. Unknown prefixes map to a core resource
 * of that name with `known: false`. Keys outside the root map to resource '' (unknown).
 */
export function groupResourceForKey(key: string, options: EtcdKeyOptions = {}): ParsedEtcdKey {
  const root = normalizeEtcdRoot(options.prefix)
  if (!key.startsWith(root + '/')) return {group: '', resource: '', resourcePrefix: '', known: false}
  const segments = key.slice(root.length + 1).split('/')
  let gr: GroupResource | undefined
  let used = 1
  let known = true
  const two = segments.length >= 2 ? `${segments[0]}/${segments[1]}` : undefined
  if (two && (PREFIX_TO_GR.has(two) || NON_OBJECT_PREFIXES.has(two))) {
    gr = PREFIX_TO_GR.get(two) ?? NON_OBJECT_PREFIXES.get(two)
    used = 2
  } else if (segments[0].includes('.')) {
    gr = {group: segments[0], resource: segments[1] ?? ''}
    used = 2
  } else {
    gr = PREFIX_TO_GR.get(segments[0])
    if (!gr) {
      gr = {group: '', resource: segments[0]}
      known = false
    }
  }
  const rest = segments.slice(used)
  // A literal, not {...gr}: this runs once per value a scan reads, and the spread made it 5x slower.
  const parsed: ParsedEtcdKey = {
    group: gr!.group,
    resource: gr!.resource,
    resourcePrefix: used === 1 ? segments[0] : segments.slice(0, used).join('/'),
    known,
  }
  if (rest.length === 1) parsed.name = rest[0]
  else if (rest.length >= 2) {
    parsed.namespace = rest[0]
    parsed.name = rest.slice(1).join('/')
  }
  return parsed
}

/**
 * Why `key` cannot be the etcd key of an API object under this root (docs/kubernetes-behaviour.md §12.1), or undefined:
 * outside `<root>/`, an empty segment, no object name, or more segments than `[<namespace>/]<name>`
 * (names cannot contain `/`). The allocator keys of docs/kubernetes-behaviour.md §12.3 (`ranges/serviceips`) are accepted.
 */
export function etcdKeyProblem(key: string, options: EtcdKeyOptions = {}): string | undefined {
  const root = normalizeEtcdRoot(options.prefix)
  const shape = `${root}/<resource>/[<namespace>/]<name>`
  if (!key.startsWith(root + '/')) return `it is not under the apiserver's etcd prefix ${root}/ (expected ${shape})`
  if (
    key
      .slice(root.length + 1)
      .split('/')
      .includes('')
  )
    return `it has an empty path segment (expected ${shape})`
  const parsed = groupResourceForKey(key, options)
  if (parsed.name === undefined) {
    return NON_OBJECT_PREFIXES.has(parsed.resourcePrefix)
      ? undefined
      : `it names no object, only ${root}/${parsed.resourcePrefix} (expected ${shape})`
  }
  if (parsed.name.includes('/')) return `it has more path segments than ${shape}`
  return undefined
}
