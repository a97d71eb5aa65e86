// The clock, ids and sizes every event is made with. They run on every hash change, so each is cheap: a Blob
// for the size, or one crypto call per digit of an id, would cost 0.1 ms each.

export const now = () => Date.now();

// UUIDv7 (RFC 9562): 48 bits of time in ms, then 74 random bits. Ids made at about the same time sort
// together, so the database's unique index on event ids takes them at one end; random (v4) ids made
// SQLite write a page of that index per event: 2.6 times the time of a row (docs/benchmarks.md).
export const uuid = () => {
  const t = now().toString(16).padStart(12, "0");
  const random = crypto.getRandomValues(new Uint8Array(19));
  let i = 0;
  return `${t.slice(0, 8)}-${t.slice(8)}-7` +
    "000-8000-100000000000".replace(/[018]/g, (c) => (c ^ (random[i++] & (15 >> (c / 4)))).toString(16));
};

// Every queued event is a JSON string that starts {"id":"<uuid>": its id, without parsing it.
export const idOf = (s) => s.slice(7, 43);

// The UTF-8 size of a string. The encoder is made at the first use, inside a guard, not when the bundle loads.
let encoder;
export const bytes = (s) => (encoder ||= new TextEncoder()).encode(s).length;
