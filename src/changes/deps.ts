import type {ObjectClient} from '../kube/types.js'
import type {RemoteFiles} from '../ssh/remote-files.js'
import type {ApiserverWaiter, RolloutEvent} from './rollout.js'

/** What enable, rotate and decrypt-all need from the world; the commands wire the real ones. */
export interface ControlPlaneDeps {
  /** Control-plane node names, sorted (from the API: control-plane role, apiserver mirror pods). */
  nodes(): Promise<string[]>
  files(node: string): RemoteFiles
  waiter: ApiserverWaiter
  objects: ObjectClient
  /** Asked once before the first change (unless --yes); false aborts with nothing changed. */
  confirm?(question: string): Promise<boolean>
  now?(): Date
  /** Ctrl-C/SIGTERM: stop before the next node or stage (the one in progress is finished first). */
  signal?: AbortSignal
  onEvent?(
    event:
      | RolloutEvent
      | {type: 'stage'; stage: string; status: 'start' | 'done' | 'skipped'}
      | {type: 'info'; message: string}
      | {type: 'warning'; message: string},
  ): void
}
