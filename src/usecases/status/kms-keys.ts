/**
 * The KMS v2 key ID each apiserver reports as current (its metrics, docs/kubernetes-behaviour.md §11.2),
 * and whether they agree: what `verify` compares a stored value's key ID with.
 */
import type {ControlPlaneNode} from '../../controlplane/control-plane.js'
import {type CurrentKmsKey, currentKmsKeys, encryptionMetrics, parsePrometheusText} from '../../controlplane/metrics.js'
import type {EndpointProbe} from '../../kube/types.js'

export interface NodeKmsKeys {
  node: string
  keys: CurrentKmsKey[]
  /** Why this apiserver's metrics could not be read. */
  error?: string
}

export async function apiserverKmsKeys(
  nodes: ControlPlaneNode[],
  probe: EndpointProbe,
  timeoutMs = 5000,
): Promise<NodeKmsKeys[]> {
  return Promise.all(
    nodes.map(async (node): Promise<NodeKmsKeys> => {
      const endpoint = node.apiservers[0]?.endpoint
      if (!endpoint) return {node: node.name, keys: [], error: 'no apiserver endpoint known'}
      try {
        const r = await probe.get('/metrics', {endpoint, timeoutMs})
        if (r.status !== 200) return {node: node.name, keys: [], error: `/metrics answered HTTP ${r.status}`}
        return {node: node.name, keys: currentKmsKeys(encryptionMetrics(parsePrometheusText(r.body)).kmsKeyIds)}
      } catch (error) {
        return {node: node.name, keys: [], error: (error as Error).message}
      }
    }),
  )
}

/** The key ID hash every apiserver reporting `provider` agrees on, or the disagreement (hash -> nodes). */
export function agreedKey(
  reports: NodeKmsKeys[],
  provider: string,
): {keyIdHash?: string; reportedBy: Record<string, string[]>} {
  const reportedBy: Record<string, string[]> = {}
  for (const r of reports)
    for (const k of r.keys) if (k.provider === provider) (reportedBy[k.keyIdHash] ??= []).push(r.node)
  const hashes = Object.keys(reportedBy)
  return hashes.length === 1 ? {keyIdHash: hashes[0], reportedBy} : {reportedBy}
}
