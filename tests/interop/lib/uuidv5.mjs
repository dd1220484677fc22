// UUIDv5 composite ids (docs/protocol.md §5.6): the client must use the same id
// for a TaskLabel as the server's canonical one.
import { createHash } from "node:crypto";

export const NAMESPACE = "92a73695-d772-4b43-9fb4-d79f5fbef300";

export const uuidv5 = (name, namespace = NAMESPACE) => {
  const ns = Buffer.from(namespace.replaceAll("-", ""), "hex");
  const hash = createHash("sha1").update(ns).update(Buffer.from(name, "utf8")).digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export const compositeId = (modelName, parts) => uuidv5(`${modelName}:${JSON.stringify(parts.map(String))}`);
