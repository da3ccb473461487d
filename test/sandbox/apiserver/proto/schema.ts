/**
 * Field numbers of the Kubernetes protobuf messages the stand-in stores (facts from
 * k8s.io/api core/v1 and k8s.io/apimachinery meta/v1 generated.proto), with how the generated
 * gogo marshalers emit them (spec §13.2): non-pointer scalars and embedded messages are always
 * written, even when empty; pointer fields (`opt`) only when set; repeated fields and maps only
 * per element, maps sorted by key. Only the subset of fields the sandbox and the plugin use;
 * unknown JSON fields are dropped, as kube-apiserver drops them.
 */
export type FieldKind =
  | 'string'
  | 'int'
  | 'bool'
  | 'bytes'
  | 'time'
  | 'quantity'
  | 'message'
  | 'map-string'
  | 'map-bytes'
  | 'map-quantity'

export interface FieldSpec {
  n: number
  json: string
  kind: FieldKind
  /** message name for kind 'message' */
  msg?: string
  /** repeated */
  rep?: boolean
  /** pointer field in Go: written only when set */
  opt?: boolean
  /** JSON tag has no omitempty: shown even when zero */
  keep?: boolean
  /** embedded struct whose JSON fields sit inline in the parent (Volume.VolumeSource) */
  inline?: boolean
}

const f = (n: number, json: string, kind: FieldKind, more: Partial<FieldSpec> = {}): FieldSpec => ({n, json, kind, ...more})
const m = (n: number, json: string, msg: string, more: Partial<FieldSpec> = {}): FieldSpec => ({n, json, kind: 'message', msg, ...more})

