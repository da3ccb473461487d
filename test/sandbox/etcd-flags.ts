/**
 * The plugin's flags for reading a sandbox's etcd directly: its endpoints (or `endpoints`, e.g. one
 * that refuses or hangs), the etcd CA and the etcdctl client certificate, from the sandbox's `env`.
 */
export function etcdFlags(env: Record<string, string | undefined>, endpoints = env.ETCDCTL_ENDPOINTS): string[] {
  return [
    '--etcd-endpoints',
    endpoints!,
    '--etcd-cacert',
    env.ETCDCTL_CACERT!,
    '--etcd-cert',
    env.ETCDCTL_CERT!,
    '--etcd-key',
    env.ETCDCTL_KEY!,
  ]
}
