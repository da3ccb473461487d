// Reading a static-pod manifest as the kubelet's file source does: parse, default, hash, name.
import {createHash} from 'node:crypto'
import {parse} from 'yaml'

export interface ContainerSpec {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  env?: Array<{name: string; value?: string}>
  volumeMounts?: Array<{name: string; mountPath: string; readOnly?: boolean; subPath?: string}>
  readinessProbe?: Probe
  livenessProbe?: Probe
  terminationMessagePolicy?: string
  [key: string]: unknown
}

export interface Probe {
  httpGet?: {host?: string; path?: string; port: number | string; scheme?: string}
  periodSeconds?: number
  failureThreshold?: number
  initialDelaySeconds?: number
}

export interface VolumeSpec {
  name: string
  hostPath?: {path: string; type?: string}
  [key: string]: unknown
}

export interface PodManifest {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    [k: string]: unknown
  }
  spec: {containers: ContainerSpec[]; volumes?: VolumeSpec[]; [key: string]: unknown}
}

export interface StaticPod {
  file: string
  content: string
  /** kubelet's static pod UID; also the kubernetes.io/config.hash and config.mirror annotations */
  hash: string
  manifest: PodManifest
  namespace: string
  /** mirror pod name: <metadata.name>-<node> */
  mirrorName: string
}

/** Like the kubelet's file source: an error here means the file is skipped (and any pod from it stopped). */
export function readStaticPod(file: string, content: string, nodeName: string): StaticPod {
  let doc: unknown
  try {
    doc = parse(content)
  } catch (error) {
    throw new Error(`${file}: couldn't parse as pod(${(error as Error).message.split('\n')[0]})`)
  }
  const manifest = doc as PodManifest
  if (!manifest || typeof manifest !== 'object')
    throw new Error(`${file}: couldn't parse as pod(Object 'Kind' is missing in '${content.slice(0, 40)}')`)
  if (manifest.kind !== 'Pod')
    throw new Error(
      `${file}: couldn't parse as pod(no kind "${String(manifest.kind)}" is registered for version "${String(manifest.apiVersion)}")`,
    )
  if (!manifest.metadata?.name)
    throw new Error(`${file}: invalid pod: metadata.name: Required value: name or generateName is required`)
  const containers = manifest.spec?.containers
  if (!Array.isArray(containers) || containers.length === 0)
    throw new Error(`${file}: invalid pod: spec.containers: Required value`)
  const volumeNames = new Set((manifest.spec.volumes ?? []).map((v) => v.name))
  for (const [i, c] of containers.entries()) {
    for (const [j, m] of (c.volumeMounts ?? []).entries()) {
      if (!volumeNames.has(m.name))
        throw new Error(`${file}: invalid pod: spec.containers[${i}].volumeMounts[${j}].name: Not found: "${m.name}"`)
    }
  }
  const hash = createHash('md5').update(content).update(`host:${nodeName}`).update(`file:${file}`).digest('hex')
  return {
    file,
    content,
    hash,
    manifest,
    namespace: manifest.metadata.namespace ?? 'default',
    mirrorName: `${manifest.metadata.name}-${nodeName}`,
  }
}

/** The fields the kubelet's defaulting adds when it decodes a static pod (what shows in the mirror pod spec). */
export function defaultedSpec(pod: StaticPod, nodeName: string): Record<string, unknown> {
  const spec = structuredClone(pod.manifest.spec) as Record<string, unknown> & {containers: ContainerSpec[]}
  spec.containers = spec.containers.map((c) => ({
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
    ...c,
  }))
  return {
    dnsPolicy: 'ClusterFirst',
    enableServiceLinks: true,
    preemptionPolicy: 'PreemptLowerPriority',
    restartPolicy: 'Always',
    schedulerName: 'default-scheduler',
    terminationGracePeriodSeconds: 30,
    tolerations: [{effect: 'NoExecute', operator: 'Exists'}],
    ...spec,
    nodeName,
  }
}
