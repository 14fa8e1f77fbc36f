/** `Router` runs the shared `Dispatcher` suite (tests/dispatcher_suite.ts). */

import { Router } from "../broker/router.ts";
import { dispatcherSuite } from "./dispatcher_suite.ts";

dispatcherSuite("Router", (maxQos) => new Router(maxQos));
