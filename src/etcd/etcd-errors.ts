import {PluginError, preconditionError} from '../errors.js'
import {describeReader, type EtcdReaderInfo} from './etcd-reader.js'

const NEXT_STEP: Record<string, string> = {
  direct:
    'Check --etcd-endpoints and the certificates: --etcd-cacert is the etcd CA, --etcd-cert/--etcd-key a client certificate it signed ' +
    '(on kubeadm: /etc/kubernetes/pki/etcd/ca.crt and /etc/kubernetes/pki/apiserver-etcd-client.{crt,key}); or read through the cluster with --etcd-via exec.',
  exec:
    "Check that you may create pods/exec in kube-system ('kubectl auth can-i create pods/exec -n kube-system'), that the etcd pod is Running, " +
    'and that the certificate paths exist inside it (--etcd-cacert/--etcd-cert/--etcd-key); or use --etcd-via ssh or --etcd-endpoints.',
  ssh:
    'Check that the node is reachable over SSH (--ssh-config, --ssh-user, --ssh-address), that etcdctl is installed there, and that the ' +
    'certificate paths exist on the node (--etcd-cacert/--etcd-cert/--etcd-key); or use --etcd-via exec or --etcd-endpoints.',
}

/** A failure to read etcd, naming the transport and endpoint, with what to try next. */
export function etcdError(info: EtcdReaderInfo, what: string, reason: string, cause?: unknown): PluginError {
  if (cause instanceof PluginError) return cause
  return preconditionError('ETCD_UNREACHABLE', `cannot ${what} in etcd through ${describeReader(info)}: ${reason}`, {
    hint: NEXT_STEP[info.transport],
    cause,
  })
}

/** etcd answered but refused the read (permissions, auth). */
export function etcdDenied(info: EtcdReaderInfo, what: string, reason: string, cause?: unknown): PluginError {
  return preconditionError('ETCD_DENIED', `etcd refused to ${what} through ${describeReader(info)}: ${reason}`, {
    hint: NEXT_STEP[info.transport],
    cause,
  })
}
