// Loaded with `node --import ./setup.mjs` before any test file.
//
// 1. @stratasync/transport-graphql 2.4.1 imports `@stratasync/y-doc/types`,
//    a subpath that the only published y-doc (0.5.1) does not export. The
//    resolution hook in ./resolve-hooks.mjs maps it onto the package's
//    dist/types.js (which holds exactly the message guards the transport needs).
// 2. Node 20 has no global WebSocket, and the transport reads
//    `WebSocket.OPEN` from the global even when given a factory, so the `ws`
//    class is installed as the global (wrapped so tests can see the frames).
import { register } from "node:module";
import { RecordingWebSocket } from "./lib/ws-recorder.mjs";

register("./resolve-hooks.mjs", import.meta.url);

globalThis.WebSocket = RecordingWebSocket;

// Record the client's HTTP requests (tests check which path a change took).
const { installFetchRecorder } = await import("./lib/http-recorder.mjs");
installFetchRecorder();
