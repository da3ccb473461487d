import type {SshSession} from '../ssh/ssh-session.js'
import {EtcdctlReader, type EtcdctlTarget} from './etcdctl-reader.js'

/** etcdctl on a control-plane node over SSH (as root via the session's `sudo -n`), argv only. */
export class SshEtcdReader extends EtcdctlReader {
  constructor(session: SshSession, target: EtcdctlTarget, timeoutMs = 120_000) {
    super(
      async (argv) => {
        // SSH, auth and sudo failures reject with a PluginError naming the node; pass them on.
        const result = await session.run(argv, {timeoutMs})
        return {code: result.exitCode, stdout: result.stdout, stderr: result.stderr}
      },
      target,
      {transport: 'ssh', endpoint: target.endpoint, via: session.node},
    )
  }
}
