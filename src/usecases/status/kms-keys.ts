/**
 * The KMS v2 key ID each apiserver reports as current (its metrics, docs/kubernetes-behaviour.md §11.2),
 * and whether they agree: what `verify` compares a stored value's key ID with.
 */
import type {ControlPlaneNode} from '../../controlplane/control-plane.js'
import {type HealthCheck, type HealthReport, kmsChecks, parseHealthReport} from '../../controlplane/health.js'
import {type CurrentKmsKey, currentKmsKeys, encryptionMetricsOf} from '../../controlplane/metrics.js'
import type {EndpointProbe} from '../../kube/types.js'

export interface NodeKmsKeys {
  node: string
  keys: CurrentKmsKey[]
  /** Its KMS health checks (`/readyz`), when they could be read; failed ones carry the apiserver's text. */
  kms?: HealthCheck[]
  /** Its `/readyz` answered 200. */
  ready?: boolean
  /** Why this apiserver's metrics could not be read. */
  error?: string
}

/**
 * An apiserver's `/readyz?verbose`, with each failed KMS check's own text: the combined list says only
 * "reason withheld", `/readyz/<check>` gives the error (docs/kubernetes-behaviour.md §10).
 */
export async function readyzWithKms(
  probe: EndpointProbe,
  endpoint: string,
  timeoutMs: number,
): Promise<{report: HealthReport; kms: HealthCheck[]; httpStatus: number}> {
  const readyz = await probe.get('/readyz?verbose', {endpoint, timeoutMs})
  const report = parseHealthReport(readyz.status, readyz.body)
  const kms = kmsChecks(report)
  for (const check of kms.filter((c) => !c.ok)) {
    const own = await probe.get(`/readyz/${check.name}`, {endpoint, timeoutMs}).catch(() => undefined)
    const text = own && own.status !== 200 ? own.body.trim().replace(/^internal server error:\s*/, '') : ''
    if (text) check.message = text
  }
  return {report, kms, httpStatus: readyz.status}
}

/** One line for a KMS check an apiserver reports failing; status and verify say it the same way. */
export const kmsUnhealthyProblem = (node: string, check: HealthCheck, apiserverReady = false) =>
  `${node}: KMS provider unhealthy: its apiserver reports ${check.name} failed: ${check.message}${apiserverReady ? '' : ' (the apiserver is not ready)'}`

export async function apiserverKmsKeys(
  nodes: ControlPlaneNode[],
  probe: EndpointProbe,
  timeoutMs = 5000,
): Promise<NodeKmsKeys[]> {
  return Promise.all(
    nodes.map(async (node): Promise<NodeKmsKeys> => {
      const endpoint = node.apiservers[0]?.endpoint
      if (!endpoint) return {node: node.name, keys: [], error: 'no apiserver endpoint known'}
      // Health and key IDs side by side: an apiserver not ready only because of its plugin still serves /metrics.
      const health = readyzWithKms(probe, endpoint, timeoutMs).then(
        (h) => ({kms: h.kms, ready: h.report.ok}),
        () => ({}),
      )
      try {
        const r = await probe.get('/metrics', {endpoint, timeoutMs})
        if (r.status !== 200)
          return {node: node.name, keys: [], ...(await health), error: `/metrics answered HTTP ${r.status}`}
        const keys = currentKmsKeys(encryptionMetricsOf(r.body).kmsKeyIds)
        return {node: node.name, keys, ...(await health)}
      } catch (error) {
        return {node: node.name, keys: [], ...(await health), error: (error as Error).message}
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
