/**
 * Kite's cluster mode on NATS JetStream: loaded by the broker (a dynamic
 * import) only when `cluster.url` is set, so a single broker never loads
 * NATS. See the README, "Running a cluster".
 *
 * @module
 */

export {
  CLUSTER_SYS_TOPICS,
  type ClusterNode,
  startCluster,
} from "./cluster.ts";
export { ClusterError } from "./nats.ts";
export { ClusterDispatcher } from "./dispatcher.ts";
export { JetStreamStore } from "./jetstream_store.ts";
