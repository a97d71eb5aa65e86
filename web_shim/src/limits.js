// Every number the shim's behaviour depends on (docs/shim.md gives them to users). They are kept in a module
// that imports nothing because esbuild inlines only such a module's constants: elsewhere each would stay a
// variable in the bundle.

// Events recorded within this of the first one queued go in the same request.
export const BATCH_DELAY_MS = 500;
// Browsers give fetch keepalive and sendBeacon 64 KiB in flight in all; a small batch leaves most of it to
// the beacons sent when the page goes away while a request is still out.
export const BATCH_BYTES = 16384;
export const BATCH_EVENTS = 100;
// The service refuses bodies over 64 KiB: a bigger event could never be delivered, so it is not queued.
export const EVENT_BYTES = 60000;
// Per page, in memory and in localStorage: the oldest events go first past either limit.
export const QUEUE_EVENTS = 500;
export const QUEUE_CHARS = 262144;
export const MAX_AGE_MS = 7 * 864e5;
// A tab stamps the pages it sends for at every attempt (90 s apart at most, more when the browser throttles a
// hidden tab); a page stamped longer ago than this, or released at pagehide, is taken over by the next tab of
// the site that looks.
export const LEASE_MS = 3e5;
export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 6e4;
// A request the network never answers would stop the queue for good.
export const REQUEST_TIMEOUT_MS = 3e4;
// A batch that keeps failing with 500 (a bug the service logs) would block everything behind it forever: it is
// sent alone from this many failures on, and dropped (a seq gap shows the loss) when it fails alone again.
export const ISOLATE_AFTER = 4;
