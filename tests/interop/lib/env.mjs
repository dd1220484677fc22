// Settings passed by run.sh.
const required = (name) => {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the suite through tests/interop/run.sh`);
  }
  return value;
};

export const env = {
  /** http://127.0.0.1:<port> of the shared server. */
  get baseUrl() {
    return required("INTEROP_BASE_URL");
  },
  /**
   * The second node (http://127.0.0.1:<port>) when run.sh runs the suite on
   * two nodes sharing a Redis: the second client of a scenario talks to it,
   * so what one client writes reaches the other through Redis. Without
   * one, the shared server.
   */
  get peerUrl() {
    return process.env.INTEROP_PEER_URL || this.baseUrl;
  },
  /** The shared server's database. */
  get databaseUrl() {
    return required("INTEROP_DATABASE_URL");
  },
  /** The taskboard binary. */
  get bin() {
    return required("INTEROP_TASKBOARD_BIN");
  },
  /** Where extra servers write their logs. */
  get logDir() {
    return required("INTEROP_LOG_DIR");
  },
};
