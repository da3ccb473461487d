import type {KubeObject, ObjectClient} from '../kube/types.js'
import {KubeApiError} from '../kube/types.js'
import {CONFIGMAPS} from '../changes/kubeadm-config-sync.js'

/**
 * Where a multi-stage operation records how far it got, so it resumes after a kill and `status`
 * can show it: the ConfigMap kube-system/kubectl-encryption-state, one JSON document per
 * operation under `data.<operation>` (e.g. `data.rotate`). It holds names and hashes only, never
 * key material.
 */
export const STATE_CONFIGMAP = {namespace: 'kube-system', name: 'kubectl-encryption-state'} as const

export interface OperationState {
  operation: 'rotate' | 'decrypt-all'
  /** Started at (ISO time); also identifies the run. */
  startedAt: string
  updatedAt: string
  status: 'in-progress' | 'failed' | 'done'
  /** Stage being run (or last run). */
  stage: string
  completedStages: string[]
  error?: string
  [detail: string]: unknown
}

export class OperationStateStore {
  constructor(private readonly objects: ObjectClient) {}

  private async configMap(): Promise<KubeObject | undefined> {
    try {
      return await this.objects.get(CONFIGMAPS, STATE_CONFIGMAP.name, STATE_CONFIGMAP.namespace)
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined
      throw error
    }
  }

  async read<T extends OperationState>(operation: T['operation']): Promise<T | undefined> {
    const text = ((await this.configMap())?.data as Record<string, string> | undefined)?.[operation]
    return text ? (JSON.parse(text) as T) : undefined
  }

  async write(state: OperationState): Promise<void> {
    const doc = JSON.stringify({...state, updatedAt: new Date().toISOString()}, null, 2)
    for (let attempt = 0; ; attempt++) {
      const cm = await this.configMap()
      try {
        if (!cm) {
          await this.objects.create(CONFIGMAPS, {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: STATE_CONFIGMAP.name,
              namespace: STATE_CONFIGMAP.namespace,
              labels: {'app.kubernetes.io/managed-by': 'kubectl-encryption'},
            },
            data: {[state.operation]: doc},
          })
        } else {
          await this.objects.replace(CONFIGMAPS, {
            ...cm,
            data: {...((cm.data as Record<string, string>) ?? {}), [state.operation]: doc},
          })
        }
        return
      } catch (error) {
        if (!(error instanceof KubeApiError && (error.status === 409 || error.status === 404)) || attempt >= 5)
          throw error
      }
    }
  }
}
