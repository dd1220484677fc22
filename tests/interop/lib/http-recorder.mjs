// Wraps the global fetch (used by the transport) to record every request:
// method, path, the bearer token and the status. Installed by setup.mjs.
const requests = [];

export const installFetchRecorder = () => {
  const original = globalThis.fetch;
  if (original.__interopRecorder) {
    return;
  }
  const recording = async (input, init = {}) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const auth = headers.get("authorization") ?? "";
    const entry = {
      at: Date.now(),
      method: (init.method ?? "GET").toUpperCase(),
      path: url.pathname,
      search: url.search,
      token: auth.replace(/^Bearer\s+/i, "") || null,
      status: null,
      transactions: null,
    };
    if (entry.path.endsWith("/mutate") && typeof init.body === "string") {
      try {
        entry.transactions = JSON.parse(init.body).transactions?.length ?? null;
      } catch {
        /* not JSON */
      }
    }
    requests.push(entry);
    try {
      const res = await original(input, init);
      entry.status = res.status;
      return res;
    } catch (error) {
      entry.status = `error: ${error.message}`;
      throw error;
    }
  };
  recording.__interopRecorder = true;
  globalThis.fetch = recording;
};

/** Recorded requests, optionally only those with `token` and path suffix. */
export const httpRequests = ({ token, path } = {}) =>
  requests.filter((r) => (!token || r.token === token) && (!path || r.path.endsWith(path)));
