/**
 * `ClusterDispatcher` runs the shared `Dispatcher` suite
 * (tests/dispatcher_suite.ts) as a node whose peers hold no subscriptions:
 * everything is delivered here, as by the local `Router`. What crosses
 * nodes is tested over NATS in cluster_dispatcher_nats_test.ts and end to
 * end in cluster_*_test.ts.
 */

import { ClusterDispatcher } from "../broker/cluster/dispatcher.ts";
import { dispatcherSuite } from "./dispatcher_suite.ts";

dispatcherSuite("ClusterDispatcher", (maxQos) => new ClusterDispatcher(maxQos));