export const MESSAGES: Record<string, FieldSpec[]> = {
  ObjectMeta: [
    f(1, 'name', 'string'),
    f(2, 'generateName', 'string'),
    f(3, 'namespace', 'string'),
    f(4, 'selfLink', 'string'),
    f(5, 'uid', 'string'),
    f(6, 'resourceVersion', 'string'),
    f(7, 'generation', 'int'),
    f(8, 'creationTimestamp', 'time'),
    f(9, 'deletionTimestamp', 'time', {opt: true}),
    f(10, 'deletionGracePeriodSeconds', 'int', {opt: true}),
    f(11, 'labels', 'map-string'),
    f(12, 'annotations', 'map-string'),
    m(13, 'ownerReferences', 'OwnerReference', {rep: true}),
    f(14, 'finalizers', 'string', {rep: true}),
  ],
  OwnerReference: [
    f(1, 'kind', 'string', {keep: true}),
    f(3, 'name', 'string', {keep: true}),
    f(4, 'uid', 'string', {keep: true}),
    f(5, 'apiVersion', 'string', {keep: true}),
    f(6, 'controller', 'bool', {opt: true}),
    f(7, 'blockOwnerDeletion', 'bool', {opt: true}),
  ],
  ObjectReference: [
    f(1, 'kind', 'string'),
    f(2, 'namespace', 'string'),
    f(3, 'name', 'string'),
    f(4, 'uid', 'string'),
    f(5, 'apiVersion', 'string'),
    f(6, 'resourceVersion', 'string'),
    f(7, 'fieldPath', 'string'),
  ],
  Secret: [
    m(1, 'metadata', 'ObjectMeta'),
    f(2, 'data', 'map-bytes'),
    f(3, 'type', 'string'),
    f(5, 'immutable', 'bool', {opt: true}),
  ],
  ConfigMap: [
    m(1, 'metadata', 'ObjectMeta'),
    f(2, 'data', 'map-string'),
    f(3, 'binaryData', 'map-bytes'),
    f(4, 'immutable', 'bool', {opt: true}),
  ],
  Namespace: [m(1, 'metadata', 'ObjectMeta'), m(2, 'spec', 'NamespaceSpec'), m(3, 'status', 'NamespaceStatus')],
  NamespaceSpec: [f(1, 'finalizers', 'string', {rep: true})],
  NamespaceStatus: [f(1, 'phase', 'string')],
  Node: [m(1, 'metadata', 'ObjectMeta'), m(2, 'spec', 'NodeSpec'), m(3, 'status', 'NodeStatus')],
  NodeSpec: [
    f(1, 'podCIDR', 'string'),
    f(2, 'externalID', 'string'),
    f(3, 'providerID', 'string'),
    f(4, 'unschedulable', 'bool'),
    m(5, 'taints', 'Taint', {rep: true}),
    f(7, 'podCIDRs', 'string', {rep: true}),
  ],
  Taint: [
    f(1, 'key', 'string', {keep: true}),
    f(2, 'value', 'string'),
    f(3, 'effect', 'string', {keep: true}),
    f(4, 'timeAdded', 'time', {opt: true}),
  ],
  NodeStatus: [
    f(1, 'capacity', 'map-quantity'),
    f(2, 'allocatable', 'map-quantity'),
    f(3, 'phase', 'string'),
    m(4, 'conditions', 'NodeCondition', {rep: true}),
    m(5, 'addresses', 'NodeAddress', {rep: true}),
    m(6, 'daemonEndpoints', 'NodeDaemonEndpoints'),
    m(7, 'nodeInfo', 'NodeSystemInfo'),
  ],
  NodeCondition: [
    f(1, 'type', 'string', {keep: true}),
    f(2, 'status', 'string', {keep: true}),
    f(3, 'lastHeartbeatTime', 'time'),
    f(4, 'lastTransitionTime', 'time'),
    f(5, 'reason', 'string'),
    f(6, 'message', 'string'),
  ],
  NodeAddress: [f(1, 'type', 'string', {keep: true}), f(2, 'address', 'string', {keep: true})],
  NodeDaemonEndpoints: [m(1, 'kubeletEndpoint', 'DaemonEndpoint')],
  DaemonEndpoint: [f(1, 'Port', 'int', {keep: true})],
  NodeSystemInfo: [
    f(1, 'machineID', 'string', {keep: true}),
    f(2, 'systemUUID', 'string', {keep: true}),
    f(3, 'bootID', 'string', {keep: true}),
    f(4, 'kernelVersion', 'string', {keep: true}),
    f(5, 'osImage', 'string', {keep: true}),
    f(6, 'containerRuntimeVersion', 'string', {keep: true}),
    f(7, 'kubeletVersion', 'string', {keep: true}),
    f(8, 'kubeProxyVersion', 'string', {keep: true}),
    f(9, 'operatingSystem', 'string', {keep: true}),
    f(10, 'architecture', 'string', {keep: true}),
  ],
  Pod: [m(1, 'metadata', 'ObjectMeta'), m(2, 'spec', 'PodSpec'), m(3, 'status', 'PodStatus')],
  PodSpec: [
    m(1, 'volumes', 'Volume', {rep: true}),
    m(2, 'containers', 'Container', {rep: true, keep: true}),
    f(3, 'restartPolicy', 'string'),
    f(4, 'terminationGracePeriodSeconds', 'int', {opt: true}),
    f(5, 'activeDeadlineSeconds', 'int', {opt: true}),
    f(6, 'dnsPolicy', 'string'),
    f(7, 'nodeSelector', 'map-string'),
    f(8, 'serviceAccountName', 'string'),
    f(9, 'serviceAccount', 'string'),
    f(10, 'nodeName', 'string'),
    f(11, 'hostNetwork', 'bool'),
    f(12, 'hostPID', 'bool'),
    f(13, 'hostIPC', 'bool'),
    f(16, 'hostname', 'string'),
    f(17, 'subdomain', 'string'),
    f(19, 'schedulerName', 'string'),
    m(22, 'tolerations', 'Toleration', {rep: true}),
    f(24, 'priorityClassName', 'string'),
    f(25, 'priority', 'int', {opt: true}),
    f(30, 'enableServiceLinks', 'bool', {opt: true}),
    f(31, 'preemptionPolicy', 'string', {opt: true}),
  ],
  Toleration: [
    f(1, 'key', 'string'),
    f(2, 'operator', 'string'),
    f(3, 'value', 'string'),
    f(4, 'effect', 'string'),
    f(5, 'tolerationSeconds', 'int', {opt: true}),
  ],
  Volume: [f(1, 'name', 'string', {keep: true}), m(2, 'volumeSource', 'VolumeSource', {inline: true})],
  VolumeSource: [
    m(1, 'hostPath', 'HostPathVolumeSource', {opt: true}),
    m(2, 'emptyDir', 'EmptyDirVolumeSource', {opt: true}),
    m(6, 'secret', 'SecretVolumeSource', {opt: true}),
    m(19, 'configMap', 'ConfigMapVolumeSource', {opt: true}),
  ],
  HostPathVolumeSource: [f(1, 'path', 'string', {keep: true}), f(2, 'type', 'string', {opt: true})],
  EmptyDirVolumeSource: [f(1, 'medium', 'string'), f(2, 'sizeLimit', 'quantity', {opt: true})],
  SecretVolumeSource: [f(1, 'secretName', 'string'), f(3, 'defaultMode', 'int', {opt: true}), f(4, 'optional', 'bool', {opt: true})],
  ConfigMapVolumeSource: [
    m(1, 'localObjectReference', 'LocalObjectReference', {inline: true}),
    f(3, 'defaultMode', 'int', {opt: true}),
    f(4, 'optional', 'bool', {opt: true}),
  ],
  LocalObjectReference: [f(1, 'name', 'string')],
  Container: [
    f(1, 'name', 'string', {keep: true}),
    f(2, 'image', 'string'),
    f(3, 'command', 'string', {rep: true}),
    f(4, 'args', 'string', {rep: true}),
    f(5, 'workingDir', 'string'),
    m(6, 'ports', 'ContainerPort', {rep: true}),
    m(7, 'env', 'EnvVar', {rep: true}),
    m(8, 'resources', 'ResourceRequirements'),
    m(9, 'volumeMounts', 'VolumeMount', {rep: true}),
    f(13, 'terminationMessagePath', 'string'),
    f(14, 'imagePullPolicy', 'string'),
    f(16, 'stdin', 'bool'),
    f(17, 'stdinOnce', 'bool'),
    f(18, 'tty', 'bool'),
    f(20, 'terminationMessagePolicy', 'string'),
  ],
  ContainerPort: [
    f(1, 'name', 'string'),
    f(2, 'hostPort', 'int'),
    f(3, 'containerPort', 'int', {keep: true}),
    f(4, 'protocol', 'string'),
    f(5, 'hostIP', 'string'),
  ],
  EnvVar: [f(1, 'name', 'string', {keep: true}), f(2, 'value', 'string')],
  ResourceRequirements: [f(1, 'limits', 'map-quantity'), f(2, 'requests', 'map-quantity')],
  VolumeMount: [
    f(1, 'name', 'string', {keep: true}),
    f(2, 'readOnly', 'bool'),
    f(3, 'mountPath', 'string', {keep: true}),
    f(4, 'subPath', 'string'),
    f(5, 'mountPropagation', 'string', {opt: true}),
    f(6, 'subPathExpr', 'string'),
  ],
  PodStatus: [
    f(1, 'phase', 'string'),
    m(2, 'conditions', 'PodCondition', {rep: true}),
    f(3, 'message', 'string'),
    f(4, 'reason', 'string'),
    f(5, 'hostIP', 'string'),
    f(6, 'podIP', 'string'),
    f(7, 'startTime', 'time', {opt: true}),
    m(8, 'containerStatuses', 'ContainerStatus', {rep: true}),
    f(9, 'qosClass', 'string'),
    f(11, 'nominatedNodeName', 'string'),
    m(12, 'podIPs', 'PodIP', {rep: true}),
    m(16, 'hostIPs', 'HostIP', {rep: true}),
  ],
  PodIP: [f(1, 'ip', 'string', {keep: true})],
  HostIP: [f(1, 'ip', 'string', {keep: true})],
  PodCondition: [
    f(1, 'type', 'string', {keep: true}),
    f(2, 'status', 'string', {keep: true}),
    f(3, 'lastProbeTime', 'time', {keep: true}),
    f(4, 'lastTransitionTime', 'time', {keep: true}),
    f(5, 'reason', 'string'),
    f(6, 'message', 'string'),
  ],
  ContainerStatus: [
    f(1, 'name', 'string', {keep: true}),
    m(2, 'state', 'ContainerState'),
    m(3, 'lastState', 'ContainerState', {keep: true}),
    f(4, 'ready', 'bool', {keep: true}),
    f(5, 'restartCount', 'int', {keep: true}),
    f(6, 'image', 'string', {keep: true}),
    f(7, 'imageID', 'string', {keep: true}),
    f(8, 'containerID', 'string'),
    f(9, 'started', 'bool', {opt: true}),
  ],
  ContainerState: [
    m(1, 'waiting', 'ContainerStateWaiting', {opt: true}),
    m(2, 'running', 'ContainerStateRunning', {opt: true}),
    m(3, 'terminated', 'ContainerStateTerminated', {opt: true}),
  ],
  ContainerStateWaiting: [f(1, 'reason', 'string'), f(2, 'message', 'string')],
  ContainerStateRunning: [f(1, 'startedAt', 'time')],
  ContainerStateTerminated: [
    f(1, 'exitCode', 'int', {keep: true}),
    f(2, 'signal', 'int'),
    f(3, 'reason', 'string'),
    f(4, 'message', 'string'),
    f(5, 'startedAt', 'time'),
    f(6, 'finishedAt', 'time'),
    f(7, 'containerID', 'string'),
  ],
  Endpoints: [m(1, 'metadata', 'ObjectMeta'), m(2, 'subsets', 'EndpointSubset', {rep: true})],
  EndpointSubset: [
    m(1, 'addresses', 'EndpointAddress', {rep: true}),
    m(2, 'notReadyAddresses', 'EndpointAddress', {rep: true}),
    m(3, 'ports', 'EndpointPort', {rep: true}),
  ],
  EndpointAddress: [
    f(1, 'ip', 'string', {keep: true}),
    m(2, 'targetRef', 'ObjectReference', {opt: true}),
    f(3, 'hostname', 'string'),
    f(4, 'nodeName', 'string', {opt: true}),
  ],
  EndpointPort: [
    f(1, 'name', 'string'),
    f(2, 'port', 'int', {keep: true}),
    f(3, 'protocol', 'string'),
    f(4, 'appProtocol', 'string', {opt: true}),
  ],
}
