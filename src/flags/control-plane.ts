import {etcdFlags} from './etcd.js'
import {kubeFlags} from './kube.js'
import {safetyFlags} from './safety.js'
import {sshFlags} from './ssh.js'

/** The flags of every command that changes the control plane (enable, rotate, decrypt-all). */
export const controlPlaneFlags = {
  ...kubeFlags,
  ...sshFlags,
  ...etcdFlags,
  ...safetyFlags,
}
