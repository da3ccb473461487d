import type {ManifestEncryptionSettings} from '../controlplane/apiserver-manifest.js'
import {
  disableEncryptionInClusterConfiguration,
  enableEncryptionInClusterConfiguration,
  KUBEADM_CONFIG,
} from '../controlplane/kubeadm-config.js'
import type {ApiResource, KubeObject, ObjectClient} from '../kube/types.js'
import {KubeApiError} from '../kube/types.js'
import {unifiedDiff} from '../output/diff.js'

export const CONFIGMAPS: ApiResource = {
  group: '',
  version: 'v1',
  resource: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
}

export interface KubeadmConfigOutcome {
  /** absent: no kubeadm-config ConfigMap (not a kubeadm cluster); planned: dry run. */
  status: 'updated' | 'unchanged' | 'absent' | 'planned' | 'skipped' | 'failed'
  changes: string[]
  diff?: string
  message?: string
}

/**
 * Keeps kubeadm's ClusterConfiguration in step with the manifests (kubeadm issue 2867), so a later
 * `kubeadm upgrade` writes the flag and the volume again instead of dropping them.
 */
export async function syncKubeadmConfig(
  objects: ObjectClient,
  change: {kind: 'enable'; settings: ManifestEncryptionSettings} | {kind: 'disable'; socketDirs?: string[]},
  dryRun: boolean,
): Promise<KubeadmConfigOutcome> {
  let cm: KubeObject
  try {
    cm = await objects.get(CONFIGMAPS, KUBEADM_CONFIG.name, KUBEADM_CONFIG.namespace)
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 404) return {status: 'absent', changes: []}
    throw error
  }
  const data = (cm.data ?? {}) as Record<string, string>
  const before = data[KUBEADM_CONFIG.key]
  if (before === undefined)
    return {status: 'absent', changes: [], message: 'kubeadm-config has no ClusterConfiguration'}
  const edit =
    change.kind === 'enable'
      ? enableEncryptionInClusterConfiguration(before, change.settings)
      : disableEncryptionInClusterConfiguration(before, change.socketDirs)
  if (!edit.changed) return {status: 'unchanged', changes: []}
  const diff = unifiedDiff(`/kube-system/configmaps/kubeadm-config/${KUBEADM_CONFIG.key}`, before, edit.text)
  if (dryRun) return {status: 'planned', changes: edit.changes, diff}
  await objects.replace(CONFIGMAPS, {...cm, data: {...data, [KUBEADM_CONFIG.key]: edit.text}})
  return {status: 'updated', changes: edit.changes, diff}
}
