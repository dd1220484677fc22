// Works around a @stratasync/client 0.5.1 race in BOOTSTRAP_REQUIRED
// recovery (README, "Client bugs the suite works around").
import { tokenFor } from "./client.mjs";
import { httpRequests } from "./http-recorder.mjs";
import { sleep, waitFor } from "./wait.mjs";
import { wsRecords } from "./ws-recorder.mjs";

/**
 * When a stale client reconnects, the server reports BOOTSTRAP_REQUIRED on
 * both paths, as the protocol says: HTTP 409 to the catch-up fetch and an
 * error frame to the WebSocket subscribe. @stratasync/client 0.5.1 then runs
 * two recoveries concurrently, and one of them can drop the delta
 * subscription the other just started without closing it
 * (DeltaPipeline.handleBootstrapRequired clears the current subscription,
 * and the next transport.subscribe() throws "WebSocketManager supports only
 * one active delta subscription"): the client is stuck in "error" with an
 * orphaned subscription. That race is the client's; to test the server
 * deterministically, this holds the client's re-bootstrap request until both
 * BOOTSTRAP_REQUIRED answers have arrived, so both recoveries start before
 * either of them subscribes again. INTEROP_NO_RECOVERY_HOLD=1 removes the
 * hold (to reproduce the race).
 */
export const holdRebootstrapUntilBothPathsReported = (handle, since) => {
  if (process.env.INTEROP_NO_RECOVERY_HOLD === "1") {
    return;
  }
  const bootstrap = handle.transport.bootstrap.bind(handle.transport);
  handle.transport.bootstrap = (options) =>
    (async function* held() {
      const token = tokenFor(handle.userId);
      const httpSeen = () => httpRequests({ token, path: "/sync/deltas" }).some((r) => r.at >= since && r.status === 409);
      const wsSeen = () =>
        wsRecords(token).some((r) => r.received.some((f) => f.at >= since && f.json?.code === "BOOTSTRAP_REQUIRED"));
      await waitFor(() => httpSeen() || wsSeen(), { timeout: 30_000, message: "a BOOTSTRAP_REQUIRED answer" });
      await waitFor(() => httpSeen() && wsSeen(), { timeout: 5_000, message: "both BOOTSTRAP_REQUIRED answers" }).catch(
        () => {}
      );
      await sleep(100);
      return yield* bootstrap(options);
    })();
};
