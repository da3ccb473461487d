import {toPluginError} from '../kube/errors.js'
import type {PodExecutor, PodRef} from '../kube/types.js'
import {etcdError} from './etcd-errors.js'
import {EtcdctlReader, type EtcdctlTarget} from './etcdctl-reader.js'

/**
 * etcdctl inside the etcd mirror pod of a control-plane node, through the API's pods/exec: argv
 * only (distroless etcd images have no shell), kubeadm's certificate paths by default.
 */
export class ExecEtcdReader extends EtcdctlReader {
  constructor(exec: PodExecutor, pod: PodRef, target: EtcdctlTarget, timeoutMs = 120_000) {
    const info = {transport: 'exec' as const, endpoint: target.endpoint, via: `${pod.namespace}/${pod.name}`}
    super(
      async (argv) => {
        try {
          const result = await exec.exec(pod, argv, {timeoutMs})
          return {code: result.code, stdout: result.stdout, stderr: result.stderr.toString('utf8')}
        } catch (error) {
          const translated = toPluginError(error) as Error
          throw etcdError(info, 'run etcdctl', translated.message, error)
        }
      },
      target,
      info,
    )
  }
}
