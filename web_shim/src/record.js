// An event: its id, the page's next seq, the browser's time, its type and fields, as one JSON string, queued
// for the next batch.
import { endpoint, site } from "./config.js";
import { schedule } from "./delivery.js";
import { bytes, now, uuid } from "./ids.js";
import { BATCH_DELAY_MS, EVENT_BYTES } from "./limits.js";
import { enqueue } from "./queue.js";

let seq = 0; // the page's last; one given out and never sent (too big, not JSON) is a gap the service counts

export const record = (type, fields) => {
  if (!endpoint || !site) return;
  const event = JSON.stringify({ id: uuid(), seq: ++seq, ts: now(), type, ...fields });
  // Too big to send: dropped, and its seq stays unused so the gap shows the loss.
  if (bytes(event) > EVENT_BYTES) return;
  enqueue(event);
  schedule(BATCH_DELAY_MS);
};
