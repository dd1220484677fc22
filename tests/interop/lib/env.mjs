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
